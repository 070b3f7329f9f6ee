//! End to end: the real `cockpit demo` binary in a pseudo-terminal, its screen read through the
//! vt100 terminal emulator. Waits are on screen conditions with a generous deadline, never on
//! fixed sleeps.

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Session {
    parser: vt100::Parser,
    raw: Vec<u8>,
    rx: mpsc::Receiver<Vec<u8>>,
    writer: Option<Box<dyn Write + Send>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
    /// Tells the reader to let go of its end of the terminal.
    hang_up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Session {
    /// Runs the cockpit with its XDG directories (logs, config) inside `home`.
    fn start(home: &std::path::Path, args: &[&str]) -> Session {
        Session::start_with(home, args, &[])
    }

    fn start_with(home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Session {
        Session::spawn(home, env!("CARGO_BIN_EXE_cockpit"), args, env)
    }

    /// Runs `program` (the cockpit, or a wrapper that execs it) with `args`.
    fn spawn(home: &std::path::Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Session {
        let pair =
            native_pty_system().openpty(PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 }).unwrap();
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        for var in ["XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"] {
            cmd.env(var, home);
        }
        cmd.env_remove("COCKPIT_CONFIG");
        cmd.env_remove("COCKPIT_DB");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        // The reader's own descriptor of the master, for polling and reading.
        let mut reader: std::fs::File = {
            use std::os::fd::{AsRawFd, BorrowedFd};
            let fd = pair.master.as_raw_fd().expect("a pty master has a descriptor");
            // SAFETY: the master's descriptor is open for as long as `pair.master` lives.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let own = borrowed.try_clone_to_owned().unwrap();
            assert!(own.as_raw_fd() >= 0);
            own.into()
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&reader);
        let writer = pair.master.take_writer().unwrap();
        let (tx, rx) = mpsc::channel();
        let hang_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = hang_up.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Reads only what is there, so that a hang-up is seen within a poll's wait even
            // when the program writes nothing.
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd for its length, of a descriptor this thread owns.
                if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
                    continue;
                }
                match reader.read(&mut buf) {
                    Ok(n) if n > 0 && tx.send(buf[..n].to_vec()).is_ok() => {}
                    _ => break,
                }
            }
        });
        Session {
            parser: vt100::Parser::new(std::num::NonZero::new(24).unwrap(), std::num::NonZero::new(80).unwrap(), 0),
            raw: Vec::new(),
            rx,
            writer: Some(writer),
            child,
            master: Some(pair.master),
            hang_up,
            reader: Some(reader),
        }
    }

    fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    /// Feeds output to the emulator until `cond` holds on the screen, or panics at the deadline.
    fn wait_for(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if cond(&s) {
                return s;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}; screen:\n{s}");
            if let Ok(bytes) = self.rx.recv_timeout(left.min(Duration::from_millis(500))) {
                self.parser.process(&bytes);
                self.raw.extend_from_slice(&bytes);
            }
        }
    }

    fn send(&mut self, keys: &str) {
        let w = self.writer.as_mut().expect("the terminal is there");
        w.write_all(keys.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    /// Closes the terminal under the cockpit, as a dropped SSH link does (every end of the
    /// pseudo-terminal's master closed; the kernel hangs up its session), and returns how the
    /// process ended.
    fn drop_the_link(&mut self) -> portable_pty::ExitStatus {
        self.hang_up.store(true, std::sync::atomic::Ordering::SeqCst);
        self.writer = None;
        // The reader lets go within its poll's wait.
        self.reader.take().unwrap().join().unwrap();
        self.master = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                panic!("the cockpit did not exit after its terminal went away:\n{}", self.where_it_is());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where a process that does not end is: its threads' stacks when gdb is there, else
    /// what each thread waits in.
    fn where_it_is(&self) -> String {
        let Some(pid) = self.child.process_id() else { return "no pid".into() };
        let gdb = std::process::Command::new("gdb")
            .args(["-p", &pid.to_string(), "-batch", "-nx", "-ex", "thread apply all bt 30"])
            .output();
        if let Some(out) = gdb.ok().filter(|o| o.status.success()) {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        let mut waits = String::new();
        for t in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            waits.push_str(&format!("{} {} {}\n", read("comm").trim(), read("wchan"), read("stat")));
        }
        waits
    }

    /// Waits for the process to exit, draining its output, and returns its exit code.
    fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(bytes) = self.rx.recv_timeout(Duration::from_millis(200)) {
                    self.raw.extend_from_slice(&bytes);
                }
                return status.exit_code();
            }
            if Instant::now() >= deadline {
                panic!("the cockpit did not exit; its screen:\n{}\n{}", self.screen(), self.where_it_is());
            }
            if let Ok(bytes) = self.rx.recv_timeout(Duration::from_millis(100)) {
                self.raw.extend_from_slice(&bytes);
            }
        }
    }

    /// In the alerts view: shows firing alerts only and acknowledges the one under the cursor
    /// (at high speed it may clear before the key arrives: then the next one).
    fn ack_a_firing_alert(&mut self) {
        self.send("tt");
        self.wait_for("a firing alert listed", |sc| {
            sc.contains("showing all severities, firing") && sc.contains(" FIRING ")
        });
        for _ in 0..5 {
            self.send("a");
            let sc =
                self.wait_for("the ack's answer", |sc| sc.contains("acknowledged") || sc.contains("only a firing"));
            if sc.contains("acknowledged") {
                break;
            }
        }
        self.wait_for("the alert marked acked", |sc| sc.contains(" acked "));
    }

    /// Leaves the alternate screen and shows the cursor again after the last frame.
    fn restored_terminal(&self) -> bool {
        let s = String::from_utf8_lossy(&self.raw);
        let last_leave = s.rfind("\x1b[?1049l");
        let last_enter = s.rfind("\x1b[?1049h");
        last_leave.is_some() && last_leave > last_enter && s.rfind("\x1b[?25h") > last_enter
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        self.hang_up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Every log file under `dir` (the cockpit's XDG directories in the tests): how many, and
/// their text one after the other.
fn logs_under(dir: &std::path::Path) -> (usize, String) {
    let (mut n, mut text) = (0, String::new());
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.to_string_lossy().contains("log") {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
                n += 1;
            }
        }
    }
    (n, text)
}

fn gauge_line(screen: &str, label: &str) -> String {
    screen.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or("").to_string()
}

#[test]
fn demo_shows_live_gauges_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut s = Session::start(dir.path(), &["demo", "--db", db.to_str().unwrap(), "--speed", "600"]);
    let first = s.wait_for("the demo campaigns with data", |sc| {
        sc.contains("618 年中大促")
            && sc.contains("Webinar series")
            && sc.contains("Install launch")
            && sc.contains("sim ×600")
            && sc.contains("data live")
            && gauge_line(sc, "Revenue").contains("k / 2.40M")
    });
    let before = gauge_line(&first, "Revenue");
    assert!(before.contains("/ 2.40M"), "{first}");
    // The simulated clock runs at ×600: the revenue gauge moves within seconds.
    s.wait_for("the revenue gauge to move", |sc| gauge_line(sc, "Revenue") != before);
    // Into the campaign table and a channel chart, then back out and quit.
    s.send("2");
    s.wait_for("the channel table", |sc| sc.contains("Channel") && sc.contains("天猫直通车"));
    s.send("\r");
    s.wait_for("the channel chart", |sc| sc.contains("last 1h"));
    s.send("?");
    s.wait_for("the help", |sc| sc.contains("Keys — ") && sc.contains("? or Esc to close"));
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
    assert!(s.restored_terminal(), "terminal not restored");
}

#[test]
fn sigterm_restores_the_terminal_and_keeps_the_data() {
    signal_restores_the_terminal_and_keeps_the_data("-TERM");
}

/// The SSH link drops for real: the terminal closes under the cockpit, with its stderr on
/// it, in several views and during a prompt. It ends by itself with a normal status (no
/// signal death), and the database holds what it had.
#[test]
fn a_terminal_that_goes_away_ends_the_cockpit_cleanly() {
    type Shown = fn(&str) -> bool;
    let views: [(&str, &str, Shown); 4] = [
        ("", "overview", |sc| sc.contains("Revenue")),
        ("4", "alerts", |sc| sc.contains(" FIRING ") || sc.contains("RESOLVED") || sc.contains("no alert")),
        ("5", "optimize", |sc| sc.contains("journal")),
        ("n", "note prompt", |sc| sc.contains(" note on ")),
    ];
    for (keys, what, shown) in views {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db");
        let mut s = Session::start(dir.path(), &["demo", "--db", db.to_str().unwrap(), "--speed", "600"]);
        s.wait_for("live data", |sc| sc.contains("data live") && sc.contains("Revenue"));
        s.send(keys);
        s.wait_for(what, shown);
        println!("dropping the link in the {what}");
        let status = s.drop_the_link();
        assert!(status.signal().is_none(), "{what}: died by {:?}", status.signal());
        let store = campaign_cockpit::store::Store::open(&db).unwrap();
        let cur = store.cursor(&campaign_cockpit::domain::ChannelKey::new("618-promo", "tmall-ztc")).unwrap();
        assert!(cur.is_some_and(|c| c.totals.spend > 0.0), "{what}: samples were flushed");
    }
}

/// The demo run a second time on its database goes on where the first stopped: the simulated
/// platform's counters continue, they do not start again and count twice.
#[test]
fn the_demo_run_again_on_its_database_goes_on_from_its_totals() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let key = campaign_cockpit::domain::ChannelKey::new("618-promo", "tmall-ztc");
    let spend = || {
        let store = campaign_cockpit::store::Store::open(&db).unwrap();
        store.cursor(&key).unwrap().unwrap().totals.spend
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut s = Session::start(dir.path(), &["demo", "--db", db.to_str().unwrap(), "--speed", "600"]);
        s.wait_for("live data", |sc| sc.contains("data live") && sc.contains("Revenue"));
        s.send("q");
        assert_eq!(s.wait_exit(), 0);
        drop(s);
        runs.push(spend());
    }
    let (first, second) = (runs[0], runs[1]);
    assert!(first > 1_000.0, "the first run recorded its past: {first}");
    assert!(second >= first && second < first * 1.2, "second run {second} after {first}: counted again");
}

/// A hang-up signal while the terminal is still there.
#[test]
fn sighup_restores_the_terminal_and_keeps_the_data() {
    signal_restores_the_terminal_and_keeps_the_data("-HUP");
}

fn signal_restores_the_terminal_and_keeps_the_data(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut s = Session::start(dir.path(), &["demo", "--db", db.to_str().unwrap(), "--speed", "600"]);
    s.wait_for("live data", |sc| sc.contains("data live") && sc.contains("Revenue"));
    let pid = s.child.process_id().unwrap();
    let killed = std::process::Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    assert_eq!(s.wait_exit(), 0);
    assert!(s.restored_terminal(), "terminal not restored after {signal}");
    let store = campaign_cockpit::store::Store::open(&db).unwrap();
    let cur = store.cursor(&campaign_cockpit::domain::ChannelKey::new("618-promo", "tmall-ztc")).unwrap().unwrap();
    assert!(cur.totals.spend > 0.0, "samples were flushed");
}

/// An alert shows on screen, `a` acknowledges it, and the acknowledgement is still there after
/// quitting and starting again on the same database.
#[test]
fn alerts_show_and_an_ack_and_a_silence_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let args = ["demo", "--db", db.to_str().unwrap(), "--speed", "3000"];
    let mut s = Session::start(dir.path(), &args);
    s.wait_for("a firing alert in the header", |sc| sc.contains("alerts ✖") || sc.contains("alerts ▲"));
    s.send("4");
    let screen = s.wait_for("the alerts view", |sc| sc.contains("FIRING"));
    assert!(screen.contains("vs limit"), "{screen}");
    // Firing alerts only, so the cursor is on one; at ×3000 it may still clear under the
    // cursor before the key arrives: then ack the next one.
    s.ack_a_firing_alert();
    // Silence the same alert from the keyboard: the prompt offers 1h, Enter takes it.
    s.send("s");
    s.wait_for("the silence prompt", |sc| sc.contains("Enter silence"));
    s.send("\r");
    s.wait_for("the silenced alert", |sc| sc.contains(" silenced ") && sc.contains("[ack "));
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
    drop(s);
    // Back at real-time speed, so nothing moves while we look; only firing alerts listed.
    let args = ["demo", "--db", db.to_str().unwrap(), "--speed", "1"];
    let mut s = Session::start(dir.path(), &args);
    s.wait_for("the cockpit", |sc| sc.contains("Alerts"));
    s.send("4");
    s.send("t");
    s.send("t");
    s.wait_for("the filter", |sc| sc.contains("showing all severities, firing"));
    s.wait_for("the acknowledged, silenced alert after a restart", |sc| {
        sc.contains(" silenced ") && sc.contains("[ack ")
    });
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
}

/// The closed loop from the keyboard: Douyin's CTR collapses, its alert fires, the optimize
/// panel advises pausing it, `y` `y` applies it through the simulator's control endpoint, the
/// journal says so, and the alert clears.
#[test]
fn an_incident_is_alerted_advised_applied_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios/closed-loop.toml");
    let mut s = Session::start(dir.path(), &["demo", "--speed", "3000", "--scenario", scenario]);
    // Douyin's own alert, firing: another channel's may fire first, and a pending alert that
    // the pause clears never fired, so it leaves no resolved line to wait for.
    s.send("4");
    s.wait_for("Douyin's alert firing", |sc| sc.lines().any(|l| l.contains("FIRING") && l.contains("douyin")));
    s.send("5");
    s.wait_for("the advice to pause Douyin", |sc| sc.contains("pause douyin"));
    // Put the cursor on it (the detail below the list names the selected change) and ask to
    // apply it. The list is re-ranked as the figures move, so the confirmation line, which
    // names what will be sent, decides: anything else is cancelled and chosen again.
    let confirm_line = |sc: &str| sc.lines().find(|l| l.contains("y send · n cancel")).map(str::to_string);
    let mut confirmed = false;
    let mut down = 0;
    for _ in 0..40 {
        if !s.screen().contains("change:   pause douyin") {
            // Down the list, and back to the first row once past its end.
            let key = if down == 8 { "g" } else { "j" };
            down = if down == 8 { 0 } else { down + 1 };
            let before = s.screen();
            s.send(key);
            s.wait_for("the cursor to move", |sc| sc != before);
            continue;
        }
        s.send("y");
        let sc = s.wait_for("the confirmation line", |sc| confirm_line(sc).is_some());
        if confirm_line(&sc).is_some_and(|l| l.contains("pause douyin")) {
            confirmed = true;
            break;
        }
        s.send("n");
        s.wait_for("the confirmation gone", |sc| confirm_line(sc).is_none());
    }
    assert!(confirmed, "the pause of Douyin could not be chosen: {}", s.screen());
    s.send("y");
    s.wait_for("the journal entry", |sc| sc.contains("pause douyin — applied"));
    s.send("4");
    s.wait_for("Douyin's alerts cleared", |sc| {
        sc.lines().any(|l| l.contains("resolved") && l.contains("douyin") && l.contains("cleared: channel paused"))
    });
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
}

/// A panic in the UI gives the terminal back (main screen, cursor shown) and keeps the data.
#[test]
fn a_panic_restores_the_terminal_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let args = ["demo", "--db", db.to_str().unwrap(), "--speed", "600"];
    let mut s = Session::start_with(dir.path(), &args, &[("COCKPIT_FAULT", "panic-on-key")]);
    s.wait_for("data on screen", |sc| sc.contains("data live"));
    s.send("j");
    let code = s.wait_exit();
    assert_ne!(code, 0);
    assert!(s.restored_terminal(), "terminal not restored after a panic");
    let out = String::from_utf8_lossy(&s.raw).into_owned();
    assert!(out.contains("a panic on request"), "the panic message is shown");
    let store = campaign_cockpit::store::Store::open(&db).expect("the database opens after a panic");
    assert_eq!(store.campaigns().unwrap().len(), 4, "the demo's three campaigns and last year's");
}

/// A channel's record damaged on disk: the first frame comes from the campaigns' stored
/// totals, the channels are read behind it, and the damaged record stops the cockpit with an
/// error that names it, the terminal restored and the file untouched.
#[test]
fn a_damaged_channel_record_is_named_and_the_terminal_restored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut s = Session::start(dir.path(), &["demo", "--db", db.to_str().unwrap(), "--speed", "600"]);
    s.wait_for("data on screen", |sc| sc.contains("data live"));
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
    let damaged = {
        let raw = sled::open(&db).unwrap();
        let channels = raw.open_tree("channels").unwrap();
        let (key, _) = channels.iter().next().unwrap().unwrap();
        channels.insert(&key, &b"{\"at\": oops"[..]).unwrap();
        raw.flush().unwrap();
        String::from_utf8_lossy(&key).replace('\0', "/")
    };
    let mut s = Session::start(dir.path(), &["--db", db.to_str().unwrap()]);
    let code = s.wait_exit();
    assert_ne!(code, 0);
    assert!(s.restored_terminal(), "terminal not restored");
    let out = String::from_utf8_lossy(&s.raw).into_owned();
    assert!(out.contains("cannot be read") && out.contains(damaged.trim_end_matches('/')), "{out}");
    let store = campaign_cockpit::store::Store::open(&db).expect("the database still opens");
    assert_eq!(store.campaigns().unwrap().len(), 4);
}

/// A full disk, made with a file-size limit on the process (a write past it fails with EFBIG):
/// the header says the database writes fail, the cockpit keeps running and keeps what it
/// cannot write in memory, an ack given meanwhile included; once the limit is lifted the
/// database is opened again, everything is written, and a restart finds the ack.
#[test]
fn a_full_disk_is_reported_and_nothing_is_lost_once_it_has_room() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let limit = 400_000;
    let args = [
        &format!("--fsize={limit}:unlimited"),
        "--",
        env!("CARGO_BIN_EXE_cockpit"),
        "demo",
        "--db",
        db.to_str().unwrap(),
        // Fast enough to fill the file in seconds, slow enough that the acked alert does not
        // resolve and fire again (which clears an ack) before the test quits.
        "--speed",
        "600",
        "--no-history",
    ];
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    let mut s = Session::spawn(dir.path(), "prlimit", &args, &[]);
    s.wait_for("the write failure in the header", |sc| sc.contains("DB WRITE FAILING"));
    s.send("4");
    s.ack_a_firing_alert();
    let pid = s.child.process_id().unwrap().to_string();
    let lifted = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--fsize=unlimited:unlimited"])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(lifted.success());
    s.wait_for("the database written again", |sc| sc.contains("data live") && !sc.contains("DB WRITE FAILING"));
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
    assert!(s.restored_terminal());
    drop(s);
    let size = std::fs::metadata(db.join("db")).unwrap().len();
    assert!(size > limit, "writes went on past the old limit: {size} bytes");
    let store = campaign_cockpit::store::Store::open(&db).expect("the database opens after a full disk");
    assert_eq!(store.campaigns().unwrap().len(), 4);
    let acked = store.alerts().unwrap().into_iter().filter(|a| a.ack.is_some()).count();
    assert!(acked >= 1, "the ack given while the disk was full was written once it had room");
}

/// The analyze view on the demo: compare (with the change against yesterday), funnel,
/// segments with their outliers, and the day-by-day comparison with last year's festival; a
/// note typed with `n` is stored.
#[test]
fn analyze_views_and_a_note_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut s = Session::start(dir.path(), &["demo", "--db", db.to_str().unwrap(), "--speed", "60"]);
    s.wait_for("data on screen", |sc| sc.contains("data live"));
    s.send("6");
    s.wait_for("the compare view", |sc| sc.contains("vs yesterday to this time") && sc.contains("all channels"));
    s.send("f");
    s.wait_for("the funnel", |sc| sc.contains("impressions → clicks"));
    s.send("f");
    s.wait_for("the segments", |sc| sc.contains("judged on ROAS") && sc.contains("far worse"));
    s.send("f");
    s.wait_for("the comparison with last year", |sc| sc.contains("vs 618 年中大促 2025") && sc.contains("before"));
    s.send("w");
    s.send("n");
    s.wait_for("the note prompt", |sc| sc.contains("note on 618-promo"));
    s.send("paused the KOL test\r");
    s.wait_for("the note saved", |sc| sc.contains("note saved"));
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
    drop(s);
    let store = campaign_cockpit::store::Store::open(&db).unwrap();
    let notes = store.notes(Some("618-promo")).unwrap();
    assert!(notes.iter().any(|n| n.text == "paused the KOL test"), "{notes:?}");
}

/// Ctrl-Z gives the terminal back and stops the process; SIGCONT (`fg`) takes it again and
/// redraws.
#[test]
fn ctrl_z_suspends_and_fg_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::start(dir.path(), &["demo", "--speed", "60"]);
    s.wait_for("data on screen", |sc| sc.contains("data live"));
    let pid = s.child.process_id().unwrap();
    s.send("\x1a");
    let state = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|st| st.rsplit(')').next().and_then(|r| r.split_whitespace().next().map(str::to_string)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while state().as_deref() != Some("T") {
        assert!(Instant::now() < deadline, "not stopped: {:?}", state());
        if let Ok(bytes) = s.rx.recv_timeout(Duration::from_millis(100)) {
            s.parser.process(&bytes);
            s.raw.extend_from_slice(&bytes);
        }
    }
    while let Ok(bytes) = s.rx.recv_timeout(Duration::from_millis(200)) {
        s.parser.process(&bytes);
        s.raw.extend_from_slice(&bytes);
    }
    assert!(s.restored_terminal(), "the terminal is given back while stopped");
    assert!(!s.parser.screen().alternate_screen());
    let cont = std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status().unwrap();
    assert!(cont.success());
    s.wait_for("the cockpit redrawn", |sc| sc.contains("Campaign Cockpit") && sc.contains("data"));
    assert!(s.parser.screen().alternate_screen());
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
}

/// Tokens never show: not on screen, not in the logs, not in an export, a check, the journal.
#[test]
fn tokens_never_show_anywhere() {
    const SOURCE: &str = "src-tok-5e3f9a1b";
    const CONTROL: &str = "ctl-tok-77c0de42";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios/closed-loop.toml");
    let env = [("COCKPIT_SOURCE_TOKEN", SOURCE), ("COCKPIT_CONTROL_TOKEN", CONTROL)];
    let args = ["demo", "--db", db.to_str().unwrap(), "--speed", "3000", "--scenario", scenario];
    let mut s = Session::start_with(dir.path(), &args, &env);
    s.wait_for("the advice", |sc| sc.contains("alerts") && sc.contains("data live"));
    for view in ["1", "2", "\r", "3", "4", "5"] {
        s.send(view);
    }
    s.wait_for("the optimize view", |sc| sc.contains("journal ("));
    s.wait_for("a recommendation", |sc| sc.contains("change:"));
    s.send("y");
    s.wait_for("the confirmation", |sc| sc.contains("y send"));
    s.send("y");
    s.wait_for("the journal entry", |sc| sc.contains("— applied") || sc.contains("— failed"));
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
    let mut seen = String::from_utf8_lossy(&s.raw).into_owned();
    for args in
        [&["campaign", "export", "618-promo"][..], &["journal", "--json"], &["check"], &["campaign", "list", "--json"]]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
            .arg("--db")
            .arg(&db)
            .args(args)
            .envs(env)
            .env("XDG_STATE_HOME", dir.path())
            .env("COCKPIT_CONFIG", dir.path().join("none.toml"))
            .output()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let (logs, logged) = logs_under(dir.path());
    assert!(logs > 0, "no log file was read");
    seen.push_str(&logged);
    assert!(seen.contains("618-promo"), "the outputs were read");
    for t in [SOURCE, CONTROL] {
        assert!(!seen.contains(t), "the token {t} shows");
    }
}

/// Every source hangs (each poll waits out its 5 s timeout): the UI still answers keys at once.
/// Prints the slowest key-to-screen time.
#[test]
fn keys_answer_while_every_source_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("hang.toml");
    std::fs::write(
        &scenario,
        "start = \"2026-06-08T09:00:00+08:00\"\n[[events]]\nat = \"+0s\"\ntarget = \"*\"\nkind = \"hang\"\n",
    )
    .unwrap();
    let mut s = Session::start(dir.path(), &["demo", "--speed", "60", "--scenario", scenario.to_str().unwrap()]);
    // Every source has timed out once: the sources show as failing.
    s.wait_for("the sources failing", |sc| sc.contains("sources ●0 ✖5"));
    let mut worst = Duration::ZERO;
    // The alerts screen by its own keys in the footer (its health alerts wait for their
    // hold-down, which is not what is timed here).
    for (key, shows) in [("4", "a ack"), ("2", "Channel"), ("5", "journal ("), ("1", "▸"), ("?", "Keys —")] {
        let t0 = Instant::now();
        s.send(key);
        s.wait_for(shows, |sc| sc.contains(shows));
        worst = worst.max(t0.elapsed());
        if key == "?" {
            s.send("?");
        }
    }
    println!("slowest key → screen while every source hangs: {} ms", worst.as_millis());
    // A blocked UI would wait for a 5 s poll timeout.
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
}

/// A write that hangs (a stuck disk, as sled would show it): the header says what the database
/// is writing and for how long while it lasts, the log says so, keys are answered meanwhile,
/// and once the write is through the header is as before.
#[test]
fn a_stalled_write_shows_in_the_header_and_the_keys_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut s = Session::start_with(
        dir.path(),
        &["demo", "--db", db.to_str().unwrap(), "--speed", "60", "--no-history"],
        &[("COCKPIT_FAULT", "stall-writes-of:samples:15")],
    );
    s.wait_for("the stall in the header", |sc| sc.contains("DB STALLED: writing samples for"));
    s.send("?");
    s.wait_for("the help, during the stall", |sc| sc.contains("Keys — ") && sc.contains("Esc to close"));
    s.send("\x1b");
    s.wait_for("the stall over", |sc| !sc.contains("DB STALLED") && sc.contains("data live"));
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
    let (_, logged) = logs_under(dir.path());
    assert!(logged.contains("has been writing samples for"), "{logged}");
    assert!(logged.contains("finished writing samples"), "{logged}");
}

/// `cockpit serve` started in a terminal that then goes away (the SSH link drops): the
/// session's end, not a SIGHUP to read the configuration again. It stops by itself with a
/// normal status and the database holds its samples.
#[test]
fn a_service_whose_terminal_goes_away_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut s = Session::start_with(
        dir.path(),
        &["demo", "--serve", "--db", db.to_str().unwrap(), "--speed", "600"],
        &[("XDG_RUNTIME_DIR", dir.path().to_str().unwrap())],
    );
    s.wait_for("the service's greeting", |sc| sc.contains("the demo is served"));
    // Samples stored: a client sees the demo's data through the service.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", db.to_str().unwrap(), "campaign", "show", "618-promo", "--json"])
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("XDG_STATE_HOME", dir.path())
        .env("COCKPIT_CONFIG", dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = s.drop_the_link();
    assert!(status.signal().is_none() && status.success(), "died by {:?}: {status:?}", status.signal());
    let store = campaign_cockpit::store::Store::open(&db).unwrap();
    let cur = store.cursor(&campaign_cockpit::domain::ChannelKey::new("618-promo", "tmall-ztc")).unwrap();
    assert!(cur.is_some_and(|c| c.totals.spend > 0.0), "samples were flushed");
}

#[test]
fn the_command_line_the_editor_and_the_checklist_from_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let editor = dir.path().join("editor.sh");
    // The first edit changes the budget; the second adds a channel.
    let second = dir.path().join("edited-once");
    let script = format!(
        "#!/bin/sh\nif [ -e {s} ]; then printf '\\n[[channels]]\\nid = \"bilibili\"\\nname = \"哔哩哔哩 Bilibili\"\\nsource = \"http://127.0.0.1:9/stats\"\\ndaily_budget = 500.0\\n' >> \"$1\"; \
         else touch {s}; sed -i 's/^total_budget = .*/total_budget = 333000.0/' \"$1\"; fi\n",
        s = second.display()
    );
    std::fs::write(&editor, script).unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let args = ["demo", "--db", db.to_str().unwrap(), "--speed", "60"];
    let mut s = Session::start_with(dir.path(), &args, &[("VISUAL", editor.to_str().unwrap())]);
    s.wait_for("the demo", |sc| sc.contains("Install launch") && sc.contains("data live"));
    // `:campaign fin` completes to the app launch by words of its name.
    s.send(":campaign fin\t");
    s.wait_for("the completion", |sc| sc.contains(":campaign app-launch"));
    s.send("\r");
    s.wait_for("the campaign", |sc| sc.contains("06-05 → 06-25  app-launch"));
    // `e`: the plan in the editor, saved, in force at once.
    s.send("e");
    s.wait_for("the new budget", |sc| sc.contains(" / 333.0k") && sc.contains("updated app-launch"));
    // The checklist, and a task marked done.
    s.send("t");
    s.wait_for("the checklist", |sc| sc.contains("Creative B cleared by legal") && sc.contains("Owner"));
    s.send("x");
    s.wait_for("the task done", |sc| sc.contains("task done: Creative B cleared by legal") && sc.contains("3/4 done"));
    // A new channel: the engine starts again with it, under the same screen.
    s.send("t");
    s.send("e");
    s.wait_for("the new channel", |sc| sc.contains("哔哩哔哩 Bili") && sc.contains("planned again"));
    s.send(":q\r");
    assert_eq!(s.wait_exit(), 0);
    assert!(s.restored_terminal(), "terminal not restored");
    let stored = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--db", db.to_str().unwrap(), "campaign", "export", "app-launch"])
        .env("COCKPIT_CONFIG", dir.path().join("no-config.toml"))
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .output()
        .unwrap();
    use campaign_cockpit::domain::{Campaign, campaign::Format};
    let plan = Campaign::parse(&String::from_utf8_lossy(&stored.stdout), Format::Toml, "export").unwrap();
    assert_eq!(plan.total_budget, 333000.0);
    assert!(plan.tasks[2].done && plan.tasks[2].done_by.is_some(), "{:?}", plan.tasks[2]);
    assert!(plan.channel("bilibili").is_some());
}
