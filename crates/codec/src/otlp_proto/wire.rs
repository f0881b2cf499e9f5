//! Protobuf wire-format primitives for the OTLP decoder, refusing exactly what prost refuses,
//! with prost's error messages.
//!
//! The decoder reads OTLP messages field by field into the model (see `messages`); this module
//! holds the pieces it is built from. Each one does what prost's generated `merge_field` code
//! does for the OTLP messages, in the same order, so that a body is refused exactly when
//! `prost::Message::decode` refuses it and the message is the same, e.g.
//! `failed to decode Protobuf message: Span.name: ScopeSpans.spans: ResourceSpans.scope_spans:
//! ExportTraceServiceRequest.resource_spans: invalid string value: data is not UTF-8 encoded`
//! (the innermost field first). The rules, as prost 0.14 applies them:
//!
//! - **One cursor over the whole body.** A nested message is a length and a loop that runs
//!   until the cursor reaches the message's end; a field read inside it is checked against
//!   what is left of the *body*, not of the message. A field that runs past its message's end
//!   is read whole and the message then fails with "delimited length exceeded"; one that runs
//!   past the body fails with "buffer underflow" (or "invalid varint").
//! - **Wire types.** A known field with another wire type than its own is an error (`invalid
//!   wire type: LengthDelimited (expected Varint)`); the check comes before anything else.
//!   Singular fields are never read packed.
//! - **Unknown fields** of every wire type are skipped, groups included (a group ends at the
//!   end-group key with its own tag, whatever the enclosing message's length says). An
//!   end-group key with no group open is an error.
//! - **Recursion budget.** The root message's fields get a budget of [`RECURSION_LIMIT`];
//!   entering a nested message needs a budget above zero and gives its fields one less.
//!   Skipping an unknown field also needs a budget above zero, and each group level spends one.
//!   (prost's `DecodeContext` keeps this count, but cannot be advanced outside prost, so the
//!   decoder passes its own `depth`.)
//! - **Error location.** An error inside a known field is prefixed with `Message.field` for
//!   every enclosing field, innermost first; errors from skipping an unknown field, or from
//!   reading a key, get only the prefixes of the fields around the message.
//!
//! Last-one-wins for repeated scalars, merging of repeated singular messages and oneof
//! semantics are the reader's business (`messages`); here a field read just returns its value.

use std::fmt;

use prost::encoding::WireType;

/// prost's recursion limit (`prost::RECURSION_LIMIT`, not public): the depth budget of the root
/// message's fields.
pub(super) const RECURSION_LIMIT: u32 = 100;

/// A body prost would refuse, and where: displays exactly as prost's `DecodeError`.
#[derive(Debug)]
pub(super) struct WireError(Box<WireErrorInner>);

#[derive(Debug)]
struct WireErrorInner {
    kind: ErrorKind,
    /// `(message, field)` for every field around the problem, innermost first.
    path: Vec<(&'static str, &'static str)>,
}

/// prost's `DecodeErrorKind`, the kinds a decode of these messages can meet.
#[derive(Debug, Clone, Copy)]
enum ErrorKind {
    InvalidVarint,
    RecursionLimitReached,
    InvalidWireType(u64),
    InvalidKey(u64),
    InvalidTag,
    UnexpectedWireType { actual: WireType, expected: WireType },
    BufferUnderflow,
    DelimitedLengthExceeded,
    UnexpectedEndGroupTag,
    InvalidString,
}

impl WireError {
    #[cold]
    fn new(kind: ErrorKind) -> WireError {
        WireError(Box::new(WireErrorInner { kind, path: Vec::new() }))
    }

    #[cold]
    fn in_field(mut self, message: &'static str, field: &'static str) -> WireError {
        self.0.path.push((message, field));
        self
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed to decode Protobuf message: ")?;
        for (message, field) in &self.0.path {
            write!(f, "{message}.{field}: ")?;
        }
        match self.0.kind {
            ErrorKind::InvalidVarint => f.write_str("invalid varint"),
            ErrorKind::RecursionLimitReached => f.write_str("recursion limit reached"),
            ErrorKind::InvalidWireType(value) => write!(f, "invalid wire type value: {value}"),
            ErrorKind::InvalidKey(key) => write!(f, "invalid key value: {key}"),
            ErrorKind::InvalidTag => f.write_str("invalid tag value: 0"),
            ErrorKind::UnexpectedWireType { actual, expected } => {
                write!(f, "invalid wire type: {actual:?} (expected {expected:?})")
            }
            ErrorKind::BufferUnderflow => f.write_str("buffer underflow"),
            ErrorKind::DelimitedLengthExceeded => f.write_str("delimited length exceeded"),
            ErrorKind::UnexpectedEndGroupTag => f.write_str("unexpected end group tag"),
            ErrorKind::InvalidString => f.write_str("invalid string value: data is not UTF-8 encoded"),
        }
    }
}

/// A message's name and the names of its known fields by tag, as prost reports them. Only
/// errors in these fields get a `Message.field` prefix.
pub(super) struct Fields {
    pub message: &'static str,
    pub names: &'static [(u32, &'static str)],
}

impl Fields {
    #[cold]
    fn locate(&self, error: WireError, tag: u32) -> WireError {
        match self.names.iter().find(|(known, _)| *known == tag) {
            Some((_, field)) => error.in_field(self.message, field),
            None => error,
        }
    }
}

/// `bytes` as text if they are UTF-8. Keys and values are nearly always short ASCII, which
/// `is_ascii` checks a word at a time: several times fewer instructions than the general
/// check, which goes byte by byte over a string this short.
#[inline]
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

#[inline]
fn expect(actual: WireType, expected: WireType) -> Result<(), WireError> {
    if actual == expected { Ok(()) } else { Err(WireError::new(ErrorKind::UnexpectedWireType { actual, expected })) }
}

/// A cursor over what is left of the body.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(body: &'a [u8]) -> Reader<'a> {
        Reader { buf: body }
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, WireError> {
        // Keys and lengths are mostly one or two bytes: read those here, inline.
        match *self.buf {
            [b0, ref rest @ ..] if b0 < 0x80 => {
                self.buf = rest;
                Ok(u64::from(b0))
            }
            [b0, b1, ref rest @ ..] if b1 < 0x80 => {
                self.buf = rest;
                Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7)
            }
            _ => self.long_varint(),
        }
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, WireError> {
        // prost's own decoder; every error it reports is "invalid varint".
        prost::encoding::decode_varint(&mut self.buf).map_err(|_| WireError::new(ErrorKind::InvalidVarint))
    }

    /// A field key: its tag and wire type.
    #[inline]
    fn key(&mut self) -> Result<(u32, WireType), WireError> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError::new(ErrorKind::InvalidKey(key)));
        }
        let wire_type = match key & 0x07 {
            0 => WireType::Varint,
            1 => WireType::SixtyFourBit,
            2 => WireType::LengthDelimited,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::ThirtyTwoBit,
            value => return Err(WireError::new(ErrorKind::InvalidWireType(value))),
        };
        let tag = (key as u32) >> 3;
        if tag == 0 {
            return Err(WireError::new(ErrorKind::InvalidTag));
        }
        Ok((tag, wire_type))
    }

    /// `len` bytes, checked against the rest of the body.
    #[inline]
    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        if len > self.buf.len() as u64 {
            return Err(WireError::new(ErrorKind::BufferUnderflow));
        }
        let (taken, rest) = self.buf.split_at(len as usize);
        self.buf = rest;
        Ok(taken)
    }

    /// A varint field (`uint32`, `int32`, `int64`, `bool`, enums): the raw value, which the
    /// caller narrows with `as` as prost does.
    #[inline]
    pub fn varint_field(&mut self, wire_type: WireType) -> Result<u64, WireError> {
        expect(wire_type, WireType::Varint)?;
        self.varint()
    }

    /// A `fixed64` or `double` field, as its bits.
    #[inline]
    pub fn fixed64_field(&mut self, wire_type: WireType) -> Result<u64, WireError> {
        expect(wire_type, WireType::SixtyFourBit)?;
        let bytes = self.take_fixed::<8>()?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// A `fixed32` field.
    #[inline]
    pub fn fixed32_field(&mut self, wire_type: WireType) -> Result<u32, WireError> {
        expect(wire_type, WireType::ThirtyTwoBit)?;
        let bytes = self.take_fixed::<4>()?;
        Ok(u32::from_le_bytes(bytes))
    }

    #[inline]
    fn take_fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        match self.buf.split_first_chunk::<N>() {
            Some((bytes, rest)) => {
                self.buf = rest;
                Ok(*bytes)
            }
            None => Err(WireError::new(ErrorKind::BufferUnderflow)),
        }
    }

    /// A `bytes` field, borrowed from the body.
    #[inline]
    pub fn bytes_field(&mut self, wire_type: WireType) -> Result<&'a [u8], WireError> {
        expect(wire_type, WireType::LengthDelimited)?;
        let len = self.varint()?;
        self.take(len)
    }

    /// A `string` field, borrowed from the body; not UTF-8 is an error.
    #[inline]
    pub fn str_field(&mut self, wire_type: WireType) -> Result<&'a str, WireError> {
        let bytes = self.bytes_field(wire_type)?;
        utf8(bytes).ok_or_else(|| WireError::new(ErrorKind::InvalidString))
    }

    /// A length-delimited message of exactly two fields, `1: string` then `2: message` whose
    /// only field is `1: string` (a `KeyValue` holding a string value, as every SDK writes
    /// one), read in one go: the two strings, the cursor past the message. `None`, the cursor
    /// not moved, for anything else (another shape, a length past the body, a string that is
    /// not UTF-8): the caller then reads the message field by field, which reports errors.
    #[inline]
    pub fn string_pair(&mut self) -> Option<(&'a str, &'a str)> {
        let mut outer = Reader { buf: self.buf };
        let len = outer.varint().ok()?;
        let message = outer.take(len).ok()?;
        let mut fields = Reader { buf: message };
        // Keys of length-delimited fields 1 and 2.
        const FIELD_1: u64 = 1 << 3 | 2;
        const FIELD_2: u64 = 2 << 3 | 2;
        if fields.varint().ok()? != FIELD_1 {
            return None;
        }
        let first_len = fields.varint().ok()?;
        let first = fields.take(first_len).ok()?;
        if fields.varint().ok()? != FIELD_2 || fields.varint().ok()? != fields.buf.len() as u64 {
            return None;
        }
        if fields.varint().ok()? != FIELD_1 || fields.varint().ok()? != fields.buf.len() as u64 {
            return None;
        }
        let pair = (utf8(first)?, utf8(fields.buf)?);
        self.buf = outer.buf;
        Some(pair)
    }

    /// Reads the fields of the root message until the body ends, with the full recursion
    /// budget. `field` reads one field given its tag, wire type and depth budget, and skips
    /// the fields it does not know with [`Reader::skip`].
    pub fn root(
        &mut self,
        fields: &Fields,
        mut field: impl FnMut(&mut Self, u32, WireType, u32) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        while !self.buf.is_empty() {
            let (tag, wire_type) = self.key()?;
            field(self, tag, wire_type, RECURSION_LIMIT).map_err(|error| fields.locate(error, tag))?;
        }
        Ok(())
    }

    /// Reads one occurrence of an embedded message (a length, then fields until that length
    /// is used up), `depth` being the budget of the enclosing message's fields. `field` is as
    /// for [`Reader::root`]. Reading the same singular message field twice merges the two
    /// occurrences: the caller passes the same state to both.
    #[inline]
    pub fn message(
        &mut self,
        wire_type: WireType,
        depth: u32,
        fields: &Fields,
        mut field: impl FnMut(&mut Self, u32, WireType, u32) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        expect(wire_type, WireType::LengthDelimited)?;
        if depth == 0 {
            return Err(WireError::new(ErrorKind::RecursionLimitReached));
        }
        let len = self.varint()?;
        if len > self.buf.len() as u64 {
            return Err(WireError::new(ErrorKind::BufferUnderflow));
        }
        // What is left of the body once the message is read.
        let end = self.buf.len() - len as usize;
        while self.buf.len() > end {
            let (tag, wire_type) = self.key()?;
            field(self, tag, wire_type, depth - 1).map_err(|error| fields.locate(error, tag))?;
        }
        if self.buf.len() != end {
            return Err(WireError::new(ErrorKind::DelimitedLengthExceeded));
        }
        Ok(())
    }

    /// Skips a field the message does not know (prost's `skip_field`).
    pub fn skip(&mut self, wire_type: WireType, tag: u32, depth: u32) -> Result<(), WireError> {
        if depth == 0 {
            return Err(WireError::new(ErrorKind::RecursionLimitReached));
        }
        let len = match wire_type {
            WireType::Varint => self.varint().map(|_| 0)?,
            WireType::ThirtyTwoBit => 4,
            WireType::SixtyFourBit => 8,
            WireType::LengthDelimited => self.varint()?,
            WireType::StartGroup => loop {
                let (inner_tag, inner_wire_type) = self.key()?;
                if inner_wire_type == WireType::EndGroup {
                    if inner_tag != tag {
                        return Err(WireError::new(ErrorKind::UnexpectedEndGroupTag));
                    }
                    break 0;
                }
                self.skip(inner_wire_type, inner_tag, depth - 1)?;
            },
            WireType::EndGroup => return Err(WireError::new(ErrorKind::UnexpectedEndGroupTag)),
        };
        self.take(len).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_text(kind: ErrorKind) -> String {
        WireError::new(kind).to_string()
    }

    #[test]
    fn varints_of_every_length_read_as_prost_writes_them() {
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut encoded = Vec::new();
            prost::encoding::encode_varint(value, &mut encoded);
            encoded.push(0x2a); // the next field, left unread
            let mut reader = Reader::new(&encoded);
            assert_eq!(reader.varint().unwrap(), value);
            assert_eq!(reader.buf, [0x2a]);
        }
        // More bytes than needed is allowed, up to ten.
        assert_eq!(Reader::new(&[0x81, 0x80, 0x00]).varint().unwrap(), 1);
        let too_long = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        for invalid in [&[][..], &[0x80], &[0xff; 10], &too_long] {
            assert_eq!(Reader::new(invalid).varint().unwrap_err().to_string(), error_text(ErrorKind::InvalidVarint));
        }
    }

    #[test]
    fn errors_name_the_fields_innermost_first() {
        let error = WireError::new(ErrorKind::InvalidString).in_field("Span", "name").in_field("ScopeSpans", "spans");
        assert_eq!(
            error.to_string(),
            "failed to decode Protobuf message: Span.name: ScopeSpans.spans: invalid string value: data is not \
             UTF-8 encoded"
        );
        let wrong = ErrorKind::UnexpectedWireType { actual: WireType::StartGroup, expected: WireType::Varint };
        assert_eq!(
            error_text(wrong),
            "failed to decode Protobuf message: invalid wire type: StartGroup (expected Varint)"
        );
    }

    #[test]
    fn string_pairs_are_read_at_once_and_other_shapes_left_alone() {
        // KeyValue { key: "k", value: AnyValue { string_value: "vé" } }, then a stray byte.
        let pair = [0x0a, 0x01, b'k', 0x12, 0x05, 0x0a, 0x03, b'v', 0xc3, 0xa9];
        let mut body = vec![pair.len() as u8];
        body.extend(pair);
        body.push(0x2a);
        let mut reader = Reader::new(&body);
        assert_eq!(reader.string_pair(), Some(("k", "vé")));
        assert_eq!(reader.buf, [0x2a]);

        let others: [&[u8]; 6] = [
            // The value is an int.
            &[0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0x18, 0x05],
            // The value is first.
            &[0x08, 0x12, 0x03, 0x0a, 0x01, b'v', 0x0a, 0x01, b'k'],
            // A third field after the value.
            &[0x0a, 0x0a, 0x01, b'k', 0x12, 0x03, 0x0a, 0x01, b'v', 0x18, 0x01],
            // The value holds a second field.
            &[0x0a, 0x0a, 0x01, b'k', 0x12, 0x05, 0x0a, 0x01, b'v', 0x10, 0x01],
            // The key is not UTF-8.
            &[0x08, 0x0a, 0x01, 0xff, 0x12, 0x03, 0x0a, 0x01, b'v'],
            // The message runs past the body.
            &[0x09, 0x0a, 0x01, b'k', 0x12, 0x03, 0x0a, 0x01, b'v'],
        ];
        for other in others {
            let mut reader = Reader::new(other);
            assert_eq!(reader.string_pair(), None, "{other:?}");
            assert_eq!(reader.buf, other, "the cursor stays");
        }
    }

    #[test]
    fn a_nested_message_reads_only_its_own_length() {
        // A message of two bytes (field 1 = 5), then field 2 of the enclosing message.
        let body = [0x0a, 0x02, 0x08, 0x05, 0x10, 0x07];
        let fields = Fields { message: "Outer", names: &[(1, "inner")] };
        let inner = Fields { message: "Inner", names: &[(1, "value")] };
        let mut seen = Vec::new();
        Reader::new(&body)
            .root(&fields, |r, tag, wire_type, depth| match tag {
                1 => r.message(wire_type, depth, &inner, |r, tag, wire_type, _| {
                    seen.push((tag, r.varint_field(wire_type)?));
                    Ok(())
                }),
                _ => r.skip(wire_type, tag, depth),
            })
            .unwrap();
        assert_eq!(seen, [(1, 5)]);
    }
}
