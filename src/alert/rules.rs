//! The rules every campaign gets, derived from its plan and tuned by its file's `[alerts]`
//! sections (campaign-wide, then per channel):
//! - **kpi**: each KPI limit judged per channel over a lookback window, with a volume guard and
//!   hysteresis;
//! - **pacing**: spend against the total budget and time, goal progress against time, a
//!   channel's daily budget gone before the evening;
//! - **anomaly**: a channel against its own baseline (see `anomaly`);
//! - **traffic**: invalid-traffic patterns against the same baselines (see `traffic`);
//! - **health**: the source failing, stale or returning bad data, and counter resets;
//! - **task**: a task of the launch checklist not done by its due time (`tasks`).
//!
//! Pure: views, settings and the time in, verdicts out.

use super::anomaly::{self, AnomalySettings, HourlyHistory};
use super::detect::{VolumeGuard, kpi};
use super::state::{AlertKey, Severity, Timing, Verdict};
use crate::domain::Health;
use crate::domain::format::percent;
use crate::domain::time::{HOUR_MS, MINUTE_MS};
use crate::domain::{Campaign, Channel, Counters, Metric, Recent, RuleKind, RuleSettings};

/// A rule kind's settings with every default filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    pub enabled: bool,
    pub severity: Option<Severity>,
    pub window_ms: i64,
    pub timing: Timing,
    pub threshold: f64,
    pub min_change: f64,
    pub guard: VolumeGuard,
}

/// The built-in defaults of a rule kind.
pub fn defaults(kind: RuleKind) -> Resolved {
    let timing = |f: i64, k: i64| Timing { for_ms: f * MINUTE_MS, keep_firing_for_ms: k * MINUTE_MS };
    let (window_ms, timing, threshold) = match kind {
        RuleKind::Kpi => (3 * HOUR_MS, timing(15, 30), 0.05),
        RuleKind::Pacing => (24 * HOUR_MS, timing(30, 60), 0.15),
        RuleKind::Anomaly | RuleKind::Traffic => (30 * MINUTE_MS, timing(10, 30), AnomalySettings::default().threshold),
        // A source is judged failing after 3 failed polls in a row and 2 minutes: one
        // refused connection or a short flap pages no one; back within 5 minutes, the same
        // incident goes on.
        RuleKind::Health => (0, timing(2, 5), 3.0),
    };
    Resolved {
        enabled: true,
        severity: None,
        window_ms,
        timing,
        threshold,
        min_change: AnomalySettings::default().min_change,
        guard: VolumeGuard::default(),
    }
}

/// The settings of a rule kind for a campaign, or for one of its channels (its plan).
pub fn settings(campaign: &Campaign, channel: Option<&Channel>, kind: RuleKind) -> Resolved {
    match channel {
        Some(ch) => apply(&ch.alerts.get(kind).over(campaign.alerts.get(kind)), defaults(kind)),
        None => apply(campaign.alerts.get(kind), defaults(kind)),
    }
}

fn apply(s: &RuleSettings, d: Resolved) -> Resolved {
    let ms = |i: Option<crate::domain::campaign::Interval>, d: i64| i.map_or(d, |i| i.0.as_millis() as i64);
    Resolved {
        enabled: s.enabled.unwrap_or(d.enabled),
        severity: s.severity.or(d.severity),
        window_ms: ms(s.window, d.window_ms),
        timing: Timing {
            for_ms: ms(s.for_, d.timing.for_ms),
            keep_firing_for_ms: ms(s.keep_firing_for, d.timing.keep_firing_for_ms),
        },
        threshold: s.threshold.unwrap_or(d.threshold),
        min_change: s.min_change.unwrap_or(d.min_change),
        guard: VolumeGuard {
            min_impressions: s.min_impressions.unwrap_or(d.guard.min_impressions),
            min_clicks: s.min_clicks.unwrap_or(d.guard.min_clicks),
            min_results: s.min_results.unwrap_or(d.guard.min_results),
            min_spend: s.min_spend.unwrap_or(d.guard.min_spend),
        },
    }
}

/// What a rule needs to know of a channel.
pub struct ChannelInput<'a> {
    pub id: &'a str,
    /// The channel's plan; found in the campaign by `id` when not given.
    pub plan: Option<&'a Channel>,
    /// Per-interval samples (end time, delta), oldest first.
    pub recent: &'a Recent,
    pub health: Health,
    pub last_error: Option<&'a str>,
    /// Failed polls in a row.
    pub failures: u32,
    pub last_reset_ms: Option<i64>,
    pub today: Counters,
    pub daily_budget: f64,
    pub paused: bool,
    pub history: Option<&'a HourlyHistory>,
    /// Whether the rules over windows of samples (KPI limits, the daily budget, anomalies) are
    /// judged, or only the source's health: see `JUDGE_WINDOWS_EVERY_MS`.
    pub windows: bool,
    /// The counters the channel's source does not read (`Channel::unmapped`): a limit on a
    /// metric made of them is not judged.
    pub unmapped: u8,
}

impl<'a> ChannelInput<'a> {
    /// A channel read without trouble, running, with these samples; no plan given, no budget,
    /// no history, every rule judged.
    pub fn new(id: &'a str, recent: &'a Recent) -> Self {
        ChannelInput {
            id,
            plan: None,
            recent,
            health: Health::Ok,
            last_error: None,
            failures: 0,
            last_reset_ms: None,
            today: Counters::default(),
            daily_budget: 0.0,
            paused: false,
            history: None,
            windows: true,
            unmapped: 0,
        }
    }
}

/// Rules over windows of samples change their verdicts with the samples, a storage period
/// (a minute) long: judged once per minute of campaign time, not at every reading of a source
/// polled every second. Their alerts wait 10 minutes or more before firing anyway.
pub const JUDGE_WINDOWS_EVERY_MS: i64 = MINUTE_MS;

/// What a rule needs to know of the campaign as a whole.
pub struct CampaignInput<'a> {
    pub campaign: &'a Campaign,
    pub totals: Counters,
    /// Whether any channel has been read at all: without a reading, pacing is not judged.
    pub has_data: bool,
}

/// One rule's outcome: `None` when there is too little volume or history to judge (the alert
/// stays as it is).
pub type Outcome = (AlertKey, Option<Verdict>, Timing);

/// Evaluates every rule of a campaign at `now`. `was_active` tells whether a rule's alert is
/// pending or firing (for hysteresis); `listed` whether a channel (by id) has any alert kept,
/// in any state. A clear verdict on a channel without alerts changes nothing and is left out:
/// most channels are fine most of the time, and their rules then cost no key and no words.
pub fn evaluate(
    input: &CampaignInput<'_>,
    channels: &[ChannelInput<'_>],
    now: i64,
    was_active: &dyn Fn(&AlertKey) -> bool,
    listed: &dyn Fn(&str) -> bool,
) -> Vec<Outcome> {
    let campaign = input.campaign;
    let mut out = Vec::new();
    let key = |channel: &str, rule: String| AlertKey { campaign: campaign.id.clone(), channel: channel.into(), rule };
    let mut push = |k: AlertKey, v: Option<Verdict>, s: &Resolved| {
        let v = v.map(|mut v| {
            if let Some(sev) = s.severity {
                v.severity = sev;
            }
            v
        });
        out.push((k, v, s.timing));
    };

    let s = settings(campaign, None, RuleKind::Pacing);
    if s.enabled && input.has_data {
        for (rule, v) in pacing_campaign(input, now, &s) {
            push(key("", rule), v, &s);
        }
    }

    let mut spans: Vec<(i64, String)> = Vec::new();
    for ch in channels {
        let listed = listed(ch.id);
        let was = |rule: &dyn Fn() -> String| listed && was_active(&key(ch.id, rule()));
        let mut push = |rule: &dyn Fn() -> String, v: Option<Verdict>, s: &Resolved| {
            if listed || v.as_ref().is_some_and(|v| v.active) {
                push(key(ch.id, rule()), v, s);
            }
        };
        let plan = ch.plan.or_else(|| campaign.channel(ch.id));
        let s = settings(campaign, plan, RuleKind::Kpi);
        if s.enabled && ch.windows {
            // The rule's window, and the wider ones a quiet channel's limits need.
            let mut windows = vec![(s.window_ms, kpi_window(ch, now - s.window_ms))];
            let limits = campaign.kpis.iter().chain(plan.into_iter().flat_map(|p| p.kpis.iter()));
            for limit in limits.filter(|l| l.metric.measured_without(ch.unmapped)) {
                let mut i = 0;
                while i < KPI_WIDENINGS && !s.guard.holds_its_worth(limit, &windows[i].1) {
                    i += 1;
                    if windows.len() == i {
                        let w = s.window_ms << i;
                        windows.push((w, kpi_window(ch, now - w)));
                    }
                }
                let (w, window) = &windows[i];
                // Most channels share a window: worded once.
                let span = match spans.iter().position(|(ms, _)| ms == w) {
                    Some(i) => i,
                    None => {
                        spans.push((*w, crate::domain::format::span(*w)));
                        spans.len() - 1
                    }
                };
                let span = spans[span].1.as_str();
                let rule = || format!("kpi: {limit}");
                // A paused channel spends nothing: its limits hold (and its alerts clear).
                let v = if ch.paused {
                    Some(paused_verdict())
                } else {
                    kpi(limit, window, &s.guard, s.threshold, was(&rule), span)
                };
                push(&rule, v, &s);
            }
        }

        let s = settings(campaign, plan, RuleKind::Pacing);
        if s.enabled && ch.windows {
            let rule = || "pacing: daily budget".to_string();
            let v = daily_budget_gone(campaign, ch, now, &s, was(&rule));
            push(&rule, v, &s);
        }

        // The channel against its own baselines: anomalies, and traffic no real audience makes.
        for kind in [RuleKind::Anomaly, RuleKind::Traffic] {
            let s = settings(campaign, plan, kind);
            let (true, Some(history)) = (s.enabled && ch.windows, ch.history) else { continue };
            let input = anomaly::Input {
                recent: ch.recent,
                now_ms: now,
                window_ms: s.window_ms,
                offset_ms: i64::from(campaign.start.offset().local_minus_utc()) * 1000,
                counts_explained: ch.paused || (ch.daily_budget > 0.0 && ch.today.spend >= 0.95 * ch.daily_budget),
                daily_budget: ch.daily_budget,
                history,
            };
            let a = AnomalySettings {
                threshold: s.threshold,
                min_change: s.min_change,
                min_impressions: s.guard.min_impressions,
                min_clicks: s.guard.min_clicks,
                min_results: s.guard.min_results,
            };
            let verdicts = match kind {
                RuleKind::Traffic => vec![(super::traffic::RULE, super::traffic::evaluate(&input, &a))],
                _ => anomaly::evaluate(&input, &a),
            };
            for (rule, v) in verdicts {
                // A paused channel has nothing to compare with its baseline: its alerts clear,
                // as its limits do.
                let v = if ch.paused { Some(paused_verdict()) } else { v };
                push(&|| rule.into(), v, &s);
            }
        }

        let s = settings(campaign, plan, RuleKind::Health);
        if s.enabled {
            let (source_rule, reset_rule) = (|| "health".to_string(), || "health: counter reset".to_string());
            let (source, reset) = health(ch, now, &s, (was(&source_rule), was(&reset_rule)));
            push(&source_rule, Some(source), &s);
            let reset_timing = Resolved { timing: Timing { for_ms: 0, keep_firing_for_ms: 0 }, ..s };
            push(&reset_rule, Some(reset), &reset_timing);
        }
    }
    out
}

/// How long past due a task's alert turns critical.
pub const TASK_CRITICAL_AFTER_MS: i64 = crate::domain::time::DAY_MS;

/// The launch checklist's verdicts at `now`: a task not done by its due time fires (warning,
/// critical a day later), with its owner in the summary so that it routes like any alert;
/// done, it resolves. Like the channel rules, a clear verdict is left out unless `listed`
/// (its alert is kept).
pub fn tasks(campaign: &Campaign, now: i64, listed: &dyn Fn(&AlertKey) -> bool) -> Vec<Outcome> {
    let timing = Timing { for_ms: 0, keep_firing_for_ms: 0 };
    let mut out = Vec::new();
    for t in &campaign.tasks {
        let key =
            AlertKey { campaign: campaign.id.clone(), channel: t.channel.clone().unwrap_or_default(), rule: t.rule() };
        let active = t.overdue(now);
        if !active && !listed(&key) {
            continue;
        }
        let due = t.due.format("%-d %b %H:%M");
        let summary = if active {
            format!("task overdue: {} (owner {}, due {due})", t.title, t.owner)
        } else if t.done {
            let by = t.done_by.as_deref().map(|b| format!(", by {b}")).unwrap_or_default();
            format!("task done: {} (owner {}{by})", t.title, t.owner)
        } else {
            format!("task not due yet: {} (owner {}, due {due})", t.title, t.owner)
        };
        // Worded without the time gone by, which would change the alert at every judging.
        let severity = if now - t.due_ms() >= TASK_CRITICAL_AFTER_MS { Severity::Crit } else { Severity::Warn };
        out.push((key, Some(Verdict { active, severity, observed: None, expected: None, summary }), timing));
    }
    out
}

/// The all-clear of a rule over a channel's samples while it is paused.
fn paused_verdict() -> Verdict {
    Verdict {
        active: false,
        severity: Severity::Info,
        observed: None,
        expected: None,
        summary: "channel paused".into(),
    }
}

/// How many times a KPI window is doubled for a quiet channel (3 h to a day by default).
const KPI_WIDENINGS: usize = 3;

/// A channel's counters since `from`: its recent samples, or where the window reaches further
/// back than they do, the whole hours of its history standing in for the older part (the
/// window's edge is then within an hour; the samples alone when an hour is missing).
fn kpi_window(ch: &ChannelInput<'_>, from: i64) -> Counters {
    let reached = ch.recent.first().is_none_or(|(first, _)| *first <= from);
    match ch.history.filter(|_| !reached).and_then(|h| h.reaching_back(ch.recent, from)) {
        Some((_, window)) => window,
        None => Counters::sum(ch.recent.iter().filter(|(at, _)| *at > from).map(|(_, c)| c)),
    }
}

/// Spend against the total budget and time; each goal's progress against its time.
fn pacing_campaign(input: &CampaignInput<'_>, now: i64, s: &Resolved) -> Vec<(String, Option<Verdict>)> {
    let c = input.campaign;
    let tol = s.threshold;
    let mut out = Vec::new();
    let elapsed = c.elapsed(now);
    // Too early to tell, or over.
    let judge = (0.1..1.0).contains(&elapsed);
    let spend = input.totals.spend;
    let budget_verdict = (judge && c.total_budget > 0.0).then(|| {
        let share = spend / c.total_budget;
        let over = share > elapsed + tol;
        let under = share < elapsed - tol;
        let severity = if (share - elapsed).abs() > 2.0 * tol { Severity::Crit } else { Severity::Warn };
        let summary = if over {
            let runs_out = c.start_ms() + ((now - c.start_ms()) as f64 / share) as i64;
            let when = chrono::DateTime::from_timestamp_millis(runs_out)
                .map(|t| t.with_timezone(c.start.offset()).format("%-d %b %H:%M").to_string())
                .unwrap_or_default();
            format!(
                "spend ahead of plan: {} of the budget spent with {} of the time gone; at this pace it runs out {when}",
                percent(share),
                percent(elapsed)
            )
        } else {
            format!(
                "spend {} plan: {} of the budget spent with {} of the time gone",
                if under { "behind" } else { "on" },
                percent(share),
                percent(elapsed)
            )
        };
        Verdict { active: over || under, severity, observed: Some(share), expected: Some((elapsed, tol)), summary }
    });
    out.push(("pacing: budget".to_string(), budget_verdict));
    for g in c.goals.iter().filter(|g| g.metric.is_cumulative()) {
        let e = c.goal_elapsed(g, now);
        let achieved = g.metric.value(&input.totals).unwrap_or(0.0);
        let progress = achieved / g.target;
        let v = ((0.1..1.0).contains(&e)).then(|| {
            let lag = e - progress;
            let severity = if lag > 2.0 * tol { Severity::Crit } else { Severity::Warn };
            Verdict {
                active: lag > tol,
                severity,
                observed: Some(progress),
                expected: Some((e, tol)),
                summary: format!(
                    "{} behind time: {} of {} ({}) with {} of the time gone",
                    g.name.as_deref().unwrap_or(g.metric.label()),
                    g.metric.format(Some(achieved)),
                    g.metric.format(Some(g.target)),
                    percent(progress),
                    percent(e)
                ),
            }
        });
        out.push((format!("pacing: goal {}", g.metric), v));
    }
    out
}

/// A channel whose daily budget is spent long before the day ends loses the rest of the day's
/// traffic (often the evening peak). `was_active`: its alert is pending or firing (a clear
/// verdict is worded only then).
fn daily_budget_gone(c: &Campaign, ch: &ChannelInput<'_>, now: i64, s: &Resolved, was_active: bool) -> Option<Verdict> {
    if ch.daily_budget <= 0.0 {
        return None;
    }
    let day_start = c.day_start_ms(now);
    let day_share = (now - day_start) as f64 / (24 * HOUR_MS) as f64;
    let spent = ch.today.spend / ch.daily_budget;
    let gone = spent >= 0.98;
    // Gone with more than `tol` of the day still ahead (the default: before about 20:24).
    let early = day_share < 1.0 - s.threshold;
    let active = gone && early;
    Some(Verdict {
        active,
        severity: Severity::Warn,
        observed: Some(ch.today.spend),
        expected: Some((ch.daily_budget, 0.0)),
        summary: if active || was_active {
            format!(
                "daily budget spent ({} of {}) with {} of the day ahead; raise it if the results are good",
                Metric::Spend.format(Some(ch.today.spend)),
                Metric::Spend.format(Some(ch.daily_budget)),
                percent(1.0 - day_share)
            )
        } else {
            String::new()
        },
    })
}

/// The source's health, and whether its counters were reset lately. `was_active`: whether
/// each one's alert is pending or firing (a clear verdict is worded only then).
fn health(ch: &ChannelInput<'_>, now: i64, s: &Resolved, was_active: (bool, bool)) -> (Verdict, Verdict) {
    let severity = match ch.health {
        Health::Failing | Health::BadData | Health::Unauthorized | Health::Retired => Severity::Crit,
        _ => Severity::Warn,
    };
    let failing_enough = ch.health != Health::Failing || f64::from(ch.failures) >= s.threshold;
    let active = ch.health.severity() >= Health::Stale.severity() && failing_enough;
    let summary = match ch.last_error {
        _ if !active && !was_active.0 => String::new(),
        Some(e) => format!("source {}: {e}", ch.health.label()),
        None => format!("source {}", ch.health.label()),
    };
    let source = Verdict { active, severity, observed: None, expected: None, summary };
    let reset_at = ch.last_reset_ms.filter(|at| now - at < 30 * MINUTE_MS);
    let reset = Verdict {
        active: reset_at.is_some(),
        severity: Severity::Info,
        observed: None,
        expected: None,
        summary: if reset_at.is_some() || was_active.1 {
            "counters went backwards (a reset at the source); the next reading restarts the series".into()
        } else {
            String::new()
        },
    };
    (source, reset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::Format;

    fn campaign(extra: &str) -> Campaign {
        let text = format!(
            r#"
id = "c"
name = "C"
start = "2026-06-01T00:00:00+08:00"
end = "2026-06-11T00:00:00+08:00"
total_budget = 10000.0
kpis = ["cpl <= 100"]
{extra}
[[goals]]
metric = "leads"
target = 1000

[[channels]]
id = "a"
name = "A"
source = "http://127.0.0.1:1/stats"
daily_budget = 1000.0
"#
        );
        Campaign::parse(&text, Format::Toml, "c.toml").unwrap()
    }

    fn input<'a>(recent: &'a Recent) -> ChannelInput<'a> {
        ChannelInput { daily_budget: 1000.0, ..ChannelInput::new("a", recent) }
    }

    fn find<'a>(out: &'a [Outcome], rule: &str) -> Option<&'a Outcome> {
        out.iter().find(|(k, _, _)| k.rule == rule)
    }

    #[test]
    fn a_task_fires_when_overdue_turns_critical_a_day_later_and_resolves_when_done() {
        let mut c =
            campaign("[[tasks]]\ntitle = \"Pixel verified\"\nowner = \"ana\"\ndue = \"2026-06-02T10:00:00+08:00\"\n");
        let due = c.tasks[0].due_ms();
        let kept = |_: &AlertKey| false;
        assert!(tasks(&c, due, &kept).is_empty(), "on time: nothing, and no key");
        let out = tasks(&c, due + MINUTE_MS, &kept);
        let (key, v, timing) = &out[0];
        assert_eq!((key.channel.as_str(), key.rule.as_str()), ("", "task: Pixel verified"));
        let v = v.as_ref().unwrap();
        assert!(v.active && v.severity == Severity::Warn && timing.for_ms == 0);
        assert_eq!(v.summary, "task overdue: Pixel verified (owner ana, due 2 Jun 10:00)");
        // The same words an hour later: the alert is not rewritten at each judging.
        assert_eq!(tasks(&c, due + HOUR_MS, &kept)[0].1.as_ref().unwrap().summary, v.summary);
        let late = tasks(&c, due + TASK_CRITICAL_AFTER_MS, &kept);
        assert_eq!(late[0].1.as_ref().unwrap().severity, Severity::Crit);
        assert!(c.set_task_done(0, true, "bo", due + 2 * HOUR_MS));
        assert!(tasks(&c, due + 3 * HOUR_MS, &kept).is_empty(), "done, and never fired: nothing");
        let out = tasks(&c, due + 3 * HOUR_MS, &|_| true);
        let v = out[0].1.as_ref().unwrap();
        assert!(!v.active && v.summary == "task done: Pixel verified (owner ana, by bo)", "{v:?}");
    }

    #[test]
    fn a_limit_on_a_counter_the_source_does_not_read_is_not_judged() {
        let c = campaign("");
        let now = c.start_ms() + 24 * HOUR_MS;
        let recent = [(now - MINUTE_MS, Counters { leads: 12, spend: 2400.0, ..Counters::default() })];
        let recent = Recent::from_entries(recent, 100);
        let judge = |unmapped: u8| {
            evaluate(
                &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
                &[ChannelInput { unmapped, ..input(&recent) }],
                now,
                &|_| false,
                &|_| true,
            )
        };
        assert!(find(&judge(0), "kpi: cpl <= 100").is_some_and(|(_, v, _)| v.as_ref().is_some_and(|v| v.active)));
        // The source reads no leads: a CPL of 2,400 / 0 is unknown, never a breach.
        let leads = 1 << crate::domain::source::COUNTERS.iter().position(|c| *c == "leads").unwrap();
        assert!(find(&judge(leads), "kpi: cpl <= 100").is_none());
    }

    #[test]
    fn file_settings_override_the_defaults() {
        let c = campaign("[alerts.kpi]\nfor = \"5m\"\nseverity = \"crit\"\nmin_results = 3\n");
        let s = settings(&c, c.channel("a"), RuleKind::Kpi);
        assert_eq!(s.timing.for_ms, 5 * MINUTE_MS);
        assert_eq!(s.timing.keep_firing_for_ms, 30 * MINUTE_MS);
        assert_eq!(s.guard.min_results, 3);
        let now = c.start_ms() + 24 * HOUR_MS;
        // 12 leads for 2,400: CPL 200 > 100, surely (P > 0.99), reported as the file's crit.
        let recent = [(now - MINUTE_MS, Counters { leads: 12, spend: 2400.0, ..Counters::default() })];
        let out = evaluate(
            &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
            &[input(&Recent::from_entries(recent, 100))],
            now,
            &|_| false,
            &|_| true,
        );
        let (_, v, t) = find(&out, "kpi: cpl <= 100").unwrap();
        let v = v.as_ref().unwrap();
        assert!(v.active);
        assert_eq!(v.severity, Severity::Crit);
        assert_eq!(t.for_ms, 5 * MINUTE_MS);
    }

    #[test]
    fn a_kpi_window_longer_than_the_recent_samples_reaches_into_the_hours_before() {
        let c = campaign("");
        let now = c.start_ms() + 24 * HOUR_MS;
        // The last 30 minutes: 10 leads for 900 (CPL 90, within 100); the hours before them,
        // in the history: 20 leads for 4,400. Over the 3-hour window: CPL 176.67, surely over.
        let lead = |leads, spend| Counters { leads, spend, ..Counters::default() };
        let minute = |m: i64| (now - 30 * MINUTE_MS + m * MINUTE_MS, lead(u64::from(m % 3 == 0), 30.0));
        let recent = Recent::from_entries((1..=30).map(minute), 120);
        let mut history = HourlyHistory::default();
        for (at, c) in recent.iter() {
            history.push(*at, c);
        }
        history.push(now - 3 * HOUR_MS + 1, &lead(8, 2000.0));
        history.push(now - 2 * HOUR_MS + 1, &lead(12, 2400.0));
        let judge = |history| {
            let out = evaluate(
                &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
                &[ChannelInput { history, ..input(&recent) }],
                now,
                &|_| false,
                &|_| true,
            );
            find(&out, "kpi: cpl <= 100").unwrap().1.clone().unwrap()
        };
        let v = judge(Some(&history));
        assert!(v.active && v.observed.is_some_and(|o| (o - 5300.0 / 30.0).abs() < 1e-9), "{v:?}");
        assert!(!judge(None).active, "the recent samples alone are within the limit");
        // Between judgements of the windows, only the source's health is judged.
        let out = evaluate(
            &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
            &[ChannelInput { history: Some(&history), windows: false, ..input(&recent) }],
            now,
            &|_| true,
            &|_| true,
        );
        let rules: Vec<&str> =
            out.iter().filter(|(k, _, _)| !k.channel.is_empty()).map(|(k, _, _)| k.rule.as_str()).collect();
        assert_eq!(rules, ["health", "health: counter reset"]);
    }

    #[test]
    fn a_quiet_channel_is_judged_over_a_window_that_holds_the_limits_worth() {
        let c = campaign("");
        let now = c.start_ms() + 24 * HOUR_MS;
        // Hourly rows, 200 spent an hour. The last 3 hours: 2 leads for 600, CPL 300 and on
        // its own "likely" over 100 (P 0.96); but 600 buys only 6 leads at the limit, short of
        // the 10 a verdict needs, so the window doubles to 6 hours.
        let judge = |before: [u64; 3]| {
            let leads = [1, 0, 1, before[0], before[1], before[2], 0];
            let rows = (0..7)
                .rev()
                .map(|k| (now - k as i64 * HOUR_MS, Counters { leads: leads[k], spend: 200.0, ..Counters::default() }));
            let recent = Recent::from_entries(rows, 120);
            let out = evaluate(
                &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
                &[input(&recent)],
                now,
                &|_| false,
                &|_| true,
            );
            find(&out, "kpi: cpl <= 100").unwrap().1.clone().unwrap()
        };
        let lead = Counters { leads: 2, spend: 600.0, ..Counters::default() };
        assert!(crate::alert::evidence::p_breach(&c.kpis[0], &lead).unwrap() > 0.95);
        // The 3 hours before: 10 leads. Over 6 hours, CPL 100: nothing to say.
        let v = judge([4, 3, 3]);
        assert!(!v.active && v.observed == Some(100.0), "{v:?}");
        // The 3 hours before as bad: 4 leads for 1,200 over 6 hours, surely over.
        let v = judge([1, 0, 1]);
        assert!(v.active && v.observed == Some(300.0), "{v:?}");
        assert!(v.summary.contains("over 6h: 4 leads"), "{}", v.summary);
    }

    #[test]
    fn disabled_rules_are_not_evaluated() {
        let c = campaign("[alerts.kpi]\nenabled = false\n");
        let recent = [(c.start_ms() + HOUR_MS, Counters { leads: 40, spend: 8000.0, ..Counters::default() })];
        let out = evaluate(
            &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
            &[input(&Recent::from_entries(recent, 100))],
            c.start_ms() + 2 * HOUR_MS,
            &|_| false,
            &|_| true,
        );
        assert!(find(&out, "kpi: cpl <= 100").is_none());
        assert!(find(&out, "health").is_some());
    }

    #[test]
    fn pacing_flags_overspend_and_a_lagging_goal() {
        let c = campaign("");
        // 40 % of the time gone.
        let now = c.start_ms() + 4 * 24 * HOUR_MS;
        let totals = Counters { leads: 200, spend: 7000.0, ..Counters::default() };
        let out = evaluate(&CampaignInput { campaign: &c, totals, has_data: true }, &[], now, &|_| false, &|_| true);
        let budget = find(&out, "pacing: budget").unwrap().1.as_ref().unwrap();
        assert!(budget.active && budget.summary.contains("runs out"), "{}", budget.summary);
        let goal = find(&out, "pacing: goal leads").unwrap().1.as_ref().unwrap();
        assert!(goal.active, "20 % of the leads with 40 % of the time gone: {}", goal.summary);
        // On plan: nothing.
        let totals = Counters { leads: 420, spend: 4100.0, ..Counters::default() };
        let out = evaluate(&CampaignInput { campaign: &c, totals, has_data: true }, &[], now, &|_| false, &|_| true);
        assert!(out.iter().all(|(_, v, _)| v.as_ref().is_none_or(|v| !v.active)));
    }

    #[test]
    fn a_daily_budget_gone_by_the_afternoon_is_flagged() {
        let c = campaign("");
        let day = c.day_start_ms(c.start_ms() + 3 * 24 * HOUR_MS);
        let none = Recent::default();
        let mut ch = input(&none);
        ch.today = Counters { spend: 1000.0, ..Counters::default() };
        let at = |h: i64| {
            evaluate(
                &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
                std::slice::from_ref(&ch),
                day + h * HOUR_MS,
                &|_| false,
                &|_| true,
            )
        };
        let afternoon = at(15);
        assert!(find(&afternoon, "pacing: daily budget").unwrap().1.as_ref().unwrap().active);
        let late = at(23);
        assert!(!find(&late, "pacing: daily budget").unwrap().1.as_ref().unwrap().active);
    }

    #[test]
    fn health_waits_for_the_configured_failures_and_flags_resets() {
        let c = campaign("[alerts.health]\nthreshold = 3\n");
        let now = c.start_ms() + HOUR_MS;
        let none = Recent::default();
        let mut ch = input(&none);
        ch.health = Health::Failing;
        ch.failures = 2;
        ch.last_reset_ms = Some(now - 5 * MINUTE_MS);
        let out = evaluate(
            &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
            std::slice::from_ref(&ch),
            now,
            &|_| false,
            &|_| true,
        );
        assert!(!find(&out, "health").unwrap().1.as_ref().unwrap().active);
        assert!(find(&out, "health: counter reset").unwrap().1.as_ref().unwrap().active);
        ch.failures = 3;
        let out = evaluate(
            &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
            std::slice::from_ref(&ch),
            now,
            &|_| false,
            &|_| true,
        );
        assert!(find(&out, "health").unwrap().1.as_ref().unwrap().active);
    }

    /// A source down 15 s and up 40 s, three times over, pages no one; one down for 3 minutes
    /// fires once, and a flap back within 5 minutes of its recovery stays that one incident.
    #[test]
    fn a_flapping_source_makes_no_page_and_an_outage_one_incident() {
        use super::super::state::{Transition, step_all};
        let c = campaign("");
        let start = c.start_ms() + HOUR_MS;
        let none = Recent::default();
        let mut alerts = std::collections::BTreeMap::new();
        // (down?, from, to) in seconds after `start`, judged every 5 s as the engine does.
        let run = |spans: &[(bool, i64, i64)], alerts: &mut std::collections::BTreeMap<_, _>| {
            let mut moves = Vec::new();
            let mut failures = 0u32;
            for (down, from, to) in spans {
                for s in (*from..*to).step_by(5) {
                    let now = start + s * 1_000;
                    failures = if *down { failures + 1 } else { 0 };
                    let mut ch = input(&none);
                    ch.health = if *down { Health::Failing } else { Health::Ok };
                    ch.failures = failures;
                    ch.last_error = down.then_some("connection refused");
                    let active = |k: &AlertKey| {
                        alerts.get(k).is_some_and(|a: &super::super::state::Alert| {
                            a.state != super::super::state::AlertState::Resolved
                        })
                    };
                    let out = evaluate(
                        &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
                        std::slice::from_ref(&ch),
                        now,
                        &active,
                        &|_| true,
                    );
                    let health: Vec<_> = out.into_iter().filter(|(k, _, _)| k.rule == "health").collect();
                    moves.extend(step_all(alerts, health, now).into_iter().map(|m| m.transition));
                }
            }
            moves
        };
        let moves = run(
            &[(true, 0, 15), (false, 15, 55), (true, 55, 70), (false, 70, 110), (true, 110, 125), (false, 125, 400)],
            &mut alerts,
        );
        assert!(!moves.contains(&Transition::Fired), "{moves:?}");
        alerts.clear();
        let moves =
            run(&[(true, 1000, 1180), (false, 1180, 1300), (true, 1300, 1500), (false, 1500, 2200)], &mut alerts);
        let fired = moves.iter().filter(|m| **m == Transition::Fired).count();
        let resolved = moves.iter().filter(|m| **m == Transition::Resolved).count();
        assert_eq!((fired, resolved), (1, 1), "{moves:?}");
    }

    #[test]
    fn clear_verdicts_of_channels_without_alerts_are_left_out() {
        let c = campaign("");
        let now = c.start_ms() + 24 * HOUR_MS;
        let judge = |recent: &[(i64, Counters)], listed: bool| {
            evaluate(
                &CampaignInput { campaign: &c, totals: Counters::default(), has_data: true },
                &[input(&Recent::from_entries(recent.iter().copied(), 100))],
                now,
                &|_| false,
                &|_| listed,
            )
        };
        // CPL 50 within 100, a healthy source: nothing to say about a channel with no alerts.
        let fine = [(now - MINUTE_MS, Counters { leads: 40, spend: 2000.0, ..Counters::default() })];
        assert!(judge(&fine, false).iter().all(|(k, _, _)| k.channel.is_empty()), "{:?}", judge(&fine, false));
        let kept = judge(&fine, true);
        let (_, v, _) = find(&kept, "kpi: cpl <= 100").unwrap();
        assert!(!v.as_ref().unwrap().active, "a channel with alerts hears the all-clear");
        // A breach is reported either way, worded.
        let bad = [(now - MINUTE_MS, Counters { leads: 12, spend: 2400.0, ..Counters::default() })];
        let (_, v, _) = find(&judge(&bad, false), "kpi: cpl <= 100").cloned().unwrap();
        let v = v.unwrap();
        assert!(v.active && v.summary.contains("CPL"), "{}", v.summary);
    }
}
