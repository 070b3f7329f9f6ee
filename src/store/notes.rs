//! Notes on campaign timelines and snoozed recommendations.

use super::{Result, Store};

impl Store {
    /// Saves an annotation (flushed: a note the user typed must survive a crash). Keyed by
    /// campaign, then time, so a campaign's notes come out in order.
    pub fn put_note(&self, n: &crate::domain::Note) -> Result<()> {
        let key = [n.campaign.as_bytes(), &[0], &n.at_ms.to_be_bytes(), &n.id.to_be_bytes()].concat();
        self.write("notes", &key, Some(&Self::encode(n)))?;
        self.flush()
    }

    /// The annotations of one campaign (every campaign when `None`), oldest first.
    pub fn notes(&self, campaign: Option<&str>) -> Result<Vec<crate::domain::Note>> {
        let t = self.t()?;
        let iter = match campaign {
            Some(c) => t.notes.scan_prefix([c.as_bytes(), &[0]].concat()),
            None => t.notes.iter(),
        };
        let mut out = iter
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                self.decode("notes", &k, &v)
            })
            .collect::<Result<Vec<crate::domain::Note>>>()?;
        out.sort_by_key(|n| (n.at_ms, n.id));
        Ok(out)
    }

    /// Hides a recommendation until `until_ms` (campaign time).
    pub fn put_snooze(&self, rec_id: &str, until_ms: i64) -> Result<()> {
        self.write("snoozes", rec_id.as_bytes(), Some(&until_ms.to_be_bytes()))?;
        self.flush()
    }

    /// Snoozed recommendations: (id, until).
    pub fn snoozes(&self) -> Result<Vec<(String, i64)>> {
        self.t()?
            .snoozes
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                let until = v.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(0);
                Ok((String::from_utf8_lossy(&k).into_owned(), until))
            })
            .collect()
    }
}
