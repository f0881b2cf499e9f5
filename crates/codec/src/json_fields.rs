//! Lenient JSON scalars shared by the OTLP/JSON and Zipkin readers.
//!
//! The protobuf JSON mapping that OTLP/JSON follows lets a writer spell the same value several
//! ways; these readers accept all of them and refuse anything else with a message naming the
//! expected form:
//! - `null` anywhere means the field's default value;
//! - integers as JSON numbers or as decimal strings (`"1700000000000000000"`), numbers with an
//!   exponent or `.0` when they are whole (`1.7e18`), range-checked for the target type;
//! - doubles as numbers or as strings, including `"NaN"`, `"Infinity"` and `"-Infinity"`;
//! - bytes as base64, standard or URL-safe alphabet, padded or not;
//! - enums as their number or their proto name (`"SPAN_KIND_SERVER"`).

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Reads `T`, with `null` meaning `T::default()`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A message that must be written as a JSON object (serde would also accept an array of its
/// fields in order, which no OTLP writer sends and usually means a body sent to the wrong
/// endpoint).
pub(crate) struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(ObjectOnly)
    }
}

/// An integer target type, for range checks and messages.
pub(crate) trait IntegerType: TryFrom<i128> + Default {
    const NAME: &'static str;
}

impl IntegerType for u64 {
    const NAME: &'static str = "an unsigned 64-bit integer";
}
impl IntegerType for i64 {
    const NAME: &'static str = "a signed 64-bit integer";
}
impl IntegerType for u32 {
    const NAME: &'static str = "an unsigned 32-bit integer";
}
impl IntegerType for i32 {
    const NAME: &'static str = "a signed 32-bit integer";
}

/// An integer written as a number or a decimal string.
pub(crate) struct Integer<T>(pub T);

impl<'de, T: IntegerType> Deserialize<'de> for Integer<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntegerVisitor(PhantomData)).map(Integer)
    }
}

struct IntegerVisitor<T>(PhantomData<T>);

impl<T: IntegerType> IntegerVisitor<T> {
    fn convert<E: de::Error>(value: i128) -> Result<T, E> {
        T::try_from(value).map_err(|_| E::custom(format!("{value} is out of range for {}", T::NAME)))
    }
}

impl<T: IntegerType> Visitor<'_> for IntegerVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a number or a decimal string", T::NAME)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::convert(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::convert(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // 2^127 bounds the i128 conversion; the target range check follows.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1.7e38 {
            Self::convert(v as i128)
        } else {
            Err(E::custom(format!("{v} is not {}", T::NAME)))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let value: i128 = v.trim().parse().map_err(|_| E::custom(format!("{v:?} is not {}", T::NAME)))?;
        Self::convert(value)
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
}

/// Reads an integer field (number, decimal string or `null`).
pub(crate) fn integer<'de, D: Deserializer<'de>, T: IntegerType>(deserializer: D) -> Result<T, D::Error> {
    Integer::<T>::deserialize(deserializer).map(|i| i.0)
}

/// A double written as a number or a string (`"NaN"`, `"Infinity"`, `"-Infinity"`, `"1.5"`).
pub(crate) struct Double(pub f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DoubleVisitor;
        impl Visitor<'_> for DoubleVisitor {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or a string holding a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                match v {
                    "NaN" => Ok(f64::NAN),
                    "Infinity" => Ok(f64::INFINITY),
                    "-Infinity" => Ok(f64::NEG_INFINITY),
                    _ => v.trim().parse().map_err(|_| E::custom(format!("{v:?} is not a number"))),
                }
            }
        }
        deserializer.deserialize_any(DoubleVisitor).map(Double)
    }
}

/// Bytes written in base64.
pub(crate) struct Base64(pub Vec<u8>);

const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes bytes the way OTLP/JSON writers do: standard alphabet, padded.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    general_purpose::STANDARD.encode(bytes)
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Base64Visitor;
        impl Visitor<'_> for Base64Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                STANDARD_ANY_PADDING
                    .decode(v)
                    .or_else(|_| URL_SAFE_ANY_PADDING.decode(v))
                    .map_err(|e| E::custom(format!("invalid base64: {e}")))
            }
        }
        deserializer.deserialize_str(Base64Visitor).map(Base64)
    }
}

/// An OTLP enum written as its number or its proto name.
pub(crate) fn enumeration<'de, D: Deserializer<'de>>(
    deserializer: D,
    what: &'static str,
    by_name: fn(&str) -> Option<i32>,
) -> Result<i32, D::Error> {
    struct EnumVisitor {
        what: &'static str,
        by_name: fn(&str) -> Option<i32>,
    }
    impl Visitor<'_> for EnumVisitor {
        type Value = i32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a {} as a number or a name", self.what)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::custom(format!("{v} is not a {}", self.what)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::custom(format!("{v} is not a {}", self.what)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
            (self.by_name)(v)
                .or_else(|| v.parse().ok())
                .ok_or_else(|| E::custom(format!("{v:?} is not a {}", self.what)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
            Ok(0)
        }
    }
    deserializer.deserialize_any(EnumVisitor { what, by_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int<T: IntegerType>(json: &str) -> Result<T, String> {
        serde_json::from_str::<Integer<T>>(json).map(|i| i.0).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_accept_numbers_strings_and_whole_floats() {
        assert_eq!(int::<u64>("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(int::<u64>("\"18446744073709551615\""), Ok(u64::MAX));
        assert_eq!(int::<u64>("1.7e18"), Ok(1_700_000_000_000_000_000));
        assert_eq!(int::<i64>("\"-5\""), Ok(-5));
        assert_eq!(int::<u64>("null"), Ok(0));
        assert!(int::<u64>("-1").unwrap_err().contains("-1 is out of range for an unsigned 64-bit integer"));
        assert!(int::<u32>("\"4294967296\"").unwrap_err().contains("out of range"));
        assert!(int::<u64>("1.5").unwrap_err().contains("1.5 is not an unsigned 64-bit integer"));
        assert!(int::<u64>("true").unwrap_err().contains("invalid type: boolean `true`"));
        assert!(int::<u64>("\"12ab\"").unwrap_err().contains("\"12ab\" is not"));
    }

    #[test]
    fn doubles_accept_special_strings() {
        let d = |json: &str| serde_json::from_str::<Double>(json).map(|d| d.0);
        assert!(d("\"NaN\"").unwrap().is_nan());
        assert_eq!(d("\"-Infinity\"").unwrap(), f64::NEG_INFINITY);
        assert_eq!(d("3").unwrap(), 3.0);
        assert_eq!(d("\"2.5\"").unwrap(), 2.5);
        assert!(d("\"x\"").is_err());
    }

    #[test]
    fn base64_accepts_both_alphabets_with_or_without_padding() {
        let b = |json: &str| serde_json::from_str::<Base64>(json).map(|b| b.0);
        assert_eq!(b("\"+/8=\"").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(b("\"+/8\"").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(b("\"-_8\"").unwrap(), vec![0xfb, 0xff]);
        assert!(b("\"!!\"").unwrap_err().to_string().contains("invalid base64"));
    }
}
