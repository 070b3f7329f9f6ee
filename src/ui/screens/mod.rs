//! Each screen's state and what an action does on it: the state travels with its screen, and
//! `App::apply` hands an action to the handler of the screen on view. A handler answers
//! whether it took the action (and the command for the engine, if any); what no screen takes
//! falls to the moves every screen shares (see `App::apply`). Rendering lives in `views/`.

pub mod alerts;
pub mod analyze;
pub mod campaign;
pub mod channel;
pub mod optimize;
pub mod overview;

use crate::engine::Command;

/// What a screen did with an action.
#[derive(Debug)]
pub enum Handled {
    /// Not this screen's: the shared moves get it.
    No,
    /// Taken, with a command for the engine when one is due.
    Yes(Option<Command>),
}

impl From<Option<Command>> for Handled {
    fn from(c: Option<Command>) -> Self {
        Handled::Yes(c)
    }
}

/// Moves a cursor by `d` rows within `len` rows.
pub fn move_cursor(cur: &mut usize, len: usize, d: isize) {
    *cur = (*cur as isize).saturating_add(d).clamp(0, len.saturating_sub(1) as isize) as usize;
}
