//! Feeds arbitrary bytes to `decode_otlp_json`: it must not panic, and what it accepts must hold the
//! model invariants and the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_codec::{Limits, decode_otlp_json};
use sextant_fuzz::{NOW_UNIX_NANOS, check_decoded};

fuzz_target!(|body: &[u8]| {
    let limits = Limits::default();
    if let Ok(decoded) = decode_otlp_json(body, &limits, NOW_UNIX_NANOS) {
        check_decoded(&decoded, &limits);
    }
});
