//! The built-in simulated ad network, served over HTTP on loopback: the stats protocol of
//! the cockpit's stats protocol (see `poll`) and a control endpoint it obeys. Used by `cockpit demo`, `cockpit sim`, tests
//! and benchmarks.
//!
//! `cockpit sim` serves `GET /stats`, `/stats/{campaign}`, `/stats/{campaign}/{channel}` (with
//! `?segments=0`: without the audience segments), `POST /control/{campaign}` and `GET /healthz`. Channels spend their daily budget along a
//! Chinese-traffic hour-of-day curve (quiet before dawn, evening peak) and stop at the cap; spend
//! becomes impressions at the CPM, then clicks, leads and conversions by binomial draws (noise
//! proportional to volume), revenue per conversion with log-normal spread; A/B variants split
//! impressions. It obeys pause/resume/set_budget/declare_winner. A scenario file sets the start time, seed,
//! campaigns, per-channel performance and scripted incidents:
//!
//! ```toml
//! start = "2026-06-08T09:00:00+08:00"
//! seed = 618
//! campaigns = ["../618-promo.toml"]            # empty: the built-in demo campaigns
//! [channels."618-promo/douyin"]
//! cpm = 30.0
//! ctr = 0.012
//! lead_rate = 0.04
//! cvr = 0.02
//! aov = 230.0
//! variants = [{ id = "A", share = 0.5 }, { id = "B", share = 0.5, ctr_mult = 1.25 }]
//! [[events]]
//! at = "+2h"                                   # or an RFC 3339 time
//! target = "618-promo/douyin"                  # or "618-promo/*", "*"
//! kind = "ctr"                                 # ctr | cvr | cpm | traffic | lead_rate | bots (factor),
//!                                              # http_error (status), hang, reset, pause
//! factor = 0.4
//! duration = "4h"                              # optional
//! ```
//!
//! `cockpit sim --channels N --campaigns M` serves N synthetic channels spread over M campaigns
//! instead (`--write-campaigns DIR` writes their campaign files for `campaign import`); with
//! `--sources channel` (the default) each channel has its own URL, with `--sources campaign` a
//! campaign's channels share one URL whose answer lists them all, as ad platforms' reporting APIs
//! answer.
//!
//! The demo scenario (`fixtures/scenarios/demo.toml`) starts on 8 June 2026 at 09:00 Beijing time:
//! at +2h Douyin's CTR falls 60 % for 4 h, at +5h the e-mail platform's API returns 500 for 40 min,
//! at +8h Kuaishou's counters reset.

pub mod dialect;
pub mod history;
pub mod model;
pub mod scale;
pub mod scenario;
pub mod tokens;

use crate::clock::SharedClock;
use crate::optimize::control::ControlRequest;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use model::{ControlError, Network};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Shared {
    net: Arc<Mutex<Network>>,
    clock: SharedClock,
    /// Every Nth platform request is throttled (0: none), and how many there have been.
    throttle: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    tokens: Arc<Mutex<tokens::Tokens>>,
}

impl Shared {
    fn tokens(&self) -> std::sync::MutexGuard<'_, tokens::Tokens> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a request with this access token is let in.
    fn admits(&self, token: Option<&str>) -> bool {
        self.tokens().admits(token)
    }

    fn retired(&self, version: &str) -> bool {
        self.tokens().retired.contains(version)
    }

    /// Whether this platform request is one to throttle.
    fn throttled(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let every = self.throttle.0.load(Relaxed);
        let n = self.throttle.1.fetch_add(1, Relaxed) + 1;
        every > 0 && n % every == 0
    }

    fn network(&self) -> std::sync::MutexGuard<'_, Network> {
        let mut net = self.net.lock().unwrap_or_else(|e| e.into_inner());
        net.advance_to(self.clock.now_ms());
        net
    }

    /// A stats answer; `segments`: with the channels' audience segments (a request with
    /// `segments=0` leaves them out).
    fn stats(&self, campaign: Option<&str>, channel: Option<&str>, segments: bool) -> Result<Option<Vec<u8>>, u16> {
        let doc = self.network().stats(campaign, channel);
        doc.map(|d| {
            d.map(|mut d| {
                if !segments {
                    d.channels.iter_mut().for_each(|c| c.segments = Vec::new());
                }
                serde_json::to_vec(&d).expect("stats serialise")
            })
        })
    }
}

/// A running simulator; stops when dropped.
pub struct SimServer {
    pub addr: SocketAddr,
    pub network: Arc<Mutex<Network>>,
    /// Sign-in: tokens, their lifetime, rotation, retired versions.
    pub tokens: Arc<Mutex<tokens::Tokens>>,
    throttle: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    clock: SharedClock,
    task: tokio::task::JoinHandle<()>,
    exporter: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Throttles every `every`th request to a platform dialect from now on (0: none).
    pub fn throttle_every(&self, every: u64) {
        self.throttle.0.store(every, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes the campaigns' report exports under `root` now and then every `every` (see
    /// `dialect`), until the server stops.
    pub fn export_csv(&mut self, root: std::path::PathBuf, every: std::time::Duration) -> std::io::Result<()> {
        let (net, clock) = (self.network.clone(), self.clock.clone());
        let write = move || {
            let mut n = net.lock().unwrap_or_else(|e| e.into_inner());
            n.advance_to(clock.now_ms());
            dialect::write_exports(&n, &root)
        };
        write()?;
        self.exporter = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = write() {
                    tracing::error!("writing the simulated exports: {e}");
                }
            }
        }));
        Ok(())
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(t) = &self.exporter {
            t.abort();
        }
    }
}

/// Serves `network` on `listener`; the network advances with `clock` as requests come in.
pub fn serve(listener: tokio::net::TcpListener, network: Network, clock: SharedClock) -> std::io::Result<SimServer> {
    let addr = listener.local_addr()?;
    let net = Arc::new(Mutex::new(network));
    let throttle = Arc::new((std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0)));
    let tokens = Arc::new(Mutex::new(tokens::Tokens::new(Arc::new(|| chrono::Utc::now().timestamp_millis()))));
    let shared = Shared { net: net.clone(), clock: clock.clone(), throttle: throttle.clone(), tokens: tokens.clone() };
    let app = axum::Router::new()
        .route("/stats", get(all_stats))
        .route("/stats/{campaign}", get(campaign_stats))
        .route("/stats/{campaign}/{channel}", get(channel_stats))
        .route("/control/{campaign}", post(control))
        .route("/healthz", get(healthz))
        .route("/meta/{version}/{account}/insights", get(meta_insights))
        .route("/metrics", get(metrics))
        .route("/tiktok/open_api/v1.3/report/integrated/get/", get(tiktok))
        .route("/oceanengine/open_api/v3.0/report/custom/get/", get(oceanengine))
        .route("/baidu/json/sms/service/ReportService/getRealTimeData", post(baidu))
        .route("/ga4/v1beta/properties/{property}", post(ga4))
        .route("/google-ads/{version}/customers/{customer}/{method}", post(google_ads))
        .route("/tencent/{version}/daily_reports/get", get(tencent))
        .route("/tencent/oauth/refresh_token", get(tencent_refresh))
        .route("/kuaishou/rest/openapi/{version}/report/campaign_report", post(kuaishou))
        .route("/kuaishou/rest/openapi/oauth2/authorize/refresh_token", post(kuaishou_refresh))
        .route("/baidu/oauth/refreshToken", post(baidu_refresh))
        .route("/oauth2/token", post(oauth2_token))
        .route("/oauth2/auth", get(consent))
        .route("/oceanengine/open_api/oauth2/refresh_token/", post(oceanengine_refresh))
        .with_state(shared);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("simulator stopped: {e}");
        }
    });
    Ok(SimServer { addr, network: net, tokens, throttle, clock, task, exporter: None })
}

async fn respond(shared: Shared, campaign: Option<String>, channel: Option<String>, q: &StatsQuery) -> Response {
    let segments = q.segments.as_deref().is_none_or(|v| !matches!(v, "0" | "false"));
    match shared.stats(campaign.as_deref(), channel.as_deref(), segments) {
        Ok(Some(body)) => ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => std::future::pending().await,
        Err(status) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, format!("simulated failure {status}\n")).into_response()
        }
    }
}

/// The stats protocol's one query parameter: `segments=0` asks for an answer without segments.
#[derive(serde::Deserialize, Default)]
struct StatsQuery {
    segments: Option<String>,
}

async fn all_stats(State(s): State<Shared>, q: axum::extract::Query<StatsQuery>) -> Response {
    respond(s, None, None, &q).await
}

async fn campaign_stats(
    State(s): State<Shared>,
    Path(campaign): Path<String>,
    q: axum::extract::Query<StatsQuery>,
) -> Response {
    respond(s, Some(campaign), None, &q).await
}

async fn channel_stats(
    State(s): State<Shared>,
    Path((campaign, channel)): Path<(String, String)>,
    q: axum::extract::Query<StatsQuery>,
) -> Response {
    respond(s, Some(campaign), Some(channel), &q).await
}

async fn control(State(s): State<Shared>, Path(campaign): Path<String>, body: axum::body::Bytes) -> Response {
    let req: ControlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad control request: {e}\n")).into_response(),
    };
    match s.network().control(&campaign, &req) {
        Ok(out) => Json(out).into_response(),
        Err(e @ ControlError::UnknownChannel(_)) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
        Err(e @ ControlError::KeyReuse(_)) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn healthz(State(s): State<Shared>) -> Response {
    Json(serde_json::json!({ "now_ms": s.clock.now_ms(), "speed": s.clock.speed() })).into_response()
}

fn json_answer(status: StatusCode, v: serde_json::Value) -> Response {
    (status, Json(v)).into_response()
}

/// Meta Insights for the ad account `act_{campaign}`.
async fn meta_insights(
    State(s): State<Shared>,
    Path((_version, account)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let token = bearer(&headers).or_else(|| q.get("access_token").cloned());
    if !s.admits(token.as_deref()) {
        return json_answer(StatusCode::BAD_REQUEST, dialect::meta_unauthorized());
    }
    if s.retired(&_version) {
        return json_answer(StatusCode::BAD_REQUEST, dialect::meta_retired(&_version));
    }
    if s.throttled() {
        let usage = r#"{"1":[{"type":"ads_insights","call_count":100,"total_cputime":30,"total_time":40,"estimated_time_to_regain_access":1}]}"#;
        let mut r = json_answer(StatusCode::BAD_REQUEST, dialect::meta_throttled());
        r.headers_mut().insert("x-business-use-case-usage", axum::http::HeaderValue::from_static(usage));
        return r;
    }
    let campaign = account.strip_prefix("act_").unwrap_or(&account);
    let after = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let limit = q.get("limit").and_then(|a| a.parse().ok()).unwrap_or(25);
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let query: Vec<String> =
        uri.query().unwrap_or("").split('&').filter(|p| !p.starts_with("after=")).map(str::to_string).collect();
    let base = format!("http://{host}{}?{}", uri.path(), query.join("&"));
    let net = s.network();
    let range = q.get("time_range").map_or("{}", String::as_str);
    let mut r = json_answer(StatusCode::OK, dialect::meta_insights(&net, campaign, range, after, limit, &base));
    if let Some(pct) = s.tokens().usage_pct {
        let usage = format!(
            r#"{{"{campaign}":[{{"type":"ads_insights","call_count":{pct},"total_cputime":{},"total_time":{},"estimated_time_to_regain_access":0}}]}}"#,
            pct / 2,
            pct / 2
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&usage) {
            r.headers_mut().insert("x-business-use-case-usage", v);
        }
    }
    r
}

/// Google Ads searchStream for the customer `{campaign}`.
async fn google_ads(
    State(s): State<Shared>,
    Path((_version, customer, method)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if method != "googleAds:searchStream" {
        return json_answer(StatusCode::NOT_FOUND, dialect::google_error(404, "NOT_FOUND", "Unknown method."));
    }
    if !s.admits(bearer(&headers).as_deref()) {
        let e = dialect::google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
        return json_answer(StatusCode::UNAUTHORIZED, e);
    }
    if s.retired(&_version) {
        return json_answer(StatusCode::BAD_REQUEST, dialect::google_retired(&_version));
    }
    if s.throttled() {
        let e = dialect::google_error(429, "RESOURCE_EXHAUSTED", "Too many requests. Retry in 1 seconds.");
        let mut r = json_answer(StatusCode::TOO_MANY_REQUESTS, e);
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return r;
    }
    let query: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let net = s.network();
    match dialect::google_ads(&net, &customer, query["query"].as_str().unwrap_or(""), 3) {
        Ok(v) => json_answer(StatusCode::OK, v),
        Err(e) => json_answer(StatusCode::BAD_REQUEST, e),
    }
}

/// Every channel's counters in the Prometheus text format, for a Prometheus to scrape.
async fn metrics(State(s): State<Shared>) -> Response {
    let net = s.network();
    let body = dialect::prometheus_text(&net);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

type Query = axum::extract::Query<std::collections::HashMap<String, String>>;

/// TikTok's and Ocean Engine's reports: the token in `Access-Token`, errors in the body.
fn coded(
    s: &Shared,
    headers: &axum::http::HeaderMap,
    q: &std::collections::HashMap<String, String>,
    dates: (&str, &str),
    render: fn(&Network, &str, &str, &str, usize, usize) -> serde_json::Value,
) -> Response {
    if !s.admits(headers.get("access-token").and_then(|v| v.to_str().ok())) {
        return json_answer(
            StatusCode::OK,
            dialect::coded_error(40105, "Access token is incorrect or has been revoked."),
        );
    }
    if s.throttled() {
        return json_answer(
            StatusCode::OK,
            dialect::coded_error(40100, "Too many requests. Please retry in some time."),
        );
    }
    let campaign = q.get("advertiser_id").map_or("", String::as_str);
    let get = |k: &str| q.get(k).map_or("", String::as_str).to_string();
    let page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size = q.get("page_size").and_then(|p| p.parse().ok()).unwrap_or(10);
    let net = s.network();
    json_answer(StatusCode::OK, render(&net, campaign, &get(dates.0), &get(dates.1), page, size))
}

async fn tiktok(State(s): State<Shared>, headers: axum::http::HeaderMap, axum::extract::Query(q): Query) -> Response {
    coded(&s, &headers, &q, ("start_date", "end_date"), dialect::tiktok)
}

async fn oceanengine(
    State(s): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): Query,
) -> Response {
    coded(&s, &headers, &q, ("start_time", "end_time"), dialect::oceanengine)
}

/// Baidu's real-time report: credentials and dates in the JSON body.
async fn baidu(State(s): State<Shared>, axum::extract::Query(q): Query, body: axum::body::Bytes) -> Response {
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if !s.admits(req["header"]["accessToken"].as_str()) {
        return json_answer(StatusCode::OK, dialect::baidu_error());
    }
    let r = &req["body"]["realTimeRequestType"];
    let net = s.network();
    let campaign = q.get("account").map_or("", String::as_str);
    json_answer(
        StatusCode::OK,
        dialect::baidu(&net, campaign, r["startDate"].as_str().unwrap_or(""), r["endDate"].as_str().unwrap_or("")),
    )
}

/// GA4's runReport for the property `{campaign}:runReport`.
async fn ga4(
    State(s): State<Shared>,
    Path(property): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(campaign) = property.strip_suffix(":runReport") else {
        return json_answer(StatusCode::NOT_FOUND, dialect::google_error(404, "NOT_FOUND", "Unknown method."));
    };
    if !s.admits(bearer(&headers).as_deref()) {
        return json_answer(
            StatusCode::UNAUTHORIZED,
            dialect::google_error(401, "UNAUTHENTICATED", "Request is missing required authentication credential."),
        );
    }
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let r = &req["dateRanges"][0];
    let net = s.network();
    json_answer(
        StatusCode::OK,
        dialect::ga4(&net, campaign, r["startDate"].as_str().unwrap_or(""), r["endDate"].as_str().unwrap_or("")),
    )
}

/// The bearer token of a request.
fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The standard token endpoint: the refresh-token grant and the JWT-bearer grant.
async fn oauth2_token(State(s): State<Shared>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    let f: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let grant = f.get("grant_type").map_or("", String::as_str);
    let mut t = s.tokens();
    match grant {
        "refresh_token" => match t.refresh(f.get("refresh_token").map_or("", String::as_str)) {
            Ok((access, ttl, next)) => json_answer(
                StatusCode::OK,
                serde_json::json!({ "access_token": access, "expires_in": ttl, "token_type": "Bearer",
                                    "refresh_token": if t.rotate { Some(next) } else { None } }),
            ),
            Err(why) => json_answer(StatusCode::BAD_REQUEST, tokens::oauth_error("invalid_grant", why)),
        },
        "authorization_code" => {
            let code = f.get("code").map_or("", String::as_str);
            let redirect = f.get("redirect_uri").map_or("", String::as_str);
            match t.exchange(code, redirect, f.get("code_verifier").map(String::as_str)) {
                Ok((access, ttl, refresh)) => json_answer(
                    StatusCode::OK,
                    serde_json::json!({ "access_token": access, "expires_in": ttl, "token_type": "Bearer",
                                        "refresh_token": refresh }),
                ),
                Err(why) => json_answer(StatusCode::BAD_REQUEST, tokens::oauth_error("invalid_grant", &why)),
            }
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            let audience = format!("http://{host}/oauth2/token");
            match t.assertion(f.get("assertion").map_or("", String::as_str), &audience) {
                Ok((access, ttl)) => json_answer(
                    StatusCode::OK,
                    serde_json::json!({ "access_token": access, "expires_in": ttl, "token_type": "Bearer" }),
                ),
                Err(why) => json_answer(StatusCode::BAD_REQUEST, tokens::oauth_error("invalid_grant", &why)),
            }
        }
        other => json_answer(
            StatusCode::BAD_REQUEST,
            tokens::oauth_error("unsupported_grant_type", &format!("grant_type '{other}' is not supported")),
        ),
    }
}

/// Ocean Engine's refresh: JSON in, the tokens under `data`, errors as codes.
async fn oceanengine_refresh(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let given = req["app_id"].is_number() && req["secret"].as_str().is_some_and(|v| !v.is_empty());
    coded_refresh(&s, given, req["refresh_token"].as_str(), ("expires_in", 40001, 40104))
}

/// A refresh answered as the platforms with code envelopes answer it: the tokens under
/// `data` (the access token's lifetime under `expires_key`), an error as a code (`codes`:
/// the app's credentials missing, the refresh token refused).
fn coded_refresh(s: &Shared, given: bool, refresh_token: Option<&str>, codes: (&str, i64, i64)) -> Response {
    let (expires_key, missing, refused) = codes;
    if !given {
        return json_answer(StatusCode::OK, dialect::coded_error(missing, "the app's id and secret are required"));
    }
    let mut t = s.tokens();
    match t.refresh(refresh_token.unwrap_or("")) {
        Ok((access, ttl, next)) => json_answer(
            StatusCode::OK,
            serde_json::json!({ "code": 0, "message": "OK", "data": {
                "access_token": access, expires_key: ttl,
                "refresh_token": next, "refresh_token_expires_in": 2_592_000 } }),
        ),
        Err(why) => json_answer(StatusCode::OK, dialect::coded_error(refused, why)),
    }
}

/// Tencent Ads' daily report: the token, the time and a nonce in the query.
async fn tencent(State(s): State<Shared>, Path(version): Path<String>, axum::extract::Query(q): Query) -> Response {
    if !s.admits(q.get("access_token").map(String::as_str)) {
        return json_answer(StatusCode::OK, dialect::coded_error(11002, "access_token is invalid"));
    }
    if q.get("nonce").is_none_or(String::is_empty) || q.get("timestamp").and_then(|t| t.parse::<i64>().ok()).is_none() {
        return json_answer(StatusCode::OK, dialect::coded_error(11005, "timestamp and nonce are required"));
    }
    if s.retired(&version) {
        return json_answer(
            StatusCode::OK,
            dialect::coded_error(11020, &format!("API version {version} is deprecated")),
        );
    }
    let range: serde_json::Value = q.get("date_range").and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
    let page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size = q.get("page_size").and_then(|p| p.parse().ok()).unwrap_or(10);
    let campaign = q.get("account_id").map_or("", String::as_str);
    let (since, until) = (range["start_date"].as_str().unwrap_or(""), range["end_date"].as_str().unwrap_or(""));
    let net = s.network();
    json_answer(StatusCode::OK, dialect::tencent(&net, campaign, since, until, page, size))
}

/// Tencent's refresh: the credentials in the query, the tokens under `data`.
async fn tencent_refresh(State(s): State<Shared>, axum::extract::Query(q): Query) -> Response {
    let given = ["client_id", "client_secret"].iter().all(|k| q.get(*k).is_some_and(|v| !v.is_empty()));
    coded_refresh(&s, given, q.get("refresh_token").map(String::as_str), ("access_token_expires_in", 11001, 11012))
}

/// Kuaishou's campaign report: the token in `Access-Token`, the advertiser in the body.
async fn kuaishou(
    State(s): State<Shared>,
    Path(version): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !s.admits(headers.get("access-token").and_then(|v| v.to_str().ok())) {
        return json_answer(StatusCode::OK, dialect::coded_error(402001, "access token is invalid"));
    }
    if s.retired(&version) {
        return json_answer(
            StatusCode::OK,
            dialect::coded_error(400002, &format!("API version {version} is deprecated")),
        );
    }
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let campaign = match &req["advertiser_id"] {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => return json_answer(StatusCode::OK, dialect::coded_error(400001, "advertiser_id is required")),
    };
    let net = s.network();
    let (since, until) = (req["start_date"].as_str().unwrap_or(""), req["end_date"].as_str().unwrap_or(""));
    json_answer(StatusCode::OK, dialect::kuaishou(&net, &campaign, since, until))
}

/// Kuaishou's refresh: JSON in, the tokens under `data`.
async fn kuaishou_refresh(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let given = req["app_id"].is_number() && req["secret"].as_str().is_some_and(|v| !v.is_empty());
    coded_refresh(&s, given, req["refresh_token"].as_str(), ("access_token_expires_in", 400001, 402002))
}

/// The consent page, as a person who allows access leaves it: redirected back with a code.
async fn consent(State(s): State<Shared>, axum::extract::Query(q): Query) -> Response {
    let Some(redirect) = q.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return json_answer(
            StatusCode::BAD_REQUEST,
            tokens::oauth_error("invalid_request", "redirect_uri is required"),
        );
    };
    if q.get("client_id").is_none_or(String::is_empty) {
        return json_answer(StatusCode::BAD_REQUEST, tokens::oauth_error("invalid_request", "client_id is required"));
    }
    let code = s.tokens().consent(q.get("code_challenge").cloned(), redirect);
    let Ok(mut to) = url::Url::parse(redirect) else {
        return json_answer(StatusCode::BAD_REQUEST, tokens::oauth_error("invalid_request", "redirect_uri is no URL"));
    };
    to.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = q.get("state") {
        to.query_pairs_mut().append_pair("state", state);
    }
    (StatusCode::FOUND, [(axum::http::header::LOCATION, to.to_string())]).into_response()
}

/// Baidu's refresh: JSON in (camel case), the tokens under `data`.
async fn baidu_refresh(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let given = req["appId"].as_str().is_some_and(|v| !v.is_empty())
        && req["secretKey"].as_str().is_some_and(|v| !v.is_empty())
        && req["userId"].is_number();
    if !given {
        return json_answer(StatusCode::OK, dialect::coded_error(90001, "appId, secretKey and userId are required"));
    }
    let mut t = s.tokens();
    match t.refresh(req["refreshToken"].as_str().unwrap_or("")) {
        Ok((access, ttl, next)) => json_answer(
            StatusCode::OK,
            serde_json::json!({ "code": 0, "message": "success", "data": {
                "accessToken": access, "expiresIn": ttl,
                "refreshToken": next, "refreshExpiresIn": 2_592_000 } }),
        ),
        Err(why) => json_answer(StatusCode::OK, dialect::coded_error(90002, why)),
    }
}
