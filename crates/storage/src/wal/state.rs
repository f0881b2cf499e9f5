//! State shared between the [`Wal`](super::Wal) handle and its writer thread.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::segment::{segment_path, sync_dir};
use super::{WalError, WalMetrics};

/// A segment that no longer receives records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealedSegment {
    pub first_seq: u64,
    pub size_bytes: u64,
}

/// The segments on disk, oldest first. A sealed segment holds the records from its
/// `first_seq` up to (not including) the `first_seq` of the segment after it.
#[derive(Debug)]
pub(crate) struct SegmentSet {
    pub sealed: VecDeque<SealedSegment>,
    /// Sum of `sealed[..].size_bytes`.
    pub sealed_size_bytes: u64,
    /// First sequence number of the segment being written.
    pub active_first_seq: u64,
}

impl SegmentSet {
    pub(crate) fn new(sealed: Vec<SealedSegment>, active_first_seq: u64) -> Self {
        let sealed_size_bytes = sealed.iter().map(|s| s.size_bytes).sum();
        Self { sealed: sealed.into(), sealed_size_bytes, active_first_seq }
    }

    /// Seals the active segment and makes the one starting at `new_first_seq` active.
    pub(crate) fn seal_active(&mut self, size_bytes: u64, new_first_seq: u64) {
        self.sealed.push_back(SealedSegment { first_seq: self.active_first_seq, size_bytes });
        self.sealed_size_bytes += size_bytes;
        self.active_first_seq = new_first_seq;
    }
}

/// Owned by the handle and the writer thread together.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub fsync: bool,
    pub metrics: WalMetrics,
    /// Locked by the writer only when it switches segments.
    pub segments: Mutex<SegmentSet>,
    /// Bytes in the active segment file, header included, after the last commit.
    pub active_size_bytes: AtomicU64,
    /// Sequence number after the last durable record; only the writer stores it.
    pub next_seq: AtomicU64,
}

impl Shared {
    pub(crate) fn size_bytes(&self) -> u64 {
        let sealed = self.segments.lock().sealed_size_bytes;
        sealed + self.active_size_bytes.load(Ordering::Acquire)
    }

    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.next_seq.load(Ordering::Acquire).checked_sub(1)
    }

    /// Deletes the oldest sealed segments whose records all have sequence numbers below `seq`.
    pub(crate) fn remove_segments_before(&self, seq: u64) -> Result<usize, WalError> {
        let mut removed = 0;
        let mut result = Ok(());
        {
            let mut set = self.segments.lock();
            while let Some(&oldest) = set.sealed.front() {
                let end_seq = set.sealed.get(1).map_or(set.active_first_seq, |next| next.first_seq);
                if end_seq > seq {
                    break;
                }
                let path = segment_path(&self.dir, oldest.first_seq);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => {
                        result = Err(WalError::io("remove segment", &path, error));
                        break;
                    }
                }
                set.sealed.pop_front();
                set.sealed_size_bytes -= oldest.size_bytes;
                removed += 1;
            }
        }
        if removed > 0 {
            self.metrics.segments_removed.inc_by(removed as u64);
            if self.fsync {
                sync_dir(&self.dir)?;
            }
        }
        result.map(|()| removed)
    }
}
