//! Lengths of time in unix milliseconds, the unit of every campaign-time value.

pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Samples are stored at this resolution: the readings of a channel within one such period of
/// source time are folded into one stored sample (the screen and the alert rules see every
/// reading, folded the same way in the engine's recent samples). A channel polled every second
/// then costs one write a minute, not sixty; its audience segments are read about as often
/// (see `poll::wire::Names::skim_segments`).
pub const STORE_RESOLUTION_MS: i64 = MINUTE_MS;

/// Raw samples older than this (campaign time) are pruned; hourly rollups stay. The simulator's
/// history and the engine's pruning agree on it.
pub const RAW_RETENTION_MS: i64 = 48 * HOUR_MS;

/// The start of the hour `t` falls in.
pub fn floor_hour(t: i64) -> i64 {
    t.div_euclid(HOUR_MS) * HOUR_MS
}
