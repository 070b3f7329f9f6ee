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

/// What `cockpit config init` writes: every key, commented out at its default.
pub const TEMPLATE: &str = r#"# Campaign Cockpit configuration. Every key is optional; the command line and the
# environment (COCKPIT_DB, COCKPIT_THEME, ...) win over what is written here.

# The database (default: the XDG data directory, campaign-cockpit/cockpit.db).
# db = "~/.local/share/campaign-cockpit/cockpit.db"

# Colour theme: default, light, high-contrast, mono, or a .toml file. NO_COLOR selects mono.
# theme = "default"

# How often sources are polled whose channels set no poll_interval (10s; the demo 1s).
# interval = "10s"

# Ring the terminal bell when a critical alert fires.
# bell = false

# Take no actions: budgets, pauses and undos are refused.
# read_only = false

# Bearer tokens for the stats and control endpoints. A file holding them must be readable by
# its owner only (chmod 600); COCKPIT_SOURCE_TOKEN and COCKPIT_CONTROL_TOKEN win.
# source_token = ""
# control_token = ""
# Send the source token over plain http to hosts other than this one.
# token_over_http = false

# Values for {secret:NAME} in mapped sources' requests (an environment variable NAME wins).
# [secrets]
# meta_token = ""

# Where `cockpit serve` sends its alerts.
# [notify.alertmanager]
# url = "http://127.0.0.1:9093"
# How often a firing alert is posted again.
# resend = "1m"

# Chat bots: kind is json, feishu, dingtalk (secret: its signing secret), wecom or slack.
# [[notify.webhook]]
# kind = "feishu"
# url = "https://open.feishu.cn/open-apis/bot/v2/hook/..."
# secret = ""
# severities = ["crit", "warn"]
# At most this many messages a minute to this target.
# per_minute = 20
"#;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the template names is a key of the config file: uncommented, it parses (an
    /// unknown one would be refused), and its values are the defaults it claims.
    #[test]
    fn the_template_names_real_keys_at_their_defaults() {
        let uncommented: String = TEMPLATE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c: Config = toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(c.interval.as_deref(), Some("10s"));
        assert_eq!((c.bell, c.read_only, c.token_over_http), (Some(false), Some(false), Some(false)));
        assert_eq!(c.notify.webhook.len(), 1);
        assert_eq!(c.notify.webhook[0].per_minute, 20);
        assert!(c.notify.alertmanager.is_some() && c.secrets.contains_key("meta_token"));
        let keys = uncommented.lines().filter(|l| l.contains(" = ") && !l.starts_with('#')).count();
        // Eight top-level keys, a secret, two of Alertmanager, five of a webhook.
        assert_eq!(keys, 16, "every key is in the template once");
    }
}
