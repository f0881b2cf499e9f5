//! Webhook notifications in Alertmanager's webhook format (version 4), so anything that
//! receives Alertmanager's webhooks receives Sextant's alerts.
//!
//! One notification per transition (fired or resolved) of one rule's alert, one alert in it,
//! POSTed to every configured URL. Delivery runs on one task fed by a bounded queue
//! ([`QUEUE_CAPACITY`] notifications; a notification finding it full is dropped and counted as
//! failed), in order. A URL that does not answer 2xx within [`REQUEST_TIMEOUT`] is retried
//! with exponential backoff (from [`FIRST_BACKOFF`], doubling, at most [`MAX_ATTEMPTS`]
//! attempts); `sextant_alert_notifications_{sent,failed}_total` count deliveries per URL.
//! Only plain `http://` URLs are supported (no TLS client is built in).

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::warn;

/// Notifications waiting for delivery.
pub const QUEUE_CAPACITY: usize = 1_024;
/// Attempts per notification and URL.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait after the first failed attempt; it doubles after each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one attempt may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Alertmanager's `endsAt` of an alert that has not ended.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The receiver name notifications carry.
pub const RECEIVER: &str = "sextant";

/// One alert of a notification, as Alertmanager describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    pub firing: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_unix_nanos: u64,
    /// When it resolved; `None` while firing.
    pub ends_at_unix_nanos_opt: Option<u64>,
    /// Where the alert's rule can be read (`{external_url}/api/v1/alert-rules/{name}`).
    pub generator_url: String,
}

pub fn rfc3339(unix_nanos: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(unix_nanos)).to_string()
}

/// A stable 16-hex-digit identity of a label set (FNV-1a over `name=value` pairs).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in labels {
        for byte in name.bytes().chain([0xff]).chain(value.bytes()).chain([0xfe]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The webhook body for one alert event.
pub fn webhook_body(event: &AlertEvent, external_url: &str) -> Value {
    let status = if event.firing { "firing" } else { "resolved" };
    let alertname = event.labels.get("alertname").cloned().unwrap_or_default();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname={alertname:?}}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": RECEIVER,
        "groupLabels": { "alertname": alertname },
        "commonLabels": event.labels,
        "commonAnnotations": event.annotations,
        "externalURL": external_url,
        "alerts": [{
            "status": status,
            "labels": event.labels,
            "annotations": event.annotations,
            "startsAt": rfc3339(event.starts_at_unix_nanos),
            "endsAt": event.ends_at_unix_nanos_opt.map(rfc3339).unwrap_or_else(|| ZERO_TIME.to_string()),
            "generatorURL": event.generator_url,
            "fingerprint": fingerprint(&event.labels),
        }],
    })
}

/// Delivery counters, registered as `sextant_alert_notifications_{sent,failed}_total`.
#[derive(Clone, Debug, Default)]
pub struct NotifyMetrics {
    pub sent: Counter,
    pub failed: Counter,
}

impl NotifyMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("sextant");
        r.register("alert_notifications_sent", "Alert notifications a webhook accepted (2xx)", self.sent.clone());
        r.register(
            "alert_notifications_failed",
            "Alert notifications not delivered to a webhook after every retry, or dropped with the queue full",
            self.failed.clone(),
        );
    }
}

/// The queue of notifications to deliver.
#[derive(Clone, Debug)]
pub struct Notifier {
    queue: mpsc::Sender<Value>,
    num_webhooks: usize,
    metrics: NotifyMetrics,
}

impl Notifier {
    /// The notifier and the delivery loop to run (it ends when every notifier is dropped).
    pub fn new(
        webhooks: Vec<String>,
        metrics: NotifyMetrics,
        first_backoff: Duration,
    ) -> (Notifier, impl std::future::Future<Output = ()>) {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let notifier = Notifier { queue, num_webhooks: webhooks.len(), metrics: metrics.clone() };
        (notifier, deliver(receiver, webhooks, metrics, first_backoff))
    }

    /// Queues a notification without waiting; counts it as failed when the queue is full.
    pub fn send(&self, body: Value) {
        if self.num_webhooks == 0 {
            return;
        }
        if self.queue.try_send(body).is_err() {
            warn!(num_webhooks = self.num_webhooks, "alert notification queue full, notification dropped");
            self.metrics.failed.inc_by(self.num_webhooks as u64);
        }
    }
}

async fn deliver(
    mut receiver: mpsc::Receiver<Value>,
    webhooks: Vec<String>,
    metrics: NotifyMetrics,
    first_backoff: Duration,
) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            warn!(%error, "cannot build the webhook client; alert notifications are not sent");
            while receiver.recv().await.is_some() {
                metrics.failed.inc_by(webhooks.len() as u64);
            }
            return;
        }
    };
    while let Some(body) = receiver.recv().await {
        let body = serde_json::to_vec(&body).expect("a JSON value serializes");
        for url in &webhooks {
            if post_with_retries(&client, url, &body, first_backoff).await {
                metrics.sent.inc();
            } else {
                metrics.failed.inc();
            }
        }
    }
}

async fn post_with_retries(client: &reqwest::Client, url: &str, body: &[u8], first_backoff: Duration) -> bool {
    let mut backoff = first_backoff;
    for attempt in 1..=MAX_ATTEMPTS {
        let result = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("sextant/", env!("CARGO_PKG_VERSION")))
            .body(body.to_vec())
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) => {
                warn!(url, attempt, status = response.status().as_u16(), "webhook refused alert notification")
            }
            Err(error) => warn!(url, attempt, %error, "webhook unreachable for alert notification"),
        }
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_body_has_alertmanagers_fields_and_a_zero_end() {
        let labels: BTreeMap<String, String> =
            [("alertname", "CartErrors"), ("service", "cart")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let event = AlertEvent {
            firing: true,
            labels: labels.clone(),
            annotations: [("example_traces".to_string(), "ab".to_string())].into(),
            starts_at_unix_nanos: 1_700_000_000_000_000_000,
            ends_at_unix_nanos_opt: None,
            generator_url: "http://127.0.0.1:16686/api/v1/alert-rules/CartErrors".into(),
        };
        let body = webhook_body(&event, "http://127.0.0.1:16686");
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["groupKey"], "{}:{alertname=\"CartErrors\"}");
        assert_eq!(body["groupLabels"], json!({"alertname": "CartErrors"}));
        let alert = &body["alerts"][0];
        assert_eq!(alert["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(alert["endsAt"], ZERO_TIME);
        assert_eq!(alert["labels"]["service"], "cart");
        assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(alert["fingerprint"], fingerprint(&labels));

        let resolved = AlertEvent { firing: false, ends_at_unix_nanos_opt: Some(1_700_000_060_000_000_000), ..event };
        let body = webhook_body(&resolved, "");
        assert_eq!(body["status"], "resolved");
        assert_eq!(body["alerts"][0]["endsAt"], "2023-11-14T22:14:20.000Z");
    }

    #[test]
    fn fingerprints_differ_by_label_values() {
        let a: BTreeMap<String, String> = [("a".to_string(), "bc".to_string())].into();
        let b: BTreeMap<String, String> = [("ab".to_string(), "c".to_string())].into();
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    /// A receiver that answers 503 to the first `failures` requests, then 200.
    async fn flaky_receiver(failures: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let calls = counted.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < failures {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, calls)
    }

    #[tokio::test]
    async fn failed_deliveries_are_retried_then_counted() {
        use std::sync::atomic::Ordering;
        let (recovering_url, recovering_calls) = flaky_receiver(2).await;
        let (broken_url, broken_calls) = flaky_receiver(usize::MAX).await;
        let metrics = NotifyMetrics::default();
        let (notifier, delivery) =
            Notifier::new(vec![recovering_url, broken_url], metrics.clone(), Duration::from_millis(1));
        notifier.send(json!({"status": "firing"}));
        drop(notifier);
        delivery.await;
        assert_eq!(recovering_calls.load(Ordering::SeqCst), 3);
        assert_eq!(broken_calls.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
        assert_eq!((metrics.sent.get(), metrics.failed.get()), (1, 1));
    }
}
