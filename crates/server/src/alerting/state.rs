//! The state of one rule's alert, advanced once per evaluation with the wall-clock time
//! passed in (no clock here, so every transition is tested with explicit times).
//!
//! ```text
//!              condition true                   held for `for`
//!  inactive ───────────────────> pending ─────────────────────────> firing
//!     ^  ^                          │          (at once if for = 0)    │
//!     │  └──── condition false ─────┘                                  │ condition false
//!     │                                                                v
//!     └──────── RESOLVED_KEEP_NANOS later ─────────────────────── resolved
//!                (condition true again: pending or firing as from inactive)
//! ```
//!
//! A condition without a value (no calls for an error rate or a latency) is false.

use serde::Serialize;

/// How long a resolved alert stays listed before it becomes inactive (Prometheus keeps
/// resolved alerts 15 minutes).
pub const RESOLVED_KEEP_NANOS: u64 = 15 * 60 * 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// What an evaluation changed that receivers must hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    Fired,
    Resolved,
}

/// One rule's alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertStatus {
    pub state: AlertState,
    /// The value of the last evaluation; `None` when the series had no calls.
    pub value_opt: Option<f64>,
    /// When the condition became true (the start of pending or firing).
    pub active_at_unix_nanos_opt: Option<u64>,
    /// When the alert last fired.
    pub fired_at_unix_nanos_opt: Option<u64>,
    /// When the alert last resolved.
    pub resolved_at_unix_nanos_opt: Option<u64>,
}

impl Default for AlertStatus {
    fn default() -> Self {
        AlertStatus {
            state: AlertState::Inactive,
            value_opt: None,
            active_at_unix_nanos_opt: None,
            fired_at_unix_nanos_opt: None,
            resolved_at_unix_nanos_opt: None,
        }
    }
}

impl AlertStatus {
    /// Advances the alert with the condition evaluated at `now_unix_nanos`.
    pub fn step(&mut self, condition: bool, value_opt: Option<f64>, now_unix_nanos: u64, for_nanos: u64) -> Transition {
        self.value_opt = value_opt;
        match (self.state, condition) {
            (AlertState::Inactive | AlertState::Resolved, true) => {
                self.active_at_unix_nanos_opt = Some(now_unix_nanos);
                self.fired_at_unix_nanos_opt = None;
                self.resolved_at_unix_nanos_opt = None;
                self.state = AlertState::Pending;
                self.fire_if_due(now_unix_nanos, for_nanos)
            }
            (AlertState::Pending, true) => self.fire_if_due(now_unix_nanos, for_nanos),
            (AlertState::Pending, false) => {
                self.state = AlertState::Inactive;
                self.active_at_unix_nanos_opt = None;
                Transition::None
            }
            (AlertState::Firing, true) => Transition::None,
            (AlertState::Firing, false) => {
                self.state = AlertState::Resolved;
                self.resolved_at_unix_nanos_opt = Some(now_unix_nanos);
                Transition::Resolved
            }
            (AlertState::Resolved, false) => {
                let resolved_at = self.resolved_at_unix_nanos_opt.unwrap_or(now_unix_nanos);
                if now_unix_nanos.saturating_sub(resolved_at) >= RESOLVED_KEEP_NANOS {
                    *self = AlertStatus { value_opt, ..AlertStatus::default() };
                }
                Transition::None
            }
            (AlertState::Inactive, false) => Transition::None,
        }
    }

    fn fire_if_due(&mut self, now_unix_nanos: u64, for_nanos: u64) -> Transition {
        let active_at = self.active_at_unix_nanos_opt.unwrap_or(now_unix_nanos);
        if now_unix_nanos.saturating_sub(active_at) >= for_nanos {
            self.state = AlertState::Firing;
            self.fired_at_unix_nanos_opt = Some(now_unix_nanos);
            Transition::Fired
        } else {
            Transition::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn pending_until_for_elapses_then_firing_then_resolved() {
        let mut alert = AlertStatus::default();
        assert_eq!(alert.step(true, Some(0.9), 100 * S, 30 * S), Transition::None);
        assert_eq!(alert.state, AlertState::Pending);
        assert_eq!(alert.active_at_unix_nanos_opt, Some(100 * S));
        assert_eq!(alert.step(true, Some(0.8), 129 * S, 30 * S), Transition::None);
        assert_eq!(alert.state, AlertState::Pending);
        assert_eq!(alert.step(true, Some(0.7), 130 * S, 30 * S), Transition::Fired);
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.fired_at_unix_nanos_opt, Some(130 * S));
        assert_eq!(alert.step(true, Some(0.7), 145 * S, 30 * S), Transition::None);
        assert_eq!(alert.step(false, Some(0.1), 160 * S, 30 * S), Transition::Resolved);
        assert_eq!(alert.state, AlertState::Resolved);
        assert_eq!(alert.resolved_at_unix_nanos_opt, Some(160 * S));
        assert_eq!(alert.active_at_unix_nanos_opt, Some(100 * S), "kept for the resolved alert's listing");
        assert_eq!(alert.value_opt, Some(0.1));
    }

    #[test]
    fn for_zero_fires_at_the_first_true_evaluation() {
        let mut alert = AlertStatus::default();
        assert_eq!(alert.step(true, Some(1.0), 5 * S, 0), Transition::Fired);
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.active_at_unix_nanos_opt, Some(5 * S));
    }

    #[test]
    fn pending_that_turns_false_goes_back_to_inactive_without_notification() {
        let mut alert = AlertStatus::default();
        alert.step(true, Some(1.0), 10 * S, 60 * S);
        assert_eq!(alert.step(false, None, 20 * S, 60 * S), Transition::None);
        assert_eq!(alert, AlertStatus::default());
        // A new activation starts the `for` duration again.
        alert.step(true, Some(1.0), 30 * S, 60 * S);
        assert_eq!(alert.step(true, Some(1.0), 80 * S, 60 * S), Transition::None);
        assert_eq!(alert.step(true, Some(1.0), 90 * S, 60 * S), Transition::Fired);
    }

    #[test]
    fn resolved_is_kept_for_a_while_then_inactive() {
        let mut alert = AlertStatus::default();
        alert.step(true, Some(1.0), 0, 0);
        alert.step(false, Some(0.0), 10 * S, 0);
        alert.step(false, Some(0.0), 10 * S + RESOLVED_KEEP_NANOS - 1, 0);
        assert_eq!(alert.state, AlertState::Resolved);
        alert.step(false, Some(0.0), 10 * S + RESOLVED_KEEP_NANOS, 0);
        assert_eq!(alert.state, AlertState::Inactive);
        assert_eq!(alert.resolved_at_unix_nanos_opt, None);
    }

    #[test]
    fn resolved_alert_that_becomes_true_again_fires_anew() {
        let mut alert = AlertStatus::default();
        alert.step(true, Some(1.0), 0, 0);
        alert.step(false, Some(0.0), 10 * S, 0);
        assert_eq!(alert.step(true, Some(1.0), 20 * S, 5 * S), Transition::None);
        assert_eq!(alert.state, AlertState::Pending);
        assert_eq!(alert.resolved_at_unix_nanos_opt, None);
        assert_eq!(alert.step(true, Some(1.0), 25 * S, 5 * S), Transition::Fired);
        assert_eq!(alert.fired_at_unix_nanos_opt, Some(25 * S));
    }
}
