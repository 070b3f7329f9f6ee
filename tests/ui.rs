//! Screens rendered on ratatui's TestBackend from a deterministic simulated run, compared
//! with reviewed snapshots; and no size, key or theme makes rendering panic.

mod common;

use campaign_cockpit::engine::Command;
use campaign_cockpit::engine::snapshot::Snapshot;
use campaign_cockpit::ui::app::{App, View};
use campaign_cockpit::ui::keys::{Action, BINDINGS};
use campaign_cockpit::ui::render_to_string;
use campaign_cockpit::ui::theme::{BUILT_IN, Theme};
use common::Harness;
use crossterm::event::{KeyCode, KeyEvent};
use std::sync::Arc;

/// 90 simulated minutes of the demo; the DB path is fixed so snapshots do not depend on it.
fn demo_app(dir: &std::path::Path) -> (Harness, App) {
    let mut h = Harness::demo(dir);
    h.run_minutes(90);
    let app = App::new(fixed(&h.snapshot()), Theme::load("default").unwrap(), "tester");
    (h, app)
}

fn fixed(s: &Arc<Snapshot>) -> Arc<Snapshot> {
    let mut s = (**s).clone();
    s.db_path = "/data/cockpit.db".into();
    Arc::new(s)
}

/// Applies an action and runs any command through the engine, as the event loop does.
fn act(h: &mut Harness, app: &mut App, a: Action) {
    if let Some(cmd) = app.apply(a) {
        h.engine.command(cmd);
        h.engine.publish();
        app.set_snapshot(fixed(&h.snapshot()));
    }
}

#[test]
fn overview_at_80x24() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, mut app) = demo_app(dir.path());
    insta::assert_snapshot!(render_to_string(&mut app, 80, 24));
}

#[test]
fn overview_at_250x70() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, mut app) = demo_app(dir.path());
    insta::assert_snapshot!(render_to_string(&mut app, 250, 70));
}

#[test]
fn campaign_view_sorted_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Open);
    assert_eq!(app.view, View::Campaign);
    insta::assert_snapshot!("campaign_by_spend", render_to_string(&mut app, 80, 24));
    act(&mut h, &mut app, Action::SortNext); // ROAS, highest first
    insta::assert_snapshot!("campaign_by_roas", render_to_string(&mut app, 100, 24));
    app.apply(Action::Filter);
    for c in "wechat".chars() {
        app.modal_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c)));
    }
    assert_eq!(app.table.rows.len(), 1);
    let screen = render_to_string(&mut app, 80, 24);
    assert!(screen.contains("微信朋友圈 WeCha") && !screen.contains("天猫直通车"), "{screen}");
}

/// `s` sorts only by columns on screen: at 80 columns as at 200, every press shows the sorted
/// column with its arrow. The columns follow the campaign's goals and limits.
#[test]
fn sorting_shows_its_column_at_any_width() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Open);
    for (w, hgt) in [(80, 24), (200, 50)] {
        for press in 0..14 {
            let screen = render_to_string(&mut app, w, hgt);
            let header = screen.lines().find(|l| l.starts_with("Channel")).unwrap_or_default();
            assert!(header.contains('▼') || header.contains('▲'), "{w}x{hgt}, press {press}: {header}");
            act(&mut h, &mut app, Action::SortNext);
        }
    }
    // 618 is judged on revenue and orders: those columns are there, an all-zero one is not.
    let screen = render_to_string(&mut app, 80, 24);
    let header = screen.lines().find(|l| l.starts_with("Channel")).unwrap();
    assert!(header.contains("Revenue") && header.contains("Conv"), "{header}");
}

/// With the service gone (and the database stalled too), the header still shows the alert
/// counts and the sources' health at 80 columns: the clock and the title give way first.
#[test]
fn the_header_keeps_the_alert_counts_when_the_service_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, mut app) = demo_app(dir.path());
    let mut s = (*app.snap).clone();
    s.service = Some("SERVICE GONE (connection reset), reconnecting".into());
    app.set_snapshot(Arc::new(s.clone()));
    let header = |app: &mut App, w: u16| render_to_string(app, w, 24).lines().next().unwrap_or_default().to_string();
    let at80 = header(&mut app, 80);
    assert!(at80.contains("SERVICE GONE") && at80.contains("alerts ✖1 ▲3") && at80.contains("sources ●5"), "{at80}");
    let wide = header(&mut app, 200);
    assert!(wide.contains("Campaign Cockpit │ 2026-06-08 10:30 +08:00") && wide.contains("alerts ✖1 ▲3"), "{wide}");
    s.stall = Some("writing samples for 12s".into());
    app.set_snapshot(Arc::new(s));
    let at80 = header(&mut app, 80);
    assert!(at80.contains("DB STALLED") && at80.contains("alerts ✖1 ▲3"), "{at80}");
}

/// `:campaign ` and `:channel ` with Tab list the ids and names to choose from; a word of a
/// name completes to its id.
#[test]
fn tab_lists_the_campaigns_and_channels_to_choose_from() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    let typed = |app: &mut App, text: &str| {
        for c in text.chars() {
            app.modal_key(KeyEvent::from(KeyCode::Char(c)));
        }
    };
    act(&mut h, &mut app, Action::CommandLine);
    typed(&mut app, "campaign ");
    app.modal_key(KeyEvent::from(KeyCode::Tab));
    let footer = render_to_string(&mut app, 200, 24).lines().last().unwrap_or_default().to_string();
    assert!(footer.contains("Tab: 618-promo (618 年中大促 Mid-year sale) · app-launch"), "{footer}");
    // At 80 columns the list is cut to fit, never wrapped over the screen.
    let footer = render_to_string(&mut app, 80, 24).lines().last().unwrap_or_default().to_string();
    assert!(
        footer.contains("Tab: 618-promo") && unicode_width::UnicodeWidthStr::width(footer.as_str()) <= 80,
        "{footer}"
    );
    app.modal_key(KeyEvent::from(KeyCode::Esc));
    act(&mut h, &mut app, Action::CommandLine);
    typed(&mut app, "channel ");
    app.modal_key(KeyEvent::from(KeyCode::Tab));
    let footer = render_to_string(&mut app, 250, 24).lines().last().unwrap_or_default().to_string();
    assert!(footer.contains("tmall-ztc (天猫直通车 Tmall search ads)") && footer.contains("douyin"), "{footer}");
    // A word of a name: the one channel it names, by id.
    for _ in 0.."channel ".len() {
        app.modal_key(KeyEvent::from(KeyCode::Backspace));
    }
    typed(&mut app, "channel Tmall");
    app.modal_key(KeyEvent::from(KeyCode::Tab));
    let footer = render_to_string(&mut app, 120, 24).lines().last().unwrap_or_default().to_string();
    assert!(footer.contains(":channel tmall-ztc "), "{footer}");
}

/// In the alerts view, `i` shows the selected alert whole at 80x24: its explanation and its
/// contingency plan, wrapped, nothing cut; `i` or Esc closes it.
#[test]
fn an_alerts_whole_plan_can_be_read_at_80x24() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    // A plan longer than any line, for the app launch's KPI alerts.
    let mut s = (*app.snap).clone();
    let launch = s.campaigns.iter_mut().find(|c| c.campaign.id == "app-launch").unwrap();
    let launch = Arc::make_mut(launch);
    let mut plan = (*launch.campaign).clone();
    plan.contingency.push(campaign_cockpit::domain::Contingency {
        rule: Some("kpi".into()),
        channel: None,
        plan: "cost per install over the limit: check the store listing and the attribution SDK first, then \
               move budget from the worst channel to the best one, and tell the growth lead before noon"
            .into(),
        owner: Some("@growth-oncall".into()),
    });
    launch.campaign = Arc::new(plan);
    app.set_snapshot(Arc::new(s));
    act(&mut h, &mut app, Action::AlertsView);
    // The first alert with a plan.
    let mut plan = None;
    for _ in 0..app.alerts.rows.len() {
        if let Some(p) = app.selected_alert().and_then(|a| app.snap.contingency_of(a)) {
            plan = Some(p.clone());
            break;
        }
        act(&mut h, &mut app, Action::Down);
    }
    let rules: Vec<String> = app.snap.alerts.iter().map(|a| format!("{} {}", a.key.scope(), a.key.rule)).collect();
    let plan = plan.unwrap_or_else(|| {
        panic!("the demo has an alert with a contingency plan: {rules:?} {}", app.alerts.rows.len())
    });
    act(&mut h, &mut app, Action::AlertDetail);
    let screen = render_to_string(&mut app, 80, 24);
    let text: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains(&plan.plan), "the whole plan, wrapped: {screen}");
    if let Some(owner) = &plan.owner {
        assert!(screen.contains(&format!("owner: {owner}")), "{screen}");
    }
    let summary = app.selected_alert().unwrap().summary.clone();
    assert!(text.contains(&summary.split_whitespace().collect::<Vec<_>>().join(" ")), "{screen}");
    act(&mut h, &mut app, Action::Back);
    assert!(!render_to_string(&mut app, 80, 24).contains("contingency plan:"));
    assert_eq!(app.view, View::Alerts, "Esc closes the reading, not the view");
}

#[test]
fn channel_view_charts_the_chosen_kpi() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Open);
    act(&mut h, &mut app, Action::Open);
    assert_eq!(app.view, View::Channel);
    insta::assert_snapshot!("channel_spend_1h", render_to_string(&mut app, 80, 24));
    for _ in 0..2 {
        act(&mut h, &mut app, Action::MetricNext); // spend → revenue → CTR
    }
    let screen = render_to_string(&mut app, 120, 30);
    assert!(screen.contains("CTR · last 1h"), "{screen}");
}

#[test]
fn app_launch_shows_its_ab_variants() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Down);
    act(&mut h, &mut app, Action::Open);
    app.apply(Action::Filter);
    for c in "douyin\r".chars() {
        let code = if c == '\r' { crossterm::event::KeyCode::Enter } else { crossterm::event::KeyCode::Char(c) };
        app.modal_key(crossterm::event::KeyEvent::from(code));
    }
    act(&mut h, &mut app, Action::Open);
    let screen = render_to_string(&mut app, 80, 24);
    assert!(screen.contains("抖音信息流 Douyin feed (A/B)"), "{screen}");
    assert!(screen.contains("A/B  variant") && screen.contains("     B "), "{screen}");
}

#[test]
fn help_lists_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Help);
    let screen = render_to_string(&mut app, 100, 40);
    for b in BINDINGS {
        assert!(screen.contains(b.help), "help lacks '{}'", b.help);
    }
    insta::assert_snapshot!(render_to_string(&mut app, 80, 24));
    insta::assert_snapshot!("help_at_200x50", render_to_string(&mut app, 200, 50));
}

/// At 80x24 the help does not fit: it scrolls to its last line, and every key's words are
/// on one of its pages (an entry too long for its column wraps, never cut).
#[test]
fn the_help_scrolls_to_its_end_at_80x24() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Help);
    let mut pages = vec![render_to_string(&mut app, 80, 24)];
    assert!(pages[0].contains("Keys — 1–") && pages[0].contains("scroll"), "{}", pages[0]);
    for _ in 0..10 {
        act(&mut h, &mut app, Action::PageDown);
        pages.push(render_to_string(&mut app, 80, 24));
    }
    let last = pages.last().unwrap();
    assert!(last.contains("‖ paused"), "the last line is reached: {last}");
    let all = pages.join("\n");
    for b in BINDINGS {
        for word in b.help.split(' ') {
            assert!(all.contains(word), "the help's pages lack '{word}' of '{}'", b.help);
        }
    }
    assert!(all.contains(":silence") && all.contains(":note"), "the command list is there too");
    // Back at the top with Home; Esc closes.
    act(&mut h, &mut app, Action::Top);
    assert_eq!(render_to_string(&mut app, 80, 24), pages[0]);
    act(&mut h, &mut app, Action::Back);
    assert!(!app.help);
}

#[test]
fn an_empty_database_says_how_to_begin() {
    let app_snap = Arc::new(Snapshot { db_path: "/data/cockpit.db".into(), ..Snapshot::default() });
    let mut app = App::new(app_snap, Theme::mono(), "tester");
    let screen = render_to_string(&mut app, 80, 24);
    assert!(screen.contains("cockpit demo") && screen.contains("cockpit campaign import"), "{screen}");
}

#[test]
fn small_terminals_get_a_notice_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    insta::assert_snapshot!("too_small_20x5", render_to_string(&mut app, 20, 5));
    for (name, _) in BUILT_IN {
        app.theme = Theme::load(name).unwrap();
        for view in [Action::Overview, Action::CampaignView, Action::ChannelView, Action::Help] {
            act(&mut h, &mut app, view);
            for (w, ht) in
                [(1, 1), (2, 3), (20, 5), (39, 9), (40, 10), (41, 11), (60, 15), (80, 24), (132, 43), (250, 70)]
            {
                render_to_string(&mut app, w, ht);
            }
            act(&mut h, &mut app, Action::Back);
        }
    }
}

#[test]
fn every_key_in_every_view_renders() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    for view in [Action::Overview, Action::CampaignView, Action::ChannelView] {
        for b in BINDINGS.iter().filter(|b| b.action != Action::Quit) {
            act(&mut h, &mut app, view);
            act(&mut h, &mut app, b.action);
            render_to_string(&mut app, 80, 24);
            if app.help {
                act(&mut h, &mut app, Action::Help);
            }
            app.modal = None;
        }
    }
    h.engine.command(Command::ClearDetail);
}

#[test]
fn alerts_view_groups_by_campaign_and_jumps_to_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::AlertsView);
    assert_eq!(app.view, View::Alerts);
    insta::assert_snapshot!("alerts_80x24", render_to_string(&mut app, 80, 24));
    let first = app.snap.alerts[0].key.clone();
    act(&mut h, &mut app, Action::Open);
    assert_eq!(app.view, View::Channel);
    assert_eq!(
        app.channel.as_ref().map(|k| (k.campaign.as_str(), k.channel.as_str())),
        Some((first.campaign.as_str(), first.channel.as_str()))
    );
}

#[test]
fn alert_filters_bell_and_channel_wide_silence() {
    use campaign_cockpit::alert::{AlertState, Severity};
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    // The e-mail source fails at +5h: a critical alert.
    h.run_minutes(5 * 60 - 5);
    let mut app = App::new(fixed(&h.snapshot()), Theme::load("default").unwrap(), "tester");
    app.bell = true;
    act(&mut h, &mut app, Action::AlertsView);
    let all = app.alerts.rows.len();
    assert_eq!(all, app.snap.alerts.len());
    // Critical only, then firing only.
    act(&mut h, &mut app, Action::SeverityFilter);
    act(&mut h, &mut app, Action::SeverityFilter);
    assert!(app.alerts.rows.iter().all(|i| app.snap.alerts[*i].severity == Severity::Crit));
    act(&mut h, &mut app, Action::StateFilter);
    act(&mut h, &mut app, Action::StateFilter);
    assert!(app.alerts.rows.iter().all(|i| app.snap.alerts[*i].state == AlertState::Firing));
    assert!(render_to_string(&mut app, 80, 24).contains("showing critical, firing"));

    // The source fails: a new critical alert rings once.
    h.run_minutes(10);
    app.set_snapshot(fixed(&h.snapshot()));
    assert!(app.ring, "a new critical alert rings the bell");
    app.ring = false;
    h.run_minutes(1);
    app.set_snapshot(fixed(&h.snapshot()));
    assert!(!app.ring, "the same alert rings once");

    // S silences every alert of the selected alert's channel.
    while app.selected_alert().is_some_and(|a| a.key.channel != "email-edm")
        && app.alerts.sel + 1 < app.alerts.rows.len()
    {
        act(&mut h, &mut app, Action::Down);
    }
    let sel = app.selected_alert().expect("the failing source's alert").key.clone();
    assert_eq!((sel.channel.as_str(), sel.rule.as_str()), ("email-edm", "health"));
    act(&mut h, &mut app, Action::SilenceChannel);
    for k in "2h\r".chars() {
        let code = if k == '\r' { KeyCode::Enter } else { KeyCode::Char(k) };
        if k == '2' {
            // The prompt starts with "1h": clear it first.
            app.modal_key(KeyEvent::from(KeyCode::Backspace));
            app.modal_key(KeyEvent::from(KeyCode::Backspace));
        }
        if let Some(cmd) = app.modal_key(KeyEvent::from(code)) {
            h.engine.command(cmd);
            h.engine.publish();
            app.set_snapshot(fixed(&h.snapshot()));
        }
    }
    let s = app.snap.silences.iter().find(|s| s.channel == "email-edm").expect("a silence");
    assert!(s.rule.is_empty(), "covers every rule of the channel");
    assert_eq!(s.until_ms - s.created_ms, 2 * 3_600_000);
}

/// Sends what the app returns to the engine and hands the engine's answer back.
fn key(h: &mut Harness, app: &mut App, k: KeyCode) {
    let ev = KeyEvent::from(k);
    if let Some(cmd) = app.modal_key(ev) {
        h.engine.command(cmd);
    }
    h.engine.publish();
    app.set_snapshot(fixed(&h.snapshot()));
}

#[test]
fn optimize_view_applies_after_confirming_and_undoes() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    // Four hours in: Douyin's CTR collapse has made it the 618 campaign's worst channel.
    h.run_minutes(4 * 60);
    let mut app = App::new(fixed(&h.snapshot()), Theme::load("default").unwrap(), "tester");
    act(&mut h, &mut app, Action::OptimizeView);
    assert_eq!(app.view, View::Optimize);
    insta::assert_snapshot!("optimize_80x24", render_to_string(&mut app, 80, 24));
    assert!(!app.snap.recommendations.is_empty());

    // Select the first recommendation that changes something; y asks, n cancels.
    while app.selected_rec().is_some_and(|r| r.info_only) {
        act(&mut h, &mut app, Action::Down);
    }
    let rec = app.selected_rec().unwrap().clone();
    act(&mut h, &mut app, Action::ApplyRec);
    let text = app.confirm().expect("a confirmation line").text.clone();
    assert!(rec.changes.iter().all(|c| text.contains(&c.describe())), "{text}");
    key(&mut h, &mut app, KeyCode::Char('n'));
    assert!(app.confirm().is_none() && h.engine.take_outbox().is_empty(), "cancelled: nothing sent");
    act(&mut h, &mut app, Action::ApplyRec);
    key(&mut h, &mut app, KeyCode::Char('y'));
    assert_eq!(h.answer_controls(), rec.changes.len());
    app.set_snapshot(fixed(&h.snapshot()));
    let applied: Vec<_> = app.snap.journal.iter().filter(|e| e.undoable()).collect();
    assert_eq!(applied.len(), rec.changes.len());
    assert!(applied.iter().all(|e| e.recommendation.as_deref().is_some_and(|r| r.starts_with(&rec.id))));
    assert!(!app.snap.recommendations.iter().any(|r| r.id == rec.id), "applied advice is gone (learning period)");

    // u undoes the last applied action after confirming.
    act(&mut h, &mut app, Action::Undo);
    assert!(app.confirm().unwrap().text.starts_with("undo #"));
    key(&mut h, &mut app, KeyCode::Char('y'));
    assert_eq!(h.answer_controls(), 1);
    app.set_snapshot(fixed(&h.snapshot()));
    assert!(app.snap.journal.iter().any(|e| e.undo_of.is_some() && !e.undoable()));
    assert!(app.snap.journal.iter().any(|e| e.undone_by.is_some()));
}

#[test]
fn dismissing_hides_a_recommendation_for_the_time_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    h.run_minutes(4 * 60);
    let mut app = App::new(fixed(&h.snapshot()), Theme::load("default").unwrap(), "tester");
    act(&mut h, &mut app, Action::OptimizeView);
    let id = app.selected_rec().expect("a recommendation").id.clone();
    act(&mut h, &mut app, Action::Snooze);
    assert_eq!(app.prompt().unwrap().text, "4h");
    key(&mut h, &mut app, KeyCode::Enter);
    assert!(!app.snap.recommendations.iter().any(|r| r.id == id), "dismissed for 4h");
    h.run_minutes(3 * 60);
    app.set_snapshot(fixed(&h.snapshot()));
    assert!(!app.snap.recommendations.iter().any(|r| r.id == id), "still dismissed after 3h");
}

#[test]
fn manual_pause_and_budget_from_the_campaign_view() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Open); // the first campaign
    let ch = app.selected_channel().unwrap().key.clone();
    act(&mut h, &mut app, Action::PauseChannel);
    assert!(app.confirm().unwrap().text.starts_with(&format!("pause {}", ch.channel)));
    key(&mut h, &mut app, KeyCode::Char('y'));
    assert_eq!(h.answer_controls(), 1);
    act(&mut h, &mut app, Action::SetBudget);
    // Out of the channel's range: refused with the range.
    for c in ["9", "9", "9", "9", "9", "9"] {
        key(&mut h, &mut app, KeyCode::Char(c.chars().next().unwrap()));
    }
    // The prompt starts with the current budget; the typed digits make it far too big.
    key(&mut h, &mut app, KeyCode::Enter);
    assert!(app.message.as_deref().is_some_and(|m| m.contains("is not a budget")), "{:?}", app.message);
    act(&mut h, &mut app, Action::SetBudget);
    for _ in 0..10 {
        key(&mut h, &mut app, KeyCode::Backspace);
    }
    // A budget inside the channel's range: 10 % below today's, not below its minimum.
    let plan = app.campaign().unwrap().campaign.channel(&ch.channel).unwrap().clone();
    let target = ((plan.daily_budget * 0.9).max(plan.min_budget.unwrap_or(0.0))).round();
    for c in format!("{target}").chars() {
        key(&mut h, &mut app, KeyCode::Char(c));
    }
    key(&mut h, &mut app, KeyCode::Enter);
    let want = format!("→ {}/day", campaign_cockpit::domain::format::count(target as i64));
    assert!(
        app.confirm().is_some_and(|c| c.text.contains(&want)),
        "{:?} {:?}",
        app.confirm().map(|c| &c.text),
        app.message
    );
    key(&mut h, &mut app, KeyCode::Char('y'));
    assert_eq!(h.answer_controls(), 1);
    let net_budget =
        h.net.channels.iter().find(|c| c.campaign == ch.campaign && c.id == ch.channel).unwrap().daily_budget;
    assert_eq!(net_budget, target);
}

/// Read-only: every key of every view, with every confirmation answered yes and every prompt
/// entered, sends nothing to any control endpoint.
#[test]
fn read_only_cannot_be_bypassed_from_any_view_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    h.run_minutes(4 * 60);
    h.engine.set_read_only(true);
    let mut app = App::new(fixed(&h.snapshot()), Theme::load("default").unwrap(), "tester");
    assert!(render_to_string(&mut app, 100, 30).contains("READ-ONLY"));
    let before: Vec<(f64, String)> =
        h.net.channels.iter().map(|c| (c.daily_budget, format!("{:?}", c.status))).collect();
    let views = [Action::Overview, Action::CampaignView, Action::ChannelView, Action::AlertsView, Action::OptimizeView];
    for v in views {
        for b in BINDINGS.iter().filter(|b| b.action != Action::Quit) {
            act(&mut h, &mut app, v);
            if let Some(cmd) = app.apply(b.action) {
                h.engine.command(cmd);
            }
            for k in [KeyCode::Enter, KeyCode::Char('y')] {
                key(&mut h, &mut app, k);
            }
            app.help = false;
            assert!(h.engine.take_outbox().is_empty(), "{:?} in {v:?} queued a control request", b.action);
        }
    }
    let after: Vec<(f64, String)> =
        h.net.channels.iter().map(|c| (c.daily_budget, format!("{:?}", c.status))).collect();
    assert_eq!(before, after);
    assert!(app.snap.journal.is_empty());
}

/// Without colour (mono, NO_COLOR) a value outside its limit and a change for the worse read
/// from a mark; with colour, the table is as it was.
#[test]
fn without_colour_breaches_and_better_or_worse_read_from_marks() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    act(&mut h, &mut app, Action::Open);
    let coloured = render_to_string(&mut app, 132, 30);
    assert!(!coloured.contains('✗'), "{coloured}");
    app.theme = Theme::mono();
    let mono = render_to_string(&mut app, 132, 30);
    // Douyin's CPA is over the campaign's limit (cpa <= 90).
    let douyin = mono.lines().find(|l| l.contains("Douyin")).expect("douyin's row");
    assert!(douyin.contains('✗'), "{douyin}");
    let tmall = mono.lines().find(|l| l.contains("Tmall")).expect("tmall's row");
    assert!(!tmall.contains('✗'), "within its limits: {tmall}");
    act(&mut h, &mut app, Action::AnalyzeView);
    let screen = render_to_string(&mut app, 132, 30);
    assert!(screen.contains("✓ better, ✗ worse"), "{screen}");
    h.engine.command(Command::ClearDetail);
}

/// `:` opens the command line: Tab completes commands and ids, Enter runs, ↑ recalls, a
/// mistake is said; `:q` quits.
#[test]
fn the_command_line_completes_runs_and_remembers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    let press = |h: &mut Harness, app: &mut App, code: KeyCode| {
        if let Some(cmd) = app.key(KeyEvent::from(code)) {
            h.engine.command(cmd);
            h.engine.publish();
            app.set_snapshot(fixed(&h.snapshot()));
        }
    };
    let typed = |h: &mut Harness, app: &mut App, s: &str| {
        for c in s.chars() {
            press(h, app, KeyCode::Char(c));
        }
    };
    let line = |app: &App| match &app.modal {
        Some(campaign_cockpit::ui::app::Modal::Prompt(p)) => p.text.clone(),
        _ => panic!("the command line is open"),
    };
    typed(&mut h, &mut app, ":camp");
    press(&mut h, &mut app, KeyCode::Tab);
    assert_eq!(line(&app), "campaign ");
    typed(&mut h, &mut app, "618");
    press(&mut h, &mut app, KeyCode::Tab);
    assert_eq!(line(&app), "campaign 618-promo ", "the one campaign whose id starts so");
    let screen = render_to_string(&mut app, 80, 24);
    assert!(screen.contains(":campaign 618-promo") && screen.contains("Tab complete"), "{screen}");
    press(&mut h, &mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Campaign);
    assert_eq!(app.campaign().unwrap().campaign.id, "618-promo");
    // Another campaign, with fewer channels, found by its name: its own table.
    typed(&mut h, &mut app, ":campaign finch");
    press(&mut h, &mut app, KeyCode::Tab);
    assert_eq!(line(&app), "campaign app-launch ");
    press(&mut h, &mut app, KeyCode::Enter);
    let screen = render_to_string(&mut app, 80, 24);
    assert!(screen.contains("Finch"), "{screen}");
    assert_eq!(app.table.rows.len(), app.campaign().unwrap().channels.len());
    typed(&mut h, &mut app, ":campaign 618-promo");
    press(&mut h, &mut app, KeyCode::Enter);
    render_to_string(&mut app, 80, 24);
    typed(&mut h, &mut app, ":channel douyin");
    press(&mut h, &mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Channel);
    assert_eq!(app.channel.as_ref().unwrap().channel, "douyin");
    assert_eq!(app.snap.series.as_ref().map(|s| s.key.channel.as_str()), Some("douyin"), "its chart is asked for");
    typed(&mut h, &mut app, ":window 6h");
    press(&mut h, &mut app, KeyCode::Enter);
    assert_eq!(app.chart.window.label(), "6h");
    typed(&mut h, &mut app, ":theme mono");
    press(&mut h, &mut app, KeyCode::Enter);
    assert_eq!(app.theme.name, "mono");
    typed(&mut h, &mut app, ":frobnicate");
    press(&mut h, &mut app, KeyCode::Enter);
    assert!(app.message.as_deref().is_some_and(|m| m.contains("no command ':frobnicate'")), "{:?}", app.message);
    // ↑ goes back through what was run, newest first.
    press(&mut h, &mut app, KeyCode::Char(':'));
    press(&mut h, &mut app, KeyCode::Up);
    assert_eq!(line(&app), "frobnicate");
    press(&mut h, &mut app, KeyCode::Up);
    assert_eq!(line(&app), "theme mono");
    press(&mut h, &mut app, KeyCode::Down);
    assert_eq!(line(&app), "frobnicate");
    press(&mut h, &mut app, KeyCode::Down);
    assert_eq!(line(&app), "", "past the newest, an empty line");
    press(&mut h, &mut app, KeyCode::Esc);
    typed(&mut h, &mut app, ":note launch checked");
    press(&mut h, &mut app, KeyCode::Enter);
    assert!(app.snap.notes.iter().any(|n| n.text == "launch checked" && n.channel.as_deref() == Some("douyin")));
    typed(&mut h, &mut app, ":q");
    press(&mut h, &mut app, KeyCode::Enter);
    assert!(app.quit);
    h.engine.command(Command::ClearDetail);
}

#[test]
fn a_rebound_key_does_its_action_and_help_and_footer_show_it() {
    use campaign_cockpit::ui::keys::{Keymap, Override};
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    let rebind = |action: &str, keys: &[&str]| Override {
        scope: None,
        action: action.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        line: 1,
    };
    app.keys = Keymap::with_overrides(&[rebind("ack", &["A"]), rebind("alerts_view", &["F4", "4"])]).unwrap();
    let press = |app: &mut App, code| app.key(KeyEvent::from(code));
    assert!(press(&mut app, KeyCode::F(4)).is_none());
    assert_eq!(app.view, View::Alerts);
    let footer = render_to_string(&mut app, 100, 30);
    assert!(footer.lines().last().unwrap().contains(" A ack"), "{footer}");
    assert!(press(&mut app, KeyCode::Char('a')).is_none(), "the old key does nothing");
    let cmd = press(&mut app, KeyCode::Char('A')).expect("an ack");
    assert!(matches!(cmd, Command::Ack { .. }), "{cmd:?}");
    h.engine.command(cmd);
    act(&mut h, &mut app, Action::Help);
    let screen = render_to_string(&mut app, 100, 40);
    let line = screen.lines().find(|l| l.contains("acknowledge the alert")).unwrap();
    assert!(line.contains("  A ") && !line.contains("  a "), "{line}");
    assert!(screen.contains("F4 4"), "{screen}");
}

#[test]
fn the_checklist_shows_on_the_campaign_and_x_marks_the_selected_task() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, mut app) = demo_app(dir.path());
    let at = app.snap.campaigns.iter().position(|c| c.campaign.id == "app-launch").unwrap();
    app.campaign_sel = at;
    act(&mut h, &mut app, Action::CampaignView);
    act(&mut h, &mut app, Action::Checklist);
    insta::assert_snapshot!(render_to_string(&mut app, 80, 24));
    act(&mut h, &mut app, Action::Down);
    let Some(Command::Task { task, done: true, .. }) = app.apply(Action::TaskDone) else { panic!("a task command") };
    assert_eq!(task, "Week-2 budget increase signed off");
    act(&mut h, &mut app, Action::TaskDone);
    // Done, it moves down the list, and stays selected: x again opens it.
    let Some(Command::Task { task, done: false, .. }) = app.apply(Action::TaskDone) else { panic!("a task command") };
    assert_eq!(task, "Week-2 budget increase signed off");
    let screen = render_to_string(&mut app, 120, 30);
    assert!(
        screen.contains("Tasks   3/4 done · next: Creative B cleared by legal (陈静 brand, due in 30m)"),
        "{screen}"
    );
    assert!(screen.contains("by tester"), "{screen}");
    // Back to the channels.
    act(&mut h, &mut app, Action::Checklist);
    assert!(render_to_string(&mut app, 80, 24).contains("Spend trend"));
}
