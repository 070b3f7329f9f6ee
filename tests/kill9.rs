//! `kill -9` at random moments — while samples stream in, and right after an optimize action is
//! confirmed — again and again on the same database. After every kill the database opens; no
//! campaign, journal entry or cursor that an earlier check saw is lost or moves back; an action
//! cut off before its answer is shown as unknown. `KILL9_RUNS` sets the number of kills
//! (default 20; the figures in the README come from 100).

use campaign_cockpit::clock::ManualClock;
use campaign_cockpit::domain::ChannelKey;
use campaign_cockpit::engine::Engine;
use campaign_cockpit::optimize::journal::Outcome;
use campaign_cockpit::store::Store;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A small deterministic generator for the kill moments.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_loses_nothing_that_was_saved() {
    let runs: usize = std::env::var("KILL9_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut rng = Lcg(9);
    // What earlier checks saw: journal outcomes by id, cursor times by channel.
    let mut journal_seen: BTreeMap<u64, Outcome> = BTreeMap::new();
    let mut cursors_seen: BTreeMap<ChannelKey, i64> = BTreeMap::new();
    let (mut unknown, mut actions_tried, mut worst_gap_ms) = (0, 0, 0i64);
    for run in 0..runs {
        let pair =
            native_pty_system().openpty(PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 }).unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_cockpit"));
        cmd.args(["demo", "--db", db.to_str().unwrap(), "--speed", "3000"]);
        cmd.env("TERM", "xterm-256color");
        for var in ["XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"] {
            cmd.env(var, dir.path());
        }
        cmd.env_remove("COCKPIT_CONFIG");
        let mut child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let mut writer = pair.master.take_writer().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        let drain = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(n).is_err() {
                    break;
                }
            }
        });
        // Wait for the first frame, then for a random moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        while seen < 2_000 && Instant::now() < deadline {
            seen += rx.recv_timeout(Duration::from_millis(100)).unwrap_or(0);
        }
        let during_action = run % 4 == 3;
        if during_action {
            // To the optimize view and confirm whatever is first; kill soon after.
            writer.write_all(b"5").unwrap();
            std::thread::sleep(Duration::from_millis(300 + rng.below(500)));
            writer.write_all(b"yy").unwrap();
            writer.flush().unwrap();
            actions_tried += 1;
            std::thread::sleep(Duration::from_millis(rng.below(8)));
        } else {
            std::thread::sleep(Duration::from_millis(100 + rng.below(1_200)));
        }
        let pid = child.process_id().unwrap();
        assert!(std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
        child.wait().unwrap();
        drop(writer);
        drop(pair.master);
        let _ = drain.join();

        // The database opens, and nothing seen before is lost.
        let store = Store::open(&db).unwrap_or_else(|e| panic!("run {run}: the database does not open: {e}"));
        assert_eq!(store.campaigns().unwrap().len(), 4, "run {run}: campaigns lost");
        let journal = store.journal().unwrap();
        for (id, before) in &journal_seen {
            let now = journal.iter().find(|e| e.id == *id).unwrap_or_else(|| panic!("run {run}: journal #{id} lost"));
            if matches!(before, Outcome::Applied { .. } | Outcome::Failed { .. }) {
                assert_eq!(&now.outcome, before, "run {run}: #{id}'s outcome changed");
            }
        }
        let cursors = store.cursors().unwrap();
        for (key, at) in &cursors_seen {
            let now = cursors.get(key).map_or(0, |c| c.at);
            assert!(now >= *at, "run {run}: {key}'s cursor went back from {at} to {now}");
        }
        // Counters are cumulative: readings the last flush missed come back whole with the next
        // reading, so nothing is lost but their place in time. How far each run got:
        let newest = cursors.values().map(|c| c.at).max().unwrap_or(0);
        let before = cursors_seen.values().copied().max().unwrap_or(newest);
        worst_gap_ms = worst_gap_ms.max(newest - before);
        cursors_seen = cursors.iter().map(|(k, c)| (k.clone(), c.at)).collect();
        drop(store);

        // An action cut off before its answer is shown as unknown by the next cockpit.
        let store = Store::open(&db).unwrap();
        let sending: Vec<u64> =
            store.journal().unwrap().iter().filter(|e| e.outcome == Outcome::Sending).map(|e| e.id).collect();
        let (_engine, rx) = Engine::new(store, Arc::new(ManualClock::new(0)), &[]).unwrap();
        let snap = rx.borrow().clone();
        for id in &sending {
            assert_eq!(snap.journal.iter().find(|e| e.id == *id).unwrap().outcome, Outcome::Unknown { reason: None });
            unknown += 1;
        }
        journal_seen = snap.journal.iter().map(|e| (e.id, e.outcome.clone())).collect();
    }
    println!(
        "kill -9 × {runs} ({actions_tried} right after confirming an action): database opened every time, \
         0 saved records lost, {} journal entries kept, {unknown} shown as unknown; \
         each run advanced the stored simulated time by up to {} min",
        journal_seen.len(),
        worst_gap_ms / 60_000
    );
}

/// Every record of every tree but the compaction's own bookkeeping, raw.
fn records(db: &std::path::Path) -> BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let raw = sled::open(db).unwrap();
    let mut out = BTreeMap::new();
    for name in raw.tree_names() {
        for kv in raw.open_tree(&name).unwrap().iter() {
            let (k, v) = kv.unwrap();
            if name.as_ref() == b"meta" && matches!(k.as_ref(), b"id_base" | b"compacted_bytes" | b"last_id") {
                continue;
            }
            out.insert((name.to_vec(), k.to_vec()), v.to_vec());
        }
    }
    out
}

/// `kill -9` of `cockpit db compact` while it copies and at each step of the swap (moved
/// aside, copy in place), again and again on one database: it opens every time with every
/// record it held, no copy left beside it, and ids that go on from the ones handed out.
/// `KILL9_RUNS` sets the number of kills (default 20; the README's figures come from 100).
#[test]
fn kill_9_during_a_compaction_loses_nothing() {
    use campaign_cockpit::domain::{ChannelCursor, Counters, Note, NoteKind};
    use campaign_cockpit::store::Ingest;
    let runs: usize = std::env::var("KILL9_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut last_id = 0;
    {
        let store = Store::open(&db).unwrap();
        for c in campaign_cockpit::demo::campaigns() {
            store.put_campaign(&c).unwrap();
        }
        let keys: Vec<ChannelKey> = (0..40).map(|i| ChannelKey::new("618-promo", &format!("ch-{i:02}"))).collect();
        let mut cursors = vec![ChannelCursor::default(); keys.len()];
        for m in 1..=300i64 {
            let steps: Vec<_> = cursors
                .iter_mut()
                .map(|c| {
                    let raw = Counters {
                        impressions: m as u64 * 700,
                        clicks: m as u64 * 9,
                        spend: m as f64 * 3.25,
                        ..Default::default()
                    };
                    (c.advance(1_780_000_000_000 + m * 60_000, raw, &[]).unwrap(), c.clone())
                })
                .collect();
            let items: Vec<_> =
                keys.iter().zip(&steps).map(|(key, (s, c))| Ingest { key, sample: s, cursor: c }).collect();
            store.ingest(&items).unwrap();
        }
        for i in 0..20 {
            last_id = store.next_id().unwrap();
            let note = Note {
                id: last_id,
                at_ms: 1_780_000_000_000 + i * 60_000,
                campaign: "618-promo".into(),
                channel: None,
                kind: NoteKind::Note,
                text: format!("note {i}"),
                by: "ops".into(),
                rule: None,
                fired: None,
            };
            store.put_note(&note).unwrap();
        }
    }
    let held = records(&db);
    let compact = |fault: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"));
        cmd.args(["--db", db.to_str().unwrap(), "db", "compact"])
            .env("COCKPIT_CONFIG", dir.path().join("none.toml"))
            .env("XDG_STATE_HOME", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(f) = fault {
            cmd.env("COCKPIT_FAULT", f);
        }
        cmd.spawn().unwrap()
    };
    // How long a whole compaction takes here, so that kills land all through it.
    let started = Instant::now();
    assert!(compact(None).wait().unwrap().success());
    let whole = started.elapsed().as_micros() as u64;
    let mut rng = Lcg(22);
    let points = ["compaction-copied", "compaction-marked", "compaction-moved-aside", "compaction-swapped"];
    let (mut by_point, mut by_time) = (0, 0);
    for run in 0..runs {
        let mut child = if run % 2 == 0 {
            by_point += 1;
            compact(Some(points[(run / 2) % points.len()]))
        } else {
            by_time += 1;
            let mut child = compact(None);
            std::thread::sleep(Duration::from_micros(rng.below(whole + whole / 4)));
            let _ = child.kill();
            child
        };
        let status = child.wait().unwrap();
        if run % 2 == 0 {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "run {run}: the compaction reached {}",
                points[(run / 2) % points.len()]
            );
        }
        let store = Store::open(&db).unwrap_or_else(|e| panic!("run {run}: the database does not open: {e}"));
        let id = store.next_id().unwrap();
        assert!(id > last_id, "run {run}: id {id} handed out again (last {last_id})");
        last_id = id;
        drop(store);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("db."))
            .collect();
        assert!(leftovers.is_empty(), "run {run} ({status:?}): left beside the database: {leftovers:?}");
        let now = records(&db);
        let lost: Vec<_> = held.keys().filter(|k| now.get(*k) != held.get(*k)).take(3).collect();
        assert!(
            lost.is_empty() && now.len() == held.len(),
            "run {run} ({status:?}): records lost or changed: {lost:?}"
        );
    }
    println!(
        "{runs} kills during compactions ({by_point} at the swap's steps, {by_time} at random moments of {whole} µs): nothing lost"
    );
}
