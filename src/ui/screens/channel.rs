//! The channel screen: the chart of one KPI over a window, and the channel's figures.

use super::Handled;
use crate::domain::Metric;
use crate::engine::snapshot::Window;
use crate::ui::app::{App, View};
use crate::ui::keys::Action;

/// What the channel screen charts.
#[derive(Debug, Clone)]
pub struct ChannelScreen {
    pub metric: Metric,
    pub window: Window,
}

impl Default for ChannelScreen {
    fn default() -> Self {
        ChannelScreen { metric: Metric::Spend, window: Window::Hour }
    }
}

impl App {
    pub(crate) fn channel_action(&mut self, action: Action) -> Handled {
        match action {
            Action::MetricNext | Action::MetricPrev => {
                let all = Metric::ALL;
                let i = all.iter().position(|m| *m == self.chart.metric).unwrap_or(0);
                let n = all.len();
                self.chart.metric = all[if action == Action::MetricNext { (i + 1) % n } else { (i + n - 1) % n }];
                Handled::Yes(None)
            }
            Action::WindowNext => {
                self.chart.window = self.chart.window.next();
                self.series_command().into()
            }
            Action::Back => self.goto(View::Campaign).into(),
            // The chart has no rows to move in.
            Action::Open
            | Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => Handled::Yes(None),
            _ => Handled::No,
        }
    }

    /// Asks the engine for the chart series of the channel on screen.
    pub(crate) fn series_command(&self) -> Option<crate::engine::Command> {
        self.channel.clone().map(|key| crate::engine::Command::Series { key, window: self.chart.window })
    }
}
