//! The poller against the simulator on a loopback port (and a misbehaving server the test
//! starts): normal counters, a reset, a timeout, HTTP 500, malformed JSON, an oversized body,
//! and the whole pipeline poller → engine → store.

mod common;

use campaign_cockpit::clock::{Clock, ManualClock, SharedClock};
use campaign_cockpit::demo;
use campaign_cockpit::domain::ChannelKey;
use campaign_cockpit::domain::Health;
use campaign_cockpit::engine::Engine;
use campaign_cockpit::poll::{self, PollError, SourceSpec};
use campaign_cockpit::sim::model::Network;
use campaign_cockpit::sim::{self, SimServer};
use campaign_cockpit::store::Store;
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;

async fn demo_sim(clock: Arc<ManualClock>) -> SimServer {
    let campaigns = demo::campaigns();
    let sc = demo::scenario();
    let start = clock.now_ms();
    let (chs, inc) = sc.build(&campaigns, start).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::serve(listener, Network::new(chs, inc, start), clock).unwrap()
}

fn demo_start() -> i64 {
    demo::scenario().start.unwrap().timestamp_millis()
}

fn spec(url: String) -> SourceSpec {
    SourceSpec { timeout: Duration::from_millis(500), ..SourceSpec::new(&url, Duration::from_secs(1)) }
}

#[tokio::test]
async fn counters_grow_then_reset_and_errors_become_poll_errors() {
    let clock = Arc::new(ManualClock::new(demo_start()));
    let sim = demo_sim(clock.clone()).await;
    let client = poll::client();
    let promo = spec(format!("{}/stats/618-promo", sim.base_url()));
    let a = poll::fetch(&client, &promo).await.unwrap();
    assert_eq!(a.channels.len(), 6);
    clock.advance(30 * MIN);
    let b = poll::fetch(&client, &promo).await.unwrap();
    for (x, y) in a.channels.iter().zip(&b.channels) {
        assert!(y.totals.spend >= x.totals.spend && y.totals.impressions >= x.totals.impressions, "{}", x.id);
    }
    assert!(
        b.channels.iter().map(|c| c.totals.spend).sum::<f64>() > a.channels.iter().map(|c| c.totals.spend).sum::<f64>()
    );

    // The e-mail platform returns 500s from +5h for 40 minutes.
    let email = spec(format!("{}/stats/q2-webinar/email-edm", sim.base_url()));
    clock.set(demo_start() + 5 * 60 * MIN + MIN);
    assert_eq!(poll::fetch(&client, &email).await.unwrap_err(), PollError::Status(500));
    clock.advance(45 * MIN);
    assert!(poll::fetch(&client, &email).await.is_ok());

    // The demo scenario resets kuaishou's counters at +8h.
    let app = spec(format!("{}/stats/app-launch/kuaishou", sim.base_url()));
    clock.set(demo_start() + 8 * 60 * MIN - MIN);
    let before = poll::fetch(&client, &app).await.unwrap().channels[0].totals;
    clock.advance(2 * MIN);
    let after = poll::fetch(&client, &app).await.unwrap().channels[0].totals;
    assert!(after.went_backwards(&before), "{before:?} → {after:?}");

    // Unknown routes and refused connections.
    let missing = spec(format!("{}/nope", sim.base_url()));
    assert_eq!(poll::fetch(&client, &missing).await.unwrap_err(), PollError::Status(404));
    let addr = sim.addr;
    drop(sim);
    let gone = spec(format!("http://{addr}/stats"));
    let err = poll::fetch(&client, &gone).await.unwrap_err();
    assert!(matches!(err, PollError::Connect(_) | PollError::Other(_)), "{err:?}");
}

/// A server with one bad behaviour per path.
async fn hostile_server() -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/hang", get(std::future::pending::<String>))
        .route("/garbage", get(|| async { "<html>not json</html>" }))
        .route("/truncated", get(|| async { r#"{"version":1,"channels":[{"id":"a","tot"# }))
        .route("/negative", get(|| async { r#"{"version":1,"channels":[{"id":"a","totals":{"spend":-5}}]}"# }))
        .route("/huge", get(|| async { vec![b' '; 3 << 20] }))
        .route("/loop", get(|| async { axum::response::Redirect::temporary("/loop") }))
        .route("/not-found", get(|| async { (axum::http::StatusCode::NOT_FOUND, "no such campaign") }))
        .route("/unavailable", get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "later") }))
        .route("/wrong-type", get(|| async { r#"{"version":1,"channels":[{"id":"a","totals":{"clicks":"many"}}]}"# }))
        .route("/missing", get(|| async { r#"{"version":1,"channels":[{"id":"a"}]}"# }))
        .route("/infinite", get(|| async { r#"{"version":1,"channels":[{"id":"a","totals":{"spend":1e999}}]}"# }))
        .route(
            "/duplicate",
            get(|| async { r#"{"version":1,"channels":[{"id":"a","totals":{}},{"id":"a","totals":{}}]}"# }),
        )
        .route(
            "/drip",
            get(|| async {
                // One byte every 100 ms: never done within the timeout.
                let drip = futures_util::stream::unfold(0u32, |n| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    (n < 600).then(|| (Ok::<_, std::io::Error>(vec![b' ']), n + 1))
                });
                axum::body::Body::from_stream(drip)
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 << 10]));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, task)
}

#[tokio::test]
async fn hostile_sources_give_named_errors() {
    let (base, task) = hostile_server().await;
    let client = poll::client();
    let capped = |path: &str| SourceSpec { max_bytes: 1 << 20, ..spec(format!("{base}{path}")) };
    assert_eq!(
        poll::fetch(&client, &capped("/hang")).await.unwrap_err(),
        PollError::Timeout(Duration::from_millis(500))
    );
    for path in ["/garbage", "/truncated"] {
        let e = poll::fetch(&client, &capped(path)).await.unwrap_err();
        assert!(matches!(&e, PollError::BadData(m) if m.contains("not a stats document")), "{path}: {e:?}");
    }
    let e = poll::fetch(&client, &capped("/negative")).await.unwrap_err();
    assert!(matches!(&e, PollError::BadData(m) if m.contains("spend is -5")), "{e:?}");
    assert_eq!(poll::fetch(&client, &capped("/huge")).await.unwrap_err(), PollError::TooLarge(1 << 20));
    // Without a Content-Length the cap stops the read part-way.
    assert_eq!(poll::fetch(&client, &capped("/stream")).await.unwrap_err(), PollError::TooLarge(1 << 20));
    // A body trickling in is cut by the timeout like a hang.
    assert_eq!(
        poll::fetch(&client, &capped("/drip")).await.unwrap_err(),
        PollError::Timeout(Duration::from_millis(500))
    );
    let e = poll::fetch(&client, &capped("/loop")).await.unwrap_err();
    assert!(e.to_string().contains("redirect"), "{e}");
    assert_eq!(poll::fetch(&client, &capped("/not-found")).await.unwrap_err(), PollError::Status(404));
    assert_eq!(poll::fetch(&client, &capped("/unavailable")).await.unwrap_err(), PollError::Status(503));
    for (path, says) in
        [("/wrong-type", "clicks"), ("/missing", "totals"), ("/infinite", "spend"), ("/duplicate", "duplicate")]
    {
        let e = poll::fetch(&client, &capped(path)).await.unwrap_err();
        assert!(matches!(&e, PollError::BadData(m) if m.contains(says)), "{path}: {e:?}");
    }
    // A name that does not resolve.
    let e = poll::fetch(&client, &spec("http://no-such-host.invalid/stats".into())).await.unwrap_err();
    assert!(matches!(e, PollError::Connect(_) | PollError::Other(_) | PollError::Timeout(_)), "{e:?}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_feed_the_engine_and_the_store() {
    let clock = Arc::new(ManualClock::new(demo_start()));
    let sim = demo_sim(clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let mut campaigns = demo::campaigns();
    demo::rebase(&mut campaigns, &sim.base_url());
    for c in &campaigns {
        store.put_campaign(c).unwrap();
    }
    let sources: Vec<SourceSpec> = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_millis(100))
        .into_iter()
        .map(|s| SourceSpec { timeout: Duration::from_secs(2), ..s })
        .collect();
    assert_eq!(sources.len(), 5, "channels sharing a URL share a source");
    let shared: SharedClock = clock.clone();
    let (engine, mut snapshots) = Engine::new(store, shared.clone(), &sources).unwrap();
    let (poll_tx, poll_rx) = tokio::sync::mpsc::channel(64);
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(4);
    let pollers = poll::spawn(sources, 4, shared, poll_tx);
    let engine_task = tokio::spawn(engine.run(poll_rx, cmd_rx));
    // Advance simulated time on every snapshot until the webinar has data from two readings.
    let key = ChannelKey::new("q2-webinar", "baidu-search");
    let snap = loop {
        snapshots.changed().await.unwrap();
        let s = snapshots.borrow_and_update().clone();
        clock.advance(MIN);
        let ch = s.channel(&key).cloned();
        if ch.is_some_and(|c| c.recent.len() >= 3) && s.sources.iter().all(|x| x.health == Health::Ok) {
            break s;
        }
    };
    let ch = snap.channel(&key).unwrap();
    assert!(ch.totals.spend > 0.0 && ch.totals.clicks > 0);
    assert_eq!(ch.health, Health::Ok);
    for p in pollers {
        p.abort();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    cmd_tx.send(campaign_cockpit::engine::Command::Shutdown(tx)).await.unwrap();
    rx.await.unwrap();
    engine_task.await.unwrap();
    // What the engine showed is what it stored.
    let store = Store::open(&dir.path().join("db")).unwrap();
    let cur = store.cursor(&key).unwrap().unwrap();
    assert!(cur.totals.spend >= ch.totals.spend);
    assert!(!store.samples(&key, 0, i64::MAX).unwrap().is_empty());
}

/// The source token goes to the source as a bearer token, and a redirect to another host does
/// not carry it along.
#[tokio::test]
async fn tokens_reach_the_source_but_not_a_redirect_to_another_host() {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let echo = |h: axum::http::HeaderMap| async move {
        let auth = h.get("authorization").map_or("none".to_string(), |v| v.to_str().unwrap_or("?").to_string());
        format!(r#"{{"version":1,"channels":[{{"id":"{}","totals":{{}}}}]}}"#, auth.replace(' ', "_"))
    };
    let app = axum::Router::new().route("/echo", get(echo)).route(
        "/away",
        get(move || async move { axum::response::Redirect::temporary(&format!("http://localhost:{port}/echo")) }),
    );
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = poll::client();
    let with_token = |path: &str| SourceSpec {
        token: Some(poll::Secret::new("s3cr3t-token")),
        ..spec(format!("http://127.0.0.1:{port}{path}"))
    };
    let doc = poll::fetch(&client, &with_token("/echo")).await.unwrap();
    assert_eq!(&*doc.channels[0].id, "Bearer_s3cr3t-token");
    let doc = poll::fetch(&client, &with_token("/away")).await.unwrap();
    assert_eq!(&*doc.channels[0].id, "none", "the token followed a redirect to another host");
    assert_eq!(format!("{:?}", with_token("/echo").token), "Some([hidden])");
    task.abort();
}

/// Polled every second, a source is asked for its segments only where they change what is
/// stored: the answers in between come without (`segments=0`), and a source that refuses the
/// parameter is asked for everything whole from then on.
#[tokio::test]
async fn answers_between_minute_edges_are_asked_for_without_segments() {
    let clock = Arc::new(ManualClock::new(demo_start()));
    let sim = demo_sim(clock.clone()).await;
    let client = poll::client();
    let promo = spec(format!("{}/stats/618-promo", sim.base_url()));
    let mut names = poll::wire::Names::default();
    names.skim_segments(Duration::from_secs(1), MIN);
    let mut with_segments = Vec::new();
    for i in 0..120 {
        clock.set(demo_start() + i * 1000);
        let doc = poll::fetch_at(&client, &promo, &mut names, clock.now_ms(), false).await.unwrap();
        assert_eq!(doc.channels.len(), 6, "answer {i}");
        assert!(doc.channels.iter().all(|c| c.totals.impressions > 0), "answer {i}");
        if doc.channels.iter().any(|c| !c.segments.is_empty()) {
            with_segments.push(i);
        }
    }
    // The demo starts on the minute: the first and the last answer of each minute.
    assert_eq!(with_segments, [0, 59, 60, 119], "answers with segments");

    // A source that answers 400 to the parameter.
    use axum::routing::get;
    let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = asked.clone();
    let app = axum::Router::new().route(
        "/stats",
        get(move |uri: axum::http::Uri| {
            let log = log.clone();
            async move {
                let q = uri.query().unwrap_or("").to_string();
                let n = {
                    let mut l = log.lock().unwrap();
                    l.push(q.clone());
                    l.len()
                };
                if q.contains("segments=0") {
                    return (axum::http::StatusCode::BAD_REQUEST, "unknown parameter segments".to_string());
                }
                let body = format!(r#"{{"version":1,"channels":[{{"id":"a","totals":{{"clicks":{n}}}}}]}}"#);
                (axum::http::StatusCode::OK, body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stats?key=1", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let strict = spec(url);
    let mut names = poll::wire::Names::default();
    names.skim_segments(Duration::from_secs(1), MIN);
    let t0 = demo_start();
    for i in 0..5 {
        let doc = poll::fetch_at(&client, &strict, &mut names, t0 + 10_000 + i * 1000, false).await.unwrap();
        assert_eq!(doc.channels[0].id.as_ref(), "a");
    }
    server.abort();
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked, ["key=1", "key=1&segments=0", "key=1", "key=1", "key=1", "key=1"], "requests made");
}
