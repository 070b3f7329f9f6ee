//! The service's messages (API version 2) and how they travel: each message is one frame, a
//! 4-byte big-endian length and that many bytes, at most `MAX_FRAME`. A frame is JSON (it
//! starts with `{`), except the two that move every second, the state and the chart: they are
//! binary (a `0xB2` byte, then postcard), with the documents inside them (plans, alerts,
//! journal entries) as JSON. A client sends `Hello` first; the service answers `Welcome` (or
//! `Refused` and closes). Then:
//!
//! - `Watch`: the service sends the state as `Snapshot` frames, the first whole, each later
//!   one only with what changed since the one before it: the campaigns and channels whose view
//!   changed, a reading as a step from the figures the client holds, lists that changed. A
//!   client that reads slowly gets fewer frames, never a backlog: each frame is built from the
//!   latest state when the socket can take it.
//! - `Focus`: the campaign on the client's screen. Its channels' figures (and their recent
//!   samples, for sparklines) are sent as they move; those of the other channels every
//!   `OFF_SCREEN_EVERY`, a change of health at once. What a client costs follows its screen.
//! - `Detail`: the chart or analysis this client shows; the service sends `Series` (what
//!   changed of the chart) or `Analysis` frames and keeps them fresh (at most once a second,
//!   once in five).
//! - `Act`: an acknowledgement, silence, note, action or undo, done as the hello's user.
//! - `Run`: a command line (`journal`, `report …`, `campaign list`, …) run by the service on
//!   its database; the answer is `Done` with what it printed and its exit status.
//!
//! In JSON frames unknown fields are ignored, so a newer peer may add some; a frame that does
//! not parse gets an `Error` answer and the connection goes on.

use crate::alert::{Alert, AlertKey, Silence};
use crate::analyze::WindowKind;
use crate::analyze::data::Analysis;
use crate::domain::counters::{from_micros, micros, pack_micros, unpack_micros};
use crate::domain::note::Note;
use crate::domain::{Campaign, ChannelKey, Counters, Health};
use crate::engine::snapshot::{CampaignView, ChannelView, SeriesView, Snapshot, SourceView, Window};
use crate::optimize::journal::JournalEntry;
use crate::optimize::recommend::{Change, Recommendation};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const API_VERSION: u32 = 2;
/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 32 << 20;

/// What a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToService {
    Hello {
        version: u32,
        /// The OS user acting (journal, acks, notes).
        user: String,
        /// This client takes no actions.
        #[serde(default)]
        read_only: bool,
        /// Needed over TCP.
        #[serde(default)]
        token: Option<String>,
    },
    Watch,
    /// The campaign whose channels this client shows (`None`: none, as on the overview): its
    /// channels' figures are sent as they move, the others' every few seconds.
    Focus {
        campaign: Option<String>,
    },
    Detail {
        detail: Detail,
    },
    Act {
        act: Act,
    },
    Run {
        id: u64,
        args: Vec<String>,
    },
    /// Add or replace campaigns (read and checked by the client); the service plans its
    /// channels again at once.
    Import {
        id: u64,
        campaigns: Vec<Campaign>,
    },
    /// Remove a campaign and everything recorded for it.
    Remove {
        id: u64,
        campaign: String,
    },
}

/// The detail a client's screen shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    #[default]
    None,
    Series {
        key: ChannelKey,
        window: Window,
    },
    Analysis {
        campaign: String,
        window: WindowKind,
        against: usize,
    },
}

/// What a client asks the engine to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Act {
    Ack {
        key: AlertKey,
    },
    Silence {
        key: AlertKey,
        for_ms: i64,
    },
    Note {
        campaign: String,
        channel: Option<String>,
        text: String,
    },
    /// A task of the checklist done (or open again).
    Task {
        campaign: String,
        task: String,
        done: bool,
    },
    Apply {
        campaign: String,
        changes: Vec<Change>,
        recommendation: Option<String>,
    },
    Undo {
        entry: Option<u64>,
        campaign: Option<String>,
    },
    Snooze {
        recommendation: String,
        for_ms: i64,
    },
}

impl Act {
    /// Whether it changes what the channels do (refused to a read-only client or service).
    pub fn is_action(&self) -> bool {
        matches!(self, Act::Apply { .. } | Act::Undo { .. })
    }

    /// The engine's command for it, done as `by`.
    pub fn command(self, by: String) -> crate::engine::Command {
        use crate::engine::Command as C;
        match self {
            Act::Ack { key } => C::Ack { key, by },
            Act::Silence { key, for_ms } => C::Silence { key, for_ms, by },
            Act::Note { campaign, channel, text } => C::Note { campaign, channel, text, by },
            Act::Task { campaign, task, done } => C::Task { campaign, task, done, by },
            Act::Apply { campaign, changes, recommendation } => C::Apply { campaign, changes, recommendation, by },
            Act::Undo { entry, campaign } => C::Undo { entry, campaign, by },
            Act::Snooze { recommendation, for_ms } => C::Snooze { recommendation, for_ms },
        }
    }
}

/// What the service sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToClient {
    Welcome {
        version: u32,
        /// The service takes no actions, whatever a client asks.
        read_only: bool,
        db_path: String,
        pid: u32,
    },
    Refused {
        reason: String,
    },
    Snapshot {
        delta: Box<Delta>,
    },
    /// The chart: what changed of it since the last one sent.
    Series {
        series: Option<SeriesDelta>,
    },
    Analysis {
        analysis: Option<Analysis>,
    },
    Done {
        id: u64,
        status: u8,
        output: String,
    },
    Error {
        message: String,
    },
    /// The service is stopping.
    Bye {
        reason: String,
    },
}

/// A document inside a binary frame, as JSON: plans, alerts, journal entries and the like,
/// whose optional fields a binary format cannot leave out. They change seldom; what moves
/// every second (the channels' figures) is binary.
#[derive(Debug, Clone)]
pub struct Json<T>(pub Arc<T>);

impl<T: Serialize> Serialize for Json<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&serde_json::to_vec(&*self.0).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Json<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes<T>(std::marker::PhantomData<T>);
        impl<T: DeserializeOwned> serde::de::Visitor<'_> for Bytes<T> {
            type Value = Json<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON document as bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<Json<T>, E> {
                serde_json::from_slice(b).map(|v| Json(Arc::new(v))).map_err(E::custom)
            }
        }
        d.deserialize_bytes(Bytes(std::marker::PhantomData))
    }
}

/// The state, or what changed of it since the last frame sent to this client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    pub generation: u64,
    pub now_ms: i64,
    pub speed: f64,
    /// Milliseconds since the last sample came in.
    pub data_age_ms: Option<u64>,
    pub store_error: Option<String>,
    pub stall: Option<String>,
    pub compacting: bool,
    pub read_only: bool,
    pub notice: Option<(u64, String)>,
    pub paging: Option<String>,
    /// Every campaign's id, in order, when the list is not the last frame's.
    pub order: Option<Vec<String>>,
    /// The campaigns that changed.
    pub campaigns: Vec<CampaignDelta>,
    pub sources: Option<Vec<SourceWire>>,
    pub alerts: Option<Json<Vec<Alert>>>,
    pub silences: Option<Json<Vec<Silence>>>,
    pub recommendations: Option<Json<Vec<Recommendation>>>,
    pub journal: Option<Json<Vec<JournalEntry>>>,
    pub notes: Option<Json<Vec<Note>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignDelta {
    pub id: String,
    /// The plan, when it is new to the client or changed; all its channels come with it.
    pub plan: Option<Json<Campaign>>,
    pub totals: Counters,
    pub today: Counters,
    pub day_start_ms: i64,
    pub health: Health,
    pub trouble: Vec<u32>,
    /// How many channels it has.
    pub len: u32,
    /// The channels whose view changed, by index; the others are as the client has them.
    pub channels: Vec<(u32, ChannelWire)>,
}

/// How many recent samples a client keeps of each channel: what its sparkline draws.
const KEEP: usize = crate::engine::snapshot::SPARK_WIDTH + 1;

/// A channel's view as sent. A client holds each view with its money to whole millionths
/// (as the database stores it) and its last `KEEP` samples; `Moved` is a step from that.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelWire {
    /// The whole view (its `recent` empty) and its recent samples.
    Whole(Box<ChannelView>, Vec<Entry>),
    /// Only the figures a reading moves.
    Moved(Moved),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moved {
    /// The reading's time less the last one's.
    pub dt: i64,
    pub totals: Step,
    /// Today's step, where it is not the totals' (a new day).
    pub today: Option<Step>,
    /// Health, failures in a row and the last error, where they changed.
    pub health: Option<(Health, u32, Option<String>)>,
    pub recent: RecentMove,
}

/// How counters moved: counts as differences, money as differences in millionths (see
/// `pack_micros`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step([i64; 4], i64, i64);

/// What became of a channel's recent samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RecentMove {
    Same,
    /// The last sample took in the reading (the totals' step) and now ends at its time.
    Grew,
    /// The reading is a sample of its own (the totals' step, at its time).
    Pushed,
    /// The samples from this time on (all when `None`) are these.
    From(Option<i64>, Vec<Entry>),
}

/// A recent sample: its end as a step from the sample before it (the first: from zero), its
/// counts and its money in packed millionths.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Entry(i64, u64, u64, u64, u64, i64, i64);

/// The counters as a client holds them: money to whole millionths.
fn held(c: &Counters) -> Counters {
    Counters { spend: from_micros(micros(c.spend)), revenue: from_micros(micros(c.revenue)), ..*c }
}

impl Step {
    fn between(from: &Counters, to: &Counters) -> Step {
        let d = |a: u64, b: u64| b.wrapping_sub(a) as i64;
        Step(
            [
                d(from.impressions, to.impressions),
                d(from.clicks, to.clicks),
                d(from.leads, to.leads),
                d(from.conversions, to.conversions),
            ],
            pack_micros(micros(to.spend) - micros(from.spend)),
            pack_micros(micros(to.revenue) - micros(from.revenue)),
        )
    }

    fn apply(&self, c: &Counters) -> Counters {
        let n = |a: u64, d: i64| a.wrapping_add(d as u64);
        Counters {
            impressions: n(c.impressions, self.0[0]),
            clicks: n(c.clicks, self.0[1]),
            leads: n(c.leads, self.0[2]),
            conversions: n(c.conversions, self.0[3]),
            spend: from_micros(micros(c.spend) + unpack_micros(self.1)),
            revenue: from_micros(micros(c.revenue) + unpack_micros(self.2)),
        }
    }
}

/// The last `KEEP` samples as a client holds them.
fn held_recent(v: &ChannelView) -> Vec<(i64, Counters)> {
    let skip = v.recent.len().saturating_sub(KEEP);
    v.recent.iter().skip(skip).map(|(t, c)| (*t, held(c))).collect()
}

fn entries(e: &[(i64, Counters)]) -> Vec<Entry> {
    let mut last = 0;
    e.iter()
        .map(|(t, c)| {
            let dt = t - last;
            last = *t;
            Entry(dt, c.impressions, c.clicks, c.leads, c.conversions, micros(c.spend), micros(c.revenue))
        })
        .collect()
}

fn from_entries(e: Vec<Entry>) -> Vec<(i64, Counters)> {
    let mut t = 0;
    e.into_iter()
        .map(|Entry(dt, impressions, clicks, leads, conversions, spend, revenue)| {
            t += dt;
            let c = Counters {
                impressions,
                clicks,
                leads,
                conversions,
                spend: from_micros(spend),
                revenue: from_micros(revenue),
            };
            (t, c)
        })
        .collect()
}

/// The view without what a reading moves, for comparing the rest.
fn fixed(v: &ChannelView) -> ChannelView {
    ChannelView {
        totals: Counters::default(),
        today: Counters::default(),
        recent: crate::domain::Recent::default(),
        health: Health::default(),
        failures: 0,
        last_error: None,
        last_at: 0,
        ..v.clone()
    }
}

impl RecentMove {
    /// The client's samples after this move.
    fn apply(self, mut held: Vec<(i64, Counters)>, at: i64, step: &Step) -> Vec<(i64, Counters)> {
        match self {
            RecentMove::Same => {}
            RecentMove::Grew => match held.last_mut() {
                Some(last) => *last = (at, step.apply(&last.1)),
                None => held.push((at, step.apply(&Counters::default()))),
            },
            RecentMove::Pushed => held.push((at, step.apply(&Counters::default()))),
            RecentMove::From(from, e) => {
                held.retain(|(t, _)| from.is_some_and(|f| *t < f));
                held.extend(from_entries(e));
            }
        }
        let skip = held.len().saturating_sub(KEEP);
        held.drain(..skip);
        held
    }
}

impl ChannelWire {
    /// `v` for a client that holds `old` (nothing when `None`), both as the service has them;
    /// `recent`: whether the client holds the recent samples (of `old`; of `v` from now on).
    fn new(v: &ChannelView, old: Option<&ChannelView>, recent: (bool, bool)) -> ChannelWire {
        let now = if recent.1 { held_recent(v) } else { Vec::new() };
        let Some(o) = old.filter(|o| fixed(o) == fixed(v)) else {
            let mut view = ChannelView { recent: crate::domain::Recent::default(), ..v.clone() };
            view.totals = held(&view.totals);
            view.today = held(&view.today);
            return ChannelWire::Whole(Box::new(view), entries(&now));
        };
        let (ot, vt) = (held(&o.totals), held(&v.totals));
        let totals = Step::between(&ot, &vt);
        let today = Step::between(&held(&o.today), &held(&v.today));
        let then = if recent.0 { held_recent(o) } else { Vec::new() };
        let recent = [RecentMove::Same, RecentMove::Grew, RecentMove::Pushed]
            .into_iter()
            .find(|m| m.clone().apply(then.clone(), v.last_at, &totals) == now)
            .unwrap_or_else(|| {
                let from = then.last().map(|(t, _)| *t);
                let since: Vec<(i64, Counters)> =
                    now.iter().filter(|(t, _)| from.is_none_or(|f| *t >= f)).copied().collect();
                let m = RecentMove::From(from, entries(&since));
                // Where the earlier samples changed too, all of them.
                match m.clone().apply(then.clone(), v.last_at, &totals) == now {
                    true => m,
                    false => RecentMove::From(None, entries(&now)),
                }
            });
        let moved_health = (o.health, o.failures, &o.last_error) != (v.health, v.failures, &v.last_error);
        ChannelWire::Moved(Moved {
            dt: v.last_at - o.last_at,
            totals,
            today: (today != totals).then_some(today),
            health: moved_health.then(|| (v.health, v.failures, v.last_error.clone())),
            recent,
        })
    }

    /// The view, from the client's `old`; `None` when the client lacks the view the change
    /// applies to.
    fn view(self, old: Option<&ChannelView>) -> Option<ChannelView> {
        match self {
            ChannelWire::Whole(v, recent) => {
                let mut v = *v;
                v.recent = crate::domain::Recent::from_entries(from_entries(recent), KEEP);
                Some(v)
            }
            ChannelWire::Moved(m) => {
                let o = old?;
                let at = o.last_at + m.dt;
                let recent = m.recent.apply(o.recent.iter().copied().collect(), at, &m.totals);
                let (health, failures, last_error) =
                    m.health.unwrap_or_else(|| (o.health, o.failures, o.last_error.clone()));
                Some(ChannelView {
                    totals: m.totals.apply(&o.totals),
                    today: m.today.as_ref().unwrap_or(&m.totals).apply(&o.today),
                    recent: crate::domain::Recent::from_entries(recent, KEEP),
                    health,
                    failures,
                    last_error,
                    last_at: at,
                    ..o.clone()
                })
            }
        }
    }
}

/// A source's health as sent: times as ages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceWire {
    pub url: String,
    pub health: Health,
    pub last_error: Option<String>,
    pub latency_ms: Option<u64>,
    pub ok_age_ms: Option<u64>,
    pub channels: usize,
    pub polls: u64,
}

fn age(t: Option<Instant>) -> Option<u64> {
    t.map(|t| t.elapsed().as_millis() as u64)
}

fn instant(age_ms: Option<u64>) -> Option<Instant> {
    age_ms.and_then(|a| Instant::now().checked_sub(Duration::from_millis(a)))
}

/// How long a client waits for the figures of channels off its screen (see `Encoder::focus`):
/// what a client costs follows what it shows, not the size of the database.
pub const OFF_SCREEN_EVERY: Duration = Duration::from_secs(5);

/// What a client holds of a campaign.
struct Held {
    view: Arc<CampaignView>,
    /// The channels' views the client holds (as the service had them when sent).
    channels: Vec<Arc<ChannelView>>,
    /// When channels off screen were last sent.
    sent_at: Instant,
    /// Whether the client holds the channels' recent samples (for sparklines): only once the
    /// campaign has been on its screen, so that attaching to a large database is quick.
    recent: bool,
}

/// What a client was last sent, to send it only what changed.
#[derive(Default)]
pub struct Encoder {
    campaigns: HashMap<String, Held>,
    order: Vec<String>,
    /// The campaign whose channels the client shows: they are sent as they change; the others'
    /// figures at most every `OFF_SCREEN_EVERY` (a change of health at once).
    pub focus: Option<String>,
    sources: Option<Arc<Vec<SourceView>>>,
    alerts: Option<Arc<Vec<Alert>>>,
    silences: Option<Arc<Vec<Silence>>>,
    recommendations: Option<Arc<Vec<Recommendation>>>,
    journal: Option<Arc<Vec<JournalEntry>>>,
    notes: Option<Arc<Vec<Note>>>,
}

/// `Some(copy)` when `now` is not what was sent last, remembering it.
fn changed<T>(last: &mut Option<Arc<Vec<T>>>, now: &Arc<Vec<T>>) -> Option<Json<Vec<T>>> {
    if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, now)) {
        return None;
    }
    *last = Some(now.clone());
    Some(Json(now.clone()))
}

impl Encoder {
    /// What to send of `s` at `now`.
    pub fn delta(&mut self, s: &Snapshot, now: Instant) -> Delta {
        let mut held = std::mem::take(&mut self.campaigns);
        let mut campaigns = Vec::new();
        for c in &s.campaigns {
            let id = &c.campaign.id;
            let last = held.remove(id);
            if let Some(d) = self.campaign(c, last, now) {
                campaigns.push(d);
            }
        }
        let order: Vec<String> = s.campaigns.iter().map(|c| c.campaign.id.clone()).collect();
        let order = (order != self.order).then(|| {
            self.order = order.clone();
            order
        });
        let sources = if self.sources.as_ref().is_some_and(|l| Arc::ptr_eq(l, &s.sources)) {
            None
        } else {
            self.sources = Some(s.sources.clone());
            Some(
                s.sources
                    .iter()
                    .map(|v| SourceWire {
                        url: v.url.clone(),
                        health: v.health,
                        last_error: v.last_error.clone(),
                        latency_ms: v.latency_ms,
                        ok_age_ms: age(v.last_ok),
                        channels: v.channels,
                        polls: v.polls,
                    })
                    .collect(),
            )
        };
        Delta {
            generation: s.generation,
            now_ms: s.now_ms,
            speed: s.speed,
            data_age_ms: age(s.last_data),
            store_error: s.store_error.clone(),
            stall: s.stall.clone(),
            compacting: s.compacting,
            read_only: s.read_only,
            notice: s.notice.clone(),
            paging: s.paging.clone(),
            order,
            campaigns,
            sources,
            alerts: changed(&mut self.alerts, &s.alerts),
            silences: changed(&mut self.silences, &s.silences),
            recommendations: changed(&mut self.recommendations, &s.recommendations),
            journal: changed(&mut self.journal, &s.journal),
            notes: changed(&mut self.notes, &s.notes),
        }
    }

    /// What to send of one campaign, remembering what the client then holds.
    fn campaign(&mut self, c: &Arc<CampaignView>, last: Option<Held>, now: Instant) -> Option<CampaignDelta> {
        let id = c.campaign.id.clone();
        let same_plan = last.as_ref().is_some_and(|h| {
            Arc::ptr_eq(&h.view.campaign, &c.campaign)
                || (*h.view.campaign == *c.campaign && h.channels.len() == c.channels.len())
        });
        let mut h = match last {
            Some(h) if same_plan => h,
            _ => Held { view: c.clone(), channels: Vec::new(), sent_at: now, recent: false },
        };
        let on_screen = self.focus.as_deref() == Some(id.as_str());
        // Shown for the first time: every channel's samples come.
        let had_recent = h.recent;
        h.recent |= on_screen;
        let due = on_screen || now.saturating_duration_since(h.sent_at) >= OFF_SCREEN_EVERY;
        let mut channels = Vec::new();
        for (i, v) in c.channels.iter().enumerate() {
            let old = h.channels.get(i);
            if old.is_some_and(|o| Arc::ptr_eq(o, v)) && had_recent == h.recent {
                continue;
            }
            let health_moved = old.is_none_or(|o| (o.health, &o.last_error) != (v.health, &v.last_error));
            if !(due || health_moved || !same_plan) {
                continue;
            }
            channels.push((i as u32, ChannelWire::new(v, old.map(|o| &**o), (had_recent, h.recent))));
            match h.channels.get_mut(i) {
                Some(slot) => *slot = v.clone(),
                None => h.channels.push(v.clone()),
            }
        }
        if due && !channels.is_empty() {
            h.sent_at = now;
        }
        let moved = !same_plan || !Arc::ptr_eq(&h.view, c) || !channels.is_empty();
        h.view = c.clone();
        self.campaigns.insert(id.clone(), h);
        moved.then(|| CampaignDelta {
            id,
            plan: (!same_plan).then(|| Json(c.campaign.clone())),
            totals: c.totals,
            today: c.today,
            day_start_ms: c.day_start_ms,
            health: c.health,
            trouble: c.trouble.iter().map(|i| *i as u32).collect(),
            len: c.channels.len() as u32,
            channels,
        })
    }
}

/// Replaces a list the delta carries.
fn set<T>(slot: &mut Arc<Vec<T>>, v: Option<Json<Vec<T>>>) {
    if let Some(Json(v)) = v {
        *slot = v;
    }
}

/// Applies a delta to the state a client holds. An error means the two sides no longer agree
/// (a channel left out that the client never had): the client reconnects for a whole state.
pub fn apply(base: &Snapshot, d: Delta) -> Result<Snapshot, String> {
    let mut s = base.clone();
    let old: HashMap<&str, &Arc<CampaignView>> = base.campaigns.iter().map(|c| (c.campaign.id.as_str(), c)).collect();
    let mut changed: HashMap<String, CampaignDelta> = d.campaigns.into_iter().map(|c| (c.id.clone(), c)).collect();
    let order: Vec<String> = match d.order {
        Some(o) => o,
        None => base.campaigns.iter().map(|c| c.campaign.id.clone()).collect(),
    };
    let mut campaigns = Vec::with_capacity(order.len());
    for id in order {
        let prev = old.get(id.as_str()).copied();
        let Some(c) = changed.remove(&id) else {
            campaigns.push(prev.cloned().ok_or_else(|| format!("campaign {id} arrived without its view"))?);
            continue;
        };
        let plan_new = c.plan.is_some();
        let plan = match (c.plan, prev) {
            (Some(Json(p)), _) => p,
            (None, Some(prev)) => prev.campaign.clone(),
            (None, None) => return Err(format!("campaign {id} arrived without its plan")),
        };
        // With a new plan the client's views are not this plan's.
        let mut channels: Vec<Option<Arc<ChannelView>>> = match prev {
            Some(p) if !plan_new => p.channels.iter().cloned().map(Some).collect(),
            _ => Vec::new(),
        };
        channels.resize(c.len as usize, None);
        for (i, w) in c.channels {
            let slot = channels.get_mut(i as usize).ok_or_else(|| format!("campaign {id}: no channel {i}"))?;
            let v = w
                .view(slot.as_deref())
                .ok_or_else(|| format!("campaign {id}: channel {i} changed without its view"))?;
            *slot = Some(Arc::new(v));
        }
        let channels = channels
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| format!("campaign {id}: channel {i} arrived without its view")))
            .collect::<Result<Vec<_>, _>>()?;
        campaigns.push(Arc::new(CampaignView {
            campaign: plan,
            channels,
            totals: c.totals,
            today: c.today,
            day_start_ms: c.day_start_ms,
            health: c.health,
            trouble: c.trouble.into_iter().map(|i| i as usize).collect(),
        }));
    }
    if let Some(id) = changed.keys().next() {
        return Err(format!("campaign {id} changed but the client does not have it"));
    }
    s.campaigns = campaigns;
    if let Some(src) = d.sources {
        s.sources = Arc::new(
            src.into_iter()
                .map(|v| SourceView {
                    url: v.url,
                    health: v.health,
                    last_error: v.last_error,
                    latency_ms: v.latency_ms,
                    last_ok: instant(v.ok_age_ms),
                    channels: v.channels,
                    polls: v.polls,
                })
                .collect(),
        );
    }
    set(&mut s.alerts, d.alerts);
    set(&mut s.silences, d.silences);
    set(&mut s.recommendations, d.recommendations);
    set(&mut s.journal, d.journal);
    set(&mut s.notes, d.notes);
    s.generation = d.generation;
    s.now_ms = d.now_ms;
    s.speed = d.speed;
    s.last_data = instant(d.data_age_ms);
    s.store_error = d.store_error;
    s.stall = d.stall;
    s.compacting = d.compacting;
    s.read_only = d.read_only;
    s.notice = d.notice;
    s.paging = d.paging;
    Ok(s)
}

/// A chart as sent: the points the client holds up to `keep` stay, `points` follow them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesDelta {
    pub key: ChannelKey,
    pub window: Window,
    pub from_ms: i64,
    pub to_ms: i64,
    pub bucket_ms: i64,
    pub keep: u32,
    pub points: Vec<(i64, Counters)>,
}

impl SeriesDelta {
    /// `now` for a client that holds `old`.
    pub fn new(now: &SeriesView, old: Option<&SeriesView>) -> SeriesDelta {
        let keep = old
            .filter(|o| o.key == now.key && o.window == now.window && o.bucket_ms == now.bucket_ms)
            .map_or(0, |o| o.points.iter().zip(&now.points).take_while(|(a, b)| a == b).count());
        SeriesDelta {
            key: now.key.clone(),
            window: now.window,
            from_ms: now.from_ms,
            to_ms: now.to_ms,
            bucket_ms: now.bucket_ms,
            keep: keep as u32,
            points: now.points[keep..].to_vec(),
        }
    }

    pub fn apply(self, old: Option<&SeriesView>) -> SeriesView {
        let mut points: Vec<(i64, Counters)> =
            old.map(|o| o.points.iter().take(self.keep as usize).copied().collect()).unwrap_or_default();
        points.extend(self.points);
        SeriesView {
            key: self.key,
            window: self.window,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            bucket_ms: self.bucket_ms,
            points,
        }
    }
}

/// The messages sent in binary: the state and the chart, which move every second.
#[derive(Deserialize)]
enum Binary {
    Snapshot(Box<Delta>),
    Series(Option<SeriesDelta>),
}

/// `Binary` as written, borrowing the message.
#[derive(Serialize)]
enum BinaryOut<'a> {
    Snapshot(&'a Delta),
    Series(&'a Option<SeriesDelta>),
}

/// The first byte of a binary frame (a JSON frame starts with `{`).
const BINARY: u8 = 0xB2;

/// A message and its frame's body.
pub trait Message: Sized {
    fn to_body(&self) -> std::io::Result<Vec<u8>>;
    fn from_body(body: &[u8]) -> Result<Self, String>;
}

impl Message for ToService {
    fn to_body(&self) -> std::io::Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(std::io::Error::other)
    }
    fn from_body(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

impl Message for ToClient {
    fn to_body(&self) -> std::io::Result<Vec<u8>> {
        let binary = |b: &BinaryOut| {
            let mut out = vec![BINARY];
            postcard::to_io(b, &mut out).map_err(std::io::Error::other)?;
            Ok(out)
        };
        match self {
            ToClient::Snapshot { delta } => binary(&BinaryOut::Snapshot(delta)),
            ToClient::Series { series } => binary(&BinaryOut::Series(series)),
            other => serde_json::to_vec(other).map_err(std::io::Error::other),
        }
    }
    fn from_body(body: &[u8]) -> Result<Self, String> {
        match body.split_first() {
            Some((&BINARY, rest)) => match postcard::from_bytes(rest).map_err(|e| e.to_string())? {
                Binary::Snapshot(delta) => Ok(ToClient::Snapshot { delta }),
                Binary::Series(series) => Ok(ToClient::Series { series }),
            },
            _ => serde_json::from_slice(body).map_err(|e| e.to_string()),
        }
    }
}

/// Writes one message as a frame.
pub async fn write<W: AsyncWrite + Unpin, T: Message>(w: &mut W, msg: &T) -> std::io::Result<()> {
    let body = msg.to_body()?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "message larger than a frame may be"));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await
}

/// A frame read whole, or `None` at the end of the stream.
pub enum Frame<T> {
    Message(T),
    /// A frame that does not parse as a message (the stream goes on).
    Bad(String),
}

/// Reads one frame; `Ok(None)` when the peer closed the stream between frames. An oversized
/// length is an error: the stream cannot be followed past it.
pub async fn read<R: AsyncRead + Unpin, T: Message>(r: &mut R) -> std::io::Result<Option<Frame<T>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {n} bytes (at most {MAX_FRAME})"),
        ));
    }
    let mut body = vec![0; n];
    r.read_exact(&mut body).await?;
    Ok(Some(match T::from_body(&body) {
        Ok(m) => Frame::Message(m),
        Err(e) => Frame::Bad(e),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let c = crate::demo::campaigns().remove(0);
        let campaign = Arc::new(c);
        let channels: Vec<Arc<ChannelView>> = campaign
            .channels
            .iter()
            .map(|ch| {
                Arc::new(ChannelView {
                    key: ChannelKey::new(&campaign.id, &ch.id),
                    name: Arc::from(ch.name.as_str()),
                    totals: Counters { clicks: 5, ..Default::default() },
                    recent: crate::domain::Recent::from_entries(
                        (1..=3).map(|t| (t * 60_000, Counters { clicks: t as u64, ..Default::default() })),
                        120,
                    ),
                    ..Default::default()
                })
            })
            .collect();
        Snapshot {
            generation: 1,
            campaigns: vec![Arc::new(CampaignView::new(campaign, channels, 0))],
            ..Default::default()
        }
    }

    /// Through a frame's body and back, as a client reads it.
    fn sent(d: Delta) -> (Delta, usize) {
        let body = ToClient::Snapshot { delta: Box::new(d) }.to_body().unwrap();
        match ToClient::from_body(&body).unwrap() {
            ToClient::Snapshot { delta } => (*delta, body.len()),
            _ => unreachable!(),
        }
    }

    /// A service's channel view as a client holds it: money to millionths, its last samples.
    fn as_held(v: &ChannelView) -> ChannelView {
        ChannelView {
            totals: held(&v.totals),
            today: held(&v.today),
            recent: crate::domain::Recent::from_entries(held_recent(v), KEEP),
            ..v.clone()
        }
    }

    fn with_channel(s: &Snapshot, i: usize, f: impl FnOnce(&mut ChannelView)) -> Snapshot {
        let mut s = s.clone();
        let mut cv = (*s.campaigns[0]).clone();
        let mut v = (*cv.channels[i]).clone();
        f(&mut v);
        cv.channels[i] = Arc::new(v);
        s.campaigns[0] = Arc::new(cv);
        s.generation += 1;
        s
    }

    /// A first frame is whole; later ones carry only the channels that changed, and the
    /// client's state after each is the service's.
    #[test]
    fn deltas_carry_what_changed_and_rebuild_the_state() {
        let t0 = Instant::now();
        let mut enc = Encoder { focus: Some(crate::demo::campaigns()[0].id.clone()), ..Encoder::default() };
        let s1 = snapshot();
        let (d1, whole) = sent(enc.delta(&s1, t0));
        assert!(d1.campaigns[0].plan.is_some());
        assert_eq!(d1.campaigns[0].channels.len(), s1.campaigns[0].channels.len());
        let client = apply(&Snapshot::default(), d1).unwrap();
        assert_eq!(client.campaigns[0].channels.len(), s1.campaigns[0].channels.len());
        // One channel takes in a reading of its own sample, with money that is no round number.
        let s2 = with_channel(&s1, 1, |v| {
            v.totals.clicks = 99;
            v.totals.spend = 1_234.567_890_123;
            v.last_at = 4 * 60_000;
            v.recent = crate::domain::Recent::from_entries(
                v.recent
                    .iter()
                    .copied()
                    .chain([(4 * 60_000, Counters { clicks: 94, spend: 1_234.567_890_123, ..Default::default() })]),
                120,
            );
        });
        let (d2, small) = sent(enc.delta(&s2, t0));
        assert!(d2.campaigns[0].plan.is_none(), "the plan is not sent again");
        assert_eq!(d2.campaigns[0].channels.len(), 1, "only the channel that changed");
        let (i, wire) = &d2.campaigns[0].channels[0];
        assert_eq!(*i, 1);
        assert!(matches!(wire, ChannelWire::Moved(Moved { recent: RecentMove::Pushed, health: None, .. })), "{wire:?}");
        assert!(d2.alerts.is_none() && d2.sources.is_none() && d2.order.is_none(), "what did not change stays out");
        assert!(small < 120, "{small} bytes for one reading (the first frame {whole})");
        let client = apply(&client, d2).unwrap();
        assert_eq!(
            *client.campaigns[0].channels[1],
            as_held(&s2.campaigns[0].channels[1]),
            "the client's view is the service's"
        );
        assert_eq!(client.campaigns[0].channels[1].totals.spend, 1_234.567_89);
        let recent: Vec<_> = client.campaigns[0].channels[1].recent.iter().map(|(t, c)| (*t, c.clicks)).collect();
        assert_eq!(recent, [(60_000, 1), (120_000, 2), (180_000, 3), (240_000, 94)]);
        assert_eq!(client.campaigns[0].channels[0].totals.clicks, 5);
        assert_eq!(client.generation, 2);
        // The next reading joins that sample.
        let s3 = with_channel(&s2, 1, |v| {
            v.totals.clicks += 2;
            v.last_at += 1000;
            let mut e: Vec<_> = v.recent.iter().copied().collect();
            let last = e.last_mut().unwrap();
            *last = (v.last_at, Counters { clicks: last.1.clicks + 2, ..last.1 });
            v.recent = crate::domain::Recent::from_entries(e, 120);
        });
        let (d3, _) = sent(enc.delta(&s3, t0));
        assert!(matches!(&d3.campaigns[0].channels[0].1, ChannelWire::Moved(Moved { recent: RecentMove::Grew, .. })));
        // A client that missed the plan cannot rebuild the state: it says so.
        assert!(apply(&Snapshot::default(), d3.clone()).is_err());
        let client = apply(&client, d3).unwrap();
        assert_eq!(*client.campaigns[0].channels[1], as_held(&s3.campaigns[0].channels[1]));
    }

    /// Off screen, a channel's figures wait a few seconds; its health does not.
    #[test]
    fn channels_off_screen_are_sent_every_few_seconds_and_health_at_once() {
        let t0 = Instant::now();
        let mut enc = Encoder::default();
        let s1 = snapshot();
        let client = apply(&Snapshot::default(), sent(enc.delta(&s1, t0)).0).unwrap();
        let s2 = with_channel(&s1, 0, |v| v.totals.clicks += 1);
        let (d, _) = sent(enc.delta(&s2, t0 + Duration::from_secs(1)));
        assert!(d.campaigns[0].channels.is_empty(), "held: the campaign's own figures only");
        let client = apply(&client, d).unwrap();
        assert_eq!(client.campaigns[0].channels[0].totals.clicks, 5);
        let s3 = with_channel(&s2, 2, |v| v.health = Health::Stale);
        let (d, _) = sent(enc.delta(&s3, t0 + Duration::from_secs(2)));
        assert_eq!(
            d.campaigns[0].channels.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [2],
            "a change of health at once"
        );
        let client = apply(&client, d).unwrap();
        let (d, _) = sent(enc.delta(&s3, t0 + OFF_SCREEN_EVERY));
        assert_eq!(d.campaigns[0].channels.len(), 1, "the held figures, once due");
        let client = apply(&client, d).unwrap();
        // Never on screen, its channels come without their recent samples.
        for (c, s) in client.campaigns[0].channels.iter().zip(&s3.campaigns[0].channels) {
            assert_eq!(**c, ChannelView { recent: Default::default(), ..as_held(s) });
        }
        // On screen: the samples of every channel, then each change at once.
        enc.focus = Some(s3.campaigns[0].campaign.id.clone());
        let at = t0 + OFF_SCREEN_EVERY + Duration::from_millis(10);
        let (d, _) = sent(enc.delta(&s3, at));
        assert_eq!(d.campaigns[0].channels.len(), s3.campaigns[0].channels.len());
        let client = apply(&client, d).unwrap();
        for (c, s) in client.campaigns[0].channels.iter().zip(&s3.campaigns[0].channels) {
            assert_eq!(**c, as_held(s));
        }
        let s4 = with_channel(&s3, 0, |v| v.totals.clicks += 1);
        let (d, _) = sent(enc.delta(&s4, at));
        assert_eq!(d.campaigns[0].channels.len(), 1);
        assert_eq!(apply(&client, d).unwrap().campaigns[0].channels[0].totals.clicks, 7);
    }

    /// A chart sends the points that changed at its end.
    #[test]
    fn series_deltas_send_the_end_that_changed() {
        let pt = |t: i64, c: u64| (t, Counters { clicks: c, ..Default::default() });
        let s1 = SeriesView {
            key: ChannelKey::new("c", "a"),
            window: Window::Hour,
            from_ms: 0,
            to_ms: 3,
            bucket_ms: 1,
            points: vec![pt(0, 1), pt(1, 2), pt(2, 3)],
        };
        let d = SeriesDelta::new(&s1, None);
        assert_eq!(d.keep, 0);
        let c1 = d.apply(None);
        assert_eq!(c1, s1);
        let s2 = SeriesView { points: vec![pt(0, 1), pt(1, 2), pt(2, 4), pt(3, 1)], to_ms: 4, ..s1.clone() };
        let d = SeriesDelta::new(&s2, Some(&s1));
        assert_eq!((d.keep, d.points.len()), (2, 2));
        assert_eq!(d.apply(Some(&c1)), s2);
        let other = SeriesView { key: ChannelKey::new("c", "b"), ..s2.clone() };
        assert_eq!(SeriesDelta::new(&other, Some(&s2)).keep, 0, "another channel's chart is sent whole");
    }

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_are_told_apart() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write(&mut a, &ToService::Watch).await.unwrap();
        a.write_all(&5u32.to_be_bytes()).await.unwrap();
        a.write_all(b"{oops").await.unwrap();
        a.write_all(&(MAX_FRAME as u32 + 1).to_be_bytes()).await.unwrap();
        assert!(matches!(read::<_, ToService>(&mut b).await.unwrap(), Some(Frame::Message(ToService::Watch))));
        assert!(matches!(read::<_, ToService>(&mut b).await.unwrap(), Some(Frame::Bad(_))));
        assert!(read::<_, ToService>(&mut b).await.is_err(), "an oversized frame ends the stream");
        drop(a);
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        assert!(read::<_, ToService>(&mut b).await.unwrap().is_none());
    }
}
