//! Property tests: whatever the payloads, segment sizes and crash point, replay returns what
//! was appended, or a prefix of it.

use std::fs::{self, OpenOptions};

use bytes::Bytes;
use futures::executor::block_on;
use proptest::collection::vec;
use proptest::prelude::*;

use super::WalOptions;
use super::record::{Decoded, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, decode_record};
use super::segment::list_segments;
use super::tests::{reopen, unsynced};

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(vec(any::<u8>(), 0..2000), 0..50)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn wal_replay_after_any_truncation_is_the_longest_whole_prefix(
        payloads in payloads(),
        cut_fraction in 0.0f64..=1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = reopen(dir.path(), unsynced());
        for (i, payload) in payloads.iter().enumerate() {
            prop_assert_eq!(block_on(wal.append(Bytes::copy_from_slice(payload))).unwrap(), i as u64);
        }
        drop(wal);

        let segments = list_segments(dir.path()).unwrap();
        prop_assert_eq!(segments.len(), 1);
        let len = segments[0].size_bytes;
        let cut = ((len as f64 * cut_fraction) as u64).min(len);
        OpenOptions::new().write(true).open(&segments[0].path).unwrap().set_len(cut).unwrap();

        // Records whose last byte is before the cut survive.
        let mut end = SEGMENT_HEADER_LEN as u64;
        let mut whole = 0;
        for payload in &payloads {
            end += (RECORD_HEADER_LEN + payload.len()) as u64;
            if end > cut {
                break;
            }
            whole += 1;
        }

        let (wal, replayed, _) = reopen(dir.path(), unsynced());
        prop_assert_eq!(replayed.len(), whole);
        for (i, (seq, bytes)) in replayed.iter().enumerate() {
            prop_assert_eq!(*seq, i as u64);
            prop_assert_eq!(&bytes[..], &payloads[i][..]);
        }
        prop_assert_eq!(block_on(wal.append(Bytes::from_static(b"after"))).unwrap(), whole as u64);
        drop(wal);

        // The repair left clean files: a second open finds nothing to repair or skip.
        let (_wal, replayed, metrics) = reopen(dir.path(), unsynced());
        prop_assert_eq!(replayed.len(), whole + 1);
        prop_assert_eq!(&replayed[whole].1[..], b"after");
        prop_assert_eq!(metrics.corrupt_tails_truncated.get() + metrics.corrupt_segments.get(), 0);
    }

    #[test]
    fn wal_replay_across_many_segments_and_reopens_returns_every_record(
        payloads in payloads(),
        segment_size_bytes in 64u64..4096,
        reopen_at in any::<prop::sample::Index>(),
    ) {
        let options = WalOptions { segment_size_bytes, ..unsynced() };
        let reopen_at = reopen_at.index(payloads.len() + 1);
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = reopen(dir.path(), options.clone());
        for (i, payload) in payloads.iter().enumerate() {
            if i == reopen_at {
                drop(wal);
                wal = reopen(dir.path(), options.clone()).0;
            }
            prop_assert_eq!(block_on(wal.append(Bytes::copy_from_slice(payload))).unwrap(), i as u64);
        }
        drop(wal);

        // Every segment respects the size limit, unless it holds a single record.
        for segment in list_segments(dir.path()).unwrap() {
            let contents = fs::read(&segment.path).unwrap();
            let mut offset = SEGMENT_HEADER_LEN;
            let mut num_records = 0u64;
            while let Decoded::Record { payload, .. } = decode_record(&contents, offset, segment.first_seq + num_records) {
                offset = payload.end;
                num_records += 1;
            }
            prop_assert_eq!(offset, contents.len());
            prop_assert!(segment.size_bytes <= segment_size_bytes || num_records == 1);
        }

        let (_wal, replayed, metrics) = reopen(dir.path(), options);
        prop_assert_eq!(replayed.len(), payloads.len());
        for (i, (seq, bytes)) in replayed.iter().enumerate() {
            prop_assert_eq!(*seq, i as u64);
            prop_assert_eq!(&bytes[..], &payloads[i][..]);
        }
        prop_assert_eq!(metrics.corrupt_tails_truncated.get() + metrics.corrupt_segments.get(), 0);
    }
}
