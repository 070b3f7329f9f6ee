//! Where the cockpit keeps its files, and `config.toml`: settings that the command line and the
//! environment override. A malformed file is refused with its `file:line`; one that holds a
//! token must be mode 0600. Every key:
//!
//! ```toml
//! db = "/srv/cockpit/cockpit.db"
//! theme = "high-contrast"       # default, light, high-contrast, mono, or a theme file
//! interval = "30s"              # for channels without poll_interval
//! bell = true                   # ring once when a critical alert fires
//! read_only = false             # refuse every action (apply, undo, pause, budget)
//! source_token = "…"            # or COCKPIT_SOURCE_TOKEN
//! control_token = "…"           # or COCKPIT_CONTROL_TOKEN
//! token_over_http = false       # send the source token over plain http to other hosts too
//!
//! [secrets]                     # {secret:NAME} in a mapped source's request; the environment wins
//! COCKPIT_META_TOKEN = "…"
//!
//! [notify.alertmanager]         # cockpit serve posts its alerts here (or --alertmanager URL)
//! url = "http://127.0.0.1:9093"
//! resend = "1m"                 # a firing alert is posted again this often
//!
//! [[notify.webhook]]            # chat bots: json, feishu, dingtalk, wecom, slack (serve::webhook)
//! kind = "feishu"
//! url = "https://open.feishu.cn/open-apis/bot/v2/hook/…"
//! secret = "…"
//! ```

use super::BadInput;
use std::path::PathBuf;
use std::time::Duration;

/// A duration as the command line and the config file write it ("5s", "1m").
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 5s or 1m)"))
}

/// Settings from `$COCKPIT_CONFIG` or `$XDG_CONFIG_HOME/campaign-cockpit/config.toml`; the
/// command line and the environment win over it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub db: Option<PathBuf>,
    pub theme: Option<String>,
    pub interval: Option<String>,
    pub bell: Option<bool>,
    pub read_only: Option<bool>,
    pub source_token: Option<String>,
    pub control_token: Option<String>,
    /// Send the source token over plain http to hosts other than this one (off by default).
    pub token_over_http: Option<bool>,
    /// Values for `{secret:NAME}` in mapped sources' requests (the environment wins).
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, String>,
    /// Where `cockpit serve` sends its alerts.
    #[serde(default)]
    pub notify: Notify,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub alertmanager: Option<AlertmanagerConf>,
    /// Chat bots and webhooks (see `serve::webhook`).
    #[serde(default)]
    pub webhook: Vec<crate::serve::webhook::Target>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConf {
    /// Its base URL, `http://127.0.0.1:9093`.
    pub url: String,
    /// How often a firing alert is posted again (default 1m).
    pub resend: Option<String>,
}

impl Config {
    pub fn path() -> Option<PathBuf> {
        std::env::var_os("COCKPIT_CONFIG").map(PathBuf::from).or_else(|| {
            directories::ProjectDirs::from("", "", "campaign-cockpit").map(|d| d.config_dir().join("config.toml"))
        })
    }

    /// The config file, or defaults when there is none. A malformed file is an error naming
    /// its line.
    pub fn load() -> color_eyre::Result<Config> {
        let Some(path) = Config::path() else { return Ok(Config::default()) };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(BadInput(format!("{}: {e}", path.display())).into()),
        };
        let name = path.display().to_string();
        let config: Config = toml::from_str(&text).map_err(|e| {
            let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            BadInput(format!("{name}:{line}: {}", e.message().lines().next().unwrap_or("")))
        })?;
        if let Some(i) = &config.interval {
            parse_duration(i).map_err(|e| BadInput(format!("{name}: interval = \"{i}\": {e}")))?;
        }
        if config.source_token.is_some() || config.control_token.is_some() || !config.secrets.is_empty() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            if mode & 0o077 != 0 {
                return Err(BadInput(format!(
                    "{name} holds a token but others can read it (mode {mode:04o}): run chmod 600 {name}"
                ))
                .into());
            }
        }
        Ok(config)
    }
}

pub fn default_db() -> PathBuf {
    directories::ProjectDirs::from("", "", "campaign-cockpit")
        .map(|d| d.data_dir().join("cockpit.db"))
        .unwrap_or_else(|| PathBuf::from("cockpit.db"))
}

pub fn state_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "campaign-cockpit")
        .map(|d| d.state_dir().unwrap_or(d.data_local_dir()).to_path_buf())
        .unwrap_or_else(std::env::temp_dir)
}
