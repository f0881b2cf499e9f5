//! Byte layout of segment headers and records: encoding and checked decoding.
//!
//! Everything here is pure: no I/O, no allocation beyond the caller's buffer. The layout is
//! described in the [module documentation](super) and in `docs/formats/wal.md`.

use std::fmt;
use std::ops::Range;

/// First bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"SXWALSEG";

/// Format version written in every segment header. Bump it when the layout changes.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Size of the segment header: magic, version, first sequence number, checksum.
pub(crate) const SEGMENT_HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Size of the fixed part of a record: length, checksum, sequence number.
pub(crate) const RECORD_HEADER_LEN: usize = 4 + 4 + 8;

/// Encodes the header of a segment whose first record has sequence number `first_seq`.
pub(crate) fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Why a segment header could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// The file is shorter than a header: it was torn while being created.
    Truncated { len: usize },
    /// The first bytes are not [`SEGMENT_MAGIC`].
    BadMagic,
    /// A well-formed header of a format version this build cannot read.
    UnsupportedVersion { found: u32 },
    /// The header checksum does not match.
    Checksum,
    /// The header names another first sequence number than the file name.
    FirstSeqMismatch { found: u64 },
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { len } => write!(f, "segment header torn ({len} of {SEGMENT_HEADER_LEN} bytes)"),
            Self::BadMagic => write!(f, "bad magic bytes"),
            Self::UnsupportedVersion { found } => {
                write!(f, "unsupported format version {found} (this build reads {FORMAT_VERSION})")
            }
            Self::Checksum => write!(f, "segment header checksum mismatch"),
            Self::FirstSeqMismatch { found } => write!(f, "header names first sequence number {found}"),
        }
    }
}

/// Checks the header at the start of `buf` for a segment named after `first_seq`.
pub(crate) fn check_segment_header(buf: &[u8], first_seq: u64) -> Result<(), HeaderProblem> {
    let Some(header) = buf.get(..SEGMENT_HEADER_LEN) else {
        return Err(HeaderProblem::Truncated { len: buf.len() });
    };
    if header[0..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let stored_crc = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[0..20]) != stored_crc {
        return Err(HeaderProblem::Checksum);
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::UnsupportedVersion { found: version });
    }
    let found = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    if found != first_seq {
        return Err(HeaderProblem::FirstSeqMismatch { found });
    }
    Ok(())
}

/// Checksum of a record: CRC-32C over the sequence number (little endian) then the payload.
pub(crate) fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&seq.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// The header of the record of `payload` with sequence number `seq`; the payload follows it.
/// The caller has checked that `payload` fits in a `u32`.
pub(crate) fn record_header(seq: u64, payload: &[u8]) -> [u8; RECORD_HEADER_LEN] {
    let len = u32::try_from(payload.len()).expect("payload length checked against max_record_bytes");
    let mut header = [0; RECORD_HEADER_LEN];
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&record_crc(seq, payload).to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header
}

/// Appends one encoded record to `buf`. The caller has checked that `payload` fits in a `u32`.
#[cfg(test)]
pub(crate) fn encode_record(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    buf.extend_from_slice(&record_header(seq, payload));
    buf.extend_from_slice(payload);
}

/// Result of decoding the record that starts at a given offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A valid record; `payload` is its byte range in the buffer, and its end is where the next
    /// record starts.
    Record { seq: u64, payload: Range<usize> },
    /// The buffer ends exactly at this offset: no more records.
    End,
    /// The bytes at this offset are not a valid record.
    Invalid(InvalidRecord),
}

/// Why the bytes at an offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidRecord {
    /// Fewer bytes remain than a record header.
    TornHeader { available: usize },
    /// The header announces more payload bytes than remain.
    TornPayload { len: u32, available: usize },
    /// The checksum does not match the sequence number and payload.
    Checksum,
    /// The record is intact but does not carry the next sequence number.
    UnexpectedSeq { expected: u64, found: u64 },
}

impl fmt::Display for InvalidRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TornHeader { available } => {
                write!(f, "torn record header ({available} of {RECORD_HEADER_LEN} bytes)")
            }
            Self::TornPayload { len, available } => {
                write!(f, "torn record payload ({available} of {len} bytes)")
            }
            Self::Checksum => write!(f, "record checksum mismatch"),
            Self::UnexpectedSeq { expected, found } => {
                write!(f, "record has sequence number {found}, expected {expected}")
            }
        }
    }
}

/// Decodes the record starting at `offset` in `buf`, which must carry sequence number
/// `expected_seq`. Never panics, whatever the bytes.
pub(crate) fn decode_record(buf: &[u8], offset: usize, expected_seq: u64) -> Decoded {
    let rest = buf.get(offset..).unwrap_or_default();
    if rest.is_empty() {
        return Decoded::End;
    }
    let Some(header) = rest.get(..RECORD_HEADER_LEN) else {
        return Decoded::Invalid(InvalidRecord::TornHeader { available: rest.len() });
    };
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let stored_crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let available = rest.len() - RECORD_HEADER_LEN;
    if len as usize > available {
        return Decoded::Invalid(InvalidRecord::TornPayload { len, available });
    }
    let start = offset + RECORD_HEADER_LEN;
    let payload = start..start + len as usize;
    if record_crc(seq, &buf[payload.clone()]) != stored_crc {
        return Decoded::Invalid(InvalidRecord::Checksum);
    }
    if seq != expected_seq {
        return Decoded::Invalid(InvalidRecord::UnexpectedSeq { expected: expected_seq, found: seq });
    }
    Decoded::Record { seq, payload }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = encode_segment_header(42);
        assert_eq!(check_segment_header(&header, 42), Ok(()));
        assert_eq!(check_segment_header(&header, 43), Err(HeaderProblem::FirstSeqMismatch { found: 42 }));
        assert_eq!(check_segment_header(&header[..10], 42), Err(HeaderProblem::Truncated { len: 10 }));

        let mut bad_magic = header;
        bad_magic[0] ^= 1;
        assert_eq!(check_segment_header(&bad_magic, 42), Err(HeaderProblem::BadMagic));

        let mut flipped = header;
        flipped[13] ^= 0x10;
        assert_eq!(check_segment_header(&flipped, 42), Err(HeaderProblem::Checksum));
    }

    #[test]
    fn segment_header_with_newer_version_is_reported_as_such() {
        let mut header = encode_segment_header(7);
        header[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32c::crc32c(&header[0..20]);
        header[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_segment_header(&header, 7), Err(HeaderProblem::UnsupportedVersion { found: 2 }));
    }

    #[test]
    fn records_decode_in_sequence() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 5, b"hello");
        encode_record(&mut buf, 6, b"");
        encode_record(&mut buf, 7, b"world!");

        let Decoded::Record { seq, payload } = decode_record(&buf, 0, 5) else { panic!("first record") };
        assert_eq!((seq, &buf[payload.clone()]), (5, &b"hello"[..]));
        let Decoded::Record { seq, payload: empty } = decode_record(&buf, payload.end, 6) else { panic!("second") };
        assert_eq!((seq, empty.len()), (6, 0));
        let Decoded::Record { seq, payload } = decode_record(&buf, empty.end, 7) else { panic!("third") };
        assert_eq!((seq, &buf[payload.clone()]), (7, &b"world!"[..]));
        assert_eq!(decode_record(&buf, payload.end, 8), Decoded::End);
    }

    #[test]
    fn record_damage_is_classified() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 9, b"payload");

        assert_eq!(decode_record(&buf[..10], 0, 9), Decoded::Invalid(InvalidRecord::TornHeader { available: 10 }));
        assert_eq!(
            decode_record(&buf[..buf.len() - 1], 0, 9),
            Decoded::Invalid(InvalidRecord::TornPayload { len: 7, available: 6 })
        );
        assert_eq!(
            decode_record(&buf, 0, 10),
            Decoded::Invalid(InvalidRecord::UnexpectedSeq { expected: 10, found: 9 })
        );
        for i in 4..buf.len() {
            let mut damaged = buf.clone();
            damaged[i] ^= 0x01;
            assert_eq!(decode_record(&damaged, 0, 9), Decoded::Invalid(InvalidRecord::Checksum), "byte {i}");
        }
    }

    #[test]
    fn offset_past_the_end_is_the_end() {
        assert_eq!(decode_record(b"abc", 10, 0), Decoded::End);
    }
}
