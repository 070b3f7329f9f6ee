//! Start-up in two halves: `Engine::open` reads what the first frame shows (each campaign's
//! stored totals, the alerts) and publishes it at once; `Starting::load` then reads every
//! channel's cursor and builds the engine. Sparkline history is read after that, a chunk at a
//! time, by the running engine (see `series`).

use super::alerting::sorted_alerts;
use super::health::SourceState;
use super::persist::{Stored, Writer};
use super::publish::source_views;
use super::snapshot::{CampaignView, ChannelView, Snapshot};
use super::{ChannelState, Engine};
use crate::clock::SharedClock;
use crate::domain::{Campaign, CampaignTotals, ChannelCursor, ChannelKey, Counters};
use crate::poll::SourceSpec;
use crate::store::Store;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

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
    /// What a watchdog needs to show a write that stalls: the store's write watch, and the
    /// state the clients read.
    pub fn watchdog(&self) -> (Arc<crate::store::WriteWatch>, watch::Sender<Arc<Snapshot>>) {
        (self.store.write_watch(), self.tx.clone())
    }

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
        let PlannedChannels { channels, by_source, spans } =
            plan_channels(&campaigns, store.cursors()?, store.all_periods()?, now);
        // Popped from the end: first campaigns first.
        let backfill: Vec<ChannelKey> = channels.keys().rev().cloned().collect();
        let mut engine = Engine {
            spans,
            first_snapshot: true,
            unjudged: Default::default(),
            writer: Writer::new(store),
            clock,
            campaigns,
            channels,
            sources,
            by_source: by_source.into_iter().map(|(url, slots)| (url, slots.into())).collect(),
            alerts_changed: true,
            sources_built: None,
            sources_changed: true,
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
        };
        engine.load_optimize()?;
        engine.load_notes()?;
        for i in 0..engine.campaigns.len() {
            let totals = engine.stored_totals(i);
            let id = &engine.campaigns[i].id;
            if stored_totals.get(id) != Some(&totals)
                && let Err(e) = engine.writer.store().put_campaign_totals(id, &totals)
            {
                tracing::warn!("writing the totals of campaign {id} failed: {e}");
            }
        }
        engine.publish();
        Ok(engine)
    }
}

/// Every planned channel's state, campaign by campaign in plan order; the slots of each
/// source's channels and of each campaign's.
struct PlannedChannels {
    channels: super::Channels,
    by_source: HashMap<String, Vec<usize>>,
    spans: Vec<std::ops::Range<usize>>,
}

/// The state of every planned channel from its stored cursor (today's counters start afresh
/// when the campaign's day has turned since).
fn plan_channels(
    campaigns: &[Arc<Campaign>],
    mut cursors: HashMap<ChannelKey, ChannelCursor>,
    mut periods: HashMap<ChannelKey, BTreeMap<i64, Counters>>,
    now: i64,
) -> PlannedChannels {
    let mut channels =
        super::Channels::with_capacity_and_hasher(campaigns.iter().map(|c| c.channels.len()).sum(), Default::default());
    let mut by_source: HashMap<String, Vec<usize>> = HashMap::new();
    let mut spans = Vec::with_capacity(campaigns.len());
    // Until the first publish builds the views (every channel starts dirty).
    let no_view = Arc::new(ChannelView::default());
    for c in campaigns {
        let day_start = c.day_start_ms(now);
        let first = channels.len();
        for (index, ch) in c.channels.iter().enumerate() {
            let key = ChannelKey::new(&c.id, &ch.id);
            let mut cursor = cursors.remove(&key).unwrap_or_default();
            let stored = Stored::of(&cursor);
            if cursor.day_start != day_start {
                cursor.day_start = day_start;
                cursor.today = Counters::default();
            }
            let slot = channels.len();
            match by_source.get_mut(&ch.source) {
                Some(slots) => slots.push(slot),
                None => drop(by_source.insert(ch.source.clone(), vec![slot])),
            }
            let (period_spec, unmapped) = ch.reading();
            let mut st = ChannelState {
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
                periods: periods.remove(&key).unwrap_or_default(),
                period_spec,
                unmapped,
                view: no_view.clone(),
                dirty: true,
                windows_judged: i64::MIN,
            };
            if let Some(spec) = st.period_spec.filter(|_| !st.periods.is_empty()) {
                st.follow_periods(spec, now);
            }
            // Plans have unique channel ids and campaigns unique ids: every key takes a new slot.
            let (at, _) = channels.insert_full(key, st);
            debug_assert_eq!(at, slot, "a channel planned twice");
        }
        spans.push(first..channels.len());
    }
    PlannedChannels { channels, by_source, spans }
}
