//! Power-of-two buckets and the quantiles estimated from them, as Tempo computes
//! `histogram_over_time` and `quantile_over_time`.
//!
//! A value `v` (an integer, or a duration in nanoseconds) goes to the bucket labelled with the
//! smallest power of two at least `v`; values below 2 have no bucket and are not counted.
//! Durations are labelled in seconds (`2^k / 1e9`). A quantile `p` of a step is read from its
//! buckets: the first `ceil(p * n)` values (at least one) are consumed bucket by bucket; when
//! they end exactly at a bucket's end the answer is that bucket's label, otherwise it is
//! interpolated exponentially inside the bucket where they end, between the previous bucket's
//! label (or half the bucket's own when it is the first) and its own.

use crate::eval::Value;

const NANOS_PER_SECOND: f64 = 1e9;

/// The bucket label of a value: its power of two (seconds for durations); `None` for values
/// below 2 and for values that are neither integers nor durations (Tempo buckets no floats).
pub(crate) fn bucket_of(value: &Value<'_>) -> Option<f64> {
    match value {
        Value::Int(i) => power_of_two_at_least(u64::try_from(*i).ok()?),
        Value::Duration(nanos) => Some(power_of_two_at_least(u64::try_from(*nanos).ok()?)? / NANOS_PER_SECOND),
        _ => None,
    }
}

fn power_of_two_at_least(v: u64) -> Option<f64> {
    if v < 2 {
        return None;
    }
    Some(v.checked_next_power_of_two()? as f64)
}

/// The `p` quantile (0 to 1) of the values counted in `buckets` (label, count), which are
/// sorted by label; 0 when nothing is counted.
pub(crate) fn quantile(p: f64, buckets: &[(f64, u64)]) -> f64 {
    let total: u64 = buckets.iter().map(|(_, count)| count).sum();
    if total == 0 || !(0.0..=1.0).contains(&p) {
        return 0.0;
    }
    let wanted = ((p * total as f64).ceil() as u64).max(1);
    let mut consumed = 0;
    let mut at = 0;
    for (i, &(label, count)) in buckets.iter().enumerate() {
        at = i;
        if consumed + count > wanted {
            break;
        }
        consumed += count;
        if consumed == wanted {
            return label;
        }
    }
    let fraction = (wanted - consumed) as f64 / buckets[at].1 as f64;
    let upper = buckets[at].0.log2();
    let lower = if at > 0 { buckets[at - 1].0.log2() } else { upper - 1.0 };
    (lower + (upper - lower) * fraction).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_to_the_power_of_two_at_least_them() {
        assert_eq!(bucket_of(&Value::Int(1)), None);
        assert_eq!(bucket_of(&Value::Int(2)), Some(2.0));
        assert_eq!(bucket_of(&Value::Int(3)), Some(4.0));
        assert_eq!(bucket_of(&Value::Int(1024)), Some(1024.0));
        assert_eq!(bucket_of(&Value::Int(-5)), None);
        assert_eq!(bucket_of(&Value::Float(3.0)), None);
        // 100 ms = 1e8 ns: 2^27 ns = 0.134217728 s.
        assert_eq!(bucket_of(&Value::Duration(100_000_000)), Some(134_217_728.0 / 1e9));
    }

    #[test]
    fn quantiles_end_at_a_bucket_or_interpolate_inside_it() {
        let buckets = [(1.0, 2), (2.0, 2), (8.0, 4)];
        // p50 of 8: the 4th value ends the second bucket exactly.
        assert_eq!(quantile(0.5, &buckets), 2.0);
        assert_eq!(quantile(1.0, &buckets), 8.0);
        // p75: 6 values, 2 into the last bucket of 4: halfway from 2^1 to 2^3 in log2, 2^2.
        assert_eq!(quantile(0.75, &buckets), 4.0);
        // p10: one value, half of the first bucket, interpolated from 2^-1 to 2^0.
        assert_eq!(quantile(0.1, &buckets), (-0.5f64).exp2());
        assert_eq!(quantile(0.5, &[]), 0.0);
    }
}
