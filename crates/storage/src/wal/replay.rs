//! Replay: the records found on open, read lazily, a window of one segment at a time.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;

use bytes::Bytes;
use tracing::{debug, warn};

use super::record::{Decoded, InvalidRecord, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, decode_record};
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
/// Returned by [`Wal::open`](super::Wal::open). Reading is lazy and blocking: a segment file is
/// read in windows of [`READ_WINDOW_BYTES`] (or one record, if larger) as replay reaches them,
/// so the first records are ready without waiting for the whole segment, and every payload is a
/// [`Bytes`] slice of its window, so no record is copied or allocated on its own (only the start
/// of a record cut by a window's end is copied into the next window). A payload that is kept
/// alive keeps its whole window alive; copy it if it must outlive the replay.
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

/// Bytes of a segment read at once during replay, unless a record needs more.
#[cfg(not(test))]
const READ_WINDOW_BYTES: usize = 8 << 20;
/// Small in tests, so that records straddle windows in every test that replays.
#[cfg(test)]
const READ_WINDOW_BYTES: usize = 100;

/// Position in the segment being replayed.
#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    /// The part of the segment read last, from the start of the record at `offset` or before.
    contents: Bytes,
    /// Where `contents` starts in the file.
    contents_start: u64,
    offset: usize,
    next_seq: u64,
    /// The rest of the file, if it was not all read yet.
    file: Option<fs::File>,
    /// File bytes after `contents`.
    unread: u64,
}

impl Cursor {
    /// Keeps `contents[offset..]` and reads `needed` more bytes after it, at least a window, at
    /// most what is left of the file; `file` is `None` once the file is all read.
    fn read_more(&mut self, needed: usize) -> io::Result<()> {
        let Some(file) = &mut self.file else { return Ok(()) };
        let want = needed.max(READ_WINDOW_BYTES).min(self.unread.try_into().unwrap_or(usize::MAX));
        let kept = &self.contents[self.offset..];
        let mut window = Vec::with_capacity(kept.len() + want);
        window.extend_from_slice(kept);
        let read = file.take(want as u64).read_to_end(&mut window)?;
        self.unread -= read as u64;
        if read < want || self.unread == 0 {
            // The file is shorter than it was when opened (or this is its end): what is read
            // is all there is.
            self.file = None;
        }
        self.contents = Bytes::from(window);
        self.contents_start += self.offset as u64;
        self.offset = 0;
        Ok(())
    }
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
        let (contents, file, unread) = match segment.contents {
            Some(contents) => (contents, None, 0),
            None => match fs::File::open(&segment.path).and_then(|file| Ok((file.metadata()?.len(), file))) {
                Ok((len, file)) => (Bytes::new(), Some(file), len),
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
        let mut cursor = Cursor {
            path: segment.path,
            contents,
            contents_start: 0,
            offset: 0,
            next_seq: segment.first_seq,
            file,
            unread,
        };
        // The header was checked on open; records start after it.
        if cursor.contents.len() < SEGMENT_HEADER_LEN
            && let Err(error) = cursor.read_more(SEGMENT_HEADER_LEN)
        {
            return Some(Err(WalError::io("read segment", &cursor.path, error)));
        }
        cursor.offset = SEGMENT_HEADER_LEN.min(cursor.contents.len());
        self.current = Some(cursor);
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
            let decoded = decode_record(&cursor.contents, cursor.offset, cursor.next_seq);
            // A record (or the end) cut by the window's end: read on and decode it again.
            let needed = match decoded {
                Decoded::End => Some(0),
                Decoded::Invalid(InvalidRecord::TornHeader { .. }) => Some(RECORD_HEADER_LEN),
                Decoded::Invalid(InvalidRecord::TornPayload { len, .. }) => Some(RECORD_HEADER_LEN + len as usize),
                _ => None,
            };
            if let Some(needed) = needed
                && cursor.file.is_some()
            {
                let needed = needed.saturating_sub(cursor.contents.len() - cursor.offset);
                match cursor.read_more(needed) {
                    Ok(()) => continue,
                    Err(error) => {
                        let error = WalError::io("read segment", &cursor.path, error);
                        self.current = None;
                        return Some(Err(error));
                    }
                }
            }
            match decoded {
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
                        offset = cursor.contents_start + cursor.offset as u64,
                        skipped_bytes = cursor.contents.len().saturating_sub(cursor.offset) as u64 + cursor.unread,
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
