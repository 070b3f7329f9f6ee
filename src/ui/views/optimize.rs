//! Optimize: recommendations per campaign, best first, each with its change, expected effect and
//! confidence; the selected one's evidence below; then the journal of actions sent.

use crate::optimize::journal::Outcome;
use crate::optimize::recommend::Recommendation;
use crate::ui::app::App;
use crate::ui::widgets::{fit, truncate};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let snap = &app.snap;
    let width = area.width as usize;
    if app.optimize.preview {
        if let Some(r) = app.selected_rec() {
            f.render_widget(Paragraph::new(detail(app, r, true, width)).wrap(Wrap { trim: false }).style(t.base), area);
        }
        return;
    }
    let journal_rows = (snap.journal.len().min(6) as u16 + 1).max(2);
    let detail_rows = if area.height >= 16 { 6 } else { 0 };
    let [list_area, detail_area, journal_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(detail_rows),
        Constraint::Length(journal_rows.min(area.height / 3)),
    ])
    .areas(area);

    // The recommendations, grouped by campaign.
    let mut lines: Vec<Line<'static>> = Vec::new();
    if snap.read_only {
        lines.push(Line::styled(fit("read-only: recommendations are shown, nothing can be applied", width), t.warn));
    }
    if snap.recommendations.is_empty() {
        lines.push(Line::styled(
            fit("No recommendations: no channel is clearly worse or better than its limits allow, and no A/B test is decided.", width),
            t.good,
        ));
    }
    let mut selected_line = 0;
    let mut last_campaign = "";
    for (i, r) in snap.recommendations.iter().enumerate() {
        if r.campaign != last_campaign {
            last_campaign = &r.campaign;
            let name = snap.campaign(&r.campaign).map_or(r.campaign.clone(), |c| c.campaign.name.clone());
            lines.push(Line::styled(truncate(&name, width), t.accent));
        }
        let conf = format!("{:>4.0}%", r.confidence * 100.0);
        let what = if r.changes.is_empty() {
            r.effect.clone()
        } else {
            let c: Vec<String> = r.changes.iter().map(|c| c.describe()).collect();
            format!("{} · {}", c.join("; "), r.effect)
        };
        let head = format!(" {:<12} ", r.kind.label());
        let rest_w = width.saturating_sub(head.chars().count() + conf.chars().count() + 1);
        let style = if r.info_only { t.muted } else { t.base };
        let mut line = Line::from(vec![
            Span::styled(head, if r.info_only { t.muted } else { t.accent }),
            Span::styled(fit(&what, rest_w), style),
            Span::styled(format!(" {conf}"), t.muted),
        ]);
        if i == app.optimize.sel && !app.optimize.journal_focus {
            selected_line = lines.len();
            line = line.style(t.selected);
        }
        lines.push(line);
    }
    let height = list_area.height as usize;
    let scroll = selected_line.saturating_sub(height.saturating_sub(1));
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)).style(t.base), list_area);

    if detail_rows > 0
        && let Some(r) = app.selected_rec()
    {
        f.render_widget(Paragraph::new(detail(app, r, false, width)).style(t.base), detail_area);
    }

    // The journal, newest first.
    let mut jl = vec![Line::styled(
        fit(
            &format!(
                "── journal ({}; J select · u undo) {}",
                crate::domain::format::count_of(snap.journal.len(), "action"),
                "─".repeat(width)
            ),
            width,
        )
        .replace('…', "─"),
        t.muted,
    )];
    for (i, e) in snap.journal.iter().rev().enumerate().take(journal_area.height.saturating_sub(1) as usize) {
        let style = match e.outcome {
            Outcome::Applied { .. } if e.undone_by.is_some() => t.muted,
            Outcome::Applied { .. } => t.good,
            Outcome::Failed { .. } | Outcome::Unknown { .. } => t.bad,
            Outcome::Sending => t.warn,
        };
        let mut line = Line::styled(fit(&format!(" {}", e.line()), width), style);
        if app.optimize.journal_focus && i == app.optimize.journal_sel {
            line = line.style(t.selected);
        }
        jl.push(line);
    }
    f.render_widget(Paragraph::new(jl), journal_area);
}

/// The selected recommendation: changes before → after, effect, evidence.
fn detail(app: &App, r: &Recommendation, full: bool, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let head = format!("── {} · {} · confidence {:.0}% ", r.kind.label(), r.campaign, r.confidence * 100.0);
    let mut out = vec![Line::styled(fit(&format!("{head}{}", "─".repeat(width)), width), t.muted)];
    for c in &r.changes {
        out.push(Line::from(vec![Span::styled("change:   ", t.accent), Span::raw(c.describe())]));
    }
    out.push(Line::from(vec![Span::styled("effect:   ", t.accent), Span::raw(r.effect.clone())]));
    for (i, e) in r.evidence.iter().enumerate() {
        let label = if i == 0 { "evidence: " } else { "          " };
        out.push(Line::from(vec![Span::styled(label, t.accent), Span::styled(e.clone(), Style::default())]));
    }
    if full {
        out.push(Line::raw(""));
        use crate::ui::keys::Action;
        let k = |a| app.keys.key_of(a);
        let back = k(Action::Back);
        out.push(Line::styled(
            if r.info_only {
                format!("nothing to apply yet · {back} back")
            } else {
                format!("{} apply (asks to confirm) · {} dismiss · {back} back", k(Action::ApplyRec), k(Action::Snooze))
            },
            t.muted,
        ));
    }
    out
}
