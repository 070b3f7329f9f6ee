//! The sled database behind a typed API. Only this module names sled. Trees follow DESIGN.md §4;
//! values are JSON so that added fields stay readable; sample keys end in a big-endian
//! timestamp so a range scan is a time window. One writer: the engine.

use crate::domain::time::{DAY_MS, HOUR_MS};
use crate::domain::counters::add_segments;
use crate::domain::{Campaign, ChannelKey, CampaignTotals, ChannelCursor, Counters, Sample, SegmentCounters};
use serde::{Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// The layout this build reads and writes. Older layouts are migrated on open; newer ones are
/// refused untouched.
pub const SCHEMA_VERSION: u32 = 2;

/// A channel's time-keyed records are written one per time (`live`: channel ‖ time → value)
/// and, once their block of time has closed, packed into one record per block (`packed`:
/// channel ‖ block start → [(time, value)]). sled keeps at most 16 records per leaf and reads
/// every leaf's place on open, so its open time follows the number of records: a week of
/// hourly rollups is 7 records per channel instead of 168, two days of minute samples 48
/// instead of 2,880. A record written late for a block already packed stays live until the
/// next packing; readers see both and fold them (a sample written again stands over the
/// earlier one, rollups add up).
struct Packing {
    live: &'static str,
    packed: &'static str,
    block_ms: i64,
    /// How long after its end a block is packed (a straggler after that stays live a while).
    settle_ms: i64,
}

const SAMPLE_HOURS: Packing =
    Packing { live: "samples", packed: "sample_hours", block_ms: HOUR_MS, settle_ms: 10 * 60_000 };
const ROLLUP_DAYS: Packing = Packing { live: "rollups", packed: "rollup_days", block_ms: DAY_MS, settle_ms: HOUR_MS };
const SEGMENT_DAYS: Packing =
    Packing { live: "segment_rollups", packed: "segment_rollup_days", block_ms: DAY_MS, settle_ms: HOUR_MS };

/// sled's page cache (its default is 1 GiB). The hot data lives in the engine's memory; what is
/// read from the database (history for a chart, a report) is read once, and the operating
/// system caches the file anyway.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another cockpit is using the database at {path} (quit it, or pass --db PATH to use another one)")]
    Locked { path: PathBuf },
    #[error(
        "the database at {path} has schema version {found}, newer than this cockpit understands ({supported}); \
         upgrade cockpit, or pass --db PATH to use another database (the database was not modified)"
    )]
    FutureSchema { path: PathBuf, found: u32, supported: u32 },
    #[error("the database at {path} is damaged: {detail} (move it aside and re-import your campaigns from files)")]
    Corrupt { path: PathBuf, detail: String },
    #[error("the database at {path} is closed after a write error; it is opened again on the next write")]
    Closed { path: PathBuf },
    #[error("database at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("database at {path}: record {key} in '{tree}' cannot be read: {detail}")]
    Decode { path: PathBuf, tree: &'static str, key: String, detail: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The key prefix of a channel's time-keyed records: campaign ‖ 0 ‖ channel ‖ 0.
fn prefix(key: &ChannelKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.campaign.len() + key.channel.len() + 2);
    k.extend_from_slice(key.campaign.as_bytes());
    k.push(0);
    k.extend_from_slice(key.channel.as_bytes());
    k.push(0);
    k
}

/// The key of a channel's record at `ms`: the prefix and the big-endian time.
fn key_at(key: &ChannelKey, ms: i64) -> Vec<u8> {
    let mut k = prefix(key);
    k.extend_from_slice(&(ms.max(0) as u64).to_be_bytes());
    k
}

/// One channel's new sample together with its moved cursor; written atomically.
pub struct Ingest<'a> {
    pub key: &'a ChannelKey,
    pub sample: &'a Sample,
    pub cursor: &'a ChannelCursor,
}

/// What must be in the database, written beside it (see `write_manifest`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    campaigns: usize,
    journal: usize,
}

pub struct Store {
    path: PathBuf,
    /// `None` only between dropping a handle that hit a write error and opening it again.
    trees: Option<Trees>,
    /// Ids handed out before the file was last compacted: sled counts ids per file, so a
    /// compacted file continues from here.
    id_base: u64,
    /// A compaction copying the file in the background.
    copying: Option<Copying>,
    /// The latest hour of each channel written by `ingest`, as stored, so that the next sample
    /// of the hour is added without reading it back.
    hours: std::sync::Mutex<std::collections::HashMap<ChannelKey, Hour>>,
}

/// One channel's hourly rollup and segment rollup.
#[derive(Clone)]
struct Hour {
    key: Vec<u8>,
    counters: Counters,
    /// Read when the first sample with segments comes in.
    segments: Option<Vec<SegmentCounters>>,
    segments_changed: bool,
}

/// A write made while a compaction copies: tree, key, the new value (`None`: removed).
type Op = (&'static str, Vec<u8>, Option<Vec<u8>>);

struct Copying {
    fresh_path: PathBuf,
    thread: std::thread::JoinHandle<Result<(sled::Db, u64)>>,
    log: std::sync::Mutex<Vec<Op>>,
    /// Tells the copying thread to give up (the store is closing or opened again).
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    before_bytes: u64,
    started: std::time::Instant,
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
/// A file that grew to this many times its size after the last compaction is compacted: the
/// file stays within twice what it holds, plus the copy while one runs.
pub const COMPACT_GROWTH: u64 = 2;

struct Trees {
    db: sled::Db,
    meta: sled::Tree,
    campaigns: sled::Tree,
    channels: sled::Tree,
    samples: sled::Tree,
    rollups: sled::Tree,
    alerts: sled::Tree,
    silences: sled::Tree,
    journal: sled::Tree,
    snoozes: sled::Tree,
    notes: sled::Tree,
    /// Hourly counters of every audience segment of a channel: channel ‖ hour → list.
    segment_rollups: sled::Tree,
    /// Packed blocks of the three above (see `Packing`).
    sample_hours: sled::Tree,
    rollup_days: sled::Tree,
    segment_rollup_days: sled::Tree,
    /// Each campaign's channels summed up (campaign → `CampaignTotals`), written with the
    /// cursors: the first frame is drawn from these before the cursors are read.
    campaign_totals: sled::Tree,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let path = path.to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        }
        recover_compaction(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        // A database with data but without its schema record was cut short or damaged: sled
        // would quietly start from an older state, so it is refused instead.
        let had_data = path.join("db").metadata().is_ok_and(|m| m.len() > 0);
        // sled lets go of its file lock from a background thread a moment after the last
        // handle is dropped: a lock still held is retried briefly before "in use" is reported.
        let mut tries = 0;
        let db = loop {
            match sled::Config::new()
                .path(&path)
                .cache_capacity(CACHE_BYTES)
                .flush_every_ms(Some(1000))
                .open()
                .map_err(|e| classify(&path, e))
            {
                Err(StoreError::Locked { .. }) if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(|e| classify(&path, e));
        let trees = Trees {
            meta: tree("meta")?,
            campaigns: tree("campaigns")?,
            channels: tree("channels")?,
            samples: tree("samples")?,
            rollups: tree("rollups")?,
            alerts: tree("alerts")?,
            silences: tree("silences")?,
            journal: tree("journal")?,
            snoozes: tree("snoozes")?,
            notes: tree("notes")?,
            segment_rollups: tree("segment_rollups")?,
            sample_hours: tree("sample_hours")?,
            rollup_days: tree("rollup_days")?,
            segment_rollup_days: tree("segment_rollup_days")?,
            campaign_totals: tree("campaign_totals")?,
            db,
        };
        let mut store = Store { path, trees: Some(trees), id_base: 0, copying: None, hours: Default::default() };
        store.id_base = store.meta_u64("id_base")?;
        store.check_schema(had_data)?;
        store.check_manifest()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn t(&self) -> Result<&Trees> {
        self.trees.as_ref().ok_or_else(|| StoreError::Closed { path: self.path.clone() })
    }

    /// After a failed write (a full disk, a file-size limit) sled refuses every later write
    /// until it is opened again. This lets the handle go and opens the database afresh, which
    /// recovers what was flushed; the caller still holds what was not and writes it again.
    /// Until it succeeds, every call answers `Closed`.
    pub fn reopen(&mut self) -> Result<()> {
        self.abandon_compaction();
        // Dropping the trees flushes what sled still can and lets go of the file lock.
        drop(self.trees.take());
        let fresh = Store::open(&self.path)?;
        *self = fresh;
        Ok(())
    }

    fn check_schema(&self, had_data: bool) -> Result<()> {
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
                // 1 → 2 added the packed trees, filled by `pack` as blocks close; marked so
                // that an older cockpit, which would not see packed records, refuses the file.
                if found < SCHEMA_VERSION {
                    self.write("meta", b"schema", Some(&SCHEMA_VERSION.to_be_bytes()))?;
                    self.flush()?;
                }
                Ok(())
            }
        }
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

    fn err(&self, e: sled::Error) -> StoreError {
        classify(&self.path, e)
    }

    /// The store's transactions never abort: what fails is storage.
    fn txn_err(&self, e: sled::transaction::TransactionError<()>) -> StoreError {
        match e {
            sled::transaction::TransactionError::Storage(e) => self.err(e),
            sled::transaction::TransactionError::Abort(()) => unreachable!("the store's transactions never abort"),
        }
    }

    fn decode<T: DeserializeOwned>(&self, tree: &'static str, key: &[u8], v: &[u8]) -> Result<T> {
        serde_json::from_slice(v).map_err(|e| StoreError::Decode {
            path: self.path.clone(),
            tree,
            key: String::from_utf8_lossy(key).replace('\0', "/"),
            detail: e.to_string(),
        })
    }

    fn encode<T: Serialize>(v: &T) -> Vec<u8> {
        serde_json::to_vec(v).expect("stored values always serialise")
    }

    pub fn put_campaign(&self, c: &Campaign) -> Result<()> {
        self.write("campaigns", c.id.as_bytes(), Some(&Self::encode(c)))?;
        self.flush()?;
        self.write_manifest()
    }

    /// Beside the database, after each flushed write of records that must never be lost: how
    /// many there are. A database that opens with fewer was cut short or damaged (sled would
    /// otherwise quietly recover to an older state).
    fn write_manifest(&self) -> Result<()> {
        let t = self.t()?;
        let m = Manifest { campaigns: t.campaigns.len(), journal: t.journal.len() };
        let tmp = self.path.join("manifest.json.tmp");
        let body = serde_json::to_vec(&m).expect("a manifest serialises");
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, self.path.join("manifest.json")))
            .map_err(|source| StoreError::Io { path: self.path.clone(), source })
    }

    fn check_manifest(&self) -> Result<()> {
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

    pub fn campaign(&self, id: &str) -> Result<Option<Campaign>> {
        match self.t()?.campaigns.get(id.as_bytes()).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(self.decode("campaigns", id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Every record of a tree, decoded, in key order.
    fn all<T: DeserializeOwned>(&self, tree: &sled::Tree, name: &'static str) -> Result<Vec<T>> {
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                self.decode(name, &k, &v)
            })
            .collect()
    }

    /// Every campaign, ordered by id.
    pub fn campaigns(&self) -> Result<Vec<Campaign>> {
        self.all_in_halves(&self.t()?.campaigns, "campaigns")
    }

    /// Every record of a tree keyed by campaign first, read in two halves side by side (see
    /// `scan_halves`), in key order.
    fn all_in_halves<T: DeserializeOwned + Send>(&self, tree: &sled::Tree, name: &'static str) -> Result<Vec<T>> {
        let [mut lower, upper] = self.scan_halves(tree, |k, v| self.decode(name, k, v).map(Some))?;
        lower.extend(upper);
        Ok(lower)
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

    pub fn cursor(&self, key: &ChannelKey) -> Result<Option<ChannelCursor>> {
        let k = prefix(key);
        match self.t()?.channels.get(&k).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(self.decode("channels", &k, &v)?)),
            None => Ok(None),
        }
    }

    fn alert_key(k: &crate::alert::AlertKey) -> Vec<u8> {
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

    /// A new id for a journal entry or a note, increasing across restarts.
    pub fn next_id(&self) -> Result<u64> {
        self.t()?.db.generate_id().map(|id| self.id_base + id + 1).map_err(|e| self.err(e))
    }

    fn meta_u64(&self, key: &str) -> Result<u64> {
        let v = self.t()?.meta.get(key).map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
    }

    /// Whether the file has grown enough past what it held after its last compaction (or, never
    /// compacted, past the floor) to be worth compacting.
    pub fn wants_compaction(&self) -> bool {
        let size = self.size_on_disk();
        let after_last = self.meta_u64("compacted_bytes").unwrap_or(0);
        size > COMPACT_FLOOR_BYTES.max(after_last.saturating_mul(COMPACT_GROWTH))
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

    fn replay_and_swap(&mut self, fresh_path: &Path, fresh: sled::Db, log: Vec<Op>) -> Result<()> {
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
        // The mark that the new file is whole: from here on, a crash keeps the new file.
        std::fs::write(fresh_path.join(COMPLETE_MARK), b"").map_err(io_err(fresh_path))?;
        drop(self.trees.take());
        // sled lets go of its lock a moment after its handle is dropped; `open` waits for it.
        std::fs::rename(&self.path, sibling(&self.path, REPLACED)).map_err(io_err(&self.path))?;
        recover_compaction(&self.path).map_err(io_err(&self.path))?;
        *self = Store::open(&self.path)?;
        Ok(())
    }

    /// Gives up a compaction under way: its thread holds the file open until it ends, so it is
    /// told to stop and waited for, and its copy deleted.
    fn abandon_compaction(&mut self) {
        if let Some(c) = self.copying.take() {
            c.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = c.thread.join();
            let _ = std::fs::remove_dir_all(&c.fresh_path);
        }
    }

    /// Writes one record (`None` removes it), noted for a compaction under way. Returns whether
    /// the record was there before.
    fn write(&self, tree: &'static str, key: &[u8], value: Option<&[u8]>) -> Result<bool> {
        let t = self.t()?.by_name(tree);
        let before = match value {
            Some(v) => t.insert(key, v),
            None => t.remove(key),
        }
        .map_err(|e| self.err(e))?;
        self.logged(tree, key, value);
        Ok(before.is_some())
    }

    /// Notes a write for the compaction under way, if any.
    fn logged(&self, tree: &'static str, key: &[u8], value: Option<&[u8]>) {
        if let Some(c) = &self.copying {
            let mut log = c.log.lock().unwrap_or_else(|p| p.into_inner());
            log.push((tree, key.to_vec(), value.map(<[u8]>::to_vec)));
        }
    }

    /// Writes a journal entry and flushes: an action is on disk before it is sent, and its
    /// outcome before anyone is told.
    pub fn put_journal(&self, e: &crate::optimize::journal::JournalEntry) -> Result<()> {
        let new = !self.write("journal", &e.id.to_be_bytes(), Some(&Self::encode(e)))?;
        self.flush()?;
        if new { self.write_manifest() } else { Ok(()) }
    }

    /// The whole journal, oldest first.
    pub fn journal(&self) -> Result<Vec<crate::optimize::journal::JournalEntry>> {
        self.all(&self.t()?.journal, "journal")
    }

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

    /// Every stored cursor.
    pub fn cursors(&self) -> Result<std::collections::HashMap<ChannelKey, ChannelCursor>> {
        let halves = self.scan_halves(&self.t()?.channels, |k, v| {
            let mut parts = k.split(|b| *b == 0);
            let (Some(c), Some(ch)) = (parts.next(), parts.next()) else { return Ok(None) };
            let key = ChannelKey::new(&String::from_utf8_lossy(c), &String::from_utf8_lossy(ch));
            Ok(Some((key, self.decode::<ChannelCursor>("channels", k, v)?)))
        })?;
        let mut out = std::collections::HashMap::with_capacity(halves.iter().map(Vec::len).sum());
        out.extend(halves.into_iter().flatten());
        Ok(out)
    }

    /// Reads a tree keyed by campaign first in two halves side by side, split at the middle
    /// campaign: start-up waits for the campaigns and the cursors, and what they cost is
    /// sled's iterator and decoding, the same for both halves. `f` turns a record into an
    /// item (`None`: skipped). The halves are in key order.
    fn scan_halves<T: Send>(
        &self,
        tree: &sled::Tree,
        f: impl Fn(&[u8], &[u8]) -> Result<Option<T>> + Sync,
    ) -> Result<[Vec<T>; 2]> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let read = |range: (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>)| {
            let mut out = Vec::new();
            for kv in tree.range(range) {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                out.extend(f(&k, &v)?);
            }
            Ok::<_, StoreError>(out)
        };
        let ids: Vec<sled::IVec> =
            self.t()?.campaigns.iter().keys().collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))?;
        // A few campaigns are read at once on one thread.
        match ids.get(ids.len() / 2).filter(|_| ids.len() >= 64) {
            Some(mid) => {
                let split = [mid.as_ref(), &[0]].concat();
                std::thread::scope(|s| {
                    let upper = s.spawn(|| read((Included(split.clone()), Unbounded)));
                    let lower = read((Unbounded, Excluded(split.clone())));
                    // A panic in the reader is a bug: passed on as it is.
                    let upper = upper.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                    Ok([lower?, upper?])
                })
            }
            None => Ok([read((Unbounded, Unbounded))?, Vec::new()]),
        }
    }

    /// Writes samples, their channels' cursors and the hourly rollups in one transaction, so a
    /// crash never leaves a sample without its cursor (which would count it twice). Items are
    /// in the order taken in: a channel's cursor and each of its hours are written once per
    /// call, as the last item left them. A channel's first reading is kept as a sample and in
    /// the cursor's totals, not in the rollups.
    pub fn ingest(&self, items: &[Ingest<'_>]) -> Result<()> {
        self.ingest_with_totals(items, &[])
    }

    /// `ingest`, writing in the same transaction the totals of the campaigns whose cursors
    /// move. A campaign whose cursors move without its totals given has its stored totals
    /// removed: what is stored always sums up the stored cursors, or is missing.
    pub fn ingest_with_totals(&self, items: &[Ingest<'_>], totals: &[(&str, CampaignTotals)]) -> Result<()> {
        use sled::Transactional;
        if items.is_empty() {
            return Ok(());
        }
        let t = self.t()?;
        let samples: Vec<(Vec<u8>, Vec<u8>)> =
            items.iter().map(|i| (key_at(i.key, i.sample.at), Self::encode(i.sample))).collect();
        let mut last_cursor: std::collections::HashMap<&ChannelKey, &ChannelCursor> = Default::default();
        // Each hour touched, summed up from what is stored (or remembered) plus these samples.
        let mut hours: std::collections::BTreeMap<Vec<u8>, (&ChannelKey, Hour)> = Default::default();
        let mut cache = self.hours.lock().unwrap_or_else(|p| p.into_inner());
        for item in items {
            last_cursor.insert(item.key, item.cursor);
            // A first reading holds everything since the channel started: it counts in the
            // totals (the cursor) but belongs to no hour.
            if item.sample.first {
                continue;
            }
            let hk = key_at(item.key, item.sample.at.div_euclid(HOUR_MS) * HOUR_MS);
            let (_, hour) = match hours.entry(hk) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    // Taken out of the cache; put back (as this call leaves it) once written.
                    let hour = match cache.remove(item.key).filter(|h| h.key == *e.key()) {
                        Some(h) => Hour { segments_changed: false, ..h },
                        None => Hour {
                            key: e.key().clone(),
                            counters: t
                                .rollups
                                .get(e.key())
                                .map_err(|e| self.err(e))?
                                .map_or_else(|| Ok(Counters::default()), |v| self.decode("rollups", e.key(), &v))?,
                            segments: None,
                            segments_changed: false,
                        },
                    };
                    e.insert((item.key, hour))
                }
            };
            hour.counters.add(&item.sample.delta);
            if !item.sample.segments.is_empty() {
                let segments = match hour.segments.take() {
                    Some(s) => s,
                    None => t
                        .segment_rollups
                        .get(&hour.key)
                        .map_err(|e| self.err(e))?
                        .map_or_else(|| Ok(Vec::new()), |v| self.decode("segment_rollups", &hour.key, &v))?,
                };
                add_segments(hour.segments.insert(segments), &item.sample.segments);
                hour.segments_changed = true;
            }
        }
        let cursors: Vec<(Vec<u8>, Vec<u8>)> = last_cursor.iter().map(|(k, c)| (prefix(k), Self::encode(c))).collect();
        let mut campaign_totals: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            totals.iter().map(|(id, t)| (id.as_bytes().to_vec(), Some(Self::encode(t)))).collect();
        let moved: std::collections::BTreeSet<&str> = last_cursor.keys().map(|k| k.campaign.as_str()).collect();
        campaign_totals.extend(
            moved.into_iter().filter(|id| totals.iter().all(|(t, _)| t != id)).map(|id| (id.as_bytes().to_vec(), None)),
        );
        let rollups: Vec<(&[u8], Vec<u8>)> =
            hours.iter().map(|(k, (_, h))| (k.as_slice(), Self::encode(&h.counters))).collect();
        let segment_rollups: Vec<(&[u8], Vec<u8>)> = hours
            .iter()
            .filter_map(|(k, (_, h))| {
                h.segments.as_ref().filter(|_| h.segments_changed).map(|s| (k.as_slice(), Self::encode(s)))
            })
            .collect();
        let written = (&t.samples, &t.channels, &t.rollups, &t.segment_rollups, &t.campaign_totals).transaction(
            |(samples_t, channels_t, rollups_t, segment_rollups_t, totals_t)| {
                for (k, v) in &samples {
                    samples_t.insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &cursors {
                    channels_t.insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &rollups {
                    rollups_t.insert(*k, v.as_slice())?;
                }
                for (k, v) in &segment_rollups {
                    segment_rollups_t.insert(*k, v.as_slice())?;
                }
                for (k, v) in &campaign_totals {
                    match v {
                        Some(v) => totals_t.insert(k.as_slice(), v.as_slice())?,
                        None => totals_t.remove(k.as_slice())?,
                    };
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            },
        );
        if let Err(e) = written {
            // What is remembered may now be ahead of or behind the file: read it back next time.
            cache.clear();
            return Err(self.txn_err(e));
        }
        if let Some(c) = &self.copying {
            let mut log = c.log.lock().unwrap_or_else(|p| p.into_inner());
            log.extend(samples.into_iter().map(|(k, v)| ("samples", k, Some(v))));
            log.extend(cursors.into_iter().map(|(k, v)| ("channels", k, Some(v))));
            log.extend(rollups.into_iter().map(|(k, v)| ("rollups", k.to_vec(), Some(v))));
            log.extend(segment_rollups.into_iter().map(|(k, v)| ("segment_rollups", k.to_vec(), Some(v))));
            log.extend(campaign_totals.into_iter().map(|(k, v)| ("campaign_totals", k, v)));
        }
        // In key order, so a channel's later hour is the one remembered.
        for (_, (key, hour)) in hours {
            cache.insert(key.clone(), hour);
        }
        Ok(())
    }

    /// A channel's entries of a packed kind with `from <= time < to`, in time order: packed
    /// blocks first, then live records, so of two values for one time the live one comes last.
    fn entries<T: DeserializeOwned>(&self, p: &Packing, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<(i64, T)>> {
        let t = self.t()?;
        let mut out: Vec<(i64, T)> = Vec::new();
        for kv in t.by_name(p.packed).range(key_at(key, from.div_euclid(p.block_ms) * p.block_ms)..key_at(key, to)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let block: Vec<(i64, T)> = self.decode(p.packed, &k, &v)?;
            out.extend(block.into_iter().filter(|(at, _)| (from..to).contains(at)));
        }
        let plen = prefix(key).len();
        for kv in t.by_name(p.live).range(key_at(key, from)..key_at(key, to)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push((key_time(&k, plen), self.decode(p.live, &k, &v)?));
        }
        out.sort_by_key(|(at, _)| *at);
        Ok(out)
    }

    /// Raw samples of a channel with `from <= at < to`, oldest first.
    pub fn samples(&self, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<Sample>> {
        // Written again for the same time: the later write stands.
        let entries = self.entries::<Sample>(&SAMPLE_HOURS, key, from, to)?;
        Ok(merge_same_times(entries, |a, b| *a = b).into_iter().map(|(_, s)| s).collect())
    }

    /// The last `n` raw samples of a channel before `to`, oldest first.
    pub fn recent_samples(&self, key: &ChannelKey, to: i64, n: usize) -> Result<Vec<Sample>> {
        let t = self.t()?;
        let live = t
            .samples
            .range(key_at(key, 0)..key_at(key, to))
            .rev()
            .take(n)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                self.decode("samples", &k, &v)
            })
            .collect::<Result<Vec<Sample>>>()?;
        // Packed blocks, newest first, until they hold `n` samples.
        let mut packed: Vec<Sample> = Vec::new();
        for kv in t.sample_hours.range(key_at(key, 0)..key_at(key, to)).rev() {
            if packed.len() >= n {
                break;
            }
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let block: Vec<(i64, Sample)> = self.decode("sample_hours", &k, &v)?;
            packed.extend(block.into_iter().rev().filter(|(at, _)| *at < to).map(|(_, s)| s));
        }
        let mut out: Vec<Sample> = Vec::with_capacity(n);
        let (mut a, mut b) = (packed.into_iter().peekable(), live.into_iter().peekable());
        while out.len() < n {
            // Newest first; a live sample stands over a packed one for the same time.
            let s = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.at > y.at => a.next(),
                (Some(x), Some(y)) if x.at == y.at => {
                    a.next();
                    b.next()
                }
                (Some(_), None) => a.next(),
                _ => b.next(),
            };
            match s {
                Some(s) => out.push(s),
                None => break,
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Hourly rollups of a channel with `from <= hour < to`: (hour start ms, counters).
    pub fn rollups(&self, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<(i64, Counters)>> {
        Ok(merge_same_times(self.entries::<Counters>(&ROLLUP_DAYS, key, from, to)?, |a, b| a.add(&b)))
    }

    /// A channel's segments summed over the hours starting in `[from, to)`.
    pub fn segment_rollups(&self, key: &ChannelKey, from: i64, to: i64) -> Result<Vec<SegmentCounters>> {
        let mut out: Vec<SegmentCounters> = Vec::new();
        for (_, hour) in self.entries::<Vec<SegmentCounters>>(&SEGMENT_DAYS, key, from, to)? {
            add_segments(&mut out, &hour);
        }
        Ok(out)
    }

    /// Deletes raw samples older than `before` (the rollups keep their totals): live ones
    /// exactly, packed ones by whole hours, so up to an hour more may stay. Returns how many
    /// were removed.
    pub fn prune_samples(&self, key: &ChannelKey, before: i64) -> Result<usize> {
        let t = self.t()?;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in t.samples.range(key_at(key, 0)..key_at(key, before)).keys() {
            let k = k.map_err(|e| self.err(e))?;
            self.logged("samples", &k, None);
            batch.remove(k);
            n += 1;
        }
        t.samples.apply_batch(batch).map_err(|e| self.err(e))?;
        let mut batch = sled::Batch::default();
        // Blocks that end by `before`.
        let whole = before.div_euclid(HOUR_MS) * HOUR_MS;
        for kv in t.sample_hours.range(key_at(key, 0)..key_at(key, whole)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            n += self.decode::<Vec<serde::de::IgnoredAny>>("sample_hours", &k, &v)?.len();
            self.logged("sample_hours", &k, None);
            batch.remove(k);
        }
        t.sample_hours.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Packs a channel's blocks of samples, rollups and segment rollups that closed a while
    /// before `now` (see `Packing`). Returns how many live records were folded into blocks.
    pub fn pack(&self, key: &ChannelKey, now: i64) -> Result<usize> {
        let mut n = self.pack_kind::<Sample>(&SAMPLE_HOURS, key, now, |a, b| *a = b)?;
        n += self.pack_kind::<Counters>(&ROLLUP_DAYS, key, now, |a, b| a.add(&b))?;
        n += self.pack_kind::<Vec<SegmentCounters>>(&SEGMENT_DAYS, key, now, |a, b| add_segments(a, &b))?;
        if n > 0 {
            // A remembered hour may now be packed: it is read from the blocks from now on.
            self.hours.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        }
        Ok(n)
    }

    fn pack_kind<T: Serialize + DeserializeOwned>(
        &self,
        p: &Packing,
        key: &ChannelKey,
        now: i64,
        combine: impl Fn(&mut T, T),
    ) -> Result<usize> {
        use sled::Transactional;
        let t = self.t()?;
        let (live, packed) = (t.by_name(p.live), t.by_name(p.packed));
        let before = (now - p.settle_ms).div_euclid(p.block_ms) * p.block_ms;
        let plen = prefix(key).len();
        let mut gone = Vec::new();
        let mut blocks: std::collections::BTreeMap<i64, Vec<(i64, T)>> = Default::default();
        for kv in live.range(key_at(key, 0)..key_at(key, before)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let at = key_time(&k, plen);
            blocks.entry(at.div_euclid(p.block_ms) * p.block_ms).or_default().push((at, self.decode(p.live, &k, &v)?));
            gone.push(k);
        }
        if gone.is_empty() {
            return Ok(0);
        }
        let mut put = Vec::with_capacity(blocks.len());
        for (start, fresh) in blocks {
            let k = key_at(key, start);
            let mut entries: Vec<(i64, T)> = match packed.get(&k).map_err(|e| self.err(e))? {
                Some(v) => self.decode(p.packed, &k, &v)?,
                None => Vec::new(),
            };
            entries.extend(fresh);
            // Stable: for one time, what was packed before comes first.
            entries.sort_by_key(|(at, _)| *at);
            put.push((k, Self::encode(&merge_same_times(entries, &combine))));
        }
        (live, packed)
            .transaction(|(live_t, packed_t)| {
                for k in &gone {
                    live_t.remove(k)?;
                }
                for (k, v) in &put {
                    packed_t.insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| self.txn_err(e))?;
        for k in &gone {
            self.logged(p.live, k, None);
        }
        for (k, v) in &put {
            self.logged(p.packed, k, Some(v));
        }
        Ok(gone.len())
    }

    pub fn flush(&self) -> Result<()> {
        self.t()?.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.t().ok().and_then(|t| t.db.size_on_disk().ok()).unwrap_or(0)
    }
}

/// Entries in time order with the values of each time folded into the first by `combine`
/// (called with the earlier value and the later one).
fn merge_same_times<T>(entries: Vec<(i64, T)>, combine: impl Fn(&mut T, T)) -> Vec<(i64, T)> {
    let mut out: Vec<(i64, T)> = Vec::with_capacity(entries.len());
    for (at, v) in entries {
        match out.last_mut() {
            Some((last, held)) if *last == at => combine(held, v),
            _ => out.push((at, v)),
        }
    }
    out
}

/// The time at the end of a channel's time-keyed record key.
fn key_time(k: &[u8], prefix_len: usize) -> i64 {
    k.get(prefix_len..).and_then(|b| b.try_into().ok()).map_or(0, |b| u64::from_be_bytes(b) as i64)
}

impl Trees {
    fn by_name(&self, name: &str) -> &sled::Tree {
        match name {
            "meta" => &self.meta,
            "campaigns" => &self.campaigns,
            "channels" => &self.channels,
            "samples" => &self.samples,
            "rollups" => &self.rollups,
            "alerts" => &self.alerts,
            "silences" => &self.silences,
            "journal" => &self.journal,
            "snoozes" => &self.snoozes,
            "notes" => &self.notes,
            "segment_rollups" => &self.segment_rollups,
            "sample_hours" => &self.sample_hours,
            "rollup_days" => &self.rollup_days,
            "segment_rollup_days" => &self.segment_rollup_days,
            "campaign_totals" => &self.campaign_totals,
            other => unreachable!("no tree is called {other}"),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.abandon_compaction();
    }
}

impl Drop for Trees {
    fn drop(&mut self) {
        let _ = self.db.flush();
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { path: path.clone(), source }
}

/// Copies every tree of `db` into a new database at `to`: (the new database, records copied).
fn copy_all(db: &sled::Db, from: &Path, to: &Path, cancel: &std::sync::atomic::AtomicBool) -> Result<(sled::Db, u64)> {
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

const COMPACTING: &str = "compacting";
const REPLACED: &str = "replaced";
const COMPLETE_MARK: &str = "complete";

/// `<dir>.<suffix>` beside the database directory.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Completes or abandons a compaction cut short: a complete new file with no database in place
/// is moved in; an incomplete one is deleted; the replaced file is deleted once a database is
/// in place.
fn recover_compaction(path: &Path) -> std::io::Result<()> {
    let fresh = sibling(path, COMPACTING);
    if fresh.exists() {
        if !fresh.join(COMPLETE_MARK).exists() {
            std::fs::remove_dir_all(&fresh)?;
        } else if !path.exists() {
            std::fs::remove_file(fresh.join(COMPLETE_MARK))?;
            std::fs::rename(&fresh, path)?;
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

fn classify(path: &Path, e: sled::Error) -> StoreError {
    let path = path.to_path_buf();
    match e {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
        {
            StoreError::Locked { path }
        }
        sled::Error::Io(source) => StoreError::Io { path, source },
        sled::Error::Corruption { at, .. } => StoreError::Corrupt { path, detail: format!("corrupt data at {at:?}") },
        other => StoreError::Corrupt { path, detail: other.to_string() },
    }
}
