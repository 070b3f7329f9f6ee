//! The review report (复盘) of a campaign or a period of it: goals against achieved and against
//! time, spend against budget, KPIs per channel and per segment, the funnel, the alerts raised
//! and how long they fired, the actions taken with their measured effect, the notes, and the
//! comparison with the previous comparable campaign. Built once from the store into `Review`,
//! whose numbers are rounded to the cent here, so that every format prints the same figures.
//!
//! **Review report (复盘)** — `cockpit report ID [--format md|html|csv|json] [--from T] [--to T]
//! [-o FILE]` (T: RFC 3339 or a date, midnight in the campaign's zone): goals against achieved and
//! against time, spend against budget and pacing, KPI limits, the channel table, the funnel,
//! segments, spend and results by day, the alerts and how long they fired, the actions from the
//! journal with the channel's cost per result and results per day 24 h before and after, the
//! notes, and where the campaign stood against the previous comparable one on the same day. HTML
//! is one file with inline CSS and SVG charts (goal vs target pace vs last campaign, spend per
//! day vs plan), no scripts and no external resources. All formats print the same figures,
//! rounded to the cent once when the review is built (`tests/report.rs` checks it and keeps a
//! golden file per format). To look at the HTML as a browser draws it:
//!
//! ```sh
//! cargo run --release -- demo --db /tmp/demo.db      # q after a minute
//! cargo run --release -- report 618-promo --db /tmp/demo.db --format html -o /tmp/review.html
//! chromium --headless --no-sandbox --screenshot=/tmp/review.png --window-size=1200,2400 file:///tmp/review.html
//! ```
//!
//! `tests/render-report.sh [OUT.png]` does all of it. (CJK names need a CJK font on the machine that renders it, e.g. Debian's `fonts-noto-cjk`.)

mod html;
mod tables;
mod text;

use crate::analyze::data::{self, against_days, campaign_days, segment_metric};
use crate::analyze::notes::alert_runs;
use crate::analyze::{FunnelStep, SegmentRow, Span, cumulative, funnel, partial_last_day, segments};
use crate::domain::ChannelKey;
use crate::domain::NoteKind;
use crate::domain::time::DAY_MS;
use crate::domain::{Campaign, Counters, Metric, SegmentCounters};
use crate::optimize::journal::Outcome;
use crate::store::Store;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Csv,
    Json,
}

/// Other costs over a period: by-the-day ones for its days, one-off ones when it starts
/// with the campaign.
fn other_costs(c: &Campaign, span: Span) -> Option<f64> {
    (!c.costs.is_empty()).then(|| {
        let sum: f64 = c
            .costs
            .iter()
            .map(|k| match k.per {
                Some(_) => k.so_far(c, span.to) - k.so_far(c, span.from),
                None if span.from <= c.start_ms() => k.amount,
                None => 0.0,
            })
            .sum();
        (sum * 100.0).round() / 100.0
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub campaign: String,
    pub name: String,
    pub currency: String,
    pub tags: Vec<String>,
    /// The campaign's run and the period reviewed (RFC 3339, campaign time zone).
    pub start: String,
    pub end: String,
    /// Local days the campaign runs, launch day included.
    pub campaign_days: usize,
    pub from: String,
    pub to: String,
    /// Share of the campaign's time gone at the end of the period.
    pub elapsed: f64,
    pub goals: Vec<GoalRow>,
    pub spend: f64,
    pub budget: f64,
    /// Spend against the budget for the time gone (1 = on plan).
    pub pacing: Option<f64>,
    pub kpis: Vec<KpiRow>,
    pub totals: Counters,
    pub channels: Vec<ChannelRow>,
    pub segment_metric: Metric,
    /// Over the period (whole hours), or the whole run.
    pub segments: Vec<SegmentRow>,
    pub funnel: Vec<FunnelRow>,
    pub days: Vec<DayRow>,
    pub alerts: Vec<AlertRow>,
    pub actions: Vec<ActionRow>,
    pub notes: Vec<NoteRow>,
    pub previous: Option<Previous>,
    /// The campaign's costs besides media spend over the period, where it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_costs: Option<f64>,
    /// The campaign's gross margin, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gross_margin: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalRow {
    pub name: String,
    pub metric: Metric,
    pub target: f64,
    pub achieved: f64,
    pub progress: f64,
    /// Share of the goal's time gone at the end of the period.
    pub elapsed: f64,
    pub verdict: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiRow {
    pub limit: String,
    pub metric: Metric,
    pub value: Option<f64>,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelRow {
    pub id: String,
    pub name: String,
    pub counters: Counters,
    /// (metric, value) for each metric of `Review::metrics()`.
    pub kpis: Vec<(Metric, Option<f64>)>,
    /// Limits the channel breaks over the period.
    pub breaches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelRow {
    pub channel: String,
    pub steps: Vec<FunnelStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    /// 1 = launch day.
    pub day: usize,
    pub date: String,
    pub counters: Counters,
    /// The day was still under way at the end of the review: its figures are not final.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub channel: Option<String>,
    pub rule: String,
    pub fired: String,
    pub resolved: Option<String>,
    /// Minutes it fired (until the end of the period when still firing).
    pub minutes: i64,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRow {
    pub id: u64,
    pub at: String,
    pub by: String,
    pub change: String,
    pub outcome: String,
    pub recommendation: Option<String>,
    /// The channel's cost per result over the 24 h before and after (as far as data goes).
    pub metric: Metric,
    pub before: Option<f64>,
    pub after: Option<f64>,
    /// Results per day before and after.
    pub results_before: Option<f64>,
    pub results_after: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoteRow {
    pub at: String,
    pub channel: Option<String>,
    pub by: String,
    pub text: String,
}

/// Where this campaign stood against the previous comparable one on the same day since
/// launch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Previous {
    pub name: String,
    pub day: usize,
    pub metric: Metric,
    pub this: Option<f64>,
    pub that: Option<f64>,
    pub change: Option<f64>,
    /// Cumulative goal metric per day since launch: (this, that).
    pub series: Vec<(Option<f64>, Option<f64>)>,
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Rounds a KPI to what the report prints: rates to 4 decimals (0.01 %), the rest to cents.
fn round_kpi(m: Metric, v: Option<f64>) -> Option<f64> {
    v.map(|v| match m.unit() {
        crate::domain::metrics::Unit::Percent => (v * 10_000.0).round() / 10_000.0,
        _ => cents(v),
    })
}

fn round_counters(c: Counters) -> Counters {
    Counters { spend: cents(c.spend), revenue: cents(c.revenue), ..c }
}

/// The time of the latest reading of any of the campaign's channels.
fn data_end(store: &Store, c: &Campaign) -> crate::store::Result<Option<i64>> {
    let mut end = None;
    for ch in &c.channels {
        if let Some(cur) = store.cursor(&ChannelKey::new(&c.id, &ch.id))?.filter(|cur| cur.at > 0) {
            end = Some(end.map_or(cur.at, |e: i64| e.max(cur.at)));
        }
    }
    Ok(end)
}

/// The metric results are counted in: leads when a goal is on leads, else conversions.
fn result_metric(c: &Campaign) -> Metric {
    if c.goals.iter().any(|g| g.metric == Metric::Leads) { Metric::Leads } else { Metric::Conversions }
}

fn cost_metric(c: &Campaign) -> Metric {
    if result_metric(c) == Metric::Leads { Metric::Cpl } else { Metric::Cpa }
}

/// Builds the review of `c` over `[from, to)` (the campaign's run up to its latest data by
/// default). `all` are the stored campaigns, for the comparison with an earlier one.
pub fn build(
    store: &Store,
    c: &Campaign,
    all: &[Campaign],
    from: Option<i64>,
    to: Option<i64>,
) -> crate::store::Result<Review> {
    let last = data_end(store, c)?.unwrap_or(c.start_ms());
    let to = to.unwrap_or(last).min(c.end_ms() + 1).max(c.start_ms());
    let from = from.unwrap_or(c.start_ms()).clamp(c.start_ms(), to);
    let span = Span { from, to };
    let ts = |ms: i64| stamp(c, ms);
    // The whole run: the cursors' totals (they include the first reading, which no hour
    // holds); a period: the hours and samples within it.
    let whole = from == c.start_ms() && to >= last;
    let (channels, all_segments) = channel_rows(store, c, span, whole)?;
    let totals = round_counters(Counters::sum(channels.iter().map(|r| &r.counters)));
    let elapsed = c.elapsed(to);
    let seg_metric = segment_metric(c);
    let funnel_rows = std::iter::once(("all channels".to_string(), totals))
        .chain(channels.iter().map(|r| (r.name.clone(), r.counters)))
        .map(|(channel, counters)| FunnelRow { channel, steps: funnel(&counters, &totals) })
        .collect();
    let days_all = campaign_days(store, c, to)?;
    let notes = store.notes(Some(&c.id))?;
    let in_span = |t: i64| t >= from && t <= to;
    let note_rows = notes
        .iter()
        .filter(|n| n.kind == NoteKind::Note && in_span(n.at_ms))
        .map(|n| NoteRow { at: ts(n.at_ms), channel: n.channel.clone(), by: n.by.clone(), text: n.text.clone() })
        .collect();
    Ok(Review {
        campaign: c.id.clone(),
        name: c.name.clone(),
        currency: c.currency.clone(),
        tags: c.tags.clone(),
        start: ts(c.start_ms()),
        end: ts(c.end_ms()),
        campaign_days: ((c.day_start_ms(c.end_ms() - 1) - c.day_start_ms(c.start_ms())) / DAY_MS + 1).max(1) as usize,
        from: ts(from),
        to: ts(to),
        elapsed: (elapsed * 10_000.0).round() / 10_000.0,
        goals: goal_rows(c, &totals, to),
        spend: totals.spend,
        budget: c.total_budget,
        pacing: crate::domain::pacing(totals.spend, c.total_budget, elapsed).map(|p| (p * 100.0).round() / 100.0),
        kpis: kpi_rows(c, &totals),
        totals,
        channels,
        segment_metric: seg_metric,
        segments: segment_rows(&all_segments, seg_metric),
        funnel: funnel_rows,
        days: day_rows(c, &days_all, span),
        alerts: alert_rows(c, &notes, span),
        actions: action_rows(store, c, span)?,
        notes: note_rows,
        previous: previous(store, c, all, &days_all, to)?,
        other_costs: other_costs(c, span),
        gross_margin: c.gross_margin,
    })
}

/// A time as the review prints it: RFC 3339 in the campaign's time zone, to the second.
fn stamp(c: &Campaign, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.with_timezone(c.start.offset()).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Each channel's counters over the span (the cursors' totals over the whole run), its derived
/// KPIs and the limits it breaks; and every channel's segment counters.
fn channel_rows(
    store: &Store,
    c: &Campaign,
    span: Span,
    whole: bool,
) -> crate::store::Result<(Vec<ChannelRow>, Vec<SegmentCounters>)> {
    let mut channels = Vec::new();
    let mut all_segments = Vec::new();
    // The counters are shown beside them: only the derived KPIs here.
    let metrics: Vec<Metric> = crate::analyze::campaign_metrics(c).into_iter().filter(|m| !m.is_cumulative()).collect();
    for ch in &c.channels {
        let key = ChannelKey::new(&c.id, &ch.id);
        let counters = match store.cursor(&key)? {
            Some(cursor) if whole => cursor.totals,
            _ => data::window(store, &key, span)?,
        };
        all_segments.extend(data::channel_segments(store, &key, span, whole)?);
        let counters = round_counters(counters);
        // A metric of a counter the source does not read is unknown: no value, no breach.
        let unmapped = ch.unmapped();
        let value = |m: Metric| m.value(&counters).filter(|_| m.measured_without(unmapped));
        let breaches =
            c.kpis.iter().filter(|k| value(k.metric).is_some_and(|v| !k.holds(v))).map(|k| k.to_string()).collect();
        channels.push(ChannelRow {
            id: ch.id.clone(),
            name: ch.name.clone(),
            kpis: metrics.iter().map(|m| (*m, round_kpi(*m, value(*m)))).collect(),
            counters,
            breaches,
        });
    }
    Ok((channels, all_segments))
}

/// Each goal's progress at `to` against the share of its time gone.
fn goal_rows(c: &Campaign, totals: &Counters, to: i64) -> Vec<GoalRow> {
    c.goals
        .iter()
        .map(|g| {
            let achieved = round_kpi(g.metric, g.metric.value(totals)).unwrap_or(0.0);
            let progress = if g.target > 0.0 { achieved / g.target } else { 0.0 };
            let gone = c.goal_elapsed(g, to);
            let higher = g.metric.higher_is_better();
            let verdict = match (progress >= 1.0, progress >= gone) {
                (true, _) if higher => "reached",
                (false, true) => "on pace",
                _ if !higher => "check",
                _ => "behind",
            };
            GoalRow {
                name: g.name.clone().unwrap_or_else(|| format!("{} {}", g.metric.label(), g.target)),
                metric: g.metric,
                target: g.target,
                achieved,
                progress: (progress * 10_000.0).round() / 10_000.0,
                elapsed: (gone * 10_000.0).round() / 10_000.0,
                verdict,
            }
        })
        .collect()
}

fn kpi_rows(c: &Campaign, totals: &Counters) -> Vec<KpiRow> {
    c.kpis
        .iter()
        .map(|k| {
            let value = round_kpi(k.metric, k.metric.value(totals));
            KpiRow { limit: k.to_string(), metric: k.metric, value, met: value.map(|v| k.holds(v)) }
        })
        .collect()
}

/// The segments judged on `metric`, rounded as the review prints them.
fn segment_rows(all: &[SegmentCounters], metric: Metric) -> Vec<SegmentRow> {
    segments(all, metric)
        .into_iter()
        .map(|mut s| {
            s.counters = round_counters(s.counters);
            s.kpi = round_kpi(metric, s.kpi);
            s.average = round_kpi(metric, s.average);
            s.spend_share = (s.spend_share * 10_000.0).round() / 10_000.0;
            s.score = (s.score * 100.0).round() / 100.0;
            s
        })
        .collect()
}

/// The campaign's days that overlap the span, numbered from launch.
fn day_rows(c: &Campaign, days: &[Counters], span: Span) -> Vec<DayRow> {
    let first_day = c.day_start_ms(c.start_ms());
    days.iter()
        .enumerate()
        .filter(|(d, _)| {
            let start = first_day + *d as i64 * DAY_MS;
            start + DAY_MS > span.from && start < span.to
        })
        .map(|(d, counters)| DayRow {
            day: d + 1,
            date: chrono::DateTime::from_timestamp_millis(first_day + d as i64 * DAY_MS + 1)
                .map(|t| t.with_timezone(c.start.offset()).format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            counters: round_counters(*counters),
            partial: first_day + (d as i64 + 1) * DAY_MS > span.to,
        })
        .collect()
}

/// The alerts that fired or resolved within the span, from the alert notes.
fn alert_rows(c: &Campaign, notes: &[crate::domain::Note], span: Span) -> Vec<AlertRow> {
    let in_span = |t: i64| t >= span.from && t <= span.to;
    alert_runs(notes)
        .into_iter()
        .filter(|r| in_span(r.fired_ms) || r.resolved_ms.is_some_and(in_span))
        .map(|r| AlertRow {
            minutes: (r.resolved_ms.unwrap_or(span.to).min(span.to) - r.fired_ms.max(span.from)).max(0) / 60_000,
            fired: stamp(c, r.fired_ms),
            resolved: r.resolved_ms.map(|t| stamp(c, t)),
            channel: r.channel,
            rule: r.rule,
            summary: r.summary,
        })
        .collect()
}

/// The actions sent within the span, with the channel's cost per result and results per day
/// in the day before and (when applied) the day after.
fn action_rows(store: &Store, c: &Campaign, span: Span) -> crate::store::Result<Vec<ActionRow>> {
    let cost = cost_metric(c);
    let result = result_metric(c);
    let in_span = |t: i64| t >= span.from && t <= span.to;
    let mut actions = Vec::new();
    for e in store.journal()?.into_iter().filter(|e| e.campaign == c.id && in_span(e.at_ms)) {
        let key = ChannelKey::new(&c.id, &e.change.channel);
        let before = data::window(store, &key, Span { from: (e.at_ms - DAY_MS).max(c.start_ms()), to: e.at_ms })?;
        let after_span = Span { from: e.at_ms, to: (e.at_ms + DAY_MS).min(span.to) };
        let after = data::window(store, &key, after_span)?;
        let per_day = |x: &Counters, len: i64| {
            (len > 0).then(|| cents(result.value(x).unwrap_or(0.0) * DAY_MS as f64 / len as f64))
        };
        let applied = matches!(e.outcome, Outcome::Applied { .. });
        actions.push(ActionRow {
            id: e.id,
            at: stamp(c, e.at_ms),
            by: e.by.clone(),
            change: e.change.describe(),
            outcome: e.outcome.label(),
            recommendation: e.recommendation.clone(),
            metric: cost,
            before: round_kpi(cost, cost.value(&before)),
            after: if applied { round_kpi(cost, cost.value(&after)) } else { None },
            results_before: per_day(&before, e.at_ms - (e.at_ms - DAY_MS).max(c.start_ms())),
            results_after: if applied { per_day(&after, after_span.len()) } else { None },
        });
    }
    Ok(actions)
}

fn previous(
    store: &Store,
    c: &Campaign,
    all: &[Campaign],
    days: &[Counters],
    to: i64,
) -> crate::store::Result<Option<Previous>> {
    let refs: Vec<&Campaign> = all.iter().collect();
    let Some((_, name, that)) = against_days(store, c, &refs, 0, to, &mut Default::default())? else {
        return Ok(None);
    };
    let part = if to >= c.end_ms() { 1.0 } else { (to - c.day_start_ms(to)) as f64 / DAY_MS as f64 };
    let that = cumulative(&partial_last_day(&that, days.len(), part));
    let this = cumulative(days);
    let metric = c.goals.iter().map(|g| g.metric).find(|m| m.is_cumulative()).unwrap_or(result_metric(c));
    let v = |x: Option<&Counters>| round_kpi(metric, x.and_then(|x| metric.value(x)));
    let day = this.len();
    let (a, b) = (v(this.last()), v(that.get(day.saturating_sub(1))));
    let change = match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(((a - b) / b * 10_000.0).round() / 10_000.0),
        _ => None,
    };
    let len = this.len().max(that.len());
    let series = (0..len).map(|d| (v(this.get(d)), v(that.get(d)))).collect();
    Ok(Some(Previous { name, day, metric, this: a, that: b, change, series }))
}

/// The review in the chosen format.
pub fn render(r: &Review, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(r).expect("a review serialises") + "\n",
        ReportFormat::Md => text::markdown(r),
        ReportFormat::Csv => text::csv(r),
        ReportFormat::Html => html::html(r),
    }
}
