//! The search scan: the few columns a search needs, read with their dictionaries kept, and
//! the span conditions evaluated on them without building spans.
//!
//! A search reads a block with [`search_schema`], the block schema in which service and span
//! names and attribute keys and string values are dictionary arrays: each batch decodes its
//! distinct values once, and a condition on them is decided once per distinct value, then
//! per row by its key. Only the leaf columns the query needs are fetched and decoded (see
//! [`plan`]): attribute columns only with attribute filters, and of those only the value
//! columns a filter value could match (an integer column only for a filter value that parses
//! as one, and so on), and only for the rows that pass the other conditions (see [`scan`]).

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt8Type, UInt64Type};
use arrow_array::{Array, BinaryArray, BooleanArray, FixedSizeBinaryArray, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use sextant_model::{AnyValue, StatusCode, TraceId, find_attribute};

use super::BlockError;
use super::attributes::{from_otlp_json, structured_from_json};
use super::decode::{TextColumn, column, fixed, primitive, trace_id_at};
use super::reader::{OpenedBlock, ReadPlan, SparseFile, projected_batch_reader, rows_batch_reader};
use super::schema::*;
use crate::search::{AttributeFilter, SearchQuery};

type Result<T> = std::result::Result<T, String>;

/// One span as a search sees it, read without building a [`sextant_model::Span`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchRow<'a> {
    /// The row's number in the block.
    pub row: u64,
    pub trace_id: TraceId,
    pub start_unix_nanos: u64,
    /// `start_unix_nanos + duration_nanos` (wrapping), as in a decoded span.
    pub end_unix_nanos: u64,
    pub service_name: &'a str,
    pub name: &'a str,
    pub is_error: bool,
    /// Whether the span has no parent.
    pub is_root: bool,
    /// Whether the span satisfies every span condition of the query, attributes included
    /// ([`SearchQuery::span_matches`]).
    pub matched: bool,
    /// Numbers the batch the row came from; `service_key` and `name_key` name distinct
    /// values within one batch (the same key is the same text), so callers can cache work
    /// per distinct value.
    pub batch: usize,
    pub service_key: usize,
    pub name_key: usize,
}

/// Top-level columns every search reads.
const SEARCH_COLUMNS: [&str; 7] =
    [TRACE_ID, PARENT_SPAN_ID, START_UNIX_NANOS, DURATION_NANOS, SERVICE_NAME, NAME, STATUS_CODE];

/// The block schema with the texts a search compares as dictionaries.
pub(crate) fn search_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            let as_dictionary = |field: &Field| field.clone().with_data_type(dictionary.clone());
            let fields: Vec<Field> = block_schema()
                .fields()
                .iter()
                .map(|field| match field.name().as_str() {
                    SERVICE_NAME | NAME => as_dictionary(field),
                    ATTRIBUTES => {
                        let items: Fields = attribute_fields()
                            .iter()
                            .map(|f| match f.name().as_str() {
                                ATTR_KEY | ATTR_STRING => Arc::new(as_dictionary(f)),
                                _ => f.clone(),
                            })
                            .collect();
                        let item = Field::new("item", DataType::Struct(items), false);
                        field.as_ref().clone().with_data_type(DataType::List(Arc::new(item)))
                    }
                    _ => field.as_ref().clone(),
                })
                .collect();
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// How to read a block for one search.
pub(crate) struct SearchPlan {
    /// The block's footer with [`search_schema`] as its Arrow schema.
    pub(crate) opened: OpenedBlock,
    /// The columns every row is read with.
    base: ProjectionMask,
    /// With attribute filters, the attribute columns, read only for rows that pass the
    /// other conditions.
    attributes: Option<ProjectionMask>,
    /// Everything to fetch.
    pub(crate) fetch: ProjectionMask,
}

/// Whether only a string attribute can equal `value`: it reads as no number, boolean or
/// bytes (lowercase hex), and not as an array or a map (`[…]`, `{…}`).
fn only_a_string_equals(value: &str) -> bool {
    !(value.parse::<i64>().is_ok()
        || value.parse::<f64>().is_ok()
        || value.parse::<bool>().is_ok()
        || could_be_bytes(value)
        || value.starts_with('[')
        || value.starts_with('{'))
}

/// The attribute columns needed to decide `filters`: the keys, the string values, and the
/// other value columns only for filter values that could equal a value there (an integer
/// column only for a filter value that parses as one, and so on). When only strings can
/// match, the value types are not read either: a present string value is then a string, or
/// an array or map as text, which starts with `[` and so equals no such filter value.
fn value_columns(filters: &[AttributeFilter]) -> Vec<&'static str> {
    let mut columns = vec![ATTR_KEY, ATTR_STRING];
    if filters.iter().all(|f| only_a_string_equals(&f.value)) {
        return columns;
    }
    columns.push(ATTR_TYPE);
    let any = |test: fn(&str) -> bool| filters.iter().any(|f| test(&f.value));
    if any(|v| v.parse::<i64>().is_ok()) {
        columns.push(ATTR_INT);
    }
    if any(|v| v.parse::<f64>().is_ok()) {
        columns.push(ATTR_DOUBLE);
    }
    if any(|v| v.parse::<bool>().is_ok()) {
        columns.push(ATTR_BOOL);
    }
    if any(could_be_bytes) {
        columns.push(ATTR_BYTES);
    }
    columns
}

/// Whether `value` could equal a bytes value, which compares as lowercase hex.
fn could_be_bytes(value: &str) -> bool {
    value.len().is_multiple_of(2) && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The search schema and the leaf columns `query` needs.
pub(crate) fn plan(opened: &OpenedBlock, query: &SearchQuery) -> std::result::Result<SearchPlan, BlockError> {
    let options = ArrowReaderOptions::new().with_schema(search_schema());
    let arrow = ArrowReaderMetadata::try_new(opened.arrow.metadata().clone(), options)?;
    let values = value_columns(&query.attributes);
    let (mut base, mut attributes) = (Vec::new(), Vec::new());
    for (i, column) in arrow.parquet_schema().columns().iter().enumerate() {
        let parts = column.path().parts();
        let (root, leaf) = (parts[0].as_str(), parts[parts.len() - 1].as_str());
        if SEARCH_COLUMNS.contains(&root) {
            base.push(i);
        } else if root == RESOURCE_ATTRIBUTES || (root == ATTRIBUTES && values.contains(&leaf)) {
            attributes.push(i);
        }
    }
    let schema = arrow.parquet_schema();
    let (fetch, attributes) = match query.has_attribute_filters() {
        true => {
            let all = base.iter().chain(&attributes).copied();
            (ProjectionMask::leaves(schema, all), Some(ProjectionMask::leaves(schema, attributes)))
        }
        false => (ProjectionMask::leaves(schema, base.iter().copied()), None),
    };
    let base = ProjectionMask::leaves(schema, base);
    Ok(SearchPlan { opened: OpenedBlock { arrow, file_size: opened.file_size }, base, attributes, fetch })
}

/// Reads the rows of `plan` (row groups, or rows within them) from `file` as [`SearchRow`]s, in row order,
/// calling `f` on each. Without attribute filters, one pass. With them, three: the base
/// columns of every row, keeping the positions of rows that pass the other conditions; the
/// attribute columns of those rows only (with the few rows between candidates close
/// together, see [`CANDIDATE_GAP`]; pages without one are skipped), evaluating the filters;
/// then the rows, from the batches kept in memory.
pub(crate) fn scan(
    file: SparseFile,
    search: SearchPlan,
    plan: &ReadPlan,
    batch_rows: usize,
    query: &SearchQuery,
    mut f: impl FnMut(SearchRow<'_>),
) -> std::result::Result<(), ScanError> {
    let mut numbers = RowNumbers::new(plan.selected_rows(search.opened.metadata()));
    let base = projected_batch_reader(file.clone(), &search.opened, plan, batch_rows, Some(search.base))?;
    let Some(attributes) = search.attributes else {
        for (number, batch) in base.enumerate() {
            let batch = batch?;
            let rows = BaseRows::new(&batch, number, query)?;
            for row in 0..batch.num_rows() {
                let fields = rows.fields_match(row)?;
                f(rows.row(row, numbers.next()?, fields)?);
            }
        }
        return Ok(());
    };
    let batches = base.collect::<std::result::Result<Vec<RecordBatch>, _>>()?;
    let mut candidates: Vec<usize> = Vec::new();
    let mut offset = 0;
    for (number, batch) in batches.iter().enumerate() {
        let rows = BaseRows::new(batch, number, query)?;
        for row in 0..batch.num_rows() {
            if rows.fields_match(row)? {
                candidates.push(offset + row);
            }
        }
        offset += batch.num_rows();
    }
    let mut passed = Vec::with_capacity(candidates.len());
    if !candidates.is_empty() {
        let ranges = read_ranges(&candidates, CANDIDATE_GAP);
        let reader = rows_batch_reader(file, &search.opened, plan, batch_rows, attributes, &ranges)?;
        let mut positions = ranges.iter().flat_map(Range::clone);
        let mut wanted = candidates.iter().peekable();
        for batch in reader {
            let batch = batch?;
            let mut matcher = AttributeMatcher::new(&batch, &query.attributes)?;
            for row in 0..batch.num_rows() {
                let position = positions.next().ok_or_else(|| "more rows read than selected".to_string())?;
                if wanted.next_if_eq(&&position).is_some() {
                    passed.push(matcher.matches(row)?);
                }
            }
        }
    }
    if passed.len() != candidates.len() {
        return Err(ScanError::Corrupt(format!("read {} of {} selected rows", passed.len(), candidates.len())));
    }
    let (mut next, mut offset) = (0, 0);
    for (number, batch) in batches.iter().enumerate() {
        let rows = BaseRows::new(batch, number, query)?;
        for row in 0..batch.num_rows() {
            let matched = candidates.get(next) == Some(&(offset + row)) && {
                next += 1;
                passed[next - 1]
            };
            f(rows.row(row, numbers.next()?, matched)?);
        }
        offset += batch.num_rows();
    }
    Ok(())
}

/// Candidates at most this many rows apart are read with the rows between them: reading a
/// few more attribute lists at once costs less than a skip and a read per candidate (a search
/// by all filters at 10M spans, candidates every tenth row: 5% less CPU than reading each
/// alone; 64 was no better than 16, and the rows read beyond the candidates stay bounded).
const CANDIDATE_GAP: usize = 16;

/// `positions` (sorted, distinct) as ranges, those at most `gap` rows apart read together.
fn read_ranges(positions: &[usize], gap: usize) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for &position in positions {
        match ranges.last_mut() {
            Some(last) if position - last.end <= gap => last.end = position + 1,
            _ => ranges.push(position..position + 1),
        }
    }
    ranges
}

/// The block row numbers of the rows a plan reads, one after the other.
struct RowNumbers {
    ranges: std::vec::IntoIter<Range<u64>>,
    current: Range<u64>,
}

impl RowNumbers {
    fn new(ranges: Vec<Range<u64>>) -> Self {
        RowNumbers { ranges: ranges.into_iter(), current: 0..0 }
    }

    fn next(&mut self) -> Result<u64> {
        while self.current.is_empty() {
            self.current = self.ranges.next().ok_or("more rows read than the plan selects")?;
        }
        let row = self.current.start;
        self.current.start += 1;
        Ok(row)
    }
}

/// What a scan can fail with: the block's bytes (reading them) or its content (a column
/// missing or of the wrong shape).
#[derive(Debug)]
pub(crate) enum ScanError {
    Read(BlockError),
    Corrupt(String),
}

impl From<BlockError> for ScanError {
    fn from(error: BlockError) -> Self {
        ScanError::Read(error)
    }
}

impl From<arrow_schema::ArrowError> for ScanError {
    fn from(error: arrow_schema::ArrowError) -> Self {
        ScanError::Read(error.into())
    }
}

impl From<String> for ScanError {
    fn from(reason: String) -> Self {
        ScanError::Corrupt(reason)
    }
}

/// The base columns of one batch.
struct BaseRows<'a> {
    query: &'a SearchQuery,
    number: usize,
    trace_ids: &'a FixedSizeBinaryArray,
    parent_ids: &'a FixedSizeBinaryArray,
    starts: &'a PrimitiveArray<UInt64Type>,
    durations: &'a PrimitiveArray<UInt64Type>,
    services: TextColumn<'a>,
    names: TextColumn<'a>,
    status_codes: &'a PrimitiveArray<UInt8Type>,
    /// Service and name conditions, decided once per distinct value.
    service_equal: Option<Vec<bool>>,
    name_equal: Option<Vec<bool>>,
}

impl<'a> BaseRows<'a> {
    fn new(batch: &'a RecordBatch, number: usize, query: &'a SearchQuery) -> Result<Self> {
        let services = TextColumn::new(batch, SERVICE_NAME)?;
        let names = TextColumn::new(batch, NAME)?;
        Ok(BaseRows {
            query,
            number,
            trace_ids: fixed(batch, TRACE_ID, 16)?,
            parent_ids: fixed(batch, PARENT_SPAN_ID, 8)?,
            starts: primitive::<UInt64Type>(batch, START_UNIX_NANOS)?,
            durations: primitive::<UInt64Type>(batch, DURATION_NANOS)?,
            service_equal: query.service.as_deref().and_then(|s| services.distinct_equal(s)),
            name_equal: query.operation.as_deref().and_then(|o| names.distinct_equal(o)),
            services,
            names,
            status_codes: primitive::<UInt8Type>(batch, STATUS_CODE)?,
        })
    }

    fn start_end(&self, row: usize) -> (u64, u64) {
        let start = self.starts.value(row);
        (start, start.wrapping_add(self.durations.value(row)))
    }

    fn is_error(&self, row: usize) -> bool {
        self.status_codes.value(row) == StatusCode::Error as u8
    }

    /// Whether the row passes every span condition but the attribute filters.
    fn fields_match(&self, row: usize) -> Result<bool> {
        let query = self.query;
        let text_match = |column: &TextColumn<'_>, equal: &Option<Vec<bool>>, want: &Option<String>| match want {
            Some(want) => column.row_equals(row, equal.as_deref(), want),
            None => Ok(true),
        };
        let (start, end) = self.start_end(row);
        Ok(text_match(&self.services, &self.service_equal, &query.service)?
            && text_match(&self.names, &self.name_equal, &query.operation)?
            && query.span_status_and_times_match(self.is_error(row), start, end))
    }

    fn row(&self, row: usize, number: u64, matched: bool) -> Result<SearchRow<'a>> {
        let (service_key, name_key) = (self.services.key(row), self.names.key(row));
        let (start, end) = self.start_end(row);
        Ok(SearchRow {
            row: number,
            trace_id: trace_id_at(self.trace_ids, row),
            start_unix_nanos: start,
            end_unix_nanos: end,
            service_name: self.services.text(service_key)?,
            name: self.names.text(name_key)?,
            is_error: self.is_error(row),
            is_root: self.parent_ids.is_null(row),
            matched,
            batch: self.number,
            service_key,
            name_key,
        })
    }
}

/// One filter, prepared for a batch.
struct PreparedFilter<'a> {
    filter: &'a AttributeFilter,
    /// With a dictionary of keys: the dictionary keys naming the filter's key, and every
    /// attribute's dictionary key, so the search for the key compares integers (and stops at
    /// once when no attribute of the batch has it).
    key_ids: Option<(Vec<i32>, &'a [i32])>,
    /// Per distinct string value: equal to the filter's value.
    value_equal: Option<Vec<bool>>,
    int: Option<i64>,
    double: Option<f64>,
    boolean: Option<bool>,
}

/// Attribute filters over one batch's attribute columns, with the semantics of
/// [`AttributeFilter::matches_span`]: the span's last attribute with the key decides; without
/// one, the resource's.
struct AttributeMatcher<'a> {
    filters: Vec<PreparedFilter<'a>>,
    offsets: &'a [i32],
    keys: TextColumn<'a>,
    /// Not read when only string values can match (see [`value_columns`]).
    types: Option<&'a PrimitiveArray<UInt8Type>>,
    strings: TextColumn<'a>,
    ints: Option<&'a PrimitiveArray<Int64Type>>,
    doubles: Option<&'a PrimitiveArray<Float64Type>>,
    bools: Option<&'a BooleanArray>,
    bytes: Option<&'a BinaryArray>,
    resources: TextColumn<'a>,
    /// Per resource (dictionary key) and filter (`key × filters + filter`), the resource's
    /// answer once computed.
    resource_answers: Vec<Option<bool>>,
}

impl<'a> AttributeMatcher<'a> {
    fn new(batch: &'a RecordBatch, filters: &'a [AttributeFilter]) -> Result<Self> {
        let list = column(batch, ATTRIBUTES)?.as_list_opt::<i32>().ok_or("attributes is not a list")?;
        let items = list.values().as_struct_opt().ok_or("attributes items are not structs")?;
        let field = |name: &str| items.column_by_name(name).map(|c| c.as_ref());
        let required = |name: &str| field(name).ok_or_else(|| format!("attributes field {name} was not read"));
        let bad = |name: &str| format!("attributes field {name} has the wrong type");
        let keys = TextColumn::of(required(ATTR_KEY)?, ATTR_KEY)?;
        let strings = TextColumn::of(required(ATTR_STRING)?, ATTR_STRING)?;
        let resources = TextColumn::new(batch, RESOURCE_ATTRIBUTES)?;
        let filters_len = filters.len();
        let filters = filters
            .iter()
            .map(|filter| PreparedFilter {
                filter,
                key_ids: keys.keys_of(&filter.key),
                value_equal: strings.distinct_equal(&filter.value),
                int: filter.value.parse().ok(),
                double: filter.value.parse().ok(),
                boolean: filter.value.parse().ok(),
            })
            .collect();
        Ok(AttributeMatcher {
            filters,
            offsets: list.value_offsets(),
            keys,
            types: field(ATTR_TYPE).map(|c| c.as_primitive_opt().ok_or_else(|| bad(ATTR_TYPE))).transpose()?,
            strings,
            ints: field(ATTR_INT).map(|c| c.as_primitive_opt().ok_or_else(|| bad(ATTR_INT))).transpose()?,
            doubles: field(ATTR_DOUBLE).map(|c| c.as_primitive_opt().ok_or_else(|| bad(ATTR_DOUBLE))).transpose()?,
            bools: field(ATTR_BOOL).map(|c| c.as_boolean_opt().ok_or_else(|| bad(ATTR_BOOL))).transpose()?,
            bytes: field(ATTR_BYTES).map(|c| c.as_binary_opt().ok_or_else(|| bad(ATTR_BYTES))).transpose()?,
            resource_answers: vec![None; resources.distinct_len() * filters_len],
            resources,
        })
    }

    fn matches(&mut self, row: usize) -> Result<bool> {
        for i in 0..self.filters.len() {
            let answer = match self.span_answer(row, &self.filters[i])? {
                Some(answer) => answer,
                None => self.resource_answer(row, i)?,
            };
            if !answer {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The answer of the span's last attribute with the filter's key, if it has one.
    fn span_answer(&self, row: usize, prepared: &PreparedFilter<'_>) -> Result<Option<bool>> {
        let (start, end) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
        let filter = prepared.filter;
        let found = match &prepared.key_ids {
            Some((ids, _)) if ids.is_empty() => None,
            Some((ids, keys)) => {
                let keys = keys.get(start..end).ok_or("attribute offsets beyond the keys")?;
                // Usually the key is one dictionary value: compare with it alone.
                let found = match ids.as_slice() {
                    [id] => keys.iter().rposition(|key| key == id),
                    ids => keys.iter().rposition(|key| ids.contains(key)),
                };
                found.map(|i| start + i)
            }
            None => {
                let mut found = None;
                for i in (start..end).rev() {
                    if self.keys.row_equals(i, None, &filter.key)? {
                        found = Some(i);
                        break;
                    }
                }
                found
            }
        };
        let Some(i) = found else { return Ok(None) };
        let missing = |what: &str| format!("attribute {:?}: {what} is null", filter.key);
        let Some(types) = self.types else {
            let answer = !self.strings.is_null(i)
                && self.strings.row_equals(i, prepared.value_equal.as_deref(), &filter.value)?;
            return Ok(Some(answer));
        };
        // A value column that was not read cannot hold a value equal to the filter's.
        let answer = match types.value(i) {
            value_type::STRING => {
                if self.strings.is_null(i) {
                    return Err(missing(ATTR_STRING));
                }
                self.strings.row_equals(i, prepared.value_equal.as_deref(), &filter.value)?
            }
            value_type::INT => match (self.ints, prepared.int) {
                (Some(ints), Some(want)) if !ints.is_null(i) => ints.value(i) == want,
                (Some(_), Some(_)) => return Err(missing(ATTR_INT)),
                _ => false,
            },
            value_type::DOUBLE => match (self.doubles, prepared.double) {
                (Some(doubles), Some(want)) if !doubles.is_null(i) => doubles.value(i) == want,
                (Some(_), Some(_)) => return Err(missing(ATTR_DOUBLE)),
                _ => false,
            },
            value_type::BOOL => match (self.bools, prepared.boolean) {
                (Some(bools), Some(want)) if !bools.is_null(i) => bools.value(i) == want,
                (Some(_), Some(_)) => return Err(missing(ATTR_BOOL)),
                _ => false,
            },
            value_type::BYTES => match self.bytes {
                Some(bytes) if !bytes.is_null(i) => filter.matches_value(&AnyValue::Bytes(bytes.value(i).to_vec())),
                Some(_) => return Err(missing(ATTR_BYTES)),
                None => false,
            },
            kind @ (value_type::ARRAY | value_type::KVLIST) => {
                if self.strings.is_null(i) {
                    return Err(missing(ATTR_STRING));
                }
                let text = self.strings.text(self.strings.key(i))?;
                filter.matches_value(&structured_from_json(kind, text)?)
            }
            other => return Err(format!("attribute {:?}: unknown value_type {other}", filter.key)),
        };
        Ok(Some(answer))
    }

    /// The answer of the row's resource to filter `i`, computed once per resource.
    fn resource_answer(&mut self, row: usize, i: usize) -> Result<bool> {
        let resource = self.resources.key(row);
        let slot = resource * self.filters.len() + i;
        if let Some(Some(answer)) = self.resource_answers.get(slot) {
            return Ok(*answer);
        }
        let filter = self.filters[i].filter;
        let attributes = from_otlp_json(self.resources.text(resource)?)?;
        let answer = find_attribute(&attributes, &filter.key).is_some_and(|value| filter.matches_value(value));
        if let Some(cached) = self.resource_answers.get_mut(slot) {
            *cached = Some(answer);
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns_for(values: &[&str]) -> Vec<&'static str> {
        let filters: Vec<AttributeFilter> =
            values.iter().map(|v| AttributeFilter { key: "k".into(), value: v.to_string() }).collect();
        value_columns(&filters)
    }

    #[test]
    fn candidates_close_together_are_read_as_one_range() {
        assert_eq!(read_ranges(&[3, 10, 20, 40, 41, 60], 8), vec![3..11, 20..21, 40..42, 60..61]);
        assert_eq!(read_ranges(&[3, 10, 20], 9), vec![3..21], "nine rows between 10 and 20");
        assert_eq!(read_ranges(&[0, 1, 2], 0), vec![0..3]);
        assert_eq!(read_ranges(&[5, 7], 0), vec![5..6, 7..8]);
        assert!(read_ranges(&[], 16).is_empty());
    }

    #[test]
    fn value_columns_are_those_a_filter_value_could_equal() {
        assert_eq!(columns_for(&["val_959"]), [ATTR_KEY, ATTR_STRING]);
        assert_eq!(columns_for(&["val_959", "GET"]), [ATTR_KEY, ATTR_STRING]);
        assert_eq!(columns_for(&["200"]), [ATTR_KEY, ATTR_STRING, ATTR_TYPE, ATTR_INT, ATTR_DOUBLE]);
        assert_eq!(columns_for(&["val", "2.5"]), [ATTR_KEY, ATTR_STRING, ATTR_TYPE, ATTR_DOUBLE]);
        assert_eq!(columns_for(&["true"]), [ATTR_KEY, ATTR_STRING, ATTR_TYPE, ATTR_BOOL]);
        assert_eq!(columns_for(&["0a1b"]), [ATTR_KEY, ATTR_STRING, ATTR_TYPE, ATTR_BYTES]);
        assert_eq!(columns_for(&["[a,1]"]), [ATTR_KEY, ATTR_STRING, ATTR_TYPE]);
        assert_eq!(columns_for(&["{k:v}"]), [ATTR_KEY, ATTR_STRING, ATTR_TYPE]);
    }
}
