//! Configuration: defaults < `sextant.toml` < `SEXTANT_*` environment < command-line flags.
//!
//! [`RawConfig`] is what the file holds (plain serde types, every field defaulted);
//! [`Config`] is the resolved form the server runs with (socket addresses, durations,
//! engine and codec options). Every error names the key and the problem on one line.
//!
//! Environment variables name a key by its path in capitals joined by `_`:
//! `data_dir` → `SEXTANT_DATA_DIR`, `[storage] retention` → `SEXTANT_STORAGE_RETENTION`,
//! `[metrics.span_metrics] dimensions` → `SEXTANT_METRICS_SPAN_METRICS_DIMENSIONS` (a list is
//! given comma-separated).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant_codec::Limits;
use sextant_metrics::{ConsistencyConfig, MetricsError, ServiceGraphConfig, SpanMetricsConfig};
use sextant_storage::engine::EngineOptions;

use crate::alerting::rule::Rule;

/// The prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "SEXTANT_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), message: message.into() }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Where the WAL and blocks live.
    pub data_dir: PathBuf,
    /// `error`, `warn`, `info`, `debug`, `trace`, or a `tracing` filter directive.
    pub log_level: String,
    pub receivers: RawReceivers,
    pub query: RawQuery,
    pub limits: RawLimits,
    pub storage: RawStorage,
    pub metrics: RawMetrics,
    pub alerting: RawAlerting,
    pub processes: RawProcesses,
}

/// Business processes (`crates/server/src/processes/`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawProcesses {
    /// Span or resource attribute keys that hold a business process ID, tried in order
    /// (baggage entries recorded as span attributes count under their own key).
    pub keys: Vec<String>,
}

impl Default for RawProcesses {
    fn default() -> Self {
        RawProcesses { keys: crate::processes::default_process_keys() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawReceivers {
    pub otlp_grpc_address: String,
    pub otlp_http_address: String,
    pub zipkin_address: String,
    /// Largest accepted request, after decompression.
    pub max_request_bytes: u64,
    /// Request bytes being decoded and written at once; beyond it requests are refused with
    /// `RESOURCE_EXHAUSTED` / 429 so memory stays bounded.
    pub max_inflight_bytes: u64,
    /// Origins allowed to send from a browser (`*` for any).
    pub cors_allowed_origins: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawQuery {
    pub address: String,
    /// Tempo's HTTP API (Grafana's Tempo data source), on a port of its own as Tempo's.
    pub tempo_address: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    pub max_attributes_per_span: u64,
    pub max_attribute_value_bytes: u64,
    pub max_events_per_span: u64,
    pub max_links_per_span: u64,
    /// Spans starting or ending further than this in the future are rejected.
    pub max_clock_skew: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawStorage {
    pub wal_segment_bytes: u64,
    /// Turning this off loses acknowledged spans on a machine crash; for benchmarks only.
    pub wal_fsync: bool,
    pub head_max_spans: u64,
    pub head_max_bytes: u64,
    pub head_max_age: String,
    /// Spans per block: flushes write blocks up to this size and compaction merges smaller
    /// ones up to it.
    pub block_max_spans: u64,
    pub retention: String,
    /// 0 means no limit.
    pub max_total_bytes: u64,
    pub compaction_interval: String,
}

/// Metrics derived from the accepted spans: span metrics (RED per service, span name, kind,
/// status and configured dimensions) and the service graph. The two sub-tables are the
/// aggregators' own settings (`sextant_metrics::SpanMetricsConfig`, `ServiceGraphConfig`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    pub enabled: bool,
    /// Accepted spans waiting to be aggregated; when a batch finds no room it is not
    /// aggregated (ingest never waits) and is counted in `sextant_metrics_dropped_*_total`.
    pub max_queued_spans: u64,
    pub span_metrics: SpanMetricsConfig,
    pub service_graph: ServiceGraphConfig,
    /// Stale reads, replication lag, conflicts and consistency-level usage
    /// (`sextant_metrics::ConsistencyConfig`).
    pub consistency: ConsistencyConfig,
}

pub const DEFAULT_METRICS_MAX_QUEUED_SPANS: u64 = 200_000;

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            enabled: true,
            max_queued_spans: DEFAULT_METRICS_MAX_QUEUED_SPANS,
            span_metrics: SpanMetricsConfig::default(),
            service_graph: ServiceGraphConfig::default(),
            consistency: ConsistencyConfig::default(),
        }
    }
}

/// The resolved `[metrics]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsOptions {
    pub max_queued_spans: usize,
    pub span_metrics: SpanMetricsConfig,
    pub service_graph: ServiceGraphConfig,
    /// `None` when `metrics.consistency.enabled` is false.
    pub consistency_opt: Option<ConsistencyConfig>,
}

/// Alerting on span metrics: rules evaluated every `evaluation_interval`, notifications
/// POSTed to `webhooks` in Alertmanager's webhook format. Rules written here are read-only
/// through the API (see `crate::alerting`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawAlerting {
    pub enabled: bool,
    pub evaluation_interval: String,
    /// `http://` URLs receiving Alertmanager webhook notifications.
    pub webhooks: Vec<String>,
    pub rules: Vec<Rule>,
}

pub const DEFAULT_ALERTING_EVALUATION_INTERVAL: &str = "15s";

impl Default for RawAlerting {
    fn default() -> Self {
        RawAlerting {
            enabled: true,
            evaluation_interval: DEFAULT_ALERTING_EVALUATION_INTERVAL.to_string(),
            webhooks: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// The resolved `[alerting]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertingOptions {
    pub evaluation_interval: Duration,
    pub webhooks: Vec<String>,
    pub rules: Vec<Rule>,
}

pub const DEFAULT_OTLP_GRPC_ADDRESS: &str = "127.0.0.1:4317";
pub const DEFAULT_OTLP_HTTP_ADDRESS: &str = "127.0.0.1:4318";
pub const DEFAULT_ZIPKIN_ADDRESS: &str = "127.0.0.1:9411";
pub const DEFAULT_QUERY_ADDRESS: &str = "127.0.0.1:16686";
pub const DEFAULT_TEMPO_ADDRESS: &str = "127.0.0.1:3200";
/// The environment variables of every listening address, in the order gRPC, HTTP, Zipkin,
/// query, Tempo: what tests and benchmarks set to run servers side by side.
pub const ADDRESS_VARIABLES: [&str; 5] = [
    "SEXTANT_RECEIVERS_OTLP_GRPC_ADDRESS",
    "SEXTANT_RECEIVERS_OTLP_HTTP_ADDRESS",
    "SEXTANT_RECEIVERS_ZIPKIN_ADDRESS",
    "SEXTANT_QUERY_ADDRESS",
    "SEXTANT_QUERY_TEMPO_ADDRESS",
];
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 8 * 1024 * 1024;
pub const DEFAULT_MAX_INFLIGHT_BYTES: u64 = 256 * 1024 * 1024;

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            data_dir: PathBuf::from("./sextant-data"),
            log_level: "info".to_string(),
            receivers: RawReceivers::default(),
            query: RawQuery::default(),
            limits: RawLimits::default(),
            storage: RawStorage::default(),
            metrics: RawMetrics::default(),
            alerting: RawAlerting::default(),
            processes: RawProcesses::default(),
        }
    }
}

impl Default for RawReceivers {
    fn default() -> Self {
        RawReceivers {
            otlp_grpc_address: DEFAULT_OTLP_GRPC_ADDRESS.to_string(),
            otlp_http_address: DEFAULT_OTLP_HTTP_ADDRESS.to_string(),
            zipkin_address: DEFAULT_ZIPKIN_ADDRESS.to_string(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            cors_allowed_origins: vec!["*".to_string()],
        }
    }
}

impl Default for RawQuery {
    fn default() -> Self {
        RawQuery { address: DEFAULT_QUERY_ADDRESS.to_string(), tempo_address: DEFAULT_TEMPO_ADDRESS.to_string() }
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        let limits = Limits::default();
        RawLimits {
            max_attributes_per_span: limits.max_attributes_per_span as u64,
            max_attribute_value_bytes: limits.max_attribute_value_bytes as u64,
            max_events_per_span: limits.max_events_per_span as u64,
            max_links_per_span: limits.max_links_per_span as u64,
            max_clock_skew: humantime::format_duration(Duration::from_nanos(limits.max_clock_skew_nanos)).to_string(),
        }
    }
}

impl Default for RawStorage {
    fn default() -> Self {
        let engine = EngineOptions::new(".");
        RawStorage {
            wal_segment_bytes: engine.wal.segment_size_bytes,
            wal_fsync: engine.wal.fsync,
            head_max_spans: engine.head_max_spans as u64,
            head_max_bytes: engine.head_max_bytes as u64,
            head_max_age: humantime::format_duration(engine.head_max_age).to_string(),
            block_max_spans: engine.block_max_spans as u64,
            retention: humantime::format_duration(engine.retention).to_string(),
            max_total_bytes: 0,
            compaction_interval: humantime::format_duration(engine.compaction_interval).to_string(),
        }
    }
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub log_level: String,
    pub otlp_grpc_address: SocketAddr,
    pub otlp_http_address: SocketAddr,
    pub zipkin_address: SocketAddr,
    pub query_address: SocketAddr,
    pub tempo_address: SocketAddr,
    pub max_request_bytes: usize,
    pub max_inflight_bytes: usize,
    pub cors_allowed_origins: Vec<String>,
    pub limits: Limits,
    pub engine: EngineOptions,
    /// `None` when `metrics.enabled` is false.
    pub metrics_opt: Option<MetricsOptions>,
    /// `None` when `alerting.enabled` is false.
    pub alerting_opt: Option<AlertingOptions>,
    /// `processes.keys`: at least one, none empty.
    pub process_keys: Vec<String>,
}

/// Command-line values that override everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
}

impl RawConfig {
    /// Reads the file (if any), applies `env` and `overrides`.
    pub fn load(
        path_opt: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<RawConfig, ConfigError> {
        let mut table = match path_opt {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read { path: path.to_path_buf(), message: e.to_string() })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string().lines().next().unwrap_or_default().to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let mut raw: RawConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            invalid(if key == "." { "(top level)" } else { &key }, e.into_inner().to_string())
        })?;
        if let Some(dir) = &overrides.data_dir {
            raw.data_dir = dir.clone();
        }
        if let Some(level) = &overrides.log_level {
            raw.log_level = level.clone();
        }
        Ok(raw)
    }

    /// Checks every value and builds the [`Config`].
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let address = |key: &str, value: &str| -> Result<SocketAddr, ConfigError> {
            value.parse().map_err(|_| invalid(key, format!("{value:?} is not a socket address like 127.0.0.1:4317")))
        };
        let duration = |key: &str, value: &str| -> Result<Duration, ConfigError> {
            humantime::parse_duration(value)
                .map_err(|e| invalid(key, format!("{value:?} is not a duration like 30s, 5m or 7d: {e}")))
        };
        let positive = |key: &str, value: u64| -> Result<usize, ConfigError> {
            if value == 0 { Err(invalid(key, "must be greater than 0")) } else { Ok(value as usize) }
        };
        if !is_log_filter(&self.log_level) {
            return Err(invalid(
                "log_level",
                format!("{:?} is not a level (error, warn, info, debug, trace) or filter", self.log_level),
            ));
        }
        let r = &self.receivers;
        let l = &self.limits;
        let s = &self.storage;
        let limits = Limits {
            max_attributes_per_span: positive("limits.max_attributes_per_span", l.max_attributes_per_span)?,
            max_attribute_value_bytes: positive("limits.max_attribute_value_bytes", l.max_attribute_value_bytes)?,
            max_events_per_span: l.max_events_per_span as usize,
            max_links_per_span: l.max_links_per_span as usize,
            max_clock_skew_nanos: duration("limits.max_clock_skew", &l.max_clock_skew)?.as_nanos().min(u64::MAX as u128)
                as u64,
        };
        let mut engine = EngineOptions::new(&self.data_dir);
        engine.wal.segment_size_bytes = positive("storage.wal_segment_bytes", s.wal_segment_bytes)? as u64;
        engine.wal.fsync = s.wal_fsync;
        engine.head_max_spans = positive("storage.head_max_spans", s.head_max_spans)?;
        engine.head_max_bytes = positive("storage.head_max_bytes", s.head_max_bytes)?;
        engine.head_max_age = duration("storage.head_max_age", &s.head_max_age)?;
        engine.block_max_spans = positive("storage.block_max_spans", s.block_max_spans)?;
        engine.compaction.target_spans = engine.block_max_spans as u64;
        engine.retention = duration("storage.retention", &s.retention)?;
        engine.max_total_bytes = (s.max_total_bytes > 0).then_some(s.max_total_bytes);
        engine.compaction_interval = duration("storage.compaction_interval", &s.compaction_interval)?;
        let max_request_bytes = positive("receivers.max_request_bytes", r.max_request_bytes)?;
        // A request becomes one WAL record; keep room for its re-encoding.
        let max_record_request = engine.wal.max_record_bytes / 2;
        if max_request_bytes > max_record_request {
            return Err(invalid("receivers.max_request_bytes", format!("must be at most {max_record_request}")));
        }
        let max_inflight_bytes = positive("receivers.max_inflight_bytes", r.max_inflight_bytes)?;
        if max_inflight_bytes < max_request_bytes {
            return Err(invalid(
                "receivers.max_inflight_bytes",
                format!("must be at least receivers.max_request_bytes ({max_request_bytes})"),
            ));
        }
        let metrics_opt = self.metrics.resolve()?;
        let alerting_opt = self.alerting.resolve()?;
        let process_keys = &self.processes.keys;
        if process_keys.is_empty() || process_keys.iter().any(|k| k.trim().is_empty()) {
            return Err(invalid("processes.keys", "needs at least one key, and no empty key"));
        }
        // The process lookup and the backlink search read these from each block's
        // attribute index instead of scanning it (blocks written from now on).
        engine.indexed_attribute_keys = crate::processes::indexed_attribute_keys(process_keys);
        Ok(Config {
            log_level: self.log_level.clone(),
            otlp_grpc_address: address("receivers.otlp_grpc_address", &r.otlp_grpc_address)?,
            otlp_http_address: address("receivers.otlp_http_address", &r.otlp_http_address)?,
            zipkin_address: address("receivers.zipkin_address", &r.zipkin_address)?,
            query_address: address("query.address", &self.query.address)?,
            tempo_address: address("query.tempo_address", &self.query.tempo_address)?,
            max_request_bytes,
            max_inflight_bytes,
            cors_allowed_origins: r.cors_allowed_origins.clone(),
            limits,
            engine,
            metrics_opt,
            alerting_opt,
            process_keys: process_keys.clone(),
        })
    }

    /// The configuration as TOML, for `sextant config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

impl RawMetrics {
    /// Checks the aggregators' settings (as their constructors will); `None` when disabled.
    fn resolve(&self) -> Result<Option<MetricsOptions>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let named = |section: &str, error: MetricsError| match error {
            MetricsError::InvalidConfig { key, message } => invalid(&format!("metrics.{section}.{key}"), message),
            other => invalid(&format!("metrics.{section}"), other.to_string()),
        };
        self.span_metrics.validate().map_err(|e| named("span_metrics", e))?;
        self.service_graph.validate().map_err(|e| named("service_graph", e))?;
        if self.consistency.enabled {
            self.consistency.validate().map_err(|e| named("consistency", e))?;
        }
        if self.max_queued_spans == 0 {
            return Err(invalid("metrics.max_queued_spans", "must be greater than 0"));
        }
        Ok(Some(MetricsOptions {
            max_queued_spans: usize::try_from(self.max_queued_spans).unwrap_or(usize::MAX),
            span_metrics: self.span_metrics.clone(),
            service_graph: self.service_graph.clone(),
            consistency_opt: self.consistency.enabled.then(|| self.consistency.clone()),
        }))
    }
}

impl RawAlerting {
    /// Checks the interval, the webhook URLs and every rule; `None` when disabled.
    fn resolve(&self) -> Result<Option<AlertingOptions>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let evaluation_interval =
            humantime::parse_duration(&self.evaluation_interval).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                invalid(
                    "alerting.evaluation_interval",
                    format!("{:?} is not a positive duration like 15s or 1m", self.evaluation_interval),
                )
            })?;
        for (index, url) in self.webhooks.iter().enumerate() {
            let key = format!("alerting.webhooks[{index}]");
            if url.starts_with("https://") {
                return Err(invalid(&key, format!("{url:?}: https webhooks are not supported yet; use http://")));
            }
            let host = url.strip_prefix("http://").unwrap_or_default();
            if host.is_empty() || host.starts_with('/') {
                return Err(invalid(&key, format!("{url:?} is not an http:// URL")));
            }
        }
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate().map_err(|e| invalid(&format!("alerting.rules[{index}].{}", e.field), e.message))?;
            if self.rules[..index].iter().any(|r| r.name == rule.name) {
                return Err(invalid(
                    &format!("alerting.rules[{index}].name"),
                    format!("{:?} is used twice", rule.name),
                ));
            }
        }
        Ok(Some(AlertingOptions { evaluation_interval, webhooks: self.webhooks.clone(), rules: self.rules.clone() }))
    }
}

/// Whether `text` is a level or a `tracing` filter. A bare word must be a level: `loud` would
/// otherwise be taken as a target name and silence everything.
fn is_log_filter(text: &str) -> bool {
    let bare_words_are_levels = text.split(',').map(str::trim).filter(|d| !d.is_empty()).all(|directive| {
        directive.contains(['=', ':', '[']) || directive.parse::<tracing_subscriber::filter::LevelFilter>().is_ok()
    });
    bare_words_are_levels && tracing_subscriber::EnvFilter::try_new(text).is_ok()
}

/// Applies `SEXTANT_*` variables whose name matches a key of the default configuration,
/// parsing each value with the type of that key.
fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(RawConfig::default()).expect("the default config serializes");
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
        let Some((path, default)) = find_key(&defaults, &rest.to_ascii_lowercase()) else { continue };
        let key_path = path.join(".");
        let parsed = parse_env_value(default, &value)
            .map_err(|message| invalid(&key_path, format!("from environment variable {name}: {message}")))?;
        let (key, sections) = path.split_last().expect("a key path is never empty");
        let mut target = &mut *table;
        for (depth, section) in sections.iter().enumerate() {
            target = target
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| invalid(&sections[..=depth].join("."), "must be a table"))?;
        }
        target.insert(key.clone(), parsed);
    }
    Ok(())
}

/// Finds the key whose path, joined by `_`, is `name` (lowercase) among the default keys, at
/// any depth of tables; returns its path and default value.
fn find_key<'a>(defaults: &'a toml::Table, name: &str) -> Option<(Vec<String>, &'a toml::Value)> {
    if let Some(value) = defaults.get(name).filter(|v| !v.is_table()) {
        return Some((vec![name.to_string()], value));
    }
    for (section, value) in defaults {
        let Some(keys) = value.as_table() else { continue };
        let Some(rest) = name.strip_prefix(section.as_str()).and_then(|k| k.strip_prefix('_')) else { continue };
        if let Some((mut path, default)) = find_key(keys, rest) {
            path.insert(0, section.clone());
            return Some((path, default));
        }
    }
    None
}

fn parse_env_value(default: &toml::Value, value: &str) -> Result<toml::Value, String> {
    match default {
        toml::Value::Integer(_) => {
            value.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| format!("{value:?} is not an integer"))
        }
        toml::Value::Boolean(_) => value
            .trim()
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .map_err(|_| format!("{value:?} is not true or false")),
        toml::Value::Array(defaults) => {
            let items = value.split(',').map(str::trim).filter(|v| !v.is_empty());
            if defaults.first().is_some_and(toml::Value::is_float) {
                items
                    .map(|v| v.parse::<f64>().map(toml::Value::Float).map_err(|_| format!("{v:?} is not a number")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(toml::Value::Array)
            } else {
                Ok(toml::Value::Array(items.map(|v| toml::Value::String(v.into())).collect()))
            }
        }
        _ => Ok(toml::Value::String(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sextant.toml");
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        RawConfig::load(Some(&path), env, &Overrides::default())?.resolve()
    }

    #[test]
    fn partial_file_keeps_defaults_for_the_rest() {
        let config = load_str("[storage]\nretention = \"3d\"\n", &[]).unwrap();
        assert_eq!(config.engine.retention, Duration::from_secs(3 * 24 * 3600));
        assert_eq!(config.otlp_grpc_address.to_string(), DEFAULT_OTLP_GRPC_ADDRESS);
        assert_eq!(config.limits.max_attributes_per_span, Limits::default().max_attributes_per_span);
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sextant.toml");
        std::fs::write(&path, "data_dir = \"/from-file\"\n[query]\naddress = \"127.0.0.1:1\"\n").unwrap();
        let env = vec![
            ("SEXTANT_QUERY_ADDRESS".to_string(), "127.0.0.1:2".to_string()),
            ("SEXTANT_STORAGE_WAL_FSYNC".to_string(), "false".to_string()),
            ("SEXTANT_DATA_DIR".to_string(), "/from-env".to_string()),
            ("SEXTANT_UNRELATED".to_string(), "x".to_string()),
        ];
        let overrides = Overrides { data_dir: Some("/from-flag".into()), log_level: None };
        let raw = RawConfig::load(Some(&path), env, &overrides).unwrap();
        assert_eq!(raw.data_dir, PathBuf::from("/from-flag"));
        let config = raw.resolve().unwrap();
        assert_eq!(config.query_address.port(), 2);
        assert!(!config.engine.wal.fsync);
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = load_str("[storage]\nretention = \"7 parsecs\"\n", &[]).unwrap_err().to_string();
        assert!(err.starts_with("config key storage.retention:"), "{err}");
        let err = load_str("[storage]\nhead_max_spans = \"many\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("storage.head_max_spans"), "{err}");
        let err = load_str("[receivers]\nzipkin_address = \"nowhere\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("receivers.zipkin_address"), "{err}");
        let err = load_str("[storage]\nretenion = \"1d\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("retenion"), "unknown keys are named: {err}");
        let err = load_str("", &[("SEXTANT_STORAGE_HEAD_MAX_SPANS", "lots")]).unwrap_err().to_string();
        assert!(err.contains("storage.head_max_spans") && err.contains("SEXTANT_STORAGE_HEAD_MAX_SPANS"), "{err}");
        let err = load_str("log_level = \"loud\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("log_level"), "{err}");
    }

    #[test]
    fn partial_metrics_section_keeps_defaults_for_the_rest() {
        let config = load_str(
            "[metrics.span_metrics]\ndimensions = [\"http.route\"]\nmax_series = 50\n\n[metrics.service_graph]\nwait_seconds = 2\n",
            &[],
        )
        .unwrap();
        let metrics = config.metrics_opt.expect("enabled by default");
        assert_eq!(metrics.span_metrics.dimensions, ["http.route"]);
        assert_eq!(metrics.span_metrics.max_series, 50);
        assert_eq!(metrics.span_metrics.interval_seconds, sextant_metrics::DEFAULT_INTERVAL_SECONDS);
        assert_eq!(metrics.service_graph.wait_seconds, 2);
        assert_eq!(metrics.service_graph.max_edges, sextant_metrics::DEFAULT_MAX_EDGES);
        assert_eq!(metrics.max_queued_spans as u64, DEFAULT_METRICS_MAX_QUEUED_SPANS);
        assert!(load_str("[metrics]\nenabled = false\n", &[]).unwrap().metrics_opt.is_none());
    }

    #[test]
    fn nested_metrics_keys_come_from_the_environment() {
        let config = load_str(
            "",
            &[
                ("SEXTANT_METRICS_SPAN_METRICS_DIMENSIONS", "http.route, cloud.region"),
                ("SEXTANT_METRICS_SPAN_METRICS_LATENCY_BUCKETS_SECONDS", "0.01,0.1,1"),
                ("SEXTANT_METRICS_SERVICE_GRAPH_WAIT_SECONDS", "0"),
                ("SEXTANT_METRICS_MAX_QUEUED_SPANS", "7"),
                ("SEXTANT_METRICS_CONSISTENCY_WAIT_SECONDS", "0"),
                ("SEXTANT_METRICS_CONSISTENCY_MAX_WRITES_PER_KEY", "3"),
            ],
        )
        .unwrap();
        let metrics = config.metrics_opt.unwrap();
        let consistency = metrics.consistency_opt.as_ref().expect("enabled by default");
        assert_eq!((consistency.wait_seconds, consistency.max_writes_per_key), (0, 3));
        assert_eq!(metrics.span_metrics.dimensions, ["http.route", "cloud.region"]);
        assert_eq!(metrics.span_metrics.latency_buckets_seconds, [0.01, 0.1, 1.0]);
        assert_eq!(metrics.service_graph.wait_seconds, 0);
        assert_eq!(metrics.max_queued_spans, 7);
        assert!(load_str("", &[("SEXTANT_METRICS_ENABLED", "false")]).unwrap().metrics_opt.is_none());
        let custom = load_str("", &[("SEXTANT_PROCESSES_KEYS", "order.id,business_process.id")]).unwrap();
        assert_eq!(custom.process_keys, ["order.id", "business_process.id"]);
        // The process keys and the message ID are indexed at ingest.
        assert_eq!(custom.engine.indexed_attribute_keys, ["order.id", "business_process.id", "messaging.message.id"]);
        let default = load_str("", &[]).unwrap();
        assert_eq!(default.process_keys, ["business_process.id"]);
        assert_eq!(default.engine.indexed_attribute_keys, ["business_process.id", "messaging.message.id"]);
        let without_consistency = load_str("[metrics.consistency]\nenabled = false\nmax_keys = 0\n", &[]).unwrap();
        assert!(without_consistency.metrics_opt.unwrap().consistency_opt.is_none(), "not validated when disabled");
    }

    #[test]
    fn bad_metrics_values_name_the_key() {
        for (text, env, key) in [
            ("[metrics.span_metrics]\ndimensions = [\"service\"]\n", vec![], "metrics.span_metrics.dimensions"),
            ("[metrics.span_metrics]\ninterval_seconds = 0\n", vec![], "metrics.span_metrics.interval_seconds"),
            (
                "[metrics.service_graph]\nlatency_buckets_seconds = [0.2, 0.1]\n",
                vec![],
                "metrics.service_graph.latency_buckets_seconds",
            ),
            ("[metrics.span_metrics]\ninterval = 60\n", vec![], "interval"),
            ("[metrics]\nmax_queued_spans = 0\n", vec![], "metrics.max_queued_spans"),
            ("[metrics.consistency]\nmax_keys = 0\n", vec![], "metrics.consistency.max_keys"),
            ("[processes]\nkeys = []\n", vec![], "processes.keys"),
            ("[processes]\nkeys = [\"order.id\", \" \"]\n", vec![], "processes.keys"),
            ("", vec![("SEXTANT_METRICS_SPAN_METRICS_LATENCY_BUCKETS_SECONDS", "fast")], "latency_buckets_seconds"),
        ] {
            let err = load_str(text, &env).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        // A disabled section is not checked.
        assert!(load_str("[metrics]\nenabled = false\n[metrics.span_metrics]\ninterval_seconds = 0\n", &[]).is_ok());
    }

    #[test]
    fn partial_alerting_section_keeps_defaults_for_the_rest() {
        let config = load_str(
            "[alerting]\nwebhooks = [\"http://127.0.0.1:9093/hook\"]\n\n[[alerting.rules]]\nname = \"CartErrors\"\n\
             op = \">\"\nthreshold = 0.05\n\n[alerting.rules.expr]\nmetric = \"error_rate\"\nservice = \"cart\"\n",
            &[],
        )
        .unwrap();
        let alerting = config.alerting_opt.expect("enabled by default");
        assert_eq!(alerting.evaluation_interval, Duration::from_secs(15));
        assert_eq!(alerting.webhooks, ["http://127.0.0.1:9093/hook"]);
        assert_eq!(alerting.rules.len(), 1);
        assert_eq!(alerting.rules[0].expr.window_seconds, crate::alerting::rule::DEFAULT_WINDOW_SECONDS);
        assert_eq!(alerting.rules[0].for_seconds, 0);
        let from_env = load_str("", &[("SEXTANT_ALERTING_EVALUATION_INTERVAL", "1s")]).unwrap();
        assert_eq!(from_env.alerting_opt.unwrap().evaluation_interval, Duration::from_secs(1));
        assert!(load_str("[alerting]\nenabled = false\n", &[]).unwrap().alerting_opt.is_none());
    }

    #[test]
    fn bad_alerting_values_name_the_key() {
        let rule = "[[alerting.rules]]\nname = \"a\"\nop = \">\"\nthreshold = 0.5\n[alerting.rules.expr]\nservice = \"cart\"\n";
        let cases = [
            ("[alerting]\nevaluation_interval = \"0s\"\n".to_string(), "alerting.evaluation_interval"),
            ("[alerting]\nwebhooks = [\"https://x\"]\n".to_string(), "alerting.webhooks[0]"),
            ("[alerting]\nwebhooks = [\"ftp://x\"]\n".to_string(), "alerting.webhooks[0]"),
            (format!("{rule}metric = \"latency_quantile\"\n"), "alerting.rules[0].expr.quantile"),
            (format!("{rule}metric = \"error_rate\"\n{rule}metric = \"error_rate\"\n"), "alerting.rules[1].name"),
            (format!("{rule}metric = \"errors\"\n"), "alerting.rules[0].expr.metric"),
        ];
        for (text, key) in cases {
            let error = load_str(&text, &[]).unwrap_err().to_string();
            assert!(error.starts_with(&format!("config key {key}")), "{key}: {error}");
        }
    }

    #[test]
    fn syntax_errors_are_one_line() {
        let err = load_str("[storage\n", &[]).unwrap_err().to_string();
        assert!(err.starts_with("config file"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn default_config_round_trips_through_toml() {
        let raw = RawConfig::default();
        let parsed: RawConfig = toml::from_str(&raw.to_toml()).unwrap();
        assert_eq!(parsed, raw);
    }

    #[test]
    fn alert_rules_round_trip_through_toml() {
        let mut raw = RawConfig::default();
        raw.alerting.rules.push(
            serde_json::from_value(serde_json::json!({
                "name": "SlowCart",
                "expr": {"metric": "latency_quantile", "quantile": 0.99, "service": "cart", "span_kind": "server"},
                "op": ">=", "threshold": 250.0, "for_seconds": 60,
                "labels": {"severity": "page"}, "annotations": {"summary": "cart is slow"},
            }))
            .unwrap(),
        );
        let parsed: RawConfig = toml::from_str(&raw.to_toml()).unwrap();
        assert_eq!(parsed, raw);
    }
}
