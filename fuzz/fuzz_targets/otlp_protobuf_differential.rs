//! Feeds arbitrary bytes to the protobuf decoders and to their reference, prost's generated
//! structs converted to the model (`sextant_codec::reference`): `decode_otlp_protobuf` (with the
//! default and with small limits) and `decode_spans` must give the same result, or the same
//! error message, for every body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_codec::{Limits, decode_otlp_protobuf, decode_spans, reference};
use sextant_fuzz::{NOW_UNIX_NANOS, assert_same_result};

fuzz_target!(|body: &[u8]| {
    let small = Limits {
        max_attributes_per_span: 2,
        max_attribute_value_bytes: 4,
        max_events_per_span: 1,
        max_links_per_span: 1,
        ..Limits::default()
    };
    for limits in [Limits::default(), small] {
        assert_same_result(
            &decode_otlp_protobuf(body, &limits, NOW_UNIX_NANOS),
            &reference::decode_otlp_protobuf(body, &limits, NOW_UNIX_NANOS),
            |decoded| &decoded.spans,
        );
    }
    assert_same_result(&decode_spans(body), &reference::decode_spans(body), |spans| spans);
});
