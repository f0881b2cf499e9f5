//! The shape of one trace: parent links, nested-set numbers, the root span, and the
//! structural relations between spansets.
//!
//! Spans are linked to their parent by `parent_span_id`. A span whose parent is not in the
//! trace (or is itself, or would close a cycle) is a root of its own subtree, so the links
//! always form a forest. When two spans share a span ID (the client and server halves of a
//! Zipkin shared span), a server child attaches to the client half and any other child to
//! the server half, as in Tempo.
//!
//! Tempo leaves a span whose parent is missing out of the nested set, so its structural
//! operators never relate it; here it is a root, related to its own subtree.
//!
//! Nested-set numbers are given by a depth-first walk over the roots and children in the order
//! of the spans in the trace, counting from 1: a span's `left` is taken on entry, its `right`
//! on exit, so `d` descends from `a` exactly when `a.left < d.left && d.right < a.right`. A
//! root's nested-set parent is -1.

use std::cell::OnceCell;
use std::collections::HashMap;

use sextant_model::{Span, SpanId, SpanKind};

use crate::ast::SpansetOp;

/// The parent links and nested-set numbers of a trace.
pub(crate) struct Tree {
    /// The index of each span's parent, `None` for roots.
    pub parent: Vec<Option<usize>>,
    pub child_count: Vec<u32>,
    pub left: Vec<i64>,
    pub right: Vec<i64>,
    /// Every span, each after its parent (the depth-first order of the walk).
    pub preorder: Vec<usize>,
}

impl Tree {
    pub(crate) fn build(spans: &[Span]) -> Tree {
        let n = spans.len();
        // The spans of each ID: one, or the two halves of a shared span.
        let mut by_id: HashMap<SpanId, (usize, Option<usize>)> = HashMap::with_capacity(n);
        for (i, span) in spans.iter().enumerate() {
            by_id.entry(span.span_id).and_modify(|(_, second)| *second = second.or(Some(i))).or_insert((i, None));
        }
        // Children in trace order; the walk from the roots decides which links are kept.
        let mut claimed_parent: Vec<Option<usize>> = vec![None; n];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, span) in spans.iter().enumerate() {
            let Some(&(first, second)) = span.parent_span_id.and_then(|id| by_id.get(&id)) else { continue };
            // Of two halves, a server span hangs under the client one, any other under the
            // server one (as Tempo links them).
            let p = match second {
                Some(second) => {
                    let wanted = if span.kind == SpanKind::Server { SpanKind::Client } else { SpanKind::Server };
                    if spans[second].kind == wanted && spans[first].kind != wanted { second } else { first }
                }
                None => first,
            };
            if p != i {
                claimed_parent[i] = Some(p);
                children[p].push(i);
            }
        }
        let mut tree = Tree {
            parent: vec![None; n],
            child_count: vec![0; n],
            left: vec![0; n],
            right: vec![0; n],
            preorder: Vec::with_capacity(n),
        };
        let mut visited = vec![false; n];
        let mut counter = 0i64;
        // Real roots first, then whatever a cycle left unreached, each as a root.
        let roots = (0..n).filter(|&i| claimed_parent[i].is_none()).chain(0..n);
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in roots {
            if visited[root] {
                continue;
            }
            visited[root] = true;
            counter += 1;
            tree.left[root] = counter;
            tree.preorder.push(root);
            stack.push((root, 0));
            while let Some((node, next_child)) = stack.last_mut() {
                let node = *node;
                if let Some(&child) = children[node].get(*next_child) {
                    *next_child += 1;
                    if visited[child] {
                        continue;
                    }
                    visited[child] = true;
                    tree.parent[child] = Some(node);
                    tree.child_count[node] += 1;
                    counter += 1;
                    tree.left[child] = counter;
                    tree.preorder.push(child);
                    stack.push((child, 0));
                } else {
                    counter += 1;
                    tree.right[node] = counter;
                    stack.pop();
                }
            }
        }
        tree
    }

    /// The nested-set parent: the parent's `left`, or -1 for a root.
    pub(crate) fn nested_set_parent(&self, span: usize) -> i64 {
        self.parent[span].map_or(-1, |p| self.left[p])
    }

    /// For each span, whether one of its ancestors is marked.
    fn ancestor_marked(&self, marked: &[bool]) -> Vec<bool> {
        let mut out = vec![false; marked.len()];
        for &i in &self.preorder {
            if let Some(p) = self.parent[i] {
                out[i] = marked[p] || out[p];
            }
        }
        out
    }

    /// For each span, whether one of its descendants is marked.
    fn descendant_marked(&self, marked: &[bool]) -> Vec<bool> {
        let mut out = vec![false; marked.len()];
        for &i in self.preorder.iter().rev() {
            if let Some(p) = self.parent[i]
                && (marked[i] || out[i])
            {
                out[p] = true;
            }
        }
        out
    }

    /// For each span, whether its parent is marked.
    fn parent_marked(&self, marked: &[bool]) -> Vec<bool> {
        self.parent.iter().map(|p| p.is_some_and(|p| marked[p])).collect()
    }

    /// For each span, whether one of its children is marked.
    fn child_marked(&self, marked: &[bool]) -> Vec<bool> {
        let mut out = vec![false; marked.len()];
        for (i, p) in self.parent.iter().enumerate() {
            if let Some(p) = *p
                && marked[i]
            {
                out[p] = true;
            }
        }
        out
    }

    /// For each span, whether another span with the same parent is marked (roots have no
    /// siblings).
    fn sibling_marked(&self, marked: &[bool]) -> Vec<bool> {
        let mut marked_children = vec![0u32; marked.len()];
        for (i, p) in self.parent.iter().enumerate() {
            if let Some(p) = *p
                && marked[i]
            {
                marked_children[p] += 1;
            }
        }
        self.parent
            .iter()
            .enumerate()
            .map(|(i, p)| p.is_some_and(|p| marked_children[p] > u32::from(marked[i])))
            .collect()
    }

    /// The spans a structural operator returns for the spans `lhs` and `rhs` (sorted
    /// indices): the right-hand spans in the relation with some left-hand span; for the
    /// union forms also the left-hand spans in the relation with some right-hand span; for
    /// the negated forms the right-hand spans in the relation with none.
    pub(crate) fn relate(&self, op: SpansetOp, lhs: &[usize], rhs: &[usize]) -> Vec<usize> {
        use SpansetOp::*;
        let n = self.parent.len();
        let in_lhs = marks(n, lhs);
        let in_rhs = marks(n, rhs);
        // `rhs_test[r]`: r is in the relation with some left-hand span. `lhs_test[l]`: l is
        // in the relation with some right-hand span (union forms only).
        let (rhs_test, lhs_test) = match op {
            Child | NotChild => (self.parent_marked(&in_lhs), None),
            UnionChild => (self.parent_marked(&in_lhs), Some(self.child_marked(&in_rhs))),
            Parent | NotParent => (self.child_marked(&in_lhs), None),
            UnionParent => (self.child_marked(&in_lhs), Some(self.parent_marked(&in_rhs))),
            Descendant | NotDescendant => (self.ancestor_marked(&in_lhs), None),
            UnionDescendant => (self.ancestor_marked(&in_lhs), Some(self.descendant_marked(&in_rhs))),
            Ancestor | NotAncestor => (self.descendant_marked(&in_lhs), None),
            UnionAncestor => (self.descendant_marked(&in_lhs), Some(self.ancestor_marked(&in_rhs))),
            Sibling | NotSibling => (self.sibling_marked(&in_lhs), None),
            UnionSibling => (self.sibling_marked(&in_lhs), Some(self.sibling_marked(&in_rhs))),
            And | Or => unreachable!("not a structural operator"),
        };
        let negated = matches!(op, NotChild | NotParent | NotDescendant | NotAncestor | NotSibling);
        let mut out = vec![false; n];
        for &r in rhs {
            out[r] = rhs_test[r] != negated;
        }
        if let Some(lhs_test) = lhs_test {
            for &l in lhs {
                out[l] |= lhs_test[l];
            }
        }
        (0..n).filter(|&i| out[i]).collect()
    }
}

fn marks(n: usize, indices: &[usize]) -> Vec<bool> {
    let mut out = vec![false; n];
    for &i in indices {
        out[i] = true;
    }
    out
}

/// Facts about one trace, each computed on first use.
pub(crate) struct TraceCx<'t> {
    pub spans: &'t [Span],
    tree: OnceCell<Tree>,
    root: OnceCell<Option<usize>>,
    bounds: OnceCell<(u64, u64)>,
}

impl<'t> TraceCx<'t> {
    pub(crate) fn new(spans: &'t [Span]) -> TraceCx<'t> {
        TraceCx { spans, tree: OnceCell::new(), root: OnceCell::new(), bounds: OnceCell::new() }
    }

    pub(crate) fn tree(&self) -> &Tree {
        self.tree.get_or_init(|| Tree::build(self.spans))
    }

    /// The root span: the earliest-starting span without a parent span ID (the first in
    /// the trace among equals). `None` while the root has not arrived.
    pub(crate) fn root(&self) -> Option<usize> {
        *self.root.get_or_init(|| {
            (0..self.spans.len())
                .filter(|&i| self.spans[i].parent_span_id.is_none())
                .min_by_key(|&i| (self.spans[i].start_unix_nanos, i))
        })
    }

    /// The earliest start and the latest end of the trace's spans.
    pub(crate) fn bounds(&self) -> (u64, u64) {
        *self.bounds.get_or_init(|| {
            let start = self.spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
            let end = self.spans.iter().map(|s| s.end_unix_nanos).max().unwrap_or(0);
            (start, end)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::TraceId;

    fn span(id: u8, parent: Option<u8>) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([id; 8]), format!("s{id}"), 0, 1);
        span.parent_span_id = parent.map(|p| SpanId([p; 8]));
        span
    }

    #[test]
    fn nested_sets_follow_the_walk() {
        // 1 ─ 2 ─ 3
        //   └ 4
        let spans = [span(1, None), span(2, Some(1)), span(3, Some(2)), span(4, Some(1))];
        let tree = Tree::build(&spans);
        assert_eq!(tree.left, [1, 2, 3, 6]);
        assert_eq!(tree.right, [8, 5, 4, 7]);
        assert_eq!(tree.child_count, [2, 1, 0, 0]);
        assert_eq!(tree.nested_set_parent(0), -1);
        assert_eq!(tree.nested_set_parent(2), 2);
    }

    #[test]
    fn cycles_and_missing_parents_become_roots() {
        // 1 and 2 point at each other; 3 points at a span not in the trace; 4 at itself.
        let spans = [span(1, Some(2)), span(2, Some(1)), span(3, Some(9)), span(4, Some(4))];
        let tree = Tree::build(&spans);
        assert_eq!(tree.parent, [None, Some(0), None, None]);
        assert_eq!(tree.preorder.len(), 4);
    }

    #[test]
    fn children_of_a_shared_span_attach_by_kind() {
        // 1 is sent twice, as a client and as a server span; 2 is a server child, 3 a client.
        let mut client = span(1, None);
        client.kind = SpanKind::Client;
        let mut server = span(1, None);
        server.kind = SpanKind::Server;
        let mut server_child = span(2, Some(1));
        server_child.kind = SpanKind::Server;
        let mut client_child = span(3, Some(1));
        client_child.kind = SpanKind::Client;
        let tree = Tree::build(&[server, client, server_child, client_child]);
        assert_eq!(tree.parent, [None, None, Some(1), Some(0)]);
    }

    #[test]
    fn relations_of_a_small_tree() {
        let spans = [span(1, None), span(2, Some(1)), span(3, Some(2)), span(4, Some(1))];
        let tree = Tree::build(&spans);
        let all = [0, 1, 2, 3];
        assert_eq!(tree.relate(SpansetOp::Child, &[0], &all), [1, 3]);
        assert_eq!(tree.relate(SpansetOp::Descendant, &[0], &all), [1, 2, 3]);
        assert_eq!(tree.relate(SpansetOp::Parent, &[2], &all), [1]);
        assert_eq!(tree.relate(SpansetOp::Ancestor, &[2], &all), [0, 1]);
        assert_eq!(tree.relate(SpansetOp::Sibling, &[1], &all), [3]);
        assert_eq!(tree.relate(SpansetOp::Sibling, &all, &all), [1, 3]);
        assert_eq!(tree.relate(SpansetOp::NotChild, &[0], &all), [0, 2]);
        assert_eq!(tree.relate(SpansetOp::UnionChild, &[0, 2], &[1, 3]), [0, 1, 3]);
        assert_eq!(tree.relate(SpansetOp::UnionAncestor, &[2], &[0]), [0, 2]);
    }
}
