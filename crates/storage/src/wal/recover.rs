//! Opening an existing directory: check every segment header, repair the last segment, and
//! decide where appends continue.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tracing::warn;

use super::record::{Decoded, FORMAT_VERSION, HeaderProblem, SEGMENT_HEADER_LEN, check_segment_header, decode_record};
use super::replay::{Replay, ReplaySegment};
use super::segment::{SegmentFile, create_segment, list_segments, read_header_bytes, reset_segment, truncate_segment};
use super::state::SealedSegment;
use super::{WalError, WalMetrics};

/// What [`recover`] found and prepared.
pub(crate) struct Recovered {
    pub replay: Replay,
    pub sealed: Vec<SealedSegment>,
    /// An empty segment (header only) ready for appends; its first sequence number is the next
    /// one to assign.
    pub active: ActiveSegment,
}

#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub file: File,
    pub first_seq: u64,
}

/// Scans `dir` and prepares it for appends. Fails only on I/O errors and on segments of a newer
/// format version (then before changing anything). Damage is repaired with a warning:
///
/// - older segments: a damaged header excludes the segment from replay; a damaged record is
///   found later, by [`Replay`];
/// - the last segment: a torn or corrupt tail is cut off; a torn or damaged header is rewritten
///   in place (a damaged one after copying the file aside to `<name>.corrupt`).
///
/// The last segment, if it keeps any record, is sealed and a new segment is created after it;
/// if it keeps none, it becomes the active segment, so its name still records the lowest
/// sequence number that may be assigned next.
pub(crate) fn recover(dir: &Path, fsync: bool, metrics: &WalMetrics) -> Result<Recovered, WalError> {
    let mut segments = list_segments(dir)?;
    let mut headers = Vec::with_capacity(segments.len());
    for segment in &segments {
        let checked = check_segment_header(&read_header_bytes(&segment.path)?, segment.first_seq);
        if let Err(HeaderProblem::UnsupportedVersion { found }) = checked {
            return Err(WalError::UnsupportedVersion { path: segment.path.clone(), found, supported: FORMAT_VERSION });
        }
        headers.push(checked);
    }

    let Some(last) = segments.pop() else {
        let file = create_segment(dir, 0, fsync)?;
        metrics.segments_created.inc();
        let active = ActiveSegment { file, first_seq: 0 };
        return Ok(Recovered { replay: Replay::new(VecDeque::new(), metrics.clone()), sealed: Vec::new(), active });
    };
    let last_header = headers.pop().expect("one header per segment");

    let mut to_replay = VecDeque::with_capacity(segments.len() + 1);
    let mut sealed = Vec::with_capacity(segments.len() + 1);
    for (segment, header) in segments.into_iter().zip(headers) {
        sealed.push(SealedSegment { first_seq: segment.first_seq, size_bytes: segment.size_bytes });
        match header {
            Ok(()) => {
                to_replay.push_back(ReplaySegment { first_seq: segment.first_seq, path: segment.path, contents: None })
            }
            Err(problem) => {
                warn!(path = %segment.path.display(), %problem, "skipping wal segment with a damaged header");
                metrics.corrupt_segments.inc();
            }
        }
    }

    let active = match repair_last_segment(&last, last_header, fsync, metrics)? {
        LastSegment::Reused(file) => ActiveSegment { file, first_seq: last.first_seq },
        LastSegment::Kept { contents, num_records } => {
            sealed.push(SealedSegment { first_seq: last.first_seq, size_bytes: contents.len() as u64 });
            to_replay.push_back(ReplaySegment { first_seq: last.first_seq, path: last.path, contents: Some(contents) });
            let first_seq = last.first_seq + num_records;
            let file = create_segment(dir, first_seq, fsync)?;
            metrics.segments_created.inc();
            ActiveSegment { file, first_seq }
        }
    };
    Ok(Recovered { replay: Replay::new(to_replay, metrics.clone()), sealed, active })
}

/// The last segment after repair.
enum LastSegment {
    /// It holds no record: emptied to a valid header and opened for appends.
    Reused(File),
    /// Its valid records, cut off after the last one.
    Kept { contents: Bytes, num_records: u64 },
}

fn repair_last_segment(
    segment: &SegmentFile,
    header: Result<(), HeaderProblem>,
    fsync: bool,
    metrics: &WalMetrics,
) -> Result<LastSegment, WalError> {
    let path = &segment.path;
    if let Err(problem) = header {
        if !matches!(problem, HeaderProblem::Truncated { .. }) {
            let aside = corrupt_copy_path(path);
            fs::copy(path, &aside).map_err(|e| WalError::io("copy damaged segment", path, e))?;
            warn!(path = %path.display(), copy = %aside.display(), %problem, "wal segment header damaged; rewriting it");
        } else {
            warn!(path = %path.display(), %problem, "wal segment torn while being created; rewriting it");
        }
        metrics.corrupt_tails_truncated.inc();
        return reset_segment(path, segment.first_seq, fsync).map(LastSegment::Reused);
    }

    let contents = fs::read(path).map_err(|e| WalError::io("read segment", path, e))?;
    let mut offset = SEGMENT_HEADER_LEN;
    let mut num_records = 0;
    loop {
        match decode_record(&contents, offset, segment.first_seq + num_records) {
            Decoded::Record { payload, .. } => {
                offset = payload.end;
                num_records += 1;
            }
            Decoded::End => break,
            Decoded::Invalid(problem) => {
                warn!(
                    path = %path.display(),
                    offset,
                    dropped_bytes = contents.len() - offset,
                    kept_records = num_records,
                    %problem,
                    "truncating the torn or corrupt tail of the last wal segment"
                );
                metrics.corrupt_tails_truncated.inc();
                break;
            }
        }
    }

    if num_records == 0 {
        return truncate_segment(path, SEGMENT_HEADER_LEN as u64, fsync).map(LastSegment::Reused);
    }
    let mut contents = contents;
    if offset < contents.len() {
        truncate_segment(path, offset as u64, fsync)?;
        contents.truncate(offset);
    }
    Ok(LastSegment::Kept { contents: Bytes::from(contents), num_records })
}

/// Where a copy of a segment with a damaged header is kept for inspection. The name does not
/// parse as a segment, so later opens ignore it.
fn corrupt_copy_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".corrupt");
    path.with_file_name(name)
}
