//! The sled database behind a typed API. Only this module names sled. One tree per kind of record;
//! values are JSON so that added fields stay readable; sample keys end in a big-endian
//! timestamp so a range scan is a time window. One writer: the engine.
//!
//! One file per tree or job, each its own `impl Store`: `schema` (version, migrations, the
//! manifest), `campaigns` (plans and their totals), `alerts` (states and silences), `journal`,
//! `notes` (and snoozes), `samples` (cursors, samples, rollups, packing, pruning),
//! `compaction`.
//!
//! # Layout, packing and compaction
//!
//! Samples are keyed `campaign ‖ channel ‖ big-endian time`, so a time window is one range scan;
//! raw samples are kept 48 h (campaign time), hourly rollups (and hourly segment rollups, for
//! sources that send segments) for ever. Samples are stored at a resolution of one minute: the
//! readings of a channel within a minute (every reading, at 1 s polls) are folded into one stored
//! sample, written with the channel's cursor as that sample left it, every 5 s at most. The last
//! 120 samples of each channel kept in memory for the sparklines and the alert rules are folded
//! the same way (the sample of the minute under way grows with every reading): two hours at any
//! poll rate, the same after a restart, when they are read back from the store (sparklines draw
//! counts and money per minute of each sample's interval). A crash costs the resolution of the
//! minute under way, never counts: the sources' counters are cumulative, so the first reading
//! after the restart carries what the lost readings held. Each channel's current hourly rollup is
//! kept in memory and written, not read back, as samples come in. Once an hour, each channel's
//! samples of every hour that closed (10 minutes ago or more) are packed into one record, and its
//! hourly rollups and segment rollups of every day that closed into one record per day: sled
//! keeps at most 16 records in a leaf and reads where every leaf lies when it opens, so opening
//! takes time in proportion to the records (a week of hourly rollups is 7 records per channel
//! instead of 168, two days of minute samples 48 instead of 2,880). Readers merge the blocks
//! with the records written since; a record late for a packed block is added to it (or, for a
//! sample, stands over the packed one) at the next packing. Raw retention removes packed hours
//! whole, so a sample is kept 48 to 49 hours. Start-up draws its first frame from the campaigns
//! and one record per campaign that sums up its channels' cursors (campaign-to-date totals and
//! today's figures), written in the same transaction as the cursors; every channel's cursor is
//! then read on another thread (two, split at the middle campaign) while that frame is on screen.
//! Totals that no longer sum up a campaign's channels (its channels changed while the cockpit was
//! away, or a writer that does not keep them wrote the cursors) are not shown, and are written
//! again once the cursors are read. Charts read their history when they open, and the last 120
//! samples per channel are read in the background.
//!
//! sled does not give back the space of records that were overwritten or deleted when their
//! lifetimes mix, so the database is compacted: once its file is a quarter larger than after the last
//! compaction (64 MiB at least), every record is copied into `<db>.compacting` on a background
//! thread while data keeps coming in (the header says `compacting DB…`); the writes made
//! meanwhile are replayed onto the copy, which is then put in place of the old file. A copy cut
//! short by a crash is deleted, a swap cut short is finished, on the next start.

mod alerts;
mod campaigns;
mod codec;
mod compaction;
mod journal;
mod notes;
mod periods;
mod samples;
mod schema;
mod tools;

pub use tools::CheckReport;

use crate::domain::{ChannelKey, Counters, SegmentCounters};
use codec::Record;
use compaction::recover_compaction;
pub use compaction::{COMPACT_FLOOR_BYTES, COMPACT_GROWTH, Compaction};
pub use samples::Ingest;
use std::path::{Path, PathBuf};

/// The layout this build reads and writes. Older layouts are migrated on open; newer ones are
/// refused untouched.
pub const SCHEMA_VERSION: u32 = 4;

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
    #[error(
        "the database at {path} has schema version {found}: this command only reads, so it leaves the file as it is; \
         run `cockpit db migrate --db {path}` first (any cockpit that writes to it does the same)"
    )]
    NeedsMigration { path: PathBuf, found: u32 },
    #[error(
        "the database at {path} has an interrupted compaction to finish: this command only reads; \
         run `cockpit db check --db {path}` first, which finishes it"
    )]
    NeedsRecovery { path: PathBuf },
    #[error("the database at {path} is opened read-only here: {what} is not written")]
    ReadOnly { path: PathBuf, what: &'static str },
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

/// What the store is writing and since when, for a watchdog outside the writer: a write
/// that takes seconds (a stuck disk, a sled stall) is seen while it lasts.
#[derive(Default)]
pub struct WriteWatch(std::sync::Mutex<Option<(&'static str, std::time::Instant)>>);

impl WriteWatch {
    /// The write under way for at least `after`: what, and for how long.
    pub fn stalled(&self, after: std::time::Duration) -> Option<(&'static str, std::time::Duration)> {
        let w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.map(|(what, since)| (what, since.elapsed())).filter(|(_, d)| *d >= after)
    }
}

/// Whether the injected stall (`COCKPIT_FAULT=stall-writes-of:WHAT:SECS`) has happened.
static STALLED_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Clears the watch when the write ends.
struct Writing<'a>(&'a WriteWatch);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let ended = self.0.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((what, since)) = ended.filter(|(_, since)| since.elapsed() >= STALL_AFTER) {
            tracing::info!("the database finished writing {what} after {:.1} s", since.elapsed().as_secs_f64());
        }
    }
}

/// A write that takes longer than this is a stall: shown in the header and logged.
pub const STALL_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

pub struct Store {
    path: PathBuf,
    watch: std::sync::Arc<WriteWatch>,
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
    /// Opened by a command that only reads: nothing is written, not even a migration.
    read_only: bool,
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

/// Every tree of this schema.
const TREES: [&str; 16] = [
    "meta",
    "campaigns",
    "channels",
    "samples",
    "rollups",
    "alerts",
    "silences",
    "journal",
    "snoozes",
    "notes",
    "segment_rollups",
    "sample_hours",
    "rollup_days",
    "segment_rollup_days",
    "campaign_totals",
    "period_rows",
];

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
    /// The counters of each period of a `rows` source: channel ‖ period start → counters.
    period_rows: sled::Tree,
}

impl Store {
    /// Every record of a tree, decoded, in key order.
    fn all<T: Record>(&self, tree: &sled::Tree, name: &'static str) -> Result<Vec<T>> {
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                self.decode(name, &k, &v)
            })
            .collect()
    }

    /// Every record of a tree keyed by campaign first, read in two halves side by side (see
    /// `scan_halves`), in key order.
    fn all_in_halves<T: Record + Send>(&self, tree: &sled::Tree, name: &'static str) -> Result<Vec<T>> {
        let [mut lower, upper] = self.scan_halves(tree, |k, v| self.decode(name, k, v).map(Some))?;
        lower.extend(upper);
        Ok(lower)
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

    /// Opens (creating if needed) the database at `path`, migrating it to this schema.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_as(path, false)
    }

    /// Opens the database at `path` for reading only: the file is left byte for byte as it
    /// was. A database of schema 2 is read as it is; one that needs more (an older schema, an
    /// interrupted compaction) is refused with the command that prepares it.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let path = path.to_path_buf();
        if !path.join("db").is_file() {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "there is no database here yet (`cockpit campaign import FILE` makes one)",
                ),
            });
        }
        if compaction::needs_recovery(&path) {
            return Err(StoreError::NeedsRecovery { path });
        }
        Store::open_as(&path, true)
    }

    fn open_as(path: &Path, read_only: bool) -> Result<Store> {
        let path = path.to_path_buf();
        if !read_only {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::Io { path: path.clone(), source })?;
            }
            recover_compaction(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        }
        // A database with data but without its schema record was cut short or damaged: sled
        // would quietly start from an older state, so it is refused instead.
        let had_data = path.join("db").metadata().is_ok_and(|m| m.len() > 0);
        let db = open_sled(&path)?;
        if read_only {
            // Opening a tree that is not there would create it.
            let names = db.tree_names();
            let has = |t: &str| names.iter().any(|n| n.as_ref() == t.as_bytes());
            let found = has("meta").then(|| db.open_tree("meta").ok()).flatten();
            let found = found.and_then(|m| m.get("schema").ok().flatten());
            let found = found.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u32::from_be_bytes);
            if found > SCHEMA_VERSION {
                return Err(StoreError::FutureSchema { path, found, supported: SCHEMA_VERSION });
            }
            if found < 2 || !TREES.iter().all(|t| has(t)) {
                return Err(StoreError::NeedsMigration { path, found });
            }
        }
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
            period_rows: tree("period_rows")?,
            db,
        };
        let mut store = Store {
            path,
            watch: Default::default(),
            trees: Some(trees),
            id_base: 0,
            copying: None,
            hours: Default::default(),
            read_only,
        };
        store.id_base = store.meta_u64("id_base")?;
        if !read_only {
            store.check_schema(had_data)?;
        }
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
        let mut fresh = Store::open_as(&self.path, self.read_only)?;
        fresh.watch = self.watch.clone();
        *self = fresh;
        Ok(())
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

    fn decode<T: Record>(&self, tree: &'static str, key: &[u8], v: &[u8]) -> Result<T> {
        T::from_bytes(v).map_err(|detail| StoreError::Decode {
            path: self.path.clone(),
            tree,
            key: String::from_utf8_lossy(key).replace('\0', "/"),
            detail,
        })
    }

    fn encode<T: Record>(v: &T) -> Vec<u8> {
        v.to_bytes()
    }

    /// Writes one record (`None` removes it), noted for a compaction under way. Returns whether
    /// the record was there before.
    fn write(&self, tree: &'static str, key: &[u8], value: Option<&[u8]>) -> Result<bool> {
        self.writable(tree)?;
        let _writing = self.writing(tree);
        let t = self.t()?.by_name(tree);
        let before = match value {
            Some(v) => t.insert(key, v),
            None => t.remove(key),
        }
        .map_err(|e| self.err(e))?;
        self.logged(tree, key, value);
        Ok(before.is_some())
    }

    /// Marks a write under way until the guard is dropped (see `WriteWatch`).
    fn writing(&self, what: &'static str) -> Writing<'_> {
        *self.watch.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((what, std::time::Instant::now()));
        // Fault injection for the stall test: the first write of this kind hangs the given
        // seconds (`COCKPIT_FAULT=stall-writes-of:WHAT:SECS`, read once).
        static STALL: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
        let stall = STALL.get_or_init(|| {
            let f = std::env::var("COCKPIT_FAULT").ok()?;
            let (tree, secs) = f.strip_prefix("stall-writes-of:")?.split_once(':')?;
            Some((tree.to_string(), secs.parse().unwrap_or(5)))
        });
        if let Some((tree, secs)) = stall
            && tree == what
            && !STALLED_ONCE.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            std::thread::sleep(std::time::Duration::from_secs(*secs));
        }
        Writing(&self.watch)
    }

    /// What is being written, for a watchdog.
    pub fn write_watch(&self) -> std::sync::Arc<WriteWatch> {
        self.watch.clone()
    }

    /// An error when the store was opened read-only.
    fn writable(&self, what: &'static str) -> Result<()> {
        match self.read_only {
            true => Err(StoreError::ReadOnly { path: self.path.clone(), what }),
            false => Ok(()),
        }
    }

    /// Notes a write for the compaction under way, if any.
    fn logged(&self, tree: &'static str, key: &[u8], value: Option<&[u8]>) {
        if let Some(c) = &self.copying {
            let mut log = c.log.lock().unwrap_or_else(|p| p.into_inner());
            log.push((tree, key.to_vec(), value.map(<[u8]>::to_vec)));
        }
    }

    pub fn flush(&self) -> Result<()> {
        self.flush_bytes().map(|_| ())
    }

    /// `flush`, saying how many bytes it wrote to the log.
    pub fn flush_bytes(&self) -> Result<usize> {
        let _writing = (!self.read_only).then(|| self.writing("a flush"));
        self.t()?.db.flush().map_err(|e| self.err(e))
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.t().ok().and_then(|t| t.db.size_on_disk().ok()).unwrap_or(0)
    }
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
            "period_rows" => &self.period_rows,
            other => unreachable!("no tree is called {other}"),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.abandon_compaction();
        if self.read_only {
            return;
        }
        // sled brings its snapshot up to the end of its log when it opens, which would be a
        // write by the next command even if that command only reads. Opened once more here, as
        // the writer closes, it is brought up to date now (and the next open has less to read).
        if let Some(trees) = self.trees.take() {
            drop(trees);
            let _ = open_sled(&self.path);
        }
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

/// `<dir>.<suffix>` beside the database directory.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// sled's database at `path`. sled lets go of its file lock from a background thread a
/// moment after the last handle is dropped: a lock still held is retried briefly before "in
/// use" is reported.
fn open_sled(path: &Path) -> Result<sled::Db> {
    let mut tries = 0;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|e| classify(path, e))
        {
            Err(StoreError::Locked { .. }) if tries < 10 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
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
