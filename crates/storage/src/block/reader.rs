//! Reading parts of `data.parquet` with as few bytes fetched as the question allows.
//!
//! A read has three steps:
//! 1. **Open**: fetch the footer with one suffix request (more only if the footer and page
//!    indexes are larger than the guess) and parse it, page indexes included. Blocks are
//!    immutable, so the result is cached by block ID (see `store`).
//! 2. **Plan**: choose row groups (by the trace-ID index or by `start_unix_nanos` statistics),
//!    a row selection within them, and the byte ranges that hold the needed pages: with the
//!    offset index, only the dictionary page and the data pages overlapping the selected rows
//!    of each column; without it, whole column chunks.
//! 3. **Fetch and decode**: one `get_ranges` call (the object store coalesces nearby ranges),
//!    then Parquet decoding on the blocking pool over a [`SparseFile`] that serves only the
//!    fetched ranges. A read outside them is a planning bug and fails loudly.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use bytes::{Buf, Bytes};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelectionPolicy, RowSelector,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};

use super::BlockError;
use super::schema::START_UNIX_NANOS;

/// First guess of the footer size: one request usually gets footer and page indexes.
const FOOTER_GUESS_BYTES: u64 = 256 * 1024;

/// An opened block: its parsed footer and the size of `data.parquet`.
#[derive(Clone, Debug)]
pub(crate) struct OpenedBlock {
    pub(crate) arrow: ArrowReaderMetadata,
    pub(crate) file_size: u64,
}

impl OpenedBlock {
    pub(crate) fn metadata(&self) -> &ParquetMetaData {
        self.arrow.metadata()
    }

    pub(crate) fn memory_size(&self) -> usize {
        self.arrow.metadata().memory_size()
    }
}

/// Fetches and parses the footer of `path`, with page indexes when the file has them.
pub(crate) async fn open(store: &dyn ObjectStore, path: &Path) -> Result<OpenedBlock, BlockError> {
    let options = GetOptions { range: Some(GetRange::Suffix(FOOTER_GUESS_BYTES)), ..Default::default() };
    let result = store.get_opts(path, options).await?;
    let file_size = result.meta.size;
    let mut suffix = result.bytes().await?;
    let mut parser = ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional);
    loop {
        let chunk = suffix.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let outcome = parser.try_parse_sized(&chunk, file_size);
            (parser, outcome)
        });
        let (returned, outcome) = attempt.await?;
        parser = returned;
        match outcome {
            Ok(()) => break,
            Err(ParquetError::NeedMoreData(needed)) if (needed as u64) > suffix.len() as u64 => {
                let start = file_size.saturating_sub(needed as u64);
                suffix = store.get_range(path, start..file_size).await?;
            }
            Err(error) => return Err(error.into()),
        }
    }
    let metadata = Arc::new(parser.finish()?);
    let arrow = ArrowReaderMetadata::try_new(metadata, ArrowReaderOptions::new())?;
    Ok(OpenedBlock { arrow, file_size })
}

/// Which rows to read: row groups in file order, and optionally a selection over them.
#[derive(Debug, Clone)]
pub(crate) struct ReadPlan {
    pub(crate) row_groups: Vec<usize>,
    /// Per selected row group, the selected rows relative to the row group's start (sorted,
    /// disjoint ranges); `None` reads the whole row group.
    row_ranges: Vec<Option<Vec<Range<usize>>>>,
}

impl ReadPlan {
    /// Whole row groups.
    pub(crate) fn row_groups(row_groups: Vec<usize>) -> ReadPlan {
        let row_ranges = vec![None; row_groups.len()];
        ReadPlan { row_groups, row_ranges }
    }

    /// The rows of every range of `ranges` (global row numbers, sorted and disjoint).
    pub(crate) fn rows_in(metadata: &ParquetMetaData, ranges: &[Range<u64>]) -> ReadPlan {
        let mut plan = ReadPlan { row_groups: Vec::new(), row_ranges: Vec::new() };
        let mut group_start = 0u64;
        for (i, group) in metadata.row_groups().iter().enumerate() {
            let group_end = group_start + group.num_rows() as u64;
            let in_group: Vec<Range<usize>> = ranges
                .iter()
                .filter_map(|rows| {
                    let (start, end) = (rows.start.max(group_start), rows.end.min(group_end));
                    (start < end).then(|| (start - group_start) as usize..(end - group_start) as usize)
                })
                .collect();
            if !in_group.is_empty() {
                plan.row_groups.push(i);
                plan.row_ranges.push(Some(in_group));
            }
            group_start = group_end;
        }
        plan
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.row_groups.is_empty()
    }

    /// The rows the plan reads, as block row numbers in read order (sorted, disjoint).
    pub(crate) fn selected_rows(&self, metadata: &ParquetMetaData) -> Vec<Range<u64>> {
        let group_starts: Vec<u64> = metadata
            .row_groups()
            .iter()
            .scan(0u64, |start, group| {
                let this = *start;
                *start += group.num_rows() as u64;
                Some(this)
            })
            .collect();
        let mut selected: Vec<Range<u64>> = Vec::new();
        for (&group, ranges) in self.row_groups.iter().zip(&self.row_ranges) {
            let start = group_starts[group];
            let whole = 0..metadata.row_group(group).num_rows() as usize;
            for range in ranges.as_deref().unwrap_or(std::slice::from_ref(&whole)) {
                let rows = start + range.start as u64..start + range.end as u64;
                match selected.last_mut() {
                    Some(last) if last.end == rows.start => last.end = rows.end,
                    _ => selected.push(rows),
                }
            }
        }
        selected
    }

    /// The row selection over the concatenated selected row groups, if any rows are skipped.
    fn selection(&self, metadata: &ParquetMetaData) -> Option<RowSelection> {
        if self.row_ranges.iter().all(Option::is_none) {
            return None;
        }
        let mut selectors = Vec::new();
        for (group, ranges) in self.row_groups.iter().zip(&self.row_ranges) {
            let num_rows = metadata.row_group(*group).num_rows() as usize;
            let whole = 0..num_rows;
            let ranges = ranges.as_deref().unwrap_or(std::slice::from_ref(&whole));
            let mut position = 0;
            for range in ranges {
                selectors.push(RowSelector::skip(range.start - position));
                selectors.push(RowSelector::select(range.len()));
                position = range.end;
            }
            selectors.push(RowSelector::skip(num_rows - position));
        }
        selectors.retain(|selector| selector.row_count > 0);
        Some(RowSelection::from(selectors))
    }

    /// Byte ranges of `data.parquet` that hold every page this plan decodes, sorted and
    /// merged where they touch.
    pub(crate) fn byte_ranges(&self, metadata: &ParquetMetaData) -> Vec<Range<u64>> {
        self.projected_byte_ranges(metadata, None)
    }

    /// Like [`ReadPlan::byte_ranges`], for the leaf columns of `projection` only.
    fn projected_byte_ranges(
        &self,
        metadata: &ParquetMetaData,
        projection: Option<&ProjectionMask>,
    ) -> Vec<Range<u64>> {
        let mut ranges = Vec::new();
        for (group, rows) in self.row_groups.iter().zip(&self.row_ranges) {
            let row_group = metadata.row_group(*group);
            let group_rows = row_group.num_rows();
            for (column, chunk) in row_group.columns().iter().enumerate() {
                if projection.is_some_and(|mask| !mask.leaf_included(column)) {
                    continue;
                }
                let (chunk_start, chunk_len) = chunk.byte_range();
                let pages = metadata.page_index().and_then(|index| index.page_locations(*group, column));
                match (rows, pages) {
                    (Some(row_ranges), Some(pages)) if !pages.is_empty() => {
                        let first_page = pages[0].offset as u64;
                        if first_page > chunk_start {
                            ranges.push(chunk_start..first_page); // the dictionary page
                        }
                        for (i, page) in pages.iter().enumerate() {
                            let page_end_row = pages.get(i + 1).map_or(group_rows, |next| next.first_row_index);
                            let holds_rows = row_ranges
                                .iter()
                                .any(|rows| page.first_row_index < rows.end as i64 && page_end_row > rows.start as i64);
                            if holds_rows {
                                let start = page.offset as u64;
                                ranges.push(start..start + page.compressed_page_size as u64);
                            }
                        }
                    }
                    _ => ranges.push(chunk_start..chunk_start + chunk_len),
                }
            }
        }
        merge_ranges(ranges)
    }
}

/// `ranges` sorted, with those that overlap or touch merged.
pub(crate) fn merge_ranges(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// Row groups whose `start_unix_nanos` statistics overlap `[start, end]`; a row group
/// without statistics is kept.
pub(crate) fn row_groups_overlapping_start(
    opened: &OpenedBlock,
    start: u64,
    end: u64,
) -> Result<Vec<usize>, BlockError> {
    let metadata = opened.metadata();
    let converter =
        StatisticsConverter::try_new(START_UNIX_NANOS, opened.arrow.schema(), opened.arrow.parquet_schema())?;
    let mins = converter.row_group_mins(metadata.row_groups().iter())?;
    let maxes = converter.row_group_maxes(metadata.row_groups().iter())?;
    let (Some(mins), Some(maxes)) = (mins.as_primitive_opt::<UInt64Type>(), maxes.as_primitive_opt::<UInt64Type>())
    else {
        return Ok((0..metadata.num_row_groups()).collect());
    };
    Ok((0..metadata.num_row_groups())
        .filter(|&i| {
            let below = !mins.is_null(i) && mins.value(i) > end;
            let above = !maxes.is_null(i) && maxes.value(i) < start;
            !below && !above
        })
        .collect())
}

/// Fetches the plan's byte ranges.
pub(crate) async fn fetch(
    store: &dyn ObjectStore,
    path: &Path,
    opened: &OpenedBlock,
    plan: &ReadPlan,
) -> Result<SparseFile, BlockError> {
    fetch_ranges(store, path, opened, plan.byte_ranges(opened.metadata())).await
}

/// Fetches the plan's byte ranges of the leaf columns in `projection`.
pub(crate) async fn fetch_projected(
    store: &dyn ObjectStore,
    path: &Path,
    opened: &OpenedBlock,
    plan: &ReadPlan,
    projection: &ProjectionMask,
) -> Result<SparseFile, BlockError> {
    fetch_ranges(store, path, opened, plan.projected_byte_ranges(opened.metadata(), Some(projection))).await
}

async fn fetch_ranges(
    store: &dyn ObjectStore,
    path: &Path,
    opened: &OpenedBlock,
    ranges: Vec<Range<u64>>,
) -> Result<SparseFile, BlockError> {
    let chunks = if ranges.is_empty() { Vec::new() } else { store.get_ranges(path, &ranges).await? };
    Ok(SparseFile { len: opened.file_size, chunks: ranges.into_iter().map(|r| r.start).zip(chunks).collect() })
}

/// Builds the batch reader for a plan over fetched bytes (call on the blocking pool).
pub(crate) fn batch_reader(
    file: SparseFile,
    opened: &OpenedBlock,
    plan: &ReadPlan,
    batch_size: usize,
) -> Result<ParquetRecordBatchReader, BlockError> {
    projected_batch_reader(file, opened, plan, batch_size, None)
}

/// Like [`batch_reader`], but decodes only the columns of `projection` when given.
pub(crate) fn projected_batch_reader(
    file: SparseFile,
    opened: &OpenedBlock,
    plan: &ReadPlan,
    batch_size: usize,
    projection: Option<ProjectionMask>,
) -> Result<ParquetRecordBatchReader, BlockError> {
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, opened.arrow.clone())
        .with_row_groups(plan.row_groups.clone())
        .with_batch_size(batch_size)
        .with_row_selection_policy(RowSelectionPolicy::Selectors);
    if let Some(projection) = projection {
        builder = builder.with_projection(projection);
    }
    if let Some(selection) = plan.selection(opened.metadata()) {
        builder = builder.with_row_selection(selection);
    }
    Ok(builder.build()?)
}

/// Like [`projected_batch_reader`], reading only `rows`: sorted, disjoint ranges of positions
/// among the rows the plan reads. Pages holding none of them are skipped.
pub(crate) fn rows_batch_reader(
    file: SparseFile,
    opened: &OpenedBlock,
    plan: &ReadPlan,
    batch_size: usize,
    projection: ProjectionMask,
    rows: &[Range<usize>],
) -> Result<ParquetRecordBatchReader, BlockError> {
    let metadata = opened.metadata();
    let plan_selection = plan.selection(metadata);
    let total = match &plan_selection {
        Some(selection) => selection.row_count(),
        None => plan.row_groups.iter().map(|&g| metadata.row_group(g).num_rows() as usize).sum(),
    };
    let mut selectors = Vec::new();
    let mut position = 0;
    for range in rows {
        if range.start > position {
            selectors.push(RowSelector::skip(range.start - position));
        }
        selectors.push(RowSelector::select(range.len()));
        position = range.end;
    }
    if total > position {
        selectors.push(RowSelector::skip(total - position));
    }
    let mut selection = RowSelection::from(selectors);
    if let Some(plan_selection) = plan_selection {
        selection = plan_selection.and_then(&selection);
    }
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, opened.arrow.clone())
        .with_row_groups(plan.row_groups.clone())
        .with_batch_size(batch_size)
        .with_row_selection_policy(RowSelectionPolicy::Selectors)
        .with_projection(projection)
        .with_row_selection(selection);
    Ok(builder.build()?)
}

/// The parts of a file that were fetched, addressed by file offset.
#[derive(Clone)]
pub(crate) struct SparseFile {
    len: u64,
    /// (start offset, bytes), sorted by offset, not overlapping.
    chunks: Vec<(u64, Bytes)>,
}

impl SparseFile {
    /// A file held entirely in memory.
    pub(crate) fn whole(bytes: Bytes) -> SparseFile {
        SparseFile { len: bytes.len() as u64, chunks: vec![(0, bytes)] }
    }

    fn chunk_at(&self, start: u64, len: u64) -> Result<Bytes, ParquetError> {
        let i = self.chunks.partition_point(|(offset, _)| *offset <= start);
        if i > 0 {
            let (offset, bytes) = &self.chunks[i - 1];
            let from = start - offset;
            if from + len <= bytes.len() as u64 {
                return Ok(bytes.slice(from as usize..(from + len) as usize));
            }
        }
        Err(ParquetError::General(format!("block read outside the fetched ranges: {len} bytes at offset {start}")))
    }
}

impl Length for SparseFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for SparseFile {
    type T = bytes::buf::Reader<Bytes>;

    /// Reads from `start` to the end of the fetched range that contains it.
    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        let i = self.chunks.partition_point(|(offset, _)| *offset <= start);
        let Some((offset, bytes)) = i.checked_sub(1).map(|i| &self.chunks[i]) else {
            return Err(ParquetError::General(format!("block read outside the fetched ranges at offset {start}")));
        };
        let available = (offset + bytes.len() as u64).saturating_sub(start);
        Ok(self.chunk_at(start, available)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        self.chunk_at(start, length as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_when_they_touch_or_overlap() {
        assert_eq!(merge_ranges(vec![10..20, 0..5, 5..7, 15..30, 40..41]), vec![0..7, 10..30, 40..41]);
    }

    #[test]
    fn sparse_file_serves_only_fetched_bytes() {
        let file =
            SparseFile { len: 100, chunks: vec![(10, Bytes::from_static(b"abcdef")), (50, Bytes::from_static(b"xy"))] };
        assert_eq!(file.get_bytes(12, 3).unwrap(), Bytes::from_static(b"cde"));
        assert_eq!(file.get_bytes(50, 2).unwrap(), Bytes::from_static(b"xy"));
        assert!(file.get_bytes(14, 4).is_err(), "crosses the end of a chunk");
        assert!(file.get_bytes(0, 1).is_err(), "before the first chunk");
        assert!(file.get_read(30).is_err(), "in a gap between chunks");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut file.get_read(13).unwrap(), &mut rest).unwrap();
        assert_eq!(rest, "def");
    }
}
