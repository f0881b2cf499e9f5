//! The head's memory accounting against what the spans really allocate, measured with a
//! counting allocator: the head's limits only bound memory if its numbers are right.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sextant_model::{AnyValue, KeyValue, Resource, Scope, Span, SpanId, TraceId};
use sextant_storage::head::Head;

/// Bytes currently allocated (as requested).
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Requests of 100 traces × 10 spans, each span with 11 attributes, as a receiver builds them:
/// resource and scope shared by every span of the request.
fn request(first_trace: u32, resource: &Arc<Resource>) -> Vec<Span> {
    let scope = Arc::new(Scope { name: "instrumentation".into(), ..Default::default() });
    let mut spans = Vec::with_capacity(1000);
    for t in first_trace..first_trace + 100 {
        let mut trace = [0u8; 16];
        trace[..4].copy_from_slice(&(t + 1).to_be_bytes());
        for s in 0..10u8 {
            let start = 1_700_000_000_000_000_000 + t as u64 * 1_000_000 + s as u64;
            let mut span =
                Span::new(TraceId(trace), SpanId([s + 1; 8]), format!("operation-{}", t % 15), start, start + 500);
            span.resource = resource.clone();
            span.scope = scope.clone();
            span.attributes = (0..11)
                .map(|i| match i {
                    0 => KeyValue { key: "http.response.status_code".into(), value: AnyValue::Int(200) },
                    _ => KeyValue::string(
                        format!("attribute.key.{}", (t as usize * 7 + i) % 97),
                        format!("value-{}", (t * 13 + i as u32) % 1000),
                    ),
                })
                .collect();
            spans.push(span);
        }
    }
    spans
}

#[test]
fn head_accounting_matches_allocated_bytes() {
    let resource =
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "cart")], ..Default::default() });
    let mut head = Head::default();
    let before = ALLOCATED.load(Ordering::Relaxed);
    for first_trace in (0..20_000).step_by(100) {
        head.insert(request(first_trace, &resource));
    }
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    let accounted = head.size_bytes();
    assert_eq!(head.num_spans(), 200_000);
    let ratio = accounted as f64 / allocated as f64;
    eprintln!(
        "{:.0} bytes per span accounted, {:.0} allocated",
        accounted as f64 / 200_000.0,
        allocated as f64 / 200_000.0
    );
    assert!(
        (0.95..=1.15).contains(&ratio),
        "accounted {accounted} bytes for {allocated} allocated ({:.0} vs {:.0} per span)",
        accounted as f64 / 200_000.0,
        allocated as f64 / 200_000.0
    );
}
