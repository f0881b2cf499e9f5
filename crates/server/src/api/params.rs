//! Parsing of query parameters shared by the query APIs: Go-style durations, timestamps.

use std::time::UNIX_EPOCH;

/// Parses a Go `time.ParseDuration` string (`150ms`, `1.5s`, `1h30m`, `2us`, `300ns`) into
/// nanoseconds. A bare number is refused: the unit is required, as in Go.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let err = || format!("{text:?} is not a duration like 150ms, 1.5s or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
        if number_len == 0 {
            return Err(err());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| err())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if total > u64::MAX as f64 {
        return Err(err());
    }
    Ok(total.round() as u64)
}

/// Parses a timestamp given as unix nanoseconds or RFC 3339 (`2026-11-22T10:00:00Z`).
pub fn parse_timestamp(text: &str) -> Result<u64, String> {
    if let Ok(nanos) = text.trim().parse::<u64>() {
        return Ok(nanos);
    }
    let time = humantime::parse_rfc3339_weak(text.trim())
        .map_err(|_| format!("{text:?} is neither unix nanoseconds nor an RFC 3339 time like 2026-11-22T10:00:00Z"))?;
    let nanos = time.duration_since(UNIX_EPOCH).map_err(|_| format!("{text:?} is before 1970"))?.as_nanos();
    u64::try_from(nanos).map_err(|_| format!("{text:?} is after 2554, beyond unix nanoseconds in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("150ms"), Ok(150_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("2us"), Ok(2_000));
        assert_eq!(parse_go_duration("2µs"), Ok(2_000));
        assert_eq!(parse_go_duration("300ns"), Ok(300));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(parse_go_duration("150").is_err(), "unit required");
        assert!(parse_go_duration("ms").is_err());
        assert!(parse_go_duration("5 parsecs").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn timestamps_in_nanos_or_rfc3339() {
        assert_eq!(parse_timestamp("1700000000000000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Ok(1_000_000_000));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000_500_000_000));
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("9999-01-01T00:00:00Z").is_err(), "beyond u64 nanoseconds");
    }
}
