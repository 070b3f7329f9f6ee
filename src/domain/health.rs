//! Source health: how far the numbers of a source can be trusted. The engine tracks it, the
//! rules alert on it, the screens show it.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not polled yet.
    #[default]
    Pending,
    Ok,
    /// Answering, but slower than half the timeout.
    Slow,
    /// No good poll for several intervals.
    Stale,
    /// The platform asked us to slow down (HTTP 429, a throttling code): polling resumes when
    /// it said, or after a back-off.
    Throttled,
    /// Answering with data we refuse (schema, NaN, negative counters, missing channel).
    BadData,
    /// Not answering, or answering with an HTTP error.
    Failing,
    /// The platform refuses the credentials and renewing them failed: someone must sign in.
    Unauthorized,
    /// The platform no longer serves the API version the source asks for.
    Retired,
    /// Answering, but its credentials expire within days: someone must sign in again.
    Expiring,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Pending => "pending",
            Health::Ok => "ok",
            Health::Slow => "slow",
            Health::Stale => "stale",
            Health::Throttled => "throttled",
            Health::BadData => "bad data",
            Health::Failing => "failing",
            Health::Unauthorized => "unauthorized",
            Health::Retired => "api version retired",
            Health::Expiring => "credentials expiring",
        }
    }

    /// Worse states sort higher; `Pending` counts as fine.
    pub fn severity(self) -> u8 {
        match self {
            Health::Pending | Health::Ok => 0,
            Health::Slow => 1,
            Health::Stale | Health::Throttled | Health::Expiring => 2,
            Health::BadData => 3,
            Health::Failing | Health::Unauthorized | Health::Retired => 4,
        }
    }
}
