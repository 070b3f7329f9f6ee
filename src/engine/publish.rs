//! Building and sending snapshots: the views of the channels that changed are rebuilt, the
//! rules judge them, and the new snapshot replaces the old one on the watch channel.

use super::health::SourceState;
use super::snapshot::{CampaignView, ChannelView, SourceView};
use super::{ChannelState, Engine};
use crate::domain::{CampaignTotals, ChannelKey, Health};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Engine {
    /// Rebuilds what changed and sends the new snapshot.
    pub fn publish(&mut self) {
        // Before the channels' dirty marks are cleared below.
        if self.series_req.as_ref().is_some_and(|(k, _)| self.channels.get(k).is_some_and(|c| c.dirty)) {
            self.load_series();
        }
        self.refresh_analysis();
        let sources = &self.sources;
        let health_of = |url: &str| {
            sources.get(url).map_or((Health::Pending, None, 0), |s| (s.health, s.last_error.clone(), s.failures))
        };
        let mut campaigns = Vec::with_capacity(self.campaigns.len());
        let mut changed = std::mem::take(&mut self.unjudged);
        if self.first_snapshot {
            // Start-up waits for every channel's view: built on two threads.
            let mut dirty: Vec<(&ChannelKey, &mut ChannelState)> = Vec::new();
            for (slot, (key, st)) in self.channels.iter_mut().enumerate().filter(|(_, (_, st))| st.dirty) {
                changed.set(slot);
                dirty.push((key, st));
            }
            let half = dirty.len() / 2;
            let (a, b) = dirty.split_at_mut(half);
            let build = |part: &mut [(&ChannelKey, &mut ChannelState)]| {
                for (key, st) in part {
                    let source = health_of(&st.plan().source);
                    st.rebuild_view(key, source);
                }
            };
            std::thread::scope(|s| {
                s.spawn(|| build(a));
                build(b);
            });
        }
        for (c, span) in self.campaigns.iter().zip(&self.spans) {
            let mut views = Vec::with_capacity(span.len());
            for slot in span.clone() {
                let Some((key, st)) = self.channels.get_index_mut(slot) else { continue };
                if st.dirty {
                    let source = health_of(&st.plan().source);
                    st.rebuild_view(key, source);
                    changed.set(slot);
                }
                views.push(st.view.clone());
            }
            campaigns.push(Arc::new(CampaignView::new(c.clone(), views, self.clock.now_ms())));
        }
        self.snapshot.campaigns = campaigns;
        // The first snapshot goes out before the rules judge anything: the first frame shows the
        // stored figures and alerts at once, and the next snapshot brings the verdicts.
        let judge_later = std::mem::take(&mut self.first_snapshot);
        if judge_later {
            self.unjudged = changed;
        } else {
            self.evaluate_alerts(&changed);
            self.refresh_recommendations(&changed);
        }
        if std::mem::take(&mut self.alerts_changed) {
            self.publish_alerts();
        }
        // Latencies and poll counts are refreshed once a second; a change of health at once.
        if std::mem::take(&mut self.sources_changed)
            || self.sources_built.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.sources_built = Some(Instant::now());
            let by_source = &self.by_source;
            self.snapshot.sources = source_views(&self.sources, |url| by_source.get(url).map_or(0, |k| k.len()));
        }
        self.snapshot.store_error = self.writer.error().map(str::to_string);
        self.snapshot.compacting = self.writer.compacting();
        self.snapshot.now_ms = self.clock.now_ms();
        self.snapshot.generation += 1;
        tracing::trace!(generation = self.snapshot.generation, "published");
        self.dirty = judge_later;
        self.tx.send_replace(Arc::new(self.snapshot.clone()));
    }

    /// Campaign `i`'s channels summed up as the store holds their cursors.
    pub(super) fn stored_totals(&self, i: usize) -> CampaignTotals {
        super::persist::stored_totals(&self.campaigns[i], self.spans[i].clone(), &self.channels)
    }
}

/// The sources as the sources view shows them; `channels` counts each one's channels.
pub(super) fn source_views(
    sources: &BTreeMap<String, SourceState>,
    channels: impl Fn(&str) -> usize,
) -> Arc<Vec<SourceView>> {
    sources
        .values()
        .map(|s| SourceView {
            url: s.url.clone(),
            health: s.health,
            last_error: s.last_error.clone(),
            latency_ms: s.latency.map(|l| l.as_millis() as u64),
            last_ok: s.last_ok,
            channels: channels(&s.url),
            polls: s.polls,
        })
        .collect::<Vec<_>>()
        .into()
}

pub(super) fn build_view(key: &ChannelKey, st: &ChannelState, source: (Health, Option<String>, u32)) -> ChannelView {
    let (source_health, source_error, failures) = source;
    let (health, last_error) = match &st.missing {
        Some(m) if source_health.severity() < Health::BadData.severity() => (Health::BadData, Some(m.clone())),
        _ => (source_health, source_error),
    };
    ChannelView {
        key: key.clone(),
        name: st.labels.0.clone(),
        kind: st.labels.1.clone(),
        source: st.labels.2.clone(),
        totals: st.cursor.totals,
        today: st.cursor.today,
        recent: st.recent.clone(),
        status: st.status,
        daily_budget: st.live_budget.unwrap_or(st.plan().daily_budget),
        variants: st.cursor.variant_totals.clone(),
        health,
        last_error,
        resets: st.cursor.resets,
        last_reset_ms: st.last_reset_ms,
        failures,
        last_at: st.cursor.at,
    }
}
