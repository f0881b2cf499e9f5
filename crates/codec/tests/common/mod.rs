//! Helpers shared by the integration tests: fixtures, the receiver clock they assume, OTLP
//! request generators (`requests`) and unusual protobuf encodings of them (`wire`).
#![allow(dead_code)]

use std::path::PathBuf;

pub mod requests;
pub mod wire;

/// The receiver's clock in every test: 40 s after the spans in the fixtures start.
pub const NOW: u64 = 1_544_712_700_000_000_000;

/// Reads `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Finds an attribute value by key.
pub fn attr<'a>(attributes: &'a [sextant_model::KeyValue], key: &str) -> Option<&'a sextant_model::AnyValue> {
    sextant_model::find_attribute(attributes, key)
}
