//! Sending an action to a channel's control endpoint (DESIGN.md §3): a POST with an idempotency
//! key, a timeout per attempt, and retries with the same key on timeouts, connection errors and
//! 5xx answers — the endpoint applies a key once, so a retry never applies twice. A 4xx answer
//! is final. The bearer token goes only over https or to a loopback host, and never appears in
//! an error.

use crate::poll::wire::ControlRequest;
use std::time::Duration;

/// Attempts per action (the first and two retries).
pub const ATTEMPTS: u32 = 3;
/// Time allowed per attempt.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// One action on its way out.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub entry: u64,
    pub url: String,
    pub request: ControlRequest,
}

/// Whether a token may travel to `url`: over TLS, or to this machine.
pub fn may_carry_token(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "https"
            || match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            }
    })
}

/// Sends `d`; `Ok` with the endpoint's answer when applied, `Err` with the reason otherwise.
pub async fn send(
    client: &reqwest::Client,
    d: &Dispatch,
    token: Option<&crate::poll::Secret>,
    timeout: Duration,
) -> Result<String, String> {
    let mut last = String::new();
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
                    return Err(last);
                }
            }
            Err(e) if e.is_timeout() => last = format!("no answer within {}s", timeout.as_secs()),
            Err(e) if e.is_connect() => last = format!("cannot connect to {}", host_of(&d.url)),
            Err(e) => last = format!("request failed: {}", without_url(&e)),
        }
    }
    Err(format!("{last} (after {ATTEMPTS} attempts)"))
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

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_go_only_over_tls_or_to_loopback() {
        use super::may_carry_token;
        assert!(may_carry_token("https://ads.example.com/control"));
        assert!(may_carry_token("http://127.0.0.1:7878/control/x"));
        assert!(may_carry_token("http://localhost/control"));
        assert!(may_carry_token("http://[::1]:80/control"));
        assert!(!may_carry_token("http://ads.example.com/control"));
        assert!(!may_carry_token("not a url"));
    }
}
