//! Feeds arbitrary bytes to `decode_otlp_protobuf`: it must not panic, what it accepts must hold the
//! model invariants and the limits, and a batch it calls unchanged must be what the body replays as
//! from the WAL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_codec::{Limits, decode_otlp_protobuf};
use sextant_fuzz::{NOW_UNIX_NANOS, check_body_as_wal_record, check_decoded};

fuzz_target!(|body: &[u8]| {
    let limits = Limits::default();
    if let Ok(decoded) = decode_otlp_protobuf(body, &limits, NOW_UNIX_NANOS) {
        check_decoded(&decoded, &limits);
        check_body_as_wal_record(body, &decoded);
    }
});
