//! The stats protocol, version 1 (see `poll`), mapped onto the domain's counters. Parsing is strict about what
//! matters (non-negative finite counters, unique channel ids) and tolerant of added fields.

use crate::domain::{ChannelStatus, Counters, SegmentCounters, VariantCounters};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

pub const PROTOCOL_VERSION: u32 = 1;

/// A stats document as served by a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsDoc {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<DateTime<Utc>>,
    pub channels: Vec<ChannelStats>,
    /// For sources read by periods (`rows` mode): where the periods asked for begin. Each
    /// channel's periods from here on replace what was known of them; earlier ones stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restated_from: Option<i64>,
    /// Totals that the source restates (windows and periods of a platform's reports): a counter
    /// that went down is a correction, not a reset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restating: bool,
    /// The periods given replace those known; periods not given stand (a directory of exports
    /// from which a file was removed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Something the source's health line says although the answer is good ("2 files still
    /// being written; read in 2 s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The source's credentials expire soon: someone must sign in again before then.
    #[serde(skip)]
    pub expiring: Option<String>,
    /// The platform says its rate limit is nearly used up: poll this many times less often
    /// until it falls.
    #[serde(skip)]
    pub slow_down: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub id: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ChannelStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Arc<str>>,
    pub totals: Counters,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantCounters>,
    /// Optional breakdown by audience segment: cumulative counters per (dimension, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentCounters>,
    /// `rows` sources: the counters of each period asked for (start, unix ms), summed into
    /// `totals` with the periods known from before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub periods: Vec<(i64, Counters)>,
    /// Of a first reading of cumulative `totals` that counted from before the campaign began
    /// (an exporter's counter running since long before): what they gained since its start.
    /// The channel's figures begin there, not with the counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_start: Option<Counters>,
}

impl ChannelStats {
    /// A channel with nothing to report.
    pub fn nothing(id: &str) -> ChannelStats {
        ChannelStats {
            id: Arc::from(id),
            campaign: None,
            status: None,
            daily_budget: None,
            currency: None,
            totals: Counters::default(),
            variants: Vec::new(),
            segments: Vec::new(),
            periods: Vec::new(),
            since_start: None,
        }
    }
}

/// The document as it arrives: numbers as JSON numbers of any kind, checked before use; names
/// borrowed from the body where they carry no escapes.
/// `S` is how the segments are read: `Vec<RawSegment>`, or skipped over (`IgnoredAny`, see
/// `Names::skim_segments`).
#[derive(Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default"))]
struct RawDoc<'a, S> {
    version: Option<u32>,
    generated_at: Option<DateTime<Utc>>,
    #[serde(borrow)]
    channels: Vec<RawChannel<'a, S>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default"))]
struct RawChannel<'a, S> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    campaign: Option<Cow<'a, str>>,
    status: Option<ChannelStatus>,
    daily_budget: Option<f64>,
    #[serde(borrow)]
    currency: Option<Cow<'a, str>>,
    totals: RawCounters,
    #[serde(default)]
    variants: Vec<RawVariant>,
    #[serde(default)]
    segments: S,
}

/// The segments of a channel as read: every one, or none (skipped over).
trait RawSegments<'a> {
    fn into_list(self) -> Vec<RawSegment<'a>>;
}

impl<'a> RawSegments<'a> for Vec<RawSegment<'a>> {
    fn into_list(self) -> Vec<RawSegment<'a>> {
        self
    }
}

impl<'a> RawSegments<'a> for serde::de::IgnoredAny {
    fn into_list(self) -> Vec<RawSegment<'a>> {
        Vec::new()
    }
}

/// A segment's counters sit beside its names (spelled out rather than flattened: serde's
/// `flatten` buffers every field, which made segments the slowest part of a document).
#[derive(Deserialize)]
struct RawSegment<'a> {
    #[serde(borrow)]
    dimension: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
    #[serde(default)]
    impressions: f64,
    #[serde(default)]
    clicks: f64,
    #[serde(default)]
    leads: f64,
    #[serde(default)]
    conversions: f64,
    #[serde(default)]
    spend: f64,
    #[serde(default)]
    revenue: f64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCounters {
    impressions: f64,
    clicks: f64,
    leads: f64,
    conversions: f64,
    spend: f64,
    revenue: f64,
}

#[derive(Deserialize)]
struct RawVariant {
    id: String,
    #[serde(default)]
    impressions: f64,
    #[serde(default)]
    clicks: f64,
    #[serde(default)]
    conversions: f64,
}

/// Where a number sits, spelled out only when it is wrong: "segment age=18-24 clicks".
#[derive(Clone, Copy)]
enum Place<'a> {
    Totals,
    Segment(&'a str, &'a str),
    Variant(&'a str),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Totals => Ok(()),
            Place::Segment(d, v) => write!(f, "segment {d}={v} "),
            Place::Variant(id) => write!(f, "variant {id} "),
        }
    }
}

fn count(ch: &str, at: Place<'_>, field: &str, v: f64) -> Result<u64, String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!("channel '{ch}': {at}{field} is {v}, counters must be finite and ≥ 0"));
    }
    if v.fract() != 0.0 {
        return Err(format!("channel '{ch}': {at}{field} is {v}, counts must be whole numbers"));
    }
    if v > 9.0e15 {
        return Err(format!("channel '{ch}': {at}{field} is {v}, implausibly large"));
    }
    Ok(v as u64)
}

fn amount(ch: &str, at: Place<'_>, field: &str, v: f64) -> Result<f64, String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!("channel '{ch}': {at}{field} is {v}, amounts must be finite and ≥ 0"));
    }
    Ok(v)
}

fn counters(ch: &str, at: Place<'_>, t: &RawCounters) -> Result<Counters, String> {
    Ok(Counters {
        impressions: count(ch, at, "impressions", t.impressions)?,
        clicks: count(ch, at, "clicks", t.clicks)?,
        leads: count(ch, at, "leads", t.leads)?,
        conversions: count(ch, at, "conversions", t.conversions)?,
        spend: amount(ch, at, "spend", t.spend)?,
        revenue: amount(ch, at, "revenue", t.revenue)?,
    })
}

/// The names a source used in its earlier answers (channel ids, campaigns, currencies, segment
/// dimensions and values), so that a reading shares them rather than allocating each anew: a
/// source answers with the same names in the same order every time, so the name at the same
/// position in the last answer is tried first, then the set of all names kept.
#[derive(Default)]
pub struct Names {
    last: Vec<Arc<str>>,
    now: Vec<Arc<str>>,
    all: HashSet<Arc<str>>,
    skim: Option<Skim>,
}

/// Segments read only where they change what is stored (see `Names::skim_segments`).
struct Skim {
    interval_ms: i64,
    period_ms: i64,
    /// The storage period of the last answer whose segments were read.
    read_in: Option<i64>,
    /// Each channel's totals in the last answer, in its order.
    totals: Vec<(Arc<str>, Counters)>,
    /// The source's clock less ours at the last answer: where the next answer will stand.
    offset_ms: i64,
    /// Whether answers between the reads may be asked for without segments (`segments=0`);
    /// false once the source refused such a request.
    lean: bool,
}

impl Skim {
    /// Whether the segments of an answer standing for `at` (unix ms) with these channels are
    /// to be read: the first answer of a storage period, one that may be its last (the next
    /// poll, half an interval late, would fall in the next), or one in which any channel's
    /// counters went back (a restarted source: what the segments held before is counted then).
    fn wants(&mut self, at: i64, channels: &[ChannelStats]) -> bool {
        let read = self.due(at) || self.went_back(channels);
        self.note(channels);
        if read {
            self.read_in = Some(at.div_euclid(self.period_ms));
        }
        read
    }

    /// Whether an answer standing for `at` is the first of its storage period or may be its
    /// last (the next poll, half an interval late, would fall in the next).
    fn due(&self, at: i64) -> bool {
        let period = at.div_euclid(self.period_ms);
        let ending = (at + self.interval_ms * 3 / 2).div_euclid(self.period_ms) != period;
        self.read_in != Some(period) || ending
    }

    /// Whether any channel's counters went back since the last answer, or the channels changed.
    fn went_back(&self, channels: &[ChannelStats]) -> bool {
        self.totals.len() != channels.len()
            || !self.totals.iter().zip(channels).all(|((id, t), c)| *id == c.id && !c.totals.went_backwards(t))
    }

    fn note(&mut self, channels: &[ChannelStats]) {
        self.totals.clear();
        self.totals.extend(channels.iter().map(|c| (c.id.clone(), c.totals)));
    }
}

impl Names {
    /// For a source polled every `interval`: its answers' audience segments are read only
    /// where they change what is stored, samples of `period_ms` (a minute) — the first answer
    /// of a period, the last one, and one after a restart of the source — and skipped over in
    /// between. The cursor keeps each segment's last value, so the segments read next cover
    /// the answers skipped: the same numbers, for a fraction of the work at one poll a second
    /// (segments are most of an answer's bytes). A segment's bad data is then seen within a
    /// period, and a restart of the source loses the segments' gains since the last read (at
    /// most a period's; the totals lose nothing). At an interval of half a period or more,
    /// every answer is read whole.
    pub fn skim_segments(&mut self, interval: std::time::Duration, period_ms: i64) {
        self.skim = Some(Skim {
            interval_ms: interval.as_millis() as i64,
            period_ms,
            read_in: None,
            totals: Vec::new(),
            offset_ms: 0,
            lean: true,
        });
    }

    /// Whether a request at `now_ms` (our clock) may ask for an answer without segments: one
    /// whose segments would be skipped over anyway (see `skim_segments`). The source's clock
    /// is taken to be as far from ours as at its last answer.
    pub fn asks_lean(&self, now_ms: i64) -> bool {
        self.skim.as_ref().is_some_and(|s| s.lean && !s.totals.is_empty() && !s.due(now_ms + s.offset_ms))
    }

    /// The source refused a request without segments: every answer is asked for whole from now.
    pub fn refuse_lean(&mut self) {
        if let Some(s) = &mut self.skim {
            s.lean = false;
        }
    }

    /// `s` (without surrounding blanks) as a shared name.
    fn get(&mut self, s: &str) -> Arc<str> {
        let s = s.trim();
        let name = match self.last.get(self.now.len()) {
            Some(a) if **a == *s => a.clone(),
            _ => match self.all.get(s) {
                Some(a) => a.clone(),
                None => {
                    let a: Arc<str> = Arc::from(s);
                    self.all.insert(a.clone());
                    a
                }
            },
        };
        self.now.push(name.clone());
        name
    }

    /// Ends an answer: its names in order are the ones tried first next time. Names no longer
    /// used are let go once they outnumber those in use, so that a source inventing new names
    /// does not grow the set without end.
    fn finish(&mut self) {
        std::mem::swap(&mut self.last, &mut self.now);
        self.now.clear();
        if self.all.len() > 2 * self.last.len() + 64 {
            self.all.clear();
            self.all.extend(self.last.iter().cloned());
        }
    }
}

/// Parses and checks a stats document. The error says what is wrong and where, in one line.
pub fn parse_stats(body: &[u8]) -> Result<StatsDoc, String> {
    parse_stats_with(body, &mut Names::default())
}

/// `parse_stats`, sharing names with the source's earlier answers.
pub fn parse_stats_with(body: &[u8], names: &mut Names) -> Result<StatsDoc, String> {
    parse_stats_at(body, names, chrono::Utc::now().timestamp_millis())
}

/// `parse_stats_with` for an answer received at `now_ms` (the time it stands for unless it says
/// when it was generated): its segments are skipped over when `Names::skim_segments` says so.
pub fn parse_stats_at(body: &[u8], names: &mut Names, now_ms: i64) -> Result<StatsDoc, String> {
    if names.skim.is_some() {
        let skimmed = finished(parse_raw::<serde::de::IgnoredAny>(body, names), names)?;
        let at = answer_time(&skimmed, names, now_ms);
        if !names.skim.as_mut().is_some_and(|s| s.wants(at, &skimmed.channels)) {
            return Ok(skimmed);
        }
    }
    finished(parse_raw::<Vec<RawSegment<'_>>>(body, names), names)
}

/// Parses an answer asked for without segments (`Names::asks_lean`), received at `now_ms`.
/// `None` when a channel's counters went back or the channels changed: the source restarted,
/// and its segments are to be read now, from an answer asked for whole.
pub fn parse_lean_at(body: &[u8], names: &mut Names, now_ms: i64) -> Result<Option<StatsDoc>, String> {
    let doc = finished(parse_raw::<serde::de::IgnoredAny>(body, names), names)?;
    answer_time(&doc, names, now_ms);
    let Some(skim) = names.skim.as_mut() else { return Ok(Some(doc)) };
    if skim.went_back(&doc.channels) {
        return Ok(None);
    }
    skim.note(&doc.channels);
    Ok(Some(doc))
}

/// The time an answer received at `now_ms` stands for; the source's clock offset is kept.
fn answer_time(doc: &StatsDoc, names: &mut Names, now_ms: i64) -> i64 {
    let at = doc.generated_at.map_or(now_ms, |g| g.timestamp_millis());
    if let Some(s) = names.skim.as_mut() {
        s.offset_ms = at - now_ms;
    }
    at
}

fn finished(doc: Result<StatsDoc, String>, names: &mut Names) -> Result<StatsDoc, String> {
    match doc {
        Ok(_) => names.finish(),
        // A refused answer leaves the last good one's names to be tried first.
        Err(_) => names.now.clear(),
    }
    doc
}

fn parse_raw<'a, S>(body: &'a [u8], names: &mut Names) -> Result<StatsDoc, String>
where
    S: RawSegments<'a> + Deserialize<'a> + Default,
{
    // The text is checked for UTF-8 once, as a whole, rather than string by string.
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("not a stats document: invalid UTF-8 at byte {}", e.valid_up_to()))?;
    // The plain parser is the fast path; only a document it refuses is read again to name the
    // field: "channels[0].totals.clicks: invalid type …".
    let raw: RawDoc<'a, S> = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(plain) => {
            let mut de = serde_json::Deserializer::from_str(text);
            let named = serde_path_to_error::deserialize::<_, RawDoc<'a, S>>(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    format!("not a stats document: {inner}")
                } else {
                    format!("not a stats document: {path}: {inner}")
                }
            });
            return Err(match named {
                Err(msg) => msg,
                Ok(_) => format!("not a stats document: {plain}"),
            });
        }
    };
    let version = raw.version.unwrap_or(PROTOCOL_VERSION);
    if version != PROTOCOL_VERSION {
        return Err(format!("protocol version {version} is not supported (this cockpit speaks {PROTOCOL_VERSION})"));
    }
    let mut channels: Vec<ChannelStats> = Vec::with_capacity(raw.channels.len());
    for c in raw.channels {
        let id = names.get(&c.id);
        if id.is_empty() {
            return Err("a channel has an empty id".into());
        }
        let totals = counters(&id, Place::Totals, &c.totals)?;
        let raw_segments = c.segments.into_list();
        let mut segments: Vec<SegmentCounters> = Vec::with_capacity(raw_segments.len());
        for seg in raw_segments {
            let (dimension, value) = (names.get(&seg.dimension), names.get(&seg.value));
            if dimension.is_empty() || value.is_empty() {
                return Err(format!("channel '{id}': a segment has an empty dimension or value"));
            }
            let raw = RawCounters {
                impressions: seg.impressions,
                clicks: seg.clicks,
                leads: seg.leads,
                conversions: seg.conversions,
                spend: seg.spend,
                revenue: seg.revenue,
            };
            let counters = counters(&id, Place::Segment(&dimension, &value), &raw)?;
            let s = SegmentCounters { dimension, value, counters };
            if segments.iter().any(|o| o.same_segment(&s)) {
                return Err(format!("channel '{id}': duplicate segment {}={}", s.dimension, s.value));
            }
            segments.push(s);
        }
        let daily_budget = c.daily_budget.map(|b| amount(&id, Place::Totals, "daily_budget", b)).transpose()?;
        let variants = c
            .variants
            .into_iter()
            .map(|v| {
                let at = Place::Variant(&v.id);
                Ok(VariantCounters {
                    impressions: count(&id, at, "impressions", v.impressions)?,
                    clicks: count(&id, at, "clicks", v.clicks)?,
                    conversions: count(&id, at, "conversions", v.conversions)?,
                    id: v.id,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        channels.push(ChannelStats {
            id,
            campaign: c.campaign.map(|n| names.get(&n)),
            status: c.status,
            daily_budget,
            currency: c.currency.map(|n| names.get(&n)),
            totals,
            variants,
            segments,
            periods: Vec::new(),
            since_start: None,
        });
    }
    // One entry per channel and campaign: found side by side once sorted.
    let mut order: Vec<&ChannelStats> = channels.iter().collect();
    order.sort_unstable_by(|a, b| (&a.id, &a.campaign).cmp(&(&b.id, &b.campaign)));
    if let Some(w) = order.windows(2).find(|w| (&w[0].id, &w[0].campaign) == (&w[1].id, &w[1].campaign)) {
        return Err(format!("duplicate channel id '{}'", w[0].id));
    }
    Ok(StatsDoc {
        version,
        generated_at: raw.generated_at,
        channels,
        restated_from: None,
        restating: false,
        partial: false,
        note: None,
        expiring: None,
        slow_down: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn parses_the_documented_example() {
        let body = br#"{ "version": 1, "generated_at": "2026-03-02T09:00:00Z",
          "channels": [ { "id": "wechat-moments", "campaign": "spring-launch", "status": "active",
              "daily_budget": 2000.0, "currency": "CNY",
              "totals": { "impressions": 120000, "clicks": 3400, "leads": 210, "conversions": 40,
                          "spend": 1820.55, "revenue": 9800.0 },
              "variants": [ { "id": "A", "impressions": 60000, "clicks": 1800, "conversions": 22 } ],
              "some_future_field": true } ] }"#;
        let d = parse_stats(body).unwrap();
        assert_eq!(d.channels[0].totals.clicks, 3400);
        assert_eq!(d.channels[0].variants[0].conversions, 22);
        assert_eq!(d.channels[0].status, Some(ChannelStatus::Active));
        assert!(d.channels[0].segments.is_empty(), "segments are optional");
    }

    /// At one poll a second, the segments are read at the first and last answers of each
    /// minute and after a restart of the source, skipped over in between; the gains a cursor
    /// takes from them sum up, minute by minute, to what reading every answer gives (but for
    /// the minute of a restart, and the one under way, whose segments are read as it ends).
    #[test]
    fn skimmed_segments_add_up_to_the_same_minutes() {
        segments_read_at_minute_edges_add_up(false);
    }

    /// The same, with the answers in between asked for without segments (`segments=0`): they
    /// come without, and the restart is seen in a lean answer, then asked for again whole.
    #[test]
    fn lean_answers_add_up_to_the_same_minutes() {
        segments_read_at_minute_edges_add_up(true);
    }

    fn segments_read_at_minute_edges_add_up(lean: bool) {
        use crate::domain::ChannelCursor;
        let t0 = 1_780_000_000_000i64;
        let answer = |i: i64, segments: bool| {
            // A restart of the source at 150 s: its counters begin again.
            let n = if i < 150 { i * 7 } else { (i - 150) * 7 };
            let at = chrono::DateTime::from_timestamp_millis(t0 + i * 1000).unwrap().to_rfc3339();
            format!(
                r#"{{"generated_at":"{at}","channels":[{{"id":"a","totals":{{"clicks":{}}}{}}}]}}"#,
                n,
                if segments {
                    format!(
                        r#","segments":[{{"dimension":"device","value":"mobile","clicks":{}}},
                                {{"dimension":"device","value":"desktop","clicks":{}}}]"#,
                        n - n / 7 * 2,
                        n / 7 * 2
                    )
                } else {
                    String::new()
                }
            )
        };
        let (mut whole, mut skimmed) = (Names::default(), Names::default());
        skimmed.skim_segments(std::time::Duration::from_secs(1), 60_000);
        let (mut a, mut b) = (ChannelCursor::default(), ChannelCursor::default());
        let (mut by_minute_a, mut by_minute_b) = (BTreeMap::new(), BTreeMap::new());
        let (mut read, mut lean_asked, mut asked_again) = (Vec::new(), 0, Vec::new());
        for i in 0..300 {
            let body = answer(i, true);
            let now = t0 + i * 1000 + 40;
            let da = parse_stats_at(body.as_bytes(), &mut whole, now).unwrap();
            let lean_doc = if lean && skimmed.asks_lean(now - 40) {
                lean_asked += 1;
                let d = parse_lean_at(answer(i, false).as_bytes(), &mut skimmed, now).unwrap();
                if d.is_none() {
                    asked_again.push(i);
                }
                d
            } else {
                None
            };
            let db = match lean_doc {
                Some(d) => d,
                None => parse_stats_at(body.as_bytes(), &mut skimmed, now).unwrap(),
            };
            assert_eq!(da.channels[0].totals, db.channels[0].totals, "the totals are read every time");
            if !db.channels[0].segments.is_empty() {
                read.push(i);
            }
            for (d, cursor, minutes) in [(&da, &mut a, &mut by_minute_a), (&db, &mut b, &mut by_minute_b)] {
                let at = t0 + i * 1000;
                cursor.advance(at, d.channels[0].totals, &[]).unwrap();
                if !d.channels[0].segments.is_empty() {
                    let gains: &mut Vec<SegmentCounters> = minutes.entry(at.div_euclid(60_000)).or_default();
                    cursor.advance_segments_into(&d.channels[0].segments, gains);
                }
            }
        }
        let sums = |m: &BTreeMap<i64, Vec<SegmentCounters>>| -> Vec<(i64, Vec<(String, u64)>)> {
            m.iter().map(|(k, v)| (*k, v.iter().map(|s| (s.value.to_string(), s.counters.clicks)).collect())).collect()
        };
        // Every minute the same but the restart's: the gains since the last read before it
        // (here 10 s of them) are gone with the counters they were in.
        // The minute under way at the end is read at its end, which is still to come.
        let (restart_minute, open_minute) = ((t0 + 150_000).div_euclid(60_000), (t0 + 299_000).div_euclid(60_000));
        let (sa, sb) = (sums(&by_minute_a), sums(&by_minute_b));
        assert_eq!(sa.len(), sb.len());
        for ((ka, va), (kb, vb)) in sa.iter().zip(&sb) {
            assert_eq!(ka, kb);
            if *ka != restart_minute && *ka != open_minute {
                assert_eq!(va, vb, "minute {ka}");
            }
        }
        // Three or four reads a minute of the 60 (the first, the last two), and the restart.
        assert!(read.len() < 30, "{} of 300 answers read whole: {read:?}", read.len());
        assert!(read.contains(&0) && read.contains(&150), "{read:?}");
        if lean {
            assert_eq!(
                lean_asked + read.len() - asked_again.len(),
                300,
                "every answer asked for once, but the restart"
            );
            assert_eq!(asked_again, [150], "the restart is asked for again whole");
        }
    }

    #[test]
    fn parses_segments() {
        let body = br#"{ "version": 1, "channels": [ { "id": "douyin", "totals": { "impressions": 1000, "clicks": 30 },
              "segments": [ { "dimension": "device", "value": "mobile", "impressions": 800, "clicks": 26, "spend": 12.5 },
                            { "dimension": "device", "value": "desktop", "impressions": 200, "clicks": 4 } ] } ] }"#;
        let d = parse_stats(body).unwrap();
        let segs = &d.channels[0].segments;
        assert_eq!(segs.len(), 2);
        assert_eq!((&*segs[0].value, segs[0].counters.clicks, segs[0].counters.spend), ("mobile", 26, 12.5));
        // What is served parses back the same.
        let again = parse_stats(&serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn answers_of_one_source_share_their_names() {
        let answer = |order: [&str; 2]| {
            format!(
                r#"{{"channels":[{{"id":"{}","campaign":"c","totals":{{}},"segments":[{{"dimension":"device","value":"mobile"}}]}},
                               {{"id":"{}","campaign":"c","totals":{{}}}}]}}"#,
                order[0], order[1]
            )
        };
        let mut names = Names::default();
        let a = parse_stats_with(answer(["x", "y"]).as_bytes(), &mut names).unwrap();
        let b = parse_stats_with(answer(["x", "y"]).as_bytes(), &mut names).unwrap();
        // In another order, and with blanks and an escape: the same names all the same.
        let c = parse_stats_with(answer([" y", r"\u0078"]).as_bytes(), &mut names).unwrap();
        assert!(Arc::ptr_eq(&a.channels[0].id, &b.channels[0].id));
        assert!(Arc::ptr_eq(&a.channels[0].segments[0].value, &b.channels[0].segments[0].value));
        assert!(Arc::ptr_eq(&a.channels[0].campaign.clone().unwrap(), &b.channels[1].campaign.clone().unwrap()));
        assert_eq!((&*c.channels[0].id, &*c.channels[1].id), ("y", "x"));
        assert!(Arc::ptr_eq(&a.channels[0].id, &c.channels[1].id));
        assert!(Arc::ptr_eq(&a.channels[1].id, &c.channels[0].id));
        // A source naming new things every time does not grow the set without end.
        for i in 0..1000 {
            parse_stats_with(answer([&format!("n{i}"), &format!("m{i}")]).as_bytes(), &mut names).unwrap();
        }
        assert!(names.all.len() <= 2 * names.last.len() + 64, "{} names kept", names.all.len());
        // A refused answer leaves the names of the last good one to try first.
        assert!(parse_stats_with(br#"{"channels":[{"id":"z","totals":{"clicks":-1}}]}"#, &mut names).is_err());
        assert_eq!((&*names.last[0], names.now.len()), ("n999", 0));
        let d = parse_stats_with(answer(["n999", "m999"]).as_bytes(), &mut names).unwrap();
        assert_eq!(&*d.channels[1].id, "m999");
    }

    #[test]
    fn refuses_bad_numbers_and_duplicates() {
        let cases = [
            (r#"{"version":1,"channels":[{"id":"a","totals":{"clicks":-1}}]}"#, "clicks is -1"),
            (r#"{"version":1,"channels":[{"id":"a","totals":{"clicks":1.5}}]}"#, "whole numbers"),
            (r#"{"version":1,"channels":[{"id":"a","totals":{}},{"id":"a","totals":{}}]}"#, "duplicate channel id 'a'"),
            (r#"{"version":2,"channels":[]}"#, "version 2"),
            (r#"{"version":1,"channels":[{"id":"a","totals":{"clicks":"7"}}]}"#, "not a stats document"),
            (r#"{"version":1,"channels":[{"id":"a","totals":{"spend":1e400}}]}"#, "not a stats document"),
            (r#"{"version":1,"chan"#, "not a stats document"),
            (
                r#"{"version":1,"channels":[{"id":"a","totals":{},"segments":[{"dimension":"age","value":"18-24","clicks":-2}]}]}"#,
                "segment age=18-24 clicks is -2",
            ),
            (
                r#"{"version":1,"channels":[{"id":"a","totals":{},"segments":[{"dimension":"d","value":"x"},{"dimension":"d","value":"x"}]}]}"#,
                "duplicate segment d=x",
            ),
        ];
        for (body, want) in cases {
            let e = parse_stats(body.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        let e = parse_stats(b"{\"version\":1,\"channels\":[{\"id\":\"a\xff\",\"totals\":{}}]}").unwrap_err();
        assert!(e.contains("invalid UTF-8 at byte 33"), "{e}");
        // Names are taken without surrounding blanks, other characters kept.
        let doc =
            parse_stats(r#"{"channels":[{"id":" a b\t","totals":{}},{"id":"ü","totals":{}}]}"#.as_bytes()).unwrap();
        assert_eq!((&*doc.channels[0].id, &*doc.channels[1].id), ("a b", "ü"));
    }
}
