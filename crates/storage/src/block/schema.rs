//! The block schema: column names, Arrow types, attribute type codes, Parquet writer
//! settings and footer metadata keys.
//!
//! This module is the single source of truth for the columns of `data.parquet`;
//! `docs/formats/block.md` documents the same list for readers outside Sextant. Changing a
//! column's name, type or meaning is a format change: bump [`FORMAT_VERSION`].
//!
//! Invariants of every block:
//! - rows are grouped in clusters named by a service, in name order, listed in the footer
//!   under [`META_CLUSTERS`]; within a cluster they are sorted by (`trace_id`,
//!   `start_unix_nanos`, `span_id`, `kind`), so a trace's spans in one cluster are contiguous
//!   (see `writer`). The kind only separates the two halves of a Zipkin shared span, which
//!   share trace and span ID. No column orders the whole file, so the row groups declare no
//!   sorting columns;
//! - `end = start_unix_nanos + duration_nanos` (wrapping, so any `u64` pair round trips);
//! - text-encoded attribute lists are the OTLP/JSON encoding of `repeated KeyValue`
//!   (see `attributes`), `[]` when empty.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// Version of the block format, stored under [`META_FORMAT_VERSION`].
/// Version 1 blocks (rows sorted by trace alone, no clusters) are read as one cluster.
pub const FORMAT_VERSION: u32 = 2;

pub const TRACE_ID: &str = "trace_id";
pub const SPAN_ID: &str = "span_id";
pub const PARENT_SPAN_ID: &str = "parent_span_id";
pub const START_UNIX_NANOS: &str = "start_unix_nanos";
pub const DURATION_NANOS: &str = "duration_nanos";
pub const SERVICE_NAME: &str = "service_name";
pub const NAME: &str = "name";
pub const KIND: &str = "kind";
pub const STATUS_CODE: &str = "status_code";
pub const STATUS_MESSAGE: &str = "status_message";
pub const TRACE_STATE: &str = "trace_state";
pub const FLAGS: &str = "flags";
pub const ATTRIBUTES: &str = "attributes";
pub const DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
pub const EVENTS: &str = "events";
pub const DROPPED_EVENTS_COUNT: &str = "dropped_events_count";
pub const LINKS: &str = "links";
pub const DROPPED_LINKS_COUNT: &str = "dropped_links_count";
pub const RESOURCE_ATTRIBUTES: &str = "resource_attributes";
pub const RESOURCE_DROPPED_ATTRIBUTES_COUNT: &str = "resource_dropped_attributes_count";
pub const SCOPE_NAME: &str = "scope_name";
pub const SCOPE_VERSION: &str = "scope_version";
pub const SCOPE_ATTRIBUTES: &str = "scope_attributes";
pub const SCOPE_DROPPED_ATTRIBUTES_COUNT: &str = "scope_dropped_attributes_count";

/// Fields of the struct inside the `attributes` list.
pub const ATTR_KEY: &str = "key";
pub const ATTR_TYPE: &str = "value_type";
pub const ATTR_STRING: &str = "string_value";
pub const ATTR_INT: &str = "int_value";
pub const ATTR_DOUBLE: &str = "double_value";
pub const ATTR_BOOL: &str = "bool_value";
pub const ATTR_BYTES: &str = "bytes_value";

/// Fields of the struct inside the `events` list.
pub const EVENT_TIME_UNIX_NANOS: &str = "time_unix_nanos";
pub const EVENT_NAME: &str = "name";
pub const EVENT_ATTRIBUTES: &str = "attributes";
pub const EVENT_DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";

/// Fields of the struct inside the `links` list.
pub const LINK_TRACE_ID: &str = "trace_id";
pub const LINK_SPAN_ID: &str = "span_id";
pub const LINK_TRACE_STATE: &str = "trace_state";
pub const LINK_ATTRIBUTES: &str = "attributes";
pub const LINK_DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
pub const LINK_FLAGS: &str = "flags";

/// `value_type` codes of the `attributes` column.
pub mod value_type {
    /// `string_value` holds the string.
    pub const STRING: u8 = 1;
    /// `bool_value` holds the value.
    pub const BOOL: u8 = 2;
    /// `int_value` holds the value.
    pub const INT: u8 = 3;
    /// `double_value` holds the value.
    pub const DOUBLE: u8 = 4;
    /// `bytes_value` holds the bytes.
    pub const BYTES: u8 = 5;
    /// `string_value` holds the OTLP/JSON array of the elements (`[{"intValue":"1"},…]`).
    pub const ARRAY: u8 = 6;
    /// `string_value` holds the OTLP/JSON list of key-values (`[{"key":"k","value":{…}},…]`).
    pub const KVLIST: u8 = 7;
}

/// Footer key-value metadata keys.
pub const META_FORMAT_VERSION: &str = "sextant.block.format_version";
pub const META_BLOCK_ID: &str = "sextant.block.id";
pub const META_LEVEL: &str = "sextant.block.level";
pub const META_SORT_ORDER: &str = "sextant.block.sort_order";
pub const META_NUM_SPANS: &str = "sextant.block.num_spans";
pub const META_NUM_TRACES: &str = "sextant.block.num_traces";
pub const META_MIN_START_UNIX_NANOS: &str = "sextant.block.min_start_unix_nanos";
pub const META_MAX_START_UNIX_NANOS: &str = "sextant.block.max_start_unix_nanos";
pub const META_MAX_END_UNIX_NANOS: &str = "sextant.block.max_end_unix_nanos";
/// The latest trace start (a trace's earliest span) among the block's traces.
pub const META_MAX_TRACE_START_UNIX_NANOS: &str = "sextant.block.max_trace_start_unix_nanos";
/// JSON array of the distinct `service.name` values, sorted.
pub const META_SERVICES: &str = "sextant.block.services";
/// JSON object: service name → sorted distinct span names.
pub const META_OPERATIONS: &str = "sextant.block.operations";
/// JSON array of the clusters in row order: `{"name", "rows": [first, end], "services":
/// [positions in META_SERVICES]}`. Absent in version 1 blocks.
pub const META_CLUSTERS: &str = "sextant.block.clusters";
/// Value of [`META_SORT_ORDER`].
pub const SORT_ORDER: &str = "cluster,trace_id,start_unix_nanos,span_id,kind";

/// Leaf columns written without zstd: random IDs and delta-packed durations, which zstd
/// cannot shrink, scalars that are almost always one value, and the dictionary-encoded
/// columns whose indices run in long runs (trace IDs, ten spans a run; service names and
/// resources, one run per cluster), which the dictionary and run lengths already reduce to a
/// few bytes per page. Every zstd column chunk a query reads costs a compressor and a
/// decompressor context, and creating each asks the CPU for its features (`cpuid`, a few
/// microseconds in a virtual machine): a trace lookup reads every column, and every search
/// reads `trace_id` and `service_name` (and `resource_attributes` with attribute filters) of
/// each block it scans; creating these contexts was 8.5% of a search by all filters on 10M
/// spans, and a fifth of a trace lookup before the first columns here were added. Written
/// compressed, these columns were no smaller or barely (tracegen spans, bytes/span
/// compressed against raw: `span_id` 8.016 / 8.011, `duration_nanos` 2.297 / 2.292,
/// `service_name` 0.016 / 0.013, `trace_id` 1.812 / 1.913, `resource_attributes` 0.020 /
/// 0.060, the constant ones a few hundredths larger).
const UNCOMPRESSED_COLUMNS: [&[&str]; 22] = [
    &[TRACE_ID],
    &[SPAN_ID],
    &[DURATION_NANOS],
    &[SERVICE_NAME],
    &[STATUS_CODE],
    &[TRACE_STATE],
    &[FLAGS],
    &[DROPPED_ATTRIBUTES_COUNT],
    &[DROPPED_EVENTS_COUNT],
    &[DROPPED_LINKS_COUNT],
    &[RESOURCE_ATTRIBUTES],
    &[RESOURCE_DROPPED_ATTRIBUTES_COUNT],
    &[SCOPE_NAME],
    &[SCOPE_VERSION],
    &[SCOPE_ATTRIBUTES],
    &[SCOPE_DROPPED_ATTRIBUTES_COUNT],
    &[EVENTS, "list", "item", EVENT_DROPPED_ATTRIBUTES_COUNT],
    &[LINKS, "list", "item", LINK_TRACE_ID],
    &[LINKS, "list", "item", LINK_SPAN_ID],
    &[LINKS, "list", "item", LINK_TRACE_STATE],
    &[LINKS, "list", "item", LINK_DROPPED_ATTRIBUTES_COUNT],
    &[LINKS, "list", "item", LINK_FLAGS],
];

/// Leaf columns written with LZ4 (raw) instead of zstd: the ones a trace lookup reads that
/// are mostly empty or small (attribute values other than strings, events, links' attributes,
/// status messages, kinds), and the ones searches read on every block they scan besides the
/// uncompressed ones (span names, parent span IDs, attribute keys, value types and string
/// values). Each zstd column chunk read costs a context pair (see [`UNCOMPRESSED_COLUMNS`]),
/// an LZ4 codec nothing, and LZ4 decompresses faster. The mostly empty columns are mostly
/// repetition and definition levels in long runs, which LZ4 shrinks about as well as zstd
/// (10M tracegen spans: 0.042 against 0.039 bytes/span for `int_value`); the searched ones
/// cost more room (10M tracegen spans, LZ4 against zstd, bytes/span: `string_value` 3.64 /
/// 3.31, `key` 1.51 / 1.25, `parent_span_id` 1.23 / 0.88; 24.3 bytes/span on disk instead
/// of 23.4) for searches by attribute a fifth cheaper and trace lookups a quarter faster.
/// Long texts in events (stack traces) compress about half as well with LZ4 as with zstd:
/// the price of cheaper lookups on spans with many events. `start_unix_nanos` stays zstd: it
/// is twice the size with LZ4.
const LZ4_COLUMNS: [&[&str]; 15] = [
    &[PARENT_SPAN_ID],
    &[NAME],
    &[KIND],
    &[STATUS_MESSAGE],
    &[ATTRIBUTES, "list", "item", ATTR_KEY],
    &[ATTRIBUTES, "list", "item", ATTR_TYPE],
    &[ATTRIBUTES, "list", "item", ATTR_STRING],
    &[ATTRIBUTES, "list", "item", ATTR_INT],
    &[ATTRIBUTES, "list", "item", ATTR_DOUBLE],
    &[ATTRIBUTES, "list", "item", ATTR_BOOL],
    &[ATTRIBUTES, "list", "item", ATTR_BYTES],
    &[EVENTS, "list", "item", EVENT_TIME_UNIX_NANOS],
    &[EVENTS, "list", "item", EVENT_NAME],
    &[EVENTS, "list", "item", EVENT_ATTRIBUTES],
    &[LINKS, "list", "item", LINK_ATTRIBUTES],
];

/// Rows per row group unless configured otherwise.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 65_536;
/// Rows per data page (approximate: checked per write batch). Smaller pages let a trace
/// lookup decode fewer rows; larger ones compress better. Measured on 100k-span blocks of the
/// benchmark workload (`cargo bench -p sextant-storage --bench storage -- read_trace`): 8,192
/// rows 2.88 ms per lookup at 45.9 bytes/span, 2,048 rows 1.85 ms at 47.7, 1,024 rows 1.72 ms
/// at 49.9.
pub const DEFAULT_PAGE_ROWS: usize = 2_048;
/// zstd level of blocks flushed from the head (fast).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// zstd level of compaction outputs. Higher levels barely help on span data (level 9 is
/// 0.5% smaller than 3 on the benchmark workload: the bulk is dictionary indices of random
/// values, which no entropy coder shrinks), so the default stays fast.
pub const DEFAULT_COMPACTION_ZSTD_LEVEL: i32 = 3;

fn non_null(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, false)
}

fn dictionary_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), false)))
}

/// The struct fields of one element of the `attributes` list.
pub fn attribute_fields() -> Fields {
    Fields::from(vec![
        non_null(ATTR_KEY, DataType::Utf8),
        non_null(ATTR_TYPE, DataType::UInt8),
        Field::new(ATTR_STRING, DataType::Utf8, true),
        Field::new(ATTR_INT, DataType::Int64, true),
        Field::new(ATTR_DOUBLE, DataType::Float64, true),
        Field::new(ATTR_BOOL, DataType::Boolean, true),
        Field::new(ATTR_BYTES, DataType::Binary, true),
    ])
}

/// The struct fields of one element of the `events` list.
pub fn event_fields() -> Fields {
    Fields::from(vec![
        non_null(EVENT_TIME_UNIX_NANOS, DataType::UInt64),
        non_null(EVENT_NAME, DataType::Utf8),
        non_null(EVENT_ATTRIBUTES, DataType::Utf8),
        non_null(EVENT_DROPPED_ATTRIBUTES_COUNT, DataType::UInt32),
    ])
}

/// The struct fields of one element of the `links` list.
pub fn link_fields() -> Fields {
    Fields::from(vec![
        non_null(LINK_TRACE_ID, DataType::FixedSizeBinary(16)),
        non_null(LINK_SPAN_ID, DataType::FixedSizeBinary(8)),
        non_null(LINK_TRACE_STATE, DataType::Utf8),
        non_null(LINK_ATTRIBUTES, DataType::Utf8),
        non_null(LINK_DROPPED_ATTRIBUTES_COUNT, DataType::UInt32),
        non_null(LINK_FLAGS, DataType::UInt32),
    ])
}

/// The Arrow schema of a block, in column order.
pub fn block_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                non_null(TRACE_ID, DataType::FixedSizeBinary(16)),
                non_null(SPAN_ID, DataType::FixedSizeBinary(8)),
                Field::new(PARENT_SPAN_ID, DataType::FixedSizeBinary(8), true),
                non_null(START_UNIX_NANOS, DataType::UInt64),
                non_null(DURATION_NANOS, DataType::UInt64),
                non_null(SERVICE_NAME, DataType::Utf8),
                non_null(NAME, DataType::Utf8),
                non_null(KIND, DataType::UInt8),
                non_null(STATUS_CODE, DataType::UInt8),
                non_null(STATUS_MESSAGE, DataType::Utf8),
                non_null(TRACE_STATE, DataType::Utf8),
                non_null(FLAGS, DataType::UInt32),
                non_null(ATTRIBUTES, list_of(attribute_fields())),
                non_null(DROPPED_ATTRIBUTES_COUNT, DataType::UInt32),
                non_null(EVENTS, list_of(event_fields())),
                non_null(DROPPED_EVENTS_COUNT, DataType::UInt32),
                non_null(LINKS, list_of(link_fields())),
                non_null(DROPPED_LINKS_COUNT, DataType::UInt32),
                non_null(RESOURCE_ATTRIBUTES, dictionary_utf8()),
                non_null(RESOURCE_DROPPED_ATTRIBUTES_COUNT, DataType::UInt32),
                non_null(SCOPE_NAME, DataType::Utf8),
                non_null(SCOPE_VERSION, DataType::Utf8),
                non_null(SCOPE_ATTRIBUTES, dictionary_utf8()),
                non_null(SCOPE_DROPPED_ATTRIBUTES_COUNT, DataType::UInt32),
            ]))
        })
        .clone()
}

/// Parquet writer settings of a block.
///
/// - zstd, except the columns of `UNCOMPRESSED_COLUMNS` and `LZ4_COLUMNS`; dictionary
///   encoding (Parquet's default) for every column except the mostly-unique ones:
///   `span_id`, `parent_span_id` and the timestamps; delta encoding for `duration_nanos`;
/// - page-level statistics of `trace_id` and `start_unix_nanos` only, the columns readers
///   prune row groups and pages by; none of the others (the min and max of every string page
///   cost a comparison per value when writing, and nothing reads them).
pub fn writer_properties(row_group_rows: usize, page_rows: usize, zstd_level: i32) -> WriterProperties {
    let zstd = ZstdLevel::try_new(zstd_level).unwrap_or_default();
    let mut builder = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_data_page_row_count_limit(page_rows.max(1))
        .set_write_batch_size(page_rows.clamp(1, 1024))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled(ColumnPath::from(TRACE_ID), EnabledStatistics::Page)
        .set_column_statistics_enabled(ColumnPath::from(START_UNIX_NANOS), EnabledStatistics::Page)
        .set_created_by(format!("sextant block format {FORMAT_VERSION}"));
    for name in [SPAN_ID, PARENT_SPAN_ID, START_UNIX_NANOS, DURATION_NANOS] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    let codecs = [(&UNCOMPRESSED_COLUMNS[..], Compression::UNCOMPRESSED), (&LZ4_COLUMNS[..], Compression::LZ4_RAW)];
    for (paths, codec) in codecs {
        for path in paths {
            let path = ColumnPath::new(path.iter().map(|part| part.to_string()).collect());
            builder = builder.set_column_compression(path, codec);
        }
    }
    // Measured on the benchmark workload (rows sorted by trace, starts spread over days):
    // delta encoding of starts pays the full jump at every trace boundary (6.4 bytes/span),
    // plain + zstd finds the shared high bytes (3.7); durations are small and delta wins
    // (3.5 against 4.2 plain).
    builder = builder.set_column_encoding(ColumnPath::from(DURATION_NANOS), Encoding::DELTA_BINARY_PACKED);
    builder.build()
}

#[cfg(test)]
mod tests {
    use parquet::arrow::ArrowSchemaConverter;

    use super::*;

    /// A path that names no leaf column would be ignored by the writer without a word.
    #[test]
    fn codec_lists_name_leaf_columns_and_the_rest_stay_zstd() {
        let parquet = ArrowSchemaConverter::new().convert(&block_schema()).unwrap();
        let properties = writer_properties(DEFAULT_ROW_GROUP_ROWS, DEFAULT_PAGE_ROWS, 1);
        let leaves: Vec<Vec<String>> = parquet.columns().iter().map(|c| c.path().parts().to_vec()).collect();
        for (paths, codec) in
            [(&UNCOMPRESSED_COLUMNS[..], Compression::UNCOMPRESSED), (&LZ4_COLUMNS[..], Compression::LZ4_RAW)]
        {
            for path in paths {
                let path: Vec<String> = path.iter().map(|part| part.to_string()).collect();
                assert!(leaves.contains(&path), "{path:?} is not a leaf column");
            }
            let with_codec =
                leaves.iter().filter(|path| properties.compression(&ColumnPath::new(path.to_vec())) == codec);
            assert_eq!(with_codec.count(), paths.len(), "{codec:?}");
        }
        let zstd = |path: &[&str]| {
            let path = ColumnPath::new(path.iter().map(|part| part.to_string()).collect());
            matches!(properties.compression(&path), Compression::ZSTD(_))
        };
        let zstd_leaves = leaves.iter().filter(|path| zstd(&path.iter().map(String::as_str).collect::<Vec<_>>()));
        let zstd_leaves: Vec<String> = zstd_leaves.map(|path| path.join(".")).collect();
        assert_eq!(zstd_leaves.len(), leaves.len() - UNCOMPRESSED_COLUMNS.len() - LZ4_COLUMNS.len());
        // What the lists leave to zstd: the starts, which LZ4 stores at twice the size.
        assert_eq!(zstd_leaves, [START_UNIX_NANOS]);
        assert!(!zstd(&[SPAN_ID]) && !zstd(&[TRACE_ID]) && !zstd(&[SERVICE_NAME]) && !zstd(&[KIND]));
    }
}
