//! Silences: "don't tell me about this until then". A matcher on campaign, channel and rule
//! (empty = any) with a required expiry; an expired silence lets the alert through again.

use super::state::{Alert, AlertKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Unique per silence: creation time and matcher.
    pub id: String,
    pub campaign: String,
    /// Empty matches every channel.
    #[serde(default)]
    pub channel: String,
    /// Empty matches every rule.
    #[serde(default)]
    pub rule: String,
    pub until_ms: i64,
    pub by: String,
    pub created_ms: i64,
}

impl Silence {
    /// A silence for exactly the alert `key`, from `now` for `for_ms`.
    pub fn for_alert(key: &AlertKey, now: i64, for_ms: i64, by: &str) -> Silence {
        Silence {
            id: format!("{now}:{}/{}/{}", key.campaign, key.channel, key.rule),
            campaign: key.campaign.clone(),
            channel: key.channel.clone(),
            rule: key.rule.clone(),
            until_ms: now + for_ms.max(0),
            by: by.to_string(),
            created_ms: now,
        }
    }

    pub fn matches(&self, key: &AlertKey) -> bool {
        self.campaign == key.campaign
            && (self.channel.is_empty() || self.channel == key.channel)
            && (self.rule.is_empty() || self.rule == key.rule)
    }

    pub fn active(&self, now: i64) -> bool {
        now < self.until_ms
    }
}

/// The active silence covering `alert` at `now`, if any.
pub fn silenced_by<'a>(silences: &'a [Silence], alert: &Alert, now: i64) -> Option<&'a Silence> {
    silences.iter().find(|s| s.active(now) && s.matches(&alert.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_expires() {
        let key = AlertKey { campaign: "c".into(), channel: "x".into(), rule: "health".into() };
        let s = Silence::for_alert(&key, 1_000, crate::domain::time::HOUR_MS, "oncall");
        assert!(s.matches(&key) && s.active(1_000) && s.active(3_600_999));
        assert!(!s.active(3_601_000), "an expired silence lets the alert through");
        assert!(!s.matches(&AlertKey { channel: "y".into(), ..key.clone() }));
        let wide = Silence { channel: String::new(), rule: String::new(), ..s };
        assert!(wide.matches(&AlertKey { channel: "y".into(), rule: "kpi: ctr >= 0.01".into(), ..key }));
    }
}
