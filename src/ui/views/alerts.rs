//! Alerts, grouped by campaign: firing first, worst first, with state, age, the rule, one
//! line of explanation and who acknowledged it.

use crate::alert::{AlertState, Severity};
use crate::ui::app::{App, StateFilter};
use crate::ui::widgets::{fit, truncate};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let snap = &app.snap;
    if snap.alerts.is_empty() {
        f.render_widget(
            Paragraph::new("No alerts: every KPI within its limits and every source healthy.").style(t.good),
            area,
        );
        return;
    }
    let width = area.width as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let filtered = app.alerts.min_severity != Severity::Info || app.alerts.states != StateFilter::All;
    if filtered {
        let sev = match app.alerts.min_severity {
            Severity::Info => "all severities",
            Severity::Warn => "warnings and worse",
            Severity::Crit => "critical",
        };
        let hidden = snap.alerts.len() - app.alerts.rows.len();
        use crate::ui::keys::Action;
        let (v, st) = (app.keys.key_of(Action::SeverityFilter), app.keys.key_of(Action::StateFilter));
        let text = format!("showing {sev}, {} ({hidden} hidden; {v}, {st} to change)", app.alerts.states.label());
        lines.push(Line::styled(fit(&text, width), t.muted));
    }
    let mut selected_line = 0;
    let mut campaigns: Vec<&str> = Vec::new();
    for a in app.alerts.rows.iter().map(|i| &snap.alerts[*i]) {
        if !campaigns.contains(&a.key.campaign.as_str()) {
            campaigns.push(&a.key.campaign);
        }
    }
    if campaigns.is_empty() {
        lines.push(Line::styled(fit("No alert matches the filter.", width), t.good));
    }
    for camp in campaigns {
        let name = snap.campaign(camp).map_or(camp.to_string(), |c| c.campaign.name.clone());
        lines.push(Line::styled(truncate(&name, width), t.accent));
        for (i, a) in
            app.alerts.rows.iter().map(|i| &snap.alerts[*i]).enumerate().filter(|(_, a)| a.key.campaign == camp)
        {
            let (sym, style) = match (a.state, a.severity) {
                (AlertState::Resolved, _) => ("✓", t.good),
                (_, Severity::Crit) => ("✖", t.bad),
                (_, Severity::Warn) => ("▲", t.warn),
                (_, Severity::Info) => ("i", t.muted),
            };
            let silence = snap.silence_of(a);
            // Handled alerts say so in the state column, which is never cut off.
            let state = match (a.state, silence.is_some(), a.ack.is_some()) {
                (AlertState::Pending, ..) => "pending",
                (AlertState::Resolved, ..) => "resolved",
                (AlertState::Firing, true, _) => "silenced",
                (AlertState::Firing, false, true) => "acked",
                (AlertState::Firing, false, false) => "FIRING",
            };
            let age = compact_age(snap.now_ms - a.resolved_ms.or(a.fired_ms).unwrap_or(a.since_ms));
            // Who handled it comes first, so a narrow screen does not cut it off; the state
            // column already says "acked" when only acked.
            let handled = match (silence, &a.ack) {
                (Some(s), ack) => format!(
                    "[{}silenced {} more by {}] ",
                    ack.as_ref().map_or(String::new(), |k| format!("ack {}, ", k.by)),
                    compact_age(s.until_ms - snap.now_ms),
                    s.by
                ),
                (None, Some(k)) => format!("[ack {}] ", k.by),
                (None, None) => String::new(),
            };
            let head = format!(" {sym} {:<8} {:>6}  {:<16} ", state, age, truncate(&a.key.channel, 16));
            // The summary names the limit or the source problem; the rule id would repeat it.
            let rest = format!("{handled}{}", a.summary);
            let rest_w = width.saturating_sub(unicode_width::UnicodeWidthStr::width(head.as_str()));
            let line = Line::from(vec![
                Span::styled(head, style),
                Span::styled(fit(&rest, rest_w), if a.ack.is_some() || silence.is_some() { t.muted } else { t.base }),
            ]);
            if i == app.alerts.sel {
                selected_line = lines.len();
                lines.push(line.style(t.selected));
            } else {
                lines.push(line);
            }
        }
    }
    // The selected alert's detail and first step, when there is room for it; read in full
    // (its whole explanation and plan, wrapped), it takes what it needs, up to most of the
    // screen.
    let reading = app.alerts.reading.then(|| app.selected_alert().map(|a| full(app, a, width))).flatten();
    let (list_area, detail_area) = match &reading {
        Some(text) => {
            let h = (text.len() as u16).min(area.height.saturating_sub(3)).max(area.height.min(4));
            let [l, d] = Layout::vertical([Constraint::Min(1), Constraint::Length(h)]).areas(area);
            (l, Some(d))
        }
        None if area.height >= 12 => {
            let [l, d] = Layout::vertical([Constraint::Min(1), Constraint::Length(4)]).areas(area);
            (l, Some(d))
        }
        None => (area, None),
    };
    let height = list_area.height as usize;
    let scroll = selected_line.saturating_sub(height.saturating_sub(1));
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)).style(t.base), list_area);
    match (detail_area, reading, app.selected_alert()) {
        (Some(d), Some(text), _) => f.render_widget(Paragraph::new(text).style(t.base), d),
        (Some(d), None, Some(a)) => f.render_widget(Paragraph::new(detail(app, a, width)).style(t.base), d),
        _ => {}
    }
}

/// The selected alert in full, wrapped to the width: what and since when, the whole
/// explanation, and the whole contingency plan with its owner (or that there is none).
fn full(app: &App, a: &crate::alert::Alert, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let key = app.keys.key_of(crate::ui::keys::Action::AlertDetail);
    let head = format!("── {} · {} · {} · {key} or Esc to close ", a.key.scope(), a.key.rule, a.severity);
    let pad = "─".repeat(width.saturating_sub(unicode_width::UnicodeWidthStr::width(head.as_str())));
    let mut lines = vec![Line::styled(fit(&format!("{head}{pad}"), width), t.muted)];
    lines.extend(wrapped(&a.summary, width).into_iter().map(Line::raw));
    match app.snap.contingency_of(a) {
        Some(p) => {
            lines.push(Line::styled("contingency plan:", t.accent));
            lines.extend(wrapped(&p.plan, width.saturating_sub(2)).into_iter().map(|l| Line::raw(format!("  {l}"))));
            if let Some(o) = &p.owner {
                lines.push(Line::from(vec![Span::styled("owner: ", t.accent), Span::raw(o.clone())]));
            }
        }
        None => lines.push(Line::styled(fit("no contingency plan in the campaign file for this rule", width), t.muted)),
    }
    lines
}

/// `text` in lines of at most `width` columns, broken where the text has room to.
fn wrapped(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, more) = crate::ui::widgets::split_at_width(rest, width.max(10));
        out.push(line.to_string());
        if more.len() >= rest.len() {
            break;
        }
        rest = more;
    }
    out
}

/// Four lines on one alert: what and since when, the explanation (two lines), the first step
/// to take.
fn detail(app: &App, a: &crate::alert::Alert, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let snap = &app.snap;
    let scope = a.key.scope();
    let since = compact_age(snap.now_ms - a.since_ms);
    let head = format!("── {scope} · {} · {} · condition for {since} ", a.key.rule, a.severity);
    let step = match snap.contingency_of(a) {
        Some(p) => Line::from(vec![
            Span::styled("first step: ", t.accent),
            Span::raw(fit(&p.first_step(), width.saturating_sub(12))),
        ]),
        None => Line::styled(fit("no contingency plan in the campaign file for this rule", width), t.muted),
    };
    let head = Line::styled(
        fit(
            &format!(
                "{head}{}",
                "─".repeat(width.saturating_sub(unicode_width::UnicodeWidthStr::width(head.as_str())))
            ),
            width,
        ),
        t.muted,
    );
    // The explanation over two lines: a KPI verdict's evidence comes at its end.
    let (first, rest) = crate::ui::widgets::split_at_width(&a.summary, width);
    vec![head, Line::raw(fit(first, width)), Line::raw(fit(rest, width)), step]
}

/// "45s", "31m", "18h53m", "2d4h": at most six columns.
pub fn compact_age(ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    match m {
        0 => format!("{}s", ms.max(0) / 1000),
        1..=59 => format!("{m}m"),
        60..=1439 => format!("{}h{:02}m", m / 60, m % 60),
        _ => format!("{}d{}h", m / 1440, m % 1440 / 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_fit_six_columns() {
        use super::compact_age;
        assert_eq!(compact_age(45_000), "45s");
        assert_eq!(compact_age(31 * 60_000), "31m");
        assert_eq!(compact_age((18 * 60 + 53) * 60_000), "18h53m");
        assert_eq!(compact_age((2 * 1440 + 4 * 60) * 60_000), "2d4h");
        assert_eq!(compact_age(-5), "0s");
    }
}
