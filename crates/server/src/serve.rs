//! `sextant serve`: opens the engine, binds every port, runs until asked to stop.
//!
//! Shutdown (SIGTERM, SIGINT or [`Server::shutdown`]): listeners stop accepting, requests in
//! progress finish (their spans are committed and acknowledged), the span metrics and service
//! graph intervals still in memory are written to disk, the head is flushed to a block, then
//! `run` returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use sextant_storage::engine::{Engine, EngineMetrics};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tracing::{info, warn};

use crate::alerting::Alerting;
use crate::api::{self, ApiState};
use crate::config::Config;
use crate::derived::{self, DerivedMetrics};
use crate::ingest::{self, Pipeline};
use crate::metrics::{IngestMetrics, QueryMetrics};

/// HTTP/2 flow-control windows of the OTLP/gRPC listener: large enough that a client with
/// several 1 MB export requests in flight is not held back waiting for window updates.
const GRPC_STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
const GRPC_CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;
// The frame size stays at HTTP/2's default (16 KiB). With 1 MiB frames, a client that honours
// them sends a 292 KB request as one frame, which the server buffers whole; one connection's
// requests then queued behind each other (docs/BENCHMARKS.md, "Frames of 16 KiB again").

/// How often the head is checked for a flush (by size or age).
const FLUSH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A running server: its bound addresses and a handle to stop it.
pub struct Server {
    pub otlp_grpc_address: SocketAddr,
    pub otlp_http_address: SocketAddr,
    pub zipkin_address: SocketAddr,
    pub query_address: SocketAddr,
    pub tempo_address: SocketAddr,
    pub engine: Arc<Engine>,
    /// Written to disk on shutdown (its intervals still in memory).
    derived_opt: Option<Arc<DerivedMetrics>>,
    shutdown_tx: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

async fn bind(address: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|e| anyhow::anyhow!("cannot listen for {what} on {address}: {e}"))
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(Any)
        .max_age(Duration::from_secs(3600));
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        layer.allow_origin(AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok())))
    }
}

impl Server {
    /// Opens storage and binds all ports; serving starts at once.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let mut registry = Registry::default();
        let engine_metrics = EngineMetrics::default();
        engine_metrics.register(&mut registry);
        let ingest_metrics = IngestMetrics::default();
        ingest_metrics.register(&mut registry);
        let query_metrics = QueryMetrics::default();
        query_metrics.register(&mut registry);

        let derived_opt = match &config.metrics_opt {
            Some(options) => {
                Some(DerivedMetrics::start(options, &config.engine.data_dir, config.engine.retention, &mut registry)?)
            }
            None => None,
        };

        let engine = Engine::open(config.engine.clone(), engine_metrics).await?;
        let pipeline = Arc::new(Pipeline::new(
            engine.clone(),
            config.limits.clone(),
            config.max_request_bytes,
            config.max_inflight_bytes,
            ingest_metrics,
            derived_opt.clone(),
        ));
        let grpc_listener = bind(config.otlp_grpc_address, "OTLP/gRPC").await?;
        let http_listener = bind(config.otlp_http_address, "OTLP/HTTP").await?;
        let zipkin_listener = bind(config.zipkin_address, "Zipkin").await?;
        let query_listener = bind(config.query_address, "the query API").await?;
        let tempo_listener = bind(config.tempo_address, "Tempo's API").await?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let query_address = query_listener.local_addr()?;
        let alerting_opt = match (&config.alerting_opt, &derived_opt) {
            (Some(options), Some(derived)) => {
                let external_url = format!("http://{query_address}");
                let (alerting, delivery) = Alerting::start(
                    options,
                    &config.engine.data_dir,
                    derived.clone(),
                    engine.clone(),
                    &mut registry,
                    external_url,
                )?;
                let stop = stopped(shutdown_rx.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = delivery => {}
                        () = stop => {}
                    }
                });
                Some(alerting)
            }
            (Some(options), None) => {
                if !options.rules.is_empty() {
                    warn!("alerting needs the span metrics (metrics.enabled); its rules are not evaluated");
                }
                None
            }
            (None, _) => None,
        };
        let mut server = Server {
            otlp_grpc_address: grpc_listener.local_addr()?,
            otlp_http_address: http_listener.local_addr()?,
            zipkin_address: zipkin_listener.local_addr()?,
            query_address,
            tempo_address: tempo_listener.local_addr()?,
            engine: engine.clone(),
            derived_opt: derived_opt.clone(),
            shutdown_tx,
            tasks: JoinSet::new(),
        };

        let api_state = Arc::new(ApiState {
            engine: engine.clone(),
            registry: Arc::new(Mutex::new(registry)),
            metrics: query_metrics,
            derived_opt: derived_opt.clone(),
            alerting_opt: alerting_opt.clone(),
            process_keys: config.process_keys.clone(),
        });

        let grpc = ingest::otlp_grpc::service(pipeline.clone());
        let stop = stopped(shutdown_rx.clone());
        server.tasks.spawn(async move {
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .initial_stream_window_size(GRPC_STREAM_WINDOW_BYTES)
                .initial_connection_window_size(GRPC_CONNECTION_WINDOW_BYTES)
                .add_service(grpc)
                .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(grpc_listener), stop)
                .await?;
            Ok(())
        });
        let cors = cors(&config.cors_allowed_origins);
        let http_app = ingest::otlp_http::router(pipeline.clone()).layer(cors.clone());
        // Zipkin's query API lives beside its receiver, where Zipkin's UI and clients look.
        let zipkin_app =
            ingest::zipkin::router(pipeline.clone()).merge(api::zipkin::router(api_state.clone())).layer(cors.clone());
        // Browsers may call the query APIs from another origin (a Jaeger UI served elsewhere).
        let tempo_app = api::tempo::router(api_state.clone()).layer(cors.clone());
        let query_app = api::router(api_state).layer(cors);
        let apps = [
            (http_listener, http_app),
            (zipkin_listener, zipkin_app),
            (query_listener, query_app),
            (tempo_listener, tempo_app),
        ];
        for (listener, app) in apps {
            let stop = stopped(shutdown_rx.clone());
            server.tasks.spawn(async move {
                axum::serve(listener, app).with_graceful_shutdown(stop).await?;
                Ok(())
            });
        }
        // Flushes and compaction run in separate loops so a long merge never delays a flush.
        // A flush starts as soon as an append fills the head, else at the periodic check (age).
        let (flush_engine, wake_engine) = (engine.clone(), engine.clone());
        let flush_requested = move || {
            let engine = wake_engine.clone();
            async move { engine.flush_requested().await }
        };
        server.tasks.spawn(every(FLUSH_CHECK_INTERVAL, shutdown_rx.clone(), flush_requested, move || {
            let engine = flush_engine.clone();
            async move { engine.flush_if_due().await }
        }));
        let compaction_engine = engine.clone();
        let never = std::future::pending::<()>;
        // Expiry of unpaired service graph halves and retention of the derived metrics.
        if let Some(derived) = derived_opt {
            server.tasks.spawn(every(derived::TICK_INTERVAL, shutdown_rx.clone(), never, move || {
                derived.tick();
                std::future::ready(())
            }));
        }
        if let Some(alerting) = alerting_opt {
            server.tasks.spawn(every(alerting.evaluation_interval, shutdown_rx.clone(), never, move || {
                let alerting = alerting.clone();
                async move { alerting.evaluate_now().await }
            }));
        }
        server.tasks.spawn(every(config.engine.compaction_interval, shutdown_rx.clone(), never, move || {
            let engine = compaction_engine.clone();
            async move { engine.compact_and_expire().await }
        }));
        info!(
            otlp_grpc = %server.otlp_grpc_address,
            otlp_http = %server.otlp_http_address,
            zipkin = %server.zipkin_address,
            query = %server.query_address,
            tempo = %server.tempo_address,
            data_dir = %config.engine.data_dir.display(),
            "sextant is serving"
        );
        Ok(server)
    }

    /// Stops accepting, lets requests in progress finish, flushes the head.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown_tx.send(true);
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => warn!(%error, "a listener stopped with an error"),
                Err(error) => warn!(%error, "a server task failed"),
            }
        }
        if let Some(derived) = &self.derived_opt {
            derived.persist_all().await;
        }
        self.engine.shutdown().await?;
        info!("sextant stopped");
        Ok(())
    }

    /// Serves until SIGTERM or SIGINT, then shuts down.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await;
        info!("shutting down");
        self.shutdown().await
    }
}

/// Runs `work` every `period` (the first time after one period), and whenever `wake`
/// completes, until shutdown.
async fn every<F, Fut, W, WakeFut>(
    period: Duration,
    mut stop: watch::Receiver<bool>,
    wake: W,
    work: F,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
    W: Fn() -> WakeFut,
    WakeFut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wake() => {}
            _ = stop.changed() => return Ok(()),
        }
        // Work in progress is abandoned at shutdown rather than waited for: a flush puts its
        // frozen part back (the shutdown flush writes it), and the outputs of an abandoned
        // compaction are blocks no manifest lists, removed by the engine's shutdown (or, after
        // a crash, at the next start).
        tokio::select! {
            () = work() => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
