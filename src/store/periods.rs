//! The periods of `rows` sources (a platform's rows per day or hour): each (channel, period)
//! is kept, so that a restated day replaces what was known of it and the channel's total is
//! the sum of its periods, across restarts.

use super::{Result, Store, key_at, prefix};
use crate::domain::{ChannelKey, Counters};
use std::collections::{BTreeMap, HashMap};

impl Store {
    /// Writes a channel's changed periods and removes those no longer reported.
    pub fn put_periods(&self, key: &ChannelKey, changed: &[(i64, Counters)], removed: &[i64]) -> Result<()> {
        for (at, c) in changed {
            self.write("period_rows", &key_at(key, *at), Some(&Self::encode(c)))?;
        }
        for at in removed {
            self.write("period_rows", &key_at(key, *at), None)?;
        }
        Ok(())
    }

    /// One channel's periods, oldest first.
    pub fn periods(&self, key: &ChannelKey) -> Result<BTreeMap<i64, Counters>> {
        let t = self.t()?;
        let p = prefix(key);
        let mut out = BTreeMap::new();
        for kv in t.period_rows.scan_prefix(&p) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.insert(super::samples::key_time(&k, p.len()), self.decode("period_rows", &k, &v)?);
        }
        Ok(out)
    }

    /// A `rows` channel's periods starting in `[from, to)`, oldest first, or `None` for a
    /// channel with no period at all (its source gives cumulative counters). These are its
    /// figures on the days or hours they describe, each as last restated: they stand in for
    /// the channel's hourly rollups (see `rollups`).
    pub fn period_figures(&self, key: &ChannelKey, from: i64, to: i64) -> Result<Option<Vec<(i64, Counters)>>> {
        let t = self.t()?;
        let p = prefix(key);
        if t.period_rows.scan_prefix(&p).next().is_none() {
            return Ok(None);
        }
        let (from, to) = (from.max(0), to.max(0));
        let mut out = Vec::new();
        for kv in t.period_rows.range(key_at(key, from)..key_at(key, to)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push((super::samples::key_time(&k, p.len()), self.decode("period_rows", &k, &v)?));
        }
        Ok(Some(out))
    }

    /// Every channel's periods (the channels of `rows` sources; empty for the others).
    pub fn all_periods(&self) -> Result<HashMap<ChannelKey, BTreeMap<i64, Counters>>> {
        let t = self.t()?;
        let mut out: HashMap<ChannelKey, BTreeMap<i64, Counters>> = HashMap::new();
        for kv in t.period_rows.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let Some(split) = k.len().checked_sub(8) else { continue };
            let mut parts = k[..split].split(|b| *b == 0);
            let (Some(c), Some(ch)) = (parts.next(), parts.next()) else { continue };
            let key = ChannelKey::new(&String::from_utf8_lossy(c), &String::from_utf8_lossy(ch));
            let at = super::samples::key_time(&k, split);
            out.entry(key).or_default().insert(at, self.decode("period_rows", &k, &v)?);
        }
        Ok(out)
    }
}
