//! The alert state machine, Prometheus-style: a condition must hold for `for` before an alert
//! fires, and must stay clear for `keep_firing_for` before a firing alert resolves, so a value
//! hovering at a threshold does not flap.

use serde::{Deserialize, Serialize};

pub use crate::domain::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, not yet for long enough.
    Pending,
    Firing,
    /// Was firing; the condition has stayed clear for `keep_firing_for`.
    Resolved,
}

/// What an alert is about: one rule on one campaign or channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    pub campaign: String,
    /// Empty for campaign-wide rules.
    pub channel: String,
    pub rule: String,
}

impl AlertKey {
    /// `campaign/channel`, or the campaign for a campaign-wide rule.
    pub fn scope(&self) -> String {
        if self.channel.is_empty() { self.campaign.clone() } else { format!("{}/{}", self.campaign, self.channel) }
    }
}

/// How long a condition must hold before firing, and stay clear before resolving (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
}

/// One evaluation's verdict on a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub active: bool,
    pub severity: Severity,
    pub observed: Option<f64>,
    /// The expected value, or the limit, and the half-width of its band when there is one.
    pub expected: Option<(f64, f64)>,
    /// One line a person can act on. Left empty by the rules when nothing would show it: the
    /// condition is clear and its alert is not pending or firing (see `rules::evaluate`).
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub key: AlertKey,
    pub state: AlertState,
    pub severity: Severity,
    /// When the condition started to hold (pending) — kept while firing.
    pub since_ms: i64,
    /// When it fired; `None` while pending.
    pub fired_ms: Option<i64>,
    /// When the condition was last seen clear while firing; `None` while it holds.
    pub clear_since_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub observed: Option<f64>,
    pub expected: Option<(f64, f64)>,
    pub summary: String,
    /// Who acknowledged it and when (unix ms); cleared when the alert fires anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Ack>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub at_ms: i64,
}

/// What changed on an evaluation, for notifications and annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Pending,
    Fired,
    Resolved,
    /// The condition cleared before `for` elapsed: the pending alert is dropped.
    Dropped,
}

/// Moves `current` (none when there is no alert yet) by one verdict at `now`. Returns the alert
/// to keep (none when there is nothing to keep) and what happened.
pub fn step(
    current: Option<Alert>,
    key: &AlertKey,
    v: &Verdict,
    timing: Timing,
    now: i64,
) -> (Option<Alert>, Transition) {
    match current {
        None | Some(Alert { state: AlertState::Resolved, .. }) if !v.active => (current, Transition::None),
        None | Some(Alert { state: AlertState::Resolved, .. }) => {
            let mut a = Alert {
                key: key.clone(),
                state: AlertState::Pending,
                severity: v.severity,
                since_ms: now,
                fired_ms: None,
                clear_since_ms: None,
                resolved_ms: None,
                observed: v.observed,
                expected: v.expected,
                summary: v.summary.clone(),
                ack: None,
            };
            if timing.for_ms <= 0 {
                a.state = AlertState::Firing;
                a.fired_ms = Some(now);
                return (Some(a), Transition::Fired);
            }
            (Some(a), Transition::Pending)
        }
        Some(mut a) => {
            if v.active {
                a.severity = v.severity;
                a.observed = v.observed;
                a.expected = v.expected;
                a.summary = v.summary.clone();
                a.clear_since_ms = None;
                if a.state == AlertState::Pending && now - a.since_ms >= timing.for_ms {
                    a.state = AlertState::Firing;
                    a.fired_ms = Some(now);
                    return (Some(a), Transition::Fired);
                }
                return (Some(a), Transition::None);
            }
            match a.state {
                AlertState::Pending => (None, Transition::Dropped),
                AlertState::Firing => {
                    let clear_since = *a.clear_since_ms.get_or_insert(now);
                    a.observed = v.observed;
                    if now - clear_since >= timing.keep_firing_for_ms {
                        a.state = AlertState::Resolved;
                        a.resolved_ms = Some(now);
                        // Say what it is now, not what it was at the last breach.
                        a.summary = format!("cleared: {}", v.summary);
                        return (Some(a), Transition::Resolved);
                    }
                    (Some(a), Transition::None)
                }
                AlertState::Resolved => (Some(a), Transition::None),
            }
        }
    }
}

/// An alert the state machine moved: what it is now (`None`: gone) and how it got there.
pub struct Moved {
    pub key: AlertKey,
    pub after: Option<Alert>,
    pub transition: Transition,
    pub summary: String,
}

/// Step 2: moves each alert by its verdict (pure: the state machine and the clock). A verdict
/// of `None` is too little to judge, and the alert stays as it is. An alert that fires again
/// loses its ack.
pub fn step_all(
    alerts: &mut std::collections::BTreeMap<AlertKey, Alert>,
    verdicts: Vec<super::rules::Outcome>,
    now: i64,
) -> Vec<Moved> {
    let mut moved = Vec::new();
    for (key, verdict, timing) in verdicts {
        let Some(verdict) = verdict else { continue };
        let before = alerts.remove(&key);
        let (mut after, transition) = step(before.clone(), &key, &verdict, timing, now);
        if transition == Transition::Fired
            && let Some(a) = &mut after
        {
            a.ack = None;
        }
        if let Some(a) = &after {
            alerts.insert(key.clone(), a.clone());
        }
        if after != before {
            moved.push(Moved { key, after, transition, summary: verdict.summary });
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> AlertKey {
        AlertKey { campaign: "c".into(), channel: "x".into(), rule: "kpi:ctr".into() }
    }

    fn verdict(active: bool) -> Verdict {
        Verdict {
            active,
            severity: Severity::Warn,
            observed: Some(1.0),
            expected: Some((2.0, 0.3)),
            summary: "s".into(),
        }
    }

    const T: Timing = Timing { for_ms: 10, keep_firing_for_ms: 20 };

    #[test]
    fn pending_then_firing_then_resolved() {
        let (a, t) = step(None, &key(), &verdict(true), T, 0);
        assert_eq!((a.as_ref().unwrap().state, t), (AlertState::Pending, Transition::Pending));
        let (a, t) = step(a, &key(), &verdict(true), T, 5);
        assert_eq!((a.as_ref().unwrap().state, t), (AlertState::Pending, Transition::None));
        let (a, t) = step(a, &key(), &verdict(true), T, 10);
        assert_eq!((a.as_ref().unwrap().state, t), (AlertState::Firing, Transition::Fired));
        // Clear, but not for long enough: keeps firing; active again resets the clear clock.
        let (a, _) = step(a, &key(), &verdict(false), T, 15);
        let (a, _) = step(a, &key(), &verdict(true), T, 30);
        let (a, t) = step(a, &key(), &verdict(false), T, 31);
        assert_eq!((a.as_ref().unwrap().state, t), (AlertState::Firing, Transition::None));
        let (a, t) = step(a, &key(), &verdict(false), T, 51);
        assert_eq!((a.as_ref().unwrap().state, t), (AlertState::Resolved, Transition::Resolved));
        assert_eq!(a.as_ref().unwrap().since_ms, 0);
        // A resolved alert that comes back starts a new pending period.
        let (a, t) = step(a, &key(), &verdict(true), T, 60);
        assert_eq!((a.unwrap().state, t), (AlertState::Pending, Transition::Pending));
    }

    #[test]
    fn a_blip_shorter_than_for_never_fires() {
        let (a, _) = step(None, &key(), &verdict(true), T, 0);
        let (a, t) = step(a, &key(), &verdict(false), T, 5);
        assert_eq!((a, t), (None, Transition::Dropped));
    }

    proptest! {
        /// However the condition flips, an alert never fires sooner than `for` after it began to
        /// hold, and never resolves sooner than `keep_firing_for` after it last held.
        #[test]
        fn no_early_firing_or_resolving(flips in proptest::collection::vec(any::<bool>(), 1..200)) {
            let mut a = None;
            let mut last_active = None;
            let mut run_start: Option<i64> = None;
            for (i, active) in flips.into_iter().enumerate() {
                let now = i as i64 * 3;
                if active { run_start.get_or_insert(now); last_active = Some(now); } else { run_start = None; }
                let (next, t) = step(a, &key(), &verdict(active), T, now);
                match t {
                    Transition::Fired => prop_assert!(now - next.as_ref().unwrap().since_ms >= T.for_ms),
                    Transition::Resolved => prop_assert!(now - last_active.unwrap() >= T.keep_firing_for_ms),
                    _ => {}
                }
                a = next;
            }
        }
    }
}
