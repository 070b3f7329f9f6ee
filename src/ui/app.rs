//! The UI's state and what each action does to it. No I/O: actions that need the engine
//! return a `Command` for the caller to send. Each screen's state and handler live in
//! `screens/`; this file holds what the screens share: the snapshot, the view on screen, the
//! selected campaign and channel, the one modal, and the dispatch.

use super::keys::Action;
use super::screens::Handled;
use super::screens::alerts::AlertsScreen;
use super::screens::analyze::AnalyzeScreen;
use super::screens::campaign::CampaignScreen;
use super::screens::channel::ChannelScreen;
use super::screens::optimize::OptimizeScreen;
use super::theme::Theme;
use crate::alert::{AlertKey, AlertState, Severity};
use crate::domain::ChannelKey;
use crate::engine::Command;
use crate::engine::snapshot::{CampaignView, ChannelView, Snapshot};
use crate::optimize::recommend::Change;
use std::collections::HashSet;
use std::sync::Arc;

pub use super::screens::alerts::StateFilter;
pub use super::screens::analyze::AnalyzeMode;
pub use super::screens::campaign::Column;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Campaign,
    Channel,
    Alerts,
    Optimize,
    Analyze,
}

impl View {
    pub const ALL: [View; 6] =
        [View::Overview, View::Campaign, View::Channel, View::Alerts, View::Optimize, View::Analyze];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Campaign => "Campaign",
            View::Channel => "Channel",
            View::Alerts => "Alerts",
            View::Optimize => "Optimize",
            View::Analyze => "Analyze",
        }
    }
}

/// The pop-up that takes every key until it closes.
pub enum Modal {
    /// Typing the channel table's filter.
    Filter,
    /// A line of text for something (a duration, a budget, a note, a window).
    Prompt(Prompt),
    /// An action waiting for `y`.
    Confirm(Confirm),
}

/// An action waiting for `y`: the line that restates it and what to send.
pub struct Confirm {
    pub text: String,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// What a text prompt is for.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptKind {
    /// Silence the selected alert (or every alert of its channel) for the typed duration.
    Silence { whole_channel: bool },
    /// Dismiss a recommendation for the typed duration.
    Snooze { rec: String, what: String },
    /// A channel's new daily budget.
    Budget { campaign: String, channel: String, before: f64, min: f64, max: f64 },
    /// A note on a campaign (and channel) at this moment.
    Note { campaign: String, channel: Option<String> },
    /// A custom window for the analyze view: FROM..TO.
    Window,
    /// The `:` command line (see `commands`).
    Command,
}

impl PromptKind {
    /// Free text (anything printable) rather than a duration or a number.
    fn free_text(&self) -> bool {
        matches!(self, PromptKind::Note { .. } | PromptKind::Window | PromptKind::Command)
    }
}

/// Lines a page key moves the help by.
const HELP_PAGE: usize = 10;

pub struct App {
    pub snap: Arc<Snapshot>,
    pub theme: Theme,
    pub view: View,
    pub help: bool,
    /// The help's first line on screen, and the furthest it can go at the size last drawn
    /// (kept by the drawing, which knows the size).
    pub help_scroll: usize,
    pub help_max: std::cell::Cell<usize>,
    /// What a Tab at the command line could complete to, when it was more than one.
    pub completions: Vec<String>,
    /// The counters each channel's source does not read, by (plan, channel index): worked out
    /// once per plan, not at every frame.
    unmapped: std::cell::RefCell<std::collections::HashMap<(usize, usize), u8>>,
    pub quit: bool,
    /// Index into the campaigns: the overview's cursor, the campaign the other screens show.
    pub campaign_sel: usize,
    /// The channel the channel screen shows (and the campaign table's cursor follows).
    pub channel: Option<ChannelKey>,
    pub message: Option<String>,
    pub modal: Option<Modal>,
    pub table: CampaignScreen,
    pub chart: ChannelScreen,
    pub alerts: AlertsScreen,
    pub optimize: OptimizeScreen,
    pub analyze: AnalyzeScreen,
    /// Ring the terminal bell when a critical alert fires.
    pub bell: bool,
    /// A bell is due with the next frame.
    pub ring: bool,
    /// Critical alerts already seen firing (key, fired at), so each rings once.
    seen_critical: HashSet<(AlertKey, i64)>,
    /// Who acts from this cockpit (the OS user), for acks, notes and the journal.
    pub user: String,
    /// The last engine notice shown.
    notice_seen: u64,
    /// Command lines run, oldest first, and where ↑/↓ stand in them.
    pub history: Vec<String>,
    pub history_at: Option<usize>,
    /// The key bindings in force (the defaults with `[keys]` from the config).
    pub keys: super::keys::Keymap,
    /// A plan to open in the user's editor (`e`): the UI's loop hands the terminal over.
    pub edit: Option<crate::domain::Campaign>,
    /// The campaign selected when a state without campaigns came, to select again after it.
    sticky: Option<String>,
}

impl App {
    /// `user` names who acts from this cockpit (see `cli::os_user`).
    pub fn new(snap: Arc<Snapshot>, theme: Theme, user: impl Into<String>) -> Self {
        let mut app = App {
            snap,
            theme,
            view: View::Overview,
            help: false,
            help_scroll: 0,
            help_max: std::cell::Cell::new(0),
            completions: Vec::new(),
            unmapped: Default::default(),
            quit: false,
            campaign_sel: 0,
            channel: None,
            message: None,
            modal: None,
            table: CampaignScreen::default(),
            chart: ChannelScreen::default(),
            alerts: AlertsScreen::default(),
            optimize: OptimizeScreen::default(),
            analyze: AnalyzeScreen::default(),
            bell: false,
            ring: false,
            seen_critical: HashSet::new(),
            user: user.into(),
            notice_seen: 0,
            history: Vec::new(),
            history_at: None,
            keys: super::keys::Keymap::default(),
            edit: None,
            sticky: None,
        };
        app.notice_seen = app.snap.notice.as_ref().map_or(0, |(n, _)| *n);
        app.seen_critical = app.firing_critical();
        app.refresh_alert_rows();
        app.refresh_rows();
        app
    }

    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) {
        // The campaign on screen stays on screen when the list changes around it (or is empty
        // for a moment, as a new engine's first state may be).
        let selected = self.campaign().map(|c| c.campaign.id.clone()).or(self.sticky.take());
        self.snap = snap;
        match selected.as_ref().and_then(|id| self.snap.campaigns.iter().position(|c| c.campaign.id == *id)) {
            Some(i) => self.campaign_sel = i,
            None if self.snap.campaigns.is_empty() => self.sticky = selected,
            None => {}
        }
        let critical = self.firing_critical();
        if self.bell && critical.iter().any(|k| !self.seen_critical.contains(k)) {
            self.ring = true;
        }
        self.seen_critical = critical;
        self.refresh_alert_rows();
        if let Some((n, text)) = &self.snap.notice
            && *n > self.notice_seen
        {
            self.notice_seen = *n;
            self.message = Some(text.clone());
        }
        self.refresh_optimize();
        if self.campaign_sel >= self.snap.campaigns.len() {
            self.campaign_sel = self.snap.campaigns.len().saturating_sub(1);
        }
        self.refresh_rows();
    }

    /// A new engine's state: its notices count from the start again.
    pub fn engine_restarted(&mut self, snap: Arc<Snapshot>) {
        self.notice_seen = 0;
        self.set_snapshot(snap);
    }

    /// Firing, unsilenced critical alerts now.
    fn firing_critical(&self) -> HashSet<(AlertKey, i64)> {
        self.snap
            .alerts
            .iter()
            .filter(|a| {
                a.state == AlertState::Firing && a.severity == Severity::Crit && self.snap.silence_of(a).is_none()
            })
            .map(|a| (a.key.clone(), a.fired_ms.unwrap_or(a.since_ms)))
            .collect()
    }

    /// The campaign whose channels are on screen: none on the overview and the alerts list.
    pub fn focus(&self) -> Option<String> {
        match self.view {
            View::Overview | View::Alerts => None,
            _ => self.campaign().map(|c| c.campaign.id.clone()),
        }
    }

    pub fn campaign(&self) -> Option<&Arc<CampaignView>> {
        self.snap.campaigns.get(self.campaign_sel)
    }

    pub fn selected_channel(&self) -> Option<&Arc<ChannelView>> {
        let c = self.campaign()?;
        self.table.rows.get(self.table.row).and_then(|i| c.channels.get(*i))
    }

    /// Whether the channel table's filter is being typed.
    pub fn editing_filter(&self) -> bool {
        matches!(self.modal, Some(Modal::Filter))
    }

    /// The open prompt, if any.
    pub fn prompt(&self) -> Option<&Prompt> {
        match &self.modal {
            Some(Modal::Prompt(p)) => Some(p),
            _ => None,
        }
    }

    /// The confirmation waiting for `y`, if any.
    /// The counters the source of channel `index` of `campaign` does not read (see
    /// `Channel::unmapped`), remembered for the plan.
    pub fn unmapped(&self, campaign: &Arc<crate::domain::Campaign>, index: usize) -> u8 {
        let key = (Arc::as_ptr(campaign) as usize, index);
        let mut cache = self.unmapped.borrow_mut();
        if cache.len() > 100_000 {
            cache.clear();
        }
        *cache.entry(key).or_insert_with(|| campaign.channels.get(index).map_or(0, crate::domain::Channel::unmapped))
    }

    pub fn confirm(&self) -> Option<&Confirm> {
        match &self.modal {
            Some(Modal::Confirm(c)) => Some(c),
            _ => None,
        }
    }

    /// Applies an action; returns a command for the engine when one is needed. Actions every
    /// view shares come first, then the screen on view, then the moves no screen took.
    pub fn apply(&mut self, action: Action) -> Option<Command> {
        self.message = None;
        if self.help {
            // The help scrolls whatever the size; every other key but quit closes nothing.
            let (at, max) = (self.help_scroll, self.help_max.get());
            match action {
                Action::Help | Action::Back => self.help = false,
                Action::Quit => self.quit = true,
                Action::Down => self.help_scroll = (at + 1).min(max),
                Action::Up => self.help_scroll = at.saturating_sub(1),
                Action::PageDown => self.help_scroll = (at + HELP_PAGE).min(max),
                Action::PageUp => self.help_scroll = at.saturating_sub(HELP_PAGE),
                Action::Top => self.help_scroll = 0,
                Action::Bottom => self.help_scroll = max,
                _ => {}
            }
            return None;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            Action::NextView | Action::PrevView => {
                let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
                let n = View::ALL.len();
                let j = if action == Action::NextView { (i + 1) % n } else { (i + n - 1) % n };
                return self.goto(View::ALL[j]);
            }
            Action::Overview => return self.goto(View::Overview),
            Action::CampaignView => return self.goto(View::Campaign),
            Action::ChannelView => return self.goto(View::Channel),
            Action::AlertsView => return self.goto(View::Alerts),
            Action::OptimizeView => return self.goto(View::Optimize),
            Action::AnalyzeView => return self.goto(View::Analyze),
            Action::AddNote => self.prompt_note(),
            Action::Edit => match self.campaign() {
                _ if self.snap.read_only => self.message = Some("read-only: plans are not edited here".into()),
                Some(c) => self.edit = Some((*c.campaign).clone()),
                None => self.message = Some("no campaign to edit".into()),
            },
            Action::CommandLine => {
                self.history_at = None;
                self.completions.clear();
                self.modal = Some(Modal::Prompt(Prompt { kind: PromptKind::Command, text: String::new() }));
            }
            _ => {
                let handled = match self.view {
                    View::Overview => self.overview_action(action),
                    View::Campaign => self.campaign_action(action),
                    View::Channel => self.channel_action(action),
                    View::Alerts => self.alerts_action(action),
                    View::Optimize => self.optimize_action(action),
                    View::Analyze => self.analyze_action(action),
                };
                if let Handled::Yes(cmd) = handled {
                    return cmd;
                }
            }
        }
        None
    }

    /// How far a move action goes, in rows (`None` for any other action).
    pub(crate) fn step_of(&self, action: Action) -> Option<isize> {
        let page = self.table.page.max(1) as isize;
        Some(match action {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -page,
            Action::PageDown => page,
            Action::Top => isize::MIN / 2,
            Action::Bottom => isize::MAX / 2,
            _ => return None,
        })
    }

    /// `n`: a prompt for a note on the campaign on screen (and its channel, where one is).
    fn prompt_note(&mut self) {
        let Some(c) = self.campaign() else {
            self.message = Some("no campaign to note on".into());
            return;
        };
        let campaign = c.campaign.id.clone();
        let channel = match self.view {
            View::Channel => self.channel.as_ref().map(|k| k.channel.clone()),
            View::Campaign => self.selected_channel().map(|ch| ch.key.channel.clone()),
            _ => None,
        };
        self.modal = Some(Modal::Prompt(Prompt { kind: PromptKind::Note { campaign, channel }, text: String::new() }));
    }

    /// The key scope of the current view.
    pub fn scope(&self) -> super::keys::Scope {
        use super::keys::Scope;
        match self.view {
            View::Overview => Scope::Lists,
            View::Campaign => Scope::Campaign,
            View::Channel => Scope::Channel,
            View::Alerts => Scope::Alerts,
            View::Optimize => Scope::Optimize,
            View::Analyze => Scope::Analyze,
        }
    }

    /// A key press: to the open modal if there is one, else to its action in this view.
    pub fn key(&mut self, key: crossterm::event::KeyEvent) -> Option<Command> {
        if self.modal.is_some() {
            return self.modal_key(key);
        }
        let action = self.keys.action(key, self.scope())?;
        self.apply(action)
    }

    /// A key while a modal is open.
    pub fn modal_key(&mut self, key: crossterm::event::KeyEvent) -> Option<Command> {
        match self.modal.as_ref()? {
            Modal::Filter => {
                self.filter_key(key);
                None
            }
            Modal::Confirm(_) => self.confirm_key(key),
            Modal::Prompt(_) => self.prompt_key(key),
        }
    }

    /// A key while a confirmation is open: `y` sends, anything else cancels.
    fn confirm_key(&mut self, key: crossterm::event::KeyEvent) -> Option<Command> {
        let Some(Modal::Confirm(c)) = self.modal.take() else { return None };
        if key.code == crossterm::event::KeyCode::Char('y') {
            self.message = Some(format!("sent: {}", c.text));
            return Some(c.command);
        }
        self.message = Some("cancelled: nothing sent".into());
        None
    }

    /// A key typed at a prompt: Enter goes on (to a confirmation for a budget), Esc cancels.
    fn prompt_key(&mut self, key: crossterm::event::KeyEvent) -> Option<Command> {
        use crossterm::event::KeyCode;
        let Some(Modal::Prompt(p)) = self.modal.as_mut() else { return None };
        if p.kind == PromptKind::Command {
            self.completions.clear();
            let text = match key.code {
                KeyCode::Tab => {
                    let (text, listed) = super::commands::complete(&p.text.clone(), self);
                    self.completions = listed;
                    Some(text)
                }
                KeyCode::Up => self.history_step(true),
                KeyCode::Down => self.history_step(false),
                _ => None,
            };
            if let Some(text) = text {
                if let Some(Modal::Prompt(p)) = self.modal.as_mut() {
                    p.text = text;
                }
                return None;
            }
        }
        let Some(Modal::Prompt(p)) = self.modal.as_mut() else { return None };
        match key.code {
            KeyCode::Esc => {
                self.modal = None;
                self.message = Some("cancelled".into());
            }
            KeyCode::Backspace => {
                p.text.pop();
            }
            KeyCode::Char(c) if p.kind.free_text() && !c.is_control() => p.text.push(c),
            KeyCode::Char(c) if c.is_ascii_alphanumeric() || c == '.' || c == ' ' => p.text.push(c),
            KeyCode::Enter => {
                let Some(Modal::Prompt(p)) = self.modal.take() else { return None };
                return self.submit(p);
            }
            _ => {}
        }
        None
    }

    /// ↑ (`up`) or ↓ at the command line: the line to show, `None` where there is nothing to
    /// move to; past the newest, an empty line.
    fn history_step(&mut self, up: bool) -> Option<String> {
        let n = self.history.len();
        let at = match (up, self.history_at) {
            _ if n == 0 => return None,
            (true, None) => n - 1,
            (true, Some(i)) => i.saturating_sub(1),
            (false, None) => return None,
            (false, Some(i)) if i + 1 >= n => {
                self.history_at = None;
                return Some(String::new());
            }
            (false, Some(i)) => i + 1,
        };
        self.history_at = Some(at);
        Some(self.history[at].clone())
    }

    /// Enter at a prompt: what the typed text asks for.
    fn submit(&mut self, p: Prompt) -> Option<Command> {
        match p.kind {
            PromptKind::Silence { whole_channel } => self.silence(&p.text, whole_channel),
            PromptKind::Snooze { rec, what } => self.snooze(&p.text, rec, &what),
            PromptKind::Window => self.custom_window(&p.text),
            PromptKind::Command => {
                let line = p.text.trim().to_string();
                if !line.is_empty() && self.history.last() != Some(&line) {
                    self.history.push(line.clone());
                }
                super::commands::run(&line, self)
            }
            PromptKind::Note { campaign, channel } => {
                if p.text.trim().is_empty() {
                    self.message = Some("an empty note is not saved".into());
                    return None;
                }
                Some(Command::Note { campaign, channel, text: p.text, by: self.user.clone() })
            }
            PromptKind::Budget { campaign, channel, before, min, max } => {
                let value: f64 = match p.text.trim().replace(',', "").parse() {
                    Ok(v) if (min..=max).contains(&v) => v,
                    _ => {
                        let range = if max.is_finite() { format!("{min}–{max}") } else { format!("at least {min}") };
                        self.message = Some(format!("'{}' is not a budget for {channel}: {range}", p.text));
                        return None;
                    }
                };
                let change = Change::budget(&channel, before, value);
                self.modal = Some(Modal::Confirm(Confirm {
                    text: format!("set {} on {campaign}", change.describe()),
                    command: Command::Apply {
                        campaign,
                        changes: vec![change],
                        recommendation: None,
                        by: self.user.clone(),
                    },
                }));
                None
            }
        }
    }

    /// Shows `view`, asking the engine for what it needs (a chart series, an analysis) and
    /// telling it when the last view that needed one is left.
    pub(crate) fn goto(&mut self, view: View) -> Option<Command> {
        let from = self.view;
        if view == View::Channel {
            if from == View::Campaign || self.channel.is_none() {
                self.channel = self.selected_channel().map(|c| c.key.clone());
            }
            if self.channel.is_none() {
                self.message = Some("no channel to show: pick a campaign with channels first".into());
                return None;
            }
        }
        self.view = view;
        if self.editing_filter() {
            self.modal = None;
        }
        if view == View::Alerts {
            self.alerts.key = self.selected_alert().map(|a| a.key.clone());
        }
        if view == View::Analyze {
            return self.analyze_command();
        }
        match (from == View::Channel, view == View::Channel) {
            (false, true) => self.series_command(),
            (true, false) => Some(Command::ClearDetail),
            _ if from == View::Analyze => Some(Command::ClearDetail),
            _ => None,
        }
    }
}
