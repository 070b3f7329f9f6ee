//! Shared test harness: the demo campaigns and simulated network driven on a manual clock,
//! fed straight into the engine, so screens and numbers are deterministic.
#![allow(dead_code)]

use campaign_cockpit::clock::{Clock, ManualClock};
use campaign_cockpit::demo;
use campaign_cockpit::domain::Campaign;
use campaign_cockpit::engine::Engine;
use campaign_cockpit::engine::snapshot::Snapshot;
use campaign_cockpit::optimize::control::ControlError;
use campaign_cockpit::poll::{PollError, PollOutcome, SourceSpec};
use campaign_cockpit::sim::model::Network;
use campaign_cockpit::sim::scenario::Scenario;
use campaign_cockpit::store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct Harness {
    pub engine: Engine,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub clock: Arc<ManualClock>,
    pub net: Network,
    pub sources: Vec<SourceSpec>,
    pub campaigns: Vec<Campaign>,
}

/// `/stats/{campaign}[/{channel}]` of a source URL.
pub fn route(url: &str) -> (Option<String>, Option<String>) {
    let path = url.split_once("/stats").map_or("", |(_, p)| p).trim_start_matches('/');
    let mut parts = path.split('/').filter(|p| !p.is_empty()).map(str::to_string);
    (parts.next(), parts.next())
}

impl Harness {
    pub fn demo(dir: &Path) -> Harness {
        Harness::with_scenario(dir, demo::scenario())
    }

    /// The demo campaigns under another scenario (its channel figures and incidents).
    pub fn with_scenario(dir: &Path, sc: Scenario) -> Harness {
        Harness::with(dir, demo::campaigns(), sc)
    }

    /// These campaigns under a scenario (its start time is the clock's).
    pub fn with(dir: &Path, campaigns: Vec<Campaign>, sc: Scenario) -> Harness {
        let store = Store::open(&dir.join("db")).unwrap();
        for c in &campaigns {
            store.put_campaign(c).unwrap();
        }
        let start = sc.start.unwrap().timestamp_millis();
        let clock = Arc::new(ManualClock::new(start));
        let (chs, inc) = sc.build(&campaigns, start).unwrap();
        let net = Network::new(chs, inc, start);
        let sources = campaign_cockpit::poll::sources_for(&campaigns, Duration::from_secs(1));
        let (engine, snapshots) = Engine::new(store, clock.clone(), &sources).unwrap();
        Harness { engine, snapshots, clock, net, sources, campaigns }
    }

    /// Polls every source once per simulated minute for `minutes` minutes, publishing (and so
    /// evaluating alerts) after each round as the engine's publish window would.
    pub fn run_minutes(&mut self, minutes: i64) {
        self.run(60_000, minutes, |_| {});
    }

    /// `rounds` polls `step_ms` apart, each followed by a publish; `after` sees each snapshot.
    pub fn run(&mut self, step_ms: i64, rounds: i64, mut after: impl FnMut(&Snapshot)) {
        for _ in 0..rounds {
            self.clock.advance(step_ms);
            self.poll_all();
            self.engine.publish();
            after(&self.snapshot());
        }
    }

    /// Polls every source once and writes everything taken in.
    pub fn poll_all(&mut self) {
        self.poll_sources();
        self.engine.commit();
    }

    /// Polls every source once, leaving the writing to the caller.
    pub fn poll_sources(&mut self) {
        let now = self.clock.now_ms();
        self.net.advance_to(now);
        for s in &self.sources {
            let (c, ch) = route(&s.url);
            let result = match self.net.stats(c.as_deref(), ch.as_deref()) {
                Ok(Some(doc)) => Ok(doc),
                Ok(None) => Err(PollError::Timeout(s.timeout)),
                Err(status) => Err(PollError::Status(status)),
            };
            self.engine.on_poll(PollOutcome {
                url: s.url.clone(),
                fetched_at: now,
                received: Instant::now(),
                latency: Duration::from_millis(12),
                result,
            });
        }
    }

    /// Answers every queued control request from the simulated network, as the endpoint
    /// would; returns how many there were.
    pub fn answer_controls(&mut self) -> usize {
        let out = self.engine.take_outbox();
        let n = out.len();
        for d in out {
            let campaign = d.url.rsplit('/').next().unwrap_or_default().to_string();
            let result = self
                .net
                .control(&campaign, &d.request)
                .map(|o| format!("{o:?}"))
                .map_err(|e| ControlError::NotApplied(e.to_string()));
            self.engine.on_control(d.entry, result);
        }
        self.engine.publish();
        n
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }
}

/// Counters equal as stored: counts exactly, money to the millionth the store keeps it to.
#[allow(dead_code)]
pub fn same_amounts(a: &campaign_cockpit::domain::Counters, b: &campaign_cockpit::domain::Counters) -> bool {
    (a.impressions, a.clicks, a.leads, a.conversions) == (b.impressions, b.clicks, b.leads, b.conversions)
        && (a.spend - b.spend).abs() <= 1e-6
        && (a.revenue - b.revenue).abs() <= 1e-6
}

/// Two series of timed counters equal as stored (see `same_amounts`).
#[allow(dead_code)]
pub fn same_series<'a>(
    a: impl IntoIterator<Item = &'a (i64, campaign_cockpit::domain::Counters)>,
    b: impl IntoIterator<Item = &'a (i64, campaign_cockpit::domain::Counters)>,
) -> bool {
    let (a, b): (Vec<_>, Vec<_>) = (a.into_iter().collect(), b.into_iter().collect());
    a.len() == b.len() && a.iter().zip(&b).all(|((ta, ca), (tb, cb))| ta == tb && same_amounts(ca, cb))
}
