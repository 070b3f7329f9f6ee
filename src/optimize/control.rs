//! Sending an action to a channel's control endpoint: a POST with an idempotency
//! key, a timeout per attempt, and retries with the same key on timeouts, connection errors and
//! 5xx answers — the endpoint applies a key once, so a retry never applies twice. A 4xx answer
//! is final. A request that went out and got no answer is *unknown* (`ControlError::Unknown`):
//! it may have been applied, and the journal says so. The bearer token goes only over https or
//! to a loopback host, and never appears in an error.
//!
//! **Control** — `POST <control>` with
//! `{ "channel": "douyin", "action": "pause" | "resume" | "set_budget" | "declare_winner", "value": 8000.0, "variant": "B", "idempotency_key": "…" }`
//! (`value` for `set_budget`; `variant` for `declare_winner`, which sends all traffic to that
//! variant — without one it restores the A/B split); 2xx means applied; a repeated key returns the
//! first outcome without applying again (409 if the key is reused for a different request). The
//! cockpit retries a timeout, a connection error or a 5xx with the same key (3 attempts, 5 s each);
//! a 4xx is final. A token in `COCKPIT_CONTROL_TOKEN` is sent as `Authorization: Bearer` only over
//! https or to a loopback host.

use crate::domain::ControlAction;
use crate::poll::{Secret, may_carry_token};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Attempts per action (the first and two retries).
pub const ATTEMPTS: u32 = 3;
/// Time allowed per attempt.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A control request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    pub channel: String,
    pub action: ControlAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// declare_winner: the variant that gets all traffic; none ends that and restores the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub idempotency_key: String,
}

/// Why an action was not confirmed. Callers branch on it: a change that may have been applied
/// is recorded as unknown, never as failed (an undo or a retry would then be a guess).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The endpoint refused it (4xx), failed it on every attempt (5xx), or could not be reached:
    /// nothing was applied.
    #[error("{0}")]
    NotApplied(String),
    /// A request went out and no answer came back: the change may have been applied.
    #[error("{0}")]
    Unknown(String),
}

/// One action on its way out.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub entry: u64,
    pub url: String,
    pub request: ControlRequest,
}

/// Sends `d`; `Ok` with the endpoint's answer when applied. A retry carries the same
/// idempotency key, so once any attempt may have reached the endpoint unanswered, no later
/// answer short of a success can say that nothing was applied.
pub async fn send(
    client: &reqwest::Client,
    d: &Dispatch,
    token: Option<&Secret>,
    timeout: Duration,
) -> Result<String, ControlError> {
    let mut last = String::new();
    let mut maybe_applied = false;
    let mut refused = false;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        let mut req = client.post(&d.url).json(&d.request).timeout(timeout);
        if let Some(t) = token.filter(|_| may_carry_token(&d.url)) {
            req = req.bearer_auth(t.expose());
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let body = body.lines().next().unwrap_or("").chars().take(200).collect::<String>();
                if status.is_success() {
                    return Ok(if body.is_empty() { status.to_string() } else { body });
                }
                last = format!("HTTP {}: {body}", status.as_u16());
                if status.is_client_error() {
                    refused = true;
                    break;
                }
            }
            Err(e) if e.is_connect() => last = format!("cannot connect to {}", host_of(&d.url)),
            Err(e) if e.is_timeout() => {
                maybe_applied = true;
                last = format!("no answer within {}s", timeout.as_secs());
            }
            Err(e) => {
                maybe_applied = true;
                last = format!("request failed: {}", without_url(&e));
            }
        }
    }
    let attempts = if refused { String::new() } else { format!(" (after {ATTEMPTS} attempts)") };
    if maybe_applied {
        Err(ControlError::Unknown(format!("{last}{attempts}; it may have been applied")))
    } else {
        Err(ControlError::NotApplied(format!("{last}{attempts}")))
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "the endpoint".into())
}

/// reqwest's error text without the URL (which may carry a query with secrets).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "the control endpoint");
    }
    s
}
