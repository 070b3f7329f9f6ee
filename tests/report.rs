//! The review report on a fixed simulated campaign: the demo's 618 festival recorded hour by
//! hour from launch to 8 June 09:00, with last year's festival to compare with, a note and an
//! applied action. One golden file per format, and the formats agree with each other.

use campaign_cockpit::demo;
use campaign_cockpit::domain::Campaign;
use campaign_cockpit::domain::ControlAction;
use campaign_cockpit::domain::{Note, NoteKind};
use campaign_cockpit::optimize::journal::{JournalEntry, Outcome};
use campaign_cockpit::optimize::recommend::Change;
use campaign_cockpit::report::{ReportFormat, Review, build, render};
use campaign_cockpit::sim::history;
use campaign_cockpit::sim::model::Network;
use campaign_cockpit::store::Store;

fn fixture(dir: &std::path::Path) -> (Store, Vec<Campaign>) {
    let store = Store::open(&dir.join("db")).unwrap();
    let mut campaigns = demo::campaigns();
    campaigns.extend(demo::past_campaigns());
    for c in &campaigns {
        store.put_campaign(c).unwrap();
    }
    let sc = demo::scenario();
    let start = sc.start.unwrap().timestamp_millis();
    let (chs, inc) = sc.build(&campaigns, start).unwrap();
    let first = campaigns.iter().map(Campaign::start_ms).min().unwrap();
    let mut net = Network::new(chs, inc, first);
    history::record(&store, &mut net, &campaigns, start).unwrap();
    let at = start - 30 * 3_600_000;
    store
        .put_note(&Note {
            id: 1,
            at_ms: at - 3_600_000,
            campaign: "618-promo".into(),
            channel: Some("douyin".into()),
            kind: NoteKind::Note,
            text: "Douyin creative looks tired; trying a smaller budget".into(),
            by: "li.na".into(),
            rule: None,
            fired: None,
        })
        .unwrap();
    store
        .put_journal(&JournalEntry {
            id: 2,
            at_ms: at,
            wall_ms: at,
            by: "li.na".into(),
            campaign: "618-promo".into(),
            change: Change {
                channel: "douyin".into(),
                action: ControlAction::SetBudget,
                value: Some(6_000.0),
                variant: None,
                before: 8_000.0,
                after: 6_000.0,
            },
            inverse: Change {
                channel: "douyin".into(),
                action: ControlAction::SetBudget,
                value: Some(8_000.0),
                variant: None,
                before: 6_000.0,
                after: 8_000.0,
            },
            idempotency_key: "k-2".into(),
            recommendation: None,
            undo_of: None,
            undone_by: None,
            outcome: Outcome::Applied { detail: "ok".into() },
        })
        .unwrap();
    (store, campaigns)
}

fn review() -> Review {
    let dir = tempfile::tempdir().unwrap();
    let (store, campaigns) = fixture(dir.path());
    let c = campaigns.iter().find(|c| c.id == "618-promo").unwrap();
    build(&store, c, &campaigns, None, None).unwrap()
}

#[test]
fn golden_reports() {
    let r = review();
    insta::assert_snapshot!("review_md", render(&r, ReportFormat::Md));
    insta::assert_snapshot!("review_csv", render(&r, ReportFormat::Csv));
    insta::assert_snapshot!("review_json", render(&r, ReportFormat::Json));
    insta::assert_snapshot!("review_html", render(&r, ReportFormat::Html));
}

/// Every format carries the same figures, to the cent: the totals, each channel's spend and
/// revenue, and the goals.
#[test]
fn formats_agree_to_the_cent() {
    use campaign_cockpit::domain::format::money_cents as money;
    let r = review();
    let (md, html, csv) = (render(&r, ReportFormat::Md), render(&r, ReportFormat::Html), render(&r, ReportFormat::Csv));
    let json: serde_json::Value = serde_json::from_str(&render(&r, ReportFormat::Json)).unwrap();
    assert_eq!(json["spend"].as_f64().unwrap(), r.spend);
    for ch in &r.channels {
        for v in [ch.counters.spend, ch.counters.revenue] {
            assert!(md.contains(&money(v)) && html.contains(&money(v)), "{} {v}", ch.id);
            assert!(csv.contains(&format!("{v}")) || csv.contains(&format!("{v:.1}")), "csv: {} {v}", ch.id);
        }
    }
    let sum: f64 = r.channels.iter().map(|c| c.counters.spend).sum();
    assert!((sum - r.spend).abs() < 0.005 * r.channels.len() as f64);
    assert!(md.contains(&money(r.spend)) && html.contains(&money(r.spend)));
    // The action's measured effect and the note are in every format.
    for text in [&md, &html, &csv] {
        assert!(text.contains("douyin budget") || text.contains("douyin"), "the action");
        assert!(text.contains("Douyin creative looks tired"), "the note");
    }
    let a = &r.actions[0];
    assert!(a.before.is_some() && a.after.is_some(), "before/after measured: {a:?}");
    let prev = r.previous.as_ref().expect("last year's festival to compare with");
    assert_eq!(prev.name, "618 年中大促 2025");
    // HTML is self-contained: no scripts, no external resources.
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href=") && !html.contains("url("));
    assert!(html.contains("<svg"));
}

/// A period report covers only its days, and its totals are the sum of them.
#[test]
fn a_period_report_sums_its_days() {
    let dir = tempfile::tempdir().unwrap();
    let (store, campaigns) = fixture(dir.path());
    let c = campaigns.iter().find(|c| c.id == "618-promo").unwrap();
    let day = 86_400_000;
    let from = c.start_ms() + 2 * day;
    let r = build(&store, c, &campaigns, Some(from), Some(from + 3 * day)).unwrap();
    assert_eq!(r.days.iter().map(|d| d.day).collect::<Vec<_>>(), [3, 4, 5]);
    let days: f64 = r.days.iter().map(|d| d.counters.spend).sum();
    assert!((days - r.spend).abs() < 0.05, "{days} vs {}", r.spend);
    let conv: u64 = r.days.iter().map(|d| d.counters.conversions).sum();
    assert_eq!(conv, r.totals.conversions);
    // Segments cover the same period: each dimension adds up to the period's figures.
    for dim in ["device", "age", "region"] {
        let seg: u64 = r.segments.iter().filter(|s| *s.dimension == *dim).map(|s| s.counters.conversions).sum();
        assert_eq!(seg, r.totals.conversions, "{dim}");
    }
}

/// Labour and fees besides media spend: the summary counts them in the full cost, profit and
/// ROI, over the whole run and by the day for a period; a campaign without them shows none.
#[test]
fn other_costs_count_in_profit_and_roi() {
    use campaign_cockpit::domain::campaign::{Cost, CostPer};
    let dir = tempfile::tempdir().unwrap();
    let (store, campaigns) = fixture(dir.path());
    let mut c = campaigns.iter().find(|c| c.id == "618-promo").unwrap().clone();
    assert!(review().other_costs.is_none());
    c.costs = vec![
        Cost { name: "agency".into(), amount: 20_000.0, per: None, channel: None },
        Cost { name: "ops team".into(), amount: 1_000.0, per: Some(CostPer::Day), channel: None },
    ];
    let r = build(&store, &c, &campaigns, None, None).unwrap();
    // The report runs to the last data.
    let to = chrono::DateTime::parse_from_rfc3339(&r.to).unwrap().timestamp_millis();
    let days = (to.min(c.end_ms()) - c.start_ms()) as f64 / 86_400_000.0;
    let other = r.other_costs.unwrap();
    // (The period's end is printed to the second.)
    assert!((other - (20_000.0 + 1_000.0 * days)).abs() < 0.05, "{other} vs {days} days");
    let md = render(&r, ReportFormat::Md);
    for row in ["other costs", "full cost", "profit", "ROI over the full cost"] {
        assert!(md.contains(row), "{row}:\n{md}");
    }
    let roi = (r.totals.revenue - r.spend - other) / (r.spend + other);
    assert!(md.contains(&format!("| ROI over the full cost | {:.2}% |", roi * 100.0)), "{md}");
    // Three days in the middle: three days of the ops team, no agency fee.
    let day = 86_400_000;
    let p = build(&store, &c, &campaigns, Some(c.start_ms() + 2 * day), Some(c.start_ms() + 5 * day)).unwrap();
    assert_eq!(p.other_costs, Some(3_000.0));
    // A gross margin: profit on revenue times it, and gross profit on ad spend.
    c.gross_margin = Some(0.35);
    let r = build(&store, &c, &campaigns, None, None).unwrap();
    let md = render(&r, ReportFormat::Md);
    let other = r.other_costs.unwrap();
    let profit = r.totals.revenue * 0.35 - r.spend - other;
    let roi = profit / (r.spend + other);
    assert!(md.contains(&format!("| ROI over the full cost | {:.2}% |", roi * 100.0)), "{md}");
    assert!(md.contains("| gross margin | 35.0% |"), "{md}");
    let poas = r.totals.revenue * 0.35 / r.spend;
    assert!(md.contains(&format!("| POAS (gross profit / ad spend) | {poas:.2}× |")), "{md}");
}
