//! `cockpit check`: evaluate every rule once against the stored data and one fresh poll of
//! every source, print what is firing, and exit 0 (nothing), 1 (warnings) or 2 (critical).
//! An alert someone has acknowledged is listed but left out of the exit code (someone is on
//! it) unless `--include-acked`.
//! Alert states are stored, so a check run from cron every few minutes moves an alert from
//! pending to firing exactly as the cockpit would.

use crate::alert::{Alert, AlertState, Severity};
use crate::clock::SharedClock;
use crate::engine::Engine;
use crate::engine::snapshot::Snapshot;
use crate::poll::PollOutcome;
use crate::store::Store;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Polls of a failing source in one check: the failed polls in a row the health rule waits
/// for by default.
const CHECK_TRIES: usize = 3;

/// Exit codes of `cockpit check`.
pub const OK: u8 = 0;
pub const WARN: u8 = 1;
pub const CRIT: u8 = 2;

#[derive(Serialize)]
struct Row<'a> {
    campaign: &'a str,
    channel: &'a str,
    rule: &'a str,
    state: AlertState,
    severity: Severity,
    since: String,
    summary: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acked_by: Option<&'a str>,
}

/// How the report is written and what counts toward the exit code.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pub json: bool,
    pub utc: bool,
    /// Acknowledged alerts count toward the exit code too.
    pub include_acked: bool,
}

/// Polls the sources of `campaign` (every campaign when `None`) once, evaluates the rules, and
/// returns the report to print and the exit code. A dry run stores nothing.
pub async fn run(
    store: Store,
    clock: SharedClock,
    campaign: Option<&str>,
    (out, dry_run): (Output, bool),
    interval: Duration,
    token: (Option<&crate::poll::Secret>, bool),
    (secrets, credentials): (
        &std::collections::BTreeMap<String, crate::poll::Secret>,
        &crate::poll::credential::Registry,
    ),
) -> color_eyre::Result<(String, u8)> {
    let all = store.campaigns()?;
    if let Some(id) = campaign
        && !all.iter().any(|c| c.id == id)
    {
        let known: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        return Err(super::BadInput(format!("no campaign '{id}' (known: {})", known.join(", "))).into());
    }
    let selected: Vec<_> = all.iter().filter(|c| campaign.is_none_or(|id| c.id == id)).cloned().collect();
    let sources = crate::poll::with_secrets(
        crate::poll::sources_with_token(&selected, interval, token.0, token.1),
        secrets,
        credentials,
    );
    let (mut engine, snapshots) = Engine::start(store, clock.clone(), all, &sources)?;
    engine.backfill_some(usize::MAX);
    let client = crate::poll::client();
    // A source that fails is tried again, up to the failed polls in a row the health rule
    // waits for: one blip does not page from cron, a source that is down does (once its
    // alert has been pending for its `for`, across checks).
    let polls = sources.iter().map(|spec| {
        let client = client.clone();
        let clock = clock.clone();
        async move {
            let mut outcomes = Vec::new();
            for _ in 0..CHECK_TRIES {
                let started = Instant::now();
                let result = crate::poll::fetch(&client, spec).await;
                let failed = result.is_err();
                outcomes.push(PollOutcome {
                    url: spec.url.clone(),
                    fetched_at: clock.now_ms(),
                    received: Instant::now(),
                    latency: started.elapsed(),
                    result,
                });
                if !failed {
                    break;
                }
            }
            outcomes
        }
    });
    for outcome in futures_util::future::join_all(polls).await.into_iter().flatten() {
        engine.on_poll(outcome);
    }
    if !dry_run {
        engine.commit();
    }
    engine.publish();
    let snap = snapshots.borrow().clone();
    Ok(report(&snap, campaign, out))
}

/// The firing (unsilenced) alerts of the selection, worst first, and the exit code (of the
/// alerts not acknowledged, unless `include_acked`). Times are each campaign's local time with
/// its offset, or UTC.
pub fn report(snap: &Snapshot, campaign: Option<&str>, Output { json, utc, include_acked }: Output) -> (String, u8) {
    let selected = |a: &&Alert| campaign.is_none_or(|id| a.key.campaign == id) && snap.silence_of(a).is_none();
    let mut firing: Vec<&Alert> =
        snap.alerts.iter().filter(selected).filter(|a| a.state == AlertState::Firing).collect();
    firing.sort_by_key(|a| std::cmp::Reverse(a.severity));
    let pending: Vec<&Alert> = snap.alerts.iter().filter(selected).filter(|a| a.state == AlertState::Pending).collect();
    let counted = firing.iter().filter(|a| include_acked || a.ack.is_none()).map(|a| a.severity).max();
    let code = match counted {
        Some(Severity::Crit) => CRIT,
        Some(Severity::Warn) => WARN,
        _ => OK,
    };
    let time = |campaign: &str, ms: i64| {
        let zone = snap.campaign(campaign).map(|c| *c.campaign.start.offset()).filter(|_| !utc);
        let zone = zone.unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("UTC"));
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&zone).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let rows: Vec<Row<'_>> = firing
        .iter()
        .chain(&pending)
        .map(|a| Row {
            campaign: &a.key.campaign,
            channel: &a.key.channel,
            rule: &a.key.rule,
            state: a.state,
            severity: a.severity,
            since: time(&a.key.campaign, a.fired_ms.unwrap_or(a.since_ms)).unwrap_or_default(),
            summary: &a.summary,
            observed: a.observed,
            expected: a.expected.map(|e| e.0),
            acked_by: a.ack.as_ref().map(|k| k.by.as_str()),
        })
        .collect();
    if json {
        let out = serde_json::to_string_pretty(&rows).expect("alerts serialise to JSON");
        return (out + "\n", code);
    }
    let mut out = String::new();
    for r in &rows {
        let scope = if r.channel.is_empty() { r.campaign.to_string() } else { format!("{}/{}", r.campaign, r.channel) };
        let state = match r.state {
            AlertState::Firing => "firing",
            AlertState::Pending => "pending",
            AlertState::Resolved => "resolved",
        };
        let acked = r.acked_by.map(|b| format!(" (acked by {b})")).unwrap_or_default();
        out.push_str(&format!(
            "{:<4} {state:<7} {scope} [{}] since {}{acked}: {}\n",
            r.severity.to_string().to_uppercase(),
            r.rule,
            r.since,
            r.summary
        ));
    }
    let acked = firing.iter().filter(|a| a.ack.is_some()).count();
    out.push_str(&format!(
        "{} firing ({} critical{}), {} pending\n",
        firing.len(),
        firing.iter().filter(|a| a.severity == Severity::Crit).count(),
        match (acked, include_acked) {
            (0, _) => String::new(),
            (n, false) => format!(", {n} acknowledged and not in the exit code"),
            (n, true) => format!(", {n} acknowledged"),
        },
        pending.len()
    ));
    (out, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Ack, AlertKey};

    #[test]
    fn an_acknowledged_alert_is_listed_but_out_of_the_exit_code_unless_asked() {
        let alert = |channel: &str, severity: Severity, acked: bool| Alert {
            key: AlertKey { campaign: "c".into(), channel: channel.into(), rule: "health".into() },
            state: AlertState::Firing,
            severity,
            since_ms: 0,
            fired_ms: Some(0),
            clear_since_ms: None,
            resolved_ms: None,
            observed: None,
            expected: None,
            summary: "source failing".into(),
            ack: acked.then(|| Ack { by: "mei".into(), at_ms: 0 }),
        };
        let snap = |alerts| Snapshot { alerts: std::sync::Arc::new(alerts), ..Default::default() };
        let s = snap(vec![alert("a", Severity::Crit, true), alert("b", Severity::Warn, false)]);
        let (out, code) = report(&s, None, Output::default());
        assert_eq!(code, WARN, "{out}");
        assert!(out.contains("(acked by mei)") && out.contains("1 acknowledged and not in the exit code"), "{out}");
        let (_, code) = report(&s, None, Output { include_acked: true, ..Output::default() });
        assert_eq!(code, CRIT);
        let (_, code) = report(&snap(vec![alert("a", Severity::Crit, true)]), None, Output::default());
        assert_eq!(code, OK);
    }
}
