//! The service's side of the API: the listener, and one task per client that sends it the
//! state as it changes and passes what it asks on to the engine.

use super::wire::{self, Act, Detail, Encoder, Frame, ToClient, ToService};
use crate::engine::snapshot::Snapshot;
use crate::engine::{Command, StoreJob};
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};

/// Runs a client's command line on the database: its exit status and what it printed.
pub type RunCommand = dyn Fn(Vec<String>, &Store) -> (u8, String) + Send + Sync;

/// What every connection shares.
#[derive(Clone)]
pub struct Ctx {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub commands: mpsc::Sender<Command>,
    /// The service takes no actions.
    pub read_only: bool,
    pub db_path: String,
    /// Asked of TCP clients.
    pub token: Option<crate::poll::Secret>,
    pub run: Arc<RunCommand>,
    /// Turns true when the service stops.
    pub stopping: watch::Receiver<bool>,
    /// Asks the service to plan its channels again (after an import or a removal).
    pub replan: mpsc::Sender<oneshot::Sender<Result<(), String>>>,
}

/// How often a client's chart and analysis are brought up to date while new data comes in.
const SERIES_EVERY: Duration = Duration::from_secs(1);
const ANALYSIS_EVERY: Duration = Duration::from_secs(5);

/// Binds the unix socket at `path`: its directory made (mode 0700), a socket left by a
/// service that is gone removed, the socket itself mode 0600. A service already listening
/// there is an error that says so.
pub async fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().ok_or_else(|| format!("{}: no directory", path.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(format!("a service is already listening on {}", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("removing the stale socket {}: {e}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| format!("listening on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("making {} private: {e}", path.display()))?;
    Ok(listener)
}

/// Our uid, as the socket we made has it.
fn own_uid(socket: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(socket).ok().map(|m| m.uid())
}

/// Accepts clients on the unix socket until the service stops.
pub async fn accept_unix(listener: tokio::net::UnixListener, socket: PathBuf, ctx: Ctx) {
    let mut stopping = ctx.stopping.clone();
    let uid = own_uid(&socket);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let peer = stream.peer_cred().ok().map(|c| c.uid());
                    let allowed = uid.is_some_and(|own| super::peer_allowed(peer, own));
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        if allowed {
                            connection(stream, false, ctx).await;
                        } else {
                            tracing::warn!("refused a client of uid {peer:?}");
                            refuse(stream, "this service serves its own user only").await;
                        }
                    });
                }
                Err(e) => {
                    tracing::error!("accepting a client: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopping.changed() => break,
        }
    }
    let _ = std::fs::remove_file(&socket);
}

/// Accepts clients over TCP (each must give the token) until the service stops.
pub async fn accept_tcp(listener: tokio::net::TcpListener, ctx: Ctx) {
    let mut stopping = ctx.stopping.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::info!("a client from {peer}");
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, true, ctx.clone()));
                }
                Err(e) => {
                    tracing::error!("accepting a client: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopping.changed() => break,
        }
    }
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reason: &str) {
    let _ = wire::write(&mut stream, &ToClient::Refused { reason: reason.into() }).await;
}

/// Who a client is, from its hello.
struct Client {
    user: String,
    read_only: bool,
}

/// Checks a client's hello; the reason for refusing it otherwise.
fn welcome(hello: Option<Frame<ToService>>, tcp: bool, ctx: &Ctx) -> Result<Client, String> {
    match hello {
        Some(Frame::Message(ToService::Hello { version, user, read_only, token })) => {
            if version != wire::API_VERSION {
                return Err(format!("this service speaks API version {}, not {version}", wire::API_VERSION));
            }
            if tcp {
                let ok = match (&ctx.token, &token) {
                    (Some(want), Some(got)) => super::same_secret(want.expose(), got),
                    _ => false,
                };
                if !ok {
                    return Err("a valid token is needed over TCP".into());
                }
            }
            Ok(Client { user, read_only })
        }
        Some(Frame::Message(other)) => Err(format!("the first message must be a hello, not {other:?}")),
        Some(Frame::Bad(e)) => Err(format!("not a message: {e}")),
        None => Err("closed before its hello".into()),
    }
}

/// One client, from its hello until it leaves or the service stops.
async fn connection<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S, tcp: bool, ctx: Ctx) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let hello = match wire::read(&mut rd).await {
        // A connection closed before saying anything: a client finding out whether the service
        // is there (every attach and every command against the service asks so), not a refusal.
        Ok(None) => {
            tracing::debug!("a connection closed before its hello");
            return;
        }
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("a client's hello: {e}");
            return;
        }
    };
    let client = match welcome(hello, tcp, &ctx) {
        Ok(c) => c,
        Err(reason) => {
            tracing::warn!("refused a client: {reason}");
            let _ = wire::write(&mut wr, &ToClient::Refused { reason }).await;
            return;
        }
    };
    tracing::info!(user = %client.user, read_only = client.read_only, "a client attached");
    let hi = ToClient::Welcome {
        version: wire::API_VERSION,
        read_only: ctx.read_only,
        db_path: ctx.db_path.clone(),
        pid: std::process::id(),
    };
    if wire::write(&mut wr, &hi).await.is_err() {
        return;
    }
    // Frames are read whole in a task of their own (a read cut short by `select!` would lose
    // its place in the stream).
    let (in_tx, mut inbox) = mpsc::channel(16);
    let reader = tokio::spawn(async move {
        loop {
            match wire::read::<_, ToService>(&mut rd).await {
                Ok(Some(f)) => {
                    if in_tx.send(Ok(f)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = in_tx.send(Err(e.to_string())).await;
                    break;
                }
            }
        }
    });
    let mut session = Session {
        ctx: ctx.clone(),
        client,
        enc: Encoder::default(),
        detail: Detail::None,
        detail_at: None,
        series: None,
    };
    let mut snapshots = ctx.snapshots.clone();
    let mut stopping = ctx.stopping.clone();
    let mut watching = false;
    let mut tick = tokio::time::interval(SERIES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result: std::io::Result<()> = async {
        loop {
            tokio::select! {
                msg = inbox.recv() => match msg {
                    None => return Ok(()),
                    Some(Err(e)) => {
                        tracing::warn!(user = %session.client.user, "a client's stream: {e}");
                        let _ = wire::write(&mut wr, &ToClient::Error { message: e }).await;
                        return Ok(());
                    }
                    Some(Ok(Frame::Bad(e))) => {
                        tracing::warn!(user = %session.client.user, "a message that does not parse: {e}");
                        wire::write(&mut wr, &ToClient::Error { message: format!("not a message: {e}") }).await?;
                    }
                    Some(Ok(Frame::Message(ToService::Watch))) => {
                        watching = true;
                        let snap = snapshots.borrow_and_update().clone();
                        session.send_state(&mut wr, &snap).await?;
                    }
                    Some(Ok(Frame::Message(ToService::Focus { campaign }))) => {
                        // What the new screen shows comes at once.
                        session.enc.focus = campaign;
                        if watching {
                            let snap = snapshots.borrow().clone();
                            session.send_state(&mut wr, &snap).await?;
                        }
                    }
                    Some(Ok(Frame::Message(m))) => session.handle(m, &mut wr).await?,
                },
                changed = snapshots.changed(), if watching => {
                    if changed.is_err() {
                        wire::write(&mut wr, &ToClient::Bye { reason: "the engine stopped".into() }).await?;
                        return Ok(());
                    }
                    let snap = snapshots.borrow_and_update().clone();
                    session.send_state(&mut wr, &snap).await?;
                }
                _ = tick.tick() => session.refresh_detail(&mut wr, false).await?,
                _ = stopping.changed() => {
                    wire::write(&mut wr, &ToClient::Bye { reason: "the service is stopping".into() }).await?;
                    return Ok(());
                }
            }
        }
    }
    .await;
    reader.abort();
    match result {
        Ok(()) => tracing::info!(user = %session.client.user, "a client left"),
        Err(e) => tracing::info!(user = %session.client.user, "a client left: {e}"),
    }
}

/// A change to the campaigns.
#[derive(Debug)]
enum Change {
    Import(Vec<crate::domain::Campaign>),
    Remove(String),
}

impl Change {
    /// Writes it: the exit status and what to print.
    fn apply(self, store: &Store) -> (u8, String) {
        match self {
            Change::Import(campaigns) => {
                for c in &campaigns {
                    if let Err((field, msg)) = c.validate() {
                        return (2, format!("error: campaign {}: {field}: {msg}\n", c.id));
                    }
                }
                let mut out = String::new();
                for c in campaigns {
                    let verb = match store.campaign(&c.id) {
                        Ok(Some(_)) => "updated",
                        Ok(None) => "imported",
                        Err(e) => return (1, format!("{out}error: {e}\n")),
                    };
                    if let Err(e) = store.put_campaign(&c) {
                        return (1, format!("{out}error: {e}\n"));
                    }
                    out.push_str(&format!("{verb} {} ({} channels): {}\n", c.id, c.channels.len(), c.name));
                }
                (0, out)
            }
            Change::Remove(id) => match store.remove_campaign(&id) {
                Ok(true) => (0, format!("removed {id}\n")),
                Ok(false) => (2, format!("error: no campaign '{id}' in {}\n", store.path().display())),
                Err(e) => (1, format!("error: {e}\n")),
            },
        }
    }
}

struct Session {
    ctx: Ctx,
    client: Client,
    enc: Encoder,
    detail: Detail,
    /// When the detail was last sent.
    detail_at: Option<Instant>,
    /// The chart the client holds.
    series: Option<crate::engine::snapshot::SeriesView>,
}

impl Session {
    async fn send_state<W: AsyncWrite + Unpin>(&mut self, wr: &mut W, snap: &Snapshot) -> std::io::Result<()> {
        let delta = self.enc.delta(snap, Instant::now());
        wire::write(wr, &ToClient::Snapshot { delta: Box::new(delta) }).await
    }

    async fn handle<W: AsyncWrite + Unpin>(&mut self, m: ToService, wr: &mut W) -> std::io::Result<()> {
        match m {
            ToService::Hello { .. } => {
                wire::write(wr, &ToClient::Error { message: "already said hello".into() }).await?;
            }
            ToService::Watch | ToService::Focus { .. } => {}
            ToService::Detail { detail } => {
                // The client drops its chart when it asks for another detail.
                self.series = None;
                self.detail = detail;
                self.refresh_detail(wr, true).await?;
            }
            ToService::Act { act } => self.act(act, wr).await?,
            ToService::Run { id, args } => {
                let (status, output) = self.run(args).await;
                wire::write(wr, &ToClient::Done { id, status, output }).await?;
            }
            ToService::Import { id, campaigns } => {
                let (status, output) = self.change(Change::Import(campaigns)).await;
                wire::write(wr, &ToClient::Done { id, status, output }).await?;
            }
            ToService::Remove { id, campaign } => {
                let (status, output) = self.change(Change::Remove(campaign)).await;
                wire::write(wr, &ToClient::Done { id, status, output }).await?;
            }
        }
        Ok(())
    }

    async fn act<W: AsyncWrite + Unpin>(&mut self, act: Act, wr: &mut W) -> std::io::Result<()> {
        if act.is_action() && (self.client.read_only || self.ctx.read_only) {
            let who = if self.ctx.read_only { "the service" } else { "this client" };
            let message = format!("{who} is read-only: actions are refused");
            return wire::write(wr, &ToClient::Error { message }).await;
        }
        tracing::info!(user = %self.client.user, "{act:?}");
        if self.ctx.commands.send(act.command(self.client.user.clone())).await.is_err() {
            wire::write(wr, &ToClient::Error { message: "the engine has stopped".into() }).await?;
        }
        Ok(())
    }

    /// Imports or removes campaigns, then has the service plan its channels again.
    async fn change(&self, change: Change) -> (u8, String) {
        if self.client.read_only || self.ctx.read_only {
            return (2, "error: a read-only client or service changes no campaign\n".into());
        }
        tracing::info!(user = %self.client.user, "{change:?}");
        let (tx, rx) = oneshot::channel();
        let job = StoreJob(Box::new(move |store: &Store| {
            let _ = tx.send(change.apply(store));
        }));
        if self.ctx.commands.send(Command::WithStore(job)).await.is_err() {
            return (1, "error: the engine has stopped\n".into());
        }
        let (status, output) = rx.await.unwrap_or((1, "error: the engine dropped the change\n".into()));
        if status != 0 {
            return (status, output);
        }
        let (done_tx, done_rx) = oneshot::channel();
        if self.ctx.replan.send(done_tx).await.is_err() {
            return (1, format!("{output}error: the service is stopping\n"));
        }
        match done_rx.await {
            Ok(Ok(())) => (0, output),
            Ok(Err(e)) => (1, format!("{output}error: planning the channels again: {e}\n")),
            Err(_) => (1, format!("{output}error: the service is stopping\n")),
        }
    }

    /// Runs a command line on the engine's store.
    async fn run(&self, args: Vec<String>) -> (u8, String) {
        tracing::info!(user = %self.client.user, "runs {}", args.join(" "));
        let (tx, rx) = oneshot::channel();
        let run = self.ctx.run.clone();
        let job = StoreJob(Box::new(move |store: &Store| {
            let _ = tx.send(run(args, store));
        }));
        if self.ctx.commands.send(Command::WithStore(job)).await.is_err() {
            return (1, "the engine has stopped\n".into());
        }
        rx.await.unwrap_or((1, "the engine dropped the command\n".into()))
    }

    /// Sends the client's chart or analysis when it asked for another, or when it is due.
    async fn refresh_detail<W: AsyncWrite + Unpin>(&mut self, wr: &mut W, now: bool) -> std::io::Result<()> {
        let every = match &self.detail {
            Detail::None => return Ok(()),
            Detail::Series { .. } => SERIES_EVERY,
            Detail::Analysis { .. } => ANALYSIS_EVERY,
        };
        if !now && self.detail_at.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.detail_at = Some(Instant::now());
        match self.detail.clone() {
            Detail::None => Ok(()),
            Detail::Series { key, window } => {
                let (reply, rx) = oneshot::channel();
                if self.ctx.commands.send(Command::SeriesFor { key, window, reply }).await.is_err() {
                    return Ok(());
                }
                let series = rx.await.ok();
                if series.is_some() && series == self.series {
                    return Ok(());
                }
                let delta = series.as_ref().map(|s| wire::SeriesDelta::new(s, self.series.as_ref()));
                self.series = series;
                wire::write(wr, &ToClient::Series { series: delta }).await
            }
            Detail::Analysis { campaign, window, against } => {
                let (reply, rx) = oneshot::channel();
                if self.ctx.commands.send(Command::AnalysisFor { campaign, window, against, reply }).await.is_err() {
                    return Ok(());
                }
                let analysis = rx.await.ok().flatten();
                wire::write(wr, &ToClient::Analysis { analysis }).await
            }
        }
    }
}
