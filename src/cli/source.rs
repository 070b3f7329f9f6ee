//! `cockpit source test`: what a campaign's sources answer, as the cockpit would record it, and
//! when a channel is not found, what was found instead.

use super::{BadInput, Cli};
use crate::clock::{Clock, SystemClock};
use crate::domain::Campaign;
use crate::domain::Counters;
use crate::poll::wire::{Names, StatsDoc};
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
    /// Counters the channel's mapping does not read: unknown, not zero.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_mapped: Vec<&'static str>,
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
            not_mapped: Vec::new(),
        }
    }

    /// The counters as printed: "not mapped" for one the mapping does not read.
    fn cells(&self) -> Vec<String> {
        let shown = |name: &str, text: String| if self.not_mapped.contains(&name) { "not mapped".into() } else { text };
        vec![
            shown("impressions", self.impressions.to_string()),
            shown("clicks", self.clicks.to_string()),
            shown("leads", self.leads.to_string()),
            shown("conversions", self.conversions.to_string()),
            shown("spend", format!("{:.2}", self.spend)),
            shown("revenue", format!("{:.2}", self.revenue)),
        ]
    }
}

#[derive(Serialize)]
struct Answer {
    channels: Vec<Recorded>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
    /// What a source says although it answered ("2 files still being written; read in 2 s").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

/// Reads the campaign's sources once; the text to print, and whether every channel was found.
pub async fn test(c: &Campaign, cli: &Cli, channel: Option<&str>, json: bool) -> color_eyre::Result<String> {
    let id = &c.id;
    if let Some(ch) = channel
        && c.channel(ch).is_none()
    {
        let known: Vec<&str> = c.channels.iter().map(|c| c.id.as_str()).collect();
        return Err(BadInput(format!("no channel '{ch}' in {id} (known: {})", known.join(", "))).into());
    }
    let interval = cli.interval.unwrap_or(Duration::from_secs(10));
    let sources = crate::poll::sources_with_token(
        std::slice::from_ref(c),
        interval,
        cli.source_token.as_ref(),
        cli.token_over_http,
    );
    let sources = crate::poll::with_secrets(sources, &cli.secrets, &cli.credentials);
    let client = crate::poll::client();
    let now = SystemClock.now_ms();
    let mut answer = Answer { channels: Vec::new(), problems: Vec::new(), notes: Vec::new() };
    for ch in c.channels.iter().filter(|ch| channel.is_none_or(|x| x == ch.id)) {
        if let Some(n) = pinned_older(ch) {
            answer.notes.push(n);
        }
    }
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
        if let Some(note) = &doc.note {
            answer.notes.push(format!("{}: {note}", spec.url));
        }
        for ch in served {
            match recorded(&doc, ch.source_id(), &c.id) {
                Some(counters) => {
                    let mut r = Recorded::new(&ch.id, &counters);
                    if let Some(f) = ch.source_format() {
                        r.not_mapped =
                            f.mapping.counters().into_iter().filter(|(_, e)| e.is_none()).map(|(n, _)| n).collect();
                    }
                    answer.channels.push(r);
                }
                None => answer.problems.push(not_found(&doc, ch, spec)),
            }
        }
    }
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&answer)?)
    } else {
        let mut t = format!(
            "{:<22} {:>12} {:>10} {:>10} {:>11} {:>12} {:>12}\n",
            "channel", "impressions", "clicks", "leads", "conversions", "spend", "revenue"
        );
        for r in &answer.channels {
            let c = r.cells();
            t.push_str(&format!(
                "{:<22} {:>12} {:>10} {:>10} {:>11} {:>12} {:>12}\n",
                r.id, c[0], c[1], c[2], c[3], c[4], c[5]
            ));
        }
        for n in &answer.notes {
            t.push_str(&format!("note: {n}\n"));
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
    let waiting = doc.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default();
    format!(
        "channel {}: no row with id '{}' in the answer{zero}; ids found{by}: {found}{waiting}",
        ch.id,
        ch.source_id()
    )
}

/// A channel pinning an API version older than its preset's (the newest its platform
/// documents): a version that will be retired first.
fn pinned_older(ch: &crate::domain::Channel) -> Option<String> {
    let format = ch.format.as_deref()?;
    let pinned = ch.request.as_ref()?.version.as_deref()?;
    let newest = crate::domain::source::shipped_preset(format)?.request.version?;
    let number =
        |v: &str| -> Vec<u32> { v.trim_start_matches('v').split('.').filter_map(|p| p.parse().ok()).collect() };
    (number(pinned) < number(&newest)).then(|| {
        format!(
            "{}: pins {format} {pinned}, older than {newest}, the newest the platform documents: it will be retired first",
            ch.id
        )
    })
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn a_channel_pinning_an_older_version_is_told() {
        let mut c = crate::demo::campaigns().remove(0);
        let ch = &mut c.channels[0];
        ch.format = Some("meta-insights".into());
        ch.request = Some(crate::domain::source::Request { version: Some("v24.0".into()), ..Default::default() });
        let n = super::pinned_older(ch).unwrap();
        assert!(n.contains("v24.0") && n.contains("v27.0"), "{n}");
        ch.request.as_mut().unwrap().version = Some("v27.0".into());
        assert!(super::pinned_older(ch).is_none());
    }
}
