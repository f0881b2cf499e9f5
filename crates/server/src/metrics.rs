//! The server's own metrics, served at `GET /metrics` in the OpenMetrics text format
//! (which Prometheus scrapes natively).
//!
//! Counting rule for ingest: every span of a decodable request is `received`; each is then
//! either `accepted` (committed to the WAL) or `rejected` with a reason. A request that
//! cannot be decoded or is refused whole (too large, overload, unsupported type) counts in
//! `requests_rejected` with its reason; its spans, unknown, are not counted.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub protocol: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[derive(Clone, Debug, Default)]
pub struct IngestMetrics {
    pub spans_received: Family<ProtocolLabels, Counter>,
    pub spans_accepted: Family<ProtocolLabels, Counter>,
    pub spans_rejected: Family<RejectLabels, Counter>,
    pub requests_rejected: Family<RejectLabels, Counter>,
    pub values_truncated: Family<ProtocolLabels, Counter>,
}

impl IngestMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("sextant");
        r.register("spans_received", "Spans in decodable requests", self.spans_received.clone());
        r.register("spans_accepted", "Spans committed to the write-ahead log", self.spans_accepted.clone());
        r.register("spans_rejected", "Spans refused by validation or storage", self.spans_rejected.clone());
        r.register("requests_rejected", "Requests refused whole", self.requests_rejected.clone());
        r.register(
            "attribute_values_truncated",
            "Attribute values cut to the size limit",
            self.values_truncated.clone(),
        );
    }
}

#[derive(Clone, Debug)]
pub struct QueryMetrics {
    pub duration_seconds: Family<EndpointLabels, Histogram>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        QueryMetrics { duration_seconds: Family::new_with_constructor(latency_histogram) }
    }
}

impl QueryMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sextant_query_duration_seconds",
            "Query API latency by endpoint",
            self.duration_seconds.clone(),
        );
    }
}
