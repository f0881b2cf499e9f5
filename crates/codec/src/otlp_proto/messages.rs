//! The OTLP trace messages, read from the wire straight into the model.
//!
//! [`read`] walks an `ExportTraceServiceRequest` or `TracesData` body (the same wire format)
//! and hands each `ResourceSpans` to a [`Sink`] once it is complete: its resource, each of its
//! scopes, and each span as [`SpanParts`] (the span with its IDs as received, for the sink to
//! validate). A resource or scope may come after the spans it applies to, so spans wait for
//! the end of their `ResourceSpans`.
//!
//! Protobuf lets a field arrive more than once, in any order; the result is what prost makes
//! of it, converted as the model needs:
//!
//! | on the wire | result |
//! |---|---|
//! | a scalar, string or bytes field twice | the last one |
//! | a singular message twice (`resource`, `scope`, `status`, `KeyValue.value`) | merged: its fields read in order into one value |
//! | `AnyValue` fields of different kinds | the last one; an array after an array (a map after a map) appends to it |
//! | a repeated field | one element per occurrence, in order |
//! | an unknown field, or a field the model does not keep (`schema_url`, `entity_refs`, `key_strindex`) | read (strings checked as UTF-8) and dropped |
//!
//! Values without a model counterpart (an `AnyValue` with nothing set, a profiles-only
//! `string_value_strindex`) are dropped: an attribute holding one is counted in its item's
//! `dropped_attributes_count`; an array element or map entry is left out. With
//! [`LinkIds::Checked`] a link whose trace or span ID is invalid is dropped and counted in
//! `dropped_links_count`. Any of these sets the "dropped" flag [`read`] returns. Something
//! dropped inside an array or map that a later `AnyValue` field replaces does not count.
//!
//! Lists under construction live on stacks in [`Context`]: a reader notes the stack's length
//! when its message starts, pushes each element once it is complete, and finally moves its
//! elements into a vector of exactly their number. A nested list is complete before the next
//! element of its parent is pushed, so each open list is contiguous on its stack.

use std::sync::Arc;

use prost::encoding::WireType;
use sextant_model::{AnyValue, CompactString, Event, KeyValue, Link, Resource, Scope, SpanId, TraceId};

use super::wire::{Fields, Reader, WireError};
use crate::limits::add_dropped;
use crate::validate::{check_span_id, check_trace_id};

pub(super) static EXPORT_TRACE_SERVICE_REQUEST: Fields =
    Fields { message: "ExportTraceServiceRequest", names: &[(1, "resource_spans")] };
pub(super) static TRACES_DATA: Fields = Fields { message: "TracesData", names: &[(1, "resource_spans")] };
static RESOURCE_SPANS: Fields =
    Fields { message: "ResourceSpans", names: &[(1, "resource"), (2, "scope_spans"), (3, "schema_url")] };
static RESOURCE: Fields =
    Fields { message: "Resource", names: &[(1, "attributes"), (2, "dropped_attributes_count"), (3, "entity_refs")] };
static ENTITY_REF: Fields = Fields {
    message: "EntityRef",
    names: &[(1, "schema_url"), (2, "r#type"), (3, "id_keys"), (4, "description_keys")],
};
static SCOPE_SPANS: Fields = Fields { message: "ScopeSpans", names: &[(1, "scope"), (2, "spans"), (3, "schema_url")] };
static INSTRUMENTATION_SCOPE: Fields = Fields {
    message: "InstrumentationScope",
    names: &[(1, "name"), (2, "version"), (3, "attributes"), (4, "dropped_attributes_count")],
};
static SPAN: Fields = Fields {
    message: "Span",
    names: &[
        (1, "trace_id"),
        (2, "span_id"),
        (3, "trace_state"),
        (4, "parent_span_id"),
        (5, "name"),
        (6, "kind"),
        (7, "start_time_unix_nano"),
        (8, "end_time_unix_nano"),
        (9, "attributes"),
        (10, "dropped_attributes_count"),
        (11, "events"),
        (12, "dropped_events_count"),
        (13, "links"),
        (14, "dropped_links_count"),
        (15, "status"),
        (16, "flags"),
    ],
};
static EVENT: Fields = Fields {
    message: "Event",
    names: &[(1, "time_unix_nano"), (2, "name"), (3, "attributes"), (4, "dropped_attributes_count")],
};
static LINK: Fields = Fields {
    message: "Link",
    names: &[
        (1, "trace_id"),
        (2, "span_id"),
        (3, "trace_state"),
        (4, "attributes"),
        (5, "dropped_attributes_count"),
        (6, "flags"),
    ],
};
static STATUS: Fields = Fields { message: "Status", names: &[(2, "message"), (3, "code")] };
static KEY_VALUE: Fields = Fields { message: "KeyValue", names: &[(1, "key"), (2, "value"), (3, "key_strindex")] };
/// Every field of `AnyValue` is a variant of its `value` oneof.
static ANY_VALUE: Fields = Fields {
    message: "AnyValue",
    names: &[
        (1, "value"),
        (2, "value"),
        (3, "value"),
        (4, "value"),
        (5, "value"),
        (6, "value"),
        (7, "value"),
        (8, "value"),
    ],
};
static ARRAY_VALUE: Fields = Fields { message: "ArrayValue", names: &[(1, "values")] };
static KEY_VALUE_LIST: Fields = Fields { message: "KeyValueList", names: &[(1, "values")] };

/// Where decoded resources, scopes and spans go: `scope` as each `ScopeSpans` ends; as each
/// `ResourceSpans` ends, `resource`, then `span` for each of its spans in order.
pub(super) trait Sink<'a> {
    fn resource(&mut self, resource: Resource) -> Arc<Resource>;
    fn scope(&mut self, scope: Scope) -> Arc<Scope>;
    fn span(&mut self, span: SpanParts<'a>, resource: &Arc<Resource>, scope: &Arc<Scope>);
}

/// What to do with a link whose IDs are not valid.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkIds {
    /// Ingest: a link with a missing, wrong-length or all-zero trace or span ID is dropped and
    /// counted.
    Checked,
    /// WAL: links are kept as stored; one whose IDs have the wrong length marks its span
    /// ([`SpanParts::bad_link_id`]).
    Stored,
}

/// A span as read, waiting for its resource and scope: the span's own IDs as received
/// (borrowed from the body), everything else converted. Dropped counts include what the
/// conversion dropped.
pub(super) struct SpanParts<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub parent_span_id: &'a [u8],
    pub trace_state: String,
    pub flags: u32,
    pub name: CompactString,
    pub kind: i32,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status_code: i32,
    pub status_message: String,
    /// With [`LinkIds::Stored`]: a link's trace or span ID has the wrong length.
    pub bad_link_id: bool,
}

/// Reads a body whose field 1 is `repeated ResourceSpans` (`root` names the message for
/// errors), handing what it holds to `sink`. Returns whether the conversion dropped anything.
pub(super) fn read<'a>(
    body: &'a [u8],
    root: &'static Fields,
    link_ids: LinkIds,
    sink: &mut impl Sink<'a>,
) -> Result<bool, WireError> {
    let mut cx = Context {
        kvs: Vec::new(),
        values: Vec::new(),
        events: Vec::new(),
        links: Vec::new(),
        spans: Vec::new(),
        scopes: Vec::new(),
        link_ids,
        dropped_any: false,
    };
    Reader::new(body).root(root, |r, tag, wire_type, depth| match tag {
        1 => resource_spans(r, wire_type, depth, &mut cx, sink),
        _ => r.skip(wire_type, tag, depth),
    })?;
    Ok(cx.dropped_any)
}

/// State shared by the readers of one body.
struct Context<'a> {
    /// Open attribute lists and map entries.
    kvs: Vec<KeyValue>,
    /// Open array elements.
    values: Vec<AnyValue>,
    /// Events of the span being read.
    events: Vec<Event>,
    /// Links of the span being read.
    links: Vec<Link>,
    /// Spans of the `ResourceSpans` being read.
    spans: Vec<SpanParts<'a>>,
    /// Scopes of the `ResourceSpans` being read, with how many of `spans` each holds.
    scopes: Vec<(Arc<Scope>, usize)>,
    link_ids: LinkIds,
    /// Whether the conversion dropped anything so far.
    dropped_any: bool,
}

fn resource_spans<'a>(
    r: &mut Reader<'a>,
    wire_type: WireType,
    depth: u32,
    cx: &mut Context<'a>,
    sink: &mut impl Sink<'a>,
) -> Result<(), WireError> {
    let mut attributes = AttributeList::open(cx);
    let mut dropped_attributes_count = 0;
    r.message(wire_type, depth, &RESOURCE_SPANS, |r, tag, wire_type, depth| match tag {
        1 => r.message(wire_type, depth, &RESOURCE, |r, tag, wire_type, depth| match tag {
            1 => attributes.read(r, wire_type, depth, cx),
            2 => r.varint_field(wire_type).map(|count| dropped_attributes_count = count as u32),
            3 => entity_ref(r, wire_type, depth),
            _ => r.skip(wire_type, tag, depth),
        }),
        2 => scope_spans(r, wire_type, depth, cx, sink),
        3 => r.str_field(wire_type).map(|_| ()),
        _ => r.skip(wire_type, tag, depth),
    })?;
    let (attributes, dropped_attributes_count) = attributes.close(cx, dropped_attributes_count);
    let resource = sink.resource(Resource { attributes, dropped_attributes_count });
    let mut spans = cx.spans.drain(..);
    for (scope, num_spans) in cx.scopes.drain(..) {
        for span in spans.by_ref().take(num_spans) {
            sink.span(span, &resource, &scope);
        }
    }
    Ok(())
}

/// Checks an `EntityRef` (four strings) and drops it: the model does not keep it.
fn entity_ref(r: &mut Reader<'_>, wire_type: WireType, depth: u32) -> Result<(), WireError> {
    r.message(wire_type, depth, &ENTITY_REF, |r, tag, wire_type, depth| match tag {
        1..=4 => r.str_field(wire_type).map(|_| ()),
        _ => r.skip(wire_type, tag, depth),
    })
}

fn scope_spans<'a>(
    r: &mut Reader<'a>,
    wire_type: WireType,
    depth: u32,
    cx: &mut Context<'a>,
    sink: &mut impl Sink<'a>,
) -> Result<(), WireError> {
    let (mut name, mut version) = (String::new(), String::new());
    let mut attributes = AttributeList::open(cx);
    let mut dropped_attributes_count = 0;
    let mut num_spans = 0;
    r.message(wire_type, depth, &SCOPE_SPANS, |r, tag, wire_type, depth| match tag {
        1 => r.message(wire_type, depth, &INSTRUMENTATION_SCOPE, |r, tag, wire_type, depth| match tag {
            1 => r.str_field(wire_type).map(|s| name = s.to_owned()),
            2 => r.str_field(wire_type).map(|s| version = s.to_owned()),
            3 => attributes.read(r, wire_type, depth, cx),
            4 => r.varint_field(wire_type).map(|count| dropped_attributes_count = count as u32),
            _ => r.skip(wire_type, tag, depth),
        }),
        2 => span(r, wire_type, depth, cx).map(|()| num_spans += 1),
        3 => r.str_field(wire_type).map(|_| ()),
        _ => r.skip(wire_type, tag, depth),
    })?;
    let (attributes, dropped_attributes_count) = attributes.close(cx, dropped_attributes_count);
    let scope = sink.scope(Scope { name, version, attributes, dropped_attributes_count });
    cx.scopes.push((scope, num_spans));
    Ok(())
}

fn span<'a>(r: &mut Reader<'a>, wire_type: WireType, depth: u32, cx: &mut Context<'a>) -> Result<(), WireError> {
    let mut span = SpanParts {
        trace_id: &[],
        span_id: &[],
        parent_span_id: &[],
        trace_state: String::new(),
        flags: 0,
        name: CompactString::default(),
        kind: 0,
        start_unix_nanos: 0,
        end_unix_nanos: 0,
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status_code: 0,
        status_message: String::new(),
        bad_link_id: false,
    };
    let mut attributes = AttributeList::open(cx);
    let (events_start, links_start) = (cx.events.len(), cx.links.len());
    let mut num_links_dropped = 0;
    r.message(wire_type, depth, &SPAN, |r, tag, wire_type, depth| {
        match tag {
            1 => span.trace_id = r.bytes_field(wire_type)?,
            2 => span.span_id = r.bytes_field(wire_type)?,
            3 => span.trace_state = r.str_field(wire_type)?.to_owned(),
            4 => span.parent_span_id = r.bytes_field(wire_type)?,
            5 => span.name = CompactString::from(r.str_field(wire_type)?),
            6 => span.kind = r.varint_field(wire_type)? as i32,
            7 => span.start_unix_nanos = r.fixed64_field(wire_type)?,
            8 => span.end_unix_nanos = r.fixed64_field(wire_type)?,
            9 => attributes.read(r, wire_type, depth, cx)?,
            10 => span.dropped_attributes_count = r.varint_field(wire_type)? as u32,
            11 => event(r, wire_type, depth, cx)?,
            12 => span.dropped_events_count = r.varint_field(wire_type)? as u32,
            13 => link(r, wire_type, depth, cx, &mut num_links_dropped, &mut span.bad_link_id)?,
            14 => span.dropped_links_count = r.varint_field(wire_type)? as u32,
            15 => r.message(wire_type, depth, &STATUS, |r, tag, wire_type, depth| match tag {
                2 => r.str_field(wire_type).map(|s| span.status_message = s.to_owned()),
                3 => r.varint_field(wire_type).map(|code| span.status_code = code as i32),
                _ => r.skip(wire_type, tag, depth),
            })?,
            16 => span.flags = r.fixed32_field(wire_type)?,
            _ => r.skip(wire_type, tag, depth)?,
        }
        Ok(())
    })?;
    (span.attributes, span.dropped_attributes_count) = attributes.close(cx, span.dropped_attributes_count);
    span.events = cx.events.drain(events_start..).collect();
    span.links = cx.links.drain(links_start..).collect();
    add_dropped(&mut span.dropped_links_count, num_links_dropped);
    cx.spans.push(span);
    Ok(())
}

fn event(r: &mut Reader<'_>, wire_type: WireType, depth: u32, cx: &mut Context<'_>) -> Result<(), WireError> {
    let mut event = Event::default();
    let mut attributes = AttributeList::open(cx);
    r.message(wire_type, depth, &EVENT, |r, tag, wire_type, depth| match tag {
        1 => r.fixed64_field(wire_type).map(|time| event.time_unix_nanos = time),
        2 => r.str_field(wire_type).map(|s| event.name = s.to_owned()),
        3 => attributes.read(r, wire_type, depth, cx),
        4 => r.varint_field(wire_type).map(|count| event.dropped_attributes_count = count as u32),
        _ => r.skip(wire_type, tag, depth),
    })?;
    (event.attributes, event.dropped_attributes_count) = attributes.close(cx, event.dropped_attributes_count);
    cx.events.push(event);
    Ok(())
}

/// Reads a link and keeps it, or drops it and counts it in `num_dropped` (see [`LinkIds`]).
fn link(
    r: &mut Reader<'_>,
    wire_type: WireType,
    depth: u32,
    cx: &mut Context<'_>,
    num_dropped: &mut usize,
    bad_link_id: &mut bool,
) -> Result<(), WireError> {
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    let mut trace_state = String::new();
    let mut attributes = AttributeList::open(cx);
    let (mut dropped_attributes_count, mut flags) = (0, 0);
    r.message(wire_type, depth, &LINK, |r, tag, wire_type, depth| match tag {
        1 => r.bytes_field(wire_type).map(|id| trace_id = id),
        2 => r.bytes_field(wire_type).map(|id| span_id = id),
        3 => r.str_field(wire_type).map(|s| trace_state = s.to_owned()),
        4 => attributes.read(r, wire_type, depth, cx),
        5 => r.varint_field(wire_type).map(|count| dropped_attributes_count = count as u32),
        6 => r.fixed32_field(wire_type).map(|f| flags = f),
        _ => r.skip(wire_type, tag, depth),
    })?;
    let ids = match cx.link_ids {
        LinkIds::Checked => check_trace_id(trace_id).ok().zip(check_span_id(span_id).ok()),
        LinkIds::Stored => trace_id.try_into().ok().map(TraceId).zip(span_id.try_into().ok().map(SpanId)),
    };
    let Some((trace_id, span_id)) = ids else {
        attributes.discard(cx);
        match cx.link_ids {
            LinkIds::Checked => {
                *num_dropped += 1;
                cx.dropped_any = true;
            }
            LinkIds::Stored => *bad_link_id = true,
        }
        return Ok(());
    };
    let (attributes, dropped_attributes_count) = attributes.close(cx, dropped_attributes_count);
    cx.links.push(Link { trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags });
    Ok(())
}

/// The attribute list of a resource, scope, span, event or link being read: its attributes
/// are on `Context::kvs` from `start`.
struct AttributeList {
    start: usize,
    /// Attributes dropped for having no model value.
    num_dropped: usize,
}

impl AttributeList {
    fn open(cx: &Context<'_>) -> AttributeList {
        AttributeList { start: cx.kvs.len(), num_dropped: 0 }
    }

    /// Reads one attribute (one occurrence of the repeated field).
    fn read(
        &mut self,
        r: &mut Reader<'_>,
        wire_type: WireType,
        depth: u32,
        cx: &mut Context<'_>,
    ) -> Result<(), WireError> {
        match key_value(r, wire_type, depth, cx)? {
            Some(false) => {}
            Some(true) => cx.dropped_any = true,
            None => {
                self.num_dropped += 1;
                cx.dropped_any = true;
            }
        }
        Ok(())
    }

    /// The attributes, and `dropped_attributes_count` (as received) plus the attributes dropped.
    fn close(self, cx: &mut Context<'_>, mut dropped_attributes_count: u32) -> (Vec<KeyValue>, u32) {
        add_dropped(&mut dropped_attributes_count, self.num_dropped);
        (cx.kvs.drain(self.start..).collect(), dropped_attributes_count)
    }

    fn discard(self, cx: &mut Context<'_>) {
        cx.kvs.truncate(self.start);
    }
}

/// Reads a `KeyValue`. When its value has a model counterpart, pushes it onto `Context::kvs`
/// and returns whether something inside the value (an array element, a map entry) was
/// dropped; `None` when the value is missing or has no counterpart.
fn key_value(
    r: &mut Reader<'_>,
    wire_type: WireType,
    depth: u32,
    cx: &mut Context<'_>,
) -> Result<Option<bool>, WireError> {
    // Most attributes are a key and a string value and nothing else: read those at once. The
    // general reader below would need the same depth budget for the value inside.
    if wire_type == WireType::LengthDelimited
        && depth >= 2
        && let Some((key, value)) = r.string_pair()
    {
        cx.kvs.push(KeyValue { key: CompactString::from(key), value: AnyValue::String(CompactString::from(value)) });
        return Ok(Some(false));
    }
    let mut key = CompactString::default();
    let mut value = PendingValue::Empty;
    r.message(wire_type, depth, &KEY_VALUE, |r, tag, wire_type, depth| match tag {
        1 => r.str_field(wire_type).map(|s| key = CompactString::from(s)),
        2 => r.message(wire_type, depth, &ANY_VALUE, |r, tag, wire_type, depth| {
            any_value_field(r, tag, wire_type, depth, cx, &mut value)
        }),
        3 => r.varint_field(wire_type).map(|_| ()),
        _ => r.skip(wire_type, tag, depth),
    })?;
    Ok(cx.close_value(value).map(|(value, dropped_inside)| {
        cx.kvs.push(KeyValue { key, value });
        dropped_inside
    }))
}

/// Reads an `AnyValue` (one element of an array): the model value and whether something
/// inside it was dropped, or `None` when it has no model counterpart.
fn any_value(
    r: &mut Reader<'_>,
    wire_type: WireType,
    depth: u32,
    cx: &mut Context<'_>,
) -> Result<Option<(AnyValue, bool)>, WireError> {
    let mut value = PendingValue::Empty;
    r.message(wire_type, depth, &ANY_VALUE, |r, tag, wire_type, depth| {
        any_value_field(r, tag, wire_type, depth, cx, &mut value)
    })?;
    Ok(cx.close_value(value))
}

/// An `AnyValue` being read.
enum PendingValue {
    /// No field yet.
    Empty,
    String(CompactString),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    /// Elements on `Context::values` from `start`; `dropped`: an element, or something inside
    /// one, was dropped.
    Array {
        start: usize,
        dropped: bool,
    },
    /// Entries on `Context::kvs` from `start`; `dropped` as for arrays.
    KvList {
        start: usize,
        dropped: bool,
    },
    /// A profiles-only `string_value_strindex`: no model counterpart.
    StringIndex,
}

/// Reads one field of an `AnyValue` into `value`: every field is a variant of the `value`
/// oneof, so it replaces what `value` holds, except that an array (map) field after an array
/// (map) appends to it.
fn any_value_field(
    r: &mut Reader<'_>,
    tag: u32,
    wire_type: WireType,
    depth: u32,
    cx: &mut Context<'_>,
    value: &mut PendingValue,
) -> Result<(), WireError> {
    let new_value = match tag {
        1 => PendingValue::String(CompactString::from(r.str_field(wire_type)?)),
        2 => PendingValue::Bool(r.varint_field(wire_type)? != 0),
        3 => PendingValue::Int(r.varint_field(wire_type)? as i64),
        4 => PendingValue::Double(f64::from_bits(r.fixed64_field(wire_type)?)),
        5 => {
            let (start, mut dropped) = match *value {
                PendingValue::Array { start, dropped } => (start, dropped),
                _ => {
                    let start = cx.values.len();
                    cx.replace_value(value, PendingValue::Empty);
                    (start, false)
                }
            };
            r.message(wire_type, depth, &ARRAY_VALUE, |r, tag, wire_type, depth| match tag {
                1 => {
                    match any_value(r, wire_type, depth, cx)? {
                        Some((element, dropped_inside)) => {
                            cx.values.push(element);
                            dropped |= dropped_inside;
                        }
                        None => dropped = true,
                    }
                    Ok(())
                }
                _ => r.skip(wire_type, tag, depth),
            })?;
            *value = PendingValue::Array { start, dropped };
            return Ok(());
        }
        6 => {
            let (start, mut dropped) = match *value {
                PendingValue::KvList { start, dropped } => (start, dropped),
                _ => {
                    let start = cx.kvs.len();
                    cx.replace_value(value, PendingValue::Empty);
                    (start, false)
                }
            };
            r.message(wire_type, depth, &KEY_VALUE_LIST, |r, tag, wire_type, depth| match tag {
                1 => {
                    match key_value(r, wire_type, depth, cx)? {
                        Some(dropped_inside) => dropped |= dropped_inside,
                        None => dropped = true,
                    }
                    Ok(())
                }
                _ => r.skip(wire_type, tag, depth),
            })?;
            *value = PendingValue::KvList { start, dropped };
            return Ok(());
        }
        7 => PendingValue::Bytes(r.bytes_field(wire_type)?.to_vec()),
        8 => {
            r.varint_field(wire_type)?;
            PendingValue::StringIndex
        }
        _ => return r.skip(wire_type, tag, depth),
    };
    cx.replace_value(value, new_value);
    Ok(())
}

impl Context<'_> {
    /// Replaces a pending value, discarding the elements of a replaced array or map.
    #[inline]
    fn replace_value(&mut self, value: &mut PendingValue, new_value: PendingValue) {
        match *value {
            PendingValue::Array { start, .. } => self.values.truncate(start),
            PendingValue::KvList { start, .. } => self.kvs.truncate(start),
            _ => {}
        }
        *value = new_value;
    }

    /// The model value of a completely read `AnyValue`, and whether something inside it was
    /// dropped; `None` when it has no counterpart.
    fn close_value(&mut self, value: PendingValue) -> Option<(AnyValue, bool)> {
        Some(match value {
            PendingValue::Empty | PendingValue::StringIndex => return None,
            PendingValue::String(s) => (AnyValue::String(s), false),
            PendingValue::Bool(b) => (AnyValue::Bool(b), false),
            PendingValue::Int(i) => (AnyValue::Int(i), false),
            PendingValue::Double(d) => (AnyValue::Double(d), false),
            PendingValue::Bytes(b) => (AnyValue::Bytes(b), false),
            PendingValue::Array { start, dropped } => (AnyValue::Array(self.values.drain(start..).collect()), dropped),
            PendingValue::KvList { start, dropped } => (AnyValue::KvList(self.kvs.drain(start..).collect()), dropped),
        })
    }
}
