//! Compaction: sled keeps old versions of records until the file is rewritten, so a file that
//! has grown by a quarter since the last compaction is copied into a fresh one on a thread of its own;
//! the writes made meanwhile are logged, replayed onto the copy, and the files swapped. A crash
//! at any step leaves either the old file or the complete new one (see `recover_compaction`).

use super::{CACHE_BYTES, Copying, Op, Result, Store, StoreError, classify, io_err, sibling};
use std::path::Path;

impl Store {
    /// Whether the file has grown enough past what it held after its last compaction (or, never
    /// compacted, past the floor) to be worth compacting.
    pub fn wants_compaction(&self) -> bool {
        let size = self.size_on_disk();
        let after_last = self.meta_u64("compacted_bytes").unwrap_or(0);
        let (times, per) = COMPACT_GROWTH;
        size > COMPACT_FLOOR_BYTES.max(after_last.saturating_mul(times) / per)
    }

    /// Writes every record into a fresh file and puts it in place of the old one, at once.
    pub fn compact(&mut self) -> Result<Compaction> {
        self.start_compaction()?;
        self.finish_compaction()
    }

    /// Starts copying every record into a fresh file, on a thread of its own. sled 0.34 leaves
    /// overwritten and deleted records' space in its file when their lifetimes mix (the raw
    /// samples pruned after 48 h beside cursors and rollups rewritten every poll), so the file
    /// would grow for as long as data comes in; compacting bounds it to a few times what it
    /// holds. Writes go on meanwhile and are logged; `finish_compaction` replays them onto the
    /// copy (every logged write is the record's final value, so a record the copy read before
    /// it changed ends up right) and swaps the files.
    pub fn start_compaction(&mut self) -> Result<()> {
        self.writable("a compaction")?;
        if self.copying.is_some() {
            return Ok(());
        }
        self.flush()?;
        let before_bytes = self.size_on_disk();
        let fresh_path = sibling(&self.path, COMPACTING);
        if fresh_path.exists() {
            std::fs::remove_dir_all(&fresh_path).map_err(io_err(&fresh_path))?;
        }
        let db = self.t()?.db.clone();
        let (old_path, to) = (self.path.clone(), fresh_path.clone());
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("db-compaction".into())
            .spawn(move || copy_all(&db, &old_path, &to, &stop))
            .map_err(io_err(&fresh_path))?;
        self.copying = Some(Copying {
            fresh_path,
            thread,
            cancel,
            log: std::sync::Mutex::new(Vec::new()),
            before_bytes,
            started: std::time::Instant::now(),
        });
        Ok(())
    }

    /// Whether a compaction is under way.
    pub fn compacting(&self) -> bool {
        self.copying.is_some()
    }

    /// Whether the copy of a compaction is done and `finish_compaction` will not wait for it.
    pub fn compaction_copied(&self) -> bool {
        self.copying.as_ref().is_some_and(|c| c.thread.is_finished())
    }

    /// Waits for the copy, writes what changed meanwhile into it and puts it in place. The swap
    /// is crash-safe: the new file is complete on disk before the old one is moved aside, and
    /// `open` finishes a swap that was cut short.
    pub fn finish_compaction(&mut self) -> Result<Compaction> {
        let Some(c) = self.copying.take() else {
            return Err(StoreError::Io {
                path: self.path.clone(),
                source: std::io::Error::other("no compaction is under way"),
            });
        };
        let copied = c.thread.join().unwrap_or_else(|_| {
            Err(StoreError::Corrupt { path: c.fresh_path.clone(), detail: "the copying thread failed".into() })
        });
        let finished = copied.and_then(|(fresh, records)| {
            let log = c.log.into_inner().unwrap_or_else(|p| p.into_inner());
            let replayed = log.len();
            self.replay_and_swap(&c.fresh_path, fresh, log)?;
            Ok((records, replayed))
        });
        match finished {
            Ok((records, replayed)) => Ok(Compaction {
                before_bytes: c.before_bytes,
                after_bytes: self.size_on_disk(),
                records,
                replayed,
                elapsed: c.started.elapsed(),
            }),
            Err(e) => {
                // The database in place was never touched: the copy is dropped.
                let _ = std::fs::remove_dir_all(&c.fresh_path);
                Err(e)
            }
        }
    }

    pub(super) fn replay_and_swap(&mut self, fresh_path: &Path, fresh: sled::Db, log: Vec<Op>) -> Result<()> {
        let fresh_err = |e| classify(fresh_path, e);
        let mut trees: std::collections::HashMap<&str, sled::Tree> = std::collections::HashMap::new();
        for (tree, key, value) in log {
            let t = match trees.entry(tree) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(fresh.open_tree(tree).map_err(fresh_err)?),
            };
            match value {
                Some(v) => t.insert(key, v).map(drop),
                None => t.remove(key).map(drop),
            }
            .map_err(fresh_err)?;
        }
        let ids_used = self.t()?.db.generate_id().map_err(|e| self.err(e))? + 1 + self.id_base;
        let meta = fresh.open_tree("meta").map_err(fresh_err)?;
        meta.insert("id_base", &ids_used.to_be_bytes()).map_err(fresh_err)?;
        fresh.flush().map_err(fresh_err)?;
        let after = fresh.size_on_disk().unwrap_or(0);
        meta.insert("compacted_bytes", &after.to_be_bytes()).map_err(fresh_err)?;
        fresh.flush().map_err(fresh_err)?;
        drop((meta, trees, fresh));
        self.flush()?;
        if let Ok(m) = std::fs::read(self.path.join("manifest.json")) {
            std::fs::write(fresh_path.join("manifest.json"), m).map_err(io_err(fresh_path))?;
        }
        fault_point("compaction-copied");
        // The mark that the new file is whole: from here on, a crash keeps the new file.
        std::fs::write(fresh_path.join(COMPLETE_MARK), b"").map_err(io_err(fresh_path))?;
        fault_point("compaction-marked");
        drop(self.trees.take());
        // sled lets go of its lock a moment after its handle is dropped; `open` waits for it.
        std::fs::rename(&self.path, sibling(&self.path, REPLACED)).map_err(io_err(&self.path))?;
        fault_point("compaction-moved-aside");
        recover_compaction(&self.path).map_err(io_err(&self.path))?;
        let mut fresh = Store::open(&self.path)?;
        fresh.watch = self.watch.clone();
        *self = fresh;
        Ok(())
    }

    /// Gives up a compaction under way: its thread holds the file open until it ends, so it is
    /// told to stop and waited for, and its copy deleted.
    pub(super) fn abandon_compaction(&mut self) {
        if let Some(c) = self.copying.take() {
            c.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = c.thread.join();
            let _ = std::fs::remove_dir_all(&c.fresh_path);
        }
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Copy)]
pub struct Compaction {
    pub before_bytes: u64,
    pub after_bytes: u64,
    pub records: u64,
    /// Writes made while the copy ran, replayed onto it.
    pub replayed: usize,
    pub elapsed: std::time::Duration,
}

/// A database file smaller than this is never compacted.
pub const COMPACT_FLOOR_BYTES: u64 = 64 * 1024 * 1024;

/// A file that grew to this many times (5/4) its size after the last compaction is
/// compacted: at its peak, one and a quarter times the compacted file, plus the copy while one
/// runs (sled's fresh file is itself about 2.4 times what its records hold). A copy takes
/// seconds in the background; at 500 channels one runs every few hours.
pub const COMPACT_GROWTH: (u64, u64) = (5, 4);

/// Copies every tree of `db` into a new database at `to`: (the new database, records copied).
pub(super) fn copy_all(
    db: &sled::Db,
    from: &Path,
    to: &Path,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(sled::Db, u64)> {
    let fresh = sled::Config::new()
        .path(to)
        .cache_capacity(CACHE_BYTES)
        .flush_every_ms(None)
        .open()
        .map_err(|e| classify(to, e))?;
    let mut records = 0u64;
    for name in db.tree_names() {
        let src = db.open_tree(&name).map_err(|e| classify(from, e))?;
        let dst = fresh.open_tree(&name).map_err(|e| classify(to, e))?;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for kv in src.iter() {
            let (k, v) = kv.map_err(|e| classify(from, e))?;
            batch.insert(k, v);
            in_batch += 1;
            records += 1;
            if in_batch == 10_000 {
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(StoreError::Closed { path: from.to_path_buf() });
                }
                dst.apply_batch(std::mem::take(&mut batch)).map_err(|e| classify(to, e))?;
                in_batch = 0;
            }
        }
        dst.apply_batch(batch).map_err(|e| classify(to, e))?;
    }
    fresh.flush().map_err(|e| classify(to, e))?;
    Ok((fresh, records))
}

pub(super) const COMPACTING: &str = "compacting";

pub(super) const REPLACED: &str = "replaced";

pub(super) const COMPLETE_MARK: &str = "complete";

/// Completes or abandons a compaction cut short: a complete new file with no database in place
/// is moved in; an incomplete one is deleted; the replaced file is deleted once a database is
/// in place.
/// For the `kill -9` tests: the process dies here, as by `kill -9`, when `COCKPIT_FAULT` names
/// this point.
fn fault_point(name: &str) {
    if std::env::var("COCKPIT_FAULT").is_ok_and(|f| f == name) {
        // SAFETY: raising a signal has no preconditions.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}

/// Whether `recover_compaction` has something to do.
pub(super) fn needs_recovery(path: &Path) -> bool {
    sibling(path, COMPACTING).exists() || sibling(path, REPLACED).exists()
}

pub(super) fn recover_compaction(path: &Path) -> std::io::Result<()> {
    let fresh = sibling(path, COMPACTING);
    if fresh.exists() {
        if !fresh.join(COMPLETE_MARK).exists() {
            std::fs::remove_dir_all(&fresh)?;
        } else if !path.exists() {
            std::fs::remove_file(fresh.join(COMPLETE_MARK))?;
            std::fs::rename(&fresh, path)?;
            fault_point("compaction-swapped");
        } else {
            // Both complete: the swap never started, the old file is still the database.
            std::fs::remove_dir_all(&fresh)?;
        }
    }
    let old = sibling(path, REPLACED);
    if old.exists() {
        if path.exists() {
            std::fs::remove_dir_all(&old)?;
        } else {
            // Moved aside with no new file to take its place: it is still the database.
            std::fs::rename(&old, path)?;
        }
    }
    Ok(())
}
