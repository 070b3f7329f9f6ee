//! The launch checklist: a task falls due on the engine's clock and fires a `task` alert with
//! its owner; marked done it resolves, is noted with who and when, and stays done across a
//! restart and an export.

mod common;

use campaign_cockpit::alert::AlertState;
use campaign_cockpit::domain::Campaign;
use campaign_cockpit::domain::campaign::Format;
use campaign_cockpit::engine::Command;
use campaign_cockpit::store::Store;
use common::Harness;

const RULE: &str = "task: Creative B cleared by legal";

fn task_alert(h: &Harness) -> Option<campaign_cockpit::alert::Alert> {
    h.snapshot().alerts.iter().find(|a| a.key.rule == RULE).cloned()
}

#[test]
fn an_overdue_task_fires_with_its_owner_and_done_it_resolves_and_stays_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    // The demo starts at 09:00; the task is due at 11:00.
    h.run_minutes(119);
    assert!(task_alert(&h).is_none(), "not due yet");
    h.run_minutes(2);
    let a = task_alert(&h).expect("overdue: an alert");
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!((a.key.campaign.as_str(), a.key.channel.as_str()), ("app-launch", "douyin-feed"));
    assert_eq!(a.severity, campaign_cockpit::alert::Severity::Warn);
    assert!(a.summary.contains("owner 陈静 brand") && a.summary.contains("due 8 Jun 11:00"), "{}", a.summary);
    let plan = h.snapshot().campaign("app-launch").unwrap().campaign.clone();
    assert_eq!(campaign_cockpit::domain::campaign::task_counts(&plan.tasks, h.snapshot().now_ms), (2, 2, 1));

    // Something that is not a task is said, and changes nothing.
    let task =
        |t: &str, done| Command::Task { campaign: "app-launch".into(), task: t.into(), done, by: "tester".into() };
    h.engine.command(task("legal review", true));
    h.engine.publish();
    let notice = h.snapshot().notice.clone().unwrap().1;
    assert!(
        notice.starts_with("campaign 'app-launch' has no task 'legal review' (its tasks: 1 Store listing"),
        "{notice}"
    );
    h.engine.command(task("and", true));
    h.engine.publish();
    let notice = h.snapshot().notice.clone().unwrap().1;
    assert!(notice.starts_with("'and' could be any of: Store listing and landing page live, Install"), "{notice}");
    assert_eq!(task_alert(&h).unwrap().state, AlertState::Firing);
    // By words of its title.
    h.engine.command(task("creative legal", true));
    h.engine.publish();
    let a = task_alert(&h).unwrap();
    assert_eq!(a.state, AlertState::Resolved, "{a:?}");
    let snap = h.snapshot();
    let t =
        snap.campaign("app-launch").unwrap().campaign.tasks.iter().find(|t| t.title.starts_with("Creative")).cloned();
    let t = t.unwrap();
    assert!(t.done && t.done_by.as_deref() == Some("tester"));
    assert_eq!(t.done_at.unwrap().timestamp_millis(), snap.now_ms);
    let note = snap.notes.iter().rev().find(|n| n.text.starts_with("task done")).expect("journaled as a note");
    assert_eq!((note.by.as_str(), note.at_ms), ("tester", snap.now_ms));
    assert_eq!(note.text, "task done: Creative B cleared by legal (owner 陈静 brand)");
    // Later polls do not fire it again.
    h.run_minutes(5);
    assert_eq!(task_alert(&h).unwrap().state, AlertState::Resolved);

    // Kept where the plan is stored, and in its export, which imports back the same.
    let Harness { engine, .. } = h;
    drop(engine);
    let store = Store::open(&dir.path().join("db")).unwrap();
    let stored = store.campaign("app-launch").unwrap().unwrap();
    assert_eq!(stored.tasks.iter().find(|t| t.title.starts_with("Creative")), Some(&t));
    for (text, format) in [(stored.to_toml(), Format::Toml), (stored.to_json(), Format::Json)] {
        let back = Campaign::parse(&text, format, "export").unwrap();
        assert_eq!(back, stored, "round trip through {format:?}");
        assert!(!back.costs.is_empty() && back.tasks.len() == 4);
    }
    assert!(stored.to_toml().contains("done_by = \"tester\""));
}

#[test]
fn an_open_task_can_be_reopened_and_its_alert_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    h.run_minutes(125);
    let task = |done| Command::Task { campaign: "app-launch".into(), task: "3".into(), done, by: "tester".into() };
    h.engine.command(task(true));
    h.engine.publish();
    assert_eq!(task_alert(&h).unwrap().state, AlertState::Resolved);
    h.engine.command(task(true));
    h.engine.publish();
    assert!(h.snapshot().notice.clone().unwrap().1.contains("is done already"));
    h.engine.command(task(false));
    h.engine.publish();
    assert_eq!(task_alert(&h).unwrap().state, AlertState::Firing);
    let snap = h.snapshot();
    let t = &snap.campaign("app-launch").unwrap().campaign.tasks[2];
    assert!(!t.done && t.done_by.is_none() && t.done_at.is_none());
    assert!(snap.notes.iter().any(|n| n.text.starts_with("task reopened: Creative B")));
}
