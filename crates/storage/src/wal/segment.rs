//! Segment files: naming, listing, creating, and syncing the directory that holds them.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::WalError;
use super::record::{SEGMENT_HEADER_LEN, encode_segment_header};

/// Suffix of segment file names.
const SEGMENT_SUFFIX: &str = ".wal";

/// Digits in the first-sequence-number part of a segment file name.
const SEQ_DIGITS: usize = 20;

/// File name of the segment whose first record has sequence number `first_seq`.
pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

/// Path of the segment whose first record has sequence number `first_seq`.
pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(segment_file_name(first_seq))
}

/// The first sequence number named by a segment file name, or `None` for any other file.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment file found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    pub first_seq: u64,
    pub path: PathBuf,
    pub size_bytes: u64,
}

/// The segment files of `dir`, by increasing first sequence number. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, WalError> {
    let mut segments = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list", dir, e))?;
        let Some(first_seq) = entry.file_name().to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        let path = entry.path();
        let metadata = entry.metadata().map_err(|e| WalError::io("stat", &path, e))?;
        if !metadata.is_file() {
            continue;
        }
        segments.push(SegmentFile { first_seq, path, size_bytes: metadata.len() });
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments)
}

/// Reads at most the header bytes of a segment file.
pub(crate) fn read_header_bytes(path: &Path) -> Result<Vec<u8>, WalError> {
    let file = File::open(path).map_err(|e| WalError::io("open", path, e))?;
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN);
    file.take(SEGMENT_HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(|e| WalError::io("read header of", path, e))?;
    Ok(header)
}

/// Creates the segment for `first_seq` with its header and, when `fsync` is on, makes both the
/// file and its directory entry durable. The file must not exist. On failure no file is left.
pub(crate) fn create_segment(dir: &Path, first_seq: u64, fsync: bool) -> Result<File, WalError> {
    let path = segment_path(dir, first_seq);
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| WalError::io("create segment", &path, e))?;
    let written = file
        .write_all(&encode_segment_header(first_seq))
        .and_then(|()| if fsync { file.sync_all() } else { Ok(()) })
        .map_err(|e| WalError::io("write header of", &path, e));
    if let Err(error) = written {
        drop(file);
        let _ = fs::remove_file(&path);
        return Err(error);
    }
    if fsync {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Opens an existing segment for appending after cutting it to `len_bytes`, made durable when
/// `fsync` is on.
pub(crate) fn truncate_segment(path: &Path, len_bytes: u64, fsync: bool) -> Result<File, WalError> {
    let file = OpenOptions::new().append(true).open(path).map_err(|e| WalError::io("open segment", path, e))?;
    file.set_len(len_bytes).map_err(|e| WalError::io("truncate", path, e))?;
    if fsync {
        file.sync_all().map_err(|e| WalError::io("fsync", path, e))?;
    }
    Ok(file)
}

/// Empties an existing segment file in place and writes a fresh header for `first_seq`, so that
/// the name (and with it the lowest next sequence number) survives a crash at any point.
pub(crate) fn reset_segment(path: &Path, first_seq: u64, fsync: bool) -> Result<File, WalError> {
    let mut file = truncate_segment(path, 0, false)?;
    file.write_all(&encode_segment_header(first_seq)).map_err(|e| WalError::io("write header of", path, e))?;
    if fsync {
        file.sync_all().map_err(|e| WalError::io("fsync", path, e))?;
    }
    Ok(file)
}

/// Makes creations, renames and deletions of files in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| WalError::io("fsync directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        // Directory handles cannot be synced this way elsewhere; file syncs cover metadata there.
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::record::check_segment_header;

    #[test]
    fn segment_names_round_trip_and_sort_like_numbers() {
        assert_eq!(segment_file_name(0), "00000000000000000000.wal");
        assert_eq!(segment_file_name(u64::MAX), "18446744073709551615.wal");
        for seq in [0, 1, 99, 1 << 40, u64::MAX] {
            assert_eq!(parse_segment_file_name(&segment_file_name(seq)), Some(seq));
        }
        assert!(segment_file_name(9) < segment_file_name(10));
        for other in ["LOCK", "1.wal", "0000000000000000000a.wal", "00000000000000000001.wal.corrupt"] {
            assert_eq!(parse_segment_file_name(other), None, "{other}");
        }
        // Twenty digits that overflow a u64.
        assert_eq!(parse_segment_file_name("99999999999999999999.wal"), None);
    }

    #[test]
    fn created_segments_are_listed_in_order_with_a_valid_header() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [10, 2, 300] {
            create_segment(dir.path(), seq, true).unwrap();
        }
        fs::write(dir.path().join("notes.txt"), b"not a segment").unwrap();
        assert!(create_segment(dir.path(), 2, false).is_err(), "an existing segment must not be replaced");

        let segments = list_segments(dir.path()).unwrap();
        let seqs: Vec<u64> = segments.iter().map(|s| s.first_seq).collect();
        assert_eq!(seqs, [2, 10, 300]);
        for segment in &segments {
            assert_eq!(segment.size_bytes, SEGMENT_HEADER_LEN as u64);
            let header = read_header_bytes(&segment.path).unwrap();
            assert_eq!(check_segment_header(&header, segment.first_seq), Ok(()));
        }
    }
}
