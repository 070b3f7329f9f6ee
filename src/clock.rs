//! Time as the campaign sees it. Real sources run on the wall clock; the simulator and the demo
//! share a scaled clock so a day passes in minutes; tests use a manual one.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

pub trait Clock: Send + Sync {
    /// Now, as unix milliseconds.
    fn now_ms(&self) -> i64;
    /// How many campaign seconds pass per real second.
    fn speed(&self) -> f64 {
        1.0
    }
}

pub type SharedClock = Arc<dyn Clock>;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Starts at `origin_ms` and runs `speed` times faster than real time.
pub struct ScaledClock {
    origin_ms: i64,
    started: Instant,
    speed: f64,
}

impl ScaledClock {
    pub fn new(origin_ms: i64, speed: f64) -> Self {
        ScaledClock { origin_ms, started: Instant::now(), speed: speed.max(0.0) }
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> i64 {
        self.origin_ms + (self.started.elapsed().as_secs_f64() * 1000.0 * self.speed) as i64
    }

    fn speed(&self) -> f64 {
        self.speed
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> Self {
        ManualClock(AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
