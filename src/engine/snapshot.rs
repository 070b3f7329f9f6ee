//! What the UI sees: an immutable picture of the engine's state, cheap to share. Channel views
//! are rebuilt only when their channel changes.

use crate::domain::ChannelKey;
use crate::domain::ChannelStatus;
use crate::domain::Health;
use crate::domain::time::HOUR_MS;
use crate::domain::{Campaign, Counters, Metric, Recent, VariantCounters};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The latest annotations of every campaign, oldest first.
    pub notes: Arc<Vec<crate::domain::Note>>,
    /// The analysis the analyze view asked for.
    pub analysis: Option<Arc<crate::analyze::data::Analysis>>,
    /// Bumped on every change; the UI redraws when it moves.
    pub generation: u64,
    /// Campaign time (unix ms) and how fast it runs.
    pub now_ms: i64,
    pub speed: f64,
    pub db_path: String,
    pub campaigns: Vec<Arc<CampaignView>>,
    pub sources: Arc<Vec<SourceView>>,
    /// Real time of the last sample taken in.
    pub last_data: Option<Instant>,
    pub store_error: Option<String>,
    /// A write that has taken seconds so far: what it writes, and for how long (set by the
    /// watchdog while the engine waits for it).
    pub stall: Option<String>,
    /// The database is being rewritten into a fresh file: new data waits until it is done.
    pub compacting: bool,
    pub series: Option<Arc<SeriesView>>,
    /// By campaign; within one, firing first, then pending, then recently resolved, worst first.
    pub alerts: Arc<Vec<crate::alert::Alert>>,
    /// Silences in force.
    pub silences: Arc<Vec<crate::alert::Silence>>,
    /// Recommendations by campaign, best first within each.
    pub recommendations: Arc<Vec<crate::optimize::recommend::Recommendation>>,
    /// Every action sent, oldest first.
    pub journal: Arc<Vec<crate::optimize::journal::JournalEntry>>,
    /// Actions are refused (`--read-only`).
    pub read_only: bool,
    /// The latest word on an action (sequence number, text), for the status line.
    pub notice: Option<(u64, String)>,
    /// Alerts do not reach the pager (Alertmanager, a chat bot): why.
    pub paging: Option<String>,
    /// Attached to a service: which, or why it is not there now.
    pub service: Option<String>,
}

impl Snapshot {
    pub fn campaign(&self, id: &str) -> Option<&Arc<CampaignView>> {
        self.campaigns.iter().find(|c| c.campaign.id == id)
    }

    pub fn channel(&self, key: &ChannelKey) -> Option<&Arc<ChannelView>> {
        self.campaign(&key.campaign)?.channels.iter().find(|c| c.key.channel == key.channel)
    }

    /// The silence covering an alert now, if any.
    pub fn silence_of(&self, a: &crate::alert::Alert) -> Option<&crate::alert::Silence> {
        crate::alert::silence::silenced_by(&self.silences, a, self.now_ms)
    }

    /// The campaign's contingency plan for an alert, if it has one.
    pub fn contingency_of(&self, a: &crate::alert::Alert) -> Option<&crate::domain::Contingency> {
        self.campaign(&a.key.campaign)?.campaign.contingency_for(&a.key.channel, &a.key.rule)
    }

    /// Firing alerts that are not silenced, by severity: (crit, warn, info).
    pub fn alert_counts(&self) -> (usize, usize, usize) {
        use crate::alert::{AlertState, Severity};
        self.alerts.iter().filter(|a| a.state == AlertState::Firing && self.silence_of(a).is_none()).fold(
            (0, 0, 0),
            |(c, w, i), a| match a.severity {
                Severity::Crit => (c + 1, w, i),
                Severity::Warn => (c, w + 1, i),
                Severity::Info => (c, w, i + 1),
            },
        )
    }

    /// Sources by health: (ok, degraded, failing).
    pub fn health_counts(&self) -> (usize, usize, usize) {
        self.sources.iter().fold((0, 0, 0), |(o, d, f), s| match s.health.severity() {
            0 => (o + 1, d, f),
            1 | 2 => (o, d + 1, f),
            _ => (o, d, f + 1),
        })
    }
}

#[derive(Debug, Clone)]
pub struct CampaignView {
    pub campaign: Arc<Campaign>,
    pub channels: Vec<Arc<ChannelView>>,
    pub totals: Counters,
    pub today: Counters,
    /// Spend of the campaign's current local day and when that day started.
    pub day_start_ms: i64,
    /// The worst health among its channels.
    pub health: Health,
    /// Channels whose data is not to be trusted now (stale or worse), worst first: indices
    /// into `channels`, so that a frame names them without going through every channel.
    pub trouble: Vec<usize>,
}

impl CampaignView {
    /// Sums up a campaign's channel views as of `now_ms` (campaign time).
    pub fn new(campaign: Arc<Campaign>, channels: Vec<Arc<ChannelView>>, now_ms: i64) -> CampaignView {
        let day_start = campaign.day_start_ms(now_ms);
        let mut trouble: Vec<usize> =
            (0..channels.len()).filter(|i| channels[*i].health.severity() >= Health::Stale.severity()).collect();
        trouble.sort_by_key(|i| std::cmp::Reverse(channels[*i].health.severity()));
        CampaignView {
            totals: Counters::sum(channels.iter().map(|v| &v.totals)),
            today: Counters::sum(
                channels.iter().filter(|v| campaign.day_start_ms(v.last_at.max(1)) == day_start).map(|v| &v.today),
            ),
            day_start_ms: day_start,
            health: channels.iter().map(|v| v.health).max_by_key(|h| h.severity()).unwrap_or(Health::Pending),
            trouble,
            channels,
            campaign,
        }
    }

    /// A campaign as its stored totals sum it up, before its channels' state is read: no
    /// channel views, nothing heard from any source yet.
    pub fn summed(campaign: Arc<Campaign>, totals: &crate::domain::CampaignTotals, now_ms: i64) -> CampaignView {
        let day_start = campaign.day_start_ms(now_ms);
        CampaignView {
            totals: totals.totals,
            today: totals.today_at(day_start),
            day_start_ms: day_start,
            health: Health::Pending,
            trouble: Vec::new(),
            channels: Vec::new(),
            campaign,
        }
    }

    pub fn live_daily_budget(&self) -> f64 {
        self.channels.iter().filter(|c| c.status != Some(ChannelStatus::Paused)).map(|c| c.daily_budget).sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelView {
    pub key: ChannelKey,
    /// The plan's name, kind and source, shared by every view of the channel.
    pub name: Arc<str>,
    pub kind: Option<Arc<str>>,
    pub source: Arc<str>,
    pub totals: Counters,
    pub today: Counters,
    /// The last samples (end time, delta), oldest first, for sparklines.
    pub recent: Recent,
    pub status: Option<ChannelStatus>,
    /// The source's reported daily budget, or the plan's.
    pub daily_budget: f64,
    pub variants: Vec<VariantCounters>,
    pub health: Health,
    pub last_error: Option<String>,
    pub resets: u32,
    /// When the counters last went backwards (campaign time), since start.
    pub last_reset_ms: Option<i64>,
    /// Failed polls of its source in a row.
    pub failures: u32,
    /// Source time of the last reading (unix ms), 0 before any.
    pub last_at: i64,
}

/// How many samples wide a channel's sparkline is drawn: a client of a service is sent the
/// recent samples it needs (one more, for the first one's interval), not all of them.
pub const SPARK_WIDTH: usize = 12;

impl ChannelView {
    /// The metric over the last `n` samples, oldest first, for a sparkline. Counts and money
    /// are per minute of the sample's interval, so that samples of different lengths (minute
    /// samples read back after a restart beside one-second readings, a reading after an outage)
    /// draw on one scale.
    pub fn spark(&self, metric: Metric, n: usize) -> Vec<Option<f64>> {
        // The last `n`, and the one before them for the first one's interval.
        let skip = self.recent.len().saturating_sub(n + 1);
        let recent: Vec<&(i64, Counters)> = self.recent.iter().skip(skip).collect();
        let from = recent.len().saturating_sub(n);
        let interval = |i: usize| {
            let span = match i {
                0 => recent.get(1).map(|(at, _)| at - recent[0].0),
                _ => Some(recent[i].0 - recent[i - 1].0),
            };
            span.filter(|ms| *ms > 0)
        };
        (from..recent.len())
            .map(|i| {
                let v = metric.value(&recent[i].1)?;
                Some(match interval(i) {
                    Some(ms) if metric.is_cumulative() => v * 60_000.0 / ms as f64,
                    _ => v,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct SourceView {
    pub url: String,
    pub health: Health,
    pub last_error: Option<String>,
    pub latency_ms: Option<u64>,
    pub last_ok: Option<Instant>,
    pub channels: usize,
    pub polls: u64,
}

/// Time windows for charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Window {
    Hour,
    SixHours,
    Day,
    Week,
    ToDate,
}

impl Window {
    pub const ALL: [Window; 5] = [Window::Hour, Window::SixHours, Window::Day, Window::Week, Window::ToDate];

    pub fn label(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::SixHours => "6h",
            Window::Day => "24h",
            Window::Week => "7d",
            Window::ToDate => "to date",
        }
    }

    /// Length in ms; `None` for the whole campaign so far.
    pub fn span_ms(self) -> Option<i64> {
        let h = HOUR_MS;
        match self {
            Window::Hour => Some(h),
            Window::SixHours => Some(6 * h),
            Window::Day => Some(24 * h),
            Window::Week => Some(7 * 24 * h),
            Window::ToDate => None,
        }
    }

    pub fn next(self) -> Window {
        let i = Window::ALL.iter().position(|w| *w == self).unwrap_or(0);
        Window::ALL[(i + 1) % Window::ALL.len()]
    }
}

/// A channel's counters bucketed over a window, for the detail chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeriesView {
    pub key: ChannelKey,
    pub window: Window,
    pub from_ms: i64,
    pub to_ms: i64,
    pub bucket_ms: i64,
    /// (bucket start, counters in the bucket), oldest first; empty buckets are left out.
    pub points: Vec<(i64, Counters)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minute sample and one-second readings of the same pace draw the same height.
    #[test]
    fn sparkline_counts_are_per_minute_of_each_interval() {
        let spend = |s: f64| Counters { spend: s, impressions: 100, ..Default::default() };
        let recent = vec![(0, spend(60.0)), (60_000, spend(60.0)), (61_000, spend(1.0)), (62_000, spend(1.0))];
        let v = ChannelView { recent: Recent::from_entries(recent, 100), ..Default::default() };
        assert_eq!(v.spark(Metric::Spend, 10), vec![Some(60.0); 4]);
        assert_eq!(v.spark(Metric::Spend, 2), vec![Some(60.0); 2]);
        // Rates are rates whatever the interval.
        assert_eq!(v.spark(Metric::Cpm, 1), vec![Some(10.0)]);
        assert!(ChannelView::default().spark(Metric::Spend, 5).is_empty());
    }
}
