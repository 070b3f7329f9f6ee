//! Alerts to a Prometheus Alertmanager (API v2), so that a critical alert pages whoever is on
//! call whether or not a terminal is open.
//!
//! Every firing alert is posted to `<url>/api/v2/alerts` with the
//! labels `alertname` (`Cockpit` and the rule's kind: `CockpitKpi`, `CockpitHealth`, …),
//! `campaign`, `channel` (empty for a campaign-wide rule), `rule` and `severity` (`critical`,
//! `warning`, `info`), `owner` for a task of the launch checklist (so that a route can send it
//! to whoever does it), and the annotations `summary`, `description` and `runbook` (the
//! campaign's contingency plan for it: the first step and its owner). `startsAt` is when it
//! fired; `endsAt` lies `resend` plus three poll intervals ahead, and the alert is posted again
//! every `resend` while it fires, so that Alertmanager resolves it by itself if the service
//! dies. An alert that resolves is posted once more with `endsAt` now, and retried until
//! Alertmanager has it: a resolve is never lost. A silence made in a cockpit becomes an
//! Alertmanager silence (`/api/v2/silences`) with the same matchers (`campaign`, and
//! `channel` and `rule` where it names them), who made it and until when, so that the alerts
//! it covers show there as suppressed and page nobody; it is expired there when it ends here
//! early. Failed deliveries are retried with back-off and reported to the engine, which shows
//! them in the header. The notifier reads the engine's snapshots and never holds the engine up.

use crate::alert::{AlertKey, AlertState};
use crate::domain::Severity;
use crate::engine::snapshot::Snapshot;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Where and how often.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Alertmanager's base URL (`http://127.0.0.1:9093`).
    pub url: String,
    /// How often a firing alert is posted again.
    pub resend: Duration,
    /// The service's poll interval (for `endsAt`).
    pub interval: Duration,
}

/// What was told of an alert.
#[derive(Clone)]
struct Told {
    starts_ms: i64,
    sent: Instant,
}

/// The alert's kind, for its name: `kpi: cpa <= 90` is `CockpitKpi`.
fn alertname(rule: &str) -> String {
    let kind = rule.split(':').next().unwrap_or(rule).trim();
    let mut name = String::from("Cockpit");
    let mut up = true;
    for ch in kind.chars() {
        if ch.is_ascii_alphanumeric() {
            name.push(if up { ch.to_ascii_uppercase() } else { ch });
            up = false;
        } else {
            up = true;
        }
    }
    name
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Crit => "critical",
        Severity::Warn => "warning",
        Severity::Info => "info",
    }
}

/// The posts for a snapshot: the firing alerts due (new, or last sent `resend` ago), and
/// those told firing that no longer are (resolved now). `told` is updated as if the post
/// succeeds: a caller whose post fails keeps the one from before, so the resolves are
/// made again at the retry.
fn due(snap: &Snapshot, told: &mut HashMap<AlertKey, Told>, cfg: &Config, now_ms: i64) -> Vec<Value> {
    let ends = cfg.resend + cfg.interval * 3;
    let mut out = Vec::new();
    let mut firing = std::collections::HashSet::new();
    for a in snap.alerts.iter().filter(|a| a.state == AlertState::Firing) {
        firing.insert(a.key.clone());
        let starts_ms = a.fired_ms.unwrap_or(a.since_ms);
        if told.get(&a.key).is_some_and(|t| t.sent.elapsed() < cfg.resend && t.starts_ms == starts_ms) {
            continue;
        }
        told.insert(a.key.clone(), Told { starts_ms, sent: Instant::now() });
        out.push(post(snap, a, starts_ms, now_ms + ends.as_millis() as i64));
    }
    let gone: Vec<AlertKey> = told.keys().filter(|k| !firing.contains(*k)).cloned().collect();
    for key in gone {
        let t = told.remove(&key).expect("listed above");
        let a = snap.alerts.iter().find(|a| a.key == key);
        out.push(match a {
            Some(a) => post(snap, a, t.starts_ms, now_ms),
            // Gone from the list (a campaign removed): resolved with the labels it had.
            None => {
                json!({ "labels": labels(&key, "info"), "startsAt": super::rfc3339(t.starts_ms), "endsAt": super::rfc3339(now_ms) })
            }
        });
    }
    out
}

fn labels(key: &AlertKey, severity: &str) -> Value {
    json!({
        "alertname": alertname(&key.rule),
        "campaign": key.campaign,
        "channel": key.channel,
        "rule": key.rule,
        "severity": severity,
    })
}

/// The labels, with the task's owner for an alert of the launch checklist.
fn with_owner(mut labels: Value, snap: &Snapshot, key: &AlertKey) -> Value {
    let owner = snap
        .campaign(&key.campaign)
        .and_then(|c| c.campaign.tasks.iter().find(|t| t.rule() == key.rule).map(|t| t.owner.clone()));
    if let (Some(owner), Some(map)) = (owner, labels.as_object_mut()) {
        map.insert("owner".into(), Value::String(owner));
    }
    labels
}

/// One alert as Alertmanager takes it.
fn post(snap: &Snapshot, a: &crate::alert::Alert, starts_ms: i64, ends_ms: i64) -> Value {
    let scope = a.key.scope();
    let mut description = format!("{scope}: {} ({})", a.summary, a.key.rule);
    if let Some(ack) = &a.ack {
        description.push_str(&format!("; acknowledged by {}", ack.by));
    }
    let runbook = snap.contingency_of(a).map(|p| p.first_step()).unwrap_or_default();
    json!({
        "labels": with_owner(labels(&a.key, severity(a.severity)), snap, &a.key),
        "annotations": { "summary": a.summary, "description": description, "runbook": runbook },
        "startsAt": super::rfc3339(starts_ms),
        "endsAt": super::rfc3339(ends_ms),
    })
}

/// A cockpit silence as Alertmanager takes it, ending `ends_ms` (wall-clock).
fn silence_body(s: &crate::alert::Silence, starts_ms: i64, ends_ms: i64) -> Value {
    let matcher = |name: &str, value: &str| json!({ "name": name, "value": value, "isRegex": false, "isEqual": true });
    let mut matchers = vec![matcher("campaign", &s.campaign)];
    if !s.channel.is_empty() {
        matchers.push(matcher("channel", &s.channel));
    }
    if !s.rule.is_empty() {
        matchers.push(matcher("rule", &s.rule));
    }
    json!({
        "matchers": matchers,
        "startsAt": super::rfc3339(starts_ms),
        "endsAt": super::rfc3339(ends_ms),
        "createdBy": s.by,
        "comment": format!("silenced in Campaign Cockpit ({})", s.id),
    })
}

/// A cockpit silence mirrored in Alertmanager: its id there, and when it ends (wall-clock).
struct Mirrored {
    id: String,
    ends_ms: i64,
}

/// Mirrors the cockpit's silences in force: new ones are created there, ones gone here
/// before their end are expired there. An error says what failed, to be tried again.
async fn mirror_silences(
    client: &reqwest::Client,
    base: &str,
    snap: &Snapshot,
    mirrored: &mut HashMap<String, Mirrored>,
) -> Result<(), String> {
    let wall = chrono::Utc::now().timestamp_millis();
    let new: Vec<&crate::alert::Silence> =
        snap.silences.iter().filter(|s| s.until_ms > snap.now_ms && !mirrored.contains_key(&s.id)).collect();
    for s in new {
        // Campaign time may run faster than the wall's (the demo): the same time left.
        let ends_ms = wall + ((s.until_ms - snap.now_ms) as f64 / snap.speed.max(1e-9)) as i64;
        let url = format!("{base}/api/v2/silences");
        let answer = client
            .post(&url)
            .json(&silence_body(s, wall, ends_ms))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("Alertmanager {url}: {}", crate::poll::root_cause(&e)))?;
        if !answer.status().is_success() {
            return Err(format!("Alertmanager {url}: HTTP {}", answer.status().as_u16()));
        }
        let body: Value = answer.json().await.map_err(|e| format!("Alertmanager {url}: {e}"))?;
        let id = body["silenceID"].as_str().unwrap_or_default().to_string();
        tracing::info!("silence {} is Alertmanager's {id}", s.id);
        mirrored.insert(s.id.clone(), Mirrored { id, ends_ms });
    }
    let gone: Vec<String> = mirrored.keys().filter(|id| !snap.silences.iter().any(|s| s.id == **id)).cloned().collect();
    for id in gone {
        let m = mirrored.remove(&id).expect("listed above");
        if m.ends_ms > wall && !m.id.is_empty() {
            let url = format!("{base}/api/v2/silence/{}", m.id);
            // Expired there by itself otherwise; a failure here is logged, not retried.
            match client.delete(&url).timeout(Duration::from_secs(10)).send().await {
                Ok(r) if r.status().is_success() => tracing::info!("silence {id} ended early: expired {}", m.id),
                Ok(r) => tracing::warn!("Alertmanager {url}: HTTP {}", r.status().as_u16()),
                Err(e) => tracing::warn!("Alertmanager {url}: {}", crate::poll::root_cause(&e)),
            }
        }
    }
    Ok(())
}

/// Posts alerts until the snapshots end. The engine hears when deliveries start failing and
/// when they work again.
pub async fn run(
    cfg: Config,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    engine: mpsc::Sender<crate::engine::Command>,
    clock: crate::clock::SharedClock,
) {
    let report = |error: Option<String>| {
        let engine = engine.clone();
        async move {
            let _ = engine.send(crate::engine::Command::Paging(error)).await;
        }
    };
    let client = crate::poll::client();
    let base = cfg.url.trim_end_matches('/').to_string();
    let url = format!("{base}/api/v2/alerts");
    let mut told: HashMap<AlertKey, Told> = HashMap::new();
    let mut mirrored: HashMap<String, Mirrored> = HashMap::new();
    let mut backoff = Duration::from_secs(1);
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut failing = false;
    let mut tick = tokio::time::interval(Duration::from_secs(5).min(cfg.resend));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
        if retry_at.is_some_and(|t| tokio::time::Instant::now() < t) {
            continue;
        }
        let snap = snapshots.borrow_and_update().clone();
        let mut next = told.clone();
        let batch = due(&snap, &mut next, &cfg, clock.now_ms());
        let silences_due = snap.silences.len() != mirrored.len()
            || snap.silences.iter().any(|s| s.until_ms > snap.now_ms && !mirrored.contains_key(&s.id));
        if batch.is_empty() && !silences_due {
            continue;
        }
        // Silences first, so that an alert they cover arrives suppressed.
        let mut error = match silences_due {
            true => mirror_silences(&client, &base, &snap, &mut mirrored).await.err(),
            false => None,
        };
        if error.is_none() && !batch.is_empty() {
            let sent = client.post(&url).json(&batch).timeout(Duration::from_secs(10)).send().await;
            error = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("Alertmanager {url}: HTTP {}", r.status().as_u16())),
                Err(e) => Some(format!("Alertmanager {url}: {}", crate::poll::root_cause(&e))),
            };
        }
        match error {
            None => {
                told = next;
                backoff = Duration::from_secs(1);
                retry_at = None;
                if std::mem::take(&mut failing) {
                    tracing::info!("Alertmanager {url} takes alerts again");
                    report(None).await;
                }
            }
            Some(e) => {
                tracing::warn!("{e}; again in {}s", backoff.as_secs());
                retry_at = Some(tokio::time::Instant::now() + backoff);
                backoff = (backoff * 2).min(Duration::from_secs(60));
                failing = true;
                report(Some(e)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_rule_kinds() {
        assert_eq!(alertname("kpi: cpa <= 90"), "CockpitKpi");
        assert_eq!(alertname("health"), "CockpitHealth");
        assert_eq!(alertname("anomaly: spend"), "CockpitAnomaly");
        assert_eq!(alertname("task: Creative B cleared by legal"), "CockpitTask");
    }

    /// A task's alert carries its owner as a label, for routing; others do not.
    #[test]
    fn a_task_alert_names_its_owner() {
        use crate::engine::snapshot::CampaignView;
        let plan = crate::demo::campaigns().into_iter().find(|c| c.id == "app-launch").unwrap();
        let view = CampaignView::new(Arc::new(plan.clone()), Vec::new(), plan.start_ms());
        let snap = Snapshot { campaigns: vec![Arc::new(view)], ..Snapshot::default() };
        let task = &plan.tasks[2];
        let key = AlertKey { campaign: plan.id.clone(), channel: "douyin-feed".into(), rule: task.rule() };
        let l = with_owner(labels(&key, "warning"), &snap, &key);
        assert_eq!(l["owner"], "陈静 brand");
        assert_eq!(l["alertname"], "CockpitTask");
        let kpi = AlertKey { rule: "kpi: cpa <= 6".into(), ..key };
        assert!(with_owner(labels(&kpi, "warning"), &snap, &kpi).get("owner").is_none());
    }
}
