//! `cockpit auth`: the credentials of `config.toml` — what each is, who uses it, when its
//! tokens expire, its last refresh and error (never a secret) — and a refresh on demand.

use super::BadInput;
use crate::poll::credential::{Registry, Status};
use serde::Serialize;

/// A token expiring within this long is warned about.
pub const WARN_BEFORE_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    status: Status,
    /// `campaign/channel` of every channel naming it.
    used_by: Vec<String>,
    /// What needs doing, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// The channels naming each credential, from the campaigns stored.
pub fn users(campaigns: &[crate::domain::Campaign], name: &str) -> Vec<String> {
    campaigns
        .iter()
        .flat_map(|c| c.channels.iter().map(move |ch| (c, ch)))
        .filter(|(_, ch)| ch.credentials.as_deref() == Some(name))
        .map(|(c, ch)| format!("{}/{}", c.id, ch.id))
        .collect()
}

/// What needs doing about a credential at `now`.
pub fn warning(s: &Status, now_ms: i64) -> Option<String> {
    if s.unauthorized {
        return Some(format!("unauthorized: sign in again with `cockpit auth login {}`", s.name));
    }
    let soon = |what: &str, at: Option<i64>| {
        at.filter(|t| *t - now_ms < WARN_BEFORE_MS).map(|t| {
            if t <= now_ms {
                format!("the {what} has expired: sign in again with `cockpit auth login {}`", s.name)
            } else {
                format!(
                    "the {what} expires in {}: sign in again with `cockpit auth login {}` before then",
                    crate::ui::views::alerts::compact_age(t - now_ms),
                    s.name
                )
            }
        })
    };
    soon("refresh token", s.refresh_expires_ms).or_else(|| soon("token", s.token_expires_ms))
}

/// `auth list`.
pub fn list(registry: &Registry, campaigns: &[crate::domain::Campaign], json: bool, now_ms: i64) -> String {
    let listed: Vec<Listed> = registry
        .all()
        .map(|c| {
            let status = c.status();
            let warning = warning(&status, now_ms);
            Listed { used_by: users(campaigns, &c.name), warning, status }
        })
        .collect();
    if json {
        return serde_json::to_string_pretty(&listed).unwrap_or_default() + "\n";
    }
    if listed.is_empty() {
        return "No credentials: add [credentials.NAME] to config.toml (`cockpit config init` shows the kinds).\n"
            .into();
    }
    let when = |t: Option<i64>| t.map_or("-".to_string(), local_time);
    let mut out = String::new();
    for l in &listed {
        let s = &l.status;
        out.push_str(&format!("{} ({})\n", s.name, s.kind));
        let used = if l.used_by.is_empty() { "no channel".to_string() } else { l.used_by.join(", ") };
        out.push_str(&format!("  used by        {used}\n"));
        if s.kind == "static" || s.kind == "meta" {
            out.push_str(&format!("  token expires  {}\n", when(s.token_expires_ms)));
        } else {
            out.push_str(&format!("  access token   expires {}\n", when(s.access_expires_ms)));
            out.push_str(&format!("  refresh token  expires {}\n", when(s.refresh_expires_ms)));
            out.push_str(&format!("  last refresh   {} ({} in all)\n", when(s.refreshed_ms), s.refreshes));
        }
        if let Some(e) = &s.last_error {
            out.push_str(&format!("  last error     {e}\n"));
        }
        if let Some(w) = &l.warning {
            out.push_str(&format!("  ⚠ {w}\n"));
        }
    }
    out
}

/// A unix-ms time in this machine's zone, with its offset.
fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M %:z").to_string())
        .unwrap_or_default()
}

/// `auth test NAME`: a refresh now, and what came of it.
pub async fn test(registry: &Registry, name: &str) -> Result<String, BadInput> {
    let c = registry.get(name).ok_or_else(|| {
        let known: Vec<&str> = registry.all().map(|c| c.name.as_str()).collect();
        BadInput(format!(
            "no credentials '{name}' in config.toml (known: {})",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
    })?;
    if !c.renews() {
        let s = c.status();
        return Ok(match warning(&s, chrono::Utc::now().timestamp_millis()) {
            Some(w) => format!("{name}: a fixed token, not renewed; {w}\n"),
            None => format!("{name}: a fixed token, not renewed; nothing to test here (`source test` sends it)\n"),
        });
    }
    match c.renew_now().await {
        Ok(()) => {
            let s = c.status();
            Ok(format!(
                "{name}: renewed; the access token expires {}{}\n",
                s.access_expires_ms.map_or("-".into(), local_time),
                s.refresh_expires_ms.map(|t| format!(", the refresh token {}", local_time(t))).unwrap_or_default()
            ))
        }
        Err(e) => Err(BadInput(format!("{name}: {e}"))),
    }
}
