//! Writing: the `Writer` owns the store handle, the queue of closed samples and the write-error
//! state. Samples are written in batches with the totals of their campaigns; after a write
//! error nothing is written until the store has been opened again, and what lives only in
//! memory is written back then; old samples are pruned, closed blocks packed and the file
//! compacted. The snapshot copies the writer's state (`error`, `compacting`); nothing reads it
//! back from there.

use super::Engine;
use crate::alert::{Alert, AlertKey, Silence};
use crate::domain::time::{HOUR_MS, RAW_RETENTION_MS};
use crate::domain::{Campaign, CampaignTotals, ChannelCursor, ChannelKey, Counters, Note, Sample};
use crate::store::{Ingest, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Samples written in one transaction, give or take a campaign (see `Writer::ingest_pending`).
const WRITE_BATCH: usize = 100;
/// How often the store is opened again while its writes fail.
const REOPEN_EVERY: Duration = Duration::from_secs(2);
/// How often old samples are pruned (and, once an hour, closed blocks packed).
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);
/// Past this many samples waiting for a failing store, the oldest half is dropped.
const MAX_PENDING: usize = 1_000_000;

impl Engine {
    /// Writes everything taken in, the current period's readings too.
    pub fn commit(&mut self) {
        self.close_open_samples(None);
        self.write_pending();
    }

    /// Writes the samples of the storage periods that have ended, as the running engine does.
    pub fn commit_due(&mut self) {
        self.close_open_samples(Some(self.clock.now_ms()));
        self.write_pending();
    }

    pub(super) fn write_pending(&mut self) {
        let planned = Planned { campaigns: &self.campaigns, spans: &self.spans, channels: &mut self.channels };
        let resident = Resident { alerts: &self.alerts, silences: &self.silences, notes: &self.notes };
        self.dirty |= self.writer.write_pending(planned, resident);
    }

    pub(super) fn compact_store(&mut self, check_size: bool) {
        let planned = Planned { campaigns: &self.campaigns, spans: &self.spans, channels: &mut self.channels };
        let resident = Resident { alerts: &self.alerts, silences: &self.silences, notes: &self.notes };
        self.dirty |= self.writer.compact(check_size, planned, resident);
    }
}

/// The planned channels, whose stored cursors the written samples move.
pub(super) struct Planned<'a> {
    pub campaigns: &'a [Arc<Campaign>],
    pub spans: &'a [std::ops::Range<usize>],
    pub channels: &'a mut super::Channels,
}

/// What lives in the engine's memory and is written back after the store is opened again.
pub(super) struct Resident<'a> {
    pub alerts: &'a BTreeMap<AlertKey, Alert>,
    pub silences: &'a [Silence],
    pub notes: &'a [Note],
}

pub(super) struct Writer {
    store: Store,
    /// Stored samples not yet written, oldest first, each with its channel's cursor as that
    /// sample left it.
    pending: Vec<(ChannelKey, Sample, ChannelCursor)>,
    last_commit: tokio::time::Instant,
    /// The last write error, until the store opened again takes writes.
    error: Option<String>,
    /// The last attempt to open the store again after a write error.
    last_reopen: Option<Instant>,
    last_maintained: Instant,
    /// The hour (campaign time) of the last packing of closed blocks (see `Store::pack`).
    packed_hour: i64,
}

impl Writer {
    pub fn new(store: Store) -> Writer {
        Writer {
            store,
            pending: Vec::new(),
            last_commit: tokio::time::Instant::now(),
            error: None,
            last_reopen: None,
            last_maintained: Instant::now(),
            packed_hour: 0,
        }
    }

    /// The store, to read from and for the engine's single-record writes (whose errors go to
    /// `failed`).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A write failed: shown until the store takes writes again.
    pub fn failed(&mut self, e: &crate::store::StoreError) {
        self.error = Some(e.to_string());
    }

    /// Records the outcome of a single-record write.
    pub fn saved(&mut self, result: crate::store::Result<()>) {
        if let Err(e) = result {
            self.failed(&e);
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn compacting(&self) -> bool {
        self.store.compacting()
    }

    /// Queues a closed sample with its channel's cursor as the sample left it.
    pub fn push(&mut self, key: ChannelKey, sample: Sample, cursor: ChannelCursor) {
        self.pending.push((key, sample, cursor));
    }

    /// The queued samples of one channel, oldest first.
    pub fn pending_of<'a>(&'a self, key: &'a ChannelKey) -> impl Iterator<Item = &'a Sample> + 'a {
        self.pending.iter().filter(move |(k, _, _)| k == key).map(|(_, s, _)| s)
    }

    /// When the queued samples are due to be written (`None` with nothing queued).
    pub fn commit_due(&self, every: Duration) -> Option<tokio::time::Instant> {
        (!self.pending.is_empty()).then(|| self.last_commit + every)
    }

    /// Writes the queued samples; true when the writer's state (its error) changed. While
    /// writes fail, sled refuses every write after one failed, so nothing is written until the
    /// store is opened again, every `REOPEN_EVERY`; the samples wait in memory.
    pub fn write_pending(&mut self, planned: Planned<'_>, resident: Resident<'_>) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        if self.error.is_some() {
            if self.pending.len() > MAX_PENDING {
                self.pending.drain(..self.pending.len() / 2);
            }
            if self.last_reopen.is_none_or(|t| t.elapsed() >= REOPEN_EVERY) {
                self.last_reopen = Some(Instant::now());
                return self.reopen(planned, resident);
            }
            return false;
        }
        self.last_commit = tokio::time::Instant::now();
        match self.ingest_pending(planned) {
            Ok(()) => false,
            Err(e) => {
                tracing::error!("writing samples failed: {e}");
                self.failed(&e);
                self.last_reopen = Some(Instant::now());
                true
            }
        }
    }

    /// Writes the pending samples, with the totals of the campaigns whose cursors they move,
    /// in transactions of whole campaigns and `WRITE_BATCH` samples or so: what a minute's
    /// writes hold in memory at once is one batch's, not all of them. Whatever is written
    /// leaves `pending`; after an error the rest stays there for the next attempt.
    fn ingest_pending(&mut self, planned: Planned<'_>) -> crate::store::Result<()> {
        // Stable: a channel's samples stay in order.
        self.pending.sort_by(|a, b| a.0.campaign.cmp(&b.0.campaign));
        let mut done = 0;
        while done < self.pending.len() {
            let mut end = done + 1;
            while end < self.pending.len()
                && (end - done < WRITE_BATCH || self.pending[end].0.campaign == self.pending[end - 1].0.campaign)
            {
                end += 1;
            }
            if let Err(e) = self.ingest_batch(done..end, planned.campaigns, planned.spans, planned.channels) {
                self.pending.drain(..done);
                return Err(e);
            }
            done = end;
        }
        self.pending.clear();
        Ok(())
    }

    /// Writes `pending[batch]`, of channels still planned, in one transaction.
    fn ingest_batch(
        &self,
        batch: std::ops::Range<usize>,
        campaigns: &[Arc<Campaign>],
        spans: &[std::ops::Range<usize>],
        channels: &mut super::Channels,
    ) -> crate::store::Result<()> {
        let mut moved = BTreeSet::new();
        for (key, _, cursor) in &self.pending[batch.clone()] {
            if let Some(st) = channels.get_mut(key) {
                st.stored = Stored::of(cursor);
                moved.insert(key.campaign.as_str());
            }
        }
        let totals: Vec<(&str, CampaignTotals)> = (campaigns.iter().zip(spans))
            .filter(|(c, _)| moved.contains(c.id.as_str()))
            .map(|(c, span)| (c.id.as_str(), stored_totals(c, span.clone(), channels)))
            .collect();
        let items: Vec<Ingest<'_>> = self.pending[batch]
            .iter()
            .filter(|(key, _, _)| channels.contains_key(key))
            .map(|(key, sample, cursor)| Ingest { key, sample, cursor })
            .collect();
        self.store.ingest_with_totals(&items, &totals)
    }

    /// Opens the store again after a write error and writes back what lives in memory: the
    /// pending samples, every alert's state, the silences and the notes. True when it was
    /// opened (the error is gone, or is a new one).
    fn reopen(&mut self, planned: Planned<'_>, resident: Resident<'_>) -> bool {
        if let Err(e) = self.store.reopen() {
            tracing::error!("opening the database again failed: {e}");
            return false;
        }
        tracing::info!("database opened again after a write error");
        let mut saved = self.ingest_pending(planned);
        let store = &self.store;
        let stored: Vec<_> = store.alerts().unwrap_or_default().into_iter().map(|a| a.key).collect();
        for k in stored.iter().filter(|k| !resident.alerts.contains_key(k)) {
            saved = saved.and_then(|()| store.remove_alert(k));
        }
        for a in resident.alerts.values() {
            saved = saved.and_then(|()| store.put_alert(a));
        }
        for s in resident.silences {
            saved = saved.and_then(|()| store.put_silence(s));
        }
        // Notes are keyed by campaign, time and id: writing one again changes nothing.
        for n in resident.notes {
            saved = saved.and_then(|()| store.put_note(n));
        }
        match saved.and_then(|()| store.flush()) {
            Ok(()) => {
                self.pending.clear();
                self.error = None;
            }
            Err(e) => self.failed(&e),
        }
        true
    }

    /// Prunes raw samples past their retention and, once an hour, packs closed blocks; at
    /// most every `MAINTAIN_EVERY`. True when it ran.
    pub fn maintain<'a>(&mut self, keys: impl Iterator<Item = &'a ChannelKey>, now_ms: i64) -> bool {
        if self.last_maintained.elapsed() <= MAINTAIN_EVERY {
            return false;
        }
        self.last_maintained = Instant::now();
        let cutoff = now_ms - RAW_RETENTION_MS;
        let pack = now_ms.div_euclid(HOUR_MS) != self.packed_hour;
        self.packed_hour = now_ms.div_euclid(HOUR_MS);
        for key in keys {
            if let Err(e) = self.store.prune_samples(key, cutoff) {
                tracing::warn!("pruning {key} failed: {e}");
            }
            if pack && let Err(e) = self.store.pack(key, now_ms) {
                tracing::warn!("packing {key} failed: {e}");
            }
        }
        give_back_free_memory();
        true
    }

    /// Keeps the database file bounded (see `Store::start_compaction`): the copy runs on a
    /// thread of its own while data comes in; once it is done the writes made meanwhile are
    /// replayed onto it and the files swapped, which holds up the engine for a moment. True
    /// when something happened.
    pub fn compact(&mut self, check_size: bool, planned: Planned<'_>, resident: Resident<'_>) -> bool {
        if self.error.is_some() {
            return false;
        }
        let result = if self.store.compaction_copied() {
            self.write_pending(planned, resident);
            self.store.finish_compaction().map(Some)
        } else if check_size && !self.store.compacting() && self.store.wants_compaction() {
            self.store.start_compaction().map(|()| None)
        } else {
            return false;
        };
        match result {
            Ok(Some(c)) => tracing::info!(
                "database compacted: {:.1} → {:.1} MiB, {} records, {:.1} s",
                c.before_bytes as f64 / 1048576.0,
                c.after_bytes as f64 / 1048576.0,
                c.records,
                c.elapsed.as_secs_f64()
            ),
            Ok(None) => tracing::info!("compacting the database"),
            Err(e) => {
                tracing::error!("compacting the database failed: {e}");
                self.failed(&e);
                self.last_reopen = Some(Instant::now());
            }
        }
        true
    }

    /// Flushes what sled holds in memory to the file.
    pub fn flush(&self) {
        if let Err(e) = self.store.flush() {
            tracing::error!("flush failed: {e}");
        }
    }
}

/// A campaign's channels summed up as the store holds their cursors.
pub(super) fn stored_totals(
    campaign: &Campaign,
    span: std::ops::Range<usize>,
    channels: &super::Channels,
) -> CampaignTotals {
    let stored = channels.get_range(span).into_iter().flat_map(|s| s.values()).map(|st| &st.stored);
    CampaignTotals::sum(campaign.plan_print(), stored.map(|s| (&s.totals, &s.today, s.day_start)))
}

/// What the store holds of a channel's cursor, as far as its campaign's totals go.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stored {
    totals: Counters,
    today: Counters,
    day_start: i64,
}

impl Stored {
    pub(super) fn of(c: &ChannelCursor) -> Self {
        Stored { totals: c.totals, today: c.today, day_start: c.day_start }
    }
}

/// Hands the allocator's free pages back to the system. glibc returns free memory only from
/// the top of a heap; what is freed below live blocks (the readings, views and sled buffers of
/// the minute before) stays resident until `malloc_trim` releases the whole free pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}
