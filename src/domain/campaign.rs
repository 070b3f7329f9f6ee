//! A campaign's plan: dates, budget, SMART goals, KPI limits and the channels that carry it.
//! Parsed from TOML or JSON files and validated here, so every layer above works with a plan
//! that makes sense. Errors name the file, line and field.
//!
//! # The campaign file
//!
//! TOML (or the same shape in JSON). Times are RFC 3339 with an offset; the offset is the
//! campaign's local day for daily budgets.
//!
//! ```toml
//! id = "q2-webinar"                      # letters, digits, - _ .
//! name = "Q2 数字化转型研讨会 Webinar series"
//! start = "2026-05-25T00:00:00+08:00"
//! end = "2026-06-30T23:59:59+08:00"
//! currency = "CNY"                       # any ISO 4217 code; CNY by default
//! total_budget = 90000.0
//! tags = ["webinar", "b2b"]              # optional
//! description = "…"                      # optional
//! kpis = ["cpl <= 200", "cvr >= 0.1", "ctr >= 0.008"]   # metric, <= < >= >, number
//!
//! [[goals]]                              # SMART: metric, target, deadline (default: end)
//! name = "500 qualified leads"
//! metric = "leads"
//! target = 500.0
//! deadline = "2026-06-30T23:59:59+08:00"
//!
//! [[channels]]
//! id = "baidu-search"
//! name = "百度搜索 Baidu search"
//! kind = "search"                        # optional: social, search, video, kol, email, sms, ecommerce, appstore…
//! source = "https://stats.example.com/q2"   # stats URL; channels sharing one are fetched together
//! source_id = "bd-123"                   # optional: the channel's id in the source, if not `id`
//! control = "https://ads.example.com/control/q2"   # optional control endpoint
//! daily_budget = 900.0
//! min_budget = 300.0                     # optional
//! max_budget = 2500.0                    # optional
//! poll_interval = "30s"                  # optional
//! kpis = ["cpc <= 5"]                    # optional, per channel
//! ```
//!
//! Metrics: `impressions clicks leads conversions spend revenue` (counters) and `ctr` = clicks /
//! impressions, `cvr` = conversions / clicks, `cpc` = spend / clicks, `cpm` = spend / impressions ×
//! 1000, `cpl` = spend / leads, `cpa` = spend / conversions, `roas` = revenue / spend, `roi` =
//! (revenue − spend) / spend. A zero denominator shows `–`, never NaN or ∞.
//!
//! `fixtures/` holds three campaigns drawn from practice: a B2B webinar series (500 qualified
//! leads, registration rate 10 %), a 618 festival promotion judged on ROAS across marketplace,
//! short video, feed, search, KOL and e-mail, and an app-install launch with an A/B creative test.

use super::alerting::{AlertRules, Contingency};
use super::metrics::{Metric, elapsed_share};
use crate::domain::time::DAY_MS;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    #[serde(deserialize_with = "when::start")]
    pub start: DateTime<FixedOffset>,
    #[serde(deserialize_with = "when::end")]
    pub end: DateTime<FixedOffset>,
    #[serde(default = "default_currency")]
    pub currency: String,
    pub total_budget: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<Goal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kpis: Vec<KpiLimit>,
    /// Overrides of the default alert rules for every channel of the campaign.
    #[serde(default, skip_serializing_if = "AlertRules::is_empty")]
    pub alerts: AlertRules,
    /// First steps for the person on call when a rule fires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contingency: Vec<Contingency>,
    pub channels: Vec<Channel>,
    /// What the campaign costs besides media spend: labour, tools, agency and KOL fees.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub costs: Vec<Cost>,
    /// The launch checklist: what has to be done by when, and by whom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
    /// The share of revenue that is gross profit (0.35 = 35 %): profit and ROI count revenue
    /// times it, and POAS (gross profit on ad spend) is shown beside ROAS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_margin: Option<f64>,
}

/// A task of the launch checklist (landing page live, tracking verified, budget approved).
/// Marked done in the cockpit, it keeps who and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub title: String,
    pub owner: String,
    #[serde(deserialize_with = "when::due")]
    pub due: DateTime<FixedOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "when::done_at")]
    pub done_at: Option<DateTime<FixedOffset>>,
}

impl Task {
    pub fn due_ms(&self) -> i64 {
        self.due.timestamp_millis()
    }

    /// Not done and past its due time at `now_ms`.
    pub fn overdue(&self, now_ms: i64) -> bool {
        !self.done && now_ms > self.due_ms()
    }

    /// The alert rule of this task.
    pub fn rule(&self) -> String {
        format!("task: {}", self.title)
    }
}

/// The order a checklist is shown in: overdue first, then open by due time, then done.
pub fn task_order(tasks: &[Task], now_ms: i64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| (!tasks[i].overdue(now_ms), tasks[i].done, tasks[i].due_ms()));
    order
}

/// How a campaign's checklist stands: (done, open, overdue) at `now_ms`.
pub fn task_counts(tasks: &[Task], now_ms: i64) -> (usize, usize, usize) {
    let done = tasks.iter().filter(|t| t.done).count();
    let overdue = tasks.iter().filter(|t| t.overdue(now_ms)).count();
    (done, tasks.len() - done, overdue)
}

/// A cost besides media spend, counted in ROI and profit: once, or by the day from the
/// campaign's start to now (to its end at most); of one channel or the whole campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    pub name: String,
    pub amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<CostPer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostPer {
    Day,
}

impl Cost {
    /// What it has cost by `now_ms`.
    pub fn so_far(&self, campaign: &Campaign, now_ms: i64) -> f64 {
        let (start, end) = (campaign.start.timestamp_millis(), campaign.end_ms());
        match self.per {
            None if now_ms >= start => self.amount,
            None => 0.0,
            Some(CostPer::Day) => {
                let days = (now_ms.min(end) - start).max(0) as f64 / crate::domain::time::DAY_MS as f64;
                self.amount * days
            }
        }
    }
}

/// The full cost of a campaign (or a channel) so far: media spend and the other costs, and
/// what is left of revenue after both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullCost {
    pub spend: f64,
    pub other: f64,
    pub revenue: f64,
    /// The campaign's gross margin, if it has one (revenue counts whole without).
    pub margin: Option<f64>,
}

impl FullCost {
    pub fn total(&self) -> f64 {
        self.spend + self.other
    }

    /// What revenue leaves after the cost of goods: revenue times the gross margin.
    pub fn gross(&self) -> f64 {
        self.revenue * self.margin.unwrap_or(1.0)
    }

    pub fn profit(&self) -> f64 {
        self.gross() - self.total()
    }

    /// ROI over the whole cost: (revenue × margin − media spend − other costs) / (media spend
    /// + other costs); `None` before anything is spent.
    pub fn roi(&self) -> Option<f64> {
        (self.total() > 0.0).then(|| self.profit() / self.total())
    }

    /// Gross profit on ad spend, with a margin only; `None` before anything is spent.
    pub fn poas(&self) -> Option<f64> {
        self.margin.filter(|_| self.spend > 0.0).map(|m| self.revenue * m / self.spend)
    }
}

fn default_currency() -> String {
    "CNY".to_string()
}

/// A SMART goal: reach `target` of `metric` by `deadline` (the campaign's end by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    pub metric: Metric,
    pub target: f64,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "when::deadline")]
    pub deadline: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub id: String,
    pub name: String,
    /// What sort of channel this is (social, search, email, video, kol, sms, …); free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Stats source URL (the cockpit protocol of `poll`, or a `format`'s). Channels sharing a URL are fetched in one request.
    pub source: String,
    /// The channel's id in the source's document, when it differs from `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// How the source answers: `cockpit` (the default), `json` with a `mapping`, or a preset
    /// (`meta-insights`, `google-ads`, …; see `domain::source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The request settings, over the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<super::source::Request>,
    /// The mapping of the answer, over the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<super::source::Mapping>,
    /// The credentials its source's requests sign in with: a `[credentials.NAME]` of
    /// `config.toml`, whose access token is `{token}` in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    pub daily_budget: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_budget: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kpis: Vec<KpiLimit>,
    /// Overrides of the campaign's alert rules for this channel.
    #[serde(default, skip_serializing_if = "AlertRules::is_empty")]
    pub alerts: AlertRules,
}

impl Channel {
    pub fn source_id(&self) -> &str {
        self.source_id.as_deref().unwrap_or(&self.id)
    }

    /// How this channel's source is read (`None`: the cockpit protocol). Checked when the
    /// campaign is validated.
    pub fn source_format(&self) -> Option<super::source::Resolved> {
        super::source::resolve(self.format.as_deref(), self.request.as_ref(), self.mapping.as_ref()).ok().flatten()
    }

    /// The counters this channel's source does not read (bit `i` for `source::COUNTERS[i]`): a
    /// mapping that gives no expression for one. Those are unknown, never zero; the cockpit
    /// protocol reads all six.
    pub fn unmapped(&self) -> u8 {
        self.source_format().map_or(0, |r| unmapped_of(&r))
    }

    /// How this channel's source is read by periods, when it is (`rows`: each figure is kept
    /// on the day or hour it describes), and `unmapped`, resolving the source's format once.
    pub fn reading(&self) -> (Option<Periods>, u8) {
        self.source_format().map_or((None, 0), |r| (periods_of(&r), unmapped_of(&r)))
    }
}

/// The counters a resolved source does not read (see `Channel::unmapped`).
fn unmapped_of(r: &super::source::Resolved) -> u8 {
    r.mapping.counters().iter().enumerate().filter(|(_, (_, f))| f.is_none()).fold(0, |bits, (i, _)| bits | 1 << i)
}

/// How a resolved source is read by periods (see `Channel::reading`).
fn periods_of(r: &super::source::Resolved) -> Option<Periods> {
    use super::source::{Mode, PeriodLength};
    (r.mode() == Mode::Rows).then(|| Periods {
        len_ms: match r.mapping.period_length.unwrap_or_default() {
            PeriodLength::Day => DAY_MS,
            PeriodLength::Hour => crate::domain::time::HOUR_MS,
        },
        settle_ms: i64::from(r.mapping.settle_hours.unwrap_or(0)) * crate::domain::time::HOUR_MS,
    })
}

/// The periods of a source read by them: their length, and how long after its end a period's
/// figures stop moving (until then they are provisional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub len_ms: i64,
    pub settle_ms: i64,
}

/// A polling interval written the human way ("500ms", "5s", "1m").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(Interval)
            .map_err(|e| serde::de::Error::custom(format!("bad interval '{s}': {e} (write e.g. \"5s\" or \"1m\")")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Le,
    Lt,
    Ge,
    Gt,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
}

/// A KPI limit such as `cpl <= 120` or `ctr >= 0.02`, written as that string in files.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiLimit {
    pub metric: Metric,
    pub op: Op,
    pub value: f64,
}

impl KpiLimit {
    /// Whether `v` is within the limit.
    pub fn holds(&self, v: f64) -> bool {
        match self.op {
            Op::Le => v <= self.value,
            Op::Lt => v < self.value,
            Op::Ge => v >= self.value,
            Op::Gt => v > self.value,
        }
    }
}

impl KpiLimit {
    /// The limit in the user's units, for people: `CTR ≥ 1.0%`, `CPA ≤ 90.00`, `ROAS ≥ 3.50×`
    /// (the display form `ctr >= 0.01` is how a campaign file writes it).
    pub fn readable(&self) -> String {
        let op = match self.op.as_str() {
            "<=" => "≤",
            ">=" => "≥",
            other => other,
        };
        format!("{} {op} {}", self.metric.label(), self.metric.format(Some(self.value)))
    }
}

impl fmt::Display for KpiLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.as_str(), self.value)
    }
}

impl FromStr for KpiLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (pos, op, len) = ["<=", ">=", "<", ">"]
            .iter()
            .filter_map(|o| s.find(o).map(|p| (p, *o, o.len())))
            .min_by_key(|(p, _, l)| (*p, usize::MAX - l))
            .ok_or_else(|| format!("KPI limit '{s}' has no comparison (write e.g. \"cpl <= 120\")"))?;
        let metric: Metric = s[..pos].parse()?;
        let op = match op {
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            _ => Op::Gt,
        };
        let rest = s[pos + len..].trim();
        let value: f64 = rest.parse().map_err(|_| format!("KPI limit '{s}': '{rest}' is not a number"))?;
        if !value.is_finite() {
            return Err(format!("KPI limit '{s}': the value must be finite"));
        }
        Ok(KpiLimit { metric, op, value })
    }
}

impl Serialize for KpiLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KpiLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a campaign file was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CampaignError {
    #[error("{file}:{line}:{col}: {msg}")]
    Syntax { file: String, line: usize, col: usize, msg: String },
    #[error("{file}:{line}: {field}: {msg}")]
    Invalid { file: String, line: usize, field: String, msg: String },
}

/// Which serialisation a campaign file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// From the file name's extension; TOML unless it ends in `.json`.
    pub fn for_path(path: &str) -> Format {
        if path.to_ascii_lowercase().ends_with(".json") { Format::Json } else { Format::Toml }
    }
}

impl Campaign {
    /// Parses and validates a campaign file. `file` names it in errors.
    pub fn parse(text: &str, format: Format, file: &str) -> Result<Campaign, CampaignError> {
        let campaign: Campaign = match format {
            Format::Toml => toml::from_str(text).map_err(|e| {
                let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
                CampaignError::Syntax { file: file.to_string(), line, col, msg: first_line(e.message()) }
            })?,
            Format::Json => serde_json::from_str(text).map_err(|e| CampaignError::Syntax {
                file: file.to_string(),
                line: e.line(),
                col: e.column(),
                msg: first_line(&e.to_string()),
            })?,
        };
        campaign.validate().map_err(|(field, msg)| CampaignError::Invalid {
            file: file.to_string(),
            line: locate_field(text, &field),
            field,
            msg,
        })?;
        Ok(campaign)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a campaign always serialises to TOML")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a campaign always serialises to JSON")
    }

    /// Checks the plan makes sense; the error is (field path, reason).
    /// The full cost so far of the campaign (`channel: None`) or of one channel, given its
    /// counters: a campaign-wide cost counts toward the campaign only.
    pub fn full_cost(&self, totals: &crate::domain::Counters, channel: Option<&str>, now_ms: i64) -> FullCost {
        let other = self
            .costs
            .iter()
            .filter(|c| channel.is_none() || c.channel.as_deref() == channel)
            .map(|c| c.so_far(self, now_ms))
            .sum();
        FullCost { spend: totals.spend, other, revenue: totals.revenue, margin: self.gross_margin }
    }

    /// Whether profit is worth showing apart from ROAS: other costs, or a gross margin.
    pub fn has_full_cost(&self) -> bool {
        !self.costs.is_empty() || self.gross_margin.is_some()
    }

    /// The task a person means: its number (from 1, in the file's order), its title, or
    /// words of its title that only one task has.
    pub fn find_task(&self, which: &str) -> Result<usize, String> {
        let which = which.trim();
        let listed = || {
            let titles: Vec<String> =
                self.tasks.iter().enumerate().map(|(i, t)| format!("{} {}", i + 1, t.title)).collect();
            if titles.is_empty() { "it has none".to_string() } else { format!("its tasks: {}", titles.join(", ")) }
        };
        if let Ok(n) = which.parse::<usize>() {
            return (1..=self.tasks.len())
                .contains(&n)
                .then(|| n - 1)
                .ok_or_else(|| format!("campaign '{}' has no task {n} ({})", self.id, listed()));
        }
        if let Some(i) = self.tasks.iter().position(|t| t.title.eq_ignore_ascii_case(which)) {
            return Ok(i);
        }
        let words: Vec<String> = which.split_whitespace().map(str::to_lowercase).collect();
        let hits: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| {
                let title = self.tasks[i].title.to_lowercase();
                !words.is_empty() && words.iter().all(|w| title.contains(w.as_str()))
            })
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            [] => Err(format!("campaign '{}' has no task '{which}' ({})", self.id, listed())),
            many => {
                let titles: Vec<&str> = many.iter().map(|&i| self.tasks[i].title.as_str()).collect();
                Err(format!("'{which}' could be any of: {} (give its number or more words)", titles.join(", ")))
            }
        }
    }

    /// Marks task `i` done (or open again) as `by` at `at_ms`; whether that changed anything.
    pub fn set_task_done(&mut self, i: usize, done: bool, by: &str, at_ms: i64) -> bool {
        let offset = *self.start.offset();
        let Some(t) = self.tasks.get_mut(i) else { return false };
        if t.done == done {
            return false;
        }
        t.done = done;
        t.done_by = done.then(|| by.to_string());
        t.done_at = if done { DateTime::from_timestamp_millis(at_ms).map(|d| d.with_timezone(&offset)) } else { None };
        true
    }

    /// Whether `other` polls the same channels the same way (ids, sources, formats, requests,
    /// mappings, intervals and control endpoints): a plan changed only in what is judged and
    /// shown (budgets, limits, goals, names, costs, tasks) can replace this one where it runs.
    pub fn polls_as(&self, other: &Campaign) -> bool {
        let same = |a: &Channel, b: &Channel| {
            (&a.id, &a.source, &a.source_id, &a.format, &a.control, a.poll_interval)
                == (&b.id, &b.source, &b.source_id, &b.format, &b.control, b.poll_interval)
                && a.request == b.request
                && a.mapping == b.mapping
        };
        self.channels.len() == other.channels.len()
            && self.channels.iter().zip(&other.channels).all(|(a, b)| same(a, b))
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: &str| Err((f.to_string(), m.to_string()));
        if !valid_id(&self.id) {
            return bad("id", "must be 1–64 letters, digits, '-', '_' or '.'");
        }
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty");
        }
        if self.end <= self.start {
            return bad("end", "must be after start");
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return bad("currency", "must be an ISO 4217 code such as CNY, USD or EUR");
        }
        if !(self.total_budget.is_finite() && self.total_budget >= 0.0) {
            return bad("total_budget", "must be a number ≥ 0");
        }
        for (i, g) in self.goals.iter().enumerate() {
            if !(g.target.is_finite() && g.target > 0.0) {
                return Err((format!("goals[{i}].target"), "must be a number > 0".into()));
            }
            if g.deadline.is_some_and(|d| d <= self.start) {
                return Err((format!("goals[{i}].deadline"), "must be after the campaign's start".into()));
            }
        }
        if self.channels.is_empty() {
            return bad("channels", "a campaign needs at least one channel");
        }
        for (i, c) in self.costs.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err((format!("costs[{i}].name"), "must not be empty".into()));
            }
            if !(c.amount.is_finite() && c.amount >= 0.0) {
                return Err((format!("costs[{i}].amount"), "must be a number ≥ 0".into()));
            }
            if let Some(ch) = c.channel.as_deref().filter(|ch| !self.channels.iter().any(|x| x.id == *ch)) {
                return Err((format!("costs[{i}].channel"), format!("'{ch}' is not a channel of this campaign")));
            }
        }
        if self.gross_margin.is_some_and(|m| !(m > 0.0 && m <= 1.0)) {
            return bad("gross_margin", "must be a share of revenue: more than 0, at most 1 (0.35 = 35 %)");
        }
        for (i, t) in self.tasks.iter().enumerate() {
            let f = |name: &str| format!("tasks[{i}].{name}");
            if t.title.trim().is_empty() {
                return Err((f("title"), "must not be empty".into()));
            }
            if self.tasks[..i].iter().any(|o| o.title.eq_ignore_ascii_case(&t.title)) {
                return Err((f("title"), format!("'{}' is the title of an earlier task", t.title)));
            }
            if t.owner.trim().is_empty() {
                return Err((f("owner"), "must name who does it".into()));
            }
            if let Some(ch) = t.channel.as_deref().filter(|ch| !self.channels.iter().any(|x| x.id == *ch)) {
                return Err((f("channel"), format!("'{ch}' is not a channel of this campaign")));
            }
        }
        self.alerts.validate().map_err(|(f, m)| (format!("alerts.{f}"), m))?;
        for (i, c) in self.contingency.iter().enumerate() {
            c.validate().map_err(|(f, m)| (format!("contingency[{i}].{f}"), m))?;
            if let Some(ch) = &c.channel
                && self.channel(ch).is_none()
            {
                return Err((format!("contingency[{i}].channel"), format!("no channel '{ch}' in this campaign")));
            }
        }
        for (i, c) in self.channels.iter().enumerate() {
            let f = |name: &str| format!("channels[{i}].{name}");
            if !valid_id(&c.id) {
                return Err((f("id"), "must be 1–64 letters, digits, '-', '_' or '.'".into()));
            }
            if self.channels[..i].iter().any(|o| o.id == c.id) {
                return Err((f("id"), format!("duplicate channel id '{}'", c.id)));
            }
            if c.name.trim().is_empty() {
                return Err((f("name"), "must not be empty".into()));
            }
            if c.format.as_deref() == Some("csv") {
                check_dir_url(&c.source).map_err(|m| (f("source"), m))?;
            } else {
                check_url(&c.source).map_err(|m| (f("source"), m))?;
            }
            if let Some(u) = &c.control {
                check_url(u).map_err(|m| (f("control"), m))?;
            }
            if !(c.daily_budget.is_finite() && c.daily_budget >= 0.0) {
                return Err((f("daily_budget"), "must be a number ≥ 0".into()));
            }
            let min = c.min_budget.unwrap_or(0.0);
            let max = c.max_budget.unwrap_or(f64::INFINITY);
            if !(min.is_finite() && min >= 0.0) {
                return Err((f("min_budget"), "must be a number ≥ 0".into()));
            }
            if max < min || max.is_nan() {
                return Err((f("max_budget"), "must be ≥ min_budget".into()));
            }
            if c.daily_budget < min || c.daily_budget > max {
                return Err((f("daily_budget"), format!("must lie within min_budget..max_budget ({min}..{max})")));
            }
            if c.poll_interval.is_some_and(|p| p.0 < Duration::from_millis(100)) {
                return Err((f("poll_interval"), "must be at least 100ms".into()));
            }
            c.alerts.validate().map_err(|(n, m)| (f(&format!("alerts.{n}")), m))?;
            let format = super::source::resolve(c.format.as_deref(), c.request.as_ref(), c.mapping.as_ref())
                .map_err(|(n, m)| (f(&n), m))?;
            // Channels sharing a source share its request: they must read it the same way.
            if let Some(o) = self.channels[..i].iter().find(|o| o.source == c.source) {
                let same = o.source_format().map(|r| (r.format, r.request)) == format.map(|r| (r.format, r.request))
                    && o.credentials == c.credentials;
                if !same {
                    return Err((
                        f("format"),
                        format!("channel '{}' reads the same source with another format, request or credentials", o.id),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }

    pub fn end_ms(&self) -> i64 {
        self.end.timestamp_millis()
    }

    /// Share of the campaign's run that has elapsed at `now_ms`.
    pub fn elapsed(&self, now_ms: i64) -> f64 {
        elapsed_share(self.start_ms(), self.end_ms(), now_ms)
    }

    /// Share of the time until a goal's deadline that has elapsed at `now_ms`.
    pub fn goal_elapsed(&self, g: &Goal, now_ms: i64) -> f64 {
        let end = g.deadline.unwrap_or(self.end).timestamp_millis();
        elapsed_share(self.start_ms(), end, now_ms)
    }

    pub fn daily_budget(&self) -> f64 {
        self.channels.iter().map(|c| c.daily_budget).sum()
    }

    /// The contingency plan for an alert on `channel` (empty: campaign-wide) and `rule`: the
    /// most specific one that matches.
    pub fn contingency_for(&self, channel: &str, rule: &str) -> Option<&Contingency> {
        self.contingency
            .iter()
            .filter_map(|c| c.specificity(channel, rule).map(|s| (s, c)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, c)| c)
    }

    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// Start of the local day (in the campaign's own UTC offset) containing `now_ms`.
    /// The fingerprint of its channel ids that its stored totals carry.
    pub fn plan_print(&self) -> u64 {
        super::counters::plan_print(self.channels.iter().map(|c| c.id.as_str()))
    }

    pub fn day_start_ms(&self, now_ms: i64) -> i64 {
        let off = i64::from(self.start.offset().local_minus_utc()) * 1000;
        let day = DAY_MS;
        (now_ms + off).div_euclid(day) * day - off
    }
}

pub fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn check_url(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("'{u}' is not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host().is_some() => Ok(()),
        "http" | "https" => Err(format!("'{u}' has no host")),
        s => Err(format!("'{u}' uses {s}:, only http and https are allowed")),
    }
}

/// A `csv` source: a directory, as a `file://` URL.
fn check_dir_url(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("'{u}' is not a URL: {e}"))?;
    match parsed.scheme() {
        "file" => Ok(()),
        s => Err(format!("'{u}' uses {s}:; a csv source is a directory, file:///path/to/exports")),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Best-effort line of a field path such as `channels[2].daily_budget` in a TOML or JSON
/// text: the n-th `[[channels]]` table (or n-th `"id"` in JSON), then the first line that sets
/// the key. Falls back to the table's line, then 1.
fn locate_field(text: &str, path: &str) -> usize {
    let (table, idx, key) = match path.split_once('[') {
        Some((t, rest)) => {
            let (n, key) = rest.split_once(']').unwrap_or((rest, ""));
            (Some(t), n.parse::<usize>().unwrap_or(0), key.trim_start_matches('.'))
        }
        None => (None, 0, path),
    };
    let lines: Vec<&str> = text.lines().collect();
    let sets = |l: &str, k: &str| {
        let t = l.trim_start().trim_start_matches('"');
        t.starts_with(k) && t[k.len()..].trim_start().trim_start_matches('"').trim_start().starts_with(['=', ':'])
    };
    let mut from = 0;
    if let Some(t) = table {
        let header = format!("[[{t}]]");
        match lines.iter().enumerate().filter(|(_, l)| l.trim() == header).nth(idx) {
            Some((i, _)) => from = i,
            None => return 1,
        }
    }
    let key = if key.is_empty() { "id" } else { key };
    // A nested key (`alerts.kpi.threshold`) sits below a sub-table header: look past headers.
    let nested = key.contains('.');
    let key = key.rsplit('.').next().unwrap_or(key);
    lines
        .iter()
        .enumerate()
        .skip(from)
        .take_while(|(i, l)| table.is_some() || nested || *i == from || !l.trim_start().starts_with('['))
        .find(|(i, l)| sets(l, key) && (table.is_none() || *i > from || from == 0))
        .map_or(from + 1, |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "spring"
name = "春季新品 Spring launch"
start = "2026-03-01T00:00:00+08:00"
end = "2026-03-31T23:59:59+08:00"
total_budget = 60000.0
kpis = ["cpl <= 120", "ctr >= 0.02"]

[[goals]]
metric = "leads"
target = 500

[[channels]]
id = "wechat-moments"
name = "微信朋友圈"
source = "http://127.0.0.1:7878/stats/spring"
daily_budget = 2000.0

[[channels]]
id = "baidu"
name = "百度搜索"
source = "https://stats.example.com/baidu"
daily_budget = 1000.0
min_budget = 200.0
poll_interval = "5s"
"#;

    #[test]
    fn parses_and_round_trips_through_toml_and_json() {
        let c = Campaign::parse(GOOD, Format::Toml, "spring.toml").unwrap();
        assert_eq!(c.currency, "CNY");
        assert_eq!(c.kpis[0], KpiLimit { metric: Metric::Cpl, op: Op::Le, value: 120.0 });
        assert_eq!(c.channels[1].poll_interval, Some(Interval(Duration::from_secs(5))));
        let again = Campaign::parse(&c.to_toml(), Format::Toml, "x.toml").unwrap();
        assert_eq!(c, again);
        let from_json = Campaign::parse(&c.to_json(), Format::Json, "x.json").unwrap();
        assert_eq!(c, from_json);
    }

    /// Labour by the day and a one-off fee count in the full cost; ROI is over it.
    #[test]
    fn other_costs_count_by_the_day_and_once() {
        let text = format!(
            "{GOOD}\n[[costs]]\nname = \"agency\"\namount = 3000.0\n\n[[costs]]\nname = \"KOL notes\"\namount = 100.0\nper = \"day\"\nchannel = \"baidu\"\n"
        );
        let c = Campaign::parse(&text, Format::Toml, "spring.toml").unwrap();
        assert_eq!(c.costs.len(), 2);
        assert_eq!(Campaign::parse(&c.to_toml(), Format::Toml, "x.toml").unwrap(), c, "round trip");
        let day = crate::domain::time::DAY_MS;
        let ten_days = c.start.timestamp_millis() + 10 * day;
        let totals = crate::domain::Counters { spend: 7000.0, revenue: 20_000.0, ..Default::default() };
        let full = c.full_cost(&totals, None, ten_days);
        assert_eq!((full.other, full.total()), (4000.0, 11_000.0));
        assert_eq!(full.profit(), 9000.0);
        assert!((full.roi().unwrap() - 9000.0 / 11_000.0).abs() < 1e-12);
        assert_eq!(c.full_cost(&totals, Some("baidu"), ten_days).other, 1000.0, "a channel's own costs");
        assert_eq!(c.full_cost(&totals, None, c.start.timestamp_millis() - day).other, 0.0, "nothing before the start");
        let after = c.full_cost(&totals, None, c.end_ms() + 30 * day).other;
        assert!(
            (after - (3000.0 + 100.0 * (c.end_ms() - c.start.timestamp_millis()) as f64 / day as f64)).abs() < 1e-6,
            "by the day to the end only"
        );
        let bad = text.replace("channel = \"baidu\"", "channel = \"tiktok\"");
        let e = Campaign::parse(&bad, Format::Toml, "spring.toml").unwrap_err().to_string();
        assert!(e.contains("costs[1].channel") && e.contains("tiktok"), "{e}");
        let e = Campaign::parse(&text.replace("3000.0", "-1.0"), Format::Toml, "s.toml").unwrap_err().to_string();
        assert!(e.contains("costs[0].amount"), "{e}");
        // A gross margin: profit and ROI on revenue times it, and POAS.
        let with_margin = text.replacen("total_budget = 60000.0\n", "total_budget = 60000.0\ngross_margin = 0.4\n", 1);
        let m = Campaign::parse(&with_margin, Format::Toml, "m.toml").unwrap();
        let full = m.full_cost(&totals, None, ten_days);
        assert_eq!((full.gross(), full.profit()), (8000.0, -3000.0));
        assert!((full.roi().unwrap() + 3000.0 / 11_000.0).abs() < 1e-12);
        assert!((full.poas().unwrap() - 8000.0 / 7000.0).abs() < 1e-12);
        assert_eq!(c.full_cost(&totals, None, ten_days).poas(), None, "no margin, no POAS");
        assert_eq!(Campaign::parse(&m.to_toml(), Format::Toml, "x.toml").unwrap(), m, "round trip");
        let e =
            Campaign::parse(&with_margin.replace("gross_margin = 0.4", "gross_margin = 35"), Format::Toml, "m.toml")
                .unwrap_err()
                .to_string();
        assert!(e.contains("gross_margin: must be a share of revenue"), "{e}");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let text = GOOD.replace("total_budget = 60000.0", "total_budget = 60000.0.0");
        let e = Campaign::parse(&text, Format::Toml, "spring.toml").unwrap_err();
        let CampaignError::Syntax { file, line, .. } = &e else { panic!("{e}") };
        assert_eq!((file.as_str(), *line), ("spring.toml", 6));
        let e = Campaign::parse(&GOOD.replace("total_budget", "totl_budget"), Format::Toml, "f.toml").unwrap_err();
        assert!(e.to_string().starts_with("f.toml:6:"), "{e}");
        assert!(e.to_string().contains("totl_budget"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_field_and_its_line() {
        let cases = [
            (GOOD.replace("end = \"2026-03-31", "end = \"2026-02-01"), "f.toml:5: end: must be after start"),
            (GOOD.replace("daily_budget = 1000.0", "daily_budget = -5.0"), "f.toml:23: channels[1].daily_budget"),
            (GOOD.replace("id = \"baidu\"", "id = \"wechat-moments\""), "f.toml:20: channels[1].id: duplicate"),
            (GOOD.replace("https://stats", "ftp://stats"), "f.toml:22: channels[1].source"),
            (GOOD.replace("cpl <= 120", "cpx <= 120"), "unknown metric 'cpx'"),
            (GOOD.replace("target = 500", "target = 0"), "f.toml:11: goals[0].target"),
        ];
        for (text, want) in cases {
            let e = Campaign::parse(&text, Format::Toml, "f.toml").unwrap_err().to_string();
            assert!(e.contains(want), "got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn kpi_limits_parse_both_ways() {
        for s in ["cpl <= 120", "ctr >= 0.02", "roas > 3", "cpa<50"] {
            let k: KpiLimit = s.parse().unwrap();
            assert_eq!(k.to_string().parse::<KpiLimit>().unwrap(), k);
        }
        assert!(KpiLimit::from_str("ctr 0.02").is_err());
        assert!(KpiLimit::from_str("ctr >= lots").is_err());
        let k: KpiLimit = "cpl <= 120".parse().unwrap();
        assert!(k.holds(119.0) && k.holds(120.0) && !k.holds(121.0));
    }

    #[test]
    fn local_day_start_uses_the_campaign_offset() {
        let c = Campaign::parse(GOOD, Format::Toml, "f").unwrap();
        // 2026-03-02T01:00+08:00 is 2026-03-01T17:00Z; its local day starts 2026-03-01T16:00Z.
        let now = DateTime::parse_from_rfc3339("2026-03-02T01:00:00+08:00").unwrap().timestamp_millis();
        let want = DateTime::parse_from_rfc3339("2026-03-02T00:00:00+08:00").unwrap().timestamp_millis();
        assert_eq!(c.day_start_ms(now), want);
    }
}

/// Dates and times in campaign files: RFC 3339 with an offset, quoted or as a TOML date-time.
/// An error names the field and the form expected, whatever was wrong with the text.
mod when {
    use chrono::{DateTime, FixedOffset};
    use serde::Deserializer;

    /// Reads `text` as the field `field`.
    pub fn parse(field: &str, text: &str) -> Result<DateTime<FixedOffset>, String> {
        let t = text.trim();
        DateTime::parse_from_rfc3339(t).map_err(|e| {
            let why = if chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() {
                "a date without its time and offset".to_string()
            } else if chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").is_ok() {
                "a time without its offset".to_string()
            } else {
                e.to_string()
            };
            format!(
                "{field}: expected a date and time with an offset, like 2026-12-01T00:00:00+08:00, not '{t}' ({why})"
            )
        })
    }

    /// A string, or a TOML date-time (a map of one private key holding its text).
    struct Text;

    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a date and time with an offset, like 2026-12-01T00:00:00+08:00")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
            match map.next_entry::<String, String>()? {
                Some((_, v)) => Ok(v),
                None => Err(serde::de::Error::custom("an empty table, not a date and time")),
            }
        }
    }

    fn read<'de, D: Deserializer<'de>>(field: &str, d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = d.deserialize_any(Text)?;
        parse(field, &text).map_err(serde::de::Error::custom)
    }

    pub fn start<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        read("start", d)
    }

    pub fn end<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        read("end", d)
    }

    pub fn due<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        read("due", d)
    }

    pub fn deadline<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        read("deadline", d).map(Some)
    }

    pub fn done_at<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        read("done_at", d).map(Some)
    }
}
