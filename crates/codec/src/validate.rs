//! Ingest validation: which spans are refused, and how a decoded batch is reported.
//!
//! Every decoder (OTLP protobuf, OTLP/JSON, Zipkin) refuses invalid spans one by one and keeps
//! the rest of the batch, as OTLP's partial success asks. A span is refused when:
//!
//! | reason | rule |
//! |---|---|
//! | `InvalidTraceId` | trace ID missing, not hexadecimal (JSON), not 16 bytes, or all zeros |
//! | `InvalidSpanId` | span ID missing, not hexadecimal (JSON), not 8 bytes, or all zeros |
//! | `InvalidParentSpanId` | parent span ID present but not hexadecimal or not 8 bytes (empty or all zeros means "root") |
//! | `MissingTimestamp` | start time is 0 |
//! | `EndBeforeStart` | end time before start time |
//! | `ClockSkew` | start or end further than `max_clock_skew_nanos` in the future of the receiver's clock |
//!
//! The checks run in that order and the first failure is reported. A link whose trace or span
//! ID is invalid is not a reason to refuse its span: the link is dropped and counted in
//! `dropped_links_count`.
//!
//! [`Decoded::unchanged`] tells whether the accepted spans are exactly what an OTLP protobuf
//! body encodes, so that the body itself can serve as the WAL record. Every change below
//! clears it:
//!
//! | change | where |
//! |---|---|
//! | a span refused (any reason above) | `BatchBuilder::reject` |
//! | an attribute, event or link dropped, or a value truncated, by the [`Limits`] (spans, resources, scopes) | `BatchBuilder::{accept, resource, scope}` |
//! | a link dropped for an invalid trace or span ID | `otlp_proto` (conversion) |
//! | an attribute, array element or map entry dropped for having no value (or a `string_value_strindex`) | `otlp_proto` (conversion) |
//!
//! A [`Rejection`] message names the span — `span <trace id>/<span id> "<name>"`, IDs in hex as
//! received (`?` when absent) — and the problem with its values, so a client's operator can find
//! the offending span.

use std::sync::Arc;

use sextant_model::{Resource, Scope, Span, SpanId, TraceId};

use crate::limits::{Applied, Limits, limit_attributes, limit_span};

/// Why a span was refused. `as_str` gives the label used in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    InvalidTraceId,
    InvalidSpanId,
    InvalidParentSpanId,
    EndBeforeStart,
    ClockSkew,
    MissingTimestamp,
}

impl RejectReason {
    /// Every reason, e.g. to pre-register metric label values.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::InvalidTraceId,
        RejectReason::InvalidSpanId,
        RejectReason::InvalidParentSpanId,
        RejectReason::EndBeforeStart,
        RejectReason::ClockSkew,
        RejectReason::MissingTimestamp,
    ];

    /// A snake_case label for metrics, e.g. `invalid_trace_id`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::InvalidTraceId => "invalid_trace_id",
            RejectReason::InvalidSpanId => "invalid_span_id",
            RejectReason::InvalidParentSpanId => "invalid_parent_span_id",
            RejectReason::EndBeforeStart => "end_before_start",
            RejectReason::ClockSkew => "clock_skew",
            RejectReason::MissingTimestamp => "missing_timestamp",
        }
    }
}

/// One refused span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    /// Names the span and the problem, e.g.
    /// `span 0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331 "GET /": end time 5 is before start time 10`.
    pub message: String,
}

/// The result of decoding one request: the accepted spans, the refused ones, how many
/// attribute values were shortened by the limits, and whether anything was changed at all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    pub spans: Vec<Span>,
    pub rejected: Vec<Rejection>,
    pub truncated_values: u64,
    /// True when the accepted spans are exactly what the OTLP protobuf body encodes: no span
    /// was refused and nothing was dropped, truncated or normalized (see the module doc for
    /// every change that clears it). Then [`crate::decode_spans`] of the body gives exactly
    /// `spans` (an `ExportTraceServiceRequest` has the wire format of `TracesData`), so the
    /// body can be written to the WAL as received instead of re-encoding the spans.
    ///
    /// Conversions `decode_spans` makes in the same way do not clear it: unknown enum numbers
    /// read as `Unspecified`/`Unset`, an all-zero parent span ID read as a root, and fields the
    /// model does not keep (`schema_url`, `entity_refs`, `key_strindex`, unknown fields).
    ///
    /// Only [`crate::decode_otlp_protobuf`] ever sets it. OTLP/JSON and Zipkin bodies are not
    /// protobuf, so their decoders always leave it false; so does `Default`.
    pub unchanged: bool,
}

/// How many rejections `partial_success_message` quotes.
const QUOTED_REJECTIONS: usize = 3;
/// Upper bound on `partial_success_message`, in bytes.
const MAX_PARTIAL_SUCCESS_BYTES: usize = 1024;

impl Decoded {
    /// The text for OTLP's `ExportTracePartialSuccess.error_message`: `None` when nothing was
    /// refused, else e.g. `3 spans rejected: span …: end time 5 is before start time 10; …; and
    /// 1 more`. Quotes the first few rejections and stays under about 1 KiB.
    pub fn partial_success_message(&self) -> Option<String> {
        if self.rejected.is_empty() {
            return None;
        }
        let n = self.rejected.len();
        let mut text = format!("{n} span{} rejected: ", if n == 1 { "" } else { "s" });
        let quoted: Vec<&str> = self.rejected.iter().take(QUOTED_REJECTIONS).map(|r| r.message.as_str()).collect();
        text.push_str(&quoted.join("; "));
        if n > QUOTED_REJECTIONS {
            text.push_str(&format!("; and {} more", n - QUOTED_REJECTIONS));
        }
        if text.len() > MAX_PARTIAL_SUCCESS_BYTES {
            crate::limits::truncate_str(&mut text, MAX_PARTIAL_SUCCESS_BYTES - '…'.len_utf8());
            text.push('…');
        }
        Some(text)
    }
}

/// A failed check: the reason and the problem, without the span's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub reason: RejectReason,
    pub detail: String,
}

impl Problem {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Problem {
        Problem { reason, detail: detail.into() }
    }
}

/// Longest ID or name text quoted in a message.
const MAX_QUOTED_CHARS: usize = 64;

fn quoted(text: &str) -> String {
    if text.chars().count() > MAX_QUOTED_CHARS {
        format!("{}…", text.chars().take(MAX_QUOTED_CHARS).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Renders received ID bytes for a message: hex, or `?` when absent.
pub(crate) fn id_text(bytes: &[u8]) -> String {
    if bytes.is_empty() { "?".to_string() } else { quoted(&hex::encode(bytes)) }
}

/// Builds the rejection for a span identified by its ID texts (as received) and name.
pub(crate) fn rejection(trace_id: &str, span_id: &str, name: &str, problem: Problem) -> Rejection {
    let trace_id = if trace_id.is_empty() { "?".to_string() } else { quoted(trace_id) };
    let span_id = if span_id.is_empty() { "?".to_string() } else { quoted(span_id) };
    Rejection {
        reason: problem.reason,
        message: format!("span {trace_id}/{span_id} {:?}: {}", quoted(name), problem.detail),
    }
}

/// Checks a trace ID given as bytes.
pub(crate) fn check_trace_id(bytes: &[u8]) -> Result<TraceId, Problem> {
    let reason = RejectReason::InvalidTraceId;
    match <[u8; 16]>::try_from(bytes) {
        _ if bytes.is_empty() => Err(Problem::new(reason, "trace id is missing")),
        Ok(array) if array == [0; 16] => Err(Problem::new(reason, "trace id is all zeros")),
        Ok(array) => Ok(TraceId(array)),
        Err(_) => Err(Problem::new(reason, format!("trace id has {} bytes, expected 16", bytes.len()))),
    }
}

/// Checks a span ID given as bytes.
pub(crate) fn check_span_id(bytes: &[u8]) -> Result<SpanId, Problem> {
    let reason = RejectReason::InvalidSpanId;
    match <[u8; 8]>::try_from(bytes) {
        _ if bytes.is_empty() => Err(Problem::new(reason, "span id is missing")),
        Ok(array) if array == [0; 8] => Err(Problem::new(reason, "span id is all zeros")),
        Ok(array) => Ok(SpanId(array)),
        Err(_) => Err(Problem::new(reason, format!("span id has {} bytes, expected 8", bytes.len()))),
    }
}

/// Checks a parent span ID given as bytes: empty or all zeros is a root span.
pub(crate) fn check_parent_span_id(bytes: &[u8]) -> Result<Option<SpanId>, Problem> {
    match <[u8; 8]>::try_from(bytes) {
        _ if bytes.is_empty() => Ok(None),
        Ok(array) if array == [0; 8] => Ok(None),
        Ok(array) => Ok(Some(SpanId(array))),
        Err(_) => Err(Problem::new(
            RejectReason::InvalidParentSpanId,
            format!("parent span id has {} bytes, expected 8 (or none for a root span)", bytes.len()),
        )),
    }
}

/// Decodes a hexadecimal ID (either case) from OTLP/JSON. `what` is "trace id", "span id" or
/// "parent span id".
pub(crate) fn decode_hex_id(text: &str, reason: RejectReason, what: &str) -> Result<Vec<u8>, Problem> {
    hex::decode(text).map_err(|error| {
        let why = match error {
            hex::FromHexError::InvalidHexCharacter { c, index } => {
                format!("invalid character {c:?} at position {index}")
            }
            hex::FromHexError::OddLength => "odd number of digits".to_string(),
            hex::FromHexError::InvalidStringLength => "wrong length".to_string(),
        };
        Problem::new(reason, format!("{what} {:?} is not hexadecimal: {why}", quoted(text)))
    })
}

/// Checks a span's times against each other and the receiver's clock.
pub(crate) fn check_times(start: u64, end: u64, limits: &Limits, now_unix_nanos: u64) -> Result<(), Problem> {
    if start == 0 {
        return Err(Problem::new(RejectReason::MissingTimestamp, "start time is missing (0)"));
    }
    if end < start {
        return Err(Problem::new(RejectReason::EndBeforeStart, format!("end time {end} is before start time {start}")));
    }
    let latest = now_unix_nanos.saturating_add(limits.max_clock_skew_nanos);
    // `end >= start`, so checking the end covers both.
    if end > latest {
        let which = if start > latest { "start time" } else { "end time" };
        let time = if start > latest { start } else { end };
        return Err(Problem::new(
            RejectReason::ClockSkew,
            format!(
                "{which} {time} is {} s ahead of the receiver's clock ({now_unix_nanos}), more than the {} s allowed",
                (time - now_unix_nanos) / 1_000_000_000,
                limits.max_clock_skew_nanos / 1_000_000_000
            ),
        ));
    }
    Ok(())
}

/// Collects a decoded batch: applies the limits to what is accepted and keeps the tally.
pub(crate) struct BatchBuilder<'a> {
    pub limits: &'a Limits,
    pub now_unix_nanos: u64,
    decoded: Decoded,
    /// Whether a span was refused or anything dropped, truncated or normalized so far.
    changed: bool,
}

impl<'a> BatchBuilder<'a> {
    pub fn new(limits: &'a Limits, now_unix_nanos: u64) -> BatchBuilder<'a> {
        BatchBuilder { limits, now_unix_nanos, decoded: Decoded::default(), changed: false }
    }

    /// Applies the attribute limits to a resource and shares it.
    pub fn resource(&mut self, mut resource: Resource) -> Arc<Resource> {
        let applied = limit_attributes(&mut resource.attributes, &mut resource.dropped_attributes_count, self.limits);
        self.record(applied);
        Arc::new(resource)
    }

    /// Applies the attribute limits to a scope and shares it.
    pub fn scope(&mut self, mut scope: Scope) -> Arc<Scope> {
        let applied = limit_attributes(&mut scope.attributes, &mut scope.dropped_attributes_count, self.limits);
        self.record(applied);
        Arc::new(scope)
    }

    pub fn check_times(&self, start: u64, end: u64) -> Result<(), Problem> {
        check_times(start, end, self.limits, self.now_unix_nanos)
    }

    /// Accepts a span whose IDs and times were checked, applying the limits.
    pub fn accept(&mut self, mut span: Span) {
        let applied = limit_span(&mut span, self.limits);
        self.record(applied);
        self.decoded.spans.push(span);
    }

    pub fn reject(&mut self, rejection: Rejection) {
        self.changed = true;
        self.decoded.rejected.push(rejection);
    }

    /// Notes a change a decoder made itself (a dropped link or value), so the batch is not
    /// [`Decoded::unchanged`].
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }

    fn record(&mut self, applied: Applied) {
        self.decoded.truncated_values += applied.num_truncated;
        self.changed |= applied.changed();
    }

    /// The batch, with [`Decoded::unchanged`] false: for bodies that are not OTLP protobuf.
    pub fn finish(self) -> Decoded {
        self.decoded
    }

    /// The batch decoded from an OTLP protobuf body, with [`Decoded::unchanged`] set when
    /// nothing was changed.
    pub fn finish_protobuf(self) -> Decoded {
        Decoded { unchanged: !self.changed, ..self.decoded }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000_000_000;

    #[test]
    fn times_are_checked_in_order() {
        let limits = Limits::default();
        assert_eq!(check_times(0, 0, &limits, NOW).unwrap_err().reason, RejectReason::MissingTimestamp);
        assert_eq!(check_times(10, 5, &limits, NOW).unwrap_err().reason, RejectReason::EndBeforeStart);
        assert!(check_times(NOW, NOW + limits.max_clock_skew_nanos, &limits, NOW).is_ok());
        let skewed = check_times(NOW, NOW + limits.max_clock_skew_nanos + 1, &limits, NOW).unwrap_err();
        assert_eq!(skewed.reason, RejectReason::ClockSkew);
        assert!(skewed.detail.starts_with("end time"), "{}", skewed.detail);
        let two_hours = 2 * 3600 * 1_000_000_000;
        let skewed = check_times(NOW + two_hours, NOW + two_hours, &limits, NOW).unwrap_err();
        assert!(skewed.detail.contains("start time") && skewed.detail.contains("7200 s ahead"), "{}", skewed.detail);
    }

    #[test]
    fn ids_report_their_problem() {
        assert_eq!(check_trace_id(&[]).unwrap_err().detail, "trace id is missing");
        assert_eq!(check_trace_id(&[0; 16]).unwrap_err().detail, "trace id is all zeros");
        assert_eq!(check_trace_id(&[1; 15]).unwrap_err().detail, "trace id has 15 bytes, expected 16");
        assert_eq!(check_span_id(&[0; 8]).unwrap_err().reason, RejectReason::InvalidSpanId);
        assert_eq!(check_parent_span_id(&[0; 8]), Ok(None));
        assert_eq!(check_parent_span_id(&[]), Ok(None));
        assert_eq!(check_parent_span_id(&[1; 4]).unwrap_err().reason, RejectReason::InvalidParentSpanId);
    }

    #[test]
    fn partial_success_message_quotes_the_first_rejections_within_bounds() {
        let mut decoded = Decoded::default();
        assert_eq!(decoded.partial_success_message(), None);
        for i in 0..5 {
            decoded.rejected.push(rejection(
                "0af7651916cd43dd8448eb211c80319c",
                &format!("{i:016x}"),
                &"x".repeat(500),
                Problem::new(RejectReason::EndBeforeStart, "end time 1 is before start time 2"),
            ));
        }
        let message = decoded.partial_success_message().unwrap();
        assert!(message.starts_with("5 spans rejected: span 0af7651916cd43dd8448eb211c80319c/0000000000000000 \""));
        assert!(message.contains("; and 2 more"), "{message}");
        assert!(message.len() <= MAX_PARTIAL_SUCCESS_BYTES);

        decoded.rejected.truncate(1);
        let message = decoded.partial_success_message().unwrap();
        assert!(message.starts_with("1 span rejected: "), "{message}");
        assert!(message.ends_with("end time 1 is before start time 2"), "{message}");
    }

    #[test]
    fn reject_reason_labels_are_distinct() {
        let mut labels: Vec<_> = RejectReason::ALL.iter().map(RejectReason::as_str).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), RejectReason::ALL.len());
        assert_eq!(RejectReason::InvalidTraceId.as_str(), "invalid_trace_id");
    }
}
