//! The optimize screen: recommendations with their evidence and the journal of actions; apply
//! (after a confirmation), undo, dismiss for a while.

use super::{Handled, move_cursor};
use crate::engine::Command;
use crate::optimize::journal::{JournalEntry, last_undoable};
use crate::optimize::recommend::Recommendation;
use crate::ui::app::{App, Confirm, Modal, Prompt, PromptKind, View};
use crate::ui::keys::Action;

#[derive(Debug, Clone, Default)]
pub struct OptimizeScreen {
    /// Row in the recommendations, and the recommendation on it (the selection follows it).
    pub sel: usize,
    pub rec_id: Option<String>,
    /// The selected recommendation in full.
    pub preview: bool,
    /// Keys move in the journal (newest first) instead of the recommendations.
    pub journal_focus: bool,
    pub journal_sel: usize,
}

impl App {
    pub(crate) fn optimize_action(&mut self, action: Action) -> Handled {
        match action {
            Action::ApplyRec => self.confirm_apply(),
            Action::Undo => self.confirm_undo(),
            Action::Snooze => {
                if let Some(r) = self.selected_rec() {
                    let kind =
                        PromptKind::Snooze { rec: r.id.clone(), what: format!("{} {}", r.kind.label(), r.campaign) };
                    self.modal = Some(Modal::Prompt(Prompt { kind, text: "4h".into() }));
                }
            }
            Action::JournalFocus => {
                self.optimize.journal_focus = !self.optimize.journal_focus;
                self.optimize.journal_sel = 0;
            }
            Action::Open => self.optimize.preview = !self.optimize.preview,
            Action::Back if self.optimize.preview || self.optimize.journal_focus => {
                self.optimize.preview = false;
                self.optimize.journal_focus = false;
            }
            Action::Back => return self.goto(View::Overview).into(),
            _ => match self.step_of(action) {
                Some(d) if self.optimize.journal_focus => {
                    move_cursor(&mut self.optimize.journal_sel, self.snap.journal.len(), d)
                }
                Some(d) => {
                    move_cursor(&mut self.optimize.sel, self.snap.recommendations.len(), d);
                    self.optimize.rec_id = self.selected_rec().map(|r| r.id.clone());
                }
                None => return Handled::No,
            },
        }
        Handled::Yes(None)
    }

    /// `y`: asks to apply the selected recommendation's changes.
    fn confirm_apply(&mut self) {
        let Some(r) = self.selected_rec() else {
            self.message = Some("no recommendation to apply".into());
            return;
        };
        if r.info_only || r.changes.is_empty() {
            self.message = Some(format!("nothing to apply: {}", r.effect));
            return;
        }
        let what: Vec<String> = r.changes.iter().map(|c| c.describe()).collect();
        let confirm = Confirm {
            text: format!("{} on {}: {} ({})", r.kind.label(), r.campaign, what.join("; "), r.effect),
            command: Command::Apply {
                campaign: r.campaign.clone(),
                changes: r.changes.clone(),
                recommendation: Some(format!("{}: {}", r.id, r.effect)),
                by: self.user.clone(),
            },
        };
        self.modal = Some(Modal::Confirm(confirm));
    }

    /// `u`: asks to undo the journal entry under the cursor, or the last applied action.
    fn confirm_undo(&mut self) {
        let target =
            if self.optimize.journal_focus { self.selected_entry() } else { last_undoable(&self.snap.journal, None) };
        let Some(e) = target else {
            self.message = Some("nothing to undo: no applied action in the journal".into());
            return;
        };
        if !e.undoable() {
            self.message = Some(format!("#{} cannot be undone: {}", e.id, e.outcome.label()));
            return;
        }
        let confirm = Confirm {
            text: format!("undo #{} on {}: {}", e.id, e.campaign, e.inverse.describe()),
            command: Command::Undo { entry: Some(e.id), campaign: None, by: self.user.clone() },
        };
        self.modal = Some(Modal::Confirm(confirm));
    }

    /// Enter at the dismiss prompt: hides the recommendation for the typed duration.
    pub(crate) fn snooze(&mut self, text: &str, rec: String, what: &str) -> Option<Command> {
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => {
                self.message = Some(format!("dismissed {what} for {}", humantime::format_duration(d)));
                Some(Command::Snooze { recommendation: rec, for_ms: d.as_millis() as i64 })
            }
            _ => {
                self.message = Some(format!("'{text}' is not a duration: write e.g. 4h or 1d"));
                None
            }
        }
    }

    /// The recommendation under the cursor.
    pub fn selected_rec(&self) -> Option<&Recommendation> {
        self.snap.recommendations.get(self.optimize.sel)
    }

    /// The journal entry under the cursor (the journal lists newest first).
    pub fn selected_entry(&self) -> Option<&JournalEntry> {
        self.snap.journal.iter().rev().nth(self.optimize.journal_sel)
    }

    /// Keeps the selections on the same recommendation and within the journal.
    pub(crate) fn refresh_optimize(&mut self) {
        let recs = &self.snap.recommendations;
        let s = &mut self.optimize;
        match s.rec_id.as_ref().and_then(|id| recs.iter().position(|r| &r.id == id)) {
            Some(i) => s.sel = i,
            None => s.sel = s.sel.min(recs.len().saturating_sub(1)),
        }
        s.journal_sel = s.journal_sel.min(self.snap.journal.len().saturating_sub(1));
    }
}
