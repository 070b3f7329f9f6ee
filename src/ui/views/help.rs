//! The `?` help: every key, from the same table the key handler uses.

use crate::ui::app::App;
use crate::ui::keys::Scope;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    // Two columns side by side where the screen is wide enough and one would not fit; else
    // one. Each entry wraps within its column, so nothing is cut; what does not fit scrolls.
    let two = columns(app, (area.width.min(100).saturating_sub(2) / 2) as usize);
    let one_col = area.width < 76 || two.0.len() + two.1.len() + 2 <= area.height as usize;
    // One column: the halves again at its width, one after the other.
    let one = one_col.then(|| {
        let (mut left, right) = columns(app, area.width.min(60).saturating_sub(2) as usize);
        left.extend(right);
        left
    });
    let t = &app.theme;
    let lines = one.as_ref().map_or(two.0.len().max(two.1.len()), Vec::len);
    let (w, h) = (area.width.min(if one_col { 60 } else { 100 }), (lines as u16 + 2).min(area.height));
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let shown = h.saturating_sub(2) as usize;
    let max = lines.saturating_sub(shown);
    app.help_max.set(max);
    let top = app.help_scroll.min(max);
    f.render_widget(Clear, popup);
    let close = app.keys.key_of(crate::ui::keys::Action::Help);
    let title = if max == 0 {
        format!(" Keys — {close} or Esc to close ")
    } else {
        format!(" Keys — {}–{} of {lines}, j/k PgDn/PgUp scroll · {close} or Esc to close ", top + 1, top + shown)
    };
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, t.accent)).border_style(t.muted);
    let inner = block.inner(popup);
    f.render_widget(block, popup);
    let scroll = (top as u16, 0);
    if let Some(one) = one {
        f.render_widget(Paragraph::new(one).style(t.base).scroll(scroll), inner);
    } else {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
        f.render_widget(Paragraph::new(two.0).style(t.base).scroll(scroll), l);
        f.render_widget(Paragraph::new(two.1).style(t.base).scroll(scroll), r);
    }
}

/// The help's two halves, each line within `width` columns.
fn columns(app: &App, width: usize) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let t = &app.theme;
    // The key column as wide as the widest keys (rebound keys may be longer), within reason.
    let key_w = app.keys.bindings.iter().map(|b| b.keys_text().chars().count()).max().unwrap_or(0).clamp(11, 20) + 2;
    let text_w = width.saturating_sub(key_w + 2).max(12);
    let section = |scopes: &[(Scope, &'static str)]| {
        let mut lines = Vec::new();
        for (scope, title) in scopes {
            lines.push(Line::styled(*title, t.accent));
            for b in app.keys.bindings.iter().filter(|b| b.scope == *scope) {
                for (i, part) in wrap(b.help, text_w).into_iter().enumerate() {
                    let keys = if i == 0 { b.keys_text() } else { String::new() };
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {keys:<key_w$}"), t.good),
                        Span::styled(part, t.base),
                    ]));
                }
            }
        }
        lines
    };
    let left = section(&[
        (Scope::Global, "Everywhere"),
        (Scope::Lists, "Lists"),
        (Scope::Optimize, "Optimize view"),
        (Scope::Analyze, "Analyze view"),
    ]);
    let mut right = section(&[
        (Scope::Campaign, "Campaign view"),
        (Scope::Channel, "Channel view"),
        (Scope::Alerts, "Alerts view"),
    ]);
    right.push(Line::raw(""));
    right.push(Line::styled("Commands (:, Tab completes)", t.accent));
    let wrap_at = width.saturating_sub(1).clamp(20, 46);
    let mut line = String::from(" ");
    for (name, arg, _) in crate::ui::commands::COMMANDS {
        let item = if arg.is_empty() {
            format!(" :{name}")
        } else {
            format!(" :{name} {}", arg.split('|').next().unwrap_or(arg))
        };
        if line.chars().count() + item.chars().count() > wrap_at {
            right.push(Line::styled(std::mem::replace(&mut line, String::from(" ")), t.muted));
        }
        line.push_str(&item);
    }
    right.push(Line::styled(line, t.muted));
    right.push(Line::raw(""));
    right.push(Line::styled("Health", t.accent));
    right.push(Line::styled("  ● ok  ◐ slow  ◌ stale  … pending", t.muted));
    right.push(Line::styled("  ◔ throttled  ? bad data", t.muted));
    right.push(Line::styled("  ✖ failing  ‖ paused", t.muted));
    (left, right)
}

/// `text` in lines of at most `width` columns, broken at spaces (a longer word alone).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let w = unicode_width::UnicodeWidthStr::width(line.as_str());
        if !line.is_empty() && w + 1 + unicode_width::UnicodeWidthStr::width(word) > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out
}
