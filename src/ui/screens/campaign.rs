//! The campaign screen: the channel table, sorted and filtered, and the actions on the
//! channel under the cursor (pause or resume, set its budget).

use super::{Handled, move_cursor};
use crate::domain::{ChannelStatus, ControlAction, Metric};
use crate::engine::Command;
use crate::optimize::recommend::Change;
use crate::ui::app::{App, Confirm, Modal, Prompt, PromptKind, View};
use crate::ui::keys::Action;

/// Columns of the channel table, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Impressions,
    Clicks,
    Ctr,
    Cvr,
    Leads,
    Cpl,
    Conversions,
    Cpa,
    Spend,
    Revenue,
    Roas,
}

impl Column {
    pub const SORTABLE: [Column; 12] = [
        Column::Spend,
        Column::Roas,
        Column::Revenue,
        Column::Conversions,
        Column::Cpl,
        Column::Cpa,
        Column::Ctr,
        Column::Cvr,
        Column::Leads,
        Column::Clicks,
        Column::Impressions,
        Column::Name,
    ];

    /// The column showing `m`, where the table has one.
    pub fn of(m: Metric) -> Option<Column> {
        Column::SORTABLE.into_iter().find(|c| c.metric() == Some(m))
    }

    pub fn metric(self) -> Option<Metric> {
        Some(match self {
            Column::Name => return None,
            Column::Impressions => Metric::Impressions,
            Column::Clicks => Metric::Clicks,
            Column::Ctr => Metric::Ctr,
            Column::Cvr => Metric::Cvr,
            Column::Leads => Metric::Leads,
            Column::Cpl => Metric::Cpl,
            Column::Conversions => Metric::Conversions,
            Column::Cpa => Metric::Cpa,
            Column::Spend => Metric::Spend,
            Column::Revenue => Metric::Revenue,
            Column::Roas => Metric::Roas,
        })
    }

    pub fn label(self) -> &'static str {
        self.metric().map_or("Channel", Metric::label)
    }
}

/// The channel table of the selected campaign.
#[derive(Debug, Clone)]
pub struct CampaignScreen {
    /// Row in the (sorted, filtered) table.
    pub row: usize,
    pub sort: Column,
    pub descending: bool,
    pub filter: String,
    /// Indexes into the selected campaign's channels, sorted and filtered.
    pub rows: Vec<usize>,
    /// What `rows` were computed for: (generation, sort, descending, filter, campaign).
    rows_for: (u64, Column, bool, String, usize),
    /// Rows visible in the last drawn table, for paging.
    pub page: usize,
    /// The columns of the last drawn table: `s` sorts by one of these (kept by the drawing,
    /// which knows the width).
    pub shown: std::cell::RefCell<Vec<Column>>,
    /// The launch checklist is shown instead of the channels, with this task (by title)
    /// selected: it stays selected when marking it done moves it down the list.
    pub tasks: bool,
    pub task: Option<String>,
}

impl Default for CampaignScreen {
    fn default() -> Self {
        CampaignScreen {
            row: 0,
            sort: Column::Spend,
            descending: true,
            filter: String::new(),
            rows: Vec::new(),
            rows_for: (u64::MAX, Column::Name, false, String::new(), usize::MAX),
            page: 10,
            shown: std::cell::RefCell::new(Column::SORTABLE.to_vec()),
            tasks: false,
            task: None,
        }
    }
}

impl App {
    pub(crate) fn campaign_action(&mut self, action: Action) -> Handled {
        if self.table.tasks || action == Action::TaskDone {
            return self.checklist_action(action);
        }
        match action {
            Action::Checklist => return self.checklist_action(action),
            Action::Filter => self.modal = Some(Modal::Filter),
            Action::SortNext => {
                // Only by a column on screen (and the name): a sort by a hidden one would show
                // no order and no arrow.
                let shown = self.table.shown.borrow().clone();
                let on_screen: Vec<Column> =
                    Column::SORTABLE.into_iter().filter(|c| *c == Column::Name || shown.contains(c)).collect();
                let i = on_screen.iter().position(|c| *c == self.table.sort);
                self.table.sort = on_screen[i.map_or(0, |i| (i + 1) % on_screen.len())];
                self.table.descending = self.table.sort != Column::Name;
                self.message = Some(format!("sorted by {}", self.table.sort.label()));
                self.refresh_rows();
            }
            Action::SortReverse => {
                self.table.descending = !self.table.descending;
                self.refresh_rows();
            }
            Action::PauseChannel => self.confirm_pause(),
            Action::SetBudget => self.prompt_budget(),
            Action::Open => return self.goto(View::Channel).into(),
            Action::Back if !self.table.filter.is_empty() => {
                self.table.filter.clear();
                self.refresh_rows();
            }
            Action::Back => return self.goto(View::Overview).into(),
            _ => match self.step_of(action) {
                Some(d) => {
                    move_cursor(&mut self.table.row, self.table.rows.len(), d);
                    self.channel = self.selected_channel().map(|c| c.key.clone());
                }
                None => return Handled::No,
            },
        }
        Handled::Yes(None)
    }

    /// The campaign's tasks in the order the checklist shows them, and the row selected.
    pub fn task_rows(&self) -> (Vec<usize>, usize) {
        let Some(c) = self.campaign() else { return (Vec::new(), 0) };
        let rows = crate::domain::campaign::task_order(&c.campaign.tasks, self.snap.now_ms);
        let at =
            self.table.task.as_ref().and_then(|title| rows.iter().position(|&i| c.campaign.tasks[i].title == *title));
        (rows, at.unwrap_or(0))
    }

    /// A key while the checklist is shown (or `x` on the channels, which shows it).
    fn checklist_action(&mut self, action: Action) -> Handled {
        let Some(c) = self.campaign().cloned() else { return Handled::No };
        let (rows, row) = self.task_rows();
        let key = |a| self.keys.key_of(a);
        match action {
            _ if rows.is_empty() && matches!(action, Action::Checklist | Action::TaskDone) => {
                self.message = Some(format!("{} has no tasks: add [[tasks]] to its file", c.campaign.id));
            }
            Action::Checklist if self.table.tasks => self.table.tasks = false,
            Action::Checklist => self.table.tasks = true,
            Action::TaskDone if !self.table.tasks => {
                self.table.tasks = true;
                self.message = Some(format!("choose a task, then {} marks it done", key(Action::TaskDone)));
            }
            Action::TaskDone => {
                let Some(&i) = rows.get(row) else { return Handled::No };
                let t = &c.campaign.tasks[i];
                return Handled::Yes(Some(Command::Task {
                    campaign: c.campaign.id.clone(),
                    task: t.title.clone(),
                    done: !t.done,
                    by: self.user.clone(),
                }));
            }
            Action::Open => {
                let channel = rows.get(row).and_then(|&i| c.campaign.tasks[i].channel.clone());
                if let Some(pos) = channel.and_then(|ch| c.channels.iter().position(|v| v.key.channel == ch)) {
                    self.table.tasks = false;
                    self.channel = Some(c.channels[pos].key.clone());
                    return self.goto(View::Channel).into();
                }
            }
            Action::Back => self.table.tasks = false,
            _ => match self.step_of(action) {
                Some(d) => {
                    let mut row = row;
                    move_cursor(&mut row, rows.len(), d);
                    self.table.task = rows.get(row).map(|&i| c.campaign.tasks[i].title.clone());
                }
                None => return Handled::No,
            },
        }
        Handled::Yes(None)
    }

    /// `p`: asks to pause the channel under the cursor, or to resume it when paused.
    fn confirm_pause(&mut self) {
        let Some(ch) = self.selected_channel().cloned() else { return };
        let paused = ch.status == Some(ChannelStatus::Paused);
        let action = if paused { ControlAction::Resume } else { ControlAction::Pause };
        let change = Change::control(&ch.key.channel, action, ch.daily_budget);
        self.modal = Some(Modal::Confirm(Confirm {
            text: format!("{} on {}", change.describe(), ch.key.campaign),
            command: Command::Apply {
                campaign: ch.key.campaign.clone(),
                changes: vec![change],
                recommendation: None,
                by: self.user.clone(),
            },
        }));
    }

    /// `b`: a prompt for the daily budget of the channel under the cursor, within its plan's
    /// bounds.
    fn prompt_budget(&mut self) {
        let Some(ch) = self.selected_channel().cloned() else { return };
        let Some(plan) = self.campaign().and_then(|c| c.campaign.channel(&ch.key.channel).cloned()) else { return };
        self.modal = Some(Modal::Prompt(Prompt {
            kind: PromptKind::Budget {
                campaign: ch.key.campaign.clone(),
                channel: ch.key.channel.clone(),
                before: ch.daily_budget,
                min: plan.min_budget.unwrap_or(0.0),
                max: plan.max_budget.unwrap_or(f64::INFINITY),
            },
            text: format!("{}", ch.daily_budget.round()),
        }));
    }

    /// A key typed while editing the filter; Enter or Esc ends editing.
    pub(crate) fn filter_key(&mut self, key: crossterm::event::KeyEvent) {
        use crossterm::event::KeyCode;
        match key.code {
            KeyCode::Enter => self.modal = None,
            KeyCode::Esc => {
                self.modal = None;
                self.table.filter.clear();
            }
            KeyCode::Backspace => {
                self.table.filter.pop();
            }
            KeyCode::Char(c) => self.table.filter.push(c),
            _ => {}
        }
        self.table.row = 0;
        self.refresh_rows();
    }

    /// Sorts and filters the channel table when its inputs changed (not on every frame).
    pub fn refresh_rows(&mut self) {
        let t = &mut self.table;
        let key = (self.snap.generation, t.sort, t.descending, t.filter.clone(), self.campaign_sel);
        if key == t.rows_for {
            return;
        }
        t.rows_for = key;
        let Some(c) = self.snap.campaigns.get(self.campaign_sel) else {
            t.rows.clear();
            return;
        };
        let needle = t.filter.to_lowercase();
        let rows: Vec<usize> = (0..c.channels.len())
            .filter(|i| {
                let ch = &c.channels[*i];
                needle.is_empty()
                    || ch.name.to_lowercase().contains(&needle)
                    || ch.key.channel.to_lowercase().contains(&needle)
            })
            .collect();
        // Each row's sort value is computed once, not at every comparison.
        let metric = t.sort.metric();
        let mut keyed: Vec<(Option<f64>, usize)> =
            rows.iter().map(|i| (metric.and_then(|m| m.value(&c.channels[*i].totals)), *i)).collect();
        let descending = t.descending;
        keyed.sort_by(|(p, a), (q, b)| {
            let (x, y) = (&c.channels[*a], &c.channels[*b]);
            let ord = match (metric, p, q) {
                (None, _, _) => x.name.cmp(&y.name),
                // Rows without data sort last whatever the direction.
                (Some(_), Some(p), Some(q)) => p.total_cmp(q),
                (Some(_), Some(_), None) => return std::cmp::Ordering::Less,
                (Some(_), None, Some(_)) => return std::cmp::Ordering::Greater,
                (Some(_), None, None) => std::cmp::Ordering::Equal,
            };
            let ord = if descending { ord.reverse() } else { ord };
            ord.then_with(|| x.key.channel.cmp(&y.key.channel))
        });
        t.rows = keyed.into_iter().map(|(_, i)| i).collect();
        // Keep the same channel selected when the order changes.
        if let Some(k) = self.channel.as_ref().filter(|k| k.campaign == c.campaign.id)
            && let Some(pos) = t.rows.iter().position(|i| c.channels[*i].key == *k)
        {
            t.row = pos;
        }
        t.row = t.row.min(t.rows.len().saturating_sub(1));
    }
}
