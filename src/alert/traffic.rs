//! Invalid traffic (流量造假): what real audiences do not do, judged against the channel's own
//! baselines (those of `anomaly`: clicks by hour of day, CTR and CVR over the last two days):
//!
//! - **clicks that do not convert**: clicks at least twice what this hour usually brings while
//!   the conversion rate falls by half or more — the clicks came, the buyers did not;
//! - **a burst in a quiet hour**: three times the usual clicks or more in an hour the channel is
//!   normally quiet in (a quarter of its typical hour or less), as click farms and bots work
//!   while the audience sleeps;
//! - **a CTR no real audience gives**: three times the channel's own CTR or more.
//!
//! Each finding needs the anomaly rule's significance (a score 1 − p at or above the threshold)
//! on the same windows (30 minutes, doubled up to 8 hours until there is volume). One alert per
//! channel, `traffic`: a warning for one pattern, critical for two at once (a surge of clicks that
//! do not convert usually shows a CTR out of line too); `[alerts.traffic] severity` sets its own,
//! and a `[[contingency]]` with `rule = "traffic"` is its plan (pause the placement, ask the
//! platform for an invalid-traffic review and a refund). Pure.

use super::anomaly::{self, AnomalySettings, Window};
use super::detect::p_two_sided;
use super::state::{Severity, Verdict};
use crate::domain::Metric;
use crate::domain::format::{count, percent, span};
use crate::domain::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// The rule's name, as alerts and contingency plans know it.
pub const RULE: &str = "traffic";

/// Clicks this many times the hour's usual count make a surge.
const SURGE: f64 = 2.0;
/// A conversion rate this much below its usual (a fraction) is a collapse.
const COLLAPSE: f64 = 0.5;
/// Conversions the usual rate would have given the window's clicks, for a collapse to be seen.
const MIN_EXPECTED_CONVERSIONS: f64 = 10.0;
/// Clicks this many times the hour's usual count in a quiet hour make a burst.
const BURST: f64 = 3.0;
/// An hour is quiet when it usually brings at most this share of the channel's typical hour.
const QUIET: f64 = 0.25;
/// A CTR this many times the channel's own is out of line.
const CTR_FAR: f64 = 3.0;

/// What one pattern found on its best window.
struct Finding {
    score: f64,
    active: bool,
    text: String,
}

/// The channel's verdict on invalid traffic; `None` without baselines to judge against (less
/// than half a day of rates and three days of clicks at this hour).
pub fn evaluate(input: &anomaly::Input<'_>, s: &AnomalySettings) -> Option<Verdict> {
    let base = input.baselines(s);
    let windows = input.windows(&base);
    let best = |judge: &dyn Fn(&Window<'_>) -> Option<Finding>| {
        windows.iter().filter_map(judge).max_by(|a, b| a.active.cmp(&b.active).then(a.score.total_cmp(&b.score)))
    };
    let findings: Vec<Finding> =
        [best(&|w| no_conversions(w, s)), best(&|w| quiet_hour_burst(w, s)), best(&|w| ctr_out_of_line(w, s))]
            .into_iter()
            .flatten()
            .collect();
    if findings.is_empty() {
        return None;
    }
    let active: Vec<&Finding> = findings.iter().filter(|f| f.active).collect();
    let clicks = windows.first().map_or(0.0, |w| w.counters.clicks as f64);
    // Firing, what was found; clear, what each pattern saw.
    let (head, said): (&str, Vec<&Finding>) = match active.is_empty() {
        true => ("no invalid-traffic pattern", findings.iter().collect()),
        false => ("suspicious traffic", active.clone()),
    };
    let summary = format!("{head}: {}", said.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join("; "));
    Some(Verdict {
        active: !active.is_empty(),
        severity: if active.len() >= 2 { Severity::Crit } else { Severity::Warn },
        observed: Some(clicks),
        expected: None,
        summary,
    })
}

/// The window's clicks against what the hours it covers usually bring: (clicks, expected,
/// score 1 − p of a rise).
fn clicks_vs_usual(w: &Window<'_>) -> Option<(f64, f64, f64)> {
    let (mu, cv, days) = anomaly::seasonal_expectation(w, 0)?;
    let sd = anomaly::count_sd(mu.max(1.0), cv, days);
    let x = w.counters.clicks as f64;
    let z = (x - mu) / sd;
    Some((x, mu, if z > 0.0 { 1.0 - p_two_sided(z) } else { 0.0 }))
}

fn no_conversions(w: &Window<'_>, s: &AnomalySettings) -> Option<Finding> {
    let (x, mu, surge_score) = clicks_vs_usual(w)?;
    let (p0, bn) = w.base.rate[1]?;
    if mu < s.min_results as f64 || x * p0 < MIN_EXPECTED_CONVERSIONS || p0 <= 0.0 {
        return None;
    }
    let k = w.counters.conversions as f64;
    let (z, score, _) = anomaly::rate_test(k, x, p0 * bn, bn)?;
    let fall = 1.0 - (k / x) / p0;
    let collapse_score = if z < 0.0 { score } else { 0.0 };
    let active = x >= SURGE * mu && fall >= COLLAPSE && surge_score >= s.threshold && collapse_score >= s.threshold;
    let text = format!(
        "{} clicks in {}, {:.1}× the {:.0} usual at this hour, converting at {} against the usual {} ({} {})",
        count(x as i64),
        span(w.to_ms - w.from_ms),
        x / mu,
        mu,
        Metric::Cvr.format(Some(k / x)),
        Metric::Cvr.format(Some(p0)),
        if fall >= 0.0 { "down" } else { "up" },
        percent(fall.abs()),
    );
    Some(Finding { score: surge_score.min(collapse_score), active, text })
}

fn quiet_hour_burst(w: &Window<'_>, s: &AnomalySettings) -> Option<Finding> {
    let (x, mu, score) = clicks_vs_usual(w)?;
    // The channel's typical hour: the median of its usual clicks by hour of day.
    let mut usual: Vec<f64> = w.base.seasonal[0].iter().flatten().map(|(per_ms, _, _)| *per_ms).collect();
    if usual.len() < 12 {
        return None;
    }
    usual.sort_by(f64::total_cmp);
    let typical = usual[usual.len() / 2] * (w.to_ms - w.from_ms) as f64;
    if typical <= 0.0 || mu > QUIET * typical {
        return None;
    }
    let active = x >= s.min_results as f64 && x >= BURST * mu && score >= s.threshold;
    let local = (w.to_ms + w.offset_ms).rem_euclid(DAY_MS);
    let text = format!(
        "{} clicks in the {} to {:02}:{:02}, when the channel usually gets {:.0} ({:.0} in its typical hour)",
        count(x as i64),
        span(w.to_ms - w.from_ms),
        local / HOUR_MS,
        local % HOUR_MS / MINUTE_MS,
        mu,
        typical / (w.to_ms - w.from_ms) as f64 * HOUR_MS as f64,
    );
    Some(Finding { score, active, text })
}

fn ctr_out_of_line(w: &Window<'_>, s: &AnomalySettings) -> Option<Finding> {
    let (p0, bn) = w.base.rate[0]?;
    let (k, n) = (w.counters.clicks as f64, w.counters.impressions as f64);
    if n < s.min_impressions as f64 || n * p0 < 20.0 || p0 <= 0.0 {
        return None;
    }
    let (z, score, _) = anomaly::rate_test(k, n, p0 * bn, bn)?;
    let times = (k / n) / p0;
    let score = if z > 0.0 { score } else { 0.0 };
    let active = times >= CTR_FAR && score >= s.threshold;
    let text = format!(
        "CTR {} on {} impressions, {times:.1}× the channel's usual {}",
        Metric::Ctr.format(Some(k / n)),
        count(n as i64),
        Metric::Ctr.format(Some(p0)),
    );
    Some(Finding { score, active, text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::anomaly::{HourlyHistory, Input};
    use crate::domain::Counters;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Binomial, Distribution, Poisson};

    /// Night hours are quiet, evenings busy.
    fn weight(t: i64) -> f64 {
        [
            0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.0, 1.2, 1.2, 1.1, 1.1, 1.2, 1.1, 1.0, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8,
            1.7, 1.2, 0.5,
        ][(t.rem_euclid(DAY_MS) / HOUR_MS) as usize]
    }

    /// An hour of `weight` × 20,000 impressions at CTR 2 %, CVR 5 %; `bots` times the genuine
    /// clicks in all, the extra ones converting never.
    fn hour(rng: &mut StdRng, weight: f64, bots: f64) -> Counters {
        let impressions = Poisson::new(20_000.0 * weight).unwrap().sample(rng) as u64;
        let clicks = Binomial::new(impressions, 0.02).unwrap().sample(rng);
        let conversions = Binomial::new(clicks, 0.05).unwrap().sample(rng);
        let invalid = Binomial::new(impressions, (0.02 * (bots - 1.0)).clamp(0.0, 1.0)).unwrap().sample(rng);
        Counters {
            impressions,
            clicks: clicks + invalid,
            conversions,
            spend: impressions as f64 * 0.03,
            ..Default::default()
        }
    }

    fn history(seed: u64, days: i64) -> (HourlyHistory, StdRng) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut hist = HourlyHistory::default();
        for h in 0..days * 24 {
            let t = h * HOUR_MS;
            hist.push(t + HOUR_MS, &hour(&mut rng, weight(t), 1.0));
        }
        (hist, rng)
    }

    /// The verdict on an hour of `counters` ending at `at` + 1 h.
    fn judge(hist: &HourlyHistory, counters: Counters, at: i64) -> Option<Verdict> {
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
        evaluate(&input, &AnomalySettings::default())
    }

    #[test]
    fn genuine_days_raise_nothing_at_any_hour() {
        for seed in 0..5 {
            let (hist, mut rng) = history(seed, 7);
            for h in 0..24 {
                let at = 7 * DAY_MS + h * HOUR_MS;
                let v = judge(&hist, hour(&mut rng, weight(at), 1.0), at).expect("a week of history judges");
                assert!(!v.active, "seed {seed}, hour {h}: {}", v.summary);
                assert!(v.summary.starts_with("no invalid-traffic pattern"), "{}", v.summary);
            }
        }
    }

    /// Bots making four clicks of every genuine one in a busy hour: the clicks do not convert
    /// and the CTR is out of line, two patterns at once: critical, and the summary says both.
    #[test]
    fn clicks_that_do_not_convert_are_critical_with_a_ctr_out_of_line() {
        let (hist, mut rng) = history(11, 7);
        let at = 7 * DAY_MS + 20 * HOUR_MS;
        let v = judge(&hist, hour(&mut rng, weight(at), 4.0), at).unwrap();
        assert!(v.active, "{}", v.summary);
        assert_eq!(v.severity, Severity::Crit, "{}", v.summary);
        assert!(v.summary.contains("usual at this hour, converting at"), "{}", v.summary);
        assert!(v.summary.contains("× the channel's usual"), "{}", v.summary);
    }

    /// A real rush (twice the audience, converting as usual) is an anomaly, not fraud.
    #[test]
    fn a_genuine_rush_is_not_invalid_traffic() {
        let (hist, mut rng) = history(12, 7);
        let at = 7 * DAY_MS + 19 * HOUR_MS;
        let v = judge(&hist, hour(&mut rng, weight(at) * 2.5, 1.0), at).unwrap();
        assert!(!v.active, "{}", v.summary);
    }

    /// At 3 a.m. the channel is quiet: bots clicking then are a burst in a quiet hour, even
    /// when the clicks are too few to show a conversion rate.
    #[test]
    fn a_burst_at_night_is_seen_as_such() {
        let (hist, mut rng) = history(13, 7);
        let at = 7 * DAY_MS + 3 * HOUR_MS;
        let v = judge(&hist, hour(&mut rng, weight(at), 6.0), at).unwrap();
        assert!(v.active, "{}", v.summary);
        assert!(v.summary.contains("clicks in the 1h to 04:00, when the channel usually gets"), "{}", v.summary);
    }

    /// Without three days of history at this hour and half a day of rates, nothing is judged.
    #[test]
    fn too_little_history_judges_nothing() {
        let (hist, mut rng) = history(14, 0);
        assert_eq!(judge(&hist, hour(&mut rng, 1.0, 5.0), 0), None);
    }

    /// Bots adding a third to a busy hour's clicks stay under every pattern's bar.
    #[test]
    fn a_third_more_clicks_is_no_proof() {
        let (hist, mut rng) = history(15, 7);
        let at = 7 * DAY_MS + 20 * HOUR_MS;
        let mild = judge(&hist, hour(&mut rng, weight(at), 1.3), at).unwrap();
        assert!(!mild.active, "30 % more clicks is no proof: {}", mild.summary);
    }
}
