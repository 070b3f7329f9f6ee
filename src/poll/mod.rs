//! Fetches stats sources over HTTP and hands what they say to the engine. A source speaks the
//! cockpit protocol below (`wire`), or is a platform's reporting API read through a declared
//! request and mapping (`request`, `mapping`; see `domain::source` and the presets): either
//! way the engine receives cumulative counters per channel, and for sources read by periods
//! the periods themselves. One task per source URL (channels sharing a URL share the request);
//! a semaphore bounds how many requests are in flight; failures back off exponentially with
//! jitter, throttling waits as long as the platform asks; bodies are capped in size.
//!
//! # The stats protocol, version 1
//!
//! **Stats** — `GET <source>` answers JSON. Counters are cumulative since the channel started, like
//! Prometheus counters: a missed poll loses nothing, and a counter that goes down is a reset (the
//! new value counts from zero), never a negative delta.
//!
//! ```json
//! { "version": 1, "generated_at": "2026-03-02T09:00:00Z",
//!   "channels": [ { "id": "wechat-moments", "campaign": "spring-launch", "status": "active",
//!       "daily_budget": 2000.0, "currency": "CNY",
//!       "totals": { "impressions": 120000, "clicks": 3400, "leads": 210, "conversions": 40,
//!                   "spend": 1820.55, "revenue": 9800.0 },
//!       "variants": [ { "id": "A", "impressions": 60000, "clicks": 1800, "conversions": 22 } ] } ] }
//! ```
//!
//! **Segments** (optional, backward compatible) — a channel may add
//! `"segments": [ { "dimension": "age", "value": "25-34", "impressions": 41000, "clicks": 1200, "leads": 80, "conversions": 19, "spend": 610.4, "revenue": 4800.0 }, … ]`:
//! cumulative counters per audience segment, each dimension (device, age band, region, audience
//! tag…) partitioning the channel's traffic. Missing counters are 0; a duplicate
//! (dimension, value), an empty name or a bad number is bad data naming the segment. Sources that
//! send none are unaffected; the cockpit keeps each segment's reset-safe running total.
//!
//! Only `channels[].id` and `totals` are required; unknown fields are ignored. `campaign` picks the
//! right entry when one document serves several campaigns. Refused as bad data: counters that are
//! negative, fractional or not numbers, duplicate channel ids, another `version`. A `generated_at`
//! more than 5 minutes ahead of the cockpit's clock is ignored (the arrival time is used, and the
//! source is flagged). Responses are capped at 8 MiB.
//!
//! **Polling** — one request per distinct source URL per interval, at most 32 in flight, a 5 s
//! timeout, exponential backoff with equal jitter on failure (up to 32 intervals or 60 s). Source
//! health: `ok`, `slow` (slower than half the timeout), `stale` (no good poll for 3 intervals),
//! `bad data`, `failing` (with the last error text).

pub mod auth;
pub mod credential;
pub mod credstore;
pub mod csvdir;
pub mod json;
pub mod mapping;
pub mod request;
pub mod wire;

pub use auth::{Secret, may_carry_token};

use crate::clock::SharedClock;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use wire::StatsDoc;

/// How one source is polled.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
    /// Sent as `Authorization: Bearer`, only over https or to a loopback host unless
    /// `token_over_http` allows plain http to other hosts too.
    pub token: Option<Secret>,
    pub token_over_http: bool,
    /// A source read through a mapping (a platform's API); `None` for the cockpit protocol.
    pub mapped: Option<Arc<request::MappedSource>>,
    /// Secrets from `config.toml` for `{secret:NAME}` in a mapped request (the environment is
    /// asked first).
    pub secrets: Arc<std::collections::BTreeMap<String, Secret>>,
    /// The credentials whose access token is `{token}` in a mapped request.
    pub credential: SourceCredential,
    /// Why the interval is longer than the channels ask: the platform's quota.
    pub quota_note: Option<String>,
}

/// The credentials a source's channels name.
#[derive(Clone, Default)]
pub enum SourceCredential {
    /// None: `{token}` is the preset's secret.
    #[default]
    None,
    /// Named, not yet looked up in `config.toml`.
    Named(String),
    /// Named and found.
    Found(Arc<credential::Credential>),
    /// Named and not found: each poll says so.
    Missing(String),
}

impl std::fmt::Debug for SourceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceCredential::None => f.write_str("None"),
            SourceCredential::Named(n) | SourceCredential::Missing(n) => write!(f, "{n:?}"),
            SourceCredential::Found(c) => write!(f, "{:?}", c.name),
        }
    }
}

impl PartialEq for SourceCredential {
    fn eq(&self, o: &Self) -> bool {
        self.name() == o.name()
    }
}

impl SourceCredential {
    pub fn name(&self) -> Option<&str> {
        match self {
            SourceCredential::None => None,
            SourceCredential::Named(n) | SourceCredential::Missing(n) => Some(n),
            SourceCredential::Found(c) => Some(&c.name),
        }
    }
}

impl SourceSpec {
    pub fn new(url: &str, interval: Duration) -> Self {
        SourceSpec {
            url: url.to_string(),
            interval,
            timeout: Duration::from_secs(5),
            max_bytes: 8 << 20,
            token: None,
            token_over_http: false,
            mapped: None,
            secrets: Default::default(),
            credential: SourceCredential::None,
            quota_note: None,
        }
    }
}

/// The sources to poll for every channel of every campaign: one per distinct URL, at the
/// shortest interval any of its channels asks for.
pub fn sources_for(campaigns: &[crate::domain::Campaign], default_interval: Duration) -> Vec<SourceSpec> {
    type Served<'a> = (Duration, Vec<(&'a crate::domain::Campaign, &'a crate::domain::Channel)>);
    let mut by_url: std::collections::BTreeMap<&str, Served<'_>> = std::collections::BTreeMap::new();
    for c in campaigns {
        for ch in &c.channels {
            let iv = ch.poll_interval.map_or(default_interval, |i| i.0);
            let e = by_url.entry(&ch.source).or_insert((iv, Vec::new()));
            e.0 = e.0.min(iv);
            e.1.push((c, ch));
        }
    }
    let mut sources: Vec<SourceSpec> = by_url
        .into_iter()
        .map(|(url, (iv, served))| {
            let credential = served
                .iter()
                .find_map(|(_, ch)| ch.credentials.clone())
                .map_or(SourceCredential::None, SourceCredential::Named);
            SourceSpec { mapped: mapped_source(&served), credential, ..SourceSpec::new(url, iv) }
        })
        .collect();
    fit_quotas(&mut sources);
    sources
}

/// Headroom kept below a platform's quota: polling slows down before the platform throttles.
pub const QUOTA_HEADROOM: f64 = 0.9;

/// Spreads the polls of sources that share a platform's quota (the same preset signing in
/// the same way) so that their requests fit in it with `QUOTA_HEADROOM`: each such source's
/// interval is at least the quota's period × the sources sharing it ÷ the requests allowed
/// (one request a poll; a source read in several pages uses more). The note says so.
pub fn fit_quotas(sources: &mut [SourceSpec]) {
    type Pool = (String, Option<String>, Option<String>);
    let key = |s: &SourceSpec| -> Option<(Pool, crate::domain::source::Quota)> {
        let r = &s.mapped.as_ref()?.mappings.resolved;
        let q = r.quota.clone()?;
        Some(((r.format.clone(), s.credential.name().map(str::to_string), r.auth.secret.clone()), q))
    };
    let mut pools: std::collections::BTreeMap<Pool, usize> = std::collections::BTreeMap::new();
    for s in sources.iter() {
        if let Some((k, _)) = key(s) {
            *pools.entry(k).or_default() += 1;
        }
    }
    for s in sources.iter_mut() {
        let Some((k, q)) = key(s) else { continue };
        let n = pools[&k] as f64;
        let per = |allowed: Option<u64>, period_s: f64| {
            allowed.filter(|a| *a > 0).map_or(0.0, |a| period_s * n / (a as f64 * QUOTA_HEADROOM))
        };
        let least = Duration::from_secs_f64(per(q.per_day, 86_400.0).max(per(q.per_minute, 60.0)));
        if least > s.interval {
            let shared = if n > 1.0 { format!("; {n} sources share it") } else { String::new() };
            let note = format!(
                "polled every {} at most: {}{shared}",
                humantime::format_duration(Duration::from_secs(least.as_secs().max(1))),
                q.about
            );
            tracing::info!(url = %s.url, "{note}");
            s.interval = least;
            s.quota_note = Some(note);
        }
    }
}

/// How a source serving these channels is read through a mapping, if it is (campaign
/// validation has made sure that they agree on the format and the request).
fn mapped_source(served: &[(&crate::domain::Campaign, &crate::domain::Channel)]) -> Option<Arc<request::MappedSource>> {
    let (c, _) = served.first()?;
    let formats: Vec<(String, crate::domain::source::Resolved)> =
        served.iter().filter_map(|(_, ch)| Some((ch.source_id().to_string(), ch.source_format()?))).collect();
    if formats.is_empty() {
        return None;
    }
    match mapping::Mappings::new(&formats) {
        Ok(mappings) => Some(Arc::new(request::MappedSource {
            mappings,
            tz: formats
                .first()
                .and_then(|(_, r)| r.mapping.time_zone.as_deref())
                .and_then(crate::domain::time::Zone::parse)
                .unwrap_or(crate::domain::time::Zone::Fixed(*c.start.offset())),
            start_ms: served.iter().map(|(c, _)| c.start_ms()).min().unwrap_or(c.start_ms()),
        })),
        Err(e) => {
            tracing::warn!("source of {}: {e}", c.id);
            None
        }
    }
}

/// The sources with the secrets of `config.toml` for their requests' `{secret:NAME}`, and
/// the credentials they name.
pub fn with_secrets(
    sources: Vec<SourceSpec>,
    secrets: &std::collections::BTreeMap<String, Secret>,
    credentials: &credential::Registry,
) -> Vec<SourceSpec> {
    let secrets = Arc::new(secrets.clone());
    sources
        .into_iter()
        .map(|s| {
            let credential = match s.credential {
                SourceCredential::Named(n) => match credentials.get(&n) {
                    Some(c) => SourceCredential::Found(c),
                    None => SourceCredential::Missing(n),
                },
                other => other,
            };
            SourceSpec { secrets: secrets.clone(), credential, ..s }
        })
        .collect()
}

/// `sources_for`, each source carrying the source token (see `SourceSpec::token`).
pub fn sources_with_token(
    campaigns: &[crate::domain::Campaign],
    interval: Duration,
    token: Option<&Secret>,
    over_http: bool,
) -> Vec<SourceSpec> {
    sources_for(campaigns, interval)
        .into_iter()
        .map(|s| SourceSpec { token: token.cloned(), token_over_http: over_http, ..s })
        .collect()
}

/// Why a poll failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PollError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("bad data: {0}")]
    BadData(String),
    /// The platform asked us to slow down; polling waits `retry_after` (or backs off).
    #[error("throttled: {detail}{}", retry_after.map(|d| format!("; retrying in {}s", d.as_secs())).unwrap_or_default())]
    Throttled { retry_after: Option<Duration>, detail: String },
    /// An HTTP error with the platform's own message.
    #[error("HTTP {status}: {detail}")]
    Platform { status: u16, detail: String },
    /// The source cannot be asked as configured (a secret not set, a bad URL).
    #[error("{0}")]
    Config(String),
    /// The platform refused the credentials, and renewing them did not help: someone must
    /// sign in again.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The platform no longer serves the API version asked for.
    #[error("api version retired: {0}")]
    Retired(String),
    #[error("{0}")]
    Other(String),
}

/// What one poll brought back.
#[derive(Debug, Clone)]
pub struct PollOutcome {
    pub url: String,
    /// The cockpit clock's time when the response arrived (unix ms).
    pub fetched_at: i64,
    /// Real time, for staleness and latency.
    pub received: Instant,
    pub latency: Duration,
    pub result: Result<StatsDoc, PollError>,
}

/// A reqwest client set up for polling: rustls, no redirects to other hosts with credentials,
/// a connect timeout.
pub fn client() -> reqwest::Client {
    crate::tls::ensure_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("cockpit/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with static settings")
}

/// Fetches and parses one source once.
pub async fn fetch(client: &reqwest::Client, spec: &SourceSpec) -> Result<StatsDoc, PollError> {
    fetch_with(client, spec, &mut wire::Names::default()).await
}

/// `fetch`, sharing names with the source's earlier answers (as a polling task does). A
/// mapped source is asked for everything since its campaign's start.
pub async fn fetch_with(
    client: &reqwest::Client,
    spec: &SourceSpec,
    names: &mut wire::Names,
) -> Result<StatsDoc, PollError> {
    fetch_at(client, spec, names, chrono::Utc::now().timestamp_millis(), true).await
}

/// One read of a source at `now_ms` (campaign time: the dates a mapped request asks for);
/// `from_start`: a mapped `rows` source asks for every period since its campaign began, not
/// only the last ones to restate.
pub async fn fetch_at(
    client: &reqwest::Client,
    spec: &SourceSpec,
    names: &mut wire::Names,
    now_ms: i64,
    from_start: bool,
) -> Result<StatsDoc, PollError> {
    if let Some(m) = &spec.mapped {
        return request::fetch_mapped(client, spec, m, now_ms, from_start).await;
    }
    let mut refused = None;
    if names.asks_lean(now_ms) && !spec.url.contains('#') {
        let sep = if spec.url.contains('?') { '&' } else { '?' };
        match fetch_body(client, spec, &format!("{}{sep}segments=0", spec.url)).await {
            Ok(body) => {
                // None: the counters went back, and the answer is asked for again whole, for
                // the segments.
                if let Some(doc) = wire::parse_lean_at(&body, names, now_ms).map_err(PollError::BadData)? {
                    return Ok(doc);
                }
            }
            Err(PollError::Status(code)) if (400..500).contains(&code) && code != 429 => refused = Some(code),
            Err(e) => return Err(e),
        }
    }
    let body = fetch_body(client, spec, &spec.url).await?;
    if let Some(code) = refused {
        tracing::info!(url = %spec.url, "the source answers {code} to segments=0: every answer is asked for whole");
        names.refuse_lean();
    }
    wire::parse_stats_at(&body, names, now_ms).map_err(PollError::BadData)
}

/// The body of a GET of `url` (the source's, perhaps with a query added), within the source's
/// timeout.
async fn fetch_body(client: &reqwest::Client, spec: &SourceSpec, url: &str) -> Result<Vec<u8>, PollError> {
    tokio::time::timeout(spec.timeout, fetch_body_untimed(client, spec, url))
        .await
        .map_err(|_| PollError::Timeout(spec.timeout))?
}

async fn fetch_body_untimed(client: &reqwest::Client, spec: &SourceSpec, url: &str) -> Result<Vec<u8>, PollError> {
    let mut req = client.get(url);
    if let Some(t) = spec.token.as_ref().filter(|_| spec.token_over_http || may_carry_token(&spec.url)) {
        req = req.bearer_auth(t.expose());
    }
    let mut resp = req.send().await.map_err(|e| send_error(&e, spec.timeout))?;
    if !resp.status().is_success() {
        return Err(PollError::Status(resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|n| n > spec.max_bytes as u64) {
        return Err(PollError::TooLarge(spec.max_bytes));
    }
    // Sized once when the length is announced: growing a large body step by step costs more
    // than reading it.
    let mut body = Vec::with_capacity(resp.content_length().map_or(0, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(|e| PollError::Other(root_cause(&e)))? {
        if body.len() + chunk.len() > spec.max_bytes {
            return Err(PollError::TooLarge(spec.max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request that got no answer, as a poll error.
fn send_error(e: &reqwest::Error, timeout: Duration) -> PollError {
    if e.is_timeout() {
        PollError::Timeout(timeout)
    } else if e.is_connect() {
        PollError::Connect(root_cause(e))
    } else {
        PollError::Other(root_cause(e))
    }
}

pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Delay before the next attempt after `failures` failures in a row: the interval doubled per
/// failure up to `max`, with "equal jitter" (half fixed, half random) so that many failing
/// sources do not retry in lockstep. `rand01` is a uniform number in [0, 1).
pub fn backoff(interval: Duration, failures: u32, max: Duration, rand01: f64) -> Duration {
    if failures == 0 {
        return interval;
    }
    let exp = interval.saturating_mul(1u32 << failures.min(16)).min(max).max(interval);
    exp / 2 + exp.mul_f64(rand01.clamp(0.0, 1.0) / 2.0)
}

/// Runs one polling task per source until the receiver is dropped. Returns the tasks' handles
/// (abort them to stop early).
pub fn spawn(
    sources: Vec<SourceSpec>,
    concurrency: usize,
    clock: SharedClock,
    tx: mpsc::Sender<PollOutcome>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = client();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    sources
        .into_iter()
        .map(|spec| {
            let (client, permits, clock, tx) = (client.clone(), permits.clone(), clock.clone(), tx.clone());
            tokio::spawn(async move { poll_source(spec, client, permits, clock, tx).await })
        })
        .collect()
}

async fn poll_source(
    spec: SourceSpec,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    clock: SharedClock,
    tx: mpsc::Sender<PollOutcome>,
) {
    let max_backoff = (spec.interval * 32).max(Duration::from_secs(60));
    let mut failures = 0u32;
    // A mapped source reads every period since its campaign began until one read succeeds.
    let mut from_start = true;
    let mut names = wire::Names::default();
    names.skim_segments(spec.interval, crate::domain::time::STORE_RESOLUTION_MS);
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let started = Instant::now();
        let result = {
            let Ok(_permit) = permits.acquire().await else { return };
            fetch_at(&client, &spec, &mut names, clock.now_ms(), from_start).await
        };
        failures = if result.is_ok() { 0 } else { failures.saturating_add(1) };
        from_start &= result.is_err();
        let asked_to_wait = match &result {
            Err(PollError::Throttled { retry_after, .. }) => *retry_after,
            // Nearly at its rate limit: slower, before the platform throttles.
            Ok(doc) => doc.slow_down.map(|f| spec.interval * f),
            _ => None,
        };
        let outcome = PollOutcome {
            url: spec.url.clone(),
            fetched_at: clock.now_ms(),
            received: Instant::now(),
            latency: started.elapsed(),
            result,
        };
        if tx.send(outcome).await.is_err() {
            return;
        }
        let wait =
            backoff(spec.interval, failures, max_backoff, rand::random::<f64>()).max(asked_to_wait.unwrap_or_default());
        // Keep a steady cadence on success: the interval counts from the start of the poll.
        next = if failures == 0 {
            tokio::time::Instant::from_std(started) + wait
        } else {
            tokio::time::Instant::now() + wait
        };
        if next < tokio::time::Instant::now() {
            next = tokio::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let i = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(i, 0, max, 0.9), i);
        assert_eq!(backoff(i, 1, max, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(i, 1, max, 0.999_999).as_millis(), 1999);
        assert_eq!(backoff(i, 3, max, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(i, 30, max, 0.0), Duration::from_secs(30));
        assert!(backoff(i, 30, max, 0.999) <= max);
    }
}
