//! `cockpit db backup|check`: a consistent copy of the database, and a check that every
//! record reads back, with counts and sizes by tree.

use super::compaction::copy_all;
use super::{Result, Store, StoreError, classify, io_err};
use std::path::Path;

/// What `check` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub path: String,
    pub schema: u32,
    pub bytes_on_disk: u64,
    /// (tree, records, bytes of keys and values).
    pub trees: Vec<(String, u64, u64)>,
    pub campaigns: usize,
    pub channels: usize,
    pub samples: usize,
    pub alerts: usize,
    pub journal: usize,
    pub notes: usize,
}

impl Store {
    /// Copies every tree into a new database at `to`, which must not exist yet: written beside
    /// it and renamed into place when complete, so a copy cut short never passes for one.
    /// Ids go on from the original's. The records copied.
    pub fn backup(&self, to: &Path) -> Result<u64> {
        if to.exists() {
            return Err(StoreError::Io {
                path: to.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "is there already: give a new path"),
            });
        }
        let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
        let partial = to.with_file_name(format!(".{name}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        let t = self.t()?;
        self.flush()?;
        let (fresh, records) = copy_all(&t.db, &self.path, &partial, &std::sync::atomic::AtomicBool::new(false))?;
        let ids_used = t.db.generate_id().map_err(|e| self.err(e))? + 1 + self.id_base;
        let meta = fresh.open_tree("meta").map_err(|e| classify(&partial, e))?;
        meta.insert("id_base", &ids_used.to_be_bytes()).map_err(|e| classify(&partial, e))?;
        fresh.flush().map_err(|e| classify(&partial, e))?;
        drop((meta, fresh));
        if let Ok(m) = std::fs::read(self.path.join("manifest.json")) {
            std::fs::write(partial.join("manifest.json"), m).map_err(io_err(&partial))?;
        }
        std::fs::rename(&partial, to).map_err(io_err(to))?;
        Ok(records)
    }

    /// Reads every record back: counts and sizes by tree, and the records of each kind
    /// decoded (an error names the tree and the record that does not read).
    pub fn check(&self) -> Result<CheckReport> {
        let t = self.t()?;
        let mut trees = Vec::new();
        for name in t.db.tree_names() {
            let tree = t.db.open_tree(&name).map_err(|e| self.err(e))?;
            let (mut n, mut bytes) = (0u64, 0u64);
            for kv in tree.iter() {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                n += 1;
                bytes += (k.len() + v.len()) as u64;
            }
            let name = String::from_utf8_lossy(&name).into_owned();
            trees.push((if name == "__sled__default" { "default".into() } else { name }, n, bytes));
        }
        let campaigns = self.campaigns()?;
        let cursors = self.cursors()?;
        let mut samples = 0;
        for key in cursors.keys() {
            samples += self.samples(key, i64::MIN, i64::MAX)?.len();
            self.rollups(key, i64::MIN, i64::MAX)?;
            self.periods(key)?;
        }
        self.silences()?;
        self.snoozes()?;
        Ok(CheckReport {
            path: self.path.display().to_string(),
            schema: self.schema_version()?,
            bytes_on_disk: self.size_on_disk(),
            trees,
            campaigns: campaigns.len(),
            channels: cursors.len(),
            samples,
            alerts: self.alerts()?.len(),
            journal: self.journal()?.len(),
            notes: self.notes(None)?.len(),
        })
    }
}
