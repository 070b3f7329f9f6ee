//! Detectors: pure functions from windows of counters to a verdict or an anomaly score in
//! [0, 1]. Rates are judged with their own denominators (binomial), counts against an
//! expectation (Poisson), money series against a robust baseline (median/MAD), slow drifts
//! with CUSUM; every verdict has a minimum-volume guard.

use super::state::{Severity, Verdict};
use crate::domain::{Counters, KpiLimit, Metric};

/// The smallest volume on which a verdict is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumeGuard {
    pub min_impressions: u64,
    pub min_clicks: u64,
    pub min_results: u64,
    pub min_spend: f64,
}

impl Default for VolumeGuard {
    fn default() -> Self {
        VolumeGuard { min_impressions: 1_000, min_clicks: 100, min_results: 10, min_spend: 500.0 }
    }
}

impl VolumeGuard {
    /// Whether `c` holds enough volume to judge `m`, and if not, what is missing.
    pub fn enough(&self, m: Metric, c: &Counters) -> Result<(), String> {
        let need = |have: u64, min: u64, what: &str| {
            if have >= min { Ok(()) } else { Err(format!("{have} {what}, need {min}")) }
        };
        match m {
            Metric::Ctr | Metric::Cpm => need(c.impressions, self.min_impressions, "impressions"),
            Metric::Cvr | Metric::Cpc => need(c.clicks, self.min_clicks, "clicks"),
            Metric::Cpl | Metric::Cpa | Metric::Roas | Metric::Roi => {
                let results = if m == Metric::Cpl { c.leads } else { c.conversions };
                if results >= self.min_results || c.spend >= self.min_spend {
                    Ok(())
                } else {
                    Err(format!(
                        "{results} results and {:.0} spent, need {} or {:.0}",
                        c.spend, self.min_results, self.min_spend
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether a window holds enough to judge `limit` on: `enough`, and for a cost per result,
    /// the spend that buys `min_results` at the limit's price (unless that many came). Judged
    /// on less, a quiet channel's every window is a fresh chance for a few unlucky hours to
    /// pass for a breach.
    pub fn holds_its_worth(&self, limit: &KpiLimit, c: &Counters) -> bool {
        let results = match limit.metric {
            Metric::Cpl => Some(c.leads),
            Metric::Cpa => Some(c.conversions),
            _ => None,
        };
        self.enough(limit.metric, c).is_ok()
            && results.is_none_or(|r| r >= self.min_results || c.spend >= self.min_results as f64 * limit.value)
    }
}

/// Judges a KPI limit over a window. `hysteresis` is the relative margin by which a breached
/// value must come back inside the limit before the verdict clears (e.g. 0.05 = 5 %);
/// `was_active` is the previous verdict. `None` when there is not enough volume to judge.
pub fn kpi(
    limit: &KpiLimit,
    window: &Counters,
    guard: &VolumeGuard,
    hysteresis: f64,
    was_active: bool,
    span: &str,
) -> Option<Verdict> {
    let m = limit.metric;
    guard.enough(m, window).ok()?;
    let value = m.value(window);
    let results_word = if m == Metric::Cpl { "leads" } else { "conversions" };
    let Some(v) = value else {
        // Spend with no results at all: the cost per result is beyond any limit, once the
        // spend makes it likely that a result was due (the chance of none at the limit's price
        // is under 5 %; a page under 1 %).
        let sure = super::evidence::p_breach(limit, window).unwrap_or(0.0);
        let fire = if was_active { super::evidence::CLEAR_BELOW } else { super::evidence::FIRE_AT };
        if !(matches!(m, Metric::Cpl | Metric::Cpa) && window.spend > 0.0) {
            return None;
        }
        let active = sure >= fire;
        return Some(Verdict {
            active,
            severity: if sure >= super::evidence::CRIT_AT { Severity::Crit } else { Severity::Warn },
            observed: None,
            expected: Some((limit.value, 0.0)),
            summary: if active || was_active {
                format!(
                    "{} spent over {span} with no {results_word} (limit {}): P({} > {}) {}",
                    Metric::Spend.format(Some(window.spend)),
                    limit.readable(),
                    m.label(),
                    m.format(Some(limit.value)),
                    super::evidence::odds(sure)
                )
            } else {
                String::new()
            },
        });
    };
    // A breached limit clears only once the value is back inside by the margin.
    let effective = if was_active {
        let lower_is_inside = matches!(limit.op, crate::domain::Op::Le | crate::domain::Op::Lt);
        KpiLimit {
            value: if lower_is_inside { limit.value * (1.0 - hysteresis) } else { limit.value * (1.0 + hysteresis) },
            ..limit.clone()
        }
    } else {
        limit.clone()
    };
    let off = if limit.value != 0.0 { (v - limit.value).abs() / limit.value.abs() } else { 0.0 };
    // Where the counts say how sure the breach is, it fires only when likely enough and
    // pages only when near certain and far past the limit (see `evidence`). A value inside
    // the limit is never likely past it: no posterior to weigh.
    let (active, severity) = if effective.holds(v) && !was_active {
        (false, Severity::Warn)
    } else {
        match super::evidence::p_breach(&effective, window) {
            Some(p) => {
                let active = p >= if was_active { super::evidence::CLEAR_BELOW } else { super::evidence::FIRE_AT };
                let crit = p >= super::evidence::CRIT_AT && off > 0.25;
                (active, if crit { Severity::Crit } else { Severity::Warn })
            }
            None => (!effective.holds(v), if off > 0.25 { Severity::Crit } else { Severity::Warn }),
        }
    };
    let verdict =
        |summary| Verdict { active, severity, observed: Some(v), expected: Some((limit.value, 0.0)), summary };
    // A clear check of a limit that was not breached shows nowhere: nothing to word.
    if !active && !was_active {
        return Some(verdict(String::new()));
    }
    let volume = match m {
        Metric::Ctr | Metric::Cpm => {
            format!("{} impressions", crate::domain::format::count(window.impressions as i64))
        }
        Metric::Cvr | Metric::Cpc => format!("{} clicks", crate::domain::format::count(window.clicks as i64)),
        _ => format!("{} {results_word}", if m == Metric::Cpl { window.leads } else { window.conversions }),
    };
    // Worded against the limit as written (the margin only decides when it clears).
    let sure = match super::evidence::evidence(limit, window) {
        Some(e) => {
            let side = if matches!(limit.op, crate::domain::Op::Le | crate::domain::Op::Lt) { ">" } else { "<" };
            format!(
                ", {:.0} % interval {}–{}, P({} {side} {}) {}",
                super::evidence::INTERVAL * 100.0,
                m.format(Some(e.low)),
                m.format(Some(e.high)),
                m.label(),
                m.format(Some(limit.value)),
                super::evidence::odds(e.p_breach)
            )
        }
        None => String::new(),
    };
    Some(verdict(format!(
        "{} {} vs limit {} over {span}: {volume}{sure}",
        m.label(),
        m.format(Some(v)),
        limit.readable()
    )))
}

/// P(X ≤ k) for X ~ Poisson(λ), summed in log space (no underflow for large λ).
pub fn poisson_cdf(k: u64, lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    // log of each term λ^i e^-λ / i!, added with log-sum-exp against the largest so far.
    let (mut log_term, mut log_sum) = (-lambda, -lambda);
    for i in 1..=k.min(100_000) {
        log_term += lambda.ln() - (i as f64).ln();
        let (hi, lo) = if log_term > log_sum { (log_term, log_sum) } else { (log_sum, log_term) };
        log_sum = hi + (lo - hi).exp().ln_1p();
    }
    log_sum.exp().min(1.0)
}

/// Wilson score interval for `successes` out of `trials` at `z` standard deviations.
pub fn wilson(successes: u64, trials: u64, z: f64) -> Option<(f64, f64)> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * ((p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()) / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Two-sided p-value of a standard normal statistic.
pub fn p_two_sided(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// How surprising `successes` out of `trials` is if the true rate were `expected`: 1 − the
/// two-sided p-value of a binomial test (normal approximation with continuity correction).
/// 0 when there is no volume to judge.
pub fn rate_score(successes: u64, trials: u64, expected: f64) -> f64 {
    if trials == 0 || !(0.0..=1.0).contains(&expected) {
        return 0.0;
    }
    let n = trials as f64;
    let var = n * expected * (1.0 - expected);
    if var <= 0.0 {
        return if (successes as f64 - n * expected).abs() < 0.5 { 0.0 } else { 1.0 };
    }
    let d = (successes as f64 - n * expected).abs() - 0.5;
    1.0 - p_two_sided(d.max(0.0) / var.sqrt())
}

/// How surprising a count is if it were Poisson with mean `expected`: 1 − the two-sided
/// p-value, exact for small means, normal-approximated for large ones.
pub fn count_score(observed: u64, expected: f64) -> f64 {
    if expected.is_nan() || expected <= 0.0 {
        return if observed == 0 { 0.0 } else { 1.0 };
    }
    if expected > 100.0 {
        let d = (observed as f64 - expected).abs() - 0.5;
        return 1.0 - p_two_sided(d.max(0.0) / expected.sqrt());
    }
    // Exact: P(X <= k) and P(X >= k) by summing the pmf.
    let k = observed;
    let mut pmf = (-expected).exp();
    let mut cdf = 0.0;
    let mut at_k = 0.0;
    for i in 0..=k.max(1000) {
        if i > 0 {
            pmf *= expected / i as f64;
        }
        if i <= k {
            cdf += pmf;
        }
        if i == k {
            at_k = pmf;
        }
        if i > k && pmf < 1e-300 {
            break;
        }
    }
    let lower = cdf.min(1.0);
    let upper = (1.0 - cdf + at_k).clamp(0.0, 1.0);
    1.0 - (2.0 * lower.min(upper)).min(1.0)
}

/// Median and median absolute deviation of `xs` (unsorted); `None` when empty.
pub fn median_mad(xs: &[f64]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let m = median_in_place(&mut v);
    for x in &mut v {
        *x = (*x - m).abs();
    }
    Some((m, median_in_place(&mut v)))
}

/// Median by selection (linear time); reorders `v`, which must be non-empty and finite.
fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (lower, upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 { upper } else { (lower.iter().copied().fold(f64::MIN, f64::max) + upper) / 2.0 }
}

/// How far `x` lies from a robust baseline of `history`, as a score in [0, 1] from the robust
/// z-score (MAD scaled to σ). `min_scale` keeps a flat history from making every wiggle
/// infinitely surprising.
pub fn robust_score(x: f64, history: &[f64], min_scale: f64) -> Option<(f64, f64, f64)> {
    let (med, mad) = median_mad(history)?;
    let sigma = (1.4826 * mad).max(min_scale).max(f64::MIN_POSITIVE);
    let z = (x - med) / sigma;
    Some((1.0 - p_two_sided(z), med, sigma))
}

/// Two-sided CUSUM on standardised residuals: catches a slow drift that no single point
/// makes obvious. `k` is the slack (in σ) and `h` the decision threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cusum {
    pub k: f64,
    pub h: f64,
    pub up: f64,
    pub down: f64,
}

impl Default for Cusum {
    fn default() -> Self {
        Cusum { k: 0.5, h: 5.0, up: 0.0, down: 0.0 }
    }
}

impl Cusum {
    /// Adds one standardised residual; returns whether a drift is signalled (then restarts).
    pub fn push(&mut self, z: f64) -> bool {
        if !z.is_finite() {
            return false;
        }
        self.up = (self.up + z - self.k).max(0.0);
        self.down = (self.down - z - self.k).max(0.0);
        if self.up > self.h || self.down > self.h {
            self.up = 0.0;
            self.down = 0.0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_distr::{Binomial, Distribution, Normal, Poisson};

    #[test]
    fn poisson_tails_match_their_sums_and_stay_finite() {
        // e^-λ (1 + λ + λ²/2) for λ = 6.75: 0.0356.
        let direct = (-6.75f64).exp() * (1.0 + 6.75 + 6.75 * 6.75 / 2.0);
        assert!((poisson_cdf(2, 6.75) - direct).abs() < 1e-12);
        assert_eq!(poisson_cdf(0, 0.0), 1.0);
        assert!((poisson_cdf(1_000, 1_000.0) - 0.5084).abs() < 1e-3, "{}", poisson_cdf(1_000, 1_000.0));
        assert!(poisson_cdf(10, 5_000.0) < 1e-300 && poisson_cdf(10, 5_000.0) >= 0.0);
        // Monotone in k and in λ.
        assert!(poisson_cdf(3, 6.75) > poisson_cdf(2, 6.75));
        assert!(poisson_cdf(2, 7.0) < poisson_cdf(2, 6.75));
    }

    /// The demo's case: CPA 303.65 against a ceiling of 90 on 2 conversions is a warning, not
    /// a page; the same CPA on 20 conversions is critical.
    #[test]
    fn a_cost_ceiling_breached_on_a_handful_of_results_is_no_page() {
        let limit = KpiLimit { metric: Metric::Cpa, op: crate::domain::Op::Le, value: 90.0 };
        let guard = VolumeGuard::default();
        let few = Counters { conversions: 2, spend: 607.3, clicks: 400, impressions: 20_000, ..Default::default() };
        let v = kpi(&limit, &few, &guard, 0.05, false, "3h").unwrap();
        assert!(v.active && v.severity == Severity::Warn, "{v:?}");
        assert_eq!(
            v.summary,
            "CPA 303.65 vs limit CPA ≤ 90.00 over 3h: 2 conversions, 90 % interval 109.72–1,060, P(CPA > 90.00) 0.98"
        );
        let many = Counters { conversions: 20, spend: 6_073.0, ..few };
        let v = kpi(&limit, &many, &guard, 0.05, false, "3h").unwrap();
        assert!(v.active && v.severity == Severity::Crit, "{v:?}");
    }

    fn window(impressions: u64, clicks: u64, leads: u64, spend: f64) -> Counters {
        Counters { impressions, clicks, leads, conversions: leads / 2, spend, revenue: 0.0 }
    }

    #[test]
    fn kpi_needs_volume_and_has_hysteresis() {
        let ctr: KpiLimit = "ctr >= 0.02".parse().unwrap();
        let g = VolumeGuard::default();
        assert!(kpi(&ctr, &window(40, 0, 0, 1.0), &g, 0.05, false, "3h").is_none(), "no verdict on 40 impressions");
        let v = kpi(&ctr, &window(18_400, 166, 0, 50.0), &g, 0.05, false, "3h").unwrap();
        assert!(v.active);
        assert_eq!(
            v.summary,
            "CTR 0.9% vs limit CTR ≥ 2.0% over 3h: 18,400 impressions, 90 % interval 0.8%–1.0%, P(CTR < 2.0%) > 0.999"
        );
        assert_eq!(v.severity, Severity::Crit);
        // 2.05 % clears a fresh check but not a firing one (needs ≥ 2.1 %).
        let w = window(10_000, 205, 0, 50.0);
        assert!(!kpi(&ctr, &w, &g, 0.05, false, "3h").unwrap().active);
        assert!(kpi(&ctr, &w, &g, 0.05, true, "3h").unwrap().active);
        assert!(!kpi(&ctr, &window(10_000, 215, 0, 50.0), &g, 0.05, true, "3h").unwrap().active);
    }

    #[test]
    fn cpl_waits_for_leads_or_spend_and_catches_spend_without_leads() {
        let cpl: KpiLimit = "cpl <= 120".parse().unwrap();
        let g = VolumeGuard::default();
        assert!(kpi(&cpl, &window(5000, 100, 2, 300.0), &g, 0.05, false, "1d").is_none());
        let v = kpi(&cpl, &window(50_000, 900, 0, 800.0), &g, 0.05, false, "1d").unwrap();
        assert!(v.active && v.severity == Severity::Crit, "800 spent is 6.7 leads due at 120: {}", v.summary);
        assert_eq!(v.summary, "800.00 spent over 1d with no leads (limit CPL ≤ 120.00): P(CPL > 120.00) > 0.999");
        // 540 at a limit of 200 is 2.7 leads due: none is likely a breach, not yet a page.
        let cpl200: KpiLimit = "cpl <= 200".parse().unwrap();
        let v = kpi(&cpl200, &window(50_000, 900, 0, 540.0), &g, 0.05, false, "3h").unwrap();
        assert!(v.active && v.severity == Severity::Warn, "{}", v.summary);
        // 520 against a limit of 300: 1.7 due, none seen is not yet evidence enough.
        let cpl300: KpiLimit = "cpl <= 300".parse().unwrap();
        assert!(!kpi(&cpl300, &window(50_000, 900, 0, 520.0), &g, 0.05, false, "3h").unwrap().active);
        // Against 5,000 a tenth of a lead is due: a firing one clears.
        let cpl5k: KpiLimit = "cpl <= 5000".parse().unwrap();
        assert!(!kpi(&cpl5k, &window(50_000, 900, 0, 520.0), &g, 0.05, true, "3h").unwrap().active);
        let v = kpi(&cpl, &window(50_000, 900, 12, 1200.0), &g, 0.05, false, "1d").unwrap();
        assert!(!v.active, "CPL 100 is within 120");
    }

    #[test]
    fn wilson_and_erfc() {
        let (lo, hi) = wilson(20, 1000, 1.96).unwrap();
        assert!((lo - 0.0130).abs() < 0.001 && (hi - 0.0307).abs() < 0.001, "{lo} {hi}");
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_2).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_8).abs() < 1e-6);
        assert_eq!(wilson(0, 0, 1.96), None);
    }

    #[test]
    fn rates_counts_and_money_flag_real_changes() {
        // CTR 2.1 % expected; 1.2 % on 18,400 impressions is a collapse, 2.0 % is noise.
        assert!(rate_score(221, 18_400, 0.021) > 0.9999);
        assert!(rate_score(368, 18_400, 0.021) < 0.95);
        // Too few trials to tell.
        assert!(rate_score(0, 20, 0.021) < 0.9);
        // Counts: 5 leads where 20 were expected is a drop; 18 is not.
        assert!(count_score(5, 20.0) > 0.999);
        assert!(count_score(18, 20.0) < 0.8);
        assert!(count_score(1300, 1000.0) > 0.9999);
        // Money: CPC history around 2.4; 4.1 is far out, 2.5 is not.
        let hist: Vec<f64> = (0..48).map(|i| 2.4 + 0.05 * ((i * 7 % 11) as f64 - 5.0) / 5.0).collect();
        assert!(robust_score(4.1, &hist, 0.01).unwrap().0 > 0.9999);
        assert!(robust_score(2.5, &hist, 0.01).unwrap().0 < 0.99);
    }

    #[test]
    fn cusum_catches_a_slow_drift_that_points_miss() {
        let mut c = Cusum::default();
        // Each point only 0.8 σ high: never a point alarm at 3 σ, but CUSUM fires.
        let fired = (0..40).position(|_| c.push(0.8));
        assert!(fired.is_some_and(|i| i < 20), "{fired:?}");
        let mut c = Cusum::default();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let n = Normal::new(0.0, 1.0).unwrap();
        let alarms = (0..500).filter(|_| c.push(n.sample(&mut rng))).count();
        assert!(alarms <= 2, "{alarms} alarms on pure noise");
    }

    proptest! {
        /// At the default threshold (score ≥ 0.999), Poisson and binomial noise around the
        /// expectation almost never alarm.
        #[test]
        fn noise_does_not_alarm(seed in 0u64..1000, lambda in 5.0f64..5000.0, p in 0.005f64..0.2) {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let pois = Poisson::new(lambda).unwrap();
            let count_alarms = (0..200).filter(|_| count_score(pois.sample(&mut rng) as u64, lambda) >= 0.999).count();
            let bin = Binomial::new(10_000, p).unwrap();
            let rate_alarms = (0..200).filter(|_| rate_score(bin.sample(&mut rng), 10_000, p) >= 0.999).count();
            prop_assert!(count_alarms <= 3, "{count_alarms} count alarms at λ={lambda}");
            prop_assert!(rate_alarms <= 3, "{rate_alarms} rate alarms at p={p}");
        }
    }
}
