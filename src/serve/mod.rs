//! `cockpit serve`: the engine without a terminal, and the local API any number of clients
//! attach to (see `wire` for the messages).
//!
//! The service owns the database. It listens on a unix socket, mode 0600 in a directory of
//! mode 0700: `$XDG_RUNTIME_DIR/campaign-cockpit/` when there is one, else a `.run`
//! directory beside the database; the socket's name comes from the database's path, so that
//! a client finds the service from `--db` alone (`socket_path`). A peer of another uid is
//! refused. Over TCP (`--listen HOST:PORT`) a client must give the service's token.
//!
//! Without a service nothing changes: `cockpit` on a database nobody holds runs the engine
//! in-process (`Running` is that engine, with its pollers, for both).

pub mod alertmanager;
pub mod client;
pub mod metrics;
pub mod server;
pub mod webhook;
pub mod wire;

use crate::clock::SharedClock;
use crate::engine::Engine;
use crate::engine::snapshot::Snapshot;
use crate::poll::Secret;
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the engine needs from the configuration.
#[derive(Clone, Default)]
pub struct Settings {
    pub interval: Duration,
    pub read_only: bool,
    pub source_token: Option<Secret>,
    pub control_token: Option<Secret>,
    pub token_over_http: bool,
    pub secrets: BTreeMap<String, Secret>,
    /// `[credentials.*]` of `config.toml`.
    pub credentials: crate::poll::credential::Registry,
}

/// A running engine with its pollers.
pub struct Running {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub commands: mpsc::Sender<crate::engine::Command>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
    task: tokio::task::JoinHandle<Result<(), StoreError>>,
}

impl Running {
    /// Opens the engine on `store` and starts polling. The first snapshot (the stored
    /// totals) is there at once; the channels' state is read in the background.
    pub fn start(store: Store, clock: SharedClock, s: &Settings) -> Result<Running, StoreError> {
        let campaigns = store.campaigns()?;
        let sources =
            crate::poll::sources_with_token(&campaigns, s.interval, s.source_token.as_ref(), s.token_over_http);
        let sources = crate::poll::with_secrets(sources, &s.secrets, &s.credentials);
        let (mut starting, snapshots) = Engine::open(store, clock.clone(), campaigns, &sources)?;
        starting.set_read_only(s.read_only);
        starting.set_control_token(s.control_token.clone());
        let watchdog = watch_writes(starting.watchdog());
        let (poll_tx, poll_rx) = mpsc::channel(1024);
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let pollers = crate::poll::spawn(sources, 32, clock, poll_tx);
        let task = tokio::spawn(async move {
            // The watchdog holds a sender of the state: it goes with the engine (its stop
            // sender dropped here), so that the clients see the state end when the engine does.
            let _watchdog = watchdog;
            let loaded = tokio::task::spawn_blocking(move || starting.load()).await;
            // A panic while loading is a bug: passed on as it is.
            let engine = loaded.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            engine.run(poll_rx, cmd_rx).await;
            Ok(())
        });
        Ok(Running { snapshots, commands: cmd_tx, pollers, task })
    }

    /// Stops polling, flushes and stops the engine. The engine stops on its own only when it
    /// could not load: that is the error returned.
    pub async fn stop(self) -> Result<(), StoreError> {
        for p in &self.pollers {
            p.abort();
        }
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if self.commands.send(crate::engine::Command::Shutdown(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
        self.task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

/// Once a second: a write under way for `STALL_AFTER` or more is put in the state the
/// clients see (the engine, waiting for it, publishes nothing meanwhile) and logged with what
/// it writes; the store logs its end, and the engine's next state clears it. It runs on a
/// thread of its own: a write that blocks the engine may hold up the async runtime's workers
/// too, and the watchdog must speak all the same. It stops (dropping its sender of the
/// state) as soon as the returned guard is dropped.
fn watch_writes(
    (watch, snapshots): (Arc<crate::store::WriteWatch>, watch::Sender<Arc<Snapshot>>),
) -> std::sync::mpsc::Sender<()> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("write-watchdog".into()).spawn(move || {
        let mut stalled: Option<&'static str> = None;
        // Until the guard is dropped (or sends): a tick a second.
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_secs(1)) {
            match watch.stalled(crate::store::STALL_AFTER) {
                Some((what, took)) => {
                    if stalled != Some(what) {
                        tracing::warn!(
                            "the database has been writing {what} for {} s and has not finished",
                            took.as_secs()
                        );
                    }
                    stalled = Some(what);
                    let text = format!("writing {what} for {}s", took.as_secs());
                    snapshots.send_modify(|s| Arc::make_mut(s).stall = Some(text));
                }
                None => {
                    if stalled.take().is_some() {
                        snapshots.send_if_modified(|s| Arc::make_mut(s).stall.take().is_some());
                    }
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("no watchdog of the database's writes: {e}");
    }
    stop
}

/// A service started: it, the state its clients see, and where their commands go.
pub type Started = (Service, watch::Receiver<Arc<Snapshot>>, mpsc::Sender<crate::engine::Command>);

/// The engine of a service, which can be planned again (a campaign imported or removed, the
/// configuration re-read) without its clients noticing more than a fresh first frame: they
/// hold a watch and a command channel of the service, which follow the engine of the moment.
pub struct Service {
    db: PathBuf,
    clock: SharedClock,
    running: Option<Running>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    engine: watch::Sender<mpsc::Sender<crate::engine::Command>>,
    relays: Vec<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Starts the engine on the database at `db`: the service, its state and where commands
    /// go.
    pub fn start(db: &Path, clock: SharedClock, settings: &Settings) -> Result<Started, StoreError> {
        let running = Running::start(Store::open(db)?, clock.clone(), settings)?;
        let (snap_tx, snap_rx) = watch::channel(running.snapshots.borrow().clone());
        let (engine_tx, engine_rx) = watch::channel(running.commands.clone());
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<crate::engine::Command>(64);
        // Commands go to the engine of the moment (and wait while it is being replaced).
        let commands = tokio::spawn(async move {
            while let Some(cmd) = cmd_rx.recv().await {
                let to = engine_rx.borrow().clone();
                let _ = to.send(cmd).await;
            }
        });
        let mut svc = Service {
            db: db.to_path_buf(),
            clock,
            running: None,
            snapshots: snap_tx,
            engine: engine_tx,
            relays: vec![commands],
        };
        svc.relay(running);
        Ok((svc, snap_rx, cmd_tx))
    }

    /// Makes `running` the engine the clients see.
    fn relay(&mut self, running: Running) {
        self.relays.retain(|r| !r.is_finished());
        let mut from = running.snapshots.clone();
        let to = self.snapshots.clone();
        to.send_replace(from.borrow_and_update().clone());
        self.relays.push(tokio::spawn(async move {
            while from.changed().await.is_ok() {
                let s = from.borrow_and_update().clone();
                to.send_replace(s);
            }
        }));
        self.engine.send_replace(running.commands.clone());
        self.running = Some(running);
    }

    /// Stops the engine (flushed) and starts a new one on the same database, with `settings`.
    pub async fn restart(&mut self, settings: &Settings) -> Result<(), StoreError> {
        if let Some(r) = self.running.take() {
            r.stop().await?;
        }
        let running = Running::start(Store::open(&self.db)?, self.clock.clone(), settings)?;
        self.relay(running);
        Ok(())
    }

    /// Stops the engine, flushed.
    pub async fn stop(mut self) -> Result<(), StoreError> {
        let stopped = match self.running.take() {
            Some(r) => r.stop().await,
            None => Ok(()),
        };
        for r in &self.relays {
            r.abort();
        }
        stopped
    }
}

/// Where the service of the database at `db` listens.
pub fn socket_path(db: &Path) -> PathBuf {
    let db = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    let db = db.canonicalize().unwrap_or(db);
    let name = format!("{:016x}.sock", fnv1a(db.as_os_str().as_encoded_bytes()));
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("campaign-cockpit").join(name),
        None => {
            let parent = db.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            let stem = db.file_name().map_or_else(|| "cockpit".into(), |n| n.to_string_lossy().into_owned());
            parent.join(format!(".{stem}.run")).join(name)
        }
    }
}

/// FNV-1a, 64 bits: a name that stays the same across builds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A time as the pagers take it (RFC 3339, UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A client of another uid is refused.
pub fn peer_allowed(peer_uid: Option<u32>, own_uid: u32) -> bool {
    peer_uid == Some(own_uid)
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_uid_attaches_and_tokens_compare_whole() {
        assert!(peer_allowed(Some(1000), 1000));
        assert!(!peer_allowed(Some(0), 1000), "not even root");
        assert!(!peer_allowed(Some(1001), 1000));
        assert!(!peer_allowed(None, 1000), "a peer without credentials");
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "abcd") && !same_secret("", "a"));
    }

    #[test]
    fn a_database_has_one_socket_whatever_its_path_is_called() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let via_dots = dir.path().join("db/../db");
        assert_eq!(socket_path(&db), socket_path(&via_dots));
        assert_ne!(socket_path(&db), socket_path(&dir.path().join("other")));
        assert!(socket_path(&db).as_os_str().len() < 100, "fits a unix socket address");
    }
}
