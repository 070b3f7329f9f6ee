//! Readings in: a poll's answer advances each channel's cursor, which turns cumulative counters
//! into the gains of a sample; readings of one storage period fold into one sample, which is
//! queued for the writer when the period closes.

use super::{Engine, RECENT, STORE_RESOLUTION_MS};
use crate::domain::Counters;
use crate::poll::wire::{ChannelStats, StatsDoc};
use crate::poll::{PollError, PollOutcome};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Engine {
    /// Takes in one poll's outcome.
    pub fn on_poll(&mut self, o: PollOutcome) {
        tracing::trace!(url = %o.url, latency = ?o.latency, "poll outcome");
        let slots = self.by_source.get(&o.url).cloned().unwrap_or_else(|| Arc::from([]));
        let Some(src) = self.sources.get_mut(&o.url) else { return };
        let was = (src.health, src.last_error.clone());
        match o.result {
            Err(e @ PollError::Throttled { .. }) => {
                tracing::warn!(url = %o.url, "poll throttled: {e}");
                src.record_throttled(o.received, o.latency, e.to_string());
            }
            Err(e @ (PollError::Unauthorized(_) | PollError::Retired(_))) => {
                tracing::error!(url = %o.url, "poll refused: {e}");
                let h = if matches!(e, PollError::Retired(_)) {
                    crate::domain::Health::Retired
                } else {
                    crate::domain::Health::Unauthorized
                };
                src.record_refused(o.received, o.latency, e.to_string(), h);
            }
            Err(e) => {
                let bad = matches!(e, PollError::BadData(_) | PollError::TooLarge(_));
                tracing::warn!(url = %o.url, "poll failed: {e}");
                src.record_err(o.received, o.latency, e.to_string(), bad);
            }
            Ok(doc) => {
                let (at, skew) = sample_time(&doc, o.fetched_at);
                let mut missing = Vec::new();
                let by_id = ById::new(&doc);
                for &slot in slots.iter() {
                    if !self.take_reading(slot, &by_id, at) {
                        missing.extend(self.channels.get_index(slot).map(|(key, _)| key.channel.clone()));
                    }
                }
                // A channel missing from the answer is that channel's problem (it shows as bad
                // data on its own); the source and its other channels are fine.
                if !missing.is_empty() {
                    tracing::warn!(url = %o.url, "channels not in the response: {}", missing.join(", "));
                }
                let src = self.sources.get_mut(&o.url).expect("checked above");
                src.record_ok(o.received, o.latency, skew);
                src.expiring = doc.expiring.clone();
                if src.last_error.is_none() {
                    src.last_error = doc.expiring.clone().or_else(|| doc.note.clone());
                }
                self.snapshot.last_data = Some(o.received);
            }
        }
        let src = self.sources.get_mut(&o.url).expect("checked above");
        src.refresh(o.received);
        self.sources_changed |= was != (src.health, src.last_error.clone());
        for &slot in slots.iter() {
            if let Some((_, ch)) = self.channels.get_index_mut(slot) {
                ch.dirty = true;
            }
        }
        self.dirty = true;
    }

    /// Finds a channel in a document and advances its cursor; false when it is not there.
    pub(super) fn take_reading(&mut self, slot: usize, doc: &ById<'_>, at: i64) -> bool {
        let Some((key, st)) = self.channels.get_index_mut(slot) else { return true };
        let campaign = st.campaign.clone();
        let sid = campaign.channels[st.index].source_id();
        // A document may carry several campaigns: prefer the entry labelled with ours.
        let found = doc
            .entries(sid)
            .filter(|c| c.campaign.as_deref().is_none_or(|camp| camp == key.campaign))
            .max_by_key(|c| c.campaign.is_some());
        let restated_from = doc.doc.restated_from;
        let nothing;
        let stats = match found {
            Some(s) => s,
            // Read by periods: no row in the periods asked for is a channel with nothing then.
            None if restated_from.is_some() => {
                nothing = ChannelStats::nothing(sid);
                &nothing
            }
            None => {
                st.missing = Some("not in the source's response".into());
                return false;
            }
        };
        st.missing = None;
        st.status = stats.status;
        st.live_budget = stats.daily_budget;
        // A reading in a later period closes the open sample, with the cursor as it left it.
        if st.open.as_ref().is_some_and(|o| period(o.at) != period(at)) {
            let open = st.open.take().expect("checked above");
            self.writer.push(key.clone(), open, st.cursor.clone());
        }
        let advanced = match restated_from {
            Some(from) => {
                let (changed, removed) = restate(&mut st.periods, from, &stats.periods, doc.doc.partial);
                if !changed.is_empty() || !removed.is_empty() {
                    let saved = self.writer.store().put_periods(key, &changed, &removed);
                    self.writer.saved(saved);
                }
                // What the periods gained belongs to them, not to the moment of the poll: the
                // reading moves the totals, its sample carries nothing (see `follow_periods`).
                st.cursor.advance_restated(at, Counters::sum(st.periods.values())).map(|mut s| {
                    if !s.first {
                        s.delta = Counters::default();
                    }
                    s
                })
            }
            None if doc.doc.restating => st.cursor.advance_restated(at, stats.totals),
            None => st.cursor.advance(at, stats.totals, &stats.variants).map(|mut s| {
                // A counter that ran before the campaign began counts from its start.
                if let Some(gained) = stats.since_start.filter(|_| s.first) {
                    s.delta = gained;
                    st.cursor.totals = gained;
                }
                s
            }),
        };
        if let Some(mut sample) = advanced {
            if !stats.segments.is_empty() {
                // A reading joining the open sample adds its segments' gains to it directly.
                match &mut st.open {
                    Some(open) if !sample.first => st.cursor.advance_segments_into(&stats.segments, &mut open.segments),
                    _ => st.cursor.advance_segments_into(&stats.segments, &mut sample.segments),
                }
            }
            // Kept in the cursor, so that a restart has today's figures without a scan.
            st.cursor.count_today(campaign.day_start_ms(at), &sample);
            if sample.reset {
                st.last_reset_ms = Some(sample.at);
            }
            if !sample.first && restated_from.is_none() {
                st.history.push(sample.at, &sample.delta);
                // Readings are kept by storage period, as they are stored: the window then
                // reaches as far back whether the source is polled every second or every
                // minute, and is the same after a restart, read back from the store.
                match st.recent.last() {
                    Some((last, _)) if period(*last) == period(sample.at) => {
                        st.recent.add_to_last(sample.at, &sample.delta, RECENT)
                    }
                    _ => st.recent.push((sample.at, sample.delta), RECENT),
                }
            }
            match &mut st.open {
                // A first reading holds everything since the channel started: stored alone.
                _ if sample.first => self.writer.push(key.clone(), sample, st.cursor.clone()),
                Some(open) => open.absorb(&sample),
                None => st.open = Some(sample),
            }
        }
        if restated_from.is_some() {
            let day = crate::domain::campaign::Periods { len_ms: crate::domain::time::DAY_MS, settle_ms: 0 };
            st.follow_periods(st.period_spec.unwrap_or(day), at);
        }
        true
    }

    /// Moves the open samples of periods that have ended by `now_ms` (source time), or all of
    /// them, to the samples to be written.
    pub(super) fn close_open_samples(&mut self, now_ms: Option<i64>) {
        for (key, st) in &mut self.channels {
            if st.open.as_ref().is_some_and(|o| now_ms.is_none_or(|now| period(o.at) < period(now))) {
                let open = st.open.take().expect("checked above");
                self.writer.push(key.clone(), open, st.cursor.clone());
            }
        }
    }
}

/// A source's `generated_at` further ahead of our clock than this is not trusted.
pub(super) const MAX_FUTURE_SKEW_MS: i64 = 5 * 60_000;

/// A source's `generated_at` further behind our clock than this is not trusted either.
pub(super) const MAX_PAST_SKEW_MS: i64 = 60 * 60_000;

/// The storage period a time falls in.
pub(super) fn period(at: i64) -> i64 {
    at.div_euclid(STORE_RESOLUTION_MS)
}

/// The time a reading stands for: the source's `generated_at` unless it is missing or runs
/// ahead of our clock (then the arrival time, with a warning).
pub(super) fn sample_time(doc: &StatsDoc, fetched_at: i64) -> (i64, Option<String>) {
    match doc.generated_at.map(|t| t.timestamp_millis()) {
        Some(g) if g > fetched_at + MAX_FUTURE_SKEW_MS => {
            (fetched_at, Some(format!("clock skew: generated_at is {}s ahead of ours", (g - fetched_at) / 1000)))
        }
        // Far behind: a stale cache or a wrong clock; counting it then would misplace it in time.
        Some(g) if g < fetched_at - MAX_PAST_SKEW_MS => {
            (fetched_at, Some(format!("clock skew: generated_at is {}s behind ours", (fetched_at - g) / 1000)))
        }
        Some(g) => (g, None),
        None => (fetched_at, None),
    }
}

/// A document's channels in order of id: each channel of a source answering for many finds
/// its entry without a scan of the whole document.
pub(super) struct ById<'a> {
    doc: &'a StatsDoc,
    order: Vec<usize>,
}

impl<'a> ById<'a> {
    pub(super) fn new(doc: &'a StatsDoc) -> Self {
        let mut order: Vec<usize> = (0..doc.channels.len()).collect();
        order.sort_unstable_by(|&a, &b| doc.channels[a].id.cmp(&doc.channels[b].id));
        ById { doc, order }
    }

    /// The entries with this id (one per campaign the document labels).
    pub(super) fn entries(&self, id: &'a str) -> impl Iterator<Item = &'a crate::poll::wire::ChannelStats> + '_ {
        let from = self.order.partition_point(|&i| *self.doc.channels[i].id < *id);
        self.order[from..].iter().map(|&i| &self.doc.channels[i]).take_while(move |c| *c.id == *id)
    }
}

/// Replaces a channel's periods from `from` on with those of the answer; returns the periods
/// that changed and those no longer there.
fn restate(
    known: &mut BTreeMap<i64, Counters>,
    from: i64,
    answer: &[(i64, Counters)],
    partial: bool,
) -> (Vec<(i64, Counters)>, Vec<i64>) {
    let fresh: BTreeMap<i64, Counters> = answer.iter().copied().filter(|(p, _)| *p >= from).collect();
    let removed: Vec<i64> = if partial {
        Vec::new()
    } else {
        known.range(from..).map(|(p, _)| *p).filter(|p| !fresh.contains_key(p)).collect()
    };
    let changed: Vec<(i64, Counters)> =
        fresh.iter().filter(|(p, c)| known.get(p) != Some(c)).map(|(p, c)| (*p, *c)).collect();
    for p in &removed {
        known.remove(p);
    }
    known.extend(changed.iter().copied());
    (changed, removed)
}
