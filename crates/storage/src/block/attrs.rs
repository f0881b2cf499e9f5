//! The per-block attribute index, `blocks/{id}/attrs.bin`: for each indexed attribute key,
//! the distinct values the block's spans hold under it → the traces holding them.
//!
//! It answers "which traces of this block have a span with `key = value` starting in a
//! time range" without reading `data.parquet`, for the few keys configured as indexed
//! (business-process IDs and `messaging.message.id` in the server). A span's value under a
//! key is decided exactly as [`crate::search::AttributeFilter::matches_span`] decides it: the
//! span's last attribute with the key, or without one the resource's, so a lookup here finds
//! the same traces as a search with one attribute filter.
//!
//! Values are kept with their type, as (kind, text), because a filter value matches by the
//! attribute's own type: `"05"` matches the integer 5 but not the string "5". A lookup turns
//! the filter value into the (kind, text) entries it can match (see [`query_entries`]):
//! the string itself; as an integer, its decimal text; as a double, its shortest
//! round-trip text (`-0` as `0`; NaN matches nothing); as a boolean, `true`/`false`; other
//! values (bytes, arrays, maps) by their display text, as the search compares them.
//!
//! Each (value, trace) posting keeps the earliest and latest start of the spans carrying the
//! value, so a time range is decided exactly when the carrying spans are all inside it or
//! all outside; when they straddle an edge the lookup answers `None` and the caller scans
//! the block (it happens only for blocks at the edges of a range). Each trace also keeps its
//! earliest start among all its spans in the block, which orders results newest first
//! without reading the block. All integers are little endian:
//!
//! ```text
//! struct AttrsFile {
//!     magic:       [u8; 4],               // b"SXTA"
//!     version:     u32,                   // 1
//!     num_keys:    u32,
//!     keys:        [Text16; num_keys],    // the keys indexed when the block was written,
//!                                         // strictly increasing
//!     base_start:  u64,                   // the smallest trace start below (0 without traces)
//!     num_traces:  u32,
//!     traces:      [Trace; num_traces],   // strictly increasing trace IDs
//!     num_values:  u32,
//!     values:      [Value; num_values],   // strictly increasing (key, kind, text bytes)
//!     crc32c:      u32,                   // CRC-32C (Castagnoli) of every byte before it
//! }
//! struct Text16 { len: u16, utf8: [u8; len] }
//! struct Trace {
//!     run_delta:   varint,  // the trace's first run in index.bin's entries, minus the
//!                           // previous trace's (from 0 for the first; so at least 1 after it)
//!     start_delta: varint,  // the trace's earliest start in the block minus base_start
//! }
//! struct Value {
//!     key:          varint,               // index into keys
//!     kind:         u8,                   // 0 string, 1 int, 2 double, 3 bool, 4 other
//!     len:          varint,
//!     text:         [u8; len],            // UTF-8
//!     num_postings: varint,               // at least 1
//!     postings:     [Posting; num_postings],
//! }
//! struct Posting {
//!     trace_delta:  varint,   // position in traces minus the previous posting's (from 0 for
//!                             // the first; so strictly increasing)
//!     min_delta:    varint,   // earliest start of the trace's spans carrying the value,
//!                             // minus the trace's start
//!     span:         varint,   // their latest start minus their earliest
//! }
//! ```
//!
//! Varints are unsigned LEB128 (7 bits a byte, least significant first). Traces are named by
//! their place in the block's `index.bin` rather than by their 16-byte ID, and times by
//! small deltas, so a file takes a few bytes per trace and per posting: decoding needs the
//! block's trace-ID index, which every block has.
//!
//! A key absent from `keys` is not covered (the block was written with other keys): the
//! caller scans the block. A block without `attrs.bin` (written before it existed, or with
//! no indexed key) is not covered for any key.

use std::collections::{BTreeMap, HashMap};

use sextant_model::{AnyValue, KeyValue, Span, TraceId, find_attribute};

use super::index::BlockIndex;

const MAGIC: &[u8; 4] = b"SXTA";
const VERSION: u32 = 1;
/// Bytes a trace and a posting take in memory, for cache accounting.
const TRACE_LEN: usize = 24;
const POSTING_LEN: usize = 24;

/// The type of an indexed value, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    String = 0,
    Int = 1,
    Double = 2,
    Bool = 3,
    Other = 4,
}

impl ValueKind {
    fn from_u8(byte: u8) -> Option<ValueKind> {
        [ValueKind::String, ValueKind::Int, ValueKind::Double, ValueKind::Bool, ValueKind::Other]
            .into_iter()
            .find(|kind| *kind as u8 == byte)
    }
}

/// Why an attribute index file could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrsError {
    #[error("attribute index is {0} bytes, too short")]
    Truncated(usize),
    #[error("attribute index has a bad magic number")]
    BadMagic,
    #[error("attribute index version {0} is not supported")]
    UnsupportedVersion(u32),
    #[error("attribute index checksum mismatch")]
    Checksum,
    #[error("attribute index is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The text of a double as indexed and looked up: shortest round-trip text, `-0` as `0`;
/// `None` for NaN, which equals nothing.
fn double_text(value: f64) -> Option<String> {
    if value.is_nan() {
        None
    } else if value == 0.0 {
        Some("0".to_owned())
    } else {
        Some(value.to_string())
    }
}

/// The (kind, text) under which a value is indexed; `None` for a value no filter matches.
pub fn value_entry(value: &AnyValue) -> Option<(ValueKind, String)> {
    match value {
        AnyValue::String(s) => Some((ValueKind::String, s.to_string())),
        AnyValue::Int(i) => Some((ValueKind::Int, i.to_string())),
        AnyValue::Double(d) => double_text(*d).map(|text| (ValueKind::Double, text)),
        AnyValue::Bool(b) => Some((ValueKind::Bool, b.to_string())),
        other => Some((ValueKind::Other, other.to_string())),
    }
}

/// The (kind, text) entries a filter value matches, with the semantics of
/// [`AttributeFilter::matches_value`](crate::search::AttributeFilter::matches_value).
pub fn query_entries(value: &str) -> Vec<(ValueKind, String)> {
    let mut entries = vec![(ValueKind::String, value.to_owned()), (ValueKind::Other, value.to_owned())];
    if let Ok(i) = value.parse::<i64>() {
        entries.push((ValueKind::Int, i.to_string()));
    }
    if let Some(text) = value.parse::<f64>().ok().and_then(double_text) {
        entries.push((ValueKind::Double, text));
    }
    if let Ok(b) = value.parse::<bool>() {
        entries.push((ValueKind::Bool, b.to_string()));
    }
    entries
}

/// One trace listed under a value: where it is in the trace table, and the earliest and
/// latest start of its spans carrying the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Posting {
    trace: u32,
    min_start_unix_nanos: u64,
    max_start_unix_nanos: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ValueEntry {
    key: u32,
    kind: ValueKind,
    text: String,
    postings: Vec<Posting>,
}

/// A trace found by [`AttrIndex::lookup`]: its ID and earliest start in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrHit {
    pub trace_id: TraceId,
    pub start_unix_nanos: u64,
}

/// The decoded attribute index of one block.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AttrIndex {
    keys: Vec<String>,
    /// Sorted by trace ID, with each trace's earliest start in the block.
    traces: Vec<(TraceId, u64)>,
    /// Sorted by (key, kind, text).
    values: Vec<ValueEntry>,
}

impl AttrIndex {
    /// The keys indexed when the block was written.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether the block was written with `key` indexed.
    pub fn covers(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// Distinct (key, value) entries.
    pub fn num_values(&self) -> usize {
        self.values.len()
    }

    /// The traces with a span whose `key` matches `value` and that starts in
    /// `[from, to]`, by trace ID, each once. `None` when this index cannot say: the key is
    /// not covered, or some trace's carrying spans straddle an edge of the range.
    pub fn lookup(&self, key: &str, value: &str, from: u64, to: u64) -> Option<Vec<AttrHit>> {
        let key = self.keys.iter().position(|k| k == key)? as u32;
        let mut found: Vec<u32> = Vec::new();
        for (kind, text) in query_entries(value) {
            let at =
                self.values.binary_search_by(|v| (v.key, v.kind, v.text.as_str()).cmp(&(key, kind, text.as_str())));
            let Ok(at) = at else { continue };
            for posting in &self.values[at].postings {
                let (min, max) = (posting.min_start_unix_nanos, posting.max_start_unix_nanos);
                if from <= min && max <= to {
                    found.push(posting.trace);
                } else if !(max < from || min > to) {
                    return None;
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        let hits = found.into_iter().map(|i| {
            let (trace_id, start_unix_nanos) = self.traces[i as usize];
            AttrHit { trace_id, start_unix_nanos }
        });
        Some(hits.collect())
    }

    /// Every (key, kind, text) entry with its trace IDs, in stored order (for tests and
    /// tools).
    pub fn entries(&self) -> impl Iterator<Item = (&str, ValueKind, &str, Vec<TraceId>)> {
        self.values.iter().map(|v| {
            let traces = v.postings.iter().map(|p| self.traces[p.trace as usize].0).collect();
            (self.keys[v.key as usize].as_str(), v.kind, v.text.as_str(), traces)
        })
    }

    /// Heap bytes held, for cache accounting.
    pub fn memory_size(&self) -> usize {
        let keys: usize = self.keys.iter().map(|k| k.len() + std::mem::size_of::<String>()).sum();
        let values: usize = self
            .values
            .iter()
            .map(|v| std::mem::size_of::<ValueEntry>() + v.text.len() + v.postings.len() * POSTING_LEN)
            .sum();
        std::mem::size_of::<Self>() + keys + self.traces.len() * TRACE_LEN + values
    }

    /// The file's bytes; `index` is the block's trace-ID index, which must hold every trace.
    pub fn encode(&self, index: &BlockIndex) -> Result<Vec<u8>, AttrsError> {
        let mut out = Vec::with_capacity(64 + self.traces.len() * 8 + self.values.len() * 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        for key in &self.keys {
            out.extend_from_slice(&(key.len() as u16).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
        }
        let base = self.traces.iter().map(|(_, start)| *start).min().unwrap_or(0);
        out.extend_from_slice(&base.to_le_bytes());
        out.extend_from_slice(&(self.traces.len() as u32).to_le_bytes());
        let mut previous_run = 0;
        for (trace_id, start) in &self.traces {
            let run =
                index.first_run_of(trace_id).ok_or(AttrsError::Inconsistent("a trace is not in the block's index"))?;
            put_varint(&mut out, (run - previous_run) as u64);
            put_varint(&mut out, start - base);
            previous_run = run;
        }
        out.extend_from_slice(&(self.values.len() as u32).to_le_bytes());
        for value in &self.values {
            put_varint(&mut out, u64::from(value.key));
            out.push(value.kind as u8);
            put_varint(&mut out, value.text.len() as u64);
            out.extend_from_slice(value.text.as_bytes());
            put_varint(&mut out, value.postings.len() as u64);
            let mut previous_trace = 0;
            for posting in &value.postings {
                let trace_start = self.traces[posting.trace as usize].1;
                put_varint(&mut out, u64::from(posting.trace - previous_trace));
                put_varint(&mut out, posting.min_start_unix_nanos - trace_start);
                put_varint(&mut out, posting.max_start_unix_nanos - posting.min_start_unix_nanos);
                previous_trace = posting.trace;
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Decodes a file written with `index`, the block's trace-ID index, which names its
    /// traces.
    pub fn decode(bytes: &[u8], index: &BlockIndex) -> Result<AttrIndex, AttrsError> {
        if bytes.len() < 12 + 4 {
            return Err(AttrsError::Truncated(bytes.len()));
        }
        if &bytes[..4] != MAGIC {
            return Err(AttrsError::BadMagic);
        }
        let body_end = bytes.len() - 4;
        let crc = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
        let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(AttrsError::UnsupportedVersion(version));
        }
        if crc32c::crc32c(&bytes[..body_end]) != crc {
            return Err(AttrsError::Checksum);
        }
        let mut reader = Reader { bytes: &bytes[..body_end], at: 8 };
        let num_keys = reader.u32()? as usize;
        let mut keys: Vec<String> = Vec::with_capacity(num_keys.min(1_024));
        for _ in 0..num_keys {
            let len = reader.u16()? as usize;
            let key = reader.text(len)?;
            if keys.last().is_some_and(|last| *last >= key) {
                return Err(AttrsError::Inconsistent("keys are not in increasing order"));
            }
            keys.push(key);
        }
        let base = reader.u64()?;
        let num_traces = reader.u32()? as usize;
        // Every entry takes at least one byte per varint: counts beyond the bytes are lies.
        let mut traces: Vec<(TraceId, u64)> = Vec::with_capacity(num_traces.min(reader.remaining() / 2));
        let runs = index.trace_ids();
        let mut run = 0usize;
        for i in 0..num_traces {
            let delta = reader.varint()?;
            if i > 0 && delta == 0 {
                return Err(AttrsError::Inconsistent("traces are not in increasing order"));
            }
            run = usize::try_from(delta).ok().and_then(|d| run.checked_add(d)).ok_or(OUT_OF_RANGE)?;
            let trace_id = *runs.get(run).ok_or(AttrsError::Inconsistent("a trace is beyond the block's index"))?;
            if traces.last().is_some_and(|(last, _)| *last >= trace_id) {
                return Err(AttrsError::Inconsistent("traces are not in increasing order"));
            }
            let start = base.checked_add(reader.varint()?).ok_or(OUT_OF_RANGE)?;
            traces.push((trace_id, start));
        }
        let num_values = reader.u32()? as usize;
        let mut values: Vec<ValueEntry> = Vec::with_capacity(num_values.min(reader.remaining() / 5));
        for _ in 0..num_values {
            let key = u32::try_from(reader.varint()?).map_err(|_| OUT_OF_RANGE)?;
            if key as usize >= keys.len() {
                return Err(AttrsError::Inconsistent("a value's key is out of range"));
            }
            let kind = ValueKind::from_u8(reader.take(1)?[0]).ok_or(AttrsError::Inconsistent("unknown value kind"))?;
            let len = usize::try_from(reader.varint()?).map_err(|_| OUT_OF_RANGE)?;
            let text = reader.text(len)?;
            if values.last().is_some_and(|last| (last.key, last.kind, last.text.as_str()) >= (key, kind, text.as_str()))
            {
                return Err(AttrsError::Inconsistent("values are not in increasing order"));
            }
            let num_postings = usize::try_from(reader.varint()?).map_err(|_| OUT_OF_RANGE)?;
            if num_postings == 0 {
                return Err(AttrsError::Inconsistent("a value without traces"));
            }
            let mut postings: Vec<Posting> = Vec::with_capacity(num_postings.min(reader.remaining() / 3));
            let mut trace = 0u32;
            for i in 0..num_postings {
                let delta = u32::try_from(reader.varint()?).map_err(|_| OUT_OF_RANGE)?;
                if i > 0 && delta == 0 {
                    return Err(AttrsError::Inconsistent("postings are not in increasing order"));
                }
                trace = trace.checked_add(delta).ok_or(OUT_OF_RANGE)?;
                let (_, trace_start) =
                    *traces.get(trace as usize).ok_or(AttrsError::Inconsistent("a posting's trace is out of range"))?;
                let min = trace_start.checked_add(reader.varint()?).ok_or(OUT_OF_RANGE)?;
                let max = min.checked_add(reader.varint()?).ok_or(OUT_OF_RANGE)?;
                postings.push(Posting { trace, min_start_unix_nanos: min, max_start_unix_nanos: max });
            }
            values.push(ValueEntry { key, kind, text, postings });
        }
        if reader.remaining() != 0 {
            return Err(AttrsError::Inconsistent("bytes after the values"));
        }
        Ok(AttrIndex { keys, traces, values })
    }
}

const OUT_OF_RANGE: AttrsError = AttrsError::Inconsistent("a number is out of range");

/// Appends `value` as an unsigned LEB128 varint (7 bits a byte, low first).
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads the body of an attribute index, bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], AttrsError> {
        if self.remaining() < len {
            return Err(AttrsError::Inconsistent("a field runs past the end"));
        }
        let taken = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(taken)
    }

    fn u16(&mut self) -> Result<u16, AttrsError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32, AttrsError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, AttrsError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn varint(&mut self) -> Result<u64, AttrsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(OUT_OF_RANGE);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(OUT_OF_RANGE)
    }

    fn text(&mut self, len: usize) -> Result<String, AttrsError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| AttrsError::Inconsistent("text is not UTF-8"))
    }
}

/// A bit standing for a key length: bit `len` below 63, bit 63 for every longer key.
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// Records a trace's earliest start seen in one run of its spans.
fn keep_earliest(starts: &mut HashMap<TraceId, u64, ahash::RandomState>, (trace_id, earliest): (TraceId, u64)) {
    starts.entry(trace_id).and_modify(|s| *s = (*s).min(earliest)).or_insert(earliest);
}

/// A (key position, kind, text) entry being gathered.
type EntryKey = (u32, ValueKind, String);
/// Per trace, the earliest and latest start of its spans carrying an entry.
type TraceStarts = HashMap<TraceId, (u64, u64)>;

/// Gathers a block's attribute index while its spans are written (see `writer`): any span
/// order works.
#[derive(Debug, Default)]
pub(crate) struct AttrIndexBuilder {
    /// Sorted, distinct, non-empty keys longer than `u16::MAX` bytes left out.
    keys: Vec<String>,
    /// The lengths of `keys` (see [`length_bit`]): most attributes are told apart from every
    /// indexed key by their length alone, without comparing bytes.
    key_lengths: u64,
    /// Every trace's earliest start so far (only kept when some key is indexed), but for
    /// the trace of the spans being observed, which is in `run`.
    starts: HashMap<TraceId, u64, ahash::RandomState>,
    /// The trace of the last span observed and its earliest start so far: a block's spans
    /// come trace by trace, so the map is looked up once per run instead of once per span.
    run: Option<(TraceId, u64)>,
    /// (key, kind, text) → trace → (earliest, latest) start of the spans carrying it.
    postings: HashMap<EntryKey, TraceStarts>,
}

impl AttrIndexBuilder {
    pub(crate) fn new(keys: &[String]) -> AttrIndexBuilder {
        let mut keys: Vec<String> =
            keys.iter().filter(|k| !k.is_empty() && k.len() <= u16::MAX as usize).cloned().collect();
        keys.sort_unstable();
        keys.dedup();
        let key_lengths = keys.iter().fold(0, |bits, key| bits | length_bit(key.len()));
        AttrIndexBuilder { keys, key_lengths, ..Default::default() }
    }

    /// Whether any key is indexed: without one, no `attrs.bin` is written.
    pub(crate) fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub(crate) fn observe(&mut self, span: &Span) {
        if self.keys.is_empty() {
            return;
        }
        let start = span.start_unix_nanos;
        match &mut self.run {
            Some((trace_id, earliest)) if *trace_id == span.trace_id => *earliest = (*earliest).min(start),
            run => {
                if let Some(ended) = run.replace((span.trace_id, start)) {
                    keep_earliest(&mut self.starts, ended);
                }
            }
        }
        let may_be_indexed = |kv: &KeyValue| length_bit(kv.key.len()) & self.key_lengths != 0;
        if !span.attributes.iter().any(may_be_indexed) && !span.resource.attributes.iter().any(may_be_indexed) {
            return;
        }
        for (i, key) in self.keys.iter().enumerate() {
            // As the search decides it: the span's own attribute, else the resource's.
            let value =
                find_attribute(&span.attributes, key).or_else(|| find_attribute(&span.resource.attributes, key));
            let Some((kind, text)) = value.and_then(value_entry) else { continue };
            let traces = self.postings.entry((i as u32, kind, text)).or_default();
            traces
                .entry(span.trace_id)
                .and_modify(|(min, max)| (*min, *max) = ((*min).min(start), (*max).max(start)))
                .or_insert((start, start));
        }
    }

    pub(crate) fn finish(mut self) -> AttrIndex {
        if let Some(ended) = self.run.take() {
            keep_earliest(&mut self.starts, ended);
        }
        let mut carrying: Vec<TraceId> = self.postings.values().flat_map(|traces| traces.keys().copied()).collect();
        carrying.sort_unstable();
        carrying.dedup();
        let traces: Vec<(TraceId, u64)> = carrying.iter().map(|id| (*id, self.starts[id])).collect();
        let position: HashMap<TraceId, u32> = carrying.iter().enumerate().map(|(i, id)| (*id, i as u32)).collect();
        let sorted: BTreeMap<EntryKey, TraceStarts> = self.postings.into_iter().collect();
        let values = sorted
            .into_iter()
            .map(|((key, kind, text), traces)| {
                let mut postings: Vec<Posting> = traces
                    .into_iter()
                    .map(|(id, (min, max))| Posting {
                        trace: position[&id],
                        min_start_unix_nanos: min,
                        max_start_unix_nanos: max,
                    })
                    .collect();
                postings.sort_unstable_by_key(|p| p.trace);
                ValueEntry { key, kind, text, postings }
            })
            .collect();
        AttrIndex { keys: self.keys, traces, values }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use proptest::prelude::*;
    use sextant_model::{KeyValue, Resource, SpanId};

    use super::*;
    use crate::search::AttributeFilter;

    fn tid(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    fn span(trace: u8, id: u8, start: u64, attributes: Vec<KeyValue>) -> Span {
        let mut span = Span::new(tid(trace), SpanId([id; 8]), "op", start, start + 1);
        span.attributes = attributes;
        span
    }

    /// A trace-ID index over traces 1..=9, trace 1 in two runs.
    fn block_index() -> BlockIndex {
        let mut builder = crate::block::index::IndexBuilder::default();
        for n in 1..=9 {
            builder.push_row(tid(n));
        }
        builder.break_run();
        builder.push_row(tid(1));
        builder.finish()
    }

    fn index_of(traces: &[u8]) -> BlockIndex {
        let mut builder = crate::block::index::IndexBuilder::default();
        for n in traces {
            builder.push_row(tid(*n));
        }
        builder.finish()
    }

    fn keys() -> Vec<String> {
        vec!["order.id".to_owned(), "business_process.id".to_owned()]
    }

    fn sample() -> AttrIndex {
        let mut builder = AttrIndexBuilder::new(&keys());
        builder.observe(&span(1, 1, 100, vec![KeyValue::string("business_process.id", "p-1")]));
        builder.observe(&span(1, 2, 90, vec![]));
        builder.observe(&span(2, 1, 200, vec![KeyValue::new("order.id", AnyValue::Int(5))]));
        builder.observe(&span(2, 2, 260, vec![KeyValue::new("order.id", AnyValue::Int(5))]));
        builder.observe(&span(3, 1, 300, vec![KeyValue::string("order.id", "5")]));
        builder.observe(&span(4, 1, 400, vec![KeyValue::string("other", "p-1")]));
        let mut from_resource = span(5, 1, 500, vec![]);
        from_resource.resource = Arc::new(Resource {
            attributes: vec![KeyValue::string("business_process.id", "p-1")],
            ..Default::default()
        });
        builder.observe(&from_resource);
        builder.finish()
    }

    fn ids(hits: Option<Vec<AttrHit>>) -> Vec<TraceId> {
        hits.expect("decided").into_iter().map(|h| h.trace_id).collect()
    }

    #[test]
    fn lookup_finds_the_traces_of_a_value_by_its_type_on_span_or_resource() {
        let index = sample();
        assert_eq!(index.keys(), ["business_process.id", "order.id"]);
        assert_eq!(ids(index.lookup("business_process.id", "p-1", 0, u64::MAX)), vec![tid(1), tid(5)]);
        // "5" matches the integer 5 and the string "5"; "05" only the integer.
        assert_eq!(ids(index.lookup("order.id", "5", 0, u64::MAX)), vec![tid(2), tid(3)]);
        assert_eq!(ids(index.lookup("order.id", "05", 0, u64::MAX)), vec![tid(2)]);
        assert!(ids(index.lookup("order.id", "6", 0, u64::MAX)).is_empty());
        assert_eq!(index.lookup("other", "p-1", 0, u64::MAX), None, "a key not indexed is not covered");
        // A trace's start is its earliest span in the block, carrying the value or not.
        let hits = index.lookup("business_process.id", "p-1", 0, u64::MAX).unwrap();
        assert_eq!(hits[0].start_unix_nanos, 90);
    }

    #[test]
    fn a_range_decides_when_carrying_spans_are_all_in_or_all_out_and_defers_otherwise() {
        let index = sample();
        // Trace 2 carries order.id=5 on spans starting at 200 and 260.
        assert_eq!(ids(index.lookup("order.id", "05", 150, 300)), vec![tid(2)]);
        assert!(ids(index.lookup("order.id", "05", 270, 400)).is_empty());
        assert_eq!(index.lookup("order.id", "05", 230, 400), None, "straddles the range's start");
        assert_eq!(index.lookup("order.id", "05", 0, 230), None, "straddles the range's end");
    }

    #[test]
    fn round_trips_and_rejects_corruption() {
        let (sample, block) = (sample(), block_index());
        let bytes = sample.encode(&block).unwrap();
        assert_eq!(AttrIndex::decode(&bytes, &block).unwrap(), sample);
        let empty = AttrIndexBuilder::new(&keys()).finish();
        assert_eq!(AttrIndex::decode(&empty.encode(&block).unwrap(), &block).unwrap(), empty);
        // Five traces and six postings in a few bytes each, beside the keys and texts.
        let texts: usize = keys().iter().map(|k| k.len() + 2).sum::<usize>() + "p-1".len() + 2 * "5".len();
        assert!(bytes.len() - texts <= 32 + 5 * 3 + 4 * 4 + 6 * 3, "{} bytes", bytes.len());
        // Traces are named by their place in the block's index: it must hold them.
        let other = index_of(&[1, 2]);
        assert!(matches!(sample.encode(&other), Err(AttrsError::Inconsistent(_))));
        assert!(matches!(AttrIndex::decode(&bytes, &other), Err(AttrsError::Inconsistent(_))));

        assert_eq!(AttrIndex::decode(&bytes[..10], &block), Err(AttrsError::Truncated(10)));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(AttrIndex::decode(&bad, &block), Err(AttrsError::BadMagic));
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(AttrIndex::decode(&flipped, &block), Err(AttrsError::Checksum));
        let mut future = bytes.clone();
        future[4] = 9;
        assert_eq!(AttrIndex::decode(&future, &block), Err(AttrsError::UnsupportedVersion(9)));
        // A well-checksummed body that lies about its counts.
        let mut lying = bytes[..bytes.len() - 4].to_vec();
        lying[8] = 200;
        let crc = crc32c::crc32c(&lying);
        lying.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(AttrIndex::decode(&lying, &block), Err(AttrsError::Inconsistent(_))));
    }

    /// Spans of traces 1..=9 at random starts, each with a random value (or none) under
    /// `order.id`, as (trace, start, value choice).
    fn random_spans() -> impl Strategy<Value = Vec<(u8, u64, u8)>> {
        proptest::collection::vec((1u8..=9, 0u64..1_000, 0u8..5), 1..60)
    }

    fn value_of(choice: u8) -> Option<AnyValue> {
        match choice {
            0 => None,
            1 => Some(AnyValue::Int(7)),
            2 => Some(AnyValue::String("7".into())),
            3 => Some(AnyValue::String("a".into())),
            _ => Some(AnyValue::Double(7.0)),
        }
    }

    proptest! {
        /// Whatever the spans, the file round-trips, and a lookup that decides gives exactly
        /// the traces with a span carrying the value and starting in the range.
        #[test]
        fn lookups_agree_with_the_filter_over_random_spans(
            spans in random_spans(), from in 0u64..1_000, len in 0u64..1_200, query in 0usize..4,
        ) {
            let mut builder = AttrIndexBuilder::new(&keys());
            let spans: Vec<Span> = spans
                .iter()
                .enumerate()
                .map(|(i, (trace, start, choice))| {
                    let attributes = value_of(*choice).map(|v| KeyValue::new("order.id", v)).into_iter().collect();
                    span(*trace, i as u8, *start, attributes)
                })
                .collect();
            spans.iter().for_each(|s| builder.observe(s));
            let index = builder.finish();
            let block = block_index();
            prop_assert_eq!(AttrIndex::decode(&index.encode(&block).unwrap(), &block).unwrap(), index.clone());
            let value = ["7", "07", "a", "7.0"][query];
            let to = from.saturating_add(len);
            let filter = AttributeFilter { key: "order.id".into(), value: value.into() };
            let want: BTreeSet<TraceId> = spans
                .iter()
                .filter(|s| (from..=to).contains(&s.start_unix_nanos) && filter.matches_span(s))
                .map(|s| s.trace_id)
                .collect();
            if let Some(hits) = index.lookup("order.id", value, from, to) {
                let found: BTreeSet<TraceId> = hits.iter().map(|h| h.trace_id).collect();
                prop_assert_eq!(found, want);
            }
            // Over all time it always decides.
            let all: BTreeSet<TraceId> = spans.iter().filter(|s| filter.matches_span(s)).map(|s| s.trace_id).collect();
            let found = index.lookup("order.id", value, 0, u64::MAX).expect("decided");
            prop_assert_eq!(found.iter().map(|h| h.trace_id).collect::<BTreeSet<_>>(), all);
        }
    }

    #[test]
    fn query_entries_match_exactly_what_the_attribute_filter_matches() {
        let values = [
            AnyValue::String("5".into()),
            AnyValue::String("05".into()),
            AnyValue::String("true".into()),
            AnyValue::String(Default::default()),
            AnyValue::Int(5),
            AnyValue::Int(-7),
            AnyValue::Double(5.0),
            AnyValue::Double(0.1),
            AnyValue::Double(-0.0),
            AnyValue::Double(f64::NAN),
            AnyValue::Bool(true),
            AnyValue::Bool(false),
            AnyValue::Bytes(vec![1, 2]),
            AnyValue::Array(vec![AnyValue::Int(1)]),
        ];
        let queries = ["5", "05", "+5", "5.0", "5e0", "-7", "0.1", "0", "-0", "NaN", "true", "false", "", "x"];
        for value in &values {
            for query in queries {
                let filter = AttributeFilter { key: "k".into(), value: query.into() };
                let indexed = value_entry(value).is_some_and(|entry| query_entries(query).contains(&entry));
                assert_eq!(indexed, filter.matches_value(value), "{value:?} against {query:?}");
            }
        }
    }
}
