//! The journal: every action sent to a control endpoint, written before it is sent and again
//! when the answer comes, with the change that undoes it. An entry still "sending" when the
//! cockpit starts was cut off by a crash: its outcome is unknown, and says so.

use super::recommend::Change;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// Written, being sent.
    Sending,
    Applied {
        detail: String,
    },
    Failed {
        reason: String,
    },
    /// No answer came: the cockpit stopped before it (no reason), or the request went out and
    /// timed out. The change may or may not have been applied.
    Unknown {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Outcome {
    pub fn label(&self) -> String {
        match self {
            Outcome::Sending => "sending…".into(),
            Outcome::Applied { .. } => "applied".into(),
            Outcome::Failed { reason } => format!("failed: {reason}"),
            Outcome::Unknown { reason: None } => "unknown (stopped before the answer)".into(),
            Outcome::Unknown { reason: Some(r) } => format!("unknown: {r}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Increasing; the store's key.
    pub id: u64,
    /// Campaign time (ms) and wall-clock time (ms) when it was sent.
    pub at_ms: i64,
    pub wall_ms: i64,
    /// The OS user who confirmed it.
    pub by: String,
    pub campaign: String,
    pub change: Change,
    /// What undoes it.
    pub inverse: Change,
    pub idempotency_key: String,
    /// The recommendation it followed ("id: effect"), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    /// The entry this one undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_of: Option<u64>,
    /// The entry that undid this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_by: Option<u64>,
    pub outcome: Outcome,
}

impl JournalEntry {
    /// Whether `u` may undo this entry: it was applied, is not itself an undo, and is not undone.
    pub fn undoable(&self) -> bool {
        matches!(self.outcome, Outcome::Applied { .. }) && self.undo_of.is_none() && self.undone_by.is_none()
    }

    /// One line: when, who, what, how it went.
    pub fn line(&self) -> String {
        let what = self.change.describe();
        let undo = self.undo_of.map(|id| format!(" (undo of #{id})")).unwrap_or_default();
        let undone = self.undone_by.map(|id| format!(", undone by #{id}")).unwrap_or_default();
        format!("#{} {} by {}: {what}{undo} — {}{undone}", self.id, self.campaign, self.by, self.outcome.label())
    }
}

/// The most recent entry `u` would undo: the last applied action of a campaign (or of any
/// campaign) that is not undone.
pub fn last_undoable<'a>(entries: &'a [JournalEntry], campaign: Option<&str>) -> Option<&'a JournalEntry> {
    entries.iter().rev().find(|e| e.undoable() && campaign.is_none_or(|c| e.campaign == c))
}
