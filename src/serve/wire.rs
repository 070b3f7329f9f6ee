//! The service's messages (API version 1) and how they travel: each message is one frame, a
//! 4-byte big-endian length and that many bytes of JSON, at most `MAX_FRAME`. A client sends
//! `Hello` first; the service answers `Welcome` (or `Refused` and closes). Then:
//!
//! - `Watch`: the service sends the state as `Snapshot` frames, the first whole, each later
//!   one only with what changed since the one before it (channels whose view changed, lists
//!   that changed). A client that reads slowly gets fewer frames, never a backlog: each frame
//!   is built from the latest state when the socket can take it.
//! - `Detail`: the chart or analysis this client shows; the service sends `Series` or
//!   `Analysis` frames and keeps them fresh (at most once a second, once in five).
//! - `Act`: an acknowledgement, silence, note, action or undo, done as the hello's user.
//! - `Run`: a command line (`journal`, `report …`, `campaign list`, …) run by the service on
//!   its database; the answer is `Done` with what it printed and its exit status.
//!
//! Unknown fields are ignored, so a newer peer may add some; a frame that does not parse gets
//! an `Error` answer and the connection goes on.

use crate::alert::{Alert, AlertKey, Silence};
use crate::analyze::WindowKind;
use crate::analyze::data::Analysis;
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

pub const API_VERSION: u32 = 1;
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
    Ack { key: AlertKey },
    Silence { key: AlertKey, for_ms: i64 },
    Note { campaign: String, channel: Option<String>, text: String },
    Apply { campaign: String, changes: Vec<Change>, recommendation: Option<String> },
    Undo { entry: Option<u64>, campaign: Option<String> },
    Snooze { recommendation: String, for_ms: i64 },
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
    Series {
        series: Option<SeriesView>,
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

/// The state, or what changed of it since the last frame sent to this client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    pub generation: u64,
    pub now_ms: i64,
    pub speed: f64,
    /// Milliseconds since the last sample came in.
    pub data_age_ms: Option<u64>,
    pub store_error: Option<String>,
    #[serde(default)]
    pub stall: Option<String>,
    pub compacting: bool,
    pub read_only: bool,
    pub notice: Option<(u64, String)>,
    #[serde(default)]
    pub paging: Option<String>,
    /// Every campaign, in order; each with the channels that changed.
    pub campaigns: Vec<CampaignDelta>,
    pub sources: Option<Vec<SourceWire>>,
    pub alerts: Option<Vec<Alert>>,
    pub silences: Option<Vec<Silence>>,
    pub recommendations: Option<Vec<Recommendation>>,
    pub journal: Option<Vec<JournalEntry>>,
    pub notes: Option<Vec<Note>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignDelta {
    pub id: String,
    /// The plan, when it is new to the client or changed.
    pub plan: Option<Campaign>,
    pub totals: Counters,
    pub today: Counters,
    pub day_start_ms: i64,
    pub health: Health,
    pub trouble: Vec<usize>,
    /// Each channel's view, or `None` where the client's is still right. All are given with a
    /// new plan.
    pub channels: Vec<Option<ChannelWire>>,
}

/// A channel's view as sent: its recent samples only from where the client's differ, and,
/// when only its figures moved (a reading came in), only those.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelWire {
    /// The view, its `recent` left empty; `None` when the client's differs only in `moved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ChannelView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<Moved>,
    /// The client's samples from this time on are replaced by `recent` (all of them when
    /// `None`); then it keeps the last `recent_len`.
    pub recent_from: Option<i64>,
    pub recent: Vec<Entry>,
    pub recent_len: usize,
}

/// What a reading changes of a channel's view: totals and today's (as lists, in the order of
/// `Entry`), the source's health and failures, the time of the reading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moved(Entry, Entry, Health, u32, Option<String>);

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

/// A recent sample, as a list: `[end, impressions, clicks, leads, conversions, spend,
/// revenue]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Entry(i64, u64, u64, u64, u64, f64, f64);

impl From<&(i64, Counters)> for Entry {
    fn from((t, c): &(i64, Counters)) -> Entry {
        Entry(*t, c.impressions, c.clicks, c.leads, c.conversions, c.spend, c.revenue)
    }
}

impl From<Entry> for (i64, Counters) {
    fn from(Entry(t, impressions, clicks, leads, conversions, spend, revenue): Entry) -> (i64, Counters) {
        (t, Counters { impressions, clicks, leads, conversions, spend, revenue })
    }
}

impl ChannelWire {
    /// `v` for a client that holds `old` (nothing when `None`).
    fn new(v: &ChannelView, old: Option<&ChannelView>) -> ChannelWire {
        let keep = v.recent.len().min(crate::engine::snapshot::SPARK_WIDTH + 1);
        let from = old.and_then(|o| o.recent.last()).map(|(t, _)| *t);
        let recent = v
            .recent
            .iter()
            .skip(v.recent.len() - keep)
            .filter(|(t, _)| from.is_none_or(|f| *t >= f))
            .map(Entry::from)
            .collect();
        let (view, moved) = match old {
            Some(o) if fixed(o) == fixed(v) => {
                let moved = Moved(
                    Entry::from(&(v.last_at, v.totals)),
                    Entry::from(&(0, v.today)),
                    v.health,
                    v.failures,
                    v.last_error.clone(),
                );
                (None, Some(moved))
            }
            _ => {
                let mut view = v.clone();
                view.recent = crate::domain::Recent::default();
                (Some(view), None)
            }
        };
        ChannelWire { view, moved, recent_from: from, recent, recent_len: keep }
    }

    /// The view, with the client's `old` brought up to date; `None` when the client lacks
    /// the view the change applies to.
    fn view(self, old: Option<&ChannelView>) -> Option<ChannelView> {
        let mut entries: Vec<(i64, Counters)> = match (self.recent_from, old) {
            (Some(from), Some(o)) => o.recent.iter().filter(|(t, _)| *t < from).copied().collect(),
            _ => Vec::new(),
        };
        entries.extend(self.recent.into_iter().map(<(i64, Counters)>::from));
        let mut v = match (self.view, self.moved) {
            (Some(v), _) => v,
            (None, Some(Moved(totals, today, health, failures, last_error))) => {
                let (last_at, totals) = totals.into();
                ChannelView {
                    totals,
                    today: <(i64, Counters)>::from(today).1,
                    health,
                    failures,
                    last_error,
                    last_at,
                    ..old?.clone()
                }
            }
            (None, None) => old?.clone(),
        };
        v.recent = crate::domain::Recent::from_entries(entries, self.recent_len);
        Some(v)
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

/// What a client was last sent, to send it only what changed.
#[derive(Default)]
pub struct Encoder {
    campaigns: HashMap<String, (Arc<Campaign>, Vec<Arc<ChannelView>>)>,
    sources: Option<Arc<Vec<SourceView>>>,
    alerts: Option<Arc<Vec<Alert>>>,
    silences: Option<Arc<Vec<Silence>>>,
    recommendations: Option<Arc<Vec<Recommendation>>>,
    journal: Option<Arc<Vec<JournalEntry>>>,
    notes: Option<Arc<Vec<Note>>>,
}

/// `Some(copy)` when `now` is not what was sent last, remembering it.
fn changed<T: Clone>(last: &mut Option<Arc<Vec<T>>>, now: &Arc<Vec<T>>) -> Option<Vec<T>> {
    if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, now)) {
        return None;
    }
    *last = Some(now.clone());
    Some(now.as_ref().clone())
}

impl Encoder {
    pub fn delta(&mut self, s: &Snapshot) -> Delta {
        let mut seen = HashMap::with_capacity(s.campaigns.len());
        let campaigns = s
            .campaigns
            .iter()
            .map(|c| {
                let id = c.campaign.id.clone();
                let last = self.campaigns.remove(&id);
                let same_plan = last.as_ref().is_some_and(|(p, chs)| {
                    Arc::ptr_eq(p, &c.campaign) || (**p == *c.campaign && chs.len() == c.channels.len())
                });
                let channels = c
                    .channels
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let old = if same_plan { last.as_ref().and_then(|(_, chs)| chs.get(i)) } else { None };
                        let sent = old.is_some_and(|old| Arc::ptr_eq(old, v));
                        (!sent).then(|| ChannelWire::new(v, old.map(|o| &**o)))
                    })
                    .collect();
                seen.insert(id.clone(), (c.campaign.clone(), c.channels.clone()));
                CampaignDelta {
                    id,
                    plan: (!same_plan).then(|| (*c.campaign).clone()),
                    totals: c.totals,
                    today: c.today,
                    day_start_ms: c.day_start_ms,
                    health: c.health,
                    trouble: c.trouble.clone(),
                    channels,
                }
            })
            .collect();
        self.campaigns = seen;
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
            campaigns,
            sources,
            alerts: changed(&mut self.alerts, &s.alerts),
            silences: changed(&mut self.silences, &s.silences),
            recommendations: changed(&mut self.recommendations, &s.recommendations),
            journal: changed(&mut self.journal, &s.journal),
            notes: changed(&mut self.notes, &s.notes),
        }
    }
}

/// Replaces a list the delta carries.
fn set<T>(slot: &mut Arc<Vec<T>>, v: Option<Vec<T>>) {
    if let Some(v) = v {
        *slot = Arc::new(v);
    }
}

/// Applies a delta to the state a client holds. An error means the two sides no longer agree
/// (a channel left out that the client never had): the client reconnects for a whole state.
pub fn apply(base: &Snapshot, d: Delta) -> Result<Snapshot, String> {
    let mut s = base.clone();
    let old: HashMap<&str, &Arc<CampaignView>> = base.campaigns.iter().map(|c| (c.campaign.id.as_str(), c)).collect();
    let mut campaigns = Vec::with_capacity(d.campaigns.len());
    for c in d.campaigns {
        let prev = old.get(c.id.as_str());
        let plan_new = c.plan.is_some();
        let plan = match (c.plan, prev) {
            (Some(p), _) => Arc::new(p),
            (None, Some(prev)) => prev.campaign.clone(),
            (None, None) => return Err(format!("campaign {} arrived without its plan", c.id)),
        };
        let mut channels = Vec::with_capacity(c.channels.len());
        for (i, v) in c.channels.into_iter().enumerate() {
            // With a new plan the client's views are not this plan's.
            let old = if plan_new { None } else { prev.and_then(|p| p.channels.get(i)) };
            channels.push(match v {
                Some(v) => Arc::new(
                    v.view(old.map(|o| &**o))
                        .ok_or_else(|| format!("campaign {}: channel {i} changed without its view", c.id))?,
                ),
                None => prev
                    .and_then(|p| p.channels.get(i).cloned())
                    .ok_or_else(|| format!("campaign {}: channel {i} arrived without its view", c.id))?,
            });
        }
        campaigns.push(Arc::new(CampaignView {
            campaign: plan,
            channels,
            totals: c.totals,
            today: c.today,
            day_start_ms: c.day_start_ms,
            health: c.health,
            trouble: c.trouble,
        }));
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

/// Writes one message as a frame.
pub async fn write<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "message larger than a frame may be"));
    }
    w.write_all(&(body.len() as u32).to_be_bytes()).await?;
    w.write_all(&body).await?;
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
pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> std::io::Result<Option<Frame<T>>> {
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
    Ok(Some(match serde_json::from_slice(&body) {
        Ok(m) => Frame::Message(m),
        Err(e) => Frame::Bad(e.to_string()),
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

    /// A first frame is whole; later ones carry only the channels that changed, and the
    /// client's state after each is the service's.
    #[test]
    fn deltas_carry_what_changed_and_rebuild_the_state() {
        let mut enc = Encoder::default();
        let s1 = snapshot();
        let d1 = enc.delta(&s1);
        assert!(d1.campaigns[0].plan.is_some());
        assert!(d1.campaigns[0].channels.iter().all(Option::is_some));
        let json = serde_json::to_vec(&d1).unwrap();
        let client = apply(&Snapshot::default(), serde_json::from_slice(&json).unwrap()).unwrap();
        assert_eq!(client.campaigns[0].channels.len(), s1.campaigns[0].channels.len());
        // One channel changes.
        let mut s2 = s1.clone();
        let mut cv = (*s2.campaigns[0]).clone();
        let mut v = (*cv.channels[1]).clone();
        v.totals.clicks = 99;
        v.recent = crate::domain::Recent::from_entries(
            v.recent.iter().copied().chain([(4 * 60_000, Counters { clicks: 4, ..Default::default() })]),
            120,
        );
        cv.channels[1] = Arc::new(v);
        s2.campaigns[0] = Arc::new(cv);
        s2.generation = 2;
        let d2 = enc.delta(&s2);
        assert!(d2.campaigns[0].plan.is_none(), "the plan is not sent again");
        let sent: Vec<bool> = d2.campaigns[0].channels.iter().map(Option::is_some).collect();
        assert_eq!(sent.iter().filter(|s| **s).count(), 1, "{sent:?}");
        let wire = d2.campaigns[0].channels[1].as_ref().unwrap();
        assert_eq!(wire.recent.len(), 2, "the recent samples from the client's last on");
        assert!(wire.view.is_none() && wire.moved.is_some(), "only the figures that moved");
        assert!(d2.alerts.is_none() && d2.sources.is_none(), "lists that did not change stay out");
        let small = serde_json::to_vec(&d2).unwrap().len();
        assert!(small < json.len() / 2, "{small} vs {}", json.len());
        let client = apply(&client, serde_json::from_slice(&serde_json::to_vec(&d2).unwrap()).unwrap()).unwrap();
        assert_eq!(client.campaigns[0].channels[1].totals.clicks, 99);
        assert_eq!(
            *client.campaigns[0].channels[1], *s2.campaigns[0].channels[1],
            "the client's view is the service's"
        );
        let recent: Vec<_> = client.campaigns[0].channels[1].recent.iter().map(|(t, c)| (*t, c.clicks)).collect();
        assert_eq!(recent, [(60_000, 1), (120_000, 2), (180_000, 3), (240_000, 4)]);
        assert_eq!(client.campaigns[0].channels[0].totals.clicks, 5);
        assert_eq!(client.generation, 2);
        // A client that missed the plan cannot rebuild the state: it says so.
        assert!(apply(&Snapshot::default(), enc.delta(&s2)).is_err());
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
