//! The engine across a restart: totals come from the stored cursors at once, sparkline
//! history is backfilled after the first snapshot, and nothing is counted twice.

mod common;

use campaign_cockpit::clock::{Clock, ManualClock};
use campaign_cockpit::engine::Engine;
use campaign_cockpit::store::{ChannelKey, Store};
use common::Harness;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_restart_keeps_totals_and_backfills_sparklines() {
    let dir = tempfile::tempdir().unwrap();
    let key = ChannelKey::new("618-promo", "douyin");
    let (before, now) = {
        let mut h = Harness::demo(dir.path());
        h.run_minutes(30);
        let snap = h.snapshot();
        let ch = snap.channel(&key).unwrap().clone();
        assert_eq!(ch.recent.len(), 29, "the first reading is not a rate sample");
        (ch, h.clock.now_ms())
    };
    let store = Store::open(&dir.path().join("db")).unwrap();
    let campaigns = store.campaigns().unwrap();
    let sources = Engine::sources_for(&campaigns, Duration::from_secs(1));
    let clock = Arc::new(ManualClock::new(now));
    let (mut engine, rx) = Engine::new(store, clock, &sources).unwrap();
    let first = rx.borrow().clone();
    let ch = first.channel(&key).unwrap();
    assert_eq!(ch.totals, before.totals, "totals are there in the first snapshot");
    // Counts exactly; money up to float summation order (samples vs hourly rollups).
    let (a, b) = (ch.today, before.today);
    assert_eq!((a.impressions, a.clicks, a.leads, a.conversions), (b.impressions, b.clicks, b.leads, b.conversions));
    assert!((a.spend - b.spend).abs() < 1e-6 && (a.revenue - b.revenue).abs() < 1e-6, "{a:?} vs {b:?}");
    assert!(ch.recent.is_empty(), "history comes later");
    assert!(engine.backfilling());
    while engine.backfilling() {
        engine.backfill_some(4);
    }
    engine.publish();
    let after = rx.borrow().clone();
    assert_eq!(after.channel(&key).unwrap().recent, before.recent);
    assert_eq!(after.channel(&key).unwrap().totals, before.totals);
}
