//! A note on a campaign's timeline: written by people, by alerts as they fire and resolve, and
//! by applied actions; kept by the store, shown by the charts and the review report.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteKind {
    Note,
    Alert,
    Action,
}

impl NoteKind {
    pub fn label(self) -> &'static str {
        match self {
            NoteKind::Note => "note",
            NoteKind::Alert => "alert",
            NoteKind::Action => "action",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Increasing; unique in the store.
    pub id: u64,
    /// Campaign time, unix ms.
    pub at_ms: i64,
    pub campaign: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub kind: NoteKind,
    pub text: String,
    /// Who wrote it (the OS user), or "cockpit" for automatic notes.
    pub by: String,
    /// For alert notes: the rule, so that firing and resolving pair up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For alert notes: true when it fired, false when it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired: Option<bool>,
}

/// The note that journals a task marked done (or open again), by whom, at `at_ms`.
pub fn task_note(campaign: &str, task: &crate::domain::campaign::Task, by: String, at_ms: i64) -> Note {
    let verb = if task.done { "task done" } else { "task reopened" };
    Note {
        id: 0,
        at_ms,
        campaign: campaign.to_string(),
        channel: task.channel.clone(),
        kind: NoteKind::Action,
        text: format!("{verb}: {} (owner {})", task.title, task.owner),
        by,
        rule: None,
        fired: None,
    }
}
