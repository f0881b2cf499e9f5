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

/// The tests of this file measure the process's allocations, so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn head_accounting_matches_allocated_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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

/// Freeing a part skips the elements of attribute lists that own nothing: it must still free
/// everything that attributes do own (long strings, bytes, arrays), after a flush and after a
/// failed flush put the frozen part back.
#[test]
fn freeing_the_head_frees_every_allocation() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let resource =
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "cart")], ..Default::default() });
    let owning = |mut spans: Vec<Span>| {
        // Every key and value held inline, but in one span of every other trace, where an
        // attribute owns heap memory.
        for span in &mut spans {
            span.attributes[0].key = "status_code".into();
        }
        for (i, span) in spans.iter_mut().enumerate().filter(|(i, _)| i % 20 == 3) {
            span.attributes[5].value = match i % 3 {
                0 => AnyValue::String("a string value too long to be held inline, on the heap".into()),
                1 => AnyValue::Bytes(vec![7; 200]),
                _ => AnyValue::Array(vec![AnyValue::String("x".repeat(100).into()); 3]),
            };
        }
        spans
    };
    let before = ALLOCATED.load(Ordering::Relaxed);
    let mut head = Head::default();
    for first_trace in (0..2_000).step_by(100) {
        head.insert(owning(request(first_trace, &resource)));
    }
    drop(head.freeze().unwrap());
    for first_trace in (2_000..4_000).step_by(100) {
        head.insert(owning(request(first_trace, &resource)));
    }
    head.thaw();
    let frozen = head.freeze().unwrap();
    for first_trace in (4_000..6_000).step_by(100) {
        head.insert(owning(request(first_trace, &resource)));
    }
    assert_eq!(head.num_spans(), 60_000);
    drop(frozen);
    drop(head.release_frozen());
    drop(head);
    let left = ALLOCATED.load(Ordering::Relaxed) as isize - before as isize;
    // A leak here would be the owned values of 3,000 spans, at least 500 KB. The test
    // harness allocates a few KB meanwhile (it reports the other test of this file).
    assert!(left.abs() < 64 * 1024, "{left} bytes still allocated after freeing the head");
}
