//! Detection quality on simulated incidents: every incident of `fixtures/scenarios/incidents.toml`
//! is alerted within a stated number of polls, a week without incidents raises no anomaly or
//! invalid-traffic alert, and the figures (precision, recall, median delay) are printed.

mod common;

use campaign_cockpit::alert::AlertState;
use campaign_cockpit::demo;
use campaign_cockpit::domain::RuleKind;
use campaign_cockpit::sim::scenario::Scenario;
use common::Harness;
use std::collections::{BTreeMap, BTreeSet};

const POLL_MS: i64 = 5 * 60_000;
/// The latest an incident may be alerted, in polls after it starts: the anomaly rules judge
/// complete hours, and a low-volume channel (a few leads an hour stopping) needs its four-hour
/// mean to be sure; `for` is 10 minutes on top.
const MAX_DELAY_POLLS: i64 = 60;

fn incidents_scenario() -> Scenario {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios/incidents.toml")).unwrap();
    Scenario::parse(&text, "fixtures/scenarios/incidents.toml").unwrap()
}

/// Every alert episode that fired: (campaign/channel, rule, fired at).
fn run(sc: Scenario, days: i64) -> BTreeMap<(String, String, i64), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::with_scenario(dir.path(), sc);
    let mut fired = BTreeMap::new();
    h.run(POLL_MS, days * 24 * 12, |snap| {
        for a in snap.alerts.iter().filter(|a| a.state != AlertState::Pending) {
            if let Some(at) = a.fired_ms {
                let key = (format!("{}/{}", a.key.campaign, a.key.channel), a.key.rule.clone(), at);
                fired.entry(key).or_insert_with(|| a.summary.clone());
            }
        }
    });
    fired
}

/// Detector alerts, one per line, with their time after the scenario's start.
fn listing(fired: &BTreeMap<(String, String, i64), String>, start: i64) -> String {
    let mut rows: Vec<_> = fired.iter().filter(|((_, rule, _), _)| is_detector(rule)).collect();
    rows.sort_by_key(|((_, _, at), _)| *at);
    rows.iter()
        .map(|((ch, rule, at), summary)| {
            let m = (at - start) / 60_000;
            format!("  +{}d{:02}h{:02}m {ch} {rule}: {summary}\n", m / 1440, m / 60 % 24, m % 60)
        })
        .collect()
}

fn is_detector(rule: &str) -> bool {
    matches!(RuleKind::of_rule(rule), Some(RuleKind::Anomaly | RuleKind::Traffic | RuleKind::Health))
}

#[test]
fn incidents_are_caught_quickly_and_quiet_weeks_stay_quiet() {
    let sc = incidents_scenario();
    let start = sc.start.unwrap().timestamp_millis();
    let (_, incidents) = sc.build(&demo::campaigns(), start).unwrap();
    let fired = run(sc.clone(), 7);

    // An alert on the incident's channel from its start until an hour after it ends is a hit.
    let mut delays = Vec::new();
    let mut hits = BTreeSet::new();
    for inc in &incidents {
        let until = inc.at_ms + inc.duration_ms.unwrap_or(0) + 3_600_000;
        let first = fired
            .keys()
            .filter(|(ch, rule, at)| ch == &inc.target && is_detector(rule) && (inc.at_ms..=until).contains(at))
            .min_by_key(|(_, _, at)| *at);
        let Some(hit) = first else {
            panic!("{} ({:?}) was not alerted; detectors fired:\n{}", inc.target, inc.effect, listing(&fired, start))
        };
        let polls = (hit.2 - inc.at_ms + POLL_MS - 1) / POLL_MS;
        println!("{:<34} {:<14} alerted by '{}' after {polls} polls", inc.target, format!("{:?}", inc.effect), hit.1);
        assert!(polls <= MAX_DELAY_POLLS, "{} took {polls} polls", inc.target);
        delays.push(polls);
        // Bots are told apart from a genuine rush: the invalid-traffic rule names them.
        if matches!(inc.effect, campaign_cockpit::sim::model::Effect::Bots(_)) {
            let traffic = fired
                .keys()
                .find(|(ch, rule, at)| ch == &inc.target && rule == "traffic" && (inc.at_ms..=until).contains(at));
            let Some(t) = traffic else {
                panic!("{}: bots raised no traffic alert; detectors fired:\n{}", inc.target, listing(&fired, start))
            };
            println!(
                "{:<34} {:<14} and by 'traffic' after {} polls: {}",
                inc.target,
                "",
                (t.2 - inc.at_ms + POLL_MS - 1) / POLL_MS,
                fired[t]
            );
        }
        for f in fired
            .keys()
            .filter(|(ch, rule, at)| ch == &inc.target && is_detector(rule) && (inc.at_ms..=until).contains(at))
        {
            hits.insert(f.clone());
        }
    }
    let detector_alerts: Vec<_> = fired.keys().filter(|(_, rule, _)| is_detector(rule)).collect();
    delays.sort_unstable();
    let precision = hits.len() as f64 / detector_alerts.len().max(1) as f64;
    let recall = delays.len() as f64 / incidents.len() as f64;
    println!(
        "detection over {} incidents: precision {:.2} ({} of {} anomaly/health alerts), recall {:.2}, median delay {} polls of 5 min",
        incidents.len(),
        precision,
        hits.len(),
        detector_alerts.len(),
        recall,
        delays[delays.len() / 2]
    );
    let false_listing: BTreeMap<_, _> = fired
        .iter()
        .filter(|(k, _)| is_detector(&k.1) && !hits.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(precision >= 0.8, "precision {precision:.2}; false alarms:\n{}", listing(&false_listing, start));

    // The same week without incidents: no anomaly alert at all.
    let quiet = Scenario { events: Vec::new(), ..sc };
    let fired = run(quiet, 7);
    let anomalies: Vec<_> =
        fired.iter().filter(|((_, rule, _), _)| rule.starts_with("anomaly") || rule.starts_with("traffic")).collect();
    assert!(anomalies.is_empty(), "anomaly or traffic alerts in a quiet week:\n{}", listing(&fired, start));
}
