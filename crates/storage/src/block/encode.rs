//! Spans → one Arrow record batch in the block schema.
//!
//! The caller passes spans already in block order; this module does no sorting. Resources
//! and scopes are encoded once per distinct value per batch (recognised first by `Arc`
//! pointer, then by content) into the dictionary columns `resource_attributes` and
//! `scope_attributes`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, FixedSizeBinaryBuilder, StringBuilder, UInt8Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, ListArray, RecordBatch, StringArray, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Fields};
use sextant_model::{KeyValue, Resource, Span};

use super::attributes::{AttributeListBuilder, to_otlp_json};
use super::schema::{block_schema, event_fields, link_fields};

/// `service.name` of spans' resources, looked up once per resource (recognised by `Arc`
/// pointer: the spans of a request share one resource, and a block's spans come from a few
/// hundred requests).
#[derive(Default)]
pub(crate) struct ServiceNames {
    /// By resource address: the resource (kept alive, so its address cannot be reused
    /// meanwhile) and its name.
    seen: HashMap<usize, (Arc<Resource>, String), ahash::RandomState>,
}

impl ServiceNames {
    /// Resources remembered at once; beyond, the map starts over.
    const CAPACITY: usize = 4_096;

    pub(crate) fn of(&mut self, span: &Span) -> &str {
        let address = Arc::as_ptr(&span.resource) as usize;
        if self.seen.len() >= Self::CAPACITY && !self.seen.contains_key(&address) {
            self.seen.clear();
        }
        let (_, name) =
            self.seen.entry(address).or_insert_with(|| (span.resource.clone(), span.service_name().to_owned()));
        name
    }
}

/// Encodes `spans` (in block order) as one record batch.
pub(crate) fn encode_batch<S: Borrow<Span>>(
    spans: &[S],
    service_names: &mut ServiceNames,
) -> Result<RecordBatch, ArrowError> {
    let n = spans.len();
    let mut trace_ids = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut span_ids = FixedSizeBinaryBuilder::with_capacity(n, 8);
    let mut parent_ids = FixedSizeBinaryBuilder::with_capacity(n, 8);
    let mut starts = UInt64Builder::with_capacity(n);
    let mut durations = UInt64Builder::with_capacity(n);
    let mut services = StringBuilder::new();
    let mut names = StringBuilder::new();
    let mut kinds = UInt8Builder::with_capacity(n);
    let mut status_codes = UInt8Builder::with_capacity(n);
    let mut status_messages = StringBuilder::new();
    let mut trace_states = StringBuilder::new();
    let mut flags = UInt32Builder::with_capacity(n);
    let mut attributes = AttributeListBuilder::with_capacity(n);
    let mut dropped_attributes = UInt32Builder::with_capacity(n);
    let mut events = EventListBuilder::with_capacity(n);
    let mut dropped_events = UInt32Builder::with_capacity(n);
    let mut links = LinkListBuilder::with_capacity(n);
    let mut dropped_links = UInt32Builder::with_capacity(n);
    let mut resources = JsonDictionaryBuilder::with_capacity(n);
    let mut resource_dropped = UInt32Builder::with_capacity(n);
    let mut scope_names = StringBuilder::new();
    let mut scope_versions = StringBuilder::new();
    let mut scopes = JsonDictionaryBuilder::with_capacity(n);
    let mut scope_dropped = UInt32Builder::with_capacity(n);

    for span in spans {
        let span: &Span = span.borrow();
        trace_ids.append_value(span.trace_id.as_bytes())?;
        span_ids.append_value(span.span_id.as_bytes())?;
        match &span.parent_span_id {
            Some(parent) => parent_ids.append_value(parent.as_bytes())?,
            None => parent_ids.append_null(),
        }
        starts.append_value(span.start_unix_nanos);
        // Wrapping, so that an end before the start (rejected at ingest) still round trips.
        durations.append_value(span.end_unix_nanos.wrapping_sub(span.start_unix_nanos));
        services.append_value(service_names.of(span));
        names.append_value(&span.name);
        kinds.append_value(span.kind as u8);
        status_codes.append_value(span.status_code as u8);
        status_messages.append_value(&span.status_message);
        trace_states.append_value(&span.trace_state);
        flags.append_value(span.flags);
        attributes.append(&span.attributes);
        dropped_attributes.append_value(span.dropped_attributes_count);
        events.append(span);
        dropped_events.append_value(span.dropped_events_count);
        links.append(span);
        dropped_links.append_value(span.dropped_links_count);
        resources.append(Arc::as_ptr(&span.resource) as usize, &span.resource.attributes);
        resource_dropped.append_value(span.resource.dropped_attributes_count);
        scope_names.append_value(&span.scope.name);
        scope_versions.append_value(&span.scope.version);
        scopes.append(Arc::as_ptr(&span.scope) as usize, &span.scope.attributes);
        scope_dropped.append_value(span.scope.dropped_attributes_count);
    }

    let columns: Vec<ArrayRef> = vec![
        Arc::new(trace_ids.finish()),
        Arc::new(span_ids.finish()),
        Arc::new(parent_ids.finish()),
        Arc::new(starts.finish()),
        Arc::new(durations.finish()),
        Arc::new(services.finish()),
        Arc::new(names.finish()),
        Arc::new(kinds.finish()),
        Arc::new(status_codes.finish()),
        Arc::new(status_messages.finish()),
        Arc::new(trace_states.finish()),
        Arc::new(flags.finish()),
        attributes.finish(),
        Arc::new(dropped_attributes.finish()),
        events.finish(),
        Arc::new(dropped_events.finish()),
        links.finish(),
        Arc::new(dropped_links.finish()),
        resources.finish()?,
        Arc::new(resource_dropped.finish()),
        Arc::new(scope_names.finish()),
        Arc::new(scope_versions.finish()),
        scopes.finish()?,
        Arc::new(scope_dropped.finish()),
    ];
    RecordBatch::try_new(block_schema(), columns)
}

fn list_array(fields: Fields, columns: Vec<ArrayRef>, offsets: Vec<i32>) -> ArrayRef {
    let values = StructArray::new(fields.clone(), columns, None);
    let item = Arc::new(Field::new("item", DataType::Struct(fields), false));
    Arc::new(ListArray::new(item, OffsetBuffer::new(offsets.into()), Arc::new(values), None))
}

/// A dictionary column of OTLP/JSON attribute lists, deduplicated per batch.
struct JsonDictionaryBuilder {
    keys: Vec<i32>,
    values: Vec<String>,
    by_pointer: HashMap<usize, i32>,
    by_text: HashMap<String, i32>,
}

impl JsonDictionaryBuilder {
    fn with_capacity(rows: usize) -> Self {
        JsonDictionaryBuilder {
            keys: Vec::with_capacity(rows),
            values: Vec::new(),
            by_pointer: HashMap::new(),
            by_text: HashMap::new(),
        }
    }

    /// `pointer` identifies the owner of `attributes` (an `Arc`'s address), so spans sharing
    /// one resource are encoded once; distinct owners with equal attributes share an entry too.
    fn append(&mut self, pointer: usize, attributes: &[KeyValue]) {
        let key = match self.by_pointer.get(&pointer) {
            Some(key) => *key,
            None => {
                let text = to_otlp_json(attributes);
                let next = self.values.len() as i32;
                let key = *self.by_text.entry(text).or_insert_with_key(|text| {
                    self.values.push(text.clone());
                    next
                });
                self.by_pointer.insert(pointer, key);
                key
            }
        };
        self.keys.push(key);
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        let dictionary = DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(self.keys),
            Arc::new(StringArray::from(self.values)),
        )?;
        Ok(Arc::new(dictionary))
    }
}

struct EventListBuilder {
    offsets: Vec<i32>,
    times: UInt64Builder,
    names: StringBuilder,
    attributes: StringBuilder,
    dropped: UInt32Builder,
}

impl EventListBuilder {
    fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        EventListBuilder {
            offsets,
            times: UInt64Builder::new(),
            names: StringBuilder::new(),
            attributes: StringBuilder::new(),
            dropped: UInt32Builder::new(),
        }
    }

    fn append(&mut self, span: &Span) {
        for event in &span.events {
            self.times.append_value(event.time_unix_nanos);
            self.names.append_value(&event.name);
            self.attributes.append_value(to_otlp_json(&event.attributes));
            self.dropped.append_value(event.dropped_attributes_count);
        }
        self.offsets.push(self.times.len() as i32);
    }

    fn finish(mut self) -> ArrayRef {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.times.finish()),
            Arc::new(self.names.finish()),
            Arc::new(self.attributes.finish()),
            Arc::new(self.dropped.finish()),
        ];
        list_array(event_fields(), columns, self.offsets)
    }
}

struct LinkListBuilder {
    offsets: Vec<i32>,
    trace_ids: FixedSizeBinaryBuilder,
    span_ids: FixedSizeBinaryBuilder,
    trace_states: StringBuilder,
    attributes: StringBuilder,
    dropped: UInt32Builder,
    flags: UInt32Builder,
}

impl LinkListBuilder {
    fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        LinkListBuilder {
            offsets,
            trace_ids: FixedSizeBinaryBuilder::new(16),
            span_ids: FixedSizeBinaryBuilder::new(8),
            trace_states: StringBuilder::new(),
            attributes: StringBuilder::new(),
            dropped: UInt32Builder::new(),
            flags: UInt32Builder::new(),
        }
    }

    fn append(&mut self, span: &Span) {
        for link in &span.links {
            self.trace_ids.append_value(link.trace_id.as_bytes()).expect("16 bytes");
            self.span_ids.append_value(link.span_id.as_bytes()).expect("8 bytes");
            self.trace_states.append_value(&link.trace_state);
            self.attributes.append_value(to_otlp_json(&link.attributes));
            self.dropped.append_value(link.dropped_attributes_count);
            self.flags.append_value(link.flags);
        }
        self.offsets.push(self.flags.len() as i32);
    }

    fn finish(mut self) -> ArrayRef {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_ids.finish()),
            Arc::new(self.span_ids.finish()),
            Arc::new(self.trace_states.finish()),
            Arc::new(self.attributes.finish()),
            Arc::new(self.dropped.finish()),
            Arc::new(self.flags.finish()),
        ];
        list_array(link_fields(), columns, self.offsets)
    }
}

#[cfg(test)]
mod tests {
    use sextant_model::{SpanId, TraceId};

    use super::*;

    #[test]
    fn service_names_follow_each_spans_resource_beyond_the_remembered_ones() {
        let resources: Vec<Arc<Resource>> = (0..ServiceNames::CAPACITY + 10)
            .map(|i| {
                Arc::new(Resource {
                    attributes: vec![KeyValue::string("service.name", format!("service-{}", i % 7))],
                    ..Default::default()
                })
            })
            .collect();
        let mut names = ServiceNames::default();
        // Twice over, in an order that revisits resources after the map started over.
        for round in 0..2 {
            for (i, resource) in resources.iter().enumerate().rev() {
                let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), "op", 1, 2);
                span.resource = resource.clone();
                assert_eq!(names.of(&span), format!("service-{}", i % 7), "round {round}, resource {i}");
            }
        }
        let mut unnamed = Span::new(TraceId([1; 16]), SpanId([1; 8]), "op", 1, 2);
        unnamed.resource = Arc::new(Resource::default());
        assert_eq!(names.of(&unnamed), sextant_model::UNKNOWN_SERVICE);
    }
}
