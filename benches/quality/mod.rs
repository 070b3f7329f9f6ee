//! Detection quality on labelled series: `cargo bench -- quality`. Series with the shapes of
//! real ad data (a daily cycle, weekends, heavy-tailed noise, missing rows, irregular
//! timestamps, scales from cents to millions) carry one incident each; the replay detector at
//! its defaults and two plain baselines — a windowed Gaussian (mean and σ of the last 48
//! points) and a windowed median/MAD — run over them, and each scenario prints precision,
//! recall, median delay and false alarms a week, at each detector's usual threshold and at
//! its best threshold of a sweep (F1). Then the KPI rule's false firings on a quiet,
//! low-volume channel whose true CPA sits just inside its limit.

pub mod nab;

use campaign_cockpit::alert::labels::{Alarm, Label, alarms_of_rows, judge};
use campaign_cockpit::alert::replay::{Point, ReplaySettings, SeriesDetector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, Normal, StudentT};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// Series per scenario (one incident each).
const SERIES: u64 = 12;

#[derive(Clone, Copy)]
enum Incident {
    /// × this for `len` ms.
    Factor(f64, i64),
    /// × this from the start on: a new normal.
    Shift(f64),
    None,
}

struct Scenario {
    name: &'static str,
    step: i64,
    days: i64,
    incident: Incident,
    /// A rate (clicks of impressions) rather than a value.
    rate: bool,
    /// Daily (hour of day) or weekly (day of week) cycle.
    weekly: bool,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "CPC spike 1.9× for 1 h, hourly",
        step: HOUR,
        days: 28,
        incident: Incident::Factor(1.9, HOUR),
        rate: false,
        weekly: false,
    },
    Scenario {
        name: "clicks drop 60 % for 3 h, hourly",
        step: HOUR,
        days: 28,
        incident: Incident::Factor(0.4, 3 * HOUR),
        rate: false,
        weekly: false,
    },
    Scenario {
        name: "CPM level shift +35 %, hourly",
        step: HOUR,
        days: 28,
        incident: Incident::Shift(1.35),
        rate: false,
        weekly: false,
    },
    Scenario {
        name: "CTR halves for 6 h, hourly",
        step: HOUR,
        days: 28,
        incident: Incident::Factor(0.5, 6 * HOUR),
        rate: true,
        weekly: false,
    },
    Scenario {
        name: "spend drop 60 % for 1 h, 5-min",
        step: 5 * MIN,
        days: 7,
        incident: Incident::Factor(0.4, HOUR),
        rate: false,
        weekly: false,
    },
    Scenario {
        name: "clicks drop 60 % for 10 min, 1-s polls",
        step: 1_000,
        days: 1,
        incident: Incident::Factor(0.4, 10 * MIN),
        rate: false,
        weekly: false,
    },
    Scenario {
        name: "revenue drop 60 % for 2 days, daily",
        step: DAY,
        days: 180,
        incident: Incident::Factor(0.4, 2 * DAY),
        rate: false,
        weekly: true,
    },
    Scenario {
        name: "no incident (4 weeks), hourly",
        step: HOUR,
        days: 28,
        incident: Incident::None,
        rate: false,
        weekly: false,
    },
];

/// One labelled series: rows (time, point) and its incident.
type Labelled = (Vec<(i64, Point)>, Vec<Label>);

fn series(sc: &Scenario, seed: u64) -> Labelled {
    let mut rng = StdRng::seed_from_u64(seed * 7919 + sc.step as u64);
    // Scale: from cents to millions.
    let scale = 10f64.powf(rng.random_range(-2.0..6.0));
    let t0 = 1_780_000_000_000 / DAY * DAY;
    let end = t0 + sc.days * DAY;
    // The incident somewhere in the last two thirds.
    let span = end - t0;
    let at = t0 + span / 3 + (rng.random::<f64>() * (span / 2) as f64) as i64 / sc.step * sc.step;
    let (labels, factor): (Vec<Label>, Box<dyn Fn(i64) -> f64>) = match sc.incident {
        Incident::Factor(f, len) => (
            vec![Label { from: at, to: at + len, name: "incident".into() }],
            Box::new(move |t| if (at..at + len).contains(&t) { f } else { 1.0 }),
        ),
        // A shift is an incident for its first day; then it is the normal.
        Incident::Shift(f) => (
            vec![Label { from: at, to: at + DAY, name: "shift".into() }],
            Box::new(move |t| if t >= at { f } else { 1.0 }),
        ),
        Incident::None => (Vec::new(), Box::new(|_| 1.0)),
    };
    let heavy = StudentT::new(4.0).unwrap();
    let small = Normal::new(0.0, 1.0).unwrap();
    // Noise: on the log scale, heavy-tailed (half Student t with 4 degrees of freedom), 5–9 %.
    let sigma = 0.05 + 0.04 * rng.random::<f64>();
    // Counts a second (1-s polls) are Poisson around ≈ 3.
    let per_second = sc.step < MIN;
    let mut out = Vec::new();
    let mut t = t0;
    while t < end {
        // Missing rows (3 %), irregular timestamps (a tenth of a step either way).
        if rng.random::<f64>() < 0.03 {
            t += sc.step;
            continue;
        }
        let jitter = ((rng.random::<f64>() - 0.5) * 0.2 * sc.step as f64) as i64;
        let at_t = t + jitter;
        // The row's own hour and day (its stamp may be a little early or late).
        let hour = (t.rem_euclid(DAY) / HOUR) as f64;
        let dow = t.div_euclid(DAY).rem_euclid(7);
        let cycle = if sc.weekly {
            if dow >= 5 { 0.7 } else { 1.0 }
        } else {
            // Night low, evening peak; weekends a little lower.
            (1.0 + 0.6 * ((hour - 15.0) / 24.0 * std::f64::consts::TAU).cos()) * if dow >= 5 { 0.85 } else { 1.0 }
        };
        let noise = (sigma * (0.5 * heavy.sample(&mut rng) + 0.5 * small.sample(&mut rng))).exp();
        let point = if per_second {
            let mean = 3.0 * cycle * factor(t);
            Point::Value(rand_distr::Poisson::new(mean).unwrap().sample(&mut rng))
        } else if sc.rate {
            let impressions = (20_000.0 * cycle * noise).round().max(1.0) as u64;
            let ctr = 0.015 * factor(t) * (0.1 * small.sample(&mut rng)).exp();
            let clicks = Binomial::new(impressions, ctr.min(1.0)).unwrap().sample(&mut rng);
            Point::Rate { num: clicks as f64, den: impressions as f64 }
        } else {
            Point::Value(scale * cycle * noise * factor(t))
        };
        out.push((at_t, point));
        t += sc.step;
    }
    (out, labels)
}

/// A detector over one series: which points it alerts on at a threshold, its usual threshold
/// and the thresholds swept.
trait Detector {
    fn name(&self) -> &'static str;
    fn threshold(&self) -> f64;
    fn sweep(&self) -> Vec<f64>;
    /// Per series, per point: alerted at each threshold (in the order given).
    fn alerts(&self, rows: &[(i64, Point)], thresholds: &[f64]) -> Vec<Vec<bool>>;
}

/// The replay at its defaults, or with `--confirm 6` (a lasting shift adopted after 6 alerts).
struct Ours(usize);
impl Detector for Ours {
    fn name(&self) -> &'static str {
        if self.0 > 0 { "replay --confirm 6" } else { "replay (defaults)" }
    }
    fn threshold(&self) -> f64 {
        ReplaySettings::default().threshold
    }
    fn sweep(&self) -> Vec<f64> {
        (2..=20).map(f64::from).collect()
    }
    /// The replay run at each threshold, as `cockpit replay --threshold` runs it: its gates
    /// (the 30 % change) and its drift alarms included.
    fn alerts(&self, rows: &[(i64, Point)], thresholds: &[f64]) -> Vec<Vec<bool>> {
        thresholds
            .iter()
            .map(|th| {
                let s = ReplaySettings { threshold: *th, confirm: self.0, ..ReplaySettings::default() };
                let mut d = SeriesDetector::new(s);
                rows.iter().map(|(t, p)| d.push(*t, *p).1).collect()
            })
            .collect()
    }
}

/// |z| of each point against the last 48: mean and σ, or median and MAD.
struct Windowed {
    robust: bool,
}
impl Detector for Windowed {
    fn name(&self) -> &'static str {
        if self.robust { "median/MAD (48)" } else { "Gaussian (48)" }
    }
    fn threshold(&self) -> f64 {
        if self.robust { 3.5 } else { 3.0 }
    }
    fn sweep(&self) -> Vec<f64> {
        (4..=60).map(|k| k as f64 * 0.25).collect()
    }
    fn alerts(&self, rows: &[(i64, Point)], thresholds: &[f64]) -> Vec<Vec<bool>> {
        let scores = self.scores(rows);
        thresholds.iter().map(|th| scores.iter().map(|s| *s >= *th && *s > 0.0).collect()).collect()
    }
}

impl Windowed {
    fn scores(&self, rows: &[(i64, Point)]) -> Vec<f64> {
        let mut window: std::collections::VecDeque<f64> = std::collections::VecDeque::new();
        rows.iter()
            .map(|(_, p)| {
                let x = p.value();
                let score = if window.len() >= 8 && x.is_finite() {
                    let v: Vec<f64> = window.iter().copied().collect();
                    let (centre, sigma) = if self.robust {
                        let (m, mad) = campaign_cockpit::alert::detect::median_mad(&v).unwrap();
                        (m, 1.4826 * mad)
                    } else {
                        let n = v.len() as f64;
                        let mean = v.iter().sum::<f64>() / n;
                        (mean, (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
                    };
                    if sigma > 0.0 { ((x - centre) / sigma).abs() } else { 0.0 }
                } else {
                    0.0
                };
                if x.is_finite() {
                    window.push_back(x);
                    if window.len() > 48 {
                        window.pop_front();
                    }
                }
                score
            })
            .collect()
    }
}

/// Precision, recall, median delay and false alarms a week over a scenario's series.
#[derive(Default, Clone, Copy)]
struct Figures {
    alarms: usize,
    true_alarms: usize,
    labels: usize,
    found: usize,
    delay: Option<i64>,
    false_per_week: f64,
}

impl Figures {
    fn precision(&self) -> f64 {
        if self.alarms == 0 { 1.0 } else { self.true_alarms as f64 / self.alarms as f64 }
    }
    fn recall(&self) -> f64 {
        if self.labels == 0 { 1.0 } else { self.found as f64 / self.labels as f64 }
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if self.labels == 0 {
            // No incident: fewer false alarms is all.
            return 1.0 / (1.0 + self.false_per_week);
        }
        if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }
    }
}

/// `alerts`: per series, per point, whether it alerted.
fn figures(all: &[Labelled], alerts: &[&Vec<bool>], step: i64) -> Figures {
    let mut f = Figures::default();
    let mut delays = Vec::new();
    let mut weeks = 0.0;
    let mut false_alarms = 0;
    for ((rows, labels), alerted) in all.iter().zip(alerts) {
        let alarms: Vec<Alarm> = alarms_of_rows(rows.iter().zip(alerted.iter()).map(|((t, _), a)| (*t, *a)));
        let span = rows.last().map_or(0, |r| r.0) - rows.first().map_or(0, |r| r.0);
        let q = judge(&alarms, labels, span, 3 * step);
        f.alarms += q.alarms;
        f.true_alarms += q.true_alarms;
        f.labels += labels.len();
        f.found += q.found.iter().filter(|(_, d)| d.is_some()).count();
        delays.extend(q.found.iter().filter_map(|(_, d)| *d));
        false_alarms += q.alarms - q.true_alarms;
        weeks += span as f64 / (7 * DAY) as f64;
    }
    delays.sort_unstable();
    f.delay = delays.get(delays.len().saturating_sub(1) / 2).copied();
    f.false_per_week = false_alarms as f64 / weeks.max(1e-9);
    f
}

fn line(label: &str, f: &Figures) -> String {
    let delay = f.delay.map_or_else(|| "-".to_string(), campaign_cockpit::domain::format::span);
    format!(
        "    {label:<28} precision {:.2}  recall {:.2} ({:>2}/{:>2})  median delay {delay:>8}  false alarms {:>6.1}/week",
        f.precision(),
        f.recall(),
        f.found,
        f.labels,
        f.false_per_week
    )
}

pub fn bench_quality() {
    println!(
        "detection quality, {SERIES} labelled series per scenario (heavy tails, 3 % rows missing, jittered times)"
    );
    let detectors: [&dyn Detector; 4] = [&Ours(0), &Ours(6), &Windowed { robust: false }, &Windowed { robust: true }];
    let mut totals = vec![(0.0, 0.0); detectors.len()];
    for sc in SCENARIOS {
        println!("  {}", sc.name);
        let all: Vec<_> = (0..SERIES).map(|k| series(sc, k)).collect();
        for (i, d) in detectors.iter().enumerate() {
            let mut thresholds = d.sweep();
            thresholds.insert(0, d.threshold());
            // Per series, per threshold.
            let alerts: Vec<Vec<Vec<bool>>> = all.iter().map(|(rows, _)| d.alerts(rows, &thresholds)).collect();
            let at = |k: usize| figures(&all, &alerts.iter().map(|a| &a[k]).collect::<Vec<_>>(), sc.step);
            let at_default = at(0);
            let best = (1..thresholds.len())
                .map(|k| (thresholds[k], at(k)))
                .max_by(|a, b| a.1.f1().total_cmp(&b.1.f1()))
                .unwrap();
            println!("{}", line(&format!("{} at {}", d.name(), d.threshold()), &at_default));
            println!("{}", line(&format!("{} best at {}", d.name(), best.0), &best.1));
            totals[i].0 += at_default.f1();
            totals[i].1 += best.1.f1();
        }
    }
    let n = SCENARIOS.len() as f64;
    for (d, (f1, best)) in detectors.iter().zip(totals) {
        println!(
            "  mean F1 over the scenarios: {:<18} {:.2} at its threshold, {:.2} at each scenario's best",
            d.name(),
            f1 / n,
            best / n
        );
    }
}

/// A quiet channel for the KPI rule: about 200 spent an hour (500 in 3 h at the day's peak
/// and trough alike, so that the volume guard lets the rule judge), a daily cycle, and
/// conversions that arrive as a Poisson process at the channel's true cost per conversion.
const KPI_CAMPAIGN: &str = r#"
id = "quiet"
name = "A quiet channel"
start = "2026-06-01T00:00:00+00:00"
end = "2026-07-31T00:00:00+00:00"
currency = "USD"
total_budget = 1000000.0
kpis = ["cpa <= 90"]

[alerts.anomaly]
enabled = false
[alerts.traffic]
enabled = false

[[channels]]
id = "search"
name = "Search"
kind = "search"
source = "http://127.0.0.1:9/stats"
daily_budget = 10000.0
"#;

/// Minute rows of the quiet channel over `days`, at a true CPA of `cpa`.
fn quiet_rows(cpa: f64, days: i64, seed: u64) -> Vec<(i64, campaign_cockpit::domain::Counters)> {
    use rand_distr::Poisson;
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = 1_780_272_000_000; // 2026-06-01T00:00Z
    (0..days * 24 * 60)
        .map(|m| {
            let at = t0 + (m + 1) * MIN;
            let hour = (m / 60 % 24) as f64;
            // 0.6× at night to 1.4× in the afternoon.
            let spend = 200.0 / 60.0 * (1.0 - 0.4 * (std::f64::consts::TAU * (hour - 3.0) / 24.0).cos());
            let count = |mean: f64, rng: &mut StdRng| {
                if mean > 0.0 { Poisson::new(mean).unwrap().sample(rng) as u64 } else { 0 }
            };
            let c = campaign_cockpit::domain::Counters {
                impressions: count(spend * 100.0, &mut rng),
                clicks: count(spend / 2.0, &mut rng),
                leads: 0,
                conversions: count(spend / cpa, &mut rng),
                spend,
                revenue: 0.0,
            };
            (at, c)
        })
        .collect()
}

/// The rule as it was: the observed CPA over the window against the limit, once the volume
/// guard is met, through the same state machine and timing.
fn kpi_as_it_was(
    campaign: &campaign_cockpit::domain::Campaign,
    rows: &[(i64, campaign_cockpit::domain::Counters)],
) -> Vec<(i64, bool)> {
    use campaign_cockpit::alert::rules::defaults;
    use campaign_cockpit::alert::state::{Alert, AlertKey, AlertState, Severity, Transition, Verdict, step_all};
    use campaign_cockpit::domain::RuleKind;
    let d = defaults(RuleKind::Kpi);
    let limit = &campaign.kpis[0];
    let key = AlertKey { campaign: campaign.id.clone(), channel: "search".into(), rule: format!("kpi: {limit}") };
    let mut alerts = std::collections::BTreeMap::new();
    let window = (d.window_ms / MIN) as usize;
    let mut fired = Vec::new();
    for i in 0..rows.len() {
        let mut w = campaign_cockpit::domain::Counters::default();
        rows[i.saturating_sub(window - 1)..=i].iter().for_each(|(_, c)| w.add(c));
        let at = rows[i].0;
        let active =
            alerts.get(&key).is_some_and(|a: &Alert| matches!(a.state, AlertState::Pending | AlertState::Firing));
        let verdict = d.guard.enough(limit.metric, &w).ok().map(|()| {
            let v = limit.metric.value(&w).unwrap_or(f64::INFINITY);
            let bound = if active { limit.value * (1.0 - d.threshold) } else { limit.value };
            let off = (v - limit.value) / limit.value;
            Verdict {
                active: v > bound,
                severity: if off > 0.25 { Severity::Crit } else { Severity::Warn },
                observed: Some(v),
                expected: Some((limit.value, 0.0)),
                summary: String::new(),
            }
        });
        for m in step_all(&mut alerts, vec![(key.clone(), verdict, d.timing)], at) {
            if m.transition == Transition::Fired {
                fired.push((at, m.after.is_some_and(|a| a.severity == Severity::Crit)));
            }
        }
    }
    fired
}

/// The KPI rule on a quiet channel: how often it fires, and pages, where the true CPA is
/// inside its limit, and how soon where it is not; as it runs, and as it was.
pub fn bench_kpi_quiet() {
    use campaign_cockpit::alert::backtest::ChannelReplay;
    use campaign_cockpit::alert::{AlertState, Severity};
    use campaign_cockpit::domain::campaign::{Campaign, Format};
    let campaign = Campaign::parse(KPI_CAMPAIGN, Format::Toml, "quiet.toml").unwrap();
    const DAYS: i64 = 28;
    const SEEDS: u64 = 4;
    let weeks = (DAYS * SEEDS as i64) as f64 / 7.0;
    println!(
        "KPI rule `cpa <= 90` on a quiet channel (~200 spent and ~2.5 conversions an hour), minute rows, {SEEDS} × {DAYS} days"
    );
    for cpa in [60.0, 80.0, 85.0, 120.0] {
        let (mut now, mut was) = ((0usize, 0usize, Vec::new()), (0usize, 0usize, Vec::new()));
        for seed in 0..SEEDS {
            let rows = quiet_rows(cpa, DAYS, seed);
            let t0 = rows[0].0;
            let mut r = ChannelReplay::new(&campaign, "search").unwrap();
            let mut first = None;
            for (at, c) in &rows {
                for ch in r.push(*at, c, false) {
                    if ch.rule.starts_with("kpi") && ch.state == AlertState::Firing {
                        now.0 += 1;
                        now.1 += usize::from(ch.severity == Severity::Crit);
                        first.get_or_insert(ch.at_ms - t0);
                    }
                }
            }
            now.2.extend(first);
            let old = kpi_as_it_was(&campaign, &rows);
            was.0 += old.len();
            was.1 += old.iter().filter(|f| f.1).count();
            was.2.extend(old.first().map(|f| f.0 - t0));
        }
        let say = |(fires, crits, firsts): &(usize, usize, Vec<i64>)| {
            let mut firsts = firsts.clone();
            firsts.sort_unstable();
            let first = firsts
                .get(firsts.len() / 2)
                .map_or_else(|| "never".to_string(), |d| campaign_cockpit::domain::format::span(*d));
            format!(
                "{:5.1} firings/week, {:4.1} critical/week, first after {first}",
                *fires as f64 / weeks,
                *crits as f64 / weeks
            )
        };
        println!("  true CPA {cpa:>3}: as it runs {}", say(&now));
        println!("  {:>12}  as it was {}", "", say(&was));
    }
}
