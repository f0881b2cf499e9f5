//! OTLP/JSON request bodies to the model (`POST /v1/traces` with `application/json`).
//!
//! Follows the OTLP/JSON encoding (the protobuf JSON mapping with OTLP's exceptions): field
//! names in lowerCamelCase, trace and span IDs in hexadecimal (either case), enums as numbers
//! (their proto names are accepted too), 64-bit integers as numbers or strings, bytes in base64,
//! unknown fields ignored, `null` meaning the default. See [`crate::json_fields`] for the
//! scalar forms.
//!
//! Error policy:
//! - a body that is not JSON, or a field of the wrong JSON type (`"spans": 5`,
//!   `"startTimeUnixNano": true`), refuses the whole request with a [`DecodeError::Json`]
//!   naming the path, line and column;
//! - an ID that is not hexadecimal only refuses its span (`InvalidTraceId`, `InvalidSpanId`,
//!   `InvalidParentSpanId`) so the rest of the batch is kept: IDs are read as strings and
//!   decoded per span. A link with such an ID is dropped and counted.
//!
//! The OTLP "empty" `AnyValue` (an object with no known value field) has no model counterpart:
//! an attribute holding one is dropped and counted, as in [`crate::otlp_proto`].

use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use sextant_model::{AnyValue, CompactString, Event, KeyValue, Link, Resource, Scope, Span, SpanKind, StatusCode};

use crate::error::parse_json;
use crate::json_fields::{Base64, Double, Integer, ObjectOnly, enumeration, integer, nullable};
use crate::limits::{Limits, add_dropped};
use crate::proto::tonic::trace::v1 as pt;
use crate::validate::{
    BatchBuilder, Problem, RejectReason, Rejection, check_parent_span_id, check_span_id, check_trace_id, decode_hex_id,
    rejection,
};
use crate::{DecodeError, Decoded};

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` body, validating every span.
pub fn decode_otlp_json(body: &[u8], limits: &Limits, now_unix_nanos: u64) -> Result<Decoded, DecodeError> {
    let ObjectOnly(request) = parse_json::<ObjectOnly<JsonRequest>>(body).map_err(DecodeError::Json)?;
    let mut batch = BatchBuilder::new(limits, now_unix_nanos);
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.unwrap_or_default();
        let mut dropped_attributes_count = resource.dropped_attributes_count;
        let attributes = json_attributes(resource.attributes, &mut dropped_attributes_count);
        let resource = batch.resource(Resource { attributes, dropped_attributes_count });
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.unwrap_or_default();
            let mut dropped_attributes_count = scope.dropped_attributes_count;
            let attributes = json_attributes(scope.attributes, &mut dropped_attributes_count);
            let scope =
                batch.scope(Scope { name: scope.name, version: scope.version, attributes, dropped_attributes_count });
            for span in scope_spans.spans {
                match span.checked(&batch, &resource, &scope) {
                    Ok(span) => batch.accept(span),
                    Err(rejection) => batch.reject(rejection),
                }
            }
        }
    }
    Ok(batch.finish())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonRequest {
    #[serde(default, deserialize_with = "nullable")]
    resource_spans: Vec<JsonResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonResourceSpans {
    #[serde(default)]
    resource: Option<JsonResource>,
    #[serde(default, deserialize_with = "nullable")]
    scope_spans: Vec<JsonScopeSpans>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonResource {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
    #[serde(default, deserialize_with = "integer")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonScopeSpans {
    #[serde(default)]
    scope: Option<JsonScope>,
    #[serde(default, deserialize_with = "nullable")]
    spans: Vec<JsonSpan>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonScope {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    version: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
    #[serde(default, deserialize_with = "integer")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    #[serde(default, deserialize_with = "nullable")]
    trace_id: String,
    #[serde(default, deserialize_with = "nullable")]
    span_id: String,
    #[serde(default, deserialize_with = "nullable")]
    trace_state: String,
    #[serde(default, deserialize_with = "nullable")]
    parent_span_id: String,
    #[serde(default, deserialize_with = "integer")]
    flags: u32,
    #[serde(default, deserialize_with = "nullable")]
    name: CompactString,
    #[serde(default, deserialize_with = "span_kind")]
    kind: i32,
    #[serde(default, deserialize_with = "integer")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "integer")]
    end_time_unix_nano: u64,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
    #[serde(default, deserialize_with = "integer")]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "nullable")]
    events: Vec<JsonEvent>,
    #[serde(default, deserialize_with = "integer")]
    dropped_events_count: u32,
    #[serde(default, deserialize_with = "nullable")]
    links: Vec<JsonLink>,
    #[serde(default, deserialize_with = "integer")]
    dropped_links_count: u32,
    #[serde(default)]
    status: Option<JsonStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonEvent {
    #[serde(default, deserialize_with = "integer")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
    #[serde(default, deserialize_with = "integer")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonLink {
    #[serde(default, deserialize_with = "nullable")]
    trace_id: String,
    #[serde(default, deserialize_with = "nullable")]
    span_id: String,
    #[serde(default, deserialize_with = "nullable")]
    trace_state: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
    #[serde(default, deserialize_with = "integer")]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "integer")]
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonStatus {
    #[serde(default, deserialize_with = "nullable")]
    message: String,
    #[serde(default, deserialize_with = "status_code")]
    code: i32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonKeyValue {
    #[serde(default, deserialize_with = "nullable")]
    key: CompactString,
    #[serde(default)]
    value: JsonAnyValue,
}

/// An `AnyValue`; `None` for OTLP's empty value.
#[derive(Default)]
struct JsonAnyValue(Option<AnyValue>);

#[derive(Deserialize, Default)]
struct JsonArrayValue {
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<JsonAnyValue>,
}

#[derive(Deserialize, Default)]
struct JsonKeyValueList {
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<JsonKeyValue>,
}

fn span_kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    enumeration(deserializer, "span kind", |name| pt::span::SpanKind::from_str_name(name).map(|k| k as i32))
}

fn status_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    enumeration(deserializer, "status code", |name| pt::status::StatusCode::from_str_name(name).map(|c| c as i32))
}

impl<'de> Deserialize<'de> for JsonAnyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyValueVisitor)
    }
}

struct AnyValueVisitor;

/// The value fields of an `AnyValue` object; anything else is ignored.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ValueField {
    StringValue,
    BoolValue,
    IntValue,
    DoubleValue,
    BytesValue,
    ArrayValue,
    KvlistValue,
    #[serde(other)]
    Other,
}

impl<'de> Visitor<'de> for AnyValueVisitor {
    type Value = JsonAnyValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an AnyValue object such as {\"stringValue\": \"…\"}")
    }

    fn visit_unit<E: de::Error>(self) -> Result<JsonAnyValue, E> {
        Ok(JsonAnyValue(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonAnyValue, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key::<ValueField>()? {
            let next = match key {
                ValueField::StringValue => map.next_value::<Option<CompactString>>()?.map(AnyValue::String),
                ValueField::BoolValue => map.next_value::<Option<bool>>()?.map(AnyValue::Bool),
                ValueField::IntValue => map.next_value::<Option<Integer<i64>>>()?.map(|i| AnyValue::Int(i.0)),
                ValueField::DoubleValue => map.next_value::<Option<Double>>()?.map(|d| AnyValue::Double(d.0)),
                ValueField::BytesValue => map.next_value::<Option<Base64>>()?.map(|b| AnyValue::Bytes(b.0)),
                ValueField::ArrayValue => map
                    .next_value::<Option<JsonArrayValue>>()?
                    .map(|a| AnyValue::Array(a.values.into_iter().filter_map(|v| v.0).collect())),
                ValueField::KvlistValue => map.next_value::<Option<JsonKeyValueList>>()?.map(|list| {
                    AnyValue::KvList(
                        list.values
                            .into_iter()
                            .filter_map(|kv| Some(KeyValue { key: kv.key, value: kv.value.0? }))
                            .collect(),
                    )
                }),
                ValueField::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if next.is_some() {
                value = next;
            }
        }
        Ok(JsonAnyValue(value))
    }
}

/// Converts attributes; those without a value are dropped and counted in `dropped`.
fn json_attributes(attributes: Vec<JsonKeyValue>, dropped: &mut u32) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(attributes.len());
    for kv in attributes {
        match kv.value.0 {
            Some(value) => out.push(KeyValue { key: kv.key, value }),
            None => add_dropped(dropped, 1),
        }
    }
    out
}

impl JsonSpan {
    /// Validates the span and converts it.
    fn checked(
        self,
        batch: &BatchBuilder<'_>,
        resource: &Arc<Resource>,
        scope: &Arc<Scope>,
    ) -> Result<Span, Rejection> {
        let checked = (|| {
            let trace_id = check_trace_id(&decode_hex_id(&self.trace_id, RejectReason::InvalidTraceId, "trace id")?)?;
            let span_id = check_span_id(&decode_hex_id(&self.span_id, RejectReason::InvalidSpanId, "span id")?)?;
            let parent = decode_hex_id(&self.parent_span_id, RejectReason::InvalidParentSpanId, "parent span id")?;
            let parent_span_id = check_parent_span_id(&parent)?;
            batch.check_times(self.start_time_unix_nano, self.end_time_unix_nano)?;
            Ok::<_, Problem>((trace_id, span_id, parent_span_id))
        })();
        let (trace_id, span_id, parent_span_id) = match checked {
            Ok(ids) => ids,
            Err(problem) => return Err(rejection(&self.trace_id, &self.span_id, &self.name, problem)),
        };
        let mut dropped_attributes_count = self.dropped_attributes_count;
        let attributes = json_attributes(self.attributes, &mut dropped_attributes_count);
        let mut dropped_links_count = self.dropped_links_count;
        let mut links = Vec::with_capacity(self.links.len());
        for link in self.links {
            match link.into_model() {
                Some(link) => links.push(link),
                None => add_dropped(&mut dropped_links_count, 1),
            }
        }
        let status = self.status.unwrap_or_default();
        let span = Span {
            trace_id,
            span_id,
            parent_span_id,
            trace_state: self.trace_state,
            flags: self.flags,
            name: self.name,
            kind: SpanKind::from_i32(self.kind),
            start_unix_nanos: self.start_time_unix_nano,
            end_unix_nanos: self.end_time_unix_nano,
            attributes,
            dropped_attributes_count,
            events: self.events.into_iter().map(JsonEvent::into_model).collect(),
            dropped_events_count: self.dropped_events_count,
            links,
            dropped_links_count,
            status_code: StatusCode::from_i32(status.code),
            status_message: status.message,
            resource: resource.clone(),
            scope: scope.clone(),
        };
        Ok(span)
    }
}

impl JsonEvent {
    fn into_model(self) -> Event {
        let mut dropped_attributes_count = self.dropped_attributes_count;
        Event {
            time_unix_nanos: self.time_unix_nano,
            name: self.name,
            attributes: json_attributes(self.attributes, &mut dropped_attributes_count),
            dropped_attributes_count,
        }
    }
}

impl JsonLink {
    /// `None` when an ID is invalid.
    fn into_model(self) -> Option<Link> {
        let trace_id = check_trace_id(&hex::decode(&self.trace_id).ok()?).ok()?;
        let span_id = check_span_id(&hex::decode(&self.span_id).ok()?).ok()?;
        let mut dropped_attributes_count = self.dropped_attributes_count;
        Some(Link {
            trace_id,
            span_id,
            trace_state: self.trace_state,
            attributes: json_attributes(self.attributes, &mut dropped_attributes_count),
            dropped_attributes_count,
            flags: self.flags,
        })
    }
}
