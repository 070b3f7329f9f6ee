//! Markdown (renders on common forges) and CSV (one long table: section, item, field, value).

use super::Review;
use crate::domain::metrics::{Unit, thousands};
use crate::domain::{Counters, Metric};
use std::fmt::Write;

/// A value as the report prints it: money with cents and grouping, rates in percent with two
/// decimals, counts grouped.
pub fn show(m: Metric, v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    match m.unit() {
        Unit::Count => thousands(v.round() as i64),
        Unit::Money => money(v),
        Unit::Percent => format!("{:.2}%", v * 100.0),
        Unit::Ratio => format!("{v:.2}×"),
    }
}

pub fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", thousands((cents / 100).abs()), (cents % 100).abs())
}

pub fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

pub fn change(v: Option<f64>) -> String {
    v.map_or("–".into(), |c| format!("{:+.1}%", c * 100.0))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(r: &Review) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Review: {} (`{}`)\n", md_escape(&r.name), r.campaign);
    let _ = writeln!(
        o,
        "Campaign {} → {}; period reviewed {} → {} ({} of the campaign's time gone). Currency {}.\n",
        r.start,
        r.end,
        r.from,
        r.to,
        pct(r.elapsed),
        r.currency
    );
    let _ = writeln!(
        o,
        "## Goals\n\n| goal | target | achieved | progress | time gone | verdict |\n|---|---:|---:|---:|---:|---|"
    );
    for g in &r.goals {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            md_escape(&g.name),
            show(g.metric, Some(g.target)),
            show(g.metric, Some(g.achieved)),
            pct(g.progress),
            pct(g.elapsed),
            g.verdict
        );
    }
    let _ = writeln!(
        o,
        "\n## Spend\n\n{} spent of {} ({}); pacing {} of plan for the time gone.\n",
        money(r.spend),
        money(r.budget),
        pct(if r.budget > 0.0 { r.spend / r.budget } else { 0.0 }),
        r.pacing.map_or("–".into(), |p| format!("{p:.2}×"))
    );
    let _ = writeln!(o, "## KPI limits\n\n| limit | value | met |\n|---|---:|---|");
    for k in &r.kpis {
        let met = match k.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(o, "| `{}` | {} | {} |", k.limit, show(k.metric, k.value), met);
    }
    let metrics: Vec<Metric> = r.channels.first().map(|c| c.kpis.iter().map(|(m, _)| *m).collect()).unwrap_or_default();
    let _ = write!(o, "\n## Channels\n\n| channel | spend | impressions | clicks | leads | conversions | revenue |");
    for m in &metrics {
        let _ = write!(o, " {} |", m.label());
    }
    let _ = write!(o, " breaks |\n|---|---:|---:|---:|---:|---:|---:|");
    for _ in &metrics {
        o.push_str("---:|");
    }
    o.push_str("---|\n");
    let total_row = (
        "**all channels**".to_string(),
        r.totals,
        metrics.iter().map(|m| (*m, m.value(&r.totals))).collect::<Vec<_>>(),
        String::new(),
    );
    let rows = std::iter::once(total_row)
        .chain(r.channels.iter().map(|c| (md_escape(&c.name), c.counters, c.kpis.clone(), c.breaches.join(", "))));
    for (name, c, kpis, breaks) in rows {
        let _ = write!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            money(c.spend),
            show(Metric::Impressions, Some(c.impressions as f64)),
            show(Metric::Clicks, Some(c.clicks as f64)),
            show(Metric::Leads, Some(c.leads as f64)),
            show(Metric::Conversions, Some(c.conversions as f64)),
            money(c.revenue)
        );
        for (m, v) in kpis {
            let _ = write!(o, " {} |", show(m, super::round_kpi(m, v)));
        }
        let _ = writeln!(o, " {breaks} |");
    }
    let _ = writeln!(
        o,
        "\n## Funnel\n\n| channel | steps (count, rate from the step before) | weakest step |\n|---|---|---|"
    );
    for f in &r.funnel {
        let steps: Vec<String> = f
            .steps
            .iter()
            .map(|s| match s.rate {
                Some(rate) => format!("{} {} ({})", s.name, thousands(s.count as i64), pct(rate)),
                None => format!("{} {}", s.name, thousands(s.count as i64)),
            })
            .collect();
        let weak = f.steps.iter().find(|s| s.weakest).map_or("–", |s| s.name);
        let _ = writeln!(o, "| {} | {} | {weak} |", md_escape(&f.channel), steps.join(" → "));
    }
    if !r.segments.is_empty() {
        let m = r.segment_metric;
        let _ = writeln!(
            o,
            "\n## Segments (campaign to date, judged on {})\n\n| dimension | segment | spend share | {} | average | score | verdict |\n|---|---|---:|---:|---:|---:|---|",
            m.label(),
            m.label()
        );
        for s in &r.segments {
            let verdict = if s.outlier { if s.score < 0.0 { "far worse" } else { "far better" } } else { "" };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {:.2} | {verdict} |",
                s.dimension,
                s.value,
                pct(s.spend_share),
                show(m, s.kpi),
                show(m, s.average),
                s.score
            );
        }
    }
    let _ = writeln!(
        o,
        "\n## By day\n\n| day | date | spend | impressions | clicks | leads | conversions | revenue |\n|---:|---|---:|---:|---:|---:|---:|---:|"
    );
    for d in &r.days {
        let c: &Counters = &d.counters;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            d.day,
            d.date,
            money(c.spend),
            thousands(c.impressions as i64),
            thousands(c.clicks as i64),
            thousands(c.leads as i64),
            thousands(c.conversions as i64),
            money(c.revenue)
        );
    }
    let _ = writeln!(o, "\n## Alerts\n");
    if r.alerts.is_empty() {
        o.push_str("No alert fired in the period.\n");
    } else {
        o.push_str("| fired | resolved | minutes | channel | rule | what |\n|---|---|---:|---|---|---|\n");
        for a in &r.alerts {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                a.fired,
                a.resolved.as_deref().unwrap_or("still firing"),
                a.minutes,
                a.channel.as_deref().unwrap_or("–"),
                md_escape(&a.rule),
                md_escape(&a.summary)
            );
        }
    }
    let _ = writeln!(o, "\n## Actions\n");
    if r.actions.is_empty() {
        o.push_str("No action was sent in the period.\n");
    } else {
        o.push_str("| # | when | by | change | outcome | cost/result before → after (24 h) | results/day before → after |\n|---:|---|---|---|---|---|---|\n");
        for a in &r.actions {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} {} → {} | {} → {} |",
                a.id,
                a.at,
                a.by,
                md_escape(&a.change),
                md_escape(&a.outcome),
                a.metric.label(),
                show(a.metric, a.before),
                show(a.metric, a.after),
                a.results_before.map_or("–".into(), |v| format!("{v:.2}")),
                a.results_after.map_or("–".into(), |v| format!("{v:.2}"))
            );
        }
    }
    let _ = writeln!(o, "\n## Notes\n");
    if r.notes.is_empty() {
        o.push_str("No notes.\n");
    } else {
        for n in &r.notes {
            let on = n.channel.as_deref().map(|c| format!(" on {c}")).unwrap_or_default();
            let _ = writeln!(o, "- {} ({}{on}): {}", n.at, n.by, md_escape(&n.text));
        }
    }
    let _ = writeln!(o, "\n## Against the previous campaign\n");
    match &r.previous {
        Some(p) => {
            let _ = writeln!(
                o,
                "{} at day {}: {} against {} for {} ({}).",
                p.metric.label(),
                p.day,
                show(p.metric, p.this),
                show(p.metric, p.that),
                md_escape(&p.name),
                change(p.change)
            );
        }
        None => o.push_str("No earlier campaign to compare with.\n"),
    }
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Numbers as plain decimals (cents for money), so a spreadsheet reads them.
fn num(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    })
}

pub fn csv(r: &Review) -> String {
    let mut o = String::from("section,item,field,value\n");
    let mut row = |section: &str, item: &str, field: &str, value: String| {
        let _ = writeln!(o, "{},{},{},{}", section, csv_field(item), csv_field(field), csv_field(&value));
    };
    row("campaign", &r.campaign, "name", r.name.clone());
    row("campaign", &r.campaign, "from", r.from.clone());
    row("campaign", &r.campaign, "to", r.to.clone());
    row("campaign", &r.campaign, "elapsed", num(Some(r.elapsed)));
    row("spend", &r.campaign, "spend", num(Some(r.spend)));
    row("spend", &r.campaign, "budget", num(Some(r.budget)));
    row("spend", &r.campaign, "pacing", num(r.pacing));
    for g in &r.goals {
        row("goal", &g.name, "target", num(Some(g.target)));
        row("goal", &g.name, "achieved", num(Some(g.achieved)));
        row("goal", &g.name, "progress", num(Some(g.progress)));
        row("goal", &g.name, "verdict", g.verdict.to_string());
    }
    for k in &r.kpis {
        row("kpi", &k.limit, "value", num(k.value));
        row("kpi", &k.limit, "met", k.met.map_or(String::new(), |m| m.to_string()));
    }
    let counters = |row: &mut dyn FnMut(&str, &str, &str, String), section: &str, item: &str, c: &Counters| {
        for m in
            [Metric::Impressions, Metric::Clicks, Metric::Leads, Metric::Conversions, Metric::Spend, Metric::Revenue]
        {
            row(section, item, m.name(), num(m.value(c)));
        }
    };
    counters(&mut row, "channel", "all channels", &r.totals);
    for c in &r.channels {
        counters(&mut row, "channel", &c.id, &c.counters);
        for (m, v) in &c.kpis {
            if !m.is_cumulative() {
                row("channel", &c.id, m.name(), num(*v));
            }
        }
    }
    for s in &r.segments {
        let item = format!("{}={}", s.dimension, s.value);
        row("segment", &item, r.segment_metric.name(), num(s.kpi));
        row("segment", &item, "spend_share", num(Some(s.spend_share)));
        row("segment", &item, "score", num(Some(s.score)));
        row("segment", &item, "outlier", s.outlier.to_string());
    }
    for f in &r.funnel {
        for s in &f.steps {
            row("funnel", &f.channel, s.name, s.count.to_string());
        }
    }
    for d in &r.days {
        counters(&mut row, "day", &d.date, &d.counters);
    }
    for a in &r.alerts {
        let item = format!("{}/{}", a.channel.as_deref().unwrap_or(""), a.rule);
        row("alert", &item, "fired", a.fired.clone());
        row("alert", &item, "minutes", a.minutes.to_string());
    }
    for a in &r.actions {
        let item = format!("#{}", a.id);
        row("action", &item, "change", a.change.clone());
        row("action", &item, "outcome", a.outcome.clone());
        row("action", &item, &format!("{}_before", a.metric.name()), num(a.before));
        row("action", &item, &format!("{}_after", a.metric.name()), num(a.after));
    }
    for n in &r.notes {
        row("note", &n.at, "text", n.text.clone());
    }
    if let Some(p) = &r.previous {
        row("previous", &p.name, &format!("{}_this", p.metric.name()), num(p.this));
        row("previous", &p.name, &format!("{}_that", p.metric.name()), num(p.that));
    }
    o
}
