//! The built-in simulated ad network, served over HTTP on loopback: the stats protocol of
//! DESIGN.md §3 and a control endpoint it obeys. Used by `cockpit demo`, `cockpit sim`, tests
//! and benchmarks.
//!
//! `cockpit sim` serves `GET /stats`, `/stats/{campaign}`, `/stats/{campaign}/{channel}`,
//! `POST /control/{campaign}` and `GET /healthz`. Channels spend their daily budget along a
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
//! kind = "ctr"                                 # ctr | cvr | cpm (factor), http_error (status), hang, reset, pause
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

pub mod history;
pub mod model;
pub mod scale;
pub mod scenario;

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
}

impl Shared {
    fn stats(&self, campaign: Option<&str>, channel: Option<&str>) -> Result<Option<Vec<u8>>, u16> {
        let mut net = self.net.lock().unwrap_or_else(|e| e.into_inner());
        net.advance_to(self.clock.now_ms());
        net.stats(campaign, channel).map(|d| d.map(|d| serde_json::to_vec(&d).expect("stats serialise")))
    }
}

/// A running simulator; stops when dropped.
pub struct SimServer {
    pub addr: SocketAddr,
    pub network: Arc<Mutex<Network>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `network` on `listener`; the network advances with `clock` as requests come in.
pub fn serve(listener: tokio::net::TcpListener, network: Network, clock: SharedClock) -> std::io::Result<SimServer> {
    let addr = listener.local_addr()?;
    let net = Arc::new(Mutex::new(network));
    let shared = Shared { net: net.clone(), clock };
    let app = axum::Router::new()
        .route("/stats", get(all_stats))
        .route("/stats/{campaign}", get(campaign_stats))
        .route("/stats/{campaign}/{channel}", get(channel_stats))
        .route("/control/{campaign}", post(control))
        .route("/healthz", get(healthz))
        .with_state(shared);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("simulator stopped: {e}");
        }
    });
    Ok(SimServer { addr, network: net, task })
}

async fn respond(shared: Shared, campaign: Option<String>, channel: Option<String>) -> Response {
    match shared.stats(campaign.as_deref(), channel.as_deref()) {
        Ok(Some(body)) => ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => std::future::pending().await,
        Err(status) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, format!("simulated failure {status}\n")).into_response()
        }
    }
}

async fn all_stats(State(s): State<Shared>) -> Response {
    respond(s, None, None).await
}

async fn campaign_stats(State(s): State<Shared>, Path(campaign): Path<String>) -> Response {
    respond(s, Some(campaign), None).await
}

async fn channel_stats(State(s): State<Shared>, Path((campaign, channel)): Path<(String, String)>) -> Response {
    respond(s, Some(campaign), Some(channel)).await
}

async fn control(State(s): State<Shared>, Path(campaign): Path<String>, body: axum::body::Bytes) -> Response {
    let req: ControlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad control request: {e}\n")).into_response(),
    };
    let mut net = s.net.lock().unwrap_or_else(|e| e.into_inner());
    net.advance_to(s.clock.now_ms());
    match net.control(&campaign, &req) {
        Ok(out) => Json(out).into_response(),
        Err(e @ ControlError::UnknownChannel(_)) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
        Err(e @ ControlError::KeyReuse(_)) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn healthz(State(s): State<Shared>) -> Response {
    Json(serde_json::json!({ "now_ms": s.clock.now_ms(), "speed": s.clock.speed() })).into_response()
}
