//! The `cockpit` binary's headless commands: campaign import/export round trips, refusals of
//! malformed files with file:line and exit code 2, and usage errors.

use campaign_cockpit::store::SCHEMA_VERSION;
use std::path::Path;
use std::process::{Command, Output};

fn cockpit(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("COCKPIT_DB")
        .env("COCKPIT_CONFIG", db.with_extension("no-config.toml"))
        .env("XDG_STATE_HOME", db.parent().unwrap())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const FIXTURES: [&str; 3] = ["fixtures/q2-webinar.toml", "fixtures/618-promo.toml", "fixtures/app-launch.toml"];

#[test]
fn import_export_import_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let o = cockpit(&db, &[&["campaign", "import"][..], &FIXTURES[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().filter(|l| l.starts_with("imported ")).count(), 3);
    let list = stdout(&cockpit(&db, &["campaign", "list"]));
    assert!(list.contains("618-promo") && list.contains("q2-webinar") && list.contains("app-launch"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&cockpit(&db, &["campaign", "list", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);

    for (fmt, ext) in [("toml", "toml"), ("json", "json")] {
        let exported = dir.path().join(format!("618.{ext}"));
        let o = cockpit(&db, &["campaign", "export", "618-promo", "--format", fmt, "-o", exported.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let db2 = dir.path().join(format!("db-{ext}"));
        assert!(cockpit(&db2, &["campaign", "import", exported.to_str().unwrap()]).status.success());
        let first = stdout(&cockpit(&db, &["campaign", "export", "618-promo"]));
        let second = stdout(&cockpit(&db2, &["campaign", "export", "618-promo"]));
        assert_eq!(first, second, "round trip through {fmt} changed the campaign");
    }
    let show = stdout(&cockpit(&db, &["campaign", "show", "618-promo"]));
    assert!(show.contains("kpi:  roas >= 3.5") && show.contains("tmall-ztc"), "{show}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&cockpit(&db, &["campaign", "show", "618-promo", "--json"]))).unwrap();
    assert_eq!(json["campaign"]["id"], "618-promo");
    assert_eq!(json["channels"].as_array().unwrap().len(), 6);
    assert_eq!(json["channels"][0]["id"], "tmall-ztc");
    assert_eq!(json["channels"][0]["impressions"], 0, "nothing recorded yet");

    // Re-importing updates, rm removes, and a missing id is named.
    assert!(stdout(&cockpit(&db, &["campaign", "import", FIXTURES[0]])).starts_with("updated q2-webinar"));
    assert!(cockpit(&db, &["campaign", "rm", "q2-webinar"]).status.success());
    let o = cockpit(&db, &["campaign", "show", "q2-webinar"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no campaign 'q2-webinar'") && stderr(&o).contains("known: 618-promo, app-launch"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_campaign_files_are_refused_with_their_line_and_the_db_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    assert!(cockpit(&db, &["campaign", "import", FIXTURES[1]]).status.success());
    let expected = [
        ("syntax-error.toml", ":9:", ""),
        ("unknown-key.toml", ":9:", "budget_owner"),
        ("wrong-type.toml", ":9:16:", "invalid type"),
        ("negative-budget.toml", ":49:", "channels[2].daily_budget"),
        ("end-before-start.toml", ":7:", "end: must be after start"),
        ("unknown-metric.toml", ":11:", "unknown metric 'cpx'"),
        ("duplicate-channel.toml", ":35:", "duplicate channel id 'wechat-moments'"),
        ("not-http.toml", ":57:", "only http and https"),
        (
            "date-without-time.toml",
            ":6:",
            "start: expected a date and time with an offset, like 2026-12-01T00:00:00+08:00, not '2026-05-25' (a date without its time and offset)",
        ),
        (
            "day-32.toml",
            ":7:",
            "end: expected a date and time with an offset, like 2026-12-01T00:00:00+08:00, not '2026-06-32T00:00:00+08:00' (input is out of range)",
        ),
    ];
    let mut dir_files: Vec<_> = std::fs::read_dir("tests/invalid_campaigns")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dir_files.sort();
    let mut listed: Vec<_> = expected.iter().map(|e| e.0.to_string()).collect();
    listed.sort();
    assert_eq!(dir_files, listed, "every invalid file has an expectation");
    for (file, line, reason) in expected {
        let path = format!("tests/invalid_campaigns/{file}");
        // A good file alongside must not be imported either: all or nothing.
        let o = cockpit(&db, &["campaign", "import", FIXTURES[0], &path]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{file}: {err}");
        assert!(err.starts_with(&format!("error: {path}{line}")), "{file}: {err}");
        assert!(err.contains(reason), "{file}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let list = stdout(&cockpit(&db, &["campaign", "list"]));
    assert!(list.contains("618-promo") && !list.contains("q2-webinar"), "{list}");
}

#[test]
fn wrong_arguments_print_usage_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for args in [
        &["nope"][..],
        &["campaign"],
        &["campaign", "export"],
        &["demo", "--speed", "fast"],
        &["sim", "--speed", "-3"],
        &["campaign", "import"],
        &["--interval", "soon"],
    ] {
        let o = cockpit(&db, args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.to_lowercase().contains("usage") || err.starts_with("error:"), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?}: {err}");
    }
    let o = cockpit(&db, &["--theme", "nope", "demo"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown theme 'nope'"));
}

#[test]
fn the_config_file_fills_in_what_the_command_line_leaves_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let db = dir.path().join("from-config.db");
    std::fs::write(&config, format!("db = {:?}\ntheme = \"mono\"\n", db.to_str().unwrap())).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cockpit"))
            .args(args)
            .env_remove("COCKPIT_DB")
            .env("COCKPIT_CONFIG", &config)
            .env("XDG_STATE_HOME", dir.path())
            .output()
            .unwrap()
    };
    assert!(run(&["campaign", "import", FIXTURES[1]]).status.success());
    assert!(stdout(&run(&["campaign", "list"])).contains("618-promo"), "the config's db is used");
    assert!(db.exists());
    std::fs::write(&config, "db = \"x\"\ncolour = \"red\"\n").unwrap();
    let o = run(&["campaign", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("config.toml:2:") && stderr(&o).contains("colour"), "{}", stderr(&o));
    std::fs::write(&config, "db = \"x\"\n\n[keys]\nnote = \"N\"\nack = \"j\"\n").unwrap();
    let o = run(&["campaign", "list"]);
    assert_eq!(o.status.code(), Some(2));
    let want = "config.toml:5: keys: j for 'ack' is already 'move down' (down) in the alerts view";
    assert!(stderr(&o).contains(want), "{}", stderr(&o));
}

/// The demo's simulated network on a loopback port, `offset_ms` into the demo scenario; the
/// demo campaigns pointed at it are written as files into `dir`.
fn demo_network(
    dir: &Path,
    offset_ms: i64,
) -> (tokio::runtime::Runtime, campaign_cockpit::sim::SimServer, Vec<String>) {
    use campaign_cockpit::{clock::ManualClock, demo, sim};
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The network's clock is ours (a source far behind would be flagged as skewed): the
    // scenario started `offset_ms` ago.
    let sc = demo::scenario();
    let now = chrono::Utc::now().timestamp_millis();
    let start = now - offset_ms;
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, start).unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(now));
    let server = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        sim::serve(listener, sim::model::Network::new(chs, inc, start), clock).unwrap()
    });
    demo::rebase(&mut campaigns, &format!("http://{}", server.addr));
    let files = campaigns
        .iter()
        .map(|c| {
            let path = dir.join(format!("{}.toml", c.id));
            std::fs::write(&path, c.to_toml()).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect();
    (rt, server, files)
}

#[test]
fn check_reports_firing_alerts_with_an_exit_code_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // 5 h 10 min in: the webinar's e-mail platform answers HTTP 500.
    let (_rt, _server, files) = demo_network(dir.path(), 5 * 3_600_000 + 10 * 60_000);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    // The health rule fires at its third failed poll in a row (a check tries a failing source
    // that often) once pending for its `for`: none here.
    let webinar = files.iter().find(|f| f.ends_with("q2-webinar.toml")).unwrap();
    let text = std::fs::read_to_string(webinar).unwrap();
    std::fs::write(webinar, format!("{text}\n[alerts.health]\nfor = \"0s\"\n")).unwrap();
    assert!(cockpit(&db, &[&["campaign", "import"][..], &files[..]].concat()).status.success());

    let o = cockpit(&db, &["check", "--campaign", "q2-webinar"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{}", stderr(&o));
    assert!(out.contains("CRIT firing  q2-webinar/email-edm [health]") && out.contains("HTTP 500"), "{out}");

    let o = cockpit(&db, &["check", "--campaign", "q2-webinar", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let first = &rows.as_array().unwrap()[0];
    assert_eq!((first["channel"].as_str(), first["severity"].as_str()), (Some("email-edm"), Some("crit")));
    // The campaign's own time with its offset, or UTC when asked.
    let since = first["since"].as_str().unwrap();
    assert!(since.ends_with("+08:00"), "{since}");
    let o = cockpit(&db, &["check", "--campaign", "q2-webinar", "--json", "--utc"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let utc = rows.as_array().unwrap()[0]["since"].as_str().unwrap().to_string();
    assert!(utc.ends_with('Z'), "{utc}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&utc).unwrap(),
        chrono::DateTime::parse_from_rfc3339(since).unwrap()
    );

    // The festival's sources answer: nothing fires.
    let o = cockpit(&db, &["check", "--campaign", "618-promo"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 firing"));

    let o = cockpit(&db, &["check", "--campaign", "nope"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("no campaign 'nope'"), "{}", stderr(&o));
}

#[test]
fn replay_scores_a_series_without_look_ahead_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let csv = dir.path().join("cpc.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..120 {
        let v = if i == 100 { 4.8 } else { 2.0 + 0.05 * ((i * 7) % 5) as f64 };
        text.push_str(&format!("{},{v}\n", 1_780_880_400 + i * 300));
    }
    std::fs::write(&csv, &text).unwrap();
    let o = cockpit(&db, &["replay", "--csv", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows[0], "timestamp,value,score,alert");
    assert_eq!(rows.len(), 121);
    let alerts: Vec<usize> = rows[1..].iter().enumerate().filter(|(_, r)| r.ends_with(",1")).map(|(i, _)| i).collect();
    assert_eq!(alerts, [100], "{out}");
    // No look-ahead: the rows before the spike score the same without it.
    let cut = dir.path().join("cut.csv");
    std::fs::write(&cut, text.lines().take(100).collect::<Vec<_>>().join("\n")).unwrap();
    let before = stdout(&cockpit(&db, &["replay", "--csv", cut.to_str().unwrap()]));
    assert!(out.starts_with(&before), "scores changed by later rows");

    std::fs::write(&csv, "timestamp,value\n2026-06-08 09:00:00,1\n2026-06-08 09:05:00,abc\n").unwrap();
    let o = cockpit(&db, &["replay", "--csv", csv.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cpc.csv:3: value 'abc' is not a number"), "{}", stderr(&o));
    // What the replay found out about the series is said on stderr.
    std::fs::write(&csv, &text).unwrap();
    let o = cockpit(&db, &["replay", "--csv", csv.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("replay: rows every 5m (median gap)\n")
            && stderr(&o).contains("(the first 72 rows of each are the baseline and are not judged)"),
        "{}",
        stderr(&o)
    );
    // Against labels: the spike found at once, nothing else raised.
    let labels = dir.path().join("labels.csv");
    std::fs::write(
        &labels,
        format!("from,to,label\n{},{},cpc spike\n", 1_780_880_400 + 100 * 300, 1_780_880_400 + 101 * 300),
    )
    .unwrap();
    let o = cockpit(&db, &["replay", "--csv", csv.to_str().unwrap(), "--labels", labels.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "label,from,to,found,delay\ncpc spike,2026-06-08T09:20:00+00:00,2026-06-08T09:25:00+00:00,yes,0s\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "# recall 1.00 (1 of 1 incidents), precision 1.00 (1 of 1 alarms in an incident), median delay 0s"
        ),
        "{out}"
    );
    std::fs::write(&labels, "from,to,label\n2026-06-08 02:00:00,2026-06-08 01:00:00,backwards\n").unwrap();
    let o = cockpit(&db, &["replay", "--csv", csv.to_str().unwrap(), "--labels", labels.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("labels.csv:2: to 2026-06-08 01:00:00 is before from"), "{}", stderr(&o));
    // A threshold written as the probability it once was is refused with the scale it is on.
    let o = cockpit(&db, &["replay", "--csv", csv.to_str().unwrap(), "--threshold", "0.99999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--threshold 0.99999: a score is −log₁₀ of the tail probability"), "{}", stderr(&o));
}

/// Every file under a database directory with its bytes.
fn file_bytes(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The commands that only read leave the database byte for byte as it was, on this schema
/// and on schema 2 (read as it is, not migrated); an older layout is refused with the way to
/// migrate it, and `db migrate` does.
#[test]
fn read_only_commands_never_write() {
    use campaign_cockpit::domain::{ChannelCursor, ChannelKey, Counters};
    use campaign_cockpit::store::{Ingest, Store};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    assert!(cockpit(&db, &[&["campaign", "import"][..], &FIXTURES[..]].concat()).status.success());
    {
        let store = Store::open(&db).unwrap();
        let key = ChannelKey::new("618-promo", "tmall-ztc");
        let mut cursor = ChannelCursor::default();
        for m in 1..=90i64 {
            let raw = Counters {
                impressions: m as u64 * 900,
                clicks: m as u64 * 20,
                spend: m as f64 * 12.5,
                ..Default::default()
            };
            let s = cursor.advance(1_780_000_000_000 + m * 60_000, raw, &[]).unwrap();
            store.ingest(&[Ingest { key: &key, sample: &s, cursor: &cursor }]).unwrap();
        }
    }
    assert!(cockpit(&db, &["note", "add", "--campaign", "618-promo", "launch", "day"]).status.success());
    let reads: [&[&str]; 7] = [
        &["campaign", "list"],
        &["campaign", "show", "618-promo"],
        &["campaign", "show", "618-promo", "--json"],
        &["campaign", "export", "618-promo"],
        &["journal"],
        &["report", "618-promo"],
        &["note", "list"],
    ];
    let read_all = |what: &str| {
        for args in reads {
            let before = file_bytes(&db);
            let o = cockpit(&db, args);
            assert!(o.status.success(), "{what}: {args:?}: {}", stderr(&o));
            let after = file_bytes(&db);
            let changed: Vec<_> =
                after.keys().chain(before.keys()).filter(|p| before.get(*p) != after.get(*p)).collect();
            assert!(changed.is_empty(), "{what}: {args:?} changed {changed:?}");
        }
    };
    read_all("the current schema");
    // A dry check polls (the fixtures' sources are not there) and judges, and stores nothing.
    let before = file_bytes(&db);
    let o = cockpit(&db, &["check", "--dry-run", "--json"]);
    assert!(matches!(o.status.code(), Some(0..=2)), "{}", stderr(&o));
    assert!(serde_json::from_str::<serde_json::Value>(&stdout(&o)).is_ok(), "{}", stdout(&o));
    let after = file_bytes(&db);
    let changed: Vec<_> = after.keys().chain(before.keys()).filter(|p| before.get(*p) != after.get(*p)).collect();
    assert!(changed.is_empty(), "check --dry-run changed {changed:?}: {}", stderr(&o));
    Store::open(&db).unwrap().rewrite_as_schema_2().unwrap();
    read_all("schema 2");
    assert!(stdout(&cockpit(&db, &["campaign", "show", "618-promo"])).contains("tmall-ztc"));

    // Schema 1 had no packed trees: a reader would have to create them.
    {
        let raw = sled::open(&db).unwrap();
        for t in ["sample_hours", "rollup_days", "segment_rollup_days"] {
            raw.drop_tree(t).unwrap();
        }
        raw.open_tree("meta").unwrap().insert("schema", &1u32.to_be_bytes()).unwrap();
        raw.flush().unwrap();
    }
    // Left as a cockpit leaves it when it closes: opened once more, so that sled's snapshot
    // is up to date (sled lets go of its lock a moment after the last handle).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sled::open(&db).is_err() {
        assert!(std::time::Instant::now() < deadline, "the database stays locked");
        std::thread::yield_now();
    }
    let before = file_bytes(&db);
    let o = cockpit(&db, &["journal"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("schema version 1") && stderr(&o).contains("cockpit db migrate"), "{}", stderr(&o));
    assert!(file_bytes(&db) == before, "a refused read leaves the files too");
    let o = cockpit(&db, &["db", "migrate"]);
    assert!(
        o.status.success() && stdout(&o).contains(&format!("from schema 1 to {SCHEMA_VERSION}")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&cockpit(&db, &["db", "migrate"])).contains("nothing to migrate"));
    read_all("migrated");
}

/// Completions for three shells, a starting config that is kept once written, the commit in
/// `--version`.
#[test]
fn completions_config_init_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for shell in ["bash", "zsh", "fish"] {
        let o = cockpit(&db, &["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("serve") && script.contains("campaign") && script.contains("--db"), "{shell}");
    }
    let config = dir.path().join("conf").join("config.toml");
    let init = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cockpit"))
            .args(["config", "init"])
            .args(args)
            .env("COCKPIT_CONFIG", &config)
            .output()
            .unwrap()
    };
    let o = init(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("# interval = \"10s\"") && written.contains("[[notify.webhook]]"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    std::fs::write(&config, "bell = true\n").unwrap();
    let o = init(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exists") && stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "bell = true\n", "kept");
    assert!(init(&["--force"]).status.success());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
    assert_eq!(stdout(&init(&["--stdout"])), written);
    let v = stdout(&cockpit(&db, &["--version"]));
    assert!(v.starts_with("cockpit ") && v.contains('(') && v.trim_end().ends_with(')'), "{v}");
}

/// The global options are listed once, in `cockpit --help`, and still work after a
/// subcommand.
#[test]
fn global_options_are_listed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let top = stdout(&cockpit(&db, &["--help"]));
    assert!(top.contains("--theme") && top.contains("--interval"), "{top}");
    let sub = stdout(&cockpit(&db, &["campaign", "--help"]));
    let listed = |o: &str| sub.lines().any(|l| l.trim_start().starts_with(o));
    assert!(!listed("--theme") && !listed("--interval") && listed("-h, --help"), "{sub}");
    assert!(sub.contains("cockpit --help"), "{sub}");
    let after = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["campaign", "list", "--db"])
        .arg(&db)
        .env("COCKPIT_CONFIG", db.with_extension("no-config.toml"))
        .output()
        .unwrap();
    assert!(stderr(&after).contains(&db.display().to_string()), "{}", stderr(&after));
}

/// An editor that runs `script` (sh) on the file it is given.
fn editor(dir: &Path, name: &str, script: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn edit(db: &Path, editor: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", &db.display().to_string(), "campaign", "edit", "app-launch"])
        .env_remove("COCKPIT_DB")
        .env_remove("VISUAL")
        .env("EDITOR", editor)
        .env("COCKPIT_CONFIG", db.with_extension("no-config.toml"))
        .env("XDG_STATE_HOME", db.parent().unwrap())
        .output()
        .unwrap()
}

#[test]
fn campaign_edit_checks_what_is_saved_and_reopens_it_with_the_error_on_top() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    assert!(cockpit(&db, &["campaign", "import", FIXTURES[2]]).status.success());
    let exported = || stdout(&cockpit(&db, &["campaign", "export", "app-launch"]));
    let before = exported();
    // A good edit.
    let good = editor(dir.path(), "good.sh", "sed -i 's/^total_budget = .*/total_budget = 350000.0/' \"$1\"");
    let o = edit(&db, &good);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("updated app-launch"), "{}", stdout(&o));
    assert!(exported().contains("total_budget = 350000.0"));
    // A bad one, then fixed: the second opening shows the error, on the line it names.
    let seen = dir.path().join("seen.txt");
    let script = format!(
        "if [ -e {seen}.1 ]; then cp \"$1\" {seen}; sed -i 's/^total_budget = .*/total_budget = 320000.0/' \"$1\"; \
         else touch {seen}.1; sed -i 's/^total_budget = .*/total_budget = -5.0/' \"$1\"; fi",
        seen = seen.display()
    );
    let o = edit(&db, &editor(dir.path(), "bad-then-good.sh", &script));
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = std::fs::read_to_string(&seen).unwrap();
    let error = shown.lines().find(|l| l.starts_with("# error: ")).expect("the error on top");
    assert!(error.ends_with("total_budget: must be a number ≥ 0"), "{error}");
    let line: usize = error["# error: line ".len()..].split(':').next().unwrap().parse().unwrap();
    assert_eq!(shown.lines().nth(line - 1), Some("total_budget = -5.0"), "{shown}");
    assert!(exported().contains("total_budget = 320000.0"));
    // A failing editor, or a file saved as it was, changes nothing.
    let after = exported();
    let o =
        edit(&db, &editor(dir.path(), "fails.sh", "sed -i 's/^total_budget = .*/total_budget = 1.0/' \"$1\"; exit 3"));
    assert!(o.status.success());
    assert!(stdout(&o).contains("the editor failed (exit status: 3): nothing changed"), "{}", stdout(&o));
    let o = edit(&db, &editor(dir.path(), "same.sh", "true"));
    assert!(stdout(&o).contains("saved unchanged: nothing changed"), "{}", stdout(&o));
    assert_eq!(exported(), after);
    assert_ne!(after, before);
    // Nothing is left behind in the temporary directory.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("cockpit-edit-app-launch-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn campaign_new_writes_a_template_that_imports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for template in ["ecommerce", "webinar", "app-install"] {
        let file = dir.path().join(format!("{template}.toml"));
        let id = format!("new-{template}");
        let o = cockpit(&db, &["campaign", "new", "--template", template, &id, "-o", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = cockpit(&db, &["campaign", "import", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let again = cockpit(&db, &["campaign", "new", "--template", template, &id, "-o", file.to_str().unwrap()]);
        assert_eq!(again.status.code(), Some(2));
        assert!(stderr(&again).contains("exists: --force replaces it"));
    }
    let o = cockpit(&db, &["campaign", "new", "--template", "b2b"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no template 'b2b' (templates: ecommerce, webinar, app-install)"));
    let o = cockpit(&db, &["campaign", "new", "-o", "-", "x y"]);
    assert!(stderr(&o).contains("'x y' is not a campaign id"));
    assert!(stdout(&cockpit(&db, &["task", "list"])).contains("new-webinar"));
}

#[test]
fn replay_runs_the_live_rules_over_a_campaign_files_counters_or_a_stored_channel() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let rows = dir.path().join("rows.csv");
    let mut text = String::from("timestamp,impressions,clicks,leads,conversions,spend,revenue\n");
    // 30 hours from 26 May; hours 10–15 cost 400 a lead against a limit of 200.
    let first = chrono::DateTime::parse_from_rfc3339("2026-05-26T00:00:00+08:00").unwrap();
    for h in 0..30 {
        let leads = if (10..16).contains(&h) { 2 } else { 8 };
        let at = (first + chrono::Duration::hours(h)).to_rfc3339();
        text.push_str(&format!("{at},20000,400,{leads},40,800.00,0\n"));
    }
    std::fs::write(&rows, text).unwrap();
    let o = cockpit(
        &db,
        &["replay", "--campaign-file", FIXTURES[0], "--channel", "baidu-search", "--csv", rows.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("timestamp,rule,state,severity,summary\n"), "{out}");
    assert!(out.lines().any(|l| l.contains("kpi: cpl <= 200,firing,")), "{out}");
    // The same alarms against labels: the costly hours are one incident, found.
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, "from,to,label\n2026-05-26T10:00:00+08:00,2026-05-26T16:00:00+08:00,lead cost\n").unwrap();
    let o = cockpit(
        &db,
        &[
            "replay",
            "--campaign-file",
            FIXTURES[0],
            "--channel",
            "baidu-search",
            "--csv",
            rows.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("lead cost,2026-05-26T02:00:00+00:00,2026-05-26T08:00:00+00:00,yes,"), "{out}");
    assert!(out.contains("# recall 1.00 (1 of 1 incidents)"), "{out}");
    let bad = cockpit(
        &db,
        &["replay", "--campaign-file", FIXTURES[0], "--channel", "tiktok", "--csv", rows.to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("no channel 'tiktok'"), "{}", stderr(&bad));
    // A stored channel: the campaign's samples (none yet here, so only the header).
    assert!(cockpit(&db, &["campaign", "import", FIXTURES[0]]).status.success());
    let o = cockpit(&db, &["replay", "--campaign", "q2-webinar", "--channel", "baidu-search"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "timestamp,rule,state,severity,summary\n");
    let o = cockpit(&db, &["replay", "--campaign", "q2-webinar"]);
    assert_eq!(o.status.code(), Some(2), "--channel is required");
}

/// `journal` shows each action at its campaign's local time with the offset (UTC with
/// `--utc`), and narrows to a campaign and a time with `--campaign` and `--since`.
#[test]
fn the_journal_speaks_the_campaigns_time_and_narrows_to_a_campaign_and_a_time() {
    use campaign_cockpit::optimize::journal::{JournalEntry, Outcome};
    use campaign_cockpit::optimize::recommend::Change;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    assert!(cockpit(&db, &["campaign", "import", FIXTURES[1], FIXTURES[2]]).status.success());
    {
        let store = campaign_cockpit::store::Store::open(&db).unwrap();
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        for (id, campaign, channel, when) in [
            (1, "618-promo", "douyin", "2026-06-07T03:00:00+08:00"),
            (2, "app-launch", "douyin", "2026-06-08T10:30:00+08:00"),
        ] {
            let change = |before: f64, after: f64| Change::budget(channel, before, after);
            let entry = JournalEntry {
                id,
                at_ms: at(when),
                wall_ms: at(when),
                by: "li.na".into(),
                campaign: campaign.into(),
                change: change(8_000.0, 6_000.0),
                inverse: change(6_000.0, 8_000.0),
                idempotency_key: format!("k-{id}"),
                recommendation: None,
                undo_of: None,
                undone_by: None,
                outcome: Outcome::Applied { detail: "ok".into() },
            };
            store.put_journal(&entry).unwrap();
        }
    }
    let all = stdout(&cockpit(&db, &["journal"]));
    assert!(all.starts_with("2026-06-07T03:00:00+08:00 #1 618-promo"), "{all}");
    assert!(all.contains("2026-06-08T10:30:00+08:00 #2 app-launch"), "{all}");
    let utc = stdout(&cockpit(&db, &["journal", "--utc"]));
    assert!(utc.starts_with("2026-06-06T19:00:00Z #1"), "{utc}");
    let one = stdout(&cockpit(&db, &["journal", "--campaign", "app-launch"]));
    assert!(one.contains("#2 app-launch") && !one.contains("#1"), "{one}");
    let since = stdout(&cockpit(&db, &["journal", "--since", "2026-06-08"]));
    assert!(since.contains("#2") && !since.contains("#1 "), "{since}");
    let none = stdout(&cockpit(&db, &["journal", "--campaign", "618-promo", "--since", "2026-06-08T00:00:00+08:00"]));
    assert_eq!(none.trim(), "no action has been sent for 618-promo since 2026-06-08T00:00:00+08:00 from this database");
    let bad = cockpit(&db, &["journal", "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--since 'last tuesday': write an RFC 3339 time"), "{}", stderr(&bad));
    let bad = cockpit(&db, &["journal", "--campaign", "nope"]);
    assert!(stderr(&bad).contains("--campaign nope: no such campaign (known: "), "{}", stderr(&bad));
}
