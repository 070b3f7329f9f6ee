//! A real Alertmanager (the Debian package `prometheus-alertmanager`, which `.ci/run`
//! installs) gets `cockpit serve`'s alerts: a failing source's alert shows in its
//! `GET /api/v2/alerts` with our labels and the contingency plan, and resolves when the
//! source is back; a silence made in an attached cockpit becomes an Alertmanager silence that
//! suppresses it; an Alertmanager that is down is reported and retried. Without the binary a
//! plain `cargo test` says the test was skipped; with `CI` set it fails instead.

use campaign_cockpit::clock::SystemClock;
use campaign_cockpit::demo;
use campaign_cockpit::domain::alerting::Contingency;
use campaign_cockpit::domain::campaign::Interval;
use campaign_cockpit::sim::{self, model::Network};
use campaign_cockpit::store::Store;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .flat_map(|d| [d.join("prometheus-alertmanager"), d.join("alertmanager")])
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus-alertmanager is not installed; .ci/run installs the Debian package"
        );
        eprintln!("skipped: prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)");
    }
    found
}

/// A child process killed and waited for when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_alertmanager(bin: &Path, dir: &Path, port: u16) -> Proc {
    let config = dir.join("alertmanager.yml");
    std::fs::write(&config, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n").unwrap();
    let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
    Proc(
        Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("alertmanager starts"),
    )
}

/// Asks `url` until `ok` holds for its JSON answer (at most 60 s; each try waits for the
/// answer, the tries are 200 ms apart).
async fn until(url: &str, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let client = campaign_cockpit::poll::client();
    for _ in 0..300 {
        if let Ok(r) = client.get(url).send().await
            && let Ok(v) = r.json::<serde_json::Value>().await
            && ok(&v)
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what} at {url}");
}

fn ours(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == "CockpitHealth" && a["labels"]["campaign"] == "618-promo")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_pages_through_alertmanager_and_resolves_when_it_is_back() {
    let Some(bin) = binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    // 618-promo's source: a port nothing listens on yet.
    let source_port = free_port();
    let now = chrono::Utc::now().timestamp_millis();
    let sc = demo::scenario();
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, now).unwrap();
    let net = Network::new(chs, inc, now);
    demo::rebase(&mut campaigns, &format!("http://127.0.0.1:{source_port}"));
    campaigns.retain(|c| c.id == "618-promo");
    let c = &mut campaigns[0];
    c.alerts.health.for_ = Some(Interval(Duration::ZERO));
    c.alerts.health.keep_firing_for = Some(Interval(Duration::ZERO));
    c.contingency.push(Contingency {
        rule: Some("health".into()),
        channel: None,
        plan: "read spend in the platform console".into(),
        owner: Some("@ops".into()),
    });
    c.channels.truncate(1);
    let store = Store::open(&dir.path().join("db")).unwrap();
    store.put_campaign(c).unwrap();
    drop(store);
    // The service pages an Alertmanager that is not up yet: it says so and retries.
    let am_port = free_port();
    let am_url = format!("http://127.0.0.1:{am_port}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", &dir.path().join("db").display().to_string(), "--interval", "1s", "serve"])
        .args(["--alertmanager", &am_url])
        .env_remove("COCKPIT_DB")
        .env("COCKPIT_CONFIG", dir.path().join("no-config.toml"))
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .env("COCKPIT_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let serve = Proc(serve);
    let (log_tx, mut log_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            let _ = log_tx.send(l);
        }
    });
    let mut sock = None;
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = log_rx.recv().await {
            if let Some(p) = l.split("cockpit serve: listening on ").nth(1) {
                sock = Some(PathBuf::from(p.trim()));
            }
            if l.contains(&format!("Alertmanager {am_url}/api/v2/alerts")) {
                return l;
            }
        }
        panic!("the service ended");
    })
    .await
    .expect("a failed delivery is logged");
    let sock = sock.expect("the service said where it listens");
    assert!(waited.contains("again in"), "{waited}");
    let _am = start_alertmanager(&bin, dir.path(), am_port);
    let alerts = format!("{am_url}/api/v2/alerts");
    let found = until(&alerts, "the health alert", |v| !ours(v).is_empty()).await;
    let a = &ours(&found)[0];
    assert_eq!(a["labels"]["channel"], c.channels[0].id.as_str());
    assert_eq!(a["labels"]["rule"], "health");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["annotations"]["runbook"], "read spend in the platform console (@ops)");
    assert!(a["annotations"]["summary"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(a["status"]["state"], "active");
    // Silenced in an attached cockpit: a silence in Alertmanager, by the user, which
    // suppresses the alert there.
    let target = campaign_cockpit::serve::client::Target::Unix(sock);
    let attached = campaign_cockpit::serve::client::attach(&target, "dana", false).await.unwrap();
    let key = campaign_cockpit::alert::AlertKey {
        campaign: "618-promo".into(),
        channel: c.channels[0].id.clone(),
        rule: "health".into(),
    };
    let cmd = campaign_cockpit::engine::Command::Silence { key, for_ms: 3_600_000, by: "dana".into() };
    attached.commands.send(cmd).await.unwrap();
    let silences = until(&format!("{am_url}/api/v2/silences"), "the silence", |v| {
        v.as_array().is_some_and(|s| s.iter().any(|s| s["status"]["state"] == "active"))
    })
    .await;
    let silence = silences.as_array().unwrap().iter().find(|s| s["status"]["state"] == "active").unwrap();
    assert_eq!(silence["createdBy"], "dana");
    let matchers: Vec<(String, String)> = silence["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m["value"].as_str().unwrap().to_string()))
        .collect();
    assert!(matchers.contains(&("campaign".into(), "618-promo".into())), "{matchers:?}");
    assert!(matchers.contains(&("channel".into(), c.channels[0].id.clone())), "{matchers:?}");
    assert!(matchers.contains(&("rule".into(), "health".into())), "{matchers:?}");
    let ends = chrono::DateTime::parse_from_rfc3339(silence["endsAt"].as_str().unwrap()).unwrap().timestamp_millis();
    let left = ends - chrono::Utc::now().timestamp_millis();
    assert!((3_500_000..=3_600_000).contains(&left), "an hour: {left} ms left");
    until(&alerts, "the alert suppressed", |v| ours(v).iter().any(|a| a["status"]["state"] == "suppressed")).await;
    drop(attached);
    // The source comes up: the alert resolves, and Alertmanager hears of it.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", source_port)).await.unwrap();
    let _sim = sim::serve(listener, net, Arc::new(SystemClock)).unwrap();
    until(&alerts, "the resolve", |v| v.as_array().is_some() && ours(v).is_empty()).await;
    drop(serve);
}
