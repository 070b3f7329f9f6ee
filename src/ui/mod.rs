//! The terminal UI. Renders from the engine's snapshot only and never does I/O in render;
//! redraws on new data, input or resize (at most ~20 frames a second), never on a busy timer;
//! each frame is wrapped in synchronized output so slow links never show half frames.

pub mod app;
pub mod commands;
pub mod editor;
pub mod keys;
pub mod screens;
pub mod terminal;
pub mod theme;
pub mod views;
pub mod widgets;

use app::{App, View};
use keys::Scope;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use std::time::{Duration, Instant};
use widgets::{fit, truncate_left};

/// Below this the layout cannot work; a notice is shown instead.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

/// Draws one frame of the whole screen.
pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("terminal too small: {}x{}, need {MIN_WIDTH}x{MIN_HEIGHT}", area.width, area.height);
        f.render_widget(Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }).style(app.theme.warn), area);
        return;
    }
    let [header, tabs, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)])
            .areas(area);
    f.render_widget(Paragraph::new(header_line(app, header.width as usize)).style(app.theme.header), header);
    f.render_widget(Paragraph::new(tabs_line(app, tabs.width as usize)), tabs);
    match app.view {
        View::Overview => views::overview::render(f, body, app),
        View::Campaign => views::campaign::render(f, body, app),
        View::Channel => views::channel::render(f, body, app),
        View::Alerts => views::alerts::render(f, body, app),
        View::Optimize => views::optimize::render(f, body, app),
        View::Analyze => views::analyze::render(f, body, app),
    }
    f.render_widget(Paragraph::new(footer_line(app, footer.width as usize)), footer);
    if app.help {
        views::help::render(f, body, app);
    }
}

/// Title, campaign clock (and its speed), data freshness and source health.
pub fn header_line(app: &App, width: usize) -> Line<'static> {
    let snap = &app.snap;
    let offset = snap.campaigns.first().map(|c| *c.campaign.start.offset());
    let clock = |long: bool| {
        let fmt = if long { "%Y-%m-%d %H:%M %:z" } else { "%m-%d %H:%M" };
        chrono::DateTime::from_timestamp_millis(snap.now_ms).map_or(String::new(), |d| match offset {
            Some(o) => d.with_timezone(&o).format(fmt).to_string(),
            None => d.with_timezone(&chrono::Local).format(fmt).to_string(),
        })
    };
    let speed = if (snap.speed - 1.0).abs() > f64::EPSILON { format!(" sim ×{}", snap.speed) } else { String::new() };
    let fresh = freshness(snap.last_data.map(|t| t.elapsed()));
    let (ok, degraded, failing) = snap.health_counts();
    // What the state of the cockpit itself is: ahead of the counts, and never dropped.
    // Each in full, and in a word where room is short.
    let mut state: Vec<(String, String)> = Vec::new();
    if let Some(stall) = &snap.stall {
        state.push((format!("DB STALLED: {stall}"), "DB STALLED".into()));
    } else if snap.store_error.is_some() {
        state.push(("DB WRITE FAILING".into(), "DB WRITE FAILING".into()));
    } else if snap.compacting {
        state.push(("compacting DB…".into(), "compacting…".into()));
    }
    if let Some(service) = &snap.service {
        let short = service.split(" (").next().unwrap_or(service).trim_end_matches(", reconnecting").to_string();
        state.push((service.clone(), short));
    }
    if snap.paging.is_some() {
        state.push(("PAGING FAILING".into(), "PAGING FAILING".into()));
    }
    if snap.read_only {
        state.push(("READ-ONLY".into(), "READ-ONLY".into()));
    }
    let mut sources = format!("sources ●{ok}");
    if degraded > 0 {
        sources.push_str(&format!(" ◐{degraded}"));
    }
    if failing > 0 {
        sources.push_str(&format!(" ✖{failing}"));
    }
    let (crit, warn, info) = snap.alert_counts();
    let mut alerts = String::new();
    if crit + warn + info > 0 {
        alerts.push_str("alerts");
        for (n, sym) in [(crit, "✖"), (warn, "▲"), (info, "i")] {
            if n > 0 {
                alerts.push_str(&format!(" {sym}{n}"));
            }
        }
    }
    // Where room is short, the least needed goes first: the title's long form, the clock's
    // year and offset, the title, the simulator's speed, the data's freshness, the clock, then
    // the details of the cockpit's own state. The alert counts and the sources' health stay.
    let line = |title: &str, clock: &str, speed: &str, fresh: Option<&str>, brief: bool| {
        let mut parts: Vec<String> = Vec::new();
        let head = format!("{title}{}{clock}{speed}", if !title.is_empty() && !clock.is_empty() { " │ " } else { "" });
        parts.extend((!head.is_empty()).then_some(head));
        parts.extend(state.iter().map(|(long, short)| if brief { short.clone() } else { long.clone() }));
        parts.extend(fresh.map(|f| format!("data {f}")));
        parts.push(sources.clone());
        parts.extend((!alerts.is_empty()).then(|| alerts.clone()));
        format!(" {}", parts.join(" │ "))
    };
    let (long, short) = (clock(true), clock(false));
    let tries = [
        line("Campaign Cockpit", &long, &speed, Some(&fresh), false),
        line("Cockpit", &short, &speed, Some(&fresh), false),
        line("", &short, &speed, Some(&fresh), false),
        line("", &short, "", Some(&fresh), false),
        line("", &short, "", None, false),
        line("", "", "", None, false),
        line("", &short, "", None, true),
        line("", "", "", None, true),
    ];
    let fits = |t: &String| unicode_width::UnicodeWidthStr::width(t.as_str()) <= width;
    let text = tries.iter().find(|t| fits(t)).unwrap_or(&tries[tries.len() - 1]);
    Line::raw(fit(text, width))
}

/// "live" for data in the last few seconds, then seconds, minutes, hours ago.
pub fn freshness(age: Option<Duration>) -> String {
    match age.map(|a| a.as_secs()) {
        None => "none yet".into(),
        Some(s) if s < 3 => "live".into(),
        Some(s) if s < 60 => format!("{s}s ago"),
        Some(s) if s < 3600 => format!("{}m ago", s / 60),
        Some(s) => format!("{}h ago", s / 3600),
    }
}

fn tabs_line(app: &App, width: usize) -> Line<'static> {
    let t = &app.theme;
    let mut spans = Vec::new();
    let mut used = 0;
    for (i, v) in View::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.title());
        used += label.chars().count();
        spans.push(Span::styled(label, if *v == app.view { t.selected.patch(t.accent) } else { t.muted }));
    }
    let db = format!("db {}", app.snap.db_path);
    let room = width.saturating_sub(used + 2);
    if room > 8 {
        let db = truncate_left(&db, room);
        let pad = width.saturating_sub(used + unicode_width::UnicodeWidthStr::width(db.as_str()));
        spans.push(Span::raw(" ".repeat(pad)));
        spans.push(Span::styled(db, t.muted));
    }
    Line::from(spans)
}

/// The filter prompt, a message, or the key hints for the current view.
fn footer_line(app: &App, width: usize) -> Line<'static> {
    let t = &app.theme;
    match &app.modal {
        Some(app::Modal::Filter) => {
            return Line::from(vec![
                Span::styled(" / ", t.accent),
                Span::raw(format!("{}▏", app.table.filter)),
                Span::styled("  Enter keep · Esc clear", t.muted),
            ]);
        }
        Some(app::Modal::Confirm(c)) => {
            return Line::from(vec![
                Span::styled(fit(&format!(" {}? ", c.text), width.saturating_sub(24)), t.warn),
                Span::styled(" y send · n cancel", t.accent),
            ]);
        }
        Some(app::Modal::Prompt(p)) => {
            let (label, enter) = match &p.kind {
                app::PromptKind::Silence { .. } => {
                    let what =
                        app.selected_alert().map_or(String::new(), |a| format!("{} on {}", a.key.rule, a.key.channel));
                    (format!(" silence {what} for: "), "  Enter silence · Esc cancel")
                }
                app::PromptKind::Snooze { what, .. } => (format!(" dismiss {what} for: "), "  Enter ok · Esc cancel"),
                app::PromptKind::Budget { channel, .. } => {
                    (format!(" daily budget for {channel}: "), "  Enter ok · Esc cancel")
                }
                app::PromptKind::Command => (":".into(), "  Enter run · Tab complete · ↑↓ history · Esc cancel"),
                app::PromptKind::Window => {
                    (" window FROM..TO (06-05..06-07, 06-05 09:00..18:00): ".into(), "  Enter ok · Esc cancel")
                }
                app::PromptKind::Note { campaign, channel } => match channel {
                    Some(ch) => (format!(" note on {campaign}/{ch}: "), "  Enter ok · Esc cancel"),
                    None => (format!(" note on {campaign}: "), "  Enter ok · Esc cancel"),
                },
            };
            // After a Tab with several candidates, they stand where the keys' hint was.
            let hint = if app.completions.is_empty() {
                enter.to_string()
            } else {
                format!("  Tab: {}", app.completions.join(" · "))
            };
            let used = unicode_width::UnicodeWidthStr::width(format!("{label}{}▏", p.text).as_str());
            return Line::from(vec![
                Span::styled(label, t.accent),
                Span::raw(format!("{}▏", p.text)),
                Span::styled(fit(&hint, width.saturating_sub(used)), t.muted),
            ]);
        }
        None => {}
    }
    if let Some(m) = &app.message {
        return Line::styled(fit(&format!(" {m}"), width), t.warn);
    }
    let scope_ok = |s: Scope| match s {
        Scope::Global => true,
        Scope::Lists => app.view != View::Channel,
        Scope::Campaign => app.view == View::Campaign,
        Scope::Channel => app.view == View::Channel,
        Scope::Alerts => app.view == View::Alerts,
        Scope::Optimize => app.view == View::Optimize,
        Scope::Analyze => app.view == View::Analyze,
    };
    let mut spans = Vec::new();
    if !app.table.filter.is_empty() && app.view == View::Campaign {
        spans.push(Span::styled(format!(" filter: {} ", app.table.filter), t.warn));
    }
    let mut used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    // The checklist in place of the channel table: its own keys, not the table's.
    let checklist = app.view == View::Campaign && app.table.tasks;
    let shown = |b: &&keys::Bound| {
        use keys::Action;
        scope_ok(b.scope)
            && (!checklist
                || b.scope != Scope::Campaign
                || matches!(b.action, Action::Checklist | Action::TaskDone | Action::Edit))
    };
    for (b, hint) in app.keys.bindings.iter().filter(shown).filter_map(|b| b.hint.map(|h| (b, h))) {
        let Some(key) = b.keys.first() else { continue };
        let item = format!(" {key} {hint}");
        if used + item.chars().count() + 1 > width {
            break;
        }
        used += item.chars().count() + 1;
        spans.push(Span::styled(format!(" {key}"), t.accent));
        spans.push(Span::styled(format!(" {hint} "), t.muted));
    }
    Line::from(spans)
}

/// Frames are at least this far apart (bursts of data coalesce into one frame).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(50);

/// Why `run` ended when the engine is to be planned again (an edited campaign polls
/// differently): the caller starts a new engine and runs the UI again with the same `App`.
pub const REPLAN: &str = "a campaign's channels changed";

/// Runs the UI until the user quits or a terminating signal arrives (or `REPLAN`). The
/// terminal must already be initialised; the caller restores it.
pub async fn run(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    snapshots: tokio::sync::watch::Receiver<std::sync::Arc<crate::engine::snapshot::Snapshot>>,
    commands: tokio::sync::mpsc::Sender<crate::engine::Command>,
) -> std::io::Result<&'static str> {
    match run_until(terminal, app, snapshots, commands).await {
        // A dropped link: not an error of ours, and nobody left to tell but the log.
        Err(e) if terminal::gone(&e) => {
            tracing::info!("the terminal went away: {e}");
            Ok("the terminal went away")
        }
        other => other,
    }
}

/// Tells the engine when the campaign on screen changes.
async fn follow_focus(
    app: &App,
    focus: &mut Option<String>,
    commands: &tokio::sync::mpsc::Sender<crate::engine::Command>,
) {
    let now = app.focus();
    if now != *focus {
        *focus = now.clone();
        let _ = commands.send(crate::engine::Command::Focus(now)).await;
    }
}

async fn run_until(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    mut snapshots: tokio::sync::watch::Receiver<std::sync::Arc<crate::engine::snapshot::Snapshot>>,
    commands: tokio::sync::mpsc::Sender<crate::engine::Command>,
) -> std::io::Result<&'static str> {
    use crossterm::event::{Event, KeyEventKind};
    use tokio::signal::unix::{SignalKind, signal};
    let mut input = terminal::spawn_input();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigtstp = signal(SignalKind::from_raw(signal_hook::consts::SIGTSTP))?;
    // Fault injection for the terminal-restore tests: panic on the first key.
    let panic_on_key = std::env::var("COCKPIT_FAULT").is_ok_and(|v| v == "panic-on-key");
    // Only the header's "data Ns ago" changes with time alone: check it once a second and
    // redraw only if its text moved.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_header = String::new();
    let mut focus = None;
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME_INTERVAL;
    loop {
        if dirty && last_draw.elapsed() >= FRAME_INTERVAL {
            draw_synced(terminal, app)?;
            last_header = header_line(app, 200).to_string();
            last_draw = Instant::now();
            dirty = false;
        }
        let wait = FRAME_INTERVAL.saturating_sub(last_draw.elapsed());
        tokio::select! {
            ev = input.events.recv() => match ev {
                Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                    assert!(!panic_on_key, "COCKPIT_FAULT=panic-on-key: a panic on request");
                    if k.code == crossterm::event::KeyCode::Char('z')
                        && k.modifiers.contains(crossterm::event::KeyModifiers::CONTROL)
                    {
                        suspend(terminal)?;
                        dirty = true;
                        continue;
                    }
                    if let Some(cmd) = app.key(k) {
                        let _ = commands.send(cmd).await;
                    }
                    if let Some(plan) = app.edit.take()
                        && edit(terminal, &input, app, &plan, &commands).await?
                    {
                        return Ok(REPLAN);
                    }
                    follow_focus(app, &mut focus, &commands).await;
                    dirty = true;
                    // A key is answered at once; the frame cap is for bursts of data.
                    last_draw = Instant::now() - FRAME_INTERVAL;
                }
                Some(Ok(Event::Resize(..))) => {
                    terminal.autoresize()?;
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok("input closed"),
            },
            changed = snapshots.changed() => match changed {
                Ok(()) => {
                    let snap = snapshots.borrow_and_update().clone();
                    app.set_snapshot(snap);
                    follow_focus(app, &mut focus, &commands).await;
                    dirty = true;
                }
                // The engine stopped (it could not load): the caller reports why.
                Err(_) => return Ok("engine stopped"),
            },
            _ = tick.tick() => {
                if header_line(app, 200).to_string() != last_header {
                    dirty = true;
                }
            }
            _ = tokio::time::sleep(wait), if dirty => {}
            _ = sigterm.recv() => return Ok("SIGTERM"),
            _ = sighup.recv() => return Ok("SIGHUP"),
            _ = sigint.recv() => return Ok("SIGINT"),
            _ = sigtstp.recv() => {
                suspend(terminal)?;
                dirty = true;
            }
        }
        if app.quit {
            return Ok("quit");
        }
    }
}

/// Ctrl-Z or SIGTSTP: give the terminal back, stop until `fg` (SIGCONT), then take it again
/// and redraw everything.
fn suspend(terminal: &mut ratatui::DefaultTerminal) -> std::io::Result<()> {
    use crossterm::{cursor, execute};
    terminal::restore();
    execute!(std::io::stdout(), cursor::Show)?;
    signal_hook::low_level::raise(signal_hook::consts::SIGSTOP)?;
    // Continued.
    terminal::take_back(terminal)
}

/// `e`: the campaign's plan in the user's editor, the terminal handed over meanwhile; saved
/// and valid, it goes to the engine (or the service), which puts it in force. `true` when
/// this process's engine is to be planned again for it (its channels or sources changed).
async fn edit(
    terminal: &mut ratatui::DefaultTerminal,
    input: &terminal::InputReader,
    app: &mut App,
    plan: &crate::domain::Campaign,
    commands: &tokio::sync::mpsc::Sender<crate::engine::Command>,
) -> std::io::Result<bool> {
    let (plan, editor) = (plan.clone(), editor::editor());
    let edited = terminal::hand_over(terminal, input, move || editor::edit(&plan, &editor)).await?;
    let replan = match edited {
        Ok(editor::Edited::Changed(c)) => {
            app.message = Some(format!("saving {}…", c.id));
            // A service plans again by itself; an engine here is started again by the caller.
            let here = app.snap.service.is_none();
            let replan = here && app.snap.campaign(&c.id).is_some_and(|v| !v.campaign.polls_as(&c));
            let _ = commands.send(crate::engine::Command::Plan { campaign: c, by: app.user.clone() }).await;
            replan
        }
        Ok(editor::Edited::Unchanged(why)) => {
            app.message = Some(why);
            false
        }
        Err(e) => {
            app.message = Some(format!("{e:#}"));
            false
        }
    };
    Ok(replan)
}

fn draw_synced(terminal: &mut ratatui::DefaultTerminal, app: &mut App) -> std::io::Result<()> {
    use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
    use std::io::Write;
    crossterm::queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    terminal.draw(|f| draw(f, app))?;
    if std::mem::take(&mut app.ring) {
        // A new critical alert: the terminal's bell (BEL), once.
        terminal.backend_mut().write_all(b"\x07")?;
    }
    crossterm::execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    Ok(())
}

/// Renders one frame into a plain-text buffer of the given size (tests, `--snapshot`).
pub fn render_to_string(app: &mut App, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut term = ratatui::Terminal::new(backend).expect("test backend");
    term.draw(|f| draw(f, app)).expect("drawing into memory");
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..buf.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
            line.push_str(sym);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
