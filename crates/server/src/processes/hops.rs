//! Producer → consumer hops among a set of spans, stitched two ways:
//!
//! 1. **by span link**: a span (normally of kind consumer) links to a span found in the set
//!    (normally of kind producer): the consumer's trace context travelled in the message;
//! 2. **by message ID**: a consumer span and a producer span carry the same
//!    `messaging.message.id` and no link joins them (the context was lost, or the consumer's
//!    instrumentation does not record links). When several producers sent that ID (a retry),
//!    the latest one that started before the consumer is taken.
//!
//! A link whose ends are neither a consumer nor a producer (a batch job linking to its
//! inputs) is not a hop; the trace's links answer still lists it. The queue wait is the
//! consumer's start minus the producer's end (see the module above).

use std::collections::{HashMap, HashSet};

use sextant_model::{Span, SpanId, SpanKind, TraceId, find_attribute};

pub const MESSAGE_ID_KEY: &str = "messaging.message.id";
pub const MESSAGING_SYSTEM_KEY: &str = "messaging.system";
pub const DESTINATION_KEY: &str = "messaging.destination.name";

/// How a hop was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Link,
    MessageId,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Link => "link",
            Via::MessageId => "message_id",
        }
    }
}

/// One producer → consumer hop, by index into the spans it was found among.
#[derive(Clone, Debug, PartialEq)]
pub struct Hop {
    pub producer: usize,
    pub consumer: usize,
    pub via: Via,
    pub message_id_opt: Option<String>,
    /// Consumer start minus producer end.
    pub queue_wait_nanos: i64,
}

/// The string value of `key` on the span (or its resource).
pub fn string_attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    find_attribute(&span.attributes, key).or_else(|| find_attribute(&span.resource.attributes, key))?.as_str()
}

pub fn message_id(span: &Span) -> Option<&str> {
    string_attribute(span, MESSAGE_ID_KEY).filter(|id| !id.is_empty())
}

/// `later - earlier` as a signed number of nanoseconds.
pub fn signed_diff(later: u64, earlier: u64) -> i64 {
    if later >= earlier {
        i64::try_from(later - earlier).unwrap_or(i64::MAX)
    } else {
        i64::try_from(earlier - later).map(|d| -d).unwrap_or(i64::MIN)
    }
}

fn hop(spans: &[&Span], producer: usize, consumer: usize, via: Via) -> Hop {
    let message_id_opt = message_id(spans[consumer]).or_else(|| message_id(spans[producer])).map(str::to_string);
    Hop {
        producer,
        consumer,
        via,
        message_id_opt,
        queue_wait_nanos: signed_diff(spans[consumer].start_unix_nanos, spans[producer].end_unix_nanos),
    }
}

/// Every hop among `spans`, ordered by consumer start, then producer and consumer position.
pub fn find_hops(spans: &[&Span]) -> Vec<Hop> {
    let by_identity: HashMap<(TraceId, SpanId), usize> =
        spans.iter().enumerate().map(|(i, s)| ((s.trace_id, s.span_id), i)).collect();
    let mut producers_by_message: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        if span.kind == SpanKind::Producer
            && let Some(id) = message_id(span)
        {
            producers_by_message.entry(id).or_default().push(i);
        }
    }
    let mut hops = Vec::new();
    let mut linked: HashSet<(usize, usize)> = HashSet::new();
    for (i, span) in spans.iter().enumerate() {
        for link in &span.links {
            let Some(&target) = by_identity.get(&(link.trace_id, link.span_id)) else { continue };
            let is_messaging = span.kind == SpanKind::Consumer || spans[target].kind == SpanKind::Producer;
            if target != i && is_messaging && linked.insert((target, i)) {
                hops.push(hop(spans, target, i, Via::Link));
            }
        }
    }
    let consumers_linked: HashSet<usize> = linked.iter().map(|&(_, consumer)| consumer).collect();
    for (i, span) in spans.iter().enumerate() {
        if span.kind != SpanKind::Consumer || consumers_linked.contains(&i) {
            continue;
        }
        let Some(candidates) = message_id(span).and_then(|id| producers_by_message.get(id)) else { continue };
        let before = candidates.iter().filter(|&&p| spans[p].start_unix_nanos <= span.start_unix_nanos);
        let chosen = before.max_by_key(|&&p| spans[p].start_unix_nanos).or_else(|| candidates.first());
        if let Some(&producer) = chosen {
            hops.push(hop(spans, producer, i, Via::MessageId));
        }
    }
    hops.sort_by_key(|h| (spans[h.consumer].start_unix_nanos, h.producer, h.consumer));
    hops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::testing::*;

    #[test]
    fn hops_by_link_and_by_message_id_with_queue_wait_from_the_producer_end() {
        let send = producer(span(1, 1, "order", 100, 150), "m1");
        let linked = consumer(span(2, 2, "inventory", 170, 200), "m1", Some(&send));
        let unlinked = consumer(span(3, 3, "order", 210, 260), "m1", None);
        let unrelated = consumer(span(4, 4, "mail", 220, 230), "m2", None);
        let spans = [&send, &linked, &unlinked, &unrelated];
        let hops = find_hops(&spans);
        assert_eq!(hops.len(), 2, "{hops:?}");
        assert_eq!((hops[0].producer, hops[0].consumer, hops[0].via), (0, 1, Via::Link));
        assert_eq!(hops[0].queue_wait_nanos, 20);
        assert_eq!(hops[0].message_id_opt.as_deref(), Some("m1"));
        assert_eq!((hops[1].producer, hops[1].consumer, hops[1].via), (0, 2, Via::MessageId));
        assert_eq!(hops[1].queue_wait_nanos, 60);
    }

    #[test]
    fn a_link_between_plain_spans_is_not_a_hop() {
        let a = span(1, 1, "batch", 0, 10);
        let mut b = span(2, 2, "batch", 20, 30);
        b.links = consumer(span(2, 2, "x", 0, 0), "m", Some(&a)).links;
        assert!(find_hops(&[&a, &b]).is_empty());
    }

    #[test]
    fn a_retried_message_pairs_with_the_latest_send_before_the_consumer() {
        let first = producer(span(1, 1, "order", 100, 110), "m1");
        let retry = producer(span(1, 2, "order", 200, 210), "m1");
        let consume = consumer(span(2, 3, "inventory", 250, 260), "m1", None);
        let hops = find_hops(&[&first, &retry, &consume]);
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0].producer, 1);
        assert_eq!(hops[0].queue_wait_nanos, 40);
    }

    #[test]
    fn negative_queue_wait_when_the_consumer_clock_is_behind() {
        assert_eq!(signed_diff(5, 9), -4);
        assert_eq!(signed_diff(9, 5), 4);
    }
}
