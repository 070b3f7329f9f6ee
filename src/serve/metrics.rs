//! `/metrics`: the service's state in the Prometheus text exposition format (0.0.4), so that a
//! team that runs Prometheus and Grafana can chart and alert there too.
//!
//! - `cockpit_channel_<counter>_total{campaign,channel}`: impressions, clicks, leads,
//!   conversions, spend, revenue (counters, as the sources report them);
//! - `cockpit_channel_up{campaign,channel}`: 1 while its data can be trusted (ok or slow);
//!   `cockpit_channel_health{campaign,channel,state}`: 1 for its state;
//! - `cockpit_campaign_kpi{campaign,kpi}`: ctr, cvr, cpc, cpm, cpl, cpa, roas, roi (left out
//!   over a zero denominator);
//! - `cockpit_campaign_goal_progress_ratio{campaign,goal}` (achieved / target) and
//!   `cockpit_campaign_elapsed_ratio{campaign}`;
//! - `cockpit_campaign_pacing_ratio{campaign}`: spend against the budget's share of time;
//! - `cockpit_alert{campaign,channel,rule,severity,state}`: 1 for each pending or firing alert.

use crate::alert::AlertState;
use crate::domain::Health;
use crate::domain::metrics::{Metric, elapsed_share, pacing};
use crate::engine::snapshot::Snapshot;
use std::fmt::Write as _;

/// A label value, escaped as the format wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn number(v: f64) -> String {
    if v.is_finite() { format!("{v}") } else { "NaN".into() }
}

pub fn exposition(s: &Snapshot) -> String {
    let mut out = String::new();
    let channels = || s.campaigns.iter().flat_map(|c| c.channels.iter());
    for name in crate::domain::source::COUNTERS {
        let metric = format!("cockpit_channel_{name}_total");
        family(&mut out, &metric, "counter", &format!("The channel's {name} as its source reports them."));
        for v in channels() {
            let x = v.totals.get(name);
            let _ = writeln!(
                out,
                "{metric}{{campaign=\"{}\",channel=\"{}\"}} {}",
                esc(&v.key.campaign),
                esc(&v.key.channel),
                number(x)
            );
        }
    }
    family(&mut out, "cockpit_channel_up", "gauge", "1 while the channel's data can be trusted (ok or slow).");
    for v in channels() {
        let up = matches!(v.health, Health::Ok | Health::Slow);
        let _ = writeln!(
            out,
            "cockpit_channel_up{{campaign=\"{}\",channel=\"{}\"}} {}",
            esc(&v.key.campaign),
            esc(&v.key.channel),
            u8::from(up)
        );
    }
    family(&mut out, "cockpit_channel_health", "gauge", "1 for the channel's source health state.");
    for v in channels() {
        let _ = writeln!(
            out,
            "cockpit_channel_health{{campaign=\"{}\",channel=\"{}\",state=\"{}\"}} 1",
            esc(&v.key.campaign),
            esc(&v.key.channel),
            v.health.label().replace(' ', "_")
        );
    }
    family(&mut out, "cockpit_campaign_kpi", "gauge", "The campaign's KPIs over its run so far.");
    for c in &s.campaigns {
        for m in
            [Metric::Ctr, Metric::Cvr, Metric::Cpc, Metric::Cpm, Metric::Cpl, Metric::Cpa, Metric::Roas, Metric::Roi]
        {
            if let Some(v) = m.value(&c.totals).filter(|v| v.is_finite()) {
                let _ = writeln!(
                    out,
                    "cockpit_campaign_kpi{{campaign=\"{}\",kpi=\"{}\"}} {v}",
                    esc(&c.campaign.id),
                    m.name()
                );
            }
        }
    }
    family(&mut out, "cockpit_campaign_goal_progress_ratio", "gauge", "Each goal's achieved share of its target.");
    for c in &s.campaigns {
        for g in &c.campaign.goals {
            if let Some(v) = g.metric.value(&c.totals).filter(|_| g.target > 0.0) {
                let goal = g.name.clone().unwrap_or_else(|| g.metric.name().to_string());
                let _ = writeln!(
                    out,
                    "cockpit_campaign_goal_progress_ratio{{campaign=\"{}\",goal=\"{}\"}} {}",
                    esc(&c.campaign.id),
                    esc(&goal),
                    number(v / g.target)
                );
            }
        }
    }
    let (mut elapsed_lines, mut pacing_lines) = (String::new(), String::new());
    for c in &s.campaigns {
        let id = esc(&c.campaign.id);
        let elapsed = elapsed_share(c.campaign.start_ms(), c.campaign.end_ms(), s.now_ms);
        let _ = writeln!(elapsed_lines, "cockpit_campaign_elapsed_ratio{{campaign=\"{id}\"}} {elapsed}");
        if let Some(p) = pacing(c.totals.spend, c.campaign.total_budget, elapsed) {
            let _ = writeln!(pacing_lines, "cockpit_campaign_pacing_ratio{{campaign=\"{id}\"}} {p}");
        }
    }
    family(&mut out, "cockpit_campaign_elapsed_ratio", "gauge", "The share of the campaign's run gone.");
    out.push_str(&elapsed_lines);
    family(
        &mut out,
        "cockpit_campaign_pacing_ratio",
        "gauge",
        "Spend against the budget's share of the time gone; 1 is on plan.",
    );
    out.push_str(&pacing_lines);
    family(&mut out, "cockpit_alert", "gauge", "1 for each pending or firing alert.");
    for a in s.alerts.iter().filter(|a| matches!(a.state, AlertState::Pending | AlertState::Firing)) {
        let state = if a.state == AlertState::Firing { "firing" } else { "pending" };
        let _ = writeln!(
            out,
            "cockpit_alert{{campaign=\"{}\",channel=\"{}\",rule=\"{}\",severity=\"{}\",state=\"{state}\"}} 1",
            esc(&a.key.campaign),
            esc(&a.key.channel),
            esc(&a.key.rule),
            a.severity
        );
    }
    out
}
