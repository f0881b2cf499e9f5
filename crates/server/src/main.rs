//! The `sextant` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sextant_server::config::{Overrides, RawConfig};
use sextant_server::serve::Server;
use tracing_subscriber::EnvFilter;

/// Spans, attributes and Parquet pages make the server allocation-heavy; mimalloc is faster
/// than the system allocator at that and returns freed memory (docs/adr/0005).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod allocator;

/// Sextant: an OpenTelemetry-native distributed tracing system in one binary.
///
/// Receives spans over OTLP (gRPC :4317, HTTP :4318) and Zipkin (:9411), stores them durably
/// in a local directory and answers queries on :16686.
#[derive(Parser)]
#[command(name = "sextant", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ConfigArgs {
    /// Configuration file (TOML). Keys not in the file keep their defaults; see
    /// `sextant config` for every key.
    #[arg(long, short = 'c', env = "SEXTANT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the write-ahead log and blocks [default: ./sextant-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace) or a filter such as `sextant=debug`.
    /// Without it, RUST_LOG is used, then the config's `log_level`.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the receivers, the embedded store and the query API; stop with Ctrl-C or SIGTERM.
    Serve(ConfigArgs),
    /// Print the effective configuration (defaults, file, SEXTANT_* environment, flags) as TOML.
    Config(ConfigArgs),
    /// Reproducible benchmarks against a real server (started for the run, or --endpoint).
    Bench(sextant_server::bench::BenchArgs),
    /// A simulated multi-region shop sending OTLP/gRPC to a running server, with injectable
    /// replication lag, a slow deployment and write conflicts; switch scenario by typing its
    /// name on stdin.
    ///
    /// Seven services (gateway, cart, catalog, inventory, payment, order, reviews) in three
    /// regions; HTTP and gRPC calls, Kafka-style message hops, Cassandra reads and writes
    /// against a replicated store, business process IDs for carts and orders. Scenarios:
    /// normal (5–60 ms replication delays), replication-lag (2–6 s between us-east-1 and
    /// eu-west-1: stale, empty carts), slow-inventory (inventory 1.5.0 with an unindexed
    /// query), price-conflicts (concurrent price writes from two regions, last write wins).
    /// --ground-truth records every injected stale read, replication and conflict.
    Demo(sextant_server::demo::DemoArgs),
}

fn load(args: &ConfigArgs) -> Result<(RawConfig, sextant_server::config::Config), ExitCode> {
    let overrides = Overrides { data_dir: args.data_dir.clone(), log_level: args.log_level.clone() };
    let loaded = RawConfig::load(args.config.as_deref(), std::env::vars(), &overrides)
        .and_then(|raw| raw.resolve().map(|config| (raw, config)));
    loaded.map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}

fn init_logging(config_level: &str, flag_level: Option<&str>) {
    let filter = match (flag_level, std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty())) {
        (Some(level), _) => EnvFilter::new(level),
        (None, Some(rust_log)) => EnvFilter::new(rust_log),
        (None, None) => EnvFilter::new(config_level),
    };
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    allocator::keep_freed_memory_a_while();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => sextant_server::bench::main(args),
        Command::Demo(args) => sextant_server::demo::main(args),
        Command::Config(args) => match load(&args) {
            Ok((raw, _)) => {
                print!("{}", raw.to_toml());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Serve(args) => {
            let config = match load(&args) {
                Ok((_, config)) => config,
                Err(code) => return code,
            };
            init_logging(&config.log_level, args.log_level.as_deref());
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("error: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(async {
                let server = Server::start(config).await?;
                server.run_until_signal().await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "sextant failed");
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
