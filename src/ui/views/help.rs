//! The `?` help: every key, from the same table the key handler uses.

use crate::ui::app::App;
use crate::ui::keys::{BINDINGS, Scope};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut lines = Vec::new();
    for (scope, title) in [(Scope::Global, "Everywhere"), (Scope::Lists, "Lists"), (Scope::Campaign, "Campaign view"), (Scope::Channel, "Channel view")] {
        lines.push(Line::styled(title, t.accent));
        for b in BINDINGS.iter().filter(|b| b.scope == scope) {
            lines.push(Line::from(vec![Span::styled(format!("  {:<13}", b.keys), t.good), Span::styled(b.help, t.base)]));
        }
    }
    lines.push(Line::styled("Health: ● ok  ◐ slow  ◌ stale  ? bad data  ✖ failing  ‖ paused  … pending", t.muted));
    let w = area.width.min(72);
    let h = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" Keys — ? or Esc to close ", t.accent)).border_style(t.muted);
    f.render_widget(Paragraph::new(lines).block(block).style(t.base), popup);
}
