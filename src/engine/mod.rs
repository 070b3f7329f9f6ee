//! The one owner of mutable state. Takes poll outcomes, turns cumulative counters into samples,
//! writes them to the store in batches, keeps the hot windows in memory, tracks source health,
//! and publishes a fresh `Snapshot` after each burst of changes. The UI talks to it with
//! `Command`s.
//!
//! # Data flow
//!
//! Data flows one way: pollers (one tokio task per source) → the engine (the one owner of state:
//! cursors, in-memory windows, health, sled writes in transactions of whole campaigns, about 100
//! samples each) → an immutable `Snapshot` on a watch channel, one per burst of answers (published
//! 20 ms after the last answer of a burst, at most 10 a second) → the UI, which renders from the
//! snapshot only and sends `Command`s back. The UI redraws on new data, input or resize — at
//! most 20 frames a second, each wrapped in synchronized output — and never on a timer while
//! idle.
//!
//! Inside the engine, one file per job: `ingest` (readings → cursors → samples), `persist`
//! (the `Writer`: the store handle, the queue of samples, the write-error state, pruning,
//! packing, compaction), `alerting` (judge → step → persist), `publish` (views and snapshots),
//! `series` (chart series and sparkline history), `startup` (the first frame, then every
//! channel's state), `actions` (control actions and the journal), `analysis` (notes and the
//! analyze view), `health` (each source's polls).

mod actions;
mod alerting;
mod analysis;
pub mod health;
mod ingest;
mod persist;
mod publish;
mod series;
pub mod snapshot;
mod startup;

pub use startup::Starting;

use crate::clock::SharedClock;
use crate::domain::{Campaign, ChannelCursor, Counters, Recent, Sample};
use crate::domain::{ChannelKey, ChannelStatus, Health};
use crate::poll::PollOutcome;
use health::SourceState;
use snapshot::{ChannelView, Snapshot, Window};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Samples kept in memory per channel, one per storage period (two hours at one a minute),
/// for sparklines and the alert rules' windows.
pub const RECENT: usize = 120;
/// Changes are published at most this often: responses spread over a poll interval then cost
/// one snapshot per window, not one each.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Responses arriving within this of each other are one burst, published together once it is
/// over (or `PUBLISH_EVERY` after it began): sources polled on the same beat answer a few
/// milliseconds apart, and one snapshot (one frame) for all of them costs half of two.
pub const BURST_GAP: Duration = Duration::from_millis(20);
pub use crate::domain::time::STORE_RESOLUTION_MS;
/// Stored samples are written at most this often (see `ingest_pending`). A crash loses at most
/// the resolution of the last minute or so, never counts: the cursor written is the one of the
/// last sample written, and the sources' counters are cumulative, so the next reading after a
/// restart carries what the lost readings held.
pub const COMMIT_EVERY: Duration = Duration::from_secs(5);
#[derive(Debug)]
pub enum Command {
    /// Load the chart series of a channel over a window (and keep it fresh).
    Series { key: ChannelKey, window: Window },
    /// The view needs neither a series nor an analysis any more: stop computing them.
    ClearDetail,
    /// The campaign whose channels the screen shows (`None`: none). An engine in the same
    /// process has every figure at hand; a service sends a client that campaign's first.
    Focus(Option<String>),
    /// Silence an alert for `for_ms` of campaign time.
    Silence { key: crate::alert::AlertKey, for_ms: i64, by: String },
    /// Acknowledge an alert as `by`.
    Ack { key: crate::alert::AlertKey, by: String },
    /// Send control actions on a campaign's channels, confirmed by `by`.
    Apply {
        campaign: String,
        changes: Vec<crate::optimize::recommend::Change>,
        recommendation: Option<String>,
        by: String,
    },
    /// Undo a journal entry (the campaign's last applied action when `None`).
    Undo { entry: Option<u64>, campaign: Option<String>, by: String },
    /// Add an annotation at the present moment (campaign time).
    Note { campaign: String, channel: Option<String>, text: String, by: String },
    /// A campaign's plan edited (`e` in the cockpit): stored, and in force at once when it polls
    /// as before (else from the next start).
    Plan { campaign: Box<crate::domain::Campaign>, by: String },
    /// Mark a task of a campaign's checklist done (or open again) as `by`: `task` is its
    /// number, title or words of it (`Campaign::find_task`).
    Task { campaign: String, task: String, done: bool, by: String },
    /// Compute the analysis of a campaign over a window, compared with an earlier campaign
    /// (an index into its candidates; the first when `None`), and keep it fresh.
    Analyze { campaign: String, window: crate::analyze::WindowKind, against: usize },
    /// Hide a recommendation for a while (campaign time).
    Snooze { recommendation: String, for_ms: i64 },
    /// The series of a channel over a window, as of now, for one client of a service (each
    /// has a detail of its own; `Series` is the one a single UI keeps fresh).
    SeriesFor { key: ChannelKey, window: Window, reply: oneshot::Sender<snapshot::SeriesView> },
    /// The analysis of a campaign, as of now, for one client of a service.
    AnalysisFor {
        campaign: String,
        window: crate::analyze::WindowKind,
        against: usize,
        reply: oneshot::Sender<Option<crate::analyze::data::Analysis>>,
    },
    /// How paging goes: the latest delivery error, `None` once deliveries work.
    Paging(Option<String>),
    /// Runs a job on the engine's store (a service's clients' commands: journal, report,
    /// campaign list, an import before the service plans its channels again).
    WithStore(StoreJob),
    /// Flush and stop; answers when done.
    Shutdown(oneshot::Sender<()>),
}

/// A job on the store.
pub struct StoreJob(pub Box<dyn FnOnce(&crate::store::Store) + Send>);

impl std::fmt::Debug for StoreJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreJob")
    }
}

/// Every planned channel's state, campaign by campaign in plan order: a channel is found by its
/// key, or by its slot (its index here), as the work done at every poll does.
type Channels = indexmap::IndexMap<ChannelKey, ChannelState, foldhash::fast::RandomState>;

/// Channels marked by slot (see `Channels`).
#[derive(Debug, Default)]
struct Marks(Vec<bool>);

impl Marks {
    fn set(&mut self, slot: usize) {
        if self.0.len() <= slot {
            self.0.resize(slot + 1, false);
        }
        self.0[slot] = true;
    }

    fn has(&self, slot: usize) -> bool {
        self.0.get(slot).copied().unwrap_or(false)
    }

    fn any_in(&self, span: std::ops::Range<usize>) -> bool {
        span.into_iter().any(|slot| self.has(slot))
    }

    fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().filter(|(_, m)| **m).map(|(slot, _)| slot)
    }
}

struct ChannelState {
    /// The campaign and the index of this channel's plan in it (shared, not copied).
    campaign: Arc<Campaign>,
    index: usize,
    /// The plan's name, kind and source, as every view shows them.
    labels: (Arc<str>, Option<Arc<str>>, Arc<str>),
    cursor: ChannelCursor,
    /// The cursor as last written (or being written).
    stored: persist::Stored,
    /// The readings of the current storage period, folded into one sample (see
    /// `STORE_RESOLUTION_MS`).
    open: Option<Sample>,
    recent: Recent,
    status: Option<ChannelStatus>,
    live_budget: Option<f64>,
    missing: Option<String>,
    last_reset_ms: Option<i64>,
    /// A `rows` source's periods (start → counters), whose sum is the channel's reading.
    periods: BTreeMap<i64, Counters>,
    /// How a channel read by periods has them (see `Channel::periods`).
    period_spec: Option<crate::domain::campaign::Periods>,
    /// The counters its source does not read (see `Channel::unmapped`).
    unmapped: u8,
    /// Hourly counters for the anomaly rules' baselines.
    history: crate::alert::anomaly::HourlyHistory,
    view: Arc<ChannelView>,
    dirty: bool,
    /// When the rules over windows were last judged (in `JUDGE_WINDOWS_EVERY_MS`).
    windows_judged: i64,
}

impl ChannelState {
    fn plan(&self) -> &crate::domain::Channel {
        &self.campaign.channels[self.index]
    }

    /// A channel read by periods takes its figures from them, each on the period it describes:
    /// today's counters are today's periods (the provisional ones too). The alert rules judge
    /// settled periods only, so a figure still moving (or an hour not reported yet) never pages:
    /// their recent samples are the settled periods, each standing at the moment it settled,
    /// and for hourly periods the settled hours are the anomaly rules' history. Daily periods
    /// give those rules no hours: a day is not judged by the hour.
    fn follow_periods(&mut self, spec: crate::domain::campaign::Periods, now: i64) {
        use crate::domain::time::{DAY_MS, HOUR_MS};
        let day = self.campaign.day_start_ms(now);
        self.cursor.day_start = day;
        self.cursor.today = Counters::sum(self.periods.range(day..day + DAY_MS).map(|(_, c)| c));
        let settled = self.periods.range(..now - spec.len_ms - spec.settle_ms + 1);
        let skip = settled.clone().count().saturating_sub(RECENT);
        let at = |p: &i64| p + spec.len_ms + spec.settle_ms;
        self.recent = crate::domain::Recent::from_entries(settled.clone().skip(skip).map(|(p, c)| (at(p), *c)), RECENT);
        let since = now - crate::alert::anomaly::HISTORY_HOURS as i64 * HOUR_MS;
        let hours = settled.filter(|(p, _)| **p >= since && spec.len_ms <= HOUR_MS).map(|(p, c)| (*p, *c));
        self.history.reset_from(hours);
    }

    /// Builds the view from the state as it is now.
    fn rebuild_view(&mut self, key: &ChannelKey, source: (Health, Option<String>, u32)) {
        self.view = Arc::new(publish::build_view(key, self, source));
        self.dirty = false;
    }
}

pub struct Engine {
    /// The store handle, the samples waiting to be written and the write-error state.
    writer: persist::Writer,
    clock: SharedClock,
    campaigns: Vec<Arc<Campaign>>,
    channels: Channels,
    sources: BTreeMap<String, SourceState>,
    /// The slots (in `channels`) of each source's channels.
    by_source: HashMap<String, Arc<[usize]>>,
    /// The slots of each campaign's channels, in the order of `campaigns` and of its plan.
    spans: Vec<std::ops::Range<usize>>,
    /// Set until the first snapshot has gone out (see `publish`).
    first_snapshot: bool,
    /// Channels whose rules and recommendations wait for the next snapshot.
    unjudged: Marks,
    /// The alerts or silences changed since the last snapshot (their lists are rebuilt then).
    alerts_changed: bool,
    /// When the sources' list in the snapshot was last rebuilt, and whether a health changed.
    sources_built: Option<Instant>,
    sources_changed: bool,
    tx: watch::Sender<Arc<Snapshot>>,
    snapshot: Snapshot,
    series_req: Option<(ChannelKey, Window)>,
    /// Channels whose sparkline history is still to be read from the store.
    backfill: Vec<ChannelKey>,
    alerts: BTreeMap<crate::alert::AlertKey, crate::alert::Alert>,
    silences: Vec<crate::alert::Silence>,
    journal: Vec<crate::optimize::journal::JournalEntry>,
    notes: Vec<crate::domain::Note>,
    analysis_req: Option<(String, crate::analyze::WindowKind, usize)>,
    /// When the analysis was last computed (wall clock), to refresh it at a calm pace.
    analysis_at: Option<Instant>,
    /// Days since launch of ended campaigns, which no longer change.
    ended_days: HashMap<String, Vec<Counters>>,
    snoozes: HashMap<String, i64>,
    outbox: Vec<crate::optimize::control::Dispatch>,
    read_only: bool,
    control_token: Option<crate::poll::Secret>,
    recs: HashMap<String, Vec<crate::optimize::recommend::Recommendation>>,
    recs_stale: bool,
    /// When each campaign's recommendations were last computed (campaign time).
    recs_at: HashMap<String, i64>,
    dirty: bool,
}

impl Engine {
    /// Refuses every action from now on (`--read-only`); the header says so.
    pub fn set_read_only(&mut self, on: bool) {
        self.read_only = on;
        self.snapshot.read_only = on;
        self.dirty = true;
        self.publish();
    }

    /// The bearer token for control endpoints.
    pub fn set_control_token(&mut self, token: Option<crate::poll::Secret>) {
        self.control_token = token;
    }

    /// Runs until shut down or until both inputs close. Flushes the store on the way out.
    pub async fn run(mut self, mut polls: mpsc::Receiver<PollOutcome>, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut done: Option<oneshot::Sender<()>> = None;
        let mut last_publish = tokio::time::Instant::now();
        // The first and the latest response not yet published.
        let mut burst: Option<(tokio::time::Instant, tokio::time::Instant)> = None;
        let (answers_tx, mut answers) =
            mpsc::channel::<(u64, Result<String, crate::optimize::control::ControlError>)>(64);
        let client = crate::poll::client();
        let token = self.control_token.clone();
        loop {
            for d in self.take_outbox() {
                let (client, tx, token) = (client.clone(), answers_tx.clone(), token.clone());
                tokio::spawn(async move {
                    let result =
                        crate::optimize::control::send(&client, &d, token.as_ref(), crate::optimize::control::TIMEOUT)
                            .await;
                    let _ = tx.send((d.entry, result)).await;
                });
            }
            let due = publish_due(last_publish, burst);
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown(reply)) => { done = Some(reply); break; }
                    Some(cmd) => {
                        self.command(cmd);
                        // The user asked for something: answer at once.
                        self.publish();
                        (last_publish, burst) = (tokio::time::Instant::now(), None);
                    }
                    None => break,
                },
                Some((entry, result)) = answers.recv() => {
                    self.on_control(entry, result);
                    self.publish();
                    (last_publish, burst) = (tokio::time::Instant::now(), None);
                }
                outcome = polls.recv() => match outcome {
                    Some(o) => {
                        self.on_poll(o);
                        while let Ok(o) = polls.try_recv() {
                            self.on_poll(o);
                        }
                        let now = tokio::time::Instant::now();
                        burst = Some((burst.map_or(now, |(first, _)| first), now));
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(due), if self.dirty => {
                    self.publish();
                    (last_publish, burst) = (tokio::time::Instant::now(), None);
                }
                _ = sleep_until_some(self.writer.commit_due(COMMIT_EVERY)) => self.write_pending(),
                _ = tick.tick() => self.on_tick(),
                // Lowest priority: read sparkline history a chunk at a time.
                _ = std::future::ready(()), if !self.backfill.is_empty() => self.backfill_some(256),
            }
        }
        self.commit();
        self.writer.flush();
        if let Some(reply) = done {
            let _ = reply.send(());
        }
    }

    pub fn command(&mut self, cmd: Command) {
        match cmd {
            // One view at a time: asking for a series ends the analysis, and the other way round.
            Command::Series { key, window } => {
                self.clear_analysis();
                self.series_req = Some((key, window));
                self.load_series();
            }
            Command::Focus(_) => {}
            Command::ClearDetail => {
                self.clear_analysis();
                self.series_req = None;
                self.snapshot.series = None;
                self.dirty = true;
            }
            Command::Ack { key, by } => {
                let now = self.clock.now_ms();
                if let Some(a) = self.alerts.get_mut(&key) {
                    a.ack = Some(crate::alert::Ack { by, at_ms: now });
                    let store = self.writer.store();
                    let saved = store.put_alert(a).and_then(|()| store.flush());
                    self.writer.saved(saved);
                    self.alerts_changed = true;
                    self.dirty = true;
                }
            }
            Command::Silence { key, for_ms, by } => {
                let s = crate::alert::Silence::for_alert(&key, self.clock.now_ms(), for_ms, &by);
                let saved = self.writer.store().put_silence(&s);
                self.writer.saved(saved);
                self.silences.push(s);
                self.alerts_changed = true;
                self.dirty = true;
            }
            Command::Apply { campaign, changes, recommendation, by } => {
                self.apply(&campaign, &changes, recommendation, &by)
            }
            Command::Undo { entry, campaign, by } => self.undo(entry, campaign.as_deref(), &by),
            Command::Snooze { recommendation, for_ms } => self.snooze(&recommendation, for_ms),
            Command::Note { campaign, channel, text, by } => self.note(campaign, channel, text, by),
            Command::Task { campaign, task, done, by } => self.mark_task(&campaign, &task, done, &by),
            Command::Plan { campaign, by } => self.replace_plan(*campaign, &by),
            Command::Analyze { campaign, window, against } => {
                self.series_req = None;
                self.snapshot.series = None;
                self.request_analysis(campaign, window, against);
            }
            Command::SeriesFor { key, window, reply } => {
                let _ = reply.send(self.series(key, window));
            }
            Command::AnalysisFor { campaign, window, against, reply } => {
                let _ = reply.send(self.analysis(&campaign, window, against));
            }
            Command::WithStore(job) => (job.0)(self.writer.store()),
            Command::Paging(error) => {
                self.snapshot.paging = error;
                self.dirty = true;
            }
            Command::Shutdown(_) => {}
        }
    }

    fn on_tick(&mut self) {
        self.close_open_samples(Some(self.clock.now_ms()));
        // A task falls due whether or not its channels report.
        if self.campaigns.iter().any(|c| !c.tasks.is_empty()) {
            self.evaluate_tasks();
        }
        let now = Instant::now();
        for src in self.sources.values_mut() {
            if src.refresh(now) {
                self.sources_changed = true;
                for &slot in self.by_source.get(&src.url).into_iter().flat_map(|s| s.iter()) {
                    if let Some((_, ch)) = self.channels.get_index_mut(slot) {
                        ch.dirty = true;
                    }
                }
                self.dirty = true;
            }
        }
        let maintained = self.writer.maintain(self.channels.keys(), self.clock.now_ms());
        self.compact_store(maintained);
    }
}

/// Sleeps until `t`, or for ever without one.
async fn sleep_until_some(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// When the next snapshot goes out (if anything changed): `PUBLISH_EVERY` after the last one,
/// and, while responses are arriving, once their burst is over (`BURST_GAP` after the latest)
/// or `PUBLISH_EVERY` after it began, whichever is sooner.
fn publish_due(
    last_publish: tokio::time::Instant,
    burst: Option<(tokio::time::Instant, tokio::time::Instant)>,
) -> tokio::time::Instant {
    let earliest = last_publish + PUBLISH_EVERY;
    match burst {
        Some((first, latest)) => earliest.max((latest + BURST_GAP).min(first + PUBLISH_EVERY)),
        None => earliest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_responses_is_published_once_it_is_over() {
        let ms = |n: u64| Duration::from_millis(n);
        let t0 = tokio::time::Instant::now();
        // Nothing published for a while: the burst decides.
        let last = t0 - ms(900);
        assert_eq!(publish_due(last, None), last + PUBLISH_EVERY);
        assert_eq!(publish_due(last, Some((t0, t0))), t0 + BURST_GAP);
        assert_eq!(publish_due(last, Some((t0, t0 + ms(4)))), t0 + ms(4) + BURST_GAP);
        // Responses that keep coming are published every PUBLISH_EVERY all the same.
        assert_eq!(publish_due(last, Some((t0, t0 + ms(95)))), t0 + PUBLISH_EVERY);
        // Never sooner than PUBLISH_EVERY after the last snapshot.
        let recent = t0 - ms(50);
        assert_eq!(publish_due(recent, Some((t0, t0))), recent + PUBLISH_EVERY);
    }
}
