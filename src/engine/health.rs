//! Source health: what the operator needs to know about where numbers come from. Pure; real
//! time is passed in as `Instant`s because staleness is about polls, not campaign time.

use crate::domain::Health;
use std::time::{Duration, Instant};

/// What we know of one source's recent polls.
#[derive(Debug, Clone)]
pub struct SourceState {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub last_ok: Option<Instant>,
    pub last_attempt: Option<Instant>,
    pub latency: Option<Duration>,
    pub last_error: Option<String>,
    pub bad_data: bool,
    /// The last answer asked us to slow down.
    pub throttled: bool,
    /// The last answer refused the credentials or the API version: `Unauthorized` or
    /// `Retired` until a poll succeeds.
    pub refused: Option<Health>,
    /// The source's credentials expire soon (what to do, said on its health line).
    pub expiring: Option<String>,
    pub failures: u32,
    pub polls: u64,
    pub health: Health,
    created: Instant,
}

/// Polls without a good answer before a source counts as stale.
pub const STALE_AFTER_INTERVALS: u32 = 3;

impl SourceState {
    pub fn new(url: &str, interval: Duration, timeout: Duration, created: Instant) -> Self {
        SourceState {
            url: url.to_string(),
            interval,
            timeout,
            last_ok: None,
            last_attempt: None,
            latency: None,
            last_error: None,
            bad_data: false,
            throttled: false,
            refused: None,
            expiring: None,
            failures: 0,
            polls: 0,
            health: Health::Pending,
            created,
        }
    }

    pub fn record_ok(&mut self, at: Instant, latency: Duration, warning: Option<String>) {
        self.last_ok = Some(at);
        self.last_attempt = Some(at);
        self.latency = Some(latency);
        self.failures = 0;
        self.polls += 1;
        self.throttled = false;
        self.refused = None;
        self.bad_data = warning.is_some();
        self.last_error = warning;
    }

    pub fn record_err(&mut self, at: Instant, latency: Duration, error: String, bad_data: bool) {
        self.last_attempt = Some(at);
        self.latency = Some(latency);
        self.failures += 1;
        self.polls += 1;
        self.throttled = false;
        self.refused = None;
        self.bad_data = bad_data;
        self.last_error = Some(error);
    }

    /// The platform refused the credentials (`Health::Unauthorized`) or the API version
    /// (`Health::Retired`); `error` says which and the way out.
    pub fn record_refused(&mut self, at: Instant, latency: Duration, error: String, health: Health) {
        self.record_err(at, latency, error, false);
        self.refused = Some(health);
    }

    /// The platform throttled us; `error` says when polling resumes.
    pub fn record_throttled(&mut self, at: Instant, latency: Duration, error: String) {
        self.record_err(at, latency, error, false);
        self.throttled = true;
    }

    /// The health as of `now`; returns whether it changed.
    pub fn refresh(&mut self, now: Instant) -> bool {
        let stale_after = self.interval * STALE_AFTER_INTERVALS + self.timeout;
        let h = if self.polls == 0 {
            if now.duration_since(self.created) > stale_after { Health::Stale } else { Health::Pending }
        } else if let Some(h) = self.refused {
            h
        } else if self.bad_data {
            Health::BadData
        } else if self.throttled {
            Health::Throttled
        } else if self.failures > 0 {
            Health::Failing
        } else if self.last_ok.is_none_or(|t| now.duration_since(t) > stale_after) {
            Health::Stale
        } else if self.expiring.is_some() {
            Health::Expiring
        } else if self.latency.is_some_and(|l| l > self.timeout / 2) {
            Health::Slow
        } else {
            Health::Ok
        };
        let changed = h != self.health;
        self.health = h;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_polls_and_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut src = SourceState::new("http://x", s(1), s(2), t0);
        src.refresh(t0);
        assert_eq!(src.health, Health::Pending);
        src.record_ok(t0, Duration::from_millis(20), None);
        src.refresh(t0);
        assert_eq!(src.health, Health::Ok);
        src.record_ok(t0 + s(1), s(3), None);
        src.refresh(t0 + s(1));
        assert_eq!(src.health, Health::Slow);
        assert!(src.refresh(t0 + s(10)));
        assert_eq!(src.health, Health::Stale);
        src.record_err(t0 + s(11), s(2), "HTTP 500".into(), false);
        src.refresh(t0 + s(11));
        assert_eq!((src.health, src.last_error.as_deref()), (Health::Failing, Some("HTTP 500")));
        src.record_err(t0 + s(12), s(0), "bad data: x".into(), true);
        src.refresh(t0 + s(12));
        assert_eq!(src.health, Health::BadData);
        src.record_ok(t0 + s(13), Duration::from_millis(5), None);
        src.refresh(t0 + s(13));
        assert_eq!((src.health, src.last_error.as_deref()), (Health::Ok, None));
    }
}
