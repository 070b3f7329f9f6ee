//! The engine across a restart: totals come from the stored cursors at once, sparkline
//! history is backfilled after the first snapshot, and nothing is counted twice.

mod common;

use campaign_cockpit::clock::{Clock, ManualClock};
use campaign_cockpit::domain::ChannelKey;
use campaign_cockpit::engine::Engine;
use campaign_cockpit::store::Store;
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
    let sources = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_secs(1));
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
    let recent = &after.channel(&key).unwrap().recent;
    assert!(common::same_series(recent.iter(), before.recent.iter()), "{recent:?} vs {:?}", before.recent);
    assert_eq!(after.channel(&key).unwrap().totals, before.totals);
}

/// The first frame after a restart shows every campaign's totals from one stored record per
/// campaign, before any channel's state is read; those totals are the ones the channels then
/// add up to. Totals that no longer sum up a campaign's channels are not shown, and are
/// written again once the channels are read.
#[test]
fn the_first_frame_shows_stored_campaign_totals_before_the_channels_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (before, now) = {
        let mut h = Harness::demo(dir.path());
        h.run_minutes(90);
        h.engine.commit();
        h.engine.publish();
        (h.snapshot(), h.clock.now_ms())
    };
    let restart = || {
        let store = Store::open(&path).unwrap();
        let campaigns = store.campaigns().unwrap();
        let sources = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_secs(1));
        Engine::open(store, Arc::new(ManualClock::new(now)), campaigns, &sources).unwrap()
    };
    let (mut starting, rx) = restart();
    starting.set_read_only(true);
    let early = rx.borrow().clone();
    assert!(early.read_only, "the first frame already says actions are refused");
    assert_eq!(early.campaigns.len(), before.campaigns.len());
    for c in &before.campaigns {
        let e = early.campaign(&c.campaign.id).unwrap();
        assert!(e.channels.is_empty(), "no channel is read yet");
        assert!(c.totals.clicks > 0, "{} counted something", c.campaign.id);
        assert_eq!((e.totals, e.today, e.day_start_ms), (c.totals, c.today, c.day_start_ms), "{}", c.campaign.id);
    }
    let engine = starting.load().unwrap();
    let full = rx.borrow().clone();
    assert!(full.generation > early.generation);
    assert!(full.read_only, "and so does the engine once loaded");
    for c in &full.campaigns {
        assert_eq!(c.channels.len(), c.campaign.channels.len());
        assert_eq!(c.totals, early.campaign(&c.campaign.id).unwrap().totals);
    }
    drop(engine);

    // A campaign edited while the cockpit was away (a channel dropped): its totals are stale.
    let store = Store::open(&path).unwrap();
    let mut edited = store.campaigns().unwrap().remove(0);
    edited.channels.pop();
    store.put_campaign(&edited).unwrap();
    drop(store);
    let (starting, rx) = restart();
    assert!(rx.borrow().campaigns.is_empty(), "nothing is shown that the channels would contradict");
    let engine = starting.load().unwrap();
    let edited_totals = rx.borrow().campaign(&edited.id).unwrap().totals;
    drop(engine);
    let (starting, rx) = restart();
    assert_eq!(rx.borrow().campaign(&edited.id).unwrap().totals, edited_totals, "written again by the load");
    drop(starting);

    // Cursors written without totals (as `ingest` alone does) take the campaign's totals away.
    let store = Store::open(&path).unwrap();
    let key = ChannelKey::new(&edited.id, &edited.channels[0].id);
    let mut cursor = store.cursor(&key).unwrap().unwrap();
    let sample = cursor.advance(now + 60_000, cursor.raw, &[]).unwrap();
    store.ingest(&[campaign_cockpit::store::Ingest { key: &key, sample: &sample, cursor: &cursor }]).unwrap();
    assert!(!store.campaign_totals().unwrap().contains_key(&edited.id));
    assert_eq!(store.campaign_totals().unwrap().len(), before.campaigns.len() - 1);
}

/// Campaigns of more channels than one write transaction takes are written whole, each with
/// its totals: after a restart every campaign's stored totals match its channels.
#[test]
fn large_campaigns_are_written_whole_with_their_totals() {
    use campaign_cockpit::sim::scale::{Sources, campaigns};
    let dir = tempfile::tempdir().unwrap();
    let start = campaign_cockpit::demo::scenario().start;
    let sc = campaign_cockpit::sim::scenario::Scenario { start, segments: true, ..Default::default() };
    let mut h =
        Harness::with(dir.path(), campaigns(3, 450, Sources::Campaign, "http://127.0.0.1:1", start.unwrap()), sc);
    h.run_minutes(3);
    h.engine.commit();
    h.engine.publish();
    let (before, now) = (h.snapshot(), h.clock.now_ms());
    drop(h);
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert_eq!(store.campaign_totals().unwrap().len(), 3);
    let campaigns = store.campaigns().unwrap();
    let sources = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_secs(1));
    let (starting, rx) = Engine::open(store, Arc::new(ManualClock::new(now)), campaigns, &sources).unwrap();
    let early = rx.borrow().clone();
    assert_eq!(early.campaigns.len(), 3, "every campaign's totals match its channels");
    for c in &before.campaigns {
        assert_eq!(c.channels.len(), 150);
        assert!(c.totals.impressions > 0);
        assert_eq!(early.campaign(&c.campaign.id).unwrap().totals, c.totals, "{}", c.campaign.id);
    }
    drop(starting);
}

/// Readings taken every second are stored a minute at a time: one sample per channel per
/// period, with the cursor of the last one written. Whatever a crash cuts off (the open
/// minute) is not counted until the next reading after the restart, which carries it.
#[test]
fn per_second_readings_are_stored_a_minute_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let key = ChannelKey::new("618-promo", "douyin");
    let mut h = Harness::demo(dir.path());
    for _ in 0..210 {
        h.clock.advance(1_000);
        h.poll_sources();
        h.engine.commit_due();
    }
    h.engine.publish();
    let before = h.snapshot().channel(&key).unwrap().clone();
    // The screen and the rules see every reading, a minute to a sample (as they are stored):
    // the window reaches back as far as when the source is polled once a minute.
    assert!((4..=5).contains(&before.recent.len()), "{} samples", before.recent.len());
    let ends: Vec<i64> = before.recent.iter().map(|(at, _)| at.div_euclid(60_000)).collect();
    assert!(ends.windows(2).all(|w| w[1] == w[0] + 1), "one sample per minute: {ends:?}");
    // The engine goes without a shutdown, as in a crash: the open minute is not written.
    let Harness { engine, net, clock, sources, campaigns, .. } = h;
    drop(engine);
    let store = Store::open(&dir.path().join("db")).unwrap();
    let stored = store.samples(&key, 0, i64::MAX).unwrap();
    // The first reading, then one sample per minute that ended.
    let minutes = stored.iter().filter(|s| !s.first).count();
    assert!((3..=4).contains(&minutes), "{minutes} stored samples of a minute");
    let gaps: Vec<i64> = stored.windows(2).skip(1).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.iter().all(|g| *g == 60_000), "{gaps:?}");
    let cursor = store.cursor(&key).unwrap().unwrap();
    assert_eq!(cursor.at, stored.last().unwrap().at, "the cursor is the last stored sample's");
    let sum = campaign_cockpit::domain::Counters::sum(stored.iter().map(|s| &s.delta));
    let seen = campaign_cockpit::domain::Counters::sum(before.recent.iter().map(|(_, c)| c));
    assert_eq!(seen.clicks + stored[0].delta.clicks, before.totals.clicks, "every reading after the first");
    assert_eq!((sum.impressions, sum.clicks), (cursor.totals.impressions, cursor.totals.clicks));
    let hours: u64 = store.rollups(&key, 0, i64::MAX).unwrap().iter().map(|(_, c)| c.clicks).sum();
    assert_eq!(hours, sum.clicks - stored[0].delta.clicks, "rollups hold every stored minute");
    assert!(cursor.totals.clicks < before.totals.clicks, "the open minute was cut off");
    // After the restart, the next reading (at the same source time) brings it all back.
    let (engine, snapshots) = Engine::new(store, clock.clone(), &sources).unwrap();
    let mut h = Harness { engine, snapshots, clock, net, sources, campaigns };
    h.poll_all();
    h.engine.publish();
    assert_eq!(h.snapshot().channel(&key).unwrap().totals, before.totals);
}

/// A source that flips between good and bad answers, and one whose clock is far off: each shows
/// in its health, nothing panics, and the other sources keep updating.
#[test]
fn flapping_and_skewed_sources_do_not_stop_the_others() {
    use campaign_cockpit::domain::Health;
    use campaign_cockpit::poll::{PollError, PollOutcome};
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    h.run_minutes(5);
    let webinar = h.sources.iter().find(|s| s.url.contains("q2-webinar")).unwrap().url.clone();
    let festival = h.sources.iter().find(|s| s.url.contains("618-promo")).unwrap().url.clone();
    let douyin = ChannelKey::new("618-promo", "douyin");
    let mut healths = Vec::new();
    for round in 0..20 {
        h.clock.advance(60_000);
        let now = h.clock.now_ms();
        h.net.advance_to(now);
        for s in h.sources.clone() {
            let (c, ch) = common::route(&s.url);
            let mut result = h.net.stats(c.as_deref(), ch.as_deref()).map(Option::unwrap).map_err(PollError::Status);
            if s.url == webinar && round % 2 == 1 {
                result = Err(PollError::BadData("not a stats document: expected value at line 1 column 1".into()));
            }
            if s.url == festival
                && let Ok(doc) = &mut result
            {
                // Three days behind: a stale cache.
                doc.generated_at = chrono::DateTime::from_timestamp_millis(now - 3 * 86_400_000);
            }
            h.engine.on_poll(PollOutcome {
                url: s.url.clone(),
                fetched_at: now,
                received: Instant::now(),
                latency: Duration::from_millis(5),
                result,
            });
        }
        h.engine.commit();
        h.engine.publish();
        let snap = h.snapshot();
        healths.push(snap.sources.iter().find(|s| s.url == webinar).unwrap().health);
        let festival_src = snap.sources.iter().find(|s| s.url == festival).unwrap();
        assert_eq!(festival_src.health, Health::BadData, "skew is flagged");
        assert!(festival_src.last_error.as_deref().is_some_and(|e| e.contains("behind ours")));
        // The festival's samples are placed at our time, not three days back.
        assert_eq!(snap.channel(&douyin).unwrap().last_at, now);
    }
    assert!(healths.contains(&Health::Ok) && healths.contains(&Health::BadData), "{healths:?}");
    // The app-launch source was never touched: it kept updating all along.
    let snap = h.snapshot();
    let app = snap.campaign("app-launch").unwrap();
    assert!(app.channels.iter().all(|c| c.last_at == h.clock.now_ms() && c.health == Health::Ok));
}

/// `cockpit db backup` of a database with hours of data reads back the same numbers, and ids
/// handed out by the copy go on from the original's; `db check` reads every record.
#[test]
fn a_backup_restores_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::demo(dir.path());
    h.run_minutes(180);
    h.engine.commit();
    h.engine.publish();
    drop(h);
    let db = dir.path().join("db");
    let copy = dir.path().join("copy.db");
    let original = campaign_cockpit::store::Store::open(&db).unwrap();
    // The last id the original handed out before the copy was taken.
    let max_id = original.next_id().unwrap();
    let records = original.backup(&copy).unwrap();
    assert!(records > 100, "{records}");
    assert!(original.backup(&copy).is_err(), "a backup never overwrites");
    let first = original.check().unwrap();
    let (cursors, notes) = (original.cursors().unwrap(), original.notes(None).unwrap());
    let key = campaign_cockpit::domain::ChannelKey::new("618-promo", "tmall-ztc");
    let samples = original.samples(&key, i64::MIN, i64::MAX).unwrap();
    drop(original);
    let restored = campaign_cockpit::store::Store::open(&copy).unwrap();
    let second = restored.check().unwrap();
    assert_eq!(
        (first.campaigns, first.channels, first.samples, first.alerts, first.notes),
        (second.campaigns, second.channels, second.samples, second.alerts, second.notes)
    );
    assert!(first.samples > 0);
    let back = restored.cursors().unwrap();
    assert_eq!(back.len(), cursors.len());
    for (k, c) in &cursors {
        assert_eq!(back[k].totals, c.totals, "{k:?}");
    }
    assert_eq!(restored.samples(&key, i64::MIN, i64::MAX).unwrap(), samples);
    assert_eq!(restored.notes(None).unwrap(), notes);
    assert!(restored.next_id().unwrap() > max_id, "ids go on from the original's");
}
