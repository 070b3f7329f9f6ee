//! Alerts on the demo scenario, end to end through the engine: a source failure and a KPI
//! breach fire, recover and resolve, and an acknowledgement survives a restart.

mod common;

use campaign_cockpit::alert::{AlertState, Severity};
use campaign_cockpit::engine::{Command, Engine};
use campaign_cockpit::store::Store;
use common::Harness;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn demo_incidents_fire_resolve_and_acks_persist() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    // The e-mail platform fails from +5h for 40 minutes.
    h.run_minutes(5 * 60 + 2);
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
    // The source recovers at +5h40m; health alerts resolve at once.
    h.run_minutes(45);
    let resolved = h.snapshot().alerts.iter().find(|a| a.key == health.key).unwrap().clone();
    assert_eq!(resolved.state, AlertState::Resolved);
    drop(h);
    // After a restart the alert states (and the ack) are still there.
    let store = Store::open(&dir.path().join("db")).unwrap();
    let campaigns = store.campaigns().unwrap();
    let sources = Engine::sources_for(&campaigns, Duration::from_secs(1));
    let clock = Arc::new(campaign_cockpit::clock::ManualClock::new(resolved.resolved_ms.unwrap() + 60_000));
    let (_engine, rx) = Engine::new(store, clock, &sources).unwrap();
    let after = rx.borrow().alerts.iter().find(|a| a.key == health.key).cloned().expect("kept across a restart");
    assert_eq!(after.state, AlertState::Resolved);
    assert_eq!(after.ack.map(|a| a.by), Some("oncall".to_string()));
}
