//! Alert states and silences, one record each, written as they change.

use super::{Result, Store};

impl Store {
    pub(super) fn alert_key(k: &crate::alert::AlertKey) -> Vec<u8> {
        [k.campaign.as_bytes(), &[0], k.channel.as_bytes(), &[0], k.rule.as_bytes()].concat()
    }

    /// Saves an alert's state (flushed: an acknowledged state change must survive a crash).
    pub fn put_alert(&self, a: &crate::alert::Alert) -> Result<()> {
        self.write("alerts", &Self::alert_key(&a.key), Some(&Self::encode(a))).map(drop)
    }

    pub fn remove_alert(&self, k: &crate::alert::AlertKey) -> Result<()> {
        self.write("alerts", &Self::alert_key(k), None).map(drop)
    }

    /// Every alert kept, by campaign. Read in two halves: a cockpit whose sources all failed
    /// keeps one per channel, and the first frame waits for them.
    pub fn alerts(&self) -> Result<Vec<crate::alert::Alert>> {
        self.all_in_halves(&self.t()?.alerts, "alerts")
    }

    /// Saves a silence and flushes: a silence the user was told about must survive a crash.
    pub fn put_silence(&self, s: &crate::alert::Silence) -> Result<()> {
        self.write("silences", s.id.as_bytes(), Some(&Self::encode(s)))?;
        self.flush()
    }

    pub fn remove_silence(&self, id: &str) -> Result<()> {
        self.write("silences", id.as_bytes(), None).map(drop)
    }

    pub fn silences(&self) -> Result<Vec<crate::alert::Silence>> {
        self.all(&self.t()?.silences, "silences")
    }
}
