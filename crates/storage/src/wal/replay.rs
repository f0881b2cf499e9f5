//! Replay: the records found on open, read lazily one segment at a time.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use tracing::{debug, warn};

use super::record::{Decoded, SEGMENT_HEADER_LEN, decode_record};
use super::{WalError, WalMetrics};

/// One segment waiting to be replayed.
#[derive(Debug)]
pub(crate) struct ReplaySegment {
    pub first_seq: u64,
    pub path: PathBuf,
    /// The whole file when it was already read and checked on open (the last segment).
    pub contents: Option<Bytes>,
}

/// The records that were in the log when it was opened, oldest first, as `(seq, payload)`.
///
/// Returned by [`Wal::open`](super::Wal::open). Reading is lazy and blocking: each segment file
/// is read whole into one buffer when its turn comes, and every payload is a [`Bytes`] slice of
/// that buffer, so no record is copied or allocated on its own. A payload that is kept alive
/// keeps its whole segment buffer alive; copy it if it must outlive the replay.
///
/// Sequence numbers strictly increase. They are consecutive except where damaged records were
/// skipped: a damaged record in a segment ends that segment (with a warning and
/// [`WalMetrics::corrupt_segments`]) and replay goes on with the next one. An I/O error reading a
/// segment is returned as an `Err` item; iterating further continues with the next segment.
/// A segment removed by [`Wal::remove_segments_before`](super::Wal::remove_segments_before)
/// before its turn is skipped.
#[derive(Debug)]
pub struct Replay {
    pending: VecDeque<ReplaySegment>,
    current: Option<Cursor>,
    last_seq: Option<u64>,
    metrics: WalMetrics,
}

/// Position in the segment being replayed.
#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    contents: Bytes,
    offset: usize,
    next_seq: u64,
}

impl Replay {
    pub(crate) fn new(pending: VecDeque<ReplaySegment>, metrics: WalMetrics) -> Self {
        Self { pending, current: None, last_seq: None, metrics }
    }

    /// Segments not yet started.
    pub fn remaining_segments(&self) -> usize {
        self.pending.len()
    }

    /// Calls `f` for every record, stopping at the first error of either the log or `f`.
    pub fn try_for_each<E>(self, mut f: impl FnMut(u64, Bytes) -> Result<(), E>) -> Result<(), E>
    where
        E: From<WalError>,
    {
        for item in self {
            let (seq, payload) = item?;
            f(seq, payload)?;
        }
        Ok(())
    }

    /// Starts the next segment. `None` when there is none left; `Some(Err)` on an I/O error.
    fn start_next_segment(&mut self) -> Option<Result<(), WalError>> {
        let segment = self.pending.pop_front()?;
        let contents = match segment.contents {
            Some(contents) => contents,
            None => match fs::read(&segment.path) {
                Ok(contents) => Bytes::from(contents),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    debug!(path = %segment.path.display(), "wal segment removed before replay reached it");
                    return Some(Ok(()));
                }
                Err(error) => return Some(Err(WalError::io("read segment", &segment.path, error))),
            },
        };
        if let Some(last_seq) = self.last_seq
            && segment.first_seq <= last_seq
        {
            warn!(
                path = %segment.path.display(),
                first_seq = segment.first_seq,
                last_seq,
                "wal segment overlaps the previous one; replaying only its newer records"
            );
        }
        self.current =
            Some(Cursor { path: segment.path, contents, offset: SEGMENT_HEADER_LEN, next_seq: segment.first_seq });
        Some(Ok(()))
    }
}

impl Iterator for Replay {
    type Item = Result<(u64, Bytes), WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(cursor) = &mut self.current else {
                match self.start_next_segment()? {
                    Ok(()) => continue,
                    Err(error) => return Some(Err(error)),
                }
            };
            match decode_record(&cursor.contents, cursor.offset, cursor.next_seq) {
                Decoded::Record { seq, payload } => {
                    cursor.offset = payload.end;
                    cursor.next_seq += 1;
                    if self.last_seq.is_some_and(|last| seq <= last) {
                        continue;
                    }
                    self.last_seq = Some(seq);
                    return Some(Ok((seq, cursor.contents.slice(payload))));
                }
                Decoded::End => self.current = None,
                Decoded::Invalid(problem) => {
                    warn!(
                        path = %cursor.path.display(),
                        offset = cursor.offset,
                        skipped_bytes = cursor.contents.len().saturating_sub(cursor.offset),
                        %problem,
                        "damaged record in a wal segment; skipping the rest of the segment"
                    );
                    self.metrics.corrupt_segments.inc();
                    self.current = None;
                }
            }
        }
    }
}
