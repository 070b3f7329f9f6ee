//! The simulated ad network's pure core: channels that spend their daily budget with an
//! hour-of-day curve, turn spend into impressions, clicks, leads and conversions with noise
//! proportional to volume, and obey pause/resume/budget changes and scripted incidents.

use crate::domain::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use crate::domain::{ChannelStatus, ControlAction};
use crate::domain::{Counters, SegmentCounters, VariantCounters};
use crate::optimize::control::ControlRequest;
use crate::poll::wire::{ChannelStats, PROTOCOL_VERSION, StatsDoc};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Share of a day's traffic per local hour, relative to the mean (Chinese feed/search traffic:
/// quiet before dawn, a lunch bump, the evening peak).
const HOURLY: [f64; 24] = [
    0.45, 0.30, 0.20, 0.15, 0.15, 0.20, 0.35, 0.60, 0.90, 1.10, 1.20, 1.25, 1.30, 1.20, 1.15, 1.15, 1.15, 1.20, 1.30,
    1.45, 1.60, 1.65, 1.45, 0.90,
];

fn hour_weight(local_hour: usize) -> f64 {
    let mean: f64 = HOURLY.iter().sum::<f64>() / 24.0;
    HOURLY[local_hour % 24] / mean
}

/// How a channel turns money into results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelParams {
    /// Cost per thousand impressions.
    pub cpm: f64,
    /// Clicks per impression.
    pub ctr: f64,
    /// Leads per click.
    pub lead_rate: f64,
    /// Conversions per click.
    pub cvr: f64,
    /// Revenue per conversion.
    pub aov: f64,
}

impl Default for ChannelParams {
    fn default() -> Self {
        ChannelParams { cpm: 40.0, ctr: 0.015, lead_rate: 0.05, cvr: 0.03, aov: 250.0 }
    }
}

impl ChannelParams {
    /// Typical figures for a kind of channel, used when a scenario says nothing.
    pub fn for_kind(kind: Option<&str>) -> ChannelParams {
        let p = |cpm, ctr, lead_rate, cvr, aov| ChannelParams { cpm, ctr, lead_rate, cvr, aov };
        match kind.unwrap_or("") {
            "search" => p(120.0, 0.05, 0.04, 0.04, 260.0),
            "video" => p(30.0, 0.012, 0.03, 0.02, 220.0),
            "kol" => p(80.0, 0.025, 0.05, 0.03, 380.0),
            "email" => p(6.0, 0.03, 0.04, 0.02, 240.0),
            "sms" => p(40.0, 0.01, 0.05, 0.03, 200.0),
            "ecommerce" => p(50.0, 0.035, 0.08, 0.025, 260.0),
            "appstore" => p(40.0, 0.05, 0.12, 0.35, 2.5),
            _ => ChannelParams::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantParams {
    pub id: String,
    /// Share of the channel's impressions this variant gets.
    #[serde(default = "one")]
    pub share: f64,
    #[serde(default = "one")]
    pub ctr_mult: f64,
    #[serde(default = "one")]
    pub cvr_mult: f64,
}

fn one() -> f64 {
    1.0
}

/// One audience segment: its share of the channel's impressions and how its rates and prices
/// differ from the channel's.
#[derive(Debug, Clone)]
pub struct SegmentParams {
    pub dimension: &'static str,
    pub value: &'static str,
    pub share: f64,
    pub cpm_mult: f64,
    pub ctr_mult: f64,
    pub lead_mult: f64,
    pub cvr_mult: f64,
    pub aov_mult: f64,
}

/// Device, age band and region, with the differences commonly seen on Chinese platforms
/// (desktop converts better, the youngest band clicks most and buys least, tier-1 cities cost
/// more and convert better). One age band per channel, picked by `salt`, converts at 40 %
/// of its usual rate, so every channel has a segment that stands out.
pub fn default_segments(salt: u64) -> Vec<SegmentParams> {
    // dimension, value, share, cpm, ctr, lead rate, cvr and order value multipliers
    type Row = (&'static str, &'static str, f64, f64, f64, f64, f64, f64);
    #[rustfmt::skip]
    let rows: [Row; 9] = [
        ("device", "mobile",   0.78, 0.95, 1.05, 0.95, 0.85, 0.95),
        ("device", "desktop",  0.22, 1.20, 0.80, 1.20, 1.50, 1.15),
        ("age",    "18-24",    0.22, 0.90, 1.25, 0.80, 0.60, 0.80),
        ("age",    "25-34",    0.38, 1.00, 1.05, 1.10, 1.10, 1.00),
        ("age",    "35-44",    0.26, 1.05, 0.90, 1.10, 1.20, 1.10),
        ("age",    "45+",      0.14, 1.10, 0.70, 0.90, 0.90, 1.20),
        ("region", "tier-1",   0.35, 1.30, 1.00, 1.20, 1.20, 1.20),
        ("region", "tier-2",   0.40, 1.00, 1.00, 1.00, 1.00, 1.00),
        ("region", "tier-3+",  0.25, 0.75, 1.00, 0.75, 0.70, 0.80),
    ];
    let weak = 2 + (salt % 4) as usize;
    rows.iter()
        .enumerate()
        .map(|(i, &(dimension, value, share, cpm_mult, ctr_mult, lead_mult, cvr_mult, aov_mult))| {
            let k = if i == weak { 0.4 } else { 1.0 };
            SegmentParams {
                dimension,
                value,
                share,
                cpm_mult,
                ctr_mult,
                lead_mult: lead_mult * k,
                cvr_mult: cvr_mult * k,
                aov_mult,
            }
        })
        .collect()
}

/// Splits `n` into parts in proportion to `weights` (a multinomial draw, by sequential
/// binomials); the parts sum to `n`.
fn split(rng: &mut SmallRng, n: u64, weights: &[f64]) -> Vec<u64> {
    let mut left = n;
    let mut left_w: f64 = weights.iter().map(|w| w.max(0.0)).sum();
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let k = if i + 1 == weights.len() || left_w <= 0.0 {
                left
            } else {
                binomial(rng, left, (w.max(0.0) / left_w).clamp(0.0, 1.0))
            };
            left -= k;
            left_w -= w.max(0.0);
            k
        })
        .collect()
}

/// What a scripted incident does to a channel while it lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    Ctr(f64),
    Cvr(f64),
    Cpm(f64),
    /// Reach: the channel finds this share of its usual traffic (a lost placement, a narrowed
    /// audience, a tracking tag gone).
    Traffic(f64),
    /// Leads per click (a broken lead form).
    LeadRate(f64),
    /// Invalid clicks: bots click the channel's ads, this many times its genuine clicks in
    /// all (2 = as many invalid clicks as real ones); they never lead or convert.
    Bots(f64),
    /// Every request covering the channel answers with this HTTP status.
    HttpError(u16),
    /// Requests covering the channel never answer.
    Hang,
    /// The source restarts its counters from zero (instantaneous).
    Reset,
    /// The channel stops (or resumes) spending, as if paused on the platform.
    Pause,
}

#[derive(Debug, Clone)]
pub struct SimChannel {
    pub campaign: String,
    pub id: String,
    pub currency: String,
    pub status: ChannelStatus,
    pub daily_budget: f64,
    pub params: ChannelParams,
    pub variants: Vec<VariantParams>,
    /// Spending happens only within [start, end).
    pub start_ms: i64,
    pub end_ms: i64,
    /// The campaign's UTC offset, for local hours and days.
    pub offset_ms: i64,
    pub counters: Counters,
    pub variant_counters: Vec<VariantCounters>,
    /// What happened on each campaign-local day (its start, unix ms), as the platforms'
    /// reports give it; a counter reset leaves it alone.
    pub days: std::collections::BTreeMap<i64, Counters>,
    ctr_factor: f64,
    cvr_factor: f64,
    cpm_factor: f64,
    traffic_factor: f64,
    lead_factor: f64,
    bots_factor: f64,
    pub http_error: Option<u16>,
    pub hang: bool,
    /// The A/B split before a winner was declared.
    split: Option<Vec<f64>>,
    day: i64,
    spent_today: f64,
    rng: SmallRng,
    /// Audience segments and their counters (money unrounded); none unless enabled.
    segments: Vec<(SegmentParams, Counters)>,
    /// Its own generator, so that enabling segments leaves the channel's figures unchanged.
    seg_rng: SmallRng,
}

impl SimChannel {
    /// Goes on from the counters a cockpit last read from it (a demo run again on its
    /// database), as a real platform's counters would, instead of from zero.
    pub fn resume(&mut self, cur: &crate::domain::ChannelCursor) {
        self.counters = cur.raw;
        for v in &mut self.variant_counters {
            if let Some(r) = cur.raw_variants.iter().find(|r| r.id == v.id) {
                *v = r.clone();
            }
        }
        for (p, c) in &mut self.segments {
            if let Some(r) = cur.raw_segments.iter().find(|r| *r.dimension == *p.dimension && *r.value == *p.value) {
                *c = r.counters;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        campaign: &str,
        id: &str,
        currency: &str,
        daily_budget: f64,
        params: ChannelParams,
        variants: Vec<VariantParams>,
        (start_ms, end_ms, offset_ms): (i64, i64, i64),
        seed: u64,
    ) -> Self {
        let variant_counters =
            variants.iter().map(|v| VariantCounters { id: v.id.clone(), ..Default::default() }).collect();
        SimChannel {
            campaign: campaign.to_string(),
            id: id.to_string(),
            currency: currency.to_string(),
            status: ChannelStatus::Active,
            daily_budget,
            params,
            variants,
            start_ms,
            end_ms,
            offset_ms,
            counters: Counters::default(),
            variant_counters,
            days: Default::default(),
            ctr_factor: 1.0,
            cvr_factor: 1.0,
            cpm_factor: 1.0,
            traffic_factor: 1.0,
            lead_factor: 1.0,
            bots_factor: 1.0,
            http_error: None,
            hang: false,
            split: None,
            day: i64::MIN,
            spent_today: 0.0,
            rng: SmallRng::seed_from_u64(seed),
            segments: Vec::new(),
            seg_rng: SmallRng::seed_from_u64(seed ^ 0x5e6d),
        }
    }

    /// Breaks the channel's traffic down by device, age band and region from now on.
    pub fn with_segments(mut self, segments: Vec<SegmentParams>) -> Self {
        self.segments = segments.into_iter().map(|p| (p, Counters::default())).collect();
        self
    }

    /// Shares one step's results among the segments of each dimension, so that every
    /// dimension adds up to the channel.
    fn split_segments(&mut self, step: &Counters) {
        let mut dims: Vec<&'static str> = self.segments.iter().map(|(p, _)| p.dimension).collect();
        dims.dedup();
        for dim in dims {
            let idx: Vec<usize> = (0..self.segments.len()).filter(|&i| self.segments[i].0.dimension == dim).collect();
            let p = |i: usize| &self.segments[i].0;
            let shares: Vec<f64> = idx.iter().map(|&i| p(i).share / p(i).cpm_mult).collect();
            let impr = split(&mut self.seg_rng, step.impressions, &shares);
            let w: Vec<f64> = idx.iter().zip(&impr).map(|(&i, &n)| n as f64 * p(i).ctr_mult).collect();
            let clicks = split(&mut self.seg_rng, step.clicks, &w);
            let w: Vec<f64> = idx.iter().zip(&clicks).map(|(&i, &n)| n as f64 * p(i).lead_mult).collect();
            let leads = split(&mut self.seg_rng, step.leads, &w);
            let w: Vec<f64> = idx.iter().zip(&clicks).map(|(&i, &n)| n as f64 * p(i).cvr_mult).collect();
            let conv = split(&mut self.seg_rng, step.conversions, &w);
            let cost_w: Vec<f64> = idx.iter().zip(&impr).map(|(&i, &n)| n as f64 * p(i).cpm_mult).collect();
            let rev_w: Vec<f64> = idx.iter().zip(&conv).map(|(&i, &n)| n as f64 * p(i).aov_mult).collect();
            let (cost_sum, rev_sum) = (cost_w.iter().sum::<f64>(), rev_w.iter().sum::<f64>());
            for (k, &i) in idx.iter().enumerate() {
                let c = &mut self.segments[i].1;
                c.impressions += impr[k];
                c.clicks += clicks[k];
                c.leads += leads[k];
                c.conversions += conv[k];
                if cost_sum > 0.0 {
                    c.spend += step.spend * cost_w[k] / cost_sum;
                }
                if rev_sum > 0.0 {
                    c.revenue += step.revenue * rev_w[k] / rev_sum;
                }
            }
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.campaign, self.id)
    }

    fn apply(&mut self, e: Effect, on: bool) {
        let f = |x: f64| if on { x } else { 1.0 };
        match e {
            Effect::Ctr(x) => self.ctr_factor = f(x),
            Effect::Cvr(x) => self.cvr_factor = f(x),
            Effect::Cpm(x) => self.cpm_factor = f(x),
            Effect::Traffic(x) => self.traffic_factor = f(x),
            Effect::LeadRate(x) => self.lead_factor = f(x),
            Effect::Bots(x) => self.bots_factor = f(x),
            Effect::HttpError(s) => self.http_error = on.then_some(s),
            Effect::Hang => self.hang = on,
            Effect::Reset => {
                if on {
                    self.counters = Counters::default();
                    for v in &mut self.variant_counters {
                        *v = VariantCounters { id: v.id.clone(), ..Default::default() };
                    }
                }
            }
            Effect::Pause => self.status = if on { ChannelStatus::Paused } else { ChannelStatus::Active },
        }
    }

    /// Runs the channel from `from` to `to` (unix ms) in steps of `step` ms.
    fn run(&mut self, from: i64, to: i64, step: i64) {
        let mut t = from;
        while t < to {
            let dt = step.min(to - t);
            self.step(t, dt);
            t += dt;
        }
    }

    fn step(&mut self, t: i64, dt: i64) {
        if t < self.start_ms || t >= self.end_ms || self.status == ChannelStatus::Paused {
            return;
        }
        let local = t + self.offset_ms;
        let day = local.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.spent_today = 0.0;
        }
        let left = self.daily_budget - self.spent_today;
        if left <= 0.0 {
            return;
        }
        let hour = (local.rem_euclid(DAY_MS) / HOUR_MS) as usize;
        let noise = LogNormal::new(0.0, 0.15).map_or(1.0, |d| d.sample(&mut self.rng));
        let planned = self.daily_budget * hour_weight(hour) * dt as f64 / DAY_MS as f64 * noise * self.traffic_factor;
        let cpm = self.params.cpm * self.cpm_factor;
        let expected_impr = planned.min(left) / cpm * 1000.0;
        let impressions = poisson(&mut self.rng, expected_impr);
        if impressions == 0 {
            return;
        }
        let spend = impressions as f64 * cpm / 1000.0;
        let ctr = (self.params.ctr * self.ctr_factor).clamp(0.0, 1.0);
        let cvr = (self.params.cvr * self.cvr_factor).clamp(0.0, 1.0);
        let (mut clicks, mut conversions) = (0, 0);
        if self.variants.is_empty() {
            clicks = binomial(&mut self.rng, impressions, ctr);
            conversions = binomial(&mut self.rng, clicks, cvr);
        } else {
            let total_share: f64 = self.variants.iter().map(|v| v.share.max(0.0)).sum();
            let mut left_impr = impressions;
            let mut left_share = total_share;
            for (i, v) in self.variants.iter().enumerate() {
                let vi = if i + 1 == self.variants.len() || left_share <= 0.0 {
                    left_impr
                } else {
                    binomial(&mut self.rng, left_impr, (v.share.max(0.0) / left_share).clamp(0.0, 1.0))
                };
                left_impr -= vi;
                left_share -= v.share.max(0.0);
                let vc = binomial(&mut self.rng, vi, (ctr * v.ctr_mult).clamp(0.0, 1.0));
                let vv = binomial(&mut self.rng, vc, (cvr * v.cvr_mult).clamp(0.0, 1.0));
                let c = &mut self.variant_counters[i];
                c.impressions += vi;
                c.clicks += vc;
                c.conversions += vv;
                clicks += vc;
                conversions += vv;
            }
        }
        let leads = binomial(&mut self.rng, clicks, (self.params.lead_rate * self.lead_factor).clamp(0.0, 1.0));
        // Invalid clicks come on top of the genuine ones and bring nothing.
        if self.bots_factor > 1.0 {
            clicks += binomial(&mut self.rng, impressions, (ctr * (self.bots_factor - 1.0)).clamp(0.0, 1.0));
        }
        let revenue = if conversions > 0 {
            let spread =
                LogNormal::new(0.0, 0.35 / (conversions as f64).sqrt()).map_or(1.0, |d| d.sample(&mut self.rng));
            conversions as f64 * self.params.aov * spread
        } else {
            0.0
        };
        self.spent_today += spend;
        if !self.segments.is_empty() {
            let step = Counters { impressions, clicks, leads, conversions, spend, revenue };
            self.split_segments(&step);
        }
        let today = self.days.entry(day * DAY_MS - self.offset_ms).or_default();
        today.add(&Counters { impressions, clicks, leads, conversions, spend, revenue });
        let c = &mut self.counters;
        c.impressions += impressions;
        c.clicks += clicks;
        c.leads += leads;
        c.conversions += conversions;
        c.spend = round_cents(c.spend + spend);
        c.revenue = round_cents(c.revenue + revenue);
    }

    pub fn stats(&self) -> ChannelStats {
        ChannelStats {
            id: self.id.as_str().into(),
            campaign: Some(self.campaign.as_str().into()),
            status: Some(self.status),
            daily_budget: Some(self.daily_budget),
            currency: Some(self.currency.as_str().into()),
            totals: self.counters,
            variants: self.variant_counters.clone(),
            segments: self
                .segments
                .iter()
                .map(|(p, c)| SegmentCounters {
                    dimension: p.dimension.into(),
                    value: p.value.into(),
                    counters: Counters { spend: round_cents(c.spend), revenue: round_cents(c.revenue), ..*c },
                })
                .collect(),
            periods: Vec::new(),
            since_start: None,
        }
    }
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn poisson(rng: &mut SmallRng, lambda: f64) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    Poisson::new(lambda).map_or(0, |d| d.sample(rng) as u64)
}

fn binomial(rng: &mut SmallRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    Binomial::new(n, p.min(1.0)).map_or(0, |d| d.sample(rng))
}

/// A scripted change: `effect` on the channels matching `target` ("campaign/channel",
/// "campaign/*" or "*") from `at` for `duration` (forever when `None`).
#[derive(Debug, Clone)]
pub struct Incident {
    pub at_ms: i64,
    pub duration_ms: Option<i64>,
    pub target: String,
    pub effect: Effect,
}

impl Incident {
    fn matches(&self, ch: &SimChannel) -> bool {
        let (c, n) = self.target.split_once('/').unwrap_or((self.target.as_str(), "*"));
        (c == "*" || c == ch.campaign) && (n == "*" || n == ch.id)
    }
}

/// What the control endpoint answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlOutcome {
    pub applied: bool,
    pub channel: String,
    pub status: ChannelStatus,
    pub daily_budget: f64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    #[error("unknown channel '{0}'")]
    UnknownChannel(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("idempotency key '{0}' was already used for a different request")]
    KeyReuse(String),
}

/// The whole simulated network at one moment of simulated time.
pub struct Network {
    pub channels: Vec<SimChannel>,
    incidents: Vec<Incident>,
    /// Transition times already handled: index into `incidents`, and whether its end is done.
    started: Vec<bool>,
    ended: Vec<bool>,
    now_ms: i64,
    seen_keys: HashMap<String, (ControlRequest, ControlOutcome)>,
}

impl Network {
    /// A network whose channels have been running since their start, as of `now_ms`.
    pub fn new(channels: Vec<SimChannel>, mut incidents: Vec<Incident>, now_ms: i64) -> Self {
        incidents.sort_by_key(|i| i.at_ms);
        let n = incidents.len();
        let earliest = channels.iter().map(|c| c.start_ms).min().unwrap_or(now_ms).min(now_ms);
        let mut net = Network {
            channels,
            incidents,
            started: vec![false; n],
            ended: vec![false; n],
            now_ms: earliest,
            seen_keys: HashMap::new(),
        };
        net.advance_to(now_ms);
        net
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Moves simulated time forward, applying incidents at their moments. Catching up on a
    /// long gap uses coarser steps so that start-up stays quick.
    pub fn advance_to(&mut self, to: i64) {
        self.advance(to, None);
    }

    /// Moves simulated time forward in steps of an hour (the traffic curve's resolution), for
    /// recording a long past quickly.
    pub fn advance_coarse(&mut self, to: i64) {
        self.advance(to, Some(60 * MINUTE_MS));
    }

    fn advance(&mut self, to: i64, step: Option<i64>) {
        while self.now_ms < to {
            let next = self.next_transition().filter(|t| *t <= to).unwrap_or(to);
            let step = step.unwrap_or(if next - self.now_ms > 6 * HOUR_MS { 15 * MINUTE_MS } else { MINUTE_MS });
            let from = self.now_ms;
            for c in &mut self.channels {
                c.run(from, next, step);
            }
            self.now_ms = next;
            self.fire_transitions();
        }
        self.fire_transitions();
    }

    fn next_transition(&self) -> Option<i64> {
        self.incidents
            .iter()
            .enumerate()
            .flat_map(|(i, inc)| {
                let start = (!self.started[i]).then_some(inc.at_ms);
                let end = (!self.ended[i]).then(|| inc.duration_ms.map(|d| inc.at_ms + d)).flatten();
                [start, end]
            })
            .flatten()
            .filter(|t| *t > self.now_ms)
            .min()
    }

    fn fire_transitions(&mut self) {
        for i in 0..self.incidents.len() {
            let inc = self.incidents[i].clone();
            if !self.started[i] && inc.at_ms <= self.now_ms {
                self.started[i] = true;
                for c in self.channels.iter_mut().filter(|c| inc.matches(c)) {
                    c.apply(inc.effect, true);
                }
            }
            let ends = inc.duration_ms.map(|d| inc.at_ms + d);
            if self.started[i] && !self.ended[i] && ends.is_some_and(|e| e <= self.now_ms) {
                self.ended[i] = true;
                for c in self.channels.iter_mut().filter(|c| inc.matches(c)) {
                    c.apply(inc.effect, false);
                }
            }
        }
    }

    /// The stats document for the channels that match `campaign`/`channel` (None = all).
    /// An injected failure fails the request when every channel it covers is failing (a
    /// request for that one channel, or an incident on the whole campaign); a wider document
    /// leaves the failing channels out, as a platform with one broken report would.
    /// Err(status) for an HTTP error; Ok(None) when the request should hang.
    pub fn stats(&self, campaign: Option<&str>, channel: Option<&str>) -> Result<Option<StatsDoc>, u16> {
        let chosen: Vec<&SimChannel> = self
            .channels
            .iter()
            .filter(|c| campaign.is_none_or(|x| x == c.campaign) && channel.is_none_or(|x| x == c.id))
            .collect();
        let broken = |c: &&SimChannel| c.http_error.is_some() || c.hang;
        if !chosen.is_empty() && chosen.iter().all(broken) {
            return match chosen.iter().find_map(|c| c.http_error) {
                Some(status) => Err(status),
                None => Ok(None),
            };
        }
        let chosen: Vec<&SimChannel> = chosen.into_iter().filter(|c| !broken(c)).collect();
        Ok(Some(StatsDoc {
            version: PROTOCOL_VERSION,
            generated_at: chrono::DateTime::from_timestamp_millis(self.now_ms),
            channels: chosen.into_iter().map(SimChannel::stats).collect(),
            restated_from: None,
            restating: false,
            partial: false,
            note: None,
            expiring: None,
            slow_down: None,
        }))
    }

    /// Applies a control request to a channel of `campaign`. Replaying a request with the same
    /// idempotency key returns the first outcome and changes nothing.
    pub fn control(&mut self, campaign: &str, req: &ControlRequest) -> Result<ControlOutcome, ControlError> {
        if req.idempotency_key.trim().is_empty() {
            return Err(ControlError::BadRequest("idempotency_key is required".into()));
        }
        let key = format!("{campaign}\0{}", req.idempotency_key);
        if let Some((first, outcome)) = self.seen_keys.get(&key) {
            return if first == req {
                Ok(ControlOutcome { replayed: true, ..outcome.clone() })
            } else {
                Err(ControlError::KeyReuse(req.idempotency_key.clone()))
            };
        }
        let ch = self
            .channels
            .iter_mut()
            .find(|c| c.campaign == campaign && c.id == req.channel)
            .ok_or_else(|| ControlError::UnknownChannel(req.channel.clone()))?;
        match req.action {
            ControlAction::Pause => ch.status = ChannelStatus::Paused,
            ControlAction::Resume => ch.status = ChannelStatus::Active,
            ControlAction::SetBudget => match req.value {
                Some(v) if v.is_finite() && v >= 0.0 => ch.daily_budget = v,
                _ => return Err(ControlError::BadRequest("set_budget needs a value ≥ 0".into())),
            },
            ControlAction::DeclareWinner => {
                if ch.variants.is_empty() {
                    return Err(ControlError::BadRequest(format!("{} runs no A/B test", ch.id)));
                }
                if ch.split.is_none() {
                    ch.split = Some(ch.variants.iter().map(|v| v.share).collect());
                }
                match &req.variant {
                    Some(w) if ch.variants.iter().any(|v| &v.id == w) => {
                        for v in &mut ch.variants {
                            v.share = if &v.id == w { 1.0 } else { 0.0 };
                        }
                    }
                    Some(w) => return Err(ControlError::BadRequest(format!("no variant '{w}' on {}", ch.id))),
                    None => {
                        let split = ch.split.take().unwrap_or_default();
                        for (v, s) in ch.variants.iter_mut().zip(split) {
                            v.share = s;
                        }
                    }
                }
            }
        }
        let outcome = ControlOutcome {
            applied: true,
            channel: ch.id.clone(),
            status: ch.status,
            daily_budget: ch.daily_budget,
            replayed: false,
        };
        self.seen_keys.insert(key, (req.clone(), outcome.clone()));
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    fn channel(budget: f64) -> SimChannel {
        SimChannel::new("c", "x", "CNY", budget, ChannelParams::default(), vec![], (0, 40 * DAY_MS, 8 * H), 7)
    }

    #[test]
    fn spends_about_its_daily_budget_and_never_more() {
        let mut net = Network::new(vec![channel(1000.0)], vec![], 0);
        net.advance_to(10 * DAY_MS - 8 * H); // ten local days
        let spend = net.channels[0].counters.spend;
        assert!((9_000.0..=10_000.0 + 1.0).contains(&spend), "spend {spend}");
        let c = net.channels[0].counters;
        let ctr = c.clicks as f64 / c.impressions as f64;
        assert!((ctr - 0.015).abs() < 0.002, "ctr {ctr}");
    }

    #[test]
    fn evening_outspends_the_small_hours() {
        let mut net = Network::new(vec![channel(100_000.0)], vec![], 0);
        let local = |h: i64| DAY_MS + h * H - 8 * H;
        net.advance_to(local(3));
        let a = net.channels[0].counters.spend;
        net.advance_to(local(4));
        let night = net.channels[0].counters.spend - a;
        net.advance_to(local(20));
        let b = net.channels[0].counters.spend;
        net.advance_to(local(21));
        let evening = net.channels[0].counters.spend - b;
        assert!(evening > 4.0 * night, "evening {evening} night {night}");
    }

    #[test]
    fn incidents_start_and_end() {
        let inc = |effect, dur| Incident { at_ms: DAY_MS, duration_ms: Some(dur), target: "c/x".into(), effect };
        let mut net =
            Network::new(vec![channel(1000.0)], vec![inc(Effect::HttpError(500), H), inc(Effect::Reset, 0)], 0);
        net.advance_to(DAY_MS - 1);
        assert!(net.stats(None, None).is_ok());
        net.advance_to(DAY_MS + 1);
        assert_eq!(net.stats(Some("c"), None), Err(500));
        assert_eq!(net.stats(None, Some("x")), Err(500));
        assert!(net.channels[0].counters.impressions < 1000, "counters were reset");
        net.advance_to(DAY_MS + H + 1);
        assert!(net.stats(Some("c"), Some("x")).unwrap().is_some());
    }

    #[test]
    fn obeys_control_once_per_key() {
        let mut net = Network::new(vec![channel(1000.0)], vec![], 0);
        let req = |action, value, key: &str| ControlRequest {
            channel: "x".into(),
            action,
            value,
            variant: None,
            idempotency_key: key.into(),
        };
        let out = net.control("c", &req(ControlAction::Pause, None, "k1")).unwrap();
        assert_eq!(out.status, ChannelStatus::Paused);
        let before = net.channels[0].counters;
        net.advance_to(2 * DAY_MS);
        assert_eq!(net.channels[0].counters, before, "a paused channel does not spend");
        net.control("c", &req(ControlAction::Resume, None, "k2")).unwrap();
        let again = net.control("c", &req(ControlAction::Pause, None, "k1")).unwrap();
        assert!(again.replayed);
        assert_eq!(net.channels[0].status, ChannelStatus::Active, "a replay changes nothing");
        assert!(matches!(net.control("c", &req(ControlAction::Resume, None, "k1")), Err(ControlError::KeyReuse(_))));
        net.control("c", &req(ControlAction::SetBudget, Some(2500.0), "k3")).unwrap();
        assert_eq!(net.channels[0].daily_budget, 2500.0);
        assert!(net.control("c", &req(ControlAction::SetBudget, Some(-1.0), "k4")).is_err());
        assert!(net.control("c", &req(ControlAction::Pause, None, "")).is_err());
    }

    #[test]
    fn variants_split_impressions_and_differ() {
        let v = |id: &str, ctr_mult| VariantParams { id: id.into(), share: 0.5, ctr_mult, cvr_mult: 1.0 };
        let mut ch = channel(50_000.0);
        ch.variants = vec![v("A", 1.0), v("B", 1.3)];
        ch.variant_counters =
            ch.variants.iter().map(|v| VariantCounters { id: v.id.clone(), ..Default::default() }).collect();
        let mut net = Network::new(vec![ch], vec![], 0);
        net.advance_to(3 * DAY_MS);
        let c = &net.channels[0];
        let (a, b) = (&c.variant_counters[0], &c.variant_counters[1]);
        assert_eq!(a.impressions + b.impressions, c.counters.impressions);
        let (ra, rb) = (a.clicks as f64 / a.impressions as f64, b.clicks as f64 / b.impressions as f64);
        assert!(rb / ra > 1.15 && rb / ra < 1.45, "B/A ctr {}", rb / ra);
    }
}
