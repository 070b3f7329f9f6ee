//! Command-line entry points: the cockpit on a database, the demo, the simulator alone, and
//! campaign management. Errors a user can fix are printed as one line naming the thing, with
//! exit code 2 for bad input and 1 for everything else.

/// Writes a line of a command's output (to a buffer: printed here, or sent to a client of a
/// service).
macro_rules! say {
    ($out:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($t)*);
    }};
}

mod auth;
mod campaign;
pub mod check;
pub mod config;
mod note;
mod report;
mod serve;
pub(crate) mod source;
mod task;
mod template;

pub use serve::Exit;

use crate::clock::{Clock, ScaledClock, SharedClock, SystemClock};
use crate::domain::Campaign;
use crate::domain::campaign::Format;
use crate::sim::model::Network;
use crate::sim::scenario::Scenario;
use crate::store::Store;
use crate::ui::app::App;
use crate::ui::theme::Theme;
use clap::{Parser, Subcommand, ValueEnum};
use color_eyre::eyre::WrapErr;
use config::{Config, default_db, parse_duration, state_dir};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "cockpit",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("COCKPIT_COMMIT"), ")"),
    about = "A terminal cockpit for marketing campaigns: live KPIs, goal pacing and source health."
)]
pub struct Cli {
    /// Database path (default: the XDG data dir, or $COCKPIT_DB).
    #[arg(long, global = true, env = "COCKPIT_DB")]
    pub db: Option<PathBuf>,
    /// Colour theme: default, light, high-contrast, mono, or a .toml file. NO_COLOR selects mono.
    #[arg(long, global = true, env = "COCKPIT_THEME")]
    pub theme: Option<String>,
    /// How often to poll sources whose channels do not set poll_interval.
    #[arg(long, global = true, value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Ring the terminal bell when a critical alert fires.
    #[arg(long, global = true)]
    pub bell: bool,
    /// Look, never touch: every action (apply, undo, pause, budget) is refused.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Attach to the service listening on HOST:PORT (`serve --listen HOST:PORT`), with the
    /// token in COCKPIT_SERVICE_TOKEN, instead of the one holding --db.
    #[arg(long, global = true, env = "COCKPIT_SERVICE")]
    pub service: Option<String>,
    /// Bearer tokens for sources and control endpoints: `COCKPIT_SOURCE_TOKEN`,
    /// `COCKPIT_CONTROL_TOKEN`, or `source_token` / `control_token` in a config file only its
    /// owner can read.
    #[arg(skip)]
    pub source_token: Option<crate::poll::Secret>,
    #[arg(skip)]
    pub control_token: Option<crate::poll::Secret>,
    #[arg(skip)]
    pub token_over_http: bool,
    /// `[secrets]` of the config file, for mapped sources' requests.
    #[arg(skip)]
    pub secrets: std::collections::BTreeMap<String, crate::poll::Secret>,
    /// `[credentials.*]` of the config file.
    #[arg(skip)]
    pub credentials: crate::poll::credential::Registry,
    /// `[notify]` of the config file.
    #[arg(skip)]
    pub notify: config::Notify,
    /// The key bindings, `[keys]` of the config file applied.
    #[arg(skip)]
    pub keys: crate::ui::keys::Keymap,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Start the simulated ad network with the demo campaigns and watch them live.
    Demo {
        /// Simulated seconds per real second (the header shows it).
        #[arg(long, default_value_t = 300.0)]
        speed: f64,
        /// A scenario file instead of the built-in demo.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Start from the present without recording the campaigns' simulated past.
        #[arg(long)]
        no_history: bool,
        #[command(flatten)]
        scale: Scale,
        /// Read the simulated network as this platform's reporting API, through its preset
        /// (meta-insights, google-ads, tiktok, oceanengine, baidu, ga4), or as a directory of
        /// report exports (csv); starts from the present.
        #[arg(long)]
        dialect: Option<String>,
        /// With --dialect: the simulated platform's access tokens live this long (1h, as
        /// Google's), and the cockpit signs in with renewing credentials (a refresh token,
        /// rotated where the platform rotates them) instead of a fixed token.
        #[arg(long, value_parser = config::parse_duration)]
        token_ttl: Option<Duration>,
        /// Run the demo as a service (`cockpit serve`) instead of in this terminal: attach to
        /// it from others with `cockpit --db PATH`.
        #[arg(long)]
        serve: bool,
    },
    /// Serve the simulated ad network only (stats and control endpoints).
    Sim {
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: String,
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
        #[command(flatten)]
        scale: Scale,
        /// Write the served campaigns as TOML files into this directory (for `campaign import`).
        #[arg(long)]
        write_campaigns: Option<PathBuf>,
        /// The campaign files written read the network as this platform's API (meta-insights,
        /// google-ads, tiktok, oceanengine, baidu, ga4; all are served either way), or as the
        /// report exports written to `--exports` (csv).
        #[arg(long)]
        dialect: Option<String>,
        /// Write daily report exports (CSV) of every campaign under this directory, one
        /// directory per campaign (default with `--dialect csv`: `exports` beside the campaign
        /// files).
        #[arg(long)]
        exports: Option<PathBuf>,
    },
    /// Data sources: see what a campaign's sources answer, as the cockpit would record it.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Manage campaigns in the database.
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// Back-test: the live rules over a channel's history, a stored one (--campaign ID
    /// --channel CH) or a CSV of its counters (--campaign-file FILE --channel CH --csv ROWS),
    /// print `timestamp,rule,state,severity,summary` per alert state change; a bare series
    /// (--csv alone) runs the anomaly detectors and prints `timestamp,value,score,alert`.
    Replay {
        /// A bare series (`timestamp,value` or `timestamp,numerator,denominator`), or with
        /// --campaign-file the channel's counters per interval
        /// (`timestamp,impressions,clicks,leads,conversions,spend,revenue`); `-` reads stdin.
        #[arg(long, required_unless_present = "campaign")]
        csv: Option<PathBuf>,
        /// The campaign file whose limits, goals and rule settings apply to --csv.
        #[arg(long, requires_all = ["channel", "csv"], conflicts_with = "campaign")]
        campaign_file: Option<PathBuf>,
        /// A stored campaign, replayed from the database.
        #[arg(long, requires = "channel", conflicts_with = "csv")]
        campaign: Option<String>,
        /// The channel replayed.
        #[arg(long)]
        channel: Option<String>,
        /// From this time (RFC 3339, or a date in the campaign's time zone); a stored channel only.
        #[arg(long, requires = "campaign")]
        from: Option<String>,
        /// To this time (exclusive); a stored channel only.
        #[arg(long, requires = "campaign")]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = crate::alert::replay::ReplayRule::Anomaly)]
        rule: crate::alert::replay::ReplayRule,
        /// The season: `auto` (each span also against the same time the day before for rows
        /// up to 2 h apart, the week before for daily rows, where that explains the series
        /// better than its level), `off`, or a period (24h, 7d).
        #[arg(long, default_value = "auto", value_parser = parse_season)]
        season: crate::alert::replay::Season,
        /// Score at or above which a point is anomalous: −log₁₀ of its tail probability
        /// (5 = 1 in 100,000; `replay --labels` shows how a threshold does).
        #[arg(long, default_value_t = 5.0)]
        threshold: f64,
        /// Smallest relative change that counts (0.3 = 30 %).
        #[arg(long, default_value_t = 0.3)]
        min_change: f64,
        /// Points the baseline remembers (its weights fade over about as many).
        #[arg(long, default_value_t = 6400)]
        window: usize,
        /// Points of each span seen before any verdict (72: three days of hours, as live).
        #[arg(long, default_value_t = 72)]
        min_history: usize,
        /// Alerting points in a row on one side that make a new normal (0: never; the
        /// baseline follows a lasting shift by itself, more slowly).
        #[arg(long, default_value_t = 0)]
        confirm: usize,
        /// Points after a score at the threshold whose scores are held at 0: an incident is
        /// scored once (the alert column still shows each point beyond the threshold).
        #[arg(long, default_value_t = 100)]
        quiet: usize,
        /// Labelled incidents (`from,to,label` rows): print how the replayed alerts match them
        /// (precision, recall, delay, false alarms a week) instead of the rows.
        #[arg(long)]
        labels: Option<PathBuf>,
    },
    /// List every action sent to a control endpoint, oldest first, with its outcome; times in
    /// each campaign's own time zone with its offset.
    Journal {
        #[arg(long)]
        json: bool,
        /// Only this campaign's actions.
        #[arg(long)]
        campaign: Option<String>,
        /// Only actions sent since: an RFC 3339 time, a date (midnight in the campaign's time
        /// zone), or a span back from now such as 24h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// Times in UTC instead of each campaign's time zone.
        #[arg(long)]
        utc: bool,
    },
    /// Write the review of a campaign or a period of it: goals, spend, KPIs per channel and
    /// segment, funnel, alerts, actions and their effect, notes, and the previous campaign.
    Report {
        id: String,
        #[arg(long, value_enum, default_value_t = crate::report::ReportFormat::Md)]
        format: crate::report::ReportFormat,
        /// Start of the period: RFC 3339, or a date (midnight in the campaign's time zone).
        #[arg(long)]
        from: Option<String>,
        /// End of the period (exclusive); the latest data by default.
        #[arg(long)]
        to: Option<String>,
        /// Write to a file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Annotations on a campaign's timeline.
    #[command(subcommand)]
    Note(NoteCmd),
    /// The launch checklists (`[[tasks]]` in the campaign files).
    #[command(subcommand)]
    Task(TaskCmd),
    /// The database itself: a backup, a check, a compaction.
    #[command(subcommand)]
    Db(DbCmd),
    /// The config file.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The credentials sources sign in with (`[credentials.NAME]` of the config file).
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Print shell completions: `cockpit completions bash > ~/.local/share/bash-completion/completions/cockpit`.
    Completions { shell: clap_complete::Shell },
    /// Watch without a terminal: poll, store, judge alerts and run confirmed actions, and let
    /// any number of cockpits (and check, journal, report, note, campaign list|show|export)
    /// attach. SIGTERM or SIGINT flushes and stops.
    Serve {
        /// Where to listen besides the database's own unix socket: `unix:PATH`, or
        /// `HOST:PORT` (clients must give COCKPIT_SERVICE_TOKEN). Repeatable.
        #[arg(long, value_parser = serve::parse_listen)]
        listen: Vec<serve::Listen>,
        /// Post alerts to this Alertmanager (API v2), e.g. http://127.0.0.1:9093; or
        /// `[notify.alertmanager]` in config.toml.
        #[arg(long)]
        alertmanager: Option<String>,
        /// Serve `/metrics` (Prometheus text format) on HOST:PORT.
        #[arg(long)]
        metrics: Option<String>,
    },
    /// Poll every source once, evaluate every alert rule, print what is firing; exit 0 when
    /// nothing is, 1 for warnings, 2 for critical alerts, 3 when the check itself failed.
    Check {
        /// Only this campaign.
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        json: bool,
        /// Poll and judge, but store nothing (the alert states stay as they were).
        #[arg(long)]
        dry_run: bool,
        /// Times in UTC instead of each campaign's time zone.
        #[arg(long)]
        utc: bool,
        /// Count acknowledged alerts in the exit code too (by default someone is on them: they
        /// are listed, and left out).
        #[arg(long)]
        include_acked: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SourceCmd {
    /// Fetch a campaign's sources once and print, per channel, the cumulative counters the
    /// cockpit would record (for a source read by periods: the sum since the campaign began).
    Test {
        /// A stored campaign's id, or a campaign file (tried without importing it and without
        /// a database).
        campaign: String,
        /// Only this channel.
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuthCmd {
    /// Each credential: its kind, the channels using it, when its tokens expire, its last
    /// refresh and error; never a secret.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Renew a credential now and say what happened.
    Test { name: String },
    /// Sign in: open the printed consent page, allow access; the code comes back to a
    /// loopback port, or is pasted (over SSH); the tokens go to the credential store, and a
    /// running service uses them at its next request.
    Login {
        name: String,
        /// The redirect address registered with the platform's app (Ocean Engine, Tencent,
        /// Kuaishou need one); the address the browser ends on is pasted here. Default: a
        /// loopback port on this machine.
        #[arg(long)]
        redirect_uri: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Write a commented config.toml with every key at its default (where `COCKPIT_CONFIG`
    /// or the XDG config directory says; an existing file is kept unless --force).
    Init {
        /// Print it instead.
        #[arg(long)]
        stdout: bool,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCmd {
    /// A consistent copy at PATH (a new path), also while a cockpit or service runs on it.
    Backup { path: PathBuf },
    /// Read every record back; print the schema version, and counts and sizes by tree.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Rewrite the database into a fresh file, dropping what sled keeps of old versions.
    Compact,
    /// Bring the database to this cockpit's schema (what opening it to write does anyway).
    Migrate,
}

#[derive(Subcommand, Debug)]
pub enum NoteCmd {
    /// Add a note to a campaign (and a channel) at a time (now by default).
    Add {
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        channel: Option<String>,
        /// RFC 3339, or a date; now when absent.
        #[arg(long)]
        at: Option<String>,
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// List the notes, alert events and actions on a campaign's timeline.
    List {
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// List the tasks, each campaign's overdue first, then by due time.
    List {
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Mark a task done (journaled as a note with who and when).
    Done {
        campaign: String,
        /// Its number in the campaign file (from 1, as `task list` shows), its title, or words of it.
        #[arg(required = true)]
        task: Vec<String>,
        /// Open it again instead.
        #[arg(long)]
        reopen: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CampaignCmd {
    /// Add or replace campaigns from TOML or JSON files.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a campaign's plan in a form `import` takes back unchanged.
    Export {
        id: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Toml)]
        format: ExportFormat,
        /// Write to a file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List campaigns.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a campaign's plan and its results so far.
    Show {
        id: String,
        /// The plan and each channel's stored results as JSON (channels in the shape of
        /// `source test`).
        #[arg(long)]
        json: bool,
    },
    /// Remove a campaign and everything recorded for it.
    Rm { id: String },
    /// Write a commented starting campaign to ID.toml (or -o FILE; - for standard output).
    New {
        /// ecommerce, webinar or app-install.
        #[arg(long, default_value = "ecommerce")]
        template: String,
        #[arg(default_value = "new-campaign")]
        id: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Open a campaign in $VISUAL or $EDITOR; checked when saved, it takes effect at once.
    Edit { id: String },
}

/// Synthetic campaigns instead of the demo set, for load tests.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Scale {
    /// Serve this many synthetic channels in all.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Spread the synthetic channels over this many campaigns.
    #[arg(long, default_value_t = 1, requires = "channels")]
    pub campaigns: usize,
    /// A source URL per channel, or per campaign (one answer lists all its channels).
    #[arg(long, value_enum, default_value_t = crate::sim::scale::Sources::Channel, requires = "channels")]
    pub sources: crate::sim::scale::Sources,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Toml,
    Json,
}

/// An error that is the user's input: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

fn open_store(path: &Path) -> color_eyre::Result<Store> {
    Ok(Store::open(path)?)
}

/// For a command that only reads: the file is left as it was.
fn read_store(path: &Path) -> color_eyre::Result<Store> {
    Ok(Store::open_read_only(path)?)
}

fn theme(cli: &Cli) -> color_eyre::Result<Theme> {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) && cli.theme.is_none() {
        return Ok(Theme::mono());
    }
    Theme::load(cli.theme.as_deref().unwrap_or("default")).map_err(|e| BadInput(e).into())
}

/// Fills what the command line left open from the config file.
fn layered(mut cli: Cli) -> color_eyre::Result<Cli> {
    let config = Config::load()?;
    cli.db = cli.db.or(config.db);
    cli.theme = cli.theme.or(config.theme);
    cli.interval = cli.interval.or_else(|| config.interval.as_deref().and_then(|i| parse_duration(i).ok()));
    cli.bell = cli.bell || config.bell.unwrap_or(false);
    cli.read_only = cli.read_only || config.read_only.unwrap_or(false);
    let env_secret = |var: &str| std::env::var(var).ok().filter(|t| !t.trim().is_empty());
    cli.source_token =
        env_secret("COCKPIT_SOURCE_TOKEN").or(config.source_token).map(|t| crate::poll::Secret::new(t.trim()));
    cli.control_token =
        env_secret("COCKPIT_CONTROL_TOKEN").or(config.control_token).map(|t| crate::poll::Secret::new(t.trim()));
    cli.token_over_http = config.token_over_http.unwrap_or(false);
    cli.secrets = config.secrets.iter().map(|(k, v)| (k.clone(), crate::poll::Secret::new(v.trim()))).collect();
    cli.notify = config.notify;
    cli.keys = config.keymap;
    crate::domain::source::pin_versions(
        config.presets.iter().filter_map(|(n, p)| Some((n.clone(), p.version.clone()?))).collect(),
    );
    if !config.credential_confs.is_empty() {
        let store = Config::path().map(|p| crate::poll::credstore::Store::beside(&p));
        cli.credentials = crate::poll::credential::Registry::new(
            config.credential_confs,
            store,
            crate::poll::credential::wall_clock(),
        )
        .map_err(BadInput)?;
    }
    Ok(cli)
}

/// Logs go to a daily-rotated file under the XDG state dir, never to the terminal.
fn init_file_log() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = state_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("cockpit")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&dir)
        .ok()?;
    // The queue to the writer thread is allocated in full at start: 4,096 lines (the default,
    // 128,000, is 4 MB of memory); past that a burst of lines is dropped, never waited for.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .lossy(true)
        .finish(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("COCKPIT_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter(filter).try_init().ok()?;
    Some(guard)
}

/// Runs a command; the process exit code on success (0 but for `check`).
pub fn run(cli: Cli) -> color_eyre::Result<u8> {
    let cli = layered(cli)?;
    if let Some(Cmd::Check { campaign, json, dry_run, utc, include_acked }) = &cli.command {
        let db = cli.db.clone().unwrap_or_else(default_db);
        let out = check::Output { json: *json, utc: *utc, include_acked: *include_acked };
        let checked = match serve::served(&cli, &db) {
            Some(sock) => serve::check_via_service(&sock, campaign.as_deref(), out),
            None => if *dry_run { read_store(&db) } else { open_store(&db) }.and_then(|store| {
                runtime()?.block_on(check::run(
                    store,
                    Arc::new(SystemClock),
                    campaign.as_deref(),
                    (out, *dry_run),
                    cli.interval.unwrap_or(Duration::from_secs(10)),
                    (cli.source_token.as_ref(), cli.token_over_http),
                    (&cli.secrets, &cli.credentials),
                ))
            }),
        };
        return match checked {
            Ok((report, code)) => {
                print!("{report}");
                Ok(code)
            }
            Err(e) => {
                let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                eprintln!("error: {}", msg.join(": "));
                Ok(3)
            }
        };
    }
    run_command(cli).map(|()| 0)
}

fn run_command(cli: Cli) -> color_eyre::Result<()> {
    let db = cli.db.clone().unwrap_or_else(default_db);
    if let Some(Cmd::Campaign(CampaignCmd::New { template, id, output, force })) = &cli.command {
        return campaign::new_campaign(template, id, output.as_deref(), *force);
    }
    // A database a service holds is reached through the service.
    let on_db = matches!(
        &cli.command,
        None | Some(
            Cmd::Journal { .. }
                | Cmd::Report { .. }
                | Cmd::Note(_)
                | Cmd::Task(_)
                | Cmd::Campaign(_)
                | Cmd::Db(_)
                | Cmd::Replay { campaign: Some(_), .. }
        )
    );
    if on_db && let Some(sock) = serve::served(&cli, &db) {
        return serve::via_service(&cli, &sock);
    }
    match &cli.command {
        Some(Cmd::Serve { listen, alertmanager, metrics }) => {
            serve::serve_command(&cli, &db, listen, alertmanager.as_deref(), metrics.as_deref())
        }
        None => cockpit_command(&cli, &db),
        Some(Cmd::Demo { speed, scenario, no_history, scale, dialect, token_ttl, serve }) => {
            let sign_in = (dialect.as_deref(), *token_ttl, *serve);
            demo_command(&cli, *speed, scenario.as_deref(), !*no_history, scale, sign_in)
        }
        Some(Cmd::Sim { listen, scenario, speed, scale, write_campaigns, dialect, exports }) => {
            let out = write_campaigns.as_deref().map(|d| (d, dialect.as_deref()));
            sim_command(listen, scenario.as_deref(), *speed, scale, out, exports.as_deref())
        }
        Some(Cmd::Source(SourceCmd::Test { campaign, channel, json })) => {
            // A campaign file is tried as it is, before any import and without a database.
            let path = Path::new(campaign);
            let looks_like_file = [".toml", ".json"].iter().any(|x| campaign.ends_with(x)) || path.is_file();
            let c = if looks_like_file {
                read_campaign(path)?
            } else {
                let store = open_store(&db)?;
                store.campaign(campaign)?.ok_or_else(|| {
                    BadInput(format!(
                        "no campaign '{campaign}' in {} (see `cockpit campaign list`; a campaign file is tried \
                         by its path, e.g. `cockpit source test winter.toml`)",
                        store.path().display()
                    ))
                })?
            };
            let text = runtime()?.block_on(source::test(&c, &cli, channel.as_deref(), *json))?;
            print!("{text}");
            Ok(())
        }
        Some(Cmd::Campaign(cmd)) => {
            let reads = matches!(cmd, CampaignCmd::Export { .. } | CampaignCmd::List { .. } | CampaignCmd::Show { .. });
            printed(|out| campaign::run(cmd, &if reads { read_store(&db)? } else { open_store(&db)? }, out))
        }
        Some(Cmd::Replay { campaign: Some(id), channel: Some(ch), from, to, labels, .. }) => {
            let labels = labels.as_deref().map(read_labels).transpose()?;
            printed(|out| {
                replay_stored(&read_store(&db)?, id, ch, (from.as_deref(), to.as_deref()), labels.as_deref(), out)
            })
        }
        Some(Cmd::Replay { campaign_file: Some(file), channel: Some(ch), csv: Some(csv), labels, .. }) => {
            let labels = labels.as_deref().map(read_labels).transpose()?;
            let campaign = read_campaign(file)?;
            let rows = crate::alert::backtest::read_counters_csv(&read_input(csv)?, &csv.display().to_string())
                .map_err(|e| BadInput(e.to_string()))?;
            let rows = rows.into_iter().map(|(at, c)| (at, c, false)).collect();
            printed(|out| replay_live(&campaign, ch, rows, labels.as_deref(), out))
        }
        // clap requires --csv or --campaign (with --channel).
        Some(Cmd::Replay { csv: None, .. }) => {
            Err(BadInput("replay: give --csv FILE or --campaign ID --channel CH".into()).into())
        }
        Some(Cmd::Replay {
            csv: Some(csv),
            rule,
            season,
            threshold,
            min_change,
            window,
            min_history,
            confirm,
            quiet,
            labels,
            ..
        }) => {
            let settings = crate::alert::replay::ReplaySettings {
                rule: *rule,
                season: *season,
                threshold: *threshold,
                min_change: *min_change,
                window: (*window).max(2),
                min_history: *min_history,
                confirm: *confirm,
                quiet: *quiet,
            };
            replay_command(csv, settings, labels.as_deref())
        }
        Some(Cmd::Journal { json, campaign, since, utc }) => {
            printed(|out| journal_command(&read_store(&db)?, *json, campaign.as_deref(), since.as_deref(), *utc, out))
        }
        Some(Cmd::Report { id, format, from, to, output }) => printed(|out| {
            report::run(&read_store(&db)?, id, *format, from.as_deref(), to.as_deref(), output.as_deref(), out)
        }),
        Some(Cmd::Note(cmd)) => {
            let reads = matches!(cmd, NoteCmd::List { .. });
            printed(|out| note::run(cmd, &if reads { read_store(&db)? } else { open_store(&db)? }, out))
        }
        Some(Cmd::Task(cmd)) => {
            let reads = matches!(cmd, TaskCmd::List { .. });
            printed(|out| task::run(cmd, &if reads { read_store(&db)? } else { open_store(&db)? }, out))
        }
        Some(Cmd::Db(DbCmd::Migrate)) => {
            let found = match Store::open_read_only(&db) {
                Ok(s) => s.schema_version()?,
                Err(crate::store::StoreError::NeedsMigration { found, .. }) => found,
                Err(e) => return Err(e.into()),
            };
            let store = open_store(&db)?;
            match found < crate::store::SCHEMA_VERSION {
                true => println!("migrated {} from schema {found} to {}", db.display(), store.schema_version()?),
                false => println!("{} is at schema {found}: nothing to migrate", db.display()),
            }
            Ok(())
        }
        Some(Cmd::Db(DbCmd::Compact)) => {
            let c = open_store(&db)?.compact()?;
            println!(
                "compacted {}: {:.1} MiB → {:.1} MiB ({} records) in {:.1} s",
                db.display(),
                c.before_bytes as f64 / 1_048_576.0,
                c.after_bytes as f64 / 1_048_576.0,
                c.records,
                c.elapsed.as_secs_f64()
            );
            Ok(())
        }
        Some(Cmd::Db(cmd)) => printed(|out| db_command(cmd, &open_store(&db)?, out)),
        // Answered by `run`, which needs its own exit code.
        Some(Cmd::Check { .. }) => Ok(()),
        Some(Cmd::Completions { shell }) => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "cockpit", &mut script);
            printed(|out| {
                out.push_str(&String::from_utf8_lossy(&script));
                Ok(())
            })
        }
        Some(Cmd::Config(ConfigCmd::Init { stdout, force })) => config_init(*stdout, *force),
        Some(Cmd::Auth(AuthCmd::List { json })) => {
            // The channels using each credential, when the database can be read.
            let campaigns = read_store(&db).and_then(|s| Ok(s.campaigns()?)).unwrap_or_default();
            print!("{}", auth::list(&cli.credentials, &campaigns, *json, chrono::Utc::now().timestamp_millis()));
            Ok(())
        }
        Some(Cmd::Auth(AuthCmd::Login { name, redirect_uri })) => {
            let out = runtime()?.block_on(auth::login(&cli.credentials, name, redirect_uri.as_deref()))?;
            print!("{out}");
            Ok(())
        }
        Some(Cmd::Auth(AuthCmd::Test { name })) => {
            let out = runtime()?.block_on(auth::test(&cli.credentials, name))?;
            print!("{out}");
            Ok(())
        }
    }
}

/// `cockpit db backup|check` on a store (here, or in the service that holds it).
fn db_command(cmd: &DbCmd, store: &Store, out: &mut String) -> color_eyre::Result<()> {
    match cmd {
        DbCmd::Backup { path } => {
            let records = store.backup(path)?;
            say!(out, "backed up {} to {} ({records} records)", store.path().display(), path.display());
        }
        DbCmd::Check { json } => {
            let r = store.check()?;
            if *json {
                say!(out, "{}", serde_json::to_string_pretty(&r)?);
            } else {
                say!(out, "{}: schema {}, {:.1} MiB on disk", r.path, r.schema, r.bytes_on_disk as f64 / 1_048_576.0);
                say!(
                    out,
                    "{} campaigns, {} channels, {} samples, {} alerts, {} journal entries, {} notes: every record reads back",
                    r.campaigns,
                    r.channels,
                    r.samples,
                    r.alerts,
                    r.journal,
                    r.notes
                );
                for (tree, n, bytes) in &r.trees {
                    say!(out, "  {tree:<16} {n:>10} records {:>10.1} KiB", *bytes as f64 / 1024.0);
                }
            }
        }
        DbCmd::Compact | DbCmd::Migrate => unreachable!("done above, with the store open for writing"),
    }
    Ok(())
}

/// Runs a command that writes its output to a buffer, and prints what it wrote (also when it
/// failed half-way).
fn printed(f: impl FnOnce(&mut String) -> color_eyre::Result<()>) -> color_eyre::Result<()> {
    let mut out = String::new();
    let done = f(&mut out);
    // A reader that went away (`| head`) has what it wanted: no panic, no error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).wrap_err("writing to stdout")?,
        _ => {}
    }
    done
}

/// `cockpit`: the cockpit on a database.
fn cockpit_command(cli: &Cli, db: &Path) -> color_eyre::Result<()> {
    let ui = ui(cli)?;
    let store = open_store(db)?;
    let _log = init_file_log();
    let interval = cli.interval.unwrap_or(Duration::from_secs(10));
    runtime()?.block_on(cockpit(store, Arc::new(SystemClock), ui, interval))
}

/// `cockpit demo`: the simulated network and the demo campaigns in a throw-away database
/// (unless `--db` names one to keep).
fn demo_command(
    cli: &Cli,
    speed: f64,
    scenario: Option<&Path>,
    history: bool,
    scale: &Scale,
    (dialect, token_ttl, serve): (Option<&str>, Option<Duration>, bool),
) -> color_eyre::Result<()> {
    let mut ui = ui(cli)?;
    ui.token_ttl = token_ttl;
    check_speed(speed)?;
    let scenario = with_scale(load_scenario(scenario)?, scale);
    let (db, temp) = match &cli.db {
        Some(p) => (p.clone(), false),
        None => (std::env::temp_dir().join(format!("cockpit-demo-{}", std::process::id())), true),
    };
    let store = open_store(&db)?;
    let _log = init_file_log();
    let interval = cli.interval.unwrap_or(Duration::from_secs(1));
    if serve {
        ui.serve = Some(serve::serve_opts(cli, &db, &[], None, None)?);
    }
    if let Some(d) = dialect {
        check_dialect(d)?;
        // The simulator checks that credentials are sent, not what they are.
        for name in crate::sim::dialect::stand_in_secrets(d) {
            ui.secrets.entry(name).or_insert_with(|| crate::poll::Secret::new("simulated"));
        }
    }
    let result = runtime()?.block_on(demo(store, scenario, speed, history && dialect.is_none(), ui, interval, dialect));
    if temp {
        let _ = std::fs::remove_dir_all(&db);
    }
    result
}

/// `cockpit sim`: the simulated network alone, optionally writing campaign files that point
/// at it.
fn sim_command(
    listen: &str,
    scenario: Option<&Path>,
    speed: f64,
    scale: &Scale,
    write_campaigns: Option<(&Path, Option<&str>)>,
    exports: Option<&Path>,
) -> color_eyre::Result<()> {
    check_speed(speed)?;
    let mut scenario = with_scale(load_scenario(scenario)?, scale);
    let mut exports = exports.map(absolute).transpose()?;
    if let Some((dir, dialect)) = write_campaigns {
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        crate::demo::rebase(&mut scenario.campaigns, &format!("http://{listen}"));
        if let Some(d) = dialect {
            check_dialect(d)?;
            let base = if d == "csv" {
                let root = match &exports {
                    Some(e) => e.clone(),
                    None => absolute(&dir.join("exports"))?,
                };
                exports = Some(root.clone());
                root.display().to_string()
            } else {
                format!("http://{listen}")
            };
            crate::sim::dialect::reformat(&mut scenario.campaigns, &base, d).map_err(BadInput)?;
        }
        for c in &scenario.campaigns {
            let path = dir.join(format!("{}.toml", c.id));
            std::fs::write(&path, c.to_toml()).wrap_err_with(|| format!("writing {}", path.display()))?;
        }
    }
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("warn").try_init().ok();
    runtime()?.block_on(sim_only(listen, scenario, speed, exports))
}

/// A path made absolute against the working directory.
fn absolute(p: &Path) -> color_eyre::Result<PathBuf> {
    std::path::absolute(p).wrap_err_with(|| format!("{}: cannot make the path absolute", p.display()))
}

/// How often the simulator rewrites today's report exports (real time).
const EXPORT_EVERY: Duration = Duration::from_secs(5);

/// `cockpit replay`: a detector over a CSV series (`-` reads standard input).
/// A file given on the command line, or standard input for `-`.
fn read_input(path: &Path) -> color_eyre::Result<String> {
    let name = path.display().to_string();
    Ok(if name == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| BadInput(format!("standard input: {e}")))?
    } else {
        std::fs::read_to_string(path).map_err(|e| BadInput(format!("{name}: {e}")))?
    })
}

/// `replay --campaign ID --channel CH`: the stored samples of a channel through the live rules.
fn replay_stored(
    store: &Store,
    id: &str,
    channel: &str,
    (from, to): (Option<&str>, Option<&str>),
    labels: Option<&[crate::alert::labels::Label]>,
    out: &mut String,
) -> color_eyre::Result<()> {
    let c = store.campaign(id)?.ok_or_else(|| BadInput(format!("no campaign '{id}'")))?;
    let from = from.map(|t| report::parse_time(t, &c, "--from")).transpose()?.unwrap_or(i64::MIN);
    let to = to.map(|t| report::parse_time(t, &c, "--to")).transpose()?.unwrap_or(i64::MAX);
    let samples = store.samples(&crate::domain::ChannelKey::new(id, channel), from, to)?;
    let rows = samples.into_iter().map(|s| (s.at, s.delta, s.first)).collect();
    replay_live(&c, channel, rows, labels, out)
}

/// How long after a labelled incident's end an alert of the live rules still belongs to it:
/// their longest default window (the KPI rule's 3 h).
const LIVE_GRACE_MS: i64 = 3 * 3_600_000;

/// A channel's rows through the live rules: the state changes as CSV, or with labels how the
/// alarms match them.
fn replay_live(
    campaign: &crate::domain::Campaign,
    channel: &str,
    rows: Vec<(i64, crate::domain::Counters, bool)>,
    labels: Option<&[crate::alert::labels::Label]>,
    out: &mut String,
) -> color_eyre::Result<()> {
    use crate::alert::{backtest, labels as l};
    let mut r = backtest::ChannelReplay::new(campaign, channel).map_err(BadInput)?;
    let span = rows.first().zip(rows.last()).map_or((0, 0), |(a, b)| (a.0, b.0));
    let changes = backtest::replay_changes(&mut r, rows);
    match labels {
        Some(labels) => {
            let alarms = l::alarms_of_changes(&changes, span.1);
            out.push_str(&l::judge(&alarms, labels, span.1 - span.0, LIVE_GRACE_MS).report());
        }
        None => out.push_str(&backtest::changes_csv(&changes, campaign)),
    }
    Ok(())
}

fn read_labels(path: &Path) -> color_eyre::Result<Vec<crate::alert::labels::Label>> {
    let text = read_input(path)?;
    Ok(crate::alert::labels::read_labels(&text, &path.display().to_string()).map_err(|e| BadInput(e.to_string()))?)
}

/// `--season auto|off|PERIOD`.
fn parse_season(s: &str) -> Result<crate::alert::replay::Season, String> {
    use crate::alert::replay::Season;
    match s {
        "auto" => Ok(Season::Auto),
        "off" | "none" => Ok(Season::Off),
        _ => match config::parse_duration(s) {
            Ok(d) if d.as_millis() >= 2 => Ok(Season::Every(d.as_millis() as i64)),
            Ok(_) => Err(format!("'{s}': a season must be longer than that")),
            Err(e) => Err(format!("'{s}' is not auto, off or a period: {e}")),
        },
    }
}

/// Rows of a bare series, with how the grace after a label is measured: three rows.
const SERIES_GRACE_ROWS: i64 = 3;

fn replay_command(
    csv: &Path,
    settings: crate::alert::replay::ReplaySettings,
    labels: Option<&Path>,
) -> color_eyre::Result<()> {
    use crate::alert::replay::{read_csv, run};
    let threshold = settings.threshold;
    if !(threshold.is_finite() && threshold >= 1.0) {
        return Err(BadInput(format!(
            "--threshold {threshold}: a score is −log₁₀ of the tail probability (5 = 1 in 100,000); give 1 or more"
        ))
        .into());
    }
    let labels = labels.map(read_labels).transpose()?;
    let name = csv.display().to_string();
    let text = read_input(csv)?;
    let rows = read_csv(&text, &name).map_err(|e| BadInput(e.to_string()))?;
    let replayed = run(&rows, settings);
    for note in &replayed.notes {
        eprintln!("replay: {note}");
    }
    let out = match labels {
        Some(labels) => {
            let span = rows.first().zip(rows.last()).map_or(0, |(a, b)| b.at_ms - a.at_ms);
            let grace = SERIES_GRACE_ROWS * replayed.interval.unwrap_or(0);
            crate::alert::labels::judge(&replayed.alarms(&rows), &labels, span, grace).report()
        }
        None => replayed.csv(&rows),
    };
    printed(|o| {
        o.push_str(&out);
        Ok(())
    })
}

/// `cockpit journal`: every action sent (of a campaign, since a time), oldest first, each at
/// its campaign's local time with the offset (or in UTC).
pub(crate) fn journal_command(
    store: &Store,
    json: bool,
    campaign: Option<&str>,
    since: Option<&str>,
    utc: bool,
    out: &mut String,
) -> color_eyre::Result<()> {
    let campaigns = store.campaigns()?;
    if let Some(id) = campaign
        && !campaigns.iter().any(|c| c.id == id)
    {
        let known: Vec<&str> = campaigns.iter().map(|c| c.id.as_str()).collect();
        return Err(BadInput(format!("--campaign {id}: no such campaign (known: {})", known.join(", "))).into());
    }
    let offset = |id: &str| {
        let zone = campaigns.iter().find(|c| c.id == id).map(|c| *c.start.offset());
        zone.filter(|_| !utc).unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("UTC"))
    };
    let since_ms = match since {
        None => None,
        Some(text) => Some(since_time(text, campaign.map(&offset).unwrap_or_else(|| offset("")))?),
    };
    let entries: Vec<_> = store
        .journal()?
        .into_iter()
        .filter(|e| campaign.is_none_or(|c| e.campaign == c) && since_ms.is_none_or(|s| e.wall_ms >= s))
        .collect();
    if json {
        say!(out, "{}", serde_json::to_string_pretty(&entries)?);
    } else if entries.is_empty() {
        let scope = match (campaign, since) {
            (Some(c), Some(s)) => format!(" for {c} since {s}"),
            (Some(c), None) => format!(" for {c}"),
            (None, Some(s)) => format!(" since {s}"),
            (None, None) => String::new(),
        };
        if scope.is_empty() {
            say!(out, "the journal is empty: no action has been sent from this database");
        } else {
            say!(out, "no action has been sent{scope} from this database");
        }
    } else {
        for e in &entries {
            let when = chrono::DateTime::from_timestamp_millis(e.wall_ms)
                .map(|t| t.with_timezone(&offset(&e.campaign)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let rec = e.recommendation.as_deref().map(|r| format!(" [following {r}]")).unwrap_or_default();
            say!(out, "{when} {}{rec}", e.line());
        }
    }
    Ok(())
}

/// `--since`: RFC 3339, a date (midnight at `offset`), or a span back from now (`24h`, `7d`).
fn since_time(text: &str, offset: chrono::FixedOffset) -> color_eyre::Result<i64> {
    let t = text.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let local = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_local_timezone(offset);
        return Ok(local.single().map_or(0, |l| l.timestamp_millis()));
    }
    if let Ok(span) = humantime::parse_duration(t) {
        return Ok(chrono::Utc::now().timestamp_millis() - span.as_millis() as i64);
    }
    Err(BadInput(format!("--since '{text}': write an RFC 3339 time, a date like 2026-12-07, or a span like 24h"))
        .into())
}

fn check_speed(speed: f64) -> color_eyre::Result<()> {
    if !(speed.is_finite() && speed > 0.0 && speed <= 100_000.0) {
        return Err(BadInput(format!("--speed {speed}: must be a number in (0, 100000]")).into());
    }
    Ok(())
}

fn runtime() -> color_eyre::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("starting the async runtime")
}

/// A scenario and the campaigns it serves.
struct LoadedScenario {
    scenario: Scenario,
    campaigns: Vec<Campaign>,
}

fn load_scenario(path: Option<&Path>) -> color_eyre::Result<LoadedScenario> {
    let Some(path) = path else {
        let mut campaigns = crate::demo::campaigns();
        campaigns.extend(crate::demo::past_campaigns());
        return Ok(LoadedScenario { scenario: crate::demo::scenario(), campaigns });
    };
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading scenario {name}"))?;
    let scenario = Scenario::parse(&text, &name).map_err(BadInput)?;
    let campaigns = if scenario.campaigns.is_empty() {
        crate::demo::campaigns()
    } else {
        let dir = path.parent().unwrap_or(Path::new("."));
        scenario.campaigns.iter().map(|f| read_campaign(&dir.join(f))).collect::<color_eyre::Result<_>>()?
    };
    Ok(LoadedScenario { scenario, campaigns })
}

/// Replaces the scenario's campaigns with synthetic ones when `--channels` is given.
fn with_scale(mut loaded: LoadedScenario, scale: &Scale) -> LoadedScenario {
    if let Some(n) = scale.channels {
        // Synthetic campaigns run around the present, so a cockpit on the wall clock agrees.
        loaded.scenario.start = None;
        let start = chrono::Utc::now().fixed_offset();
        loaded.campaigns =
            crate::sim::scale::campaigns(scale.campaigns, n, scale.sources, crate::demo::DEFAULT_SIM_ORIGIN, start);
        loaded.scenario.channels.clear();
        loaded.scenario.events.clear();
    }
    loaded
}

impl Cli {
    /// The command line of this process. The global options (`--db`, `--theme`, …) are listed
    /// once, in `cockpit --help`; each subcommand's help names only its own and points there.
    pub fn from_env() -> Cli {
        use clap::FromArgMatches;
        let matches = Cli::command_once().get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// The command with the global options hidden under the subcommands.
    pub fn command_once() -> clap::Command {
        use clap::CommandFactory;
        fn hide_globals(c: clap::Command) -> clap::Command {
            let c = c.mut_args(|a| if a.is_global_set() { a.hide(true) } else { a });
            let names: Vec<String> = c.get_subcommands().map(|s| s.get_name().to_string()).collect();
            names.into_iter().fold(c, |c, n| c.mut_subcommand(n, hide_globals)).after_help(
                "Global options (--db, --theme, --interval, --bell, --read-only, --service) are listed in `cockpit --help`.",
            )
        }
        let mut cmd = Cli::command();
        cmd.build();
        let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
        names.into_iter().fold(cmd, |c, n| c.mut_subcommand(n, hide_globals))
    }
}

/// `cockpit config init`: the commented template, printed or written (never over a file
/// without `--force`), readable by its owner only since it may come to hold tokens.
fn config_init(stdout: bool, force: bool) -> color_eyre::Result<()> {
    if stdout {
        return printed(|out| {
            out.push_str(config::TEMPLATE);
            Ok(())
        });
    }
    let path = Config::path().ok_or_else(|| BadInput("no config directory: set COCKPIT_CONFIG".into()))?;
    if path.exists() && !force {
        return Err(BadInput(format!("{} exists: keep it, or write over it with --force", path.display())).into());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .wrap_err_with(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, config::TEMPLATE.as_bytes())
        .wrap_err_with(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

pub fn read_campaign(path: &Path) -> color_eyre::Result<Campaign> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| BadInput(format!("{name}: {e}")))?;
    Campaign::parse(&text, Format::for_path(&name), &name).map_err(|e| BadInput(e.to_string()).into())
}

/// Starts the simulator on `listener` with its own scaled clock starting at `start_ms`.
fn start_sim(
    listener: tokio::net::TcpListener,
    loaded: &LoadedScenario,
    start_ms: i64,
    speed: f64,
    history: Option<&Store>,
) -> color_eyre::Result<(crate::sim::SimServer, SharedClock)> {
    let clock: SharedClock = Arc::new(ScaledClock::new(start_ms, speed));
    let (channels, incidents) = loaded.scenario.build(&loaded.campaigns, start_ms).map_err(BadInput)?;
    let net = match history {
        Some(store) => {
            // From the first campaign's start, recording hour by hour up to now.
            let first = loaded.campaigns.iter().map(Campaign::start_ms).min().unwrap_or(start_ms).min(start_ms);
            let mut net = Network::new(channels, incidents, first);
            let n = crate::sim::history::record(store, &mut net, &loaded.campaigns, start_ms)?;
            tracing::info!("recorded {n} hourly samples of simulated history");
            net
        }
        None => Network::new(channels, incidents, start_ms),
    };
    let server = crate::sim::serve(listener, net, clock.clone()).wrap_err("starting the simulator")?;
    Ok((server, clock))
}

async fn sim_only(
    listen: &str,
    loaded: LoadedScenario,
    speed: f64,
    exports: Option<PathBuf>,
) -> color_eyre::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.wrap_err_with(|| format!("listening on {listen}"))?;
    let start_ms = loaded.scenario.start.map_or_else(|| SystemClock.now_ms(), |s| s.timestamp_millis());
    let (mut server, _clock) = start_sim(listener, &loaded, start_ms, speed, None)?;
    if let Some(root) = exports {
        server
            .export_csv(root.clone(), EXPORT_EVERY)
            .wrap_err_with(|| format!("writing exports to {}", root.display()))?;
        println!("writing report exports under {} every {}s", root.display(), EXPORT_EVERY.as_secs());
    }
    let n: usize = loaded.campaigns.iter().map(|c| c.channels.len()).sum();
    println!("simulating {n} channels of {} campaigns at ×{speed} on {}", loaded.campaigns.len(), server.base_url());
    for c in &loaded.campaigns {
        println!("  {}/stats/{}   control: POST {}/control/{}", server.base_url(), c.id, server.base_url(), c.id);
    }
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

async fn demo(
    store: Store,
    loaded: LoadedScenario,
    speed: f64,
    history: bool,
    mut ui: Ui,
    interval: Duration,
    dialect: Option<&str>,
) -> color_eyre::Result<()> {
    // Resume where an earlier run on the same database stopped, so its samples stay in order.
    let mut start_ms = loaded.scenario.start.map_or_else(|| SystemClock.now_ms(), |s| s.timestamp_millis());
    let mut fresh = true;
    for c in &loaded.campaigns {
        for ch in &c.channels {
            if let Some(cur) = store.cursor(&crate::domain::ChannelKey::new(&c.id, &ch.id))? {
                start_ms = start_ms.max(cur.at);
                fresh = false;
            }
        }
    }
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.wrap_err("binding a loopback port for the simulator")?;
    // A new database gets the campaigns' simulated past, so there is history to analyse.
    let (mut server, clock) = start_sim(listener, &loaded, start_ms, speed, (fresh && history).then_some(&store))?;
    if !fresh {
        resume_counters(&server, &store)?;
    }
    let mut campaigns = loaded.campaigns.clone();
    crate::demo::rebase(&mut campaigns, &server.base_url());
    let exports = std::env::temp_dir().join(format!("cockpit-demo-exports-{}", std::process::id()));
    if let Some(d) = dialect {
        let base = if d == "csv" { exports.display().to_string() } else { server.base_url() };
        crate::sim::dialect::reformat(&mut campaigns, &base, d).map_err(BadInput)?;
        if d == "csv" {
            server
                .export_csv(exports.clone(), EXPORT_EVERY)
                .wrap_err_with(|| format!("writing exports to {}", exports.display()))?;
        }
        if let Some(ttl) = ui.token_ttl {
            // The stand-in platform checks its tokens; the cockpit signs in as a team would.
            let kept = (!store.path().starts_with(std::env::temp_dir()))
                .then(|| crate::poll::credstore::Store::beside(store.path()));
            let conf = crate::sim::dialect::sign_in(&server, d, ttl).map_err(BadInput)?;
            for ch in campaigns.iter_mut().flat_map(|c| c.channels.iter_mut()) {
                ch.credentials = Some(conf.name.clone());
            }
            ui.credentials.insert(conf, kept, crate::poll::credential::wall_clock()).map_err(BadInput)?;
        }
    }
    for c in &campaigns {
        store.put_campaign(c)?;
    }
    let result = match ui.serve.take() {
        Some(mut opts) => {
            let db = store.path().to_path_buf();
            drop(store);
            opts.ready = Some(format!(
                "the demo is served: attach from another terminal with `cockpit --db {}`\nCtrl-C stops it.\n",
                db.display()
            ));
            serve::serve_on(&db, clock, ui.settings(interval), opts).await
        }
        None => cockpit(store, clock, ui, interval).await,
    };
    drop(server);
    let _ = std::fs::remove_dir_all(&exports);
    result
}

/// A dialect the simulator speaks, or a clear refusal.
fn check_dialect(d: &str) -> color_eyre::Result<()> {
    if crate::sim::dialect::DIALECTS.contains(&d) {
        return Ok(());
    }
    Err(BadInput(format!("--dialect {d}: the simulator speaks {}", crate::sim::dialect::DIALECTS.join(", "))).into())
}

/// How the screen looks and sounds.
struct Ui {
    theme: Theme,
    keys: crate::ui::keys::Keymap,
    bell: bool,
    read_only: bool,
    source_token: Option<crate::poll::Secret>,
    control_token: Option<crate::poll::Secret>,
    token_over_http: bool,
    secrets: std::collections::BTreeMap<String, crate::poll::Secret>,
    credentials: crate::poll::credential::Registry,
    /// The demo's simulated platform checks its tokens, which live this long.
    token_ttl: Option<Duration>,
    /// Serve instead of drawing (`demo --serve`).
    serve: Option<serve::ServeOpts>,
}

impl Ui {
    /// What the engine takes of it.
    fn settings(&self, interval: Duration) -> crate::serve::Settings {
        crate::serve::Settings {
            interval,
            read_only: self.read_only,
            source_token: self.source_token.clone(),
            control_token: self.control_token.clone(),
            token_over_http: self.token_over_http,
            secrets: self.secrets.clone(),
            credentials: self.credentials.clone(),
        }
    }
}

fn ui(cli: &Cli) -> color_eyre::Result<Ui> {
    Ok(Ui {
        theme: theme(cli)?,
        keys: cli.keys.clone(),
        bell: cli.bell,
        read_only: cli.read_only,
        source_token: cli.source_token.clone(),
        control_token: cli.control_token.clone(),
        secrets: cli.secrets.clone(),
        credentials: cli.credentials.clone(),
        token_ttl: None,
        token_over_http: cli.token_over_http,
        serve: None,
    })
}

/// A demo run again on its database: the simulated channels go on from the counters stored,
/// as a real platform's would, instead of starting again from zero (which the cockpit would
/// count as a reset and then as growth on top of what it had).
fn resume_counters(server: &crate::sim::SimServer, store: &Store) -> color_eyre::Result<()> {
    let mut net = server.network.lock().unwrap_or_else(|e| e.into_inner());
    for ch in &mut net.channels {
        if let Some(cur) = store.cursor(&crate::domain::ChannelKey::new(&ch.campaign, &ch.id))? {
            ch.resume(&cur);
        }
    }
    Ok(())
}

/// The cockpit proper: pollers → engine → UI, until the user quits or a signal arrives.
async fn cockpit(store: Store, clock: SharedClock, ui: Ui, interval: Duration) -> color_eyre::Result<()> {
    let settings = ui.settings(interval);
    let path = store.path().to_path_buf();
    // The first frame shows the campaigns' stored totals while every channel's state is read.
    let mut running = crate::serve::Running::start(store, clock.clone(), &settings)?;
    let mut app = App::new(running.snapshots.borrow().clone(), ui.theme, os_user());
    app.bell = ui.bell;
    app.keys = ui.keys;
    let mut terminal = crate::ui::terminal::init().wrap_err("setting up the terminal (is this a terminal?)")?;
    let outcome = loop {
        let outcome =
            crate::ui::run(&mut terminal, &mut app, running.snapshots.clone(), running.commands.clone()).await;
        if !matches!(outcome, Ok(crate::ui::REPLAN)) {
            break outcome;
        }
        // An edited campaign polls differently: the engine starts again (with it) under the
        // same screen.
        let restarted = async {
            running.stop().await?;
            crate::serve::Running::start(Store::open(&path)?, clock.clone(), &settings)
        };
        match restarted.await {
            Ok(r) => running = r,
            Err(e) => {
                crate::ui::terminal::restore();
                return Err(e).wrap_err("starting the engine again with the edited campaign");
            }
        }
        app.engine_restarted(running.snapshots.borrow().clone());
        app.message = Some("planned again with the edited campaign".into());
    };
    crate::ui::terminal::restore();
    running.stop().await?;
    let why = outcome.wrap_err("terminal input failed")?;
    tracing::info!("stopped: {why}");
    Ok(())
}

/// The OS user, for acknowledgements, notes and the journal: `$USER`, `$LOGNAME`, else the
/// account of our uid.
pub fn os_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"].iter().find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty())) {
        return u;
    }
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    });
    let name = uid.as_deref().and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
    });
    name.or(uid.map(|u| format!("uid {u}"))).unwrap_or_else(|| "unknown".into())
}
