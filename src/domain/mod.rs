//! The campaign world with no I/O: campaigns and their plans, counters and samples, the
//! metric math, and the words every layer shares (channel keys, source health, control
//! actions, notes, time constants, number formatting). Pure functions only; the clock is passed in.

pub mod alerting;
pub mod campaign;
pub mod control;
pub mod counters;
pub mod format;
pub mod health;
pub mod key;
pub mod metrics;
pub mod note;
pub mod source;
pub mod time;

pub use alerting::{AlertRules, Contingency, RuleKind, RuleSettings, Severity};
pub use campaign::{Campaign, CampaignError, Channel, Goal, KpiLimit, Op};
pub use control::{ChannelStatus, ControlAction};
pub use counters::{CampaignTotals, ChannelCursor, Counters, Recent, Sample, SegmentCounters, VariantCounters};
pub use health::Health;
pub use key::ChannelKey;
pub use metrics::{Metric, goal_progress, pacing};
pub use note::{Note, NoteKind};
