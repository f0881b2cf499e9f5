//! What the analyzer reads of a span: the database operation it is (a read, a write, a
//! replication apply, or nothing to judge) and the attributes of DESIGN.md's
//! eventual-consistency conventions, with their aliases.
//!
//! | field | attribute (first found) |
//! |---|---|
//! | system | `db.system.name`, `db.system` |
//! | operation | `db.operation.name`, `db.operation`, else the span name's first word |
//! | collection | `db.collection.name` |
//! | level | `db.consistency_level`, `cassandra.consistency.level`, `azure.cosmosdb.consistency.level` |
//! | region | `db.replica.region`, else the resource's `cloud.region` |
//! | key, version | `db.record.key`; `db.record.version` (an integer, or a string of one) |
//!
//! A span named `db.replication.apply` is an apply (it also needs key and version). Any other
//! span with key and version is a **write** when its operation (upper-cased) is one of
//! [`WRITE_OPERATIONS`], a **read** when one of [`READ_OPERATIONS`]; else it is ignored.
//! A write is acknowledged when its span ends; a read observes the store when its span
//! starts.

use sextant_model::{AnyValue, Span, find_attribute};

use super::level::Level;

/// Operations (`db.operation.name`, or the span name's first word) that write a record.
pub const WRITE_OPERATIONS: [&str; 10] =
    ["INSERT", "UPDATE", "UPSERT", "DELETE", "SET", "PUT", "WRITE", "REPLACE", "MERGE", "HSET"];
/// Operations that read a record.
pub const READ_OPERATIONS: [&str; 7] = ["SELECT", "GET", "READ", "FIND", "FETCH", "QUERY", "HGET"];

/// The name of a replication apply span.
pub const APPLY_SPAN_NAME: &str = "db.replication.apply";

/// Span attribute keys the analyzer reads (the server's copy of a span keeps only these
/// and the other aggregators' keys).
pub const CONSISTENCY_KEYS: [&str; 16] = [
    "db.system.name",
    "db.system",
    "db.operation.name",
    "db.operation",
    "db.collection.name",
    "db.consistency_level",
    "cassandra.consistency.level",
    "azure.cosmosdb.consistency.level",
    "db.replica.region",
    "db.record.key",
    "db.record.version",
    "db.replication.source_region",
    "db.conflict.resolution",
    "db.conflict.winner_version",
    "db.conflict.loser_versions",
    "cloud.region",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
    Apply,
}

/// A database span the analyzer judges, borrowed from the span.
#[derive(Debug)]
pub(crate) struct DbSpan<'a> {
    pub access: Access,
    pub system: &'a str,
    pub operation: String,
    pub collection: &'a str,
    /// The level as written on the span (empty when none), and parsed.
    pub level_text: &'a str,
    pub level_opt: Option<Level>,
    pub region: &'a str,
    pub key: &'a str,
    pub version: u64,
}

fn text<'a>(span: &'a Span, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| find_attribute(&span.attributes, key).and_then(AnyValue::as_str))
}

/// An integer attribute (an `Int`, or a `String` holding one), not negative.
pub(crate) fn unsigned(value: &AnyValue) -> Option<u64> {
    match value {
        AnyValue::Int(i) => u64::try_from(*i).ok(),
        AnyValue::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn unsigned_attribute(span: &Span, key: &str) -> Option<u64> {
    find_attribute(&span.attributes, key).and_then(unsigned)
}

/// The region of the replica: `db.replica.region`, else the resource's `cloud.region`.
pub(crate) fn replica_region(span: &Span) -> &str {
    text(span, &["db.replica.region"])
        .or_else(|| find_attribute(&span.resource.attributes, "cloud.region").and_then(AnyValue::as_str))
        .unwrap_or("")
}

impl<'a> DbSpan<'a> {
    /// The span as a read, write or apply; `None` for anything else.
    pub(crate) fn of(span: &'a Span) -> Option<DbSpan<'a>> {
        let key = text(span, &["db.record.key"])?;
        let version = unsigned_attribute(span, "db.record.version")?;
        let operation = match text(span, &["db.operation.name", "db.operation"]) {
            Some(op) => op.to_ascii_uppercase(),
            None => span.name.split_whitespace().next().unwrap_or("").to_ascii_uppercase(),
        };
        let access = if span.name == APPLY_SPAN_NAME {
            Access::Apply
        } else if WRITE_OPERATIONS.contains(&operation.as_str()) {
            Access::Write
        } else if READ_OPERATIONS.contains(&operation.as_str()) {
            Access::Read
        } else {
            return None;
        };
        let level_text =
            text(span, &["db.consistency_level", "cassandra.consistency.level", "azure.cosmosdb.consistency.level"])
                .unwrap_or("");
        Some(DbSpan {
            access,
            system: text(span, &["db.system.name", "db.system"]).unwrap_or(""),
            operation,
            collection: text(span, &["db.collection.name"]).unwrap_or(""),
            level_text,
            level_opt: Level::parse(level_text),
            region: replica_region(span),
            key,
            version,
        })
    }
}
