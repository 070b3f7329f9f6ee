//! Offline back-testing: the anomaly detectors run over a historical series, one row at a time,
//! each row judged only on the rows before it (no look-ahead). Used by `cockpit replay` to tune
//! rules: `timestamp,value` (a money or rate series) or `timestamp,numerator,denominator` (a
//! rate with its volume) in, `timestamp,value,score,alert` out.

use super::anomaly::rate_test;
use super::detect::{Cusum, median_mad, p_two_sided};
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

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplaySettings {
    pub rule: ReplayRule,
    /// Season length in ms (e.g. a day): the baseline is the same phase of earlier seasons.
    pub season_ms: Option<i64>,
    /// Score (1 − p) at or above which a point is anomalous.
    pub threshold: f64,
    /// Smallest relative change that counts.
    pub min_change: f64,
    /// Points in the baseline without a season.
    pub window: usize,
    /// Baseline points needed before any verdict.
    pub min_history: usize,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            rule: ReplayRule::Anomaly,
            season_ms: None,
            threshold: 0.99999,
            min_change: 0.3,
            window: 48,
            min_history: 8,
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

/// Phase buckets per season.
const PHASES: i64 = 48;
/// Seasons of history kept.
const SEASONS: i64 = 7;
/// CUSUM slack and threshold (σ) for drifts.
const DRIFT_K: f64 = 1.0;
const DRIFT_H: f64 = 8.0;

/// A streaming detector over one series.
pub struct SeriesDetector {
    s: ReplaySettings,
    /// Without a season: the last `window` points. With one: per phase bucket, the points of
    /// the last seasons.
    recent: VecDeque<(i64, Point)>,
    phases: Vec<VecDeque<(i64, Point)>>,
    cusum: Cusum,
}

impl SeriesDetector {
    pub fn new(s: ReplaySettings) -> Self {
        let buckets = if s.season_ms.is_some() { PHASES as usize } else { 0 };
        SeriesDetector {
            s,
            recent: VecDeque::new(),
            phases: vec![VecDeque::new(); buckets],
            cusum: Cusum { k: DRIFT_K, h: DRIFT_H, ..Cusum::default() },
        }
    }

    fn phase(&self, t: i64) -> usize {
        let season = self.s.season_ms.unwrap_or(1).max(1);
        (t.rem_euclid(season) * PHASES / season) as usize
    }

    /// Judges a point against what came before, then adds it. Returns (score in [0, 1], alert).
    pub fn push(&mut self, t: i64, p: Point) -> (f64, bool) {
        let baseline: Vec<(i64, Point)> = match self.s.season_ms {
            Some(season) => {
                self.phases[self.phase(t)].iter().filter(|(at, _)| *at >= t - SEASONS * season).copied().collect()
            }
            None => self.recent.iter().copied().collect(),
        };
        let judged = self.judge(p, &baseline);
        let (score, rel, z) = judged.unwrap_or((0.0, 0.0, 0.0));
        let level = judged.is_some() && score >= self.s.threshold && rel.abs() >= self.s.min_change;
        let drift = judged.is_some() && self.cusum.push(z.clamp(-4.0, 4.0));
        let alert = match self.s.rule {
            ReplayRule::Anomaly => level || drift,
            ReplayRule::Level => level,
            ReplayRule::Drift => drift,
        };
        match self.s.season_ms {
            Some(season) => {
                let i = self.phase(t);
                let q = &mut self.phases[i];
                q.push_back((t, p));
                while q.front().is_some_and(|(at, _)| *at < t - SEASONS * season) {
                    q.pop_front();
                }
            }
            None => {
                self.recent.push_back((t, p));
                while self.recent.len() > self.s.window {
                    self.recent.pop_front();
                }
            }
        }
        (score, alert)
    }

    /// (score, relative change, z) of `p` against `baseline`; `None` without enough history.
    fn judge(&self, p: Point, baseline: &[(i64, Point)]) -> Option<(f64, f64, f64)> {
        if baseline.len() < self.s.min_history {
            return None;
        }
        match p {
            Point::Value(x) => {
                let values: Vec<f64> = baseline.iter().map(|(_, b)| b.value()).collect();
                let (med, mad) = median_mad(&values)?;
                // The median of a few points is itself uncertain: widen the band for it.
                let small = (1.0 + std::f64::consts::FRAC_PI_2 / values.len() as f64).sqrt();
                let sigma = (1.4826 * mad).max(0.01 * med.abs()).max(1e-12) * small;
                let z = (x - med) / sigma;
                let rel = if med != 0.0 { x / med - 1.0 } else { f64::INFINITY.copysign(x) };
                Some((1.0 - p_two_sided(z), rel, z))
            }
            Point::Rate { num, den } => {
                let rates: Vec<f64> = baseline
                    .iter()
                    .filter_map(|(_, b)| match b {
                        Point::Rate { num, den } if *den > 0.0 => Some(num / den),
                        _ => None,
                    })
                    .collect();
                let base_den: f64 =
                    baseline.iter().map(|(_, b)| if let Point::Rate { den, .. } = b { *den } else { 0.0 }).sum();
                let (p0, _) = median_mad(&rates)?;
                let (z, score, _) = rate_test(num, den, p0 * base_den, base_den)?;
                let rel = if p0 > 0.0 { (num / den) / p0 - 1.0 } else { 0.0 };
                Some((score, rel, z))
            }
        }
    }
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

/// Reads the CSV: an optional header, then `timestamp,value` or `timestamp,numerator,denominator`
/// rows in time order. Empty lines and lines starting with `#` are skipped.
pub fn read_csv(text: &str, file: &str) -> Result<Vec<Row>, ReplayError> {
    let err = |line: usize, msg: String| ReplayError { file: file.to_string(), line, msg };
    let mut rows: Vec<Row> = Vec::new();
    let mut columns = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
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

/// Runs the detector over the rows and writes `timestamp,value,score,alert`.
pub fn replay(rows: &[Row], s: ReplaySettings) -> String {
    let mut d = SeriesDetector::new(s);
    let mut out = String::from("timestamp,value,score,alert\n");
    for r in rows {
        let (score, alert) = d.push(r.at_ms, r.point);
        out.push_str(&format!("{},{},{score:.6},{}\n", r.stamp, r.point.value(), u8::from(alert)));
    }
    out
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
        // +0.4 % a point: no point stands out, the drift adds up (without a baseline that
        // follows it: a long window).
        let s = ReplaySettings { window: 400, ..ReplaySettings::default() };
        let drift = noisy(4, 400, |i| if i < 100 { 1.0 } else { 1.0 + 0.004 * (i - 100) as f64 });
        let level = alerts(ReplaySettings { rule: ReplayRule::Level, ..s }, &drift);
        let drifted = alerts(ReplaySettings { rule: ReplayRule::Drift, ..s }, &drift);
        let first_drift = drifted.iter().position(|a| *a).expect("drift caught");
        let first_level = level.iter().position(|a| *a).unwrap_or(usize::MAX);
        assert!(first_drift > 100 && first_drift < first_level, "drift at {first_drift}, level at {first_level}");
    }

    #[test]
    fn seasonality_is_not_an_anomaly_but_a_break_in_it_is() {
        // Hourly points, a strong daily cycle: the evening peak is normal.
        let day = 24 * 60 * MIN;
        let s = ReplaySettings { season_ms: Some(day), min_history: 5, ..ReplaySettings::default() };
        let cycle = |i: usize| 1.0 + 0.8 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        let pts: Vec<(i64, Point)> = noisy(5, 24 * 10, cycle).into_iter().map(|(t, p)| (t * 60, p)).collect();
        assert!(alerts(s, &pts).iter().all(|a| !a), "a daily cycle alone");
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
            ["timestamp,value,score,alert", "1,1,0.000000,0", "2,1,0.000000,0", "3,1,0.000000,0"]
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
