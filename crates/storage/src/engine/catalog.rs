//! Services and their operations (span name and kind), for the pickers of query APIs.
//!
//! Fed by every append and, at open, by the operation lists of block metadata. Bounded: past
//! [`MAX_OPERATIONS`] distinct (service, name, kind) entries, new ones are not recorded (a
//! warning says so once), so high-cardinality span names cannot grow memory without end.

use std::collections::BTreeMap;

use sextant_model::{Span, SpanKind};

use crate::block::ServiceNames;
use tracing::warn;

/// The most (service, span name, kind) entries kept.
pub const MAX_OPERATIONS: usize = 100_000;

#[derive(Debug, Default)]
pub struct Catalog {
    /// Service → span name → the kinds seen, one bit per OTLP kind number.
    operations: BTreeMap<String, BTreeMap<String, u8>>,
    num_operations: usize,
    full_warned: bool,
}

impl Catalog {
    fn add(&mut self, service: &str, name: &str, kind: SpanKind) {
        let bit = 1u8 << (kind as u8);
        if let Some(kinds) = self.operations.get(service).and_then(|ops| ops.get(name))
            && kinds & bit != 0
        {
            return;
        }
        if self.num_operations >= MAX_OPERATIONS {
            if !self.full_warned {
                self.full_warned = true;
                warn!(max = MAX_OPERATIONS, "operation catalog full; new span names are not listed");
            }
            return;
        }
        self.num_operations += 1;
        let ops = match self.operations.get_mut(service) {
            Some(ops) => ops,
            None => self.operations.entry(service.to_string()).or_default(),
        };
        match ops.get_mut(name) {
            Some(kinds) => *kinds |= bit,
            None => {
                ops.insert(name.to_string(), bit);
            }
        }
    }

    pub fn add_spans<'a>(&mut self, spans: impl IntoIterator<Item = &'a Span>) {
        let mut service_names = ServiceNames::default();
        for span in spans {
            self.add(service_names.of(span), &span.name, span.kind);
        }
    }

    /// Adds (service, span name, OTLP kind number) entries from block metadata.
    pub fn add_operations(&mut self, operations: &[(String, String, i32)]) {
        for (service, name, kind) in operations {
            self.add(service, name, SpanKind::from_i32(*kind));
        }
    }

    pub fn services(&self) -> Vec<String> {
        self.operations.keys().cloned().collect()
    }

    /// Sorted by name, then kind.
    pub fn operations(&self, service: &str) -> Option<Vec<(String, SpanKind)>> {
        let ops = self.operations.get(service)?;
        let mut list = Vec::new();
        for (name, kinds) in ops {
            for kind in 0..8u8 {
                if kinds & (1 << kind) != 0 {
                    list.push((name.clone(), SpanKind::from_i32(kind as i32)));
                }
            }
        }
        Some(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_distinct_and_sorted() {
        let mut catalog = Catalog::default();
        catalog.add_operations(&[
            ("cart".into(), "get".into(), 2),
            ("cart".into(), "add".into(), 2),
            ("cart".into(), "get".into(), 2),
            ("cart".into(), "get".into(), 3),
        ]);
        assert_eq!(catalog.services(), vec!["cart".to_string()]);
        assert_eq!(
            catalog.operations("cart").unwrap(),
            vec![("add".into(), SpanKind::Server), ("get".into(), SpanKind::Server), ("get".into(), SpanKind::Client)]
        );
        assert!(catalog.operations("nope").is_none());
    }

    #[test]
    fn growth_stops_at_the_bound() {
        let mut catalog = Catalog::default();
        for i in 0..MAX_OPERATIONS + 10 {
            catalog.add("svc", &format!("GET /users/{i}"), SpanKind::Server);
        }
        assert_eq!(catalog.operations("svc").unwrap().len(), MAX_OPERATIONS);
    }
}
