//! Chart series and sparkline history read from the store: the series of the channel on screen
//! over its window (kept fresh as data comes in), and the recent samples of every channel read
//! back after start-up.

use super::snapshot::{SeriesView, Window};
use super::{Engine, RECENT};
use crate::domain::ChannelKey;
use crate::domain::time::HOUR_MS;
use crate::domain::time::RAW_RETENTION_MS;
use crate::domain::{Counters, Recent};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The fewest periods a chart of a channel read by periods spans.
const PERIODS_DRAWN: i64 = 8;

impl Engine {
    /// Reads the stored recent samples of up to `n` channels into their sparkline windows,
    /// in front of anything that arrived since start.
    pub fn backfill_some(&mut self, n: usize) {
        // Everything taken in so far must be in the rollups read below.
        self.commit();
        let since = self.clock.now_ms() - crate::alert::anomaly::HISTORY_HOURS as i64 * HOUR_MS;
        for _ in 0..n {
            let Some(key) = self.backfill.pop() else { break };
            let Some(st) = self.channels.get_mut(&key) else { continue };
            // A channel read by periods has them all in memory already.
            if st.period_spec.is_some() {
                continue;
            }
            let before = st.recent.first().map_or(i64::MAX, |(at, _)| *at);
            let want = RECENT.saturating_sub(st.recent.len());
            match self.writer.store().recent_samples(&key, before, want) {
                Ok(older) => {
                    let older = older.into_iter().filter(|s| !s.first).map(|s| (s.at, s.delta));
                    st.recent = Recent::from_entries(older.chain(st.recent.iter().copied()), RECENT);
                    st.dirty = true;
                    self.dirty = true;
                }
                Err(e) => tracing::warn!("reading recent samples of {key}: {e}"),
            }
            match self.writer.store().rollups(&key, since, i64::MAX) {
                Ok(hours) => st.history.reset_from(hours),
                Err(e) => tracing::warn!("reading the hourly history of {key}: {e}"),
            }
        }
    }

    /// Whether sparkline history is still being read.
    pub fn backfilling(&self) -> bool {
        !self.backfill.is_empty()
    }

    pub(super) fn load_series(&mut self) {
        let Some((key, window)) = self.series_req.clone() else { return };
        let series = self.series(key, window);
        self.snapshot.series = Some(Arc::new(series));
        self.dirty = true;
    }

    /// A channel's counters bucketed over a window, as of now.
    pub(super) fn series(&mut self, key: ChannelKey, window: Window) -> SeriesView {
        let now = self.clock.now_ms();
        let start = self.campaigns.iter().find(|c| c.id == key.campaign).map_or(now, |c| c.start_ms());
        // A channel read by periods is drawn by its periods, whatever the window: its last
        // `PERIODS_DRAWN` at least.
        let period_ms = self.channels.get(&key).and_then(|st| st.period_spec).map(|p| p.len_ms);
        let from = window.span_ms().map_or(start, |s| now - s);
        let from = period_ms.map_or(from, |len| from.min(now - PERIODS_DRAWN * len).max(start.min(from)));
        let span = (now - from).max(60_000);
        let raw = period_ms.is_none() && window.span_ms().is_some_and(|s| s <= RAW_RETENTION_MS);
        let bucket_ms = if raw { (span / 120).max(60_000) } else { period_ms.unwrap_or(HOUR_MS) };
        // Samples not yet written count too: they are newer than every stored one.
        let open = self.channels.get(&key).and_then(|st| st.open.clone());
        let fresh: Vec<crate::domain::Sample> = self.writer.pending_of(&key).cloned().chain(open).collect();
        // (start, end, counters) of each interval: a sample runs from the one before it.
        let rows: Result<Vec<(i64, i64, Counters)>, _> = if raw {
            // An hour more, for the start of the first sample's interval.
            self.writer.store().samples(&key, from - HOUR_MS, i64::MAX).map(|mut v| {
                v.extend(fresh);
                let mut prev = None;
                v.into_iter()
                    .filter_map(|s| {
                        let start = prev.replace(s.at);
                        (!s.first).then(|| (start.unwrap_or(s.at), s.at, s.delta))
                    })
                    .collect()
            })
        } else if let Some(len) = period_ms {
            // Each period from the one under way at `from`, as it stands (see `Store::rollups`).
            self.writer
                .store()
                .rollups(&key, from - len, i64::MAX)
                .map(|v| v.into_iter().filter(|(p, _)| p + len > from).map(|(p, c)| (p, p, c)).collect())
        } else {
            self.writer.store().rollups(&key, from.div_euclid(HOUR_MS) * HOUR_MS, i64::MAX).map(|v| {
                let mut hours: BTreeMap<i64, Counters> = v.into_iter().collect();
                for s in fresh.into_iter().filter(|s| !s.first) {
                    hours.entry(s.at.div_euclid(HOUR_MS) * HOUR_MS).or_default().add(&s.delta);
                }
                hours.into_iter().map(|(h, c)| (h, h + 3_599_999, c)).collect()
            })
        };
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                self.writer.failed(&e);
                Vec::new()
            }
        };
        let points = match period_ms {
            Some(_) => rows.into_iter().map(|(p, _, c)| (p, c)).collect(),
            None => crate::analyze::buckets(&rows, bucket_ms, from),
        };
        SeriesView { key, window, from_ms: from, to_ms: now, bucket_ms, points }
    }
}
