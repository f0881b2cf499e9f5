//! Grouping spans by resource and scope, the shape OTLP output needs.
//!
//! Two resources (or scopes) are the same when they are the same `Arc` or, failing that, equal
//! in value, so spans read back from storage with separate copies of a resource still group
//! together. Two strategies:
//! - [`group_all`]: one group per distinct resource, and within it per distinct scope, in
//!   first-seen order. Spans are reordered (grouped); used for query output.
//! - [`group_runs`]: a new group whenever the resource or scope differs from the previous
//!   span's. Span order is preserved exactly; used for WAL payloads, whose replay must give back
//!   the same sequence. Ingest batches are already grouped, so runs are long.

use std::collections::HashMap;
use std::sync::Arc;

use sextant_model::{Resource, Scope, Span};

pub(crate) struct ResourceGroup<'a> {
    pub resource: &'a Arc<Resource>,
    pub scopes: Vec<ScopeGroup<'a>>,
    scope_index: HashMap<*const Scope, usize>,
}

pub(crate) struct ScopeGroup<'a> {
    pub scope: &'a Arc<Scope>,
    pub spans: Vec<&'a Span>,
}

fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

impl<'a> ResourceGroup<'a> {
    fn new(resource: &'a Arc<Resource>) -> ResourceGroup<'a> {
        ResourceGroup { resource, scopes: Vec::new(), scope_index: HashMap::new() }
    }

    /// Adds `span` to the group of its scope, creating it if needed.
    fn add(&mut self, span: &'a Span) {
        let key = Arc::as_ptr(&span.scope);
        let index = match self.scope_index.get(&key) {
            Some(&index) => index,
            None => {
                let index = match self.scopes.iter().position(|g| same(g.scope, &span.scope)) {
                    Some(index) => index,
                    None => {
                        self.scopes.push(ScopeGroup { scope: &span.scope, spans: Vec::new() });
                        self.scopes.len() - 1
                    }
                };
                self.scope_index.insert(key, index);
                index
            }
        };
        self.scopes[index].spans.push(span);
    }
}

/// One group per distinct resource and scope, in first-seen order.
pub(crate) fn group_all(spans: &[Span]) -> Vec<ResourceGroup<'_>> {
    let mut groups: Vec<ResourceGroup<'_>> = Vec::new();
    let mut resource_index: HashMap<*const Resource, usize> = HashMap::new();
    for span in spans {
        let key = Arc::as_ptr(&span.resource);
        let index = match resource_index.get(&key) {
            Some(&index) => index,
            None => {
                let index = match groups.iter().position(|g| same(g.resource, &span.resource)) {
                    Some(index) => index,
                    None => {
                        groups.push(ResourceGroup::new(&span.resource));
                        groups.len() - 1
                    }
                };
                resource_index.insert(key, index);
                index
            }
        };
        groups[index].add(span);
    }
    groups
}

/// Groups of consecutive spans sharing resource and scope; span order is preserved.
pub(crate) fn group_runs(spans: &[Span]) -> Vec<ResourceGroup<'_>> {
    let mut groups: Vec<ResourceGroup<'_>> = Vec::new();
    for span in spans {
        match groups.last_mut() {
            Some(group) if same(group.resource, &span.resource) => match group.scopes.last_mut() {
                Some(scope) if same(scope.scope, &span.scope) => scope.spans.push(span),
                _ => group.scopes.push(ScopeGroup { scope: &span.scope, spans: vec![span] }),
            },
            _ => {
                let mut group = ResourceGroup::new(&span.resource);
                group.scopes.push(ScopeGroup { scope: &span.scope, spans: vec![span] });
                groups.push(group);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::{KeyValue, SpanId, TraceId};

    fn span(n: u8, resource: &Arc<Resource>, scope: &Arc<Scope>) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([n; 8]), format!("s{n}"), 1, 2);
        span.resource = resource.clone();
        span.scope = scope.clone();
        span
    }

    fn resource(service: &str) -> Arc<Resource> {
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", service)], dropped_attributes_count: 0 })
    }

    fn names(groups: &[ResourceGroup<'_>]) -> Vec<Vec<Vec<String>>> {
        groups
            .iter()
            .map(|g| g.scopes.iter().map(|s| s.spans.iter().map(|s| s.name.to_string()).collect()).collect())
            .collect()
    }

    #[test]
    fn group_all_merges_equal_values_in_first_seen_order() {
        let (a, a_copy, b) = (resource("a"), resource("a"), resource("b"));
        let scope = Arc::new(Scope::default());
        let other_scope = Arc::new(Scope { name: "lib".into(), ..Scope::default() });
        let spans = [span(1, &a, &scope), span(2, &b, &scope), span(3, &a_copy, &other_scope), span(4, &a, &scope)];
        let groups = group_all(&spans);
        assert_eq!(names(&groups), vec![vec![vec!["s1", "s4"], vec!["s3"]], vec![vec!["s2"]]]);
    }

    #[test]
    fn group_runs_preserves_order() {
        let (a, b) = (resource("a"), resource("b"));
        let scope = Arc::new(Scope::default());
        let spans = [span(1, &a, &scope), span(2, &b, &scope), span(3, &a, &scope), span(4, &a, &scope)];
        let groups = group_runs(&spans);
        assert_eq!(names(&groups), vec![vec![vec!["s1"]], vec![vec!["s2"]], vec![vec!["s3", "s4"]]]);
    }
}
