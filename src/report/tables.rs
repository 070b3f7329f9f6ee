//! The review as tables: each section once, with its cells' text (as Markdown and HTML show
//! it), their plain numbers (as CSV gives them) and their tone. Every format renders these, so
//! no figure can differ between them.

use super::Review;
use crate::domain::format::{change, count, money_cents, percent_1, percent_2};
use crate::domain::metrics::Unit;
use crate::domain::{Counters, Metric};

/// A value as the report prints it: money with cents and grouping, rates in percent with two
/// decimals, counts grouped.
pub fn show(m: Metric, v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    match m.unit() {
        Unit::Count => count(v.round() as i64),
        Unit::Money => money_cents(v),
        Unit::Percent => percent_2(v),
        Unit::Ratio => format!("{v:.2}×"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Bad,
    Strong,
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    /// The plain number behind the text, for CSV.
    pub value: Option<f64>,
    pub tone: Tone,
}

impl Cell {
    fn text(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), value: None, tone: Tone::Plain }
    }

    fn num(m: Metric, v: Option<f64>) -> Cell {
        Cell { text: show(m, v), value: v, tone: Tone::Plain }
    }

    fn money(v: f64) -> Cell {
        Cell { text: money_cents(v), value: Some(v), tone: Tone::Plain }
    }

    fn count(v: u64) -> Cell {
        Cell { text: count(v as i64), value: Some(v as f64), tone: Tone::Plain }
    }

    fn share(v: f64) -> Cell {
        Cell { text: percent_1(v), value: Some(v), tone: Tone::Plain }
    }

    fn tone(self, tone: Tone) -> Cell {
        Cell { tone, ..self }
    }
}

pub struct Column {
    pub label: String,
    /// The CSV field name (for the first column: given only when it says more than the item).
    pub field: String,
    pub numeric: bool,
}

fn col(label: &str, field: &str, numeric: bool) -> Column {
    Column { label: label.into(), field: field.into(), numeric }
}

pub struct Row {
    /// What the row is about, for CSV (an id where there is one).
    pub item: String,
    /// One per column; the first names the row.
    pub cells: Vec<Cell>,
}

pub struct Table {
    /// The CSV section.
    pub key: &'static str,
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// Said instead of an empty table.
    pub empty: &'static str,
}

fn counter_cells(c: &Counters) -> Vec<Cell> {
    vec![
        Cell::money(c.spend),
        Cell::count(c.impressions),
        Cell::count(c.clicks),
        Cell::count(c.leads),
        Cell::count(c.conversions),
        Cell::money(c.revenue),
    ]
}

fn counter_columns() -> Vec<Column> {
    ["spend", "impressions", "clicks", "leads", "conversions", "revenue"].iter().map(|f| col(f, f, true)).collect()
}

fn verdict(outlier: bool, score: f64) -> Cell {
    match (outlier, score < 0.0) {
        (true, true) => Cell::text("far worse").tone(Tone::Bad),
        (true, false) => Cell::text("far better").tone(Tone::Good),
        _ => Cell::text(""),
    }
}

/// The review's sections, in the order every format prints them.
pub fn tables(r: &Review) -> Vec<Table> {
    vec![
        summary(r),
        goals(r),
        kpi_limits(r),
        channels(r),
        funnel(r),
        segments(r),
        days(r),
        alerts(r),
        actions(r),
        notes(r),
        previous(r),
    ]
}

/// The period, spend against budget and pacing.
fn summary(r: &Review) -> Table {
    let spent_share = if r.budget > 0.0 { r.spend / r.budget } else { 0.0 };
    Table {
        key: "summary",
        title: "Summary".into(),
        columns: vec![col("", "", false), col("value", "value", true)],
        rows: [
            ("period from", Cell::text(&r.from)),
            ("period to", Cell::text(&r.to)),
            ("time gone", Cell::share(r.elapsed)),
            ("spend", Cell::money(r.spend)),
            ("budget", Cell::money(r.budget)),
            ("budget used", Cell::share(spent_share)),
            (
                "pacing (1 = on plan)",
                Cell {
                    text: r.pacing.map_or("–".into(), |p| format!("{p:.2}×")), value: r.pacing, tone: Tone::Plain
                },
            ),
        ]
        .into_iter()
        .chain(
            (r.other_costs.is_some() || r.gross_margin.is_some())
                .then(|| {
                    let other = r.other_costs.unwrap_or(0.0);
                    let margin = r.gross_margin;
                    let full =
                        crate::domain::campaign::FullCost { spend: r.spend, other, revenue: r.totals.revenue, margin };
                    let mut rows = Vec::new();
                    if r.other_costs.is_some() {
                        rows.extend([("other costs", Cell::money(other)), ("full cost", Cell::money(full.total()))]);
                    }
                    if let Some(m) = margin {
                        rows.extend([
                            ("gross margin", Cell::share(m)),
                            ("gross profit", Cell::money(full.gross())),
                            ("POAS (gross profit / ad spend)", Cell::num(Metric::Roas, full.poas())),
                        ]);
                    }
                    rows.extend([
                        ("profit", Cell::money(full.profit())),
                        ("ROI over the full cost", Cell::num(Metric::Roi, full.roi())),
                    ]);
                    rows
                })
                .into_iter()
                .flatten(),
        )
        .map(|(k, v)| Row { item: k.replace(' ', "_"), cells: vec![Cell::text(k), v] })
        .collect(),
        empty: "",
    }
}

/// Each goal against the share of time gone.
fn goals(r: &Review) -> Table {
    Table {
        key: "goal",
        title: "Goals".into(),
        columns: vec![
            col("goal", "name", false),
            col("target", "target", true),
            col("achieved", "achieved", true),
            col("progress", "progress", true),
            col("time gone", "time_gone", true),
            col("verdict", "verdict", false),
        ],
        rows: r
            .goals
            .iter()
            .map(|g| Row {
                item: g.name.clone(),
                cells: vec![
                    Cell::text(&g.name),
                    Cell::num(g.metric, Some(g.target)),
                    Cell::num(g.metric, Some(g.achieved)),
                    Cell::share(g.progress),
                    Cell::share(g.elapsed),
                    Cell::text(g.verdict).tone(if g.verdict == "behind" { Tone::Bad } else { Tone::Good }),
                ],
            })
            .collect(),
        empty: "The campaign has no goals.",
    }
}

/// Each KPI limit and whether it is met.
fn kpi_limits(r: &Review) -> Table {
    Table {
        key: "kpi",
        title: "KPI limits".into(),
        columns: vec![col("limit", "limit", false), col("value", "value", true), col("met", "met", false)],
        rows: r
            .kpis
            .iter()
            .map(|k| {
                let met = match k.met {
                    Some(true) => Cell::text("yes").tone(Tone::Good),
                    Some(false) => Cell::text("no").tone(Tone::Bad),
                    None => Cell::text("–"),
                };
                Row { item: k.limit.clone(), cells: vec![Cell::text(&k.limit), Cell::num(k.metric, k.value), met] }
            })
            .collect(),
        empty: "The campaign has no KPI limits.",
    }
}

/// Every channel's counters and KPIs, the campaign's total first; breached limits in red.
fn channels(r: &Review) -> Table {
    let metrics: Vec<Metric> = r.channels.first().map(|c| c.kpis.iter().map(|(m, _)| *m).collect()).unwrap_or_default();
    let mut columns = vec![col("channel", "name", false)];
    columns.extend(counter_columns());
    columns.extend(metrics.iter().map(|m| col(m.label(), m.name(), true)));
    columns.push(col("breaks", "breaks", false));
    let limit_of = |m: Metric| r.kpis.iter().find(|k| k.metric == m).map(|k| k.limit.clone());
    let total_kpis: Vec<(Metric, Option<f64>)> =
        metrics.iter().map(|m| (*m, super::round_kpi(*m, m.value(&r.totals)))).collect();
    let rows = std::iter::once(("all".to_string(), "all channels".to_string(), &r.totals, &total_kpis, &Vec::new()))
        .chain(r.channels.iter().map(|c| (c.id.clone(), c.name.clone(), &c.counters, &c.kpis, &c.breaches)))
        .enumerate()
        .map(|(i, (item, name, counters, kpis, breaches))| {
            let mut cells = vec![Cell::text(name).tone(if i == 0 { Tone::Strong } else { Tone::Plain })];
            cells.extend(counter_cells(counters));
            cells.extend(kpis.iter().map(|(m, v)| {
                let bad = limit_of(*m).is_some_and(|l| breaches.contains(&l));
                Cell::num(*m, *v).tone(if bad { Tone::Bad } else { Tone::Plain })
            }));
            cells.push(Cell::text(breaches.join(", ")));
            Row { item, cells }
        })
        .collect();
    Table { key: "channel", title: "Channels".into(), columns, rows, empty: "" }
}

/// Each channel's funnel and its weakest step.
fn funnel(r: &Review) -> Table {
    Table {
        key: "funnel",
        title: "Funnel".into(),
        columns: vec![
            col("channel", "name", false),
            col("steps (count, rate from the step before)", "steps", false),
            col("weakest step", "weakest", false),
        ],
        rows: r
            .funnel
            .iter()
            .map(|f| {
                let steps: Vec<String> = f
                    .steps
                    .iter()
                    .map(|s| match s.rate {
                        Some(rate) => format!("{} {} ({})", s.name, count(s.count as i64), percent_1(rate)),
                        None => format!("{} {}", s.name, count(s.count as i64)),
                    })
                    .collect();
                let weak = f.steps.iter().find(|s| s.weakest).map_or("–", |s| s.name);
                Row {
                    item: f.channel.clone(),
                    cells: vec![
                        Cell::text(&f.channel),
                        Cell::text(steps.join(" → ")),
                        Cell::text(weak).tone(if weak == "–" { Tone::Plain } else { Tone::Bad }),
                    ],
                }
            })
            .collect(),
        empty: "",
    }
}

/// Audience segments judged on the campaign's segment metric.
fn segments(r: &Review) -> Table {
    let m = r.segment_metric;
    Table {
        key: "segment",
        title: format!("Segments (judged on {})", m.label()),
        columns: vec![
            col("dimension", "dimension", false),
            col("segment", "segment", false),
            col("spend share", "spend_share", true),
            col(m.label(), m.name(), true),
            col("average", "average", true),
            col("score", "score", true),
            col("verdict", "verdict", false),
        ],
        rows: r
            .segments
            .iter()
            .map(|s| Row {
                item: format!("{}={}", s.dimension, s.value),
                cells: vec![
                    Cell::text(&*s.dimension),
                    Cell::text(&*s.value),
                    Cell::share(s.spend_share),
                    Cell::num(m, s.kpi).tone(if s.outlier { verdict(true, s.score).tone } else { Tone::Plain }),
                    Cell::num(m, s.average),
                    Cell { text: format!("{:.2}", s.score), value: Some(s.score), tone: Tone::Plain },
                    verdict(s.outlier, s.score),
                ],
            })
            .collect(),
        empty: "No segments: the sources do not break their figures down.",
    }
}

/// The counters of each day.
fn days(r: &Review) -> Table {
    let mut columns = vec![col("day", "day", true), col("date", "date", false)];
    columns.extend(counter_columns());
    Table {
        key: "day",
        title: "By day".into(),
        columns,
        rows: r
            .days
            .iter()
            .map(|d| {
                let date = if d.partial { format!("{} so far", d.date) } else { d.date.clone() };
                let mut cells = vec![Cell::count(d.day as u64), Cell::text(&date)];
                cells.extend(counter_cells(&d.counters));
                Row { item: d.day.to_string(), cells }
            })
            .collect(),
        empty: "No data in the period.",
    }
}

/// The alerts that fired, and when they resolved.
fn alerts(r: &Review) -> Table {
    Table {
        key: "alert",
        title: "Alerts".into(),
        columns: vec![
            col("what", "summary", false),
            col("channel", "channel", false),
            col("fired", "fired", false),
            col("resolved", "resolved", false),
            col("minutes", "minutes", true),
        ],
        rows: r
            .alerts
            .iter()
            .map(|a| Row {
                item: format!("{}/{}", a.channel.as_deref().unwrap_or(""), a.rule),
                cells: vec![
                    Cell::text(&a.summary),
                    Cell::text(a.channel.as_deref().unwrap_or("–")),
                    Cell::text(&a.fired),
                    Cell::text(a.resolved.as_deref().unwrap_or("still firing")),
                    Cell::count(a.minutes.max(0) as u64),
                ],
            })
            .collect(),
        empty: "No alert fired in the period.",
    }
}

/// The actions sent, with cost per result and results per day around them.
fn actions(r: &Review) -> Table {
    let per_day =
        |v: Option<f64>| Cell { text: v.map_or("–".into(), |v| format!("{v:.2}")), value: v, tone: Tone::Plain };
    Table {
        key: "action",
        title: "Actions".into(),
        columns: vec![
            col("change", "change", false),
            col("#", "id", true),
            col("when", "at", false),
            col("by", "by", false),
            col("outcome", "outcome", false),
            col("cost/result 24 h before", "cost_before", true),
            col("after", "cost_after", true),
            col("results/day before", "results_per_day_before", true),
            col("after", "results_per_day_after", true),
        ],
        rows: r
            .actions
            .iter()
            .map(|a| Row {
                item: format!("#{}", a.id),
                cells: vec![
                    Cell::text(&a.change),
                    // An id, not an amount: never grouped in thousands.
                    Cell { text: format!("#{}", a.id), value: Some(a.id as f64), tone: Tone::Plain },
                    Cell::text(&a.at),
                    Cell::text(&a.by),
                    Cell::text(&a.outcome),
                    Cell::num(a.metric, a.before),
                    Cell::num(a.metric, a.after),
                    per_day(a.results_before),
                    per_day(a.results_after),
                ],
            })
            .collect(),
        empty: "No action was sent in the period.",
    }
}

/// The notes on the timeline.
fn notes(r: &Review) -> Table {
    Table {
        key: "note",
        title: "Notes".into(),
        columns: vec![
            col("note", "text", false),
            col("when", "at", false),
            col("channel", "channel", false),
            col("by", "by", false),
        ],
        rows: r
            .notes
            .iter()
            .map(|n| Row {
                item: n.at.clone(),
                cells: vec![
                    Cell::text(&n.text),
                    Cell::text(&n.at),
                    Cell::text(n.channel.as_deref().unwrap_or("–")),
                    Cell::text(&n.by),
                ],
            })
            .collect(),
        empty: "No notes.",
    }
}

/// This campaign against the one before, day by day.
fn previous(r: &Review) -> Table {
    Table {
        key: "previous",
        title: "Against the previous campaign".into(),
        columns: vec![
            col("campaign", "name", false),
            col("day", "day", true),
            col("metric", "metric", false),
            col("this", "this", true),
            col("then", "then", true),
            col("change", "change", true),
        ],
        rows: r
            .previous
            .iter()
            .map(|p| Row {
                item: p.name.clone(),
                cells: vec![
                    Cell::text(&p.name),
                    Cell::count(p.day as u64),
                    Cell::text(p.metric.name()),
                    Cell::num(p.metric, p.this),
                    Cell::num(p.metric, p.that),
                    Cell { text: change(p.change), value: p.change, tone: Tone::Plain },
                ],
            })
            .collect(),
        empty: "No earlier campaign to compare with.",
    }
}
