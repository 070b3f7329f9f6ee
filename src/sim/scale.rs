//! Synthetic campaigns of any size, for load tests and benchmarks: M campaigns sharing N
//! channels, each channel with its own source URL (the hardest case for the poller) or one URL
//! per campaign whose answer lists all its channels (as an ad platform's reporting API does).

use crate::domain::campaign::{Channel, Goal};
use crate::domain::{Campaign, KpiLimit, Metric};
use chrono::{DateTime, Duration, FixedOffset};

const KINDS: [&str; 8] = ["social", "search", "video", "kol", "email", "sms", "ecommerce", "appstore"];

/// Where the synthetic channels' stats are fetched from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Sources {
    /// One URL per channel: one request per channel per poll.
    #[default]
    Channel,
    /// One URL per campaign, answering for all its channels.
    Campaign,
}

/// `campaigns` campaigns with `channels` channels in all, running from 14 days before `now`
/// to 16 days after, their sources under `origin` (e.g. "http://127.0.0.1:7878").
pub fn campaigns(
    campaigns: usize,
    channels: usize,
    sources: Sources,
    origin: &str,
    now: DateTime<FixedOffset>,
) -> Vec<Campaign> {
    let campaigns = campaigns.max(1);
    (0..campaigns)
        .map(|ci| {
            let id = format!("scale-{ci:04}");
            let n = channels / campaigns + usize::from(ci < channels % campaigns);
            let chans: Vec<Channel> = (0..n)
                .map(|k| {
                    let ch = format!("ch-{k:05}");
                    let budget = 200.0 + ((ci * 7919 + k * 104_729) % 40) as f64 * 50.0;
                    Channel {
                        id: ch.clone(),
                        name: format!("{} channel {k}", KINDS[k % KINDS.len()]),
                        kind: Some(KINDS[k % KINDS.len()].to_string()),
                        source: match sources {
                            Sources::Channel => format!("{origin}/stats/{id}/{ch}"),
                            Sources::Campaign => format!("{origin}/stats/{id}"),
                        },
                        source_id: None,
                        format: None,
                        request: None,
                        mapping: None,
                        credentials: None,
                        control: Some(format!("{origin}/control/{id}")),
                        daily_budget: budget,
                        min_budget: Some(100.0),
                        max_budget: Some(budget * 3.0),
                        poll_interval: None,
                        kpis: Vec::new(),
                        alerts: Default::default(),
                    }
                })
                .collect();
            let daily: f64 = chans.iter().map(|c| c.daily_budget).sum();
            Campaign {
                name: format!("Scale test {ci}"),
                start: now - Duration::days(14),
                end: now + Duration::days(16),
                currency: "CNY".into(),
                total_budget: (daily * 30.0).round(),
                description: None,
                tags: vec!["synthetic".into()],
                goals: vec![Goal {
                    metric: Metric::Conversions,
                    target: (daily * 30.0 / 80.0).round().max(1.0),
                    deadline: None,
                    name: None,
                }],
                kpis: vec![KpiLimit { metric: Metric::Cpa, op: crate::domain::Op::Le, value: 90.0 }],
                alerts: Default::default(),
                contingency: Vec::new(),
                channels: chans,
                costs: Vec::new(),
                tasks: Vec::new(),
                gross_margin: None,
                id,
            }
        })
        .filter(|c| !c.channels.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn spreads_channels_and_validates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-06-08T09:00:00+08:00").unwrap();
        let cs = super::campaigns(3, 10, super::Sources::Channel, "http://127.0.0.1:7878", now);
        assert_eq!(cs.iter().map(|c| c.channels.len()).collect::<Vec<_>>(), vec![4, 3, 3]);
        for c in &cs {
            c.validate().unwrap();
        }
    }
}
