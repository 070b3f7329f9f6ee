//! `cockpit serve` with clients attached: several cockpits see one state and what one does
//! shows in the others; the headless commands run through the service; a restarted service
//! is attached to again; a read-only client takes no action.

use campaign_cockpit::clock::SystemClock;
use campaign_cockpit::demo;
use campaign_cockpit::engine::Command as EngineCommand;
use campaign_cockpit::engine::snapshot::Snapshot;
use campaign_cockpit::serve::client::{self, Attached};
use campaign_cockpit::sim::{self, SimServer, model::Network};
use campaign_cockpit::store::Store;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A service on its own database, stopped (and waited for) when dropped.
struct Service {
    child: Option<Child>,
    sock: PathBuf,
}

impl Service {
    fn target(&self) -> client::Target {
        client::Target::Unix(self.sock.clone())
    }

    /// Starts `cockpit serve` on `db` and waits for the line saying where it listens.
    fn start(dir: &Path) -> Service {
        Service::start_with(dir, &[], &[])
    }

    fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cockpit"))
            .args(["--db", &dir.join("db").display().to_string(), "--interval", "1s", "serve"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("COCKPIT_DB")
            .env("COCKPIT_CONFIG", dir.join("no-config.toml"))
            .env("XDG_STATE_HOME", dir)
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("COCKPIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let sock = loop {
            let line = lines.next().expect("the service said where it listens").unwrap();
            if let Some(p) = line.split("cockpit serve: listening on ").nth(1) {
                break PathBuf::from(p.trim());
            }
        };
        // The rest of the log is read and dropped, so the service never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Service { child: Some(child), sock }
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The demo campaigns in a new database, read from a simulator on the real clock.
async fn setup(dir: &Path) -> SimServer {
    let sc = demo::scenario();
    let now = chrono::Utc::now().timestamp_millis();
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, now).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = sim::serve(listener, Network::new(chs, inc, now), Arc::new(SystemClock)).unwrap();
    demo::rebase(&mut campaigns, &server.base_url());
    // One channel whose source is not there, for an alert to acknowledge (at once: the
    // health rule's hold-down is for pages, not for this test).
    campaigns[0].channels[0].source = "http://127.0.0.1:9/stats".into();
    campaigns[0].alerts.health.for_ = Some(campaign_cockpit::domain::campaign::Interval(Duration::ZERO));
    let store = Store::open(&dir.join("db")).unwrap();
    for c in &campaigns {
        store.put_campaign(c).unwrap();
    }
    drop(store);
    server
}

fn cockpit(dir: &Path, args: &[&str]) -> Output {
    cockpit_with(dir, args, &[])
}

fn cockpit_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", &dir.join("db").display().to_string()])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("COCKPIT_DB")
        .env("COCKPIT_CONFIG", dir.join("no-config.toml"))
        .env("XDG_STATE_HOME", dir)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("USER", "dana")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Waits (on the client's own notifications, at most 30 s) until its state passes `ok`.
async fn until(a: &mut Attached, what: &str, ok: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
    let wait = async {
        loop {
            let s = a.snapshots.borrow_and_update().clone();
            if ok(&s) {
                return s;
            }
            a.snapshots.changed().await.expect("the client is running");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn quit(a: Attached) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.commands.send(EngineCommand::Shutdown(tx)).await.unwrap();
    rx.await.unwrap();
    a.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_see_one_state_and_what_one_does_shows_in_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let _sim = setup(dir.path()).await;
    let svc = Service::start(dir.path());
    let mut clients = Vec::new();
    for user in ["alice", "bob", "carol"] {
        clients.push(client::attach(&svc.target(), user, false).await.unwrap());
    }
    let mut watcher = client::attach(&svc.target(), "eve", true).await.unwrap();
    for c in &mut clients {
        let s = until(c, "the campaigns", |s| s.campaigns.len() == 3).await;
        assert!(s.service.as_deref().is_some_and(|t| t.starts_with("service ")), "{:?}", s.service);
        assert!(!s.read_only);
    }
    // The channel without a source fails: every client sees the one alert.
    let firing = |s: &Snapshot| {
        s.alerts
            .iter()
            .find(|a| a.key.rule == "health" && a.state == campaign_cockpit::alert::AlertState::Firing)
            .cloned()
    };
    let alert = firing(&*until(&mut clients[0], "the health alert", |s| firing(s).is_some()).await).unwrap();
    // Bob acknowledges it; Alice and Carol see his name on it.
    clients[1].commands.send(EngineCommand::Ack { key: alert.key.clone(), by: "ignored".into() }).await.unwrap();
    for i in [0, 2] {
        until(&mut clients[i], "bob's ack", |s| {
            s.alerts.iter().any(|a| a.key == alert.key && a.ack.as_ref().is_some_and(|k| k.by == "bob"))
        })
        .await;
    }
    // Carol notes something; Alice and Bob see it, as hers.
    let note = EngineCommand::Note {
        campaign: "618-promo".into(),
        channel: None,
        text: "launch moved to 10:00".into(),
        by: "ignored".into(),
    };
    clients[2].commands.send(note).await.unwrap();
    for i in [0, 1] {
        until(&mut clients[i], "carol's note", |s| {
            s.notes.iter().any(|n| n.text == "launch moved to 10:00" && n.by == "carol")
        })
        .await;
    }
    // A chart is this client's own.
    let key = campaign_cockpit::domain::ChannelKey::new("618-promo", "douyin");
    let window = campaign_cockpit::engine::snapshot::Window::Hour;
    clients[0].commands.send(EngineCommand::Series { key: key.clone(), window }).await.unwrap();
    until(&mut clients[0], "the series", |s| s.series.as_ref().is_some_and(|v| v.key == key)).await;
    assert!(clients[1].snapshots.borrow().series.is_none(), "another client's chart is not sent to bob");
    // The read-only client sees everything and may do nothing that moves money.
    let s = until(&mut watcher, "the read-only state", |s| firing(s).is_some()).await;
    assert!(s.read_only, "the header says READ-ONLY");
    let undo = EngineCommand::Undo { entry: None, campaign: Some("618-promo".into()), by: "eve".into() };
    watcher.commands.send(undo).await.unwrap();
    until(&mut watcher, "the refusal", |s| s.notice.as_ref().is_some_and(|(_, t)| t.contains("read-only"))).await;
    for c in clients {
        quit(c).await;
    }
    quit(watcher).await;
    assert!(svc.stop().success(), "SIGTERM flushes and exits 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_through_the_service_and_a_restart_is_attached_to_again() {
    let dir = tempfile::tempdir().unwrap();
    let _sim = setup(dir.path()).await;
    let svc = Service::start(dir.path());
    let mut a = client::attach(&svc.target(), "alice", false).await.unwrap();
    until(&mut a, "the campaigns", |s| s.campaigns.len() == 3).await;
    let ok = |o: &Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(ok(&cockpit(dir.path(), &["campaign", "list"])).contains("618-promo"));
    assert!(ok(&cockpit(dir.path(), &["journal"])).contains("the journal is empty"));
    let report = ok(&cockpit(dir.path(), &["report", "618-promo"]));
    assert!(report.contains("618"), "{report}");
    let out = dir.path().join("plan.toml");
    let o = cockpit(dir.path(), &["campaign", "export", "618-promo", "-o", &out.display().to_string()]);
    ok(&o);
    assert!(std::fs::read_to_string(&out).unwrap().contains("618-promo"), "written here, not by the service");
    // A note from the command line is the engine's at once, by the user who wrote it.
    ok(&cockpit(dir.path(), &["note", "add", "--campaign", "618-promo", "creative", "swapped"]));
    until(&mut a, "the command line's note", |s| {
        s.notes.iter().any(|n| n.text == "creative swapped" && n.by == "dana")
    })
    .await;
    assert!(ok(&cockpit(dir.path(), &["note", "list", "--campaign", "618-promo"])).contains("creative swapped"));
    // A check reads the service's state; its exit code says what fires.
    let check = cockpit(dir.path(), &["check"]);
    assert!(matches!(check.status.code(), Some(0..=2)), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("firing"));
    // A bad campaign id is the user's error, named, exit 2.
    let bad = cockpit(dir.path(), &["report", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no campaign 'nope'"));
    // A backup while the service runs, written where this side asked, by the service.
    let backup = dir.path().join("backup.db");
    let o = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", &dir.path().join("db").display().to_string(), "db", "backup", "backup.db"])
        .current_dir(dir.path())
        .env_remove("COCKPIT_DB")
        .env("COCKPIT_CONFIG", dir.path().join("no-config.toml"))
        .env("XDG_STATE_HOME", dir.path())
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(backup.exists());
    assert!(ok(&cockpit(dir.path(), &["db", "check"])).contains("every record reads back"));
    let copy = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", &backup.display().to_string(), "campaign", "list"])
        .env("COCKPIT_CONFIG", dir.path().join("no-config.toml"))
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&copy.stdout).contains("618-promo"), "the backup opens on its own");
    // A campaign imported or removed shows at once in the attached cockpit.
    let past = &demo::past_campaigns()[0];
    let file = dir.path().join("past.toml");
    std::fs::write(&file, past.to_toml()).unwrap();
    assert!(ok(&cockpit(dir.path(), &["campaign", "import", &file.display().to_string()])).contains("imported"));
    until(&mut a, "the imported campaign", |s| s.campaign(&past.id).is_some() && s.campaigns.len() == 4).await;
    std::fs::write(&file, "id = \"broken\"\nname = 3\n").unwrap();
    let bad = cockpit(dir.path(), &["campaign", "import", &file.display().to_string()]);
    assert_eq!(bad.status.code(), Some(2), "a bad file is refused here, before the service sees it");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("past.toml"));
    assert!(ok(&cockpit(dir.path(), &["campaign", "rm", &past.id])).contains("removed"));
    until(&mut a, "the removal", |s| s.campaign(&past.id).is_none() && s.campaigns.len() == 3).await;
    // A campaign edited in $EDITOR and a task marked done show at once too.
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/^total_budget = .*/total_budget = 777000.0/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = [("VISUAL", editor.to_str().unwrap())];
    assert!(ok(&cockpit_with(dir.path(), &["campaign", "edit", "app-launch"], &env)).contains("updated"));
    until(&mut a, "the edit", |s| s.campaign("app-launch").is_some_and(|c| c.campaign.total_budget == 777000.0)).await;
    let done = ok(&cockpit(dir.path(), &["task", "done", "app-launch", "week-2", "budget"]));
    assert_eq!(done.trim(), "task done: Week-2 budget increase signed off on app-launch");
    let s = until(&mut a, "the task done", |s| {
        s.campaign("app-launch").is_some_and(|c| c.campaign.tasks[3].done_by.as_deref() == Some("dana"))
    })
    .await;
    assert!(s.notes.iter().any(|n| n.text.starts_with("task done: Week-2") && n.by == "dana"));
    let listed = ok(&cockpit(dir.path(), &["task", "list", "--campaign", "app-launch"]));
    assert!(listed.lines().any(|l| l.contains(" 4  done") && l.contains("by dana")), "{listed}");
    let nope = cockpit(dir.path(), &["task", "done", "app-launch", "launch", "party"]);
    assert_eq!(nope.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nope.stderr).contains("has no task 'launch party'"));
    // The service stops: the client says so, and attaches again to the next one.
    assert!(svc.stop().success());
    until(&mut a, "the service gone", |s| s.service.as_deref().is_some_and(|t| t.contains("SERVICE GONE"))).await;
    let again = Service::start(dir.path());
    let s = until(&mut a, "the new service", |s| s.service.as_deref().is_some_and(|t| t.starts_with("service "))).await;
    assert_eq!(s.campaigns.len(), 3);
    assert!(s.notes.iter().any(|n| n.text == "creative swapped"), "the note was flushed with the first service");
    quit(a).await;
    assert!(again.stop().success());
}

/// What a client sends that is not a message gets an error answer and a log line; a frame
/// larger than allowed ends that client's connection; the service goes on serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_answered_and_never_stop_the_service() {
    use campaign_cockpit::serve::wire::{self, Frame, ToClient, ToService};
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let _sim = setup(dir.path()).await;
    let svc = Service::start(dir.path());
    let mut raw = tokio::net::UnixStream::connect(&svc.sock).await.unwrap();
    // Not a hello: refused, named.
    wire::write(&mut raw, &ToService::Watch).await.unwrap();
    match wire::read::<_, ToClient>(&mut raw).await.unwrap() {
        Some(Frame::Message(ToClient::Refused { reason })) => assert!(reason.contains("hello"), "{reason}"),
        other => panic!("{:?}", other.map(|f| matches!(f, Frame::Message(_)))),
    }
    // After a hello, garbage gets an error answer and the connection stays.
    let mut c = tokio::net::UnixStream::connect(&svc.sock).await.unwrap();
    let hello = ToService::Hello { version: wire::API_VERSION, user: "mallory".into(), read_only: false, token: None };
    wire::write(&mut c, &hello).await.unwrap();
    assert!(matches!(wire::read::<_, ToClient>(&mut c).await.unwrap(), Some(Frame::Message(ToClient::Welcome { .. }))));
    c.write_all(&7u32.to_be_bytes()).await.unwrap();
    c.write_all(b"{\"type\"").await.unwrap();
    match wire::read::<_, ToClient>(&mut c).await.unwrap() {
        Some(Frame::Message(ToClient::Error { message })) => assert!(message.contains("not a message"), "{message}"),
        _ => panic!("an error answer"),
    }
    wire::write(&mut c, &ToService::Run { id: 7, args: vec!["journal".into()] }).await.unwrap();
    match wire::read::<_, ToClient>(&mut c).await.unwrap() {
        Some(Frame::Message(ToClient::Done { id: 7, status: 0, .. })) => {}
        _ => panic!("the connection goes on after a bad frame"),
    }
    // A wrong API version is refused with the one spoken.
    let mut old = tokio::net::UnixStream::connect(&svc.sock).await.unwrap();
    let hello = ToService::Hello { version: 99, user: "x".into(), read_only: false, token: None };
    wire::write(&mut old, &hello).await.unwrap();
    match wire::read::<_, ToClient>(&mut old).await.unwrap() {
        Some(Frame::Message(ToClient::Refused { reason })) => {
            assert!(reason.contains(&format!("version {}", wire::API_VERSION)), "{reason}")
        }
        _ => panic!("refused"),
    }
    // An oversized frame ends that connection only.
    c.write_all(&(wire::MAX_FRAME as u32 + 1).to_be_bytes()).await.unwrap();
    loop {
        match wire::read::<_, ToClient>(&mut c).await {
            Ok(Some(Frame::Message(ToClient::Error { .. }))) | Ok(Some(Frame::Message(ToClient::Snapshot { .. }))) => {}
            Ok(None) | Err(_) => break,
            Ok(Some(_)) => {}
        }
    }
    let mut a = client::attach(&svc.target(), "alice", false).await.unwrap();
    until(&mut a, "the service still serving", |s| s.campaigns.len() == 3).await;
    quit(a).await;
    assert!(svc.stop().success());
}

/// `kill -9` of the service while a client is attached loses no acknowledged write: the ack
/// and the note are there when a new service starts, and the client attaches to it by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let _sim = setup(dir.path()).await;
    let svc = Service::start(dir.path());
    let mut a = client::attach(&svc.target(), "alice", false).await.unwrap();
    let firing = |s: &Snapshot| {
        s.alerts
            .iter()
            .find(|a| a.key.rule == "health" && a.state == campaign_cockpit::alert::AlertState::Firing)
            .cloned()
    };
    let alert = firing(&*until(&mut a, "the health alert", |s| firing(s).is_some()).await).unwrap();
    a.commands.send(EngineCommand::Ack { key: alert.key.clone(), by: "alice".into() }).await.unwrap();
    let note =
        EngineCommand::Note { campaign: "618-promo".into(), channel: None, text: "kept".into(), by: "alice".into() };
    a.commands.send(note).await.unwrap();
    // Seen by the client: the engine has stored both.
    until(&mut a, "the ack and the note", |s| {
        s.alerts.iter().any(|x| x.key == alert.key && x.ack.is_some()) && s.notes.iter().any(|n| n.text == "kept")
    })
    .await;
    let mut svc = svc;
    let mut child = svc.child.take().unwrap();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed");
    until(&mut a, "the service gone", |s| s.service.as_deref().is_some_and(|t| t.contains("SERVICE GONE"))).await;
    let again = Service::start(dir.path());
    let s = until(&mut a, "the new service's state", |s| {
        s.service.as_deref().is_some_and(|t| t.starts_with("service ")) && s.notes.iter().any(|n| n.text == "kept")
    })
    .await;
    let acked = s.alerts.iter().find(|x| x.key == alert.key).and_then(|x| x.ack.clone());
    assert_eq!(acked.map(|k| k.by), Some("alice".into()), "the ack survived kill -9");
    quit(a).await;
    assert!(again.stop().success());
}

/// Over TCP a client must give the service's token; with it, the cockpit and the commands
/// attach through `--service HOST:PORT` as through the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_the_token_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let _sim = setup(dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let svc =
        Service::start_with(dir.path(), &["--listen", &addr], &[("COCKPIT_SERVICE_TOKEN", "s3cr3t-service-token")]);
    let tcp = |token: Option<&str>| client::Target::Tcp {
        addr: addr.clone(),
        token: token.map(campaign_cockpit::poll::Secret::new),
    };
    for bad in [None, Some("wrong")] {
        match client::attach(&tcp(bad), "mallory", false).await {
            Err(client::AttachError::Refused { reason, .. }) => assert!(reason.contains("token"), "{reason}"),
            other => panic!("{bad:?}: {:?}", other.err()),
        }
    }
    let mut a = client::attach(&tcp(Some("s3cr3t-service-token")), "alice", false).await.unwrap();
    until(&mut a, "the campaigns over TCP", |s| s.campaigns.len() == 3).await;
    let o = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--service", &addr, "campaign", "list"])
        .env_remove("COCKPIT_DB")
        .env("COCKPIT_CONFIG", dir.path().join("no-config.toml"))
        .env("XDG_STATE_HOME", dir.path())
        .env("COCKPIT_SERVICE_TOKEN", "s3cr3t-service-token")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("618-promo"));
    quit(a).await;
    assert!(svc.stop().success());
}

/// A client that asks and never reads fills its socket; the service goes on for everyone else
/// (each client has its own task, and a frame is built from the latest state only when its
/// socket can take it), and the stalled client, once it reads, gets every answer and then the
/// state as it is now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_slows_nobody() {
    use campaign_cockpit::serve::wire::{self, Frame, ToClient, ToService};
    let dir = tempfile::tempdir().unwrap();
    let _sim = setup(dir.path()).await;
    let svc = Service::start(dir.path());
    let (mut stalled, mut asking) = tokio::net::UnixStream::connect(&svc.sock).await.unwrap().into_split();
    // Reports it never reads: far more than a socket holds. Asked from a task of its own, as
    // the service stops reading them too once its answers back up.
    const ASKED: u64 = 400;
    let asker = tokio::spawn(async move {
        let hello = ToService::Hello { version: wire::API_VERSION, user: "slow".into(), read_only: false, token: None };
        wire::write(&mut asking, &hello).await.unwrap();
        wire::write(&mut asking, &ToService::Watch).await.unwrap();
        for id in 0..ASKED {
            let run = ToService::Run { id, args: vec!["report".into(), "618-promo".into()] };
            wire::write(&mut asking, &run).await.unwrap();
        }
        asking
    });
    // Meanwhile another client sees the state move and acts.
    let mut other = client::attach(&svc.target(), "alice", false).await.unwrap();
    let first = until(&mut other, "the campaigns", |s| s.campaigns.len() == 3).await;
    let moved = |s: &Snapshot| s.now_ms >= first.now_ms + 3_000;
    until(&mut other, "three more seconds of data", moved).await;
    let note =
        EngineCommand::Note { campaign: "618-promo".into(), channel: None, text: "still here".into(), by: "x".into() };
    other.commands.send(note).await.unwrap();
    until(&mut other, "the note", |s| s.notes.iter().any(|n| n.text == "still here")).await;
    // The stalled client's answers waited in its socket: it reads them all, then the state.
    let mut pending = 0i32;
    // SAFETY: FIONREAD on a socket this test owns writes one int.
    let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(stalled.as_ref()), libc::FIONREAD, &mut pending) };
    assert_eq!(r, 0);
    assert!(pending > 64 * 1024, "the socket filled up: {pending} bytes waiting");
    let (mut done, mut notes_seen) = (0, false);
    while done < ASKED || !notes_seen {
        match tokio::time::timeout(Duration::from_secs(60), wire::read::<_, ToClient>(&mut stalled)).await {
            Ok(Ok(Some(Frame::Message(ToClient::Done { status, output, .. })))) => {
                assert_eq!(status, 0, "{output}");
                done += 1;
            }
            Ok(Ok(Some(Frame::Message(ToClient::Snapshot { delta })))) => {
                notes_seen |= delta.notes.is_some_and(|n| n.0.iter().any(|n| n.text == "still here"));
            }
            Ok(Ok(Some(Frame::Message(_)))) => {}
            other => panic!("the stalled client's stream: {:?}", other.map(|r| r.map(|f| f.is_some()))),
        }
    }
    drop((stalled, asker.await.unwrap()));
    quit(other).await;
    assert!(svc.stop().success());
}
