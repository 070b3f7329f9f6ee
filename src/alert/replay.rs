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

use super::detect::{Cusum, median_mad};
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
    /// Points in the baseline.
    pub window: usize,
    /// Points seen before any verdict.
    pub min_history: usize,
    /// Points in a row beyond the baseline on one side that make a new normal.
    pub confirm: usize,
    /// Weight of the newest point in the moving average of the residuals that catches a
    /// sustained change no single point shows (0: off).
    pub smooth: f64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            rule: ReplayRule::Anomaly,
            season: Season::Auto,
            threshold: 5.0,
            min_change: 0.3,
            window: 48,
            min_history: 8,
            confirm: 6,
            smooth: 0.0,
        }
    }
}

/// One observation: a value, or successes out of trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Point {
    Value(f64),
    Rate { num: f64, den: f64 },
}

impl Point {
    pub fn value(self) -> f64 {
        match self {
            Point::Value(v) => v,
            Point::Rate { num, den } => {
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

/// The tails a series' residuals are scored with: Student t with ν degrees of freedom
/// (`None`: normal), each with its upper quartile (its MAD: z is in MAD-σ units).
const TAILS: [(Option<f64>, f64); 7] = [
    (Some(2.0), 0.8165),
    (Some(3.0), 0.7649),
    (Some(4.0), 0.7407),
    (Some(6.0), 0.7176),
    (Some(10.0), 0.6998),
    (Some(30.0), 0.6828),
    (None, 0.674_49),
];
/// Residuals the tail is learnt from, the weight (in residuals) of the normal prior, and how
/// far out (MAD-σ) one residual counts: an incident's point is not noise.
const TAIL_MEMORY: usize = 1_000;
const TAIL_PRIOR: f64 = 300.0;
const TAIL_CAP: f64 = 8.0;

/// −log₁₀ of the two-sided tail probability of `z` (in MAD-σ units) under Student t with `nu`
/// degrees of freedom scaled to the same MAD (`None`: normal).
pub fn score_of_t(z: f64, tail: (Option<f64>, f64)) -> f64 {
    use special::Beta;
    let Some(nu) = tail.0 else { return score_of_z(z) };
    let t = z.abs() * 1.4826 * tail.1;
    if t.is_nan() {
        return 0.0;
    }
    let (a, b) = (nu / 2.0, 0.5);
    let x = nu / (nu + t * t);
    let p = x.inc_beta(a, b, a.ln_beta(b));
    if p > 1e-300 {
        -p.log10()
    } else {
        // Past what the incomplete beta resolves: its polynomial tail, kept increasing.
        300.0 + nu * t.max(1.0).log10()
    }
}

/// The log density of `z` (in MAD-σ units) under a tail of `TAILS`, less its constant
/// (`ln_norm`).
fn ln_kernel(z: f64, tail: (Option<f64>, f64)) -> f64 {
    match tail.0 {
        None => -0.5 * z * z,
        Some(nu) => {
            let t = 1.4826 * tail.1 * z;
            -(nu + 1.0) / 2.0 * (t * t / nu).ln_1p()
        }
    }
}

/// The log of the constant of a tail's density.
fn ln_norm(tail: (Option<f64>, f64)) -> f64 {
    use special::Beta;
    match tail.0 {
        None => -0.5 * (2.0 * std::f64::consts::PI).ln(),
        Some(nu) => (1.4826 * tail.1).ln() - (nu / 2.0).ln_beta(0.5) - 0.5 * nu.ln(),
    }
}

/// Learns how heavy a series' tails are from its residuals: of `TAILS`, the one most likely
/// to have given them (each held to `TAIL_CAP`), with `TAIL_PRIOR` residuals of a normal's
/// added, so that a few outliers in a short history do not make every tail heavy.
#[derive(Debug, Clone)]
struct Tails {
    recent: VecDeque<f64>,
    chosen: (Option<f64>, f64),
    since: usize,
}

impl Tails {
    fn new() -> Self {
        Tails { recent: VecDeque::new(), chosen: TAILS[TAILS.len() - 1], since: 0 }
    }

    /// Per tail, the log of its density's constant, and the expected log density of a normal
    /// residual under it (∫ φ(z) ln f(z) dz by the midpoint rule over ±`TAIL_CAP`): the same
    /// for every series, worked out once.
    fn constants() -> &'static ([f64; TAILS.len()], [f64; TAILS.len()]) {
        static CONSTANTS: std::sync::LazyLock<([f64; TAILS.len()], [f64; TAILS.len()])> =
            std::sync::LazyLock::new(|| {
                let step = 0.01;
                let n = (2.0 * TAIL_CAP / step) as usize;
                let norm = TAILS.map(ln_norm);
                let normal = TAILS.len() - 1;
                let prior = std::array::from_fn(|k| {
                    (0..n)
                        .map(|i| {
                            let z = -TAIL_CAP + (i as f64 + 0.5) * step;
                            let density = (ln_kernel(z, TAILS[normal]) + norm[normal]).exp();
                            density * (ln_kernel(z, TAILS[k]) + norm[k]) * step
                        })
                        .sum()
                });
                (norm, prior)
            });
        &CONSTANTS
    }

    fn push(&mut self, z: f64) {
        if z.is_nan() {
            return;
        }
        self.recent.push_back(z.clamp(-TAIL_CAP, TAIL_CAP));
        if self.recent.len() > TAIL_MEMORY {
            self.recent.pop_front();
        }
        self.since += 1;
        if self.since >= 50 {
            self.since = 0;
            let (norm, prior) = Self::constants();
            let likelihood = |k: usize| {
                let n = self.recent.len() as f64;
                self.recent.iter().map(|z| ln_kernel(*z, TAILS[k])).sum::<f64>() + n * norm[k] + TAIL_PRIOR * prior[k]
            };
            self.chosen = (0..TAILS.len())
                .map(|k| (k, likelihood(k)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(self.chosen, |(k, _)| TAILS[k]);
        }
    }

    /// Takes back the last `n` residuals: they were a change of level, not noise.
    fn forget(&mut self, n: usize) {
        let keep = self.recent.len().saturating_sub(n);
        self.recent.truncate(keep);
    }

    fn score(&self, z: f64) -> f64 {
        score_of_t(z, self.chosen)
    }
}

/// Seasons of history the profile is learnt from.
const SEASONS: usize = 7;
/// Complete seasons needed before a profile is used.
const MIN_SEASONS: usize = 3;
/// With `Season::Auto`, the share of the spread a profile must leave (at most) to be used.
const SEASON_EXPLAINS: f64 = 0.8;
/// A point this many σ out, on the same side as the ones before it, adds to their run: the
/// run's evidence together scores too, and a run of `confirm` is a new normal.
const RUN_Z: f64 = 2.0;
/// CUSUM slack and threshold (σ) for drifts.
const DRIFT_K: f64 = 1.0;
const DRIFT_H: f64 = 8.0;

/// A seasonal profile: per bucket of the season, how far its values lie from the season's
/// mean (in the detector's scale), learnt from the completed seasons.
#[derive(Debug, Clone)]
struct Profile {
    period: i64,
    width: i64,
    /// Added to a time before it is put in its bucket.
    round: i64,
    /// Per season (its index), the sum and count of values per bucket; the last is filling.
    seasons: VecDeque<(i64, Vec<(f64, u32)>)>,
    /// In force: the offset of each bucket.
    offsets: Option<Vec<f64>>,
    /// When it came into force, and the share of the spread it leaves.
    found: Option<(i64, f64)>,
    /// The share it left at the last fit that did not use it.
    last_ratio: Option<f64>,
}

impl Profile {
    /// A profile of `period` in buckets of `width`, for rows `interval` apart.
    fn new(period: i64, width: i64, interval: i64) -> Self {
        let round = if interval * 2 >= width { width / 2 } else { 0 };
        Profile { period, width, round, seasons: VecDeque::new(), offsets: None, found: None, last_ratio: None }
    }

    fn buckets(&self) -> usize {
        (self.period / self.width).max(1) as usize
    }

    /// The bucket of a row: for rows a bucket apart, the one whose centre is nearest (a row
    /// stamped 13:58 is the 14:00 row, late); for closer rows, the one it falls in.
    fn bucket(&self, t: i64) -> usize {
        ((t + self.round).rem_euclid(self.period) / self.width) as usize % self.buckets()
    }

    fn offset(&self, t: i64) -> f64 {
        self.offsets.as_ref().map_or(0.0, |o| o[self.bucket(t)])
    }

    /// Completed seasons with at least half their buckets seen.
    fn complete(&self) -> usize {
        self.completed().count()
    }

    fn completed(&self) -> impl Iterator<Item = &Vec<(f64, u32)>> {
        let done = self.seasons.len().saturating_sub(1);
        let half = self.buckets().div_ceil(2);
        self.seasons
            .iter()
            .take(done)
            .map(|(_, acc)| acc)
            .filter(move |acc| acc.iter().filter(|(_, n)| *n > 0).count() >= half)
    }

    /// Adds a value; a season that completes refits the profile (`auto`: used only if it
    /// explains enough).
    fn add(&mut self, t: i64, y: f64, auto: bool) {
        let k = t.div_euclid(self.period);
        if self.seasons.back().is_none_or(|(last, _)| *last < k) {
            let n = self.buckets();
            self.seasons.push_back((k, vec![(0.0, 0); n]));
            while self.seasons.len() > SEASONS + 1 {
                self.seasons.pop_front();
            }
            if self.seasons.len() > 1 {
                self.refit(t, auto);
            }
        }
        let b = self.bucket(t);
        if let Some((_, acc)) = self.seasons.back_mut() {
            acc[b].0 += y;
            acc[b].1 += 1;
        }
    }

    /// Each completed season's bucket means against its own mean.
    fn deviations(&self) -> Vec<Vec<Option<f64>>> {
        self.completed()
            .map(|acc| {
                let means: Vec<Option<f64>> = acc.iter().map(|(s, n)| (*n > 0).then(|| s / f64::from(*n))).collect();
                let filled: Vec<f64> = means.iter().flatten().copied().collect();
                let mean = filled.iter().sum::<f64>() / filled.len().max(1) as f64;
                means.into_iter().map(|m| m.map(|m| m - mean)).collect()
            })
            .collect()
    }

    fn refit(&mut self, at: i64, auto: bool) {
        if self.complete() < MIN_SEASONS {
            return;
        }
        let devs = self.deviations();
        let median_of = |skip: Option<usize>, b: usize| {
            let v: Vec<f64> =
                devs.iter().enumerate().filter(|(k, _)| Some(*k) != skip).filter_map(|(_, d)| d[b]).collect();
            if v.len() >= 2 { median_mad(&v).map(|(m, _)| m) } else { None }
        };
        let n = self.buckets();
        let seen: Vec<Option<f64>> = (0..n).map(|b| median_of(None, b)).collect();
        // A bucket seen too rarely takes the nearest ones seen on either side.
        let offsets: Vec<f64> = (0..n)
            .map(|b| {
                seen[b].unwrap_or_else(|| {
                    let near = |step: usize| (1..n).map(|k| (b + step * k) % n).find_map(|i| seen[i]);
                    match (near(1), near(n - 1)) {
                        (Some(a), Some(c)) => (a + c) / 2.0,
                        (a, c) => a.or(c).unwrap_or(0.0),
                    }
                })
            })
            .collect();
        // Judged season by season on the others: a profile of noise leaves more than it takes.
        let (mut raw, mut left) = (Vec::new(), Vec::new());
        for (k, d) in devs.iter().enumerate() {
            for (b, x) in d.iter().enumerate() {
                if let (Some(x), Some(m)) = (x, median_of(Some(k), b)) {
                    raw.push(*x);
                    left.push(x - m);
                }
            }
        }
        let spread = |v: &[f64]| median_mad(v).map_or(0.0, |(_, mad)| mad);
        let ratio = if spread(&raw) > 0.0 { spread(&left) / spread(&raw) } else { 1.0 };
        if !auto || ratio <= SEASON_EXPLAINS {
            self.found.get_or_insert((at, ratio));
            self.offsets = Some(offsets);
        } else {
            self.offsets = None;
            self.found = None;
            self.last_ratio = Some(ratio);
        }
    }
}

/// How values are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// Logarithms, values at or below `floor` taken as it.
    Log {
        floor: f64,
    },
    Linear,
}

impl Scale {
    fn of(self, x: f64) -> f64 {
        match self {
            Scale::Log { floor } => x.max(floor).ln(),
            Scale::Linear => x,
        }
    }
}

/// Rows closer together than this are judged a bucket of `DENSE_BUCKET` at a time.
const DENSE_GAP: i64 = 30_000;
const DENSE_BUCKET: i64 = 60_000;
/// Buckets of dense rows in a row beyond the baseline that make a new normal, per `confirm`.
const DENSE_CONFIRM: usize = 5;

/// A streaming detector over one series. Rows polled every few seconds say little one by one
/// (a count of 3 a second drops to 1 by chance): they are judged a minute at a time, each row
/// carrying the verdict of the last complete minute.
pub struct SeriesDetector {
    core: Core,
    rows: Rows,
}

/// How the rows reach the detector, decided from the gaps between the first of them.
enum Rows {
    /// The first rows, until their gaps are known.
    Undecided(Vec<(i64, Point)>),
    Each,
    Packed(Pack),
}

/// The rows of the bucket being filled, and the verdict the last complete one got.
struct Pack {
    /// The median gap between the rows themselves.
    gap: i64,
    bucket: i64,
    sum: (f64, f64),
    rows: u32,
    rate: bool,
    last: (f64, bool),
}

impl Pack {
    /// The bucket's point: the mean of its values, or its successes out of its trials.
    fn point(&self) -> Point {
        if self.rate {
            Point::Rate { num: self.sum.0, den: self.sum.1 }
        } else {
            Point::Value(self.sum.0 / f64::from(self.rows.max(1)))
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
                    Point::Rate { num, den } => (num, den),
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
                    let rate = matches!(first[0].1, Point::Rate { .. });
                    let bucket = first[0].0.div_euclid(DENSE_BUCKET);
                    self.rows = Rows::Packed(Pack { gap, bucket, sum: (0.0, 0.0), rows: 0, rate, last: (0.0, false) });
                } else {
                    self.rows = Rows::Each;
                }
                first.into_iter().map(|(t, p)| self.push(t, p)).last().unwrap_or((0.0, false))
            }
        }
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

/// The detector proper, over rows or over buckets of dense rows.
struct Core {
    s: ReplaySettings,
    /// The first points, until the scale is chosen.
    warmup: Vec<(i64, Point)>,
    scale: Option<Scale>,
    /// The baseline: the last points (time, value in the scale, denominator of a rate).
    window: VecDeque<(i64, f64, f64)>,
    /// Points needed in the window before a verdict (`min_history`, then `confirm` after a shift).
    need: usize,
    /// Gaps between the first points, for the rate of the series.
    gaps: Vec<i64>,
    last_t: Option<i64>,
    profile: Option<Profile>,
    /// The run of points beyond the baseline on one side: its sign, the sum of their z and
    /// the points.
    run: (f64, f64, Vec<(i64, f64, f64)>, f64),
    /// EWMA of z and of the relative change.
    ewma: (f64, f64),
    tails: Tails,
    shifts: Vec<i64>,
    cusum: Cusum,
    /// Per side of the CUSUM (up, down): the sum of the relative changes it is built on, and
    /// how many.
    drift_change: [(f64, usize); 2],
    points: usize,
}

/// What a point was judged to be.
struct Judged {
    z: f64,
    /// Change against the baseline, relative.
    rel: f64,
}

impl Core {
    fn new(s: ReplaySettings) -> Self {
        Core {
            s,
            warmup: Vec::new(),
            scale: None,
            window: VecDeque::new(),
            need: s.min_history.max(2),
            gaps: Vec::new(),
            last_t: None,
            profile: None,
            run: (0.0, 0.0, Vec::new(), 0.0),
            ewma: (0.0, 0.0),
            tails: Tails::new(),
            shifts: Vec::new(),
            cusum: Cusum { k: DRIFT_K, h: DRIFT_H, ..Cusum::default() },
            drift_change: [(0.0, 0); 2],
            points: 0,
        }
    }

    /// The median gap between the first points (ms).
    fn interval(&self) -> Option<i64> {
        median(self.gaps.clone())
    }

    /// Judges a point against what came before, then adds it. Returns (score, alert).
    fn push(&mut self, t: i64, p: Point) -> (f64, bool) {
        self.points += 1;
        if let Some(last) = self.last_t
            && self.gaps.len() < 64
            && t > last
        {
            self.gaps.push(t - last);
        }
        self.last_t = Some(t);
        let Some(scale) = self.scale else {
            self.warmup.push((t, p));
            if self.warmup.len() >= self.s.min_history.max(2) {
                self.start();
            }
            return (0.0, false);
        };
        let Some(y) = self.value(scale, p) else { return (0.0, false) };
        let den = if let Point::Rate { den, .. } = p { den } else { 0.0 };
        let judged = if self.window.len() >= self.need && !self.season_pending() { self.judge(t, y, p) } else { None };
        let (score, alert) = match &judged {
            Some(j) => {
                // The point alone; with the run it extends (Stouffer: their z together); or
                // the recent points' drift (an EWMA of z, each held to ±4, and of the change):
                // each with the change it stands for.
                let run = if j.z.abs() >= RUN_Z && self.run.0 == j.z.signum() {
                    let n = (self.run.2.len() + 1) as f64;
                    ((self.run.1 + j.z) / n.sqrt(), (self.run.3 + j.rel) / n)
                } else {
                    (0.0, 0.0)
                };
                let (ez, er) = self.ewma;
                let w = self.s.smooth.clamp(0.0, 1.0);
                self.ewma = (w * j.z.clamp(-4.0, 4.0) + (1.0 - w) * ez, w * j.rel.clamp(-1.0, 4.0) + (1.0 - w) * er);
                let ewma_sd = (w / (2.0 - w)).sqrt().max(f64::MIN_POSITIVE);
                let gated = |score: f64, rel: f64| if rel.abs() >= self.s.min_change { score } else { 0.0 };
                let candidates = [
                    (self.tails.score(j.z), j.rel),
                    (self.tails.score(run.0), run.1),
                    (if w > 0.0 { score_of_z(self.ewma.0 / ewma_sd) } else { 0.0 }, self.ewma.1),
                ];
                let score = candidates.iter().map(|(s, _)| *s).fold(0.0, f64::max);
                let level = candidates.iter().any(|(s, r)| gated(*s, *r) >= self.s.threshold.max(f64::MIN_POSITIVE));
                let drift = self.drift(j);
                let alert = match self.s.rule {
                    ReplayRule::Anomaly => level || drift,
                    ReplayRule::Level => level,
                    ReplayRule::Drift => drift,
                };
                self.tails.push(j.z);
                (score, alert)
            }
            None => (0.0, false),
        };
        self.add(t, y, den, judged.map(|j| (j.z, j.rel)));
        (score, alert)
    }

    /// Whether verdicts wait for the season: a season given is a season known, so none until
    /// its profile is learnt; a season looked for, until it is found or ruled out, when the
    /// baseline spans enough of it that a cycle not taken out would be judged as anomalies
    /// (hourly rows over two days; not minutes over the last hour).
    fn season_pending(&self) -> bool {
        let Some(p) = &self.profile else { return false };
        match self.s.season {
            Season::Every(_) => p.offsets.is_none(),
            Season::Auto => {
                let spans = self.s.window as i64 * self.interval().unwrap_or(HOUR_MS);
                p.found.is_none() && p.last_ratio.is_none() && spans * 4 >= p.period
            }
            Season::Off => false,
        }
    }

    /// Adds a point to the CUSUM: whether a drift is signalled, as large a change on average
    /// over the points it built up on as the smallest that counts (a weekend's dip of 15 %
    /// builds it up too, and is no drift to page for).
    fn drift(&mut self, j: &Judged) -> bool {
        let z = j.z.clamp(-4.0, 4.0);
        let c = self.cusum;
        let sides = [(c.up + z - c.k).max(0.0), (c.down - z - c.k).max(0.0)];
        for (side, next) in self.drift_change.iter_mut().zip(sides) {
            *side = if next > 0.0 { (side.0 + j.rel, side.1 + 1) } else { (0.0, 0) };
        }
        if !self.cusum.push(z) {
            return false;
        }
        let side = usize::from(sides[1] > sides[0]);
        let (sum, n) = self.drift_change[side];
        self.drift_change = [(0.0, 0); 2];
        n > 0 && (sum / n as f64).abs() >= self.s.min_change
    }

    /// The value in the scale; `None` for a rate without volume.
    fn value(&self, scale: Scale, p: Point) -> Option<f64> {
        match p {
            Point::Rate { den, .. } if den <= 0.0 => None,
            _ => Some(scale.of(p.value())).filter(|y| y.is_finite()),
        }
    }

    /// Chooses the scale and the season from the first points, and takes them in.
    fn start(&mut self) {
        let values: Vec<f64> = self.warmup.iter().map(|(_, p)| p.value()).filter(|v| v.is_finite()).collect();
        let positive = values.iter().all(|v| *v > 0.0) || matches!(self.warmup[0].1, Point::Rate { .. });
        let typical = median_mad(&values.iter().copied().filter(|v| *v > 0.0).collect::<Vec<_>>()).map(|(m, _)| m);
        let scale = match typical {
            Some(m) if positive && m > 0.0 => Scale::Log { floor: m * 1e-3 },
            _ => Scale::Linear,
        };
        self.scale = Some(scale);
        let interval = self.interval().unwrap_or(HOUR_MS);
        self.profile = match self.s.season {
            Season::Off => None,
            Season::Auto if interval <= 2 * HOUR_MS => Some(Profile::new(DAY_MS, HOUR_MS, interval)),
            Season::Auto if interval <= 2 * DAY_MS => Some(Profile::new(7 * DAY_MS, DAY_MS, interval)),
            Season::Auto => None,
            Season::Every(period) => {
                let buckets = if period >= 7 * DAY_MS && interval < DAY_MS {
                    7 * 24
                } else if period >= 7 * DAY_MS {
                    7
                } else {
                    24
                };
                Some(Profile::new(period.max(1), (period / buckets).max(1), interval))
            }
        };
        for (t, p) in std::mem::take(&mut self.warmup) {
            if let Some(y) = self.value(scale, p) {
                let den = if let Point::Rate { den, .. } = p { den } else { 0.0 };
                self.add(t, y, den, None);
            }
        }
    }

    fn offset(&self, t: i64) -> f64 {
        self.profile.as_ref().map_or(0.0, |p| p.offset(t))
    }

    /// (z, relative change) of a point against the baseline.
    fn judge(&self, t: i64, y: f64, p: Point) -> Option<Judged> {
        let d: Vec<f64> = self.window.iter().map(|(at, v, _)| v - self.offset(*at)).collect();
        let (med, mad) = median_mad(&d)?;
        let expected = med + self.offset(t);
        let n = d.len() as f64;
        // The median of a few points is itself uncertain: widen the band for it.
        let small = 1.0 + std::f64::consts::FRAC_PI_2 / n;
        let spread = 1.4826 * mad;
        let log = matches!(self.scale, Some(Scale::Log { .. }));
        match p {
            Point::Value(x) => {
                let floor = if log { 0.005 } else { (0.005 * med.abs()).max(1e-12) };
                let sigma = spread.max(floor) * small.sqrt();
                let rel = if log {
                    (y - expected).exp() - 1.0
                } else if expected != 0.0 {
                    x / expected - 1.0
                } else {
                    f64::INFINITY.copysign(x)
                };
                Some(Judged { z: (y - expected) / sigma, rel })
            }
            Point::Rate { num, den } => {
                // Binomial at the baseline's rate, with the spread between periods that the
                // baseline's own volumes do not explain on top (relative, from the log scale).
                let p0 = expected.exp().min(1.0);
                let binomial: Vec<f64> = self.window.iter().map(|(_, _, bd)| (1.0 - p0) / (p0 * bd.max(1.0))).collect();
                let (typical_binomial, _) = median_mad(&binomial)?;
                let extra = (spread * spread - typical_binomial).max(0.0) + spread * spread * (small - 1.0);
                let mean = p0 * den;
                if mean < 5.0 {
                    return None;
                }
                let var = mean * (1.0 - p0) + extra * mean * mean;
                let dev = num - mean;
                let corrected = (dev.abs() - 0.5).max(0.0).copysign(dev);
                Some(Judged { z: corrected / var.sqrt(), rel: (num / den) / p0 - 1.0 })
            }
        }
    }

    /// Takes a point into the baseline and the season; a run beyond the baseline that holds
    /// becomes the new normal.
    fn add(&mut self, t: i64, y: f64, den: f64, judged: Option<(f64, f64)>) {
        let auto = self.s.season == Season::Auto;
        if let Some(p) = self.profile.as_mut() {
            p.add(t, y, auto);
        }
        let point = (t, y, den);
        match judged {
            Some((z, rel)) if z.abs() >= RUN_Z && (self.run.2.is_empty() || self.run.0 == z.signum()) => {
                self.run.0 = z.signum();
                self.run.1 += z;
                self.run.2.push(point);
                self.run.3 += rel;
            }
            _ => self.run = (0.0, 0.0, Vec::new(), 0.0),
        }
        if self.run.2.len() >= self.s.confirm.max(1) {
            self.shifts.push(self.run.2[0].0);
            self.tails.forget(self.run.2.len());
            self.window = std::mem::take(&mut self.run.2).into();
            self.run = (0.0, 0.0, Vec::new(), 0.0);
            self.ewma = (0.0, 0.0);
            self.need = self.window.len().min(self.s.min_history.max(2));
            self.cusum.up = 0.0;
            self.cusum.down = 0.0;
            self.drift_change = [(0.0, 0); 2];
            return;
        }
        self.window.push_back(point);
        while self.window.len() > self.s.window.max(2) {
            self.window.pop_front();
        }
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
        // So many of what is judged: rows, or the time their buckets cover.
        let judged = |n: usize| match rows {
            Some(_) => crate::domain::format::span(interval * n as i64),
            None => format!("{n} rows"),
        };
        let need = judged(self.s.min_history.max(2));
        out.push(match rows {
            Some(gap) => format!(
                "rows every {} (median gap), judged {every} at a time (their mean, or their sum for a rate), each row with the verdict of the last complete {every}; the first {need} are the baseline and are not judged",
                crate::domain::format::span(gap)
            ),
            None => format!("rows every {every} (median gap); the first {need} are the baseline and are not judged"),
        });
        if self.scale.is_none() {
            out.push(format!("{} rows: too few to judge", self.points));
        }
        if let Some(p) = &self.profile {
            let what = match (p.period, p.width) {
                (DAY_MS, HOUR_MS) => "hour-of-day",
                (_, DAY_MS) => "day-of-week",
                (_, HOUR_MS) => "hour-of-week",
                _ => "phase",
            };
            let unit = if p.period == DAY_MS {
                "day"
            } else if p.period == 7 * DAY_MS {
                "week"
            } else {
                "season"
            };
            let plural = |n: usize| if n == 1 { unit.to_string() } else { format!("{unit}s") };
            match (p.found, p.last_ratio) {
                (Some((at, ratio)), _) => out.push(format!(
                    "{what} baselines in use from {} (the profile leaves {:.0} % of the spread)",
                    stamp(at),
                    ratio * 100.0
                )),
                (None, Some(ratio)) => out.push(format!(
                    "no {what} cycle found in {} complete {}: a profile would leave {:.0} % of the spread; judged against the last {}",
                    p.complete(),
                    plural(p.complete()),
                    ratio * 100.0,
                    judged(self.s.window)
                )),
                (None, None) => {
                    let more = MIN_SEASONS - p.complete().min(MIN_SEASONS);
                    let meanwhile = if self.season_pending() {
                        "nothing judged until then".to_string()
                    } else {
                        format!("judged against the last {} alone", judged(self.s.window))
                    };
                    out.push(format!(
                        "needs {more} more {} for {what} baselines ({} complete of {MIN_SEASONS}); {meanwhile}",
                        plural(more),
                        p.complete(),
                    ))
                }
            }
        }
        for at in &self.shifts {
            out.push(format!(
                "a shift from {} held for {} and became the new normal",
                stamp(*at),
                judged(self.s.confirm)
            ));
        }
        out
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
        if let Some(prev) = rows.last()
            && at_ms < prev.at_ms
        {
            return Err(err(line, format!("{} is earlier than the row before ({})", fields[0], prev.stamp)));
        }
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

    fn alerts(s: ReplaySettings, points: &[(i64, Point)]) -> Vec<bool> {
        let mut d = SeriesDetector::new(s);
        points.iter().map(|(t, p)| d.push(*t, *p).1).collect()
    }

    fn noisy(seed: u64, n: usize, level: impl Fn(usize) -> f64) -> Vec<(i64, Point)> {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 0.03).unwrap();
        (0..n).map(|i| (i as i64 * MIN, Point::Value(level(i) * (1.0 + noise.sample(&mut rng))))).collect()
    }

    #[test]
    fn spikes_drops_and_level_shifts_are_caught() {
        let s = ReplaySettings::default();
        let spike = noisy(1, 100, |i| if i == 70 { 2.0 } else { 1.0 });
        let a = alerts(s, &spike);
        assert!(a[70] && a.iter().filter(|x| **x).count() <= 2, "{a:?}");
        let drop = noisy(2, 100, |i| if i == 60 { 0.4 } else { 1.0 });
        assert!(alerts(s, &drop)[60]);
        let shift = noisy(3, 120, |i| if i >= 80 { 1.6 } else { 1.0 });
        assert!(alerts(s, &shift)[80]);
    }

    #[test]
    fn a_slow_drift_is_caught_by_cusum_and_not_by_points() {
        // +1 % a point under 12 % noise: no point stands out until the level is up 70 %, the
        // drift adds up before (without a baseline that follows it: a long window).
        let s = ReplaySettings { window: 400, season: Season::Off, ..ReplaySettings::default() };
        let mut rng = StdRng::seed_from_u64(4);
        let noise = Normal::new(0.0, 0.12).unwrap();
        let drift: Vec<(i64, Point)> = (0..400)
            .map(|i| {
                let level = if i < 100 { 1.0 } else { 1.0 + 0.01 * (i - 100) as f64 };
                (i as i64 * MIN, Point::Value(level * f64::exp(noise.sample(&mut rng))))
            })
            .collect();
        let level = alerts(ReplaySettings { rule: ReplayRule::Level, ..s }, &drift);
        let drifted = alerts(ReplaySettings { rule: ReplayRule::Drift, ..s }, &drift);
        let first_drift = drifted.iter().position(|a| *a).expect("drift caught");
        let first_level = level.iter().position(|a| *a).unwrap_or(usize::MAX);
        assert!(first_drift > 100 && first_drift < first_level, "drift at {first_drift}, level at {first_level}");
    }

    #[test]
    fn a_drift_smaller_than_the_change_that_counts_raises_nothing() {
        // +0.4 % a point for 40 points, then held: 16 % is under the 30 % that counts.
        let s =
            ReplaySettings { window: 400, season: Season::Off, rule: ReplayRule::Drift, ..ReplaySettings::default() };
        let drift = noisy(4, 400, |i| 1.0 + 0.004 * (i.clamp(100, 140) - 100) as f64);
        assert!(!alerts(s, &drift).contains(&true));
        let counts = alerts(ReplaySettings { min_change: 0.1, ..s }, &drift);
        assert!(counts.iter().position(|a| *a).is_some_and(|i| i > 100), "caught once 10 % counts");
    }

    #[test]
    fn seasonality_is_not_an_anomaly_but_a_break_in_it_is() {
        // Hourly points, a strong daily cycle: the evening peak is normal.
        let day = 24 * 60 * MIN;
        let s = ReplaySettings { season: Season::Every(day), min_history: 5, ..ReplaySettings::default() };
        let cycle = |i: usize| 1.0 + 0.8 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        let pts: Vec<(i64, Point)> = noisy(5, 24 * 10, cycle).into_iter().map(|(t, p)| (t * 60, p)).collect();
        let a = alerts(s, &pts);
        assert!(
            a.iter().all(|a| !a),
            "a daily cycle alone: {:?}",
            a.iter().enumerate().filter(|x| *x.1).map(|x| x.0).collect::<Vec<_>>()
        );
        let broken = noisy(5, 24 * 10, |i| if i == 24 * 9 + 6 { cycle(i) * 0.3 } else { cycle(i) });
        let broken: Vec<(i64, Point)> = broken.into_iter().map(|(t, p)| (t * 60, p)).collect();
        assert!(alerts(s, &broken)[24 * 9 + 6]);
    }

    #[test]
    fn rates_are_judged_with_their_volume() {
        let s = ReplaySettings::default();
        let mut rng = StdRng::seed_from_u64(6);
        let mut pts = Vec::new();
        for i in 0..80 {
            let n = if i == 70 { 40 } else { 5_000 };
            let p = if i >= 70 { 0.01 } else { 0.02 };
            let x = Binomial::new(n, p).unwrap().sample(&mut rng);
            pts.push((i * MIN, Point::Rate { num: x as f64, den: n as f64 }));
        }
        let a = alerts(s, &pts);
        assert!(!a[70], "40 trials prove nothing");
        assert!(a[71], "5,000 trials at half the rate do");
    }

    #[test]
    fn scores_rank_on_a_log_scale_without_saturating() {
        // Where 1 − p reads 1.000000, the score still tells 8 σ from 9 σ from 40 σ.
        let grid: Vec<f64> = (0..4000).map(|k| k as f64 * 0.05).collect();
        for tail in TAILS {
            let scores: Vec<f64> = grid.iter().map(|z| score_of_t(*z, tail)).collect();
            assert!(scores.windows(2).all(|w| w[1] >= w[0]), "{tail:?} not monotone");
            assert!(scores[0].abs() < 1e-9 && scores.last().unwrap().is_finite());
        }
        assert!((score_of_z(4.417) - 5.0).abs() < 0.01, "{}", score_of_z(4.417));
        let (s8, s9, s40) = (score_of_z(8.0), score_of_z(9.0), score_of_z(40.0));
        assert!(s8 > 14.0 && s9 > s8 + 3.0 && s40 > 300.0, "{s8} {s9} {s40}");
        // Across the switch to the asymptote.
        assert!(score_of_z(29.999) < score_of_z(30.0) && score_of_z(30.0) < score_of_z(30.001));
        // Heavier tails, the same point less surprising.
        assert!(
            score_of_t(10.0, TAILS[0]) < score_of_t(10.0, TAILS[3]) && score_of_t(10.0, TAILS[3]) < score_of_z(10.0)
        );
    }

    /// Hourly points with a strong daily cycle (low at night) over `days`.
    fn cycle_hours(seed: u64, days: usize, scale: f64, event: impl Fn(usize) -> f64) -> Vec<(i64, Point)> {
        let cycle = |i: usize| 1.0 + 0.7 * (((i % 24) as f64 - 15.0) / 24.0 * std::f64::consts::TAU).cos();
        noisy(seed, 24 * days, |i| scale * cycle(i) * event(i)).into_iter().map(|(t, p)| (t * 60, p)).collect()
    }

    fn notes(s: ReplaySettings, points: &[(i64, Point)]) -> Vec<String> {
        let mut d = SeriesDetector::new(s);
        for (t, p) in points {
            d.push(*t, *p);
        }
        d.notes()
    }

    #[test]
    fn the_daily_cycle_is_found_or_how_much_more_it_needs_is_said() {
        let s = ReplaySettings::default();
        let short = notes(s, &cycle_hours(7, 1, 1.0, |_| 1.0));
        assert_eq!(short[0], "rows every 1h (median gap); the first 8 rows are the baseline and are not judged");
        assert!(
            short[1].starts_with(
                "needs 3 more days for hour-of-day baselines (0 complete of 3); nothing judged until then"
            ),
            "{short:?}"
        );
        let two = notes(s, &cycle_hours(7, 2, 1.0, |_| 1.0));
        assert!(two[1].starts_with("needs 2 more days"), "{two:?}");
        let long = notes(s, &cycle_hours(7, 6, 1.0, |_| 1.0));
        assert!(long[1].starts_with("hour-of-day baselines in use from 1970-01-04 00:00 UTC"), "{long:?}");
        // Noise alone has no cycle to find.
        let flat: Vec<(i64, Point)> = noisy(8, 24 * 6, |_| 1.0).into_iter().map(|(t, p)| (t * 60, p)).collect();
        let none = notes(s, &flat);
        assert!(none[1].starts_with("no hour-of-day cycle found in 5 complete days"), "{none:?}");
        // Daily rows: the week.
        let daily: Vec<(i64, Point)> =
            noisy(9, 40, |i| if i % 7 >= 5 { 0.6 } else { 1.0 }).into_iter().map(|(t, p)| (t * 1440, p)).collect();
        assert!(notes(s, &daily)[1].starts_with("day-of-week baselines in use"), "{:?}", notes(s, &daily));
    }

    #[test]
    fn with_the_cycle_learnt_a_night_drop_is_caught_and_the_evening_peak_is_not() {
        let s = ReplaySettings::default();
        // A 60 % drop for 3 h at night on day 8 (a night is low anyway).
        let drop = |i: usize| if (24 * 8 + 2..24 * 8 + 5).contains(&i) { 0.4 } else { 1.0 };
        for scale in [0.004, 1.0, 3.0e6] {
            let a = alerts(s, &cycle_hours(10, 10, scale, drop));
            let at: Vec<usize> = a.iter().enumerate().filter(|x| *x.1).map(|x| x.0).collect();
            assert!(at.contains(&(24 * 8 + 2)), "scale {scale}: {at:?}");
            assert!(at.iter().all(|i| (24 * 8 + 2..24 * 8 + 6).contains(i) || *i < 24 * 3), "scale {scale}: {at:?}");
        }
    }

    #[test]
    fn a_shift_that_holds_becomes_the_new_normal() {
        let s = ReplaySettings::default();
        let shift = noisy(11, 300, |i| if i >= 100 { 1.35 } else { 1.0 });
        let mut d = SeriesDetector::new(s);
        let a: Vec<bool> = shift.iter().map(|(t, p)| d.push(*t, *p).1).collect();
        let at: Vec<usize> = a.iter().enumerate().filter(|x| *x.1).map(|x| x.0).collect();
        // Flagged as it starts, then taken as the level: not for the 48 rows of a window.
        assert!(at.first() == Some(&100) && at.iter().all(|i| *i < 100 + s.confirm), "{at:?}");
        assert!(
            d.notes().iter().any(|n| n.starts_with("a shift from 1970-01-01 01:")
                && n.ends_with("held for 6 rows and became the new normal")),
            "{:?}",
            d.notes()
        );
    }

    #[test]
    fn rows_a_second_apart_are_judged_by_the_minute() {
        // Clicks polled every second, about 3 a second; 60 % fewer for 10 minutes from 2:00.
        let mut rng = StdRng::seed_from_u64(12);
        let drop = 120 * MIN..130 * MIN;
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
        // Each minute's verdict is given as the next begins, and held through it.
        let first = *alerting.first().expect("the drop is caught");
        assert!((drop.start + MIN..=drop.start + 2 * MIN).contains(&first), "first alert at {first}");
        let minutes: std::collections::BTreeSet<i64> = alerting.iter().map(|t| t / MIN).collect();
        assert!(
            alerting.iter().all(|t| (drop.start..drop.end + 2 * MIN).contains(t)),
            "alerting in minutes {minutes:?}"
        );
        assert_eq!(d.interval(), Some(1_000));
        let notes = d.notes();
        assert!(notes[0].starts_with("rows every 1s (median gap), judged 1m at a time"), "{notes:?}");
    }

    #[test]
    fn too_little_history_gives_no_score() {
        let mut d = SeriesDetector::new(ReplaySettings::default());
        for i in 0..7 {
            assert_eq!(d.push(i * MIN, Point::Value(if i == 6 { 100.0 } else { 1.0 })), (0.0, false));
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
        let e = read_csv("1,2\n0,3\n", "x.csv").unwrap_err();
        assert!(e.to_string().contains("x.csv:2: 0 is earlier"), "{e}");
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
            let flat: Vec<(i64, Point)> = (0..200).map(|i| (i * MIN, Point::Value(42.0))).collect();
            prop_assert!(alerts(s, &flat).iter().all(|a| !a));
            let mut rng = StdRng::seed_from_u64(seed);
            let noise: Vec<(i64, Point)> = (0..200)
                .map(|i| (i * MIN, Point::Rate { num: Binomial::new(n, p).unwrap().sample(&mut rng) as f64, den: n as f64 }))
                .collect();
            let a = alerts(s, &noise);
            prop_assert!(a.iter().all(|x| !x), "alert at {:?}", a.iter().position(|x| *x));
        }
    }
}
