//! Behaviour of the log through its public API, with damage done to the files in between.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::record::{FORMAT_VERSION, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::segment::{parse_segment_file_name, segment_path};
use super::{Replay, Wal, WalError, WalMetrics, WalOptions};

/// Options for tests that do not need durability, so that they run fast.
pub(super) fn unsynced() -> WalOptions {
    WalOptions { fsync: false, ..WalOptions::default() }
}

pub(super) fn collect(replay: Replay) -> Vec<(u64, Bytes)> {
    replay.collect::<Result<_, _>>().expect("replay reads every segment")
}

/// Opens the log with fresh metrics and collects its replay.
pub(super) fn reopen(dir: &Path, options: WalOptions) -> (Wal, Vec<(u64, Bytes)>, WalMetrics) {
    let metrics = WalMetrics::default();
    let (wal, replay) = Wal::open(dir, options, metrics.clone()).expect("open");
    (wal, collect(replay), metrics)
}

/// A payload that differs for every `i`, of varying length.
fn payload(i: u64) -> Bytes {
    Bytes::from(format!("record {i} {}", "x".repeat((i % 37) as usize)))
}

/// Segment files in `dir`, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).and_then(parse_segment_file_name).is_some())
        .collect();
    files.sort();
    files
}

fn seqs(records: &[(u64, Bytes)]) -> Vec<u64> {
    records.iter().map(|(seq, _)| *seq).collect()
}

#[test]
fn wal_and_its_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path(), unsynced());
    send_sync(&wal);
    send(&wal.append(Bytes::new()));
    send(&wal.rotate());
}

#[tokio::test]
async fn reopen_replays_every_record_and_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replayed, _) = reopen(dir.path(), WalOptions::default());
    assert!(replayed.is_empty());
    assert_eq!(wal.last_seq(), None);
    for i in 0..100 {
        assert_eq!(wal.append(payload(i)).await.unwrap(), i);
    }
    assert_eq!(wal.last_seq(), Some(99));
    wal.close().await.unwrap();

    let (wal, replayed, metrics) = reopen(dir.path(), WalOptions::default());
    assert_eq!(seqs(&replayed), (0..100).collect::<Vec<_>>());
    for (seq, bytes) in &replayed {
        assert_eq!(bytes, &payload(*seq));
    }
    assert_eq!(wal.last_seq(), Some(99));
    assert_eq!(wal.append(payload(100)).await.unwrap(), 100);
    assert_eq!(metrics.corrupt_tails_truncated.get(), 0);
    wal.close().await.unwrap();

    let (_wal, replayed, _) = reopen(dir.path(), WalOptions::default());
    assert_eq!(seqs(&replayed), (0..=100).collect::<Vec<_>>());
}

#[tokio::test]
async fn drop_without_close_keeps_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path(), unsynced());
    wal.append(payload(0)).await.unwrap();
    wal.append(payload(1)).await.unwrap();
    drop(wal);
    let (_wal, replayed, _) = reopen(dir.path(), unsynced());
    assert_eq!(replayed, [(0, payload(0)), (1, payload(1))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_fsyncs() {
    const TASKS: u64 = 8;
    const PER_TASK: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, metrics) = reopen(dir.path(), WalOptions::default());
    let wal = Arc::new(wal);

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let wal = Arc::clone(&wal);
            tokio::spawn(async move {
                let appends = (0..PER_TASK).map(|i| {
                    let wal = &wal;
                    async move { (wal.append(payload(task * PER_TASK + i)).await.unwrap(), task * PER_TASK + i) }
                });
                futures::future::join_all(appends).await
            })
        })
        .collect();
    let mut by_seq = Vec::new();
    for task in tasks {
        by_seq.extend(task.await.unwrap());
    }
    by_seq.sort();

    let records = TASKS * PER_TASK;
    assert_eq!(by_seq.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (0..records).collect::<Vec<_>>());
    assert_eq!(metrics.records_appended.get(), records);
    let fsyncs = metrics.fsyncs.get();
    assert!(fsyncs > 0 && fsyncs < records, "{fsyncs} fsyncs for {records} records: appends were not grouped");

    Arc::into_inner(wal).unwrap().close().await.unwrap();
    let (_wal, replayed, _) = reopen(dir.path(), WalOptions::default());
    assert_eq!(replayed.len() as u64, records);
    for ((seq, bytes), (expected_seq, id)) in replayed.iter().zip(&by_seq) {
        assert_eq!(seq, expected_seq);
        assert_eq!(bytes, &payload(*id), "record {seq} holds the payload its append sent");
    }
}

#[tokio::test]
async fn rotate_and_remove_segments_before_drop_only_covered_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, metrics) = reopen(dir.path(), WalOptions::default());
    for i in 0..3 {
        wal.append(payload(i)).await.unwrap();
    }
    assert_eq!(wal.rotate().await.unwrap(), 3);
    for i in 3..6 {
        wal.append(payload(i)).await.unwrap();
    }
    assert_eq!(wal.rotate().await.unwrap(), 6);
    for i in 6..8 {
        wal.append(payload(i)).await.unwrap();
    }
    assert_eq!(segment_files(dir.path()).len(), 3);
    let size_before = wal.size_bytes();

    // Segment 3 holds 3, 4 and 5: not all below 4.
    assert_eq!(wal.remove_segments_before(4).unwrap(), 1);
    assert!(!segment_path(dir.path(), 0).exists());
    assert!(segment_path(dir.path(), 3).exists());
    assert!(wal.size_bytes() < size_before);
    assert_eq!(wal.remove_segments_before(5).unwrap(), 0);
    assert_eq!(wal.remove_segments_before(6).unwrap(), 1);
    // The active segment stays, whatever the checkpoint.
    assert_eq!(wal.remove_segments_before(u64::MAX).unwrap(), 0);
    assert_eq!(segment_files(dir.path()), [segment_path(dir.path(), 6)]);
    assert_eq!(metrics.segments_removed.get(), 2);
    wal.close().await.unwrap();

    let (wal, replayed, _) = reopen(dir.path(), WalOptions::default());
    assert_eq!(replayed, [(6, payload(6)), (7, payload(7))]);
    assert_eq!(wal.append(payload(8)).await.unwrap(), 8);
}

#[tokio::test]
async fn rotate_of_an_empty_segment_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path(), unsynced());
    assert_eq!(wal.rotate().await.unwrap(), 0);
    wal.append(payload(0)).await.unwrap();
    assert_eq!(wal.rotate().await.unwrap(), 1);
    assert_eq!(wal.rotate().await.unwrap(), 1);
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(wal.append(payload(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn segments_roll_over_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let record_len = (RECORD_HEADER_LEN + 100) as u64;
    let options = WalOptions { segment_size_bytes: SEGMENT_HEADER_LEN as u64 + 3 * record_len, ..unsynced() };
    let (wal, _, _) = reopen(dir.path(), options.clone());
    for i in 0..10 {
        wal.append(Bytes::from(vec![i as u8; 100])).await.unwrap();
    }
    let files = segment_files(dir.path());
    assert_eq!(files, [0, 3, 6, 9].map(|seq| segment_path(dir.path(), seq)));
    for file in &files {
        assert!(fs::metadata(file).unwrap().len() <= options.segment_size_bytes);
    }
    assert_eq!(wal.size_bytes(), 4 * SEGMENT_HEADER_LEN as u64 + 10 * record_len);
}

#[tokio::test]
async fn too_large_record_is_refused_and_log_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions { max_record_bytes: 100, ..WalOptions::default() };
    let (wal, _, metrics) = reopen(dir.path(), options.clone());
    let size = wal.size_bytes();
    match wal.append(Bytes::from(vec![0; 101])).await {
        Err(WalError::RecordTooLarge { size: 101, max: 100 }) => {}
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(wal.size_bytes(), size);
    assert_eq!(metrics.append_errors.get(), 1);
    assert_eq!(wal.append(Bytes::from(vec![7; 100])).await.unwrap(), 0);
    wal.close().await.unwrap();
    let (_wal, replayed, _) = reopen(dir.path(), options);
    assert_eq!(replayed, [(0, Bytes::from(vec![7; 100]))]);
}

/// Writes records 0..4 and returns the single segment's bytes and where its last record starts.
async fn four_records(dir: &Path) -> (Vec<u8>, usize) {
    let (wal, _, _) = reopen(dir, unsynced());
    for i in 0..4 {
        wal.append(payload(i)).await.unwrap();
    }
    wal.close().await.unwrap();
    let bytes = fs::read(segment_path(dir, 0)).unwrap();
    let last_start = bytes.len() - RECORD_HEADER_LEN - payload(3).len();
    (bytes, last_start)
}

/// Opens a log whose only segment holds `bytes`; expects records 0..3 and one truncated tail,
/// then appends and reopens.
async fn expect_last_record_dropped(bytes: &[u8], last_start: usize, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(segment_path(dir.path(), 0), bytes).unwrap();
    let (wal, replayed, metrics) = reopen(dir.path(), unsynced());
    assert_eq!(replayed, (0..3).map(|i| (i, payload(i))).collect::<Vec<_>>(), "{what}");
    assert_eq!(metrics.corrupt_tails_truncated.get(), 1, "{what}");
    assert_eq!(fs::metadata(segment_path(dir.path(), 0)).unwrap().len(), last_start as u64, "{what}");
    assert_eq!(wal.last_seq(), Some(2), "{what}");
    assert_eq!(wal.append(payload(3)).await.unwrap(), 3, "{what}");
    wal.close().await.unwrap();

    let (_wal, replayed, metrics) = reopen(dir.path(), unsynced());
    assert_eq!(replayed, (0..4).map(|i| (i, payload(i))).collect::<Vec<_>>(), "{what}");
    assert_eq!(metrics.corrupt_tails_truncated.get(), 0, "{what}");
}

#[tokio::test]
async fn torn_tail_at_every_offset_of_last_record_is_truncated() {
    let template = tempfile::tempdir().unwrap();
    let (bytes, last_start) = four_records(template.path()).await;
    for cut in last_start + 1..bytes.len() {
        expect_last_record_dropped(&bytes[..cut], last_start, &format!("cut at {cut}")).await;
    }

    // A cut exactly between records leaves nothing to repair.
    let dir = tempfile::tempdir().unwrap();
    fs::write(segment_path(dir.path(), 0), &bytes[..last_start]).unwrap();
    let (_wal, replayed, metrics) = reopen(dir.path(), unsynced());
    assert_eq!(seqs(&replayed), [0, 1, 2]);
    assert_eq!(metrics.corrupt_tails_truncated.get(), 0);
}

#[tokio::test]
async fn corrupt_byte_in_last_record_is_truncated() {
    let template = tempfile::tempdir().unwrap();
    let (bytes, last_start) = four_records(template.path()).await;
    for offset in last_start..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[offset] ^= 0x5a;
        expect_last_record_dropped(&damaged, last_start, &format!("byte {offset} flipped")).await;
    }
}

/// Segments 0 (records 0..3), 3 (3..6) and 6 (record 6).
async fn three_segments(dir: &Path) {
    let (wal, _, _) = reopen(dir, unsynced());
    for i in 0..7 {
        if i == 3 || i == 6 {
            wal.rotate().await.unwrap();
        }
        wal.append(payload(i)).await.unwrap();
    }
    wal.close().await.unwrap();
}

#[tokio::test]
async fn damaged_record_in_older_segment_skips_rest_of_that_segment() {
    let dir = tempfile::tempdir().unwrap();
    three_segments(dir.path()).await;
    let path = segment_path(dir.path(), 0);
    let mut bytes = fs::read(&path).unwrap();
    let second_payload = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + payload(0).len() + RECORD_HEADER_LEN;
    bytes[second_payload] ^= 0xff;
    fs::write(&path, bytes).unwrap();

    let (wal, replayed, metrics) = reopen(dir.path(), unsynced());
    assert_eq!(seqs(&replayed), [0, 3, 4, 5, 6]);
    assert_eq!(metrics.corrupt_segments.get(), 1);
    assert_eq!(metrics.corrupt_tails_truncated.get(), 0);
    assert_eq!(wal.append(payload(7)).await.unwrap(), 7);
}

#[tokio::test]
async fn damaged_header_of_older_segment_skips_that_segment() {
    let dir = tempfile::tempdir().unwrap();
    three_segments(dir.path()).await;
    let path = segment_path(dir.path(), 3);
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&path, bytes).unwrap();

    let (wal, replayed, metrics) = reopen(dir.path(), unsynced());
    assert_eq!(seqs(&replayed), [0, 1, 2, 6]);
    assert_eq!(metrics.corrupt_segments.get(), 1);
    // The damaged segment is still removed by a checkpoint past it.
    assert_eq!(wal.remove_segments_before(6).unwrap(), 2);
}

#[tokio::test]
async fn torn_or_damaged_header_of_last_segment_is_rewritten() {
    for (damage, expect_copy) in [(0usize, false), (10, false), (SEGMENT_HEADER_LEN + 5, true)] {
        let dir = tempfile::tempdir().unwrap();
        three_segments(dir.path()).await;
        let path = segment_path(dir.path(), 6);
        let mut bytes = fs::read(&path).unwrap();
        if expect_copy {
            bytes[12] ^= 1; // first_seq, covered by the header checksum
        } else {
            bytes.truncate(damage);
        }
        fs::write(&path, bytes).unwrap();

        let (wal, replayed, metrics) = reopen(dir.path(), unsynced());
        assert_eq!(seqs(&replayed), [0, 1, 2, 3, 4, 5], "damage {damage}");
        assert_eq!(metrics.corrupt_tails_truncated.get(), 1, "damage {damage}");
        assert_eq!(fs::metadata(&path).unwrap().len(), SEGMENT_HEADER_LEN as u64);
        assert_eq!(dir.path().join("00000000000000000006.wal.corrupt").exists(), expect_copy);
        // Sequence number 6 was lost with its segment and is given again.
        assert_eq!(wal.append(payload(6)).await.unwrap(), 6);
        wal.close().await.unwrap();
        let (_wal, replayed, _) = reopen(dir.path(), unsynced());
        assert_eq!(seqs(&replayed), [0, 1, 2, 3, 4, 5, 6]);
    }
}

#[tokio::test]
async fn newer_format_version_is_refused_without_changes() {
    let dir = tempfile::tempdir().unwrap();
    three_segments(dir.path()).await;
    let path = segment_path(dir.path(), 3);
    let mut bytes = fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let listing = segment_files(dir.path());

    match Wal::open(dir.path(), unsynced(), WalMetrics::default()) {
        Err(WalError::UnsupportedVersion { found, .. }) => assert_eq!(found, FORMAT_VERSION + 1),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(segment_files(dir.path()), listing);
}

#[test]
fn second_open_of_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path(), unsynced());
    assert!(matches!(Wal::open(dir.path(), unsynced(), WalMetrics::default()), Err(WalError::Locked { .. })));
    drop(wal);
    let (_wal, _, _) = reopen(dir.path(), unsynced());
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        WalOptions { segment_size_bytes: 10, ..unsynced() },
        WalOptions { max_record_bytes: u32::MAX as usize + 1, ..unsynced() },
    ] {
        assert!(matches!(Wal::open(dir.path(), options, WalMetrics::default()), Err(WalError::InvalidOptions(_))));
    }
}

#[test]
fn wal_options_fill_missing_fields_with_defaults() {
    let options: WalOptions = serde_json::from_str(r#"{ "fsync": false }"#).unwrap();
    assert_eq!(options, WalOptions { fsync: false, ..WalOptions::default() });
    assert_eq!(WalOptions::default().segment_size_bytes, 64 << 20);
}
