//! The name of one channel across campaigns: what every layer (engine, store, screens, reports)
//! uses to point at a channel.

/// Identifies a channel across campaigns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ChannelKey {
    pub campaign: String,
    pub channel: String,
}

impl ChannelKey {
    pub fn new(campaign: &str, channel: &str) -> Self {
        ChannelKey { campaign: campaign.to_string(), channel: channel.to_string() }
    }
}

impl std::fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.campaign, self.channel)
    }
}
