//! Replay runs the live rules: a channel's stored history, replayed, raises the alerts the
//! engine raised live, at the same minutes.

mod common;

use campaign_cockpit::alert::AlertState;
use campaign_cockpit::alert::backtest::ChannelReplay;
use campaign_cockpit::domain::{ChannelKey, NoteKind};
use campaign_cockpit::store::Store;
use common::Harness;
use std::collections::BTreeSet;

#[test]
fn a_stored_channel_replayed_raises_the_alerts_the_engine_raised_live() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    let start = h.snapshot().now_ms;
    h.run_minutes(8 * 60);
    let end = h.snapshot().now_ms;
    // What fired and resolved live, by channel (the source's health is judged live only).
    let live: BTreeSet<(String, String, i64, bool)> = h
        .snapshot()
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Alert && n.channel.is_some())
        .filter(|n| n.rule.as_deref().is_some_and(|r| !r.starts_with("health") && !r.starts_with("task")))
        .map(|n| (n.campaign.clone(), n.channel.clone().unwrap(), n.at_ms, n.fired == Some(true)))
        .collect();
    // The last minute may still be open in the engine.
    let live: BTreeSet<_> = live.into_iter().filter(|(_, _, at, _)| *at < end - 60_000).collect();
    assert!(live.iter().filter(|e| e.3).count() >= 3, "the demo fires some channel alerts: {live:?}");
    let campaigns = h.campaigns.clone();
    let Harness { engine, .. } = h;
    drop(engine);
    let store = Store::open(&dir.path().join("db")).unwrap();
    let mut replayed = BTreeSet::new();
    for c in &campaigns {
        for ch in &c.channels {
            let mut r = ChannelReplay::new(c, &ch.id).unwrap();
            for s in store.samples(&ChannelKey::new(&c.id, &ch.id), start - 1, end).unwrap() {
                for change in r.push(s.at, &s.delta, s.first) {
                    if change.state != AlertState::Pending && change.at_ms < end - 60_000 {
                        replayed.insert((
                            c.id.clone(),
                            ch.id.clone(),
                            change.at_ms,
                            change.state == AlertState::Firing,
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(replayed, live);
}
