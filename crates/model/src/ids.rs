//! Trace and span identifiers: fixed-size byte arrays, rendered as lowercase hex.

use std::fmt;
use std::str::FromStr;

/// Why an identifier could not be parsed or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be {expected} bytes, got {actual}")]
    Length { what: &'static str, expected: usize, actual: usize },
    #[error("{what} is not hexadecimal: {input:?}")]
    NotHex { what: &'static str, input: String },
    #[error("{what} is all zeros")]
    Zero { what: &'static str },
}

/// A 16-byte trace ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

macro_rules! id_type {
    ($ty:ident, $len:expr, $what:expr) => {
        impl $ty {
            pub const LEN: usize = $len;

            /// Accepts exactly `LEN` bytes; all zeros is refused (an invalid ID in OTLP).
            pub fn from_bytes(bytes: &[u8]) -> Result<$ty, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    what: $what,
                    expected: $len,
                    actual: bytes.len(),
                })?;
                let id = $ty(array);
                if id.is_zero() {
                    return Err(IdError::Zero { what: $what });
                }
                Ok(id)
            }

            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.to_hex())
            }
        }
    };
}

id_type!(TraceId, 16, "trace id");
id_type!(SpanId, 8, "span id");

fn decode_hex(input: &str, what: &'static str) -> Result<Vec<u8>, IdError> {
    hex::decode(input).map_err(|_| IdError::NotHex { what, input: input.chars().take(64).collect() })
}

impl TraceId {
    /// Parses 32 hex digits (either case), or 16 (a 64-bit ID, as Zipkin and Jaeger may
    /// send), which is left-padded with zeros.
    pub fn parse_hex(input: &str) -> Result<TraceId, IdError> {
        let bytes = decode_hex(input, "trace id")?;
        match bytes.len() {
            16 => TraceId::from_bytes(&bytes),
            8 => {
                let mut padded = [0u8; 16];
                padded[8..].copy_from_slice(&bytes);
                TraceId::from_bytes(&padded)
            }
            actual => Err(IdError::Length { what: "trace id", expected: 16, actual }),
        }
    }
}

impl SpanId {
    /// Parses 16 hex digits, either case.
    pub fn parse_hex(input: &str) -> Result<SpanId, IdError> {
        SpanId::from_bytes(&decode_hex(input, "span id")?)
    }
}

impl FromStr for TraceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceId::parse_hex(s)
    }
}

impl FromStr for SpanId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpanId::parse_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_accepts_both_cases_and_short_form() {
        let upper = TraceId::parse_hex("0AF7651916CD43DD8448EB211C80319C").unwrap();
        let lower = TraceId::parse_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert_eq!(upper, lower);
        let short = TraceId::parse_hex("8448eb211c80319c").unwrap();
        assert_eq!(short.to_hex(), "00000000000000008448eb211c80319c");
    }

    #[test]
    fn zero_and_wrong_length_ids_are_refused() {
        assert_eq!(SpanId::from_bytes(&[0; 8]), Err(IdError::Zero { what: "span id" }));
        assert!(matches!(TraceId::from_bytes(&[1; 15]), Err(IdError::Length { actual: 15, .. })));
        assert!(matches!(TraceId::parse_hex("xyz"), Err(IdError::NotHex { .. })));
        assert!(matches!(TraceId::parse_hex("0102"), Err(IdError::Length { actual: 2, .. })));
    }
}
