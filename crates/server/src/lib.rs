//! The `sextant` server: configuration, receivers, query API, self-metrics.
//!
//! - [`config`]: file, environment and flags resolved into one [`config::Config`];
//! - [`ingest`]: OTLP/gRPC, OTLP/HTTP and Zipkin receivers and the pipeline they share;
//! - [`derived`]: span metrics and the service graph, aggregated from the accepted spans;
//! - [`alerting`]: rules over the span metrics, alert states, webhook notifications;
//! - [`api`]: the query port: native HTTP API and `/metrics`;
//! - [`processes`]: business process timelines, producer → consumer hops, trace links;
//! - [`serve`]: starts and stops all of it;
//! - [`bench`](mod@bench): `sextant bench`, benchmarks of a real server;
//! - [`demo`]: `sextant demo`, a simulated multi-region shop sending OTLP.

pub mod alerting;
pub mod api;
pub mod bench;
mod blocking;
pub mod config;
pub mod demo;
pub mod derived;
pub mod ingest;
pub mod metrics;
pub mod processes;
pub mod serve;
