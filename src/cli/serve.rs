//! `cockpit serve`, and every command on a database a service holds: the cockpit attaches,
//! `check` reads the service's state, `journal`, `report`, `note` and `campaign
//! list|show|export` are run by the service on its database.

use super::{BadInput, CampaignCmd, Cli, Cmd, NoteCmd, TaskCmd, os_user, runtime};
use crate::domain::Campaign;
use crate::serve::client::{self, Target};
use crate::serve::wire::{Act, ToService};
use crate::serve::{Service, Settings, server};
use crate::store::Store;
use clap::Parser;
use color_eyre::eyre::WrapErr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where `cockpit serve` listens.
#[derive(Debug, Clone)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

/// `unix:PATH` or `HOST:PORT`.
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    match s.strip_prefix("unix:") {
        Some(p) if !p.is_empty() => Ok(Listen::Unix(PathBuf::from(p))),
        Some(_) => Err("unix: needs a path".into()),
        None if s.parse::<std::net::SocketAddr>().is_ok()
            || s.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
        {
            Ok(Listen::Tcp(s.to_string()))
        }
        None => Err(format!("'{s}': unix:PATH or HOST:PORT")),
    }
}

/// The service to go through: the one `--service` names, or the one holding `db` if one
/// answers on its socket.
pub fn served(cli: &Cli, db: &Path) -> Option<Target> {
    if let Some(addr) = &cli.service {
        let token = std::env::var("COCKPIT_SERVICE_TOKEN").ok().filter(|t| !t.trim().is_empty());
        return Some(Target::Tcp { addr: addr.clone(), token: token.map(|t| crate::poll::Secret::new(t.trim())) });
    }
    let sock = crate::serve::socket_path(db);
    if !sock.exists() {
        return None;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(client::is_served(&sock)).then_some(Target::Unix(sock))
}

/// How a service listens and pages, checked before it starts.
pub struct ServeOpts {
    listen: Vec<Listen>,
    paging: Option<crate::serve::alertmanager::Config>,
    webhooks: Vec<crate::serve::webhook::Target>,
    /// Where `/metrics` is served.
    metrics: Option<String>,
    token: Option<crate::poll::Secret>,
    /// Printed once the service listens (`demo --serve`: how to attach).
    pub ready: Option<String>,
}

/// The service's options from the command line and the configuration; a bad one is named.
pub fn serve_opts(
    cli: &Cli,
    db: &Path,
    listen: &[Listen],
    alertmanager: Option<&str>,
    metrics: Option<&str>,
) -> color_eyre::Result<ServeOpts> {
    let am = cli.notify.alertmanager.as_ref();
    let paging = match alertmanager.map(str::to_string).or_else(|| am.map(|a| a.url.clone())) {
        Some(url) => {
            url::Url::parse(&url).map_err(|e| BadInput(format!("alertmanager URL '{url}': {e}")))?;
            let resend = match am.and_then(|a| a.resend.as_deref()) {
                Some(r) => {
                    super::parse_duration(r).map_err(|e| BadInput(format!("notify.alertmanager.resend: {e}")))?
                }
                None => Duration::from_secs(60),
            };
            let interval = cli.interval.unwrap_or(Duration::from_secs(10));
            Some(crate::serve::alertmanager::Config { url, resend, interval })
        }
        None => None,
    };
    let token = std::env::var("COCKPIT_SERVICE_TOKEN").ok().filter(|t| !t.trim().is_empty());
    if listen.iter().any(|l| matches!(l, Listen::Tcp(_))) && token.is_none() {
        return Err(BadInput("--listen HOST:PORT needs a token: set COCKPIT_SERVICE_TOKEN".into()).into());
    }
    let mut listen = listen.to_vec();
    if !listen.iter().any(|l| matches!(l, Listen::Unix(_))) {
        listen.push(Listen::Unix(crate::serve::socket_path(db)));
    }
    let webhooks = cli.notify.webhook.clone();
    for (i, w) in webhooks.iter().enumerate() {
        url::Url::parse(&w.url).map_err(|e| BadInput(format!("notify.webhook[{i}].url '{}': {e}", w.url)))?;
    }
    let metrics = metrics.map(str::to_string);
    let token = token.map(|t| crate::poll::Secret::new(t.trim()));
    Ok(ServeOpts { listen, paging, webhooks, metrics, token, ready: None })
}

/// `cockpit serve`: the engine and the API until SIGTERM or SIGINT (flushed, exit 0).
pub fn serve_command(
    cli: &Cli,
    db: &Path,
    listen: &[Listen],
    alertmanager: Option<&str>,
    metrics: Option<&str>,
) -> color_eyre::Result<()> {
    let opts = serve_opts(cli, db, listen, alertmanager, metrics)?;
    let _log = init_log();
    runtime()?.block_on(serve_on(db, Arc::new(crate::clock::SystemClock), settings(cli), opts))
}

/// Serves the database at `db` on `clock` until SIGTERM or SIGINT.
pub async fn serve_on(
    db: &Path,
    clock: crate::clock::SharedClock,
    mut settings: Settings,
    opts: ServeOpts,
) -> color_eyre::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let terminals = crate::ui::terminal::terminals();
    let (mut service, snapshots, commands) = Service::start(db, clock.clone(), &settings)?;
    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let (replan_tx, mut replan) = tokio::sync::mpsc::channel(8);
    let ctx = server::Ctx {
        snapshots: snapshots.clone(),
        commands: commands.clone(),
        read_only: settings.read_only,
        db_path: db.display().to_string(),
        token: opts.token,
        run: Arc::new(run_on_store),
        stopping,
        replan: replan_tx,
    };
    let notifiers = notify(opts.paging, opts.webhooks, &snapshots, &commands, &clock);
    let mut tasks = listen(&opts.listen, &ctx).await?;
    if let Some(addr) = &opts.metrics {
        tasks.push(serve_metrics(addr, snapshots.clone(), ctx.stopping.clone()).await?);
    }
    if let Some(text) = &opts.ready {
        use std::io::Write;
        // As far as standard output is there (it may be a terminal that has gone).
        let _ = std::io::stdout().write_all(text.as_bytes()).and_then(|()| std::io::stdout().flush());
    }
    let why = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => {
                // Run in a terminal that went away (a dropped SSH link): the end of the session,
                // not a request to read the configuration again.
                if crate::ui::terminal::any_hung_up(&terminals) {
                    break "the terminal went away";
                }
                // The configuration as at start, read again; the campaigns from the database.
                match super::layered(Cli::parse_from(std::env::args())) {
                    Ok(cli) => {
                        settings = Settings { read_only: settings.read_only, ..self::settings(&cli) };
                        tracing::info!("SIGHUP: planning again with the configuration re-read");
                        if let Err(e) = service.restart(&settings).await {
                            tracing::error!("planning again: {e}");
                            break "the engine could not start again";
                        }
                    }
                    Err(e) => tracing::error!("SIGHUP: the configuration is not taken: {e}"),
                }
            }
            Some(done) = replan.recv() => {
                tracing::info!("the campaigns changed: planning again");
                let r = service.restart(&settings).await.map_err(|e| e.to_string());
                let failed = r.is_err();
                let _ = done.send(r);
                if failed {
                    break "the engine could not start again";
                }
            }
        }
    };
    tracing::info!("{why}: stopping");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    service.stop().await?;
    for n in notifiers {
        n.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

type Task = tokio::task::JoinHandle<()>;

/// The notifiers: Alertmanager and each webhook, reading the state as it changes.
fn notify(
    paging: Option<crate::serve::alertmanager::Config>,
    webhooks: Vec<crate::serve::webhook::Target>,
    snapshots: &tokio::sync::watch::Receiver<Arc<crate::engine::snapshot::Snapshot>>,
    commands: &tokio::sync::mpsc::Sender<crate::engine::Command>,
    clock: &crate::clock::SharedClock,
) -> Vec<Task> {
    let mut out = Vec::new();
    if let Some(cfg) = paging {
        tracing::info!("alerts go to the Alertmanager at {}", cfg.url);
        out.push(tokio::spawn(crate::serve::alertmanager::run(
            cfg,
            snapshots.clone(),
            commands.clone(),
            clock.clone(),
        )));
    }
    for w in webhooks {
        tracing::info!("alerts go to a {:?} webhook", w.kind);
        out.push(tokio::spawn(crate::serve::webhook::run(w, snapshots.clone(), commands.clone(), clock.clone())));
    }
    out
}

/// Accepts clients on each address until the service stops.
async fn listen(listen: &[Listen], ctx: &server::Ctx) -> color_eyre::Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for l in listen {
        match l {
            Listen::Unix(path) => {
                let listener = server::bind_unix(path).await.map_err(BadInput)?;
                tracing::info!("listening on {}", path.display());
                eprintln!("cockpit serve: listening on {}", path.display());
                tasks.push(tokio::spawn(server::accept_unix(listener, path.clone(), ctx.clone())));
            }
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| BadInput(format!("listening on {addr}: {e}")))?;
                tracing::info!("listening on {addr}");
                eprintln!("cockpit serve: listening on {addr} (token required)");
                tasks.push(tokio::spawn(server::accept_tcp(listener, ctx.clone())));
            }
        }
    }
    Ok(tasks)
}

/// `/metrics` on `addr` until the service stops.
async fn serve_metrics(
    addr: &str,
    snapshots: tokio::sync::watch::Receiver<Arc<crate::engine::snapshot::Snapshot>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> color_eyre::Result<Task> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| BadInput(format!("--metrics {addr}: {e}")))?;
    eprintln!("cockpit serve: metrics on http://{}/metrics", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let s = snapshots.borrow().clone();
            async move {
                ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], crate::serve::metrics::exposition(&s))
            }
        }),
    );
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await;
    }))
}

/// What the engine takes from the command line and the configuration.
pub fn settings(cli: &Cli) -> Settings {
    Settings {
        interval: cli.interval.unwrap_or(Duration::from_secs(10)),
        read_only: cli.read_only,
        source_token: cli.source_token.clone(),
        control_token: cli.control_token.clone(),
        token_over_http: cli.token_over_http,
        secrets: cli.secrets.clone(),
        credentials: cli.credentials.clone(),
    }
}

/// Logs one line per event: to stderr when it is not a terminal (journald), else to the log
/// file.
fn init_log() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        return super::init_file_log();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("COCKPIT_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).try_init().ok();
    None
}

/// A client's command line run on the service's database: its exit status and output.
fn run_on_store(args: Vec<String>, store: &Store) -> (u8, String) {
    let cli = match Cli::try_parse_from(std::iter::once("cockpit".to_string()).chain(args)) {
        Ok(c) => c,
        Err(e) => return (2, e.to_string()),
    };
    let mut out = String::new();
    let done = match &cli.command {
        Some(Cmd::Journal { json, campaign, since, utc }) => {
            super::journal_command(store, *json, campaign.as_deref(), since.as_deref(), *utc, &mut out)
        }
        Some(Cmd::Report { id, format, from, to, output: None }) => {
            super::report::run(store, id, *format, from.as_deref(), to.as_deref(), None, &mut out)
        }
        Some(Cmd::Note(cmd @ (NoteCmd::List { .. } | NoteCmd::Add { .. }))) => super::note::run(cmd, store, &mut out),
        Some(Cmd::Task(cmd @ TaskCmd::List { .. })) => super::task::run(cmd, store, &mut out),
        Some(Cmd::Replay { campaign: Some(id), channel: Some(ch), from, to, labels, .. }) => {
            match labels.as_deref().map(super::read_labels).transpose() {
                Ok(labels) => {
                    super::replay_stored(store, id, ch, (from.as_deref(), to.as_deref()), labels.as_deref(), &mut out)
                }
                Err(e) => Err(e),
            }
        }
        Some(Cmd::Campaign(
            cmd @ (CampaignCmd::List { .. } | CampaignCmd::Show { .. } | CampaignCmd::Export { output: None, .. }),
        )) => super::campaign::run(cmd, store, &mut out),
        Some(Cmd::Db(cmd @ (super::DbCmd::Backup { .. } | super::DbCmd::Check { .. }))) => {
            super::db_command(cmd, store, &mut out)
        }
        other => return (2, format!("error: the service does not run {other:?}\n")),
    };
    match done {
        Ok(()) => (0, out),
        Err(e) => {
            let bad = e.chain().any(|c| c.is::<BadInput>());
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            (if bad { 2 } else { 1 }, format!("error: {}\n", msg.join(": ")))
        }
    }
}

/// An exit status a service's answer asks for.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// The command line of this process, as the service should run it: what it writes to a file
/// is left to this side, a file it reads is named by its absolute path (the service's working
/// directory is not ours).
fn args_for_service() -> (Vec<String>, Option<PathBuf>) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut output = None;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-o" || args[i] == "--output" {
            output = args.get(i + 1).map(PathBuf::from);
            args.drain(i..(i + 2).min(args.len()));
        } else if let Some(p) = args[i].strip_prefix("--output=") {
            output = Some(PathBuf::from(p));
            args.remove(i);
        } else if args[i] == "--labels"
            && let Some(p) = args.get(i + 1).and_then(|p| std::path::absolute(p).ok())
        {
            args[i + 1] = p.display().to_string();
            i += 2;
        } else {
            i += 1;
        }
    }
    (args, output)
}

/// Runs a command through the service at `sock`; prints (or writes) what it answers.
pub fn via_service(cli: &Cli, sock: &Target) -> color_eyre::Result<()> {
    let rt = runtime()?;
    match &cli.command {
        None => attach_ui(cli, sock),
        Some(Cmd::Note(NoteCmd::Add { campaign, channel, at: None, text })) => {
            let act = Act::Note { campaign: campaign.clone(), channel: channel.clone(), text: text.join(" ") };
            rt.block_on(client::act(sock, &os_user(), act))?;
            println!("noted on {campaign}");
            Ok(())
        }
        Some(Cmd::Task(TaskCmd::Done { campaign, task, reopen })) => {
            // Found here, against the plan the service holds, so that a task that is not there
            // is said at once; the engine marks it (and every attached cockpit shows it).
            let args = vec!["campaign".into(), "export".into(), campaign.clone()];
            let (code, text) = rt.block_on(client::run(sock, &os_user(), args))?;
            if code != 0 {
                return answered((code, text), None);
            }
            let plan = Campaign::parse(&text, crate::domain::campaign::Format::Toml, campaign)?;
            let i = plan.find_task(&task.join(" ")).map_err(BadInput)?;
            let title = plan.tasks[i].title.clone();
            if plan.tasks[i].done != *reopen {
                println!("'{title}' is {} already", if *reopen { "open" } else { "done" });
                return Ok(());
            }
            let act = Act::Task { campaign: campaign.clone(), task: title.clone(), done: !*reopen };
            rt.block_on(client::act(sock, &os_user(), act))?;
            println!("{}: {title} on {campaign}", if *reopen { "task reopened" } else { "task done" });
            Ok(())
        }
        Some(Cmd::Campaign(CampaignCmd::Import { files })) => {
            // Read and checked here, with file:line errors, before anything is sent.
            let campaigns = files.iter().map(|f| super::read_campaign(f)).collect::<color_eyre::Result<Vec<_>>>()?;
            let msg = ToService::Import { id: 1, campaigns };
            answered(rt.block_on(client::request(sock, &os_user(), cli.read_only, msg))?, None)
        }
        Some(Cmd::Db(super::DbCmd::Compact)) => Err(BadInput(format!(
            "the service at {sock} holds this database and compacts it by itself once it has grown by a quarter"
        ))
        .into()),
        Some(Cmd::Db(super::DbCmd::Migrate)) => {
            println!("the service at {sock} holds this database: it migrated it when it opened it");
            Ok(())
        }
        Some(Cmd::Db(super::DbCmd::Backup { path })) => {
            // The service writes it: a path of ours, made absolute.
            let to = std::path::absolute(path)
                .wrap_err_with(|| format!("{}: cannot make the path absolute", path.display()))?;
            let args = vec!["db".into(), "backup".into(), to.display().to_string()];
            answered(rt.block_on(client::run(sock, &os_user(), args))?, None)
        }
        Some(Cmd::Campaign(CampaignCmd::Edit { id })) => {
            // The plan the service holds, edited here; saved through the service, which plans
            // its channels again and shows it to every attached cockpit.
            let args = vec!["campaign".into(), "export".into(), id.clone()];
            let (code, text) = rt.block_on(client::run(sock, &os_user(), args))?;
            if code != 0 {
                return answered((code, text), None);
            }
            let plan = Campaign::parse(&text, crate::domain::campaign::Format::Toml, id)?;
            match crate::ui::editor::edit(&plan, &crate::ui::editor::editor())? {
                crate::ui::editor::Edited::Changed(c) => {
                    let msg = ToService::Import { id: 1, campaigns: vec![*c] };
                    answered(rt.block_on(client::request(sock, &os_user(), cli.read_only, msg))?, None)
                }
                crate::ui::editor::Edited::Unchanged(why) => {
                    println!("{id}: {why}");
                    Ok(())
                }
            }
        }
        Some(Cmd::Campaign(CampaignCmd::Rm { id })) => {
            let msg = ToService::Remove { id: 1, campaign: id.clone() };
            answered(rt.block_on(client::request(sock, &os_user(), cli.read_only, msg))?, None)
        }
        Some(
            Cmd::Journal { .. }
            | Cmd::Report { .. }
            | Cmd::Note(_)
            | Cmd::Task(_)
            | Cmd::Replay { .. }
            | Cmd::Db(_)
            | Cmd::Campaign(CampaignCmd::List { .. } | CampaignCmd::Show { .. } | CampaignCmd::Export { .. }),
        ) => {
            let (args, output) = args_for_service();
            answered(rt.block_on(client::run(sock, &os_user(), args))?, output)
        }
        Some(other) => Err(BadInput(format!("{other:?} does not run through a service")).into()),
    }
}

/// Prints (or writes to `output`) what the service answered, or fails with its status.
fn answered((code, text): (u8, String), output: Option<PathBuf>) -> color_eyre::Result<()> {
    if code != 0 {
        // What it did before failing, then why.
        let (done, error) = text.rsplit_once("error: ").unwrap_or(("", &text));
        print!("{done}");
        return Err(Exit { code, message: error.trim_end().to_string() }.into());
    }
    match output {
        Some(p) => {
            std::fs::write(&p, text).wrap_err_with(|| format!("writing {}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `check` against a service: its state now, judged as a check judges it.
pub fn check_via_service(
    sock: &Target,
    campaign: Option<&str>,
    out: super::check::Output,
) -> color_eyre::Result<(String, u8)> {
    let snap = runtime()?.block_on(client::snapshot(sock, &os_user()))?;
    if let Some(id) = campaign
        && snap.campaign(id).is_none()
    {
        let known: Vec<&str> = snap.campaigns.iter().map(|c| c.campaign.id.as_str()).collect();
        return Err(BadInput(format!("no campaign '{id}' (known: {})", known.join(", "))).into());
    }
    Ok(super::check::report(&snap, campaign, out))
}

/// The cockpit attached to the service at `sock`.
fn attach_ui(cli: &Cli, sock: &Target) -> color_eyre::Result<()> {
    let ui = super::ui(cli)?;
    let _log = super::init_file_log();
    runtime()?.block_on(async {
        let attached = client::attach(sock, &os_user(), ui.read_only).await?;
        let mut app = crate::ui::app::App::new(attached.snapshots.borrow().clone(), ui.theme, os_user());
        app.bell = ui.bell;
        app.keys = ui.keys;
        let mut terminal = crate::ui::terminal::init().wrap_err("setting up the terminal (is this a terminal?)")?;
        let outcome = crate::ui::run(&mut terminal, &mut app, attached.snapshots, attached.commands.clone()).await;
        crate::ui::terminal::restore();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if attached.commands.send(crate::engine::Command::Shutdown(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
        let _ = attached.task.await;
        let why = outcome.wrap_err("terminal input failed")?;
        tracing::info!("detached: {why}");
        Ok(())
    })
}
