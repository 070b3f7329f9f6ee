//! The live rules over a channel's history, as the engine runs them: each interval's counters
//! are taken in as the engine takes a reading (into the recent samples, the hourly baselines
//! and today's figures), the rules judge the channel with the code the engine uses
//! (`rules::evaluate`), and the same state machine (`state::step_all`) moves the alerts. What
//! `cockpit replay` prints with a campaign file or a stored channel: one line per alert state
//! change. The campaign-wide rules (total budget, goals, tasks) need every channel and the
//! source's health needs the source, so a replay of one channel judges its own rules: KPI
//! limits, its daily budget and anomalies. Pure.

use super::anomaly::HourlyHistory;
use super::rules::{CampaignInput, ChannelInput, JUDGE_WINDOWS_EVERY_MS, evaluate};
use super::state::{Alert, AlertKey, AlertState, Severity, Transition, step_all};
use crate::domain::time::DAY_MS;
use crate::domain::{Campaign, Counters, Recent};
use std::collections::BTreeMap;

/// Samples kept for the rules' windows, as the engine keeps them (`engine::RECENT`).
pub const RECENT: usize = 120;

/// An alert that changed state.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub at_ms: i64,
    pub rule: String,
    pub state: AlertState,
    pub severity: Severity,
    pub summary: String,
}

impl Change {
    /// `timestamp,rule,state,severity,summary` (RFC 3339 in the campaign's offset).
    pub fn csv(&self, campaign: &Campaign) -> String {
        let at = chrono::DateTime::from_timestamp_millis(self.at_ms)
            .map(|t| t.with_timezone(campaign.start.offset()).to_rfc3339())
            .unwrap_or_default();
        let quote =
            |s: &str| if s.contains([',', '"']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
        let state = match self.state {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        format!("{at},{},{state},{},{}", quote(&self.rule), self.severity, quote(&self.summary))
    }
}

/// The columns of a counters CSV, each row the amounts of its interval (not running totals).
pub const COUNTER_COLUMNS: [&str; 7] =
    ["timestamp", "impressions", "clicks", "leads", "conversions", "spend", "revenue"];

/// Reads `timestamp,impressions,clicks,leads,conversions,spend,revenue` rows in time order
/// (the header is required, so that a series of another shape is not taken for one);
/// empty lines and `#` comments are skipped. An error names the line.
pub fn read_counters_csv(text: &str, file: &str) -> Result<Vec<(i64, Counters)>, super::replay::ReplayError> {
    let err = |line: usize, msg: String| super::replay::ReplayError { file: file.to_string(), line, msg };
    let mut rows: Vec<(i64, Counters)> = Vec::new();
    let mut header = false;
    for (line, l) in super::replay::data_lines(text) {
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        if !header {
            if fields != COUNTER_COLUMNS {
                return Err(err(line, format!("the header must be {}", COUNTER_COLUMNS.join(","))));
            }
            header = true;
            continue;
        }
        if fields.len() != COUNTER_COLUMNS.len() {
            return Err(err(line, format!("{} fields; expected {}", fields.len(), COUNTER_COLUMNS.len())));
        }
        let at = super::replay::parse_time(fields[0]).map_err(|m| err(line, m))?;
        if rows.last().is_some_and(|(prev, _)| at < *prev) {
            return Err(err(line, format!("{} is earlier than the row before", fields[0])));
        }
        let count = |k: usize| {
            fields[k]
                .parse::<u64>()
                .map_err(|_| err(line, format!("{} '{}' is not a whole number ≥ 0", COUNTER_COLUMNS[k], fields[k])))
        };
        let money = |k: usize| match fields[k].parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(err(line, format!("{} '{}' is not an amount ≥ 0", COUNTER_COLUMNS[k], fields[k]))),
        };
        let c = Counters {
            impressions: count(1)?,
            clicks: count(2)?,
            leads: count(3)?,
            conversions: count(4)?,
            spend: money(5)?,
            revenue: money(6)?,
        };
        rows.push((at, c));
    }
    if !header {
        return Err(err(1, format!("empty: expected the header {}", COUNTER_COLUMNS.join(","))));
    }
    Ok(rows)
}

/// One channel of a campaign replayed through the live rules.
pub struct ChannelReplay<'a> {
    campaign: &'a Campaign,
    channel: String,
    recent: Recent,
    history: HourlyHistory,
    totals: Counters,
    today: Counters,
    day_start: i64,
    alerts: BTreeMap<AlertKey, Alert>,
    judged: i64,
}

/// Every change of the rows replayed.
pub fn replay_changes(r: &mut ChannelReplay<'_>, rows: impl IntoIterator<Item = (i64, Counters, bool)>) -> Vec<Change> {
    rows.into_iter().flat_map(|(at, c, first)| r.push(at, &c, first)).collect()
}

/// Changes as CSV lines with a header.
pub fn changes_csv(changes: &[Change], campaign: &Campaign) -> String {
    let mut out = String::from("timestamp,rule,state,severity,summary\n");
    for change in changes {
        out.push_str(&change.csv(campaign));
        out.push('\n');
    }
    out
}

impl<'a> ChannelReplay<'a> {
    /// What the anomaly rule on `m` made of the newest complete hour: (score, alert), as
    /// `replay --csv` prints them for the same series.
    pub fn judged(&self, m: crate::domain::Metric) -> Option<(f64, bool)> {
        self.history.judged(m)
    }

    /// `channel` of `campaign`; an error names the channels it has.
    pub fn new(campaign: &'a Campaign, channel: &str) -> Result<Self, String> {
        if campaign.channel(channel).is_none() {
            let ids: Vec<&str> = campaign.channels.iter().map(|c| c.id.as_str()).collect();
            return Err(format!(
                "campaign '{}' has no channel '{channel}' (its channels: {})",
                campaign.id,
                ids.join(", ")
            ));
        }
        Ok(ChannelReplay {
            campaign,
            channel: channel.to_string(),
            recent: Recent::default(),
            history: HourlyHistory::default(),
            totals: Counters::default(),
            today: Counters::default(),
            day_start: i64::MIN,
            alerts: BTreeMap::new(),
            judged: i64::MIN,
        })
    }

    /// The counters of the interval ending at `at_ms` (they must come in time order), and
    /// what the rules made of them: the alerts that changed state. A `first` sample (all a
    /// channel did before it was first read) counts toward the totals only, not toward
    /// today's figures or the samples the rules judge, as live.
    pub fn push(&mut self, at_ms: i64, delta: &Counters, first: bool) -> Vec<Change> {
        self.totals.add(delta);
        let day = self.campaign.day_start_ms(at_ms);
        if day != self.day_start {
            self.day_start = day;
            self.today = Counters::default();
        }
        if first {
            return Vec::new();
        }
        self.today.add(delta);
        self.history.push(at_ms, delta);
        self.recent.push((at_ms, *delta), RECENT);
        // The rules over windows are judged once per minute of campaign time, as live.
        let minute = at_ms.div_euclid(JUDGE_WINDOWS_EVERY_MS);
        if minute == self.judged {
            return Vec::new();
        }
        self.judged = minute;
        let plan = self.campaign.channel(&self.channel);
        let input = ChannelInput {
            plan,
            today: self.today,
            daily_budget: plan.map_or(0.0, |p| p.daily_budget),
            history: Some(&self.history),
            ..ChannelInput::new(&self.channel, &self.recent)
        };
        let alerts = &self.alerts;
        let active =
            |k: &AlertKey| alerts.get(k).is_some_and(|a| matches!(a.state, AlertState::Pending | AlertState::Firing));
        let listed = |_: &str| alerts.keys().any(|k| !k.channel.is_empty());
        let verdicts: Vec<_> = evaluate(
            &CampaignInput { campaign: self.campaign, totals: self.totals, has_data: true },
            &[input],
            at_ms,
            &active,
            &listed,
        )
        .into_iter()
        // Its own rules only; the source is judged live, not here.
        .filter(|(k, _, _)| !k.channel.is_empty() && !k.rule.starts_with("health"))
        .collect();
        let moved = step_all(&mut self.alerts, verdicts, at_ms);
        // Resolved alerts are kept a day, as live.
        self.alerts.retain(|_, a| a.resolved_ms.is_none_or(|r| at_ms - r < DAY_MS));
        moved
            .into_iter()
            .filter(|m| matches!(m.transition, Transition::Pending | Transition::Fired | Transition::Resolved))
            .filter_map(|m| {
                let a = m.after?;
                Some(Change { at_ms, rule: m.key.rule, state: a.state, severity: a.severity, summary: m.summary })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::Format;

    fn campaign() -> Campaign {
        Campaign::parse(include_str!("../../fixtures/q2-webinar.toml"), Format::Toml, "q2-webinar.toml").unwrap()
    }

    /// Hourly rows of a channel whose cost per lead goes from 100 to 400 for a few hours: the
    /// live KPI rule fires on it and resolves once it is back, one line per change.
    #[test]
    fn hourly_rows_through_the_live_rules_fire_and_resolve() {
        let c = campaign();
        let mut text = String::from("timestamp,impressions,clicks,leads,conversions,spend,revenue\n");
        let start = c.start_ms() + 24 * 3_600_000;
        for h in 0..30 {
            let leads = if (10..16).contains(&h) { 2 } else { 8 };
            let at = chrono::DateTime::from_timestamp_millis(start + h * 3_600_000).unwrap().to_rfc3339();
            text.push_str(&format!("{at},20000,400,{leads},40,800.00,0\n"));
        }
        let rows = read_counters_csv(&text, "rows.csv").unwrap();
        assert_eq!(rows.len(), 30);
        let mut r = ChannelReplay::new(&c, "baidu-search").unwrap();
        let out = changes_csv(&replay_changes(&mut r, rows.into_iter().map(|(at, c)| (at, c, false))), &c);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "timestamp,rule,state,severity,summary");
        let cpl: Vec<&str> = lines.iter().copied().filter(|l| l.contains("kpi: cpl <= 200")).collect();
        assert!(cpl.iter().any(|l| l.contains(",firing,")), "{out}");
        assert!(cpl.last().unwrap().contains(",resolved,"), "{out}");
        assert!(cpl.iter().any(|l| l.contains("P(CPL > 200.00)")), "{out}");
    }

    /// One detector, two drivers: a channel's hourly counters through the live rules, and the
    /// same hours as bare series through `replay --csv`, give the same score and alert at
    /// every hour, a clicks drop and a CTR collapse included.
    #[test]
    fn the_live_rules_and_the_bare_replay_agree_hour_by_hour() {
        use super::super::replay::{Point, ReplaySettings, Row, run};
        use crate::domain::Metric;
        use rand::SeedableRng;
        use rand_distr::{Binomial, Distribution, Poisson};
        let c = campaign();
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let start = c.start_ms() + 24 * 3_600_000;
        let mut hours = Vec::new();
        for h in 0..24 * 12 {
            let cycle = 1.0 + 0.6 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
            let drop = if (24 * 9 + 5..24 * 9 + 8).contains(&h) { 0.4 } else { 1.0 };
            let ctr = if (24 * 10 + 12..24 * 10 + 15).contains(&h) { 0.008 } else { 0.02 };
            let impressions = Poisson::new(20_000.0 * cycle * drop).unwrap().sample(&mut rng) as u64;
            let clicks = Binomial::new(impressions, ctr).unwrap().sample(&mut rng);
            let counters = Counters { impressions, clicks, spend: clicks as f64 * 0.01, ..Counters::default() };
            hours.push((start + (h + 1) * 3_600_000, counters));
        }
        let mut r = ChannelReplay::new(&c, "baidu-search").unwrap();
        let mut live = (Vec::new(), Vec::new());
        for (at, counters) in &hours {
            r.push(*at, counters, false);
            live.0.push(r.judged(Metric::Clicks).unwrap_or((0.0, false)));
            live.1.push(r.judged(Metric::Ctr).unwrap_or((0.0, false)));
        }
        let s = crate::alert::anomaly::AnomalySettings::default().series();
        let rows = |point: &dyn Fn(&Counters) -> Point| -> Vec<Row> {
            hours.iter().map(|(at, c)| Row { stamp: at.to_string(), at_ms: *at, point: point(c) }).collect()
        };
        let clicks = run(&rows(&|c| Point::Value(c.clicks as f64)), s).scores;
        let ctr = run(&rows(&|c| Point::Rate { num: c.clicks as f64, den: c.impressions as f64 }), s).scores;
        assert_eq!(live.0, clicks);
        assert_eq!(live.1, ctr);
        let alerts = |v: &[(f64, bool)]| v.iter().enumerate().filter(|(_, x)| x.1).map(|(i, _)| i).collect::<Vec<_>>();
        assert!(alerts(&clicks).contains(&(24 * 9 + 5)), "the drop: {:?}", alerts(&clicks));
        assert!(alerts(&ctr).contains(&(24 * 10 + 12)), "the collapse: {:?}", alerts(&ctr));
        assert_eq!(s, ReplaySettings { threshold: s.threshold, ..ReplaySettings::default() });
    }

    #[test]
    fn a_bad_counters_file_names_its_line() {
        let e = read_counters_csv("timestamp,value\n", "a.csv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.csv:1: the header must be timestamp,impressions,clicks,leads,conversions,spend,revenue"
        );
        let h = "timestamp,impressions,clicks,leads,conversions,spend,revenue\n";
        let e = read_counters_csv(&format!("{h}2026-06-01T00:00:00Z,10,1,0,0,-3,0\n"), "b.csv").unwrap_err();
        assert_eq!(e.to_string(), "b.csv:2: spend '-3' is not an amount ≥ 0");
        let e = read_counters_csv(
            &format!("{h}2026-06-01T01:00:00Z,1,1,0,0,1,0\n2026-06-01T00:00:00Z,1,1,0,0,1,0\n"),
            "c.csv",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("c.csv:3: 2026-06-01T00:00:00Z is earlier"), "{e}");
        assert!(
            ChannelReplay::new(&campaign(), "tiktok")
                .err()
                .unwrap()
                .contains("no channel 'tiktok' (its channels: wechat-moments")
        );
    }
}
