//! Chat webhooks against a loopback receiver: each kind's message for an alert that fires and
//! then resolves, DingTalk's and Feishu's signatures checked as the platforms check them, a
//! receiver that fails at first (retried, reported, then delivered in order), and severities
//! that a target does not take left out.

use axum::extract::{Query, State};
use axum::routing::post;
use base64::Engine as _;
use campaign_cockpit::alert::{Alert, AlertKey, AlertState};
use campaign_cockpit::clock::ManualClock;
use campaign_cockpit::demo;
use campaign_cockpit::domain::Severity;
use campaign_cockpit::domain::alerting::Contingency;
use campaign_cockpit::engine::Command;
use campaign_cockpit::engine::snapshot::{CampaignView, Snapshot};
use campaign_cockpit::serve::webhook::{self, Kind, Target};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the receiver got: the query and the body of each request.
type Got = (HashMap<String, String>, serde_json::Value);

struct Receiver {
    url: String,
    got: mpsc::UnboundedReceiver<Got>,
    _task: tokio::task::JoinHandle<()>,
}

/// A receiver that answers the first `fail` requests with HTTP 500, then `answer`.
async fn receiver(fail: usize, answer: &'static str) -> Receiver {
    let (tx, got) = mpsc::unbounded_channel();
    let failures = Arc::new(AtomicUsize::new(fail));
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                move |State((tx, failures)): State<(mpsc::UnboundedSender<Got>, Arc<AtomicUsize>)>,
                      Query(q): Query<HashMap<String, String>>,
                      body: axum::body::Bytes| async move {
                    if failures.load(Ordering::SeqCst) > 0 {
                        failures.fetch_sub(1, Ordering::SeqCst);
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
                    }
                    let _ = tx.send((q, serde_json::from_slice(&body).unwrap_or_default()));
                    answer.into_response()
                },
            ),
        )
        .with_state((tx, failures));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook?access_token=abc", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { url, got, _task: task }
}

use axum::response::IntoResponse;

fn alert(state: AlertState, severity: Severity) -> Alert {
    Alert {
        key: AlertKey { campaign: "618-promo".into(), channel: "douyin".into(), rule: "health".into() },
        state,
        severity,
        since_ms: 1_000,
        fired_ms: Some(2_000),
        clear_since_ms: None,
        resolved_ms: (state == AlertState::Resolved).then_some(9_000),
        observed: None,
        expected: None,
        summary: "source failing: HTTP 503".into(),
        ack: None,
    }
}

fn snapshot(alerts: Vec<Alert>) -> Arc<Snapshot> {
    let mut c = demo::campaigns().into_iter().find(|c| c.id == "618-promo").unwrap();
    c.contingency.push(Contingency {
        rule: Some("health".into()),
        channel: None,
        plan: "read spend in the console".into(),
        owner: Some("@ops".into()),
    });
    Arc::new(Snapshot {
        now_ms: 10_000,
        campaigns: vec![Arc::new(CampaignView::new(Arc::new(c), Vec::new(), 10_000))],
        alerts: Arc::new(alerts),
        ..Default::default()
    })
}

/// The demo campaign's name, its douyin channel's name and source as a message shows it.
fn names() -> (String, String, String) {
    let c = demo::campaigns().into_iter().find(|c| c.id == "618-promo").unwrap();
    let ch = c.channel("douyin").unwrap();
    (c.name.clone(), ch.name.clone(), webhook::shown_source(&ch.source))
}

struct Run {
    snaps: watch::Sender<Arc<Snapshot>>,
    engine: mpsc::Receiver<Command>,
    task: tokio::task::JoinHandle<()>,
}

fn start(target: Target, first: Arc<Snapshot>) -> Run {
    let (snaps, rx) = watch::channel(first);
    let (etx, engine) = mpsc::channel(16);
    let clock = Arc::new(ManualClock::new(1_700_000_000_123));
    let task = tokio::spawn(webhook::run(target, rx, etx, clock));
    Run { snaps, engine, task }
}

async fn next(r: &mut Receiver) -> Got {
    tokio::time::timeout(Duration::from_secs(30), r.got.recv()).await.expect("a message").unwrap()
}

fn target(kind: Kind, url: &str, secret: Option<&str>) -> Target {
    Target {
        kind,
        url: url.into(),
        secret: secret.map(str::to_string),
        severities: vec![Severity::Crit],
        per_minute: 600,
        group_wait: Duration::ZERO,
        group_interval: Duration::ZERO,
        repeat_interval: Duration::from_secs(4 * 3600),
    }
}

#[tokio::test]
async fn each_kind_says_fired_then_resolved_in_its_platforms_shape() {
    for kind in [Kind::Json, Kind::Feishu, Kind::Dingtalk, Kind::Wecom, Kind::Slack] {
        let answer = match kind {
            Kind::Dingtalk | Kind::Wecom => r#"{"errcode":0,"errmsg":"ok"}"#,
            Kind::Feishu => r#"{"code":0,"msg":"success"}"#,
            _ => "ok",
        };
        let mut r = receiver(0, answer).await;
        let secret = matches!(kind, Kind::Feishu | Kind::Dingtalk).then_some("SEC123");
        let run = start(target(kind, &r.url, secret), snapshot(vec![alert(AlertState::Firing, Severity::Crit)]));
        let (q, fired) = next(&mut r).await;
        run.snaps.send_replace(snapshot(vec![alert(AlertState::Resolved, Severity::Crit)]));
        let (_, resolved) = next(&mut r).await;
        let text = |v: &serde_json::Value| -> String {
            match kind {
                Kind::Json | Kind::Slack => v["text"].as_str().unwrap().to_string(),
                Kind::Feishu => v["content"]["text"].as_str().unwrap().to_string(),
                Kind::Dingtalk | Kind::Wecom => v["text"]["content"].as_str().unwrap().to_string(),
            }
        };
        let (name, channel, source) = names();
        let host = webhook::host_name();
        assert_eq!(
            text(&fired),
            format!(
                "[FIRING crit] {name} (618-promo) / {channel} (douyin) · health: source failing: HTTP 503\nat 1970-01-01 08:00 +08:00 on {host} · source {source}\nfirst step: read spend in the console (@ops)"
            ),
            "{kind:?}"
        );
        assert!(
            text(&resolved).starts_with(&format!("[RESOLVED] {name} (618-promo) / {channel} (douyin) · health")),
            "{kind:?}"
        );
        match kind {
            Kind::Json => {
                assert_eq!(fired["status"], "firing");
                assert_eq!(resolved["status"], "resolved");
                assert_eq!(fired["campaign"], "618-promo");
                assert_eq!(fired["host"], webhook::host_name());
                assert_eq!(fired["alerts"][0]["plan"], "read spend in the console (@ops)");
                assert_eq!(fired["alerts"][0]["channel_name"], names().1);
            }
            Kind::Dingtalk => {
                // As DingTalk checks it: HMAC-SHA256 of "timestamp\nsecret" keyed by the secret.
                let ts = &q["timestamp"];
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"SEC123");
                let want = ring::hmac::sign(&key, format!("{ts}\nSEC123").as_bytes());
                let got = base64::engine::general_purpose::STANDARD.decode(&q["sign"]).unwrap();
                assert_eq!(got, want.as_ref(), "DingTalk's signature");
                assert_eq!(q["access_token"], "abc", "the bot's own query stays");
                assert_eq!(fired["msgtype"], "text");
            }
            Kind::Feishu => {
                let ts = fired["timestamp"].as_str().unwrap();
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, format!("{ts}\nSEC123").as_bytes());
                let want = ring::hmac::sign(&key, b"");
                let got = base64::engine::general_purpose::STANDARD.decode(fired["sign"].as_str().unwrap()).unwrap();
                assert_eq!(got, want.as_ref(), "Feishu's signature");
                assert_eq!(fired["msg_type"], "text");
            }
            Kind::Wecom => assert_eq!(fired["msgtype"], "text"),
            Kind::Slack => {}
        }
        run.task.abort();
    }
}

#[tokio::test]
async fn a_receiver_that_fails_is_retried_reported_and_then_gets_every_message_in_order() {
    // Two failures, then success.
    let mut r = receiver(2, r#"{"errcode":0}"#).await;
    let mut run = start(target(Kind::Wecom, &r.url, None), snapshot(vec![alert(AlertState::Firing, Severity::Crit)]));
    // The failure reaches the header.
    let reported = tokio::time::timeout(Duration::from_secs(30), run.engine.recv()).await.unwrap().unwrap();
    assert!(matches!(&reported, Command::Paging(Some(e)) if e.contains("HTTP 500")), "{reported:?}");
    // Resolved while the receiver is down: the resolve waits behind the fire, never lost.
    run.snaps.send_replace(snapshot(vec![alert(AlertState::Resolved, Severity::Crit)]));
    let (_, first) = next(&mut r).await;
    let (_, second) = next(&mut r).await;
    assert!(first["text"]["content"].as_str().unwrap().starts_with("[FIRING"));
    assert!(second["text"]["content"].as_str().unwrap().starts_with("[RESOLVED"));
    // And the header hears that it works again.
    let mut cleared = false;
    while let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(5), run.engine.recv()).await {
        if matches!(c, Command::Paging(None)) {
            cleared = true;
            break;
        }
    }
    assert!(cleared, "the paging failure is cleared once delivered");
    run.task.abort();
}

#[tokio::test]
async fn severities_a_target_does_not_take_stay_out() {
    let mut r = receiver(0, "ok").await;
    let info = alert(AlertState::Firing, Severity::Info);
    let mut crit = alert(AlertState::Firing, Severity::Crit);
    crit.key.channel = "tmall-ztc".into();
    let run = start(target(Kind::Slack, &r.url, None), snapshot(vec![info, crit]));
    // The info alert comes first in the list: had it been taken, it would be the first message.
    let (_, only) = next(&mut r).await;
    assert!(only["text"].as_str().unwrap().contains("(tmall-ztc) · health"), "{only}");
    run.task.abort();
}
