//! Analysis: windows and period over period, KPI cells judged against the previous window and
//! the campaign's limits, the funnel, segment outliers with a volume guard, and campaigns
//! aligned by day since launch. Pure functions over counters; `data` reads them from the store.
//!
//! `6` opens the analyze view of the campaign selected on the overview (`j`/`k` change it), in
//! four modes (`f`):
//!
//! - **compare** — every channel and the campaign's total over a window (`w`: last hour, today,
//!   7 days, campaign to date; `W` types one: `06-05..06-07` for whole days, `06-05 09:00..18:00`,
//!   `06-05..` up to now) with the change against the window before (the hour before, yesterday
//!   to this time, the 7 days before, the equal span before). A value outside the campaign's limit is red; a
//!   change is green when it is better for that KPI (a lower CPL is, a lower CTR is not), grey
//!   when either side has too little volume to say (10 results, 1,000 impressions for CTR).
//! - **funnel** — impressions → clicks → leads → conversions per channel with each step's rate;
//!   the step furthest below the campaign's own rate (with enough volume) is marked weak.
//! - **segments** — over the same window (kept by the hour, so its edges round out to whole
//!   hours; to date from the running totals), summed over channels, ranked on the campaign's first KPI
//!   limit; "far worse/better" needs ≥ 3 standard errors, ≥ 20 % from the average and ≥ 20
//!   expected results (binomial for rates, results per spend for costs and ROAS).
//! - **vs past** — the goal metric by day since launch beside an earlier campaign (`x` cycles:
//!   those sharing a tag first, then the average of each tag shared by two or more); today's
//!   partial day is compared with the same share of the earlier campaign's day. The demo records
//!   last year's 618 festival for this.
//!
//! Window sums use the hourly rollups for whole hours and the raw samples (kept 48 h) for the
//! partial hours at the edges, or the hour's rollup in proportion once those are gone.
//!
//! **Notes** — `n` in any view writes a note at this moment on the selected campaign (and
//! channel, in the campaign and channel views); `cockpit note add --campaign ID [--channel CH]
//! [--at TIME] TEXT` does the same from a shell, `cockpit note list [--campaign ID] [--json]` lists
//! them. Alerts firing and resolving and applied actions add themselves. Notes are stored in sled.
//! The channel view's chart marks the notes of its channel and campaign with a vertical line and
//! names the latest under the chart.

pub mod data;
pub mod notes;

use crate::domain::time::{DAY_MS, HOUR_MS};
use crate::domain::{Campaign, Counters, KpiLimit, Metric, SegmentCounters};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A time range `[from, to)` in unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

impl Span {
    pub fn len(&self) -> i64 {
        (self.to - self.from).max(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The window of equal length just before this one.
    pub fn previous(&self) -> Span {
        Span { from: self.from - self.len(), to: self.from }
    }
}

/// The window selector of the compare view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WindowKind {
    LastHour,
    #[default]
    Today,
    Last7d,
    ToDate,
    Custom(Span),
}

impl WindowKind {
    pub const CYCLE: [WindowKind; 4] =
        [WindowKind::LastHour, WindowKind::Today, WindowKind::Last7d, WindowKind::ToDate];

    pub fn label(&self) -> &'static str {
        match self {
            WindowKind::LastHour => "last hour",
            WindowKind::Today => "today",
            WindowKind::Last7d => "7 days",
            WindowKind::ToDate => "campaign to date",
            WindowKind::Custom(_) => "custom",
        }
    }

    /// What the previous window is called.
    pub fn previous_label(&self) -> &'static str {
        match self {
            WindowKind::LastHour => "the hour before",
            WindowKind::Today => "yesterday to this time",
            WindowKind::Last7d => "the 7 days before",
            WindowKind::ToDate => "none",
            WindowKind::Custom(_) => "the equal span before",
        }
    }

    pub fn next(&self) -> WindowKind {
        let i = WindowKind::CYCLE.iter().position(|w| w == self).map_or(0, |i| (i + 1) % WindowKind::CYCLE.len());
        WindowKind::CYCLE[i]
    }

    /// The current window and the one it is compared with, clipped to the campaign's run
    /// (a window that starts before launch compares with nothing).
    pub fn spans(&self, c: &Campaign, now: i64) -> (Span, Option<Span>) {
        let end = now.min(c.end_ms());
        let cur = match self {
            WindowKind::LastHour => Span { from: end - HOUR_MS, to: end },
            WindowKind::Today => Span { from: c.day_start_ms(end - 1), to: end },
            WindowKind::Last7d => Span { from: end - 7 * DAY_MS, to: end },
            WindowKind::ToDate => Span { from: c.start_ms(), to: end },
            WindowKind::Custom(s) => *s,
        };
        let cur = Span { from: cur.from.max(c.start_ms()), to: cur.to.max(cur.from.max(c.start_ms())) };
        let prev = match self {
            WindowKind::ToDate => None,
            WindowKind::Today => Some(Span { from: cur.from - DAY_MS, to: cur.to - DAY_MS }),
            _ => Some(cur.previous()),
        };
        (cur, prev.filter(|p| p.from >= c.start_ms() && !p.is_empty()))
    }
}

/// A custom window typed by a person, in the campaign's time zone and year: `06-05..06-07`
/// (whole days, both included), `06-05 09:00..06-05 18:00` or `06-05 09:00..18:00`, or full
/// dates `2026-06-05..`.
/// A missing end means now (`06-05..`).
pub fn parse_span(text: &str, c: &Campaign, now: i64) -> Result<Span, String> {
    let (a, b) = text.split_once("..").ok_or_else(|| format!("'{text}': write FROM..TO, e.g. 06-05..06-07"))?;
    let off = *c.start.offset();
    let year = c.start.with_timezone(&off).format("%Y").to_string();
    // (instant, whether only a day was given)
    let point = |t: &str| -> Result<(i64, bool), String> {
        let t = t.trim();
        let full = if t.len() <= 11 && t.matches('-').count() == 1 { format!("{year}-{t}") } else { t.to_string() };
        if let Ok(d) = chrono::NaiveDate::parse_from_str(&full, "%Y-%m-%d") {
            let at = d.and_hms_opt(0, 0, 0).and_then(|x| x.and_local_timezone(off).single());
            return at.map(|x| (x.timestamp_millis(), true)).ok_or_else(|| format!("'{t}' is not a time"));
        }
        chrono::NaiveDateTime::parse_from_str(&full, "%Y-%m-%d %H:%M")
            .ok()
            .and_then(|x| x.and_local_timezone(off).single())
            .map(|x| (x.timestamp_millis(), false))
            .ok_or_else(|| format!("'{t}' is not a date (MM-DD, MM-DD HH:MM or YYYY-MM-DD)"))
    };
    let (from, _) = point(a)?;
    let to = if b.trim().is_empty() {
        now
    } else if let Ok(time) = chrono::NaiveTime::parse_from_str(b.trim(), "%H:%M") {
        // A time alone ends the window on the day it starts.
        let day = chrono::DateTime::from_timestamp_millis(from).map(|d| d.with_timezone(&off).date_naive());
        day.and_then(|d| d.and_time(time).and_local_timezone(off).single())
            .map(|x| x.timestamp_millis())
            .ok_or_else(|| format!("'{b}' is not a time"))?
    } else {
        let (t, day) = point(b)?;
        if day { t + DAY_MS } else { t }
    };
    if to <= from {
        return Err(format!("'{text}': the end comes before the start"));
    }
    Ok(Span { from, to: to.min(now) })
}

/// One KPI of one row in a window: its value, the change against the previous window and
/// whether it meets the campaign's limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub metric: Metric,
    pub value: Option<f64>,
    pub previous: Option<f64>,
    /// (value − previous) / |previous|.
    pub change: Option<f64>,
    /// Whether the change is an improvement for this metric (a lower CPL is, a lower CTR is
    /// not); `None` when there is no change to speak of (under half a percent) or too little
    /// volume on either side to call it (see `enough_volume`).
    pub improved: Option<bool>,
    /// Whether the value meets the campaign's limit on this metric, when it has one.
    pub meets: Option<bool>,
}

pub fn cell(metric: Metric, cur: &Counters, prev: Option<&Counters>, limits: &[KpiLimit]) -> Cell {
    let value = metric.value(cur);
    let previous = prev.and_then(|p| metric.value(p));
    let change = match (value, previous) {
        (Some(v), Some(p)) if p.abs() > f64::EPSILON => Some((v - p) / p.abs()),
        _ => None,
    };
    let improved = change
        .filter(|c| c.abs() >= 0.005 && prev.is_some_and(|p| enough_volume(metric, cur) && enough_volume(metric, p)))
        .map(|c| (c > 0.0) == metric.higher_is_better());
    let meets = value.and_then(|v| limits.iter().find(|l| l.metric == metric).map(|l| l.holds(v)));
    Cell { metric, value, previous, change, improved, meets }
}

/// Whether `c` holds enough to judge a change of `metric`: 10 results for counts and costs
/// per result, 1,000 impressions for CTR and CPM, 100 clicks for CVR, 30 for CPC.
pub fn enough_volume(metric: Metric, c: &Counters) -> bool {
    match metric {
        Metric::Impressions | Metric::Ctr | Metric::Cpm => c.impressions >= 1_000,
        Metric::Clicks => c.clicks >= 10,
        Metric::Cvr => c.clicks >= 100,
        Metric::Cpc => c.clicks >= 30,
        Metric::Leads | Metric::Cpl => c.leads >= 10,
        Metric::Conversions | Metric::Cpa | Metric::Roas | Metric::Roi | Metric::Revenue => c.conversions >= 10,
        Metric::Spend => true,
    }
}

/// The KPIs a campaign is judged on, for its compare table: its result count, spend, its
/// limits' metrics, then CTR and CVR.
pub fn campaign_metrics(c: &Campaign) -> Vec<Metric> {
    let result = if c.goals.iter().any(|g| g.metric == Metric::Leads) { Metric::Leads } else { Metric::Conversions };
    let mut out = vec![Metric::Spend, result];
    for m in c.kpis.iter().map(|k| k.metric).chain([Metric::Ctr, Metric::Cvr]) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// A step of the funnel: impressions → clicks → leads → conversions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    pub name: &'static str,
    pub count: u64,
    /// Share of the step before that reached this one.
    pub rate: Option<f64>,
    /// The same rate for the whole campaign.
    pub campaign_rate: Option<f64>,
    /// The step furthest below the campaign's rate (with enough volume to say so).
    pub weakest: bool,
}

/// The funnel of `c`, each step's rate against the campaign's (`all`). Leads sit between
/// clicks and conversions when the channel reports them and they are not fewer than the
/// conversions; otherwise conversions follow clicks.
pub fn funnel(c: &Counters, all: &Counters) -> Vec<FunnelStep> {
    let with_leads = |x: &Counters| x.leads > 0 && x.leads >= x.conversions;
    let use_leads = with_leads(c) && with_leads(all);
    let counts = |x: &Counters| {
        let mut v = vec![("impressions", x.impressions), ("clicks", x.clicks)];
        if use_leads {
            v.push(("leads", x.leads));
        }
        v.push(("conversions", x.conversions));
        v
    };
    let (mine, theirs) = (counts(c), counts(all));
    let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
    let mut steps: Vec<FunnelStep> = mine
        .iter()
        .enumerate()
        .map(|(i, &(name, count))| FunnelStep {
            name,
            count,
            rate: (i > 0).then(|| ratio(count, mine[i - 1].1)).flatten(),
            campaign_rate: (i > 0).then(|| ratio(theirs[i].1, theirs[i - 1].1)).flatten(),
            weakest: false,
        })
        .collect();
    // Weakest: the lowest rate relative to the campaign's, among steps whose denominator is
    // large enough for the rate to mean something (30 expected successes).
    let weakest = steps
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(i, s)| {
            let (r, cr) = (s.rate?, s.campaign_rate?);
            let expected = cr * mine[i - 1].1 as f64;
            (expected >= 30.0 && cr > 0.0).then_some((i, r / cr))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, rel)| *rel < 0.9);
    if let Some((i, _)) = weakest {
        steps[i].weakest = true;
    }
    steps
}

/// A segment summed across a campaign's channels, judged on one KPI against the rest of its
/// dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRow {
    pub dimension: Arc<str>,
    pub value: Arc<str>,
    pub counters: Counters,
    /// Share of the dimension's spend.
    pub spend_share: f64,
    pub kpi: Option<f64>,
    /// The KPI over the whole dimension (the campaign's).
    pub average: Option<f64>,
    /// Signed so that positive is better than average, in standard errors.
    pub score: f64,
    /// Far from average with the volume to matter: |score| ≥ 3, at least 20 % off, and at
    /// least 20 expected results.
    pub outlier: bool,
}

/// Every segment of `segments` (one entry per channel and segment) summed by (dimension,
/// value) and judged on `metric`, worst first within each dimension.
pub fn segments(segments: &[SegmentCounters], metric: Metric) -> Vec<SegmentRow> {
    let mut sums: Vec<SegmentCounters> = Vec::new();
    crate::domain::counters::add_segments(&mut sums, segments);
    let mut dims: Vec<Arc<str>> = sums.iter().map(|s| s.dimension.clone()).collect();
    dims.sort();
    dims.dedup();
    let mut out = Vec::new();
    for dim in dims {
        let members: Vec<&SegmentCounters> = sums.iter().filter(|s| s.dimension == dim).collect();
        let all = Counters::sum(members.iter().map(|s| &s.counters));
        let mut rows: Vec<SegmentRow> = members
            .iter()
            .map(|s| {
                let (score, enough) = segment_score(metric, &s.counters, &all);
                let kpi = metric.value(&s.counters);
                let average = metric.value(&all);
                let off = match (kpi, average) {
                    (Some(k), Some(a)) if a.abs() > f64::EPSILON => ((k - a) / a).abs(),
                    _ => 0.0,
                };
                SegmentRow {
                    dimension: s.dimension.clone(),
                    value: s.value.clone(),
                    counters: s.counters,
                    spend_share: if all.spend > 0.0 { s.counters.spend / all.spend } else { 0.0 },
                    kpi,
                    average,
                    score,
                    outlier: enough && score.abs() >= 3.0 && off >= 0.2,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.score.total_cmp(&b.score));
        out.extend(rows);
    }
    out
}

/// How far a segment's KPI is from its dimension's, in standard errors, signed so that
/// positive is better; and whether the volume is enough to judge (20 expected results).
/// Rates use the binomial on their own denominators; costs per result and ROAS compare the
/// results (or revenue) a segment got for its spend with what the average would have bought.
fn segment_score(metric: Metric, s: &Counters, all: &Counters) -> (f64, bool) {
    let binomial = |k: u64, n: u64, kk: u64, nn: u64| {
        if n == 0 || nn == 0 {
            return (0.0, false);
        }
        let p = kk as f64 / nn as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let expected = n as f64 * p;
        ((k as f64 - expected) / sd.max(1e-9), expected >= 20.0)
    };
    let per_spend = |k: f64, kk: f64| {
        if all.spend <= 0.0 || s.spend <= 0.0 {
            return (0.0, false);
        }
        let expected = s.spend * kk / all.spend;
        ((k - expected) / expected.sqrt().max(1e-9), expected >= 20.0)
    };
    let (z, enough) = match metric {
        Metric::Ctr => binomial(s.clicks, s.impressions, all.clicks, all.impressions),
        Metric::Cvr => binomial(s.conversions, s.clicks, all.conversions, all.clicks),
        Metric::Cpl => per_spend(s.leads as f64, all.leads as f64),
        Metric::Cpa | Metric::Roi => per_spend(s.conversions as f64, all.conversions as f64),
        Metric::Roas => {
            // Revenue in units of the average order value, so the Poisson scale applies.
            let aov = if all.conversions > 0 { all.revenue / all.conversions as f64 } else { 0.0 };
            if aov <= 0.0 { (0.0, false) } else { per_spend(s.revenue / aov, all.revenue / aov) }
        }
        Metric::Cpc => per_spend(s.clicks as f64, all.clicks as f64),
        Metric::Cpm => per_spend(s.impressions as f64 / 1000.0, all.impressions as f64 / 1000.0),
        _ => (0.0, false),
    };
    (if z.is_finite() { z } else { 0.0 }, enough)
}

/// Counters over intervals `(start, end]` summed into buckets of `bucket_ms` from `from`
/// (bucket start, counters), oldest first. An interval longer than a bucket (an hour recorded
/// at once, a gap in polling) is spread over the buckets it covers in proportion, so a chart
/// shows no spike where it is only coarser. Parts before `from` are dropped.
pub fn buckets(intervals: &[(i64, i64, Counters)], bucket_ms: i64, from: i64) -> Vec<(i64, Counters)> {
    let bucket_ms = bucket_ms.max(1);
    let mut out: Vec<(i64, Counters)> = Vec::new();
    let mut add = |b: i64, c: &Counters| match out.binary_search_by_key(&b, |(k, _)| *k) {
        Ok(i) => out[i].1.add(c),
        Err(i) => out.insert(i, (b, *c)),
    };
    for (start, end, c) in intervals {
        let (start, end) = (*start, *end);
        if end <= start || end - start <= bucket_ms {
            if end >= from {
                add(end.div_euclid(bucket_ms) * bucket_ms, c);
            }
            continue;
        }
        let len = (end - start) as f64;
        let mut b = start.div_euclid(bucket_ms) * bucket_ms;
        while b < end {
            let overlap = (end.min(b + bucket_ms) - start.max(b)).max(0);
            if overlap > 0 && b + bucket_ms > from {
                add(b, &c.scaled(overlap as f64 / len));
            }
            b += bucket_ms;
        }
    }
    out
}

/// Counters per local day since launch (index 0 is the launch day), from hourly rollups
/// `(hour start, counters)`.
pub fn by_launch_day(c: &Campaign, hours: &[(i64, Counters)], upto: i64) -> Vec<Counters> {
    let first = c.day_start_ms(c.start_ms());
    let last = c.day_start_ms(upto.min(c.end_ms()) - 1);
    let days = ((last - first).div_euclid(DAY_MS) + 1).max(0) as usize;
    let mut out = vec![Counters::default(); days];
    for (at, counters) in hours {
        let d = (c.day_start_ms(*at) - first).div_euclid(DAY_MS);
        if let Some(slot) = usize::try_from(d).ok().and_then(|d| out.get_mut(d)) {
            slot.add(counters);
        }
    }
    out
}

/// Running totals of a daily series.
pub fn cumulative(days: &[Counters]) -> Vec<Counters> {
    let mut acc = Counters::default();
    days.iter()
        .map(|d| {
            acc.add(d);
            acc
        })
        .collect()
}

/// The day-by-day average of several campaigns' daily series (as long as the longest; a day
/// averages the campaigns that reached it). Counts are rounded.
pub fn average_days(series: &[Vec<Counters>]) -> Vec<Counters> {
    let len = series.iter().map(Vec::len).max().unwrap_or(0);
    (0..len)
        .map(|d| {
            let have: Vec<&Counters> = series.iter().filter_map(|s| s.get(d)).collect();
            let n = have.len().max(1) as f64;
            let sum = Counters::sum(have.iter().copied());
            let avg = |x: u64| (x as f64 / n).round() as u64;
            Counters {
                impressions: avg(sum.impressions),
                clicks: avg(sum.clicks),
                leads: avg(sum.leads),
                conversions: avg(sum.conversions),
                spend: sum.spend / n,
                revenue: sum.revenue / n,
            }
        })
        .collect()
}

/// An earlier campaign's days for comparing with one `days` days in whose last day is
/// `part` over: that day counts in proportion, and the days after it are kept.
pub fn partial_last_day(other: &[Counters], days: usize, part: f64) -> Vec<Counters> {
    let mut out = other.to_vec();
    if let Some(d) = days.checked_sub(1).and_then(|i| out.get_mut(i))
        && part < 1.0
    {
        *d = d.scaled(part.clamp(0.0, 1.0));
    }
    out
}

/// The campaigns `c` can be compared with: those that started before it, sharing a tag
/// first, latest first.
pub fn earlier_campaigns<'a>(c: &Campaign, all: &[&'a Campaign]) -> Vec<&'a Campaign> {
    let mut out: Vec<&Campaign> = all.iter().copied().filter(|o| o.id != c.id && o.start_ms() < c.start_ms()).collect();
    let shares = |o: &Campaign| o.tags.iter().any(|t| c.tags.contains(t));
    out.sort_by_key(|o| (!shares(o), std::cmp::Reverse(o.start_ms())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(impr: u64, clicks: u64, leads: u64, conv: u64, spend: f64, revenue: f64) -> Counters {
        Counters { impressions: impr, clicks, leads, conversions: conv, spend, revenue }
    }

    fn campaign() -> Campaign {
        let mut cs = crate::demo::campaigns();
        cs.remove(cs.iter().position(|c| c.id == "618-promo").unwrap())
    }

    #[test]
    fn windows_and_their_previous() {
        let camp = campaign();
        let now = camp.start_ms() + 3 * DAY_MS + 10 * HOUR_MS;
        let (cur, prev) = WindowKind::LastHour.spans(&camp, now);
        assert_eq!((cur.len(), prev.unwrap().to), (HOUR_MS, cur.from));
        let (cur, prev) = WindowKind::Today.spans(&camp, now);
        assert_eq!(cur.from, camp.day_start_ms(now));
        assert_eq!(prev.unwrap(), Span { from: cur.from - DAY_MS, to: now - DAY_MS });
        // Seven days from day 3: clipped at launch, with nothing before to compare with.
        let (cur, prev) = WindowKind::Last7d.spans(&camp, now);
        assert_eq!(cur.from, camp.start_ms());
        assert!(prev.is_none());
        assert!(WindowKind::ToDate.spans(&camp, now).1.is_none());
        // After the end, windows end at the end.
        let (cur, _) = WindowKind::LastHour.spans(&camp, camp.end_ms() + DAY_MS);
        assert_eq!(cur.to, camp.end_ms());
    }

    #[test]
    fn custom_windows_are_read_in_the_campaigns_zone() {
        let camp = campaign();
        let now = camp.start_ms() + 10 * DAY_MS;
        let day = |d: i64| camp.start_ms() + d * DAY_MS;
        assert_eq!(parse_span("06-02..06-03", &camp, now), Ok(Span { from: day(1), to: day(3) }));
        assert_eq!(
            parse_span("2026-06-02 09:00..06-02 18:30", &camp, now),
            Ok(Span { from: day(1) + 9 * HOUR_MS, to: day(1) + 18 * HOUR_MS + 30 * 60_000 })
        );
        assert_eq!(parse_span("06-09..", &camp, now), Ok(Span { from: day(8), to: now }));
        assert_eq!(
            parse_span("06-02 09:00..18:00", &camp, now),
            Ok(Span { from: day(1) + 9 * HOUR_MS, to: day(1) + 18 * HOUR_MS })
        );
        assert!(parse_span("06-03..06-02", &camp, now).unwrap_err().contains("before the start"));
        assert!(parse_span("yesterday", &camp, now).unwrap_err().contains("FROM..TO"));
        assert!(parse_span("06-40..", &camp, now).unwrap_err().contains("not a date"));
    }

    #[test]
    fn cells_know_which_way_is_good() {
        let limits: Vec<KpiLimit> = vec!["cpa <= 90".parse().unwrap(), "ctr >= 0.02".parse().unwrap()];
        let cur = c(10_000, 150, 0, 20, 2_000.0, 0.0);
        let prev = c(10_000, 300, 0, 20, 1_600.0, 0.0);
        let cpa = cell(Metric::Cpa, &cur, Some(&prev), &limits);
        assert_eq!(cpa.value, Some(100.0));
        assert!((cpa.change.unwrap() - 0.25).abs() < 1e-9);
        assert_eq!((cpa.improved, cpa.meets), (Some(false), Some(false)), "a higher CPA is worse and over 90");
        let ctr = cell(Metric::Ctr, &cur, Some(&prev), &limits);
        assert_eq!((ctr.improved, ctr.meets), (Some(false), Some(false)), "a lower CTR is worse");
        let spend_down = cell(Metric::Cpa, &prev, Some(&cur), &limits);
        assert_eq!((spend_down.improved, spend_down.meets), (Some(true), Some(true)));
        let flat = cell(Metric::Ctr, &cur, Some(&cur), &limits);
        assert_eq!((flat.change, flat.improved), (Some(0.0), None));
        // 8 orders after 1: +700 %, but too few to call it better.
        let few = cell(Metric::Conversions, &c(1_000, 30, 0, 8, 50.0, 0.0), Some(&c(1_000, 30, 0, 1, 50.0, 0.0)), &[]);
        assert_eq!((few.change, few.improved), (Some(7.0), None));
        assert_eq!(cell(Metric::Cpa, &Counters::default(), None, &limits).value, None);
    }

    #[test]
    fn funnel_finds_the_weak_step() {
        let all = c(1_000_000, 20_000, 4_000, 1_000, 0.0, 0.0);
        // Clicks fine, leads per click half the campaign's.
        let ch = c(200_000, 4_000, 400, 100, 0.0, 0.0);
        let f = funnel(&ch, &all);
        let names: Vec<_> = f.iter().map(|s| s.name).collect();
        assert_eq!(names, ["impressions", "clicks", "leads", "conversions"]);
        assert!(f[2].weakest && !f[1].weakest && !f[3].weakest, "{f:?}");
        assert_eq!(f[2].rate, Some(0.1));
        // Too little volume: no verdict.
        let tiny = c(500, 10, 1, 0, 0.0, 0.0);
        assert!(funnel(&tiny, &all).iter().all(|s| !s.weakest));
        // No leads reported: conversions follow clicks.
        let shop = c(1_000, 50, 0, 5, 0.0, 0.0);
        assert_eq!(funnel(&shop, &all).len(), 3);
    }

    fn seg(dim: &str, v: &str, counters: Counters) -> SegmentCounters {
        SegmentCounters { dimension: dim.into(), value: v.into(), counters }
    }

    #[test]
    fn segment_outliers_need_volume_and_distance() {
        let rows = segments(
            &[
                seg("age", "18-24", c(100_000, 3_000, 0, 30, 3_000.0, 0.0)),
                seg("age", "25-34", c(100_000, 3_000, 0, 90, 3_000.0, 0.0)),
                seg("age", "35-44", c(100_000, 3_000, 0, 95, 3_000.0, 0.0)),
                seg("age", "25-34", c(10_000, 300, 0, 9, 300.0, 0.0)),
                seg("device", "mobile", c(1_000, 30, 0, 0, 30.0, 0.0)),
                seg("device", "desktop", c(1_000, 30, 0, 3, 30.0, 0.0)),
            ],
            Metric::Cpa,
        );
        assert_eq!(rows.len(), 5, "summed across channels");
        let first = &rows[0];
        assert_eq!((&*first.dimension, &*first.value), ("age", "18-24"));
        assert!(first.outlier && first.score < -3.0, "{first:?}");
        assert!(rows.iter().filter(|r| &*r.dimension == "age").skip(1).all(|r| !r.outlier));
        assert!(rows.iter().filter(|r| &*r.dimension == "device").all(|r| !r.outlier), "too few results to judge");
        let shares: f64 = rows.iter().filter(|r| &*r.dimension == "age").map(|r| r.spend_share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
    }

    #[test]
    fn coarse_intervals_are_spread_over_buckets() {
        let m = 60_000;
        let hour = c(600, 60, 0, 6, 60.0, 0.0);
        let minute = c(10, 1, 0, 0, 1.0, 0.0);
        // An hour recorded at once (ending at 60 min), then two one-minute samples.
        let rows = vec![(0, 60 * m, hour), (60 * m, 61 * m, minute), (61 * m, 62 * m, minute)];
        let b = buckets(&rows, 10 * m, 0);
        assert_eq!(b.len(), 7);
        assert!(b[..6].iter().all(|(_, x)| x.impressions == 100), "{b:?}");
        assert_eq!(b[6], (60 * m, c(20, 2, 0, 0, 2.0, 0.0)));
        let spent: f64 = b.iter().map(|(_, x)| x.spend).sum();
        assert!((spent - 62.0).abs() < 1e-9, "nothing lost");
        // Only what lies after `from` counts.
        assert_eq!(buckets(&rows, 10 * m, 30 * m).len(), 4);
    }

    #[test]
    fn launch_days_and_averages() {
        let camp = campaign();
        let h = |day: i64, hour: i64| camp.start_ms() + day * DAY_MS + hour * HOUR_MS;
        let hours = vec![
            (h(0, 1), c(10, 1, 0, 1, 5.0, 0.0)),
            (h(0, 20), c(10, 1, 0, 1, 5.0, 0.0)),
            (h(2, 3), c(7, 0, 0, 2, 1.0, 0.0)),
        ];
        let days = by_launch_day(&camp, &hours, h(2, 12));
        assert_eq!(days.len(), 3);
        assert_eq!(days.iter().map(|d| d.conversions).collect::<Vec<_>>(), [2, 0, 2]);
        assert_eq!(cumulative(&days).last().unwrap().conversions, 4);
        let avg = average_days(&[days.clone(), vec![c(0, 0, 0, 4, 0.0, 0.0)]]);
        assert_eq!(avg.iter().map(|d| d.conversions).collect::<Vec<_>>(), [3, 0, 2]);
    }

    #[test]
    fn earlier_campaigns_sharing_a_tag_come_first() {
        let mut all = crate::demo::campaigns();
        all.extend(crate::demo::past_campaigns());
        let this = all.iter().find(|c| c.id == "618-promo").unwrap().clone();
        let refs: Vec<&Campaign> = all.iter().collect();
        let earlier = earlier_campaigns(&this, &refs);
        assert_eq!(earlier.first().map(|c| c.id.as_str()), Some("618-promo-2025"));
        assert!(earlier.iter().all(|c| c.start_ms() < this.start_ms()));
    }

    proptest! {
        /// Segment scores are finite whatever the counters, and a segment equal to its
        /// dimension's average is never an outlier.
        #[test]
        fn segment_scores_are_finite(rows in proptest::collection::vec((0u64..1_000_000, 0u64..10_000, 0u64..1_000, 0u32..100_000), 1..6)) {
            let segs: Vec<SegmentCounters> = rows.iter().enumerate()
                .map(|(i, &(im, cl, cv, cents))| seg("d", &i.to_string(), c(im, cl.min(im), 0, cv.min(cl.min(im)), f64::from(cents) / 100.0, 0.0)))
                .collect();
            for m in [Metric::Ctr, Metric::Cvr, Metric::Cpa, Metric::Cpc, Metric::Cpm] {
                for r in segments(&segs, m) {
                    prop_assert!(r.score.is_finite());
                }
            }
            let same: Vec<SegmentCounters> = (0..3).map(|i| seg("d", &i.to_string(), c(50_000, 1_000, 0, 100, 1_000.0, 0.0))).collect();
            for m in [Metric::Ctr, Metric::Cvr, Metric::Cpa] {
                prop_assert!(segments(&same, m).iter().all(|r| !r.outlier));
            }
        }

        /// Period over period: the change is the relative difference, its sign and the
        /// metric's direction decide "improved".
        #[test]
        fn changes_are_relative(a in 10u64..10_000, b in 10u64..10_000) {
            let cur = c(100_000, a, 0, 0, 0.0, 0.0);
            let prev = c(100_000, b, 0, 0, 0.0, 0.0);
            let x = cell(Metric::Clicks, &cur, Some(&prev), &[]);
            let want = (a as f64 - b as f64) / b as f64;
            prop_assert!((x.change.unwrap() - want).abs() < 1e-9);
            if want.abs() >= 0.005 { prop_assert_eq!(x.improved, Some(a > b)); }
        }
    }
}
