//! The campaign world with no I/O: campaigns and their plans, counters and samples, and the
//! metric math every other module leans on. Pure functions only; the clock is passed in.

pub mod alerting;
pub mod campaign;
pub mod counters;
pub mod metrics;

pub use alerting::{AlertRules, Contingency, RuleKind, RuleSettings, Severity};
pub use campaign::{Campaign, CampaignError, Channel, Goal, KpiLimit, Op};
pub use counters::{CampaignTotals, ChannelCursor, Counters, Recent, Sample, SegmentCounters, VariantCounters};
pub use metrics::{Metric, goal_progress, pacing};
