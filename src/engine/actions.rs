//! The engine's side of optimize: recommendations recomputed as data arrives, actions journaled
//! before they are sent and after they are answered, undo, snoozes, and the read-only switch —
//! checked here, where actions are dispatched, so no view or key can get around it.

use super::{ChannelState, Engine};
use crate::domain::ChannelKey;
use crate::domain::time::DAY_MS;
use crate::domain::{ChannelStatus, ControlAction};
use crate::optimize::control::ControlRequest;
use crate::optimize::control::{ControlError, Dispatch};
use crate::optimize::journal::{JournalEntry, Outcome, last_undoable};
use crate::optimize::recommend::{Change, ChannelFacts, Recommendation, recommend};
use std::sync::Arc;

/// How far back recommendations look (campaign time).
pub const LOOKBACK_MS: i64 = DAY_MS;
/// Recommendations over a day of data move little in a few minutes: recomputed at most this
/// often per campaign (campaign time), and at once after an action or a snooze.
pub const RECOMPUTE_EVERY_MS: i64 = 5 * 60_000;

impl Engine {
    /// Reads the journal and snoozes; an entry still "sending" was cut off by a crash and is
    /// marked unknown (and saved so).
    pub(super) fn load_optimize(&mut self) -> crate::store::Result<()> {
        self.journal = self.writer.store().journal()?;
        for e in self.journal.iter_mut().filter(|e| e.outcome == Outcome::Sending) {
            e.outcome = Outcome::Unknown { reason: None };
            self.writer.store().put_journal(e)?;
        }
        self.snoozes = self.writer.store().snoozes()?.into_iter().collect();
        self.snapshot.journal = Arc::new(self.journal.clone());
        Ok(())
    }

    pub(super) fn notify(&mut self, text: String) {
        self.snapshot.notice = Some((self.snapshot.notice.as_ref().map_or(1, |(n, _)| n + 1), text));
        self.dirty = true;
    }

    /// Journals and queues `changes` on `campaign`'s channels, confirmed by `by`.
    pub fn apply(&mut self, campaign: &str, changes: &[Change], recommendation: Option<String>, by: &str) {
        if self.read_only {
            let what: Vec<String> = changes.iter().map(Change::describe).collect();
            self.notify(format!("read-only: not sent ({})", what.join("; ")));
            return;
        }
        // Every channel must have a control endpoint before anything is sent.
        let mut targets = Vec::new();
        for ch in changes {
            let key = ChannelKey::new(campaign, &ch.channel);
            match self.channels.get(&key).map(|st| (st.plan().control.clone(), st.plan().source_id().to_string())) {
                Some((Some(url), platform_id)) => targets.push((url, platform_id)),
                Some((None, _)) => {
                    return self.notify(format!("{} has no control endpoint in its campaign file", ch.channel));
                }
                None => return self.notify(format!("no channel {key}")),
            }
        }
        for (ch, (url, platform_id)) in changes.iter().zip(targets) {
            self.send(campaign, ch.clone(), url, platform_id, recommendation.clone(), None, by);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        campaign: &str,
        change: Change,
        url: String,
        platform_id: String,
        recommendation: Option<String>,
        undo_of: Option<u64>,
        by: &str,
    ) {
        let id = match self.writer.store().next_id() {
            Ok(id) => id,
            Err(e) => return self.notify(format!("not sent: the journal cannot be written: {e}")),
        };
        let key = format!("cockpit-{id}-{}", std::process::id());
        let entry = JournalEntry {
            id,
            at_ms: self.clock.now_ms(),
            wall_ms: chrono::Utc::now().timestamp_millis(),
            by: by.to_string(),
            campaign: campaign.to_string(),
            inverse: change.inverse(),
            change: change.clone(),
            idempotency_key: key.clone(),
            recommendation,
            undo_of,
            undone_by: None,
            outcome: Outcome::Sending,
        };
        // On disk before it leaves: a crash now leaves an entry whose outcome is unknown.
        if let Err(e) = self.writer.store().put_journal(&entry) {
            return self.notify(format!("not sent: the journal cannot be written: {e}"));
        }
        self.notify(format!("sending #{id}: {}", change.describe()));
        self.journal.push(entry);
        self.outbox.push(Dispatch {
            entry: id,
            url,
            request: ControlRequest {
                channel: platform_id,
                action: change.action,
                value: change.value,
                variant: change.variant.clone(),
                idempotency_key: key,
            },
        });
        self.journal_changed();
    }

    /// Sends the inverse of journal entry `entry` (the last undoable one of `campaign` when
    /// `None`).
    pub fn undo(&mut self, entry: Option<u64>, campaign: Option<&str>, by: &str) {
        let target = match entry {
            Some(id) => self.journal.iter().find(|e| e.id == id),
            None => last_undoable(&self.journal, campaign),
        };
        let Some(target) = target.cloned() else {
            return self.notify("nothing to undo: no applied action".into());
        };
        if !target.undoable() {
            return self.notify(format!("#{} cannot be undone: {}", target.id, target.outcome.label()));
        }
        if self.read_only {
            return self.notify(format!("read-only: undo of #{} not sent", target.id));
        }
        let key = ChannelKey::new(&target.campaign, &target.change.channel);
        let Some(st) = self.channels.get(&key) else { return self.notify(format!("no channel {key}")) };
        let Some(url) = st.plan().control.clone() else {
            return self.notify(format!("{} has no control endpoint", key.channel));
        };
        let platform_id = st.plan().source_id().to_string();
        self.send(&target.campaign, target.inverse.clone(), url, platform_id, None, Some(target.id), by);
    }

    /// Hides a recommendation for `for_ms` of campaign time.
    pub fn snooze(&mut self, rec: &str, for_ms: i64) {
        let until = self.clock.now_ms() + for_ms.max(0);
        let saved = self.writer.store().put_snooze(rec, until);
        self.writer.saved(saved);
        self.snoozes.insert(rec.to_string(), until);
        self.recs_stale = true;
        self.dirty = true;
    }

    /// The actions to send now (the run loop sends them; tests may answer them by hand).
    pub fn take_outbox(&mut self) -> Vec<Dispatch> {
        std::mem::take(&mut self.outbox)
    }

    /// Records the answer to a sent action.
    pub fn on_control(&mut self, entry: u64, result: Result<String, ControlError>) {
        let Some(i) = self.journal.iter().position(|e| e.id == entry) else { return };
        let e = &mut self.journal[i];
        e.outcome = match &result {
            Ok(detail) => Outcome::Applied { detail: detail.clone() },
            Err(ControlError::NotApplied(reason)) => Outcome::Failed { reason: reason.clone() },
            Err(ControlError::Unknown(reason)) => Outcome::Unknown { reason: Some(reason.clone()) },
        };
        let e = e.clone();
        let saved = self.writer.store().put_journal(&e);
        self.writer.saved(saved);
        if let (Ok(_), Some(orig)) = (&result, e.undo_of)
            && let Some(o) = self.journal.iter_mut().find(|x| x.id == orig)
        {
            o.undone_by = Some(e.id);
            let o = o.clone();
            let saved = self.writer.store().put_journal(&o);
            self.writer.saved(saved);
        }
        if result.is_ok() {
            self.note_action(&e);
        }
        tracing::info!(entry, "control {}: {}", e.change.describe(), e.outcome.label());
        self.notify(format!("#{} {}: {}", e.id, e.change.describe(), e.outcome.label()));
        self.journal_changed();
    }

    fn journal_changed(&mut self) {
        self.snapshot.journal = Arc::new(self.journal.clone());
        self.recs_stale = true;
        self.dirty = true;
    }

    /// Recomputes the recommendations of campaigns whose channels changed (all of them after a
    /// journal or snooze change).
    pub(super) fn refresh_recommendations(&mut self, changed: &super::Marks) {
        let now = self.clock.now_ms();
        let all = std::mem::take(&mut self.recs_stale);
        let mut any = false;
        for (view, span) in self.snapshot.campaigns.iter().zip(&self.spans) {
            let c = &view.campaign;
            let due = self.recs_at.get(&c.id).is_none_or(|at| now - at >= RECOMPUTE_EVERY_MS);
            let touched = due && changed.any_in(span.clone());
            if !all && !touched {
                continue;
            }
            self.recs_at.insert(c.id.clone(), now);
            any = true;
            let facts: Vec<ChannelFacts> = view
                .channels
                .iter()
                .filter_map(|v| {
                    let st = self.channels.get(&v.key)?;
                    Some(self.facts(st, v, view.totals.spend, now))
                })
                .collect();
            let recs: Vec<Recommendation> = recommend(c, &facts, now)
                .into_iter()
                .filter(|r| self.snoozes.get(&r.id).is_none_or(|until| *until <= now))
                .collect();
            self.recs.insert(c.id.clone(), recs);
        }
        if any {
            let mut list: Vec<Recommendation> = Vec::new();
            for c in &self.campaigns {
                list.extend(self.recs.get(&c.id).into_iter().flatten().cloned());
            }
            self.snapshot.recommendations = Arc::new(list);
        }
    }

    fn facts(
        &self,
        st: &ChannelState,
        v: &crate::engine::snapshot::ChannelView,
        spent_total: f64,
        now: i64,
    ) -> ChannelFacts {
        let (window, window_ms) = st.history.sum_since(now - LOOKBACK_MS, now);
        let mine = |e: &&JournalEntry| e.campaign == v.key.campaign && e.change.channel == v.key.channel;
        let applied = |e: &&JournalEntry| matches!(e.outcome, Outcome::Applied { .. });
        let changed_ms = self.journal.iter().filter(mine).filter(applied).map(|e| e.at_ms).max();
        let winner = self
            .journal
            .iter()
            .filter(mine)
            .filter(applied)
            .rfind(|e| e.change.action == ControlAction::DeclareWinner)
            .and_then(|e| e.change.variant.clone());
        ChannelFacts {
            id: v.key.channel.clone(),
            window,
            window_ms,
            budget: v.daily_budget,
            min_budget: st.plan().min_budget.unwrap_or(0.0),
            max_budget: st.plan().max_budget.unwrap_or(f64::INFINITY),
            paused: v.status == Some(ChannelStatus::Paused),
            variants: v.variants.clone(),
            winner,
            changed_ms,
            healthy: v.health.severity() <= crate::domain::Health::Slow.severity(),
            controllable: st.plan().control.is_some(),
            spent_total,
        }
    }
}
