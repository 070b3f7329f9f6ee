//! The alerts screen: alerts filtered by severity and state, the cursor following an alert as
//! the list changes under it; acknowledge, silence, and jump to the alert's channel.

use super::{Handled, move_cursor};
use crate::alert::{Alert, AlertKey, AlertState, Severity};
use crate::domain::ChannelKey;
use crate::engine::Command;
use crate::ui::app::{App, Modal, Prompt, PromptKind, View};
use crate::ui::keys::Action;

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

#[derive(Debug, Clone)]
pub struct AlertsScreen {
    /// Row in the list, and the alert on it: the list changes under the cursor, so the
    /// selection follows the alert, not the row.
    pub sel: usize,
    pub key: Option<AlertKey>,
    /// Alerts shown (indexes into the snapshot's alerts, after the filters below).
    pub rows: Vec<usize>,
    /// Least severity shown.
    pub min_severity: Severity,
    pub states: StateFilter,
    /// The selected alert read in full: its whole explanation and contingency plan.
    pub reading: bool,
}

impl Default for AlertsScreen {
    fn default() -> Self {
        AlertsScreen {
            sel: 0,
            key: None,
            rows: Vec::new(),
            min_severity: Severity::Info,
            states: StateFilter::All,
            reading: false,
        }
    }
}

impl App {
    pub(crate) fn alerts_action(&mut self, action: Action) -> Handled {
        match action {
            Action::Silence | Action::SilenceChannel if self.selected_alert().is_some() => {
                let whole_channel = action == Action::SilenceChannel;
                self.modal =
                    Some(Modal::Prompt(Prompt { kind: PromptKind::Silence { whole_channel }, text: "1h".into() }));
            }
            Action::SeverityFilter => {
                self.alerts.min_severity = match self.alerts.min_severity {
                    Severity::Info => Severity::Warn,
                    Severity::Warn => Severity::Crit,
                    Severity::Crit => Severity::Info,
                };
                self.refresh_alert_rows();
            }
            Action::StateFilter => {
                self.alerts.states = match self.alerts.states {
                    StateFilter::All => StateFilter::Active,
                    StateFilter::Active => StateFilter::Firing,
                    StateFilter::Firing => StateFilter::All,
                };
                self.refresh_alert_rows();
            }
            Action::AlertDetail => self.alerts.reading = !self.alerts.reading,
            Action::Back if self.alerts.reading => self.alerts.reading = false,
            Action::Ack => return self.ack().into(),
            Action::Open => return self.open_alert_channel().into(),
            Action::Back => return self.goto(View::Overview).into(),
            _ => match self.step_of(action) {
                Some(d) => {
                    move_cursor(&mut self.alerts.sel, self.alerts.rows.len(), d);
                    self.alerts.key = self.selected_alert().map(|a| a.key.clone());
                }
                None => return Handled::No,
            },
        }
        Handled::Yes(None)
    }

    fn ack(&mut self) -> Option<Command> {
        let Some(alert) = self.selected_alert().cloned() else {
            self.message = Some("no alert selected to acknowledge".into());
            return None;
        };
        if alert.state != AlertState::Firing {
            self.message = Some("only a firing alert can be acknowledged".into());
            return None;
        }
        self.message = Some(format!("acknowledged {} as {}", alert.key.rule, self.user));
        Some(Command::Ack { key: alert.key.clone(), by: self.user.clone() })
    }

    /// Enter: the channel the alert is about.
    fn open_alert_channel(&mut self) -> Option<Command> {
        let a = self.selected_alert()?;
        let key = ChannelKey::new(&a.key.campaign, &a.key.channel);
        self.campaign_sel = self.snap.campaigns.iter().position(|c| c.campaign.id == key.campaign)?;
        self.table.filter.clear();
        self.channel = Some(key);
        // Also puts the campaign table's cursor on that channel, for Esc.
        self.refresh_rows();
        self.goto(View::Channel)
    }

    /// Enter at the silence prompt: silences the selected alert (or its whole channel) for
    /// the typed duration of campaign time.
    pub(crate) fn silence(&mut self, text: &str, whole_channel: bool) -> Option<Command> {
        let d = match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.message = Some(format!("'{text}' is not a duration: write e.g. 30m, 2h or 1d"));
                return None;
            }
        };
        let a = self.selected_alert()?;
        let mut key = a.key.clone();
        let what = if whole_channel {
            // An empty rule matches every rule of the channel.
            key.rule.clear();
            "every alert".to_string()
        } else {
            key.rule.clone()
        };
        let on = if key.channel.is_empty() { key.campaign.clone() } else { key.channel.clone() };
        self.message = Some(format!("silenced {what} on {on} for {}", humantime::format_duration(d)));
        Some(Command::Silence { key, for_ms: d.as_millis() as i64, by: self.user.clone() })
    }

    /// The alert under the cursor in the alerts view.
    pub fn selected_alert(&self) -> Option<&Alert> {
        self.alerts.rows.get(self.alerts.sel).and_then(|i| self.snap.alerts.get(*i))
    }

    /// Applies the alert filters and keeps the selection on the same alert.
    pub(crate) fn refresh_alert_rows(&mut self) {
        let s = &mut self.alerts;
        let (min, states) = (s.min_severity, s.states);
        let alerts = &self.snap.alerts;
        s.rows = (0..alerts.len())
            .filter(|i| {
                let a = &alerts[*i];
                a.severity >= min
                    && match states {
                        StateFilter::All => true,
                        StateFilter::Active => a.state != AlertState::Resolved,
                        StateFilter::Firing => a.state == AlertState::Firing,
                    }
            })
            .collect();
        let at = s.key.as_ref().and_then(|k| s.rows.iter().position(|i| &alerts[*i].key == k));
        match at {
            Some(i) => s.sel = i,
            None => s.sel = s.sel.min(s.rows.len().saturating_sub(1)),
        }
    }
}
