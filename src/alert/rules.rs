//! The rules every campaign gets by default, derived from its plan: each KPI limit judged per
//! channel over a lookback window (with a volume guard and hysteresis), and source health per
//! channel. Pure: views and the time in, verdicts out.

use super::detect::{VolumeGuard, kpi};
use super::state::{AlertKey, Severity, Timing, Verdict};
use crate::domain::{Campaign, Counters};
use crate::engine::health::Health;

/// Campaign time over which KPI limits are judged.
pub const KPI_LOOKBACK_MS: i64 = 3 * 3_600_000;
/// KPI breaches must hold this long before firing, and stay clear this long before resolving.
pub const KPI_TIMING: Timing = Timing { for_ms: 15 * 60_000, keep_firing_for_ms: 30 * 60_000 };
/// Health problems fire at once (staleness already waits for several polls).
pub const HEALTH_TIMING: Timing = Timing { for_ms: 0, keep_firing_for_ms: 0 };
const HYSTERESIS: f64 = 0.05;

/// What a rule needs to know of a channel.
pub struct ChannelInput<'a> {
    pub id: &'a str,
    /// Per-interval samples (end time, delta), oldest first.
    pub recent: &'a [(i64, Counters)],
    pub health: Health,
    pub last_error: Option<&'a str>,
}

/// Evaluates every default rule of a campaign at `now`. `was_active` tells whether a rule's
/// alert is currently pending or firing (for hysteresis). Rules with too little volume to
/// judge give no verdict and leave their alert as it is.
pub fn evaluate(
    campaign: &Campaign,
    channels: &[ChannelInput<'_>],
    now: i64,
    was_active: &dyn Fn(&AlertKey) -> bool,
) -> Vec<(AlertKey, Verdict, Timing)> {
    let guard = VolumeGuard::default();
    let span = humantime::format_duration(std::time::Duration::from_millis(KPI_LOOKBACK_MS as u64)).to_string();
    let mut out = Vec::new();
    for ch in channels {
        let window = Counters::sum(ch.recent.iter().filter(|(at, _)| *at > now - KPI_LOOKBACK_MS).map(|(_, c)| c));
        let plan = campaign.channel(ch.id);
        let limits = campaign.kpis.iter().chain(plan.into_iter().flat_map(|p| p.kpis.iter()));
        for limit in limits {
            let key =
                AlertKey { campaign: campaign.id.clone(), channel: ch.id.to_string(), rule: format!("kpi: {limit}") };
            if let Some(v) = kpi(limit, &window, &guard, HYSTERESIS, was_active(&key), &span) {
                out.push((key, v, KPI_TIMING));
            }
        }
        let key = AlertKey { campaign: campaign.id.clone(), channel: ch.id.to_string(), rule: "health".into() };
        let severity = match ch.health {
            Health::Failing | Health::BadData => Severity::Crit,
            _ => Severity::Warn,
        };
        let active = ch.health.severity() >= Health::Stale.severity();
        let summary = match ch.last_error {
            Some(e) => format!("source {}: {e}", ch.health.label()),
            None => format!("source {}", ch.health.label()),
        };
        out.push((key, Verdict { active, severity, observed: None, expected: None, summary }, HEALTH_TIMING));
    }
    out
}
