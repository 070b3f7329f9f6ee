//! Alerts on the demo scenario, end to end through the engine: a source failure and a KPI
//! breach fire, recover and resolve, and an acknowledgement survives a restart.

mod common;

use campaign_cockpit::alert::{AlertState, Severity};
use campaign_cockpit::clock::Clock;
use campaign_cockpit::engine::{Command, Engine};
use campaign_cockpit::store::Store;
use common::Harness;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn demo_incidents_fire_resolve_and_acks_persist() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    // The e-mail platform fails from +5h for 40 minutes: its alert fires 2 minutes after the
    // third failed poll.
    h.run_minutes(5 * 60 + 4);
    let snap = h.snapshot();
    let health =
        snap.alerts.iter().find(|a| a.key.channel == "email-edm" && a.key.rule == "health").expect("a health alert");
    assert_eq!((health.state, health.severity), (AlertState::Firing, Severity::Crit));
    assert!(health.summary.contains("HTTP 500"), "{}", health.summary);
    assert!(snap.alert_counts().0 >= 1);
    // Douyin's CTR falls 60 % from +2h (scripted creative fatigue) below the 1 % limit.
    let ctr = snap
        .alerts
        .iter()
        .find(|a| a.key.campaign == "618-promo" && a.key.channel == "douyin" && a.key.rule == "kpi: ctr >= 0.01")
        .expect("a CTR alert");
    assert_eq!(ctr.state, AlertState::Firing);
    assert!(ctr.summary.starts_with("CTR 0.") && ctr.summary.contains("impressions"), "{}", ctr.summary);
    // The other 618 channels are within their CTR limit: no alert for them.
    assert!(!snap.alerts.iter().any(|a| a.key.channel == "tmall-ztc" && a.key.rule == "kpi: ctr >= 0.01"));
    // Acknowledge it, as the `a` key does.
    h.engine.command(Command::Ack { key: health.key.clone(), by: "oncall".into() });
    h.engine.publish();
    let acked = h.snapshot().alerts.iter().find(|a| a.key == health.key).unwrap().clone();
    assert_eq!(acked.ack.as_ref().map(|a| a.by.as_str()), Some("oncall"));
    // The source recovers at +5h40m; the health alert resolves 5 minutes later.
    h.run_minutes(45);
    let resolved = h.snapshot().alerts.iter().find(|a| a.key == health.key).unwrap().clone();
    assert_eq!(resolved.state, AlertState::Resolved);
    drop(h);
    // After a restart the alert states (and the ack) are still there.
    let store = Store::open(&dir.path().join("db")).unwrap();
    let campaigns = store.campaigns().unwrap();
    let sources = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_secs(1));
    let clock = Arc::new(campaign_cockpit::clock::ManualClock::new(resolved.resolved_ms.unwrap() + 60_000));
    let (_engine, rx) = Engine::new(store, clock, &sources).unwrap();
    let after = rx.borrow().alerts.iter().find(|a| a.key == health.key).cloned().expect("kept across a restart");
    assert_eq!(after.state, AlertState::Resolved);
    assert_eq!(after.ack.map(|a| a.by), Some("oncall".to_string()));
}

#[test]
fn silences_hide_an_alert_until_they_expire_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    h.run_minutes(5 * 60 + 4);
    let snap = h.snapshot();
    let failing = snap.alerts.iter().find(|a| a.key.channel == "email-edm" && a.key.rule == "health").unwrap().clone();
    let (crit_before, _, _) = snap.alert_counts();
    h.engine.command(Command::Silence { key: failing.key.clone(), for_ms: 20 * 60_000, by: "oncall".into() });
    h.engine.publish();
    let snap = h.snapshot();
    assert_eq!(snap.alert_counts().0, crit_before - 1, "a silenced alert is not counted");
    assert_eq!(snap.silence_of(&failing).map(|s| s.by.as_str()), Some("oncall"));
    let now = h.clock.now_ms();
    drop(h);
    // Still silenced after a restart.
    let store = Store::open(&dir.path().join("db")).unwrap();
    let campaigns = store.campaigns().unwrap();
    let sources = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_secs(1));
    let clock = Arc::new(campaign_cockpit::clock::ManualClock::new(now + 60_000));
    let (mut engine, rx) = Engine::new(store, clock.clone(), &sources).unwrap();
    let snap = rx.borrow().clone();
    let again = snap.alerts.iter().find(|a| a.key == failing.key).unwrap();
    assert!(snap.silence_of(again).is_some(), "the silence was kept");
    // Past its expiry the silence is gone and the alert counts again.
    clock.set(now + 21 * 60_000);
    engine.publish();
    let snap = rx.borrow().clone();
    assert!(snap.silences.is_empty());
    let again = snap.alerts.iter().find(|a| a.key == failing.key).unwrap();
    assert!(snap.silence_of(again).is_none());
}

#[test]
fn the_silence_prompt_takes_a_duration_from_the_keyboard() {
    use campaign_cockpit::ui::app::App;
    use campaign_cockpit::ui::keys::{Action, action_for};
    use crossterm::event::{KeyCode, KeyEvent};
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    h.run_minutes(5 * 60 + 2);
    let mut app = App::new(h.snapshot(), campaign_cockpit::ui::theme::Theme::mono(), "tester");
    app.apply(Action::AlertsView);
    let key = |c| KeyEvent::from(KeyCode::Char(c));
    assert_eq!(action_for(key('s'), app.scope()), Some(Action::Silence));
    app.apply(Action::Silence);
    assert_eq!(app.prompt().map(|p| p.text.as_str()), Some("1h"));
    for code in [KeyCode::Backspace, KeyCode::Backspace, KeyCode::Char('2'), KeyCode::Char('h')] {
        assert!(app.modal_key(KeyEvent::from(code)).is_none());
    }
    let cmd = app.modal_key(KeyEvent::from(KeyCode::Enter)).expect("a silence command");
    let Command::Silence { key: alert, for_ms, .. } = cmd else { panic!("{cmd:?}") };
    assert_eq!(for_ms, 2 * 3_600_000);
    assert_eq!(alert, app.snap.alerts[0].key);
    assert!(app.prompt().is_none());
    // Nonsense is refused with a message, not a silence.
    app.apply(Action::Silence);
    app.modal_key(key('x'));
    assert!(app.modal_key(KeyEvent::from(KeyCode::Enter)).is_none());
    assert!(app.message.as_deref().is_some_and(|m| m.contains("not a duration")), "{:?}", app.message);
}
