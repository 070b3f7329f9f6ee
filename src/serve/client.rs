//! The client's side of the API: a cockpit attached to a service sees the service's state
//! through the same watch channel and sends the same commands as one with its engine
//! in-process; one-shot commands (`check`, `journal`, …) ask and print.

use super::wire::{self, Act, Detail, Frame, ToClient, ToService};
use crate::engine::Command;
use crate::engine::snapshot::Snapshot;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

/// How often a client whose service went away tries again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// How long a one-shot command waits for the service's answer: a report or a backup of a
/// large database takes seconds; a service that says nothing for this long is stuck.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// Why attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// Nothing listens there: no service holds the database.
    #[error("no service at {0}")]
    NoService(Target),
    #[error("the service at {path} refused: {reason}")]
    Refused { path: Target, reason: String },
    #[error("the service at {path}: {reason}")]
    Broken { path: Target, reason: String },
}

/// Where a service is: its unix socket, or a TCP address with the service's token.
#[derive(Debug, Clone)]
pub enum Target {
    Unix(PathBuf),
    Tcp { addr: String, token: Option<crate::poll::Secret> },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "{}", p.display()),
            Target::Tcp { addr, .. } => f.write_str(addr),
        }
    }
}

/// A connection to a service, over either.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open, welcomed connection.
struct Link {
    stream: Box<dyn Stream>,
    info: LinkInfo,
}

/// What the service said of itself in its welcome.
#[derive(Clone)]
struct LinkInfo {
    read_only: bool,
    db_path: String,
    pid: u32,
}

async fn connect(path: &Target, user: &str, read_only: bool) -> Result<Link, AttachError> {
    let broken = |reason: String| AttachError::Broken { path: path.clone(), reason };
    let none = |_| AttachError::NoService(path.clone());
    let (mut stream, token): (Box<dyn Stream>, _) = match path {
        Target::Unix(p) => (Box::new(UnixStream::connect(p).await.map_err(none)?), None),
        Target::Tcp { addr, token } => {
            let s = tokio::net::TcpStream::connect(addr).await.map_err(none)?;
            let _ = s.set_nodelay(true);
            (Box::new(s), token.as_ref().map(|t| t.expose().to_string()))
        }
    };
    let hello = ToService::Hello { version: wire::API_VERSION, user: user.into(), read_only, token };
    wire::write(&mut stream, &hello).await.map_err(|e| broken(e.to_string()))?;
    match wire::read::<_, ToClient>(&mut stream).await.map_err(|e| broken(e.to_string()))? {
        Some(Frame::Message(ToClient::Welcome { version, read_only, db_path, pid }))
            if version == wire::API_VERSION =>
        {
            Ok(Link { stream, info: LinkInfo { read_only, db_path, pid } })
        }
        Some(Frame::Message(ToClient::Refused { reason })) => Err(AttachError::Refused { path: path.clone(), reason }),
        Some(Frame::Message(other)) => Err(broken(format!("answered {other:?} to a hello"))),
        Some(Frame::Bad(e)) => Err(broken(format!("answered what is not a message: {e}"))),
        None => Err(broken("closed the connection".into())),
    }
}

/// Whether a service listens at `path`.
pub async fn is_served(path: &std::path::Path) -> bool {
    UnixStream::connect(path).await.is_ok()
}

/// Runs a command line on the service's database: its exit status and what it printed.
pub async fn run(path: &Target, user: &str, args: Vec<String>) -> Result<(u8, String), AttachError> {
    request(path, user, true, ToService::Run { id: 1, args }).await
}

/// Sends one request (numbered 1) and waits for its answer: the exit status and the output.
pub async fn request(path: &Target, user: &str, read_only: bool, msg: ToService) -> Result<(u8, String), AttachError> {
    request_within(path, user, read_only, msg, ANSWER_WITHIN).await
}

/// [`request`], waiting at most `within` for the answer.
pub async fn request_within(
    path: &Target,
    user: &str,
    read_only: bool,
    msg: ToService,
    within: Duration,
) -> Result<(u8, String), AttachError> {
    let broken = |reason: String| AttachError::Broken { path: path.clone(), reason };
    let asked = async {
        let mut link = connect(path, user, read_only).await?;
        wire::write(&mut link.stream, &msg).await.map_err(|e| broken(e.to_string()))?;
        loop {
            match wire::read::<_, ToClient>(&mut link.stream).await.map_err(|e| broken(e.to_string()))? {
                Some(Frame::Message(ToClient::Done { id: 1, status, output })) => return Ok((status, output)),
                Some(Frame::Message(ToClient::Error { message })) => return Err(broken(message)),
                Some(Frame::Message(ToClient::Bye { reason })) => return Err(broken(reason)),
                Some(_) => {}
                None => return Err(broken("closed the connection before answering".into())),
            }
        }
    };
    tokio::time::timeout(within, asked).await.unwrap_or_else(|_| {
        Err(broken(format!("no answer within {} s: the service's log says what it is doing", within.as_secs())))
    })
}

/// Sends an act as `user` (a note from the command line) and leaves once the service has
/// welcomed it: the act is read before the connection's end.
pub async fn act(path: &Target, user: &str, act: Act) -> Result<(), AttachError> {
    let mut link = connect(path, user, false).await?;
    wire::write(&mut link.stream, &ToService::Act { act })
        .await
        .map_err(|e| AttachError::Broken { path: path.clone(), reason: e.to_string() })
}

/// The service's state now, once.
pub async fn snapshot(path: &Target, user: &str) -> Result<Snapshot, AttachError> {
    let mut link = connect(path, user, true).await?;
    let broken = |reason: String| AttachError::Broken { path: path.clone(), reason };
    wire::write(&mut link.stream, &ToService::Watch).await.map_err(|e| broken(e.to_string()))?;
    loop {
        match wire::read::<_, ToClient>(&mut link.stream).await.map_err(|e| broken(e.to_string()))? {
            Some(Frame::Message(ToClient::Snapshot { delta })) => {
                let mut s = wire::apply(&Snapshot::default(), *delta).map_err(broken)?;
                s.db_path = link.info.db_path;
                return Ok(s);
            }
            Some(Frame::Message(ToClient::Bye { reason })) => return Err(broken(reason)),
            Some(_) => {}
            None => return Err(broken("closed the connection".into())),
        }
    }
}

/// A cockpit attached to a service: the state to draw and where its commands go.
pub struct Attached {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub commands: mpsc::Sender<Command>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Attaches to the service at `path` as `user`; `read_only` refuses actions from this
/// client. Once attached, a service that goes away is waited for and attached to again (the
/// header says so meanwhile); the task ends when the UI sends `Shutdown`.
pub async fn attach(path: &Target, user: &str, read_only: bool) -> Result<Attached, AttachError> {
    let link = connect(path, user, read_only).await?;
    let mut state =
        State { base: Snapshot::default(), series: None, analysis: None, local_ro: read_only, generation: 0 };
    let (tx, snapshots) = watch::channel(Arc::new(state.view(&link.info, None)));
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (path, user) = (path.clone(), user.to_string());
    let task = tokio::spawn(async move { keep_attached(link, path, user, &mut state, tx, cmd_rx).await });
    Ok(Attached { snapshots, commands: cmd_tx, task })
}

/// What the client holds of the service's state.
struct State {
    base: Snapshot,
    series: Option<Arc<crate::engine::snapshot::SeriesView>>,
    analysis: Option<Arc<crate::analyze::data::Analysis>>,
    local_ro: bool,
    /// Moves with every change the UI must draw.
    generation: u64,
}

impl State {
    /// The snapshot the UI draws; `lost` says why the service is not there.
    fn view(&mut self, link: &LinkInfo, lost: Option<&str>) -> Snapshot {
        self.generation += 1;
        let mut s = self.base.clone();
        s.series = self.series.clone();
        s.analysis = self.analysis.clone();
        s.read_only |= self.local_ro || link.read_only;
        s.db_path = link.db_path.clone();
        s.generation = self.generation;
        s.service = Some(match lost {
            None => format!("service {}", link.pid),
            Some(why) => format!("SERVICE GONE ({why}), reconnecting"),
        });
        s
    }
}

/// How a session with the service ended.
enum End {
    /// The UI is done.
    Quit,
    Lost(String),
}

async fn keep_attached(
    mut link: Link,
    path: Target,
    user: String,
    state: &mut State,
    tx: watch::Sender<Arc<Snapshot>>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut detail = Detail::None;
    loop {
        let end = session(&mut link, state, &tx, &mut commands, &mut detail).await;
        let why = match end {
            End::Quit => return,
            End::Lost(why) => why,
        };
        tracing::warn!("the service went away: {why}");
        tx.send_replace(Arc::new(state.view(&link.info, Some(&why))));
        // Wait for it to come back, answering a quit meanwhile.
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(Command::Shutdown(done)) => {
                        let _ = done.send(());
                        return;
                    }
                    Some(_) => {}
                },
                _ = tokio::time::sleep(RECONNECT_EVERY) => {
                    match connect(&path, &user, state.local_ro).await {
                        Ok(l) => {
                            tracing::info!("attached again to the service (pid {})", l.info.pid);
                            link = l;
                            state.base = Snapshot::default();
                            break;
                        }
                        Err(AttachError::Refused { reason, .. }) => {
                            tx.send_replace(Arc::new(state.view(&link.info, Some(&reason))));
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }
}

/// One connection: the state in, the UI's commands out.
async fn session(
    link: &mut Link,
    state: &mut State,
    tx: &watch::Sender<Arc<Snapshot>>,
    commands: &mut mpsc::Receiver<Command>,
    detail: &mut Detail,
) -> End {
    let (mut rd, mut wr) = tokio::io::split(&mut link.stream);
    let mut out = vec![ToService::Watch];
    if *detail != Detail::None {
        out.push(ToService::Detail { detail: detail.clone() });
    }
    for m in out {
        if let Err(e) = wire::write(&mut wr, &m).await {
            return End::Lost(e.to_string());
        }
    }
    let (in_tx, mut inbox) = mpsc::channel(4);
    // Frames are read whole, apart from the select below.
    let reader = async move {
        loop {
            let f = wire::read::<_, ToClient>(&mut rd).await;
            let last = !matches!(f, Ok(Some(_)));
            if in_tx.send(f).await.is_err() || last {
                // The end is told through the inbox, after what came before it.
                return std::future::pending::<()>().await;
            }
        }
    };
    let info = link.info.clone();
    let work = async {
        loop {
            tokio::select! {
                msg = inbox.recv() => {
                    let msg = match msg {
                        Some(Ok(Some(Frame::Message(m)))) => m,
                        Some(Ok(Some(Frame::Bad(e)))) => {
                            tracing::warn!("the service sent what is not a message: {e}");
                            continue;
                        }
                        Some(Ok(None)) | None => return End::Lost("it closed the connection".into()),
                        Some(Err(e)) => return End::Lost(e.to_string()),
                    };
                    match msg {
                        ToClient::Snapshot { delta } => match wire::apply(&state.base, *delta) {
                            Ok(s) => state.base = s,
                            Err(e) => return End::Lost(e),
                        },
                        ToClient::Series { series } => {
                            state.series = series.map(|d| Arc::new(d.apply(state.series.as_deref())));
                        }
                        ToClient::Analysis { analysis } => state.analysis = analysis.map(Arc::new),
                        ToClient::Bye { reason } => return End::Lost(reason),
                        ToClient::Error { message } => {
                            let n = state.base.notice.as_ref().map_or(1, |(n, _)| n + 1);
                            state.base.notice = Some((n, message));
                        }
                        // What this client asked of the service (an edited plan) and how it went.
                        ToClient::Done { status, output, .. } => {
                            let n = state.base.notice.as_ref().map_or(1, |(n, _)| n + 1);
                            let said = output.lines().last().unwrap_or(if status == 0 { "done" } else { "failed" });
                            state.base.notice = Some((n, said.trim_start_matches("error: ").to_string()));
                        }
                        _ => continue,
                    }
                    tx.send_replace(Arc::new(state.view(&info, None)));
                }
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return End::Quit };
                    let m = match to_service(cmd, detail, state) {
                        Ok(Some(m)) => m,
                        Ok(None) => {
                            tx.send_replace(Arc::new(state.view(&info, None)));
                            continue;
                        }
                        Err(done) => {
                            let _ = done.send(());
                            return End::Quit;
                        }
                    };
                    if let Err(e) = wire::write(&mut wr, &m).await {
                        return End::Lost(e.to_string());
                    }
                }
            }
        }
    };
    tokio::select! {
        end = work => end,
        () = reader => unreachable!("the reader waits once done"),
    }
}

/// A UI command as a message, or `Ok(None)` when it changes only what this client shows;
/// `Err` with the answer channel when the UI quits.
fn to_service(
    cmd: Command,
    detail: &mut Detail,
    state: &mut State,
) -> Result<Option<ToService>, tokio::sync::oneshot::Sender<()>> {
    let act = |act: Act| Ok(Some(ToService::Act { act }));
    let new_detail = match cmd {
        Command::Shutdown(done) => return Err(done),
        Command::Ack { key, .. } => return act(Act::Ack { key }),
        Command::Silence { key, for_ms, .. } => return act(Act::Silence { key, for_ms }),
        Command::Note { campaign, channel, text, .. } => return act(Act::Note { campaign, channel, text }),
        Command::Task { campaign, task, done, .. } => return act(Act::Task { campaign, task, done }),
        // The service plans again with it, and every client sees it.
        Command::Plan { campaign, .. } => return Ok(Some(ToService::Import { id: 0, campaigns: vec![*campaign] })),
        Command::Apply { campaign, changes, recommendation, .. } => {
            return act(Act::Apply { campaign, changes, recommendation });
        }
        Command::Undo { entry, campaign, .. } => return act(Act::Undo { entry, campaign }),
        Command::Snooze { recommendation, for_ms } => return act(Act::Snooze { recommendation, for_ms }),
        Command::Series { key, window } => Detail::Series { key, window },
        Command::Analyze { campaign, window, against } => Detail::Analysis { campaign, window, against },
        Command::ClearDetail => Detail::None,
        Command::Focus(campaign) => return Ok(Some(ToService::Focus { campaign })),
        // Asked of an engine by its own service, never by a UI.
        Command::SeriesFor { .. } | Command::AnalysisFor { .. } | Command::WithStore(_) | Command::Paging(_) => {
            return Ok(None);
        }
    };
    if !matches!(new_detail, Detail::Series { .. }) {
        state.series = None;
    }
    if !matches!(new_detail, Detail::Analysis { .. }) {
        state.analysis = None;
    }
    *detail = new_detail.clone();
    Ok(Some(ToService::Detail { detail: new_detail }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service that welcomes a client and then never answers its command.
    async fn mute_service(path: PathBuf) -> tokio::task::JoinHandle<()> {
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _hello = wire::read::<_, ToService>(&mut s).await.unwrap();
            let hi = ToClient::Welcome { version: wire::API_VERSION, read_only: false, db_path: "db".into(), pid: 1 };
            wire::write(&mut s, &hi).await.unwrap();
            let _run = wire::read::<_, ToService>(&mut s).await.unwrap();
            // Holds the connection open, saying nothing.
            std::future::pending::<()>().await;
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_does_not_answer_is_an_error_naming_its_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let service = mute_service(sock.clone()).await;
        let target = Target::Unix(sock.clone());
        let msg = ToService::Run { id: 1, args: vec!["journal".into()] };
        let err = request_within(&target, "dana", true, msg, Duration::from_secs(120)).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&sock.display().to_string()), "{text}");
        assert!(text.contains("no answer within 120 s"), "{text}");
        service.abort();
    }
}
