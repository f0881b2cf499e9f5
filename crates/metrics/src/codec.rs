//! The persisted form of one closed interval (docs/formats/metrics.md): a small fixed header,
//! then a zlib stream (deflate with an Adler-32 checksum of the decoded bytes) of varints.
//!
//! ```text
//! header, 16 bytes, not compressed:
//!   magic            [u8; 4]  b"SXMI"
//!   version          u8       1
//!   kind             u8       1 = span metrics, 2 = service graph
//!   reserved         [u8; 2]  0
//!   start_unix_nanos u64 LE   the interval's start
//! body, zlib:
//!   interval_nanos   varint
//!   bounds           varint n, then n × f64 LE       latency bucket bounds, seconds (+Inf implied)
//!   dimensions       varint n, then n × string        span metrics only: the configured keys
//!   strings          varint n, then n × string        every label value, once
//!   entries          varint n, then n × entry, sorted by labels
//! span metrics entry:
//!   overflow u8 · service ref · span_name ref · kind u8 · status u8 · dimension refs (one per
//!   dimension) · errors varint · histogram
//! service graph entry:
//!   overflow u8 · client ref · server ref · connection_type u8 · failed varint ·
//!   client histogram · server histogram
//! histogram:
//!   sum_nanos varint (u128) · varint n, n × (bucket varint, count varint) for the non-empty
//!   buckets, increasing · varint n, n × exemplar for the buckets that have one, increasing
//! exemplar:
//!   bucket varint · trace_id [u8; 16] · span_id [u8; 8] · duration_nanos varint ·
//!   timestamp varint (its offset from start_unix_nanos, wrapping)
//! string: varint byte length, UTF-8 bytes; ref: varint index into strings
//! ```
//!
//! A decoder is given the [`Shape`] of the aggregator it feeds and refuses an interval of
//! another shape (interval length, bucket bounds, dimensions), since merging it would be
//! wrong; it refuses anything inconsistent (truncated, bad checksum, indexes out of range,
//! more errors than calls, unsorted buckets, trailing bytes), so a torn or corrupt file is
//! an error, never a panic or a wrong number.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use sextant_model::{SpanId, SpanKind, StatusCode, TraceId};

use crate::config::{ServiceGraphConfig, SpanMetricsConfig};
use crate::histogram::{Exemplar, Histogram};
use crate::history::{ClosedInterval, ServiceGraphInterval, SpanMetricsInterval};
use crate::service_graph::{ConnectionType, EdgeLabels, EdgeStats};
use crate::span_metrics::{SeriesLabels, SeriesStats};

const MAGIC: [u8; 4] = *b"SXMI";
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 16;
/// A decoded body larger than this is refused (a corrupt length must not exhaust memory);
/// 10,000 series with every bucket and exemplar set take about 8 MiB.
const MAX_BODY_BYTES: u64 = 256 << 20;

/// Which aggregator an interval belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    SpanMetrics = 1,
    ServiceGraph = 2,
}

/// What must match for a persisted interval to merge with an aggregator's.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub interval_nanos: u64,
    pub latency_bounds_seconds: Vec<f64>,
    /// The configured dimension keys (span metrics; empty for the service graph).
    pub dimensions: Vec<String>,
}

impl Shape {
    pub fn of_span_metrics(config: &SpanMetricsConfig) -> Shape {
        Shape {
            interval_nanos: config.interval_nanos(),
            latency_bounds_seconds: config.latency_buckets_seconds.clone(),
            dimensions: config.dimensions.clone(),
        }
    }

    pub fn of_service_graph(config: &ServiceGraphConfig) -> Shape {
        Shape {
            interval_nanos: config.interval_nanos(),
            latency_bounds_seconds: config.latency_buckets_seconds.clone(),
            dimensions: Vec::new(),
        }
    }
}

/// Why bytes could not be decoded as an interval.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("not an interval file (bad magic or short header)")]
    NotAnInterval,
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("holds {found:?} intervals, {expected:?} expected")]
    WrongKind { expected: Kind, found: u8 },
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("written with another configuration: {0}")]
    Incompatible(String),
}

fn corrupt(message: impl Into<String>) -> CodecError {
    CodecError::Corrupt(message.into())
}

/// Encodes a span metrics interval.
pub fn encode_span_metrics(interval: &SpanMetricsInterval, shape: &Shape) -> Vec<u8> {
    let mut strings = Strings::default();
    let mut entries = Vec::new();
    put_varint(&mut entries, interval.entries.len() as u128);
    for (labels, stats) in &interval.entries {
        entries.push(u8::from(labels.overflow));
        strings.put(&mut entries, &labels.service);
        strings.put(&mut entries, &labels.span_name);
        entries.push(labels.span_kind as u8);
        entries.push(labels.status_code as u8);
        for value in &labels.dimensions {
            strings.put(&mut entries, value);
        }
        put_varint(&mut entries, u128::from(stats.errors()));
        put_histogram(&mut entries, stats.latency(), interval.start_unix_nanos);
    }
    finish(Kind::SpanMetrics, interval.start_unix_nanos, shape, &strings, &entries)
}

/// Encodes a service graph interval.
pub fn encode_service_graph(interval: &ServiceGraphInterval, shape: &Shape) -> Vec<u8> {
    let mut strings = Strings::default();
    let mut entries = Vec::new();
    put_varint(&mut entries, interval.entries.len() as u128);
    for (labels, stats) in &interval.entries {
        entries.push(u8::from(labels.overflow));
        strings.put(&mut entries, &labels.client);
        strings.put(&mut entries, &labels.server);
        entries.push(labels.connection_type as u8);
        put_varint(&mut entries, u128::from(stats.failed()));
        put_histogram(&mut entries, stats.client_latency(), interval.start_unix_nanos);
        put_histogram(&mut entries, stats.server_latency(), interval.start_unix_nanos);
    }
    finish(Kind::ServiceGraph, interval.start_unix_nanos, shape, &strings, &entries)
}

fn finish(kind: Kind, start_unix_nanos: u64, shape: &Shape, strings: &Strings, entries: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.len() + 256);
    put_varint(&mut body, u128::from(shape.interval_nanos));
    put_varint(&mut body, shape.latency_bounds_seconds.len() as u128);
    for bound in &shape.latency_bounds_seconds {
        body.extend_from_slice(&bound.to_le_bytes());
    }
    put_varint(&mut body, shape.dimensions.len() as u128);
    for key in &shape.dimensions {
        put_str(&mut body, key);
    }
    put_varint(&mut body, strings.list.len() as u128);
    for value in &strings.list {
        put_str(&mut body, value);
    }
    body.extend_from_slice(entries);

    let mut out = Vec::with_capacity(HEADER_BYTES + body.len() / 2);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, kind as u8, 0, 0]);
    out.extend_from_slice(&start_unix_nanos.to_le_bytes());
    let mut encoder = ZlibEncoder::new(out, Compression::default());
    encoder.write_all(&body).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Decodes a span metrics interval written for `shape`.
pub fn decode_span_metrics(bytes: &[u8], shape: &Shape) -> Result<SpanMetricsInterval, CodecError> {
    decode(bytes, Kind::SpanMetrics, shape, |r, strings, num_buckets, start_unix_nanos| {
        let overflow = r.flag()?;
        let service = r.string(strings)?;
        let span_name = r.string(strings)?;
        let span_kind = r.byte()?;
        let span_kind =
            SpanKind::ALL.into_iter().find(|k| *k as u8 == span_kind).ok_or_else(|| corrupt("span kind"))?;
        let status_code = r.byte()?;
        let status_code = [StatusCode::Unset, StatusCode::Ok, StatusCode::Error]
            .into_iter()
            .find(|s| *s as u8 == status_code)
            .ok_or_else(|| corrupt("status code"))?;
        let dimensions = (0..shape.dimensions.len()).map(|_| r.string(strings)).collect::<Result<_, _>>()?;
        let errors = r.u64()?;
        let latency = r.histogram(num_buckets, start_unix_nanos)?;
        if errors > latency.count() {
            return Err(corrupt("more errors than calls"));
        }
        let labels = SeriesLabels { service, span_name, span_kind, status_code, dimensions, overflow };
        Ok((labels, SeriesStats::from_parts(errors, latency)))
    })
}

/// Decodes a service graph interval written for `shape`.
pub fn decode_service_graph(bytes: &[u8], shape: &Shape) -> Result<ServiceGraphInterval, CodecError> {
    decode(bytes, Kind::ServiceGraph, shape, |r, strings, num_buckets, start_unix_nanos| {
        let overflow = r.flag()?;
        let client = r.string(strings)?;
        let server = r.string(strings)?;
        let connection_type = r.byte()?;
        let connection_type = [
            ConnectionType::Direct,
            ConnectionType::MessagingSystem,
            ConnectionType::Database,
            ConnectionType::VirtualNode,
        ]
        .into_iter()
        .find(|c| *c as u8 == connection_type)
        .ok_or_else(|| corrupt("connection type"))?;
        let failed = r.u64()?;
        let client_latency = r.histogram(num_buckets, start_unix_nanos)?;
        let server_latency = r.histogram(num_buckets, start_unix_nanos)?;
        if client_latency.count() != server_latency.count() || failed > client_latency.count() {
            return Err(corrupt("client and server counts or failures disagree"));
        }
        let labels = EdgeLabels { client, server, connection_type, overflow };
        Ok((labels, EdgeStats::from_parts(failed, client_latency, server_latency)))
    })
}

/// Opens an interval of `kind`, checks its preamble against `shape` and reads each entry
/// with `entry` (given the reader, the string table, the number of latency buckets and the
/// interval's start).
fn decode<L, S>(
    bytes: &[u8],
    kind: Kind,
    shape: &Shape,
    mut entry: impl FnMut(&mut Reader<'_>, &[String], usize, u64) -> Result<(L, S), CodecError>,
) -> Result<ClosedInterval<L, S>, CodecError> {
    let (start_unix_nanos, body) = open(bytes, kind)?;
    let mut r = Reader { bytes: &body, pos: 0 };
    let strings = r.preamble(shape)?;
    let num_buckets = shape.latency_bounds_seconds.len() + 1;
    let num_entries = r.len()?;
    let mut entries = Vec::with_capacity(num_entries.min(1 << 16));
    for _ in 0..num_entries {
        entries.push(entry(&mut r, &strings, num_buckets, start_unix_nanos)?);
    }
    r.end()?;
    Ok(ClosedInterval { start_unix_nanos, entries })
}

/// Checks the header and inflates the body.
fn open(bytes: &[u8], kind: Kind) -> Result<(u64, Vec<u8>), CodecError> {
    if bytes.len() < HEADER_BYTES || bytes[..4] != MAGIC {
        return Err(CodecError::NotAnInterval);
    }
    if bytes[4] != VERSION {
        return Err(CodecError::UnsupportedVersion(bytes[4]));
    }
    if bytes[5] != kind as u8 {
        return Err(CodecError::WrongKind { expected: kind, found: bytes[5] });
    }
    let start_unix_nanos = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let mut body = Vec::new();
    ZlibDecoder::new(&bytes[HEADER_BYTES..])
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| corrupt(format!("body: {e}")))?;
    if body.len() as u64 > MAX_BODY_BYTES {
        return Err(corrupt("body larger than any interval"));
    }
    Ok((start_unix_nanos, body))
}

/// Label values, each written once.
#[derive(Default)]
struct Strings {
    index: ahash::AHashMap<String, usize>,
    list: Vec<String>,
}

impl Strings {
    fn put(&mut self, out: &mut Vec<u8>, value: &str) {
        let index = match self.index.get(value) {
            Some(index) => *index,
            None => {
                self.list.push(value.to_string());
                self.index.insert(value.to_string(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        put_varint(out, index as u128);
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u128) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_varint(out, value.len() as u128);
    out.extend_from_slice(value.as_bytes());
}

fn put_histogram(out: &mut Vec<u8>, histogram: &Histogram, start_unix_nanos: u64) {
    put_varint(out, histogram.sum_nanos());
    let counts = histogram.bucket_counts();
    put_varint(out, counts.iter().filter(|c| **c > 0).count() as u128);
    for (bucket, count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        put_varint(out, bucket as u128);
        put_varint(out, u128::from(*count));
    }
    put_varint(out, histogram.exemplars().count() as u128);
    for (bucket, exemplar) in histogram.exemplars() {
        put_varint(out, bucket as u128);
        out.extend_from_slice(&exemplar.trace_id.0);
        out.extend_from_slice(&exemplar.span_id.0);
        put_varint(out, u128::from(exemplar.duration_nanos));
        put_varint(out, u128::from(exemplar.timestamp_unix_nanos.wrapping_sub(start_unix_nanos)));
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let byte = *self.bytes.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, len: usize) -> Result<&[u8], CodecError> {
        let end =
            self.pos.checked_add(len).filter(|end| *end <= self.bytes.len()).ok_or_else(|| corrupt("truncated"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u128, CodecError> {
        let mut value = 0u128;
        for shift in (0..128).step_by(7) {
            let byte = self.byte()?;
            value |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        u64::try_from(self.varint()?).map_err(|_| corrupt("value out of range"))
    }

    /// A count of items that follow, each at least one byte: never more than the bytes left.
    fn len(&mut self) -> Result<usize, CodecError> {
        let len = self.u64()?;
        usize::try_from(len).ok().filter(|len| *len <= self.bytes.len() - self.pos).ok_or_else(|| corrupt("length"))
    }

    fn flag(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("flag")),
        }
    }

    fn str(&mut self) -> Result<String, CodecError> {
        let len = self.len()?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| corrupt("string is not UTF-8"))
    }

    fn string(&mut self, strings: &[String]) -> Result<String, CodecError> {
        let index = self.u64()?;
        usize::try_from(index).ok().and_then(|i| strings.get(i)).cloned().ok_or_else(|| corrupt("string reference"))
    }

    /// Reads the configuration part and the strings; checks the shape.
    fn preamble(&mut self, shape: &Shape) -> Result<Vec<String>, CodecError> {
        let interval_nanos = self.u64()?;
        if interval_nanos != shape.interval_nanos {
            return Err(CodecError::Incompatible(format!(
                "interval of {interval_nanos} ns, {} ns configured",
                shape.interval_nanos
            )));
        }
        let num_bounds = self.len()?;
        let bounds: Vec<f64> = (0..num_bounds)
            .map(|_| self.take(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .collect::<Result<_, _>>()?;
        if bounds != shape.latency_bounds_seconds {
            return Err(CodecError::Incompatible("other latency bucket bounds".to_string()));
        }
        let num_dimensions = self.len()?;
        let dimensions: Vec<String> = (0..num_dimensions).map(|_| self.str()).collect::<Result<_, _>>()?;
        if dimensions != shape.dimensions {
            return Err(CodecError::Incompatible(format!(
                "dimensions {dimensions:?}, {:?} configured",
                shape.dimensions
            )));
        }
        let num_strings = self.len()?;
        (0..num_strings).map(|_| self.str()).collect()
    }

    fn histogram(&mut self, num_buckets: usize, start_unix_nanos: u64) -> Result<Histogram, CodecError> {
        let sum_nanos = self.varint()?;
        let mut counts = vec![0u64; num_buckets].into_boxed_slice();
        let mut previous_opt: Option<usize> = None;
        for _ in 0..self.len()? {
            let bucket = self.bucket(num_buckets, &mut previous_opt)?;
            counts[bucket] = self.u64()?;
        }
        let mut exemplars = Vec::new();
        let mut previous_opt: Option<usize> = None;
        for _ in 0..self.len()? {
            let bucket = self.bucket(num_buckets, &mut previous_opt)?;
            let trace_id = TraceId(self.take(16)?.try_into().expect("16 bytes"));
            let span_id = SpanId(self.take(8)?.try_into().expect("8 bytes"));
            let duration_nanos = self.u64()?;
            let timestamp_unix_nanos = self.u64()?.wrapping_add(start_unix_nanos);
            let bucket = u16::try_from(bucket).map_err(|_| corrupt("bucket"))?;
            exemplars.push((bucket, Exemplar { trace_id, span_id, duration_nanos, timestamp_unix_nanos }));
        }
        counts.iter().try_fold(0u64, |sum, c| sum.checked_add(*c)).ok_or_else(|| corrupt("count overflows"))?;
        Ok(Histogram::from_parts(counts, sum_nanos, exemplars))
    }

    /// A bucket index, below `num_buckets` and above the previous one.
    fn bucket(&mut self, num_buckets: usize, previous_opt: &mut Option<usize>) -> Result<usize, CodecError> {
        let bucket = usize::try_from(self.u64()?).map_err(|_| corrupt("bucket"))?;
        if bucket >= num_buckets || previous_opt.is_some_and(|previous| bucket <= previous) {
            return Err(corrupt("bucket index"));
        }
        *previous_opt = Some(bucket);
        Ok(bucket)
    }

    fn end(&self) -> Result<(), CodecError> {
        if self.pos != self.bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
