//! Arrow record batches in the block schema → spans.
//!
//! A [`SpanDecoder`] lives for one read (one block or one compaction input) and shares
//! resources and scopes across all the spans it produces: each distinct resource or scope is
//! parsed once per batch and then reused through an `Arc`, as the model expects (spans of one
//! OTLP `ScopeSpans` share them).
//!
//! Decoding never panics on a malformed batch: every mismatch becomes an error string that
//! the caller wraps into `BlockError::Corrupt` with the block's ID.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, FixedSizeBinaryArray, PrimitiveArray, RecordBatch, StringArray};
use sextant_model::{Event, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

use super::attributes::{AttributeListReader, from_otlp_json};
use super::schema::*;

/// Which rows of a batch become spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RowFilter {
    All,
    Trace(TraceId),
    /// Spans of these traces (sorted).
    Traces(Arc<[TraceId]>),
    /// Spans whose start lies in `[start, end]`.
    StartRange(u64, u64),
}

#[derive(Default)]
pub(crate) struct SpanDecoder {
    resources: HashMap<(String, u32), Arc<Resource>>,
    scopes: HashMap<(String, String, String, u32), Arc<Scope>>,
}

type Result<T> = std::result::Result<T, String>;

pub(super) fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    batch.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| format!("missing column {name}"))
}

pub(super) fn fixed<'a>(batch: &'a RecordBatch, name: &str, width: i32) -> Result<&'a FixedSizeBinaryArray> {
    match column(batch, name)?.as_fixed_size_binary_opt() {
        Some(array) if array.value_length() == width => Ok(array),
        _ => Err(format!("column {name} is not FixedSizeBinary({width})")),
    }
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    column(batch, name)?.as_string_opt::<i32>().ok_or_else(|| format!("column {name} is not Utf8"))
}

pub(super) fn primitive<'a, T: arrow_array::ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a PrimitiveArray<T>> {
    column(batch, name)?.as_primitive_opt::<T>().ok_or_else(|| format!("column {name} has the wrong type"))
}

/// A Utf8 column that may be dictionary-encoded: `key(row)` names the distinct value.
pub(super) struct TextColumn<'a> {
    keys: Option<&'a PrimitiveArray<Int32Type>>,
    values: &'a StringArray,
}

impl<'a> TextColumn<'a> {
    pub(super) fn new(batch: &'a RecordBatch, name: &str) -> Result<Self> {
        Self::of(column(batch, name)?, name)
    }

    /// The column `array`, named `name` in errors.
    pub(super) fn of(array: &'a dyn Array, name: &str) -> Result<Self> {
        if let Some(dictionary) = array.as_dictionary_opt::<Int32Type>() {
            let values =
                dictionary.values().as_string_opt::<i32>().ok_or_else(|| format!("{name}: values not Utf8"))?;
            return Ok(TextColumn { keys: Some(dictionary.keys()), values });
        }
        let values = array.as_string_opt::<i32>().ok_or_else(|| format!("column {name} is not Utf8"))?;
        Ok(TextColumn { keys: None, values })
    }

    pub(super) fn is_null(&self, row: usize) -> bool {
        match self.keys {
            Some(keys) => keys.is_null(row),
            None => self.values.is_null(row),
        }
    }

    /// The number of distinct keys: the dictionary's values, or the rows of a plain column.
    pub(super) fn distinct_len(&self) -> usize {
        self.values.len()
    }

    pub(super) fn key(&self, row: usize) -> usize {
        self.keys.map_or(row, |keys| keys.value(row) as usize)
    }

    /// With a dictionary, the keys of its values equal to `text` (usually none or one), and
    /// every row's key; `None` for a plain column.
    pub(super) fn keys_of(&self, text: &str) -> Option<(Vec<i32>, &'a [i32])> {
        let keys = self.keys?;
        let equal = (0..self.values.len())
            .filter(|&key| !self.values.is_null(key) && self.values.value(key) == text)
            .map(|key| key as i32)
            .collect();
        Some((equal, keys.values()))
    }

    /// With a dictionary, whether each distinct value equals `text`; `None` for a plain
    /// column (compare each row's text instead).
    pub(super) fn distinct_equal(&self, text: &str) -> Option<Vec<bool>> {
        self.keys.map(|_| {
            (0..self.values.len()).map(|key| !self.values.is_null(key) && self.values.value(key) == text).collect()
        })
    }

    /// Whether row `row` equals `text`, given [`TextColumn::distinct_equal`] of it.
    pub(super) fn row_equals(&self, row: usize, distinct: Option<&[bool]>, text: &str) -> Result<bool> {
        match distinct {
            Some(equal) => equal
                .get(self.key(row))
                .copied()
                .ok_or_else(|| format!("dictionary key {} out of range", self.key(row))),
            None => Ok(self.values.value(row) == text),
        }
    }

    pub(super) fn text(&self, key: usize) -> Result<&'a str> {
        if key >= self.values.len() {
            return Err(format!("dictionary key {key} out of range"));
        }
        Ok(self.values.value(key))
    }
}

pub(super) fn trace_id_at(array: &FixedSizeBinaryArray, row: usize) -> TraceId {
    TraceId(array.value(row).try_into().expect("width checked"))
}

fn span_id_at(array: &FixedSizeBinaryArray, row: usize) -> SpanId {
    SpanId(array.value(row).try_into().expect("width checked"))
}

impl SpanDecoder {
    /// Appends to `out` the spans of `batch` that pass `filter`, in row order.
    pub(crate) fn decode(&mut self, batch: &RecordBatch, filter: &RowFilter, out: &mut Vec<Span>) -> Result<()> {
        let trace_ids = fixed(batch, TRACE_ID, 16)?;
        let span_ids = fixed(batch, SPAN_ID, 8)?;
        let parent_ids = fixed(batch, PARENT_SPAN_ID, 8)?;
        let starts = primitive::<UInt64Type>(batch, START_UNIX_NANOS)?;
        let durations = primitive::<UInt64Type>(batch, DURATION_NANOS)?;
        let names = strings(batch, NAME)?;
        let kinds = primitive::<UInt8Type>(batch, KIND)?;
        let status_codes = primitive::<UInt8Type>(batch, STATUS_CODE)?;
        let status_messages = strings(batch, STATUS_MESSAGE)?;
        let trace_states = strings(batch, TRACE_STATE)?;
        let flags = primitive::<UInt32Type>(batch, FLAGS)?;
        let attributes = AttributeListReader::new(column(batch, ATTRIBUTES)?)?;
        let dropped_attributes = primitive::<UInt32Type>(batch, DROPPED_ATTRIBUTES_COUNT)?;
        let events = EventListReader::new(column(batch, EVENTS)?)?;
        let dropped_events = primitive::<UInt32Type>(batch, DROPPED_EVENTS_COUNT)?;
        let links = LinkListReader::new(column(batch, LINKS)?)?;
        let dropped_links = primitive::<UInt32Type>(batch, DROPPED_LINKS_COUNT)?;
        let resources = TextColumn::new(batch, RESOURCE_ATTRIBUTES)?;
        let resource_dropped = primitive::<UInt32Type>(batch, RESOURCE_DROPPED_ATTRIBUTES_COUNT)?;
        let scope_names = strings(batch, SCOPE_NAME)?;
        let scope_versions = strings(batch, SCOPE_VERSION)?;
        let scopes = TextColumn::new(batch, SCOPE_ATTRIBUTES)?;
        let scope_dropped = primitive::<UInt32Type>(batch, SCOPE_DROPPED_ATTRIBUTES_COUNT)?;

        let mut batch_resources: HashMap<(usize, u32), Arc<Resource>> = HashMap::new();
        let mut batch_scopes: HashMap<(&str, &str, usize, u32), Arc<Scope>> = HashMap::new();
        for row in 0..batch.num_rows() {
            let keep = match filter {
                RowFilter::All => true,
                RowFilter::Trace(trace_id) => trace_ids.value(row) == trace_id.as_bytes(),
                RowFilter::Traces(sorted) => {
                    sorted.binary_search_by(|id| id.as_bytes()[..].cmp(trace_ids.value(row))).is_ok()
                }
                RowFilter::StartRange(start, end) => (*start..=*end).contains(&starts.value(row)),
            };
            if !keep {
                continue;
            }
            let resource_key = (resources.key(row), resource_dropped.value(row));
            let resource = match batch_resources.get(&resource_key) {
                Some(resource) => resource.clone(),
                None => {
                    let resource = self.resource(resources.text(resource_key.0)?, resource_key.1)?;
                    batch_resources.insert(resource_key, resource.clone());
                    resource
                }
            };
            let scope_key =
                (scope_names.value(row), scope_versions.value(row), scopes.key(row), scope_dropped.value(row));
            let scope = match batch_scopes.get(&scope_key) {
                Some(scope) => scope.clone(),
                None => {
                    let scope = self.scope(scope_key.0, scope_key.1, scopes.text(scope_key.2)?, scope_key.3)?;
                    batch_scopes.insert(scope_key, scope.clone());
                    scope
                }
            };
            let start = starts.value(row);
            out.push(Span {
                trace_id: trace_id_at(trace_ids, row),
                span_id: span_id_at(span_ids, row),
                parent_span_id: (!parent_ids.is_null(row)).then(|| span_id_at(parent_ids, row)),
                trace_state: trace_states.value(row).to_owned(),
                flags: flags.value(row),
                name: names.value(row).into(),
                kind: SpanKind::from_i32(kinds.value(row) as i32),
                start_unix_nanos: start,
                end_unix_nanos: start.wrapping_add(durations.value(row)),
                attributes: attributes.row(row)?,
                dropped_attributes_count: dropped_attributes.value(row),
                events: events.row(row)?,
                dropped_events_count: dropped_events.value(row),
                links: links.row(row)?,
                dropped_links_count: dropped_links.value(row),
                status_code: StatusCode::from_i32(status_codes.value(row) as i32),
                status_message: status_messages.value(row).to_owned(),
                resource,
                scope,
            });
        }
        Ok(())
    }

    fn resource(&mut self, text: &str, dropped: u32) -> Result<Arc<Resource>> {
        if let Some(resource) = self.resources.get(&(text.to_owned(), dropped)) {
            return Ok(resource.clone());
        }
        let resource = Arc::new(Resource { attributes: from_otlp_json(text)?, dropped_attributes_count: dropped });
        self.resources.insert((text.to_owned(), dropped), resource.clone());
        Ok(resource)
    }

    fn scope(&mut self, name: &str, version: &str, text: &str, dropped: u32) -> Result<Arc<Scope>> {
        let key = (name.to_owned(), version.to_owned(), text.to_owned(), dropped);
        if let Some(scope) = self.scopes.get(&key) {
            return Ok(scope.clone());
        }
        let scope = Arc::new(Scope {
            name: name.to_owned(),
            version: version.to_owned(),
            attributes: from_otlp_json(text)?,
            dropped_attributes_count: dropped,
        });
        self.scopes.insert(key, scope.clone());
        Ok(scope)
    }
}

fn list_parts<'a>(
    column: &'a dyn Array,
    what: &str,
    fields: usize,
) -> Result<(&'a [i32], &'a arrow_array::StructArray)> {
    let list = column.as_list_opt::<i32>().ok_or_else(|| format!("{what} is not a list"))?;
    let values = list.values().as_struct_opt().ok_or_else(|| format!("{what} items are not structs"))?;
    if values.num_columns() != fields {
        return Err(format!("{what} struct has {} fields, expected {fields}", values.num_columns()));
    }
    Ok((list.value_offsets(), values))
}

struct EventListReader<'a> {
    offsets: &'a [i32],
    times: &'a PrimitiveArray<UInt64Type>,
    names: &'a StringArray,
    attributes: &'a StringArray,
    dropped: &'a PrimitiveArray<UInt32Type>,
}

impl<'a> EventListReader<'a> {
    fn new(column: &'a dyn Array) -> Result<Self> {
        let (offsets, values) = list_parts(column, "events", 4)?;
        let bad = |what: &str| format!("events field {what} has the wrong type");
        Ok(EventListReader {
            offsets,
            times: values.column(0).as_primitive_opt().ok_or_else(|| bad("time_unix_nanos"))?,
            names: values.column(1).as_string_opt().ok_or_else(|| bad("name"))?,
            attributes: values.column(2).as_string_opt().ok_or_else(|| bad("attributes"))?,
            dropped: values.column(3).as_primitive_opt().ok_or_else(|| bad("dropped_attributes_count"))?,
        })
    }

    fn row(&self, row: usize) -> Result<Vec<Event>> {
        (self.offsets[row] as usize..self.offsets[row + 1] as usize)
            .map(|i| {
                Ok(Event {
                    time_unix_nanos: self.times.value(i),
                    name: self.names.value(i).to_owned(),
                    attributes: from_otlp_json(self.attributes.value(i))?,
                    dropped_attributes_count: self.dropped.value(i),
                })
            })
            .collect()
    }
}

struct LinkListReader<'a> {
    offsets: &'a [i32],
    trace_ids: &'a FixedSizeBinaryArray,
    span_ids: &'a FixedSizeBinaryArray,
    trace_states: &'a StringArray,
    attributes: &'a StringArray,
    dropped: &'a PrimitiveArray<UInt32Type>,
    flags: &'a PrimitiveArray<UInt32Type>,
}

impl<'a> LinkListReader<'a> {
    fn new(column: &'a dyn Array) -> Result<Self> {
        let (offsets, values) = list_parts(column, "links", 6)?;
        let bad = |what: &str| format!("links field {what} has the wrong type");
        let fixed = |i: usize, width: i32, what: &str| match values.column(i).as_fixed_size_binary_opt() {
            Some(array) if array.value_length() == width => Ok(array),
            _ => Err(bad(what)),
        };
        Ok(LinkListReader {
            offsets,
            trace_ids: fixed(0, 16, "trace_id")?,
            span_ids: fixed(1, 8, "span_id")?,
            trace_states: values.column(2).as_string_opt().ok_or_else(|| bad("trace_state"))?,
            attributes: values.column(3).as_string_opt().ok_or_else(|| bad("attributes"))?,
            dropped: values.column(4).as_primitive_opt().ok_or_else(|| bad("dropped_attributes_count"))?,
            flags: values.column(5).as_primitive_opt().ok_or_else(|| bad("flags"))?,
        })
    }

    fn row(&self, row: usize) -> Result<Vec<Link>> {
        (self.offsets[row] as usize..self.offsets[row + 1] as usize)
            .map(|i| {
                Ok(Link {
                    trace_id: trace_id_at(self.trace_ids, i),
                    span_id: span_id_at(self.span_ids, i),
                    trace_state: self.trace_states.value(i).to_owned(),
                    attributes: from_otlp_json(self.attributes.value(i))?,
                    dropped_attributes_count: self.dropped.value(i),
                    flags: self.flags.value(i),
                })
            })
            .collect()
    }
}
