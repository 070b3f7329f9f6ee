//! The UI's state and what each action does to it. No I/O: actions that need the engine
//! return a `Command` for the caller to send.

use super::keys::Action;
use super::theme::Theme;
use crate::alert::{AlertState, Severity};
use crate::domain::ChannelKey;
use crate::domain::ControlAction;
use crate::domain::Metric;
use crate::engine::Command;
use crate::engine::snapshot::{ChannelView, Snapshot, Window};
use std::sync::Arc;

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

/// The OS user, for acknowledgements: `$USER`, `$LOGNAME`, else the account of our uid.
pub fn os_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"].iter().find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty())) {
        return u;
    }
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    });
    let name = uid.as_deref().and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
    });
    name.or(uid.map(|u| format!("uid {u}"))).unwrap_or_else(|| "unknown".into())
}

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
    Cpa,
    Spend,
    Roas,
}

impl Column {
    pub const SORTABLE: [Column; 10] = [
        Column::Spend,
        Column::Roas,
        Column::Cpl,
        Column::Cpa,
        Column::Ctr,
        Column::Cvr,
        Column::Leads,
        Column::Clicks,
        Column::Impressions,
        Column::Name,
    ];

    pub fn metric(self) -> Option<Metric> {
        Some(match self {
            Column::Name => return None,
            Column::Impressions => Metric::Impressions,
            Column::Clicks => Metric::Clicks,
            Column::Ctr => Metric::Ctr,
            Column::Cvr => Metric::Cvr,
            Column::Leads => Metric::Leads,
            Column::Cpl => Metric::Cpl,
            Column::Cpa => Metric::Cpa,
            Column::Spend => Metric::Spend,
            Column::Roas => Metric::Roas,
        })
    }

    pub fn label(self) -> &'static str {
        self.metric().map_or("Channel", Metric::label)
    }
}

/// An action waiting for `y`: the line that restates it and what to send.
pub struct Confirm {
    pub text: String,
    pub command: Command,
}

/// What a text prompt is for.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptKind {
    /// Dismiss a recommendation for the typed duration.
    Snooze { rec: String, what: String },
    /// A channel's new daily budget.
    Budget { campaign: String, channel: String, before: f64, min: f64, max: f64 },
    /// A note on a campaign (and channel) at this moment.
    Note { campaign: String, channel: Option<String> },
    /// A custom window for the analyze view: FROM..TO.
    Window,
}

/// What the analyze view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnalyzeMode {
    #[default]
    Compare,
    Funnel,
    Segments,
    Past,
}

impl AnalyzeMode {
    pub fn label(self) -> &'static str {
        match self {
            AnalyzeMode::Compare => "compare",
            AnalyzeMode::Funnel => "funnel",
            AnalyzeMode::Segments => "segments",
            AnalyzeMode::Past => "vs past",
        }
    }

    fn next(self) -> AnalyzeMode {
        match self {
            AnalyzeMode::Compare => AnalyzeMode::Funnel,
            AnalyzeMode::Funnel => AnalyzeMode::Segments,
            AnalyzeMode::Segments => AnalyzeMode::Past,
            AnalyzeMode::Past => AnalyzeMode::Compare,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// Which alert states the alerts view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    All,
    /// Pending and firing.
    Active,
    Firing,
}

impl StateFilter {
    pub fn label(self) -> &'static str {
        match self {
            StateFilter::All => "all states",
            StateFilter::Active => "pending and firing",
            StateFilter::Firing => "firing",
        }
    }
}

pub struct App {
    pub snap: Arc<Snapshot>,
    pub theme: Theme,
    pub view: View,
    pub help: bool,
    pub quit: bool,
    /// Index into the campaigns on the overview.
    pub campaign_sel: usize,
    /// Row in the (sorted, filtered) channel table.
    pub row: usize,
    pub sort: Column,
    pub descending: bool,
    pub filter: String,
    pub editing_filter: bool,
    pub chart_metric: Metric,
    pub window: Window,
    pub channel: Option<ChannelKey>,
    /// Channel table rows: indexes into the selected campaign's channels, sorted and filtered.
    pub rows: Vec<usize>,
    rows_for: (u64, Column, bool, String, usize),
    /// Rows visible in the last drawn table, for paging.
    pub page: usize,
    pub message: Option<String>,
    /// Row in the alerts view, and the alert on it: the list changes under the cursor, so the
    /// selection follows the alert, not the row.
    pub alert_sel: usize,
    pub alert_key: Option<crate::alert::AlertKey>,
    /// Alerts shown (indexes into the snapshot's alerts, after the filters below).
    pub alert_rows: Vec<usize>,
    /// Least severity shown in the alerts view.
    pub alert_min_severity: Severity,
    pub alert_states: StateFilter,
    /// The duration being typed for a silence, while the prompt is open.
    pub silence_prompt: Option<String>,
    /// Whether the silence being typed covers the alert's whole channel.
    pub silence_channel: bool,
    /// Ring the terminal bell when a critical alert fires.
    pub bell: bool,
    /// A bell is due with the next frame.
    pub ring: bool,
    /// Critical alerts already seen firing (key, fired at), so each rings once.
    seen_critical: std::collections::HashSet<(crate::alert::AlertKey, i64)>,
    /// Who acknowledges alerts from this cockpit (the OS user).
    pub user: String,
    /// Row in the optimize view, and the recommendation on it (the selection follows it).
    pub rec_sel: usize,
    pub rec_id: Option<String>,
    /// The optimize view shows the selected recommendation in full.
    pub preview: bool,
    /// Keys move in the journal (newest first) instead of the recommendations.
    pub journal_focus: bool,
    pub journal_sel: usize,
    pub confirm: Option<Confirm>,
    pub prompt: Option<Prompt>,
    pub analyze_mode: AnalyzeMode,
    pub analyze_window: crate::analyze::WindowKind,
    /// Which earlier campaign (or average) the vs-past mode compares with.
    pub analyze_against: usize,
    /// The last engine notice shown.
    notice_seen: u64,
}

impl App {
    pub fn new(snap: Arc<Snapshot>, theme: Theme) -> Self {
        let mut app = App {
            snap,
            theme,
            view: View::Overview,
            help: false,
            quit: false,
            campaign_sel: 0,
            row: 0,
            sort: Column::Spend,
            descending: true,
            filter: String::new(),
            editing_filter: false,
            chart_metric: Metric::Spend,
            window: Window::Hour,
            channel: None,
            rows: Vec::new(),
            rows_for: (u64::MAX, Column::Name, false, String::new(), usize::MAX),
            page: 10,
            message: None,
            alert_sel: 0,
            alert_key: None,
            alert_rows: Vec::new(),
            alert_min_severity: Severity::Info,
            alert_states: StateFilter::All,
            silence_prompt: None,
            silence_channel: false,
            bell: false,
            ring: false,
            seen_critical: Default::default(),
            user: os_user(),
            rec_sel: 0,
            rec_id: None,
            preview: false,
            journal_focus: false,
            journal_sel: 0,
            confirm: None,
            prompt: None,
            analyze_mode: AnalyzeMode::Compare,
            analyze_window: crate::analyze::WindowKind::Today,
            analyze_against: 0,
            notice_seen: 0,
        };
        app.notice_seen = app.snap.notice.as_ref().map_or(0, |(n, _)| *n);
        app.seen_critical = app.firing_critical();
        app.refresh_alert_rows();
        app.refresh_rows();
        app
    }

    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) {
        self.snap = snap;
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
        let recs = &self.snap.recommendations;
        match self.rec_id.as_ref().and_then(|id| recs.iter().position(|r| &r.id == id)) {
            Some(i) => self.rec_sel = i,
            None => self.rec_sel = self.rec_sel.min(recs.len().saturating_sub(1)),
        }
        self.journal_sel = self.journal_sel.min(self.snap.journal.len().saturating_sub(1));
        if self.campaign_sel >= self.snap.campaigns.len() {
            self.campaign_sel = self.snap.campaigns.len().saturating_sub(1);
        }
        self.refresh_rows();
    }

    /// Firing, unsilenced critical alerts now.
    fn firing_critical(&self) -> std::collections::HashSet<(crate::alert::AlertKey, i64)> {
        self.snap
            .alerts
            .iter()
            .filter(|a| {
                a.state == AlertState::Firing && a.severity == Severity::Crit && self.snap.silence_of(a).is_none()
            })
            .map(|a| (a.key.clone(), a.fired_ms.unwrap_or(a.since_ms)))
            .collect()
    }

    /// Applies the alert filters and keeps the selection on the same alert.
    fn refresh_alert_rows(&mut self) {
        let (min, states) = (self.alert_min_severity, self.alert_states);
        self.alert_rows = (0..self.snap.alerts.len())
            .filter(|i| {
                let a = &self.snap.alerts[*i];
                a.severity >= min
                    && match states {
                        StateFilter::All => true,
                        StateFilter::Active => a.state != AlertState::Resolved,
                        StateFilter::Firing => a.state == AlertState::Firing,
                    }
            })
            .collect();
        let at =
            self.alert_key.as_ref().and_then(|k| self.alert_rows.iter().position(|i| &self.snap.alerts[*i].key == k));
        match at {
            Some(i) => self.alert_sel = i,
            None => self.alert_sel = self.alert_sel.min(self.alert_rows.len().saturating_sub(1)),
        }
    }

    /// The recommendation under the cursor in the optimize view.
    pub fn selected_rec(&self) -> Option<&crate::optimize::recommend::Recommendation> {
        self.snap.recommendations.get(self.rec_sel)
    }

    /// The journal entry under the cursor (the journal lists newest first).
    pub fn selected_entry(&self) -> Option<&crate::optimize::journal::JournalEntry> {
        self.snap.journal.iter().rev().nth(self.journal_sel)
    }

    /// The alert under the cursor in the alerts view.
    pub fn selected_alert(&self) -> Option<&crate::alert::Alert> {
        self.alert_rows.get(self.alert_sel).and_then(|i| self.snap.alerts.get(*i))
    }

    pub fn campaign(&self) -> Option<&Arc<crate::engine::snapshot::CampaignView>> {
        self.snap.campaigns.get(self.campaign_sel)
    }

    pub fn selected_channel(&self) -> Option<&Arc<ChannelView>> {
        let c = self.campaign()?;
        self.rows.get(self.row).and_then(|i| c.channels.get(*i))
    }

    /// Sorts and filters the channel table when its inputs changed (not on every frame).
    pub fn refresh_rows(&mut self) {
        let key = (self.snap.generation, self.sort, self.descending, self.filter.clone(), self.campaign_sel);
        if key == self.rows_for {
            return;
        }
        self.rows_for = key;
        let Some(c) = self.snap.campaigns.get(self.campaign_sel) else {
            self.rows.clear();
            return;
        };
        let needle = self.filter.to_lowercase();
        let rows: Vec<usize> = (0..c.channels.len())
            .filter(|i| {
                let ch = &c.channels[*i];
                needle.is_empty()
                    || ch.name.to_lowercase().contains(&needle)
                    || ch.key.channel.to_lowercase().contains(&needle)
            })
            .collect();
        // Each row's sort value is computed once, not at every comparison.
        let metric = self.sort.metric();
        let mut keyed: Vec<(Option<f64>, usize)> =
            rows.iter().map(|i| (metric.and_then(|m| m.value(&c.channels[*i].totals)), *i)).collect();
        let descending = self.descending;
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
        let rows: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
        // Keep the same channel selected when the order changes.
        let selected = self.channel.clone();
        self.rows = rows;
        if let Some(k) = selected.filter(|k| k.campaign == c.campaign.id) {
            if let Some(pos) = self.rows.iter().position(|i| c.channels[*i].key == k) {
                self.row = pos;
            }
        }
        self.row = self.row.min(self.rows.len().saturating_sub(1));
    }

    /// Applies an action; returns a command for the engine when one is needed.
    pub fn apply(&mut self, action: Action) -> Option<Command> {
        self.message = None;
        if self.help {
            if matches!(action, Action::Help | Action::Back) {
                self.help = false;
            } else if action == Action::Quit {
                self.quit = true;
            }
            return None;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = true,
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
            Action::Silence | Action::SilenceChannel
                if self.view == View::Alerts && self.selected_alert().is_some() =>
            {
                self.silence_prompt = Some("1h".into());
                self.silence_channel = action == Action::SilenceChannel;
            }
            Action::SeverityFilter if self.view == View::Alerts => {
                self.alert_min_severity = match self.alert_min_severity {
                    Severity::Info => Severity::Warn,
                    Severity::Warn => Severity::Crit,
                    Severity::Crit => Severity::Info,
                };
                self.refresh_alert_rows();
            }
            Action::StateFilter if self.view == View::Alerts => {
                self.alert_states = match self.alert_states {
                    StateFilter::All => StateFilter::Active,
                    StateFilter::Active => StateFilter::Firing,
                    StateFilter::Firing => StateFilter::All,
                };
                self.refresh_alert_rows();
            }
            Action::OptimizeView => return self.goto(View::Optimize),
            Action::AnalyzeView => return self.goto(View::Analyze),
            Action::AnalyzeMode if self.view == View::Analyze => self.analyze_mode = self.analyze_mode.next(),
            Action::WindowNext if self.view == View::Analyze => {
                self.analyze_window = self.analyze_window.next();
                return self.analyze_command();
            }
            Action::CustomWindow if self.view == View::Analyze => {
                self.prompt = Some(Prompt { kind: PromptKind::Window, text: String::new() });
            }
            Action::CompareWith if self.view == View::Analyze => {
                self.analyze_mode = AnalyzeMode::Past;
                self.analyze_against += 1;
                return self.analyze_command();
            }
            Action::AddNote => {
                let Some(c) = self.campaign() else {
                    self.message = Some("no campaign to note on".into());
                    return None;
                };
                let campaign = c.campaign.id.clone();
                let channel = match self.view {
                    View::Channel => self.channel.as_ref().map(|k| k.channel.clone()),
                    View::Campaign => self.selected_channel().map(|ch| ch.key.channel.clone()),
                    _ => None,
                };
                self.prompt = Some(Prompt { kind: PromptKind::Note { campaign, channel }, text: String::new() });
            }
            Action::ApplyRec if self.view == View::Optimize => {
                let Some(r) = self.selected_rec() else {
                    self.message = Some("no recommendation to apply".into());
                    return None;
                };
                if r.info_only || r.changes.is_empty() {
                    self.message = Some(format!("nothing to apply: {}", r.effect));
                    return None;
                }
                let what: Vec<String> = r.changes.iter().map(|c| c.describe()).collect();
                self.confirm = Some(Confirm {
                    text: format!("{} on {}: {} ({})", r.kind.label(), r.campaign, what.join("; "), r.effect),
                    command: Command::Apply {
                        campaign: r.campaign.clone(),
                        changes: r.changes.clone(),
                        recommendation: Some(format!("{}: {}", r.id, r.effect)),
                        by: self.user.clone(),
                    },
                });
            }
            Action::Undo if self.view == View::Optimize => {
                let campaign = self.selected_rec().map(|r| r.campaign.clone());
                let target = if self.journal_focus {
                    self.selected_entry()
                } else {
                    crate::optimize::journal::last_undoable(&self.snap.journal, None)
                };
                let Some(e) = target else {
                    self.message = Some("nothing to undo: no applied action in the journal".into());
                    return None;
                };
                if !e.undoable() {
                    self.message = Some(format!("#{} cannot be undone: {}", e.id, e.outcome.label()));
                    return None;
                }
                let _ = campaign;
                self.confirm = Some(Confirm {
                    text: format!("undo #{} on {}: {}", e.id, e.campaign, e.inverse.describe()),
                    command: Command::Undo { entry: Some(e.id), campaign: None, by: self.user.clone() },
                });
            }
            Action::Snooze if self.view == View::Optimize => {
                let r = self.selected_rec()?;
                self.prompt = Some(Prompt {
                    kind: PromptKind::Snooze { rec: r.id.clone(), what: format!("{} {}", r.kind.label(), r.campaign) },
                    text: "4h".into(),
                });
            }
            Action::JournalFocus if self.view == View::Optimize => {
                self.journal_focus = !self.journal_focus;
                self.journal_sel = 0;
            }
            Action::PauseChannel if self.view == View::Campaign => {
                let ch = self.selected_channel()?.clone();
                let paused = ch.status == Some(crate::domain::ChannelStatus::Paused);
                let action = if paused { ControlAction::Resume } else { ControlAction::Pause };
                let change = crate::optimize::recommend::Change {
                    channel: ch.key.channel.clone(),
                    action,
                    value: None,
                    variant: None,
                    before: ch.daily_budget,
                    after: ch.daily_budget,
                };
                self.confirm = Some(Confirm {
                    text: format!("{} on {}", change.describe(), ch.key.campaign),
                    command: Command::Apply {
                        campaign: ch.key.campaign.clone(),
                        changes: vec![change],
                        recommendation: None,
                        by: self.user.clone(),
                    },
                });
            }
            Action::SetBudget if self.view == View::Campaign => {
                let ch = self.selected_channel()?.clone();
                let plan = self.campaign()?.campaign.channel(&ch.key.channel).cloned()?;
                self.prompt = Some(Prompt {
                    kind: PromptKind::Budget {
                        campaign: ch.key.campaign.clone(),
                        channel: ch.key.channel.clone(),
                        before: ch.daily_budget,
                        min: plan.min_budget.unwrap_or(0.0),
                        max: plan.max_budget.unwrap_or(f64::INFINITY),
                    },
                    text: format!("{}", ch.daily_budget.round()),
                });
            }
            Action::Ack if self.view == View::Alerts => {
                let Some(alert) = self.selected_alert().cloned() else {
                    self.message = Some("no alert selected to acknowledge".into());
                    return None;
                };
                if alert.state != crate::alert::AlertState::Firing {
                    self.message = Some("only a firing alert can be acknowledged".into());
                    return None;
                }
                self.message = Some(format!("acknowledged {} as {}", alert.key.rule, self.user));
                return Some(Command::Ack { key: alert.key.clone(), by: self.user.clone() });
            }
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom
                if self.view == View::Analyze =>
            {
                // The campaign analysed: the overview's selection.
                let n = self.snap.campaigns.len();
                let i = self.campaign_sel as isize;
                let next = match action {
                    Action::Up | Action::PageUp => i - 1,
                    Action::Down | Action::PageDown => i + 1,
                    Action::Top => 0,
                    _ => n as isize - 1,
                };
                self.campaign_sel = next.clamp(0, n.saturating_sub(1) as isize) as usize;
                self.analyze_against = 0;
                self.row = 0;
                return self.analyze_command();
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page.max(1) as isize)),
            Action::PageDown => self.move_by(self.page.max(1) as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::Open => match self.view {
                View::Analyze => return self.goto(View::Campaign),
                View::Optimize => self.preview = !self.preview,
                View::Overview => return self.goto(View::Campaign),
                View::Campaign => return self.goto(View::Channel),
                View::Channel => {}
                View::Alerts => {
                    // Jump to the channel the alert is about.
                    let a = self.selected_alert()?;
                    let key = ChannelKey::new(&a.key.campaign, &a.key.channel);
                    self.campaign_sel = self.snap.campaigns.iter().position(|c| c.campaign.id == key.campaign)?;
                    self.filter.clear();
                    self.channel = Some(key);
                    // Also puts the campaign table's cursor on that channel, for Esc.
                    self.refresh_rows();
                    return self.goto(View::Channel);
                }
            },
            Action::Back => match self.view {
                View::Campaign if !self.filter.is_empty() => {
                    self.filter.clear();
                    self.refresh_rows();
                }
                View::Campaign => return self.goto(View::Overview),
                View::Channel => return self.goto(View::Campaign),
                View::Alerts => return self.goto(View::Overview),
                View::Optimize if self.preview || self.journal_focus => {
                    self.preview = false;
                    self.journal_focus = false;
                }
                View::Optimize | View::Analyze => return self.goto(View::Overview),
                View::Overview => {}
            },
            Action::Filter if self.view == View::Campaign => self.editing_filter = true,
            Action::SortNext if self.view == View::Campaign => {
                let i = Column::SORTABLE.iter().position(|c| *c == self.sort).unwrap_or(0);
                self.sort = Column::SORTABLE[(i + 1) % Column::SORTABLE.len()];
                self.descending = self.sort != Column::Name;
                self.message = Some(format!("sorted by {}", self.sort.label()));
                self.refresh_rows();
            }
            Action::SortReverse if self.view == View::Campaign => {
                self.descending = !self.descending;
                self.refresh_rows();
            }
            Action::MetricNext | Action::MetricPrev if self.view == View::Channel => {
                let all = Metric::ALL;
                let i = all.iter().position(|m| *m == self.chart_metric).unwrap_or(0);
                let n = all.len();
                self.chart_metric = all[if action == Action::MetricNext { (i + 1) % n } else { (i + n - 1) % n }];
            }
            Action::WindowNext if self.view == View::Channel => {
                self.window = self.window.next();
                return self.series_command();
            }
            _ => {}
        }
        None
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

    /// A key typed at the silence prompt: Enter silences the selected alert for the typed
    /// duration (campaign time), Esc cancels.
    pub fn silence_key(&mut self, key: crossterm::event::KeyEvent) -> Option<Command> {
        use crossterm::event::KeyCode;
        let text = self.silence_prompt.as_mut()?;
        match key.code {
            KeyCode::Esc => self.silence_prompt = None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if c.is_ascii_alphanumeric() || c == ' ' => text.push(c),
            KeyCode::Enter => {
                let d = match humantime::parse_duration(text.trim()) {
                    Ok(d) if !d.is_zero() => d,
                    _ => {
                        self.message = Some(format!("'{text}' is not a duration: write e.g. 30m, 2h or 1d"));
                        self.silence_prompt = None;
                        return None;
                    }
                };
                self.silence_prompt = None;
                let a = self.selected_alert()?;
                let mut key = a.key.clone();
                let what = if self.silence_channel {
                    // An empty rule matches every rule of the channel.
                    key.rule.clear();
                    "every alert".to_string()
                } else {
                    key.rule.clone()
                };
                let on = if key.channel.is_empty() { key.campaign.clone() } else { key.channel.clone() };
                self.message = Some(format!("silenced {what} on {on} for {}", humantime::format_duration(d)));
                return Some(Command::Silence { key, for_ms: d.as_millis() as i64, by: self.user.clone() });
            }
            _ => {}
        }
        None
    }

    /// A character typed while editing the filter; Enter or Esc ends editing.
    pub fn filter_key(&mut self, key: crossterm::event::KeyEvent) {
        use crossterm::event::KeyCode;
        match key.code {
            KeyCode::Enter => self.editing_filter = false,
            KeyCode::Esc => {
                self.editing_filter = false;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => {}
        }
        self.row = 0;
        self.refresh_rows();
    }

    fn move_by(&mut self, d: isize) {
        let (cur, len) = match self.view {
            View::Overview => (&mut self.campaign_sel, self.snap.campaigns.len()),
            View::Campaign => (&mut self.row, self.rows.len()),
            View::Alerts => (&mut self.alert_sel, self.alert_rows.len()),
            View::Optimize if self.journal_focus => (&mut self.journal_sel, self.snap.journal.len()),
            View::Optimize => (&mut self.rec_sel, self.snap.recommendations.len()),
            View::Channel | View::Analyze => return,
        };
        let next = (*cur as isize).saturating_add(d).clamp(0, len.saturating_sub(1) as isize);
        *cur = next as usize;
        if self.view == View::Overview {
            self.row = 0;
            self.filter.clear();
            self.refresh_rows();
        } else if self.view == View::Campaign {
            self.channel = self.selected_channel().map(|c| c.key.clone());
        } else if self.view == View::Alerts {
            self.alert_key = self.selected_alert().map(|a| a.key.clone());
        } else if self.view == View::Optimize && !self.journal_focus {
            self.rec_id = self.selected_rec().map(|r| r.id.clone());
        }
    }

    /// A key while a confirmation is open: `y` sends, anything else cancels.
    pub fn confirm_key(&mut self, key: crossterm::event::KeyEvent) -> Option<Command> {
        use crossterm::event::KeyCode;
        let c = self.confirm.take()?;
        if key.code == KeyCode::Char('y') {
            self.message = Some(format!("sent: {}", c.text));
            return Some(c.command);
        }
        self.message = Some("cancelled: nothing sent".into());
        None
    }

    /// A key typed at a prompt: Enter goes on (to a confirmation for a budget), Esc cancels.
    pub fn prompt_key(&mut self, key: crossterm::event::KeyEvent) -> Option<Command> {
        use crossterm::event::KeyCode;
        let p = self.prompt.as_mut()?;
        match key.code {
            KeyCode::Esc => {
                self.prompt = None;
                self.message = Some("cancelled".into());
            }
            KeyCode::Backspace => {
                p.text.pop();
            }
            KeyCode::Char(c) if matches!(p.kind, PromptKind::Note { .. } | PromptKind::Window) && !c.is_control() => {
                p.text.push(c)
            }
            KeyCode::Char(c) if c.is_ascii_alphanumeric() || c == '.' || c == ' ' => p.text.push(c),
            KeyCode::Enter => {
                let p = self.prompt.take()?;
                match p.kind {
                    PromptKind::Snooze { rec, what } => match humantime::parse_duration(p.text.trim()) {
                        Ok(d) if !d.is_zero() => {
                            self.message = Some(format!("dismissed {what} for {}", humantime::format_duration(d)));
                            return Some(Command::Snooze { recommendation: rec, for_ms: d.as_millis() as i64 });
                        }
                        _ => self.message = Some(format!("'{}' is not a duration: write e.g. 4h or 1d", p.text)),
                    },
                    PromptKind::Window => {
                        let c = self.campaign()?;
                        match crate::analyze::parse_span(&p.text, &c.campaign, self.snap.now_ms) {
                            Ok(span) => {
                                self.analyze_window = crate::analyze::WindowKind::Custom(span);
                                return self.analyze_command();
                            }
                            Err(e) => self.message = Some(e),
                        }
                    }
                    PromptKind::Note { campaign, channel } => {
                        if p.text.trim().is_empty() {
                            self.message = Some("an empty note is not saved".into());
                            return None;
                        }
                        return Some(Command::Note { campaign, channel, text: p.text, by: self.user.clone() });
                    }
                    PromptKind::Budget { campaign, channel, before, min, max } => {
                        let value: f64 = match p.text.trim().replace(',', "").parse() {
                            Ok(v) if (min..=max).contains(&v) => v,
                            _ => {
                                let range = if max.is_finite() {
                                    format!("{}–{}", min, max)
                                } else {
                                    format!("at least {min}")
                                };
                                self.message = Some(format!("'{}' is not a budget for {channel}: {range}", p.text));
                                return None;
                            }
                        };
                        let change = crate::optimize::recommend::Change {
                            channel: channel.clone(),
                            action: ControlAction::SetBudget,
                            value: Some(value),
                            variant: None,
                            before,
                            after: value,
                        };
                        self.confirm = Some(Confirm {
                            text: format!("set {} on {campaign}", change.describe()),
                            command: Command::Apply {
                                campaign,
                                changes: vec![change],
                                recommendation: None,
                                by: self.user.clone(),
                            },
                        });
                    }
                }
            }
            _ => {}
        }
        None
    }

    fn goto(&mut self, view: View) -> Option<Command> {
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
        self.editing_filter = false;
        if view == View::Alerts {
            self.alert_key = self.selected_alert().map(|a| a.key.clone());
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

    /// Asks the engine for the analysis of the selected campaign.
    pub fn analyze_command(&self) -> Option<Command> {
        let c = self.campaign()?;
        Some(Command::Analyze {
            campaign: c.campaign.id.clone(),
            window: self.analyze_window,
            against: self.analyze_against,
        })
    }

    fn series_command(&self) -> Option<Command> {
        self.channel.clone().map(|key| Command::Series { key, window: self.window })
    }
}
