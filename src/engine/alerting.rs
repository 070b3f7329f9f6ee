//! Alert evaluation in three steps: the rules judge the channels that changed, the state
//! machine moves each alert by its verdict, and what moved is written and noted.

use super::{ChannelState, Engine, Marks};
use crate::alert::rules::{CampaignInput, ChannelInput, JUDGE_WINDOWS_EVERY_MS, Outcome, evaluate};
use crate::alert::state::{Moved, Transition, step_all as step_alerts};
use crate::alert::{AlertKey, AlertState};
use crate::domain::time::DAY_MS;
use crate::domain::{ChannelStatus, Note, NoteKind};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

impl Engine {
    /// Judges the channels that changed, moves their alerts, writes and notes what moved, and
    /// lets expired silences and day-old resolved alerts go.
    pub(super) fn evaluate_alerts(&mut self, changed: &Marks) {
        let now = self.clock.now_ms();
        let verdicts = self.judge(changed, now);
        let moved = step_alerts(&mut self.alerts, verdicts, now);
        self.persist_alerts(moved, now);
        self.expire(now);
    }

    /// Step 1: the rules' verdicts on the channels that changed (a channel without new data or
    /// a new health state would get the same verdicts, so only those are judged again).
    fn judge(&mut self, changed: &Marks, now: i64) -> Vec<Outcome> {
        let judged = now.div_euclid(JUDGE_WINDOWS_EVERY_MS);
        let mut verdicts = Vec::new();
        let listed: HashSet<(&str, &str)> =
            self.alerts.keys().map(|k| (k.campaign.as_str(), k.channel.as_str())).collect();
        for (view, span) in self.snapshot.campaigns.iter().zip(&self.spans) {
            let c = &view.campaign;
            let inputs: Vec<ChannelInput<'_>> = view
                .channels
                .iter()
                .zip(span.clone())
                .filter(|(_, slot)| changed.has(*slot))
                .map(|(v, slot)| (v, self.channels.get_index(slot).map(|(_, st)| st)))
                .map(|(v, st)| ChannelInput {
                    id: &v.key.channel,
                    plan: st.map(ChannelState::plan),
                    recent: &v.recent,
                    health: v.health,
                    last_error: v.last_error.as_deref(),
                    failures: v.failures,
                    last_reset_ms: v.last_reset_ms,
                    today: v.today,
                    daily_budget: v.daily_budget,
                    paused: v.status == Some(ChannelStatus::Paused),
                    history: st.map(|st| &st.history),
                    windows: st.is_none_or(|st| st.windows_judged != judged),
                    unmapped: st.map_or(0, |st| st.unmapped),
                })
                .collect();
            if inputs.is_empty() {
                continue;
            }
            let active = |k: &AlertKey| {
                self.alerts.get(k).is_some_and(|a| matches!(a.state, AlertState::Pending | AlertState::Firing))
            };
            let has_data = view.channels.iter().any(|v| v.last_at > 0);
            verdicts.extend(evaluate(
                &CampaignInput { campaign: c, totals: view.totals, has_data },
                &inputs,
                now,
                &active,
                &|channel| listed.contains(&(c.id.as_str(), channel)),
            ));
        }
        for slot in changed.slots() {
            if let Some((_, st)) = self.channels.get_index_mut(slot) {
                st.windows_judged = judged;
            }
        }
        verdicts.extend(self.judge_tasks(now));
        verdicts
    }

    /// The checklists' verdicts: every campaign with tasks, whatever its channels did (a task
    /// falls due before launch, with nothing read yet).
    fn judge_tasks(&self, now: i64) -> Vec<Outcome> {
        let kept = |k: &AlertKey| self.alerts.contains_key(k);
        self.campaigns
            .iter()
            .filter(|c| !c.tasks.is_empty())
            .flat_map(|c| crate::alert::rules::tasks(c, now, &kept))
            .collect()
    }

    /// Judges the checklists alone and moves their alerts (a task marked done resolves at once).
    pub(super) fn evaluate_tasks(&mut self) {
        let now = self.clock.now_ms();
        let verdicts = self.judge_tasks(now);
        let moved = step_alerts(&mut self.alerts, verdicts, now);
        self.persist_alerts(moved, now);
    }

    /// Step 3: writes what moved, and notes on the campaign's timeline the alerts that fired or
    /// resolved.
    fn persist_alerts(&mut self, moved: Vec<Moved>, now: i64) {
        for m in moved {
            let saved = match &m.after {
                Some(a) => self.writer.store().put_alert(a),
                None => self.writer.store().remove_alert(&m.key),
            };
            self.writer.saved(saved);
            self.alerts_changed = true;
            self.dirty = true;
            if !matches!(m.transition, Transition::Fired | Transition::Resolved) {
                continue;
            }
            tracing::info!(alert = ?m.key, "{:?}: {}", m.transition, m.summary);
            let fired = m.transition == Transition::Fired;
            let text = match (&m.after, fired) {
                (Some(a), true) => format!("{} fired: {}", a.severity, m.summary),
                _ => format!("resolved: {}", m.summary),
            };
            self.add_note(Note {
                id: 0,
                at_ms: now,
                campaign: m.key.campaign.clone(),
                channel: (!m.key.channel.is_empty()).then(|| m.key.channel.clone()),
                kind: NoteKind::Alert,
                text,
                by: "cockpit".into(),
                rule: Some(m.key.rule.clone()),
                fired: Some(fired),
            });
        }
    }

    /// Expired silences go (the alerts they covered show again); resolved alerts stay on
    /// screen for a day of campaign time.
    fn expire(&mut self, now: i64) {
        let (live, expired): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.silences).into_iter().partition(|s| s.active(now));
        for s in expired {
            if let Err(e) = self.writer.store().remove_silence(&s.id) {
                tracing::warn!("removing expired silence {}: {e}", s.id);
            }
            self.alerts_changed = true;
            self.dirty = true;
        }
        self.silences = live;
        let before = self.alerts.len();
        self.alerts.retain(|_, a| a.resolved_ms.is_none_or(|r| now - r < DAY_MS));
        self.alerts_changed |= self.alerts.len() != before;
    }

    /// Puts the alerts in the snapshot in the order the alerts view shows them, with the
    /// silences.
    pub(super) fn publish_alerts(&mut self) {
        self.snapshot.alerts = sorted_alerts(&self.alerts);
        self.snapshot.silences = Arc::new(self.silences.clone());
    }
}

/// The alerts in the order the alerts view shows them: grouped by campaign, then firing
/// first, worst first.
pub(super) fn sorted_alerts(
    alerts: &BTreeMap<crate::alert::AlertKey, crate::alert::Alert>,
) -> Arc<Vec<crate::alert::Alert>> {
    let mut alerts: Vec<crate::alert::Alert> = alerts.values().cloned().collect();
    alerts.sort_by(|a, b| {
        let rank = |a: &crate::alert::Alert| match a.state {
            crate::alert::AlertState::Firing => 0,
            crate::alert::AlertState::Pending => 1,
            crate::alert::AlertState::Resolved => 2,
        };
        (&a.key.campaign, rank(a), std::cmp::Reverse(a.severity), &a.key).cmp(&(
            &b.key.campaign,
            rank(b),
            std::cmp::Reverse(b.severity),
            &b.key,
        ))
    });
    Arc::new(alerts)
}
