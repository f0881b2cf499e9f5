//! Sextant's span data model.
//!
//! Every wire format (OTLP protobuf and JSON, Zipkin) is decoded into these types, every
//! storage layer (WAL, head, Parquet blocks) stores them, and every query API renders them.
//! The model follows the OpenTelemetry trace data model one to one, so nothing a client
//! sends is lost between ingest and query.
//!
//! Invariants held by values that passed ingest validation (see `sextant-codec`):
//! - `trace_id` and `span_id` are not all zeros;
//! - `end_unix_nanos >= start_unix_nanos`;
//! - `resource` and `scope` are shared (`Arc`) by all spans of one OTLP `ScopeSpans`.
//!
//! Span names, attribute keys and string values are [`CompactString`]s: up to 24 bytes are held
//! in the value itself, so a typical span owns one heap allocation (its attribute list) instead
//! of one per string, and costs that much less to build, copy into the head and free.
//!
//! This crate does no I/O and has no async runtime.

use std::fmt;
use std::sync::Arc;

mod ids;
pub use compact_str::CompactString;
pub use ids::{IdError, SpanId, TraceId};

/// The `service.name` used when a resource carries none (as the OpenTelemetry SDKs do).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The current time in unix nanoseconds (0 if the clock is before 1970).
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An attribute value: the OpenTelemetry `AnyValue`.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyValue {
    String(CompactString),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AnyValue>),
    KvList(Vec<KeyValue>),
}

impl AnyValue {
    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AnyValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Size in bytes of the value's payload, used for limits and memory accounting.
    pub fn size_bytes(&self) -> usize {
        match self {
            AnyValue::String(s) => s.len(),
            AnyValue::Bytes(b) => b.len(),
            AnyValue::Bool(_) => 1,
            AnyValue::Int(_) | AnyValue::Double(_) => 8,
            AnyValue::Array(values) => values.iter().map(AnyValue::size_bytes).sum(),
            AnyValue::KvList(kvs) => kvs.iter().map(|kv| kv.key.len() + kv.value.size_bytes()).sum(),
        }
    }
}

/// What a heap allocation of `len` bytes takes: allocators hand out size classes, 16 bytes
/// apart at the sizes spans use.
fn heap_bytes(len: usize) -> usize {
    len.next_multiple_of(16)
}

/// Heap bytes a compact string owns: none when it is short enough to be held inline.
fn compact_heap_bytes(s: &CompactString) -> usize {
    if s.is_heap_allocated() { heap_bytes(s.capacity()) } else { 0 }
}

/// Heap bytes of a list of key-values: the list itself, each key and each value.
fn key_values_heap_bytes(kvs: &Vec<KeyValue>) -> usize {
    heap_bytes(kvs.capacity() * std::mem::size_of::<KeyValue>()) + elements_heap_bytes(kvs)
}

/// Heap bytes the keys and values of a list own, without the list's own buffer.
fn elements_heap_bytes(kvs: &[KeyValue]) -> usize {
    kvs.iter().map(|kv| compact_heap_bytes(&kv.key) + kv.value.heap_bytes()).sum()
}

impl AnyValue {
    /// Heap bytes the value owns (see [`Span::size_bytes`]).
    fn heap_bytes(&self) -> usize {
        match self {
            AnyValue::String(s) => compact_heap_bytes(s),
            AnyValue::Bytes(b) => heap_bytes(b.capacity()),
            AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => 0,
            AnyValue::Array(values) => {
                heap_bytes(values.capacity() * std::mem::size_of::<AnyValue>())
                    + values.iter().map(AnyValue::heap_bytes).sum::<usize>()
            }
            AnyValue::KvList(kvs) => key_values_heap_bytes(kvs),
        }
    }
}

impl fmt::Display for AnyValue {
    /// Renders the value the way users type it in a filter: strings bare, numbers in decimal,
    /// bytes in hex, arrays and maps as JSON-like text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyValue::String(s) => f.write_str(s),
            AnyValue::Bool(b) => write!(f, "{b}"),
            AnyValue::Int(i) => write!(f, "{i}"),
            AnyValue::Double(d) => write!(f, "{d}"),
            AnyValue::Bytes(b) => f.write_str(&hex::encode(b)),
            AnyValue::Array(values) => {
                f.write_str("[")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            AnyValue::KvList(kvs) => {
                f.write_str("{")?;
                for (i, kv) in kvs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{}", kv.key, kv.value)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// What a span occupies in memory ([`Span::memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanMemory {
    /// [`Span::size_bytes`].
    pub size_bytes: usize,
    /// Whether an attribute owns heap memory (a key or string too long to be held inline,
    /// bytes, an array or a map). When none does, freeing the list needs no visit of its
    /// elements.
    pub attributes_own_heap: bool,
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: CompactString,
    pub value: AnyValue,
}

impl KeyValue {
    pub fn new(key: impl Into<CompactString>, value: AnyValue) -> Self {
        KeyValue { key: key.into(), value }
    }

    pub fn string(key: impl Into<CompactString>, value: impl Into<CompactString>) -> Self {
        KeyValue::new(key, AnyValue::String(value.into()))
    }
}

/// Finds an attribute by key in a list (last one wins, as in the OpenTelemetry SDKs).
pub fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes.iter().rev().find(|kv| kv.key == key).map(|kv| &kv.value)
}

/// Span kind, numbered as in OTLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum SpanKind {
    #[default]
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    pub const ALL: [SpanKind; 6] = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// Maps an OTLP enum number; unknown numbers become `Unspecified`.
    pub fn from_i32(value: i32) -> SpanKind {
        match value {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The OTLP enum name, e.g. `SPAN_KIND_SERVER`.
    pub fn otlp_name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
            SpanKind::Internal => "SPAN_KIND_INTERNAL",
            SpanKind::Server => "SPAN_KIND_SERVER",
            SpanKind::Client => "SPAN_KIND_CLIENT",
            SpanKind::Producer => "SPAN_KIND_PRODUCER",
            SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        }
    }

    /// The kind whose [`SpanKind::short_name`] is `text`.
    pub fn from_short_name(text: &str) -> Option<SpanKind> {
        SpanKind::ALL.into_iter().find(|kind| kind.short_name() == text)
    }

    /// The lowercase short name used by query APIs and TraceQL (`server`, `client`, …).
    pub fn short_name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// Span status code, numbered as in OTLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum StatusCode {
    #[default]
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl StatusCode {
    pub fn from_i32(value: i32) -> StatusCode {
        match value {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// The entity that produced spans: a service instance.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

impl Resource {
    /// `service.name`, or [`UNKNOWN_SERVICE`].
    pub fn service_name(&self) -> &str {
        find_attribute(&self.attributes, "service.name").and_then(AnyValue::as_str).unwrap_or(UNKNOWN_SERVICE)
    }
}

/// The instrumentation library that produced spans.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// A timestamped event within a span (Zipkin annotations map here too).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Event {
    pub time_unix_nanos: u64,
    pub name: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// A link from a span to another span, possibly in another trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// One span, with its resource and scope.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    pub name: CompactString,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status_code: StatusCode,
    pub status_message: String,
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
}

impl Span {
    /// A span with the given identity and times and every other field empty.
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        name: impl Into<CompactString>,
        start_unix_nanos: u64,
        end_unix_nanos: u64,
    ) -> Span {
        Span {
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: name.into(),
            kind: SpanKind::Unspecified,
            start_unix_nanos,
            end_unix_nanos,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: StatusCode::Unset,
            status_message: String::new(),
            resource: Arc::new(Resource::default()),
            scope: Arc::new(Scope::default()),
        }
    }

    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    pub fn service_name(&self) -> &str {
        self.resource.service_name()
    }

    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }

    pub fn is_error(&self) -> bool {
        self.status_code == StatusCode::Error
    }

    /// Bytes the span occupies in memory: its struct and every heap allocation it owns
    /// (by capacity, in the allocator's 16-byte size steps), not counting the resource and
    /// scope it shares with other spans. Memory accounting in the head relies on it.
    pub fn size_bytes(&self) -> usize {
        self.memory().size_bytes
    }

    /// [`Span::size_bytes`], and whether an attribute owns heap memory, in one pass over the
    /// attributes.
    pub fn memory(&self) -> SpanMemory {
        let attribute_elements = elements_heap_bytes(&self.attributes);
        let size_bytes = std::mem::size_of::<Span>()
            + compact_heap_bytes(&self.name)
            + heap_bytes(self.trace_state.capacity())
            + heap_bytes(self.status_message.capacity())
            + heap_bytes(self.attributes.capacity() * std::mem::size_of::<KeyValue>())
            + attribute_elements
            + heap_bytes(self.events.capacity() * std::mem::size_of::<Event>())
            + self
                .events
                .iter()
                .map(|e| heap_bytes(e.name.capacity()) + key_values_heap_bytes(&e.attributes))
                .sum::<usize>()
            + heap_bytes(self.links.capacity() * std::mem::size_of::<Link>())
            + self
                .links
                .iter()
                .map(|l| heap_bytes(l.trace_state.capacity()) + key_values_heap_bytes(&l.attributes))
                .sum::<usize>();
        SpanMemory { size_bytes, attributes_own_heap: attribute_elements > 0 }
    }

    /// The identity used to recognise the same span sent twice (client retries). The kind is
    /// part of it because the two halves of a Zipkin shared span (client and server) carry the
    /// same trace and span IDs and are different spans.
    pub fn identity(&self) -> (TraceId, SpanId, SpanKind) {
        (self.trace_id, self.span_id, self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_name_defaults_to_unknown_service() {
        let mut resource = Resource::default();
        assert_eq!(resource.service_name(), UNKNOWN_SERVICE);
        resource.attributes.push(KeyValue::string("service.name", "cart"));
        assert_eq!(resource.service_name(), "cart");
    }

    #[test]
    fn display_renders_nested_values() {
        let v =
            AnyValue::Array(vec![AnyValue::Int(1), AnyValue::KvList(vec![KeyValue::new("a", AnyValue::Bool(true))])]);
        assert_eq!(v.to_string(), "[1,{a:true}]");
    }

    #[test]
    fn size_bytes_counts_only_strings_too_long_to_be_inline() {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), "GET /api/orders/{id}", 1, 2);
        span.attributes = Vec::with_capacity(2);
        span.attributes.push(KeyValue::string("http.request.method", "GET"));
        span.attributes.push(KeyValue::string("k", "x".repeat(24)));
        let list = heap_bytes(2 * std::mem::size_of::<KeyValue>());
        assert_eq!(span.size_bytes(), std::mem::size_of::<Span>() + list);
        span.attributes[1] = KeyValue::string("k", "x".repeat(25));
        span.name = "a span name of forty bytes, not inline".into();
        // In the allocator's 16-byte steps: 25 bytes take 32, 38 take 48.
        assert_eq!(span.size_bytes(), std::mem::size_of::<Span>() + list + 32 + 48);
    }

    #[test]
    fn duration_saturates_when_end_precedes_start() {
        let span = Span::new(TraceId([1; 16]), SpanId([1; 8]), "x", 10, 5);
        assert_eq!(span.duration_nanos(), 0);
    }
}
