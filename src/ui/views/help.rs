//! The `?` help: every key, from the same table the key handler uses.

use crate::ui::app::App;
use crate::ui::keys::Scope;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    // The key column as wide as the widest keys (rebound keys may be longer), within reason.
    let key_w = app.keys.bindings.iter().map(|b| b.keys_text().chars().count()).max().unwrap_or(0).clamp(11, 20) + 2;
    let section = |scopes: &[(Scope, &'static str)]| {
        let mut lines = Vec::new();
        for (scope, title) in scopes {
            lines.push(Line::styled(*title, t.accent));
            for b in app.keys.bindings.iter().filter(|b| b.scope == *scope) {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<key_w$}", b.keys_text()), t.good),
                    Span::styled(b.help, t.base),
                ]));
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
    let mut line = String::from(" ");
    for (name, arg, _) in crate::ui::commands::COMMANDS {
        let item = if arg.is_empty() {
            format!(" :{name}")
        } else {
            format!(" :{name} {}", arg.split('|').next().unwrap_or(arg))
        };
        if line.chars().count() + item.chars().count() > 46 {
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
    // One column when it fits, else two side by side.
    let one_col = left.len() + right.len() + 2 <= area.height as usize || area.width < 76;
    let (w, h) = if one_col {
        (area.width.min(60), ((left.len() + right.len()) as u16 + 2).min(area.height))
    } else {
        (area.width.min(100), (left.len().max(right.len()) as u16 + 2).min(area.height))
    };
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            format!(" Keys — {} or Esc to close ", app.keys.key_of(crate::ui::keys::Action::Help)),
            t.accent,
        ))
        .border_style(t.muted);
    let inner = block.inner(popup);
    f.render_widget(block, popup);
    if one_col {
        let mut lines = left;
        lines.extend(right);
        f.render_widget(Paragraph::new(lines).style(t.base), inner);
    } else {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
        f.render_widget(Paragraph::new(left).style(t.base), l);
        f.render_widget(Paragraph::new(right).style(t.base), r);
    }
}
