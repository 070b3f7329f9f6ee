//! What a campaign file says about alerting: per-rule overrides (campaign-wide, then per
//! channel) and contingency plans. The alert engine merges these over its defaults.

use super::campaign::Interval;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Crit,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Crit => "crit",
        })
    }
}

/// The kinds of rule (see `alert::rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Kpi,
    Pacing,
    Anomaly,
    Traffic,
    Health,
}

impl RuleKind {
    pub const ALL: [RuleKind; 5] =
        [RuleKind::Kpi, RuleKind::Pacing, RuleKind::Anomaly, RuleKind::Traffic, RuleKind::Health];

    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Kpi => "kpi",
            RuleKind::Pacing => "pacing",
            RuleKind::Anomaly => "anomaly",
            RuleKind::Traffic => "traffic",
            RuleKind::Health => "health",
        }
    }

    /// The kind of an alert's rule name ("kpi: cpl <= 120" → kpi).
    pub fn of_rule(rule: &str) -> Option<RuleKind> {
        let head = rule.split(':').next().unwrap_or(rule).trim();
        RuleKind::ALL.into_iter().find(|k| k.name() == head)
    }
}

/// Overrides for one kind of rule. Every field is optional: what is not set comes from the
/// level above (channel → campaign → built-in default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fixed severity; by default it follows how far off the value is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Lookback window the rule judges over (campaign time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Interval>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<Interval>,
    /// kpi: hysteresis margin (0.05 = a breach clears 5 % inside the limit); pacing: tolerance
    /// (0.2 = 20 points off plan); anomaly: score in (0, 1) above which a point is anomalous;
    /// health: failed polls in a row before a failing source alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// anomaly: the smallest relative change that counts (0.3 = 30 %), however significant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_change: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_impressions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_clicks: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_results: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_spend: Option<f64>,
}

impl RuleSettings {
    /// `self` where set, else `base`.
    pub fn over(&self, base: &RuleSettings) -> RuleSettings {
        RuleSettings {
            enabled: self.enabled.or(base.enabled),
            severity: self.severity.or(base.severity),
            window: self.window.or(base.window),
            for_: self.for_.or(base.for_),
            keep_firing_for: self.keep_firing_for.or(base.keep_firing_for),
            threshold: self.threshold.or(base.threshold),
            min_change: self.min_change.or(base.min_change),
            min_impressions: self.min_impressions.or(base.min_impressions),
            min_clicks: self.min_clicks.or(base.min_clicks),
            min_results: self.min_results.or(base.min_results),
            min_spend: self.min_spend.or(base.min_spend),
        }
    }

    fn is_empty(&self) -> bool {
        *self == RuleSettings::default()
    }

    fn validate(&self, kind: RuleKind) -> Result<(), (String, String)> {
        let f = |name: &str| format!("{}.{name}", kind.name());
        if let Some(t) = self.threshold {
            let ok = match kind {
                RuleKind::Anomaly | RuleKind::Traffic => t > 0.0 && t < 1.0,
                RuleKind::Health => t >= 1.0,
                _ => t.is_finite() && (0.0..1.0).contains(&t),
            };
            if !ok {
                let range = match kind {
                    RuleKind::Anomaly | RuleKind::Traffic => "a score strictly between 0 and 1 (e.g. 0.9999)",
                    RuleKind::Health => "a number of polls ≥ 1",
                    _ => "a fraction in [0, 1) (e.g. 0.05)",
                };
                return Err((f("threshold"), format!("must be {range}")));
            }
        }
        if self.min_change.is_some_and(|c| !(c.is_finite() && c >= 0.0)) {
            return Err((f("min_change"), "must be a fraction ≥ 0 (e.g. 0.3)".into()));
        }
        if self.min_spend.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
            return Err((f("min_spend"), "must be a number ≥ 0".into()));
        }
        if self.window.is_some_and(|w| w.0.as_secs() < 60) {
            return Err((f("window"), "must be at least 1m".into()));
        }
        Ok(())
    }
}

/// Rule overrides by kind, as written under `[alerts]` (campaign) or `[channels.alerts]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRules {
    #[serde(default, skip_serializing_if = "RuleSettings::is_empty")]
    pub kpi: RuleSettings,
    #[serde(default, skip_serializing_if = "RuleSettings::is_empty")]
    pub pacing: RuleSettings,
    #[serde(default, skip_serializing_if = "RuleSettings::is_empty")]
    pub anomaly: RuleSettings,
    #[serde(default, skip_serializing_if = "RuleSettings::is_empty")]
    pub traffic: RuleSettings,
    #[serde(default, skip_serializing_if = "RuleSettings::is_empty")]
    pub health: RuleSettings,
}

impl AlertRules {
    pub fn is_empty(&self) -> bool {
        *self == AlertRules::default()
    }

    pub fn get(&self, kind: RuleKind) -> &RuleSettings {
        match kind {
            RuleKind::Kpi => &self.kpi,
            RuleKind::Pacing => &self.pacing,
            RuleKind::Anomaly => &self.anomaly,
            RuleKind::Traffic => &self.traffic,
            RuleKind::Health => &self.health,
        }
    }

    /// Checks every setting; the error is (field path below `alerts`, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        RuleKind::ALL.into_iter().try_for_each(|k| self.get(k).validate(k))
    }
}

/// What to do when a rule fires: the first step for the person on call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contingency {
    /// A rule kind ("kpi", "anomaly", …) or a full rule name ("kpi: ctr >= 0.01"); any when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A channel id; any when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Contingency {
    /// The first step as the person on call reads it: the plan, and its owner.
    pub fn first_step(&self) -> String {
        match &self.owner {
            Some(o) => format!("{} ({o})", self.plan),
            None => self.plan.clone(),
        }
    }

    /// How specifically this plan matches an alert (None when it does not): an exact rule and
    /// a channel beat a rule kind, which beats "any".
    pub fn specificity(&self, channel: &str, rule: &str) -> Option<u8> {
        let ch = match &self.channel {
            None => 0,
            Some(c) if c == channel => 2,
            Some(_) => return None,
        };
        let r = match &self.rule {
            None => 0,
            Some(r) if r == rule => 3,
            Some(r) if RuleKind::of_rule(rule).is_some_and(|k| k.name() == r) => 1,
            Some(_) => return None,
        };
        Some(ch + r)
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.plan.trim().is_empty() {
            return Err(("plan".into(), "must say what to do".into()));
        }
        if let Some(r) = &self.rule
            && RuleKind::of_rule(r).is_none()
        {
            return Err(("rule".into(), format!("unknown rule '{r}' (kpi, pacing, anomaly, traffic or health)")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_settings_override_campaign_settings_field_by_field() {
        let campaign = RuleSettings { threshold: Some(0.1), min_clicks: Some(50), ..Default::default() };
        let channel = RuleSettings { threshold: Some(0.2), severity: Some(Severity::Crit), ..Default::default() };
        let merged = channel.over(&campaign);
        assert_eq!(merged.threshold, Some(0.2));
        assert_eq!(merged.min_clicks, Some(50));
        assert_eq!(merged.severity, Some(Severity::Crit));
        assert_eq!(merged.window, None);
    }

    #[test]
    fn contingency_plans_prefer_the_most_specific_match() {
        let any = Contingency { rule: None, channel: None, plan: "call".into(), owner: None };
        let kind = Contingency { rule: Some("kpi".into()), ..any.clone() };
        let exact =
            Contingency { rule: Some("kpi: ctr >= 0.01".into()), channel: Some("douyin".into()), ..any.clone() };
        assert_eq!(any.specificity("douyin", "kpi: ctr >= 0.01"), Some(0));
        assert_eq!(kind.specificity("douyin", "kpi: ctr >= 0.01"), Some(1));
        assert_eq!(exact.specificity("douyin", "kpi: ctr >= 0.01"), Some(5));
        assert_eq!(exact.specificity("baidu", "kpi: ctr >= 0.01"), None);
        assert_eq!(kind.specificity("douyin", "health"), None);
    }

    #[test]
    fn thresholds_are_checked_per_kind() {
        let bad =
            AlertRules { anomaly: RuleSettings { threshold: Some(1.5), ..Default::default() }, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "anomaly.threshold");
        let ok =
            AlertRules { health: RuleSettings { threshold: Some(3.0), ..Default::default() }, ..Default::default() };
        assert!(ok.validate().is_ok());
    }
}
