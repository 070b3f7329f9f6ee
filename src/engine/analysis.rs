//! The engine's side of analysis: annotations (stored, published) and the analysis of the
//! campaign the analyze view shows, recomputed at a calm pace as data arrives.

use super::Engine;
use crate::domain::{Note, NoteKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many of the latest annotations the snapshot carries.
const NOTES_KEPT: usize = 1_000;
/// The analysis is recomputed at most this often while data arrives.
const ANALYSIS_EVERY: Duration = Duration::from_secs(2);

impl Engine {
    pub(super) fn load_notes(&mut self) -> crate::store::Result<()> {
        let mut notes = self.writer.store().notes(None)?;
        notes.sort_by_key(|n| (n.at_ms, n.id));
        let drop = notes.len().saturating_sub(NOTES_KEPT);
        notes.drain(..drop);
        self.notes = notes;
        self.snapshot.notes = Arc::new(self.notes.clone());
        Ok(())
    }

    /// Stores an annotation (giving it an id) and publishes it.
    pub(super) fn add_note(&mut self, mut note: Note) {
        note.id = match self.writer.store().next_id() {
            Ok(id) => id,
            Err(e) => {
                self.writer.failed(&e);
                self.notes.last().map_or(1, |n| n.id + 1)
            }
        };
        if let Err(e) = self.writer.store().put_note(&note) {
            tracing::error!("saving a note failed: {e}");
            self.writer.failed(&e);
        }
        self.notes.push(note);
        if self.notes.len() > NOTES_KEPT {
            self.notes.remove(0);
        }
        self.snapshot.notes = Arc::new(self.notes.clone());
        self.dirty = true;
    }

    /// A note typed by a person.
    pub(super) fn note(&mut self, campaign: String, channel: Option<String>, text: String, by: String) {
        let text = text.trim().to_string();
        if text.is_empty() {
            return;
        }
        let at_ms = self.clock.now_ms();
        self.add_note(Note {
            id: 0,
            at_ms,
            campaign,
            channel,
            kind: NoteKind::Note,
            text,
            by,
            rule: None,
            fired: None,
        });
        self.notify("note saved".into());
    }

    /// Campaign `i`'s plan replaced where it is stored and where it runs (every channel's view
    /// is built again from it).
    fn swap_plan(&mut self, i: usize, plan: crate::domain::Campaign) {
        if let Err(e) = self.writer.store().put_campaign(&plan) {
            tracing::error!("saving the plan of {} failed: {e}", plan.id);
            self.writer.failed(&e);
        }
        let plan = Arc::new(plan);
        for (slot, ch) in self.spans[i].clone().zip(&plan.channels) {
            if let Some((_, st)) = self.channels.get_index_mut(slot) {
                st.campaign = plan.clone();
                st.labels = (ch.name.as_str().into(), ch.kind.as_deref().map(Arc::from), ch.source.as_str().into());
                st.dirty = true;
            }
        }
        self.campaigns[i] = plan;
        self.dirty = true;
    }

    /// An edited plan: in force at once when it polls as before; else stored, for the next
    /// start (a service plans again on an import instead).
    pub(super) fn replace_plan(&mut self, plan: crate::domain::Campaign, by: &str) {
        let Some(i) = self.campaigns.iter().position(|c| c.id == plan.id) else {
            return self.notify(format!("no campaign '{}' here", plan.id));
        };
        tracing::info!("{by} edited the plan of {}", plan.id);
        if self.campaigns[i].polls_as(&plan) {
            let id = plan.id.clone();
            self.swap_plan(i, plan);
            self.evaluate_tasks();
            return self.notify(format!("updated {id}"));
        }
        if let Err(e) = self.writer.store().put_campaign(&plan) {
            self.writer.failed(&e);
            return self.notify(format!("saving {} failed: {e}", plan.id));
        }
        self.notify(format!("saved {}: its channels or sources changed, polled so from the next start", plan.id));
    }

    /// A task marked done (or open again): the plan is changed where it is stored and in every
    /// view, the change noted on the timeline with who and when, and its alert judged again.
    pub(super) fn mark_task(&mut self, campaign: &str, which: &str, done: bool, by: &str) {
        let Some(i) = self.campaigns.iter().position(|c| c.id == campaign) else {
            return self.notify(format!("no campaign '{campaign}'"));
        };
        let mut plan = (*self.campaigns[i]).clone();
        let t = match plan.find_task(which) {
            Ok(t) => t,
            Err(e) => return self.notify(e),
        };
        let now = self.clock.now_ms();
        let title = plan.tasks[t].title.clone();
        if !plan.set_task_done(t, done, by, now) {
            return self.notify(format!("'{title}' is {} already", if done { "done" } else { "open" }));
        }
        let task = plan.tasks[t].clone();
        self.swap_plan(i, plan);
        let note = crate::domain::note::task_note(campaign, &task, by.to_string(), now);
        let told = note.text.clone();
        self.add_note(note);
        self.evaluate_tasks();
        self.notify(told);
    }

    /// An applied action, on the timeline.
    pub(super) fn note_action(&mut self, e: &crate::optimize::journal::JournalEntry) {
        let verb = if e.undo_of.is_some() { "undo" } else { "action" };
        self.add_note(Note {
            id: 0,
            at_ms: self.clock.now_ms(),
            campaign: e.campaign.clone(),
            channel: Some(e.change.channel.clone()),
            kind: NoteKind::Action,
            text: format!("{verb} #{}: {} (by {})", e.id, e.change.describe(), e.by),
            by: e.by.clone(),
            rule: None,
            fired: None,
        });
    }

    pub(super) fn clear_analysis(&mut self) {
        self.analysis_req = None;
        self.snapshot.analysis = None;
    }

    pub(super) fn request_analysis(&mut self, campaign: String, window: crate::analyze::WindowKind, against: usize) {
        self.analysis_req = Some((campaign, window, against));
        self.analysis_at = None;
        self.refresh_analysis();
    }

    /// Computes the requested analysis when asked, and again when its campaign has new data
    /// and the last one is older than `ANALYSIS_EVERY`.
    pub(super) fn refresh_analysis(&mut self) {
        let Some((id, window, against)) = self.analysis_req.clone() else { return };
        if self.analysis_at.is_some_and(|t| t.elapsed() < ANALYSIS_EVERY) {
            return;
        }
        let fresh = self.channels.iter().any(|(k, st)| k.campaign == id && st.dirty);
        if self.analysis_at.is_some() && !fresh {
            return;
        }
        self.analysis_at = Some(Instant::now());
        if let Some(a) = self.analysis(&id, window, against) {
            self.snapshot.analysis = Some(Arc::new(a));
        }
        self.dirty = true;
    }

    /// The analysis of a campaign over a window as of now (`None` for a campaign not known or
    /// a store that failed, which the snapshot reports).
    pub(super) fn analysis(
        &mut self,
        id: &str,
        window: crate::analyze::WindowKind,
        against: usize,
    ) -> Option<crate::analyze::data::Analysis> {
        let c = self.campaigns.iter().find(|c| c.id == id)?;
        let all: Vec<&crate::domain::Campaign> = self.campaigns.iter().map(|c| &**c).collect();
        let now = self.clock.now_ms();
        let cache = &mut self.ended_days;
        match crate::analyze::data::analysis(self.writer.store(), c, &all, window, against, now, cache) {
            Ok(a) => Some(a),
            Err(e) => {
                self.writer.failed(&e);
                None
            }
        }
    }
}
