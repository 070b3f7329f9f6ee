//! The schema version and its migrations, and the manifest written beside the database: what
//! must be in it, so that a file that lost records is refused rather than read as empty.

use super::{Result, SCHEMA_VERSION, Store, StoreError};

impl Store {
    pub(super) fn check_schema(&self, had_data: bool) -> Result<()> {
        let found = self.t()?.meta.get("schema").map_err(|e| self.err(e))?;
        match found {
            None if had_data => Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: "its schema record is missing: the file was truncated or overwritten".into(),
            }),
            None => {
                self.t()?.meta.insert("schema", &SCHEMA_VERSION.to_be_bytes()).map_err(|e| self.err(e))?;
                self.flush()
            }
            Some(v) => {
                let bytes: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: "the schema version record is malformed".into(),
                })?;
                let found = u32::from_be_bytes(bytes);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::FutureSchema { path: self.path.clone(), found, supported: SCHEMA_VERSION });
                }
                // 1 → 2 added the packed trees, filled by `pack` as blocks close; 2 → 3 writes
                // the numbers compactly (see `codec`); 3 → 4 packs the blocks tighter. The new version is marked first, so that
                // an older cockpit refuses the file from then on; a migration cut short is
                // finished on the next open (either form reads meanwhile).
                if found < SCHEMA_VERSION {
                    self.write("meta", b"migrating", Some(&found.to_be_bytes()))?;
                    self.write("meta", b"schema", Some(&SCHEMA_VERSION.to_be_bytes()))?;
                    self.flush()?;
                }
                if self.t()?.meta.contains_key("migrating").map_err(|e| self.err(e))? {
                    self.migrate_to_compact()?;
                }
                Ok(())
            }
        }
    }

    /// Rewrites every record of the number trees still in JSON in the compact form, a batch
    /// at a time, then flushes and clears the mark. The records rewritten.
    fn migrate_to_compact(&self) -> Result<u64> {
        let started = std::time::Instant::now();
        let n = self.each_number_tree(false)?;
        self.flush()?;
        self.write("meta", b"migrating", None)?;
        self.flush()?;
        tracing::info!(
            "database {}: {n} records rewritten compactly (schema {SCHEMA_VERSION}) in {} ms",
            self.path.display(),
            started.elapsed().as_millis()
        );
        Ok(n)
    }

    /// Rewrites the records of every number tree: compactly, or (`to_json`) as schema 2 wrote
    /// them. The records rewritten.
    fn each_number_tree(&self, to_json: bool) -> Result<u64> {
        use crate::domain::{CampaignTotals, ChannelCursor, Counters, Sample, SegmentCounters};
        let mut n = self.recode::<ChannelCursor>("channels", to_json)?;
        n += self.recode::<Sample>("samples", to_json)?;
        n += self.recode::<Counters>("rollups", to_json)?;
        n += self.recode::<Vec<SegmentCounters>>("segment_rollups", to_json)?;
        n += self.recode::<Vec<(i64, Sample)>>("sample_hours", to_json)?;
        n += self.recode::<Vec<(i64, Counters)>>("rollup_days", to_json)?;
        n += self.recode::<Vec<(i64, Vec<SegmentCounters>)>>("segment_rollup_days", to_json)?;
        n += self.recode::<CampaignTotals>("campaign_totals", to_json)?;
        n += self.recode::<Counters>("period_rows", to_json)?;
        Ok(n)
    }

    /// For the migration's tests: the database as schema 2 wrote it (the numbers as JSON,
    /// the version 2). The records rewritten.
    #[doc(hidden)]
    pub fn rewrite_as_schema_2(&self) -> Result<u64> {
        let n = self.each_number_tree(true)?;
        self.write("meta", b"schema", Some(&2u32.to_be_bytes()))?;
        self.flush()?;
        Ok(n)
    }

    /// Rewrites one tree's records that are not yet in the form asked for.
    fn recode<T: super::codec::Record + serde::Serialize>(&self, tree: &'static str, to_json: bool) -> Result<u64> {
        let t = self.t()?.by_name(tree);
        let mut n = 0;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for kv in t.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let skip = if to_json { super::codec::is_json(&v) } else { T::is_current(&v) };
            if skip {
                continue;
            }
            let value: T = self.decode(tree, &k, &v)?;
            let bytes =
                if to_json { serde_json::to_vec(&value).expect("a record serialises") } else { value.to_bytes() };
            batch.insert(k, bytes);
            pending += 1;
            if pending == 4096 {
                t.apply_batch(std::mem::take(&mut batch)).map_err(|e| self.err(e))?;
                n += pending;
                pending = 0;
            }
        }
        t.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(n + pending)
    }

    pub fn schema_version(&self) -> Result<u32> {
        let v = self.t()?.meta.get("schema").map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u32::from_be_bytes))
    }

    /// Used by tests and migrations: force the stored schema version.
    pub fn set_schema_version(&self, v: u32) -> Result<()> {
        self.write("meta", b"schema", Some(&v.to_be_bytes()))?;
        self.flush()
    }

    /// Beside the database, after each flushed write of records that must never be lost: how
    /// many there are. A database that opens with fewer was cut short or damaged (sled would
    /// otherwise quietly recover to an older state).
    pub(super) fn write_manifest(&self) -> Result<()> {
        let t = self.t()?;
        let m = Manifest { campaigns: t.campaigns.len(), journal: t.journal.len() };
        let tmp = self.path.join("manifest.json.tmp");
        let body = serde_json::to_vec(&m).expect("a manifest serialises");
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, self.path.join("manifest.json")))
            .map_err(|source| StoreError::Io { path: self.path.clone(), source })
    }

    pub(super) fn check_manifest(&self) -> Result<()> {
        let Ok(text) = std::fs::read(self.path.join("manifest.json")) else { return Ok(()) };
        let Ok(m) = serde_json::from_slice::<Manifest>(&text) else { return Ok(()) };
        let t = self.t()?;
        let (campaigns, journal) = (t.campaigns.len(), t.journal.len());
        if campaigns < m.campaigns || journal < m.journal {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "it holds {campaigns} campaigns and {journal} journal entries where {} and {} were saved;                      the file was truncated or overwritten",
                    m.campaigns, m.journal
                ),
            });
        }
        Ok(())
    }

    /// A new id for a journal entry or a note, increasing across restarts.
    /// A new id for a journal entry, a note or a task's mark: one more than the last, so ids
    /// stay short (#1, #2, …) across restarts. A database that never counted this way starts
    /// above every id it may hold (those came from sled's id generator, which leaps ahead at
    /// each start).
    pub fn next_id(&self) -> Result<u64> {
        self.writable("an id")?;
        let last = match self.t()?.meta.get(LAST_ID).map_err(|e| self.err(e))? {
            Some(v) => v.as_ref().try_into().map_or(0, u64::from_be_bytes),
            None => self.t()?.db.generate_id().map(|id| self.id_base + id).map_err(|e| self.err(e))?,
        };
        let id = last + 1;
        self.write("meta", LAST_ID, Some(&id.to_be_bytes()))?;
        Ok(id)
    }

    pub(super) fn meta_u64(&self, key: &str) -> Result<u64> {
        let v = self.t()?.meta.get(key).map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
    }
}

/// What must be in the database, written beside it (see `write_manifest`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Manifest {
    campaigns: usize,
    journal: usize,
}

/// The meta record holding the last id given (see `Store::next_id`).
const LAST_ID: &[u8] = b"last_id";
