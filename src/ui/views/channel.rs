//! One channel: a chart of a chosen KPI over a chosen window, its counters and KPIs, today's
//! spend against its daily budget, its source's health and its A/B variants.

use super::overview::health_symbol;
use crate::domain::Metric;
use crate::domain::format::{money, percent};
use crate::domain::time::DAY_MS;
use crate::ui::app::App;
use crate::ui::widgets::{bar, truncate};
use chrono::{DateTime, FixedOffset};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(key) = &app.channel else {
        f.render_widget(Paragraph::new("No channel selected: open one from the campaign view.").style(t.muted), area);
        return;
    };
    let Some(camp) = app.snap.campaign(&key.campaign) else { return };
    let Some(ch) = app.snap.channel(key) else {
        f.render_widget(Paragraph::new(format!("Channel {key} is no longer in the database.")).style(t.muted), area);
        return;
    };
    let width = area.width as usize;
    let (sym, hs) = health_symbol(ch.health, t);
    let status = match ch.status {
        Some(crate::domain::ChannelStatus::Paused) => "paused",
        Some(_) => "active",
        None => "status unknown",
    };
    let mut title = vec![
        Span::styled(truncate(&ch.name, width / 2), t.accent),
        Span::styled(format!("  {} · {status} · ", key), t.muted),
        Span::styled(format!("{sym} {}", ch.health.label()), hs),
    ];
    if ch.resets > 0 {
        title.push(Span::styled(
            format!(" · {}", crate::domain::format::count_of(ch.resets as usize, "counter reset")),
            t.warn,
        ));
    }
    let mut head = vec![Line::from(title)];
    if let Some(err) = &ch.last_error {
        head.push(Line::styled(truncate(&format!("source: {err}"), width), hs));
    }
    let totals = &ch.totals;
    // Counters the source does not read are unknown, and so is every metric made of them.
    let unmapped =
        camp.campaign.channels.iter().position(|c| c.id == key.channel).map_or(0, |i| app.unmapped(&camp.campaign, i));
    let row = |ms: &[Metric]| {
        let mut spans = Vec::new();
        for m in ms {
            spans.push(Span::styled(format!("{} ", m.label()), t.muted));
            if !m.measured_without(unmapped) {
                spans.push(Span::styled("not mapped ", t.muted));
                continue;
            }
            let v = m.value(totals);
            let bad = v.is_some_and(|v| camp.campaign.kpis.iter().any(|k| k.metric == *m && !k.holds(v)));
            spans.push(Span::styled(format!("{:<10}", m.format(v)), if bad { t.bad } else { t.base }));
        }
        Line::from(spans)
    };
    let mut stats = vec![
        row(&[Metric::Impressions, Metric::Clicks, Metric::Leads, Metric::Conversions]),
        row(&[Metric::Ctr, Metric::Cvr, Metric::Cpc, Metric::Cpm]),
        row(&[Metric::Cpl, Metric::Cpa, Metric::Roas, Metric::Roi]),
    ];
    let day_ratio = if ch.daily_budget > 0.0 { ch.today.spend / ch.daily_budget } else { 0.0 };
    let day_elapsed = ((app.snap.now_ms - camp.day_start_ms) as f64 / DAY_MS as f64).clamp(0.0, 1.0);
    let mut today = vec![Span::styled("Today ", t.muted)];
    today.extend(bar(width.saturating_sub(44).min(40), day_ratio, Some(day_elapsed), t.accent, t.gauge_empty, t.base));
    today.push(Span::styled(
        format!(
            " {} / {} {}  total {}",
            money(ch.today.spend),
            money(ch.daily_budget),
            camp.campaign.currency,
            money(totals.spend)
        ),
        t.base,
    ));
    stats.push(Line::from(today));
    if !ch.variants.is_empty() {
        stats.push(Line::styled("A/B  variant   impressions   CTR      CVR", t.muted));
        for v in &ch.variants {
            let ctr = (v.impressions > 0).then(|| v.clicks as f64 / v.impressions as f64);
            let cvr = (v.clicks > 0).then(|| v.conversions as f64 / v.clicks as f64);
            stats.push(Line::raw(format!(
                "     {:<9} {:>11}   {:<8} {:<8}",
                v.id,
                Metric::Impressions.format(Some(v.impressions as f64)),
                ctr.map_or("–".into(), percent),
                cvr.map_or("–".into(), percent)
            )));
        }
    }
    let chart_h = area.height.saturating_sub((head.len() + stats.len()) as u16);
    let [h_area, chart_area, s_area] =
        Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Length(chart_h), Constraint::Min(0)])
            .areas(area);
    f.render_widget(Paragraph::new(head).style(t.base), h_area);
    f.render_widget(Paragraph::new(stats).style(t.base), s_area);
    if chart_h >= 4 {
        render_chart(f, chart_area, app, camp.campaign.start.offset(), unmapped);
    }
}

/// A point of a chart: minutes into the window, value.
type Point = (f64, f64);

/// The chart's points (minutes into the window, value) and the bucket still being filled,
/// apart: a count or an amount in it is scaled to the whole bucket at its pace so far (so it
/// does not plunge toward zero), and left out while under a tenth of the bucket has passed.
fn chart_points(s: &crate::engine::snapshot::SeriesView, m: Metric) -> (Vec<Point>, Option<Point>) {
    let x = |at: i64| (at - s.from_ms) as f64 / 60_000.0;
    let filling = |at: i64| at + s.bucket_ms > s.to_ms;
    let pts = s.points.iter().filter(|(at, _)| !filling(*at)).filter_map(|(at, c)| Some((x(*at), m.value(c)?)));
    let partial = s.points.last().filter(|(at, _)| filling(*at)).and_then(|(at, c)| {
        let done = (s.to_ms - at) as f64 / s.bucket_ms.max(1) as f64;
        let v = m.value(c)?;
        match m.is_cumulative() {
            _ if done < 0.1 => None,
            true => Some((x(*at), v / done.min(1.0))),
            false => Some((x(*at), v)),
        }
    });
    (pts.collect(), partial)
}

fn render_chart(f: &mut Frame, area: Rect, app: &App, offset: &FixedOffset, unmapped: u8) {
    let t = &app.theme;
    let m = app.chart.metric;
    let series =
        app.snap.series.as_ref().filter(|s| Some(&s.key) == app.channel.as_ref() && s.window == app.chart.window);
    let per = series.map_or(String::new(), |s| {
        if m.is_cumulative() {
            match s.bucket_ms {
                crate::domain::time::DAY_MS => " per day".to_string(),
                crate::domain::time::HOUR_MS => " per hour".to_string(),
                ms => format!(" per {}", humantime::format_duration(std::time::Duration::from_millis(ms as u64))),
            }
        } else {
            String::new()
        }
    });
    // A source that reports by day is drawn over its last days, whatever the window.
    let span = match series {
        Some(s) if app.chart.window.span_ms().is_some_and(|w| s.to_ms - s.from_ms > w + 60_000) => {
            format!("{} days", (s.to_ms - s.from_ms + crate::domain::time::DAY_MS / 2) / crate::domain::time::DAY_MS)
        }
        _ => app.chart.window.label().to_string(),
    };
    let title = format!(" {}{per} · last {span} · m: KPI  w: window ", m.label());
    let block = Block::default().borders(Borders::TOP).title(Span::styled(title, t.accent)).border_style(t.muted);
    if !m.measured_without(unmapped) {
        let text =
            format!("{} is not read from this channel's source: its mapping gives no expression for it", m.label());
        f.render_widget(
            Paragraph::new(text).style(t.muted).wrap(ratatui::widgets::Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    let Some(s) = series else {
        f.render_widget(Paragraph::new("loading…").style(t.muted).block(block), area);
        return;
    };
    let (pts, partial) = chart_points(s, m);
    if pts.is_empty() && partial.is_none() {
        f.render_widget(
            Paragraph::new(format!("no {} data in this window yet", m.label())).style(t.muted).block(block),
            area,
        );
        return;
    }
    let span_min = ((s.to_ms - s.from_ms) as f64 / 60_000.0).max(1.0);
    // The bucket being filled, joined to the last full one: drawn apart, in the muted colour.
    let tail: Vec<(f64, f64)> = pts.last().copied().into_iter().chain(partial).collect();
    let max = pts.iter().chain(&partial).map(|p| p.1).fold(f64::MIN, f64::max);
    let min = pts.iter().chain(&partial).map(|p| p.1).fold(f64::MAX, f64::min).min(0.0);
    let top = if max > min { max * 1.1 } else { min + 1.0 };
    let fmt_t = |ms: i64| {
        DateTime::from_timestamp_millis(ms).map_or(String::new(), |d| {
            let d = d.with_timezone(offset);
            if s.to_ms - s.from_ms > DAY_MS {
                d.format("%m-%d %H:%M").to_string()
            } else {
                d.format("%H:%M").to_string()
            }
        })
    };
    // Notes on this channel or its whole campaign in the window: a vertical mark each, and the
    // latest ones named on the line under the chart.
    let key = &s.key;
    let notes: Vec<&crate::domain::Note> = app
        .snap
        .notes
        .iter()
        .filter(|n| n.campaign == key.campaign && n.channel.as_ref().is_none_or(|c| *c == key.channel))
        .filter(|n| n.at_ms >= s.from_ms && n.at_ms <= s.to_ms)
        .collect();
    let marks: Vec<[(f64, f64); 2]> = notes
        .iter()
        .map(|n| {
            let x = (n.at_ms - s.from_ms) as f64 / 60_000.0;
            [(x, min), (x, top)]
        })
        .collect();
    let mut data = vec![
        Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(t.accent).data(&pts),
        Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(t.muted).data(&tail),
    ];
    for mark in &marks {
        data.push(Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(t.warn).data(mark));
    }
    let area = if notes.is_empty() || area.height < 6 {
        area
    } else {
        let [chart_area, line] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
        let width = line.width as usize;
        let text: Vec<String> = notes.iter().rev().take(3).map(|n| format!("{} {}", fmt_t(n.at_ms), n.text)).collect();
        let line_text = format!("┆ {}: {}", crate::domain::format::count_of(notes.len(), "note"), text.join(" · "));
        f.render_widget(Paragraph::new(truncate(&line_text, width)).style(t.warn), line);
        chart_area
    };
    let chart = Chart::new(data)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, span_min])
                .labels([fmt_t(s.from_ms), fmt_t((s.from_ms + s.to_ms) / 2), fmt_t(s.to_ms)])
                .style(t.muted),
        )
        .y_axis(Axis::default().bounds([min, top]).labels([m.format(Some(min)), m.format(Some(top))]).style(t.muted));
    f.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelKey, Counters};
    use crate::engine::snapshot::{SeriesView, Window};

    fn series(to_ms: i64) -> SeriesView {
        let spend = |s: f64| Counters { spend: s, clicks: 10, impressions: 1000, ..Default::default() };
        SeriesView {
            key: ChannelKey::new("c", "a"),
            window: Window::Hour,
            from_ms: 0,
            to_ms,
            bucket_ms: 60_000,
            points: vec![(0, spend(60.0)), (60_000, spend(60.0)), (120_000, spend(15.0))],
        }
    }

    /// A quarter of the last minute gone with a quarter of its spend: drawn at the full pace,
    /// apart from the full minutes; a rate as it is; under a tenth gone, not drawn.
    #[test]
    fn the_bucket_being_filled_is_scaled_not_a_plunge() {
        let (full, partial) = chart_points(&series(135_000), Metric::Spend);
        assert_eq!(full, [(0.0, 60.0), (1.0, 60.0)]);
        assert_eq!(partial, Some((2.0, 60.0)));
        assert_eq!(chart_points(&series(135_000), Metric::Ctr).1, Some((2.0, 0.01)));
        assert_eq!(chart_points(&series(125_000), Metric::Spend).1, None);
        let (full, partial) = chart_points(&series(180_000), Metric::Spend);
        assert_eq!((full.len(), partial), (3, None), "a closed bucket is a full one");
    }
}
