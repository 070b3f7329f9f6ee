//! The campaigns tree (plans as readable JSON) and each campaign's stored totals.

use super::{Result, Store};
use crate::domain::{Campaign, CampaignTotals};

impl Store {
    pub fn put_campaign(&self, c: &Campaign) -> Result<()> {
        self.write("campaigns", c.id.as_bytes(), Some(&Self::encode(c)))?;
        self.flush()?;
        self.write_manifest()
    }

    pub fn campaign(&self, id: &str) -> Result<Option<Campaign>> {
        match self.t()?.campaigns.get(id.as_bytes()).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(self.decode("campaigns", id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Every campaign, ordered by id.
    pub fn campaigns(&self) -> Result<Vec<Campaign>> {
        self.all_in_halves(&self.t()?.campaigns, "campaigns")
    }

    /// Removes a campaign with everything recorded for it. Returns whether it existed.
    pub fn remove_campaign(&self, id: &str) -> Result<bool> {
        self.hours.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| k.campaign != id);
        let existed = self.write("campaigns", id.as_bytes(), None)?;
        self.write("campaign_totals", id.as_bytes(), None)?;
        let mut prefix = id.as_bytes().to_vec();
        prefix.push(0);
        let t = self.t()?;
        for name in [
            "channels",
            "samples",
            "rollups",
            "segment_rollups",
            "sample_hours",
            "rollup_days",
            "segment_rollup_days",
            "period_rows",
            "alerts",
            "notes",
        ] {
            let tree = t.by_name(name);
            let mut batch = sled::Batch::default();
            for kv in tree.scan_prefix(&prefix).keys() {
                let k = kv.map_err(|e| self.err(e))?;
                self.logged(name, &k, None);
                batch.remove(k);
            }
            tree.apply_batch(batch).map_err(|e| self.err(e))?;
        }
        self.flush()?;
        self.write_manifest()?;
        Ok(existed)
    }

    /// Every campaign's stored totals (see `CampaignTotals`).
    pub fn campaign_totals(&self) -> Result<std::collections::HashMap<String, CampaignTotals>> {
        let t = self.t()?;
        let mut out = std::collections::HashMap::with_capacity(t.campaign_totals.len());
        for kv in t.campaign_totals.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.insert(String::from_utf8_lossy(&k).into_owned(), self.decode("campaign_totals", &k, &v)?);
        }
        Ok(out)
    }

    /// Writes a campaign's totals on their own (when the ones stored no longer sum up its
    /// cursors; `ingest_with_totals` writes them as the cursors move).
    pub fn put_campaign_totals(&self, id: &str, totals: &CampaignTotals) -> Result<()> {
        self.write("campaign_totals", id.as_bytes(), Some(&Self::encode(totals))).map(drop)
    }
}
