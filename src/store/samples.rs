//! Channel cursors, samples, hourly rollups and segment rollups: `ingest` writes a batch of
//! samples with their cursors and the hours they add to in one transaction; reads fold the
//! live records with the packed blocks (see `Packing`); old samples are pruned and closed
//! blocks packed.

use super::codec::Timed;
use super::{Hour, Result, Store, key_at, prefix};
use crate::domain::counters::add_segments;
use crate::domain::time::{DAY_MS, HOUR_MS};
use crate::domain::{CampaignTotals, ChannelCursor, ChannelKey, Counters, Sample, SegmentCounters};

impl Store {
    pub fn cursor(&self, key: &ChannelKey) -> Result<Option<ChannelCursor>> {
        let k = prefix(key);
        match self.t()?.channels.get(&k).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(self.decode("channels", &k, &v)?)),
            None => Ok(None),
        }
    }

    /// Every stored cursor.
    pub fn cursors(&self) -> Result<std::collections::HashMap<ChannelKey, ChannelCursor>> {
        let halves = self.scan_halves(&self.t()?.channels, |k, v| {
            let mut parts = k.split(|b| *b == 0);
            let (Some(c), Some(ch)) = (parts.next(), parts.next()) else { return Ok(None) };
            let key = ChannelKey::new(&String::from_utf8_lossy(c), &String::from_utf8_lossy(ch));
            Ok(Some((key, self.decode::<ChannelCursor>("channels", k, v)?)))
        })?;
        let mut out = std::collections::HashMap::with_capacity(halves.iter().map(Vec::len).sum());
        out.extend(halves.into_iter().flatten());
        Ok(out)
    }

    /// Writes samples, their channels' cursors and the hourly rollups in one transaction, so a
    /// crash never leaves a sample without its cursor (which would count it twice). Items are
    /// in the order taken in: a channel's cursor and each of its hours are written once per
    /// call, as the last item left them. A channel's first reading is kept as a sample and in
    /// the cursor's totals, not in the rollups.
    pub fn ingest(&self, items: &[Ingest<'_>]) -> Result<()> {
        self.ingest_with_totals(items, &[])
    }

    /// `ingest`, writing in the same transaction the totals of the campaigns whose cursors
    /// move. A campaign whose cursors move without its totals given has its stored totals
    /// removed: what is stored always sums up the stored cursors, or is missing.
    pub fn ingest_with_totals(&self, items: &[Ingest<'_>], totals: &[(&str, CampaignTotals)]) -> Result<()> {
        use sled::Transactional;
        if items.is_empty() {
            return Ok(());
        }
        self.writable("samples")?;
        let _writing = self.writing("samples");
        let t = self.t()?;
        let samples: Vec<(Vec<u8>, Vec<u8>)> =
            items.iter().map(|i| (key_at(i.key, i.sample.at), Self::encode(i.sample))).collect();
        let mut last_cursor: std::collections::HashMap<&ChannelKey, &ChannelCursor> = Default::default();
        // Each hour touched, summed up from what is stored (or remembered) plus these samples.
        let mut hours: std::collections::BTreeMap<Vec<u8>, (&ChannelKey, Hour)> = Default::default();
        let mut cache = self.hours.lock().unwrap_or_else(|p| p.into_inner());
        for item in items {
            last_cursor.insert(item.key, item.cursor);
            // A first reading holds everything since the channel started: it counts in the
            // totals (the cursor) but belongs to no hour.
            if item.sample.first {
                continue;
            }
            let hk = key_at(item.key, item.sample.at.div_euclid(HOUR_MS) * HOUR_MS);
            let (_, hour) = match hours.entry(hk) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    // Taken out of the cache; put back (as this call leaves it) once written.
                    let hour = match cache.remove(item.key).filter(|h| h.key == *e.key()) {
                        Some(h) => Hour { segments_changed: false, ..h },
                        None => Hour {
                            key: e.key().clone(),
                            counters: t
                                .rollups
                                .get(e.key())
                                .map_err(|e| self.err(e))?
                                .map_or_else(|| Ok(Counters::default()), |v| self.decode("rollups", e.key(), &v))?,
                            segments: None,
                            segments_changed: false,
                        },
                    };
                    e.insert((item.key, hour))
                }
            };
            hour.counters.add(&item.sample.delta);
            if !item.sample.segments.is_empty() {
                let segments = match hour.segments.take() {
                    Some(s) => s,
                    None => t
                        .segment_rollups
                        .get(&hour.key)
                        .map_err(|e| self.err(e))?
                        .map_or_else(|| Ok(Vec::new()), |v| self.decode("segment_rollups", &hour.key, &v))?,
                };
                add_segments(hour.segments.insert(segments), &item.sample.segments);
                hour.segments_changed = true;
            }
        }
        let cursors: Vec<(Vec<u8>, Vec<u8>)> = last_cursor.iter().map(|(k, c)| (prefix(k), Self::encode(*c))).collect();
        let mut campaign_totals: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            totals.iter().map(|(id, t)| (id.as_bytes().to_vec(), Some(Self::encode(t)))).collect();
        let moved: std::collections::BTreeSet<&str> = last_cursor.keys().map(|k| k.campaign.as_str()).collect();
        campaign_totals.extend(
            moved.into_iter().filter(|id| totals.iter().all(|(t, _)| t != id)).map(|id| (id.as_bytes().to_vec(), None)),
        );
        let rollups: Vec<(&[u8], Vec<u8>)> =
            hours.iter().map(|(k, (_, h))| (k.as_slice(), Self::encode(&h.counters))).collect();
        let segment_rollups: Vec<(&[u8], Vec<u8>)> = hours
            .iter()
            .filter_map(|(k, (_, h))| {
                h.segments.as_ref().filter(|_| h.segments_changed).map(|s| (k.as_slice(), Self::encode(s)))
            })
            .collect();
        let written = (&t.samples, &t.channels, &t.rollups, &t.segment_rollups, &t.campaign_totals).transaction(
            |(samples_t, channels_t, rollups_t, segment_rollups_t, totals_t)| {
                for (k, v) in &samples {
                    samples_t.insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &cursors {
                    channels_t.insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &rollups {
                    rollups_t.insert(*k, v.as_slice())?;
                }
                for (k, v) in &segment_rollups {
                    segment_rollups_t.insert(*k, v.as_slice())?;
                }
                for (k, v) in &campaign_totals {
                    match v {
                        Some(v) => totals_t.insert(k.as_slice(), v.as_slice())?,
                        None => totals_t.remove(k.as_slice())?,
                    };
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            },
        );
        if let Err(e) = written {
            // What is remembered may now be ahead of or behind the file: read it back next time.
            cache.clear();
            return Err(self.txn_err(e));
        }
        if let Some(c) = &self.copying {
            let mut log = c.log.lock().unwrap_or_else(|p| p.into_inner());
            log.extend(samples.into_iter().map(|(k, v)| ("samples", k, Some(v))));
            log.extend(cursors.into_iter().map(|(k, v)| ("channels", k, Some(v))));
            log.extend(rollups.into_iter().map(|(k, v)| ("rollups", k.to_vec(), Some(v))));
            log.extend(segment_rollups.into_iter().map(|(k, v)| ("segment_rollups", k.to_vec(), Some(v))));
            log.extend(campaign_totals.into_iter().map(|(k, v)| ("campaign_totals", k, v)));
        }
        // In key order, so a channel's later hour is the one remembered.
        for (_, (key, hour)) in hours {
            cache.insert(key.clone(), hour);
        }
        Ok(())
    }

    /// A channel's entries of a packed kind with `from <= time < to`, in time order: packed
    /// blocks first, then live records, so of two values for one time the live one comes last.
    pub(super) fn entries<T: Timed>(&self, p: &Packing, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<(i64, T)>> {
        // Times are unix ms: nothing lies before 0 (and a window from `i64::MIN` stays in range).
        let from = from.max(0);
        let t = self.t()?;
        let mut out: Vec<(i64, T)> = Vec::new();
        for kv in t.by_name(p.packed).range(key_at(key, from.div_euclid(p.block_ms) * p.block_ms)..key_at(key, to)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let block: Vec<(i64, T)> = self.decode(p.packed, &k, &v)?;
            out.extend(block.into_iter().filter(|(at, _)| (from..to).contains(at)));
        }
        let plen = prefix(key).len();
        for kv in t.by_name(p.live).range(key_at(key, from)..key_at(key, to)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push((key_time(&k, plen), self.decode(p.live, &k, &v)?));
        }
        out.sort_by_key(|(at, _)| *at);
        Ok(out)
    }

    /// Raw samples of a channel with `from <= at < to`, oldest first.
    pub fn samples(&self, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<Sample>> {
        // Written again for the same time: the later write stands.
        let entries = self.entries::<Sample>(&SAMPLE_HOURS, key, from, to)?;
        Ok(merge_same_times(entries, |a, b| *a = b).into_iter().map(|(_, s)| s).collect())
    }

    /// The last `n` raw samples of a channel before `to`, oldest first.
    pub fn recent_samples(&self, key: &ChannelKey, to: i64, n: usize) -> Result<Vec<Sample>> {
        let t = self.t()?;
        let live = t
            .samples
            .range(key_at(key, 0)..key_at(key, to))
            .rev()
            .take(n)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                self.decode("samples", &k, &v)
            })
            .collect::<Result<Vec<Sample>>>()?;
        // Packed blocks, newest first, until they hold `n` samples.
        let mut packed: Vec<Sample> = Vec::new();
        for kv in t.sample_hours.range(key_at(key, 0)..key_at(key, to)).rev() {
            if packed.len() >= n {
                break;
            }
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let block: Vec<(i64, Sample)> = self.decode("sample_hours", &k, &v)?;
            packed.extend(block.into_iter().rev().filter(|(at, _)| *at < to).map(|(_, s)| s));
        }
        let mut out: Vec<Sample> = Vec::with_capacity(n);
        let (mut a, mut b) = (packed.into_iter().peekable(), live.into_iter().peekable());
        while out.len() < n {
            // Newest first; a live sample stands over a packed one for the same time.
            let s = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.at > y.at => a.next(),
                (Some(x), Some(y)) if x.at == y.at => {
                    a.next();
                    b.next()
                }
                (Some(_), None) => a.next(),
                _ => b.next(),
            };
            match s {
                Some(s) => out.push(s),
                None => break,
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Hourly rollups of a channel with `from <= hour < to`: (hour start ms, counters). A
    /// channel read by periods (a platform's rows per day or hour) has its periods instead,
    /// each at its start: a daily row is one entry at the start of its day, not smeared over
    /// hours, and a restated period stands in place of what was known of it.
    pub fn rollups(&self, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<(i64, Counters)>> {
        if let Some(periods) = self.period_figures(key, from, to)? {
            return Ok(periods);
        }
        Ok(merge_same_times(self.entries::<Counters>(&ROLLUP_DAYS, key, from, to)?, |a, b| a.add(&b)))
    }

    /// A channel's segments summed over the hours starting in `[from, to)`.
    pub fn segment_rollups(&self, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<SegmentCounters>> {
        let mut out: Vec<SegmentCounters> = Vec::new();
        for (_, hour) in self.entries::<Vec<SegmentCounters>>(&SEGMENT_DAYS, key, from, to)? {
            add_segments(&mut out, &hour);
        }
        Ok(out)
    }

    /// Deletes raw samples older than `before` (the rollups keep their totals): live ones
    /// exactly, packed ones by whole hours, so up to an hour more may stay. Returns how many
    /// were removed.
    pub fn prune_samples(&self, key: &ChannelKey, before: i64) -> Result<usize> {
        self.writable("samples")?;
        let t = self.t()?;
        // An empty batch is not applied: sled would still log it, and flush the log for it.
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in t.samples.range(key_at(key, 0)..key_at(key, before)).keys() {
            let k = k.map_err(|e| self.err(e))?;
            self.logged("samples", &k, None);
            batch.remove(k);
            n += 1;
        }
        if n > 0 {
            t.samples.apply_batch(batch).map_err(|e| self.err(e))?;
        }
        let mut batch = sled::Batch::default();
        let mut blocks = 0;
        // Blocks that end by `before`.
        let whole = before.div_euclid(HOUR_MS) * HOUR_MS;
        for kv in t.sample_hours.range(key_at(key, 0)..key_at(key, whole)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            n += self.decode::<Vec<(i64, Sample)>>("sample_hours", &k, &v)?.len();
            self.logged("sample_hours", &k, None);
            batch.remove(k);
            blocks += 1;
        }
        if blocks > 0 {
            t.sample_hours.apply_batch(batch).map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    /// Packs a channel's blocks of samples, rollups and segment rollups that closed a while
    /// before `now` (see `Packing`). Returns how many live records were folded into blocks.
    pub fn pack(&self, key: &ChannelKey, now: i64) -> Result<usize> {
        let mut n = self.pack_kind::<Sample>(&SAMPLE_HOURS, key, now, |a, b| *a = b)?;
        n += self.pack_kind::<Counters>(&ROLLUP_DAYS, key, now, |a, b| a.add(&b))?;
        n += self.pack_kind::<Vec<SegmentCounters>>(&SEGMENT_DAYS, key, now, |a, b| add_segments(a, &b))?;
        if n > 0 {
            // A remembered hour may now be packed: it is read from the blocks from now on.
            self.hours.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        }
        Ok(n)
    }

    pub(super) fn pack_kind<T: Timed>(
        &self,
        p: &Packing,
        key: &ChannelKey,
        now: i64,
        combine: impl Fn(&mut T, T),
    ) -> Result<usize> {
        use sled::Transactional;
        self.writable(p.packed)?;
        let _writing = self.writing(p.packed);
        let t = self.t()?;
        let (live, packed) = (t.by_name(p.live), t.by_name(p.packed));
        let before = (now - p.settle_ms).div_euclid(p.block_ms) * p.block_ms;
        let plen = prefix(key).len();
        let mut gone = Vec::new();
        let mut blocks: std::collections::BTreeMap<i64, Vec<(i64, T)>> = Default::default();
        for kv in live.range(key_at(key, 0)..key_at(key, before)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let at = key_time(&k, plen);
            blocks.entry(at.div_euclid(p.block_ms) * p.block_ms).or_default().push((at, self.decode(p.live, &k, &v)?));
            gone.push(k);
        }
        if gone.is_empty() {
            return Ok(0);
        }
        let mut put = Vec::with_capacity(blocks.len());
        for (start, fresh) in blocks {
            let k = key_at(key, start);
            let mut entries: Vec<(i64, T)> = match packed.get(&k).map_err(|e| self.err(e))? {
                Some(v) => self.decode(p.packed, &k, &v)?,
                None => Vec::new(),
            };
            entries.extend(fresh);
            // Stable: for one time, what was packed before comes first.
            entries.sort_by_key(|(at, _)| *at);
            put.push((k, Self::encode(&merge_same_times(entries, &combine))));
        }
        (live, packed)
            .transaction(|(live_t, packed_t)| {
                for k in &gone {
                    live_t.remove(k)?;
                }
                for (k, v) in &put {
                    packed_t.insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| self.txn_err(e))?;
        for k in &gone {
            self.logged(p.live, k, None);
        }
        for (k, v) in &put {
            self.logged(p.packed, k, Some(v));
        }
        Ok(gone.len())
    }
}

/// A channel's time-keyed records are written one per time (`live`: channel ‖ time → value)
/// and, once their block of time has closed, packed into one record per block (`packed`:
/// channel ‖ block start → [(time, value)]). sled keeps at most 16 records per leaf and reads
/// every leaf's place on open, so its open time follows the number of records: a week of
/// hourly rollups is 7 records per channel instead of 168, two days of minute samples 48
/// instead of 2,880. A record written late for a block already packed stays live until the
/// next packing; readers see both and fold them (a sample written again stands over the
/// earlier one, rollups add up).
pub(super) struct Packing {
    live: &'static str,
    packed: &'static str,
    block_ms: i64,
    /// How long after its end a block is packed (a straggler after that stays live a while).
    settle_ms: i64,
}

pub(super) const SAMPLE_HOURS: Packing =
    Packing { live: "samples", packed: "sample_hours", block_ms: HOUR_MS, settle_ms: 10 * 60_000 };

pub(super) const ROLLUP_DAYS: Packing =
    Packing { live: "rollups", packed: "rollup_days", block_ms: DAY_MS, settle_ms: HOUR_MS };

pub(super) const SEGMENT_DAYS: Packing =
    Packing { live: "segment_rollups", packed: "segment_rollup_days", block_ms: DAY_MS, settle_ms: HOUR_MS };

/// One channel's new sample together with its moved cursor; written atomically.
pub struct Ingest<'a> {
    pub key: &'a ChannelKey,
    pub sample: &'a Sample,
    pub cursor: &'a ChannelCursor,
}

/// Entries in time order with the values of each time folded into the first by `combine`
/// (called with the earlier value and the later one).
pub(super) fn merge_same_times<T>(entries: Vec<(i64, T)>, combine: impl Fn(&mut T, T)) -> Vec<(i64, T)> {
    let mut out: Vec<(i64, T)> = Vec::with_capacity(entries.len());
    for (at, v) in entries {
        match out.last_mut() {
            Some((last, held)) if *last == at => combine(held, v),
            _ => out.push((at, v)),
        }
    }
    out
}

/// The time at the end of a channel's time-keyed record key.
pub(super) fn key_time(k: &[u8], prefix_len: usize) -> i64 {
    k.get(prefix_len..).and_then(|b| b.try_into().ok()).map_or(0, |b| u64::from_be_bytes(b) as i64)
}
