//! What a channel is doing and what can be asked of it: the words shared by the stats protocol
//! (a channel's status), the recommendations (the action they propose) and the control client.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelStatus {
    Active,
    Paused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    Pause,
    Resume,
    SetBudget,
    /// End an A/B test: all traffic to `variant`.
    DeclareWinner,
}
