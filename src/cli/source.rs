//! `cockpit source test`: what a campaign's sources answer, as the cockpit would record it, and
//! when a channel is not found, what was found instead.

use super::{BadInput, Cli};
use crate::clock::{Clock, SystemClock};
use crate::domain::Counters;
use crate::poll::wire::{Names, StatsDoc};
use crate::store::Store;
use serde::Serialize;
use std::time::Duration;

/// A channel's cumulative counters as `source test` and `campaign show --json` print them.
#[derive(Serialize)]
pub struct Recorded {
    id: String,
    impressions: u64,
    clicks: u64,
    leads: u64,
    conversions: u64,
    spend: f64,
    revenue: f64,
}

impl Recorded {
    pub fn new(id: &str, c: &Counters) -> Recorded {
        Recorded {
            id: id.to_string(),
            impressions: c.impressions,
            clicks: c.clicks,
            leads: c.leads,
            conversions: c.conversions,
            spend: (c.spend * 100.0).round() / 100.0,
            revenue: (c.revenue * 100.0).round() / 100.0,
        }
    }
}

#[derive(Serialize)]
struct Answer {
    channels: Vec<Recorded>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

/// Reads the campaign's sources once; the text to print, and whether every channel was found.
pub async fn test(store: &Store, cli: &Cli, id: &str, channel: Option<&str>, json: bool) -> color_eyre::Result<String> {
    let c = store.campaign(id)?.ok_or_else(|| {
        BadInput(format!("no campaign '{id}' in {} (see `cockpit campaign list`)", store.path().display()))
    })?;
    if let Some(ch) = channel
        && c.channel(ch).is_none()
    {
        let known: Vec<&str> = c.channels.iter().map(|c| c.id.as_str()).collect();
        return Err(BadInput(format!("no channel '{ch}' in {id} (known: {})", known.join(", "))).into());
    }
    let interval = cli.interval.unwrap_or(Duration::from_secs(10));
    let sources = crate::poll::sources_with_token(
        std::slice::from_ref(&c),
        interval,
        cli.source_token.as_ref(),
        cli.token_over_http,
    );
    let sources = crate::poll::with_secrets(sources, &cli.secrets);
    let client = crate::poll::client();
    let now = SystemClock.now_ms();
    let mut answer = Answer { channels: Vec::new(), problems: Vec::new() };
    for spec in &sources {
        let served: Vec<_> =
            c.channels.iter().filter(|ch| ch.source == spec.url && channel.is_none_or(|x| x == ch.id)).collect();
        if served.is_empty() {
            continue;
        }
        let doc = match crate::poll::fetch_at(&client, spec, &mut Names::default(), now, true).await {
            Ok(doc) => doc,
            Err(e) => {
                answer.problems.push(format!("{}: {e}", spec.url));
                continue;
            }
        };
        for ch in served {
            match recorded(&doc, ch.source_id(), &c.id) {
                Some(counters) => answer.channels.push(Recorded::new(&ch.id, &counters)),
                None => answer.problems.push(not_found(&doc, ch, spec)),
            }
        }
    }
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&answer)?)
    } else {
        let mut t = format!(
            "{:<22} {:>12} {:>10} {:>8} {:>11} {:>12} {:>12}\n",
            "channel", "impressions", "clicks", "leads", "conversions", "spend", "revenue"
        );
        for r in &answer.channels {
            t.push_str(&format!(
                "{:<22} {:>12} {:>10} {:>8} {:>11} {:>12.2} {:>12.2}\n",
                r.id, r.impressions, r.clicks, r.leads, r.conversions, r.spend, r.revenue
            ));
        }
        for p in &answer.problems {
            t.push_str(&format!("problem: {p}\n"));
        }
        t
    };
    if answer.problems.is_empty() {
        Ok(text)
    } else {
        print!("{text}");
        Err(color_eyre::eyre::eyre!(
            "{} of the campaign's channels or sources could not be read",
            answer.problems.len()
        ))
    }
}

/// The counters the cockpit would record for a channel: its totals, or the sum of its periods.
fn recorded(doc: &StatsDoc, source_id: &str, campaign: &str) -> Option<Counters> {
    let entry = doc
        .channels
        .iter()
        .filter(|e| &*e.id == source_id && e.campaign.as_deref().is_none_or(|c| c == campaign))
        .max_by_key(|e| e.campaign.is_some())?;
    Some(if entry.periods.is_empty() { entry.totals } else { Counters::sum(entry.periods.iter().map(|(_, c)| c)) })
}

/// Why a channel was not found: which ids the answer has, and for a mapped source which
/// expression gave them.
fn not_found(doc: &StatsDoc, ch: &crate::domain::Channel, spec: &crate::poll::SourceSpec) -> String {
    let mut ids: Vec<&str> = doc.channels.iter().map(|e| &*e.id).collect();
    ids.dedup();
    let found = if ids.is_empty() {
        "none".to_string()
    } else if ids.len() > 10 {
        format!("{} and {} more", ids[..10].join(", "), ids.len() - 10)
    } else {
        ids.join(", ")
    };
    let by = match &spec.mapped {
        Some(m) => format!(
            " (mapping.id `{}` of the rows `{}`)",
            m.mappings.resolved.mapping.id.as_deref().unwrap_or(""),
            m.mappings.resolved.mapping.rows.as_deref().unwrap_or("")
        ),
        None => String::new(),
    };
    let zero = if doc.restated_from.is_some() { " (the cockpit counts it as nothing in those days)" } else { "" };
    format!("channel {}: no row with id '{}' in the answer{zero}; ids found{by}: {found}", ch.id, ch.source_id())
}
