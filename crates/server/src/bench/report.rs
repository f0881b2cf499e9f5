//! The results of a benchmark run: a table for people, JSON for files and comparisons.
//!
//! JSON field names carry their units (`_bytes`, `_seconds`, `_ms`, `_per_second`); a part
//! that was not measured (`server` against `--endpoint`, `replay` without `--replay`) is `null`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::ingest::IngestOutcome;

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub benchmark: &'static str,
    pub sextant_version: &'static str,
    pub parameters: Parameters,
    pub machine: Machine,
    pub workload: WorkloadSummary,
    pub ingest: IngestSummary,
    pub server: Option<ServerSummary>,
    pub replay: Option<ReplaySummary>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Parameters {
    pub seed: u64,
    pub traces: u64,
    pub spans_per_trace: usize,
    pub days: u64,
    pub batch_spans: usize,
    pub concurrency: usize,
    /// `spawned` (the benchmark ran the server) or the `--endpoint` address.
    pub target: String,
    /// `SEXTANT_*` settings given to the spawned server beyond the benchmark's own.
    pub server_settings: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub os: &'static str,
    pub arch: &'static str,
}

impl Machine {
    pub fn this() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadSummary {
    pub spans: u64,
    pub requests: usize,
    pub encoded_bytes: u64,
    pub generate_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct IngestSummary {
    pub requests: u64,
    pub spans_sent: u64,
    pub spans_acknowledged: u64,
    pub spans_rejected: u64,
    pub failed_requests: u64,
    pub retries: u64,
    pub seconds: f64,
    pub spans_per_second: f64,
    pub export_latency_p50_ms: Option<f64>,
    pub export_latency_p99_ms: Option<f64>,
    pub first_error: Option<String>,
    /// CPU time of the benchmark process while sending.
    pub client_cpu_seconds: Option<f64>,
}

impl From<&IngestOutcome> for IngestSummary {
    fn from(outcome: &IngestOutcome) -> IngestSummary {
        let ms = |q| outcome.latency_quantile(q).map(|d| d.as_secs_f64() * 1e3);
        IngestSummary {
            requests: outcome.requests,
            spans_sent: outcome.spans_sent,
            spans_acknowledged: outcome.spans_acknowledged,
            spans_rejected: outcome.spans_rejected,
            failed_requests: outcome.failed_requests,
            retries: outcome.retries,
            seconds: outcome.elapsed.as_secs_f64(),
            spans_per_second: outcome.spans_per_second(),
            export_latency_p50_ms: ms(0.5),
            export_latency_p99_ms: ms(0.99),
            first_error: outcome.first_error.clone(),
            client_cpu_seconds: outcome.client_cpu_seconds,
        }
    }
}

/// The spawned server, measured after its graceful stop.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSummary {
    /// Sum of file sizes under `<data-dir>/store/blocks`.
    pub block_bytes: u64,
    /// Sum of file sizes under `<data-dir>/wal`.
    pub wal_bytes: u64,
    /// `block_bytes + wal_bytes`.
    pub bytes_on_disk: u64,
    /// `bytes_on_disk / spans_acknowledged`.
    pub bytes_per_span: f64,
    /// `VmHWM` just before the stop.
    pub peak_rss_bytes: u64,
    /// CPU time of the server from the first send to the last answer.
    pub ingest_cpu_seconds: f64,
    /// From SIGTERM to exit (the head is flushed to a block meanwhile).
    pub stop_seconds: f64,
}

impl ServerSummary {
    pub fn new(block_bytes: u64, wal_bytes: u64, spans: u64) -> Self {
        let bytes_on_disk = block_bytes + wal_bytes;
        ServerSummary {
            block_bytes,
            wal_bytes,
            bytes_on_disk,
            bytes_per_span: bytes_on_disk as f64 / spans.max(1) as f64,
            peak_rss_bytes: 0,
            ingest_cpu_seconds: 0.0,
            stop_seconds: 0.0,
        }
    }
}

/// A restart after SIGKILL with every span of a run still only in the WAL.
#[derive(Clone, Debug, Serialize)]
pub struct ReplaySummary {
    /// `sextant_wal_replayed_spans_total` after the restart.
    pub spans_replayed: u64,
    pub wal_bytes: u64,
    /// From spawning the process to the query API's first answer.
    pub seconds: f64,
    pub spans_per_second: f64,
    /// CPU time of the restarted server until it answered.
    pub cpu_seconds: f64,
    /// `VmHWM` of the restarted server once it answers.
    pub peak_rss_bytes: u64,
    /// Settings of both replay servers beyond those of the ingest run.
    pub server_settings: BTreeMap<String, String>,
}

/// `1234567` → `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

impl Report {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = Vec::new();
        let p = &self.parameters;
        rows.push(("sextant", self.sextant_version.to_string()));
        rows.push((
            "workload",
            format!(
                "{} traces × {} spans, seed {}, {} days, {} spans/request",
                thousands(p.traces),
                p.spans_per_trace,
                p.seed,
                p.days,
                p.batch_spans
            ),
        ));
        rows.push((
            "target",
            format!("{}, {} requests in flight, {} CPUs", p.target, p.concurrency, self.machine.cpus),
        ));
        for (name, value) in &p.server_settings {
            rows.push(("server setting", format!("{name}={value}")));
        }
        let i = &self.ingest;
        rows.push(("spans sent", thousands(i.spans_sent)));
        rows.push(("acknowledged", thousands(i.spans_acknowledged)));
        rows.push(("rejected", thousands(i.spans_rejected)));
        rows.push(("failed requests", thousands(i.failed_requests)));
        rows.push(("retries", thousands(i.retries)));
        rows.push(("seconds", format!("{:.2}", i.seconds)));
        rows.push(("spans/s", thousands(i.spans_per_second.round() as u64)));
        if let (Some(p50), Some(p99)) = (i.export_latency_p50_ms, i.export_latency_p99_ms) {
            rows.push(("export latency", format!("p50 {p50:.1} ms, p99 {p99:.1} ms")));
        }
        let server_cpu = self.server.as_ref().map(|s| format!("server {:.1} s, ", s.ingest_cpu_seconds));
        if let Some(client_cpu) = i.client_cpu_seconds {
            rows.push((
                "CPU while sending",
                format!(
                    "{}load generator {client_cpu:.1} s (of {:.1} s × {} CPUs)",
                    server_cpu.unwrap_or_default(),
                    i.seconds,
                    self.machine.cpus
                ),
            ));
        }
        if let Some(error) = &i.first_error {
            rows.push(("first error", error.clone()));
        }
        if let Some(s) = &self.server {
            rows.push((
                "bytes on disk",
                format!("{} ({} blocks, {} WAL)", thousands(s.bytes_on_disk), mib(s.block_bytes), mib(s.wal_bytes)),
            ));
            rows.push(("bytes/span", format!("{:.1}", s.bytes_per_span)));
            rows.push(("peak RSS", mib(s.peak_rss_bytes)));
            rows.push(("stop (flush)", format!("{:.2} s", s.stop_seconds)));
        }
        if let Some(r) = &self.replay {
            rows.push((
                "replay",
                format!(
                    "{} spans ({} of WAL) in {:.2} s, server CPU {:.1} s",
                    thousands(r.spans_replayed),
                    mib(r.wal_bytes),
                    r.seconds,
                    r.cpu_seconds
                ),
            ));
            rows.push(("replay spans/s", thousands(r.spans_per_second.round() as u64)));
            rows.push(("peak RSS after replay", mib(r.peak_rss_bytes)));
        }
        let width = rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (label, value) in rows {
            let _ = writeln!(out, "{label:<width$}  {value}");
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            benchmark: "ingest",
            sextant_version: "0.0.0",
            parameters: Parameters {
                seed: 1,
                traces: 1000,
                spans_per_trace: 10,
                days: 10,
                batch_spans: 1000,
                concurrency: 8,
                target: "spawned".to_string(),
                server_settings: BTreeMap::new(),
            },
            machine: Machine { cpus: 2, os: "linux", arch: "x86_64" },
            workload: WorkloadSummary { spans: 10_000, requests: 10, encoded_bytes: 4_000_000, generate_seconds: 0.1 },
            ingest: IngestSummary {
                requests: 10,
                spans_sent: 10_000,
                spans_acknowledged: 9_990,
                spans_rejected: 10,
                failed_requests: 0,
                retries: 3,
                seconds: 0.5,
                spans_per_second: 19_980.0,
                export_latency_p50_ms: Some(1.5),
                export_latency_p99_ms: Some(9.0),
                first_error: None,
                client_cpu_seconds: Some(0.25),
            },
            server: Some(ServerSummary {
                peak_rss_bytes: 50 * 1024 * 1024,
                ingest_cpu_seconds: 0.75,
                ..ServerSummary::new(300_000, 9_690, 9_990)
            }),
            replay: None,
        }
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn json_and_table_carry_the_measures() {
        let report = report();
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ingest"]["spans_acknowledged"], 9_990);
        assert_eq!(json["server"]["bytes_on_disk"], 309_690);
        assert_eq!(json["server"]["bytes_per_span"], 31.0);
        assert_eq!(json["replay"], serde_json::Value::Null);
        assert_eq!(json["parameters"]["concurrency"], 8);
        let table = report.table();
        for expected in ["19,980", "9,990", "31.0", "50.0 MiB", "p99 9.0 ms", "server 0.8 s, load generator 0.2 s"] {
            assert!(table.contains(expected), "{expected} missing from:\n{table}");
        }
    }
}
