//! The overview: one block per campaign; the cursor picks the campaign the other screens show.

use super::{Handled, move_cursor};
use crate::ui::app::{App, View};
use crate::ui::keys::Action;

impl App {
    pub(crate) fn overview_action(&mut self, action: Action) -> Handled {
        match action {
            Action::Open => self.goto(View::Campaign).into(),
            Action::Back => Handled::Yes(None),
            _ => match self.step_of(action) {
                Some(d) => {
                    move_cursor(&mut self.campaign_sel, self.snap.campaigns.len(), d);
                    self.table.row = 0;
                    self.table.filter.clear();
                    self.refresh_rows();
                    Handled::Yes(None)
                }
                None => Handled::No,
            },
        }
    }
}
