//! WAL replay at open: records are read on one thread, decoded on every core, and applied to
//! the head in log order on the calling thread, all at once.
//!
//! ```text
//! reader ──(index, record)──> decoders (one per core) ──(index, record, decoded)──> caller
//!    ^                                                                    │ in index order
//!    └──────────────────────── one credit per applied record ─────────────┘
//! ```
//!
//! The reader takes a credit before it reads a record and the caller gives one back after it
//! applied one, so at most [`MAX_IN_FLIGHT`] records are held (read, decoded or waiting for an
//! earlier one) at any time. Decoders take the next record as soon as they are free, so a
//! slow record holds up only the records applied after it, not the cores. A decoder that
//! panics hands the panic to the caller, which resumes it once the other threads have stopped
//! (instead of waiting forever for the record that decoder took).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, mpsc};

/// Records read but not yet applied, at most: enough to keep every decoder busy while the
/// caller applies, few enough that they stay small next to the head.
pub(super) const MAX_IN_FLIGHT: usize = 64;

/// Reads `records`, decodes each with `decode` on `decoders` threads and hands it to `apply`
/// with its decoding, in the order `records` yields them. At the first error of `records`,
/// applies every record before it and returns the error.
pub(super) fn decode_in_order<R, D, E>(
    records: impl Iterator<Item = Result<R, E>> + Send,
    decoders: usize,
    decode: impl Fn(&R) -> D + Sync,
    mut apply: impl FnMut(R, D),
) -> Result<(), E>
where
    R: Send,
    D: Send,
    E: Send,
{
    let (work_sender, work_receiver) = mpsc::sync_channel::<(usize, R)>(MAX_IN_FLIGHT);
    let (done_sender, done_receiver) = mpsc::channel::<(usize, R, std::thread::Result<D>)>();
    let (credit_sender, credit_receiver) = mpsc::sync_channel::<()>(MAX_IN_FLIGHT);
    for _ in 0..MAX_IN_FLIGHT {
        credit_sender.send(()).expect("the receiver is here");
    }
    let work_receiver = Arc::new(Mutex::new(work_receiver));
    std::thread::scope(|scope| {
        // Owned by this closure, so that a panic here (in `apply`, or a decoder's passed on)
        // drops it: the reader then stops at its next credit.
        let credit_sender = credit_sender;
        let reader = scope.spawn(move || -> Result<(), E> {
            let mut records = records.enumerate();
            // No credit: the caller stopped (it panicked); so does the reader.
            while credit_receiver.recv().is_ok() {
                let Some((index, record)) = records.next() else { break };
                if work_sender.send((index, record?)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        for _ in 0..decoders.max(1) {
            let (work_receiver, decode, done_sender) = (Arc::clone(&work_receiver), &decode, done_sender.clone());
            scope.spawn(move || {
                loop {
                    // The lock is held while waiting, so a record goes to one decoder.
                    let next = work_receiver.lock().expect("no decoder panics holding it").recv();
                    let Ok((index, record)) = next else { return };
                    let decoded = catch_unwind(AssertUnwindSafe(|| decode(&record)));
                    if done_sender.send((index, record, decoded)).is_err() {
                        return;
                    }
                }
            });
        }
        // The decoders hold the only receiver of work, so the reader stops if they all do, and
        // the only senders of results: the loop ends once they have all stopped, which they do
        // after the reader has stopped and every record is decoded.
        drop(work_receiver);
        drop(done_sender);
        let mut early = BTreeMap::new();
        let mut next_index = 0;
        for (index, record, decoded) in done_receiver {
            early.insert(index, (record, decoded));
            while let Some((record, decoded)) = early.remove(&next_index) {
                // Unwinding drops the credits and the results' receiver, which stops the others.
                let decoded = decoded.unwrap_or_else(|panic| resume_unwind(panic));
                apply(record, decoded);
                next_index += 1;
                // Fails only once the reader has stopped, when credits no longer matter.
                let _ = credit_sender.send(());
            }
        }
        debug_assert!(early.is_empty(), "every decoded record was applied");
        reader.join().expect("the reader does not panic")
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Decoding takes longer for some records than others, so decoders finish out of order;
    /// records are still applied in order, and never more than `MAX_IN_FLIGHT` are held.
    #[test]
    fn applies_in_order_with_bounded_records_in_flight() {
        let count = 5 * MAX_IN_FLIGHT + 3;
        let read = AtomicUsize::new(0);
        let most_in_flight = AtomicUsize::new(0);
        let mut applied = Vec::new();
        let records = (0..count).map(|i| {
            read.fetch_add(1, Ordering::SeqCst);
            Ok::<usize, String>(i)
        });
        let result = decode_in_order(
            records,
            3,
            |&i| {
                if i % 7 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
                i * 10
            },
            |i, decoded| {
                let in_flight = read.load(Ordering::SeqCst) - applied.len();
                most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
                assert_eq!(decoded, i * 10, "each record comes with its own decoding");
                applied.push(i);
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(applied, (0..count).collect::<Vec<_>>());
        let most = most_in_flight.load(Ordering::SeqCst);
        assert!(most <= MAX_IN_FLIGHT, "{most} records held at once");
    }

    /// A read error stops the replay: the records before it are applied, none after it is
    /// read, and the error is returned.
    #[test]
    fn stops_at_the_first_read_error() {
        let read_after_error = AtomicUsize::new(0);
        let records = (0..1000).map(|i| match i {
            0..100 => Ok(i),
            100 => Err(format!("record {i} is torn")),
            _ => {
                read_after_error.fetch_add(1, Ordering::SeqCst);
                Ok(i)
            }
        });
        let mut applied = Vec::new();
        let result = decode_in_order(records, 2, |&i| i, |i, _| applied.push(i));
        assert_eq!(result, Err("record 100 is torn".to_string()));
        assert_eq!(applied, (0..100).collect::<Vec<_>>());
        assert_eq!(read_after_error.load(Ordering::SeqCst), 0);
    }

    /// A decoder that panics does not leave the replay waiting for its record: the panic
    /// reaches the caller.
    #[test]
    #[should_panic(expected = "record 70 is malformed")]
    fn a_decoder_panic_reaches_the_caller() {
        let records = (0..5 * MAX_IN_FLIGHT).map(Ok::<usize, ()>);
        let _ = decode_in_order(
            records,
            2,
            |&i| {
                assert_ne!(i, 70, "record {i} is malformed");
                i
            },
            |_, _| {},
        );
    }

    /// With no records, nothing is applied and the threads stop.
    #[test]
    fn empty_log() {
        let mut applied = 0;
        let result = decode_in_order(std::iter::empty::<Result<u8, ()>>(), 2, |_| (), |_, ()| applied += 1);
        assert_eq!((result, applied), (Ok(()), 0));
    }
}
