//! The write-ahead log: a durable, append-only sequence of opaque byte records.
//!
//! The ingest path puts one encoded batch of spans in each record and acknowledges the batch
//! only once [`Wal::append`] has returned its sequence number: by then the record is written
//! and, unless [`WalOptions::fsync`] is off, synced to disk. After a crash, [`Wal::open`]
//! replays every record that was acknowledged.
//!
//! # On-disk layout
//!
//! A directory of segment files, each named after the sequence number of its first record:
//!
//! ```text
//! <dir>/
//!   LOCK                        locked while a `Wal` has the directory open
//!   00000000000000000000.wal    records 0 ..= 1741
//!   00000000000000001742.wal    records 1742 ..  (the active segment is the last one)
//! ```
//!
//! All integers are little endian; checksums are CRC-32C (Castagnoli).
//!
//! ```text
//! struct Segment {
//!     header: SegmentHeader,
//!     records: [Record],        // back to back until the end of the file
//! }
//!
//! struct SegmentHeader {        // 24 bytes
//!     magic: [u8; 8],           // b"SXWALSEG"
//!     version: u32,             // format version, 1
//!     first_seq: u64,           // same number as the file name
//!     header_crc: u32,          // crc32c of the 20 bytes above
//! }
//!
//! struct Record {               // 16 bytes + len
//!     len: u32,                 // payload length in bytes
//!     crc: u32,                 // crc32c of seq (8 bytes) followed by payload
//!     seq: u64,                 // first_seq for the first record, then +1 per record
//!     payload: [u8; len],       // opaque to the log
//! }
//! ```
//!
//! Sequence numbers start at 0 and increase by one per record across segments, so a sealed
//! segment holds exactly the records from its first sequence number up to the next segment's.
//! A sequence number is never reused once a record with it was acknowledged, unless the disk
//! itself loses or damages synced data.
//!
//! # Limits
//!
//! - A payload is at most [`WalOptions::max_record_bytes`] (default 64 MiB, never above
//!   `u32::MAX`); a larger one is refused with [`WalError::RecordTooLarge`] before any I/O.
//! - A segment is sealed when the next record would make it larger than
//!   [`WalOptions::segment_size_bytes`] (default 64 MiB). A record larger than that gets a
//!   segment of its own.
//! - Replay reads a segment in windows of 8 MiB (more for a larger record) as it goes.
//!
//! # Writing: group commit
//!
//! A dedicated thread owns the active segment. [`Wal::append`] sends the payload
//! through a channel and awaits the answer. The thread takes everything waiting, encodes it
//! into one buffer, writes it with one `write` call, calls `fdatasync` once, and answers all
//! those appends: under load, many appends share one fsync. An append that fails (disk full,
//! I/O error) is answered with an error and its record is cut off again; after a failed
//! *fsync* the on-disk state is unknown, so the log answers every later request with
//! [`WalError::Failed`] until it is reopened. New segments are synced with their directory.
//!
//! # Opening: crash recovery and replay
//!
//! [`Wal::open`] locks the directory, reads every segment header, and repairs the last segment,
//! the only one a crash can tear (an older one was synced before the next one was created):
//!
//! - a torn or corrupt tail — a record cut short, a checksum mismatch, an unexpected sequence
//!   number — is truncated away after the last valid record, with a warning and
//!   [`WalMetrics::corrupt_tails_truncated`]; this is never an error;
//! - a last segment left with no record, or whose header is torn or damaged (a damaged one is
//!   first copied aside to `<name>.corrupt`), is emptied to a fresh header and appended to;
//! - otherwise appends go to a new segment after it.
//!
//! An older segment with a damaged header or record is not repaired: replay warns, counts
//! [`WalMetrics::corrupt_segments`], skips the rest of that segment and goes on with the next.
//! A segment of a newer format version makes `open` fail without changing anything.
//!
//! The returned [`Replay`] then yields the valid records, oldest first, reading one segment at
//! a time. Checkpointing is the caller's: once records up to some sequence number are
//! persisted elsewhere, [`Wal::rotate`] and [`Wal::remove_segments_before`] drop the segments
//! that hold only those. Format reference for users: `docs/formats/wal.md`.

mod error;
mod metrics;
mod record;
mod recover;
mod replay;
mod segment;
mod state;
mod writer;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use error::WalError;
pub use metrics::WalMetrics;
pub use replay::Replay;

use record::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use state::{SegmentSet, Shared};
use writer::{Command, Reply, Writer};

/// Default [`WalOptions::segment_size_bytes`]: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Default [`WalOptions::max_record_bytes`]: 64 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 << 20;
/// Default [`WalOptions::fsync`]: on.
pub const DEFAULT_FSYNC: bool = true;

/// Name of the lock file in the log's directory.
const LOCK_FILE_NAME: &str = "LOCK";

/// How the log writes. Missing fields take their defaults when deserialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WalOptions {
    /// A segment is sealed when the next record would make it larger than this.
    pub segment_size_bytes: u64,
    /// Largest accepted payload; at most `u32::MAX`.
    pub max_record_bytes: usize,
    /// Sync each commit to disk. Off only for tests and benchmarks: without it, a machine crash
    /// loses acknowledged records.
    pub fsync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            fsync: DEFAULT_FSYNC,
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<(), WalError> {
        if u32::try_from(self.max_record_bytes).is_err() {
            return Err(WalError::InvalidOptions(format!(
                "max_record_bytes is {}, above the format's limit of {}",
                self.max_record_bytes,
                u32::MAX
            )));
        }
        let smallest_segment = (SEGMENT_HEADER_LEN + RECORD_HEADER_LEN) as u64;
        if self.segment_size_bytes < smallest_segment {
            return Err(WalError::InvalidOptions(format!(
                "segment_size_bytes is {}, below the smallest useful segment of {smallest_segment} bytes",
                self.segment_size_bytes
            )));
        }
        Ok(())
    }
}

/// An open write-ahead log. `Send + Sync`: share it with `Arc<Wal>`.
///
/// Dropping it serves the requests already sent, then joins the writer thread (blocking for at
/// most one commit); [`Wal::close`] does the same without blocking the async runtime.
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    options: WalOptions,
    /// `None` once closing.
    commands: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    /// Resolves when the writer thread ends, however it ends.
    writer_done: Option<oneshot::Receiver<()>>,
    /// Holds the directory's lock for as long as the log is open.
    _lock: File,
}

impl Wal {
    /// Opens the log in `dir`, creating the directory if needed, repairs a torn tail (see the
    /// [module docs](self)) and starts the writer thread. Returns the records found, to replay
    /// before serving; appends may start at once and get sequence numbers after them.
    ///
    /// Blocking: call it from `spawn_blocking` or before the runtime serves requests; the same
    /// holds for iterating the [`Replay`].
    pub fn open(dir: &Path, options: WalOptions, metrics: WalMetrics) -> Result<(Self, Replay), WalError> {
        options.validate()?;
        fs::create_dir_all(dir).map_err(|e| WalError::io("create directory", dir, e))?;
        let lock = lock_dir(dir)?;
        let recovered = recover::recover(dir, options.fsync, &metrics)?;

        let next_seq = recovered.active.first_seq;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            fsync: options.fsync,
            metrics,
            segments: Mutex::new(SegmentSet::new(recovered.sealed, next_seq)),
            active_size_bytes: AtomicU64::new(SEGMENT_HEADER_LEN as u64),
            next_seq: AtomicU64::new(next_seq),
        });
        let writer = Writer::new(Arc::clone(&shared), options.clone(), recovered.active);
        let (commands, receiver) = mpsc::channel();
        let (done_sender, writer_done) = oneshot::channel::<()>();
        let handle = thread::Builder::new()
            .name("sextant-wal".to_owned())
            .spawn(move || {
                // Dropped when the thread ends, even by a panic, which wakes `close`.
                let _done = done_sender;
                writer.run(receiver);
            })
            .map_err(|e| WalError::io("start the writer thread for", dir, e))?;

        let wal = Self {
            shared,
            options,
            commands: Some(commands),
            writer: Some(handle),
            writer_done: Some(writer_done),
            _lock: lock,
        };
        Ok((wal, recovered.replay))
    }

    /// Appends one record and returns its sequence number once it is durable. Concurrent
    /// appends share fsyncs. If the future is dropped early, the record may or may not be
    /// written.
    pub async fn append(&self, payload: Bytes) -> Result<u64, WalError> {
        if payload.len() > self.options.max_record_bytes {
            self.shared.metrics.append_errors.inc();
            return Err(WalError::RecordTooLarge { size: payload.len(), max: self.options.max_record_bytes });
        }
        self.request(|reply| Command::Append { payload, reply }).await
    }

    /// Seals the active segment once the appends sent before are durable, starts a new one,
    /// and returns the new segment's first sequence number: every record below it is in a
    /// sealed segment. If the active segment holds no record it is kept, and its first
    /// sequence number is returned.
    pub async fn rotate(&self) -> Result<u64, WalError> {
        self.request(|reply| Command::Rotate { reply }).await
    }

    /// Deletes the oldest segments whose records all have sequence numbers below `seq`; never
    /// the active segment. Returns how many were deleted. Blocking (file deletions and a
    /// directory sync).
    pub fn remove_segments_before(&self, seq: u64) -> Result<usize, WalError> {
        self.shared.remove_segments_before(seq)
    }

    /// Bytes in all segment files, as of the last commit.
    pub fn size_bytes(&self) -> u64 {
        self.shared.size_bytes()
    }

    /// The highest sequence number assigned to a durable record, if any ever was. That record
    /// may since have been removed by a checkpoint or lost to damage found on open.
    pub fn last_seq(&self) -> Option<u64> {
        self.shared.last_seq()
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.options
    }

    /// Serves the requests already sent, stops the writer thread and releases the directory.
    pub async fn close(mut self) -> Result<(), WalError> {
        self.commands = None;
        if let Some(done) = self.writer_done.take() {
            let _ = done.await;
        }
        match self.writer.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(WalError::Failed { reason: "the writer thread panicked".to_owned() }),
            _ => Ok(()),
        }
    }

    async fn request(&self, command: impl FnOnce(Reply) -> Command) -> Result<u64, WalError> {
        let (reply, answer) = oneshot::channel();
        let commands = self.commands.as_ref().ok_or(WalError::Closed)?;
        commands.send(command(reply)).map_err(|_| WalError::Closed)?;
        answer.await.map_err(|_| WalError::Closed)?
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.commands = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Takes the directory's lock so that two logs never write the same segments.
fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path: PathBuf = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(WalError::Locked { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(WalError::io("lock", &path, e)),
    }
}
