//! How records are written. Plans, alerts, the journal and notes stay JSON (readable, and a
//! field added later reads back with its default). The numbers — cursors, samples, rollups,
//! segment rollups, their packed blocks, campaign totals and periods — are written compactly
//! since schema 3: one tag byte, then postcard (counts as varints; times in a packed block as
//! the gap from the one before; amounts of money in samples, rollups and periods as whole
//! millionths of the currency, which is how Google Ads reports it and what any source's
//! decimal figures hold exactly; the running totals of cursors as exact floats, since they sum
//! many amounts). A record without the tag is the JSON of schema 2: read as such, so a
//! database opens at any point of its migration.

use crate::alert::{Alert, Silence};
use crate::domain::counters::{from_micros, micros, pack_micros, unpack_micros};
use crate::domain::{
    CampaignTotals, ChannelCursor, Counters, Note, Sample, SegmentCounters, VariantCounters, campaign::Campaign,
};
use crate::optimize::journal::JournalEntry;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::sync::Arc;

/// The first byte of a compact record: never the first byte of JSON (it is no ASCII character
/// and no first byte of UTF-8).
pub(super) const TAG: u8 = 0xB3;

/// The first byte of a packed block since schema 4, whose entries are tighter still (see
/// `Timed`).
pub(super) const BLOCK_TAG: u8 = 0xB4;

/// A value as it is stored.
pub(super) trait Record: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
    /// Whether a stored value is in the form this schema writes (a migration rewrites the
    /// others).
    fn is_current(bytes: &[u8]) -> bool {
        !is_json(bytes)
    }
}

/// Whether a stored value is still in the JSON of an older schema.
pub(super) fn is_json(bytes: &[u8]) -> bool {
    !matches!(bytes.first(), Some(&(TAG | BLOCK_TAG)))
}

fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

macro_rules! json_records {
    ($($t:ty),*) => {$(
        impl Record for $t {
            fn to_bytes(&self) -> Vec<u8> {
                serde_json::to_vec(self).expect("stored values always serialise")
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
                json(bytes)
            }
        }
    )*};
}

json_records!(Campaign, Alert, Silence, JournalEntry, Note);

/// The compact form of a value: `M` is what postcard writes.
trait Compact: DeserializeOwned {
    type M: Serialize + DeserializeOwned;
    fn pack(&self) -> Self::M;
    fn unpack(m: Self::M) -> Self;
}

fn tagged<M: Serialize>(m: &M) -> Vec<u8> {
    let mut out = vec![TAG];
    postcard::to_io(m, &mut out).expect("writing to memory does not fail");
    out
}

fn untagged<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, String> {
    if bytes.is_empty() {
        return Err("an empty record".into());
    }
    match postcard::take_from_bytes::<M>(&bytes[1..]) {
        Ok((m, [])) => Ok(m),
        Ok((_, rest)) => Err(format!("{} bytes left over after the record", rest.len())),
        Err(e) => Err(format!("compact record: {e}")),
    }
}

macro_rules! compact_records {
    ($($t:ty),*) => {$(
        impl Record for $t {
            fn to_bytes(&self) -> Vec<u8> {
                tagged(&self.pack())
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
                if is_json(bytes) {
                    return json(bytes);
                }
                untagged(bytes).map(<$t>::unpack)
            }
        }
    )*};
}

compact_records!(ChannelCursor, CampaignTotals, Sample);

/// The amounts of an interval: counts, spend and revenue in millionths.
#[derive(Serialize, Deserialize)]
pub(super) struct Amounts(u64, u64, u64, u64, i64, i64);

/// `Amounts` in a block of schema 4: money in packed millionths (whole cents in a byte or
/// two, see `pack_micros`).
#[derive(Serialize, Deserialize)]
pub(super) struct Tight(u64, u64, u64, u64, i64, i64);

impl From<&Counters> for Tight {
    fn from(c: &Counters) -> Self {
        let m = |x: f64| pack_micros(micros(x));
        Tight(c.impressions, c.clicks, c.leads, c.conversions, m(c.spend), m(c.revenue))
    }
}

impl From<Tight> for Counters {
    fn from(Tight(impressions, clicks, leads, conversions, spend, revenue): Tight) -> Self {
        let m = |p: i64| from_micros(unpack_micros(p));
        Counters { impressions, clicks, leads, conversions, spend: m(spend), revenue: m(revenue) }
    }
}

/// A sample in a block of schema 4: a plain one (no reset, not the first, no variants) is its
/// amounts after a one-byte tag.
#[derive(Serialize, Deserialize)]
pub(super) enum TightPoint {
    Plain(Tight),
    /// Flags as in `Point`.
    Full(u8, Tight, Vec<Variant>),
}

impl From<&Counters> for Amounts {
    fn from(c: &Counters) -> Self {
        Amounts(c.impressions, c.clicks, c.leads, c.conversions, micros(c.spend), micros(c.revenue))
    }
}

impl From<Amounts> for Counters {
    fn from(Amounts(impressions, clicks, leads, conversions, spend, revenue): Amounts) -> Self {
        Counters { impressions, clicks, leads, conversions, spend: from_micros(spend), revenue: from_micros(revenue) }
    }
}

/// Counters as they are (running totals).
#[derive(Serialize, Deserialize)]
struct Exact(u64, u64, u64, u64, f64, f64);

impl From<&Counters> for Exact {
    fn from(c: &Counters) -> Self {
        Exact(c.impressions, c.clicks, c.leads, c.conversions, c.spend, c.revenue)
    }
}

impl From<Exact> for Counters {
    fn from(Exact(impressions, clicks, leads, conversions, spend, revenue): Exact) -> Self {
        Counters { impressions, clicks, leads, conversions, spend, revenue }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct Variant(String, u64, u64, u64);

fn variants(v: &[VariantCounters]) -> Vec<Variant> {
    v.iter().map(|v| Variant(v.id.clone(), v.impressions, v.clicks, v.conversions)).collect()
}

fn from_variants(v: Vec<Variant>) -> Vec<VariantCounters> {
    v.into_iter()
        .map(|Variant(id, impressions, clicks, conversions)| VariantCounters { id, impressions, clicks, conversions })
        .collect()
}

#[derive(Serialize, Deserialize)]
pub(super) struct Segment<C>(String, String, C);

fn segments<'a, C: From<&'a Counters>>(s: &'a [SegmentCounters]) -> Vec<Segment<C>> {
    s.iter().map(|s| Segment(s.dimension.to_string(), s.value.to_string(), C::from(&s.counters))).collect()
}

fn from_segments<C: Into<Counters>>(s: Vec<Segment<C>>) -> Vec<SegmentCounters> {
    s.into_iter()
        .map(|Segment(d, v, c)| SegmentCounters { dimension: Arc::from(d), value: Arc::from(v), counters: c.into() })
        .collect()
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    at: i64,
    raw: Exact,
    raw_variants: Vec<Variant>,
    totals: Exact,
    variant_totals: Vec<Variant>,
    resets: u32,
    raw_segments: Vec<Segment<Exact>>,
    segment_totals: Vec<Segment<Exact>>,
    day_start: i64,
    today: Exact,
}

impl Compact for ChannelCursor {
    type M = Cursor;
    fn pack(&self) -> Cursor {
        Cursor {
            at: self.at,
            raw: (&self.raw).into(),
            raw_variants: variants(&self.raw_variants),
            totals: (&self.totals).into(),
            variant_totals: variants(&self.variant_totals),
            resets: self.resets,
            raw_segments: segments(&self.raw_segments),
            segment_totals: segments(&self.segment_totals),
            day_start: self.day_start,
            today: (&self.today).into(),
        }
    }
    fn unpack(m: Cursor) -> Self {
        ChannelCursor {
            at: m.at,
            raw: m.raw.into(),
            raw_variants: from_variants(m.raw_variants),
            totals: m.totals.into(),
            variant_totals: from_variants(m.variant_totals),
            resets: m.resets,
            raw_segments: from_segments(m.raw_segments),
            segment_totals: from_segments(m.segment_totals),
            day_start: m.day_start,
            today: m.today.into(),
        }
    }
}

impl Compact for CampaignTotals {
    type M = (u64, Exact, i64, Exact);
    fn pack(&self) -> Self::M {
        (self.plan, (&self.totals).into(), self.day_start, (&self.today).into())
    }
    fn unpack((plan, totals, day_start, today): Self::M) -> Self {
        CampaignTotals { plan, totals: totals.into(), day_start, today: today.into() }
    }
}

/// A sample without its time (a packed block holds it beside the value).
#[derive(Serialize, Deserialize)]
pub(super) struct Point {
    /// Bit 0: a reset; bit 1: the first reading.
    flags: u8,
    delta: Amounts,
    variants: Vec<Variant>,
}

fn point(s: &Sample) -> Point {
    Point {
        flags: u8::from(s.reset) | u8::from(s.first) << 1,
        delta: (&s.delta).into(),
        variants: variants(&s.variants),
    }
}

fn from_point(at: i64, p: Point) -> Sample {
    Sample {
        at,
        reset: p.flags & 1 != 0,
        first: p.flags & 2 != 0,
        delta: p.delta.into(),
        variants: from_variants(p.variants),
        segments: Vec::new(),
    }
}

impl Compact for Sample {
    type M = (i64, Point);
    fn pack(&self) -> Self::M {
        (self.at, point(self))
    }
    fn unpack((at, p): Self::M) -> Self {
        from_point(at, p)
    }
}

/// A value that packed blocks hold by time: its compact form without the time.
/// In a block, `B` since schema 4; `M` before (and in the records of one time).
pub(super) trait Timed: Record + DeserializeOwned {
    type M: Serialize + DeserializeOwned;
    type B: Serialize + DeserializeOwned;
    fn pack_timed(&self) -> Self::M;
    fn unpack_timed(at: i64, m: Self::M) -> Self;
    fn pack_block(&self) -> Self::B;
    fn unpack_block(at: i64, b: Self::B) -> Self;
}

impl Timed for Sample {
    type M = Point;
    type B = TightPoint;
    fn pack_timed(&self) -> Point {
        point(self)
    }
    fn unpack_timed(at: i64, p: Point) -> Self {
        from_point(at, p)
    }
    fn pack_block(&self) -> TightPoint {
        match (self.reset, self.first, self.variants.is_empty()) {
            (false, false, true) => TightPoint::Plain((&self.delta).into()),
            _ => TightPoint::Full(
                u8::from(self.reset) | u8::from(self.first) << 1,
                (&self.delta).into(),
                variants(&self.variants),
            ),
        }
    }
    fn unpack_block(at: i64, b: TightPoint) -> Self {
        let (flags, delta, variants) = match b {
            TightPoint::Plain(t) => (0, t, Vec::new()),
            TightPoint::Full(f, t, v) => (f, t, v),
        };
        Sample {
            at,
            reset: flags & 1 != 0,
            first: flags & 2 != 0,
            delta: delta.into(),
            variants: from_variants(variants),
            segments: Vec::new(),
        }
    }
}

impl Timed for Counters {
    type M = Amounts;
    type B = Tight;
    fn pack_timed(&self) -> Amounts {
        self.into()
    }
    fn unpack_timed(_: i64, m: Amounts) -> Self {
        m.into()
    }
    fn pack_block(&self) -> Tight {
        self.into()
    }
    fn unpack_block(_: i64, b: Tight) -> Self {
        b.into()
    }
}

impl Timed for Vec<SegmentCounters> {
    type M = Vec<Segment<Amounts>>;
    type B = Vec<Segment<Tight>>;
    fn pack_timed(&self) -> Self::M {
        segments(self)
    }
    fn unpack_timed(_: i64, m: Self::M) -> Self {
        from_segments(m)
    }
    fn pack_block(&self) -> Self::B {
        segments(self)
    }
    fn unpack_block(_: i64, b: Self::B) -> Self {
        from_segments(b)
    }
}

/// Values whose record is their timed form (they hold no time of their own).
macro_rules! timeless_records {
    ($($t:ty),*) => {$(
        impl Record for $t {
            fn to_bytes(&self) -> Vec<u8> {
                tagged(&self.pack_timed())
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
                if is_json(bytes) {
                    return json(bytes);
                }
                untagged(bytes).map(|m| <$t>::unpack_timed(0, m))
            }
        }
    )*};
}

timeless_records!(Counters, Vec<SegmentCounters>);

/// A packed block: the first time in full, the second as the gap from the first, each later
/// one as the change of the gap (0 for a steady pace: a byte). Before schema 4, every time
/// after the first as the gap, and the entries in their `M` form.
impl<T: Timed> Record for Vec<(i64, T)> {
    fn to_bytes(&self) -> Vec<u8> {
        let (mut last, mut last_gap) = (0i64, 0i64);
        let entries: Vec<(i64, T::B)> = self
            .iter()
            .enumerate()
            .map(|(i, (at, v))| {
                let gap = at.wrapping_sub(last);
                let step = gap.wrapping_sub(last_gap);
                last = *at;
                last_gap = if i == 0 { 0 } else { gap };
                (step, v.pack_block())
            })
            .collect();
        let mut out = vec![BLOCK_TAG];
        postcard::to_io(&entries, &mut out).expect("writing to memory does not fail");
        out
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if is_json(bytes) {
            return json(bytes);
        }
        if bytes[0] == TAG {
            let mut at = 0i64;
            let entries: Vec<(i64, T::M)> = untagged(bytes)?;
            return Ok(entries
                .into_iter()
                .map(|(gap, m)| {
                    at = at.saturating_add(gap);
                    (at, T::unpack_timed(at, m))
                })
                .collect());
        }
        let entries: Vec<(i64, T::B)> = untagged(bytes)?;
        let (mut at, mut gap) = (0i64, 0i64);
        Ok(entries
            .into_iter()
            .enumerate()
            .map(|(i, (step, b))| {
                gap = gap.wrapping_add(step);
                at = at.wrapping_add(gap);
                if i == 0 {
                    gap = 0;
                }
                (at, T::unpack_block(at, b))
            })
            .collect())
    }
    fn is_current(bytes: &[u8]) -> bool {
        bytes.first() == Some(&BLOCK_TAG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(i: u64, spend: f64) -> Counters {
        Counters { impressions: i, clicks: i / 10, leads: 3, conversions: 1, spend, revenue: spend * 3.1 }
    }

    #[test]
    fn amounts_read_back_to_the_millionth_and_decimals_exactly() {
        for spend in [0.0, 0.01, 5339.5, 39.25, 1712.48, 0.1 + 0.2, -12.5, 123_456_789.123_456] {
            let c = counters(361_324, spend);
            let back = Counters::from_bytes(&c.to_bytes()).unwrap();
            assert_eq!(back.impressions, c.impressions);
            assert!((back.spend - spend).abs() <= 0.5e-6, "{spend} → {}", back.spend);
        }
        // What a source reports as a decimal comes back as that same float.
        let c = counters(5, "5339.50".parse().unwrap());
        assert_eq!(Counters::from_bytes(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn cursors_read_back_exactly_and_json_still_reads() {
        let c = ChannelCursor {
            at: 1_780_000_000_123,
            raw: counters(10, 0.1 + 0.2),
            totals: counters(1_000_000, 98_765.432_1 + 1e-9),
            raw_variants: vec![VariantCounters { id: "a".into(), impressions: 4, clicks: 2, conversions: 1 }],
            resets: 2,
            raw_segments: vec![SegmentCounters {
                dimension: "device".into(),
                value: "ios".into(),
                counters: counters(7, 1.5),
            }],
            day_start: 1_779_984_000_000,
            today: counters(99, 12.34),
            ..Default::default()
        };
        let bytes = c.to_bytes();
        assert_eq!(bytes[0], TAG);
        assert_eq!(ChannelCursor::from_bytes(&bytes).unwrap(), c);
        let old = serde_json::to_vec(&c).unwrap();
        assert_eq!(ChannelCursor::from_bytes(&old).unwrap(), c);
        assert!(bytes.len() * 2 < old.len(), "{} vs {} bytes", bytes.len(), old.len());
    }

    #[test]
    fn a_packed_block_keeps_its_times_and_samples() {
        let block: Vec<(i64, Sample)> = (0..60)
            .map(|m| {
                let at = 1_780_000_000_000 + m * 60_000 + (m % 3);
                let s = Sample {
                    at,
                    reset: m == 7,
                    first: m == 0,
                    delta: counters(100 + m as u64, 1.25 * m as f64),
                    ..Default::default()
                };
                (at, s)
            })
            .collect();
        let bytes = block.to_bytes();
        assert_eq!(bytes[0], BLOCK_TAG);
        assert_eq!(Vec::<(i64, Sample)>::from_bytes(&bytes).unwrap(), block);
        let json = serde_json::to_vec(&block).unwrap();
        assert_eq!(Vec::<(i64, Sample)>::from_bytes(&json).unwrap(), block);
        assert!(bytes.len() * 5 < json.len(), "{} vs {} bytes", bytes.len(), json.len());
        // As schema 3 wrote it: every gap, the samples in their `Point` form.
        let mut last = 0;
        let old: Vec<(i64, Point)> = block
            .iter()
            .map(|(at, s)| {
                let gap = at - last;
                last = *at;
                (gap, point(s))
            })
            .collect();
        let old = tagged(&old);
        assert_eq!(Vec::<(i64, Sample)>::from_bytes(&old).unwrap(), block);
        assert!(!<Vec<(i64, Sample)>>::is_current(&old) && <Vec<(i64, Sample)>>::is_current(&bytes));
        assert!(bytes.len() < old.len(), "{} vs {} bytes", bytes.len(), old.len());
    }

    /// A steady minute of whole-cent amounts: about a dozen bytes a sample.
    #[test]
    fn a_block_of_steady_minutes_takes_a_dozen_bytes_a_sample() {
        let block: Vec<(i64, Sample)> = (0..60)
            .map(|m| {
                let at = 1_780_000_000_000 + m * 60_000;
                let delta = Counters {
                    impressions: 900 + m as u64,
                    clicks: 20,
                    leads: 1,
                    conversions: m as u64 % 2,
                    spend: 31.5,
                    revenue: 94.7,
                };
                (at, Sample { at, delta, ..Default::default() })
            })
            .collect();
        let bytes = block.to_bytes();
        assert_eq!(Vec::<(i64, Sample)>::from_bytes(&bytes).unwrap(), block);
        assert!(bytes.len() <= 60 * 12, "{} bytes for 60 samples", bytes.len());
        let times: Vec<Counters> = block.iter().map(|(_, s)| s.delta).collect();
        let rollups: Vec<(i64, Counters)> = block.iter().map(|(at, s)| (*at, s.delta)).collect();
        assert_eq!(Vec::<(i64, Counters)>::from_bytes(&rollups.to_bytes()).unwrap().len(), times.len());
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let bytes = counters(5, 1.0).to_bytes();
        for cut in 1..bytes.len() {
            assert!(Counters::from_bytes(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Counters::from_bytes(&longer).unwrap_err().contains("left over"));
        assert!(Vec::<(i64, Sample)>::from_bytes(&[TAG, 0xff, 0xff]).is_err());
    }
}
