//! Configuration of the span metrics and service graph aggregators.
//!
//! Both structs are plain serde types with every field defaulted (`#[serde(default)]`), so
//! a configuration file may name only what it changes; unknown keys are refused. The
//! defaults are the named `DEFAULT_*` constants. [`SpanMetricsConfig::validate`] and
//! [`ServiceGraphConfig::validate`] check what serde cannot (bounds, ordering, label names);
//! the aggregators' constructors call them, so an aggregator never runs with an invalid one.

use serde::{Deserialize, Serialize};

use crate::MetricsError;

/// Length of one aggregation interval.
pub const DEFAULT_INTERVAL_SECONDS: u64 = 15;
/// Intervals kept in memory: 40 × 15 s = the last 10 minutes.
pub const DEFAULT_MAX_INTERVALS: usize = 40;
/// Distinct span metrics series before new ones go to the overflow series.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Distinct service graph edges before new ones go to the overflow edge.
pub const DEFAULT_MAX_EDGES: usize = 10_000;
/// Unpaired client/server (producer/consumer) halves waiting for their other half.
pub const DEFAULT_MAX_PENDING_SPANS: usize = 10_000;
/// How long an unpaired half waits for its other half.
pub const DEFAULT_WAIT_SECONDS: u64 = 10;
/// The virtual client node of root server and consumer spans (Tempo's name for it).
pub const DEFAULT_ROOT_CLIENT_NODE: &str = "user";
/// Upper bounds of the latency histogram buckets in seconds, `+Inf` implied: Tempo's
/// span-metrics defaults (powers of two from 2 ms to 16.384 s).
pub const DEFAULT_LATENCY_BUCKETS_SECONDS: [f64; 14] =
    [0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

/// Histogram bounds beyond this are refused: more buckets cost memory in every series and
/// interval and say little more.
const MAX_BUCKETS: usize = 64;

/// Label names of span metrics series that dimensions may not take.
pub(crate) const RESERVED_LABEL_NAMES: [&str; 6] =
    ["service", "span_name", "span_kind", "status_code", "le", "metric_overflow"];

/// Span metrics: RED metrics per (service, span name, kind, status, dimensions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanMetricsConfig {
    /// Length of one aggregation interval; intervals start at multiples of it (unix time).
    pub interval_seconds: u64,
    /// Intervals kept; creating one more drops the oldest.
    pub max_intervals: usize,
    /// Series kept; spans of further series are counted in one overflow series.
    pub max_series: usize,
    /// Upper bounds of the latency buckets in seconds, strictly increasing; `+Inf` is implied.
    pub latency_buckets_seconds: Vec<f64>,
    /// Attribute keys that become extra labels (e.g. `http.route`), looked up on the span,
    /// then on its resource; a missing attribute gives an empty value. The label name is
    /// the key with every character outside `[a-zA-Z0-9_]` replaced by `_`.
    pub dimensions: Vec<String>,
}

impl Default for SpanMetricsConfig {
    fn default() -> Self {
        SpanMetricsConfig {
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            max_intervals: DEFAULT_MAX_INTERVALS,
            max_series: DEFAULT_MAX_SERIES,
            latency_buckets_seconds: DEFAULT_LATENCY_BUCKETS_SECONDS.to_vec(),
            dimensions: Vec::new(),
        }
    }
}

impl SpanMetricsConfig {
    /// Checks bounds and buckets, and that dimensions give distinct label names that do not
    /// collide with the intrinsic ones (`service`, `span_name`, …) or start with `__`
    /// (reserved by Prometheus).
    pub fn validate(&self) -> Result<(), MetricsError> {
        check_positive("interval_seconds", self.interval_seconds)?;
        check_positive("max_intervals", self.max_intervals as u64)?;
        check_positive("max_series", self.max_series as u64)?;
        check_buckets(&self.latency_buckets_seconds)?;
        let mut names: Vec<String> = Vec::with_capacity(self.dimensions.len());
        for key in &self.dimensions {
            let name = dimension_label_name(key);
            let problem = if key.is_empty() {
                Some("empty attribute key".to_string())
            } else if RESERVED_LABEL_NAMES.contains(&name.as_str()) {
                Some(format!("{key:?} would be the label {name:?}, which is intrinsic"))
            } else if name.starts_with("__") {
                Some(format!("{key:?} would be the label {name:?}; names starting with __ are reserved"))
            } else if names.contains(&name) {
                Some(format!("{key:?} would be the label {name:?}, which another dimension already gives"))
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(MetricsError::InvalidConfig { key: "dimensions", message });
            }
            names.push(name);
        }
        Ok(())
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        whole_seconds_nanos(self.interval_seconds)
    }

    /// The time the kept intervals cover: `interval_seconds × max_intervals`.
    pub fn window_nanos(&self) -> u64 {
        window_nanos(self.interval_seconds, self.max_intervals)
    }
}

/// Service graph: edges between services from paired client/server and producer/consumer
/// spans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceGraphConfig {
    /// Length of one aggregation interval; intervals start at multiples of it (unix time).
    pub interval_seconds: u64,
    /// Intervals kept; creating one more drops the oldest.
    pub max_intervals: usize,
    /// Edges kept; calls of further edges are counted in one overflow edge.
    pub max_edges: usize,
    /// Upper bounds of the client and server latency buckets in seconds; `+Inf` is implied.
    pub latency_buckets_seconds: Vec<f64>,
    /// Unpaired halves kept while they wait; beyond it the one closest to its deadline is
    /// expired early (and counted as evicted).
    pub max_pending_spans: usize,
    /// How long an unpaired half waits for its other half, on the clock the caller passes.
    pub wait_seconds: u64,
    /// The client node of server and consumer spans that have no parent and no link (the
    /// request came from outside the traced system); empty to leave them out of the graph.
    pub root_client_node: String,
}

impl Default for ServiceGraphConfig {
    fn default() -> Self {
        ServiceGraphConfig {
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            max_intervals: DEFAULT_MAX_INTERVALS,
            max_edges: DEFAULT_MAX_EDGES,
            latency_buckets_seconds: DEFAULT_LATENCY_BUCKETS_SECONDS.to_vec(),
            max_pending_spans: DEFAULT_MAX_PENDING_SPANS,
            wait_seconds: DEFAULT_WAIT_SECONDS,
            root_client_node: DEFAULT_ROOT_CLIENT_NODE.to_string(),
        }
    }
}

impl ServiceGraphConfig {
    pub fn validate(&self) -> Result<(), MetricsError> {
        check_positive("interval_seconds", self.interval_seconds)?;
        check_positive("max_intervals", self.max_intervals as u64)?;
        check_positive("max_edges", self.max_edges as u64)?;
        check_positive("max_pending_spans", self.max_pending_spans as u64)?;
        check_buckets(&self.latency_buckets_seconds)
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        whole_seconds_nanos(self.interval_seconds)
    }

    /// The time the kept intervals cover: `interval_seconds × max_intervals`.
    pub fn window_nanos(&self) -> u64 {
        window_nanos(self.interval_seconds, self.max_intervals)
    }

    pub(crate) fn wait_nanos(&self) -> u64 {
        whole_seconds_nanos(self.wait_seconds)
    }
}

/// The Prometheus label name of a dimension: every character outside `[a-zA-Z0-9_]`
/// becomes `_`, and a leading digit gets a `_` prefix.
pub(crate) fn dimension_label_name(key: &str) -> String {
    let mut name: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

pub(crate) fn whole_seconds_nanos(seconds: u64) -> u64 {
    seconds.saturating_mul(crate::NANOS_PER_SECOND)
}

/// The time `max_intervals` intervals of `interval_seconds` cover.
pub(crate) fn window_nanos(interval_seconds: u64, max_intervals: usize) -> u64 {
    whole_seconds_nanos(interval_seconds).saturating_mul(max_intervals as u64)
}

pub(crate) fn check_positive(key: &'static str, value: u64) -> Result<(), MetricsError> {
    if value == 0 {
        return Err(MetricsError::InvalidConfig { key, message: "must be at least 1".to_string() });
    }
    Ok(())
}

fn check_buckets(bounds_seconds: &[f64]) -> Result<(), MetricsError> {
    check_buckets_of("latency_buckets_seconds", bounds_seconds)
}

/// Checks histogram bounds given under `key`.
pub(crate) fn check_buckets_of(key: &'static str, bounds_seconds: &[f64]) -> Result<(), MetricsError> {
    let invalid = |message: String| MetricsError::InvalidConfig { key, message };
    if bounds_seconds.is_empty() || bounds_seconds.len() > MAX_BUCKETS {
        return Err(invalid(format!("needs 1 to {MAX_BUCKETS} bounds, got {}", bounds_seconds.len())));
    }
    for (i, bound) in bounds_seconds.iter().enumerate() {
        if !bound.is_finite() || *bound <= 0.0 {
            return Err(invalid(format!("bound {bound} is not a positive finite number (+Inf is implied)")));
        }
        if i > 0 && *bound <= bounds_seconds[i - 1] {
            return Err(invalid(format!("bounds must increase strictly: {} then {bound}", bounds_seconds[i - 1])));
        }
        // Buckets are decided on integer nanoseconds, so two bounds must differ there too.
        if i > 0 && seconds_to_nanos(*bound) <= seconds_to_nanos(bounds_seconds[i - 1]) {
            return Err(invalid(format!(
                "bounds {} and {bound} are the same to the nanosecond",
                bounds_seconds[i - 1]
            )));
        }
    }
    Ok(())
}

/// A bound in seconds as whole nanoseconds (rounded; bounds above ~584 years saturate).
pub(crate) fn seconds_to_nanos(seconds: f64) -> u64 {
    (seconds * crate::NANOS_PER_SECOND as f64).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_toml_keeps_the_other_defaults() {
        let config: SpanMetricsConfig = toml::from_str("interval_seconds = 60\ndimensions = [\"http.route\"]").unwrap();
        assert_eq!(config.interval_seconds, 60);
        assert_eq!(config.dimensions, vec!["http.route".to_string()]);
        assert_eq!(config.max_series, DEFAULT_MAX_SERIES);
        assert_eq!(config.latency_buckets_seconds, DEFAULT_LATENCY_BUCKETS_SECONDS.to_vec());

        let graph: ServiceGraphConfig = toml::from_str("wait_seconds = 3").unwrap();
        assert_eq!(graph.wait_seconds, 3);
        assert_eq!(graph.root_client_node, "user");
        assert_eq!(graph.max_pending_spans, DEFAULT_MAX_PENDING_SPANS);

        assert!(toml::from_str::<SpanMetricsConfig>("interval = 60").is_err(), "unknown keys are refused");
    }

    #[test]
    fn dimension_names_are_sanitized() {
        assert_eq!(dimension_label_name("http.route"), "http_route");
        assert_eq!(dimension_label_name("db.system.name"), "db_system_name");
        assert_eq!(dimension_label_name("9lives"), "_9lives");
        assert_eq!(dimension_label_name("région"), "r_gion");
    }

    #[test]
    fn invalid_configs_name_their_key() {
        let key_of = |config: SpanMetricsConfig| match config.validate() {
            Err(MetricsError::InvalidConfig { key, .. }) => key,
            other => panic!("expected an invalid config, got {other:?}"),
        };
        assert_eq!(key_of(SpanMetricsConfig { interval_seconds: 0, ..Default::default() }), "interval_seconds");
        assert_eq!(key_of(SpanMetricsConfig { max_series: 0, ..Default::default() }), "max_series");
        let buckets = |bounds: Vec<f64>| SpanMetricsConfig { latency_buckets_seconds: bounds, ..Default::default() };
        assert_eq!(key_of(buckets(vec![])), "latency_buckets_seconds");
        assert_eq!(key_of(buckets(vec![0.1, 0.1])), "latency_buckets_seconds");
        assert_eq!(key_of(buckets(vec![0.2, 0.1])), "latency_buckets_seconds");
        assert_eq!(key_of(buckets(vec![0.1, f64::INFINITY])), "latency_buckets_seconds");
        assert_eq!(key_of(buckets(vec![1.0, 1.0 + 1e-12])), "latency_buckets_seconds");
        let dims = |keys: &[&str]| SpanMetricsConfig {
            dimensions: keys.iter().map(|k| k.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(key_of(dims(&["service"])), "dimensions");
        assert_eq!(key_of(dims(&["span.name"])), "dimensions");
        assert_eq!(key_of(dims(&["__meta"])), "dimensions");
        assert_eq!(key_of(dims(&["http.route", "http_route"])), "dimensions");
        assert!(dims(&["http.route", "cloud.region"]).validate().is_ok());
        assert!(ServiceGraphConfig { max_pending_spans: 0, ..Default::default() }.validate().is_err());
        assert!(ServiceGraphConfig::default().validate().is_ok());
    }
}
