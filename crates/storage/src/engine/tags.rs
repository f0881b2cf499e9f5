//! Attribute keys and values seen in a time range: what query editors offer to autocomplete
//! (Tempo's `/api/search/tags` and `/api/search/tag/{tag}/values`, Zipkin's
//! `autocompleteValues`).
//!
//! The head's spans in the range are read, then blocks overlapping the range, newest first,
//! at most [`TagQuery::max_blocks`] of them: an answer reflects recent data, as Tempo's does,
//! and costs a bounded amount of reading whatever the range.

use std::collections::{BTreeMap, BTreeSet};

use sextant_model::{AnyValue, Span};

use super::{Engine, EngineError};
use crate::block::BlockMeta;

/// Where an attribute lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagScope {
    Span,
    Resource,
    Event,
    Link,
    Instrumentation,
}

impl TagScope {
    pub const ALL: [TagScope; 5] =
        [TagScope::Span, TagScope::Resource, TagScope::Event, TagScope::Link, TagScope::Instrumentation];

    /// The scope's name in TraceQL and in Tempo's APIs.
    pub fn name(self) -> &'static str {
        match self {
            TagScope::Span => "span",
            TagScope::Resource => "resource",
            TagScope::Event => "event",
            TagScope::Link => "link",
            TagScope::Instrumentation => "instrumentation",
        }
    }
}

/// The range and bounds of a tag lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagQuery {
    /// Spans starting in `[start, end]` (unix nanoseconds).
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    /// Blocks read at most, newest first.
    pub max_blocks: usize,
    /// Distinct values returned at most (per key for names).
    pub max_values: usize,
}

impl Default for TagQuery {
    fn default() -> Self {
        TagQuery { start_unix_nanos: 0, end_unix_nanos: u64::MAX, max_blocks: 4, max_values: 1000 }
    }
}

/// Distinct values of one key: typed, ordered by type then value, bounded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TagValues {
    pub values: Vec<AnyValue>,
    /// More distinct values were seen than returned.
    pub truncated: bool,
}

impl Engine {
    /// Attribute keys by scope, sorted, in spans starting in the query's range.
    pub async fn tag_names(&self, query: &TagQuery) -> Result<BTreeMap<TagScope, BTreeSet<String>>, EngineError> {
        let mut names: BTreeMap<TagScope, BTreeSet<String>> = BTreeMap::new();
        self.each_span(query, |span| {
            for scope in TagScope::ALL {
                for_each_attribute(span, scope, |key, _| {
                    let keys = names.entry(scope).or_default();
                    if keys.len() < query.max_values && !keys.contains(key) {
                        keys.insert(key.to_string());
                    }
                });
            }
        })
        .await?;
        Ok(names)
    }

    /// Distinct values of attribute `key` in `scope` (any scope when `None`: span, then
    /// resource, as TraceQL's unscoped `.key`), in spans starting in the query's range.
    /// Values that are lists or maps are left out.
    pub async fn tag_values(
        &self,
        scope: Option<TagScope>,
        key: &str,
        query: &TagQuery,
    ) -> Result<TagValues, EngineError> {
        // Ordered by a sort key (type, then text) so the answer is deterministic.
        let mut seen: BTreeMap<(u8, i64, String), AnyValue> = BTreeMap::new();
        let mut truncated = false;
        let scopes: &[TagScope] = match &scope {
            Some(scope) => std::slice::from_ref(scope),
            None => &[TagScope::Span, TagScope::Resource],
        };
        self.each_span(query, |span| {
            for &scope in scopes {
                for_each_attribute(span, scope, |k, value| {
                    if k != key {
                        return;
                    }
                    let Some(sort_key) = sort_key(value) else { return };
                    if seen.contains_key(&sort_key) {
                        return;
                    }
                    if seen.len() >= query.max_values {
                        truncated = true;
                        return;
                    }
                    seen.insert(sort_key, value.clone());
                });
            }
        })
        .await?;
        Ok(TagValues { values: seen.into_values().collect(), truncated })
    }

    /// Calls `visit` on every span of the head, then of the newest blocks (at most
    /// `max_blocks`), that starts in the query's range.
    async fn each_span(&self, query: &TagQuery, mut visit: impl FnMut(&Span)) -> Result<(), EngineError> {
        let (start, end) = (query.start_unix_nanos, query.end_unix_nanos);
        {
            let head = self.head.read();
            for span in head.parts().flat_map(|part| part.spans()) {
                if (start..=end).contains(&span.start_unix_nanos) {
                    visit(span);
                }
            }
        }
        let manifest = self.manifest_snapshot();
        let mut blocks: Vec<&BlockMeta> =
            manifest.blocks.iter().filter(|b| b.overlaps_start_range(start, end)).collect();
        blocks.sort_by(|a, b| b.max_start_unix_nanos.cmp(&a.max_start_unix_nanos).then(a.id.cmp(&b.id)));
        for meta in blocks.into_iter().take(query.max_blocks) {
            for span in self.blocks.read_spans_in_range(meta, start, end).await? {
                visit(&span);
            }
        }
        Ok(())
    }
}

/// Calls `visit(key, value)` for each attribute of `span` in `scope`.
fn for_each_attribute(span: &Span, scope: TagScope, mut visit: impl FnMut(&str, &AnyValue)) {
    let mut each = |attributes: &[sextant_model::KeyValue]| {
        for kv in attributes {
            visit(&kv.key, &kv.value);
        }
    };
    match scope {
        TagScope::Span => each(&span.attributes),
        TagScope::Resource => each(&span.resource.attributes),
        TagScope::Event => span.events.iter().for_each(|event| each(&event.attributes)),
        TagScope::Link => span.links.iter().for_each(|link| each(&link.attributes)),
        TagScope::Instrumentation => each(&span.scope.attributes),
    }
}

/// Scalars only, ordered by type (string, int, double, bool, bytes), integers by value, the
/// others by text.
fn sort_key(value: &AnyValue) -> Option<(u8, i64, String)> {
    let (rank, number) = match value {
        AnyValue::String(_) => (0, 0),
        AnyValue::Int(i) => (1, *i),
        AnyValue::Double(_) => (2, 0),
        AnyValue::Bool(_) => (3, 0),
        AnyValue::Bytes(_) => (4, 0),
        AnyValue::Array(_) | AnyValue::KvList(_) => return None,
    };
    Some((rank, number, value.to_string()))
}
