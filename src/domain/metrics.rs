//! Derived KPIs. A zero denominator is "no data" (`None`), never NaN or infinity, so nothing
//! downstream has to guard against them.

use super::counters::Counters;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Impressions,
    Clicks,
    Leads,
    Conversions,
    Spend,
    Revenue,
    Ctr,
    Cvr,
    Cpc,
    Cpm,
    Cpl,
    Cpa,
    Roas,
    Roi,
}

/// How a value of a metric is best shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Money,
    Percent,
    Ratio,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::Impressions,
        Metric::Clicks,
        Metric::Leads,
        Metric::Conversions,
        Metric::Spend,
        Metric::Revenue,
        Metric::Ctr,
        Metric::Cvr,
        Metric::Cpc,
        Metric::Cpm,
        Metric::Cpl,
        Metric::Cpa,
        Metric::Roas,
        Metric::Roi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Impressions => "impressions",
            Metric::Clicks => "clicks",
            Metric::Leads => "leads",
            Metric::Conversions => "conversions",
            Metric::Spend => "spend",
            Metric::Revenue => "revenue",
            Metric::Ctr => "ctr",
            Metric::Cvr => "cvr",
            Metric::Cpc => "cpc",
            Metric::Cpm => "cpm",
            Metric::Cpl => "cpl",
            Metric::Cpa => "cpa",
            Metric::Roas => "roas",
            Metric::Roi => "roi",
        }
    }

    /// Short upper-case label for headers and gauges.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Impressions => "Impr",
            Metric::Clicks => "Clicks",
            Metric::Leads => "Leads",
            Metric::Conversions => "Conv",
            Metric::Spend => "Spend",
            Metric::Revenue => "Revenue",
            Metric::Ctr => "CTR",
            Metric::Cvr => "CVR",
            Metric::Cpc => "CPC",
            Metric::Cpm => "CPM",
            Metric::Cpl => "CPL",
            Metric::Cpa => "CPA",
            Metric::Roas => "ROAS",
            Metric::Roi => "ROI",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::Impressions | Metric::Clicks | Metric::Leads | Metric::Conversions => Unit::Count,
            Metric::Spend | Metric::Revenue | Metric::Cpc | Metric::Cpm | Metric::Cpl | Metric::Cpa => Unit::Money,
            Metric::Ctr | Metric::Cvr | Metric::Roi => Unit::Percent,
            Metric::Roas => Unit::Ratio,
        }
    }

    /// Counts and money that accumulate over time (goal progress is measured against time for
    /// these); rates and costs per result do not.
    pub fn is_cumulative(self) -> bool {
        matches!(
            self,
            Metric::Impressions
                | Metric::Clicks
                | Metric::Leads
                | Metric::Conversions
                | Metric::Spend
                | Metric::Revenue
        )
    }

    /// Whether a larger value is better for the campaign (a lower CPL is good, a lower CTR is bad).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Spend | Metric::Cpc | Metric::Cpm | Metric::Cpl | Metric::Cpa)
    }

    /// The metric's value over the given counters; `None` when its denominator is zero.
    pub fn value(self, c: &Counters) -> Option<f64> {
        let ratio = |num: f64, den: f64| if den > 0.0 { Some(num / den) } else { None };
        let n = |x: u64| x as f64;
        match self {
            Metric::Impressions => Some(n(c.impressions)),
            Metric::Clicks => Some(n(c.clicks)),
            Metric::Leads => Some(n(c.leads)),
            Metric::Conversions => Some(n(c.conversions)),
            Metric::Spend => Some(c.spend),
            Metric::Revenue => Some(c.revenue),
            Metric::Ctr => ratio(n(c.clicks), n(c.impressions)),
            Metric::Cvr => ratio(n(c.conversions), n(c.clicks)),
            Metric::Cpc => ratio(c.spend, n(c.clicks)),
            Metric::Cpm => ratio(c.spend * 1000.0, n(c.impressions)),
            Metric::Cpl => ratio(c.spend, n(c.leads)),
            Metric::Cpa => ratio(c.spend, n(c.conversions)),
            Metric::Roas => ratio(c.revenue, c.spend),
            Metric::Roi => ratio(c.revenue - c.spend, c.spend),
        }
        .filter(|v| v.is_finite())
    }

    /// The counters this metric is computed from.
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Metric::Impressions => &["impressions"],
            Metric::Clicks => &["clicks"],
            Metric::Leads => &["leads"],
            Metric::Conversions => &["conversions"],
            Metric::Spend => &["spend"],
            Metric::Revenue => &["revenue"],
            Metric::Ctr => &["clicks", "impressions"],
            Metric::Cvr => &["conversions", "clicks"],
            Metric::Cpc => &["spend", "clicks"],
            Metric::Cpm => &["spend", "impressions"],
            Metric::Cpl => &["spend", "leads"],
            Metric::Cpa => &["spend", "conversions"],
            Metric::Roas | Metric::Roi => &["revenue", "spend"],
        }
    }

    /// Whether a channel whose source does not read the counters `unmapped` (bit `i` for
    /// `source::COUNTERS[i]`) measures this metric at all: a ROAS without revenue is unknown,
    /// not zero.
    pub fn measured_without(self, unmapped: u8) -> bool {
        self.inputs().iter().all(|name| {
            let bit = super::source::COUNTERS.iter().position(|c| c == name).map_or(0, |i| 1u8 << i);
            unmapped & bit == 0
        })
    }

    /// Formats a value of this metric for a table cell; `None` is shown as "–".
    pub fn format(self, v: Option<f64>) -> String {
        let Some(v) = v else { return "–".to_string() };
        match self.unit() {
            Unit::Count => super::format::compact(v),
            Unit::Money => super::format::money(v),
            Unit::Percent => super::format::percent(v),
            Unit::Ratio => format!("{v:.2}×"),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase();
        Metric::ALL.into_iter().find(|m| m.name() == l).ok_or_else(|| {
            let names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
            format!("unknown metric '{}' (known: {})", s.trim(), names.join(", "))
        })
    }
}

/// Share of a period that has elapsed at `now`, clamped to [0, 1]. Times are unix ms.
pub fn elapsed_share(start: i64, end: i64, now: i64) -> f64 {
    if end <= start {
        return if now >= end { 1.0 } else { 0.0 };
    }
    ((now - start) as f64 / (end - start) as f64).clamp(0.0, 1.0)
}

/// Spend pacing: spend so far against the budget's share for the elapsed time. 1.0 is on plan,
/// above 1 overspending. `None` before any time has elapsed or without a budget.
pub fn pacing(spent: f64, budget: f64, elapsed: f64) -> Option<f64> {
    let planned = budget * elapsed;
    (planned > 0.0).then(|| spent / planned).filter(|v| v.is_finite())
}

/// Goal progress against time: (achieved / target, elapsed share). Progress may exceed 1.
pub fn goal_progress(achieved: f64, target: f64, elapsed: f64) -> Option<(f64, f64)> {
    (target > 0.0).then(|| (achieved / target, elapsed)).filter(|(p, _)| p.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kpis_from_counters() {
        let c = Counters {
            impressions: 120_000,
            clicks: 3_400,
            leads: 210,
            conversions: 40,
            spend: 1820.55,
            revenue: 9800.0,
        };
        let v = |m: Metric| m.value(&c).unwrap();
        assert!((v(Metric::Ctr) - 3400.0 / 120_000.0).abs() < 1e-12);
        assert!((v(Metric::Cvr) - 40.0 / 3400.0).abs() < 1e-12);
        assert!((v(Metric::Cpc) - 1820.55 / 3400.0).abs() < 1e-12);
        assert!((v(Metric::Cpm) - 1820.55 / 120.0).abs() < 1e-9);
        assert!((v(Metric::Cpl) - 1820.55 / 210.0).abs() < 1e-12);
        assert!((v(Metric::Cpa) - 1820.55 / 40.0).abs() < 1e-12);
        assert!((v(Metric::Roas) - 9800.0 / 1820.55).abs() < 1e-12);
        assert!((v(Metric::Roi) - (9800.0 - 1820.55) / 1820.55).abs() < 1e-12);
    }

    #[test]
    fn zero_denominators_are_no_data() {
        let c = Counters::default();
        for m in Metric::ALL {
            if !m.is_cumulative() {
                assert_eq!(m.value(&c), None, "{m}");
                assert_eq!(m.format(m.value(&c)), "–");
            }
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(crate::domain::format::count(1_234_567), "1,234,567");
        assert_eq!(crate::domain::format::count(-1_234), "-1,234");
        assert_eq!(Metric::Ctr.format(Some(0.0213)), "2.1%");
        assert_eq!(Metric::Spend.format(Some(1820.554)), "1,821");
        assert_eq!(Metric::Cpl.format(Some(173.804)), "173.80");
        assert_eq!(Metric::Spend.format(Some(182_055.4)), "182,055");
        assert_eq!(Metric::Roas.format(Some(3.2)), "3.20×");
        assert_eq!(Metric::Impressions.format(Some(1_250_000.0)), "1.25M");
        assert_eq!("CPL".parse::<Metric>(), Ok(Metric::Cpl));
        assert!("cpx".parse::<Metric>().unwrap_err().contains("unknown metric 'cpx'"));
    }

    #[test]
    fn pacing_and_progress() {
        assert_eq!(pacing(500.0, 1000.0, 0.5), Some(1.0));
        assert_eq!(pacing(500.0, 1000.0, 0.0), None);
        assert_eq!(goal_progress(200.0, 500.0, 0.4), Some((0.4, 0.4)));
        assert_eq!(goal_progress(200.0, 0.0, 0.4), None);
        assert_eq!(elapsed_share(0, 100, 50), 0.5);
        assert_eq!(elapsed_share(0, 100, 150), 1.0);
        assert_eq!(elapsed_share(0, 100, -5), 0.0);
    }

    proptest! {
        #[test]
        fn every_metric_is_finite_or_none(i in 0u64..u64::MAX / 2, cl in 0u64..1_000_000, l in 0u64..1000, cv in 0u64..1000,
                                           spend in 0.0f64..1e12, rev in 0.0f64..1e12) {
            let c = Counters { impressions: i, clicks: cl, leads: l, conversions: cv, spend, revenue: rev };
            for m in Metric::ALL {
                if let Some(v) = m.value(&c) {
                    prop_assert!(v.is_finite());
                    prop_assert!(!m.format(Some(v)).contains("NaN"));
                }
            }
        }
    }
}
