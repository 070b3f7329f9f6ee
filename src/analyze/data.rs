//! What the analysis needs from the store: counters over any window and daily series since
//! launch.

use super::{HOUR_MS, Span, by_launch_day};
use crate::domain::{Campaign, Counters};
use crate::store::{ChannelKey, Result, Store};

/// A channel's counters over `span`: whole hours from the hourly rollups; the partial hours at
/// either edge from the raw samples (kept two days) or, when those are gone, from the hour's
/// rollup in proportion to the part of the hour covered.
pub fn window(store: &Store, key: &ChannelKey, span: Span) -> Result<Counters> {
    if span.is_empty() {
        return Ok(Counters::default());
    }
    let first_whole = ceil_hour(span.from);
    let last_whole = span.to.div_euclid(HOUR_MS) * HOUR_MS;
    let mut total = Counters::default();
    if first_whole >= last_whole {
        // Within one hour (or across one boundary with no whole hour between).
        total.add(&edge(store, key, span.from, first_whole.min(span.to))?);
        if first_whole < span.to {
            total.add(&edge(store, key, first_whole, span.to)?);
        }
        return Ok(total);
    }
    for (_, c) in store.rollups(key, first_whole, last_whole)? {
        total.add(&c);
    }
    total.add(&edge(store, key, span.from, first_whole)?);
    total.add(&edge(store, key, last_whole, span.to)?);
    Ok(total)
}

fn ceil_hour(t: i64) -> i64 {
    (t + HOUR_MS - 1).div_euclid(HOUR_MS) * HOUR_MS
}

/// `[from, to)` inside one hour.
fn edge(store: &Store, key: &ChannelKey, from: i64, to: i64) -> Result<Counters> {
    if to <= from {
        return Ok(Counters::default());
    }
    let hour = from.div_euclid(HOUR_MS) * HOUR_MS;
    let raw = store.samples(key, hour, hour + HOUR_MS)?;
    if raw.iter().any(|s| !s.first) {
        return Ok(Counters::sum(raw.iter().filter(|s| !s.first && s.at >= from && s.at < to).map(|s| &s.delta)));
    }
    let Some((_, c)) = store.rollups(key, hour, hour + 1)?.into_iter().next() else { return Ok(Counters::default()) };
    Ok(prorate(&c, (to - from) as f64 / HOUR_MS as f64))
}

fn prorate(c: &Counters, f: f64) -> Counters {
    let n = |x: u64| (x as f64 * f).round() as u64;
    Counters {
        impressions: n(c.impressions),
        clicks: n(c.clicks),
        leads: n(c.leads),
        conversions: n(c.conversions),
        spend: c.spend * f,
        revenue: c.revenue * f,
    }
}

/// A campaign's counters per local day since launch, all channels summed, up to `upto`.
pub fn campaign_days(store: &Store, c: &Campaign, upto: i64) -> Result<Vec<Counters>> {
    let mut hours = Vec::new();
    for ch in &c.channels {
        hours.extend(store.rollups(&ChannelKey::new(&c.id, &ch.id), c.start_ms() - HOUR_MS, upto)?);
    }
    Ok(by_launch_day(c, &hours, upto))
}

/// One channel's counters per local day since launch.
pub fn channel_days(store: &Store, c: &Campaign, channel: &str, upto: i64) -> Result<Vec<Counters>> {
    let hours = store.rollups(&ChannelKey::new(&c.id, channel), c.start_ms() - HOUR_MS, upto)?;
    Ok(by_launch_day(c, &hours, upto))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sample;
    use crate::store::Ingest;

    /// Hourly rollups and raw samples agree: a window's counters are exact where raw samples
    /// exist and whole hours come from the rollups.
    #[test]
    fn windows_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let key = ChannelKey::new("c", "ch");
        let mut cursor = crate::domain::ChannelCursor::default();
        let base = 1_000 * HOUR_MS;
        // One sample a minute for three hours, 10 impressions and 1 yuan each.
        let mut samples = vec![Sample { at: base, first: true, ..Default::default() }];
        for m in 1..=180 {
            samples.push(Sample {
                at: base + m * 60_000,
                delta: Counters { impressions: 10, spend: 1.0, ..Default::default() },
                ..Default::default()
            });
        }
        let items: Vec<Ingest<'_>> = samples.iter().map(|s| Ingest { key: &key, sample: s, cursor: &cursor }).collect();
        store.ingest(&items).unwrap();
        cursor.at = base;
        let w = |from: i64, to: i64| window(&store, &key, Span { from, to }).unwrap().impressions;
        assert_eq!(w(base, base + 3 * HOUR_MS), 1_790, "the sample at the 3 h mark is outside");
        assert_eq!(w(base + 30 * 60_000, base + 90 * 60_000), 600);
        assert_eq!(w(base + 10 * 60_000, base + 20 * 60_000), 100);
        assert_eq!(w(base + HOUR_MS, base + 2 * HOUR_MS), 600);
        // Raw samples pruned: edges are prorated from the rollups (the first hour holds 59
        // minutes of data, so half of it is 295).
        store.prune_samples(&key, base + 10 * HOUR_MS).unwrap();
        assert_eq!(w(base + 30 * 60_000, base + 90 * 60_000), 295 + 300);
        assert_eq!(w(base + HOUR_MS, base + 2 * HOUR_MS), 600);
    }
}
