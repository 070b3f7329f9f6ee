//! Optimize actions against the simulator over HTTP, through the engine's run loop: apply, a
//! retry with the same key applied once, undo, a failing endpoint recorded as failed, the
//! read-only refusal, and an action cut off by a crash shown as unknown.

use campaign_cockpit::clock::ManualClock;
use campaign_cockpit::demo;
use campaign_cockpit::domain::{ChannelStatus, ControlAction};
use campaign_cockpit::engine::snapshot::Snapshot;
use campaign_cockpit::engine::{Command, Engine};
use campaign_cockpit::optimize::control::ControlRequest;
use campaign_cockpit::optimize::control::{self, Dispatch};
use campaign_cockpit::optimize::journal::{JournalEntry, Outcome};
use campaign_cockpit::optimize::recommend::Change;
use campaign_cockpit::sim::{self, SimServer, model::Network};
use campaign_cockpit::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

struct Rig {
    sim: SimServer,
    commands: mpsc::Sender<Command>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    _polls: mpsc::Sender<campaign_cockpit::poll::PollOutcome>,
    engine: tokio::task::JoinHandle<()>,
}

async fn rig(dir: &std::path::Path, read_only: bool) -> Rig {
    let sc = demo::scenario();
    let start = sc.start.unwrap().timestamp_millis();
    let clock = Arc::new(ManualClock::new(start + 3_600_000));
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, start).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim::serve(listener, Network::new(chs, inc, start), clock.clone()).unwrap();
    demo::rebase(&mut campaigns, &sim.base_url());
    let store = Store::open(&dir.join("db")).unwrap();
    for c in &campaigns {
        store.put_campaign(c).unwrap();
    }
    let sources = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_secs(1));
    let (mut engine, snapshots) = Engine::new(store, clock, &sources).unwrap();
    engine.set_read_only(read_only);
    let (poll_tx, poll_rx) = mpsc::channel(16);
    let (commands, cmd_rx) = mpsc::channel(16);
    let engine = tokio::spawn(engine.run(poll_rx, cmd_rx));
    Rig { sim, commands, snapshots, _polls: poll_tx, engine }
}

impl Rig {
    /// Waits (with a deadline, not a sleep) until the snapshot satisfies `cond`.
    async fn until(&mut self, what: &str, cond: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
        let wait = async {
            loop {
                let s = self.snapshots.borrow_and_update().clone();
                if cond(&s) {
                    return s;
                }
                self.snapshots.changed().await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    fn status(&self, campaign: &str, channel: &str) -> (ChannelStatus, f64) {
        let net = self.sim.network.lock().unwrap();
        let ch = net.channels.iter().find(|c| c.campaign == campaign && c.id == channel).unwrap();
        (ch.status, ch.daily_budget)
    }

    async fn stop(self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Shutdown(tx)).await.unwrap();
        rx.await.unwrap();
        self.engine.await.unwrap();
    }
}

fn budget(channel: &str, before: f64, after: f64) -> Change {
    Change::budget(channel, before, after)
}

fn entry(s: &Snapshot, pred: impl Fn(&JournalEntry) -> bool) -> Option<&JournalEntry> {
    s.journal.iter().find(|e| pred(e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_undo_and_failure_are_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rig(dir.path(), false).await;
    assert_eq!(r.status("618-promo", "douyin"), (ChannelStatus::Active, 8_000.0));

    // A shift: two budget changes, each journaled and applied.
    let shift = vec![budget("douyin", 8_000.0, 6_400.0), budget("tmall-ztc", 9_000.0, 10_600.0)];
    let by = "oncall".to_string();
    r.commands
        .send(Command::Apply {
            campaign: "618-promo".into(),
            changes: shift,
            recommendation: Some("618-promo/shift".into()),
            by: by.clone(),
        })
        .await
        .unwrap();
    let s = r
        .until("both applied", |s| {
            s.journal.iter().filter(|e| matches!(e.outcome, Outcome::Applied { .. })).count() == 2
        })
        .await;
    assert_eq!(r.status("618-promo", "douyin").1, 6_400.0);
    assert_eq!(r.status("618-promo", "tmall-ztc").1, 10_600.0);
    let douyin = entry(&s, |e| e.change.channel == "douyin").unwrap().clone();
    assert_eq!((douyin.by.as_str(), douyin.inverse.value), ("oncall", Some(8_000.0)));
    assert_eq!(douyin.recommendation.as_deref(), Some("618-promo/shift"));

    // The same request sent again (a retry after a lost answer) is applied once.
    let again = Dispatch {
        entry: douyin.id,
        url: format!("{}/control/618-promo", r.sim.base_url()),
        request: ControlRequest {
            channel: "douyin".into(),
            action: ControlAction::SetBudget,
            value: Some(6_400.0),
            variant: None,
            idempotency_key: douyin.idempotency_key.clone(),
        },
    };
    let answer = control::send(&campaign_cockpit::poll::client(), &again, None, control::TIMEOUT).await.unwrap();
    assert!(answer.contains("\"replayed\":true"), "{answer}");
    assert_eq!(r.status("618-promo", "douyin").1, 6_400.0);

    // Undo the last applied action (tmall-ztc's raise): the inverse goes out and is journaled.
    r.commands.send(Command::Undo { entry: None, campaign: Some("618-promo".into()), by: by.clone() }).await.unwrap();
    let s = r
        .until("the undo applied", |s| {
            s.journal.iter().any(|e| e.undo_of.is_some() && matches!(e.outcome, Outcome::Applied { .. }))
        })
        .await;
    assert_eq!(r.status("618-promo", "tmall-ztc").1, 9_000.0);
    let raised = entry(&s, |e| e.change.channel == "tmall-ztc" && e.undo_of.is_none()).unwrap();
    assert!(raised.undone_by.is_some() && !raised.undoable());

    // A pause, then its undo by entry id.
    let pause = Change {
        channel: "douyin".into(),
        action: ControlAction::Pause,
        value: None,
        variant: None,
        before: 6_400.0,
        after: 6_400.0,
    };
    r.commands
        .send(Command::Apply {
            campaign: "618-promo".into(),
            changes: vec![pause],
            recommendation: None,
            by: by.clone(),
        })
        .await
        .unwrap();
    let s = r
        .until("the pause applied", |s| {
            s.journal
                .iter()
                .any(|e| e.change.action == ControlAction::Pause && matches!(e.outcome, Outcome::Applied { .. }))
        })
        .await;
    assert_eq!(r.status("618-promo", "douyin").0, ChannelStatus::Paused);
    let id = entry(&s, |e| e.change.action == ControlAction::Pause).unwrap().id;
    r.commands.send(Command::Undo { entry: Some(id), campaign: None, by: by.clone() }).await.unwrap();
    r.until("the resume applied", |s| {
        s.journal.iter().any(|e| e.undo_of == Some(id) && matches!(e.outcome, Outcome::Applied { .. }))
    })
    .await;
    assert_eq!(r.status("618-promo", "douyin").0, ChannelStatus::Active);

    // The endpoint refuses (a negative budget): failed with the reason, nothing applied.
    r.commands
        .send(Command::Apply {
            campaign: "618-promo".into(),
            changes: vec![budget("baidu-search", 4_000.0, -5.0)],
            recommendation: None,
            by: by.clone(),
        })
        .await
        .unwrap();
    let s = r.until("the failure", |s| s.journal.iter().any(|e| matches!(e.outcome, Outcome::Failed { .. }))).await;
    let failed = entry(&s, |e| matches!(e.outcome, Outcome::Failed { .. })).unwrap();
    assert!(failed.outcome.label().contains("HTTP 400"), "{}", failed.outcome.label());
    assert!(!failed.undoable());
    assert_eq!(r.status("618-promo", "baidu-search").1, 4_000.0);
    let n = s.journal.len();
    r.stop().await;

    // After a restart the journal is all there.
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert_eq!(store.journal().unwrap().len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_at_dispatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rig(dir.path(), true).await;
    let s = r.until("the read-only flag", |s| s.read_only).await;
    assert!(s.read_only);
    r.commands
        .send(Command::Apply {
            campaign: "618-promo".into(),
            changes: vec![budget("douyin", 8_000.0, 1_000.0)],
            recommendation: None,
            by: "x".into(),
        })
        .await
        .unwrap();
    let s = r.until("the refusal", |s| s.notice.as_ref().is_some_and(|(_, t)| t.starts_with("read-only"))).await;
    assert!(s.journal.is_empty());
    assert_eq!(r.status("618-promo", "douyin").1, 8_000.0);
    r.stop().await;
}

#[test]
fn an_action_cut_off_by_a_crash_is_shown_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let change = budget("douyin", 8_000.0, 6_400.0);
    store
        .put_journal(&JournalEntry {
            id: store.next_id().unwrap(),
            at_ms: 0,
            wall_ms: 0,
            by: "oncall".into(),
            campaign: "618-promo".into(),
            inverse: change.inverse(),
            change,
            idempotency_key: "k".into(),
            recommendation: None,
            undo_of: None,
            undone_by: None,
            outcome: Outcome::Sending,
        })
        .unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let (_engine, rx) = Engine::new(store, clock, &[]).unwrap();
    let s = rx.borrow().clone();
    assert_eq!(s.journal[0].outcome, Outcome::Unknown { reason: None });
    assert!(s.journal[0].line().contains("unknown"), "{}", s.journal[0].line());
}

mod common;

/// Three simulated days of the closed-loop scenario (Douyin's CTR collapses an hour in), once
/// left alone and once following every recommendation the panel makes, reviewed every six
/// hours. Prints what following it changed for each campaign.
#[test]
fn following_the_recommendations_improves_cost_per_result() {
    use campaign_cockpit::sim::scenario::Scenario;
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios/closed-loop.toml")).unwrap();
    let sc = Scenario::parse(&text, "closed-loop.toml").unwrap();
    // (campaign, leads, orders, spend) over the three days.
    let run = |follow: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut h = common::Harness::with_scenario(dir.path(), sc.clone());
        h.run(5 * 60_000, 1, |_| {});
        let totals = |h: &common::Harness| -> Vec<(String, f64, f64, f64)> {
            let snap = h.snapshot();
            snap.campaigns
                .iter()
                .map(|c| (c.campaign.id.clone(), c.totals.leads as f64, c.totals.conversions as f64, c.totals.spend))
                .collect()
        };
        let start = totals(&h);
        let mut applied = 0;
        for _ in 0..12 {
            h.run(5 * 60_000, 6 * 12, |_| {});
            if follow {
                let recs: Vec<_> = h.snapshot().recommendations.iter().filter(|r| !r.info_only).cloned().collect();
                for r in recs {
                    h.engine.command(Command::Apply {
                        campaign: r.campaign.clone(),
                        changes: r.changes.clone(),
                        recommendation: Some(r.id.clone()),
                        by: "test".into(),
                    });
                    applied += h.answer_controls();
                }
            }
        }
        let end = totals(&h);
        let diff: Vec<(String, f64, f64, f64)> =
            end.into_iter().zip(start).map(|(e, s)| (e.0, e.1 - s.1, e.2 - s.2, e.3 - s.3)).collect();
        (diff, applied)
    };
    let (base, _) = run(false);
    let (followed, applied) = run(true);
    println!("following {applied} recommended actions over 3 days (closed-loop scenario):");
    for ((id, bl, bc, bs), (_, fl, fc, fs)) in base.iter().zip(&followed) {
        let (b_res, f_res) = if id == "q2-webinar" { (*bl, *fl) } else { (*bc, *fc) };
        println!(
            "  {id:<12} results {b_res:>8.0} → {f_res:>8.0}   spend {bs:>10.0} → {fs:>10.0}   cost per result {:>7.2} → {:>7.2}",
            bs / b_res,
            fs / f_res
        );
    }
    let cpa = |v: &Vec<(String, f64, f64, f64)>| {
        let (_, _, conv, spend) = v.iter().find(|c| c.0 == "618-promo").unwrap();
        spend / conv
    };
    assert!(applied > 0);
    assert!(cpa(&followed) < cpa(&base), "618's CPA {} with the advice vs {} without", cpa(&followed), cpa(&base));
}

/// A loopback endpoint that takes requests and never answers them, and one that answers 422.
async fn silent_and_refusing() -> (String, String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refusing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let urls = (
        format!("http://{}/control", silent.local_addr().unwrap()),
        format!("http://{}/control", refusing.local_addr().unwrap()),
    );
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                Ok((mut s, _)) = silent.accept() => {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    held.push(s);
                }
                Ok((mut s, _)) = refusing.accept() => {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let body = "unknown channel";
                    let answer = format!("HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = s.write_all(answer.as_bytes()).await;
                }
            }
        }
    });
    (urls.0, urls.1, task)
}

#[tokio::test]
async fn a_request_that_went_out_unanswered_may_have_been_applied() {
    let (silent, refusing, server) = silent_and_refusing().await;
    let request = |url: &str| Dispatch {
        entry: 1,
        url: url.to_string(),
        request: ControlRequest {
            channel: "douyin-feed".into(),
            action: ControlAction::Pause,
            value: None,
            variant: None,
            idempotency_key: "k-1".into(),
        },
    };
    let client = campaign_cockpit::poll::client();
    // Sent, and no answer: unknown, never "failed" (a retry or an undo would be a guess).
    let err = control::send(&client, &request(&silent), None, Duration::from_millis(100)).await.unwrap_err();
    assert!(
        matches!(&err, control::ControlError::Unknown(m) if m.contains("no answer") && m.contains("may have been applied")),
        "{err:?}"
    );
    // Refused by the endpoint: not applied, and not retried.
    let err = control::send(&client, &request(&refusing), None, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err, control::ControlError::NotApplied("HTTP 422: unknown channel".into()));
    // Nothing listening: nothing reached an endpoint.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/control", closed.local_addr().unwrap());
    drop(closed);
    let err = control::send(&client, &request(&url), None, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(&err, control::ControlError::NotApplied(m) if m.starts_with("cannot connect")), "{err:?}");
    server.abort();
    // The journal says so in words.
    let unknown =
        Outcome::Unknown { reason: Some("no answer within 0s (after 3 attempts); it may have been applied".into()) };
    assert!(unknown.label().starts_with("unknown: no answer"));
    assert!(!matches!(unknown, Outcome::Failed { .. }));
}
