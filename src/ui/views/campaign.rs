//! One campaign: its goal and KPI gauges above a sortable, filterable channel table with
//! sparklines. Only the rows on screen are built (the table may hold thousands).

use super::overview::{campaign_lines, health_symbol};
use crate::alert::evidence::Standing;
use crate::domain::ChannelStatus;
use crate::domain::Metric;
use crate::engine::snapshot::{CampaignView, ChannelView};
use crate::ui::app::{App, Column};
use crate::ui::widgets::{sparkline, truncate};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

/// A table column: what it shows and how wide it is, in the order they are dropped last.
#[derive(Clone, Copy)]
enum Col {
    Data(Column, u16),
    Status,
    Trend(u16),
}

/// The columns that fit in `width`, most important first, then put in display order: spend,
/// then what the campaign's goals and KPI limits name (in their order), the spend trend, and
/// the other counters and rates as room allows — less those the campaign has none of (a Leads
/// column all zero for a shop's campaign), unless a goal or a limit names them. The column
/// sorted by comes right after spend.
fn columns(width: u16, campaign: &CampaignView, sort: Column) -> Vec<Col> {
    let plan = &campaign.campaign;
    let named: Vec<Column> =
        plan.goals.iter().map(|g| g.metric).chain(plan.kpis.iter().map(|k| k.metric)).filter_map(Column::of).collect();
    let totals = &campaign.totals;
    let has = |c: Column| match c {
        Column::Leads | Column::Cpl => totals.leads > 0,
        Column::Conversions | Column::Cpa | Column::Cvr => totals.conversions > 0,
        Column::Revenue | Column::Roas => totals.revenue > 0.0,
        _ => true,
    };
    let width_of = |c: Column| match c {
        Column::Impressions | Column::Spend | Column::Revenue => 9,
        Column::Clicks | Column::Cpl | Column::Cpa | Column::Conversions => 8,
        Column::Roas => 7,
        _ => 6,
    };
    // The column sorted by is always shown, with its arrow.
    let mut order: Vec<Column> = vec![Column::Spend];
    order.extend((sort != Column::Name).then_some(sort));
    order.extend(named.iter().copied());
    let rest = [
        Column::Roas,
        Column::Ctr,
        Column::Cvr,
        Column::Cpa,
        Column::Conversions,
        Column::Leads,
        Column::Cpl,
        Column::Revenue,
        Column::Clicks,
        Column::Impressions,
    ];
    let mut wanted = vec![Col::Status];
    let push = |wanted: &mut Vec<Col>, c: Column| {
        if !wanted.iter().any(|w| matches!(w, Col::Data(x, _) if *x == c)) {
            wanted.push(Col::Data(c, width_of(c)));
        }
    };
    for c in order {
        push(&mut wanted, c);
    }
    wanted.push(Col::Trend(crate::engine::snapshot::SPARK_WIDTH as u16));
    for c in rest.into_iter().filter(|c| has(*c) || named.contains(c)) {
        push(&mut wanted, c);
    }
    let name_min = 14u16;
    let mut used = name_min;
    let mut chosen = Vec::new();
    for c in wanted {
        let w = col_width(c) + 1;
        if used + w <= width {
            used += w;
            chosen.push(c);
        }
    }
    let display = [
        Column::Impressions,
        Column::Clicks,
        Column::Ctr,
        Column::Cvr,
        Column::Leads,
        Column::Cpl,
        Column::Conversions,
        Column::Cpa,
        Column::Spend,
        Column::Revenue,
        Column::Roas,
    ];
    chosen.sort_by_key(|c| match c {
        Col::Status => 0,
        Col::Data(col, _) => 1 + display.iter().position(|x| x == col).unwrap_or(0),
        Col::Trend(_) => 50,
    });
    chosen
}

fn col_width(c: Col) -> u16 {
    match c {
        Col::Data(_, w) | Col::Trend(w) => w,
        Col::Status => 2,
    }
}

pub fn render(f: &mut Frame, area: Rect, app: &mut App) {
    let Some(c) = app.campaign().cloned() else {
        let key = app.keys.key_of(crate::ui::keys::Action::Overview);
        let text = format!("No campaign selected: press {key} for the overview.");
        f.render_widget(Paragraph::new(text).style(app.theme.muted), area);
        return;
    };
    let t = app.theme.clone();
    let width = area.width as usize;
    let mut head = vec![Line::from(vec![
        Span::styled(truncate(&c.campaign.name, width.saturating_sub(30)), t.accent),
        Span::styled(
            format!("  {} → {}  {}", c.campaign.start.format("%m-%d"), c.campaign.end.format("%m-%d"), c.campaign.id),
            t.muted,
        ),
    ])];
    head.extend(campaign_lines(&c, app.snap.now_ms, &t, width));
    // On short terminals the gauges give way to the table.
    let max_head = (area.height as usize).saturating_sub(6);
    head.truncate(max_head.max(1));
    let [top, table_area] = Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Min(0)]).areas(area);
    f.render_widget(Paragraph::new(head).style(t.base), top);

    if app.table.tasks {
        return checklist(f, table_area, app, &c);
    }
    let cols = columns(table_area.width, &c, app.table.sort);
    *app.table.shown.borrow_mut() =
        cols.iter().filter_map(|c| if let Col::Data(k, _) = c { Some(*k) } else { None }).collect();
    let by_name = match (app.table.sort, app.table.descending) {
        (Column::Name, true) => "Channel▼",
        (Column::Name, false) => "Channel▲",
        _ => "Channel",
    };
    let header = Row::new(std::iter::once(Cell::from(by_name)).chain(cols.iter().map(|col| {
        let (label, col_id) = match col {
            Col::Status => ("", None),
            Col::Data(k, _) => (k.label(), Some(*k)),
            Col::Trend(_) => ("Spend trend", None),
        };
        let arrow = if col_id == Some(app.table.sort) { if app.table.descending { "▼" } else { "▲" } } else { "" };
        let text = format!("{label}{arrow}");
        Cell::from(Line::from(text).alignment(if matches!(col, Col::Data(..)) {
            ratatui::layout::Alignment::Right
        } else {
            ratatui::layout::Alignment::Left
        }))
    })))
    .style(t.muted);
    let visible = table_area.height.saturating_sub(1) as usize;
    app.table.page = visible.max(1);
    let offset = if app.table.row >= visible { app.table.row + 1 - visible } else { 0 };
    let rows: Vec<Row> = app
        .table
        .rows
        .iter()
        .skip(offset)
        .take(visible)
        .enumerate()
        // Rows sorted for another state of the campaign are left out, never a panic.
        .filter_map(|(i, idx)| {
            let row = channel_row(c.channels.get(*idx)?, &c, &cols, &t, app.unmapped(&c.campaign, *idx));
            Some(if offset + i == app.table.row { row.style(t.selected) } else { row })
        })
        .collect();
    if rows.is_empty() {
        let msg = if app.table.filter.is_empty() {
            "This campaign has no channels."
        } else {
            "No channel matches the filter (Esc clears it)."
        };
        f.render_widget(Paragraph::new(msg).style(t.muted), table_area);
        return;
    }
    let widths: Vec<Constraint> =
        std::iter::once(Constraint::Min(14)).chain(cols.iter().map(|c| Constraint::Length(col_width(*c)))).collect();
    f.render_widget(Table::new(rows, widths).header(header).column_spacing(1), table_area);
}

/// The launch checklist in place of the channel table: overdue first, then open tasks by due
/// time, then those done (with who and when).
fn checklist(f: &mut Frame, area: Rect, app: &mut App, c: &CampaignView) {
    use crate::domain::format::span_short;
    let t = &app.theme;
    let now = app.snap.now_ms;
    let (rows, selected) = app.task_rows();
    let visible = area.height.saturating_sub(1) as usize;
    app.table.page = visible.max(1);
    let offset = (selected + 1).saturating_sub(visible);
    let wide = area.width >= 100;
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(visible)
        .map(|(n, &i)| {
            let task = &c.campaign.tasks[i];
            let (state, style) = if task.done {
                let when = task.done_at.map(|d| d.format(" %m-%d").to_string()).unwrap_or_default();
                (format!("✓ done{when}"), t.good)
            } else if task.overdue(now) {
                (format!("✗ {} late", span_short(now - task.due_ms())), t.bad)
            } else {
                (format!("○ in {}", span_short(task.due_ms() - now)), t.base)
            };
            let mut cells = vec![
                Cell::from(Span::styled(state, style)),
                Cell::from(task.title.clone()),
                Cell::from(task.owner.clone()),
                Cell::from(Span::styled(task.due.format("%m-%d %H:%M").to_string(), t.muted)),
            ];
            if wide {
                let by = task.done_by.as_deref().map(|b| format!("by {b}")).unwrap_or_default();
                cells.push(Cell::from(Span::styled(task.channel.clone().unwrap_or_default(), t.muted)));
                cells.push(Cell::from(Span::styled(by, t.muted)));
            }
            let row = Row::new(cells);
            if n == selected { row.style(t.selected) } else { row }
        })
        .collect();
    let mut head = vec!["", "Task", "Owner", "Due"];
    let mut widths = vec![Constraint::Length(12), Constraint::Min(16), Constraint::Length(12), Constraint::Length(11)];
    if wide {
        head.extend(["Channel", "Done"]);
        widths.extend([Constraint::Length(16), Constraint::Length(14)]);
    }
    let header = Row::new(head).style(t.muted);
    f.render_widget(Table::new(body, widths).header(header).column_spacing(1), area);
}

/// One channel's row; `unmapped`: the counters its source does not read, whose metrics show
/// as "–" (unknown), never as a measured zero.
fn channel_row<'a>(
    ch: &'a ChannelView,
    c: &CampaignView,
    cols: &[Col],
    t: &crate::ui::theme::Theme,
    unmapped: u8,
) -> Row<'a> {
    let mut cells = vec![Cell::from(&*ch.name)];
    for col in cols {
        cells.push(match col {
            Col::Status => {
                let (sym, style) = if ch.status == Some(ChannelStatus::Paused) {
                    ("‖", t.muted)
                } else {
                    health_symbol(ch.health, t)
                };
                Cell::from(Span::styled(sym, style))
            }
            Col::Data(k, _) => {
                let m = k.metric().expect("data columns have a metric");
                if !m.measured_without(unmapped) {
                    cells.push(Cell::from(
                        Line::from(Span::styled("–", t.muted)).alignment(ratatui::layout::Alignment::Right),
                    ));
                    continue;
                }
                let v = m.value(&ch.totals);
                let standing = standing(c, m, &ch.totals);
                let style = match standing {
                    Standing::Breached => t.bad,
                    Standing::Unsure => t.warn,
                    Standing::Holds => t.base,
                };
                let text = match t.standing_mark(standing) {
                    ' ' => m.format(v),
                    mark => format!("{}{mark}", m.format(v)),
                };
                Cell::from(Line::from(Span::styled(text, style)).alignment(ratatui::layout::Alignment::Right))
            }
            Col::Trend(w) => {
                Cell::from(Span::styled(sparkline(&ch.spark(Metric::Spend, *w as usize), *w as usize), t.accent))
            }
        });
    }
    Row::new(cells)
}

/// The worst standing of the counters against the campaign's KPI limits on that metric: a
/// breach in red, a value past a limit on too little data yet in the warning colour.
fn standing(c: &CampaignView, m: Metric, counters: &crate::domain::Counters) -> Standing {
    c.campaign
        .kpis
        .iter()
        .filter(|k| k.metric == m)
        .filter_map(|k| crate::alert::evidence::standing(k, counters))
        .max()
        .unwrap_or(Standing::Holds)
}
