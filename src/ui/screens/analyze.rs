//! The analyze screen: the selected campaign over a window, compared with the window before,
//! as a funnel, by segment, or against earlier campaigns.

use super::Handled;
use crate::analyze::WindowKind;
use crate::engine::Command;
use crate::ui::app::{App, Modal, Prompt, PromptKind, View};
use crate::ui::keys::Action;

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

#[derive(Debug, Clone)]
pub struct AnalyzeScreen {
    pub mode: AnalyzeMode,
    pub window: WindowKind,
    /// Which earlier campaign (or average) the vs-past mode compares with.
    pub against: usize,
}

impl Default for AnalyzeScreen {
    fn default() -> Self {
        AnalyzeScreen { mode: AnalyzeMode::Compare, window: WindowKind::Today, against: 0 }
    }
}

impl App {
    pub(crate) fn analyze_action(&mut self, action: Action) -> Handled {
        match action {
            Action::AnalyzeMode => self.analyze.mode = self.analyze.mode.next(),
            Action::WindowNext => {
                self.analyze.window = self.analyze.window.next();
                return self.analyze_command().into();
            }
            Action::CustomWindow => {
                self.modal = Some(Modal::Prompt(Prompt { kind: PromptKind::Window, text: String::new() }))
            }
            Action::CompareWith => {
                self.analyze.mode = AnalyzeMode::Past;
                self.analyze.against += 1;
                return self.analyze_command().into();
            }
            Action::Open => return self.goto(View::Campaign).into(),
            Action::Back => return self.goto(View::Overview).into(),
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => {
                // The campaign analysed: the overview's selection, a campaign at a time.
                let n = self.snap.campaigns.len();
                let i = self.campaign_sel as isize;
                let next = match action {
                    Action::Up | Action::PageUp => i - 1,
                    Action::Down | Action::PageDown => i + 1,
                    Action::Top => 0,
                    _ => n as isize - 1,
                };
                self.campaign_sel = next.clamp(0, n.saturating_sub(1) as isize) as usize;
                self.analyze.against = 0;
                self.table.row = 0;
                return self.analyze_command().into();
            }
            _ => return Handled::No,
        }
        Handled::Yes(None)
    }

    /// Enter at the window prompt: FROM..TO in the campaign's time zone.
    pub(crate) fn custom_window(&mut self, text: &str) -> Option<Command> {
        let c = self.campaign()?;
        match crate::analyze::parse_span(text, &c.campaign, self.snap.now_ms) {
            Ok(span) => {
                self.analyze.window = WindowKind::Custom(span);
                self.analyze_command()
            }
            Err(e) => {
                self.message = Some(e);
                None
            }
        }
    }

    /// Asks the engine for the analysis of the selected campaign.
    pub fn analyze_command(&self) -> Option<Command> {
        let c = self.campaign()?;
        Some(Command::Analyze {
            campaign: c.campaign.id.clone(),
            window: self.analyze.window,
            against: self.analyze.against,
        })
    }
}
