//! Scenario files for the simulator: which campaigns it serves, how each channel performs, and
//! scripted incidents ("at +2h the CTR of 618-promo/douyin falls 60 % for 4h").

use super::model::{ChannelParams, Effect, Incident, SimChannel, VariantParams, default_segments};
use crate::domain::Campaign;
use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Simulated time at start; now when absent.
    #[serde(default)]
    pub start: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Break every channel's traffic down by device, age band and region.
    #[serde(default)]
    pub segments: bool,
    /// Campaign files (relative to the scenario file) whose channels are served; the built-in
    /// demo campaigns when empty.
    #[serde(default)]
    pub campaigns: Vec<String>,
    /// Per-channel performance, keyed "campaign/channel".
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelSpec>,
    #[serde(default)]
    pub events: Vec<EventSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub cpm: Option<f64>,
    pub ctr: Option<f64>,
    pub lead_rate: Option<f64>,
    pub cvr: Option<f64>,
    pub aov: Option<f64>,
    #[serde(default)]
    pub variants: Vec<VariantParams>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// "+2h30m" after the simulated start, or an RFC 3339 time.
    pub at: String,
    /// "campaign/channel", "campaign/*" or "*".
    pub target: String,
    /// ctr | cvr | cpm | traffic | lead_rate (with `factor`), http_error (with `status`), hang, reset, pause.
    pub kind: String,
    pub factor: Option<f64>,
    pub status: Option<u16>,
    pub duration: Option<String>,
    /// What the incident stands for, for people reading the scenario.
    pub note: Option<String>,
}

impl Scenario {
    pub fn parse(text: &str, file: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            format!("{file}:{line}: {}", e.message().lines().next().unwrap_or(""))
        })
    }

    /// The simulated channels and incidents for `campaigns`, with the clock starting at
    /// `start_ms`.
    pub fn build(&self, campaigns: &[Campaign], start_ms: i64) -> Result<(Vec<SimChannel>, Vec<Incident>), String> {
        let seed = self.seed.unwrap_or(1);
        let mut channels = Vec::new();
        for c in campaigns {
            let window = (c.start_ms(), c.end_ms(), i64::from(c.start.offset().local_minus_utc()) * 1000);
            for ch in &c.channels {
                let key = format!("{}/{}", c.id, ch.id);
                let spec = self.channels.get(&key).cloned().unwrap_or_default();
                let base = ChannelParams::for_kind(ch.kind.as_deref());
                let params = ChannelParams {
                    cpm: spec.cpm.unwrap_or(base.cpm),
                    ctr: spec.ctr.unwrap_or(base.ctr),
                    lead_rate: spec.lead_rate.unwrap_or(base.lead_rate),
                    cvr: spec.cvr.unwrap_or(base.cvr),
                    aov: spec.aov.unwrap_or(base.aov),
                };
                if params.cpm.is_nan() || params.cpm <= 0.0 {
                    return Err(format!("channels.\"{key}\".cpm must be > 0"));
                }
                let h = key.bytes().fold(seed, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                let mut sim = SimChannel::new(
                    &c.id,
                    ch.source_id(),
                    &c.currency,
                    ch.daily_budget,
                    params,
                    spec.variants,
                    window,
                    h,
                );
                if self.segments {
                    sim = sim.with_segments(default_segments(h));
                }
                channels.push(sim);
            }
        }
        for key in self.channels.keys() {
            if !channels.iter().any(|c| &c.key() == key) {
                return Err(format!("channels.\"{key}\" names no channel of the served campaigns"));
            }
        }
        let incidents = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| e.to_incident(start_ms).map_err(|m| format!("events[{i}]: {m}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((channels, incidents))
    }
}

impl EventSpec {
    fn to_incident(&self, start_ms: i64) -> Result<Incident, String> {
        let at_ms = match self.at.strip_prefix('+') {
            Some(rel) => start_ms + parse_ms(rel)?,
            None => DateTime::parse_from_rfc3339(&self.at)
                .map_err(|e| format!("at '{}': {e} (write \"+2h\" or an RFC 3339 time)", self.at))?
                .timestamp_millis(),
        };
        let factor = || self.factor.filter(|f| f.is_finite() && *f >= 0.0).ok_or("needs factor ≥ 0");
        let effect = match self.kind.as_str() {
            "ctr" => Effect::Ctr(factor()?),
            "cvr" => Effect::Cvr(factor()?),
            "cpm" => Effect::Cpm(factor()?),
            "traffic" => Effect::Traffic(factor()?),
            "lead_rate" => Effect::LeadRate(factor()?),
            "bots" => Effect::Bots(factor()?),
            "http_error" => {
                Effect::HttpError(self.status.filter(|s| (400..600).contains(s)).ok_or("needs status 400–599")?)
            }
            "hang" => Effect::Hang,
            "reset" => Effect::Reset,
            "pause" => Effect::Pause,
            k => {
                return Err(format!(
                    "unknown kind '{k}' (ctr, cvr, cpm, traffic, lead_rate, bots, http_error, hang, reset, pause)"
                ));
            }
        };
        let duration_ms = self.duration.as_deref().map(parse_ms).transpose()?;
        Ok(Incident { at_ms, duration_ms, target: self.target.clone(), effect })
    }
}

fn parse_ms(s: &str) -> Result<i64, String> {
    humantime::parse_duration(s.trim()).map(|d| d.as_millis() as i64).map_err(|e| format!("bad duration '{s}': {e}"))
}
