//! The one owner of mutable state. Takes poll outcomes, turns cumulative counters into samples,
//! writes them to the store in batches, keeps the hot windows in memory, tracks source health,
//! and publishes a fresh `Snapshot` after each burst of changes. The UI talks to it with
//! `Command`s.

mod actions;
mod analysis;
pub mod health;
pub mod snapshot;

use crate::clock::SharedClock;
use crate::domain::time::{DAY_MS, HOUR_MS};
use crate::domain::{Campaign, CampaignTotals, ChannelCursor, Counters, Recent, Sample};
use crate::domain::{ChannelKey, ChannelStatus, Health};
use crate::poll::wire::StatsDoc;
use crate::poll::{PollError, PollOutcome, SourceSpec};
use crate::store::{Ingest, Store};
use health::SourceState;
use snapshot::{CampaignView, ChannelView, SeriesView, Snapshot, SourceView, Window};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Samples kept in memory per channel, one per storage period (two hours at one a minute),
/// for sparklines and the alert rules' windows.
pub const RECENT: usize = 120;
/// Raw samples older than this (campaign time) are pruned; hourly rollups stay.
pub const RAW_RETENTION_MS: i64 = 48 * HOUR_MS;
/// Changes are published at most this often: responses spread over a poll interval then cost
/// one snapshot per window, not one each.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Responses arriving within this of each other are one burst, published together once it is
/// over (or `PUBLISH_EVERY` after it began): sources polled on the same beat answer a few
/// milliseconds apart, and one snapshot (one frame) for all of them costs half of two.
pub const BURST_GAP: Duration = Duration::from_millis(20);
/// Samples are stored at this resolution: the readings of a channel within one such period of
/// source time are folded into one stored sample (the screen and the alert rules see every
/// reading, folded the same way in `RECENT`). A channel polled every second then costs one
/// write a minute, not sixty.
pub const STORE_RESOLUTION_MS: i64 = 60_000;
/// Stored samples are written at most this often (see `ingest_pending`). A crash loses at most
/// the resolution of the last minute or so, never counts: the cursor written is the one of the
/// last sample written, and the sources' counters are cumulative, so the next reading after a
/// restart carries what the lost readings held.
pub const COMMIT_EVERY: Duration = Duration::from_secs(5);
/// Samples written in one transaction, give or take a campaign (see `ingest_pending`).
const WRITE_BATCH: usize = 100;
/// How often the store is opened again while its writes fail.
const REOPEN_EVERY: Duration = Duration::from_secs(2);
/// A source's `generated_at` further ahead of our clock than this is not trusted.
const MAX_FUTURE_SKEW_MS: i64 = 5 * 60_000;
/// A source's `generated_at` further behind our clock than this is not trusted either.
const MAX_PAST_SKEW_MS: i64 = 60 * 60_000;

#[derive(Debug)]
pub enum Command {
    /// Load the chart series of a channel over a window (and keep it fresh).
    Series { key: ChannelKey, window: Window },
    /// The view needs neither a series nor an analysis any more: stop computing them.
    ClearDetail,
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
    /// Compute the analysis of a campaign over a window, compared with an earlier campaign
    /// (an index into its candidates; the first when `None`), and keep it fresh.
    Analyze { campaign: String, window: crate::analyze::WindowKind, against: usize },
    /// Hide a recommendation for a while (campaign time).
    Snooze { recommendation: String, for_ms: i64 },
    /// Flush and stop; answers when done.
    Shutdown(oneshot::Sender<()>),
}

struct ChannelState {
    /// The campaign and the index of this channel's plan in it (shared, not copied).
    campaign: Arc<Campaign>,
    index: usize,
    /// The plan's name, kind and source, as every view shows them.
    labels: (Arc<str>, Option<Arc<str>>, Arc<str>),
    cursor: ChannelCursor,
    /// The cursor as last written (or being written).
    stored: Stored,
    /// The readings of the current storage period, folded into one sample (see
    /// `STORE_RESOLUTION_MS`).
    open: Option<Sample>,
    recent: Recent,
    status: Option<ChannelStatus>,
    live_budget: Option<f64>,
    missing: Option<String>,
    last_reset_ms: Option<i64>,
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

    /// Builds the view from the state as it is now.
    fn rebuild_view(&mut self, key: &ChannelKey, source: (Health, Option<String>, u32)) {
        self.view = Arc::new(build_view(key, self, source));
        self.dirty = false;
    }
}

pub struct Engine {
    store: Store,
    clock: SharedClock,
    campaigns: Vec<Arc<Campaign>>,
    channels: HashMap<ChannelKey, ChannelState>,
    sources: BTreeMap<String, SourceState>,
    by_source: HashMap<String, Arc<[ChannelKey]>>,
    /// Each campaign's channel keys, in the order of `campaigns`.
    keys: Vec<Vec<ChannelKey>>,
    /// Set until the first snapshot has gone out (see `publish`).
    first_snapshot: bool,
    /// Channels whose rules and recommendations wait for the next snapshot.
    unjudged: std::collections::HashSet<ChannelKey>,
    /// The alerts or silences changed since the last snapshot (their lists are rebuilt then).
    alerts_changed: bool,
    /// When the sources' list in the snapshot was last rebuilt, and whether a health changed.
    sources_built: Option<Instant>,
    sources_changed: bool,
    /// Stored samples not yet written, oldest first, each with its channel's cursor as that
    /// sample left it.
    pending: Vec<(ChannelKey, Sample, ChannelCursor)>,
    last_commit: tokio::time::Instant,
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
    last_prune: Instant,
    /// The hour (campaign time) of the last packing of closed blocks (see `Store::pack`).
    packed_hour: i64,
    /// The last attempt to open the store again after a write error.
    last_reopen: Option<Instant>,
}

impl Engine {
    /// Loads every campaign's state from the store: cursors (totals) and today's counters from
    /// the hourly rollups. Sparkline history is backfilled by `run` after the first snapshot,
    /// so the first frame does not wait for it.
    pub fn new(
        store: Store,
        clock: SharedClock,
        sources: &[SourceSpec],
    ) -> crate::store::Result<(Engine, watch::Receiver<Arc<Snapshot>>)> {
        let campaigns = store.campaigns()?;
        Engine::start(store, clock, campaigns, sources)
    }

    /// `new` for a caller that has read the campaigns already (to find their sources).
    pub fn start(
        store: Store,
        clock: SharedClock,
        campaigns: Vec<Campaign>,
        sources: &[SourceSpec],
    ) -> crate::store::Result<(Engine, watch::Receiver<Arc<Snapshot>>)> {
        let (starting, rx) = Engine::open(store, clock, campaigns, sources)?;
        Ok((starting.load()?, rx))
    }

    /// The first half of `start`: reads what the first frame shows (each campaign's stored
    /// totals, the alerts) and publishes it, so that the caller can draw while `load` reads
    /// every channel's state. When a campaign's totals are missing or no longer sum up its
    /// channels, nothing is published until `load` is done.
    pub fn open(
        store: Store,
        clock: SharedClock,
        campaigns: Vec<Campaign>,
        sources: &[SourceSpec],
    ) -> crate::store::Result<(Starting, watch::Receiver<Arc<Snapshot>>)> {
        let now = clock.now_ms();
        let mut campaigns: Vec<Arc<Campaign>> = campaigns.into_iter().map(Arc::new).collect();
        // Running campaigns first; ended ones after them, the latest first.
        campaigns.sort_by_key(|c| (c.end_ms() < now).then_some(std::cmp::Reverse(c.end_ms())));
        let alerts: BTreeMap<_, _> = store.alerts()?.into_iter().map(|a| (a.key.clone(), a)).collect();
        let silences = store.silences()?;
        let created = Instant::now();
        let sources: BTreeMap<String, SourceState> =
            sources.iter().map(|s| (s.url.clone(), SourceState::new(&s.url, s.interval, s.timeout, created))).collect();
        let mut snapshot = Snapshot {
            now_ms: now,
            speed: clock.speed(),
            db_path: store.path().display().to_string(),
            ..Snapshot::default()
        };
        // A damaged record here costs only the early frame: `load` reads the cursors anyway
        // and writes the totals again.
        let stored_totals = store.campaign_totals().unwrap_or_else(|e| {
            tracing::warn!("campaign totals not read ({e}); the first frame waits for every channel");
            HashMap::new()
        });
        let early: Option<Vec<Arc<CampaignView>>> = campaigns
            .iter()
            .map(|c| {
                let t = stored_totals.get(&c.id).filter(|t| t.plan == c.plan_print())?;
                Some(Arc::new(CampaignView::summed(c.clone(), t, now)))
            })
            .collect();
        if let Some(views) = early {
            snapshot.campaigns = views;
            snapshot.alerts = sorted_alerts(&alerts);
            snapshot.silences = Arc::new(silences.clone());
            let mut counts: HashMap<&str, usize> = HashMap::with_capacity(sources.len());
            for ch in campaigns.iter().flat_map(|c| &c.channels) {
                *counts.entry(ch.source.as_str()).or_default() += 1;
            }
            snapshot.sources = source_views(&sources, |url| counts.get(url).copied().unwrap_or(0));
            snapshot.generation = 1;
        }
        let (tx, rx) = watch::channel(Arc::new(snapshot.clone()));
        let starting = Starting {
            store,
            clock,
            campaigns,
            sources,
            alerts,
            silences,
            stored_totals,
            tx,
            snapshot,
            read_only: false,
            control_token: None,
        };
        Ok((starting, rx))
    }

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
                _ = tokio::time::sleep_until(self.last_commit + COMMIT_EVERY), if !self.pending.is_empty() => {
                    self.write_pending();
                }
                _ = tick.tick() => self.on_tick(),
                // Lowest priority: read sparkline history a chunk at a time.
                _ = std::future::ready(()), if !self.backfill.is_empty() => self.backfill_some(256),
            }
        }
        self.commit();
        if let Err(e) = self.store.flush() {
            tracing::error!("flush on exit failed: {e}");
        }
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
                    let saved = self.store.put_alert(a).and_then(|()| self.store.flush());
                    if let Err(e) = saved {
                        self.snapshot.store_error = Some(e.to_string());
                    }
                    self.alerts_changed = true;
                    self.dirty = true;
                }
            }
            Command::Silence { key, for_ms, by } => {
                let s = crate::alert::Silence::for_alert(&key, self.clock.now_ms(), for_ms, &by);
                if let Err(e) = self.store.put_silence(&s) {
                    self.snapshot.store_error = Some(e.to_string());
                }
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
            Command::Analyze { campaign, window, against } => {
                self.series_req = None;
                self.snapshot.series = None;
                self.request_analysis(campaign, window, against);
            }
            Command::Shutdown(_) => {}
        }
    }

    /// Runs every campaign's rules over the current views and moves the alerts; changed alerts
    /// are written to the store.
    fn evaluate_alerts(&mut self, changed: &std::collections::HashSet<ChannelKey>) {
        use crate::alert::rules::{CampaignInput, ChannelInput, evaluate};
        use crate::alert::state::{AlertState, Transition, step};
        let now = self.clock.now_ms();
        let judged = now.div_euclid(crate::alert::rules::JUDGE_WINDOWS_EVERY_MS);
        let mut verdicts = Vec::new();
        let listed: std::collections::HashSet<(&str, &str)> =
            self.alerts.keys().map(|k| (k.campaign.as_str(), k.channel.as_str())).collect();
        // Only what changed is judged again: a channel without new data or a new health state
        // would get the same verdicts.
        for view in &self.snapshot.campaigns {
            let c = &view.campaign;
            if !view.channels.iter().any(|v| changed.contains(&v.key)) {
                continue;
            }
            let inputs: Vec<ChannelInput<'_>> = view
                .channels
                .iter()
                .filter(|v| changed.contains(&v.key))
                .map(|v| (v, self.channels.get(&v.key)))
                .map(|(v, st)| ChannelInput {
                    id: &v.key.channel,
                    plan: st.map(ChannelState::plan),
                    recent: &v.recent,
                    health: v.health,
                    last_error: v.last_error.as_deref(),
                    failures: v.failures,
                    last_reset_ms: v.last_reset_ms,
                    today: v.today,
                    daily_budget: v.daily_budget,
                    paused: v.status == Some(ChannelStatus::Paused),
                    history: st.map(|st| &st.history),
                    windows: st.is_none_or(|st| st.windows_judged != judged),
                })
                .collect();
            let active = |k: &crate::alert::AlertKey| {
                self.alerts.get(k).is_some_and(|a| matches!(a.state, AlertState::Pending | AlertState::Firing))
            };
            let has_data = view.channels.iter().any(|v| v.last_at > 0);
            verdicts.extend(evaluate(
                &CampaignInput { campaign: c, totals: view.totals, has_data },
                &inputs,
                now,
                &active,
                &|channel| listed.contains(&(c.id.as_str(), channel)),
            ));
        }
        for key in changed {
            if let Some(st) = self.channels.get_mut(key) {
                st.windows_judged = judged;
            }
        }
        for (key, verdict, timing) in verdicts {
            // Too little to judge: the alert stays as it is.
            let Some(verdict) = verdict else { continue };
            let before = self.alerts.remove(&key);
            let (after, transition) = step(before.clone(), &key, &verdict, timing, now);
            let after = after.map(|mut a| {
                if transition == Transition::Fired {
                    a.ack = None;
                }
                a
            });
            if after != before {
                let saved = match &after {
                    Some(a) => self.store.put_alert(a),
                    None => self.store.remove_alert(&key),
                };
                if let Err(e) = saved {
                    self.snapshot.store_error = Some(e.to_string());
                }
                self.alerts_changed = true;
                self.dirty = true;
                if matches!(transition, Transition::Fired | Transition::Resolved) {
                    tracing::info!(alert = ?key, "{transition:?}: {}", verdict.summary);
                    let fired = transition == Transition::Fired;
                    let text = match (&after, fired) {
                        (Some(a), true) => format!("{} fired: {}", a.severity, verdict.summary),
                        _ => format!("resolved: {}", verdict.summary),
                    };
                    self.add_note(crate::domain::Note {
                        id: 0,
                        at_ms: now,
                        campaign: key.campaign.clone(),
                        channel: (!key.channel.is_empty()).then(|| key.channel.clone()),
                        kind: crate::domain::NoteKind::Alert,
                        text,
                        by: "cockpit".into(),
                        rule: Some(key.rule.clone()),
                        fired: Some(fired),
                    });
                }
            }
            if let Some(a) = after {
                self.alerts.insert(key, a);
            }
        }
        // Expired silences go (the alerts they covered show again).
        let (live, expired): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.silences).into_iter().partition(|s| s.active(now));
        for s in expired {
            if let Err(e) = self.store.remove_silence(&s.id) {
                tracing::warn!("removing expired silence {}: {e}", s.id);
            }
            self.alerts_changed = true;
            self.dirty = true;
        }
        self.silences = live;
        // Resolved alerts stay on screen for a day of campaign time.
        let before = self.alerts.len();
        self.alerts.retain(|_, a| a.resolved_ms.is_none_or(|r| now - r < DAY_MS));
        self.alerts_changed |= self.alerts.len() != before;
    }

    /// Takes in one poll's outcome.
    pub fn on_poll(&mut self, o: PollOutcome) {
        tracing::trace!(url = %o.url, latency = ?o.latency, "poll outcome");
        let keys = self.by_source.get(&o.url).cloned().unwrap_or_else(|| Arc::from([]));
        let Some(src) = self.sources.get_mut(&o.url) else { return };
        let was = (src.health, src.last_error.clone());
        match o.result {
            Err(e) => {
                let bad = matches!(e, PollError::BadData(_) | PollError::TooLarge(_));
                tracing::warn!(url = %o.url, "poll failed: {e}");
                src.record_err(o.received, o.latency, e.to_string(), bad);
            }
            Ok(doc) => {
                let (at, skew) = sample_time(&doc, o.fetched_at);
                let mut missing = Vec::new();
                let by_id = ById::new(&doc);
                for key in keys.iter() {
                    if !self.take_reading(key, &by_id, at) {
                        missing.push(key.channel.clone());
                    }
                }
                // A channel missing from the answer is that channel's problem (it shows as bad
                // data on its own); the source and its other channels are fine.
                if !missing.is_empty() {
                    tracing::warn!(url = %o.url, "channels not in the response: {}", missing.join(", "));
                }
                let src = self.sources.get_mut(&o.url).expect("checked above");
                src.record_ok(o.received, o.latency, skew);
                self.snapshot.last_data = Some(o.received);
            }
        }
        let src = self.sources.get_mut(&o.url).expect("checked above");
        src.refresh(o.received);
        self.sources_changed |= was != (src.health, src.last_error.clone());
        for key in keys.iter() {
            if let Some(ch) = self.channels.get_mut(key) {
                ch.dirty = true;
            }
        }
        self.dirty = true;
    }

    /// Finds a channel in a document and advances its cursor; false when it is not there.
    fn take_reading(&mut self, key: &ChannelKey, doc: &ById<'_>, at: i64) -> bool {
        let Some(st) = self.channels.get_mut(key) else { return true };
        let campaign = st.campaign.clone();
        let sid = campaign.channels[st.index].source_id();
        // A document may carry several campaigns: prefer the entry labelled with ours.
        let found = doc
            .entries(sid)
            .filter(|c| c.campaign.as_deref().is_none_or(|camp| camp == key.campaign))
            .max_by_key(|c| c.campaign.is_some());
        let Some(stats) = found else {
            st.missing = Some("not in the source's response".into());
            return false;
        };
        st.missing = None;
        st.status = stats.status;
        st.live_budget = stats.daily_budget;
        // A reading in a later period closes the open sample, with the cursor as it left it.
        if st.open.as_ref().is_some_and(|o| period(o.at) != period(at)) {
            let open = st.open.take().expect("checked above");
            self.pending.push((key.clone(), open, st.cursor.clone()));
        }
        if let Some(mut sample) = st.cursor.advance(at, stats.totals, &stats.variants) {
            if !stats.segments.is_empty() {
                // A reading joining the open sample adds its segments' gains to it directly.
                match &mut st.open {
                    Some(open) if !sample.first => st.cursor.advance_segments_into(&stats.segments, &mut open.segments),
                    _ => st.cursor.advance_segments_into(&stats.segments, &mut sample.segments),
                }
            }
            // Kept in the cursor, so that a restart has today's figures without a scan.
            st.cursor.count_today(campaign.day_start_ms(at), &sample);
            if sample.reset {
                st.last_reset_ms = Some(sample.at);
            }
            if !sample.first {
                st.history.push(sample.at, &sample.delta);
                // Readings are kept by storage period, as they are stored: the window then
                // reaches as far back whether the source is polled every second or every
                // minute, and is the same after a restart, read back from the store.
                match st.recent.last() {
                    Some((last, _)) if period(*last) == period(sample.at) => {
                        st.recent.add_to_last(sample.at, &sample.delta, RECENT)
                    }
                    _ => st.recent.push((sample.at, sample.delta), RECENT),
                }
            }
            match &mut st.open {
                // A first reading holds everything since the channel started: stored alone.
                _ if sample.first => self.pending.push((key.clone(), sample, st.cursor.clone())),
                Some(open) => open.absorb(&sample),
                None => st.open = Some(sample),
            }
        }
        true
    }

    /// Moves the open samples of periods that have ended by `now_ms` (source time), or all of
    /// them, to the samples to be written.
    fn close_open_samples(&mut self, now_ms: Option<i64>) {
        for (key, st) in &mut self.channels {
            if st.open.as_ref().is_some_and(|o| now_ms.is_none_or(|now| period(o.at) < period(now))) {
                let open = st.open.take().expect("checked above");
                self.pending.push((key.clone(), open, st.cursor.clone()));
            }
        }
    }

    /// Writes the pending samples, with the totals of the campaigns whose cursors they move,
    /// in transactions of whole campaigns and `WRITE_BATCH` samples or so: what a minute's
    /// writes hold in memory at once is one batch's, not all of them. Whatever is written
    /// leaves `pending`; after an error the rest stays there for the next attempt.
    fn ingest_pending(&mut self) -> crate::store::Result<()> {
        // Stable: a channel's samples stay in order.
        self.pending.sort_by(|a, b| a.0.campaign.cmp(&b.0.campaign));
        let mut done = 0;
        while done < self.pending.len() {
            let mut end = done + 1;
            while end < self.pending.len()
                && (end - done < WRITE_BATCH || self.pending[end].0.campaign == self.pending[end - 1].0.campaign)
            {
                end += 1;
            }
            if let Err(e) = self.ingest_batch(done..end) {
                self.pending.drain(..done);
                return Err(e);
            }
            done = end;
        }
        self.pending.clear();
        Ok(())
    }

    /// Writes `pending[batch]`, of channels still planned, in one transaction.
    fn ingest_batch(&mut self, batch: std::ops::Range<usize>) -> crate::store::Result<()> {
        let mut moved = std::collections::BTreeSet::new();
        for (key, _, cursor) in &self.pending[batch.clone()] {
            if let Some(st) = self.channels.get_mut(key) {
                st.stored = Stored::of(cursor);
                moved.insert(key.campaign.as_str());
            }
        }
        let totals: Vec<(&str, CampaignTotals)> = (self.campaigns.iter().enumerate())
            .filter(|(_, c)| moved.contains(c.id.as_str()))
            .map(|(i, c)| (c.id.as_str(), self.stored_totals(i)))
            .collect();
        let items: Vec<Ingest<'_>> = self.pending[batch]
            .iter()
            .filter(|(key, _, _)| self.channels.contains_key(key))
            .map(|(key, sample, cursor)| Ingest { key, sample, cursor })
            .collect();
        self.store.ingest_with_totals(&items, &totals)
    }

    /// Writes everything taken in, the current period's readings too.
    pub fn commit(&mut self) {
        self.close_open_samples(None);
        self.write_pending();
    }

    /// Writes the samples of the storage periods that have ended, as the running engine does.
    pub fn commit_due(&mut self) {
        self.close_open_samples(Some(self.clock.now_ms()));
        self.write_pending();
    }

    /// Writes the closed samples, in one transaction.
    fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.snapshot.store_error.is_some() {
            // Writes fail: sled refuses every write after one failed, so nothing is written
            // until the store is opened again, every REOPEN_EVERY; the samples wait in memory
            // (the oldest half dropped past a million).
            if self.pending.len() > 1_000_000 {
                self.pending.drain(..self.pending.len() / 2);
            }
            if self.last_reopen.is_none_or(|t| t.elapsed() >= REOPEN_EVERY) {
                self.last_reopen = Some(Instant::now());
                self.reopen_store();
            }
        } else {
            self.last_commit = tokio::time::Instant::now();
            match self.ingest_pending() {
                Ok(()) => self.pending.clear(),
                Err(e) => {
                    tracing::error!("writing samples failed: {e}");
                    self.snapshot.store_error = Some(e.to_string());
                    self.last_reopen = Some(Instant::now());
                    self.dirty = true;
                }
            }
        }
    }

    /// Opens the store again after a write error and writes back what lives in memory: the
    /// pending samples, every alert's state, the silences and the notes.
    fn reopen_store(&mut self) {
        if let Err(e) = self.store.reopen() {
            tracing::error!("opening the database again failed: {e}");
            return;
        }
        tracing::info!("database opened again after a write error");
        let mut saved = self.ingest_pending();
        let stored: Vec<_> = self.store.alerts().unwrap_or_default().into_iter().map(|a| a.key).collect();
        for k in stored.iter().filter(|k| !self.alerts.contains_key(k)) {
            saved = saved.and_then(|()| self.store.remove_alert(k));
        }
        for a in self.alerts.values() {
            saved = saved.and_then(|()| self.store.put_alert(a));
        }
        for s in &self.silences {
            saved = saved.and_then(|()| self.store.put_silence(s));
        }
        // Notes are keyed by campaign, time and id: writing one again changes nothing.
        for n in &self.notes {
            saved = saved.and_then(|()| self.store.put_note(n));
        }
        match saved.and_then(|()| self.store.flush()) {
            Ok(()) => {
                self.pending.clear();
                self.snapshot.store_error = None;
            }
            Err(e) => self.snapshot.store_error = Some(e.to_string()),
        }
        self.dirty = true;
    }

    /// Keeps the database file bounded (see `Store::start_compaction`): the copy runs on a
    /// thread of its own while data comes in; once it is done the writes made meanwhile are
    /// replayed onto it and the files swapped, which holds up the engine for a moment.
    fn compact_store(&mut self, check_size: bool) {
        let result = if self.store.compaction_copied() {
            self.write_pending();
            self.store.finish_compaction().map(Some)
        } else if check_size && !self.store.compacting() && self.store.wants_compaction() {
            self.store.start_compaction().map(|()| None)
        } else {
            return;
        };
        match result {
            Ok(Some(c)) => tracing::info!(
                "database compacted: {:.1} → {:.1} MiB, {} records, {:.1} s",
                c.before_bytes as f64 / 1048576.0,
                c.after_bytes as f64 / 1048576.0,
                c.records,
                c.elapsed.as_secs_f64()
            ),
            Ok(None) => tracing::info!("compacting the database"),
            Err(e) => {
                tracing::error!("compacting the database failed: {e}");
                self.snapshot.store_error = Some(e.to_string());
                self.last_reopen = Some(Instant::now());
            }
        }
        self.snapshot.compacting = self.store.compacting();
        self.dirty = true;
    }

    /// Reads the stored recent samples of up to `n` channels into their sparkline windows,
    /// in front of anything that arrived since start.
    pub fn backfill_some(&mut self, n: usize) {
        // Everything taken in so far must be in the rollups read below.
        self.commit();
        let since = self.clock.now_ms() - crate::alert::anomaly::HISTORY_HOURS as i64 * HOUR_MS;
        for _ in 0..n {
            let Some(key) = self.backfill.pop() else { break };
            let Some(st) = self.channels.get_mut(&key) else { continue };
            let before = st.recent.first().map_or(i64::MAX, |(at, _)| *at);
            let want = RECENT.saturating_sub(st.recent.len());
            match self.store.recent_samples(&key, before, want) {
                Ok(older) => {
                    let older = older.into_iter().filter(|s| !s.first).map(|s| (s.at, s.delta));
                    st.recent = Recent::from_entries(older.chain(st.recent.iter().copied()), RECENT);
                    st.dirty = true;
                    self.dirty = true;
                }
                Err(e) => tracing::warn!("reading recent samples of {key}: {e}"),
            }
            match self.store.rollups(&key, since, i64::MAX) {
                Ok(hours) => st.history.reset_from(hours),
                Err(e) => tracing::warn!("reading the hourly history of {key}: {e}"),
            }
        }
    }

    /// Whether sparkline history is still being read.
    pub fn backfilling(&self) -> bool {
        !self.backfill.is_empty()
    }

    fn on_tick(&mut self) {
        self.close_open_samples(Some(self.clock.now_ms()));
        let now = Instant::now();
        for src in self.sources.values_mut() {
            if src.refresh(now) {
                self.sources_changed = true;
                for key in self.by_source.get(&src.url).into_iter().flat_map(|k| k.iter()) {
                    if let Some(ch) = self.channels.get_mut(key) {
                        ch.dirty = true;
                    }
                }
                self.dirty = true;
            }
        }
        if now.duration_since(self.last_prune) > Duration::from_secs(60) {
            self.last_prune = now;
            let now_ms = self.clock.now_ms();
            let cutoff = now_ms - RAW_RETENTION_MS;
            let pack = now_ms.div_euclid(HOUR_MS) != self.packed_hour;
            self.packed_hour = now_ms.div_euclid(HOUR_MS);
            for key in self.channels.keys() {
                if let Err(e) = self.store.prune_samples(key, cutoff) {
                    tracing::warn!("pruning {key} failed: {e}");
                }
                if pack && let Err(e) = self.store.pack(key, now_ms) {
                    tracing::warn!("packing {key} failed: {e}");
                }
            }
            give_back_free_memory();
        }
        if self.snapshot.store_error.is_none() {
            self.compact_store(now == self.last_prune);
        }
    }

    fn load_series(&mut self) {
        let Some((key, window)) = self.series_req.clone() else { return };
        let now = self.clock.now_ms();
        let start = self.campaigns.iter().find(|c| c.id == key.campaign).map_or(now, |c| c.start_ms());
        let from = window.span_ms().map_or(start, |s| now - s);
        let span = (now - from).max(60_000);
        let raw = window.span_ms().is_some_and(|s| s <= RAW_RETENTION_MS);
        let bucket_ms = if raw { (span / 120).max(60_000) } else { HOUR_MS };
        // Samples not yet written count too: they are newer than every stored one.
        let open = self.channels.get(&key).and_then(|st| st.open.clone());
        let fresh = self.pending.iter().filter(|(k, _, _)| *k == key).map(|(_, s, _)| s.clone()).chain(open);
        // (start, end, counters) of each interval: a sample runs from the one before it.
        let rows: Result<Vec<(i64, i64, Counters)>, _> = if raw {
            // An hour more, for the start of the first sample's interval.
            self.store.samples(&key, from - HOUR_MS, i64::MAX).map(|mut v| {
                v.extend(fresh);
                let mut prev = None;
                v.into_iter()
                    .filter_map(|s| {
                        let start = prev.replace(s.at);
                        (!s.first).then(|| (start.unwrap_or(s.at), s.at, s.delta))
                    })
                    .collect()
            })
        } else {
            self.store.rollups(&key, from.div_euclid(HOUR_MS) * HOUR_MS, i64::MAX).map(|v| {
                let mut hours: BTreeMap<i64, Counters> = v.into_iter().collect();
                for s in fresh.filter(|s| !s.first) {
                    hours.entry(s.at.div_euclid(HOUR_MS) * HOUR_MS).or_default().add(&s.delta);
                }
                hours.into_iter().map(|(h, c)| (h, h + 3_599_999, c)).collect()
            })
        };
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                self.snapshot.store_error = Some(e.to_string());
                Vec::new()
            }
        };
        let points = crate::analyze::buckets(&rows, bucket_ms, from);
        self.snapshot.series = Some(Arc::new(SeriesView { key, window, from_ms: from, to_ms: now, bucket_ms, points }));
        self.dirty = true;
    }

    /// Rebuilds what changed and sends the new snapshot.
    pub fn publish(&mut self) {
        // Before the channels' dirty marks are cleared below.
        if self.series_req.as_ref().is_some_and(|(k, _)| self.channels.get(k).is_some_and(|c| c.dirty)) {
            self.load_series();
        }
        self.refresh_analysis();
        let sources = &self.sources;
        let health_of = |url: &str| {
            sources.get(url).map_or((Health::Pending, None, 0), |s| (s.health, s.last_error.clone(), s.failures))
        };
        let mut campaigns = Vec::with_capacity(self.campaigns.len());
        let mut changed = std::mem::take(&mut self.unjudged);
        if self.first_snapshot {
            // Start-up waits for every channel's view: built on two threads.
            let mut dirty: Vec<(&ChannelKey, &mut ChannelState)> =
                self.channels.iter_mut().filter(|(_, st)| st.dirty).collect();
            changed.extend(dirty.iter().map(|(k, _)| (*k).clone()));
            let half = dirty.len() / 2;
            let (a, b) = dirty.split_at_mut(half);
            let build = |part: &mut [(&ChannelKey, &mut ChannelState)]| {
                for (key, st) in part {
                    let source = health_of(&st.plan().source);
                    st.rebuild_view(key, source);
                }
            };
            std::thread::scope(|s| {
                s.spawn(|| build(a));
                build(b);
            });
        }
        for (c, keys) in self.campaigns.iter().zip(&self.keys) {
            let mut views = Vec::with_capacity(c.channels.len());
            for (ch, key) in c.channels.iter().zip(keys.iter()) {
                let Some(st) = self.channels.get_mut(key) else { continue };
                if st.dirty {
                    st.rebuild_view(key, health_of(&ch.source));
                    changed.insert(key.clone());
                }
                views.push(st.view.clone());
            }
            campaigns.push(Arc::new(CampaignView::new(c.clone(), views, self.clock.now_ms())));
        }
        self.snapshot.campaigns = campaigns;
        // The first snapshot goes out before the rules judge anything: the first frame shows the
        // stored figures and alerts at once, and the next snapshot brings the verdicts.
        let judge_later = std::mem::take(&mut self.first_snapshot);
        if judge_later {
            self.unjudged = changed;
        } else {
            self.evaluate_alerts(&changed);
            self.refresh_recommendations(&changed);
        }
        if std::mem::take(&mut self.alerts_changed) {
            self.publish_alerts();
        }
        // Latencies and poll counts are refreshed once a second; a change of health at once.
        if std::mem::take(&mut self.sources_changed)
            || self.sources_built.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.sources_built = Some(Instant::now());
            let by_source = &self.by_source;
            self.snapshot.sources = source_views(&self.sources, |url| by_source.get(url).map_or(0, |k| k.len()));
        }
        self.snapshot.now_ms = self.clock.now_ms();
        self.snapshot.generation += 1;
        tracing::trace!(generation = self.snapshot.generation, "published");
        self.dirty = judge_later;
        self.tx.send_replace(Arc::new(self.snapshot.clone()));
    }

    /// Puts the alerts in the snapshot in the order the alerts view shows them, with the
    /// silences.
    fn publish_alerts(&mut self) {
        self.snapshot.alerts = sorted_alerts(&self.alerts);
        self.snapshot.silences = Arc::new(self.silences.clone());
    }

    /// Campaign `i`'s channels summed up as the store holds their cursors.
    fn stored_totals(&self, i: usize) -> CampaignTotals {
        let stored = self.keys[i].iter().filter_map(|k| self.channels.get(k)).map(|st| &st.stored);
        CampaignTotals::sum(self.campaigns[i].plan_print(), stored.map(|s| (&s.totals, &s.today, s.day_start)))
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

/// An engine that has published its first frame (see `Engine::open`) and has yet to read
/// every channel's state.
pub struct Starting {
    store: Store,
    clock: SharedClock,
    campaigns: Vec<Arc<Campaign>>,
    sources: BTreeMap<String, SourceState>,
    alerts: BTreeMap<crate::alert::AlertKey, crate::alert::Alert>,
    silences: Vec<crate::alert::Silence>,
    stored_totals: HashMap<String, CampaignTotals>,
    tx: watch::Sender<Arc<Snapshot>>,
    snapshot: Snapshot,
    read_only: bool,
    control_token: Option<crate::poll::Secret>,
}

impl Starting {
    /// Refuses every action from the start (`--read-only`): the first frame says so already.
    pub fn set_read_only(&mut self, on: bool) {
        self.read_only = on;
        self.snapshot.read_only = on;
        self.tx.send_replace(Arc::new(self.snapshot.clone()));
    }

    /// The bearer token for control endpoints.
    pub fn set_control_token(&mut self, token: Option<crate::poll::Secret>) {
        self.control_token = token;
    }

    /// Reads every channel's cursor, builds the engine and publishes its first full snapshot.
    /// Stored campaign totals that do not sum up the cursors (written by a build that did not
    /// keep them, or missing) are written again.
    pub fn load(self) -> crate::store::Result<Engine> {
        let Starting {
            store,
            clock,
            campaigns,
            sources,
            alerts,
            silences,
            stored_totals,
            tx,
            snapshot,
            read_only,
            control_token,
        } = self;
        let now = clock.now_ms();
        let mut cursors = store.cursors()?;
        let mut channels = HashMap::with_capacity(campaigns.iter().map(|c| c.channels.len()).sum());
        let mut by_source: HashMap<String, Vec<ChannelKey>> = HashMap::new();
        let mut keys: Vec<Vec<ChannelKey>> = Vec::with_capacity(campaigns.len());
        // Until the first publish builds the views (every channel starts dirty).
        let no_view = Arc::new(ChannelView::default());
        for c in &campaigns {
            let day_start = c.day_start_ms(now);
            let mut campaign_keys = Vec::with_capacity(c.channels.len());
            for (index, ch) in c.channels.iter().enumerate() {
                let key = ChannelKey::new(&c.id, &ch.id);
                campaign_keys.push(key.clone());
                let mut cursor = cursors.remove(&key).unwrap_or_default();
                let stored = Stored::of(&cursor);
                if cursor.day_start != day_start {
                    cursor.day_start = day_start;
                    cursor.today = Counters::default();
                }
                match by_source.get_mut(&ch.source) {
                    Some(keys) => keys.push(key.clone()),
                    None => drop(by_source.insert(ch.source.clone(), vec![key.clone()])),
                }
                let st = ChannelState {
                    campaign: c.clone(),
                    index,
                    labels: (ch.name.as_str().into(), ch.kind.as_deref().map(Arc::from), ch.source.as_str().into()),
                    cursor,
                    stored,
                    open: None,
                    recent: Default::default(),
                    status: None,
                    live_budget: None,
                    missing: None,
                    last_reset_ms: None,
                    history: Default::default(),
                    view: no_view.clone(),
                    dirty: true,
                    windows_judged: i64::MIN,
                };
                channels.insert(key, st);
            }
            keys.push(campaign_keys);
        }
        // Popped from the end: first campaigns first.
        let backfill: Vec<ChannelKey> = keys.iter().flatten().rev().cloned().collect();
        let mut engine = Engine {
            keys,
            first_snapshot: true,
            unjudged: Default::default(),
            store,
            clock,
            campaigns,
            channels,
            sources,
            by_source: by_source.into_iter().map(|(url, keys)| (url, keys.into())).collect(),
            pending: Vec::new(),
            alerts_changed: true,
            sources_built: None,
            sources_changed: true,
            last_commit: tokio::time::Instant::now(),
            tx,
            snapshot,
            series_req: None,
            backfill,
            alerts,
            silences,
            journal: Vec::new(),
            notes: Vec::new(),
            analysis_req: None,
            analysis_at: None,
            ended_days: HashMap::new(),
            snoozes: HashMap::new(),
            outbox: Vec::new(),
            read_only,
            control_token,
            recs: HashMap::new(),
            recs_stale: true,
            recs_at: HashMap::new(),
            dirty: true,
            last_prune: Instant::now(),
            packed_hour: 0,
            last_reopen: None,
        };
        engine.load_optimize()?;
        engine.load_notes()?;
        for i in 0..engine.campaigns.len() {
            let totals = engine.stored_totals(i);
            let id = &engine.campaigns[i].id;
            if stored_totals.get(id) != Some(&totals)
                && let Err(e) = engine.store.put_campaign_totals(id, &totals)
            {
                tracing::warn!("writing the totals of campaign {id} failed: {e}");
            }
        }
        engine.publish();
        Ok(engine)
    }
}

/// What the store holds of a channel's cursor, as far as its campaign's totals go.
#[derive(Debug, Clone, Copy)]
struct Stored {
    totals: Counters,
    today: Counters,
    day_start: i64,
}

impl Stored {
    fn of(c: &ChannelCursor) -> Self {
        Stored { totals: c.totals, today: c.today, day_start: c.day_start }
    }
}

/// The alerts in the order the alerts view shows them: grouped by campaign, then firing
/// first, worst first.
fn sorted_alerts(alerts: &BTreeMap<crate::alert::AlertKey, crate::alert::Alert>) -> Arc<Vec<crate::alert::Alert>> {
    let mut alerts: Vec<crate::alert::Alert> = alerts.values().cloned().collect();
    alerts.sort_by(|a, b| {
        let rank = |a: &crate::alert::Alert| match a.state {
            crate::alert::AlertState::Firing => 0,
            crate::alert::AlertState::Pending => 1,
            crate::alert::AlertState::Resolved => 2,
        };
        (&a.key.campaign, rank(a), std::cmp::Reverse(a.severity), &a.key).cmp(&(
            &b.key.campaign,
            rank(b),
            std::cmp::Reverse(b.severity),
            &b.key,
        ))
    });
    Arc::new(alerts)
}

/// The sources as the sources view shows them; `channels` counts each one's channels.
fn source_views(sources: &BTreeMap<String, SourceState>, channels: impl Fn(&str) -> usize) -> Arc<Vec<SourceView>> {
    sources
        .values()
        .map(|s| SourceView {
            url: s.url.clone(),
            health: s.health,
            last_error: s.last_error.clone(),
            latency_ms: s.latency.map(|l| l.as_millis() as u64),
            last_ok: s.last_ok,
            channels: channels(&s.url),
            polls: s.polls,
        })
        .collect::<Vec<_>>()
        .into()
}

/// Hands the allocator's free pages back to the system. glibc returns free memory only from
/// the top of a heap; what is freed below live blocks (the readings, views and sled buffers of
/// the minute before) stays resident until `malloc_trim` releases the whole free pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}

/// The storage period a time falls in.
fn period(at: i64) -> i64 {
    at.div_euclid(STORE_RESOLUTION_MS)
}

/// The time a reading stands for: the source's `generated_at` unless it is missing or runs
/// ahead of our clock (then the arrival time, with a warning).
fn sample_time(doc: &StatsDoc, fetched_at: i64) -> (i64, Option<String>) {
    match doc.generated_at.map(|t| t.timestamp_millis()) {
        Some(g) if g > fetched_at + MAX_FUTURE_SKEW_MS => {
            (fetched_at, Some(format!("clock skew: generated_at is {}s ahead of ours", (g - fetched_at) / 1000)))
        }
        // Far behind: a stale cache or a wrong clock; counting it then would misplace it in time.
        Some(g) if g < fetched_at - MAX_PAST_SKEW_MS => {
            (fetched_at, Some(format!("clock skew: generated_at is {}s behind ours", (fetched_at - g) / 1000)))
        }
        Some(g) => (g, None),
        None => (fetched_at, None),
    }
}

/// A document's channels in order of id: each channel of a source answering for many finds
/// its entry without a scan of the whole document.
struct ById<'a> {
    doc: &'a StatsDoc,
    order: Vec<usize>,
}

impl<'a> ById<'a> {
    fn new(doc: &'a StatsDoc) -> Self {
        let mut order: Vec<usize> = (0..doc.channels.len()).collect();
        order.sort_unstable_by(|&a, &b| doc.channels[a].id.cmp(&doc.channels[b].id));
        ById { doc, order }
    }

    /// The entries with this id (one per campaign the document labels).
    fn entries(&self, id: &'a str) -> impl Iterator<Item = &'a crate::poll::wire::ChannelStats> + '_ {
        let from = self.order.partition_point(|&i| *self.doc.channels[i].id < *id);
        self.order[from..].iter().map(|&i| &self.doc.channels[i]).take_while(move |c| *c.id == *id)
    }
}

fn build_view(key: &ChannelKey, st: &ChannelState, source: (Health, Option<String>, u32)) -> ChannelView {
    let (source_health, source_error, failures) = source;
    let (health, last_error) = match &st.missing {
        Some(m) if source_health.severity() < Health::BadData.severity() => (Health::BadData, Some(m.clone())),
        _ => (source_health, source_error),
    };
    ChannelView {
        key: key.clone(),
        name: st.labels.0.clone(),
        kind: st.labels.1.clone(),
        source: st.labels.2.clone(),
        totals: st.cursor.totals,
        today: st.cursor.today,
        recent: st.recent.clone(),
        status: st.status,
        daily_budget: st.live_budget.unwrap_or(st.plan().daily_budget),
        variants: st.cursor.variant_totals.clone(),
        health,
        last_error,
        resets: st.cursor.resets,
        last_reset_ms: st.last_reset_ms,
        failures,
        last_at: st.cursor.at,
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
