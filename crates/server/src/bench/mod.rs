//! `sextant bench`: reproducible benchmarks of a real server, run from the `sextant` binary.
//!
//! ```text
//! workload (seeded, pre-encoded) ──> ingest: C tasks × OTLP/gRPC ──> sextant serve (child process)
//!                                                                     │ SIGTERM: head flushed
//!                         report <── acked spans/s, VmHWM, bytes of store/blocks + wal
//! --replay: same load into a fresh dir ─> SIGKILL ─> respawn ─> time until the API answers
//!
//! query: load as above ─> SIGTERM (head → block) ─> respawn on the same dir (--head: no
//!        restart, head limits raised)
//!        ─> the published query set over /api/v1, each answer checked against the workload
//! ```
//!
//! - [`workload`]: the reference workload of DESIGN.md, scaled by `--traces`;
//! - [`ingest`]: the OTLP/gRPC sender and its counts;
//! - [`query`]: the query set, what each answer must hold, the timing;
//! - [`server_process`]: the server as a child process and what is measured from outside it;
//! - [`http`]: the small HTTP/1.1 client of the query API;
//! - [`report`]: the tables and the JSON.
//!
//! Errors are `anyhow`: this is the binary's edge, every error ends as one line on stderr.

pub mod http;
pub mod ingest;
pub mod query;
pub mod report;
pub mod rng;
pub mod server_process;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use self::ingest::Load;
use self::report::{
    IngestSummary, Machine, Parameters, QueryReport, ReplaySummary, Report, ServerSummary, WorkloadSummary,
};
use self::server_process::{READY_TIMEOUT, ServerProcess, dir_size_bytes, metric_value};
use self::workload::{SPANS_PER_TRACE, Shape, Workload, WorkloadParams};

/// Spans end no later than this long before the benchmark starts.
const END_BEFORE_NOW: Duration = Duration::from_secs(60);
/// `storage.head_max_bytes` of servers that keep a whole workload in the head: more than any
/// workload needs.
const HEAD_MAX_BYTES_UNBOUNDED: u64 = 1 << 40;

/// Settings under which a server keeps `num_spans` spans in its head: no flush by count, size
/// or age during a run (`ingest --replay`, `query --head`).
fn keep_in_head(num_spans: u64) -> [(&'static str, String); 3] {
    [
        ("SEXTANT_STORAGE_HEAD_MAX_SPANS", (num_spans + 1).to_string()),
        ("SEXTANT_STORAGE_HEAD_MAX_BYTES", HEAD_MAX_BYTES_UNBOUNDED.to_string()),
        ("SEXTANT_STORAGE_HEAD_MAX_AGE", "24h".to_string()),
    ]
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Durable ingest over OTLP/gRPC: spans/s, bytes on disk, peak memory, WAL replay.
    ///
    /// Generates the reference workload (1 root + 9 children per trace, 10 services, 11
    /// attributes per span from 97 keys and 1000 values, over the last days), encodes every
    /// request before the clock starts, then sends it to a `sextant serve` started for the run
    /// (WAL fsync on, retention 3650d, fresh data directory) or to `--endpoint`. Other SEXTANT_*
    /// variables of the environment pass through to the started server. Exits with 1 when some
    /// span was not acknowledged.
    Ingest(IngestArgs),
    /// Query latency: the published query set of the Jaeger ClickHouse benchmark, p50 and p99.
    ///
    /// Loads the reference workload (as `ingest` does) into a `sextant serve` started for the
    /// run, stops it with SIGTERM (the head is flushed to a block) and starts it again on the
    /// same directory, so queries read blocks as they would in production (`--head`: no
    /// restart, the head is queried). Then, over the native HTTP API, one at a time: services,
    /// operations of a service, trace by ID (random trace IDs of the workload), search by
    /// service, operation, duration range, timestamp range, attribute and all filters
    /// together, each search with `--limit` results, newest first. Search parameters are taken
    /// from the generated data, and every answer is checked against the workload: a trace must
    /// come back with all its spans, a search with exactly the newest matching traces. Reports
    /// p50, p99 and mean per query beside the published figures and the targets, the number of
    /// results, and the server's peak memory while answering. Exits with 1 when some answer
    /// was wrong.
    Query(QueryArgs),
}

/// What to generate; shared by every benchmark that loads data.
#[derive(clap::Args, Clone, Debug)]
pub struct WorkloadArgs {
    /// What the spans look like: `tracegen`, the spans of the published benchmark (Jaeger's
    /// tracegen, one run per day in time order), or `random` (random services, parents,
    /// attributes and durations, starts in random order over the days).
    #[arg(long, value_enum, default_value_t = Shape::Tracegen)]
    pub shape: Shape,
    /// Seed of the workload: the same seed gives the same spans.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of traces (10 spans each); the reference workload has 1,000,000.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub traces: u64,
    /// The traces are spread over this many days, ending a minute ago.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub days: u64,
    /// Spans per OTLP request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_spans: u64,
}

#[derive(clap::Args, Clone, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub load: Load,
    /// Send to this running server's OTLP/gRPC port instead of starting one (disk, memory and
    /// replay are then not measured).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["data_dir", "replay", "keep_data"])]
    pub endpoint: Option<String>,
    /// Directory for the started servers' data and logs (`ingest/`, `ingest.log`, `replay/`,
    /// `replay.log`); must be empty or absent.
    /// Default: a temporary directory, removed at the end.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also measure a restart: the same load into a fresh directory on a server whose head
    /// limits are raised so nothing is flushed, SIGKILL, then time from spawning the server
    /// again until its query API answers (the whole WAL replayed).
    #[arg(long)]
    pub replay: bool,
    /// Keep the temporary data directory.
    #[arg(long)]
    pub keep_data: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub load: Load,
    /// Timed runs of each query other than trace by ID, after one untimed warm-up run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub repetitions: u64,
    /// Trace IDs fetched by each trace-by-ID query, drawn at random from the workload; each is
    /// fetched once, after one warm-up request.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub trace_ids: u64,
    /// Traces per search answer (`limit`).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub limit: u64,
    /// Query right after the load, without the stop and restart, with the started server's
    /// head limits raised (`storage.head_max_spans`, `head_max_bytes`, `head_max_age`) so that
    /// every span is still in the head.
    #[arg(long)]
    pub head: bool,
    /// Query this running server's query API instead of starting one. It must hold exactly the
    /// workload of the same --seed, --traces and --days (for example loaded with
    /// `sextant bench ingest --endpoint`); the time of the load is found from one of its traces.
    /// Memory is then not measured.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["data_dir", "keep_data", "head"])]
    pub endpoint_query: Option<String>,
    /// Directory for the started server's data and log (`query/`, `query.log`); must be empty
    /// or absent. Default: a temporary directory, removed at the end.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the temporary data directory.
    #[arg(long)]
    pub keep_data: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Runs `sextant bench …` and prints errors; the process's exit code.
pub fn main(args: BenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        BenchCommand::Ingest(args) => runtime.block_on(run_ingest(&args)).map(|report| {
            (report.ingest.spans_acknowledged >= report.workload.spans)
                .then_some(())
                .ok_or("not every span was acknowledged")
        }),
        BenchCommand::Query(args) => runtime.block_on(query::run(&args)).map(|report: QueryReport| {
            (report.failures() == 0).then_some(()).ok_or("some answers were wrong (see the failures column)")
        }),
    };
    match result {
        Ok(Err(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) use sextant_model::now_unix_nanos;

impl Parameters {
    /// The parameters of a run on workload `w`; `endpoint` is the address of a server that
    /// was already running, `None` when the benchmark started one.
    pub(crate) fn of(
        w: &WorkloadArgs,
        load: Load,
        endpoint: Option<&str>,
        server_settings: BTreeMap<String, String>,
    ) -> Parameters {
        let (concurrency, connections) = load.shape();
        Parameters {
            shape: w.shape,
            seed: w.seed,
            traces: w.traces,
            spans_per_trace: SPANS_PER_TRACE,
            days: w.days,
            batch_spans: w.batch_spans as usize,
            concurrency,
            connections,
            target: endpoint.unwrap_or("spawned").to_string(),
            server_settings,
        }
    }
}

/// The workload `args` asks for, ending a minute before now.
fn workload_params(args: &WorkloadArgs) -> WorkloadParams {
    WorkloadParams {
        shape: args.shape,
        seed: args.seed,
        num_traces: args.traces,
        days: args.days,
        batch_spans: args.batch_spans as usize,
        end_unix_nanos: now_unix_nanos() - END_BEFORE_NOW.as_nanos() as u64,
    }
}

fn generate(params: &WorkloadParams) -> (Workload, WorkloadSummary) {
    eprintln!("generating {} spans in {} requests…", params.num_spans(), params.num_batches());
    let started = Instant::now();
    let workload = workload::generate(params, Machine::this().cpus);
    let summary = WorkloadSummary {
        spans: workload.num_spans,
        requests: workload.batches.len(),
        encoded_bytes: workload.encoded_bytes,
        generate_seconds: started.elapsed().as_secs_f64(),
    };
    eprintln!(
        "generated {:.1} MiB of OTLP protobuf in {:.2} s",
        summary.encoded_bytes as f64 / (1024.0 * 1024.0),
        summary.generate_seconds
    );
    (workload, summary)
}

/// Where the started servers keep their data, and whether to remove it at the end.
struct DataRoot {
    path: PathBuf,
    remove: bool,
}

impl DataRoot {
    /// `given` (kept at the end), or a new temporary directory removed at the end unless `keep`.
    fn prepare(given: Option<&Path>, keep: bool) -> anyhow::Result<DataRoot> {
        let (path, remove) = match given {
            Some(path) => (path.to_path_buf(), false),
            None => {
                let name = format!("sextant-bench-{}-{}", std::process::id(), now_unix_nanos());
                (std::env::temp_dir().join(name), !keep)
            }
        };
        if path.exists() && std::fs::read_dir(&path)?.next().is_some() {
            bail!("{} is not empty: the benchmark needs a fresh data directory", path.display());
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(DataRoot { path, remove })
    }
}

impl Drop for DataRoot {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            eprintln!("data kept in {}", self.path.display());
        }
    }
}

async fn run_ingest(args: &IngestArgs) -> anyhow::Result<Report> {
    let (workload, workload_summary) = generate(&workload_params(&args.workload));
    let workload = Arc::new(workload);
    let load = args.load;
    let server_settings: BTreeMap<String, String> = match args.endpoint {
        Some(_) => BTreeMap::new(),
        None => server_process::passed_through_settings().into_iter().collect(),
    };
    let (outcome, server, replay) = match &args.endpoint {
        Some(endpoint) => {
            eprintln!("sending to {endpoint} with {load}…");
            (ingest::send(workload.clone(), endpoint, load).await?, None, None)
        }
        None => {
            let root = DataRoot::prepare(args.data_dir.as_deref(), args.keep_data)?;
            let executable = std::env::current_exe().context("finding the sextant executable")?;
            let (outcome, server) = measure_ingest(&executable, &root.path.join("ingest"), &workload, load).await?;
            let replay = if args.replay {
                Some(measure_replay(&executable, &root.path.join("replay"), &workload, load).await?)
            } else {
                None
            };
            (outcome, Some(server), replay)
        }
    };
    let w = &args.workload;
    let report = Report {
        benchmark: "ingest",
        sextant_version: env!("CARGO_PKG_VERSION"),
        parameters: Parameters::of(w, load, args.endpoint.as_deref(), server_settings),
        machine: Machine::this(),
        workload: workload_summary,
        ingest: IngestSummary::from(&outcome),
        server,
        replay,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    Ok(report)
}

/// A server started on the fresh `data_dir` (log beside it) with `settings` added, loaded with
/// `workload`; what it acknowledged and the server's CPU time while loading.
async fn start_and_load(
    executable: &Path,
    data_dir: &Path,
    workload: &Arc<Workload>,
    load: Load,
    settings: &[(&str, String)],
) -> anyhow::Result<(ServerProcess, ingest::IngestOutcome, f64)> {
    let mut server = ServerProcess::spawn(executable, data_dir, &data_dir.with_extension("log"), settings)?;
    server.wait_ready(READY_TIMEOUT).await?;
    eprintln!("server {} ready; sending with {load}…", server.pid());
    let cpu_before = server.cpu_seconds()?;
    let outcome = ingest::send(workload.clone(), &server.grpc_address.to_string(), load).await?;
    let ingest_cpu_seconds = server.cpu_seconds()? - cpu_before;
    eprintln!("acknowledged {} spans in {:.2} s", outcome.spans_acknowledged, outcome.elapsed.as_secs_f64());
    Ok((server, outcome, ingest_cpu_seconds))
}

/// Ingest into a fresh server, then a graceful stop; disk and memory measured.
async fn measure_ingest(
    executable: &Path,
    data_dir: &Path,
    workload: &Arc<Workload>,
    load: Load,
) -> anyhow::Result<(ingest::IngestOutcome, ServerSummary)> {
    let (server, outcome, ingest_cpu_seconds) = start_and_load(executable, data_dir, workload, load, &[]).await?;
    eprintln!("stopping the server…");
    let peak_rss_bytes = server.peak_rss_bytes()?;
    let stop_seconds = server.stop().await?.as_secs_f64();
    let block_bytes = dir_size_bytes(&data_dir.join("store").join("blocks"))?;
    let wal_bytes = dir_size_bytes(&data_dir.join("wal"))?;
    let summary = ServerSummary {
        peak_rss_bytes,
        ingest_cpu_seconds,
        stop_seconds,
        ..ServerSummary::new(block_bytes, wal_bytes, outcome.spans_acknowledged)
    };
    Ok((outcome, summary))
}

/// Ingest with the head kept in memory, SIGKILL, then a timed restart that replays the WAL.
async fn measure_replay(
    executable: &Path,
    data_dir: &Path,
    workload: &Arc<Workload>,
    load: Load,
) -> anyhow::Result<ReplaySummary> {
    // No flush during the run, so every span is still in the WAL at the kill; memory is
    // bounded by the size of the workload instead.
    let keep_in_head = keep_in_head(workload.num_spans);
    eprintln!("replay: loading a second server…");
    let (server, outcome, _) = start_and_load(executable, data_dir, workload, load, &keep_in_head).await?;
    if outcome.spans_acknowledged == 0 {
        bail!("replay: the server acknowledged no span");
    }
    server.kill().await?;
    let wal_bytes = dir_size_bytes(&data_dir.join("wal"))?;
    eprintln!("replay: killed after {} spans; restarting…", outcome.spans_acknowledged);

    let started = Instant::now();
    let mut server = ServerProcess::spawn(executable, data_dir, &data_dir.with_extension("log"), &keep_in_head)?;
    server.wait_ready(READY_TIMEOUT).await?;
    let elapsed = started.elapsed();
    let cpu_seconds = server.cpu_seconds()?;
    let peak_rss_bytes = server.peak_rss_bytes()?;
    let metrics = server.metrics().await?;
    server.kill().await?;
    let spans_replayed = metric_value(&metrics, "sextant_wal_replayed_spans_total")
        .context("/metrics has no sextant_wal_replayed_spans_total")? as u64;
    Ok(ReplaySummary {
        spans_replayed,
        wal_bytes,
        seconds: elapsed.as_secs_f64(),
        spans_per_second: spans_replayed as f64 / elapsed.as_secs_f64().max(1e-9),
        cpu_seconds,
        peak_rss_bytes,
        server_settings: keep_in_head.into_iter().map(|(name, value)| (name.to_string(), value)).collect(),
    })
}
