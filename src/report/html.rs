//! One self-contained HTML file: inline CSS and SVG charts, no scripts, no network; fit to mail.

use super::Review;
use super::tables::{Tone, show, tables};
use crate::domain::Metric;
use crate::domain::format::{count, money_cents, percent_1};
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI','PingFang SC','Noto Sans CJK SC',sans-serif;color:#1d2430;max-width:1100px;margin:24px auto;padding:0 16px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}\
.meta{color:#5b6677}table{border-collapse:collapse;width:100%;margin:6px 0}th,td{padding:4px 8px;border-bottom:1px solid #eceff4;text-align:right;white-space:nowrap}\
th{background:#f4f6f9;font-weight:600}td:first-child,th:first-child{text-align:left;white-space:normal}.bad{color:#b42318;font-weight:600}.good{color:#067647}\
.wrap{overflow-x:auto}.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #dde2ea;border-radius:6px;padding:8px 12px;min-width:180px}\
.card b{display:block;font-size:20px}td.text,th.text{text-align:left;white-space:normal}td.strong{font-weight:600}svg{max-width:100%;height:auto}.legend span{margin-right:14px}";

/// An axis label: short ("2.40M", "890k").
fn axis(metric: Metric, v: f64) -> String {
    match metric.unit() {
        crate::domain::metrics::Unit::Percent | crate::domain::metrics::Unit::Ratio => show(metric, Some(v)),
        _ if v.abs() >= 1e6 => format!("{:.2}M", v / 1e6),
        _ if v.abs() >= 1e4 => format!("{:.0}k", v / 1e3),
        _ => count(v.round() as i64),
    }
}

/// Horizontal grid lines with their values on the left, `ticks` steps from 0 to `max`.
fn y_grid(s: &mut String, ticks: usize, max: f64, (l, w): (f64, f64), y: &dyn Fn(f64) -> f64, metric: Metric) {
    for k in 0..=ticks {
        let v = max * k as f64 / ticks as f64;
        let _ = write!(
            s,
            "<line x1=\"{l}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eceff4\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6677\">{}</text>",
            w - 10.0,
            y(v),
            y(v),
            l - 6.0,
            y(v) + 4.0,
            esc(&axis(metric, v))
        );
    }
}

/// A line chart of up to three series over days, with the x axis in days since launch.
fn line_chart(series: &[(&str, &str, bool, Vec<Option<f64>>)], metric: Metric) -> String {
    let (w, h, l, b) = (760.0, 240.0, 70.0, 28.0);
    let n = series.iter().map(|s| s.3.len()).max().unwrap_or(0).max(2);
    let max = series.iter().flat_map(|s| s.3.iter().flatten()).fold(0.0f64, |a, v| a.max(*v)).max(1.0) * 1.05;
    let x = |i: usize| l + (w - l - 30.0) * i as f64 / (n - 1) as f64;
    let y = |v: f64| (h - b) - (h - b - 10.0) * v / max;
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">");
    y_grid(&mut s, 4, max, (l, w), &y, metric);
    // At most about eight labels, so that they never run into each other.
    for i in (0..n).step_by(n.div_ceil(8).max(1)) {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6677\">day {}</text>",
            x(i),
            h - 8.0,
            i + 1
        );
    }
    for (_, color, dashed, values) in series {
        let pts: Vec<String> =
            values.iter().enumerate().filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v)))).collect();
        let dash = if *dashed { " stroke-dasharray=\"5 4\"" } else { "" };
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            pts.join(" ")
        );
    }
    s.push_str("</svg><div class=\"legend\">");
    for (name, color, dashed, _) in series {
        let style = if *dashed { "dashed" } else { "solid" };
        let _ = write!(
            s,
            "<span><span style=\"display:inline-block;width:18px;border-top:2px {style} {color};vertical-align:middle\"></span> {}</span>",
            esc(name)
        );
    }
    s.push_str("</div>");
    s
}

/// Daily spend as bars, with the planned daily spend as a line.
fn spend_bars(r: &Review, daily_plan: f64) -> String {
    let (w, h, l, b) = (760.0, 200.0, 70.0, 28.0);
    let n = r.days.len().max(1);
    let max = r.days.iter().map(|d| d.counters.spend).fold(daily_plan, f64::max).max(1.0) * 1.1;
    let bw = (w - l - 10.0) / n as f64;
    let y = |v: f64| (h - b) - (h - b - 10.0) * v / max;
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">");
    y_grid(&mut s, 3, max, (l, w), &y, Metric::Spend);
    for (i, d) in r.days.iter().enumerate() {
        let over = d.counters.spend > daily_plan * 1.05;
        let color = if over { "#d97706" } else { "#3b82f6" };
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>day {} ({}): {}</title></rect>",
            l + bw * i as f64 + 1.0,
            y(d.counters.spend),
            (bw - 2.0).max(1.0),
            (h - b) - y(d.counters.spend),
            d.day,
            d.date,
            esc(&money_cents(d.counters.spend))
        );
        if n <= 40 && (i % (n / 12).max(1) == 0) {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6677\">{}</text>",
                l + bw * (i as f64 + 0.5),
                h - 8.0,
                d.day
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{l}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#b42318\" stroke-dasharray=\"5 4\"/></svg>",
        w - 10.0,
        y(daily_plan),
        y(daily_plan)
    );
    let _ = write!(
        s,
        "<div class=\"legend\"><span>bars: spend per day (orange: over plan)</span><span style=\"color:#b42318\">dashed: planned {} per day</span></div>",
        esc(&money_cents(daily_plan))
    );
    s
}

pub fn html(r: &Review) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Review: {}</title><style>{CSS}</style></head><body>",
        esc(&r.name)
    );
    let _ = write!(
        o,
        "<h1>Review: {}</h1><div class=\"meta\">{} · campaign {} → {} · period {} → {} · {} of the time gone · {}</div>",
        esc(&r.name),
        esc(&r.campaign),
        esc(&r.start),
        esc(&r.end),
        esc(&r.from),
        esc(&r.to),
        percent_1(r.elapsed),
        esc(&r.currency)
    );
    o.push_str("<h2>Goals and spend</h2><div class=\"cards\">");
    for g in &r.goals {
        let cls = if g.verdict == "behind" { "bad" } else { "good" };
        let _ = write!(
            o,
            "<div class=\"card\">{}<b>{} / {}</b>{} done, {} of its time gone · <span class=\"{cls}\">{}</span></div>",
            esc(&g.name),
            show(g.metric, Some(g.achieved)),
            show(g.metric, Some(g.target)),
            percent_1(g.progress),
            percent_1(g.elapsed),
            g.verdict
        );
    }
    let _ = write!(
        o,
        "<div class=\"card\">Spend<b>{} / {}</b>pacing {}</div></div>",
        money_cents(r.spend),
        money_cents(r.budget),
        r.pacing.map_or("–".into(), |p| format!("{p:.2}× of plan"))
    );
    if let Some(g) = r.goals.first().filter(|g| g.metric.is_cumulative()) {
        let days = r.days.len().max(1);
        let mut acc = crate::domain::Counters::default();
        let mine: Vec<Option<f64>> = r
            .days
            .iter()
            .map(|d| {
                acc.add(&d.counters);
                g.metric.value(&acc)
            })
            .collect();
        let total_days = r.campaign_days.max(days);
        let pace: Vec<Option<f64>> =
            (0..total_days).map(|d| Some(g.target * (d + 1) as f64 / total_days as f64)).collect();
        let mut series = vec![("target pace", "#9aa4b2", true, pace), ("this campaign", "#2563eb", false, mine)];
        let prev_name;
        if let Some(p) = &r.previous
            && p.metric == g.metric
        {
            prev_name = p.name.clone();
            series.push((prev_name.as_str(), "#d97706", true, p.series.iter().map(|(_, b)| *b).collect()));
        }
        let _ = write!(o, "<h2>{} against time</h2>{}", esc(&g.name), line_chart(&series, g.metric));
    }
    let plan = r.budget / r.campaign_days.max(1) as f64;
    let _ = write!(o, "<h2>Spend per day</h2>{}", spend_bars(r, plan));
    for t in tables(r).into_iter().filter(|t| t.key != "goal" && t.key != "summary") {
        let _ = write!(o, "<h2>{}</h2>", esc(&t.title));
        if t.rows.is_empty() {
            let _ = write!(o, "<p>{}</p>", esc(t.empty));
            continue;
        }
        o.push_str("<div class=\"wrap\"><table><tr>");
        for c in &t.columns {
            let class = if c.numeric { "" } else { " class=\"text\"" };
            let _ = write!(o, "<th{class}>{}</th>", esc(&c.label));
        }
        o.push_str("</tr>");
        for row in &t.rows {
            o.push_str("<tr>");
            for (c, cell) in t.columns.iter().zip(&row.cells) {
                let tone = match cell.tone {
                    Tone::Good => "good",
                    Tone::Bad => "bad",
                    Tone::Strong => "strong",
                    Tone::Plain => "",
                };
                let align = if c.numeric { "" } else { "text" };
                let class = [align, tone].iter().filter(|c| !c.is_empty()).copied().collect::<Vec<_>>().join(" ");
                let class = if class.is_empty() { String::new() } else { format!(" class=\"{class}\"") };
                let _ = write!(o, "<td{class}>{}</td>", esc(&cell.text));
            }
            o.push_str("</tr>");
        }
        o.push_str("</table></div>");
    }
    o.push_str("</body></html>\n");
    o
}
