//! Counters as sources report them (cumulative since the channel started) and the per-interval
//! samples we derive from them. A decrease of any counter is a reset, never a negative delta.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The six counters every channel reports. Counts are whole numbers; money is in the
/// campaign's currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub impressions: u64,
    pub clicks: u64,
    pub leads: u64,
    pub conversions: u64,
    pub spend: f64,
    pub revenue: f64,
}

impl Counters {
    /// The counter called `name` (one of `source::COUNTERS`), counts as numbers.
    pub fn get(&self, name: &str) -> f64 {
        match name {
            "impressions" => self.impressions as f64,
            "clicks" => self.clicks as f64,
            "leads" => self.leads as f64,
            "conversions" => self.conversions as f64,
            "spend" => self.spend,
            _ => self.revenue,
        }
    }

    /// Sets the counter called `name` (counts rounded).
    pub fn set(&mut self, name: &str, v: f64) {
        let count = v.round() as u64;
        match name {
            "impressions" => self.impressions = count,
            "clicks" => self.clicks = count,
            "leads" => self.leads = count,
            "conversions" => self.conversions = count,
            "spend" => self.spend = v,
            "revenue" => self.revenue = v,
            _ => debug_assert!(false, "no counter '{name}'"),
        }
    }

    pub fn add(&mut self, o: &Counters) {
        self.impressions += o.impressions;
        self.clicks += o.clicks;
        self.leads += o.leads;
        self.conversions += o.conversions;
        self.spend += o.spend;
        self.revenue += o.revenue;
    }

    pub fn sum<'a>(it: impl IntoIterator<Item = &'a Counters>) -> Counters {
        let mut acc = Counters::default();
        for c in it {
            acc.add(c);
        }
        acc
    }

    /// True when any counter is below its value in `earlier`: the source restarted counting.
    pub fn went_backwards(&self, earlier: &Counters) -> bool {
        self.impressions < earlier.impressions
            || self.clicks < earlier.clicks
            || self.leads < earlier.leads
            || self.conversions < earlier.conversions
            // Money is a float; ignore rounding noise of a cent.
            || self.spend + 0.005 < earlier.spend
            || self.revenue + 0.005 < earlier.revenue
    }

    /// `self - earlier`, assuming no reset (each field saturates at zero).
    pub fn minus(&self, earlier: &Counters) -> Counters {
        Counters {
            impressions: self.impressions.saturating_sub(earlier.impressions),
            clicks: self.clicks.saturating_sub(earlier.clicks),
            leads: self.leads.saturating_sub(earlier.leads),
            conversions: self.conversions.saturating_sub(earlier.conversions),
            spend: (self.spend - earlier.spend).max(0.0),
            revenue: (self.revenue - earlier.revenue).max(0.0),
        }
    }

    /// A share `f` of these counters (counts rounded), e.g. the part of an hour a window covers.
    pub fn scaled(&self, f: f64) -> Counters {
        let n = |x: u64| (x as f64 * f).round() as u64;
        Counters {
            impressions: n(self.impressions),
            clicks: n(self.clicks),
            leads: n(self.leads),
            conversions: n(self.conversions),
            spend: self.spend * f,
            revenue: self.revenue * f,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

/// Money to whole millionths of the currency: what any source's decimal figures hold exactly
/// (Google Ads reports micros), as stored and sent.
pub fn micros(x: f64) -> i64 {
    (x * 1e6).round() as i64
}

/// Whole millionths back to money (the nearest float to that decimal).
pub fn from_micros(m: i64) -> f64 {
    m as f64 / 1e6
}

/// Millionths with their trailing decimal zeros folded into the low bits, so that amounts in
/// whole cents take a byte or two as a varint: `m = k·10^e` becomes `k·8 + e` (`e ≤ 6`).
pub fn pack_micros(mut m: i64) -> i64 {
    let mut e = 0;
    while e < 6 && m != 0 && m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    m.wrapping_mul(8).wrapping_add(e)
}

pub fn unpack_micros(p: i64) -> i64 {
    let e = p.rem_euclid(8);
    ((p - e) / 8).saturating_mul(10i64.pow(e.min(6) as u32))
}

/// Counters of one A/B variant of a channel's creative.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantCounters {
    pub id: String,
    #[serde(default)]
    pub impressions: u64,
    #[serde(default)]
    pub clicks: u64,
    #[serde(default)]
    pub conversions: u64,
}

impl VariantCounters {
    fn minus(&self, earlier: &VariantCounters) -> VariantCounters {
        VariantCounters {
            id: self.id.clone(),
            impressions: self.impressions.saturating_sub(earlier.impressions),
            clicks: self.clicks.saturating_sub(earlier.clicks),
            conversions: self.conversions.saturating_sub(earlier.conversions),
        }
    }

    fn went_backwards(&self, earlier: &VariantCounters) -> bool {
        self.impressions < earlier.impressions || self.clicks < earlier.clicks || self.conversions < earlier.conversions
    }
}

/// Counters of one audience segment of a channel (a value of a dimension such as device,
/// age band or region). Each dimension partitions the channel's traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentCounters {
    /// Shared with the answers and samples that name the same segment (see `wire::Names`).
    pub dimension: Arc<str>,
    pub value: Arc<str>,
    #[serde(flatten)]
    pub counters: Counters,
}

impl SegmentCounters {
    pub fn same_segment(&self, o: &SegmentCounters) -> bool {
        // Shared names compare by address first (`Arc<str>` equality does).
        self.dimension == o.dimension && self.value == o.value
    }
}

/// Adds each variant of `more` to the same variant in `into`, appending the ones it lacks.
pub fn add_variants(into: &mut Vec<VariantCounters>, more: &[VariantCounters]) {
    for v in more {
        match into.iter_mut().find(|t| t.id == v.id) {
            Some(t) => {
                t.impressions += v.impressions;
                t.clicks += v.clicks;
                t.conversions += v.conversions;
            }
            None => into.push(v.clone()),
        }
    }
}

/// Adds each segment of `more` to the same segment in `into`, appending the ones it lacks.
pub fn add_segments(into: &mut Vec<SegmentCounters>, more: &[SegmentCounters]) {
    for (i, seg) in more.iter().enumerate() {
        add_segment(into, i, seg, &seg.counters);
    }
}

/// Adds `counters` to the segment named as `seg` in `into` (looked for at `hint` first: lists
/// of one channel's segments come in the same order), or appends it.
fn add_segment(into: &mut Vec<SegmentCounters>, hint: usize, seg: &SegmentCounters, counters: &Counters) {
    let at = match into.get(hint) {
        Some(o) if o.same_segment(seg) => Some(hint),
        _ => into.iter().position(|o| o.same_segment(seg)),
    };
    match at {
        Some(i) => into[i].counters.add(counters),
        None => into.push(SegmentCounters {
            dimension: seg.dimension.clone(),
            value: seg.value.clone(),
            counters: *counters,
        }),
    }
}

/// What one channel gained between two polls. `at` is the end of the interval in unix
/// milliseconds (source time); `reset` marks an interval in which the source restarted its
/// counters, so the delta is the new cumulative value (all that is known since the restart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub reset: bool,
    /// The first observation of a channel: its delta holds everything since the channel
    /// started, so it counts toward totals but not toward rates per interval.
    #[serde(default, skip_serializing_if = "is_false")]
    pub first: bool,
    pub delta: Counters,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantCounters>,
    /// What each audience segment gained in the interval, when the source breaks them down.
    /// Stored by the hour in the segment rollups only, not with the raw sample.
    #[serde(skip)]
    pub segments: Vec<SegmentCounters>,
}

impl Sample {
    /// Folds a later sample of the same channel into this one, so that one stored sample
    /// covers both intervals: the gains add up, a reset in either marks the whole.
    pub fn absorb(&mut self, later: &Sample) {
        self.at = self.at.max(later.at);
        self.reset |= later.reset;
        self.delta.add(&later.delta);
        add_variants(&mut self.variants, &later.variants);
        add_segments(&mut self.segments, &later.segments);
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The last cumulative reading of a channel and what we have accumulated from it, so that
/// totals survive source resets and restarts of the cockpit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelCursor {
    /// Source time of the last reading, unix ms; 0 before the first one.
    pub at: i64,
    pub raw: Counters,
    pub raw_variants: Vec<VariantCounters>,
    /// Sum of every delta ever taken: campaign-to-date totals, reset-safe.
    pub totals: Counters,
    pub variant_totals: Vec<VariantCounters>,
    pub resets: u32,
    /// The last cumulative segment readings, and their reset-safe sums since the start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub raw_segments: Vec<SegmentCounters>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segment_totals: Vec<SegmentCounters>,
    /// Start of the campaign-local day that `today` covers (unix ms), kept so that start-up
    /// needs no scan of the day's samples.
    pub day_start: i64,
    pub today: Counters,
}

impl ChannelCursor {
    /// `advance` for a source whose totals are restated (read by periods or as a window): a
    /// counter that went down is a correction (a refund, late invalid clicks), never a reset.
    /// The sample takes what grew; the totals follow the source, what went down included.
    pub fn advance_restated(&mut self, at: i64, raw: Counters) -> Option<Sample> {
        if self.at == 0 {
            return self.advance(at, raw, &[]);
        }
        if at <= self.at {
            return None;
        }
        let gain = raw.minus(&self.raw);
        let loss = self.raw.minus(&raw);
        self.at = at;
        self.raw = raw;
        self.totals.add(&gain);
        self.totals = self.totals.minus(&loss);
        Some(Sample { at, reset: false, first: false, delta: gain, variants: Vec::new(), segments: Vec::new() })
    }

    /// Turns a new cumulative reading into a sample and moves the cursor. Returns `None` when
    /// the reading is not newer than the last one (a repeated or out-of-order response).
    pub fn advance(&mut self, at: i64, raw: Counters, variants: &[VariantCounters]) -> Option<Sample> {
        let first = self.at == 0;
        if !first && at <= self.at {
            return None;
        }
        let reset = !first
            && (raw.went_backwards(&self.raw)
                || variants
                    .iter()
                    .any(|v| self.raw_variants.iter().find(|p| p.id == v.id).is_some_and(|p| v.went_backwards(p))));
        let (delta, vdelta) = if first || reset {
            (raw, variants.to_vec())
        } else {
            let vd = variants
                .iter()
                .map(|v| match self.raw_variants.iter().find(|p| p.id == v.id) {
                    Some(p) => v.minus(p),
                    None => v.clone(),
                })
                .collect();
            (raw.minus(&self.raw), vd)
        };
        self.at = at;
        self.raw = raw;
        self.raw_variants = variants.to_vec();
        self.totals.add(&delta);
        add_variants(&mut self.variant_totals, &vdelta);
        if reset {
            self.resets += 1;
        }
        Some(Sample { at, reset, first, delta, variants: vdelta, segments: Vec::new() })
    }

    /// Counts an accepted sample in today's figures, starting a new day when `day_start` (the
    /// campaign-local day of the sample) moved on. A first reading belongs to no day.
    pub fn count_today(&mut self, day_start: i64, sample: &Sample) {
        if day_start != self.day_start {
            self.day_start = day_start;
            self.today = Counters::default();
        }
        if !sample.first {
            self.today.add(&sample.delta);
        }
    }

    /// Adds what each segment gained since its last reading to its totals, and returns those
    /// gains. A segment read for the first time, or whose counters went down, counts its whole
    /// reading (as a channel's first reading or reset does). Called after `advance` accepted
    /// the reading.
    pub fn advance_segments(&mut self, segments: &[SegmentCounters]) -> Vec<SegmentCounters> {
        let mut gains = Vec::with_capacity(segments.len());
        self.advance_segments_into(segments, &mut gains);
        gains
    }

    /// `advance_segments`, adding the gains into `gains` (a sample being built up), so that a
    /// reading joining one copies no segment names.
    pub fn advance_segments_into(&mut self, segments: &[SegmentCounters], gains: &mut Vec<SegmentCounters>) {
        // Sources list their segments in the same order every time: then the last readings
        // are matched by position and updated in place.
        let same_order = self.raw_segments.len() == segments.len()
            && self.raw_segments.iter().zip(segments).all(|(p, s)| p.same_segment(s));
        for (i, seg) in segments.iter().enumerate() {
            let last = if same_order {
                Some(&self.raw_segments[i])
            } else {
                self.raw_segments.iter().find(|p| p.same_segment(seg))
            };
            let delta = match last {
                Some(p) if !seg.counters.went_backwards(&p.counters) => seg.counters.minus(&p.counters),
                _ => seg.counters,
            };
            add_segment(&mut self.segment_totals, i, seg, &delta);
            add_segment(gains, i, seg, &delta);
        }
        if same_order {
            for (p, s) in self.raw_segments.iter_mut().zip(segments) {
                p.counters = s.counters;
            }
        } else {
            self.raw_segments = segments.to_vec();
        }
    }
}

/// A campaign's channels summed up as their stored cursors stand: what the first frame shows
/// before every channel's state has been read. Kept beside the cursors and written with them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignTotals {
    /// The fingerprint of the channel ids summed (see `plan_print`): a campaign whose channels
    /// changed since is not summed up by this record.
    pub plan: u64,
    pub totals: Counters,
    /// The latest campaign-local day any channel counted, and that day's counters summed.
    pub day_start: i64,
    pub today: Counters,
}

impl CampaignTotals {
    /// Sums up channels given as (totals, today, day start of `today`), in plan order.
    pub fn sum<'a>(plan: u64, channels: impl Iterator<Item = (&'a Counters, &'a Counters, i64)> + Clone) -> Self {
        let day_start = channels.clone().map(|(_, _, d)| d).max().unwrap_or(0);
        CampaignTotals {
            plan,
            totals: Counters::sum(channels.clone().map(|(t, _, _)| t)),
            day_start,
            today: Counters::sum(channels.filter(|(_, _, d)| *d == day_start).map(|(_, t, _)| t)),
        }
    }

    /// The counters of the day starting at `day_start` (nothing counted yet on a new day).
    pub fn today_at(&self, day_start: i64) -> Counters {
        if self.day_start == day_start { self.today } else { Counters::default() }
    }
}

/// A fingerprint of a campaign's channel ids, in order (FNV-1a: stable across builds).
pub fn plan_print<'a>(ids: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for id in ids {
        for b in id.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A channel's last samples (end time, delta), oldest first, at most as many as asked for.
/// Shared with the views the engine publishes: the newest sample, which every reading of its
/// storage period changes, is kept apart; the older ones sit in blocks that a new view shares
/// as they are (a new sample copies at most the list of blocks and the block being filled).
#[derive(Debug, Clone, Default)]
pub struct Recent {
    /// Every sample but the newest; every block but the last is full.
    blocks: Arc<std::collections::VecDeque<Block>>,
    /// Entries at the start of the first block that have left the window.
    skip: usize,
    newest: Option<(i64, Counters)>,
    len: usize,
}

const RECENT_BLOCK: usize = 16;

/// Up to `RECENT_BLOCK` samples of a `Recent`, shared.
type Block = Arc<Vec<(i64, Counters)>>;

/// Sent as its entries, oldest first.
impl serde::Serialize for Recent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Recent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Recent, D::Error> {
        let entries: Vec<(i64, Counters)> = serde::Deserialize::deserialize(d)?;
        let n = entries.len();
        Ok(Recent::from_entries(entries, n))
    }
}

/// The block to change: still in a published view, it is copied (the others stay shared).
fn writable(block: &mut Block) -> &mut Vec<(i64, Counters)> {
    if Arc::get_mut(block).is_none() {
        let mut copy = Vec::with_capacity(RECENT_BLOCK);
        copy.extend_from_slice(block);
        *block = Arc::new(copy);
    }
    Arc::get_mut(block).expect("just made unique")
}

impl Recent {
    /// The last `cap` of `entries`.
    pub fn from_entries(entries: impl IntoIterator<Item = (i64, Counters)>, cap: usize) -> Recent {
        let mut r = Recent::default();
        for e in entries {
            r.push(e, cap);
        }
        r
    }

    /// Adds a sample at the end; the oldest leaves once there are more than `cap`.
    pub fn push(&mut self, e: (i64, Counters), cap: usize) {
        if let Some(older) = self.newest.replace(e) {
            let blocks = Arc::make_mut(&mut self.blocks);
            match blocks.back_mut() {
                Some(last) if last.len() < RECENT_BLOCK => writable(last).push(older),
                _ => {
                    let mut block = Vec::with_capacity(RECENT_BLOCK);
                    block.push(older);
                    blocks.push_back(Arc::new(block));
                }
            }
        }
        self.len += 1;
        while self.len > cap {
            self.len -= 1;
            if self.len < usize::from(self.newest.is_some()) {
                self.newest = None;
                continue;
            }
            self.skip += 1;
            if self.blocks.front().is_some_and(|b| self.skip >= b.len()) {
                Arc::make_mut(&mut self.blocks).pop_front();
                self.skip = 0;
            }
        }
    }

    /// Adds a sample into the last one, which then ends at `at` (a reading joining the sample
    /// of its storage period); pushed as a sample of its own when there is none.
    pub fn add_to_last(&mut self, at: i64, delta: &Counters, cap: usize) {
        match &mut self.newest {
            Some(last) => {
                last.0 = at;
                last.1.add(delta);
            }
            None => self.push((at, *delta), cap),
        }
    }

    pub fn last(&self) -> Option<&(i64, Counters)> {
        self.newest.as_ref()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &(i64, Counters)> + Clone + '_ {
        let older =
            self.blocks.iter().enumerate().flat_map(move |(i, b)| b[if i == 0 { self.skip } else { 0 }..].iter());
        older.chain(self.newest.iter())
    }

    pub fn first(&self) -> Option<&(i64, Counters)> {
        self.iter().next()
    }
}

impl PartialEq for Recent {
    fn eq(&self, other: &Recent) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_packs_its_trailing_zeros_and_comes_back_whole() {
        for m in [0, 1, -1, 4_500_000, -4_500_000, 123_456_789, 10, 1_000_000_000_000, i64::MAX / 16, i64::MIN / 16] {
            assert_eq!(unpack_micros(pack_micros(m)), m, "{m}");
        }
        assert!(pack_micros(4_500_000).unsigned_abs() < 1 << 13, "whole cents take two bytes");
    }

    #[test]
    fn recent_keeps_the_last_samples_and_shares_full_blocks_with_views() {
        let c = |n: u64| Counters { clicks: n, ..Default::default() };
        let mut r = Recent::default();
        for i in 0..50 {
            r.push((i, c(i as u64)), 20);
        }
        assert_eq!(r.len(), 20);
        assert_eq!(r.iter().map(|(at, _)| *at).collect::<Vec<_>>(), (30..50).collect::<Vec<_>>());
        assert_eq!(r.first(), Some(&(30, c(30))));
        let view = r.clone();
        r.push((50, c(50)), 20);
        assert_eq!(view.iter().map(|(at, _)| *at).collect::<Vec<_>>(), (30..50).collect::<Vec<_>>(), "views stay");
        assert_eq!(r.iter().map(|(at, _)| *at).collect::<Vec<_>>(), (31..51).collect::<Vec<_>>());
        assert!(Arc::ptr_eq(&r.blocks[0], &view.blocks[0]), "full blocks are shared, not copied");
        assert_eq!(Recent::from_entries(r.iter().copied(), 20), r);
        assert_ne!(Recent::from_entries(r.iter().copied(), 5), r);
        assert!(Recent::default().is_empty() && Recent::default().first().is_none());
        // A reading added into the last sample: the view keeps the sample as it was.
        let view = r.clone();
        r.add_to_last(55, &c(7), 20);
        assert_eq!(r.last(), Some(&(55, c(57))));
        assert_eq!((view.last(), r.len()), (Some(&(50, c(50))), 20));
        assert!(Arc::ptr_eq(&r.blocks, &view.blocks), "a reading joining the newest sample copies nothing");
        let mut empty = Recent::default();
        empty.add_to_last(9, &c(1), 20);
        assert_eq!(empty.iter().copied().collect::<Vec<_>>(), vec![(9, c(1))]);
    }

    /// Against a plain list: any mix of new samples and readings joining the newest, at any
    /// cap, with views taken along the way that keep what they saw.
    #[test]
    fn recent_is_the_last_entries_of_a_list() {
        let c = |n: u64| Counters { clicks: n, ..Default::default() };
        for cap in [0, 1, 2, 15, 16, 17, 40] {
            let (mut r, mut model) = (Recent::default(), std::collections::VecDeque::new());
            let mut views = Vec::new();
            for i in 0..200u64 {
                if i % 3 == 1 {
                    r.add_to_last(i as i64, &c(i), cap);
                    match model.back_mut() {
                        Some((at, n)) => (*at, *n) = (i as i64, *n + i),
                        None => model.push_back((i as i64, i)),
                    }
                } else {
                    r.push((i as i64, c(i)), cap);
                    model.push_back((i as i64, i));
                }
                while model.len() > cap {
                    model.pop_front();
                }
                let got: Vec<(i64, u64)> = r.iter().map(|(at, n)| (*at, n.clicks)).collect();
                assert_eq!(got, model.iter().copied().collect::<Vec<_>>(), "cap {cap} after {i}");
                assert_eq!((r.len(), r.last().map(|e| e.0)), (model.len(), model.back().map(|e| e.0)));
                if i % 7 == 0 {
                    views.push((r.clone(), got));
                }
            }
            for (view, saw) in views {
                assert_eq!(view.iter().map(|(at, n)| (*at, n.clicks)).collect::<Vec<_>>(), saw, "cap {cap}");
            }
        }
    }

    use proptest::prelude::*;

    fn c(i: u64, cl: u64, spend: f64) -> Counters {
        Counters { impressions: i, clicks: cl, leads: 0, conversions: 0, spend, revenue: 0.0 }
    }

    #[test]
    fn first_reading_carries_everything_then_deltas() {
        let mut cur = ChannelCursor::default();
        let s = cur.advance(1_000, c(100, 5, 10.0), &[]).unwrap();
        assert!(s.first && !s.reset);
        assert_eq!(s.delta, c(100, 5, 10.0));
        let s = cur.advance(2_000, c(150, 7, 12.5), &[]).unwrap();
        assert!(!s.first);
        assert_eq!(s.delta, c(50, 2, 2.5));
        assert_eq!(cur.totals, c(150, 7, 12.5));
    }

    #[test]
    fn decrease_is_a_reset_not_a_negative_delta() {
        let mut cur = ChannelCursor::default();
        cur.advance(1_000, c(100, 5, 10.0), &[]);
        let s = cur.advance(2_000, c(20, 1, 2.0), &[]).unwrap();
        assert!(s.reset);
        assert_eq!(s.delta, c(20, 1, 2.0));
        assert_eq!(cur.totals, c(120, 6, 12.0));
        assert_eq!(cur.resets, 1);
    }

    #[test]
    fn stale_or_repeated_reading_is_ignored() {
        let mut cur = ChannelCursor::default();
        cur.advance(2_000, c(100, 5, 10.0), &[]);
        assert!(cur.advance(2_000, c(100, 5, 10.0), &[]).is_none());
        assert!(cur.advance(1_000, c(120, 5, 10.0), &[]).is_none());
        assert_eq!(cur.totals, c(100, 5, 10.0));
    }

    #[test]
    fn variant_decrease_alone_is_a_reset() {
        let v = |i| VariantCounters { id: "A".into(), impressions: i, clicks: 0, conversions: 0 };
        let mut cur = ChannelCursor::default();
        cur.advance(1, c(100, 0, 0.0), &[v(60)]);
        let s = cur.advance(2, c(110, 0, 0.0), &[v(10)]).unwrap();
        assert!(s.reset);
        assert_eq!(cur.variant_totals[0].impressions, 70);
    }

    #[test]
    fn segments_sum_their_gains_across_resets() {
        let seg = |v: &str, i: u64| SegmentCounters {
            dimension: "device".into(),
            value: v.into(),
            counters: c(i, i / 10, i as f64 / 100.0),
        };
        let mut cur = ChannelCursor::default();
        cur.advance_segments(&[seg("mobile", 100), seg("desktop", 40)]);
        let gains = cur.advance_segments(&[seg("mobile", 150), seg("desktop", 60)]);
        assert_eq!(gains.iter().map(|g| g.counters.impressions).collect::<Vec<_>>(), [50, 20]);
        // The source restarted the mobile counter; desktop appears unchanged.
        cur.advance_segments(&[seg("mobile", 20), seg("desktop", 60)]);
        let total = |v: &str| cur.segment_totals.iter().find(|s| &*s.value == v).unwrap().counters.impressions;
        assert_eq!(total("mobile"), 170);
        assert_eq!(total("desktop"), 60);
    }

    #[test]
    fn absorbed_samples_add_up_and_keep_a_reset() {
        let v = |i| VariantCounters { id: "A".into(), impressions: i, clicks: 1, conversions: 0 };
        let seg =
            |i: u64| SegmentCounters { dimension: "device".into(), value: "mobile".into(), counters: c(i, 0, 0.0) };
        let mut a = Sample {
            at: 1_000,
            delta: c(10, 1, 1.5),
            variants: vec![v(4)],
            segments: vec![seg(3)],
            ..Default::default()
        };
        let b = Sample {
            at: 2_000,
            reset: true,
            delta: c(5, 2, 0.5),
            variants: vec![v(6)],
            segments: vec![seg(2)],
            ..Default::default()
        };
        a.absorb(&b);
        assert_eq!((a.at, a.reset, a.first), (2_000, true, false));
        assert_eq!(a.delta, c(15, 3, 2.0));
        assert_eq!((a.variants.len(), a.variants[0].impressions, a.variants[0].clicks), (1, 10, 2));
        assert_eq!(a.segments[0].counters.impressions, 5);
    }

    proptest! {
        /// Whatever the source does (grow, stall, reset), totals equal the sum of the
        /// samples, no delta is negative, and without resets totals equal the last reading.
        #[test]
        fn totals_are_the_sum_of_samples(steps in proptest::collection::vec((0u64..1000, 0u64..50, 0u32..10_000, any::<bool>()), 1..60)) {
            let mut cur = ChannelCursor::default();
            let mut raw = Counters::default();
            let mut sum = Counters::default();
            let mut resets = 0;
            for (k, (di, dc, cents, reset)) in steps.into_iter().enumerate() {
                if reset && k > 0 {
                    raw = Counters::default();
                    resets += 1;
                }
                raw.impressions += di;
                raw.clicks += dc;
                raw.spend += f64::from(cents) / 100.0;
                let s = cur.advance(k as i64 + 1, raw, &[]).unwrap();
                prop_assert!(s.delta.spend >= 0.0);
                sum.add(&s.delta);
            }
            prop_assert_eq!(cur.totals.impressions, sum.impressions);
            prop_assert_eq!(cur.totals.clicks, sum.clicks);
            prop_assert!((cur.totals.spend - sum.spend).abs() < 1e-6);
            if resets == 0 {
                prop_assert_eq!(cur.totals.impressions, raw.impressions);
            }
        }
    }
}
