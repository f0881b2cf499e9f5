//! The ground truth: what the simulation injected, as JSON lines (`--ground-truth FILE`), so
//! that analyzers can be checked for exactness against it.
//!
//! One object per line, told apart by `type`; IDs are lowercase hex, times unix nanoseconds,
//! regions `cloud.region` names, levels `db.consistency_level` values:
//!
//! ```text
//! {"type":"scenario","scenario":"replication-lag","trace_index":0,"at_unix_nanos":…}
//! {"type":"stale_read","trace_id","span_id","key","region","level","returned_version",
//!  "newer_version","write_trace_id","write_span_id","write_region","write_level",
//!  "read_unix_nanos","staleness_nanos"}
//! {"type":"replication","key","version","source_region","replica_region","write_trace_id",
//!  "write_span_id","apply_span_id","acknowledged_unix_nanos","applied_unix_nanos","delay_nanos"}
//! {"type":"conflict","key","region","winner_version","loser_versions":[…],"apply_trace_id",
//!  "apply_span_id"}
//! {"type":"process","id":"cart-…"|"order-…","trace_ids":[…]}   (in the order of the steps)
//! ```
//!
//! A stale read is a read that returned `returned_version` while `newer_version` (the highest
//! acknowledged before the read started) had been acknowledged; `staleness_nanos` runs from
//! the acknowledgement of the first write it missed to the start of the read. A replication
//! apply lives in the trace of its write, so it carries no trace ID of its own.

use serde::Serialize;

use super::scenario::Scenario;
use super::store::Level;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Scenario {
        scenario: Scenario,
        /// Index of the first trace generated under it.
        trace_index: u64,
        at_unix_nanos: u64,
    },
    StaleRead {
        trace_id: String,
        span_id: String,
        key: String,
        region: &'static str,
        level: Level,
        returned_version: u64,
        newer_version: u64,
        write_trace_id: String,
        write_span_id: String,
        write_region: &'static str,
        write_level: Level,
        read_unix_nanos: u64,
        staleness_nanos: u64,
    },
    Replication {
        key: String,
        version: u64,
        source_region: &'static str,
        replica_region: &'static str,
        write_trace_id: String,
        write_span_id: String,
        apply_span_id: String,
        acknowledged_unix_nanos: u64,
        applied_unix_nanos: u64,
        delay_nanos: u64,
    },
    Conflict {
        key: String,
        region: &'static str,
        winner_version: u64,
        loser_versions: Vec<u64>,
        apply_trace_id: String,
        apply_span_id: String,
    },
    Process {
        id: String,
        trace_ids: Vec<String>,
    },
}

impl Record {
    pub fn to_json_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("records serialize");
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_json_lines() {
        let record = Record::Process { id: "cart-7".into(), trace_ids: vec!["ab".into()] };
        assert_eq!(record.to_json_line(), "{\"type\":\"process\",\"id\":\"cart-7\",\"trace_ids\":[\"ab\"]}\n");
        let record = Record::Scenario { scenario: Scenario::ReplicationLag, trace_index: 3, at_unix_nanos: 9 };
        assert_eq!(
            record.to_json_line(),
            "{\"type\":\"scenario\",\"scenario\":\"replication-lag\",\"trace_index\":3,\"at_unix_nanos\":9}\n"
        );
    }
}
