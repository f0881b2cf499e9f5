//! Feeds arbitrary UTF-8 to the TraceQL parser: it must not panic, and a query it accepts must
//! print (canonical form) as text that parses back to the same tree and prints the same again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    if let Ok(parsed) = sextant_traceql::parse(query) {
        let printed = parsed.to_string();
        match sextant_traceql::parse(&printed) {
            Ok(reparsed) => {
                assert_eq!(reparsed, parsed, "{query:?} printed as {printed:?}");
                assert_eq!(reparsed.to_string(), printed);
            }
            Err(error) => panic!("{query:?} printed as {printed:?}, which does not parse: {}", error.render(&printed)),
        }
    }
});
