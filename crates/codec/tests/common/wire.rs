//! OTLP requests as trees of protobuf fields, to encode them the unusual ways the format allows
//! and to corrupt them, for the differential tests of the protobuf decoders.
//!
//! [`request`] turns a request into fields in prost's order (by tag), and [`encode`] writes them back:
//! without changes, the bytes are exactly prost's. [`unusual`] rewrites a tree without changing
//! what it means to a protobuf parser: fields out of order, a singular field sent twice (the
//! last wins), a singular message split in two occurrences (they merge), a oneof variant
//! preceded by another (the last wins), default values written out, unknown fields of every
//! wire type (groups included), and [`encode`] with an `Rng` pads varints to more bytes than
//! they need. [`corrupt`] and [`mutate`] then break trees and bytes.

use std::collections::{HashMap, VecDeque};

use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::proto::tonic::common::v1::{self as pc, any_value::Value as PValue};
use sextant_codec::proto::tonic::resource::v1 as pr;
use sextant_codec::proto::tonic::trace::v1 as pt;

/// A field as it goes on the wire.
#[derive(Clone, Debug)]
pub struct Field {
    pub tag: u32,
    pub value: Value,
    pub role: Role,
    pub kind: Kind,
}

/// What a scalar field holds, where it matters to rewriting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A `string`: its bytes must be UTF-8.
    Text,
    /// An `int32` or enum: parsers keep the low 32 bits of the varint.
    Int32,
    /// A `uint32`: parsers keep the low 32 bits of the varint.
    Uint32,
    /// A `bool`: any varint but 0 is true.
    Bool,
    Other,
}

#[derive(Clone, Debug)]
pub enum Value {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(Vec<u8>),
    Message(Vec<Field>),
    /// A group, closed by an end-group key with `end_tag` (the group's own tag when well formed).
    Group {
        fields: Vec<Field>,
        end_tag: u32,
    },
    /// An end-group key with no group open.
    EndGroup,
    /// A message whose length prefix is off by `delta`.
    Skewed {
        fields: Vec<Field>,
        delta: i64,
    },
    /// Bytes written as they are, with no key.
    Raw(Vec<u8>),
}

/// What a field is to its message, which decides how it may be rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A singular scalar, string or bytes field: the last occurrence wins. A canonical encoding
    /// leaves it out when it holds the default value.
    Singular { default: bool },
    /// A singular embedded message: occurrences merge.
    Embedded,
    /// One element of a repeated field.
    Element,
    /// A member of `AnyValue`'s oneof: the last one wins, and an array (map) after an array
    /// (map) merges into it.
    Variant,
    /// Not in the schema.
    Unknown,
}

/// SplitMix64, seeded by the property test.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        (0..self.below(max_len + 1)).map(|_| self.next_u64() as u8).collect()
    }

    fn text(&mut self) -> Vec<u8> {
        let pieces = ["", "a", "zz", "é", "€", "𝄞", "x.y"];
        (0..self.below(4)).map(|_| pieces[self.below(pieces.len())]).collect::<String>().into_bytes()
    }
}

// The tree of a request, field by field in prost's order (by tag).

fn singular(tag: u32, value: Value) -> Field {
    let default = match &value {
        Value::Varint(v) | Value::Fixed64(v) => *v == 0,
        Value::Fixed32(v) => *v == 0,
        Value::Bytes(b) => b.is_empty(),
        _ => false,
    };
    Field { tag, value, role: Role::Singular { default }, kind: Kind::Other }
}

fn string(tag: u32, s: &str) -> Field {
    Field { kind: Kind::Text, ..singular(tag, Value::Bytes(s.as_bytes().to_vec())) }
}

/// An `int32` or enum: negative numbers are sign-extended to ten bytes.
fn int32(tag: u32, value: i32) -> Field {
    Field { kind: Kind::Int32, ..singular(tag, Value::Varint(i64::from(value) as u64)) }
}

fn uint32(tag: u32, value: u32) -> Field {
    Field { kind: Kind::Uint32, ..singular(tag, Value::Varint(value.into())) }
}

fn embedded(tag: u32, fields: Vec<Field>) -> Field {
    Field { tag, value: Value::Message(fields), role: Role::Embedded, kind: Kind::Other }
}

fn elements<T>(tag: u32, items: &[T], to_fields: impl Fn(&T) -> Vec<Field>) -> impl Iterator<Item = Field> {
    items.iter().map(move |item| Field {
        tag,
        value: Value::Message(to_fields(item)),
        role: Role::Element,
        kind: Kind::Other,
    })
}

pub fn request(request: &ExportTraceServiceRequest) -> Vec<Field> {
    elements(1, &request.resource_spans, resource_spans).collect()
}

fn resource_spans(resource_spans: &pt::ResourceSpans) -> Vec<Field> {
    let mut fields = Vec::new();
    fields.extend(resource_spans.resource.as_ref().map(|r| embedded(1, resource(r))));
    fields.extend(elements(2, &resource_spans.scope_spans, scope_spans));
    fields.push(string(3, &resource_spans.schema_url));
    fields
}

fn resource(resource: &pr::Resource) -> Vec<Field> {
    let mut fields: Vec<Field> = elements(1, &resource.attributes, key_value).collect();
    fields.push(uint32(2, resource.dropped_attributes_count));
    fields.extend(elements(3, &resource.entity_refs, entity_ref));
    fields
}

fn entity_ref(entity_ref: &pc::EntityRef) -> Vec<Field> {
    let mut fields = vec![string(1, &entity_ref.schema_url), string(2, &entity_ref.r#type)];
    for (tag, keys) in [(3, &entity_ref.id_keys), (4, &entity_ref.description_keys)] {
        fields.extend(keys.iter().map(|key| Field { role: Role::Element, ..string(tag, key) }));
    }
    fields
}

fn scope_spans(scope_spans: &pt::ScopeSpans) -> Vec<Field> {
    let mut fields = Vec::new();
    fields.extend(scope_spans.scope.as_ref().map(|s| embedded(1, scope(s))));
    fields.extend(elements(2, &scope_spans.spans, span));
    fields.push(string(3, &scope_spans.schema_url));
    fields
}

fn scope(scope: &pc::InstrumentationScope) -> Vec<Field> {
    let mut fields = vec![string(1, &scope.name), string(2, &scope.version)];
    fields.extend(elements(3, &scope.attributes, key_value));
    fields.push(uint32(4, scope.dropped_attributes_count));
    fields
}

fn span(span: &pt::Span) -> Vec<Field> {
    let mut fields = vec![
        singular(1, Value::Bytes(span.trace_id.clone())),
        singular(2, Value::Bytes(span.span_id.clone())),
        string(3, &span.trace_state),
        singular(4, Value::Bytes(span.parent_span_id.clone())),
        string(5, &span.name),
        int32(6, span.kind),
        singular(7, Value::Fixed64(span.start_time_unix_nano)),
        singular(8, Value::Fixed64(span.end_time_unix_nano)),
    ];
    fields.extend(elements(9, &span.attributes, key_value));
    fields.push(uint32(10, span.dropped_attributes_count));
    fields.extend(elements(11, &span.events, event));
    fields.push(uint32(12, span.dropped_events_count));
    fields.extend(elements(13, &span.links, link));
    fields.push(uint32(14, span.dropped_links_count));
    fields.extend(span.status.as_ref().map(|s| embedded(15, vec![string(2, &s.message), int32(3, s.code)])));
    fields.push(singular(16, Value::Fixed32(span.flags)));
    fields
}

fn event(event: &pt::span::Event) -> Vec<Field> {
    let mut fields = vec![singular(1, Value::Fixed64(event.time_unix_nano)), string(2, &event.name)];
    fields.extend(elements(3, &event.attributes, key_value));
    fields.push(uint32(4, event.dropped_attributes_count));
    fields
}

fn link(link: &pt::span::Link) -> Vec<Field> {
    let mut fields = vec![
        singular(1, Value::Bytes(link.trace_id.clone())),
        singular(2, Value::Bytes(link.span_id.clone())),
        string(3, &link.trace_state),
    ];
    fields.extend(elements(4, &link.attributes, key_value));
    fields.push(uint32(5, link.dropped_attributes_count));
    fields.push(singular(6, Value::Fixed32(link.flags)));
    fields
}

fn key_value(kv: &pc::KeyValue) -> Vec<Field> {
    let mut fields = vec![string(1, &kv.key)];
    fields.extend(kv.value.as_ref().map(|v| embedded(2, any_value(v))));
    fields.push(int32(3, kv.key_strindex));
    fields
}

fn any_value(value: &pc::AnyValue) -> Vec<Field> {
    let variant = |tag, value| {
        let kind = match tag {
            1 => Kind::Text,
            2 => Kind::Bool,
            8 => Kind::Int32,
            _ => Kind::Other,
        };
        Field { tag, value, role: Role::Variant, kind }
    };
    let field = match &value.value {
        None => return Vec::new(),
        Some(PValue::StringValue(s)) => variant(1, Value::Bytes(s.as_bytes().to_vec())),
        Some(PValue::BoolValue(b)) => variant(2, Value::Varint(u64::from(*b))),
        Some(PValue::IntValue(i)) => variant(3, Value::Varint(*i as u64)),
        Some(PValue::DoubleValue(d)) => variant(4, Value::Fixed64(d.to_bits())),
        Some(PValue::ArrayValue(array)) => variant(5, Value::Message(elements(1, &array.values, any_value).collect())),
        Some(PValue::KvlistValue(list)) => variant(6, Value::Message(elements(1, &list.values, key_value).collect())),
        Some(PValue::BytesValue(b)) => variant(7, Value::Bytes(b.clone())),
        Some(PValue::StringValueStrindex(i)) => variant(8, Value::Varint(i64::from(*i) as u64)),
    };
    vec![field]
}

fn int_variant(value: u64) -> Field {
    Field { tag: 3, value: Value::Varint(value), role: Role::Variant, kind: Kind::Other }
}

/// An `AnyValue` nesting `depth` arrays around an integer.
pub fn nested_arrays(depth: usize) -> Vec<Field> {
    nest_in_arrays(depth, vec![int_variant(7)])
}

/// An `AnyValue` nesting `depth` arrays around the `AnyValue` whose fields are `value`.
pub fn nest_in_arrays(depth: usize, mut value: Vec<Field>) -> Vec<Field> {
    for _ in 0..depth {
        let element = Field { tag: 1, value: Value::Message(value), role: Role::Element, kind: Kind::Other };
        value = vec![Field { tag: 5, value: Value::Message(vec![element]), role: Role::Variant, kind: Kind::Other }];
    }
    value
}

/// An `AnyValue` nesting `depth` single-entry maps around an integer.
pub fn nested_maps(depth: usize) -> Vec<Field> {
    let mut value = vec![int_variant(7)];
    for _ in 0..depth {
        let entry = vec![
            Field {
                tag: 1,
                value: Value::Bytes(b"k".to_vec()),
                role: Role::Singular { default: false },
                kind: Kind::Text,
            },
            Field { tag: 2, value: Value::Message(value), role: Role::Embedded, kind: Kind::Other },
        ];
        let entry = Field { tag: 1, value: Value::Message(entry), role: Role::Element, kind: Kind::Other };
        value = vec![Field { tag: 6, value: Value::Message(vec![entry]), role: Role::Variant, kind: Kind::Other }];
    }
    value
}

// Encoding.

/// Writes fields as protobuf. Default-valued singular fields are left out, as prost does;
/// with `rng`, some varints (keys, lengths, values) are padded to more bytes than they need.
pub fn encode(fields: &[Field], mut rng: Option<&mut Rng>) -> Vec<u8> {
    let mut out = Vec::new();
    write_fields(&mut out, fields, &mut rng);
    out
}

fn write_fields(out: &mut Vec<u8>, fields: &[Field], rng: &mut Option<&mut Rng>) {
    for field in fields {
        if field.role == (Role::Singular { default: true }) {
            continue;
        }
        let key = |wire_type: u64| (u64::from(field.tag) << 3) | wire_type;
        match &field.value {
            Value::Varint(v) => {
                put_varint(out, key(0), rng);
                put_varint(out, *v, rng);
            }
            Value::Fixed64(v) => {
                put_varint(out, key(1), rng);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Fixed32(v) => {
                put_varint(out, key(5), rng);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Bytes(bytes) => {
                put_varint(out, key(2), rng);
                put_varint(out, bytes.len() as u64, rng);
                out.extend_from_slice(bytes);
            }
            Value::Message(fields) | Value::Skewed { fields, .. } => {
                let mut inner = Vec::new();
                write_fields(&mut inner, fields, rng);
                let delta = if let Value::Skewed { delta, .. } = field.value { delta } else { 0 };
                put_varint(out, key(2), rng);
                put_varint(out, (inner.len() as i64 + delta).max(0) as u64, rng);
                out.extend_from_slice(&inner);
            }
            Value::Group { fields, end_tag } => {
                put_varint(out, key(3), rng);
                write_fields(out, fields, rng);
                put_varint(out, (u64::from(*end_tag) << 3) | 4, rng);
            }
            Value::EndGroup => put_varint(out, key(4), rng),
            Value::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// A varint, sometimes padded with continuation bytes (up to the ten bytes a varint may take).
fn put_varint(out: &mut Vec<u8>, mut value: u64, rng: &mut Option<&mut Rng>) {
    let start = out.len();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    let padding = rng.as_deref_mut().map_or(0, |rng| if rng.chance(5) { 1 + rng.below(3) } else { 0 });
    let padding = padding.min(10 - (out.len() - start));
    if padding > 0 {
        *out.last_mut().expect("a varint has a byte") |= 0x80;
        out.extend(std::iter::repeat_n(0x80, padding - 1));
        out.push(0);
    }
}

// Unusual encodings that mean the same.

/// Rewrites fields, recursively, into an encoding that means the same to a protobuf parser.
pub fn unusual(fields: &[Field], rng: &mut Rng) -> Vec<Field> {
    let mut kept = Vec::with_capacity(fields.len());
    for field in fields {
        if field.role == (Role::Singular { default: true }) && !rng.chance(25) {
            continue;
        }
        let mut field = field.clone();
        if let Value::Message(inner) = &field.value {
            field.value = Value::Message(unusual(inner, rng));
        }
        // Written out even if it holds the default value.
        if let Role::Singular { .. } = field.role {
            field.role = Role::Singular { default: false };
        }
        if rng.chance(20) {
            widen(&mut field, rng);
        }
        kept.push(field);
    }
    let mut fields = kept;
    if rng.chance(50) {
        shuffle_keeping_order_per_tag(&mut fields, rng);
    }
    let mut rewritten = Vec::with_capacity(fields.len());
    for field in fields {
        match field.role {
            Role::Singular { .. } if rng.chance(15) => rewritten.push(decoy(&field, rng)),
            Role::Variant if rng.chance(20) => rewritten.push(decoy_variant(field.tag, rng)),
            _ => {}
        }
        match &field.value {
            Value::Message(inner) if matches!(field.role, Role::Embedded | Role::Variant) && rng.chance(20) => {
                let cut = rng.below(inner.len() + 1);
                let (first, second) = inner.split_at(cut);
                for part in [first, second] {
                    rewritten.push(Field { value: Value::Message(part.to_vec()), ..field.clone() });
                }
            }
            _ => rewritten.push(field),
        }
    }
    if rng.chance(15) {
        for _ in 0..1 + rng.below(2) {
            let at = rng.below(rewritten.len() + 1);
            rewritten.insert(at, unknown_field(rng, 2));
        }
    }
    rewritten
}

/// Rewrites a 32-bit or `bool` varint as another varint that reads the same: other high bits
/// (parsers keep the low 32), another non-zero value for `true`.
fn widen(field: &mut Field, rng: &mut Rng) {
    let Value::Varint(value) = &mut field.value else { return };
    match field.kind {
        Kind::Int32 | Kind::Uint32 => *value = (rng.next_u64() << 32) | (*value & 0xffff_ffff),
        Kind::Bool if *value != 0 => *value = rng.next_u64().max(1),
        _ => {}
    }
}

/// Reorders fields, keeping the order of the occurrences of each tag (that order matters for
/// repeated fields and for last-wins).
fn shuffle_keeping_order_per_tag(fields: &mut Vec<Field>, rng: &mut Rng) {
    let mut keys: Vec<(u64, u32)> = fields.iter().map(|field| (rng.next_u64(), field.tag)).collect();
    keys.sort_unstable();
    let mut by_tag: HashMap<u32, VecDeque<Field>> = HashMap::new();
    for field in fields.drain(..) {
        by_tag.entry(field.tag).or_default().push_back(field);
    }
    fields.extend(
        keys.into_iter().map(|(_, tag)| by_tag.get_mut(&tag).and_then(VecDeque::pop_front).expect("one per key")),
    );
}

/// Another value of the same type, for a singular field to be sent before the real one.
fn decoy(field: &Field, rng: &mut Rng) -> Field {
    let value = match &field.value {
        Value::Varint(_) => Value::Varint(rng.next_u64() >> rng.below(64)),
        Value::Fixed64(_) => Value::Fixed64(rng.next_u64()),
        Value::Fixed32(_) => Value::Fixed32(rng.next_u64() as u32),
        Value::Bytes(_) if field.kind == Kind::Text => Value::Bytes(rng.text()),
        _ => Value::Bytes(rng.bytes(20)),
    };
    Field { value, ..field.clone() }
}

/// A value of another `AnyValue` variant than `tag`, for the real one to replace.
fn decoy_variant(tag: u32, rng: &mut Rng) -> Field {
    let mut other = 1 + rng.below(7) as u32;
    if other >= tag {
        other += 1;
    }
    let value = match other {
        1 => Value::Bytes(rng.text()),
        2 | 3 | 8 => Value::Varint(rng.next_u64() >> rng.below(64)),
        4 => Value::Fixed64(rng.next_u64()),
        7 => Value::Bytes(rng.bytes(8)),
        // An array or map with elements with and without a value: those without would count
        // as dropped, and those with would be kept, if the real value did not replace them.
        5 => Value::Message(
            (0..rng.below(3))
                .map(|i| {
                    let element = if i % 2 == 0 { Vec::new() } else { vec![int_variant(3)] };
                    Field { tag: 1, value: Value::Message(element), role: Role::Element, kind: Kind::Other }
                })
                .collect(),
        ),
        _ => Value::Message(
            (0..rng.below(3))
                .map(|i| {
                    let mut entry = vec![string(1, "k")];
                    if i % 2 == 1 {
                        entry.push(embedded(2, vec![int_variant(3)]));
                    }
                    Field { tag: 1, value: Value::Message(entry), role: Role::Element, kind: Kind::Other }
                })
                .collect(),
        ),
    };
    Field { tag: other, value, role: Role::Variant, kind: if other == 1 { Kind::Text } else { Kind::Other } }
}

/// A field no OTLP trace message has (they use tags 1 to 16), of any wire type, groups
/// nesting up to `depth` levels.
fn unknown_field(rng: &mut Rng, depth: usize) -> Field {
    let tags = [17, 18, 99, 1000, (1 << 29) - 1];
    let tag = tags[rng.below(tags.len())];
    let value = match rng.below(if depth > 0 { 5 } else { 4 }) {
        0 => Value::Varint(rng.next_u64() >> rng.below(64)),
        1 => Value::Fixed64(rng.next_u64()),
        2 => Value::Fixed32(rng.next_u64() as u32),
        3 => Value::Bytes(rng.bytes(12)),
        _ => Value::Group { fields: (0..rng.below(3)).map(|_| unknown_field(rng, depth - 1)).collect(), end_tag: tag },
    };
    Field { tag, value, role: Role::Unknown, kind: Kind::Other }
}

// Corruptions.

/// Breaks one field somewhere in the tree (or inserts a broken one): invalid UTF-8 in a
/// string, a known field with another wire type, a stray or mismatched end-group key, an
/// invalid key, a length off by a few bytes, or values nested deeper than the recursion limit
/// allows (or just about as deep).
pub fn corrupt(fields: &mut Vec<Field>, rng: &mut Rng) {
    if rng.chance(15) {
        // An attribute value (of a span, event, link, resource or scope, or inside another
        // value) wrapped in arrays: whether it fits depends on how deep the value already is.
        let mut values = Vec::new();
        scalar_variants(fields, &mut values);
        let pick = rng.below(values.len());
        if let Some(value) = values.into_iter().nth(pick) {
            let wrapped = nest_in_arrays(44 + rng.below(9), vec![value.clone()]);
            *value = wrapped.into_iter().next().expect("one variant");
        }
        return;
    }
    // Descend into a random embedded message, sometimes stopping early.
    let mut fields = fields;
    loop {
        let messages: Vec<usize> =
            (0..fields.len()).filter(|&i| matches!(fields[i].value, Value::Message(_))).collect();
        if messages.is_empty() || rng.chance(25) {
            break;
        }
        let i = messages[rng.below(messages.len())];
        let Value::Message(inner) = &mut fields[i].value else { unreachable!("filtered above") };
        fields = inner;
    }
    let at = rng.below(fields.len() + 1);
    match rng.below(7) {
        0 => {
            let texts: Vec<usize> = (0..fields.len()).filter(|&i| fields[i].kind == Kind::Text).collect();
            if let Some(&i) = texts.get(rng.below(texts.len())) {
                let broken: &[u8] = [&[0xff][..], &[b'a', 0xc3], &[0xed, 0xa0, 0x80], &[0x80, b'z']][rng.below(4)];
                fields[i].value = Value::Bytes(broken.to_vec());
            }
        }
        1 => {
            let known: Vec<usize> = (0..fields.len()).filter(|&i| fields[i].role != Role::Unknown).collect();
            if let Some(&i) = known.get(rng.below(known.len())) {
                fields[i].value = match &fields[i].value {
                    Value::Varint(v) => Value::Fixed64(*v),
                    Value::Fixed64(v) => Value::Fixed32(*v as u32),
                    Value::Fixed32(v) => Value::Bytes(v.to_le_bytes().to_vec()),
                    Value::Bytes(b) => Value::Varint(b.len() as u64),
                    Value::Message(inner) => Value::Group { fields: inner.clone(), end_tag: fields[i].tag },
                    other => other.clone(),
                };
            }
        }
        2 => {
            let tag = if rng.chance(50) { 17 } else { 1 + rng.below(16) as u32 };
            fields.insert(at, Field { tag, value: Value::EndGroup, role: Role::Unknown, kind: Kind::Other });
        }
        3 => {
            let group = Value::Group { fields: vec![unknown_field(rng, 1)], end_tag: 18 };
            fields.insert(at, Field { tag: 17, value: group, role: Role::Unknown, kind: Kind::Other });
        }
        4 => {
            // Tag 0; wire types 6 and 7; a key above `u32::MAX`.
            let keys: [&[u8]; 4] = [&[0x00], &[0x0e], &[0x0f], &[0x80, 0x80, 0x80, 0x80, 0x40]];
            let raw = Value::Raw(keys[rng.below(keys.len())].to_vec());
            fields.insert(at, Field { tag: 0, value: raw, role: Role::Unknown, kind: Kind::Other });
        }
        5 => {
            let messages: Vec<usize> =
                (0..fields.len()).filter(|&i| matches!(fields[i].value, Value::Message(_))).collect();
            if let Some(&i) = messages.get(rng.below(messages.len())) {
                let Value::Message(inner) = &fields[i].value else { unreachable!("filtered above") };
                let delta = [-3, -1, 1, 2][rng.below(4)];
                fields[i].value = Value::Skewed { fields: inner.clone(), delta };
            }
        }
        _ => {
            // A deeply nested map where attributes may be (tag 9 of a span, 3 of an event, ...).
            let attribute = vec![string(1, "deep"), embedded(2, nested_maps(25 + rng.below(10)))];
            let tag = [1, 3, 4, 9][rng.below(4)];
            fields.insert(at, Field { tag, value: Value::Message(attribute), role: Role::Element, kind: Kind::Other });
        }
    }
}

/// Every `AnyValue` variant in the tree that is not an array or map.
fn scalar_variants<'t>(fields: &'t mut [Field], found: &mut Vec<&'t mut Field>) {
    for field in fields {
        if field.role == Role::Variant && !matches!(field.value, Value::Message(_)) {
            found.push(field);
        } else if let Value::Message(inner) = &mut field.value {
            scalar_variants(inner, found);
        }
    }
}

/// Changes encoded bytes: truncates them, flips a bit, overwrites, inserts, deletes or
/// repeats a few bytes.
pub fn mutate(body: &mut Vec<u8>, rng: &mut Rng) {
    if body.is_empty() {
        body.push(rng.next_u64() as u8);
        return;
    }
    let at = rng.below(body.len());
    match rng.below(6) {
        0 => body.truncate(at),
        1 => body[at] ^= 1 << rng.below(8),
        2 => body[at] = [0x00, 0x7f, 0x80, 0xff, 0x0b, 0x0c, 0x13, 0x14][rng.below(8)],
        3 => body.insert(at, rng.next_u64() as u8),
        4 => {
            let end = (at + 1 + rng.below(4)).min(body.len());
            body.drain(at..end);
        }
        _ => {
            let end = (at + 1 + rng.below(8)).min(body.len());
            let repeated = body[at..end].to_vec();
            body.splice(at..at, repeated);
        }
    }
}
