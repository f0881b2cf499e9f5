//! Attribute lists in a block, in their two forms.
//!
//! 1. **Typed key/value column** (span attributes): `List<Struct<key, value_type,
//!    string_value, int_value, double_value, bool_value, bytes_value>>`. `value_type` is one
//!    of [`value_type`] and says which field holds the value; the others are null. Arrays and
//!    key-value lists, which Parquet cannot nest to arbitrary depth, are stored as their
//!    OTLP/JSON text in `string_value`.
//! 2. **OTLP/JSON text** (resource, scope, event and link attributes): the OTLP/JSON encoding
//!    of `repeated KeyValue`, e.g. `[{"key":"k","value":{"intValue":"7"}}]`, following the
//!    protobuf JSON mapping: 64-bit integers as decimal strings, bytes as standard base64,
//!    non-finite doubles as `"NaN"`, `"Infinity"`, `"-Infinity"`.
//!
//! Both forms round trip every [`AnyValue`] exactly, including doubles (finite doubles are
//! written in shortest round-trip form and parsed with correct rounding) and key order.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, UInt8Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt8Type};
use arrow_array::{Array, ArrayRef, ListArray, StructArray, new_null_array};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use sextant_model::{AnyValue, KeyValue};

use super::schema::{attribute_fields, value_type};

/// Builds the `attributes` column, one list per span.
pub(crate) struct AttributeListBuilder {
    offsets: Vec<i32>,
    keys: StringBuilder,
    types: UInt8Builder,
    strings: StringBuilder,
    ints: Sparse<Int64Builder>,
    doubles: Sparse<Float64Builder>,
    bools: Sparse<BooleanBuilder>,
    bytes: Sparse<BinaryBuilder>,
}

/// A value column that is null for most attributes (each attribute has one value, most are
/// strings): nulls before its first value are only counted, so a batch without any value in
/// it makes its all-null array at once instead of appending a null per attribute.
struct Sparse<B> {
    builder: B,
    leading_nulls: usize,
}

impl<B: ArrayBuilder> Sparse<B> {
    fn new(builder: B) -> Self {
        Sparse { builder, leading_nulls: 0 }
    }

    fn push<T>(&mut self, value: Option<T>)
    where
        B: Extend<Option<T>>,
    {
        match value {
            None if self.builder.is_empty() => self.leading_nulls += 1,
            None => self.builder.extend([None]),
            Some(value) => {
                let nulls = std::mem::take(&mut self.leading_nulls);
                self.builder.extend(std::iter::repeat_with(|| None).take(nulls).chain([Some(value)]));
            }
        }
    }

    fn finish(&mut self, data_type: &DataType) -> ArrayRef {
        match self.builder.is_empty() {
            true => new_null_array(data_type, std::mem::take(&mut self.leading_nulls)),
            false => self.builder.finish(),
        }
    }
}

impl AttributeListBuilder {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        AttributeListBuilder {
            offsets,
            keys: StringBuilder::new(),
            types: UInt8Builder::new(),
            strings: StringBuilder::new(),
            ints: Sparse::new(Int64Builder::new()),
            doubles: Sparse::new(Float64Builder::new()),
            bools: Sparse::new(BooleanBuilder::new()),
            bytes: Sparse::new(BinaryBuilder::new()),
        }
    }

    /// Appends one span's attributes as one list.
    pub(crate) fn append(&mut self, attributes: &[KeyValue]) {
        for kv in attributes {
            self.keys.append_value(&kv.key);
            match &kv.value {
                AnyValue::String(s) => self.push(value_type::STRING, Some(s), None, None, None, None),
                AnyValue::Bool(b) => self.push(value_type::BOOL, None, None, None, Some(*b), None),
                AnyValue::Int(i) => self.push(value_type::INT, None, Some(*i), None, None, None),
                AnyValue::Double(d) => self.push(value_type::DOUBLE, None, None, Some(*d), None, None),
                AnyValue::Bytes(b) => self.push(value_type::BYTES, None, None, None, None, Some(b)),
                AnyValue::Array(values) => {
                    let text = json_text(&array_json(values));
                    self.push(value_type::ARRAY, Some(&text), None, None, None, None)
                }
                AnyValue::KvList(kvs) => {
                    let text = to_otlp_json(kvs);
                    self.push(value_type::KVLIST, Some(&text), None, None, None, None)
                }
            }
        }
        self.offsets.push(self.keys.len() as i32);
    }

    fn push(
        &mut self,
        code: u8,
        string: Option<&str>,
        int: Option<i64>,
        double: Option<f64>,
        boolean: Option<bool>,
        bytes: Option<&[u8]>,
    ) {
        self.types.append_value(code);
        self.strings.append_option(string);
        self.ints.push(int);
        self.doubles.push(double);
        self.bools.push(boolean);
        self.bytes.push(bytes);
    }

    pub(crate) fn finish(mut self) -> ArrayRef {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.keys.finish()),
            Arc::new(self.types.finish()),
            Arc::new(self.strings.finish()),
            self.ints.finish(&DataType::Int64),
            self.doubles.finish(&DataType::Float64),
            self.bools.finish(&DataType::Boolean),
            self.bytes.finish(&DataType::Binary),
        ];
        let fields = attribute_fields();
        let values = StructArray::new(fields.clone(), columns, None);
        let item = Arc::new(Field::new("item", DataType::Struct(fields), false));
        Arc::new(ListArray::new(item, OffsetBuffer::new(self.offsets.into()), Arc::new(values), None))
    }
}

/// Reads the `attributes` column of one batch.
pub(crate) struct AttributeListReader<'a> {
    list: &'a ListArray,
    keys: &'a arrow_array::StringArray,
    types: &'a arrow_array::PrimitiveArray<UInt8Type>,
    strings: &'a arrow_array::StringArray,
    ints: &'a arrow_array::PrimitiveArray<Int64Type>,
    doubles: &'a arrow_array::PrimitiveArray<Float64Type>,
    bools: &'a arrow_array::BooleanArray,
    bytes: &'a arrow_array::BinaryArray,
}

impl<'a> AttributeListReader<'a> {
    pub(crate) fn new(column: &'a dyn Array) -> Result<Self, String> {
        let list = column.as_list_opt::<i32>().ok_or("attributes is not a list")?;
        let values = list.values().as_struct_opt().ok_or("attributes items are not structs")?;
        if values.num_columns() != 7 {
            return Err(format!("attributes struct has {} fields, expected 7", values.num_columns()));
        }
        let bad = |what: &str| format!("attributes field {what} has the wrong type");
        Ok(AttributeListReader {
            list,
            keys: values.column(0).as_string_opt::<i32>().ok_or_else(|| bad("key"))?,
            types: values.column(1).as_primitive_opt::<UInt8Type>().ok_or_else(|| bad("value_type"))?,
            strings: values.column(2).as_string_opt::<i32>().ok_or_else(|| bad("string_value"))?,
            ints: values.column(3).as_primitive_opt::<Int64Type>().ok_or_else(|| bad("int_value"))?,
            doubles: values.column(4).as_primitive_opt::<Float64Type>().ok_or_else(|| bad("double_value"))?,
            bools: values.column(5).as_boolean_opt().ok_or_else(|| bad("bool_value"))?,
            bytes: values.column(6).as_binary_opt::<i32>().ok_or_else(|| bad("bytes_value"))?,
        })
    }

    /// The attributes of row `row`.
    pub(crate) fn row(&self, row: usize) -> Result<Vec<KeyValue>, String> {
        let range = self.elements(row);
        let mut out = Vec::with_capacity(range.len());
        for i in range {
            out.push(KeyValue { key: self.keys.value(i).into(), value: self.value(i)? });
        }
        Ok(out)
    }

    fn elements(&self, row: usize) -> std::ops::Range<usize> {
        let offsets = self.list.value_offsets();
        offsets[row] as usize..offsets[row + 1] as usize
    }

    /// The value of element `i`.
    fn value(&self, i: usize) -> Result<AnyValue, String> {
        let missing = |field: &str| format!("attribute {:?}: {field} is null", self.keys.value(i));
        Ok(match self.types.value(i) {
            value_type::STRING => {
                AnyValue::String(non_null(self.strings, i).ok_or_else(|| missing("string_value"))?.into())
            }
            value_type::BOOL => {
                if self.bools.is_null(i) {
                    return Err(missing("bool_value"));
                }
                AnyValue::Bool(self.bools.value(i))
            }
            value_type::INT => {
                if self.ints.is_null(i) {
                    return Err(missing("int_value"));
                }
                AnyValue::Int(self.ints.value(i))
            }
            value_type::DOUBLE => {
                if self.doubles.is_null(i) {
                    return Err(missing("double_value"));
                }
                AnyValue::Double(self.doubles.value(i))
            }
            value_type::BYTES => {
                if self.bytes.is_null(i) {
                    return Err(missing("bytes_value"));
                }
                AnyValue::Bytes(self.bytes.value(i).to_vec())
            }
            value_type::ARRAY | value_type::KVLIST => {
                let text = non_null(self.strings, i).ok_or_else(|| missing("string_value"))?;
                structured_from_json(self.types.value(i), text)?
            }
            other => return Err(format!("attribute {:?}: unknown value_type {other}", self.keys.value(i))),
        })
    }
}

fn non_null(array: &arrow_array::StringArray, i: usize) -> Option<&str> {
    (!array.is_null(i)).then(|| array.value(i))
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value always serializes")
}

/// The array or key-value list (`value_type` [`value_type::ARRAY`] or [`value_type::KVLIST`])
/// stored as OTLP/JSON text in `string_value`.
pub(crate) fn structured_from_json(kind: u8, text: &str) -> Result<AnyValue, String> {
    match kind {
        value_type::ARRAY => {
            let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            Ok(AnyValue::Array(array_from_json(&json)?))
        }
        value_type::KVLIST => Ok(AnyValue::KvList(from_otlp_json(text)?)),
        other => Err(format!("value_type {other} is not stored as JSON")),
    }
}

/// The OTLP/JSON text of a list of key-values.
pub(crate) fn to_otlp_json(attributes: &[KeyValue]) -> String {
    json_text(&kvlist_json(attributes))
}

/// Parses the OTLP/JSON text of a list of key-values; the empty string is the empty list.
pub(crate) fn from_otlp_json(text: &str) -> Result<Vec<KeyValue>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let json: Value = serde_json::from_str(text).map_err(|e| format!("attribute JSON: {e}"))?;
    kvlist_from_json(&json)
}

fn kvlist_json(attributes: &[KeyValue]) -> Value {
    Value::Array(
        attributes
            .iter()
            .map(|kv| {
                let mut object = Map::with_capacity(2);
                object.insert("key".to_owned(), Value::String(kv.key.to_string()));
                object.insert("value".to_owned(), any_value_json(&kv.value));
                Value::Object(object)
            })
            .collect(),
    )
}

fn array_json(values: &[AnyValue]) -> Value {
    Value::Array(values.iter().map(any_value_json).collect())
}

fn tagged(tag: &str, value: Value) -> Value {
    let mut object = Map::with_capacity(1);
    object.insert(tag.to_owned(), value);
    Value::Object(object)
}

fn values_object(values: Value) -> Value {
    tagged("values", values)
}

fn any_value_json(value: &AnyValue) -> Value {
    match value {
        AnyValue::String(s) => tagged("stringValue", Value::String(s.to_string())),
        AnyValue::Bool(b) => tagged("boolValue", Value::Bool(*b)),
        AnyValue::Int(i) => tagged("intValue", Value::String(i.to_string())),
        AnyValue::Double(d) => tagged(
            "doubleValue",
            match serde_json::Number::from_f64(*d) {
                Some(n) => Value::Number(n),
                None if d.is_nan() => Value::String("NaN".to_owned()),
                None if *d > 0.0 => Value::String("Infinity".to_owned()),
                None => Value::String("-Infinity".to_owned()),
            },
        ),
        AnyValue::Bytes(b) => tagged("bytesValue", Value::String(BASE64.encode(b))),
        AnyValue::Array(values) => tagged("arrayValue", values_object(array_json(values))),
        AnyValue::KvList(kvs) => tagged("kvlistValue", values_object(kvlist_json(kvs))),
    }
}

fn kvlist_from_json(json: &Value) -> Result<Vec<KeyValue>, String> {
    let items = json.as_array().ok_or("key-value list is not a JSON array")?;
    items
        .iter()
        .map(|item| {
            let key = item.get("key").and_then(Value::as_str).ok_or("key-value without a string key")?;
            let value = item.get("value").ok_or_else(|| format!("key {key:?} without a value"))?;
            Ok(KeyValue { key: key.into(), value: any_value_from_json(value)? })
        })
        .collect()
}

fn array_from_json(json: &Value) -> Result<Vec<AnyValue>, String> {
    json.as_array().ok_or("array value is not a JSON array")?.iter().map(any_value_from_json).collect()
}

fn inner_values(value: &Value) -> &Value {
    // `{"values": [...]}`; an absent `values` is the empty list, as in OTLP/JSON.
    static EMPTY: Value = Value::Array(Vec::new());
    value.get("values").unwrap_or(&EMPTY)
}

fn any_value_from_json(json: &Value) -> Result<AnyValue, String> {
    let object = json.as_object().ok_or("value is not a JSON object")?;
    let (tag, value) = match object.iter().next() {
        Some(entry) if object.len() == 1 => entry,
        _ => return Err(format!("value must have exactly one field: {json}")),
    };
    let bad = || format!("bad {tag}: {value}");
    Ok(match tag.as_str() {
        "stringValue" => AnyValue::String(value.as_str().ok_or_else(bad)?.into()),
        "boolValue" => AnyValue::Bool(value.as_bool().ok_or_else(bad)?),
        "intValue" => AnyValue::Int(match value {
            Value::String(s) => s.parse().map_err(|_| bad())?,
            Value::Number(n) => n.as_i64().ok_or_else(bad)?,
            _ => return Err(bad()),
        }),
        "doubleValue" => AnyValue::Double(match value {
            Value::Number(n) => n.as_f64().ok_or_else(bad)?,
            Value::String(s) => match s.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        }),
        "bytesValue" => AnyValue::Bytes(BASE64.decode(value.as_str().ok_or_else(bad)?).map_err(|_| bad())?),
        "arrayValue" => AnyValue::Array(array_from_json(inner_values(value))?),
        "kvlistValue" => AnyValue::KvList(kvlist_from_json(inner_values(value))?),
        _ => return Err(format!("unknown value kind {tag}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::schema::{ATTR_BOOL, ATTR_BYTES, ATTR_DOUBLE, ATTR_INT};

    fn sample() -> Vec<KeyValue> {
        vec![
            KeyValue::string("s", "x\"y"),
            KeyValue::new("b", AnyValue::Bool(true)),
            KeyValue::new("i", AnyValue::Int(i64::MIN)),
            KeyValue::new("d", AnyValue::Double(0.1 + 0.2)),
            KeyValue::new("inf", AnyValue::Double(f64::NEG_INFINITY)),
            KeyValue::new("y", AnyValue::Bytes(vec![0, 255, 7])),
            KeyValue::new("a", AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Array(vec![])])),
            KeyValue::new("m", AnyValue::KvList(vec![KeyValue::new("k", AnyValue::Double(-0.0))])),
            KeyValue::string("s", "duplicate keys keep their order"),
        ]
    }

    #[test]
    fn otlp_json_round_trips_every_kind() {
        let text = to_otlp_json(&sample());
        assert!(text.contains(r#"{"key":"i","value":{"intValue":"-9223372036854775808"}}"#), "{text}");
        assert!(text.contains(r#""bytesValue":"AP8H""#), "{text}");
        assert_eq!(from_otlp_json(&text).unwrap(), sample());
        assert_eq!(from_otlp_json("").unwrap(), vec![]);
        assert_eq!(from_otlp_json("[]").unwrap(), vec![]);
    }

    #[test]
    fn nan_survives_the_json_form() {
        let text = to_otlp_json(&[KeyValue::new("n", AnyValue::Double(f64::NAN))]);
        let back = from_otlp_json(&text).unwrap();
        assert!(matches!(back[0].value, AnyValue::Double(d) if d.is_nan()));
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        assert!(from_otlp_json("{").is_err());
        assert!(from_otlp_json(r#"[{"key":"k","value":{"intValue":"x"}}]"#).is_err());
        assert!(from_otlp_json(r#"[{"key":"k","value":{"a":1,"b":2}}]"#).is_err());
        assert!(from_otlp_json(r#"[{"value":{"boolValue":true}}]"#).is_err());
    }

    #[test]
    fn typed_column_round_trips_and_keeps_list_boundaries() {
        let mut builder = AttributeListBuilder::with_capacity(3);
        builder.append(&sample());
        builder.append(&[]);
        builder.append(&sample()[..2]);
        let array = builder.finish();
        let reader = AttributeListReader::new(array.as_ref()).unwrap();
        assert_eq!(reader.row(0).unwrap(), sample());
        assert_eq!(reader.row(1).unwrap(), vec![]);
        assert_eq!(reader.row(2).unwrap(), sample()[..2].to_vec());
    }

    #[test]
    fn value_columns_without_a_value_are_all_null_and_the_first_value_lands_in_place() {
        let strings = |i: usize| vec![KeyValue::string("a", format!("x{i}")), KeyValue::string("b", "y")];
        let mut builder = AttributeListBuilder::with_capacity(4);
        let mut want = Vec::new();
        for i in 0..3 {
            want.push(strings(i));
        }
        // After six string values: an integer, then strings again, then a boolean.
        let mut mixed = strings(3);
        mixed.insert(1, KeyValue::new("n", AnyValue::Int(-4)));
        mixed.push(KeyValue::new("flag", AnyValue::Bool(true)));
        want.push(mixed);
        for row in &want {
            builder.append(row);
        }
        let array = builder.finish();
        let values = array.as_list::<i32>().values().as_struct();
        assert_eq!(values.len(), 10);
        let column = |name: &str| values.column_by_name(name).unwrap().clone();
        assert_eq!(column(ATTR_INT).null_count(), 9);
        assert_eq!(column(ATTR_INT).as_primitive::<Int64Type>().value(7), -4);
        assert_eq!(column(ATTR_BOOL).null_count(), 9);
        assert_eq!(column(ATTR_DOUBLE).null_count(), 10);
        assert_eq!(column(ATTR_BYTES).data_type(), &DataType::Binary);
        let reader = AttributeListReader::new(array.as_ref()).unwrap();
        for (i, row) in want.iter().enumerate() {
            assert_eq!(&reader.row(i).unwrap(), row);
        }
    }
}
