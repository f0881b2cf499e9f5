//! The simulated world: one clock, one seeded generator, the replicated store, and the
//! primitives that the user flows are made of (HTTP and gRPC calls, database operations,
//! message hops), each emitting the spans an instrumented service would.
//!
//! Time is simulated and moves forward only: every primitive advances [`World::now`] by a
//! latency drawn from the generator, so a trace is laid out in time as it is built, and the
//! store applies the replications due before each operation. All randomness comes from one
//! [`SplitMix64`] consumed in a fixed order, so a seed and a start time fix every span.

use std::sync::Arc;

use sextant_model::{AnyValue, CompactString, KeyValue, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

use super::scenario::Scenario;
use super::spans::{Opened, TraceBuilder, int, string};
use super::store::{Applied, Level, Origin, ReadResult, Store, Write};
use super::topology::{Endpoint, Region, Resources, Service, scope};
use super::truth::Record;
use crate::bench::rng::SplitMix64;

const MICRO: f64 = 1_000.0;
const MILLI: f64 = 1_000_000.0;

/// A replicated collection of the store: its keys start with `<collection>:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// Shopping carts, owned by cart; the value is the number of items.
    Carts,
    /// Product prices, owned by catalog; the value is the price in cents.
    Prices,
}

impl Collection {
    pub fn name(self) -> &'static str {
        match self {
            Collection::Carts => "carts",
            Collection::Prices => "prices",
        }
    }

    fn owner(self) -> Service {
        match self {
            Collection::Carts => Service::Cart,
            Collection::Prices => Service::Catalog,
        }
    }

    fn of_key(key: &str) -> Collection {
        if key.starts_with("carts:") { Collection::Carts } else { Collection::Prices }
    }
}

pub struct World {
    pub rng: SplitMix64,
    /// The simulated clock, unix nanoseconds.
    pub now: u64,
    pub scenario: Scenario,
    store: Store,
    resources: Resources,
    scope: Arc<Scope>,
    /// Spans finished and not yet taken, in the order they were built.
    spans: Vec<Span>,
    /// Ground-truth records not yet taken.
    truth: Vec<Record>,
    /// Traces built so far.
    pub num_traces: u64,
}

impl World {
    pub fn new(seed: u64, scenario: Scenario, start_unix_nanos: u64) -> World {
        World {
            rng: SplitMix64::new(seed),
            now: start_unix_nanos,
            scenario,
            store: Store::default(),
            resources: Resources::default(),
            scope: scope(),
            spans: Vec::new(),
            truth: Vec::new(),
            num_traces: 0,
        }
    }

    pub fn endpoint(&self, service: Service, region: Region) -> Endpoint {
        Endpoint { service, region, version: self.scenario.version(service) }
    }

    pub fn new_trace(&mut self, process_id: Option<String>) -> TraceBuilder {
        TraceBuilder::new(TraceId(self.rng.nonzero_u128().to_be_bytes()), process_id, self.scope.clone())
    }

    pub fn finish_trace(&mut self, trace: TraceBuilder) {
        self.num_traces += 1;
        self.spans.extend(trace.finish());
    }

    pub fn record(&mut self, record: Record) {
        self.truth.push(record);
    }

    pub fn take_spans(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.spans)
    }

    pub fn take_truth(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.truth)
    }

    fn span_id(&mut self) -> SpanId {
        SpanId(self.rng.nonzero_u64().to_be_bytes())
    }

    /// Lets `nanos` pass, applying the replications due meanwhile.
    pub fn advance(&mut self, nanos: u64) {
        self.now += nanos.max(1);
        for applied in self.store.advance_to(self.now) {
            self.emit_apply(applied);
        }
    }

    /// The `db.replication.apply` span of a replication, in the trace of its write, and its
    /// ground truth.
    fn emit_apply(&mut self, applied: Applied) {
        let collection = Collection::of_key(&applied.key);
        let endpoint = self.endpoint(collection.owner(), applied.replica);
        let resource = self.resources.get(endpoint);
        let span_id = self.span_id();
        let origin = &applied.write.origin;
        let process_id = (!origin.process_id.is_empty()).then(|| origin.process_id.clone());
        let mut trace = TraceBuilder::new(origin.trace_id, process_id, self.scope.clone());
        let duration_nanos = self.rng.uniform(80.0 * MICRO, 400.0 * MICRO) as u64;
        let source = applied.write.region.name();
        let mut attributes = vec![
            string("db.system.name", "cassandra"),
            string("db.collection.name", collection.name()),
            string("db.record.key", applied.key.clone()),
            int("db.record.version", applied.write.version as i64),
            string("db.replication.source_region", source),
            string("db.replica.region", applied.replica.name()),
            int(
                "db.replication.delay_nanos",
                (applied.applied_unix_nanos - applied.write.acknowledged_unix_nanos) as i64,
            ),
        ];
        if let Some((winner, losers)) = &applied.conflict {
            attributes.push(string("db.conflict.resolution", "lww"));
            attributes.push(int("db.conflict.winner_version", *winner as i64));
            let losers = losers.iter().map(|v| AnyValue::Int(*v as i64)).collect();
            attributes.push(KeyValue::new("db.conflict.loser_versions", AnyValue::Array(losers)));
        }
        let opened = trace.open(
            (span_id, Some(origin.span_id)),
            resource,
            "db.replication.apply",
            SpanKind::Internal,
            applied.applied_unix_nanos,
            attributes,
        );
        trace.close(opened, applied.applied_unix_nanos + duration_nanos);
        self.spans.extend(trace.finish());
        self.truth.push(Record::Replication {
            key: applied.key.clone(),
            version: applied.write.version,
            source_region: source,
            replica_region: applied.replica.name(),
            write_trace_id: origin.trace_id.to_hex(),
            write_span_id: origin.span_id.to_hex(),
            apply_span_id: span_id.to_hex(),
            acknowledged_unix_nanos: applied.write.acknowledged_unix_nanos,
            applied_unix_nanos: applied.applied_unix_nanos,
            delay_nanos: applied.applied_unix_nanos - applied.write.acknowledged_unix_nanos,
        });
        if let Some((winner_version, loser_versions)) = applied.conflict {
            self.truth.push(Record::Conflict {
                key: applied.key,
                region: applied.replica.name(),
                winner_version,
                loser_versions,
                apply_trace_id: origin.trace_id.to_hex(),
                apply_span_id: span_id.to_hex(),
            });
        }
    }

    /// Lets a log-uniform time between `low_millis` and `high_millis` pass.
    pub fn wait_millis(&mut self, low_millis: f64, high_millis: f64) {
        let nanos = self.rng.log_uniform(low_millis * MILLI, high_millis * MILLI) as u64;
        self.advance(nanos);
    }

    /// Applies every replication still in flight (at the end of a run).
    pub fn drain_replication(&mut self) {
        while self.store.num_pending() > 0 {
            self.advance(10 * MILLI as u64);
        }
    }

    /// Opens a span at the current time in `trace`.
    pub fn open(
        &mut self,
        trace: &mut TraceBuilder,
        parent: Option<SpanId>,
        endpoint: Endpoint,
        name: impl Into<CompactString>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Opened {
        let span_id = self.span_id();
        let resource = self.resources.get(endpoint);
        trace.open((span_id, parent), resource, name, kind, self.now, attributes)
    }

    /// An HTTP request from `caller` (none: from outside, the gateway's own server span) to
    /// `callee`, handled by `handler`, which returns the response status code.
    pub fn http(
        &mut self,
        trace: &mut TraceBuilder,
        (parent, caller): (Option<SpanId>, Option<Endpoint>),
        callee: Endpoint,
        (method, route): (&str, &str),
        handler: impl FnOnce(&mut World, &mut TraceBuilder, SpanId) -> u16,
    ) -> u16 {
        let client = caller.map(|caller| {
            let attributes = vec![
                string("http.request.method", method),
                string("server.address", callee.service.name()),
                string("url.template", route),
            ];
            let opened = self.open(trace, parent, caller, method, SpanKind::Client, attributes);
            self.wait_millis(0.2, 1.5);
            opened
        });
        let attributes =
            vec![string("http.request.method", method), string("http.route", route), string("url.scheme", "https")];
        let server_parent = client.map(|c| c.span_id).or(parent);
        let server = self.open(trace, server_parent, callee, format!("{method} {route}"), SpanKind::Server, attributes);
        self.wait_millis(0.05, 0.5);
        let status = handler(self, trace, server.span_id);
        self.wait_millis(0.05, 0.5);
        let span = trace.span(server);
        span.attributes.push(int("http.response.status_code", status as i64));
        if status >= 500 {
            span.status_code = StatusCode::Error;
        }
        trace.close(server, self.now);
        if let Some(client) = client {
            self.wait_millis(0.2, 1.5);
            let span = trace.span(client);
            span.attributes.push(int("http.response.status_code", status as i64));
            if status >= 400 {
                span.status_code = StatusCode::Error;
            }
            trace.close(client, self.now);
        }
        status
    }

    /// A unary gRPC call from `caller` to `rpc_service/rpc_method` on `callee`; `handler`
    /// returns the gRPC status code (0 is OK).
    pub fn grpc(
        &mut self,
        trace: &mut TraceBuilder,
        (parent, caller): (SpanId, Endpoint),
        callee: Endpoint,
        (rpc_service, rpc_method): (&str, &str),
        handler: impl FnOnce(&mut World, &mut TraceBuilder, SpanId) -> i64,
    ) -> i64 {
        let name = format!("{rpc_service}/{rpc_method}");
        let attributes =
            || vec![string("rpc.system", "grpc"), string("rpc.service", rpc_service), string("rpc.method", rpc_method)];
        let client = self.open(trace, Some(parent), caller, name.clone(), SpanKind::Client, attributes());
        self.wait_millis(0.2, 1.0);
        let server = self.open(trace, Some(client.span_id), callee, name, SpanKind::Server, attributes());
        self.wait_millis(0.03, 0.3);
        let code = handler(self, trace, server.span_id);
        self.wait_millis(0.03, 0.3);
        for (opened, pause) in [(server, false), (client, true)] {
            if pause {
                self.wait_millis(0.2, 1.0);
            }
            let span = trace.span(opened);
            span.attributes.push(int("rpc.grpc.status_code", code));
            if code != 0 {
                span.status_code = StatusCode::Error;
            }
            trace.close(opened, self.now);
        }
        code
    }

    /// Opens the client span of a Cassandra `operation` (`SELECT`, `UPDATE`) on `key` of
    /// `collection`, served by the replica in `at`'s region at `level`.
    fn open_cassandra(
        &mut self,
        trace: &mut TraceBuilder,
        parent: SpanId,
        at: Endpoint,
        (collection, key): (Collection, &str),
        operation: &str,
        level: Level,
    ) -> Opened {
        let attributes = vec![
            string("db.system.name", "cassandra"),
            string("db.namespace", "shop"),
            string("db.operation.name", operation),
            string("db.collection.name", collection.name()),
            string("db.consistency_level", level.name()),
            string("db.replica.region", at.region.name()),
            string("db.record.key", key),
        ];
        let name = format!("{operation} shop.{}", collection.name());
        self.open(trace, Some(parent), at, name, SpanKind::Client, attributes)
    }

    /// A read of `key` by `at` at `level` from the replicated store; a stale result is
    /// recorded in the ground truth.
    pub fn store_read(
        &mut self,
        trace: &mut TraceBuilder,
        parent: SpanId,
        at: Endpoint,
        (collection, key): (Collection, &str),
        level: Level,
    ) -> ReadResult {
        let opened = self.open_cassandra(trace, parent, at, (collection, key), "SELECT", level);
        let read_unix_nanos = self.now;
        let result = self.store.read(key, at.region, level, read_unix_nanos);
        let latency = if level.is_local() { (0.3, 2.0) } else { (2.0, 12.0) };
        self.wait_millis(latency.0, latency.1);
        trace.span(opened).attributes.push(int("db.record.version", result.version as i64));
        trace.close(opened, self.now);
        if let Some(stale) = &result.stale {
            self.truth.push(Record::StaleRead {
                trace_id: trace.trace_id.to_hex(),
                span_id: opened.span_id.to_hex(),
                key: key.to_string(),
                region: at.region.name(),
                level,
                returned_version: result.version,
                newer_version: stale.newer_version,
                write_trace_id: stale.newer_write.trace_id.to_hex(),
                write_span_id: stale.newer_write.span_id.to_hex(),
                write_region: stale.newer_write_region.name(),
                write_level: stale.newer_write_level,
                read_unix_nanos,
                staleness_nanos: stale.staleness_nanos,
            });
        }
        result
    }

    /// A write of `value` to `key` by `at` at `level`, replicated to the other regions after
    /// the scenario's delays. Returns the version written.
    pub fn store_write(
        &mut self,
        trace: &mut TraceBuilder,
        parent: SpanId,
        at: Endpoint,
        (collection, key): (Collection, &str),
        (level, value): (Level, i64),
    ) -> u64 {
        let opened = self.open_cassandra(trace, parent, at, (collection, key), "UPDATE", level);
        let version = self.now;
        trace.span(opened).attributes.push(int("db.record.version", version as i64));
        self.wait_millis(0.5, 3.0);
        trace.close(opened, self.now);
        let write = Write {
            version,
            value,
            region: at.region,
            level,
            acknowledged_unix_nanos: self.now,
            origin: Origin {
                trace_id: trace.trace_id,
                span_id: opened.span_id,
                process_id: trace.process_id.clone().unwrap_or_default(),
            },
        };
        let delays = self.scenario.replication_delays_nanos(at.region, &mut self.rng);
        self.store.write(key, write, delays);
        version
    }

    /// A statement on a service's own PostgreSQL database (not replicated across regions).
    pub fn sql(
        &mut self,
        trace: &mut TraceBuilder,
        parent: SpanId,
        at: Endpoint,
        (operation, table, query_text): (&str, &str, &str),
        (low_millis, high_millis): (f64, f64),
    ) {
        let attributes = vec![
            string("db.system.name", "postgresql"),
            string("db.namespace", at.service.name()),
            string("db.operation.name", operation),
            string("db.collection.name", table),
            string("db.query.text", query_text),
            string("db.replica.region", at.region.name()),
        ];
        let opened = self.open(trace, Some(parent), at, format!("{operation} {table}"), SpanKind::Client, attributes);
        self.wait_millis(low_millis, high_millis);
        trace.close(opened, self.now);
    }
}
