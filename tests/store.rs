//! The sled store: round trips, reopening, retention, locking and schema versions.

mod common;

use campaign_cockpit::demo;
use campaign_cockpit::domain::ChannelKey;
use campaign_cockpit::domain::{ChannelCursor, Counters};
use campaign_cockpit::store::{Ingest, SCHEMA_VERSION, Store, StoreError};

fn counters(i: u64, spend: f64) -> Counters {
    Counters { impressions: i, clicks: i / 50, spend, ..Default::default() }
}

#[test]
fn campaigns_and_samples_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let key = ChannelKey::new("618-promo", "douyin");
    {
        let store = Store::open(&path).unwrap();
        for c in demo::campaigns() {
            store.put_campaign(&c).unwrap();
        }
        let mut cursor = ChannelCursor::default();
        let samples: Vec<_> = (1..=10).map(|k| cursor_step(&mut cursor, k)).collect();
        let items: Vec<_> = samples.iter().map(|(s, c)| Ingest { key: &key, sample: s, cursor: c }).collect();
        store.ingest(&items).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.campaigns().unwrap(), {
        let mut v = demo::campaigns();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    });
    let cur = store.cursor(&key).unwrap().unwrap();
    assert_eq!(cur.totals.impressions, 10_000);
    assert_eq!(store.samples(&key, 0, i64::MAX).unwrap().len(), 10);
    // A time window is a range scan: samples at 3..=5 minutes.
    assert_eq!(store.samples(&key, 3 * 60_000, 6 * 60_000).unwrap().len(), 3);
    assert_eq!(
        store.recent_samples(&key, i64::MAX, 4).unwrap().iter().map(|s| s.at / 60_000).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
    let hours = store.rollups(&key, 0, i64::MAX).unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].1.impressions, 9_000, "the first reading belongs to no hour");
    // Retention drops raw samples but the rollups keep the totals.
    assert_eq!(store.prune_samples(&key, 6 * 60_000).unwrap(), 5);
    assert_eq!(store.samples(&key, 0, i64::MAX).unwrap().len(), 5);
    assert_eq!(store.rollups(&key, 0, i64::MAX).unwrap()[0].1.impressions, 9_000);
    // With nothing left to prune, pruning writes nothing (done for every channel each minute).
    store.flush().unwrap();
    for _ in 0..100 {
        assert_eq!(store.prune_samples(&key, 6 * 60_000).unwrap(), 0);
    }
    assert_eq!(store.flush_bytes().unwrap(), 0, "pruning nothing wrote to the log");
    // Removing a campaign removes what was recorded for it.
    assert!(store.remove_campaign("618-promo").unwrap());
    assert!(store.cursor(&key).unwrap().is_none());
    assert!(store.samples(&key, 0, i64::MAX).unwrap().is_empty());
    assert!(!store.remove_campaign("618-promo").unwrap());
}

fn cursor_step(cursor: &mut ChannelCursor, minute: i64) -> (campaign_cockpit::domain::Sample, ChannelCursor) {
    let raw = counters(minute as u64 * 1000, minute as f64 * 10.0);
    let s = cursor.advance(minute * 60_000, raw, &[]).unwrap();
    (s, cursor.clone())
}

#[test]
fn a_second_process_gets_a_clear_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let _held = Store::open(&path).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("COCKPIT_CONFIG")
        .args(["campaign", "list", "--db"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("another cockpit is using the database at"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_database_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::open(&path).unwrap();
        store.put_campaign(&demo::campaigns()[0]).unwrap();
        store.set_schema_version(SCHEMA_VERSION + 1).unwrap();
    }
    match Store::open(&path) {
        Err(StoreError::FutureSchema { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a future schema must be refused"),
    }
    let e = Store::open(&path).err().unwrap().to_string();
    assert!(e.contains("newer than this cockpit understands") && e.contains("was not modified"), "{e}");
}

/// Minute readings of `channels` channels for `minutes`, raw samples pruned past `keep` minutes.
fn churn(store: &Store, channels: usize, minutes: i64, keep: i64) -> Vec<ChannelKey> {
    let keys: Vec<ChannelKey> = (0..channels).map(|i| ChannelKey::new("churn", &format!("ch-{i:03}"))).collect();
    let mut cursors = vec![ChannelCursor::default(); channels];
    for m in 1..=minutes {
        let steps: Vec<_> = cursors.iter_mut().map(|c| cursor_step(c, m)).collect();
        let items: Vec<_> = keys.iter().zip(&steps).map(|(key, (s, c))| Ingest { key, sample: s, cursor: c }).collect();
        store.ingest(&items).unwrap();
        if m % 60 == 0 {
            for key in &keys {
                store.prune_samples(key, (m - keep) * 60_000).unwrap();
            }
        }
    }
    keys
}

type ChannelState = (Option<ChannelCursor>, Vec<campaign_cockpit::domain::Sample>, Vec<(i64, Counters)>);

fn state(store: &Store, keys: &[ChannelKey]) -> (Vec<ChannelState>, Vec<String>) {
    let channels = keys
        .iter()
        .map(|k| {
            (store.cursor(k).unwrap(), store.samples(k, 0, i64::MAX).unwrap(), store.rollups(k, 0, i64::MAX).unwrap())
        })
        .collect();
    (channels, store.campaigns().unwrap().into_iter().map(|c| c.id).collect())
}

#[test]
fn compaction_keeps_every_record_and_gives_back_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut store = Store::open(&path).unwrap();
    for c in demo::campaigns() {
        store.put_campaign(&c).unwrap();
    }
    let mut keys = churn(&store, 20, 3 * 24 * 60, 6 * 60);
    let first_id = store.next_id().unwrap();
    let before = state(&store, &keys);
    let done = store.compact().unwrap();
    // The copy is about 3 MiB; what sled's file had grown to by then varies with its own
    // background work (5.5–9 MiB here): well over the copy either way.
    assert!(done.after_bytes < done.before_bytes * 2 / 3, "{done:?}");
    assert!(done.records > 20 * 6 * 60, "{done:?}");
    assert_eq!(state(&store, &keys), before);
    assert!(store.next_id().unwrap() > first_id, "ids keep increasing across a compaction");
    assert!(!store.wants_compaction());

    // Writes while the copy runs end up in the compacted file: new samples and rollups, a
    // pruned range, a removed campaign, a new channel.
    store.start_compaction().unwrap();
    assert!(store.compacting());
    let extra = ChannelKey::new("churn", "late");
    let mut cursor = store.cursor(&keys[0]).unwrap().unwrap();
    let steps: Vec<_> = (3 * 24 * 60 + 1..=3 * 24 * 60 + 90).map(|m| cursor_step(&mut cursor, m)).collect();
    let items: Vec<_> = steps.iter().map(|(s, c)| Ingest { key: &keys[0], sample: s, cursor: c }).collect();
    store.ingest(&items).unwrap();
    let (s, c) = cursor_step(&mut ChannelCursor::default(), 5);
    store.ingest(&[Ingest { key: &extra, sample: &s, cursor: &c }]).unwrap();
    store.prune_samples(&keys[1], 3 * 24 * 60 * 60_000).unwrap();
    assert!(store.remove_campaign(&demo::campaigns()[0].id).unwrap());
    keys.push(extra);
    let expected = state(&store, &keys);
    let id_during = store.next_id().unwrap();
    store.finish_compaction().unwrap();
    assert!(!store.compacting());
    assert_eq!(state(&store, &keys), expected);
    assert!(store.next_id().unwrap() > id_during);
    drop(store);
    // Nothing is left beside the database, and it opens again with the same ids.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("db")]);
    let store = Store::open(&path).unwrap();
    assert!(store.next_id().unwrap() > id_during + 1);
    assert_eq!(state(&store, &keys), expected);
}

#[test]
fn a_compaction_cut_short_is_finished_or_abandoned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let key = ChannelKey::new("618-promo", "douyin");
    let fill = |p: &std::path::Path, minutes: i64| {
        let store = Store::open(p).unwrap();
        let mut cursor = ChannelCursor::default();
        let steps: Vec<_> = (1..=minutes).map(|m| cursor_step(&mut cursor, m)).collect();
        let items: Vec<_> = steps.iter().map(|(s, c)| Ingest { key: &key, sample: s, cursor: c }).collect();
        store.ingest(&items).unwrap();
    };
    let sibling = |s: &str| dir.path().join(format!("db.{s}"));
    // Cut short while copying: the half-written copy is dropped, the database is untouched.
    fill(&path, 10);
    fill(&sibling("compacting"), 3);
    assert_eq!(Store::open(&path).unwrap().samples(&key, 0, i64::MAX).unwrap().len(), 10);
    assert!(!sibling("compacting").exists());
    // Cut short after the old file was moved aside: the complete copy takes its place.
    fill(&sibling("compacting"), 7);
    std::fs::write(sibling("compacting").join("complete"), b"").unwrap();
    std::fs::rename(&path, sibling("replaced")).unwrap();
    assert_eq!(Store::open(&path).unwrap().samples(&key, 0, i64::MAX).unwrap().len(), 7);
    assert!(!sibling("compacting").exists() && !sibling("replaced").exists());
    // Moved aside with no copy: the old file is put back.
    std::fs::rename(&path, sibling("replaced")).unwrap();
    assert_eq!(Store::open(&path).unwrap().samples(&key, 0, i64::MAX).unwrap().len(), 7);
}

#[test]
fn closing_the_store_during_a_compaction_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut store = Store::open(&path).unwrap();
    let keys = churn(&store, 10, 24 * 60, 6 * 60);
    let expected = state(&store, &keys);
    store.start_compaction().unwrap();
    drop(store);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("db")]);
    assert_eq!(state(&Store::open(&path).unwrap(), &keys), expected);
}

/// Everything a reader can ask of one channel's history.
fn history(store: &Store, key: &ChannelKey) -> (Vec<campaign_cockpit::domain::Sample>, Vec<(i64, Counters)>, String) {
    (
        store.samples(key, 0, i64::MAX).unwrap(),
        store.rollups(key, 0, i64::MAX).unwrap(),
        serde_json::to_string(&store.segment_rollups(key, 0, i64::MAX).unwrap()).unwrap(),
    )
}

#[test]
fn packed_blocks_read_back_as_the_records_they_replace() {
    use campaign_cockpit::domain::SegmentCounters;
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let key = ChannelKey::new("pack", "search");
    let mut cursor = ChannelCursor::default();
    let segment = |value: &str, i: u64| SegmentCounters {
        dimension: "device".into(),
        value: value.into(),
        counters: counters(i, i as f64),
    };
    // A reading every 7 minutes for 2 days and a bit, with audience segments.
    let step = |cursor: &mut ChannelCursor, at: i64| {
        let k = (at / MIN) as u64;
        let mut s = cursor.advance(at, counters(k * 100, k as f64), &[]).unwrap();
        s.segments = cursor.advance_segments(&[segment("mobile", k * 60), segment("desktop", k * 40)]);
        (s, cursor.clone())
    };
    let mut at = 0;
    while at < 50 * HOUR {
        at += 7 * MIN;
        let (s, c) = step(&mut cursor, at);
        store.ingest(&[Ingest { key: &key, sample: &s, cursor: &c }]).unwrap();
    }
    let before = history(&store, &key);
    let recent = store.recent_samples(&key, 30 * HOUR, 20).unwrap();
    // Every closed hour's samples and the first day's rollups are folded into blocks.
    let folded = store.pack(&key, at).unwrap();
    assert!(folded > 400, "{folded} records packed");
    assert_eq!(history(&store, &key), before);
    assert_eq!(store.recent_samples(&key, 30 * HOUR, 20).unwrap(), recent);
    assert_eq!(store.samples(&key, 90 * MIN, 3 * HOUR).unwrap(), {
        let (s, _, _) = &before;
        s.iter().filter(|s| (90 * MIN..3 * HOUR).contains(&s.at)).cloned().collect::<Vec<_>>()
    });
    assert_eq!(store.rollups(&key, 5 * HOUR, 7 * HOUR).unwrap(), before.1[5..7].to_vec());
    assert_eq!(store.pack(&key, at).unwrap(), 0, "nothing left to pack");

    // A reading late for a packed hour: stored live beside the block, summed when read, folded
    // in by the next packing.
    let s = campaign_cockpit::domain::Sample {
        at: 3 * HOUR + MIN,
        delta: counters(500, 5.0),
        segments: vec![segment("mobile", 300)],
        ..Default::default()
    };
    store.ingest(&[Ingest { key: &key, sample: &s, cursor: &cursor }]).unwrap();
    let with_late = history(&store, &key);
    assert_eq!(with_late.0.len(), before.0.len() + 1);
    assert_eq!(with_late.1[3].1.impressions, before.1[3].1.impressions + s.delta.impressions);
    assert_ne!(with_late.2, before.2);
    assert_eq!(store.pack(&key, at).unwrap(), 3, "the sample, its hour and its segments");
    assert_eq!(history(&store, &key), with_late);

    // Retention removes whole packed hours older than the cut; the rollups stay.
    let kept_from = 10 * HOUR;
    store.prune_samples(&key, kept_from + 30 * MIN).unwrap();
    let left = store.samples(&key, 0, i64::MAX).unwrap();
    assert!(left.iter().all(|s| s.at >= kept_from) && left[0].at < kept_from + 30 * MIN, "{:?}", left[0].at);
    assert_eq!(store.rollups(&key, 0, i64::MAX).unwrap(), with_late.1);

    // Packed records go with their campaign.
    store.remove_campaign("pack").unwrap();
    assert_eq!(history(&store, &key), (Vec::new(), Vec::new(), "[]".to_string()));
}

#[test]
fn many_campaigns_their_cursors_and_alerts_are_read_whole_and_in_order() {
    // Past 64 campaigns both are read in two halves side by side.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let start = chrono::DateTime::from_timestamp_millis(0).unwrap().fixed_offset();
    let campaigns = campaign_cockpit::sim::scale::campaigns(
        150,
        450,
        campaign_cockpit::sim::scale::Sources::Campaign,
        "http://127.0.0.1:1",
        start,
    );
    let mut keys = Vec::new();
    for c in &campaigns {
        store.put_campaign(c).unwrap();
        for (i, ch) in c.channels.iter().enumerate() {
            let key = ChannelKey::new(&c.id, &ch.id);
            let mut cursor = ChannelCursor::default();
            let (s, cur) = cursor_step(&mut cursor, i as i64 + 1);
            store.ingest(&[Ingest { key: &key, sample: &s, cursor: &cur }]).unwrap();
            keys.push((key, cur));
        }
    }
    let mut ids: Vec<&str> = campaigns.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(store.campaigns().unwrap().iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ids);
    let cursors = store.cursors().unwrap();
    assert_eq!(cursors.len(), 450);
    for (key, cur) in &keys {
        assert_eq!(cursors.get(key), Some(cur), "{key}");
    }
    // Alerts too (a cockpit whose sources all failed keeps one per channel).
    use campaign_cockpit::alert::{Alert, AlertKey, AlertState, Severity};
    let mut alert_keys: Vec<AlertKey> = keys
        .iter()
        .map(|(k, _)| AlertKey { campaign: k.campaign.clone(), channel: k.channel.clone(), rule: "health".into() })
        .collect();
    for key in &alert_keys {
        store
            .put_alert(&Alert {
                key: key.clone(),
                state: AlertState::Firing,
                severity: Severity::Crit,
                since_ms: 1,
                fired_ms: Some(1),
                clear_since_ms: None,
                resolved_ms: None,
                observed: None,
                expected: None,
                summary: "source failing".into(),
                ack: None,
            })
            .unwrap();
    }
    alert_keys.sort();
    assert_eq!(store.alerts().unwrap().into_iter().map(|a| a.key).collect::<Vec<_>>(), alert_keys);
}

/// Every record of the number trees, raw: (tree, records, records still JSON).
fn number_records(path: &std::path::Path) -> Vec<(String, usize, usize)> {
    let raw = sled::open(path).unwrap();
    let trees = ["channels", "samples", "rollups", "sample_hours", "rollup_days", "campaign_totals", "period_rows"];
    trees
        .iter()
        .map(|name| {
            let t = raw.open_tree(name).unwrap();
            let values: Vec<sled::IVec> = t.iter().values().map(Result::unwrap).collect();
            let json = values.iter().filter(|v| matches!(v.first(), Some(b'{' | b'['))).count();
            (name.to_string(), values.len(), json)
        })
        .collect()
}

/// A database of schema 2, the numbers written as JSON (made here with that encoding, which
/// the store keeps for reading): opened, it is rewritten compactly once and reads back the
/// same numbers; a migration cut short is finished by the next open; the file shrinks.
#[test]
fn a_schema_2_database_is_migrated_once_and_reads_back_the_same_numbers() {
    const MIN: i64 = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (keys, before, periods, totals, json_bytes) = {
        let store = Store::open(&path).unwrap();
        for c in demo::campaigns() {
            store.put_campaign(&c).unwrap();
        }
        // More than a day: samples and rollups packed into blocks.
        let keys = churn(&store, 4, 1600, 120);
        for key in &keys {
            store.pack(key, 1600 * MIN).unwrap();
        }
        store
            .put_periods(&keys[0], &[(0, counters(5, "5339.50".parse().unwrap())), (86_400_000, counters(7, 0.3))], &[])
            .unwrap();
        let totals =
            campaign_cockpit::domain::CampaignTotals { plan: 7, totals: counters(9, 0.1 + 0.2), ..Default::default() };
        store.put_campaign_totals("churn", &totals).unwrap();
        let before = state(&store, &keys);
        let rewritten = store.rewrite_as_schema_2().unwrap();
        assert!(rewritten > 100, "{rewritten} records rewritten as JSON");
        (keys.clone(), before, store.periods(&keys[0]).unwrap(), store.campaign_totals().unwrap(), store.size_on_disk())
    };
    assert!(number_records(&path).iter().all(|(_, n, json)| n == json), "{:?}", number_records(&path));
    let same = |store: &Store| {
        let (channels, campaigns) = state(store, &keys);
        assert_eq!(campaigns, before.1);
        for ((cursor, samples, rollups), (cursor0, samples0, rollups0)) in channels.iter().zip(&before.0) {
            assert_eq!(cursor, cursor0, "cursors read back exactly");
            assert_eq!(samples.len(), samples0.len());
            for (a, b) in samples.iter().zip(samples0) {
                assert_eq!((a.at, a.reset, a.first), (b.at, b.reset, b.first));
                assert!(common::same_amounts(&a.delta, &b.delta), "{a:?} vs {b:?}");
            }
            assert!(common::same_series(rollups, rollups0), "{rollups:?} vs {rollups0:?}");
        }
        assert_eq!(store.periods(&keys[0]).unwrap(), periods, "a source's decimals read back as they were");
        assert_eq!(store.campaign_totals().unwrap(), totals);
    };
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        same(&store);
    }
    let after = number_records(&path);
    assert!(after.iter().all(|(_, n, json)| *n > 0 && *json == 0), "every record compact: {after:?}");
    // Opened again: nothing left to migrate, the same numbers.
    same(&Store::open(&path).unwrap());
    assert_eq!(number_records(&path), after);

    // Cut short: the version is marked and the mark left, the records still JSON.
    Store::open(&path).unwrap().rewrite_as_schema_2().unwrap();
    {
        let raw = sled::open(&path).unwrap();
        let meta = raw.open_tree("meta").unwrap();
        meta.insert("schema", &SCHEMA_VERSION.to_be_bytes()).unwrap();
        meta.insert("migrating", &2u32.to_be_bytes()).unwrap();
        raw.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    same(&store);
    let mut compact = store;
    compact.compact().unwrap();
    assert!(compact.size_on_disk() < json_bytes, "{} bytes compact vs {json_bytes} as JSON", compact.size_on_disk());
    drop(compact);
    assert!(number_records(&path).iter().all(|(_, _, json)| *json == 0));
}

/// Journal entries and notes are numbered #1, #2, … across restarts, not by sled's id
/// generator, which leaps a million ahead at each start.
#[test]
fn ids_stay_short_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = campaign_cockpit::store::Store::open(&path).unwrap();
        assert_eq!((store.next_id().unwrap(), store.next_id().unwrap()), (1, 2));
    }
    for want in [3, 4] {
        let store = campaign_cockpit::store::Store::open(&path).unwrap();
        assert_eq!(store.next_id().unwrap(), want, "one more than the last, after a restart");
    }
}
