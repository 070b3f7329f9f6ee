//! Anomaly rules: a channel against its own behaviour, with the one detector `cockpit replay
//! --csv` runs (`replay::SeriesDetector`), so that what a replay says of a series is what the
//! live rule says of the same hours.
//!
//! Each rule is one series of the channel's complete hours: CTR and CVR as successes out of
//! trials, clicks, conversions and leads as counts, CPC and CPM as prices (an hour with too
//! few clicks or impressions to price is left out). An hour without a reading is no point at
//! all, not a zero; an hour after the day's budget ran out is no point of the counts. Each
//! series' detector is fed every hour once, as it completes, and its verdict on the newest
//! hour stands until the next one.
//!
//! A deviation in the good direction (more conversions, leads or conversion rate) is at most
//! info: news, not an incident. Pure apart from the detectors' memory, kept with the history.

use super::detect::{median_mad, p_two_sided};
use super::replay::{Judgement, Point, ReplaySettings, SeriesDetector};
use super::state::{Severity, Verdict};
use crate::domain::format;
use crate::domain::time::{DAY_MS, HOUR_MS};
use crate::domain::{Counters, Metric};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
/// Hourly buckets kept per channel: a week of same-hour history and today.
pub const HISTORY_HOURS: usize = 8 * 24;

/// Knobs of the anomaly rules (from the campaign file, with defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalySettings {
    /// Score (1 − p) at or above which a point is anomalous.
    pub threshold: f64,
    /// Smallest relative change that counts.
    pub min_change: f64,
    /// Denominators needed in the current window: impressions for CTR, clicks for CVR.
    pub min_impressions: u64,
    pub min_clicks: u64,
    /// Expected count below which counts are not judged.
    pub min_results: u64,
}

impl Default for AnomalySettings {
    fn default() -> Self {
        AnomalySettings {
            threshold: 0.99999,
            min_change: 0.3,
            min_impressions: 1_000,
            min_clicks: 100,
            min_results: 10,
        }
    }
}

/// One channel's counters by hour of campaign time, oldest first.
#[derive(Debug, Clone, Default)]
pub struct HourlyHistory {
    hours: VecDeque<(i64, Counters)>,
    /// Baselines change only when an hour completes: computed once per hour, not per poll.
    cache: RefCell<Option<(CacheKey, Arc<Baselines>)>>,
    /// The series' detectors, each complete hour fed once.
    live: RefCell<Option<Live>>,
}

/// One channel's series detectors and how far they have been fed.
#[derive(Debug, Clone)]
struct Live {
    settings: ReplaySettings,
    offset_ms: i64,
    daily_budget: f64,
    detectors: Vec<SeriesDetector>,
    /// The start of the newest hour fed.
    fed: i64,
    /// Per series, the verdict on the newest hour fed (`None`: that hour was no point of it).
    last: Vec<Option<(Judgement, f64)>>,
}

impl HourlyHistory {
    /// Adds a sample (its delta over the interval ending at `at`).
    pub fn push(&mut self, at: i64, delta: &Counters) {
        let hour = (at - 1).div_euclid(HOUR_MS) * HOUR_MS;
        match self.hours.iter_mut().rev().find(|(h, _)| *h <= hour) {
            Some((h, c)) if *h == hour => c.add(delta),
            _ => {
                let pos = self.hours.partition_point(|(h, _)| *h < hour);
                self.hours.insert(pos, (hour, *delta));
            }
        }
        while self.hours.len() > HISTORY_HOURS {
            self.hours.pop_front();
        }
    }

    /// Replaces the history with stored hourly rollups (start of hour, counters).
    pub fn reset_from(&mut self, rollups: impl IntoIterator<Item = (i64, Counters)>) {
        self.hours.clear();
        *self.live.get_mut() = None;
        for (h, c) in rollups {
            self.push(h + 1, &c);
        }
    }

    pub fn len(&self) -> usize {
        self.hours.len()
    }

    /// Counters since `from` (whole hours that end after it) and the span they cover up to `now`.
    pub fn sum_since(&self, from: i64, now: i64) -> (Counters, i64) {
        let hours = self.hours.iter().filter(|(h, _)| h + HOUR_MS > from);
        let first = self.hours.iter().find(|(h, _)| h + HOUR_MS > from).map_or(now, |(h, _)| (*h).max(from));
        (Counters::sum(hours.map(|(_, c)| c)), (now - first).max(0))
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// The counters since `cut` of a channel whose samples begin after it: the whole hours of
    /// the history from the first at or after `cut` to the end of the hour in which the samples
    /// begin (they hold those samples' readings too), and the samples after that; with the
    /// time that starts. `None` without samples, or when the history lacks one of those hours.
    pub fn reaching_back(&self, recent: &crate::domain::Recent, cut: i64) -> Option<(i64, Counters)> {
        let first = recent.first()?.0;
        let (start, end) =
            ((cut + HOUR_MS - 1).div_euclid(HOUR_MS) * HOUR_MS, first.div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS);
        let (mut counters, mut hours) = (Counters::default(), 0);
        for (_, c) in self.hours.iter().filter(|(h, _)| (start..end).contains(h)) {
            counters.add(c);
            hours += 1;
        }
        if hours == 0 || hours != (end - start) / HOUR_MS {
            return None;
        }
        counters.add(&Counters::sum(recent.iter().filter(|(at, _)| *at > end).map(|(_, c)| c)));
        Some((start, counters))
    }

    /// Hours that ended at or before `t`, newest first.
    fn complete_before(&self, t: i64) -> impl Iterator<Item = &(i64, Counters)> {
        self.hours.iter().rev().filter(move |(h, _)| h + HOUR_MS <= t)
    }
}

/// What the rules see of a channel now.
pub struct Input<'a> {
    /// Per-interval samples (end time, delta), oldest first.
    pub recent: &'a crate::domain::Recent,
    pub now_ms: i64,
    /// The shortest window judged; longer ones (×2, ×4, ×8, ×16) are tried for low volumes.
    pub window_ms: i64,
    /// The campaign's UTC offset in ms (hour of day is local).
    pub offset_ms: i64,
    /// Counts are not judged when the channel is paused or has spent its daily budget: the
    /// drop is explained.
    pub counts_explained: bool,
    /// The channel's daily budget (0 = none): hours after it was spent are no baseline.
    pub daily_budget: f64,
    pub history: &'a HourlyHistory,
}

/// One window of samples: their sum and the span they actually cover (from the reading
/// before the first to the last), so a gap in polling is not mistaken for a drop.
pub struct Window<'a> {
    pub counters: Counters,
    pub from_ms: i64,
    pub to_ms: i64,
    pub offset_ms: i64,
    pub counts_explained: bool,
    pub(super) base: &'a Baselines,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct CacheKey {
    newest_complete: i64,
    offset_ms: i64,
    daily_budget: f64,
    settings: AnomalySettings,
}

/// What every window of a channel is judged against, from its complete hours.
#[derive(Debug)]
pub(super) struct Baselines {
    /// CTR, CVR: the median hour's rate over two days, and the volume behind it.
    pub(super) rate: [Option<(f64, f64)>; 2],
    /// Clicks, conversions, leads by local hour of day: (median per ms, spread beyond Poisson
    /// as a coefficient of variation, days behind it), from earlier days only.
    pub(super) seasonal: [[Option<(f64, f64, usize)>; 24]; 3],
    /// Per series (`SERIES`), its detector's verdict on the newest complete hour.
    series: Vec<Option<Verdict>>,
}

const RATES: [Metric; 2] = [Metric::Ctr, Metric::Cvr];
const COUNTS: [Metric; 3] = [Metric::Clicks, Metric::Conversions, Metric::Leads];
/// The live anomaly rules, one series each.
pub const SERIES: [(&str, Metric); 7] = [
    ("anomaly: ctr", Metric::Ctr),
    ("anomaly: cvr", Metric::Cvr),
    ("anomaly: clicks", Metric::Clicks),
    ("anomaly: conversions", Metric::Conversions),
    ("anomaly: leads", Metric::Leads),
    ("anomaly: cpc", Metric::Cpc),
    ("anomaly: cpm", Metric::Cpm),
];

fn hour_of_day(h: i64, offset_ms: i64) -> usize {
    ((h + offset_ms).rem_euclid(DAY_MS) / HOUR_MS) as usize
}

impl HourlyHistory {
    /// The baselines as of the newest hour complete at `now`, computed when that hour changes.
    fn baselines(&self, input: &Input<'_>, s: &AnomalySettings) -> Arc<Baselines> {
        let newest_complete = self.complete_before(input.now_ms).next().map_or(i64::MIN, |(h, _)| *h);
        let key =
            CacheKey { newest_complete, offset_ms: input.offset_ms, daily_budget: input.daily_budget, settings: *s };
        if let Some((k, b)) = self.cache.borrow().as_ref()
            && *k == key
        {
            return b.clone();
        }
        let b = Arc::new(self.compute(input, s));
        *self.cache.borrow_mut() = Some((key, b.clone()));
        b
    }

    fn compute(&self, input: &Input<'_>, s: &AnomalySettings) -> Baselines {
        let now = input.now_ms;
        let complete: Vec<&(i64, Counters)> = self.complete_before(now).collect();
        let two_days: Vec<&(i64, Counters)> =
            complete.iter().copied().take_while(|(h, _)| *h >= now - 2 * DAY_MS).collect();

        let rate = RATES.map(|m| {
            let min = if m == Metric::Ctr { s.min_impressions } else { s.min_clicks } as f64;
            let hours: Vec<(f64, f64)> = two_days.iter().map(|(_, c)| parts(m, c)).collect();
            let (bx, bn) = hours.iter().fold((0.0, 0.0), |(a, b), (x, n)| (a + x, b + n));
            if bn < 4.0 * min || bx < 20.0 {
                return None;
            }
            // The median hour's rate, so that an incident in the baseline does not drag it
            // along (and make the recovery look like a spike); half a day of usable hours at
            // least: a baseline made mostly of an incident is none.
            let pooled = bx / bn;
            let rates: Vec<f64> = hours.iter().filter(|(_, n)| n * pooled >= 20.0).map(|(x, n)| x / n).collect();
            if rates.len() < 12 {
                return None;
            }
            median_mad(&rates).map(|(p0, _)| (p0, bn))
        });

        // Hours after the day's budget ran out say nothing about demand.
        let mut capped = Vec::new();
        if input.daily_budget > 0.0 {
            let (mut day, mut spent) = (i64::MIN, 0.0);
            for (h, c) in &self.hours {
                let d = (h + input.offset_ms).div_euclid(DAY_MS);
                if d != day {
                    (day, spent) = (d, 0.0);
                }
                spent += c.spend;
                if spent >= 0.95 * input.daily_budget {
                    capped.push(*h);
                }
            }
        }
        let today = (now + input.offset_ms).div_euclid(DAY_MS);
        let seasonal = COUNTS.map(|m| {
            let mut by_hour: [Vec<f64>; 24] = Default::default();
            for (h, c) in &complete {
                let earlier_day = (h + input.offset_ms).div_euclid(DAY_MS) < today;
                let slot = &mut by_hour[hour_of_day(*h, input.offset_ms)];
                if earlier_day && slot.len() < 7 && capped.binary_search(h).is_err() {
                    slot.push(m.value(c).unwrap_or(0.0));
                }
            }
            by_hour.map(|days| {
                if days.len() < 3 {
                    return None;
                }
                let (med, mad) = median_mad(&days)?;
                let cv_seen = if med > 0.0 { 1.4826 * mad / med } else { 0.0 };
                // Negative-binomial style: what varies beyond Poisson noise from day to day.
                let cv = (cv_seen * cv_seen - 1.0 / med.max(1.0)).max(0.0).sqrt().clamp(0.05, 1.0);
                Some((med / HOUR_MS as f64, cv, days.len()))
            })
        });

        let series = self.feed(input, s, &capped);
        Baselines { rate, seasonal, series }
    }

    /// Feeds every hour complete at `now` and not fed yet to the series' detectors (new ones,
    /// from the oldest hour kept, when the settings, the offset or the budget changed), and
    /// makes the verdicts on the newest.
    fn feed(&self, input: &Input<'_>, s: &AnomalySettings, capped: &[i64]) -> Vec<Option<Verdict>> {
        let settings = s.series();
        let mut live = self.live.borrow_mut();
        let stale = live.as_ref().is_none_or(|l| {
            l.settings != settings || l.offset_ms != input.offset_ms || l.daily_budget != input.daily_budget
        });
        if stale {
            *live = Some(Live {
                settings,
                offset_ms: input.offset_ms,
                daily_budget: input.daily_budget,
                detectors: SERIES.iter().map(|_| SeriesDetector::new(settings)).collect(),
                fed: i64::MIN,
                last: vec![None; SERIES.len()],
            });
        }
        let live = live.as_mut().expect("set above");
        let fed = live.fed;
        for (h, c) in self.hours.iter().filter(|(h, _)| *h > fed && h + HOUR_MS <= input.now_ms) {
            live.fed = *h;
            let capped = capped.binary_search(h).is_ok();
            for (k, (_, m)) in SERIES.iter().enumerate() {
                live.last[k] = point_of(*m, c, s, capped).and_then(|(p, volume)| {
                    live.detectors[k].push(*h, p);
                    live.detectors[k].last().map(|j| (j, volume))
                });
            }
        }
        SERIES
            .iter()
            .zip(&live.last)
            .map(|((_, m), last)| last.and_then(|(j, volume)| verdict_of(*m, &j, volume, s, input.offset_ms)))
            .collect()
    }

    /// The verdict of a series' detector on the newest complete hour, as (score, alert): what
    /// `replay --csv` prints for the same hours.
    pub fn judged(&self, m: Metric) -> Option<(f64, bool)> {
        let k = SERIES.iter().position(|(_, s)| *s == m)?;
        let live = self.live.borrow();
        live.as_ref()?.last[k].map(|(j, _)| (j.shown, j.alert))
    }
}

impl Input<'_> {
    /// The baselines the windows are judged against (computed once an hour).
    pub(super) fn baselines(&self, s: &AnomalySettings) -> Arc<Baselines> {
        self.history.baselines(self, s)
    }

    /// The windows judged: the shortest, then twice as long, up to sixteen times.
    pub(super) fn windows<'b>(&self, base: &'b Baselines) -> Vec<Window<'b>> {
        (0..5).filter_map(|k| self.window(self.window_ms << k, base)).collect()
    }

    /// The samples of the last `span` ms. Where they do not reach back that far, the whole
    /// hours of the history stand in for the older part (see `HourlyHistory::reaching_back`);
    /// `None` when the history lacks an hour of it.
    fn window<'b>(&self, span: i64, base: &'b Baselines) -> Option<Window<'b>> {
        // The last sample at or before the cut starts the window; those after it make it up.
        let cut = self.now_ms - span;
        let (mut from_ms, mut to_ms, mut counters) = (None, None, Counters::default());
        for (at, c) in self.recent.iter() {
            if *at <= cut {
                from_ms = Some(*at);
            } else {
                counters.add(c);
                to_ms = Some(*at);
            }
        }
        let to_ms = to_ms?;
        let (from_ms, counters) = match from_ms {
            Some(from) => (from, counters),
            None => self.history.reaching_back(self.recent, cut)?,
        };
        Some(Window {
            counters,
            from_ms,
            to_ms,
            offset_ms: self.offset_ms,
            counts_explained: self.counts_explained,
            base,
        })
    }
}

/// All anomaly verdicts for one channel: (rule name, verdict). A rule with too little volume
/// or history gives `None` (its alert stays as it is); so do the counts of a channel paused or
/// out of budget (the drop is explained).
pub fn evaluate(input: &Input<'_>, s: &AnomalySettings) -> Vec<(&'static str, Option<Verdict>)> {
    let base = input.history.baselines(input, s);
    SERIES
        .iter()
        .zip(&base.series)
        .map(|((name, m), v)| {
            let explained = input.counts_explained && COUNTS.contains(m);
            (*name, if explained { None } else { v.clone() })
        })
        .collect()
}

impl AnomalySettings {
    /// The detector's settings, the replay's defaults: the threshold as a score (−log₁₀ of
    /// the tail probability); 72 points, three days of hours, before a verdict.
    pub fn series(&self) -> ReplaySettings {
        let threshold = if self.threshold < 1.0 { -(1.0 - self.threshold).max(1e-300).log10() } else { self.threshold };
        ReplaySettings { threshold, min_change: self.min_change, ..ReplaySettings::default() }
    }
}

/// An hour of a series, and the volume behind it (trials, or the count itself); `None` when
/// the hour says nothing of it: no trials, too few clicks or impressions to price, or counts
/// after the day's budget ran out.
fn point_of(m: Metric, c: &Counters, s: &AnomalySettings, capped: bool) -> Option<(Point, f64)> {
    let (x, n) = parts(m, c);
    match m {
        Metric::Ctr | Metric::Cvr => (n > 0.0).then_some((Point::Rate { num: x, den: n }, n)),
        Metric::Cpc | Metric::Cpm => (n >= min_den(m, s)).then_some((Point::Price { amount: x, units: n }, n)),
        _ => (!capped).then_some((Point::Value(x), x)),
    }
}

/// A series' judgement as a verdict, or `None` with too little volume to say.
fn verdict_of(m: Metric, j: &Judgement, volume: f64, s: &AnomalySettings, offset_ms: i64) -> Option<Verdict> {
    let enough = match m {
        Metric::Ctr => volume >= s.min_impressions as f64,
        Metric::Cvr => volume >= s.min_clicks as f64,
        Metric::Clicks | Metric::Conversions | Metric::Leads => j.expected >= s.min_results as f64,
        _ => true,
    };
    if !enough {
        return None;
    }
    let local = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms + offset_ms)
            .map_or_else(String::new, |t| t.format("%H:%M").to_string())
    };
    let end = j.at_ms + HOUR_MS;
    let over = if j.span_ms <= HOUR_MS {
        format!("in the hour to {}", local(end))
    } else {
        format!("over the {} to {}", format::span(j.span_ms), local(end))
    };
    let rarity = if j.score >= 9.0 {
        "rarer than 1 in a billion hours".to_string()
    } else {
        format!("about 1 in {} hours", format::count(10f64.powf(j.score).round() as i64))
    };
    let since = j.since_ms.filter(|t| *t < j.at_ms).map(|t| format!(", since {}", local(t))).unwrap_or_default();
    let counted = COUNTS.contains(&m);
    let shown = |v: f64| if counted { format::count(v.round() as i64) } else { m.format(Some(v)) };
    let summary = format!(
        "{} {} {}: {} {over} vs usual {} ± {} ({rarity}){since}",
        m.label(),
        direction(j.rel),
        format::percent(j.rel.abs()),
        shown(j.value),
        shown(j.expected),
        shown(j.band),
    );
    Some(Verdict {
        active: j.alert,
        severity: severity_for(m, j.rel),
        observed: Some(j.value),
        expected: Some((j.expected, j.band)),
        summary,
    })
}

/// Crit from a change of half, warn below; info when the change is good news: more results
/// (conversions, leads) or a higher conversion rate. Clicks and prices are not results.
pub fn severity_for(m: Metric, rel: f64) -> Severity {
    let good = match m {
        Metric::Conversions | Metric::Leads | Metric::Cvr | Metric::Revenue | Metric::Roas => rel > 0.0,
        Metric::Cpa | Metric::Cpl => rel < 0.0,
        _ => false,
    };
    if good {
        Severity::Info
    } else if rel.abs() >= 0.5 {
        Severity::Crit
    } else {
        Severity::Warn
    }
}

fn direction(rel: f64) -> &'static str {
    if rel < 0.0 { "down" } else { "up" }
}

/// The (numerator, denominator) of a rate metric.
fn parts(m: Metric, c: &Counters) -> (f64, f64) {
    match m {
        Metric::Ctr => (c.clicks as f64, c.impressions as f64),
        Metric::Cvr => (c.conversions as f64, c.clicks as f64),
        Metric::Cpc => (c.spend, c.clicks as f64),
        Metric::Cpm => (c.spend * 1000.0, c.impressions as f64),
        _ => (m.value(c).unwrap_or(0.0), 1.0),
    }
}

/// Binomial test of a rate against a baseline rate, both with their volumes: the z-score and
/// the score 1 − p. The baseline's own sampling error widens the band.
pub fn rate_test(x: f64, n: f64, base_x: f64, base_n: f64) -> Option<(f64, f64, f64)> {
    if n <= 0.0 || base_n <= 0.0 {
        return None;
    }
    let p0 = base_x / base_n;
    let var = p0 * (1.0 - p0) * (1.0 / n + 1.0 / base_n);
    if var <= 0.0 {
        return None;
    }
    let sd = var.sqrt();
    let z = (x / n - p0) / sd;
    Some((z, 1.0 - p_two_sided(z), sd))
}

/// The expected count over the window (each hour it overlaps at that hour's usual rate), the
/// day-to-day spread as a coefficient of variation, and the fewest days behind any hour.
/// `None` without three earlier days for every hour.
pub(super) fn seasonal_expectation(w: &Window<'_>, i: usize) -> Option<(f64, f64, usize)> {
    let (mut mu, mut extra_var, mut days) = (0.0, 0.0, usize::MAX);
    let mut hour = w.from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    while hour < w.to_ms {
        let overlap = (w.to_ms.min(hour + HOUR_MS) - w.from_ms.max(hour)) as f64;
        let (per_ms, cv, n) = w.base.seasonal[i][hour_of_day(hour, w.offset_ms)]?;
        days = days.min(n);
        mu += per_ms * overlap;
        extra_var += (cv * per_ms * overlap).powi(2);
        hour += HOUR_MS;
    }
    (mu > 0.0).then(|| (mu, extra_var.sqrt() / mu, days))
}

/// The spread of a count expected to be `mu`: Poisson noise, the day-to-day spread (`cv`) on
/// top, and the baseline's own error (a median of `days` days).
pub(super) fn count_sd(mu: f64, cv: f64, days: usize) -> f64 {
    ((mu + (cv * mu).powi(2)) * (1.0 + std::f64::consts::FRAC_PI_2 / days as f64)).sqrt()
}

/// The volume an hour needs to be priced: a price over a few clicks is mostly chance.
fn min_den(m: Metric, s: &AnomalySettings) -> f64 {
    if m == Metric::Cpm { s.min_impressions as f64 / 2.0 } else { s.min_clicks as f64 / 5.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::MINUTE_MS;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Binomial, Distribution, Poisson};

    /// An hour of traffic: `weight` × 10,000 impressions at CTR `ctr`, CVR 3 %, CPM 40 × `price`.
    fn hour(rng: &mut StdRng, weight: f64, ctr: f64, price: f64) -> Counters {
        let impressions = Poisson::new(10_000.0 * weight).unwrap().sample(rng) as u64;
        let clicks = Binomial::new(impressions, ctr).unwrap().sample(rng);
        let conversions = Binomial::new(clicks, 0.03).unwrap().sample(rng);
        Counters { impressions, clicks, conversions, spend: impressions as f64 * 0.04 * price, ..Counters::default() }
    }

    /// Night hours are quiet, evenings busy.
    fn weight(h: i64) -> f64 {
        [
            0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.0, 1.2, 1.2, 1.1, 1.1, 1.2, 1.1, 1.0, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8,
            1.7, 1.2, 0.6,
        ][(h.rem_euclid(DAY_MS) / HOUR_MS) as usize]
    }

    /// Days of normal history, then the window's hour built by `now_hour`.
    fn history(seed: u64, days: i64) -> (HourlyHistory, StdRng) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut hist = HourlyHistory::default();
        for h in 0..days * 24 {
            let t = h * HOUR_MS;
            hist.push(t + HOUR_MS, &hour(&mut rng, weight(t), 0.015, 1.0));
        }
        (hist, rng)
    }

    /// The hour from `at` added to the history, and the rules' verdicts at its end.
    fn judge_with(
        hist: &mut HourlyHistory,
        counters: Counters,
        at: i64,
        s: &AnomalySettings,
    ) -> Vec<(&'static str, Verdict)> {
        hist.push(at + HOUR_MS, &counters);
        let recent = crate::domain::Recent::from_entries([(at, Counters::default()), (at + HOUR_MS, counters)], 10);
        let input = Input {
            recent: &recent,
            now_ms: at + HOUR_MS,
            window_ms: HOUR_MS,
            offset_ms: 0,
            counts_explained: false,
            daily_budget: 0.0,
            history: hist,
        };
        evaluate(&input, s).into_iter().filter_map(|(n, v)| v.map(|v| (n, v))).collect()
    }

    fn judge(hist: &HourlyHistory, counters: Counters, at: i64) -> Vec<(&'static str, bool)> {
        let mut hist = hist.clone();
        judge_with(&mut hist, counters, at, &AnomalySettings::default())
            .into_iter()
            .map(|(n, v)| (n, v.active))
            .collect()
    }

    fn fired(v: &[(&'static str, bool)]) -> Vec<&'static str> {
        v.iter().filter(|(_, a)| *a).map(|(n, _)| *n).collect()
    }

    #[test]
    fn normal_hours_across_the_day_raise_nothing() {
        let (mut hist, mut rng) = history(7, 7);
        for h in 0..48 {
            let at = 7 * DAY_MS + h * HOUR_MS;
            let v = judge_with(&mut hist, hour(&mut rng, weight(at), 0.015, 1.0), at, &AnomalySettings::default());
            assert!(v.iter().all(|(_, v)| !v.active), "hour {h}: {v:?}");
        }
    }

    #[test]
    fn a_ctr_collapse_is_caught_with_its_volume() {
        let (hist, mut rng) = history(8, 3);
        let at = 3 * DAY_MS + 20 * HOUR_MS;
        let v = judge(&hist, hour(&mut rng, weight(at), 0.006, 1.0), at);
        assert!(fired(&v).contains(&"anomaly: ctr"), "{v:?}");
    }

    #[test]
    fn a_traffic_drop_is_judged_against_the_same_hour_not_the_last_one() {
        let (hist, mut rng) = history(9, 7);
        // 3 a.m. is quiet every day: not a drop.
        let night = 7 * DAY_MS + 3 * HOUR_MS;
        let (mut quiet, mut r) = (hist.clone(), rng.clone());
        for h in 0..=3 {
            let at = 7 * DAY_MS + h * HOUR_MS;
            let v = judge_with(&mut quiet, hour(&mut r, weight(at), 0.015, 1.0), at, &AnomalySettings::default());
            assert!(v.iter().all(|(_, v)| !v.active), "{v:?}");
        }
        let _ = night;
        // 8 p.m. at a third of its usual traffic is a drop; at 2.5 times, a spike.
        let mut evening = hist.clone();
        for h in 0..20 {
            let at = 7 * DAY_MS + h * HOUR_MS;
            evening.push(at + HOUR_MS, &hour(&mut rng, weight(at), 0.015, 1.0));
        }
        let at = 7 * DAY_MS + 20 * HOUR_MS;
        let v = judge(&evening, hour(&mut rng, weight(at) / 3.0, 0.015, 1.0), at);
        assert!(fired(&v).contains(&"anomaly: clicks"), "{v:?}");
        let v = judge(&evening, hour(&mut rng, weight(at) * 2.5, 0.015, 1.0), at);
        assert!(fired(&v).contains(&"anomaly: clicks"), "{v:?}");
    }

    #[test]
    fn too_little_history_or_volume_gives_no_verdict() {
        let (hist, mut rng) = history(10, 1);
        let mut short = HourlyHistory::default();
        for (h, c) in hist.hours.iter().take(20) {
            short.push(h + HOUR_MS, c);
        }
        let at = 20 * HOUR_MS;
        let v = judge(&short, hour(&mut rng, weight(at) / 3.0, 0.015, 1.0), at);
        assert!(v.is_empty(), "twenty hours are no baseline: {v:?}");
        let (hist, _) = history(10, 3);
        let tiny = Counters { impressions: 300, clicks: 1, ..Counters::default() };
        assert!(judge(&hist, tiny, 3 * DAY_MS).iter().all(|(n, _)| !n.contains("ctr")));
    }

    #[test]
    fn a_price_jump_and_a_steady_climb_are_caught() {
        let (hist, mut rng) = history(11, 3);
        let at = 3 * DAY_MS + 14 * HOUR_MS;
        let mut jumped = hist.clone();
        for h in 0..14 {
            let t = 3 * DAY_MS + h * HOUR_MS;
            jumped.push(t + HOUR_MS, &hour(&mut rng, weight(t), 0.015, 1.0));
        }
        let v = judge(&jumped, hour(&mut rng, weight(at), 0.015, 1.8), at);
        assert!(fired(&v).contains(&"anomaly: cpc"), "{v:?}");
        assert!(fired(&v).contains(&"anomaly: cpm"), "{v:?}");

        // +4 % an hour: no hour jumps, the four-hour mean does.
        let (mut hist, mut rng) = history(12, 3);
        let mut first = None;
        for h in 0..24 {
            let t = 3 * DAY_MS + h * HOUR_MS;
            let v = judge_with(
                &mut hist,
                hour(&mut rng, weight(t), 0.015, 1.0 + 0.04 * h as f64),
                t,
                &AnomalySettings::default(),
            );
            if first.is_none() && v.iter().any(|(n, v)| *n == "anomaly: cpc" && v.active) {
                first = Some(h);
            }
        }
        assert!(first.is_some_and(|h| h >= 8), "a steady climb caught at hour {first:?}");
    }

    #[test]
    fn an_hour_without_a_reading_is_no_zero_and_good_news_does_not_page() {
        let (mut hist, mut rng) = history(13, 7);
        // Two hours without a reading, then the usual.
        let at = 7 * DAY_MS + 14 * HOUR_MS;
        let v = judge_with(&mut hist, hour(&mut rng, weight(at), 0.015, 1.0), at, &AnomalySettings::default());
        assert!(v.iter().all(|(_, v)| !v.active), "{v:?}");
        // Conversions triple: news, not an incident.
        let mut rng = StdRng::seed_from_u64(14);
        let mut hist = HourlyHistory::default();
        for h in 0..7 * 24 + 12 {
            let t = h * HOUR_MS;
            hist.push(t + HOUR_MS, &hour(&mut rng, 5.0 * weight(t), 0.015, 1.0));
        }
        let at = 7 * DAY_MS + 12 * HOUR_MS;
        let mut surge = hour(&mut rng, 5.0 * weight(at), 0.015, 1.0);
        surge.conversions *= 3;
        let v = judge_with(&mut hist, surge, at, &AnomalySettings::default());
        let conv = v.iter().find(|(n, _)| *n == "anomaly: conversions").map(|(_, v)| v.clone()).expect("judged");
        assert!(conv.active && conv.severity == Severity::Info, "{conv:?}");
        assert!(conv.summary.starts_with("Conv up "), "{}", conv.summary);
        assert!(
            conv.summary.contains("in the hour to 13:00 vs usual") && conv.summary.contains("(about 1 in ")
                || conv.summary.contains("(rarer than"),
            "{}",
            conv.summary
        );
        assert_eq!(severity_for(Metric::Conversions, -0.6), Severity::Crit);
        assert_eq!(severity_for(Metric::Cpc, -0.6), Severity::Crit);
        assert_eq!(severity_for(Metric::Cpc, 0.35), Severity::Warn);
    }

    proptest::proptest! {
        /// Pure Poisson traffic with a daily cycle, any level: nothing is anomalous.
        #[test]
        fn poisson_noise_at_any_level_raises_nothing(seed in 0u64..10_000, level in 0.05f64..5.0, at_hour in 0i64..24) {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut hist = HourlyHistory::default();
            for h in 0..7 * 24 + at_hour {
                let t = h * HOUR_MS;
                hist.push(t + HOUR_MS, &hour(&mut rng, weight(t) * level, 0.015, 1.0));
            }
            let at = 7 * DAY_MS + at_hour * HOUR_MS;
            let v = judge(&hist, hour(&mut rng, weight(at) * level, 0.015, 1.0), at);
            proptest::prop_assert!(fired(&v).is_empty(), "{:?}", v);
        }
    }

    #[test]
    fn a_window_longer_than_the_samples_takes_whole_hours_of_the_history() {
        let (mut hist, mut rng) = history(3, 8);
        let now = 8 * DAY_MS + 3 * HOUR_MS;
        // The last 90 minutes in minute samples, also in the history as the engine keeps it.
        let minutes: Vec<(i64, Counters)> =
            (1..=90).map(|m| (now - 90 * MINUTE_MS + m * MINUTE_MS, hour(&mut rng, 1.0 / 60.0, 0.015, 1.0))).collect();
        for h in 8 * 24..8 * 24 + 2 {
            hist.push(h * HOUR_MS + HOUR_MS, &hour(&mut rng, weight(h * HOUR_MS), 0.015, 1.0));
        }
        let mut with_recent = HourlyHistory { hours: hist.hours.clone(), ..Default::default() };
        for (at, c) in &minutes {
            with_recent.push(*at, c);
        }
        let recent = crate::domain::Recent::from_entries(minutes.iter().copied(), 120);
        let input = Input {
            recent: &recent,
            now_ms: now,
            window_ms: 30 * MINUTE_MS,
            offset_ms: 0,
            counts_explained: false,
            daily_budget: 0.0,
            history: &with_recent,
        };
        let base = with_recent.baselines(&input, &AnomalySettings::default());
        // 30 minutes and 1 hour: the samples alone.
        let w = input.window(HOUR_MS, &base).unwrap();
        assert_eq!(w.counters, Counters::sum(minutes[30..].iter().map(|(_, c)| c)));
        // 4 hours from 03:00: the samples begin at 01:30; the hours from 23:00 to 02:00, then
        // the samples after 02:00.
        let w = input.window(4 * HOUR_MS, &base).unwrap();
        assert_eq!((w.from_ms, w.to_ms), (8 * DAY_MS - HOUR_MS, now));
        let hours = 8 * DAY_MS - HOUR_MS..8 * DAY_MS + 2 * HOUR_MS;
        let mut want = Counters::sum(with_recent.hours.iter().filter(|(h, _)| hours.contains(h)).map(|(_, c)| c));
        want.add(&Counters::sum(minutes.iter().filter(|(at, _)| *at > 8 * DAY_MS + 2 * HOUR_MS).map(|(_, c)| c)));
        assert_eq!(w.counters, want);
        let since = Counters::sum(with_recent.hours.iter().filter(|(h, _)| *h >= 8 * DAY_MS - HOUR_MS).map(|(_, c)| c));
        assert_eq!(w.counters.impressions, since.impressions, "every reading once");
        // An hour missing from the history: no such window.
        let mut gap = HourlyHistory { hours: with_recent.hours.clone(), ..Default::default() };
        gap.hours.retain(|(h, _)| *h != 8 * DAY_MS + HOUR_MS);
        let input = Input { history: &gap, ..input };
        assert!(input.window(4 * HOUR_MS, &base).is_none());
    }

    #[test]
    fn history_keeps_a_week_and_a_day_in_order() {
        let mut hist = HourlyHistory::default();
        for h in (0..300).rev() {
            hist.push(h * HOUR_MS + 1, &Counters { clicks: 1, ..Counters::default() });
        }
        assert_eq!(hist.len(), HISTORY_HOURS);
        let hours: Vec<i64> = hist.hours.iter().map(|(h, _)| *h).collect();
        assert!(hours.windows(2).all(|p| p[0] < p[1]));
    }
}
