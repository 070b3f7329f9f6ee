//! Analyze: the selected campaign's channels side by side over a window with the change
//! against the window before and the campaign's limits (compare), the funnel per channel,
//! segments ranked on the campaign's KPI, and goal progress by day since launch beside an
//! earlier campaign (vs past).

use crate::analyze::data::Analysis;
use crate::analyze::{cell, cumulative, funnel};
use crate::domain::time::DAY_MS;
use crate::domain::{Counters, Metric};
use crate::ui::app::{AnalyzeMode, App};
use crate::ui::widgets::{fit, truncate};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let width = area.width as usize;
    let Some(c) = app.campaign() else {
        f.render_widget(Paragraph::new(fit("No campaign to analyse.", width)).style(t.muted), area);
        return;
    };
    let a = app.snap.analysis.as_ref().filter(|a| a.campaign == c.campaign.id);
    let modes: Vec<Span<'static>> =
        [AnalyzeMode::Compare, AnalyzeMode::Funnel, AnalyzeMode::Segments, AnalyzeMode::Past]
            .iter()
            .flat_map(|m| {
                let style = if *m == app.analyze.mode { t.selected } else { t.muted };
                [Span::styled(format!(" {} ", m.label()), style), Span::raw(" ")]
            })
            .collect();
    let mut head =
        vec![Span::styled(truncate(&c.campaign.name, width.saturating_sub(44).max(10)), t.accent), Span::raw("  ")];
    head.extend(modes);
    let [title, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
    let Some(a) = a else {
        f.render_widget(Paragraph::new(vec![Line::from(head), Line::styled(" computing…", t.muted)]), title);
        return;
    };
    let sub = match app.analyze.mode {
        AnalyzeMode::Compare | AnalyzeMode::Funnel => {
            let prev = match a.previous {
                Some(_) => format!("vs {}", a.window.previous_label()),
                None => "nothing before to compare with".into(),
            };
            format!(" {} ({}) {prev}", a.window.label(), span_label(a.span.from, a.span.to, &c.campaign))
        }
        AnalyzeMode::Segments => format!(
            " {} · judged on {} (all {})",
            a.window.label(),
            a.segment_metric.label(),
            a.segment_metric.format(a.segments.first().and_then(|s| s.average))
        ),
        AnalyzeMode::Past => match &a.against {
            Some((label, _)) => format!(" by day since launch, vs {label}"),
            None => " no earlier campaign to compare with".into(),
        },
    };
    f.render_widget(Paragraph::new(vec![Line::from(head), Line::styled(fit(&sub, width), t.muted)]), title);
    match app.analyze.mode {
        AnalyzeMode::Compare => compare(f, body, app, a),
        AnalyzeMode::Funnel => funnel_view(f, body, app, a),
        AnalyzeMode::Segments => segments_view(f, body, app, a),
        AnalyzeMode::Past => past(f, body, app, a, &c.campaign),
    }
}

fn span_label(from: i64, to: i64, c: &crate::domain::Campaign) -> String {
    let off = *c.start.offset();
    let fmt = |ms: i64, f: &str| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map_or(String::new(), |d| d.with_timezone(&off).format(f).to_string())
    };
    if to - from <= DAY_MS {
        format!("{}–{}", fmt(from, "%m-%d %H:%M"), fmt(to, "%H:%M"))
    } else {
        format!("{} – {}", fmt(from, "%m-%d %H:%M"), fmt(to, "%m-%d %H:%M"))
    }
}

/// "▲12%" coloured by whether the change is an improvement.
fn change_span(app: &App, change: Option<f64>, improved: Option<bool>) -> Span<'static> {
    let t = &app.theme;
    let Some(ch) = change else { return Span::styled("     ", t.muted) };
    let arrow = if ch > 0.0 {
        '▲'
    } else if ch < 0.0 {
        '▼'
    } else {
        '='
    };
    let pct = (ch * 100.0).abs();
    let text = match (t.colourless(), improved) {
        // Where colour cannot say better or worse, a mark does (in the same five columns).
        (true, Some(better)) => {
            let n = if pct >= 99.5 { "99+".to_string() } else { format!("{pct:.0}%") };
            format!("{arrow}{n}{}", if better { '✓' } else { '✗' })
        }
        _ if pct >= 999.5 => format!("{arrow}>999%"),
        _ => format!("{arrow}{pct:.0}%"),
    };
    let style = match improved {
        Some(true) => t.good,
        Some(false) => t.bad,
        None => t.muted,
    };
    Span::styled(format!("{text:>5}"), style)
}

fn name_width(width: usize) -> usize {
    (width / 4).clamp(10, 24)
}

fn compare(f: &mut Frame, area: Rect, app: &App, a: &Analysis) {
    let t = &app.theme;
    let width = area.width as usize;
    let nw = name_width(width);
    // Each metric takes 14 columns: value (8) and change (6).
    let fit_metrics = (width.saturating_sub(nw + 1) / 14).max(1);
    let metrics: Vec<Metric> = a.metrics.iter().copied().take(fit_metrics).collect();
    let limits = app.campaign().map(|c| c.campaign.kpis.clone()).unwrap_or_default();
    let mut lines = Vec::new();
    let mut header = vec![Span::styled(format!("{:<nw$} ", "channel"), t.muted)];
    for m in &metrics {
        header.push(Span::styled(format!("{:>8} {:>5}", m.label(), "Δ"), t.muted));
    }
    lines.push(Line::from(header));
    for (i, r) in a.rows.iter().enumerate() {
        let name_style = if i == 0 { t.accent } else { t.base };
        let mut spans = vec![Span::styled(format!("{} ", fit(&truncate(&r.name, nw), nw)), name_style)];
        for m in &metrics {
            let x = cell(*m, &r.current, r.previous.as_ref(), &limits);
            let style = match x.meets {
                Some(false) => t.bad,
                _ => t.base,
            };
            let mark = t.breach_mark(x.meets == Some(false));
            spans.push(Span::styled(format!("{:>8}{mark}", m.format(x.value)), style));
            spans.push(change_span(app, x.change, x.improved));
        }
        lines.push(Line::from(spans));
    }
    if metrics.len() < a.metrics.len() {
        let hidden: Vec<&str> = a.metrics[metrics.len()..].iter().map(|m| m.label()).collect();
        lines.push(Line::styled(fit(&format!("(wider terminal for {})", hidden.join(", ")), width), t.muted));
    }
    lines.push(Line::raw(""));
    let legend = match t.colourless() {
        true => {
            "✗ after a value: outside the limit · ▲▼ vs the window before: ✓ better, ✗ worse, no mark too few to tell"
        }
        false => "red: outside the limit · ▲▼ vs the window before: green better, grey too few to tell",
    };
    lines.push(Line::styled(fit(legend, width), t.muted));
    f.render_widget(Paragraph::new(lines).style(t.base), area);
}

fn funnel_view(f: &mut Frame, area: Rect, app: &App, a: &Analysis) {
    let t = &app.theme;
    let width = area.width as usize;
    let nw = name_width(width);
    let all = a.rows.first().map(|r| r.current).unwrap_or_default();
    let mut lines = Vec::new();
    for (i, r) in a.rows.iter().enumerate() {
        let steps = funnel(&r.current, &all);
        let mut spans =
            vec![Span::styled(format!("{} ", fit(&truncate(&r.name, nw), nw)), if i == 0 { t.accent } else { t.base })];
        for (k, s) in steps.iter().enumerate() {
            let count = crate::domain::format::compact(s.count as f64);
            if k == 0 {
                spans.push(Span::raw(format!("{count:>8}")));
                continue;
            }
            let rate = s.rate.map_or("–".into(), |r| format!("{:.1}%", r * 100.0));
            // `!` marks the weak step also where there is no colour.
            let (style, mark) = if s.weakest { (t.bad, '!') } else { (t.base, ' ') };
            spans.push(Span::styled(format!(" →{rate:>6}{mark}{count:>7}"), style));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::raw(""));
    let names: Vec<&str> = funnel(&all, &all).into_iter().map(|s| s.name).collect();
    lines.push(Line::styled(
        fit(&format!("{} · rate: of the step before · ! furthest below the campaign's", names.join(" → ")), width),
        t.muted,
    ));
    f.render_widget(Paragraph::new(lines).style(t.base), area);
}

fn segments_view(f: &mut Frame, area: Rect, app: &App, a: &Analysis) {
    let t = &app.theme;
    let width = area.width as usize;
    let m = a.segment_metric;
    let mut lines = Vec::new();
    if a.segments.is_empty() {
        lines.push(Line::styled(
            fit("No segments: the sources of this campaign do not break their figures down.", width),
            t.muted,
        ));
        f.render_widget(Paragraph::new(lines), area);
        return;
    }
    lines.push(Line::styled(
        fit(
            &format!(
                "{:<8} {:<10} {:>7} {:>10} {:>8} {:>9}  verdict",
                "dim",
                "segment",
                "spend",
                m.label(),
                "vs avg",
                "results"
            ),
            width,
        ),
        t.muted,
    ));
    let mut last = "";
    for s in &a.segments {
        if *s.dimension != *last && !last.is_empty() {
            lines.push(Line::raw(""));
        }
        let dim = if *s.dimension == *last { "" } else { &s.dimension };
        last = &s.dimension;
        let vs = match (s.kpi, s.average) {
            (Some(k), Some(avg)) if avg.abs() > f64::EPSILON => format!("{:+.0}%", (k - avg) / avg * 100.0),
            _ => "–".into(),
        };
        let results = if m == Metric::Cpl { s.counters.leads } else { s.counters.conversions };
        let (verdict, style) = match (s.outlier, s.score < 0.0) {
            (true, true) => ("▼ far worse", t.bad),
            (true, false) => ("▲ far better", t.good),
            _ => ("", t.base),
        };
        let text = format!(
            "{:<8} {:<10} {:>6.0}% {:>10} {:>8} {:>9}  ",
            truncate(dim, 8),
            truncate(&s.value, 10),
            s.spend_share * 100.0,
            m.format(s.kpi),
            vs,
            crate::domain::format::count(results as i64)
        );
        lines.push(Line::from(vec![Span::styled(text, style), Span::styled(verdict, style)]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        fit("far worse/better: ≥ 3 standard errors and ≥ 20 % from the average, with ≥ 20 expected results", width),
        t.muted,
    ));
    f.render_widget(Paragraph::new(lines).style(t.base), area);
}

/// The goal metric the vs-past chart follows: the campaign's first goal's, else conversions.
fn goal_metric(c: &crate::domain::Campaign) -> Metric {
    c.goals.iter().map(|g| g.metric).find(|m| m.is_cumulative()).unwrap_or(Metric::Conversions)
}

fn past(f: &mut Frame, area: Rect, app: &App, a: &Analysis, c: &crate::domain::Campaign) {
    let t = &app.theme;
    let width = area.width as usize;
    let Some((label, other)) = &a.against else {
        f.render_widget(
            Paragraph::new(fit("No earlier campaign to compare with (import one, or tag campaigns alike).", width))
                .style(t.muted),
            area,
        );
        return;
    };
    let m = goal_metric(c);
    let mine = cumulative(&a.days);
    // Today is not over: the earlier campaign's same day counts only as far as today has gone.
    let now = app.snap.now_ms.min(c.end_ms());
    let part = (now - c.day_start_ms(now)) as f64 / DAY_MS as f64;
    let theirs = cumulative(&crate::analyze::partial_last_day(other, a.days.len(), part));
    let cost = c.kpis.iter().map(|k| k.metric).find(|m| !m.higher_is_better()).unwrap_or(Metric::Cpa);
    let [chart_area, table_area] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let pts = |s: &[Counters]| -> Vec<(f64, f64)> {
        s.iter().enumerate().map(|(d, x)| ((d + 1) as f64, m.value(x).unwrap_or(0.0))).collect()
    };
    let (p_mine, p_theirs) = (pts(&mine), pts(&theirs));
    let max_y = p_mine.iter().chain(&p_theirs).map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let max_x = p_mine.len().max(p_theirs.len()).max(1) as f64;
    let datasets = vec![
        Dataset::default()
            .name(truncate(label, 30))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.muted)
            .data(&p_theirs),
        Dataset::default()
            .name("this campaign")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.accent)
            .data(&p_mine),
    ];
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([1.0, max_x])
                .labels(["day 1".to_string(), format!("day {max_x:.0}")])
                .style(t.muted),
        )
        .y_axis(
            Axis::default().bounds([0.0, max_y * 1.05]).labels(["0".to_string(), m.format(Some(max_y))]).style(t.muted),
        );
    f.render_widget(chart, chart_area);
    let mut lines = vec![Line::styled(
        fit(
            &format!("{:>4} {:>11} {:>11} {:>7} {:>9} {:>9}", "day", m.label(), "before", "Δ", cost.label(), "before"),
            width,
        ),
        t.muted,
    )];
    let today = mine.len();
    let rows = table_area.height.saturating_sub(1) as usize;
    let from = today.saturating_sub(rows);
    for d in from..today.max(1).min(mine.len().max(theirs.len())) {
        let (x, y) = (mine.get(d), theirs.get(d));
        let (vx, vy) = (x.and_then(|x| m.value(x)), y.and_then(|y| m.value(y)));
        let delta = match (vx, vy) {
            (Some(p), Some(q)) if q > 0.0 => Some((p - q) / q),
            _ => None,
        };
        let ahead = delta.map(|d| (d >= 0.0) == m.higher_is_better());
        let mut spans = vec![Span::raw(format!("{:>4} {:>11} {:>11} ", d + 1, m.format(vx), m.format(vy),))];
        spans.push(change_span(app, delta, ahead));
        spans.push(Span::raw(format!(
            "  {:>9} {:>9}",
            cost.format(x.and_then(|x| cost.value(x))),
            cost.format(y.and_then(|y| cost.value(y)))
        )));
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines).style(t.base), table_area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::theme::Theme;

    /// Better or worse reads from colour, or, where there is none, from a mark in the same
    /// five columns.
    #[test]
    fn a_change_says_better_or_worse_without_colour_too() {
        let mut app = App::new(std::sync::Arc::default(), Theme::load("default").unwrap(), "t");
        let text = |app: &App, ch: f64, better: Option<bool>| change_span(app, Some(ch), better).content.to_string();
        assert_eq!(text(&app, 0.12, Some(false)), " ▲12%");
        app.theme = Theme::mono();
        assert_eq!(text(&app, 0.12, Some(false)), "▲12%✗");
        assert_eq!(text(&app, -0.3, Some(true)), "▼30%✓");
        assert_eq!(text(&app, 4.0, Some(true)), "▲99+✓");
        assert_eq!(text(&app, 0.05, None), "  ▲5%", "too few to tell: no mark");
        for ch in [0.0, 0.5, 12.0, -0.99] {
            assert_eq!(text(&app, ch, Some(true)).chars().count(), 5);
        }
    }
}
