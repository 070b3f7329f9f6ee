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

/// A source's time zone: a fixed offset (the campaign's, by default) or an IANA zone such as
/// `America/Los_Angeles`, whose offset follows daylight saving time, so that an ad account's
/// day and hour stay its own across the change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Fixed(chrono::FixedOffset),
    Named(chrono_tz::Tz),
}

impl From<chrono::FixedOffset> for Zone {
    fn from(o: chrono::FixedOffset) -> Zone {
        Zone::Fixed(o)
    }
}

impl Zone {
    /// An IANA name (`Asia/Shanghai`) or an offset (`+08:00`).
    pub fn parse(name: &str) -> Option<Zone> {
        let name = name.trim();
        name.parse::<chrono_tz::Tz>().ok().map(Zone::Named).or_else(|| name.parse().ok().map(Zone::Fixed))
    }

    /// The local date and time at `t` (unix ms).
    pub fn local(&self, t: i64) -> chrono::NaiveDateTime {
        let utc = chrono::DateTime::from_timestamp_millis(t).unwrap_or_default();
        match self {
            Zone::Fixed(o) => utc.with_timezone(o).naive_local(),
            Zone::Named(z) => utc.with_timezone(z).naive_local(),
        }
    }

    /// The instant (unix ms) of a local date and time: the earlier of two in a repeated hour,
    /// and in a skipped hour the moment the clocks moved on.
    pub fn from_local(&self, local: chrono::NaiveDateTime) -> Option<i64> {
        use chrono::TimeZone;
        let at = |l: chrono::NaiveDateTime| match self {
            Zone::Fixed(o) => o.from_local_datetime(&l).earliest().map(|d| d.timestamp_millis()),
            Zone::Named(z) => z.from_local_datetime(&l).earliest().map(|d| d.timestamp_millis()),
        };
        at(local).or_else(|| at(local + chrono::Duration::hours(1)).map(|t| t - t.rem_euclid(HOUR_MS)))
    }

    /// The start of the local day (`len` ≥ a day) or hour that `t` falls in.
    pub fn start_of(&self, t: i64, len: i64) -> i64 {
        use chrono::Timelike;
        let l = self.local(t);
        let start = if len >= DAY_MS {
            l.date().and_hms_opt(0, 0, 0).expect("midnight exists")
        } else {
            l.with_minute(0).and_then(|l| l.with_second(0)).and_then(|l| l.with_nanosecond(0)).unwrap_or(l)
        };
        self.from_local(start).unwrap_or(t)
    }

    /// `t` as `YYYY-MM-DD` in the zone.
    pub fn date(&self, t: i64) -> String {
        self.local(t).format("%Y-%m-%d").to_string()
    }

    /// `t` as RFC 3339 with the zone's offset then.
    pub fn rfc3339(&self, t: i64) -> String {
        let utc = chrono::DateTime::from_timestamp_millis(t).unwrap_or_default();
        match self {
            Zone::Fixed(o) => utc.with_timezone(o).to_rfc3339(),
            Zone::Named(z) => utc.with_timezone(z).to_rfc3339(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_zone_keeps_its_days_across_daylight_saving_time() {
        let la = Zone::parse("America/Los_Angeles").unwrap();
        let day = |s: &str| {
            la.from_local(chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap())
                .unwrap()
        };
        // 2026-11-01 is 25 hours long there; 2026-03-08 23.
        assert_eq!(day("2026-11-02") - day("2026-11-01"), 25 * HOUR_MS);
        assert_eq!(day("2026-03-09") - day("2026-03-08"), 23 * HOUR_MS);
        assert_eq!(la.start_of(day("2026-11-01") + 24 * HOUR_MS + 30 * 60_000, DAY_MS), day("2026-11-01"));
        assert_eq!(la.date(day("2026-11-02")), "2026-11-02");
        // 02:30 on 2026-03-08 does not exist: it is the moment the clocks moved on, 03:00.
        let skipped = chrono::NaiveDate::from_ymd_opt(2026, 3, 8).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(la.from_local(skipped), Some(day("2026-03-08") + 2 * HOUR_MS));
        assert_eq!(Zone::parse("+08:00"), Some(Zone::Fixed(chrono::FixedOffset::east_opt(8 * 3600).unwrap())));
        assert_eq!(Zone::parse("Mars/Olympus"), None);
    }
}
