//! Alerts to chat: a message when an alert fires and one when it resolves, to each
//! `[[notify.webhook]]` of `config.toml` whose severities it has.
//!
//! ```toml
//! [[notify.webhook]]
//! kind = "dingtalk"            # json, feishu (Lark), dingtalk, wecom, slack
//! url = "https://oapi.dingtalk.com/robot/send?access_token=…"
//! secret = "SEC…"              # DingTalk's and Feishu's signing secret, when the bot has one
//! severities = ["crit", "warn"] # the default
//! per_minute = 20              # at most this many messages a minute (the platforms cap bots)
//! ```
//!
//! - `json`: `{"status": "firing"|"resolved", "campaign", "channel", "rule", "severity",
//!   "summary", "runbook", "starts_at", "resolved_at"}`, for anything of your own;
//! - `feishu`: a text message; signed (`timestamp`, `sign` = base64 of HMAC-SHA256 keyed by
//!   `timestamp + "\n" + secret` over nothing) when there is a secret;
//! - `dingtalk`: a text message; signed by `timestamp` (ms) and `sign` (base64 of
//!   HMAC-SHA256 of `timestamp + "\n" + secret` keyed by the secret) in the URL;
//! - `wecom`: a 企业微信 group bot's text message; `slack`: an incoming webhook's `text`.
//!
//! Messages wait in order in a queue of their own per target; a target that is down or
//! answers an error (HTTP, or the platform's `errcode`/`code`) is retried with back-off, its
//! failure shown in the header until it takes messages again. The queue keeps at most
//! `QUEUE` messages: when it is full the oldest firing message goes, never a resolve.

use crate::alert::{Alert, AlertKey, AlertState};
use crate::domain::Severity;
use crate::engine::snapshot::Snapshot;
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The most messages waiting for one target.
pub const QUEUE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Json,
    Feishu,
    Dingtalk,
    Wecom,
    Slack,
}

/// One chat target.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub kind: Kind,
    pub url: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "default_severities")]
    pub severities: Vec<Severity>,
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
}

fn default_severities() -> Vec<Severity> {
    vec![Severity::Crit, Severity::Warn]
}

fn default_per_minute() -> u32 {
    20
}

/// What happened to an alert.
#[derive(Debug, Clone)]
pub struct Event {
    pub resolved: bool,
    pub alert: Alert,
    pub runbook: String,
}

/// The alerts that fired or resolved since the last look: `told` holds those told firing (and
/// when they fired).
pub fn events(snap: &Snapshot, told: &mut HashMap<AlertKey, i64>, severities: &[Severity]) -> Vec<Event> {
    let runbook = |a: &Alert| snap.contingency_of(a).map(|p| p.first_step()).unwrap_or_default();
    let mut out = Vec::new();
    let firing: Vec<&Alert> = snap
        .alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing && severities.contains(&a.severity) && snap.silence_of(a).is_none())
        .collect();
    for a in &firing {
        let fired = a.fired_ms.unwrap_or(a.since_ms);
        if told.get(&a.key) != Some(&fired) {
            told.insert(a.key.clone(), fired);
            out.push(Event { resolved: false, alert: (*a).clone(), runbook: runbook(a) });
        }
    }
    let gone: Vec<AlertKey> = told.keys().filter(|k| !firing.iter().any(|a| a.key == **k)).cloned().collect();
    for key in gone {
        told.remove(&key);
        let alert = snap.alerts.iter().find(|a| a.key == key).cloned().unwrap_or_else(|| Alert {
            key: key.clone(),
            state: AlertState::Resolved,
            severity: Severity::Info,
            since_ms: snap.now_ms,
            fired_ms: None,
            clear_since_ms: None,
            resolved_ms: Some(snap.now_ms),
            observed: None,
            expected: None,
            summary: "gone with its campaign".into(),
            ack: None,
        });
        let runbook = runbook(&alert);
        out.push(Event { resolved: true, alert, runbook });
    }
    out
}

/// The message's text, as a person on call reads it.
pub fn text(e: &Event) -> String {
    let a = &e.alert;
    let scope = a.key.scope();
    let head = if e.resolved { "RESOLVED".to_string() } else { format!("FIRING {}", a.severity) };
    let mut t = format!("[{head}] {scope} · {}: {}", a.key.rule, a.summary);
    if !e.resolved && !e.runbook.is_empty() {
        t.push_str(&format!("\nfirst step: {}", e.runbook));
    }
    t
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&k, msg).as_ref())
}

/// DingTalk's signature of a timestamp (ms).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    hmac_b64(secret.as_bytes(), format!("{timestamp_ms}\n{secret}").as_bytes())
}

/// Feishu's signature of a timestamp (s).
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    hmac_b64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

/// The request for an event: its URL and body, signed at `now_ms` where the kind signs.
pub fn request(t: &Target, e: &Event, now_ms: i64) -> Result<(url::Url, Value), String> {
    let mut url = url::Url::parse(&t.url).map_err(|err| format!("webhook URL: {err}"))?;
    let text = text(e);
    let body = match t.kind {
        Kind::Json => {
            let a = &e.alert;
            json!({
                "status": if e.resolved { "resolved" } else { "firing" },
                "campaign": a.key.campaign, "channel": a.key.channel, "rule": a.key.rule,
                "severity": a.severity.to_string(), "summary": a.summary, "runbook": e.runbook,
                "starts_at": super::rfc3339(a.fired_ms.unwrap_or(a.since_ms)),
                "resolved_at": e.resolved.then(|| super::rfc3339(a.resolved_ms.unwrap_or(now_ms))),
                "text": text,
            })
        }
        Kind::Feishu => {
            let mut b = json!({ "msg_type": "text", "content": { "text": text } });
            if let Some(secret) = &t.secret {
                let ts = now_ms.div_euclid(1000);
                b["timestamp"] = json!(ts.to_string());
                b["sign"] = json!(feishu_sign(secret, ts));
            }
            b
        }
        Kind::Dingtalk => {
            if let Some(secret) = &t.secret {
                url.query_pairs_mut()
                    .append_pair("timestamp", &now_ms.to_string())
                    .append_pair("sign", &dingtalk_sign(secret, now_ms));
            }
            json!({ "msgtype": "text", "text": { "content": text } })
        }
        Kind::Wecom => json!({ "msgtype": "text", "text": { "content": text } }),
        Kind::Slack => json!({ "text": text }),
    };
    Ok((url, body))
}

/// Whether an answer's body says the platform took the message (they answer errors with HTTP
/// 200 and a code).
fn accepted(kind: Kind, body: &str) -> Result<(), String> {
    if matches!(kind, Kind::Json | Kind::Slack) {
        return Ok(());
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v.get("errcode").or_else(|| v.get("code")).or_else(|| v.get("StatusCode")).and_then(Value::as_i64);
    match code {
        None | Some(0) => Ok(()),
        Some(c) => {
            let msg = v.get("errmsg").or_else(|| v.get("msg")).and_then(Value::as_str).unwrap_or("");
            Err(format!("code {c}: {msg}"))
        }
    }
}

/// Adds an event to a target's queue; a full queue drops its oldest firing message.
fn enqueue(queue: &mut VecDeque<Event>, e: Event) {
    if queue.len() >= QUEUE
        && let Some(i) = queue.iter().position(|q| !q.resolved)
    {
        queue.remove(i);
    }
    queue.push_back(e);
}

/// Delivers one target's messages until the snapshots end.
pub async fn run(
    target: Target,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    engine: mpsc::Sender<crate::engine::Command>,
    clock: crate::clock::SharedClock,
) {
    let client = crate::poll::client();
    let name = url::Url::parse(&target.url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let mut told = HashMap::new();
    let mut queue: VecDeque<Event> = VecDeque::new();
    let spacing = Duration::from_secs(60) / target.per_minute.max(1);
    let mut next_send = tokio::time::Instant::now();
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    // What is firing when it starts is told too: a restart of the service repeats it once.
    for e in events(&snapshots.borrow_and_update(), &mut told, &target.severities) {
        enqueue(&mut queue, e);
    }
    loop {
        let wait = if queue.is_empty() { None } else { Some(next_send) };
        tokio::select! {
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return;
                }
                let snap = snapshots.borrow_and_update().clone();
                for e in events(&snap, &mut told, &target.severities) {
                    enqueue(&mut queue, e);
                }
                continue;
            }
            () = async { match wait { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {}
        }
        let Some(e) = queue.front() else { continue };
        let outcome = match request(&target, e, clock.now_ms()) {
            Ok((url, body)) => match client.post(url).json(&body).timeout(Duration::from_secs(10)).send().await {
                Ok(r) if r.status().is_success() => {
                    let kind = target.kind;
                    r.text().await.map_err(|e| e.to_string()).and_then(|b| accepted(kind, &b))
                }
                Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                Err(e) => Err(crate::poll::root_cause(&e)),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                queue.pop_front();
                next_send = tokio::time::Instant::now() + spacing;
                backoff = Duration::from_secs(1);
                if std::mem::take(&mut failing) {
                    tracing::info!("webhook {name} takes messages again");
                    let _ = engine.send(crate::engine::Command::Paging(None)).await;
                }
            }
            Err(err) => {
                let message = format!("webhook {name}: {err}");
                tracing::warn!("{message}; again in {}s ({} waiting)", backoff.as_secs(), queue.len());
                next_send = tokio::time::Instant::now() + backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                failing = true;
                let _ = engine.send(crate::engine::Command::Paging(Some(message))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signatures of the platforms' documentation examples' shape: recomputed here from
    /// the definition, and stable.
    #[test]
    fn signatures_follow_the_platforms_definitions() {
        let s = dingtalk_sign("SECxyz", 1_700_000_000_000);
        assert_eq!(s, hmac_b64(b"SECxyz", b"1700000000000\nSECxyz"));
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&s).unwrap().len(), 32);
        assert_eq!(feishu_sign("abc", 1_700_000_000), hmac_b64(b"1700000000\nabc", b""));
        assert_ne!(dingtalk_sign("a", 1), dingtalk_sign("a", 2));
    }

    #[test]
    fn platforms_answer_errors_in_the_body() {
        assert!(accepted(Kind::Dingtalk, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert_eq!(
            accepted(Kind::Dingtalk, r#"{"errcode":310000,"errmsg":"sign not match"}"#).unwrap_err(),
            "code 310000: sign not match"
        );
        assert!(accepted(Kind::Feishu, r#"{"code":19021,"msg":"sign match fail"}"#).is_err());
        assert!(accepted(Kind::Wecom, r#"{"errcode":0}"#).is_ok());
        assert!(accepted(Kind::Slack, "ok").is_ok());
    }
}
