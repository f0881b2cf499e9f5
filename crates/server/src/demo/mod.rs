//! `sextant demo`: a simulated multi-region shop sending real OTLP/gRPC to a running server,
//! with known consistency anomalies injected and recorded.
//!
//! The shop has seven services — gateway, cart, catalog, inventory, payment, order, reviews —
//! each running in us-east-1, eu-west-1 and ap-southeast-1. Shoppers browse, add to their
//! cart, view it, check out; checkout pays over HTTP, places the order over gRPC and publishes
//! a message on the `orders` topic that inventory and order consume in traces of their own,
//! linked to the producer span. Carts and prices live in a store replicated across the
//! regions (a Cassandra-like model: versions are last-write-wins timestamps, replication
//! takes a delay per region pair, weak reads see what the local replica holds); reviews,
//! stock, payments and orders in per-service PostgreSQL databases. Spans follow the
//! OpenTelemetry semantic conventions and the consistency attributes of DESIGN.md.
//!
//! ```text
//! stdin (scenario names) ─┐
//!                         v
//! flows (sessions, price updates) ─> world (clock, rng, primitives) ─> store (replicas)
//!          │ spans                           │ ground truth                │ applies
//!          v                                 v                            v
//!        send (OTLP/gRPC, acked)      --ground-truth FILE     db.replication.apply spans
//! ```
//!
//! - [`topology`]: services, regions, resources;
//! - [`store`]: the replicated store, stale reads and conflicts (pure);
//! - [`scenario`]: what each scenario changes (`normal`, `replication-lag`,
//!   `slow-inventory`, `price-conflicts`);
//! - [`world`]: the simulated clock and the span-emitting primitives;
//! - [`flows`]: the shoppers' sessions, orders, message hops, price updates;
//! - [`spans`]: building the spans of one trace;
//! - [`truth`]: the ground-truth records (JSON lines);
//! - [`send`]: export requests and backpressure.
//!
//! Determinism: all randomness comes from `--seed`, and with `--traces N` the simulated clock
//! starts at a fixed point (`--start-unix-nanos`, else N / rate seconds before now) and no
//! wall-clock pacing applies, so the same arguments give the same spans. With `--duration`
//! the simulation is paced on the wall clock: spans end about "now".

pub mod flows;
pub mod scenario;
pub mod send;
pub mod spans;
pub mod store;
pub mod topology;
pub mod truth;
pub mod world;

#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use self::flows::Simulation;
use self::scenario::Scenario;
use self::send::{SendCounts, Sender};
use self::truth::Record;

/// Spans are sent at least this often while paced on the wall clock.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// OTLP/gRPC receiver to send to.
    #[arg(long, default_value = "127.0.0.1:4317", value_name = "HOST:PORT")]
    pub endpoint: String,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scenario to start with. Type another scenario's name on stdin, one per line, to switch
    /// while running.
    #[arg(long, value_enum, default_value_t = Scenario::Normal)]
    pub scenario: Scenario,
    /// User actions per second, one trace each (a checkout adds two consumer traces, a
    /// conflicting price update a second update).
    #[arg(long, default_value_t = 20.0, value_name = "PER_SECOND")]
    pub rate: f64,
    /// How long to run, paced on the wall clock: seconds, a duration such as `10m`, or
    /// `forever` (until Ctrl-C).
    #[arg(long, default_value = "forever", conflicts_with = "traces", value_name = "SECONDS|forever")]
    pub duration: String,
    /// Generate this many traces, as fast as the server acknowledges them, instead of pacing on
    /// the wall clock: deterministic for a seed (timestamps too with --start-unix-nanos).
    #[arg(long, value_name = "N")]
    pub traces: Option<u64>,
    /// Simulated time of the first trace [default: now, or with --traces N: N / rate seconds
    /// before now].
    #[arg(long, value_name = "NANOS")]
    pub start_unix_nanos: Option<u64>,
    /// Write what was injected (stale reads, replications, conflicts, business processes) to
    /// FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub ground_truth: Option<PathBuf>,
    /// Spans per export request while sending as fast as acknowledged.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub batch_spans: usize,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct DemoOutcome {
    pub num_traces: u64,
    pub num_stale_reads: u64,
    pub num_conflicts: u64,
    pub counts: SendCounts,
}

/// Parses `--duration`: `None` for forever.
fn parse_duration(text: &str) -> anyhow::Result<Option<Duration>> {
    if text == "forever" {
        return Ok(None);
    }
    if let Ok(seconds) = text.parse::<f64>()
        && seconds >= 0.0
        && seconds.is_finite()
    {
        return Ok(Some(Duration::from_secs_f64(seconds)));
    }
    humantime::parse_duration(text)
        .map(Some)
        .with_context(|| format!("--duration {text}: seconds, a duration or `forever`"))
}

pub fn main(args: DemoArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (switch_sender, switches) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            if line.trim().is_empty() {
                continue;
            }
            match Scenario::parse(&line) {
                Some(scenario) if switch_sender.send(scenario).is_ok() => {}
                Some(_) => return,
                None => eprintln!(
                    "unknown scenario {:?}: normal, replication-lag, slow-inventory or price-conflicts",
                    line.trim()
                ),
            }
        }
    });
    match runtime.block_on(run(&args, Some(switches))) {
        Ok(outcome) => {
            eprintln!(
                "sent {} traces ({} spans acknowledged, {} rejected); injected {} stale reads, {} conflicts",
                outcome.num_traces,
                outcome.counts.spans_acknowledged,
                outcome.counts.spans_rejected,
                outcome.num_stale_reads,
                outcome.num_conflicts
            );
            if outcome.counts.spans_rejected > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the simulation and sends its spans; `switches` delivers scenario changes.
pub async fn run(
    args: &DemoArgs,
    mut switches: Option<mpsc::UnboundedReceiver<Scenario>>,
) -> anyhow::Result<DemoOutcome> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number");
    }
    let duration = parse_duration(&args.duration)?;
    let mut truth_file = match &args.ground_truth {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut sender = Sender::connect(&args.endpoint).await?;
    let now = sextant_model::now_unix_nanos();
    let start = args.start_unix_nanos.unwrap_or_else(|| match args.traces {
        Some(traces) => now.saturating_sub((traces as f64 / args.rate * 1e9) as u64),
        None => now,
    });
    let paced = args.traces.is_none();
    let mut simulation = Simulation::new(args.seed, args.scenario, start, args.rate);
    let mut outcome = DemoOutcome::default();
    let wall_start = Instant::now();
    let mut last_send = Instant::now();
    let mut spans = Vec::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        while let Some(scenario) = switches.as_mut().and_then(|s| s.try_recv().ok()) {
            eprintln!("scenario: {}", scenario.name());
            simulation.set_scenario(scenario);
        }
        let done = match (args.traces, duration) {
            (Some(traces), _) => simulation.world.num_traces >= traces,
            (None, Some(duration)) => wall_start.elapsed() >= duration,
            (None, None) => false,
        };
        if done {
            break;
        }
        if paced {
            let target = wall_start + Duration::from_nanos(simulation.next_slot_unix_nanos() - start);
            tokio::select! {
                _ = tokio::time::sleep_until(target.into()) => {}
                _ = &mut ctrl_c => break,
            }
        }
        simulation.step();
        spans.extend(simulation.world.take_spans());
        write_truth(&mut truth_file, simulation.world.take_truth(), &mut outcome)?;
        if spans.len() >= args.batch_spans || (paced && last_send.elapsed() >= FLUSH_INTERVAL) {
            sender.send(&spans).await?;
            spans.clear();
            last_send = Instant::now();
        }
    }
    simulation.finish();
    spans.extend(simulation.world.take_spans());
    write_truth(&mut truth_file, simulation.world.take_truth(), &mut outcome)?;
    sender.send(&spans).await?;
    if let Some(file) = &mut truth_file {
        file.flush().context("writing the ground truth")?;
    }
    outcome.num_traces = simulation.world.num_traces;
    outcome.counts = sender.counts;
    Ok(outcome)
}

fn write_truth(
    file: &mut Option<std::io::BufWriter<std::fs::File>>,
    records: Vec<Record>,
    outcome: &mut DemoOutcome,
) -> anyhow::Result<()> {
    for record in records {
        match record {
            Record::StaleRead { .. } => outcome.num_stale_reads += 1,
            Record::Conflict { .. } => outcome.num_conflicts += 1,
            _ => {}
        }
        if let Some(file) = file {
            file.write_all(record.to_json_line().as_bytes()).context("writing the ground truth")?;
        }
    }
    Ok(())
}
