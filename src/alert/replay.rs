//! Offline back-testing of a bare series: one row at a time, each judged only on the rows
//! before it (no look-ahead). Used by `cockpit replay --csv` to tune detectors:
//! `timestamp,value` (a money or count series) or `timestamp,numerator,denominator` (a rate
//! with its volume) in, `timestamp,value,score,alert` out.
//!
//! The model works at any rate, from 1 s polls to daily rows, with missing and irregular
//! timestamps, at any scale:
//!
//! - rows closer than 30 s (1 s polls) are judged a minute at a time, their mean (a rate: its
//!   sums), each row carrying the verdict of the last complete minute;
//! - a positive series is judged on a log scale (a change is a ratio, heavy right tails become
//!   symmetric), anything else on its own;
//! - the baseline is the median of the last `window` points with the season taken out, its
//!   spread their MAD: one wild point in the history moves neither;
//! - the season (hour of day for rows up to two hours apart, day of week for daily rows) is
//!   learnt from the completed seasons, each one's profile against its own mean and their
//!   median across seasons, and, with `Season::Auto`, used only once three seasons show it
//!   (it must explain a fifth of the spread, judged season by season on the others); until
//!   then the series is judged without it and the replay says how much more it needs;
//! - a rate is judged with its denominator (binomial), the spread between periods beyond what
//!   the volume explains added on top;
//! - a shift that holds for `confirm` points in a row on one side becomes the new normal: the
//!   baseline restarts from those points, instead of alerting until the window has moved on;
//! - the score is −log₁₀ of the two-sided tail probability of the point under the baseline:
//!   continuous, monotone in the deviation and unbounded, so a sweep of the threshold ranks
//!   points (5 is 1 in 100,000).

use crate::domain::time::{DAY_MS, HOUR_MS};
use std::collections::VecDeque;

/// Which tests raise an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayRule {
    /// A point far from its baseline, or a drift.
    Anomaly,
    /// Only points far from their baseline.
    Level,
    /// Only slow drifts (CUSUM).
    Drift,
}

/// The season a series is compared within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Season {
    /// Found from the data: hour of day (rows up to 2 h apart) or day of week (rows further
    /// apart), used once three seasons show it.
    Auto,
    /// None: every point against the recent level.
    Off,
    /// This period (ms), used once three periods are complete.
    Every(i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplaySettings {
    pub rule: ReplayRule,
    pub season: Season,
    /// Score (−log₁₀ p) at or above which a point is anomalous.
    pub threshold: f64,
    /// Smallest relative change that counts.
    pub min_change: f64,
    /// Points the baseline remembers (its weights fade over about as many).
    pub window: usize,
    /// Points of each span seen before any verdict.
    pub min_history: usize,
    /// Alerting points in a row on one side that make a new normal (0: never).
    pub confirm: usize,
    /// Points after a score at the threshold whose scores are held at 0: an incident is
    /// scored (and paged) once, not at every point it lasts. The alert column still says
    /// whether each point is beyond the threshold.
    pub quiet: usize,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            rule: ReplayRule::Anomaly,
            season: Season::Auto,
            threshold: 5.0,
            min_change: 0.3,
            window: 6400,
            min_history: 72,
            confirm: 0,
            quiet: 100,
        }
    }
}

/// One observation: a value, successes out of trials, or an amount over units (a price: spend
/// over clicks), whose own sampling error shrinks with its units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Point {
    Value(f64),
    Rate { num: f64, den: f64 },
    Price { amount: f64, units: f64 },
}

impl Point {
    pub fn value(self) -> f64 {
        match self {
            Point::Value(v) => v,
            Point::Rate { num, den } | Point::Price { amount: num, units: den } => {
                if den > 0.0 {
                    num / den
                } else {
                    f64::NAN
                }
            }
        }
    }
}

/// −log₁₀ of the two-sided tail probability of a standard normal statistic: 0 at z = 0,
/// about 5 at |z| = 4.42, and on without bound (asymptotic past where erfc underflows).
pub fn score_of_z(z: f64) -> f64 {
    use special::Error;
    let a = z.abs();
    if a.is_nan() {
        return 0.0;
    }
    if a < 30.0 {
        return -(a / std::f64::consts::SQRT_2).compl_error().log10();
    }
    // 2·φ(z)/z·(1 − 1/z² + 3/z⁴), in logs.
    let ln_p = std::f64::consts::LN_2 - a * a / 2.0 - 0.5 * (2.0 * std::f64::consts::PI).ln() - a.ln()
        + (1.0 - 1.0 / (a * a) + 3.0 / a.powi(4)).ln();
    -ln_p / std::f64::consts::LN_10
}

/// Rows closer together than this are judged a bucket of `DENSE_BUCKET` at a time.
const DENSE_GAP: i64 = 30_000;
const DENSE_BUCKET: i64 = 60_000;
/// Buckets of dense rows the baseline remembers at most: an hour of minutes.
const DENSE_MEMORY: usize = 60;
/// Buckets of dense rows in a row beyond the baseline that make a new normal, per `confirm`.
const DENSE_CONFIRM: usize = 5;

/// A streaming detector over one series. Rows polled every few seconds say little one by one
/// (a count of 3 a second drops to 1 by chance): they are judged a minute at a time, each row
/// carrying the verdict of the last complete minute.
#[derive(Debug, Clone)]
pub struct SeriesDetector {
    core: Core,
    rows: Rows,
}

/// How the rows reach the detector, decided from the gaps between the first of them.
#[derive(Debug, Clone)]
enum Rows {
    /// The first rows, until their gaps are known.
    Undecided(Vec<(i64, Point)>),
    Each,
    Packed(Pack),
}

/// The rows of the bucket being filled, and the verdict the last complete one got.
#[derive(Debug, Clone)]
struct Pack {
    /// The median gap between the rows themselves.
    gap: i64,
    bucket: i64,
    sum: (f64, f64),
    rows: u32,
    /// The kind of the first row (its numbers aside).
    kind: Point,
    last: (f64, bool),
}

impl Pack {
    /// The bucket's point: the mean of its values, or its successes out of its trials.
    fn point(&self) -> Point {
        match self.kind {
            Point::Rate { .. } => Point::Rate { num: self.sum.0, den: self.sum.1 },
            Point::Price { .. } => Point::Price { amount: self.sum.0, units: self.sum.1 },
            Point::Value(_) => Point::Value(self.sum.0 / f64::from(self.rows.max(1))),
        }
    }
}

impl SeriesDetector {
    pub fn new(s: ReplaySettings) -> Self {
        SeriesDetector { core: Core::new(s), rows: Rows::Undecided(Vec::new()) }
    }

    /// The median gap between the first rows (ms).
    pub fn interval(&self) -> Option<i64> {
        match &self.rows {
            Rows::Undecided(first) => median(gaps(first)),
            Rows::Packed(pack) => Some(pack.gap),
            Rows::Each => self.core.interval(),
        }
    }

    /// Judges a row against what came before, then adds it. Returns (score, alert).
    pub fn push(&mut self, t: i64, p: Point) -> (f64, bool) {
        match &mut self.rows {
            Rows::Each => self.core.push(t, p),
            Rows::Packed(pack) => {
                let bucket = t.div_euclid(DENSE_BUCKET);
                if bucket > pack.bucket {
                    if pack.rows > 0 {
                        let point = pack.point();
                        pack.last = self.core.push(pack.bucket * DENSE_BUCKET, point);
                    }
                    (pack.bucket, pack.sum, pack.rows) = (bucket, (0.0, 0.0), 0);
                }
                let (num, den) = match p {
                    Point::Value(v) => (v, 0.0),
                    Point::Rate { num, den } | Point::Price { amount: num, units: den } => (num, den),
                };
                if num.is_finite() && den.is_finite() {
                    pack.sum.0 += num;
                    pack.sum.1 += den;
                    pack.rows += 1;
                }
                pack.last
            }
            Rows::Undecided(first) => {
                first.push((t, p));
                if first.len() < self.core.s.min_history.max(2) {
                    return (0.0, false);
                }
                let first = std::mem::take(first);
                if let Some(gap) = median(gaps(&first)).filter(|g| *g < DENSE_GAP) {
                    // A minute is no hour: a shift is the new normal once it holds for five
                    // times as many minutes (half an hour at the default).
                    self.core.s.confirm *= DENSE_CONFIRM;
                    // Minutes remember the last hour, not days: the level follows the day's cycle.
                    self.core.s.window = self.core.s.window.min(DENSE_MEMORY);
                    let kind = first[0].1;
                    let bucket = first[0].0.div_euclid(DENSE_BUCKET);
                    self.rows = Rows::Packed(Pack { gap, bucket, sum: (0.0, 0.0), rows: 0, kind, last: (0.0, false) });
                } else {
                    self.rows = Rows::Each;
                }
                first.into_iter().map(|(t, p)| self.push(t, p)).last().unwrap_or((0.0, false))
            }
        }
    }

    /// The verdict on the newest point judged (for rows judged by the bucket, the last
    /// complete bucket); `None` before there is one, or when the newest point could not be
    /// judged.
    pub fn last(&self) -> Option<Judgement> {
        self.core.last
    }

    /// What the replay should say about its model: the rate, the season and what it still
    /// needs, the shifts taken as a new normal.
    pub fn notes(&self) -> Vec<String> {
        match &self.rows {
            Rows::Undecided(first) => vec![too_few(first.len(), self.core.s.min_history)],
            Rows::Each => self.core.notes(None),
            Rows::Packed(pack) => self.core.notes(Some(pack.gap)),
        }
    }
}

fn too_few(rows: usize, min_history: usize) -> String {
    format!("{rows} rows: too few to judge (the first {min_history} are the baseline)")
}

/// The gaps between rows, where time goes forward.
fn gaps(rows: &[(i64, Point)]) -> Vec<i64> {
    rows.windows(2).filter(|w| w[1].0 > w[0].0).map(|w| w[1].0 - w[0].0).collect()
}

/// The median of gaps (ms).
fn median(mut gaps: Vec<i64>) -> Option<i64> {
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

/// The spans a point is judged over: the mean of the last quarter hour, hour and four hours of
/// rows (at least one row each), so that a spike, a shift and a slower swing each show where
/// they are clearest. A single 5-min row of a noisy series says little; an hourly row is the
/// hour.
const SPANS: [i64; 3] = [15 * 60_000, HOUR_MS, 4 * HOUR_MS];
/// Rows read before the interval (and with it the spans and the season) is fixed.
const WARMUP: usize = 16;
/// With `Season::Auto`, the share of the spread the season must leave (at most) to be used:
/// a span's mean against the same time a season before varies less than against the level.
const SEASON_EXPLAINS: f64 = 0.8;

/// An exponentially weighted mean and variance that remembers about `memory` points (an
/// equal-weight mean until it has seen that many): O(1) in time and space per point.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    n: usize,
    mean: f64,
    var: f64,
}

impl Moments {
    fn push(&mut self, x: f64, memory: usize) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        let a = (1.0 / self.n as f64).max(1.0 / memory.max(2) as f64);
        let d = x - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }

    fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    /// z of `x` against these moments; the spread is never taken below a millionth of the
    /// level, so a flat line that moves scores high but finite.
    fn z(&self, x: f64) -> f64 {
        let floor = (1e-6 * self.mean.abs()).max(1e-12);
        (x - self.mean) / self.sd().max(floor)
    }
}

/// One span's view of the series: its mean against the level, and against the same time a
/// season before.
#[derive(Debug, Clone, Copy, Default)]
struct Feature {
    /// Rows in the span.
    rows: usize,
    level: Moments,
    seasonal: Moments,
}

/// The detector proper, over rows or over buckets of dense rows: each point's span means
/// against what the series has done before, scored as −log₁₀ of the two-sided tail
/// probability, the most unusual span standing for the point.
#[derive(Debug, Clone)]
struct Core {
    s: ReplaySettings,
    /// The first points, until the interval is known.
    warmup: Vec<(i64, Point)>,
    interval: Option<i64>,
    features: Vec<Feature>,
    /// The last points (time, value, successes, trials), as many as the longest span needs.
    recent: VecDeque<(i64, f64, f64, f64)>,
    /// The season's length and the points of the last season and a bit (time, value).
    period: Option<i64>,
    past: VecDeque<(i64, f64)>,
    /// Each recent point's difference from the same time a season before.
    diffs: VecDeque<f64>,
    /// When the season was first used, and the share of the spread it left.
    season_used: Option<(i64, f64)>,
    /// Points left whose score is held at 0: an incident scores once.
    quiet: usize,
    /// The run of alerting points on one side: its sign and length.
    run: (f64, usize),
    shifts: Vec<i64>,
    /// The first time the clock went back (from, to) and how often it did.
    clock_back: Option<(i64, i64, usize)>,
    last_t: Option<i64>,
    points: usize,
    last: Option<Judgement>,
    /// The points are prices: amounts over units, not successes out of trials.
    priced: bool,
}

/// What a point was judged to be: its score (the most unusual span's), the change and side
/// of the span that stands for it (the most unusual of those changed enough to count, if
/// any), and whether one did.
#[derive(Debug, Clone, Copy)]
struct Judged {
    score: f64,
    rel: f64,
    z: f64,
    counts: bool,
    /// The standing span's value, what was expected and the half-width of its usual band
    /// (2σ), and its rows.
    value: f64,
    expected: f64,
    band: f64,
    rows: usize,
}

/// The verdict on the newest point, for a person: how unusual it is and against what.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub at_ms: i64,
    /// −log₁₀ of the tail probability (before an incident's later points are held at 0).
    pub score: f64,
    /// The score as the replay's score column shows it (an incident's later points at 0).
    pub shown: f64,
    pub alert: bool,
    /// The mean (or rate) over the span that stands for the point, and the span.
    pub value: f64,
    pub span_ms: i64,
    /// What was expected and the half-width of the usual band.
    pub expected: f64,
    pub band: f64,
    /// The change against the expected, relative.
    pub rel: f64,
    /// When the run of alerting points this one belongs to began.
    pub since_ms: Option<i64>,
}

impl Core {
    fn new(s: ReplaySettings) -> Self {
        Core {
            s,
            warmup: Vec::new(),
            interval: None,
            features: Vec::new(),
            recent: VecDeque::new(),
            period: None,
            past: VecDeque::new(),
            diffs: VecDeque::new(),
            season_used: None,
            quiet: 0,
            run: (0.0, 0),
            shifts: Vec::new(),
            clock_back: None,
            last_t: None,
            points: 0,
            last: None,
            priced: false,
        }
    }

    /// The median gap between the first points (ms).
    fn interval(&self) -> Option<i64> {
        self.interval.or_else(|| median(gaps(&self.warmup)))
    }

    /// Judges a point against what came before, then adds it. Returns (score, alert).
    fn push(&mut self, t: i64, p: Point) -> (f64, bool) {
        self.points += 1;
        if let Some(last) = self.last_t
            && t < last
        {
            let back = self.clock_back.get_or_insert((last, t, 0));
            back.2 += 1;
        }
        self.last_t = Some(t);
        if self.interval.is_none() {
            self.warmup.push((t, p));
            if self.warmup.len() >= WARMUP {
                self.start();
            }
            return (0.0, false);
        }
        let Some((x, num, den)) = parts_of(p) else { return (0.0, false) };
        self.priced = matches!(p, Point::Price { .. });
        let judged = self.judge(t, x, num, den);
        self.learn(t, x, num, den, judged.is_some_and(|j| j.counts));
        let Some(j) = judged else {
            self.last = None;
            return (0.0, false);
        };
        let alert = j.counts;
        let since_ms = match self.last {
            Some(l) if alert && l.alert && l.rel.signum() == j.rel.signum() => l.since_ms,
            _ => alert.then_some(t),
        };
        let last = Judgement {
            at_ms: t,
            score: j.score,
            shown: 0.0,
            alert,
            value: j.value,
            span_ms: self.interval.unwrap_or(HOUR_MS) * j.rows as i64,
            expected: j.expected,
            band: j.band,
            rel: j.rel,
            since_ms,
        };
        // A run of alerts on one side that holds is the new normal: the level restarts from
        // the span means, so a lasting shift stops alerting once it has been said.
        self.run = if alert && self.run.0 == j.z.signum() {
            (self.run.0, self.run.1 + 1)
        } else {
            (j.z.signum(), usize::from(alert))
        };
        if self.s.confirm > 0 && self.run.1 >= self.s.confirm {
            self.adopt(t);
        }
        let score = if self.quiet > 0 {
            self.quiet -= 1;
            0.0
        } else {
            if j.score >= self.s.threshold {
                self.quiet = self.s.quiet;
            }
            j.score
        };
        self.last = Some(Judgement { shown: score, ..last });
        (score, alert)
    }

    /// Fixes the interval, the spans and the season from the first points, and learns from them.
    fn start(&mut self) {
        let interval = median(gaps(&self.warmup)).unwrap_or(HOUR_MS).max(1);
        self.interval = Some(interval);
        let mut spans: Vec<usize> = SPANS.iter().map(|s| ((s + interval / 2) / interval).max(1) as usize).collect();
        spans.dedup();
        self.features = match self.s.rule {
            ReplayRule::Level => vec![spans[0]],
            ReplayRule::Drift => vec![spans[spans.len() - 1]],
            ReplayRule::Anomaly => spans,
        }
        .into_iter()
        .map(|rows| Feature { rows, ..Feature::default() })
        .collect();
        self.period = match self.s.season {
            Season::Off => None,
            Season::Auto if interval <= 2 * HOUR_MS => Some(DAY_MS),
            Season::Auto if interval <= 2 * DAY_MS => Some(7 * DAY_MS),
            Season::Auto => None,
            Season::Every(period) => Some(period).filter(|p| *p >= 2 * interval),
        };
        for (t, p) in std::mem::take(&mut self.warmup) {
            if let Some((x, num, den)) = parts_of(p) {
                self.learn(t, x, num, den, false);
            }
        }
    }

    /// The point's value a season before: the latest at or before then (within half a row).
    fn season_ago(&self, t: i64) -> Option<f64> {
        let period = self.period?;
        let half = self.interval.unwrap_or(HOUR_MS) / 2;
        let then = t - period;
        self.past.iter().rev().find(|(at, _)| *at <= then + half).filter(|(at, _)| *at >= then - half).map(|(_, v)| *v)
    }

    /// The span means ending with this point (value, successes, trials), and with its
    /// difference from a season before.
    fn span_means(&self, rows: usize, x: f64, num: f64, den: f64, diff: Option<f64>) -> (f64, f64, f64, Option<f64>) {
        let take = rows.saturating_sub(1);
        let (mut sx, mut sn, mut sd, mut k) = (x, num, den, 1.0);
        for (_, v, n, d) in self.recent.iter().rev().take(take) {
            sx += v;
            sn += n;
            sd += d;
            k += 1.0;
        }
        let diff = diff.and_then(|d| {
            let older: Vec<f64> = self.diffs.iter().rev().take(take).copied().collect();
            (older.len() == take).then(|| (d + older.iter().sum::<f64>()) / (take + 1) as f64)
        });
        (sx / k, sn, sd, diff)
    }

    /// The point against each span's history; `None` until there is enough of it.
    fn judge(&self, t: i64, x: f64, num: f64, den: f64) -> Option<Judged> {
        let ratio = den > 0.0;
        let rate = ratio && !self.priced;
        let diff = self.season_ago(t).map(|v| x - v);
        let mut best: Option<Judged> = None;
        for f in &self.features {
            if f.level.n < self.s.min_history.max(2) {
                continue;
            }
            let (mean, sn, sd, d) = self.span_means(f.rows, x, num, den, diff);
            let value = if ratio { sn / sd } else { mean };
            let level = f.level.mean;
            let mut z = f.level.z(value);
            // A season that explains the series: against the same time a season before.
            let seasonal = d.filter(|_| {
                f.seasonal.n >= self.s.min_history.max(2) && f.seasonal.sd() < SEASON_EXPLAINS * f.level.sd()
            });
            let mut expected = level;
            let mut band = 2.0 * f.level.sd();
            if let Some(d) = seasonal {
                let zs = f.seasonal.z(d);
                if zs.abs() > z.abs() {
                    z = zs;
                    expected = value - (d - f.seasonal.mean);
                    band = 2.0 * f.seasonal.sd();
                }
            }
            if self.priced {
                // A price over few units is partly chance: its own sampling error (about the
                // price over √units) widens the band.
                let sampling = value * value / sd.max(1.0);
                let spread = if z.abs() > 0.0 { (value - expected) / z } else { 0.0 };
                z = (value - expected) / (spread * spread + sampling).sqrt().max(f64::MIN_POSITIVE);
                band = 2.0 * (spread * spread + sampling).sqrt();
            }
            if rate {
                // Successes out of trials: no more unusual than the volume allows.
                let p0 = expected.clamp(1e-9, 1.0 - 1e-9);
                let zb = (sn - p0 * sd) / (sd * p0 * (1.0 - p0)).sqrt();
                if zb.signum() != z.signum() || p0 * sd < 5.0 {
                    continue;
                }
                z = z.signum() * z.abs().min(zb.abs());
            }
            let rel = if expected != 0.0 { value / expected - 1.0 } else { f64::INFINITY.copysign(value) };
            let score = score_of_z(z);
            // The newest point must be part of the change: a spike's echo in the longer spans'
            // means is not a new alert.
            let own = if expected != 0.0 { (if ratio { num / den } else { x }) / expected - 1.0 } else { rel };
            let part = own.signum() == rel.signum() && own.abs() >= self.s.min_change / 2.0;
            let counts = score >= self.s.threshold && rel.abs() >= self.s.min_change && part;
            let j = Judged { score, rel, z, counts, value, expected, band, rows: f.rows };
            best = Some(match best {
                None => j,
                Some(b) => {
                    let stands = if (counts, score) > (b.counts, b.score) { j } else { b };
                    Judged { score: score.max(b.score), counts: counts || b.counts, ..stands }
                }
            });
        }
        best
    }

    /// Takes a point into every span's history and the season's memory; an anomalous point
    /// is remembered for the next season as the season before it, so an incident is not
    /// expected again the next day.
    fn learn(&mut self, t: i64, x: f64, num: f64, den: f64, anomalous: bool) {
        let ago = self.season_ago(t);
        let diff = ago.map(|v| x - v);
        let memory = self.s.window;
        let updates: Vec<(f64, Option<f64>)> = self
            .features
            .iter()
            .map(|f| {
                let (mean, sn, sd, d) = self.span_means(f.rows, x, num, den, diff);
                (if den > 0.0 { sn / sd } else { mean }, d)
            })
            .collect();
        for (f, (value, d)) in self.features.iter_mut().zip(updates) {
            f.level.push(value, memory);
            if let Some(d) = d {
                f.seasonal.push(d, memory);
            }
        }
        if self.period.is_some() {
            let usable = self
                .features
                .iter()
                .any(|f| f.seasonal.n >= self.s.min_history.max(2) && f.seasonal.sd() < SEASON_EXPLAINS * f.level.sd());
            if usable && self.season_used.is_none() {
                let f = self.features.iter().find(|f| f.seasonal.n > 0).copied().unwrap_or_default();
                self.season_used = Some((t, f.seasonal.sd() / f.level.sd().max(f64::MIN_POSITIVE)));
            }
        }
        let longest = self.features.iter().map(|f| f.rows).max().unwrap_or(1);
        self.recent.push_back((t, x, num, den));
        while self.recent.len() > longest {
            self.recent.pop_front();
        }
        match diff {
            Some(d) => self.diffs.push_back(d),
            None => self.diffs.clear(),
        }
        while self.diffs.len() > longest {
            self.diffs.pop_front();
        }
        if let Some(period) = self.period {
            self.past.push_back((t, if anomalous { ago.unwrap_or(x) } else { x }));
            let keep = t - period - self.interval.unwrap_or(HOUR_MS);
            while self.past.front().is_some_and(|(at, _)| *at < keep) {
                self.past.pop_front();
            }
        }
    }

    /// A shift that held: every span's level restarts from its mean now (the spread it has
    /// learnt stays).
    fn adopt(&mut self, t: i64) {
        let start = self.recent.iter().rev().nth(self.run.1.saturating_sub(1)).map_or(t, |(at, ..)| *at);
        self.shifts.push(start);
        for f in &mut self.features {
            // The span means ending with the newest point, already learnt.
            let (mut sx, mut sn, mut sd, mut k) = (0.0, 0.0, 0.0, 0.0);
            for (_, x, n, d) in self.recent.iter().rev().take(f.rows) {
                (sx, sn, sd, k) = (sx + x, sn + n, sd + d, k + 1.0);
            }
            f.level.mean = if sd > 0.0 { sn / sd } else { sx / f64::max(k, 1.0) };
        }
        self.run = (0.0, 0);
    }

    /// What the replay says about the model; `rows`: the gap between the rows themselves, when
    /// they are judged by the bucket.
    fn notes(&self, rows: Option<i64>) -> Vec<String> {
        let mut out = Vec::new();
        let Some(interval) = self.interval() else {
            out.push(too_few(self.points, self.s.min_history));
            return out;
        };
        let every = crate::domain::format::span(interval);
        let spans: Vec<String> =
            self.features.iter().map(|f| crate::domain::format::span(interval * f.rows as i64)).collect();
        let need = match rows {
            Some(_) => crate::domain::format::span(interval * self.s.min_history as i64),
            None => format!("{} rows", self.s.min_history),
        };
        out.push(match rows {
            Some(gap) => format!(
                "rows every {} (median gap), judged {every} at a time (their mean, or their sum for a rate), each row with the verdict of the last complete {every}",
                crate::domain::format::span(gap)
            ),
            None => format!("rows every {every} (median gap)"),
        });
        if self.interval.is_none() {
            out.push(too_few(self.points, WARMUP));
            return out;
        }
        out.push(format!(
            "each point judged by the mean of its last {} against what those spans did before (the first {need} of each are the baseline and are not judged); an incident scores once, then {} points score 0",
            spans.join(", "),
            self.s.quiet
        ));
        if let Some(period) = self.period {
            let what = if period == DAY_MS {
                "the same time the day before"
            } else if period == 7 * DAY_MS {
                "the same time the week before"
            } else {
                "the same time a season before"
            };
            out.push(match self.season_used {
                Some((at, ratio)) => format!(
                    "also judged against {what} from {} (it leaves {:.0} % of the spread)",
                    stamp(at),
                    ratio * 100.0
                ),
                None => format!("not judged against {what}: no cycle found that explains the series"),
            });
        }
        for at in &self.shifts {
            out.push(format!(
                "a shift from {} held for {} points and became the new normal",
                stamp(*at),
                self.s.confirm
            ));
        }
        if let Some((from, to, n)) = self.clock_back {
            out.push(format!(
                "the clock goes back {} from {} to {}{}: rows judged in the order given",
                crate::domain::format::span(from - to),
                stamp(from),
                stamp(to),
                if n > 1 { format!(" ({n} times in all)") } else { String::new() }
            ));
        }
        out
    }
}

/// A point's value, successes and trials (trials 0 for a plain value); `None` for a rate
/// without trials or a value that is not finite.
fn parts_of(p: Point) -> Option<(f64, f64, f64)> {
    match p {
        Point::Value(v) if v.is_finite() => Some((v, 0.0, 0.0)),
        Point::Rate { num, den } | Point::Price { amount: num, units: den }
            if den > 0.0 && num.is_finite() && den.is_finite() =>
        {
            Some((num / den, num, den))
        }
        _ => None,
    }
}

fn stamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// Why a replay input was refused: the line and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {msg}")]
pub struct ReplayError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

/// One input row: its timestamp as written, the time in ms, and the point.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub stamp: String,
    pub at_ms: i64,
    pub point: Point,
}

/// A timestamp as RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC), or epoch seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc().timestamp_millis());
    }
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs.abs() < 1e13 => Ok((secs * 1000.0).round() as i64),
        _ => Err(format!("'{s}' is not a timestamp (RFC 3339, \"YYYY-MM-DD HH:MM:SS\" or epoch seconds)")),
    }
}

/// The lines of a CSV that hold data, numbered from 1 and trimmed: empty lines and `#`
/// comments left out.
pub fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, raw)| (i + 1, raw.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// Reads the CSV: an optional header, then `timestamp,value` or `timestamp,numerator,denominator`
/// rows in time order. Empty lines and lines starting with `#` are skipped.
pub fn read_csv(text: &str, file: &str) -> Result<Vec<Row>, ReplayError> {
    let err = |line: usize, msg: String| ReplayError { file: file.to_string(), line, msg };
    let mut rows: Vec<Row> = Vec::new();
    let mut columns = None;
    for (line, l) in data_lines(text) {
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        let number = |k: usize, what: &str| -> Result<f64, ReplayError> {
            let v: f64 = fields[k].parse().map_err(|_| err(line, format!("{what} '{}' is not a number", fields[k])))?;
            if v.is_finite() { Ok(v) } else { Err(err(line, format!("{what} must be finite"))) }
        };
        if rows.is_empty() && columns.is_none() && fields.len() >= 2 && fields[1].parse::<f64>().is_err() {
            // A header such as "timestamp,value".
            columns = Some(fields.len());
            continue;
        }
        let want = *columns.get_or_insert(fields.len());
        if fields.len() != want || !(2..=3).contains(&fields.len()) {
            return Err(err(
                line,
                format!(
                    "{} fields; expected {}",
                    fields.len(),
                    if want == 3 {
                        "3 (timestamp,numerator,denominator)"
                    } else {
                        "2 (timestamp,value) or 3 (timestamp,numerator,denominator)"
                    }
                ),
            ));
        }
        let at_ms = parse_time(fields[0]).map_err(|m| err(line, m))?;
        let point = if fields.len() == 2 {
            Point::Value(number(1, "value")?)
        } else {
            let (num, den) = (number(1, "numerator")?, number(2, "denominator")?);
            if num < 0.0 || den < 0.0 || num > den {
                return Err(err(line, format!("need 0 ≤ numerator ≤ denominator, got {num} of {den}")));
            }
            Point::Rate { num, den }
        };
        rows.push(Row { stamp: fields[0].to_string(), at_ms, point });
    }
    Ok(rows)
}

/// A bare series replayed: each row's score and alert, and what the detector has to say.
pub struct Replayed {
    pub scores: Vec<(f64, bool)>,
    pub notes: Vec<String>,
    /// The median gap between rows (ms).
    pub interval: Option<i64>,
}

/// Runs the detector over the rows.
pub fn run(rows: &[Row], s: ReplaySettings) -> Replayed {
    let mut d = SeriesDetector::new(s);
    let scores = rows.iter().map(|r| d.push(r.at_ms, r.point)).collect();
    Replayed { scores, notes: d.notes(), interval: d.interval() }
}

impl Replayed {
    /// `timestamp,value,score,alert` per row, with a header.
    pub fn csv(&self, rows: &[Row]) -> String {
        let mut out = String::from("timestamp,value,score,alert\n");
        for (r, (score, alert)) in rows.iter().zip(&self.scores) {
            out.push_str(&format!("{},{},{score:.3},{}\n", r.stamp, r.point.value(), u8::from(*alert)));
        }
        out
    }

    /// The runs of alerting rows.
    pub fn alarms(&self, rows: &[Row]) -> Vec<super::labels::Alarm> {
        super::labels::alarms_of_rows(rows.iter().zip(&self.scores).map(|(r, (_, a))| (r.at_ms, *a)))
    }
}

/// Runs the detector over the rows and writes `timestamp,value,score,alert`.
pub fn replay(rows: &[Row], s: ReplaySettings) -> String {
    run(rows, s).csv(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Binomial, Distribution, Normal};

    const MIN: i64 = 60_000;

    fn run_points(s: ReplaySettings, points: &[(i64, Point)]) -> (Vec<(f64, bool)>, Vec<String>) {
        let mut d = SeriesDetector::new(s);
        let out = points.iter().map(|(t, p)| d.push(*t, *p)).collect();
        (out, d.notes())
    }

    fn alerting(s: ReplaySettings, points: &[(i64, Point)]) -> Vec<usize> {
        run_points(s, points).0.iter().enumerate().filter(|(_, (_, a))| *a).map(|(i, _)| i).collect()
    }

    /// Hourly values with 5 % noise around `level(i)`.
    fn hourly(seed: u64, n: usize, level: impl Fn(usize) -> f64) -> Vec<(i64, Point)> {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 0.05).unwrap();
        (0..n).map(|i| (i as i64 * HOUR_MS, Point::Value(level(i) * (1.0 + noise.sample(&mut rng))))).collect()
    }

    #[test]
    fn a_spike_and_a_drop_are_caught_and_nothing_else() {
        let s = ReplaySettings::default();
        let spike = hourly(1, 300, |i| if i == 200 { 2.0 } else { 1.0 });
        assert_eq!(alerting(s, &spike), vec![200]);
        let drop = hourly(2, 300, |i| if i == 250 { 0.4 } else { 1.0 });
        assert_eq!(alerting(s, &drop), vec![250]);
    }

    #[test]
    fn an_incident_scores_once_and_a_lasting_shift_is_said_then_adopted() {
        let s = ReplaySettings::default();
        let shift = hourly(3, 600, |i| if i >= 200 { 1.6 } else { 1.0 });
        let (out, _) = run_points(s, &shift);
        assert!(out[200].1 && out[200].0 >= s.threshold, "{:?}", out[200]);
        // Scored once: the points after it score 0 for `quiet` points.
        assert!(out[201..300].iter().all(|(score, _)| *score == 0.0));
        // The level follows: the shift stops alerting by itself.
        let last = alerting(s, &shift).into_iter().max().unwrap();
        assert!(last < 200 + 48, "alerting until {last}");
        // With `confirm`, the new level is adopted at once.
        let (_, notes) = run_points(ReplaySettings { confirm: 3, ..s }, &shift);
        assert!(
            notes.iter().any(|n| n.starts_with("a shift from 1970-01-09 08:00 UTC held for 3 points")),
            "{notes:?}"
        );
    }

    /// Hourly points with a strong daily cycle (low at night) over `days`.
    fn cycle_hours(seed: u64, days: usize, scale: f64, event: impl Fn(usize) -> f64) -> Vec<(i64, Point)> {
        let cycle = |i: usize| 1.0 + 0.7 * (((i % 24) as f64 - 15.0) / 24.0 * std::f64::consts::TAU).cos();
        hourly(seed, 24 * days, |i| scale * cycle(i) * event(i))
    }

    #[test]
    fn the_daily_cycle_is_no_anomaly_and_a_drop_in_it_is_caught_at_any_scale() {
        let s = ReplaySettings::default();
        let drop = |i: usize| if (24 * 12 + 11..24 * 12 + 14).contains(&i) { 0.4 } else { 1.0 };
        for scale in [0.004, 1.0, 3.0e6] {
            let at = alerting(s, &cycle_hours(10, 14, scale, drop));
            assert!(at.contains(&(24 * 12 + 11)), "scale {scale}: {at:?}");
            assert!(at.iter().all(|i| (24 * 12 + 11..24 * 12 + 18).contains(i)), "scale {scale}: {at:?}");
        }
        let (_, notes) = run_points(s, &cycle_hours(10, 14, 1.0, |_| 1.0));
        assert!(
            notes.iter().any(|n| n.starts_with("also judged against the same time the day before from")),
            "{notes:?}"
        );
        let flat = hourly(8, 24 * 6, |_| 1.0);
        let (_, notes) = run_points(s, &flat);
        assert!(notes.iter().any(|n| n.starts_with("not judged against the same time the day before")), "{notes:?}");
    }

    #[test]
    fn rates_are_judged_with_their_volume() {
        let s = ReplaySettings::default();
        let mut rng = StdRng::seed_from_u64(6);
        let mut pts = Vec::new();
        for i in 0..120 {
            let n = if i == 100 { 40 } else { 5_000 };
            let p = if i >= 100 { 0.01 } else { 0.02 };
            let x = Binomial::new(n, p).unwrap().sample(&mut rng);
            pts.push((i * HOUR_MS, Point::Rate { num: x as f64, den: n as f64 }));
        }
        let at = alerting(s, &pts);
        assert!(!at.contains(&100), "40 trials prove nothing: {at:?}");
        assert!(at.contains(&101), "5,000 trials at half the rate do: {at:?}");
    }

    #[test]
    fn a_gap_is_no_zero_and_a_clock_going_back_is_judged_on_and_said_once() {
        let s = ReplaySettings::default();
        // Six hours without a row: the next rows are as usual.
        let gap: Vec<(i64, Point)> =
            hourly(13, 200, |_| 1.0).into_iter().filter(|(t, _)| !(100..106).contains(&(t / HOUR_MS))).collect();
        assert!(alerting(s, &gap).is_empty());
        // An hour's rows again (a clock put back): judged, and one note.
        let mut back = hourly(14, 200, |_| 1.0);
        for (t, _) in back.iter_mut().skip(150) {
            *t -= HOUR_MS + 30 * MIN;
        }
        let (out, notes) = run_points(s, &back);
        assert!(out.iter().all(|(_, a)| !a));
        let said: Vec<&String> =
            notes.iter().filter(|n| n.starts_with("the clock goes back 30m from 1970-01-07 05:00 UTC")).collect();
        assert_eq!(said.len(), 1, "{notes:?}");
        let rows = read_csv("t,v\n2014-01-07 02:55:00,1\n2014-01-07 02:00:00,2\n", "x.csv").unwrap();
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn scores_rank_on_a_log_scale_without_saturating() {
        let grid: Vec<f64> = (0..4000).map(|k| k as f64 * 0.05).collect();
        let scores: Vec<f64> = grid.iter().map(|z| score_of_z(*z)).collect();
        assert!(scores.windows(2).all(|w| w[1] >= w[0]));
        assert!((score_of_z(4.417) - 5.0).abs() < 0.01, "{}", score_of_z(4.417));
        let (s8, s9, s40) = (score_of_z(8.0), score_of_z(9.0), score_of_z(40.0));
        assert!(s8 > 14.0 && s9 > s8 + 3.0 && s40 > 300.0, "{s8} {s9} {s40}");
        assert!(score_of_z(29.999) < score_of_z(30.0) && score_of_z(30.0) < score_of_z(30.001));
    }

    #[test]
    fn rows_a_second_apart_are_judged_by_the_minute() {
        // Clicks polled every second, about 3 a second; 60 % fewer for 20 minutes from 2:00.
        let mut rng = StdRng::seed_from_u64(12);
        let drop = 120 * MIN..140 * MIN;
        let pts: Vec<(i64, Point)> = (0..4 * 3600)
            .map(|i| {
                let t = i * 1_000;
                let mean = if drop.contains(&t) { 1.2 } else { 3.0 };
                (t, Point::Value(rand_distr::Poisson::new(mean).unwrap().sample(&mut rng)))
            })
            .collect();
        let mut d = SeriesDetector::new(ReplaySettings::default());
        let a: Vec<bool> = pts.iter().map(|(t, p)| d.push(*t, *p).1).collect();
        let alerting: Vec<i64> = pts.iter().zip(&a).filter(|(_, a)| **a).map(|((t, _), _)| *t).collect();
        let first = *alerting.first().expect("the drop is caught");
        assert!((drop.start + MIN..=drop.start + 10 * MIN).contains(&first), "first alert at {}", first / MIN);
        assert!(
            alerting.iter().all(|t| (drop.start..drop.end + 16 * MIN).contains(t)),
            "last at {}",
            alerting.last().unwrap() / MIN
        );
        assert_eq!(d.interval(), Some(1_000));
        let notes = d.notes();
        assert!(notes[0].starts_with("rows every 1s (median gap), judged 1m at a time"), "{notes:?}");
    }

    #[test]
    fn too_little_history_gives_no_score() {
        let mut d = SeriesDetector::new(ReplaySettings::default());
        for i in 0..24 {
            assert_eq!(d.push(i * MIN, Point::Value(if i == 23 { 100.0 } else { 1.0 })), (0.0, false));
        }
    }

    #[test]
    fn csv_rows_header_and_timestamp_forms() {
        let text = "timestamp,value\n2026-06-08T09:00:00+08:00,1.5\n2026-06-08 01:01:00,2\n1780880520,2.5\n";
        let rows = read_csv(text, "s.csv").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].at_ms, rows[1].at_ms - 60_000);
        assert_eq!(rows[2].at_ms, rows[1].at_ms + 60_000);
        let e = read_csv("t,n,d\n2026-06-08 01:00:00,5,10\n2026-06-08 01:01:00,12,10\n", "r.csv").unwrap_err();
        assert_eq!(e.to_string(), "r.csv:3: need 0 ≤ numerator ≤ denominator, got 12 of 10");
        let e = read_csv("1,2\nyesterday,3\n", "x.csv").unwrap_err();
        assert!(e.to_string().starts_with("x.csv:2: 'yesterday' is not a timestamp"), "{e}");
        assert!(read_csv("1,2\n2,nan\n", "x.csv").unwrap_err().to_string().contains("x.csv:2: value"));
        assert!(read_csv("1,2\n2,3,4\n", "x.csv").unwrap_err().to_string().contains("x.csv:2: 3 fields"));
    }

    #[test]
    fn output_has_one_row_per_input_row() {
        let rows = read_csv("1,1\n2,1\n3,1\n", "x.csv").unwrap();
        let out = replay(&rows, ReplaySettings::default());
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["timestamp,value,score,alert", "1,1,0.000,0", "2,1,0.000,0", "3,1,0.000,0"]
        );
    }

    proptest! {
        #[test]
        fn constant_and_binomial_noise_raise_nothing(seed in 0u64..500, p in 0.01f64..0.2, n in 2_000u64..50_000) {
            let s = ReplaySettings::default();
            let flat: Vec<(i64, Point)> = (0..300).map(|i| (i * HOUR_MS, Point::Value(42.0))).collect();
            prop_assert!(alerting(s, &flat).is_empty());
            let mut rng = StdRng::seed_from_u64(seed);
            let noise: Vec<(i64, Point)> = (0..300)
                .map(|i| (i * HOUR_MS, Point::Rate { num: Binomial::new(n, p).unwrap().sample(&mut rng) as f64, den: n as f64 }))
                .collect();
            let at = alerting(s, &noise);
            prop_assert!(at.is_empty(), "alert at {:?}", at);
        }
    }
}
