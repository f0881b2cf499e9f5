//! Latency histograms: fixed bucket bounds, per-bucket counts, the sum of the observed
//! durations, and one exemplar per bucket.
//!
//! Invariants:
//! - a histogram has one count per finite bound plus the `+Inf` bucket; counts are per
//!   bucket (not cumulative) and `count` is their sum;
//! - a duration falls in the first bucket whose bound is at or above it (`le` semantics),
//!   decided on integer nanoseconds so the same span always lands in the same bucket;
//! - the sum is kept in integer nanoseconds (`u128`), so it is exact and cannot overflow;
//! - at most one exemplar per bucket, the one with the latest timestamp (on a tie, the
//!   last recorded), and its duration lies within its bucket.

use sextant_model::{SpanId, TraceId};

use crate::config::seconds_to_nanos;

/// The bucket bounds an aggregator was configured with, in seconds and in nanoseconds.
#[derive(Clone, Debug)]
pub(crate) struct Buckets {
    bounds_seconds: Box<[f64]>,
    bounds_nanos: Box<[u64]>,
}

impl Buckets {
    /// Bounds already validated: finite, positive, strictly increasing in nanoseconds.
    pub(crate) fn new(bounds_seconds: &[f64]) -> Buckets {
        Buckets {
            bounds_seconds: bounds_seconds.into(),
            bounds_nanos: bounds_seconds.iter().map(|b| seconds_to_nanos(*b)).collect(),
        }
    }

    /// The finite bounds in seconds (`+Inf` implied after the last).
    pub(crate) fn bounds_seconds(&self) -> &[f64] {
        &self.bounds_seconds
    }

    /// Buckets including `+Inf`.
    pub(crate) fn len(&self) -> usize {
        self.bounds_nanos.len() + 1
    }

    /// The bucket a duration falls in: the first whose bound is at or above it, else `+Inf`.
    pub(crate) fn index(&self, duration_nanos: u64) -> usize {
        self.bounds_nanos.partition_point(|bound| *bound < duration_nanos)
    }

    pub(crate) fn empty_histogram(&self) -> Histogram {
        Histogram::new(self.len())
    }
}

/// A span that exemplifies a bucket: a click from a metric point to a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exemplar {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// The span's duration: the value the exemplar stands for.
    pub duration_nanos: u64,
    /// The span's end time.
    pub timestamp_unix_nanos: u64,
}

impl Exemplar {
    /// The exemplar's value in seconds, the unit of the histograms.
    pub fn value_seconds(&self) -> f64 {
        self.duration_nanos as f64 / crate::NANOS_PER_SECOND as f64
    }
}

/// Counts of durations per bucket, their sum, and the latest exemplar of each bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bucket_counts: Box<[u64]>,
    count: u64,
    sum_nanos: u128,
    /// `(bucket index, exemplar)`, sorted by bucket index, at most one per bucket.
    exemplars: Vec<(u16, Exemplar)>,
}

impl Histogram {
    pub(crate) fn new(num_buckets: usize) -> Histogram {
        Histogram { bucket_counts: vec![0; num_buckets].into(), count: 0, sum_nanos: 0, exemplars: Vec::new() }
    }

    /// A histogram read back from storage: per-bucket counts, their exact sum, and the
    /// exemplars sorted by bucket (the codec checks both).
    pub(crate) fn from_parts(bucket_counts: Box<[u64]>, sum_nanos: u128, exemplars: Vec<(u16, Exemplar)>) -> Histogram {
        let count = bucket_counts.iter().sum();
        Histogram { bucket_counts, count, sum_nanos, exemplars }
    }

    /// Counts one duration in `bucket` (from [`Buckets::index`]).
    pub(crate) fn record(&mut self, bucket: usize, duration_nanos: u64, exemplar_opt: Option<Exemplar>) {
        self.bucket_counts[bucket] += 1;
        self.count += 1;
        self.sum_nanos += u128::from(duration_nanos);
        if let Some(exemplar) = exemplar_opt {
            self.offer_exemplar(bucket, exemplar);
        }
    }

    /// Adds another histogram with the same buckets into this one.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        debug_assert_eq!(self.bucket_counts.len(), other.bucket_counts.len());
        for (mine, theirs) in self.bucket_counts.iter_mut().zip(other.bucket_counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_nanos += other.sum_nanos;
        for (bucket, exemplar) in &other.exemplars {
            self.offer_exemplar(usize::from(*bucket), *exemplar);
        }
    }

    fn offer_exemplar(&mut self, bucket: usize, exemplar: Exemplar) {
        let bucket = u16::try_from(bucket).expect("bucket counts are bounded by the config");
        match self.exemplars.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => {
                if exemplar.timestamp_unix_nanos >= self.exemplars[i].1.timestamp_unix_nanos {
                    self.exemplars[i].1 = exemplar;
                }
            }
            Err(i) => self.exemplars.insert(i, (bucket, exemplar)),
        }
    }

    /// Observations in all buckets.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Observations per bucket (not cumulative); the last is the `+Inf` bucket.
    pub fn bucket_counts(&self) -> &[u64] {
        &self.bucket_counts
    }

    /// The sum of the observed durations, exact.
    pub fn sum_nanos(&self) -> u128 {
        self.sum_nanos
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / crate::NANOS_PER_SECOND as f64
    }

    /// The exemplar of a bucket, if a span with an exemplar fell in it.
    pub fn exemplar(&self, bucket: usize) -> Option<&Exemplar> {
        let bucket = u16::try_from(bucket).ok()?;
        self.exemplars.binary_search_by_key(&bucket, |(b, _)| *b).ok().map(|i| &self.exemplars[i].1)
    }

    /// Every exemplar with its bucket index, in bucket order.
    pub fn exemplars(&self) -> impl Iterator<Item = (usize, &Exemplar)> {
        self.exemplars.iter().map(|(bucket, exemplar)| (usize::from(*bucket), exemplar))
    }

    /// The `q`-quantile in seconds, estimated as Prometheus' `histogram_quantile` does:
    /// find the bucket holding the rank `q × count` and interpolate linearly within it
    /// (from 0 for the first bucket); a rank in the `+Inf` bucket gives the largest finite
    /// bound. `None` when the histogram is empty or `q` is outside `[0, 1]`.
    /// `bounds_seconds` are the finite bounds the histogram was built with.
    pub fn quantile(&self, q: f64, bounds_seconds: &[f64]) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) || bounds_seconds.is_empty() {
            return None;
        }
        debug_assert_eq!(bounds_seconds.len() + 1, self.bucket_counts.len());
        let rank = q * self.count as f64;
        let mut below = 0u64;
        for (i, count) in self.bucket_counts.iter().enumerate() {
            let cumulative = below + count;
            if i == bounds_seconds.len() {
                // The rank is in the +Inf bucket: nothing better than the largest finite bound.
                return Some(bounds_seconds[i - 1]);
            }
            if cumulative as f64 >= rank {
                let start = if i == 0 { 0.0 } else { bounds_seconds[i - 1] };
                let end = bounds_seconds[i];
                if *count == 0 {
                    // Only reachable for rank 0 with empty leading buckets (q = 0).
                    return Some(start);
                }
                return Some(start + (end - start) * ((rank - below as f64) / *count as f64));
            }
            below = cumulative;
        }
        unreachable!("the +Inf bucket returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_LATENCY_BUCKETS_SECONDS;

    const MS: u64 = 1_000_000;

    fn exemplar(span: u8, duration_nanos: u64, timestamp_unix_nanos: u64) -> Exemplar {
        Exemplar { trace_id: TraceId([span; 16]), span_id: SpanId([span; 8]), duration_nanos, timestamp_unix_nanos }
    }

    #[test]
    fn durations_fall_in_the_first_bucket_at_or_above_them() {
        let buckets = Buckets::new(&DEFAULT_LATENCY_BUCKETS_SECONDS);
        assert_eq!(buckets.len(), 15);
        assert_eq!(buckets.index(0), 0);
        assert_eq!(buckets.index(2 * MS), 0, "a bound is inclusive");
        assert_eq!(buckets.index(2 * MS + 1), 1);
        assert_eq!(buckets.index(100 * MS), 6); // (0.064, 0.128]
        assert_eq!(buckets.index(16_384 * MS), 13);
        assert_eq!(buckets.index(16_384 * MS + 1), 14, "beyond the last bound is +Inf");
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket_like_histogram_quantile() {
        let bounds = [0.1, 0.2, 0.4];
        let buckets = Buckets::new(&bounds);
        let mut histogram = buckets.empty_histogram();
        // 2 in (0, 0.1], 6 in (0.1, 0.2], 2 in (0.2, 0.4].
        for duration_nanos in [50 * MS, 60 * MS, 150 * MS, 150 * MS, 150 * MS, 150 * MS, 150 * MS, 150 * MS] {
            histogram.record(buckets.index(duration_nanos), duration_nanos, None);
        }
        histogram.record(buckets.index(300 * MS), 300 * MS, None);
        histogram.record(buckets.index(300 * MS), 300 * MS, None);
        assert_eq!(histogram.bucket_counts(), &[2, 6, 2, 0]);
        assert_eq!(histogram.count(), 10);
        assert_eq!(histogram.sum_nanos(), u128::from((50 + 60 + 6 * 150 + 2 * 300) * MS));

        let q = |q: f64| histogram.quantile(q, &bounds).unwrap();
        // rank 5 is the 3rd of 6 in (0.1, 0.2]: 0.1 + 0.1 × 3/6.
        assert!((q(0.5) - 0.15).abs() < 1e-12, "{}", q(0.5));
        // rank 1 is the 1st of 2 in (0, 0.1]: 0 + 0.1 × 1/2.
        assert!((q(0.1) - 0.05).abs() < 1e-12, "{}", q(0.1));
        // rank 9 is the 1st of 2 in (0.2, 0.4]: 0.2 + 0.2 × 1/2.
        assert!((q(0.9) - 0.3).abs() < 1e-12, "{}", q(0.9));
        assert!((q(1.0) - 0.4).abs() < 1e-12, "{}", q(1.0));
        assert_eq!(q(0.0), 0.0);
        assert_eq!(histogram.quantile(1.5, &bounds), None);
        assert_eq!(histogram.quantile(f64::NAN, &bounds), None);
        assert_eq!(buckets.empty_histogram().quantile(0.5, &bounds), None);
    }

    #[test]
    fn a_rank_in_the_inf_bucket_gives_the_largest_finite_bound() {
        let bounds = [0.1, 0.2];
        let buckets = Buckets::new(&bounds);
        let mut histogram = buckets.empty_histogram();
        histogram.record(buckets.index(50 * MS), 50 * MS, None);
        for _ in 0..3 {
            histogram.record(buckets.index(5_000 * MS), 5_000 * MS, None);
        }
        assert_eq!(histogram.bucket_counts(), &[1, 0, 3]);
        assert_eq!(histogram.quantile(0.99, &bounds), Some(0.2));
        assert_eq!(histogram.quantile(0.25, &bounds), Some(0.1));
    }

    #[test]
    fn each_bucket_keeps_its_latest_exemplar_also_across_merges() {
        let buckets = Buckets::new(&[0.1, 0.2]);
        let mut histogram = buckets.empty_histogram();
        histogram.record(buckets.index(150 * MS), 150 * MS, Some(exemplar(1, 150 * MS, 1_000)));
        histogram.record(buckets.index(160 * MS), 160 * MS, Some(exemplar(2, 160 * MS, 3_000)));
        histogram.record(buckets.index(170 * MS), 170 * MS, Some(exemplar(3, 170 * MS, 2_000)));
        histogram.record(buckets.index(10 * MS), 10 * MS, Some(exemplar(4, 10 * MS, 500)));
        assert_eq!(histogram.exemplar(1), Some(&exemplar(2, 160 * MS, 3_000)), "an older span does not replace it");
        assert_eq!(histogram.exemplar(0), Some(&exemplar(4, 10 * MS, 500)));
        assert_eq!(histogram.exemplar(2), None);
        assert_eq!(
            histogram.exemplars().map(|(b, e)| (b, e.span_id)).collect::<Vec<_>>(),
            [(0, SpanId([4; 8])), (1, SpanId([2; 8]))]
        );

        let mut newer = buckets.empty_histogram();
        newer.record(buckets.index(5_000 * MS), 5_000 * MS, Some(exemplar(5, 5_000 * MS, 9_000)));
        newer.record(buckets.index(199 * MS), 199 * MS, Some(exemplar(6, 199 * MS, 8_000)));
        histogram.merge(&newer);
        assert_eq!(histogram.bucket_counts(), &[1, 4, 1]);
        assert_eq!(histogram.count(), 6);
        assert_eq!(histogram.exemplar(1).unwrap().span_id, SpanId([6; 8]));
        assert_eq!(histogram.exemplar(2).unwrap().value_seconds(), 5.0);
    }
}
