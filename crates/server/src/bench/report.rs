//! The results of a benchmark run: a table for people, JSON for files and comparisons.
//!
//! JSON field names carry their units (`_bytes`, `_seconds`, `_ms`, `_per_second`); a part
//! that was not measured (`server` against `--endpoint`, `replay` without `--replay`) is `null`.
//!
//! [`Report`] is `bench ingest`'s, [`QueryReport`] `bench query`'s; the query report carries
//! the published figures of each query ([`QueryKind::reference`]) beside the measures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::ingest::{IngestOutcome, Load};
use super::workload::Shape;

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
    pub shape: Shape,
    pub seed: u64,
    pub traces: u64,
    pub spans_per_trace: usize,
    pub days: u64,
    pub batch_spans: usize,
    pub concurrency: usize,
    /// HTTP/2 connections the requests in flight shared.
    pub connections: usize,
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

/// The value below which `quantile` (0 to 1) of the `sorted` values lie, by nearest rank;
/// `None` when there are none.
pub fn quantile(sorted: &[Duration], quantile: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    Some(sorted[((last as f64) * quantile).round() as usize])
}

/// `label  value` lines, the labels padded to one width.
fn label_lines(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in rows {
        let _ = writeln!(out, "{label:<width$}  {value}");
    }
    out
}

/// Pretty JSON with a final newline.
fn write_json_file(value: &impl Serialize, path: &Path) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
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
                "{} traces × {} spans ({}), seed {}, {} days, {} spans/request",
                thousands(p.traces),
                p.spans_per_trace,
                p.shape,
                p.seed,
                p.days,
                p.batch_spans
            ),
        ));
        let load = Load { concurrency: p.concurrency as u64, connections: p.connections as u64 };
        rows.push(("target", format!("{}, {load}, {} CPUs", p.target, self.machine.cpus)));
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
        label_lines(&rows)
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        write_json_file(self, path)
    }
}

/// The queries of `bench query`, in the order they run and are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    Services,
    Operations,
    TraceById,
    TraceByIdTimeRange,
    SearchService,
    SearchOperation,
    SearchDuration,
    SearchTimestamp,
    SearchAttribute,
    SearchAll,
    /// TraceQL through Tempo's `/api/search` (no published figure or target).
    TraceqlService,
    TraceqlAttribute,
    TraceqlNameDuration,
    TraceqlStructural,
    TraceqlCount,
}

/// A target of DESIGN.md: the given quantile of the latency at most `ms`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Target {
    pub quantile: &'static str,
    pub ms: f64,
}

/// What a query is compared with.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reference {
    /// Published average of 3 runs, Jaeger v2 + ClickHouse 26, 1M traces, 4 cores.
    pub jaeger_clickhouse_ms: Option<f64>,
    /// The same schema and query in ClickHouse in-process (chdb) on the 2-core benchmark
    /// machine, 1M traces (DESIGN.md); p50 where a p99 is given too.
    pub chdb_ms: Option<f64>,
    pub chdb_p99_ms: Option<f64>,
    pub target: Option<Target>,
}

const TRACE_BY_ID_TARGET: Target = Target { quantile: "p99", ms: 5.0 };
const SEARCH_TARGET: Target = Target { quantile: "p50", ms: 20.0 };
const ATTRIBUTE_SEARCH_TARGET: Target = Target { quantile: "p50", ms: 50.0 };

impl QueryKind {
    pub const ALL: [QueryKind; 15] = [
        QueryKind::Services,
        QueryKind::Operations,
        QueryKind::TraceById,
        QueryKind::TraceByIdTimeRange,
        QueryKind::SearchService,
        QueryKind::SearchOperation,
        QueryKind::SearchDuration,
        QueryKind::SearchTimestamp,
        QueryKind::SearchAttribute,
        QueryKind::SearchAll,
        QueryKind::TraceqlService,
        QueryKind::TraceqlAttribute,
        QueryKind::TraceqlNameDuration,
        QueryKind::TraceqlStructural,
        QueryKind::TraceqlCount,
    ];

    pub fn title(self) -> &'static str {
        match self {
            QueryKind::Services => "services",
            QueryKind::Operations => "operations of a service",
            QueryKind::TraceById => "trace by ID",
            QueryKind::TraceByIdTimeRange => "trace by ID + time range",
            QueryKind::SearchService => "search by service",
            QueryKind::SearchOperation => "search by operation",
            QueryKind::SearchDuration => "search by duration range",
            QueryKind::SearchTimestamp => "search by timestamp range",
            QueryKind::SearchAttribute => "search by attribute",
            QueryKind::SearchAll => "search by all filters",
            QueryKind::TraceqlService => "TraceQL: service",
            QueryKind::TraceqlAttribute => "TraceQL: attribute",
            QueryKind::TraceqlNameDuration => "TraceQL: name && duration",
            QueryKind::TraceqlStructural => "TraceQL: structural >>",
            QueryKind::TraceqlCount => "TraceQL: | count()",
        }
    }

    pub fn is_search(self) -> bool {
        !matches!(
            self,
            QueryKind::Services | QueryKind::Operations | QueryKind::TraceById | QueryKind::TraceByIdTimeRange
        )
    }

    /// The published figures (DESIGN.md, "Benchmark workload and targets"; the time-range
    /// figure of trace by ID from the same Jaeger benchmark) and the target.
    pub fn reference(self) -> Reference {
        let r = |jaeger: f64, chdb: Option<f64>, target: Option<Target>| Reference {
            jaeger_clickhouse_ms: Some(jaeger),
            chdb_ms: chdb,
            chdb_p99_ms: None,
            target,
        };
        match self {
            QueryKind::Services => r(3.0, None, None),
            QueryKind::Operations => r(4.0, None, None),
            QueryKind::TraceById => {
                Reference { chdb_p99_ms: Some(169.0), ..r(101.0, Some(99.0), Some(TRACE_BY_ID_TARGET)) }
            }
            QueryKind::TraceByIdTimeRange => r(106.0, None, Some(TRACE_BY_ID_TARGET)),
            QueryKind::SearchService => r(37.0, Some(35.0), Some(SEARCH_TARGET)),
            QueryKind::SearchOperation => r(38.0, Some(36.0), Some(SEARCH_TARGET)),
            QueryKind::SearchDuration => r(43.0, Some(27.0), Some(SEARCH_TARGET)),
            QueryKind::SearchTimestamp => r(47.0, Some(30.0), Some(SEARCH_TARGET)),
            QueryKind::SearchAttribute => r(1769.0, Some(3212.0), Some(ATTRIBUTE_SEARCH_TARGET)),
            QueryKind::SearchAll => r(139.0, Some(13.0), Some(SEARCH_TARGET)),
            QueryKind::TraceqlService
            | QueryKind::TraceqlAttribute
            | QueryKind::TraceqlNameDuration
            | QueryKind::TraceqlStructural
            | QueryKind::TraceqlCount => Reference::default(),
        }
    }
}

/// The trace by ID API has no time range: the "+ time range" query is the same request.
pub const NO_TIME_RANGE_NOTE: &str =
    "the native API has no time range on trace by ID: the same request as trace by ID, on other trace IDs";

#[derive(Clone, Debug, Serialize)]
pub struct QueryReport {
    pub benchmark: &'static str,
    pub sextant_version: &'static str,
    pub parameters: QueryParameters,
    pub machine: Machine,
    /// `null` with `--endpoint-query` (nothing is sent).
    pub workload: Option<WorkloadSummary>,
    /// `null` with `--endpoint-query`.
    pub load: Option<LoadSummary>,
    /// Before the first query.
    pub data: DataSummary,
    /// After the last answer (a flush or a compaction meanwhile shows here).
    pub data_after: DataSummary,
    /// `null` with `--endpoint-query`.
    pub server: Option<QueryServerSummary>,
    pub queries: Vec<QueryResult>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueryParameters {
    /// The workload, load and target, as for ingest (same JSON keys, flattened).
    #[serde(flatten)]
    pub run: Parameters,
    /// Timed runs of each query other than trace by ID (after one warm-up).
    pub repetitions: u64,
    /// Trace IDs fetched once each by each trace-by-ID query (after one warm-up).
    pub trace_ids: u64,
    /// `limit` of every search.
    pub limit: u64,
}

/// How the spawned server was loaded before the queries.
#[derive(Clone, Debug, Serialize)]
pub struct LoadSummary {
    pub ingest: IngestSummary,
    /// From SIGTERM to exit (the head flushed to a block); `null` with `--head`.
    pub stop_seconds: Option<f64>,
    /// From spawning the server again on the same directory to its first answer; `null`
    /// with `--head`.
    pub restart_seconds: Option<f64>,
    /// From the restart until compaction had nothing left to do (rounds back to back);
    /// `null` with `--head`.
    pub compaction_seconds: Option<f64>,
}

/// Where the queried spans were, from the server's `/metrics` before the queries.
#[derive(Clone, Debug, Serialize)]
pub struct DataSummary {
    /// `blocks` (after a stop and a restart), `head` (`--head`) or `endpoint`.
    pub queried: &'static str,
    /// `sextant_blocks`.
    pub blocks: Option<u64>,
    /// `sextant_head_spans`.
    pub head_spans: Option<u64>,
    /// `sextant_block_bytes`.
    pub block_bytes: Option<u64>,
}

/// The spawned server while it answered the queries.
#[derive(Clone, Debug, Serialize)]
pub struct QueryServerSummary {
    /// `VmRSS` just before the first query.
    pub rss_before_queries_bytes: u64,
    /// `VmHWM` after the last query.
    pub peak_rss_bytes: u64,
    /// `queries` when the peak was reset before the first query, `start` when it could not
    /// be (the peak then includes the load or the opening of the data directory).
    pub peak_rss_since: &'static str,
    /// CPU time of the server from the first query to the last answer.
    pub cpu_seconds: f64,
    /// Wall time from the first query to the last answer.
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueryResult {
    pub query: QueryKind,
    pub title: &'static str,
    /// One request as sent (for trace by ID, the first trace).
    pub request: String,
    /// Timed requests; the warm-up is not among them.
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Every timed request's latency, in the order they were sent.
    pub latencies_ms: Vec<f64>,
    /// Services and operations: entries of the last answer; trace by ID: answers that held
    /// every span of their trace; searches: traces in the last answer.
    pub results: u64,
    /// Searches: traces of the workload that match; an answer must hold the newest `limit`.
    pub matching_traces: Option<u64>,
    /// Answers (the warm-up's included) that differ from what the workload implies.
    pub failures: u64,
    pub first_failure: Option<String>,
    pub target: Option<Target>,
    pub meets_target: Option<bool>,
    pub jaeger_clickhouse_ms: Option<f64>,
    pub chdb_ms: Option<f64>,
    pub chdb_p99_ms: Option<f64>,
    pub note: Option<&'static str>,
}

impl QueryResult {
    /// The result of `kind` from the `latencies` of its timed requests, with its reference.
    pub fn new(kind: QueryKind, request: String, mut latencies: Vec<Duration>, results: u64) -> QueryResult {
        let latencies_ms = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        latencies.sort_unstable();
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let mean_ms = ms(Some(latencies.iter().sum::<Duration>())) / latencies.len().max(1) as f64;
        let reference = kind.reference();
        let (p50_ms, p99_ms) = (ms(quantile(&latencies, 0.5)), ms(quantile(&latencies, 0.99)));
        let meets_target = reference.target.map(|t| if t.quantile == "p99" { p99_ms <= t.ms } else { p50_ms <= t.ms });
        QueryResult {
            query: kind,
            title: kind.title(),
            request,
            samples: latencies.len(),
            p50_ms,
            p99_ms,
            mean_ms,
            max_ms: ms(latencies.last().copied()),
            latencies_ms,
            results,
            matching_traces: None,
            failures: 0,
            first_failure: None,
            target: reference.target,
            meets_target,
            jaeger_clickhouse_ms: reference.jaeger_clickhouse_ms,
            chdb_ms: reference.chdb_ms,
            chdb_p99_ms: reference.chdb_p99_ms,
            note: (kind == QueryKind::TraceByIdTimeRange).then_some(NO_TIME_RANGE_NOTE),
        }
    }
}

/// Milliseconds with about three significant digits.
fn ms_text(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        thousands(ms.round() as u64)
    }
}

/// A published figure: whole milliseconds as they were published.
fn figure_text(ms: f64) -> String {
    if ms.fract() == 0.0 { thousands(ms as u64) } else { ms_text(ms) }
}

impl QueryReport {
    /// Wrong answers over all queries.
    pub fn failures(&self) -> u64 {
        self.queries.iter().map(|q| q.failures).sum()
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let p = &self.parameters.run;
        let mut rows: Vec<(&str, String)> = vec![
            ("sextant", self.sextant_version.to_string()),
            (
                "workload",
                format!(
                    "{} traces × {} spans ({}), seed {}, {} days",
                    thousands(p.traces),
                    p.spans_per_trace,
                    p.shape,
                    p.seed,
                    p.days
                ),
            ),
        ];
        let queried = match self.data.queried {
            "blocks" => "blocks (loaded, stopped with SIGTERM, restarted)",
            "head" => "the head (loaded, no restart)",
            _ => "a running server",
        };
        rows.push(("target", format!("{}, queried in {queried}, {} CPUs", p.target, self.machine.cpus)));
        for (name, value) in &p.server_settings {
            rows.push(("server setting", format!("{name}={value}")));
        }
        let where_text = |d: &DataSummary| {
            let bytes = d.block_bytes.map(|b| format!(" ({})", mib(b))).unwrap_or_default();
            match (d.blocks, d.head_spans) {
                (Some(blocks), Some(head_spans)) => {
                    Some(format!("{blocks} blocks{bytes}, {} spans in the head", thousands(head_spans)))
                }
                _ => None,
            }
        };
        if let Some(before) = where_text(&self.data) {
            let after = where_text(&self.data_after).filter(|after| *after != before);
            let after = after.map(|after| format!("; after the queries {after}")).unwrap_or_default();
            rows.push(("data", format!("{before}{after}")));
        }
        if let Some(load) = &self.load {
            let i = &load.ingest;
            let mut text = format!(
                "{} of {} spans acknowledged in {:.2} s ({} spans/s)",
                thousands(i.spans_acknowledged),
                thousands(i.spans_sent),
                i.seconds,
                thousands(i.spans_per_second.round() as u64)
            );
            if let (Some(stop), Some(restart)) = (load.stop_seconds, load.restart_seconds) {
                let _ = write!(text, "; stop {stop:.2} s, restart {restart:.2} s");
            }
            if let Some(compaction) = load.compaction_seconds {
                let _ = write!(text, ", compaction {compaction:.1} s");
            }
            rows.push(("load", text));
        }
        rows.push((
            "queries",
            format!(
                "one at a time on one connection; {} timed runs each after a warm-up; trace by ID: {} IDs, \
                 each once; limit {}",
                self.parameters.repetitions, self.parameters.trace_ids, self.parameters.limit
            ),
        ));
        if let Some(s) = &self.server {
            rows.push((
                "server while querying",
                format!(
                    "RSS {} before, peak {} (since {}); CPU {:.1} s in {:.1} s",
                    mib(s.rss_before_queries_bytes),
                    mib(s.peak_rss_bytes),
                    s.peak_rss_since,
                    s.cpu_seconds,
                    s.seconds
                ),
            ));
        }
        let mut out = label_lines(&rows);
        out.push('\n');

        let header = ["query", "p50 ms", "p99 ms", "mean ms", "results", "target", "Jaeger+CH", "chdb"];
        let mut lines: Vec<[String; 8]> = vec![header.map(str::to_string)];
        for q in &self.queries {
            let mut results = match (q.query, q.matching_traces) {
                (QueryKind::TraceById | QueryKind::TraceByIdTimeRange, _) => {
                    format!("{}/{} complete", thousands(q.results), thousands(q.samples as u64))
                }
                (_, Some(matching)) => format!("{} of {}", thousands(q.results), thousands(matching)),
                (_, None) => thousands(q.results),
            };
            if q.failures > 0 {
                let _ = write!(results, ", {} WRONG", thousands(q.failures));
            }
            let target = match (q.target, q.meets_target) {
                (Some(t), Some(met)) => format!("{} ≤ {} {}", t.quantile, t.ms, if met { "met" } else { "missed" }),
                _ => "-".to_string(),
            };
            let chdb = match (q.chdb_ms, q.chdb_p99_ms) {
                (Some(p50), Some(p99)) => format!("{} / {} (p50/p99)", figure_text(p50), figure_text(p99)),
                (Some(ms), None) => figure_text(ms),
                _ => "-".to_string(),
            };
            let title = if q.note.is_some() { format!("{} (*)", q.title) } else { q.title.to_string() };
            lines.push([
                title,
                ms_text(q.p50_ms),
                ms_text(q.p99_ms),
                ms_text(q.mean_ms),
                results,
                target,
                q.jaeger_clickhouse_ms.map_or("-".to_string(), figure_text),
                chdb,
            ]);
        }
        let widths: Vec<usize> =
            (0..header.len()).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
        for line in &lines {
            let mut text = String::new();
            for (c, cell) in line.iter().enumerate() {
                // Text columns left-aligned, numbers right-aligned.
                let width = widths[c];
                if (1..=3).contains(&c) {
                    let _ = write!(text, "{cell:>width$}  ");
                } else {
                    let _ = write!(text, "{cell:<width$}  ");
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        }
        out.push('\n');
        if let Some(q) = self.queries.iter().find(|q| q.note.is_some()) {
            let _ = writeln!(out, "(*) {}.", q.note.unwrap_or_default());
        }
        let _ = writeln!(
            out,
            "Jaeger+CH: published averages of 3 runs, Jaeger v2 + ClickHouse 26, 1M traces, 4 cores. \
             chdb: the same schema and queries in ClickHouse in-process, 1M traces, the 2-core benchmark machine."
        );
        for q in self.queries.iter().filter(|q| q.first_failure.is_some()) {
            let _ =
                writeln!(out, "{}: first wrong answer: {}", q.title, q.first_failure.as_deref().unwrap_or_default());
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        write_json_file(self, path)
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
                shape: Shape::Tracegen,
                seed: 1,
                traces: 1000,
                spans_per_trace: 10,
                days: 10,
                batch_spans: 1000,
                concurrency: 8,
                connections: 1,
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

    fn query_report() -> QueryReport {
        let ms = |values: &[u64]| values.iter().map(|&v| Duration::from_micros(v)).collect::<Vec<_>>();
        let mut trace = QueryResult::new(QueryKind::TraceById, "/api/v1/traces/ab".into(), ms(&[3000, 1000, 2000]), 2);
        trace.failures = 1;
        trace.first_failure = Some("trace ab: 9 spans".into());
        let mut search =
            QueryResult::new(QueryKind::SearchAttribute, "/api/v1/search?x".into(), ms(&[40_000, 60_000]), 20);
        search.matching_traces = Some(1234);
        QueryReport {
            benchmark: "query",
            sextant_version: "0.0.0",
            parameters: QueryParameters {
                run: Parameters {
                    shape: Shape::Random,
                    seed: 1,
                    traces: 1000,
                    spans_per_trace: 10,
                    days: 10,
                    batch_spans: 1000,
                    concurrency: 8,
                    connections: 1,
                    target: "spawned".to_string(),
                    server_settings: BTreeMap::new(),
                },
                repetitions: 2,
                trace_ids: 3,
                limit: 20,
            },
            machine: Machine { cpus: 2, os: "linux", arch: "x86_64" },
            workload: None,
            load: None,
            data: DataSummary { queried: "blocks", blocks: Some(2), head_spans: Some(0), block_bytes: Some(1 << 20) },
            data_after: DataSummary {
                queried: "blocks",
                blocks: Some(1),
                head_spans: Some(0),
                block_bytes: Some(1 << 20),
            },
            server: Some(QueryServerSummary {
                rss_before_queries_bytes: 30 << 20,
                peak_rss_bytes: 80 << 20,
                peak_rss_since: "queries",
                cpu_seconds: 1.5,
                seconds: 2.0,
            }),
            queries: vec![
                trace,
                search,
                QueryResult::new(QueryKind::TraceByIdTimeRange, "/api/v1/traces/cd".into(), ms(&[500]), 1),
            ],
        }
    }

    #[test]
    fn quantiles_and_targets_of_a_query() {
        let report = query_report();
        let trace = &report.queries[0];
        assert_eq!((trace.samples, trace.p50_ms, trace.p99_ms, trace.mean_ms, trace.max_ms), (3, 2.0, 3.0, 2.0, 3.0));
        assert_eq!(trace.target, Some(TRACE_BY_ID_TARGET));
        assert_eq!(trace.meets_target, Some(true), "p99 3 ms against 5 ms");
        let search = &report.queries[1];
        assert_eq!(search.p50_ms, 60.0, "nearest rank of two: the upper one");
        assert_eq!((search.target, search.meets_target), (Some(ATTRIBUTE_SEARCH_TARGET), Some(false)));
        assert_eq!(search.jaeger_clickhouse_ms, Some(1769.0));
        assert_eq!(report.queries[2].note, Some(NO_TIME_RANGE_NOTE));
        assert_eq!(report.failures(), 1);
        assert_eq!(QueryResult::new(QueryKind::Services, String::new(), Vec::new(), 0).p50_ms, 0.0);
    }

    #[test]
    fn query_json_and_table_carry_the_measures() {
        let report = query_report();
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["queries"][0]["query"], "trace_by_id");
        assert_eq!(json["queries"][1]["query"], "search_attribute");
        assert_eq!(json["queries"][1]["matching_traces"], 1234);
        assert_eq!(json["queries"][0]["failures"], 1);
        assert_eq!(json["queries"][0]["latencies_ms"], serde_json::json!([3.0, 1.0, 2.0]), "in the order sent");
        assert_eq!(json["server"]["peak_rss_bytes"], 80 << 20);
        assert_eq!(json["load"], serde_json::Value::Null);
        let table = report.table();
        for expected in [
            "2/3 complete",
            "1 WRONG",
            "20 of 1,234",
            "p50 ≤ 50 missed",
            "p99 ≤ 5 met",
            "1,769",
            "99 / 169 (p50/p99)",
            "trace by ID + time range (*)",
            "(*) the native API has no time range",
            "first wrong answer: trace ab: 9 spans",
            "peak 80.0 MiB (since queries)",
            "2 blocks (1.0 MiB), 0 spans in the head; after the queries 1 blocks (1.0 MiB)",
        ] {
            assert!(table.contains(expected), "{expected} missing from:\n{table}");
        }
    }
}
