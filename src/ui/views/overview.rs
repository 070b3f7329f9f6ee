//! The overview: every campaign with its goals against time, spend pacing, KPI status and
//! source health, so the launch operator sees in a second which one is off.

use crate::domain::Health;
use crate::domain::format::{compact, money_short, percent};
use crate::domain::metrics::{goal_progress, pacing};
use crate::domain::time::DAY_MS;
use crate::domain::{Campaign, Metric};
use crate::engine::snapshot::CampaignView;
use crate::ui::app::App;
use crate::ui::theme::Theme;
use crate::ui::widgets::{bar, fit, truncate};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let snap = &app.snap;
    if snap.campaigns.is_empty() {
        let t = &app.theme;
        let lines = vec![
            Line::styled("No campaigns in this database yet.", t.accent),
            Line::raw(""),
            Line::raw("Watch simulated campaigns live:   cockpit demo"),
            Line::raw("Load a campaign plan:             cockpit campaign import FILE.toml"),
            Line::raw("See the file format:              README.md, or fixtures/*.toml"),
        ];
        let h = lines.len() as u16;
        let y = area.y + area.height.saturating_sub(h) / 2;
        f.render_widget(Paragraph::new(lines).style(t.base), Rect { y, height: h.min(area.height), ..area });
        return;
    }
    let area = match blended_line(app, area.width as usize) {
        Some(line) if area.height > 4 => {
            f.render_widget(Paragraph::new(line), Rect { height: 1, ..area });
            Rect { y: area.y + 1, height: area.height - 1, ..area }
        }
        _ => area,
    };
    // Wide terminals get campaigns side by side, about 100 columns each.
    let cols = (area.width as usize / 100).clamp(1, 3).min(snap.campaigns.len());
    if cols > 1 {
        let areas = ratatui::layout::Layout::horizontal(vec![ratatui::layout::Constraint::Ratio(1, cols as u32); cols])
            .split(area);
        for (k, col_area) in areas.iter().enumerate() {
            let picks: Vec<usize> = (k..snap.campaigns.len()).step_by(cols).collect();
            render_column(f, Rect { width: col_area.width.saturating_sub(2), ..*col_area }, app, &picks);
        }
        return;
    }
    let all: Vec<usize> = (0..snap.campaigns.len()).collect();
    render_column(f, area, app, &all);
}

/// The running campaigns blended, for each currency: all spend (and today's), all revenue and
/// ROAS over them (not a cost per result: campaigns count different results); only with two
/// or more running.
fn blended_line(app: &App, width: usize) -> Option<Line<'static>> {
    let (snap, t) = (&app.snap, &app.theme);
    let running: Vec<&CampaignView> = snap
        .campaigns
        .iter()
        .map(|c| &**c)
        .filter(|c| (c.campaign.start_ms()..c.campaign.end_ms()).contains(&snap.now_ms))
        .collect();
    if running.len() < 2 {
        return None;
    }
    let mut currencies: Vec<&str> = running.iter().map(|c| c.campaign.currency.as_str()).collect();
    currencies.dedup();
    currencies.sort_unstable();
    currencies.dedup();
    let mut spans = vec![Span::styled(format!("  All {} running", running.len()), t.muted)];
    for cur in currencies {
        let of_cur = || running.iter().filter(|c| c.campaign.currency == cur);
        let sum = crate::domain::Counters::sum(of_cur().map(|c| &c.totals));
        let today: f64 = of_cur().map(|c| c.today.spend).sum();
        let revenue = if sum.revenue > 0.0 {
            format!(" · revenue {} · ROAS {}", money_short(sum.revenue), Metric::Roas.format(Metric::Roas.value(&sum)))
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!(" │ {cur} spend {} (today {}){revenue}", money_short(sum.spend), money_short(today)),
            t.base,
        ));
    }
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    if unicode_width::UnicodeWidthStr::width(text.as_str()) > width {
        return Some(Line::styled(truncate(&text, width), t.base));
    }
    Some(Line::from(spans))
}

/// The campaigns `picks` (indexes) one under another, scrolled to keep the selection visible.
/// Only the campaigns on screen are laid out: the selection, those above it that fit with it,
/// and those below it until the area is full.
fn render_column(f: &mut Frame, area: Rect, app: &App, picks: &[usize]) {
    let snap = &app.snap;
    let width = area.width as usize;
    let block = |k: usize| {
        let (i, c) = (picks[k], &snap.campaigns[picks[k]]);
        let mut lines = vec![title_line(c, snap.now_ms, i == app.campaign_sel, &app.theme, width)];
        if snap.now_ms >= c.campaign.end_ms() {
            lines.push(ended_line(c, &app.theme, width));
        } else {
            lines.extend(campaign_lines(c, snap.now_ms, &app.theme, width));
        }
        // A blank line after each campaign.
        lines.push(Line::raw(""));
        lines
    };
    let height = area.height as usize;
    let sel = picks.iter().position(|i| *i == app.campaign_sel).unwrap_or(0);
    // From the selection upwards, as many whole campaigns as fit with it (the first on screen
    // is the highest one that does).
    let mut shown = vec![block(sel)];
    let mut used = shown[0].len();
    for k in (0..sel).rev() {
        let b = block(k);
        if used + b.len() > height {
            break;
        }
        used += b.len();
        shown.push(b);
    }
    let mut lines: Vec<Line<'static>> = shown.into_iter().rev().flatten().collect();
    for k in sel + 1..picks.len() {
        if lines.len() >= height {
            break;
        }
        lines.extend(block(k));
    }
    f.render_widget(Paragraph::new(lines).style(app.theme.base), area);
}

fn title_line(c: &CampaignView, now: i64, selected: bool, t: &Theme, width: usize) -> Line<'static> {
    let camp = &c.campaign;
    let total_days = ((camp.end_ms() - camp.start_ms()) as f64 / DAY_MS as f64).ceil().max(1.0) as i64;
    let day = ((now - camp.start_ms()) / DAY_MS + 1).clamp(0, total_days);
    let when = if now < camp.start_ms() {
        "not started".to_string()
    } else if now >= camp.end_ms() {
        "ended".to_string()
    } else {
        format!("day {day}/{total_days}")
    };
    let (sym, hs) = health_symbol(c.health, t);
    let right = format!(" {when} · {} ", camp.currency);
    let right_w = right.chars().count() + 2;
    let name_w = width.saturating_sub(right_w + 2);
    let style = if selected { t.selected.patch(t.accent) } else { t.accent };
    Line::from(vec![
        Span::styled(if selected { "▸ " } else { "  " }, style),
        Span::styled(fit(&camp.name, name_w), style),
        Span::styled(right, t.muted),
        Span::styled(format!("{sym} "), hs),
    ])
}

/// An ended campaign in one line: each goal reached or missed, and what it spent.
fn ended_line(c: &CampaignView, t: &Theme, width: usize) -> Line<'static> {
    let camp = &c.campaign;
    let mut spans = vec![Span::raw("  ")];
    for g in camp.goals.iter().filter(|g| g.metric.is_cumulative()) {
        let achieved = g.metric.value(&c.totals).unwrap_or(0.0);
        let reached = achieved >= g.target;
        let share = if g.target > 0.0 { achieved / g.target } else { 0.0 };
        spans.push(Span::raw(format!("{} {} {} ", goal_label(g.metric), short(g.metric, achieved), percent(share))));
        spans.push(if reached { Span::styled("✓  ", t.good) } else { Span::styled("missed  ", t.warn) });
    }
    spans.push(Span::styled(
        format!("spent {} / {}", short(Metric::Spend, c.totals.spend), short(Metric::Spend, camp.total_budget)),
        t.muted,
    ));
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    if text.chars().count() > width {
        return Line::styled(fit(&text, width), t.muted);
    }
    Line::from(spans)
}

/// The goal gauges, the spend gauge and the KPI line of a campaign.
pub fn campaign_lines(c: &CampaignView, now: i64, t: &Theme, width: usize) -> Vec<Line<'static>> {
    let camp = &c.campaign;
    let mut gauges: Vec<(String, f64, Option<f64>, String, Style)> = Vec::new();
    let label_w = 10;
    for g in &camp.goals {
        let elapsed = camp.goal_elapsed(g, now);
        let value = g.metric.value(&c.totals);
        let (ratio, marker, text, style) = if g.metric.is_cumulative() {
            let achieved = value.unwrap_or(0.0);
            let (p, e) = goal_progress(achieved, g.target, elapsed).unwrap_or((0.0, elapsed));
            let (word, style) = pace_word(p, e, t);
            let text = format!("{} / {}  {} {word}", short(g.metric, achieved), short(g.metric, g.target), percent(p));
            (p, Some(e), text, style)
        } else {
            let ok = value.map(|v| if g.metric.higher_is_better() { v >= g.target } else { v <= g.target });
            let ratio = value.map_or(0.0, |v| {
                if g.metric.higher_is_better() { v / g.target } else { g.target / v.max(f64::MIN_POSITIVE) }
            });
            let style = match ok {
                Some(true) => t.good,
                Some(false) => t.bad,
                None => t.muted,
            };
            let mark = match ok {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "",
            };
            (ratio, None, format!("{} / {} {mark}", g.metric.format(value), g.metric.format(Some(g.target))), style)
        };
        gauges.push((goal_label(g.metric), ratio, marker, text, style));
    }
    // Spend against the total budget, with pacing and today's spend against the daily plan.
    let elapsed = camp.elapsed(now);
    let spent = c.totals.spend;
    let pace = pacing(spent, camp.total_budget, elapsed);
    let pace_style = match pace {
        Some(p) if p > 1.15 => t.bad,
        Some(p) if !(0.8..=1.05).contains(&p) => t.warn,
        Some(_) => t.good,
        None => t.muted,
    };
    let ratio = if camp.total_budget > 0.0 { spent / camp.total_budget } else { 0.0 };
    let text = format!(
        "{} / {}  pace {}",
        money_short(spent),
        money_short(camp.total_budget),
        pace.map_or("–".to_string(), |p| format!("{p:.2}×"))
    );
    gauges.push(("Spend".into(), ratio, Some(elapsed), text, pace_style));
    // One bar width for the whole campaign so that the pace markers line up.
    let text_w = gauges.iter().map(|g| unicode_width::UnicodeWidthStr::width(g.3.as_str())).max().unwrap_or(0);
    let bar_w = width.saturating_sub(label_w + text_w + 1).clamp(8.min(width.saturating_sub(label_w + 1)), 60);
    let mut lines: Vec<Line<'static>> = gauges
        .iter()
        .map(|(label, ratio, marker, text, style)| {
            gauge_line(label, *ratio, *marker, text, *style, t, label_w, bar_w, width)
        })
        .collect();
    lines.push(kpi_line(camp, c, now, t, width));
    if let Some(l) = task_line(camp, now, t, width) {
        lines.push(l);
    }
    if let Some(l) = trouble_line(c, t, width) {
        lines.push(l);
    }
    lines
}

/// The launch checklist in a line: how many are done, and the most urgent open task (in the
/// bad colour and marked `✗` when overdue).
fn task_line(camp: &Campaign, now: i64, t: &Theme, width: usize) -> Option<Line<'static>> {
    use crate::domain::campaign::{task_counts, task_order};
    use crate::domain::format::span_short;
    if camp.tasks.is_empty() {
        return None;
    }
    let (done, open, overdue) = task_counts(&camp.tasks, now);
    let head = format!("  {:<7} {done}/{} done", "Tasks", done + open);
    let next = task_order(&camp.tasks, now).into_iter().map(|i| &camp.tasks[i]).find(|t| !t.done);
    let (text, style) = match next {
        None => (String::new(), t.good),
        Some(task) if overdue > 0 => {
            let late = span_short(now - task.due_ms());
            (format!(" · {overdue} overdue ✗ {} ({}, {late} late)", task.title, task.owner), t.bad)
        }
        Some(task) => {
            let left = span_short(task.due_ms() - now);
            (format!(" · next: {} ({}, due in {left})", task.title, task.owner), t.muted)
        }
    };
    let head_w = head.chars().count();
    Some(Line::from(vec![
        Span::styled(head, if overdue > 0 { t.warn } else { t.muted }),
        Span::styled(crate::ui::widgets::truncate(&text, width.saturating_sub(head_w)), style),
    ]))
}

/// Names the channels whose data is not to be trusted right now, worst first, with the reason,
/// as many as fit, then how many more. The cost follows the width, not the number of channels.
fn trouble_line(c: &CampaignView, t: &Theme, width: usize) -> Option<Line<'static>> {
    let (sym, style) = health_symbol(c.channels[*c.trouble.first()?].health, t);
    let room = width.saturating_sub(4);
    let more = |shown: usize| match c.trouble.len() - shown {
        0 => String::new(),
        n => format!(" (+{n} more)"),
    };
    // Whole entries while they fit beside the count of the rest; the first one, cut if need be.
    let (mut text, mut shown) = (String::new(), 0);
    for ch in c.trouble.iter().map(|i| &c.channels[*i]) {
        let entry = match &ch.last_error {
            Some(e) => format!("{} {}: {e}", ch.key.channel, ch.health.label()),
            None => format!("{} {}", ch.key.channel, ch.health.label()),
        };
        let sep = if text.is_empty() { "" } else { " · " };
        let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
        if shown > 0 && width(&text) + width(sep) + width(&entry) + width(&more(shown + 1)) > room {
            break;
        }
        text.push_str(sep);
        text.push_str(&entry);
        shown += 1;
    }
    let more = more(shown);
    let text =
        truncate(&text, room.saturating_sub(unicode_width::UnicodeWidthStr::width(more.as_str())).max(1)) + &more;
    Some(Line::from(vec![Span::styled(format!("  {sym} "), style), Span::styled(text, style)]))
}

fn kpi_line(camp: &Campaign, c: &CampaignView, now: i64, t: &Theme, width: usize) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("  {:<w$}", "KPIs", w = 7), t.muted)];
    for k in &camp.kpis {
        use crate::alert::evidence::Standing;
        let v = k.metric.value(&c.totals);
        let (mark, style) = match crate::alert::evidence::standing(k, &c.totals) {
            Some(Standing::Holds) => ("✓", t.good),
            Some(Standing::Breached) => ("✗", t.bad),
            // Past the limit, on too little data to say yet.
            Some(Standing::Unsure) => ("?", t.warn),
            None => ("·", t.muted),
        };
        spans.push(Span::styled(format!("{} {} {mark}", k.metric.label(), k.metric.format(v)), style));
        spans.push(Span::raw("  "));
    }
    let roi = Metric::Roi.value(&c.totals);
    if camp.kpis.iter().all(|k| k.metric != Metric::Roas) && c.totals.revenue > 0.0 {
        spans.push(Span::styled(format!("ROAS {}  ", Metric::Roas.format(Metric::Roas.value(&c.totals))), t.base));
    }
    if camp.has_full_cost() {
        // Over the whole cost (media spend and the campaign's other costs), on gross profit.
        let full = camp.full_cost(&c.totals, None, now);
        if let Some(p) = full.poas() {
            spans.push(Span::styled(format!("POAS {}  ", Metric::Roas.format(Some(p))), t.base));
        }
        spans.push(Span::styled(
            format!("ROI {} full cost  profit {}", Metric::Roi.format(full.roi()), money_short(full.profit())),
            t.base,
        ));
    } else if c.totals.revenue > 0.0 {
        spans.push(Span::styled(format!("ROI {}", Metric::Roi.format(roi)), t.base));
    }
    let used: usize = spans.iter().map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref())).sum();
    if used > width {
        // Too narrow for everything: keep what fits.
        let mut w = 0;
        spans.retain(|s| {
            w += unicode_width::UnicodeWidthStr::width(s.content.as_ref());
            w <= width
        });
    }
    Line::from(spans)
}

/// `  Label   ██████│░░░░ text`: the text keeps its room and the bar takes the rest, down to
/// a minimum, after which the text is cut.
#[allow(clippy::too_many_arguments)]
fn gauge_line(
    label: &str,
    ratio: f64,
    marker: Option<f64>,
    text: &str,
    style: Style,
    t: &Theme,
    lw: usize,
    bw: usize,
    width: usize,
) -> Line<'static> {
    let tw = width.saturating_sub(lw + bw + 1);
    let mut spans = vec![Span::styled(format!("  {}", fit(label, lw - 2)), t.base)];
    spans.extend(bar(bw, ratio, marker, style, t.gauge_empty, t.base));
    spans.push(Span::raw(" "));
    spans.push(Span::styled(truncate(text, tw), style));
    Line::from(spans)
}

fn goal_label(m: Metric) -> String {
    match m {
        Metric::Conversions => "Conv".into(),
        Metric::Impressions => "Impr".into(),
        m => m.label().to_string(),
    }
}

/// Ahead, on pace or behind: progress against the share of time gone.
fn pace_word(progress: f64, elapsed: f64, t: &Theme) -> (&'static str, Style) {
    if elapsed <= 0.0 {
        return ("", t.muted);
    }
    let r = progress / elapsed;
    if r >= 1.05 {
        ("▲ ahead", t.good)
    } else if r >= 0.95 {
        ("● on pace", t.good)
    } else if r >= 0.8 {
        ("▼ behind", t.warn)
    } else {
        ("▼ behind", t.bad)
    }
}

fn short(m: Metric, v: f64) -> String {
    if m.unit() == crate::domain::metrics::Unit::Money { money_short(v) } else { compact(v) }
}

/// A symbol and style for a health state: readable without colour.
pub fn health_symbol(h: Health, t: &Theme) -> (&'static str, Style) {
    match h {
        Health::Pending => ("…", t.muted),
        Health::Ok => ("●", t.good),
        Health::Slow => ("◐", t.warn),
        Health::Stale => ("◌", t.warn),
        Health::Throttled => ("◔", t.warn),
        Health::BadData => ("?", t.bad),
        Health::Failing => ("✖", t.bad),
        Health::Unauthorized => ("⊘", t.bad),
        Health::Retired => ("⊗", t.bad),
        Health::Expiring => ("◷", t.warn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelKey;
    use crate::engine::snapshot::ChannelView;
    use std::sync::Arc;

    /// Whole names while they fit, worst first, and the count of the rest agrees with them.
    #[test]
    fn trouble_line_names_the_worst_first_and_counts_the_rest() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-06-08T09:00:00+08:00").unwrap();
        let campaign =
            crate::sim::scale::campaigns(1, 40, crate::sim::scale::Sources::Channel, "http://x", now).remove(0);
        let channels = (0..40)
            .map(|i| {
                let health = match i {
                    7 => Health::Failing,
                    0..=19 => Health::Stale,
                    _ => Health::Ok,
                };
                Arc::new(ChannelView { key: ChannelKey::new("c", &format!("ch-{i:02}")), health, ..Default::default() })
            })
            .collect();
        let view = CampaignView::new(Arc::new(campaign), channels, now.timestamp_millis());
        assert_eq!(view.trouble.len(), 20);
        assert_eq!(view.trouble[0], 7, "the failing channel comes first");
        let line = trouble_line(&view, &Theme::load("default").unwrap(), 60).unwrap();
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert!(unicode_width::UnicodeWidthStr::width(text.as_str()) <= 60, "{text}");
        assert!(text.contains("ch-07 failing"), "{text}");
        let named = text.matches("ch-").count();
        assert!(text.ends_with(&format!("(+{} more)", 20 - named)), "{text}");
        assert!(
            trouble_line(
                &CampaignView::new(view.campaign.clone(), Vec::new(), 0),
                &Theme::load("default").unwrap(),
                60
            )
            .is_none()
        );
    }
}
