//! Platform sources end to end: the simulator answers as Meta Insights and Google Ads would
//! (string numbers, micros, pages, late conversions restated, throttling, missing
//! credentials), the presets read it over HTTP, and the engine's totals are the platforms'.

use campaign_cockpit::clock::{Clock, ManualClock};
use campaign_cockpit::demo;
use campaign_cockpit::domain::source::Request;
use campaign_cockpit::domain::time::{DAY_MS, HOUR_MS};
use campaign_cockpit::domain::{Campaign, ChannelKey, Counters, Health};
use campaign_cockpit::engine::snapshot::Snapshot;
use campaign_cockpit::engine::{Command, Engine, StoreJob};
use campaign_cockpit::poll::{self, PollError, PollOutcome, Secret, SourceSpec, wire::Names};
use campaign_cockpit::sim::{self, SimServer, dialect, model::Network};
use campaign_cockpit::store::Store;
use campaign_cockpit::{analyze, report};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const META_TOKEN: &str = "meta-s3cr3t-token";
const GOOGLE_TOKEN: &str = "google-s3cr3t-token";

struct Rig {
    sim: SimServer,
    clock: Arc<ManualClock>,
    campaigns: Vec<Campaign>,
    sources: Vec<SourceSpec>,
    engine: Engine,
    snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    client: reqwest::Client,
    /// Sources read successfully once (a rows source reads from its campaign's start until).
    read: std::collections::HashSet<String>,
}

fn secrets(with_meta: bool) -> BTreeMap<String, Secret> {
    let mut s = BTreeMap::new();
    if with_meta {
        s.insert("COCKPIT_META_TOKEN".to_string(), Secret::new(META_TOKEN));
    }
    s.insert("COCKPIT_GOOGLE_ADS_TOKEN".to_string(), Secret::new(GOOGLE_TOKEN));
    s.insert("COCKPIT_GOOGLE_ADS_DEVELOPER_TOKEN".to_string(), Secret::new("dev-token"));
    s
}

/// The demo campaigns with 618-promo read as Meta Insights (five rows a page) and the app
/// launch as Google Ads; the webinar keeps the cockpit protocol.
async fn rig(dir: &std::path::Path, with_meta_token: bool) -> Rig {
    let edit = |campaigns: &mut Vec<Campaign>, base: &str| {
        for c in campaigns.iter_mut() {
            let dialect = match c.id.as_str() {
                "618-promo" => "meta-insights",
                "app-launch" => "google-ads",
                _ => continue,
            };
            dialect::reformat(std::slice::from_mut(c), base, dialect).unwrap();
            if dialect == "meta-insights" {
                for ch in &mut c.channels {
                    ch.request =
                        Some(Request { query: [("limit".to_string(), "5".to_string())].into(), ..Default::default() });
                }
            }
        }
        assert!(campaigns.iter().any(|c| c.id == "app-launch"), "the demo has the app launch");
    };
    rig_with(dir, edit, secrets(with_meta_token)).await
}

/// The demo campaigns on a simulator of their own, as `edit` points them at it (given its
/// base URL), in a new database.
async fn rig_with(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut Vec<Campaign>, &str),
    secrets: BTreeMap<String, Secret>,
) -> Rig {
    let sc = demo::scenario();
    let start = sc.start.unwrap().timestamp_millis();
    let clock = Arc::new(ManualClock::new(start));
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, start).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim::serve(listener, Network::new(chs, inc, start), clock.clone()).unwrap();
    demo::rebase(&mut campaigns, &sim.base_url());
    edit(&mut campaigns, &sim.base_url());
    for c in &campaigns {
        c.validate().unwrap_or_else(|e| panic!("{}: {e:?}", c.id));
    }
    let store = Store::open(&dir.join("db")).unwrap();
    for c in &campaigns {
        store.put_campaign(c).unwrap();
    }
    let sources =
        poll::with_secrets(poll::sources_for(&campaigns, Duration::from_secs(60)), &secrets, &Default::default());
    let (engine, snapshots) = Engine::new(store, clock.clone(), &sources).unwrap();
    Rig { sim, clock, campaigns, sources, engine, snapshots, client: poll::client(), read: Default::default() }
}

impl Rig {
    /// Reads every source once at the clock's time, as the polling tasks do.
    async fn poll(&mut self) -> Vec<(String, Result<(), PollError>)> {
        let mut out = Vec::new();
        for s in &self.sources {
            let first = !self.read.contains(&s.url);
            let now = self.clock.now_ms();
            let result = poll::fetch_at(&self.client, s, &mut Names::default(), now, first).await;
            if result.is_ok() {
                self.read.insert(s.url.clone());
            }
            out.push((s.url.clone(), result.as_ref().map(drop).map_err(Clone::clone)));
            self.engine.on_poll(PollOutcome {
                url: s.url.clone(),
                fetched_at: now,
                received: Instant::now(),
                latency: Duration::from_millis(5),
                result,
            });
        }
        self.engine.publish();
        out
    }

    fn snapshot(&mut self) -> Arc<Snapshot> {
        self.engine.publish();
        self.snapshots.borrow().clone()
    }

    /// What the platform reports now for a channel, summed over its days.
    fn platform_totals(&self, campaign: &str, channel: &str) -> Counters {
        Counters::sum(self.platform_days(campaign, channel).values())
    }

    /// What the platform reports now for each day (its start) of a channel.
    fn platform_days(&self, campaign: &str, channel: &str) -> BTreeMap<i64, Counters> {
        let net = self.sim.network.lock().unwrap();
        let now = self.clock.now_ms();
        let ch = net.channels.iter().find(|c| c.campaign == campaign && c.id == channel).unwrap();
        ch.days
            .iter()
            .map(|(day, c)| {
                let m = dialect::maturity((now - day).div_euclid(DAY_MS));
                let c = Counters {
                    conversions: (c.conversions as f64 * m).floor() as u64,
                    revenue: (c.revenue * m * 100.0).round() / 100.0,
                    ..*c
                };
                (*day, c)
            })
            .collect()
    }

    /// Runs `job` on the engine's store and returns what it gives.
    fn with_store<T: Send + 'static>(&mut self, job: impl FnOnce(&Store) -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.engine.commit();
        self.engine.command(Command::WithStore(StoreJob(Box::new(move |store| tx.send(job(store)).unwrap()))));
        rx.recv().unwrap()
    }

    /// Checks that each of a campaign's channels has the platform's figures of each day on
    /// that day, as the review, the analysis and `report --from/--to` read them.
    fn assert_days_are_the_platforms(&mut self, campaign: &str, mapped: &[&str], what: &str) {
        let c = self.campaigns.iter().find(|c| c.id == campaign).unwrap().clone();
        let all = self.campaigns.clone();
        let now = self.clock.now_ms();
        let first = c.day_start_ms(c.start_ms());
        let mut want_total: BTreeMap<i64, Counters> = BTreeMap::new();
        for ch in &c.channels {
            let want: BTreeMap<i64, Counters> =
                self.platform_days(campaign, &ch.id).into_iter().map(|(d, w)| (d, only(&w, mapped))).collect();
            let (c2, id) = (c.clone(), ch.id.clone());
            let got = self.with_store(move |s| analyze::data::channel_days(s, &c2, &id, now).unwrap());
            for (day, w) in &want {
                want_total.entry(*day).or_default().add(w);
                let i = ((day - first) / DAY_MS) as usize;
                let g = got.get(i).copied().unwrap_or_default();
                assert!(same_day(&g, w), "{what}: {} day {}: {g:?} vs the platform's {w:?}", ch.id, i + 1);
            }
            let extra: Vec<usize> = (0..got.len())
                .filter(|i| !got[*i].is_zero() && !want.contains_key(&(first + *i as i64 * DAY_MS)))
                .collect();
            assert!(extra.is_empty(), "{what}: {}: figures on days the platform has none: {extra:?}", ch.id);
        }
        // The review by day, and one day asked for by its dates.
        let (c2, all2) = (c.clone(), all.clone());
        let review = self.with_store(move |s| report::build(s, &c2, &all2, None, None).unwrap());
        for d in &review.days {
            let w = want_total.get(&(first + (d.day as i64 - 1) * DAY_MS)).copied().unwrap_or_default();
            assert!(
                same_day_of(&d.counters, &w, c.channels.len()),
                "{what}: review day {}: {:?} vs {w:?}",
                d.day,
                d.counters
            );
        }
        assert!(review.days.last().is_some_and(|d| d.partial), "{what}: today is shown as partial");
        let (day, w) = want_total.iter().next().map(|(d, w)| (*d, *w)).unwrap();
        let (c2, all2) = (c.clone(), all.clone());
        let one = self.with_store(move |s| report::build(s, &c2, &all2, Some(day), Some(day + DAY_MS)).unwrap());
        assert!(
            same_day_of(&one.totals, &w, c.channels.len()),
            "{what}: report of day 1 alone: {:?} vs {w:?}",
            one.totals
        );
    }
}

/// The counters named in `mapped`, the others 0.
fn only(c: &Counters, mapped: &[&str]) -> Counters {
    let mut out = Counters::default();
    for name in mapped {
        out.set(name, c.get(name));
    }
    out
}

/// Counts equal, money to the cent (of each of `n` channels summed, each reported in cents).
fn same_day_of(a: &Counters, b: &Counters, n: usize) -> bool {
    let cents = 0.006 * n as f64;
    (a.impressions, a.clicks, a.leads, a.conversions) == (b.impressions, b.clicks, b.leads, b.conversions)
        && (a.spend - b.spend).abs() < cents
        && (a.revenue - b.revenue).abs() < cents
}

fn same_day(a: &Counters, b: &Counters) -> bool {
    same_day_of(a, b, 1)
}

fn totals(s: &Snapshot, key: &ChannelKey) -> Counters {
    s.campaigns.iter().flat_map(|c| &c.channels).find(|v| v.key == *key).map(|v| v.totals).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.02 + 1e-6 * b.abs()
}

#[tokio::test]
async fn presets_read_the_platforms_and_restated_days_replace_what_was_known() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rig(dir.path(), true).await;
    let mut grew = false;
    let mut last_conv = BTreeMap::new();
    // Two and a half days, read every two hours: yesterday's late conversions arrive today.
    for round in 0..30 {
        r.clock.advance(2 * HOUR_MS);
        for (url, result) in r.poll().await {
            assert!(result.is_ok(), "round {round}: {url}: {result:?}");
        }
        let s = r.snapshot();
        for c in r.campaigns.iter().filter(|c| c.id != "q2-webinar") {
            for ch in &c.channels {
                let key = ChannelKey::new(&c.id, &ch.id);
                let got = totals(&s, &key);
                let mut want = r.platform_totals(&c.id, &ch.id);
                if c.id == "app-launch" {
                    want.leads = 0; // Google Ads reports conversions, not leads
                }
                assert_eq!(
                    (got.impressions, got.clicks, got.leads),
                    (want.impressions, want.clicks, want.leads),
                    "{key} round {round}"
                );
                assert_eq!(got.conversions, want.conversions, "{key} round {round}: restated days replace, never add");
                assert!(close(got.spend, want.spend) && close(got.revenue, want.revenue), "{key}: {got:?} vs {want:?}");
                let before = last_conv.insert(key.clone(), got.conversions).unwrap_or(0);
                grew |= got.conversions > before;
            }
        }
    }
    assert!(grew, "conversions came in");
    // Restated days replace what was known of them on those days, not at the poll.
    r.assert_days_are_the_platforms("618-promo", &campaign_cockpit::domain::source::COUNTERS, "meta-insights");
    r.assert_days_are_the_platforms(
        "app-launch",
        &["impressions", "clicks", "conversions", "spend", "revenue"],
        "google-ads",
    );
    let s = r.snapshot();
    assert!(
        s.sources.iter().all(|src| src.health == Health::Ok),
        "{:?}",
        s.sources.iter().map(|s| (&s.url, s.health, &s.last_error)).collect::<Vec<_>>()
    );
    // A restart reads the periods back: the totals stand, and the next read restates only
    // the last days.
    let before = totals(&s, &ChannelKey::new("618-promo", "douyin"));
    drop(r.engine);
    let store = Store::open(&dir.path().join("db")).unwrap();
    let (engine, snapshots) = Engine::new(store, r.clock.clone(), &r.sources).unwrap();
    (r.engine, r.snapshots) = (engine, snapshots);
    r.clock.advance(HOUR_MS);
    for (url, result) in r.poll().await {
        assert!(result.is_ok(), "{url}: {result:?}");
    }
    let after = totals(&r.snapshot(), &ChannelKey::new("618-promo", "douyin"));
    let want = r.platform_totals("618-promo", "douyin");
    assert!(
        after.impressions >= before.impressions && after.conversions == want.conversions,
        "{before:?} → {after:?} (want {want:?})"
    );
}

#[tokio::test]
async fn throttling_is_shown_and_polling_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rig(dir.path(), true).await;
    r.clock.advance(3 * HOUR_MS);
    r.poll().await;
    r.sim.throttle_every(1);
    r.clock.advance(HOUR_MS);
    let results = r.poll().await;
    let meta = results.iter().find(|(u, _)| u.contains("/meta/")).unwrap();
    let google = results.iter().find(|(u, _)| u.contains("/google-ads/")).unwrap();
    match &meta.1 {
        Err(PollError::Throttled { retry_after, detail }) => {
            assert_eq!(*retry_after, Some(Duration::from_secs(60)), "Meta's usage header: a minute");
            assert!(detail.contains("User request limit reached") && detail.contains("code 17"), "{detail}");
        }
        other => panic!("meta: {other:?}"),
    }
    assert!(
        matches!(&google.1, Err(PollError::Throttled { retry_after: Some(d), .. }) if *d == Duration::from_secs(1)),
        "{:?}",
        google.1
    );
    let s = r.snapshot();
    let meta_src = s.sources.iter().find(|x| x.url.contains("/meta/")).unwrap();
    assert_eq!(meta_src.health, Health::Throttled);
    assert!(meta_src.last_error.as_deref().unwrap().contains("retrying in 60s"), "{:?}", meta_src.last_error);
    r.sim.throttle_every(0);
    r.clock.advance(HOUR_MS);
    let results = r.poll().await;
    let platform = |u: &str| u.contains("/meta/") || u.contains("/google-ads/");
    assert!(results.iter().filter(|(u, _)| platform(u)).all(|(_, res)| res.is_ok()), "{results:?}");
    let s = r.snapshot();
    assert!(s.sources.iter().filter(|x| platform(&x.url)).all(|x| x.health == Health::Ok));
}

#[tokio::test]
async fn a_missing_secret_is_named_and_no_secret_shows_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rig(dir.path(), false).await;
    r.clock.advance(HOUR_MS);
    let results = r.poll().await;
    let meta = results.iter().find(|(u, _)| u.contains("/meta/")).unwrap();
    let err = meta.1.as_ref().unwrap_err().to_string();
    assert!(
        err.contains("request.headers.Authorization")
            && err.contains("COCKPIT_META_TOKEN")
            && err.contains("[secrets]"),
        "{err}"
    );
    let s = r.snapshot();
    let text = format!("{:?}", s.sources);
    assert!(text.contains("COCKPIT_META_TOKEN is not set") || text.contains("{secret:COCKPIT_META_TOKEN}"), "{text}");
    assert!(!text.contains(GOOGLE_TOKEN) && !text.contains(META_TOKEN), "{text}");
    assert!(!format!("{:?}", r.sources).contains(GOOGLE_TOKEN), "specs print no secret");
}

/// Runs the built binary on the rig's database, with the platforms' secrets in the
/// environment.
async fn cockpit(dir: &std::path::Path, args: &[&str], meta_token: bool) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"));
    cmd.arg("--db").arg(dir.join("db")).args(args);
    cmd.env("COCKPIT_CONFIG", dir.join("no-config.toml")).env("XDG_STATE_HOME", dir).env_remove("COCKPIT_META_TOKEN");
    if meta_token {
        cmd.env("COCKPIT_META_TOKEN", META_TOKEN);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_test_prints_what_would_be_recorded_and_what_was_found_instead() {
    let dir = tempfile::tempdir().unwrap();
    let r = rig(dir.path(), true).await;
    r.clock.advance(6 * HOUR_MS);
    let Rig { engine, .. } = r;
    drop(engine);
    let r = Rig {
        engine: Engine::new(Store::open(&dir.path().join("other-db")).unwrap(), r.clock.clone(), &[]).unwrap().0,
        ..r
    };
    let out = cockpit(dir.path(), &["source", "test", "618-promo", "--channel", "douyin", "--json"], true).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The simulated platform moved to the clock's time with the request.
    let want = r.platform_totals("618-promo", "douyin");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ch = &v["channels"][0];
    assert_eq!(ch["id"], "douyin");
    assert_eq!(ch["impressions"].as_u64(), Some(want.impressions));
    assert_eq!(ch["conversions"].as_u64(), Some(want.conversions));
    assert!(close(ch["spend"].as_f64().unwrap(), want.spend));
    // A channel whose id the platform does not know: what was found instead, and exit 1.
    let store = Store::open(&dir.path().join("db")).unwrap();
    let mut c = store.campaign("618-promo").unwrap().unwrap();
    c.channels[0].source_id = Some("no-such-campaign".into());
    store.put_campaign(&c).unwrap();
    drop(store);
    let out = cockpit(dir.path(), &["source", "test", "618-promo"], true).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("no row with id 'no-such-campaign'")
            && text.contains("mapping.id `campaign_id`")
            && text.contains("douyin"),
        "{text}"
    );
    // Without the token: the secret is named, and nothing else is printed of it.
    let out = cockpit(dir.path(), &["source", "test", "618-promo", "--json"], false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("COCKPIT_META_TOKEN is not set") || text.contains("{secret:COCKPIT_META_TOKEN} is not set"),
        "{text}"
    );
    assert!(!text.contains(GOOGLE_TOKEN));
}

/// Writes an export as a platform's report centre gives it, settled in the past by `age_s`.
fn export(dir: &std::path::Path, name: &str, rows: &[(&str, &str, u64, u64, f64, u64)], age_s: u64) {
    let mut text = String::from("\u{feff}Campaign ID,Day,Impressions,Link clicks,Amount spent (CNY),Purchases\n");
    for (id, day, impr, clicks, spend, conv) in rows {
        text.push_str(&format!("{id},{day},\"{impr}\",{clicks},{spend:.2},{conv}\n"));
    }
    text.push_str("Total,,,,,\n");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let when = std::time::SystemTime::now() - Duration::from_secs(age_s);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
}

#[tokio::test]
async fn a_directory_of_exports_is_read_as_files_settle_and_restated_days_replace() {
    use campaign_cockpit::domain::source::{Field, Mapping};
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let mut c = demo::campaigns().into_iter().find(|c| c.id == "618-promo").unwrap();
    let col = |s: &str| Some(Field::Expr(s.to_string()));
    for ch in &mut c.channels {
        ch.format = Some("csv".into());
        ch.source = url::Url::from_directory_path(&exports).unwrap().to_string();
        ch.mapping = Some(Mapping {
            id: Some("Campaign ID".into()),
            period: Some("Day".into()),
            impressions: col("Impressions"),
            clicks: col("Link clicks"),
            spend: col("Amount spent (CNY)"),
            conversions: col("Purchases"),
            ..Default::default()
        });
    }
    c.validate().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    store.put_campaign(&c).unwrap();
    let clock = Arc::new(ManualClock::new(c.start_ms() + 3 * DAY_MS));
    let sources = poll::sources_for(std::slice::from_ref(&c), Duration::from_secs(60));
    let (mut engine, snapshots) = Engine::new(store, clock.clone(), &sources).unwrap();
    let client = poll::client();
    let key = ChannelKey::new("618-promo", "douyin");
    let read = || {
        clock.advance(60_000);
        let spec = sources[0].clone();
        let client = client.clone();
        let now = clock.now_ms();
        async move { (poll::fetch_at(&client, &spec, &mut Names::default(), now, false).await, spec.url, now) }
    };
    let mut take = |(result, url, now): (Result<campaign_cockpit::poll::wire::StatsDoc, PollError>, String, i64)| {
        let ok = result.as_ref().map(drop).map_err(ToString::to_string);
        engine.on_poll(PollOutcome { url, fetched_at: now, received: Instant::now(), latency: Duration::ZERO, result });
        engine.publish();
        let s = snapshots.borrow().clone();
        (ok, totals(&s, &key))
    };
    export(
        &exports,
        "a.csv",
        &[("douyin", "2026-06-01", 1_000, 20, 100.5, 2), ("douyin", "2026-06-02", 2_000, 30, 200.0, 3)],
        60,
    );
    let (ok, t) = take(read().await);
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!((t.impressions, t.clicks, t.conversions), (3_000, 50, 5));
    assert!((t.spend - 300.5).abs() < 1e-9);
    // A later export restates 06-02: the day is replaced, not added.
    export(&exports, "b.csv", &[("douyin", "2026-06-02", 2_100, 31, 210.0, 5)], 30);
    // One still being written is not read yet.
    export(&exports, "c.csv", &[("douyin", "2026-06-03", 9_999, 99, 999.0, 9)], 0);
    let (_, t) = take(read().await);
    assert_eq!((t.impressions, t.conversions), (3_100, 7), "06-02 restated, 06-03 not read half-written");
    // A file removed keeps what it gave.
    std::fs::remove_file(exports.join("a.csv")).unwrap();
    std::fs::remove_file(exports.join("c.csv")).unwrap();
    let (_, t) = take(read().await);
    assert_eq!((t.impressions, t.conversions), (3_100, 7));
    // A bad value names the file, line and column; the totals stand.
    export(&exports, "d.csv", &[("douyin", "2026-06-04", 1, 1, 1.0, 1)], 10);
    let path = exports.join("d.csv");
    let text = std::fs::read_to_string(&path).unwrap().replace(",1.00,", ",1.0x,");
    std::fs::write(&path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(10))
        .unwrap();
    let (ok, t) = take(read().await);
    let e = ok.unwrap_err();
    assert!(e.contains("d.csv:2: Amount spent (CNY): '1.0x' is not a number"), "{e}");
    assert_eq!(t.impressions, 3_100);
    // A directory that is gone is a failing source, not a crash.
    std::fs::remove_dir_all(&exports).unwrap();
    let (ok, _) = take(read().await);
    assert!(ok.unwrap_err().contains("directory"));
    let s = snapshots.borrow().clone();
    assert_eq!(s.sources[0].health, Health::Failing);
}

/// Hourly rows: each hour is a period of its own, restated hours replace what was known, and
/// the periods stand across a restart.
#[tokio::test]
async fn hourly_rows_are_periods_of_their_own() {
    use campaign_cockpit::domain::source::{Field, Mapping, PeriodLength};
    let dir = tempfile::tempdir().unwrap();
    let (exports, c) = douyin_from_exports(
        dir.path(),
        Mapping {
            id: Some("Campaign ID".into()),
            period: Some("Hour".into()),
            period_length: Some(PeriodLength::Hour),
            impressions: Some(Field::Expr("Impressions".into())),
            clicks: Some(Field::Expr("Clicks".into())),
            ..Default::default()
        },
    );
    let write = |name: &str, rows: &[(&str, u64, u64)]| {
        let mut text = String::from("Campaign ID,Hour,Impressions,Clicks\n");
        for (hour, impr, clicks) in rows {
            text.push_str(&format!("douyin,2026-06-01 {hour}:00:00,{impr},{clicks}\n"));
        }
        std::fs::write(exports.join(name), text).unwrap();
        settle(&exports);
    };
    let key = ChannelKey::new("618-promo", "douyin");
    let clock = Arc::new(ManualClock::new(c.start_ms() + 3 * DAY_MS));
    let sources = poll::sources_for(std::slice::from_ref(&c), Duration::from_secs(60));
    let read = || {
        clock.advance(60_000);
        let (spec, now) = (sources[0].clone(), clock.now_ms());
        async move {
            let result = poll::fetch_at(&poll::client(), &spec, &mut Names::default(), now, false).await;
            assert!(result.is_ok(), "{result:?}");
            PollOutcome { url: spec.url, fetched_at: now, received: Instant::now(), latency: Duration::ZERO, result }
        }
    };
    let db = dir.path().join("db");
    {
        let store = Store::open(&db).unwrap();
        store.put_campaign(&c).unwrap();
        let (mut engine, snapshots) = Engine::new(store, clock.clone(), &sources).unwrap();
        write("a.csv", &[("09", 1_000, 10), ("10", 2_000, 20), ("11", 500, 5)]);
        engine.on_poll(read().await);
        engine.publish();
        let t = totals(&snapshots.borrow(), &key);
        assert_eq!((t.impressions, t.clicks), (3_500, 35), "three hours, three periods");
        // 11:00 restated in a later export, 12:00 new: the hour is replaced, not added.
        write("b.csv", &[("11", 800, 8), ("12", 100, 1)]);
        engine.on_poll(read().await);
        engine.publish();
        let t = totals(&snapshots.borrow(), &key);
        assert_eq!((t.impressions, t.clicks), (3_900, 39));
        drop(engine);
    }
    let store = Store::open(&db).unwrap();
    let periods = store.periods(&key).unwrap();
    let hours: Vec<i64> = periods.keys().map(|p| (p - periods.keys().next().unwrap()) / HOUR_MS).collect();
    assert_eq!(hours, [0, 1, 2, 3], "one stored period per hour");
    assert_eq!(periods.values().map(|c| c.impressions).collect::<Vec<_>>(), [1_000, 2_000, 800, 100]);
}

/// The festival with its Douyin channel alone, read from a folder of exports (made under
/// `dir`) with `mapping`.
fn douyin_from_exports(
    dir: &std::path::Path,
    mapping: campaign_cockpit::domain::source::Mapping,
) -> (std::path::PathBuf, Campaign) {
    let exports = dir.join("exports");
    std::fs::create_dir(&exports).unwrap();
    let mut c = demo::campaigns().into_iter().find(|c| c.id == "618-promo").unwrap();
    c.channels.retain(|ch| ch.id == "douyin");
    let ch = &mut c.channels[0];
    ch.format = Some("csv".into());
    ch.source = url::Url::from_directory_path(&exports).unwrap().to_string();
    ch.mapping = Some(mapping);
    c.validate().unwrap();
    (exports, c)
}

/// Dates the files of `dir` back past the time a file must stand still before it is read.
fn settle(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let when = std::time::SystemTime::now() - poll::csvdir::SETTLE * 2;
        // Older files stay older: the order of the exports is the order they were written in.
        let old = e.metadata().unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(e.path()).unwrap().set_modified(old.min(when)).unwrap();
    }
}

#[tokio::test]
async fn every_preset_reads_the_simulator_speaking_its_platform() {
    for &d in dialect::DIALECTS {
        let dir = tempfile::tempdir().unwrap();
        // The export dialect writes files where the others answer requests.
        let exports = dir.path().join("exports");
        let edit = |campaigns: &mut Vec<Campaign>, base: &str| {
            campaigns.retain(|c| c.id == "618-promo");
            let base = if d == "csv" { exports.display().to_string() } else { base.to_string() };
            dialect::reformat(campaigns, &base, d).unwrap();
        };
        let secrets = dialect::stand_in_secrets(d).into_iter().map(|n| (n, Secret::new("simulated"))).collect();
        let mut r = rig_with(dir.path(), edit, secrets).await;
        let mapping = match campaign_cockpit::domain::source::preset(d) {
            Some(p) => p.mapping,
            None => dialect::export_mapping(),
        };
        let mapped: Vec<&str> = mapping.counters().iter().filter_map(|(n, f)| f.map(|_| *n)).collect();
        for round in 0..20 {
            r.clock.advance(3 * HOUR_MS);
            if d == "csv" {
                let mut net = r.sim.network.lock().unwrap();
                net.advance_to(r.clock.now_ms());
                dialect::write_exports(&net, &exports).unwrap();
                // Written a while ago, as far as settling goes.
                settle(&dialect::export_dir(&exports, "618-promo"));
            }
            for (url, result) in r.poll().await {
                assert!(result.is_ok(), "{d} round {round}: {url}: {result:?}");
            }
        }
        let s = r.snapshot();
        for ch in &r.campaigns[0].channels {
            let got = totals(&s, &ChannelKey::new("618-promo", &ch.id));
            let want = r.platform_totals("618-promo", &ch.id);
            let pairs = [
                ("impressions", got.impressions as f64, want.impressions as f64),
                ("clicks", got.clicks as f64, want.clicks as f64),
                ("leads", got.leads as f64, want.leads as f64),
                ("conversions", got.conversions as f64, want.conversions as f64),
                ("spend", got.spend, want.spend),
                ("revenue", got.revenue, want.revenue),
            ];
            for (name, g, w) in pairs {
                let w = if mapped.contains(&name) { w } else { 0.0 };
                assert!(close(g, w), "{d}: {}: {name} {g} vs the platform's {w}", ch.id);
            }
            assert!(got.clicks > 0 || !mapped.contains(&"clicks"), "{d}: {} had traffic", ch.id);
        }
        r.assert_days_are_the_platforms("618-promo", &mapped, d);
    }
}

/// `fixtures/exports/`: one export per platform as its report centre writes it, copied into
/// `dir` (settled) with the campaign file pointing at the copy.
fn platform_exports(dir: &std::path::Path) -> (std::path::PathBuf, Campaign) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/exports");
    let exports = dir.join("exports");
    for e in std::fs::read_dir(&root).unwrap().flatten().filter(|e| e.path().is_dir()) {
        let to = exports.join(e.file_name());
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(e.path()).unwrap().flatten() {
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
        settle(&to);
    }
    let text = std::fs::read_to_string(root.join("winter-sale.toml"))
        .unwrap()
        .replace("file:///srv/exports/", url::Url::from_directory_path(&exports).unwrap().as_str());
    let file = dir.join("winter-sale.toml");
    std::fs::write(&file, &text).unwrap();
    let c = Campaign::parse(&text, campaign_cockpit::domain::campaign::Format::Toml, "winter-sale.toml").unwrap();
    (file, c)
}

/// Each platform's export, read through the engine: every channel's figures land on the days
/// the rows describe (as the exports were written by hand: the sums below are the files').
#[tokio::test]
async fn each_platforms_export_lands_on_the_days_it_describes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = platform_exports(dir.path());
    let store = Store::open(&dir.path().join("db")).unwrap();
    store.put_campaign(&c).unwrap();
    // Two days into the campaign, at 10:00 campaign time.
    let clock = Arc::new(ManualClock::new(c.start_ms() + 2 * DAY_MS + 10 * HOUR_MS));
    let sources = poll::sources_for(std::slice::from_ref(&c), Duration::from_secs(60));
    assert_eq!(sources.len(), 5, "one folder per platform");
    let (mut engine, _snapshots) = Engine::new(store, clock.clone(), &sources).unwrap();
    for spec in &sources {
        let now = clock.now_ms();
        let result = poll::fetch_at(&poll::client(), spec, &mut Names::default(), now, true).await;
        assert!(result.is_ok(), "{}: {result:?}", spec.url);
        engine.on_poll(PollOutcome {
            url: spec.url.clone(),
            fetched_at: now,
            received: Instant::now(),
            latency: Duration::ZERO,
            result,
        });
    }
    engine.commit();
    let (tx, rx) = std::sync::mpsc::channel();
    let (c2, now) = (c.clone(), clock.now_ms());
    engine.command(Command::WithStore(StoreJob(Box::new(move |s| {
        let days: Vec<(String, Vec<Counters>)> = c2
            .channels
            .iter()
            .map(|ch| (ch.id.clone(), analyze::data::channel_days(s, &c2, &ch.id, now).unwrap()))
            .collect();
        tx.send((days, report::build(s, &c2, std::slice::from_ref(&c2), None, None).unwrap())).unwrap();
    }))));
    let (days, review) = rx.recv().unwrap();
    // (channel, day) → impressions, clicks, conversions, spend, revenue, from the files.
    // impressions, clicks, conversions, spend, revenue
    type Day = (u64, u64, u64, f64, f64);
    let want: [(&str, [Day; 2]); 10] = [
        ("feed", [(120_500, 2_410, 30, 1_820.55, 7_900.0), (131_002, 2_655, 33, 2_004.10, 8_410.20)]),
        ("reels", [(70_216, 1_500, 15, 1_200.40, 4_000.0), (80_400, 1_736, 18, 1_400.50, 5_000.0)]),
        ("search", [(45_210, 3_120, 88, 4_210.77, 12_600.0), (47_900, 3_301, 92, 4_398.02, 13_050.50)]),
        ("pmax", [(210_440, 1_980, 40, 2_980.0, 6_100.0), (198_003, 1_875, 37, 2_801.45, 5_700.0)]),
        ("douyin-feed", [(310_222, 6_004, 120, 5_102.30, 0.0), (298_117, 5_870, 117, 4_988.0, 0.0)]),
        ("douyin-search", [(88_010, 2_212, 41, 1_890.45, 0.0), (91_500, 2_301, 44, 1_950.05, 0.0)]),
        ("baidu-brand", [(52_300, 4_410, 77, 3_105.60, 0.0), (50_120, 4_250, 75, 2_998.40, 0.0)]),
        ("baidu-generic", [(120_900, 2_870, 38, 4_410.0, 0.0), (118_760, 2_790, 36, 4_300.25, 0.0)]),
        ("wechat-moments", [(180_330, 2_740, 64, 3_520.80, 15_360.0), (176_002, 2_688, 61, 3_460.10, 14_640.0)]),
        ("wechat-channels", [(96_400, 1_540, 28, 1_980.0, 6_720.0), (101_230, 1_602, 30, 2_050.60, 7_200.0)]),
    ];
    let mut by_day = [Counters::default(); 2];
    for (id, expected) in want {
        let got = &days.iter().find(|(c, _)| c == id).unwrap().1;
        assert_eq!(got.len(), 3, "{id}: 12-05, 12-06 and today");
        assert!(got[2].is_zero(), "{id}: nothing on 12-07 (the rows are the 5th's and the 6th's)");
        for (d, (impressions, clicks, conversions, spend, revenue)) in expected.into_iter().enumerate() {
            let w = Counters { impressions, clicks, conversions, spend, revenue, leads: 0 };
            assert!(same_day(&got[d], &w), "{id} day {}: {:?} vs the file's {w:?}", d + 1, got[d]);
            by_day[d].add(&w);
        }
    }
    for (d, w) in by_day.iter().enumerate() {
        assert!(same_day(&review.days[d].counters, w), "review day {}: {:?} vs {w:?}", d + 1, review.days[d].counters);
    }
    assert!(review.days[2].partial && !review.days[1].partial, "today is under way");
}

/// `source test FILE` reads a campaign file's sources without a database; files still being
/// written are named; an encoding that cannot be told is named with the setting to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_test_tries_a_campaign_file_and_names_what_it_cannot_read_yet() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = platform_exports(dir.path());
    let out = cockpit(dir.path(), &["source", "test", file.to_str().unwrap()], false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("douyin-feed") && text.contains("608339") && text.contains("10090.30"), "{text}");
    assert!(text.contains("not mapped"), "leads are read by no export: {text}");
    assert!(!dir.path().join("db").exists(), "no database was made");
    // A file copied in a moment ago is not read yet, and is named.
    let meta = dir.path().join("exports/meta");
    std::fs::rename(meta.join("winter-sale-2026-12-05_2026-12-06.csv"), meta.join("fresh.csv")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(meta.join("fresh.csv"))
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let out = cockpit(dir.path(), &["source", "test", file.to_str().unwrap(), "--channel", "feed"], false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("1 file still being written (fresh.csv); read in"), "{text}");
    // The Ocean Engine export without its encoding, and with the columns misspelt: named.
    let broken =
        std::fs::read_to_string(&file).unwrap().replace("encoding = \"gbk\"\n", "").replace("\"展示数\"", "\"展现数\"");
    std::fs::write(&file, broken).unwrap();
    let out = cockpit(dir.path(), &["source", "test", file.to_str().unwrap(), "--channel", "douyin-feed"], false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("not UTF-8 text, and its encoding cannot be told: set mapping.encoding"), "{text}");
}

/// A platform's last hours keep moving: they count in the totals at once, but the alert rules
/// judge a period only once it has settled (`settle_hours`), so a provisional hour never pages.
#[tokio::test]
async fn provisional_hours_count_but_are_judged_only_once_settled() {
    use campaign_cockpit::domain::source::{Field, Mapping, PeriodLength};
    let dir = tempfile::tempdir().unwrap();
    let (exports, c) = douyin_from_exports(
        dir.path(),
        Mapping {
            id: Some("id".into()),
            period: Some("hour".into()),
            period_length: Some(PeriodLength::Hour),
            settle_hours: Some(3),
            impressions: Some(Field::Expr("impressions".into())),
            clicks: Some(Field::Expr("clicks".into())),
            spend: Some(Field::Expr("spend".into())),
            conversions: Some(Field::Expr("orders".into())),
            revenue: Some(Field::Expr("revenue".into())),
            ..Default::default()
        },
    );
    let day = c.day_start_ms(c.start_ms()) + 3 * DAY_MS;
    let date = chrono::DateTime::from_timestamp_millis(day + HOUR_MS).unwrap().with_timezone(c.start.offset());
    let date = date.format("%Y-%m-%d").to_string();
    // 06:00–08:00 cost 45 an order, well within `cpa <= 90`; 09:00–11:00 5,000 an order.
    let mut text = String::from("id,hour,impressions,clicks,spend,orders,revenue\n");
    for h in 6..12 {
        let (spend, orders) = if h < 9 { (900.0, 20) } else { (5_000.0, 1) };
        text.push_str(&format!("douyin,{date} {h:02}:00:00,40000,800,{spend},{orders},{}\n", spend * 4.0));
    }
    std::fs::write(exports.join("hours.csv"), text).unwrap();
    settle(&exports);
    let store = Store::open(&dir.path().join("db")).unwrap();
    store.put_campaign(&c).unwrap();
    let clock = Arc::new(ManualClock::new(day + 12 * HOUR_MS));
    let sources = poll::sources_for(std::slice::from_ref(&c), Duration::from_secs(60));
    let (mut engine, snapshots) = Engine::new(store, clock.clone(), &sources).unwrap();
    let read = async |engine: &mut Engine| {
        let (spec, now) = (&sources[0], clock.now_ms());
        let result = poll::fetch_at(&poll::client(), spec, &mut Names::default(), now, true).await;
        assert!(result.is_ok(), "{result:?}");
        engine.on_poll(PollOutcome {
            url: spec.url.clone(),
            fetched_at: now,
            received: Instant::now(),
            latency: Duration::ZERO,
            result,
        });
        engine.publish();
        snapshots.borrow().clone()
    };
    let cpa_alert = |s: &Snapshot| s.alerts.iter().any(|a| a.key.channel == "douyin" && a.key.rule.contains("cpa"));
    let s = read(&mut engine).await;
    let key = ChannelKey::new("618-promo", "douyin");
    assert_eq!(totals(&s, &key).conversions, 63, "every hour counts in the totals, the provisional ones too");
    assert!(!cpa_alert(&s), "09:00–11:00 are not settled at 12:00: not judged");
    // Three hours on, the same hours have settled: now they are judged.
    clock.advance(3 * HOUR_MS);
    let s = read(&mut engine).await;
    assert!(cpa_alert(&s), "{:?}", s.alerts.iter().map(|a| &a.key).collect::<Vec<_>>());
}
