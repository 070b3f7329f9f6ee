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
    /// Credentials that sources sign in with, by name (see `poll::credential`).
    #[serde(default)]
    credentials: std::collections::BTreeMap<String, toml::Spanned<toml::Table>>,
    /// The credentials as the poller takes them, checked.
    #[serde(skip)]
    pub credential_confs: Vec<crate::poll::credential::CredentialConf>,
    /// Settings per preset: `[presets.google-ads] version = "v26"`.
    #[serde(default)]
    pub presets: std::collections::BTreeMap<String, PresetConf>,
    /// Rebound keys: `action = "KEY ..."` (or a list), or a `[keys.SCOPE]` table of them.
    #[serde(default)]
    keys: std::collections::BTreeMap<String, toml::Spanned<toml::Value>>,
    /// The bindings with `keys` applied.
    #[serde(skip)]
    pub keymap: crate::ui::keys::Keymap,
}

/// `[presets.NAME]`: what every channel of a preset shares.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetConf {
    /// The API version for every channel of this preset that pins none.
    pub version: Option<String>,
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

# Credentials that renew themselves, named by a channel's `credentials = "NAME"`; its
# request's {token} is their access token. Kinds: static (token), meta (token, expires),
# oauth2 (client_id, client_secret, refresh_token, scope; Google's token endpoint unless
# token_url), google-service-account (key_file, scope), oceanengine (app_id, secret,
# refresh_token), baidu (app_id, secret_key, user_id, refresh_token), tencent-ads
# (client_id, client_secret, refresh_token), kuaishou (app_id, secret, refresh_token).
# Every kind takes token_url. What renewing learns (a rotated refresh token) is kept in
# credentials.json beside this file; `cockpit auth list` shows each one's state.
# [credentials.google-main]
# kind = "oauth2"
# client_id = ""
# client_secret = ""
# refresh_token = ""

# The API version of every channel of a preset (each preset calls the newest its platform
# documents; a channel's request.version pins its own).
# [presets.google-ads]
# version = "v26"

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
# A campaign's first news waits this long for more to join it; later news comes at most once
# a group_interval; an alert still firing that nobody acknowledged is said again after
# repeat_interval.
# group_wait = "30s"
# group_interval = "5m"
# repeat_interval = "4h"

# Your own keys: an action and its keys ("j Down" or ["j", "Down"]) wherever it is bound, or
# in one view under [keys.VIEW] (global, lists, campaign, channel, alerts, optimize, analyze).
# Actions: quit help next_view prev_view overview campaign_view channel_view alerts_view
# optimize_view analyze_view note command_line up down page_up page_down top bottom open back
# filter sort sort_reverse metric_next metric_prev window ack silence silence_channel
# severity_filter state_filter alert_detail pause budget edit checklist task_done apply undo dismiss
# journal analyze_mode compare_with custom_window. Keys: a character, Ctrl-x, Alt-x, F1-F12, Tab, S-Tab, Enter,
# Esc, BS (Backspace), Space, PgUp, PgDn, Home, End, Up, Down, Left, Right.
# [keys]
# ack = "a"
# [keys.analyze]
# window = "w"
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
        let mut config = config;
        config.keymap =
            keymap(&config.keys, &text).map_err(|(line, e)| BadInput(format!("{name}:{line}: keys: {e}")))?;
        if let Some(i) = &config.interval {
            parse_duration(i).map_err(|e| BadInput(format!("{name}: interval = \"{i}\": {e}")))?;
        }
        for preset in config.presets.keys() {
            if crate::domain::source::shipped_preset(preset).is_none() {
                return Err(BadInput(format!(
                    "{name}: [presets.{preset}]: no such preset (known: {})",
                    crate::domain::source::format_names().join(", ")
                ))
                .into());
            }
        }
        config.credential_confs = credential_confs(&config.credentials, &text, &name)?;
        if config.source_token.is_some()
            || config.control_token.is_some()
            || !config.secrets.is_empty()
            || !config.credentials.is_empty()
        {
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

/// `[credentials.NAME]` tables as the poller takes them: `kind` and every other field as
/// text. An error names the file, the line and the field.
fn credential_confs(
    tables: &std::collections::BTreeMap<String, toml::Spanned<toml::Table>>,
    text: &str,
    file: &str,
) -> Result<Vec<crate::poll::credential::CredentialConf>, BadInput> {
    let mut out = Vec::new();
    for (name, t) in tables {
        let line = line_at(text, t.span().start);
        let place = format!("{file}:{line}");
        let mut fields = std::collections::BTreeMap::new();
        let mut kind = None;
        for (k, v) in t.get_ref() {
            let value = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Datetime(d) => d.to_string(),
                other => {
                    return Err(BadInput(format!(
                        "{place}: credentials.{name}.{k}: expected text, found {}",
                        other.type_str()
                    )));
                }
            };
            if k == "kind" {
                kind = Some(value);
            } else {
                fields.insert(k.clone(), crate::poll::Secret::new(value.trim()));
            }
        }
        let kind = kind.ok_or_else(|| {
            BadInput(format!(
                "{place}: credentials.{name}: `kind` is missing (one of {})",
                crate::domain::source::credential_kind_names().join(", ")
            ))
        })?;
        out.push(crate::poll::credential::CredentialConf { name: name.clone(), kind, fields, place });
    }
    Ok(out)
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The keys of a `[keys]` entry: `"j Down"` or `["j", "Down"]`.
fn key_list(v: &toml::Value) -> Result<Vec<String>, String> {
    match v {
        toml::Value::String(s) => Ok(s.split_whitespace().map(str::to_string).collect()),
        toml::Value::Array(a) => a
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{k} is not a key (write \"j\" or [\"j\", \"Down\"])"))
            })
            .collect(),
        other => Err(format!("{other} is not a key (write \"j\" or [\"j\", \"Down\"])")),
    }
}

/// The bindings that `[keys]` asks for; an error names its line.
fn keymap(
    keys: &std::collections::BTreeMap<String, toml::Spanned<toml::Value>>,
    text: &str,
) -> Result<crate::ui::keys::Keymap, (usize, String)> {
    use crate::ui::keys::{Keymap, Override, Scope};
    let mut overrides = Vec::new();
    for (name, v) in keys {
        let line = line_at(text, v.span().start);
        match v.get_ref() {
            toml::Value::Table(t) => {
                let scope = Scope::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
                    let names: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
                    (line, format!("[keys.{name}]: not a view (views: {})", names.join(", ")))
                })?;
                for (action, v) in t {
                    // The line of the entry within the table.
                    let at = text
                        .lines()
                        .enumerate()
                        .skip(line - 1)
                        .find(|(_, l)| {
                            l.trim_start()
                                .strip_prefix(action.as_str())
                                .is_some_and(|r| r.trim_start().starts_with('='))
                        })
                        .map_or(line, |(i, _)| i + 1);
                    let keys = key_list(v).map_err(|e| (at, format!("{name}.{action}: {e}")))?;
                    overrides.push(Override { scope: Some(scope), action: action.clone(), keys, line: at });
                }
            }
            other => {
                let keys = key_list(other).map_err(|e| (line, format!("{name}: {e}")))?;
                overrides.push(Override { scope: None, action: name.clone(), keys, line });
            }
        }
    }
    overrides.sort_by_key(|o| o.line);
    Keymap::with_overrides(&overrides)
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
        let t = c.notify.webhook[0].timing();
        assert_eq!((t.wait_ms, t.interval_ms, t.repeat_ms), (30_000, 300_000, 4 * 3_600_000));
        assert!(c.notify.alertmanager.is_some() && c.secrets.contains_key("meta_token"));
        // The keys it shows are the defaults.
        let map = keymap(&c.keys, &uncommented).unwrap();
        assert_eq!(map.bindings.len(), crate::ui::keys::Keymap::default().bindings.len());
        for (a, b) in map.bindings.iter().zip(crate::ui::keys::Keymap::default().bindings) {
            assert_eq!(a.keys, b.keys);
        }
        let keys = uncommented.lines().filter(|l| l.contains(" = ") && !l.starts_with('#')).count();
        // Eight top-level keys, a secret, four of a credential, a preset's version, two of
        // Alertmanager, eight of a webhook, two keys.
        assert_eq!(keys, 26, "every key is in the template once");
        assert_eq!(credential_confs(&c.credentials, &uncommented, "t").unwrap()[0].kind, "oauth2");
        // Every action is named in the template.
        for (_, name) in crate::ui::keys::ACTION_NAMES {
            assert!(TEMPLATE.split(|c: char| c.is_whitespace() || c == '.').any(|w| w == *name), "{name}");
        }
    }

    #[test]
    fn a_keys_table_rebinds_and_a_mistake_names_its_line() {
        use crate::ui::keys::{Action, Scope};
        use crossterm::event::{KeyCode, KeyEvent};
        let parse = |text: &str| {
            let c: Config = toml::from_str(text).unwrap();
            keymap(&c.keys, text)
        };
        let map = parse("bell = true\n[keys]\nack = \"A\"\ndown = [\"n\", \"Down\"]\nnote = \"N\"\n[keys.analyze]\n\nwindow = \"o\"\n").unwrap();
        let key = |c| KeyEvent::from(KeyCode::Char(c));
        assert_eq!(map.action(key('A'), Scope::Alerts), Some(Action::Ack));
        assert_eq!(map.action(key('n'), Scope::Lists), Some(Action::Down));
        assert_eq!(map.action(key('o'), Scope::Analyze), Some(Action::WindowNext));
        let err = parse("bell = true\n[keys]\nnote = \"N\"\nack = \"j\"\n").unwrap_err();
        assert_eq!(err, (4, "j for 'ack' is already 'move down' (down) in the alerts view".to_string()));
        let err = parse("[keys]\nack = \"a\"\n\n[keys.alerts]\nack = \"b\"\nfoo = \"c\"\n").unwrap_err();
        assert_eq!(err.0, 6, "{err:?}");
        assert!(err.1.starts_with("'foo' is not an action"), "{err:?}");
        let err = parse("[keys.popup]\nack = \"b\"\n").unwrap_err();
        assert_eq!(
            err.1,
            "[keys.popup]: not a view (views: global, lists, campaign, channel, alerts, optimize, analyze)"
        );
        let err = parse("[keys]\nack = 3\n").unwrap_err();
        assert_eq!(err, (2, "ack: 3 is not a key (write \"j\" or [\"j\", \"Down\"])".to_string()));
    }
}
