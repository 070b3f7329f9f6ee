//! A real Prometheus (the Debian package `prometheus`, which `.ci/run` installs) scrapes the
//! simulator's `/metrics` every second; campaigns read through `format = "prometheus"` get the
//! simulator's counters. Without the binary, a plain `cargo test` says the test was skipped;
//! with `CI` set it fails instead.

use campaign_cockpit::clock::ManualClock;
use campaign_cockpit::demo;
use campaign_cockpit::domain::source::{Field, Mapping};
use campaign_cockpit::domain::time::HOUR_MS;
use campaign_cockpit::domain::{Campaign, Counters};
use campaign_cockpit::poll::{self, PollError, wire::Names};
use campaign_cockpit::sim::{self, model::Network};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Prometheus binary, or `None` when the test is to be skipped.
fn prometheus_binary() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "prometheus is not installed; .ci/run installs the Debian package");
        eprintln!("skipped: prometheus is not installed (apt-get install prometheus to run this test)");
    }
    found
}

/// A Prometheus of our own on a loopback port, stopped when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_prometheus(bin: &std::path::Path, dir: &std::path::Path, target: &str) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    Prometheus { child, url: format!("http://127.0.0.1:{port}") }
}

/// 618-promo read from Prometheus, one PromQL query per counter.
fn through_prometheus(campaigns: &mut [Campaign], url: &str, spend_query: &str) {
    let c = campaigns.iter_mut().find(|c| c.id == "618-promo").unwrap();
    let q = |name: &str| {
        Some(Field::Expr(format!("sum by (channel) (cockpit_sim_{name}_total{{campaign=\"618-promo\"}})")))
    };
    for ch in &mut c.channels {
        ch.format = Some("prometheus".into());
        ch.source = url.to_string();
        ch.mapping = Some(Mapping {
            impressions: q("impressions"),
            clicks: q("clicks"),
            leads: q("leads"),
            conversions: q("conversions"),
            spend: Some(Field::Expr(spend_query.to_string())),
            revenue: q("revenue"),
            ..Default::default()
        });
    }
    c.validate().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_read_from_a_real_prometheus_match_the_simulator() {
    let Some(bin) = prometheus_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sc = demo::scenario();
    let start = sc.start.unwrap().timestamp_millis();
    let clock = Arc::new(ManualClock::new(start + 2 * HOUR_MS));
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, start).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim::serve(listener, Network::new(chs, inc, start), clock.clone()).unwrap();
    let prom = start_prometheus(&bin, dir.path(), &sim.addr.to_string());
    let spend = "sum by (channel) (cockpit_sim_spend_total{campaign=\"618-promo\"})";
    through_prometheus(&mut campaigns, &prom.url, spend);
    let sources = poll::sources_for(&campaigns, Duration::from_secs(1));
    let spec = sources.iter().find(|s| s.url == prom.url).expect("one source for the Prometheus");
    let client = poll::client();
    // The simulator's clock stands still: once a scrape has its counters, every later one
    // has the same, and the cockpit must read exactly those.
    let counters = || -> Vec<(String, Counters)> {
        let net = sim.network.lock().unwrap();
        net.channels.iter().filter(|c| c.campaign == "618-promo").map(|c| (c.id.clone(), c.counters)).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let doc = loop {
        match poll::fetch_at(&client, spec, &mut Names::default(), 0, true).await {
            Ok(doc) if !doc.channels.is_empty() => {
                let want = counters();
                let (id, c) = &want[0];
                let got = doc.channels.iter().find(|e| &*e.id == id).map(|e| e.totals);
                if got.is_some_and(|g| g.impressions == c.impressions) {
                    break doc;
                }
            }
            Ok(_) | Err(PollError::Connect(_)) | Err(PollError::Status(_)) => {}
            Err(e) => panic!("reading Prometheus: {e}"),
        }
        assert!(Instant::now() < deadline, "Prometheus did not scrape the simulator within 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The simulator advanced to the clock when scraped: these are its counters.
    let want = counters();
    for (id, c) in &want {
        let got = doc.channels.iter().find(|e| &*e.id == id).unwrap_or_else(|| panic!("{id} not read")).totals;
        assert_eq!(
            (got.impressions, got.clicks, got.leads, got.conversions),
            (c.impressions, c.clicks, c.leads, c.conversions),
            "{id}"
        );
        assert!(
            (got.spend - c.spend).abs() < 0.005 && (got.revenue - c.revenue).abs() < 0.005,
            "{id}: {got:?} vs {c:?}"
        );
        assert!(c.impressions > 0, "{id} had traffic");
    }
    // A query Prometheus refuses is bad data naming the counter, the query and its error.
    through_prometheus(&mut campaigns, &prom.url, "sum by (channel (");
    let sources = poll::sources_for(&campaigns, Duration::from_secs(1));
    let spec = sources.iter().find(|s| s.url == prom.url).unwrap();
    let e = poll::fetch_at(&client, spec, &mut Names::default(), 0, true).await.unwrap_err().to_string();
    assert!(e.starts_with("bad data: spend `sum by (channel (`:") && e.contains("parse error"), "{e}");
    // A metric Prometheus has never seen is bad data naming it and the nearest it has, not 0.
    through_prometheus(&mut campaigns, &prom.url, "sum by (channel) (cockpit_sim_spend_totl{campaign=\"618-promo\"})");
    let sources = poll::sources_for(&campaigns, Duration::from_secs(1));
    let spec = sources.iter().find(|s| s.url == prom.url).unwrap();
    let e = poll::fetch_at(&client, spec, &mut Names::default(), 0, true).await.unwrap_err().to_string();
    assert!(
        e.contains("Prometheus has no metric `cockpit_sim_spend_totl`; did you mean `cockpit_sim_spend_total`?"),
        "{e}"
    );
    // A known metric whose labels match no series yet is a counter that has not counted.
    through_prometheus(&mut campaigns, &prom.url, "sum by (channel) (cockpit_sim_spend_total{campaign=\"none\"})");
    let sources = poll::sources_for(&campaigns, Duration::from_secs(1));
    let spec = sources.iter().find(|s| s.url == prom.url).unwrap();
    let doc = poll::fetch_at(&client, spec, &mut Names::default(), 0, true).await.unwrap();
    assert!(doc.channels.iter().all(|c| c.totals.spend == 0.0) && !doc.channels.is_empty());
    drop(prom);
}

/// `cockpit serve --metrics`: the real Prometheus scrapes it (its parser is strict: a
/// malformed exposition fails the scrape) and has each channel's counters and the KPIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_services_metrics() {
    let Some(bin) = prometheus_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let sc = demo::scenario();
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, now).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _sim =
        sim::serve(listener, Network::new(chs, inc, now), Arc::new(campaign_cockpit::clock::SystemClock)).unwrap();
    demo::rebase(&mut campaigns, &_sim.base_url());
    let store = campaign_cockpit::store::Store::open(&dir.path().join("db")).unwrap();
    for c in &campaigns {
        store.put_campaign(c).unwrap();
    }
    drop(store);
    let port = free_port();
    let serve = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", &dir.path().join("db").display().to_string(), "--interval", "1s", "serve"])
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .env_remove("COCKPIT_DB")
        .env("COCKPIT_CONFIG", dir.path().join("no-config.toml"))
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serve = Killed(serve);
    let prom = start_prometheus(&bin, dir.path(), &format!("127.0.0.1:{port}"));
    let client = poll::client();
    let query = |q: &str| {
        let url = format!(
            "{}/api/v1/query?query={}",
            prom.url,
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let client = client.clone();
        async move {
            let v: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
            v["data"]["result"].as_array().cloned()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let clicks = loop {
        if let Some(r) = query("cockpit_channel_clicks_total{campaign=\"618-promo\"} > 0").await
            && r.len() == campaigns.iter().find(|c| c.id == "618-promo").unwrap().channels.len()
        {
            break r;
        }
        assert!(Instant::now() < deadline, "Prometheus did not scrape the service within 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(clicks.iter().all(|s| s["metric"]["channel"].is_string()));
    let up = query("up{job=\"sim\"}").await.unwrap();
    assert_eq!(up[0]["value"][1], "1", "the scrape parsed");
    let kpis = query("cockpit_campaign_kpi{kpi=\"ctr\"}").await.unwrap();
    assert_eq!(kpis.len(), campaigns.len());
    drop(serve);
    drop(prom);
}

/// A child killed and waited for when dropped (a failing test leaves nothing running).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A counter that has run since long before the campaign: its first reading counts what it
/// gained from the campaign's start (from a range query), not everything since the exporter
/// began; and a start older than Prometheus's data is said, with when the count begins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_running_before_the_campaign_counts_from_the_campaigns_start() {
    let Some(bin) = prometheus_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wall = || chrono::Utc::now().timestamp_millis();
    let mut campaigns = demo::campaigns();
    campaigns.retain(|c| c.id == "618-promo");
    // Running on the wall clock, as Prometheus does; no incident, so no counter resets.
    let offset = *campaigns[0].start.offset();
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap().with_timezone(&offset);
    campaigns[0].start = at(wall() - 30 * 24 * HOUR_MS);
    campaigns[0].end = at(wall() + 30 * 24 * HOUR_MS);
    let (chs, inc) = campaign_cockpit::sim::scenario::Scenario::default().build(&campaigns, wall()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim =
        sim::serve(listener, Network::new(chs, inc, wall()), Arc::new(campaign_cockpit::clock::SystemClock)).unwrap();
    let prom = start_prometheus(&bin, dir.path(), &sim.addr.to_string());
    let client = poll::client();
    let impressions = "sum by (channel) (cockpit_sim_impressions_total{campaign=\"618-promo\"})";
    // Prometheus's value of the impressions query per channel at a time (seconds).
    let value_at = |t: Option<f64>| {
        let mut url = url::Url::parse(&format!("{}/api/v1/query", prom.url)).unwrap();
        url.query_pairs_mut().append_pair("query", impressions);
        if let Some(t) = t {
            url.query_pairs_mut().append_pair("time", &format!("{t:.3}"));
        }
        let client = client.clone();
        async move {
            let v: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
            let r = v["data"]["result"].as_array()?.clone();
            let out: std::collections::BTreeMap<String, f64> = r
                .iter()
                .map(|s| {
                    (
                        s["metric"]["channel"].as_str().unwrap().to_string(),
                        s["value"][1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            (!out.is_empty()).then_some(out)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    // Until the counters have run a few scrapes and grown: the exporter's past.
    let total = |v: &std::collections::BTreeMap<String, f64>| v.values().sum::<f64>();
    let first = loop {
        if let Some(first) = value_at(None).await {
            break first;
        }
        assert!(Instant::now() < deadline, "Prometheus did not scrape the simulator within 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let before = loop {
        let now = value_at(None).await.unwrap();
        if total(&now) > total(&first) {
            break now;
        }
        assert!(Instant::now() < deadline, "the simulator's counters did not grow");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The campaign starts now; the counters go on growing.
    let start = wall();
    campaigns[0].start = at(start);
    through_prometheus(&mut campaigns, &prom.url, "sum by (channel) (cockpit_sim_spend_total{campaign=\"618-promo\"})");
    loop {
        let then = value_at(Some(start as f64 / 1000.0)).await.unwrap_or_default();
        if value_at(None).await.is_some_and(|now| total(&now) > total(&then) && total(&then) >= total(&before)) {
            break;
        }
        assert!(Instant::now() < deadline, "the counters did not grow");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let read = |campaigns: &[Campaign]| {
        let spec =
            poll::sources_for(campaigns, Duration::from_secs(1)).into_iter().find(|s| s.url == prom.url).unwrap();
        let client = client.clone();
        async move { poll::fetch_at(&client, &spec, &mut Names::default(), 0, true).await.unwrap() }
    };
    let doc = read(&campaigns).await;
    let then = value_at(Some(start as f64 / 1000.0)).await.unwrap();
    for ch in &doc.channels {
        let gained = ch.since_start.expect("a first reading says what it gained since the start");
        let want = ch.totals.impressions - then[&*ch.id] as u64;
        assert!(ch.totals.impressions >= gained.impressions, "{}", ch.id);
        assert_eq!(gained.impressions, want, "{}: from the value at the start to the value read", ch.id);
    }
    let counted = |doc: &campaign_cockpit::poll::wire::StatsDoc| {
        doc.channels.iter().map(|c| c.since_start.unwrap().impressions).sum::<u64>()
    };
    let all: u64 = doc.channels.iter().map(|c| c.totals.impressions).sum();
    assert!(counted(&doc) > 0 && counted(&doc) < all, "the exporter's past ({all} in all) is not the campaign's");
    assert!(doc.note.is_none(), "{:?}", doc.note);
    // A start before Prometheus's first scrape: counted from its oldest data, and said.
    campaigns[0].start = at(start - HOUR_MS);
    through_prometheus(&mut campaigns, &prom.url, "sum by (channel) (cockpit_sim_spend_total{campaign=\"618-promo\"})");
    let doc = read(&campaigns).await;
    let note = doc.note.clone().unwrap_or_default();
    assert!(note.starts_with("counts from ") && note.contains("Prometheus keeps nothing older"), "{note}");
    let oldest = value_at(Some(start as f64 / 1000.0 - 3600.0)).await;
    assert!(oldest.is_none(), "Prometheus has nothing an hour back");
    assert!(counted(&doc) > 0 && counted(&doc) < all, "from the oldest data on, not the counters' whole");
    drop(prom);
}
