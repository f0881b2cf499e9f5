//! The writer thread: sole owner of the active segment file, doing group commit.
//!
//! Each round takes every request waiting in the channel (up to [`MAX_BATCH_BYTES`] of
//! payload), writes each append's record header and payload as received with one vectored
//! `write` call (more for over 512 records), syncs the file once, and only then answers the
//! appends. Requests are handled in arrival order; a segment switch in the middle of a round
//! (segment full, or a rotation) commits what came before it first. A plain thread, not a
//! task, because `write` and `fdatasync` block.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;
use tracing::error;

use super::record::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, record_header};
use super::recover::ActiveSegment;
use super::segment::{create_segment, segment_path};
use super::state::Shared;
use super::{WalError, WalOptions};

/// A round stops taking requests from the channel once it holds this many payload bytes, so
/// that one round's latency and buffer stay bounded under a flood.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Buffers one `write` call takes at most (Linux's `IOV_MAX`).
const MAX_SLICES_PER_WRITE: usize = 1024;

/// The answer to a request: the sequence number of the appended record, or the first sequence
/// number of the new segment.
pub(crate) type Reply = oneshot::Sender<Result<u64, WalError>>;

/// A request to the writer thread.
pub(crate) enum Command {
    Append { payload: Bytes, reply: Reply },
    Rotate { reply: Reply },
}

/// An append whose record is encoded but not yet durable.
struct Waiter {
    seq: u64,
    reply: Reply,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    options: WalOptions,
    /// The active segment, opened for appending.
    file: File,
    path: PathBuf,
    first_seq: u64,
    /// Bytes of the active segment written and synced, header included.
    durable_len: u64,
    /// Records in the active segment written and synced.
    durable_records: u64,
    /// Sequence number of the next record.
    next_seq: u64,
    /// Records of this round, not yet written: each header, and its payload as received, so
    /// that a request's bytes go from its buffer to the file without another copy.
    records: Vec<([u8; RECORD_HEADER_LEN], Bytes)>,
    /// Bytes of this round's records, headers included.
    round_len: u64,
    /// The appends of this round's records, in order.
    waiting: Vec<Waiter>,
    /// Set when the state of the file became unknown (a failed fsync): every later request
    /// fails with this reason.
    failure: Option<String>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, options: WalOptions, active: ActiveSegment) -> Self {
        let path = segment_path(&shared.dir, active.first_seq);
        Self {
            shared,
            options,
            file: active.file,
            path,
            first_seq: active.first_seq,
            durable_len: SEGMENT_HEADER_LEN as u64,
            durable_records: 0,
            next_seq: active.first_seq,
            records: Vec::new(),
            round_len: 0,
            waiting: Vec::new(),
            failure: None,
        }
    }

    /// Serves requests until every sender is dropped. Requests already in the channel are
    /// served before it returns.
    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        let mut round = Vec::new();
        while let Ok(first) = commands.recv() {
            let mut round_bytes = payload_len(&first);
            round.push(first);
            while round_bytes < MAX_BATCH_BYTES {
                let Ok(command) = commands.try_recv() else { break };
                round_bytes += payload_len(&command);
                round.push(command);
            }
            for command in round.drain(..) {
                self.handle(command);
            }
            self.commit();
        }
    }

    fn handle(&mut self, command: Command) {
        if let Some(reason) = &self.failure {
            let error = WalError::Failed { reason: reason.clone() };
            match command {
                Command::Append { reply, .. } => {
                    self.shared.metrics.append_errors.inc();
                    let _ = reply.send(Err(error));
                }
                Command::Rotate { reply } => {
                    let _ = reply.send(Err(error));
                }
            }
            return;
        }
        match command {
            Command::Append { payload, reply } => {
                let record_len = (RECORD_HEADER_LEN + payload.len()) as u64;
                let segment_len = self.durable_len + self.round_len;
                let has_records = self.durable_records > 0 || !self.waiting.is_empty();
                if has_records
                    && segment_len + record_len > self.options.segment_size_bytes
                    && let Err(error) = self.roll()
                {
                    self.shared.metrics.append_errors.inc();
                    let _ = reply.send(Err(error));
                    return;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                self.records.push((record_header(seq, &payload), payload));
                self.round_len += record_len;
                self.waiting.push(Waiter { seq, reply });
            }
            Command::Rotate { reply } => {
                let result = self.roll().map(|()| self.first_seq);
                let _ = reply.send(result);
            }
        }
    }

    /// Makes the records of this round durable, then answers their appends.
    fn commit(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let started = Instant::now();
        let num_bytes = self.round_len;
        let num_records = self.waiting.len() as u64;
        let written = self.write_and_sync();
        let metrics = &self.shared.metrics;
        match written {
            Ok(()) => {
                metrics.commit_duration_seconds.observe(started.elapsed().as_secs_f64());
                metrics.records_per_commit.observe(num_records as f64);
                metrics.records_appended.inc_by(num_records);
                metrics.appended_bytes.inc_by(num_bytes);
                for waiter in self.waiting.drain(..) {
                    let _ = waiter.reply.send(Ok(waiter.seq));
                }
            }
            Err(error) => {
                error!(%error, num_records, "wal commit failed");
                metrics.append_errors.inc_by(num_records);
                for waiter in self.waiting.drain(..) {
                    let _ = waiter.reply.send(Err(error.duplicate()));
                }
            }
        }
        self.records.clear();
        self.round_len = 0;
    }

    fn write_and_sync(&mut self) -> Result<(), WalError> {
        let records = self.records.iter();
        let mut slices: Vec<IoSlice<'_>> =
            records.flat_map(|(header, payload)| [IoSlice::new(header), IoSlice::new(payload)]).collect();
        if let Err(source) = write_all_vectored(&mut self.file, &mut slices) {
            let error = WalError::io("write", &self.path, source);
            self.undo_write();
            return Err(error);
        }
        if self.options.fsync {
            if let Err(source) = self.file.sync_data() {
                // After a failed fsync the kernel may have dropped the dirty pages: nothing
                // written since the last good sync can be trusted, and retrying would hide it.
                let error = WalError::io("fsync", &self.path, source);
                self.failure = Some(error.to_string());
                return Err(error);
            }
            self.shared.metrics.fsyncs.inc();
        }
        self.durable_len += self.round_len;
        self.durable_records += self.waiting.len() as u64;
        self.shared.active_size_bytes.store(self.durable_len, Ordering::Release);
        self.shared.next_seq.store(self.next_seq, Ordering::Release);
        Ok(())
    }

    /// After a failed or partial write: cut the file back to its last durable length and give
    /// the unwritten records' sequence numbers back, so the log stays usable (a full disk
    /// should refuse appends, not end the log).
    fn undo_write(&mut self) {
        self.next_seq = self.first_seq + self.durable_records;
        if let Err(source) = self.file.set_len(self.durable_len) {
            let error = WalError::io("truncate", &self.path, source);
            self.failure = Some(error.to_string());
        }
    }

    /// Commits this round so far, seals the active segment and starts a new one. Does nothing
    /// more when the active segment holds no record.
    fn roll(&mut self) -> Result<(), WalError> {
        self.commit();
        if let Some(reason) = &self.failure {
            return Err(WalError::Failed { reason: reason.clone() });
        }
        if self.durable_records == 0 {
            return Ok(());
        }
        let first_seq = self.next_seq;
        let file = create_segment(&self.shared.dir, first_seq, self.options.fsync)?;
        self.shared.metrics.segments_created.inc();
        {
            let mut segments = self.shared.segments.lock();
            segments.seal_active(self.durable_len, first_seq);
            self.shared.active_size_bytes.store(SEGMENT_HEADER_LEN as u64, Ordering::Release);
        }
        self.file = file;
        self.path = segment_path(&self.shared.dir, first_seq);
        self.first_seq = first_seq;
        self.durable_len = SEGMENT_HEADER_LEN as u64;
        self.durable_records = 0;
        Ok(())
    }
}

fn payload_len(command: &Command) -> usize {
    match command {
        Command::Append { payload, .. } => payload.len(),
        Command::Rotate { .. } => 0,
    }
}

/// Writes every byte of `slices`, in order, in as few calls as the kernel allows.
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        let batch = slices.len().min(MAX_SLICES_PER_WRITE);
        match file.write_vectored(&slices[..batch]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the file took no more bytes")),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More buffers than one call takes, some empty: the file holds them all, in order.
    #[test]
    fn vectored_writes_keep_every_byte_in_order() {
        let buffers: Vec<Vec<u8>> = (0..3 * MAX_SLICES_PER_WRITE + 7).map(|i| vec![i as u8; i % 37]).collect();
        let mut slices: Vec<IoSlice<'_>> = buffers.iter().map(|b| IoSlice::new(b)).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut file = File::create(&path).unwrap();
        write_all_vectored(&mut file, &mut slices).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), buffers.concat());
    }
}
