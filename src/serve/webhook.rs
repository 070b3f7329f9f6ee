//! Alerts to chat, grouped per campaign in the manner of Alertmanager's routing, to each
//! `[[notify.webhook]]` of `config.toml` whose severities an alert has.
//!
//! ```toml
//! [[notify.webhook]]
//! kind = "dingtalk"             # json, feishu (Lark), dingtalk, wecom, slack
//! url = "https://oapi.dingtalk.com/robot/send?access_token=…"
//! secret = "SEC…"               # DingTalk's and Feishu's signing secret, when the bot has one
//! severities = ["crit", "warn"] # the default: info (good news) never pages
//! per_minute = 20               # at most this many messages a minute (the platforms cap bots)
//! group_wait = "30s"            # a campaign's first news waits this long for more to join it
//! group_interval = "5m"         # later news of the campaign at most this often
//! repeat_interval = "4h"        # an alert still firing (not acknowledged) is said again
//! ```
//!
//! What is told: an alert that fires, resolves, is acknowledged (by whom) or silenced (until
//! when, by whom): each once. A campaign's news that comes within `group_wait` of its first
//! (or `group_interval` of its last message) goes in one message. Every item names the
//! campaign and the channel by name and id, the time in the campaign's time zone with its
//! offset, the host, the source (its secrets left out), the evidence and the contingency
//! plan, or says there is none.
//!
//! - `json`: `{"status", "campaign", "campaign_name", "host", "text", "alerts": [{"status",
//!   "channel", "channel_name", "rule", "severity", "summary", "plan", "source", "at",
//!   "starts_at", "resolved_at", "acked_by", "silenced_until"}]}` (`plan` is null without one);
//! - `feishu`: a text message; signed (`timestamp`, `sign` = base64 of HMAC-SHA256 keyed by
//!   `timestamp + "\n" + secret` over nothing) when there is a secret;
//! - `dingtalk`: a text message; signed by `timestamp` (ms) and `sign` (base64 of
//!   HMAC-SHA256 of `timestamp + "\n" + secret` keyed by the secret) in the URL;
//! - `wecom`: a 企业微信 group bot's text message; `slack`: an incoming webhook's `text`.
//!
//! Messages wait in order in a queue of their own per target; a target that is down or
//! answers an error (HTTP, or the platform's `errcode`/`code`) is retried with back-off, its
//! failure shown in the header until it takes messages again. The queue keeps at most
//! `QUEUE` messages: when it is full the oldest without a resolve goes.

use crate::alert::{Alert, AlertKey, AlertState};
use crate::domain::Severity;
use crate::engine::snapshot::Snapshot;
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
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
    #[serde(default = "default_group_wait", deserialize_with = "duration")]
    pub group_wait: Duration,
    #[serde(default = "default_group_interval", deserialize_with = "duration")]
    pub group_interval: Duration,
    #[serde(default = "default_repeat_interval", deserialize_with = "duration")]
    pub repeat_interval: Duration,
}

fn default_severities() -> Vec<Severity> {
    vec![Severity::Crit, Severity::Warn]
}

fn default_per_minute() -> u32 {
    20
}

fn default_group_wait() -> Duration {
    Duration::from_secs(30)
}

fn default_group_interval() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_repeat_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}

/// A duration as written in the config: `30s`, `5m`, `4h`.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("\"{text}\": {e} (write e.g. 30s, 5m or 4h)")))
}

/// What is told of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Firing,
    /// Firing still, said again after `repeat_interval`.
    StillFiring,
    Resolved,
    Acked {
        by: String,
    },
    Silenced {
        until_ms: i64,
        by: String,
    },
}

/// One alert's news, with what a person on call needs written out.
#[derive(Debug, Clone)]
pub struct Item {
    pub status: Status,
    pub alert: Alert,
    pub campaign_name: String,
    pub channel_name: String,
    /// The channel's source, its secrets left out.
    pub source: Option<String>,
    /// The contingency plan's first step.
    pub plan: Option<String>,
    /// When it happened, in the campaign's time zone with its offset.
    pub at: String,
}

/// One message: a campaign's news.
#[derive(Debug, Clone)]
pub struct Event {
    pub campaign: String,
    pub host: String,
    pub items: Vec<Item>,
}

impl Event {
    /// Whether a resolve is in it (such a message is never dropped from a full queue).
    fn resolves(&self) -> bool {
        self.items.iter().any(|i| i.status == Status::Resolved)
    }
}

/// This machine's name, for the messages.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        String::from_utf8_lossy(&buf[..buf.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() { "unknown host".into() } else { name }
}

/// A source's address as it may be shown: no user or password, and the values of query
/// parameters that look like secrets (token, key, secret, sign, password, auth) hidden.
pub fn shown_source(source: &str) -> String {
    let Ok(mut url) = url::Url::parse(source) else { return source.to_string() };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        ["token", "key", "secret", "sign", "password", "auth"].iter().any(|s| k.contains(s))
    };
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if pairs.iter().any(|(k, _)| secret(k)) {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, if secret(k) { "…" } else { v });
        }
    }
    url.to_string()
}

/// The news of every campaign, grouped: what has been told firing, and per campaign what is
/// still to be told and when it was last told.
#[derive(Debug, Default)]
pub struct Grouper {
    told: HashMap<AlertKey, Told>,
    groups: BTreeMap<String, Group>,
}

#[derive(Debug, Clone)]
struct Told {
    fired: i64,
    acked: bool,
}

#[derive(Debug, Default)]
struct Group {
    news: Vec<Item>,
    first_news_ms: Option<i64>,
    last_sent_ms: Option<i64>,
}

/// When to tell: group_wait, group_interval, repeat_interval in ms.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub wait_ms: i64,
    pub interval_ms: i64,
    pub repeat_ms: i64,
}

impl Target {
    pub fn timing(&self) -> Timing {
        Timing {
            wait_ms: self.group_wait.as_millis() as i64,
            interval_ms: self.group_interval.as_millis() as i64,
            repeat_ms: self.repeat_interval.as_millis().max(1) as i64,
        }
    }
}

/// An item for an alert as the snapshot knows it.
fn item(snap: &Snapshot, status: Status, alert: Alert, at_ms: i64) -> Item {
    let view = snap.campaign(&alert.key.campaign);
    let campaign_name = view.map_or_else(|| alert.key.campaign.clone(), |v| v.campaign.name.clone());
    let channel = view.and_then(|v| v.campaign.channel(&alert.key.channel));
    let channel_name = channel.map_or_else(|| alert.key.channel.clone(), |c| c.name.clone());
    let source = channel.map(|c| shown_source(&c.source));
    let offset =
        view.map(|v| *v.campaign.start.offset()).unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("UTC"));
    let at = chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.with_timezone(&offset).format("%Y-%m-%d %H:%M %:z").to_string())
        .unwrap_or_default();
    let plan = snap.contingency_of(&alert).map(|p| p.first_step());
    Item { status, alert, campaign_name, channel_name, source, plan, at }
}

impl Grouper {
    /// Takes in what changed since the last look: alerts that fired (anew), resolved, were
    /// acknowledged or silenced.
    pub fn observe(&mut self, snap: &Snapshot, severities: &[Severity]) {
        let now = snap.now_ms;
        let mut news: Vec<Item> = Vec::new();
        let mut firing = std::collections::HashSet::new();
        for a in snap.alerts.iter().filter(|a| a.state == AlertState::Firing && severities.contains(&a.severity)) {
            let fired = a.fired_ms.unwrap_or(a.since_ms);
            let silence = snap.silence_of(a);
            match (self.told.get_mut(&a.key), silence) {
                (None, Some(_)) => {}
                (Some(_), Some(s)) => {
                    self.told.remove(&a.key);
                    news.push(item(snap, Status::Silenced { until_ms: s.until_ms, by: s.by.clone() }, a.clone(), now));
                }
                (Some(t), None) if t.fired == fired => {
                    firing.insert(a.key.clone());
                    if let Some(ack) = a.ack.as_ref().filter(|_| !t.acked) {
                        t.acked = true;
                        news.push(item(snap, Status::Acked { by: ack.by.clone() }, a.clone(), ack.at_ms));
                    }
                }
                (_, None) => {
                    firing.insert(a.key.clone());
                    self.told.insert(a.key.clone(), Told { fired, acked: a.ack.is_some() });
                    news.push(item(snap, Status::Firing, a.clone(), fired));
                }
            }
        }
        let gone: Vec<AlertKey> = self.told.keys().filter(|k| !firing.contains(*k)).cloned().collect();
        for key in gone {
            self.told.remove(&key);
            let alert = snap.alerts.iter().find(|a| a.key == key).cloned().unwrap_or_else(|| Alert {
                key: key.clone(),
                state: AlertState::Resolved,
                severity: Severity::Info,
                since_ms: now,
                fired_ms: None,
                clear_since_ms: None,
                resolved_ms: Some(now),
                observed: None,
                expected: None,
                summary: "gone with its campaign".into(),
                ack: None,
            });
            let at = alert.resolved_ms.unwrap_or(now);
            news.push(item(snap, Status::Resolved, alert, at));
        }
        for n in news {
            let g = self.groups.entry(n.alert.key.campaign.clone()).or_default();
            g.first_news_ms.get_or_insert(now);
            g.news.push(n);
        }
    }

    /// The messages due at `now`: each campaign's news once its wait (the first time) or its
    /// interval (since its last message) is over, and what still fires, unacknowledged, once
    /// `repeat_interval` has passed without a message.
    pub fn due(&mut self, snap: &Snapshot, now: i64, timing: Timing, host: &str) -> Vec<Event> {
        let mut out = Vec::new();
        let told = &self.told;
        for (campaign, g) in &mut self.groups {
            let ready = match (g.first_news_ms, g.last_sent_ms) {
                (Some(first), None) => now >= first + timing.wait_ms,
                (Some(first), Some(last)) => now >= (last + timing.interval_ms).max(first),
                (None, _) => false,
            };
            let items = if ready {
                g.first_news_ms = None;
                std::mem::take(&mut g.news)
            } else if g.news.is_empty() && g.last_sent_ms.is_some_and(|l| now >= l + timing.repeat_ms) {
                snap.alerts
                    .iter()
                    .filter(|a| a.key.campaign == *campaign && told.get(&a.key).is_some_and(|t| !t.acked))
                    .map(|a| item(snap, Status::StillFiring, a.clone(), now))
                    .collect()
            } else {
                continue;
            };
            if items.is_empty() {
                continue;
            }
            g.last_sent_ms = Some(now);
            out.push(Event { campaign: campaign.clone(), host: host.to_string(), items });
        }
        self.groups.retain(|c, g| {
            !g.news.is_empty() || self.told.keys().any(|k| k.campaign == *c) || g.last_sent_ms.is_none()
        });
        out
    }

    /// When the next message may be due (ms), if any is waiting.
    pub fn next_due(&self, timing: Timing) -> Option<i64> {
        self.groups
            .iter()
            .filter_map(|(c, g)| match (g.first_news_ms, g.last_sent_ms) {
                (Some(first), None) => Some(first + timing.wait_ms),
                (Some(first), Some(last)) => Some((last + timing.interval_ms).max(first)),
                (None, Some(last)) if self.told.iter().any(|(k, t)| k.campaign == *c && !t.acked) => {
                    Some(last + timing.repeat_ms)
                }
                _ => None,
            })
            .min()
    }
}

/// One item as a person on call reads it: what, where, when, from which source and what to do.
fn item_text(i: &Item, host: &str) -> String {
    let a = &i.alert;
    let head = match &i.status {
        Status::Firing => format!("FIRING {}", a.severity),
        Status::StillFiring => format!("STILL FIRING {}", a.severity),
        Status::Resolved => "RESOLVED".to_string(),
        Status::Acked { by } => format!("ACKED by {by}"),
        Status::Silenced { until_ms, by } => {
            let until = chrono::DateTime::from_timestamp_millis(*until_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            format!("SILENCED until {until} by {by}")
        }
    };
    let channel =
        if a.key.channel.is_empty() { String::new() } else { format!(" / {} ({})", i.channel_name, a.key.channel) };
    let mut t = format!("[{head}] {} ({}){channel} · {}: {}", i.campaign_name, a.key.campaign, a.key.rule, a.summary);
    t.push_str(&format!("\nat {} on {host}", i.at));
    if let Some(s) = &i.source {
        t.push_str(&format!(" · source {s}"));
    }
    if matches!(i.status, Status::Firing | Status::StillFiring) {
        match &i.plan {
            Some(p) => t.push_str(&format!("\nfirst step: {p}")),
            None => t.push_str("\nno contingency plan"),
        }
    }
    t
}

/// The message's text: its items, with a line of counts above when there are several.
pub fn text(e: &Event) -> String {
    let items: Vec<String> = e.items.iter().map(|i| item_text(i, &e.host)).collect();
    if e.items.len() == 1 {
        return items.concat();
    }
    let count = |f: fn(&Status) -> bool, what: &str| {
        let n = e.items.iter().filter(|i| f(&i.status)).count();
        (n > 0).then(|| format!("{n} {what}"))
    };
    let counts: Vec<String> = [
        count(|s| matches!(s, Status::Firing), "firing"),
        count(|s| matches!(s, Status::StillFiring), "still firing"),
        count(|s| matches!(s, Status::Resolved), "resolved"),
        count(|s| matches!(s, Status::Acked { .. }), "acknowledged"),
        count(|s| matches!(s, Status::Silenced { .. }), "silenced"),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{} ({}): {}\n\n{}", e.items[0].campaign_name, e.campaign, counts.join(", "), items.join("\n\n"))
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
            let status = |s: &Status| match s {
                Status::Firing => "firing",
                Status::StillFiring => "still_firing",
                Status::Resolved => "resolved",
                Status::Acked { .. } => "acked",
                Status::Silenced { .. } => "silenced",
            };
            let alerts: Vec<Value> = e
                .items
                .iter()
                .map(|i| {
                    let a = &i.alert;
                    json!({
                        "status": status(&i.status),
                        "channel": a.key.channel, "channel_name": i.channel_name, "rule": a.key.rule,
                        "severity": a.severity.to_string(), "summary": a.summary, "plan": i.plan,
                        "source": i.source, "at": i.at,
                        "starts_at": super::rfc3339(a.fired_ms.unwrap_or(a.since_ms)),
                        "resolved_at": (i.status == Status::Resolved).then(|| super::rfc3339(a.resolved_ms.unwrap_or(now_ms))),
                        "acked_by": match &i.status { Status::Acked { by } => Some(by.as_str()), _ => None },
                        "silenced_until": match &i.status { Status::Silenced { until_ms, .. } => Some(super::rfc3339(*until_ms)), _ => None },
                    })
                })
                .collect();
            json!({
                "status": e.items.first().map_or("firing", |i| status(&i.status)),
                "campaign": e.campaign,
                "campaign_name": e.items.first().map(|i| i.campaign_name.as_str()),
                "host": e.host,
                "alerts": alerts,
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

/// Adds an event to a target's queue; a full queue drops its oldest message without a resolve.
fn enqueue(queue: &mut VecDeque<Event>, e: Event) {
    if queue.len() >= QUEUE
        && let Some(i) = queue.iter().position(|q| !q.resolves())
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
    let mut groups = Grouper::default();
    let timing = target.timing();
    let host = host_name();
    let mut queue: VecDeque<Event> = VecDeque::new();
    let spacing = Duration::from_secs(60) / target.per_minute.max(1);
    let mut next_send = tokio::time::Instant::now();
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    // What is firing when it starts is told too: a restart of the service repeats it once.
    let mut snap = snapshots.borrow_and_update().clone();
    groups.observe(&snap, &target.severities);
    loop {
        for e in groups.due(&snap, clock.now_ms(), timing, &host) {
            enqueue(&mut queue, e);
        }
        let send = if queue.is_empty() { None } else { Some(next_send) };
        // The next group due, on the clock's time.
        let group = groups
            .next_due(timing)
            .map(|at| tokio::time::Instant::now() + Duration::from_millis((at - clock.now_ms()).max(0) as u64));
        let wake = match (send, group) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return;
                }
                snap = snapshots.borrow_and_update().clone();
                groups.observe(&snap, &target.severities);
                continue;
            }
            () = async { match wake { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {}
        }
        if queue.is_empty() || tokio::time::Instant::now() < next_send {
            continue;
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
    use crate::alert::{Ack, Silence};
    use crate::engine::snapshot::CampaignView;

    const S: i64 = 1_000;
    const MIN: i64 = 60 * S;
    const T0: i64 = 1_781_000_000_000;

    fn firing(channel: &str, fired: i64) -> Alert {
        Alert {
            key: AlertKey { campaign: "618-promo".into(), channel: channel.into(), rule: "health".into() },
            state: AlertState::Firing,
            severity: Severity::Crit,
            since_ms: fired,
            fired_ms: Some(fired),
            clear_since_ms: None,
            resolved_ms: None,
            observed: None,
            expected: None,
            summary: "source failing: connection refused".into(),
            ack: None,
        }
    }

    fn snap(now: i64, alerts: Vec<Alert>, silences: Vec<Silence>) -> Snapshot {
        let c = crate::demo::campaigns().into_iter().find(|c| c.id == "618-promo").unwrap();
        Snapshot {
            now_ms: now,
            campaigns: vec![Arc::new(CampaignView::new(Arc::new(c), Vec::new(), now))],
            alerts: Arc::new(alerts),
            silences: Arc::new(silences),
            ..Default::default()
        }
    }

    fn timing() -> Timing {
        Target {
            kind: Kind::Json,
            url: "http://127.0.0.1/".into(),
            secret: None,
            severities: default_severities(),
            per_minute: 20,
            group_wait: default_group_wait(),
            group_interval: default_group_interval(),
            repeat_interval: default_repeat_interval(),
        }
        .timing()
    }

    /// Looks at a snapshot at `now` and returns the messages due then, each as its items'
    /// (channel, status).
    fn step(g: &mut Grouper, now: i64, alerts: Vec<Alert>, silences: Vec<Silence>) -> Vec<Vec<(String, Status)>> {
        let s = snap(now, alerts, silences);
        g.observe(&s, &default_severities());
        g.due(&s, now, timing(), "ops-1")
            .into_iter()
            .map(|e| e.items.into_iter().map(|i| (i.alert.key.channel, i.status)).collect())
            .collect()
    }

    #[test]
    fn a_campaigns_news_waits_to_be_grouped_then_comes_no_more_than_once_an_interval() {
        let mut g = Grouper::default();
        let (a, b) = (firing("douyin", T0), firing("baidu-search", T0 + 10 * S));
        assert!(step(&mut g, T0, vec![a.clone()], vec![]).is_empty(), "group_wait");
        assert!(step(&mut g, T0 + 10 * S, vec![a.clone(), b.clone()], vec![]).is_empty());
        assert_eq!(g.next_due(timing()), Some(T0 + 30 * S));
        let first = step(&mut g, T0 + 30 * S, vec![a.clone(), b.clone()], vec![]);
        assert_eq!(first, vec![vec![("douyin".into(), Status::Firing), ("baidu-search".into(), Status::Firing)]]);
        // A flap: resolved, fired again, resolved and fired again within the interval.
        let mut flapped = Vec::new();
        for (k, up) in [false, true, false, true].into_iter().enumerate() {
            let now = T0 + (60 + 30 * k as i64) * S;
            let alerts = if up { vec![a.clone(), firing("baidu-search", now)] } else { vec![a.clone()] };
            flapped.extend(step(&mut g, now, alerts, vec![]));
        }
        assert!(flapped.is_empty(), "nothing before the group interval: {flapped:?}");
        let later = T0 + 30 * S + 5 * MIN;
        let next = step(&mut g, later, vec![a.clone(), firing("baidu-search", T0 + 150 * S)], vec![]);
        assert_eq!(next.len(), 1, "one message for the interval's news");
        let resolves = next[0].iter().filter(|(_, s)| *s == Status::Resolved).count();
        assert_eq!(resolves, 2, "no resolve is lost: {next:?}");
    }

    #[test]
    fn an_ack_and_a_silence_are_told_once_and_a_firing_alert_is_said_again_after_four_hours() {
        let mut g = Grouper::default();
        let mut a = firing("douyin", T0);
        let b = firing("baidu-search", T0);
        assert!(step(&mut g, T0, vec![a.clone(), b.clone()], vec![]).is_empty());
        assert_eq!(step(&mut g, T0 + 30 * S, vec![a.clone(), b.clone()], vec![]).len(), 1);
        a.ack = Some(Ack { by: "mei".into(), at_ms: T0 + MIN });
        let acked = step(&mut g, T0 + 6 * MIN, vec![a.clone(), b.clone()], vec![]);
        assert_eq!(acked, vec![vec![("douyin".into(), Status::Acked { by: "mei".into() })]]);
        assert!(step(&mut g, T0 + 12 * MIN, vec![a.clone(), b.clone()], vec![]).is_empty(), "told once");
        // Four hours on: the one nobody acknowledged is said again.
        let again = step(&mut g, T0 + 6 * MIN + 4 * 60 * MIN, vec![a.clone(), b.clone()], vec![]);
        assert_eq!(again, vec![vec![("baidu-search".into(), Status::StillFiring)]]);
        // A silence: told with its end, and no resolve follows it.
        let silence = Silence::for_alert(&b.key, T0 + 5 * 60 * MIN, 2 * 60 * MIN, "lee");
        let silenced = step(&mut g, T0 + 5 * 60 * MIN, vec![a.clone(), b.clone()], vec![silence.clone()]);
        assert_eq!(
            silenced,
            vec![vec![("baidu-search".into(), Status::Silenced { until_ms: T0 + 7 * 60 * MIN, by: "lee".into() })]]
        );
        assert!(
            step(&mut g, T0 + 6 * 60 * MIN, vec![a.clone()], vec![silence])
                .iter()
                .flatten()
                .all(|(c, _)| c != "baidu-search")
        );
    }

    #[test]
    fn an_item_says_who_where_when_from_which_source_and_what_to_do() {
        let s = snap(T0, vec![], vec![]);
        let i = item(&s, Status::Firing, firing("douyin", T0), T0);
        let text = item_text(&i, "ops-1");
        let c = crate::demo::campaigns().into_iter().find(|c| c.id == "618-promo").unwrap();
        let ch = c.channel("douyin").unwrap();
        assert!(
            text.starts_with(&format!(
                "[FIRING crit] {} (618-promo) / {} (douyin) · health: source failing",
                c.name, ch.name
            )),
            "{text}"
        );
        assert!(text.contains(" on ops-1 · source "), "{text}");
        assert!(text.ends_with("no contingency plan") || text.contains("first step: "), "{text}");
        assert_eq!(
            shown_source("https://u:p@api.example.com/stats?access_token=abc&day=1&sign=x"),
            "https://api.example.com/stats?access_token=%E2%80%A6&day=1&sign=%E2%80%A6"
        );
    }

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
