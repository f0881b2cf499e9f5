//! Wire formats to and from Sextant's model, and ingest validation.
//!
//! ```text
//! OTLP/gRPC and OTLP/HTTP protobuf ─ decode_otlp_protobuf ─┐
//! OTLP/HTTP JSON ─────────────────── decode_otlp_json ─────┼─> validate IDs and times ─> limits ─> Decoded
//! Zipkin v2 JSON ─────────────────── decode_zipkin_json ───┘     (refuse one span)      (drop/truncate, count)
//!
//! spans ─ encode_spans ─> TracesData protobuf (WAL payload) ─ decode_spans ─> spans   (order kept, no validation)
//! OTLP protobuf body with Decoded::unchanged ─────────────────┘ (the body itself is a valid WAL payload)
//! spans ─ to_resource_spans / otlp_json ─> OTLP protobuf messages / OTLP/JSON (query output, grouped)
//! spans ─ zipkin_json ─> Zipkin v2 JSON (query output; decode_zipkin_json reads it back)
//! ```
//!
//! The two protobuf decoders read the wire format straight into the model, with no generated
//! structs in between, and refuse exactly what prost refuses (module `otlp_proto`). Encoding
//! goes through the generated `opentelemetry-proto` structs.
//!
//! Rules every decoder follows:
//! - A body that cannot be decoded at all is a [`DecodeError`] whose message locates the
//!   problem. A body that decodes keeps every valid span: invalid ones are refused one by one
//!   ([`Rejection`], see [`validate`] for the rules) as OTLP partial success asks, and
//!   [`Decoded::partial_success_message`] is the text to send back.
//! - Accepted spans hold the model invariants: non-zero trace and span IDs,
//!   `end >= start > 0`, no time beyond the allowed clock skew, and within the [`Limits`]
//!   (see [`limits`] for what is dropped or truncated and how it is counted).
//! - [`Decoded::unchanged`] is set only by the OTLP protobuf decoders, when no span was refused
//!   and nothing dropped, truncated or normalized: then `decode_spans(body)` gives exactly the
//!   accepted spans, and the body can be stored as the WAL record as it is.
//! - Spans decoded from one OTLP `ScopeSpans` share one `Arc<Scope>` and those of one
//!   `ResourceSpans` one `Arc<Resource>`; Zipkin spans with the same local service share one.
//!
//! This crate does no I/O and has no async runtime; callers run decoding on a CPU pool.

mod error;
mod group;
mod json_fields;
pub mod limits;
mod otlp_encode;
mod otlp_json_de;
mod otlp_json_ser;
mod otlp_proto;
pub mod validate;
mod zipkin;
mod zipkin_encode;

pub use opentelemetry_proto as proto;

pub use error::DecodeError;
pub use limits::Limits;
pub use otlp_encode::{encode_spans, to_resource_spans};
pub use otlp_json_de::decode_otlp_json;
pub use otlp_json_ser::otlp_json;
/// The prost-struct decoding path the protobuf decoders are tested against; for tests and fuzz
/// targets only (the `reference` feature).
#[cfg(feature = "reference")]
#[doc(hidden)]
pub use otlp_proto::reference;
pub use otlp_proto::{decode_otlp_protobuf, decode_spans};
pub use validate::{Decoded, RejectReason, Rejection};
pub use zipkin::decode_zipkin_json;
pub use zipkin_encode::{zipkin_json, zipkin_span_json};
