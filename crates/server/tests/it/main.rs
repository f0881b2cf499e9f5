//! Integration tests of the `sextant` server, driven through its real ports with real
//! clients (the OpenTelemetry OTLP exporters, HTTP clients) and the real binary.

mod alerting;
mod api;
mod bad_input;
mod bench;
mod cli;
mod consistency;
mod crash;
mod cross_api;
mod demo;
mod http_receivers;
mod jaeger;
mod jaeger_v3;
mod metrics_history;
mod otlp_sdk;
mod processes;
mod span_metrics;
mod support;
mod tempo;
mod tempo_metrics;
mod ui;
mod wal_record;
mod zipkin;
