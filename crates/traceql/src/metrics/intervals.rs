//! Which step of a metrics query a span falls in, by its start time, as Tempo buckets spans.
//!
//! A range query's steps are aligned to the step: `start` is rounded down and `end` up to a
//! multiple of `step`, and step `i` holds the spans that start in
//! `(start + i * step, start + (i + 1) * step]`, reported at its end, `start + (i + 1) * step`
//! (right-closed, as Prometheus' samples sum up what came before them). An instant query has
//! one step, `[start, end]` as given, reported at `end`.

use super::{MAX_INTERVALS, MetricsError, MetricsRequest};

const NANOS_PER_SECOND: f64 = 1e9;

/// The steps of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Intervals {
    /// Aligned start (range) or start as given (instant), unix nanoseconds.
    start: u64,
    /// Aligned end (range) or end as given (instant), unix nanoseconds.
    end: u64,
    /// The step, `end - start` for an instant query.
    step: u64,
    count: usize,
    instant: bool,
}

impl Intervals {
    pub(crate) fn new(request: &MetricsRequest) -> Result<Intervals, MetricsError> {
        let (start, end) = (request.start_unix_nanos, request.end_unix_nanos);
        if end <= start {
            return Err(MetricsError::Request(format!("end ({end}) must be after start ({start})")));
        }
        if request.instant {
            return Ok(Intervals { start, end, step: end - start, count: 1, instant: true });
        }
        let step = request.step_nanos;
        if step == 0 {
            return Err(MetricsError::Request("step must be positive".to_owned()));
        }
        let aligned_start = start - start % step;
        let aligned_end = end.div_ceil(step).saturating_mul(step);
        let count = (aligned_end - aligned_start) / step;
        if count > MAX_INTERVALS as u64 {
            return Err(MetricsError::Request(format!(
                "the range holds {count} steps of {step} ns, more than {MAX_INTERVALS}: give a larger step"
            )));
        }
        Ok(Intervals { start: aligned_start, end: aligned_end, step, count: count as usize, instant: false })
    }

    /// The number of steps.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The step holding a span that starts at `unix_nanos`, if any.
    pub(crate) fn of(&self, unix_nanos: u64) -> Option<usize> {
        if self.instant {
            return (self.start..=self.end).contains(&unix_nanos).then_some(0);
        }
        if unix_nanos <= self.start || unix_nanos > self.end {
            return None;
        }
        Some(((unix_nanos - self.start - 1) / self.step) as usize)
    }

    /// The time step `i` is reported at, in unix milliseconds.
    pub(crate) fn timestamp_ms(&self, i: usize) -> u64 {
        let nanos = if self.instant { self.end } else { self.start + (i as u64 + 1) * self.step };
        nanos / 1_000_000
    }

    /// The length of one step in seconds, what `rate()` divides by.
    pub(crate) fn step_seconds(&self) -> f64 {
        self.step as f64 / NANOS_PER_SECOND
    }

    /// The unix-nanosecond range whose spans the steps hold: what to read from storage.
    pub(crate) fn span_range(&self) -> (u64, u64) {
        (self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn range(start: u64, end: u64, step: u64) -> Intervals {
        let request = MetricsRequest {
            start_unix_nanos: start,
            end_unix_nanos: end,
            step_nanos: step,
            instant: false,
            max_exemplars: 0,
        };
        Intervals::new(&request).unwrap()
    }

    #[test]
    fn steps_are_aligned_and_right_closed() {
        // 1000.5 s to 1030.2 s by 10 s: (1000, 1010], (1010, 1020], (1020, 1030], (1030, 1040].
        let steps = range(1000 * S + S / 2, 1030 * S + S / 5, 10 * S);
        assert_eq!(steps.len(), 4);
        assert_eq!(steps.span_range(), (1000 * S, 1040 * S));
        assert_eq!(steps.of(1000 * S), None, "the aligned start belongs to the step before");
        assert_eq!(steps.of(1000 * S + 1), Some(0));
        assert_eq!(steps.of(1010 * S), Some(0), "a step's end is its own");
        assert_eq!(steps.of(1010 * S + 1), Some(1));
        assert_eq!(steps.of(1040 * S), Some(3));
        assert_eq!(steps.of(1040 * S + 1), None);
        assert_eq!(steps.timestamp_ms(0), 1_010_000);
        assert_eq!(steps.timestamp_ms(3), 1_040_000);
        assert_eq!(steps.step_seconds(), 10.0);
    }

    #[test]
    fn an_instant_query_has_one_closed_step() {
        let request = MetricsRequest {
            start_unix_nanos: 5 * S,
            end_unix_nanos: 65 * S,
            step_nanos: 0,
            instant: true,
            max_exemplars: 0,
        };
        let steps = Intervals::new(&request).unwrap();
        assert_eq!((steps.len(), steps.of(5 * S), steps.of(65 * S), steps.of(65 * S + 1)), (1, Some(0), Some(0), None));
        assert_eq!((steps.timestamp_ms(0), steps.step_seconds()), (65_000, 60.0));
    }

    #[test]
    fn bad_ranges_are_refused() {
        let request = |start, end, step| MetricsRequest {
            start_unix_nanos: start,
            end_unix_nanos: end,
            step_nanos: step,
            instant: false,
            max_exemplars: 0,
        };
        assert!(Intervals::new(&request(10, 10, 1)).is_err());
        assert!(Intervals::new(&request(0, 10, 0)).is_err());
        assert!(Intervals::new(&request(0, 1_000_000, 1)).unwrap_err().to_string().contains("larger step"));
    }
}
