//! Alerting on span metrics: rules over the error rate, call rate or a latency quantile of a
//! service, or over a TraceQL metrics query on the stored spans, evaluated on a timer, with
//! webhook notifications in Alertmanager's format.
//!
//! ```text
//! rules: [alerting] rules (config file, read-only) + API rules ({data_dir}/alerting/rules.json)
//!   │ every alerting.evaluation_interval (Alerting::evaluate_now)
//!   v
//! DerivedMetrics::read (sync barrier, then under the span metrics lock):
//!   evaluate::evaluate per span metrics rule: one-step range query over [now − window, now) + exemplars
//! then traceql::evaluate per TraceQL rule: instant query over [now − window, now] on the engine
//!   │
//!   v
//! state::AlertStatus::step per rule: inactive → pending → firing → resolved → inactive
//!   │ fired / resolved
//!   v
//! notify::Notifier: bounded queue → one delivery task → POST to every webhook, with retries
//! ```
//!
//! Invariants:
//! - one alert per rule, keyed by the rule's name; an updated rule keeps its alert's state
//!   (so raising a threshold resolves a firing alert), a deleted rule's alert is forgotten
//!   without a notification;
//! - names are unique across config and API rules; config rules cannot be changed through
//!   the API;
//! - evaluations never overlap (one at a time), so transitions and notifications follow the
//!   order of evaluation times;
//! - every API change to the rules is on disk (fsynced, atomically replaced) before the API
//!   answers.

pub mod evaluate;
pub mod notify;
pub mod rule;
pub mod state;
pub mod store;
pub mod traceql;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use sextant_model::TraceId;
use sextant_storage::engine::Engine;
use tracing::{info, warn};

use crate::blocking::on_blocking_pool;
use crate::config::AlertingOptions;
use crate::derived::DerivedMetrics;
use notify::{AlertEvent, Notifier, NotifyMetrics};
use rule::{Metric, Rule, RuleError};
use state::{AlertState, AlertStatus, Transition};
use store::{RuleStore, StoreError};

/// Where a rule comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSource {
    /// `[[alerting.rules]]` in the config file: read-only through the API.
    Config,
    /// Created through the API and kept in `{data_dir}/alerting/rules.json`.
    Api,
}

impl RuleSource {
    pub fn name(self) -> &'static str {
        match self {
            RuleSource::Config => "config",
            RuleSource::Api => "api",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("{0}")]
    Invalid(#[from] RuleError),
    #[error("a rule named {0:?} already exists")]
    Duplicate(String),
    #[error("no rule named {0:?}")]
    NotFound(String),
    #[error("rule {0:?} comes from the config file and cannot be changed through the API")]
    ReadOnly(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// One rule's alert and the traces that exemplify it.
#[derive(Clone, Debug)]
pub struct Alert {
    pub rule: Rule,
    pub status: AlertStatus,
    /// From the last evaluation where the condition held and exemplars were found.
    pub example_traces: Vec<TraceId>,
}

/// The rules, their alerts and the notifier.
pub struct Alerting {
    config_rules: Vec<Rule>,
    /// The API's rules in creation order; held while the file is rewritten.
    api_rules: tokio::sync::Mutex<Vec<Rule>>,
    store: RuleStore,
    alerts: parking_lot::Mutex<BTreeMap<String, Alert>>,
    /// Held for a whole evaluation.
    evaluation: tokio::sync::Mutex<()>,
    derived: Arc<DerivedMetrics>,
    /// Where TraceQL rules read their spans.
    engine: Arc<Engine>,
    notifier: Notifier,
    /// The query API's base URL, for `externalURL` and `generatorURL`.
    external_url: String,
    pub evaluation_interval: Duration,
}

impl Alerting {
    /// Loads the API's rules and builds the notifier; returns the webhook delivery loop to
    /// run. A stored rule whose name a config rule now takes is ignored with a warning.
    pub fn start(
        options: &AlertingOptions,
        data_dir: &std::path::Path,
        derived: Arc<DerivedMetrics>,
        engine: Arc<Engine>,
        registry: &mut Registry,
        external_url: String,
    ) -> Result<(Arc<Alerting>, impl std::future::Future<Output = ()> + use<>), AlertingError> {
        let store = RuleStore::new(data_dir);
        let mut api_rules = store.load()?;
        api_rules.retain(|rule| {
            let shadowed = options.rules.iter().any(|r| r.name == rule.name);
            if shadowed {
                warn!(rule = %rule.name, "an API rule has the name of a config rule; the config rule is used");
            }
            !shadowed
        });
        let metrics = NotifyMetrics::default();
        metrics.register(registry);
        let (notifier, delivery) = Notifier::new(options.webhooks.clone(), metrics, notify::FIRST_BACKOFF);
        info!(
            config_rules = options.rules.len(),
            api_rules = api_rules.len(),
            webhooks = options.webhooks.len(),
            "alerting started"
        );
        let alerting = Arc::new(Alerting {
            config_rules: options.rules.clone(),
            api_rules: tokio::sync::Mutex::new(api_rules),
            store,
            alerts: parking_lot::Mutex::new(BTreeMap::new()),
            evaluation: tokio::sync::Mutex::new(()),
            derived,
            engine,
            notifier,
            external_url,
            evaluation_interval: options.evaluation_interval,
        });
        Ok((alerting, delivery))
    }

    /// Every rule, config rules first.
    pub async fn rules(&self) -> Vec<(Rule, RuleSource)> {
        let api_rules = self.api_rules.lock().await;
        self.config_rules
            .iter()
            .map(|r| (r.clone(), RuleSource::Config))
            .chain(api_rules.iter().map(|r| (r.clone(), RuleSource::Api)))
            .collect()
    }

    pub async fn rule(&self, name: &str) -> Option<(Rule, RuleSource)> {
        self.rules().await.into_iter().find(|(rule, _)| rule.name == name)
    }

    fn config_rule(&self, name: &str) -> bool {
        self.config_rules.iter().any(|r| r.name == name)
    }

    /// Adds an API rule and stores it.
    pub async fn create(&self, rule: Rule) -> Result<(), AlertingError> {
        rule.validate()?;
        let mut api_rules = self.api_rules.lock().await;
        if self.config_rule(&rule.name) || api_rules.iter().any(|r| r.name == rule.name) {
            return Err(AlertingError::Duplicate(rule.name));
        }
        let mut next = api_rules.clone();
        next.push(rule);
        self.save(&next).await?;
        *api_rules = next;
        Ok(())
    }

    /// Replaces the API rule `name` (the new rule must keep the name).
    pub async fn update(&self, name: &str, rule: Rule) -> Result<(), AlertingError> {
        if self.config_rule(name) {
            return Err(AlertingError::ReadOnly(name.to_string()));
        }
        let mut api_rules = self.api_rules.lock().await;
        let Some(index) = api_rules.iter().position(|r| r.name == name) else {
            return Err(AlertingError::NotFound(name.to_string()));
        };
        if rule.name != name {
            let message = format!("must be {name:?}, the rule's name in the path");
            return Err(RuleError { field: "name".into(), message }.into());
        }
        rule.validate()?;
        let mut next = api_rules.clone();
        next[index] = rule;
        self.save(&next).await?;
        *api_rules = next;
        Ok(())
    }

    /// Removes the API rule `name`.
    pub async fn delete(&self, name: &str) -> Result<(), AlertingError> {
        if self.config_rule(name) {
            return Err(AlertingError::ReadOnly(name.to_string()));
        }
        let mut api_rules = self.api_rules.lock().await;
        let Some(index) = api_rules.iter().position(|r| r.name == name) else {
            return Err(AlertingError::NotFound(name.to_string()));
        };
        let mut next = api_rules.clone();
        next.remove(index);
        self.save(&next).await?;
        *api_rules = next;
        self.alerts.lock().remove(name);
        Ok(())
    }

    async fn save(&self, rules: &[Rule]) -> Result<(), AlertingError> {
        let store = self.store.clone();
        let rules = rules.to_vec();
        Ok(on_blocking_pool("saving the alert rules", move || store.save(&rules)).await?)
    }

    /// The alerts that are pending, firing or resolved (not yet forgotten), by rule name.
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().values().filter(|a| a.status.state != AlertState::Inactive).cloned().collect()
    }

    /// Evaluates every rule now, advances the alerts and queues their notifications.
    pub async fn evaluate_now(&self) {
        let _one_at_a_time = self.evaluation.lock().await;
        let rules: Vec<Rule> = self.rules().await.into_iter().map(|(rule, _)| rule).collect();
        let now_unix_nanos = sextant_model::now_unix_nanos();
        // Span metrics rules under the span metrics lock; TraceQL rules after it, on the engine.
        let span_metrics_evaluations = self
            .derived
            .read(move |span_metrics, _| {
                rules
                    .into_iter()
                    .map(|rule| {
                        let evaluation = (rule.expr.metric != Metric::Traceql)
                            .then(|| evaluate::evaluate(span_metrics, &rule, now_unix_nanos));
                        (rule, evaluation)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        let mut evaluations = Vec::with_capacity(span_metrics_evaluations.len());
        for (rule, evaluation_opt) in span_metrics_evaluations {
            let evaluation = match evaluation_opt {
                Some(evaluation) => evaluation,
                None => traceql::evaluate(&self.engine, &rule, now_unix_nanos).await,
            };
            evaluations.push((rule, evaluation));
        }
        let mut events = Vec::new();
        {
            let mut alerts = self.alerts.lock();
            alerts.retain(|name, _| evaluations.iter().any(|(rule, _)| rule.name == *name));
            for (rule, evaluation) in evaluations {
                let alert = alerts.entry(rule.name.clone()).or_insert_with(|| Alert {
                    rule: rule.clone(),
                    status: AlertStatus::default(),
                    example_traces: Vec::new(),
                });
                alert.rule = rule;
                let transition = alert.status.step(
                    evaluation.condition,
                    evaluation.value_opt,
                    now_unix_nanos,
                    alert.rule.for_nanos(),
                );
                if evaluation.condition && !evaluation.example_traces.is_empty() {
                    alert.example_traces = evaluation.example_traces;
                }
                match transition {
                    Transition::None => {}
                    Transition::Fired | Transition::Resolved => events.push(self.event(alert)),
                }
            }
        }
        for event in events {
            info!(rule = %event.labels["alertname"], firing = event.firing, "alert notification");
            self.notifier.send(notify::webhook_body(&event, &self.external_url));
        }
    }

    fn event(&self, alert: &Alert) -> AlertEvent {
        let mut annotations = alert.rule.annotations.clone();
        if !alert.example_traces.is_empty() {
            let ids: Vec<String> = alert.example_traces.iter().map(TraceId::to_hex).collect();
            annotations.insert("example_traces".into(), ids.join(","));
        }
        let firing = alert.status.state == AlertState::Firing;
        AlertEvent {
            firing,
            labels: alert.rule.alert_labels(),
            annotations,
            starts_at_unix_nanos: alert.status.active_at_unix_nanos_opt.unwrap_or_default(),
            ends_at_unix_nanos_opt: if firing { None } else { alert.status.resolved_at_unix_nanos_opt },
            generator_url: format!("{}{}", self.external_url, rule_path(&alert.rule.name)),
        }
    }
}

/// The API path of a rule, its name percent-encoded.
pub fn rule_path(name: &str) -> String {
    let mut path = String::from("/api/v1/alert-rules/");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            path.push(byte as char);
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}
