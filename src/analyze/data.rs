//! What the analysis needs from the store: counters over any window and daily series since
//! launch.

use super::{SegmentRow, Span, WindowKind, average_days, by_launch_day, campaign_metrics, earlier_campaigns};
use crate::domain::ChannelKey;
use crate::domain::time::HOUR_MS;
use crate::domain::{Campaign, Counters, Metric, SegmentCounters};
use crate::store::{Result, Store};
use serde::{Deserialize, Serialize};

/// One row of the compare view: a channel (or the whole campaign) in the window and the one
/// before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub current: Counters,
    pub previous: Option<Counters>,
}

/// What the analyze view shows for one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub campaign: String,
    pub window: WindowKind,
    pub span: Span,
    pub previous: Option<Span>,
    pub metrics: Vec<Metric>,
    /// The campaign's total first, then each channel.
    pub rows: Vec<Row>,
    /// Over the window (whole hours), summed over channels, judged on `segment_metric`.
    pub segment_metric: Metric,
    pub segments: Vec<SegmentRow>,
    /// This campaign by day since launch.
    pub days: Vec<Counters>,
    /// What it is compared with by day since launch: (label, days).
    pub against: Option<(String, Vec<Counters>)>,
    /// Everything it can be compared with, in order; `against` is entry `against_index`.
    pub candidates: Vec<String>,
    pub against_index: usize,
}

/// The KPI segments are judged on: the campaign's first limit, else CTR.
pub fn segment_metric(c: &Campaign) -> Metric {
    c.kpis.first().map_or(Metric::Ctr, |k| k.metric)
}

/// What `c` can be compared with: each earlier campaign (sharing a tag first), then the
/// average of the earlier campaigns of each tag that two or more of them share.
pub fn comparisons<'a>(c: &Campaign, all: &[&'a Campaign]) -> Vec<(String, Vec<&'a Campaign>)> {
    let earlier = earlier_campaigns(c, all);
    let mut out: Vec<(String, Vec<&Campaign>)> = earlier.iter().map(|o| (o.name.clone(), vec![*o])).collect();
    for tag in &c.tags {
        let with: Vec<&Campaign> = earlier.iter().copied().filter(|o| o.tags.contains(tag)).collect();
        if with.len() >= 2 {
            out.push((format!("average of #{tag} ({})", with.len()), with));
        }
    }
    out
}

/// The days since launch of an earlier campaign, through its end; ended campaigns no longer
/// change, so `cache` keeps them.
pub fn past_days(
    store: &Store,
    c: &Campaign,
    now: i64,
    cache: &mut std::collections::HashMap<String, Vec<Counters>>,
) -> Result<Vec<Counters>> {
    if let Some(days) = cache.get(&c.id) {
        return Ok(days.clone());
    }
    let days = campaign_days(store, c, c.end_ms())?;
    if c.end_ms() <= now {
        cache.insert(c.id.clone(), days.clone());
    }
    Ok(days)
}

/// The series `against` (an index into `comparisons`) stands for: its label and its days since
/// launch (an average for a tag).
pub fn against_days(
    store: &Store,
    c: &Campaign,
    all: &[&Campaign],
    against: usize,
    now: i64,
    cache: &mut std::collections::HashMap<String, Vec<Counters>>,
) -> Result<Option<(usize, String, Vec<Counters>)>> {
    let options = comparisons(c, all);
    if options.is_empty() {
        return Ok(None);
    }
    let i = against % options.len();
    let (label, cs) = &options[i];
    let series = cs.iter().map(|o| past_days(store, o, now, cache)).collect::<Result<Vec<_>>>()?;
    Ok(Some((i, label.clone(), average_days(&series))))
}

/// A channel's audience segments over `span`: for the whole run its cursor's totals (which
/// also hold the first reading); otherwise the hourly segment rollups of the hours the span
/// touches (segments are kept by the hour, so a window's edges round out to whole hours).
pub fn channel_segments(store: &Store, key: &ChannelKey, span: Span, whole: bool) -> Result<Vec<SegmentCounters>> {
    if whole {
        return Ok(store.cursor(key)?.map(|c| c.segment_totals).unwrap_or_default());
    }
    store.segment_rollups(key, span.from.div_euclid(HOUR_MS) * HOUR_MS, span.to)
}

/// Builds the analysis of `c` as of `now`, compared with one of the earlier campaigns of
/// `all`.
pub fn analysis(
    store: &Store,
    c: &Campaign,
    all: &[&Campaign],
    window: WindowKind,
    against: usize,
    now: i64,
    cache: &mut std::collections::HashMap<String, Vec<Counters>>,
) -> Result<Analysis> {
    let (span, previous) = window.spans(c, now);
    let mut rows = Vec::with_capacity(c.channels.len() + 1);
    let mut segments = Vec::new();
    for ch in &c.channels {
        let key = ChannelKey::new(&c.id, &ch.id);
        segments.extend(channel_segments(store, &key, span, window == WindowKind::ToDate)?);
        rows.push(Row {
            id: ch.id.clone(),
            name: ch.name.clone(),
            current: self::window(store, &key, span)?,
            previous: previous.map(|p| self::window(store, &key, p)).transpose()?,
        });
    }
    let total = Row {
        id: String::new(),
        name: "all channels".into(),
        current: Counters::sum(rows.iter().map(|r| &r.current)),
        previous: previous.map(|_| Counters::sum(rows.iter().filter_map(|r| r.previous.as_ref()))),
    };
    rows.insert(0, total);
    let (against_index, against) = match against_days(store, c, all, against, now, cache)? {
        Some((i, label, days)) => (i, Some((label, days))),
        None => (0, None),
    };
    let metric = segment_metric(c);
    Ok(Analysis {
        campaign: c.id.clone(),
        window,
        span,
        previous,
        metrics: campaign_metrics(c),
        rows,
        segment_metric: metric,
        segments: super::segments(&segments, metric),
        days: campaign_days(store, c, now)?,
        against,
        candidates: comparisons(c, all).into_iter().map(|(l, _)| l).collect(),
        against_index,
    })
}

/// A channel's counters over `span`: whole hours from the hourly rollups; the partial hours at
/// either edge from the raw samples (kept two days) or, when those are gone, from the hour's
/// rollup in proportion to the part of the hour covered.
pub fn window(store: &Store, key: &ChannelKey, span: Span) -> Result<Counters> {
    if span.is_empty() {
        return Ok(Counters::default());
    }
    // A channel read by periods: the periods that start in the span, whole (a day's row
    // says nothing of its hours).
    if let Some(periods) = store.period_figures(key, span.from, span.to)? {
        return Ok(Counters::sum(periods.iter().map(|(_, c)| c)));
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
    Ok(c.scaled((to - from) as f64 / HOUR_MS as f64))
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
