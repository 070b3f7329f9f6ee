//! A simulated past: runs the network from its campaigns' start and stores what a cockpit
//! polling every hour would have stored (hourly rollups, cursors with campaign-to-date and
//! segment totals, and raw samples for the last two days). `cockpit demo` starts with it, so
//! the analysis views and the review report have days of history to work on.

use super::model::Network;
use crate::domain::ChannelKey;
use crate::domain::time::{HOUR_MS, RAW_RETENTION_MS};
use crate::domain::{Campaign, ChannelCursor};
use crate::store::{Ingest, Store};
/// Hours written per transaction.
const BATCH_HOURS: usize = 24;

struct Recorder<'a> {
    key: ChannelKey,
    campaign: &'a Campaign,
    /// Index of the channel in the network.
    sim: usize,
    cursor: ChannelCursor,
}

/// Records `net` hour by hour from the earliest campaign start up to `to_ms` (campaign time)
/// into `store`, then leaves the network at `to_ms`. Returns the number of samples written.
/// Each hour's reading is stamped a millisecond before the hour ends, so that it counts in the
/// hour it covers. Hours in which no campaign runs are skipped.
pub fn record(store: &Store, net: &mut Network, campaigns: &[Campaign], to_ms: i64) -> crate::store::Result<usize> {
    let mut recorders: Vec<Recorder<'_>> = Vec::new();
    for c in campaigns {
        for ch in &c.channels {
            let found = net.channels.iter().position(|s| s.campaign == c.id && s.id == ch.source_id());
            if let Some(sim) = found {
                recorders.push(Recorder {
                    key: ChannelKey::new(&c.id, &ch.id),
                    campaign: c,
                    sim,
                    cursor: Default::default(),
                });
            }
        }
    }
    let running = |t: i64| campaigns.iter().any(|c| t > c.start_ms() && t - HOUR_MS < c.end_ms());
    let mut t = campaigns.iter().map(Campaign::start_ms).min().unwrap_or(to_ms).div_euclid(HOUR_MS) * HOUR_MS;
    let mut written = 0;
    let mut batch = Vec::new();
    let mut hours = 0;
    while t + HOUR_MS <= to_ms {
        t += HOUR_MS;
        if !running(t) {
            // Jump to the next launch, if any comes before the end.
            let next = campaigns.iter().map(Campaign::start_ms).filter(|s| *s >= t).min();
            if let Some(n) = next.filter(|n| *n < to_ms) {
                t = n.div_euclid(HOUR_MS) * HOUR_MS;
            }
            continue;
        }
        net.advance_coarse(t);
        let at = t - 1;
        for r in &mut recorders {
            if at < r.campaign.start_ms() || at - HOUR_MS >= r.campaign.end_ms() {
                continue;
            }
            let stats = net.channels[r.sim].stats();
            let Some(mut sample) = r.cursor.advance(at, stats.totals, &stats.variants) else { continue };
            sample.segments = r.cursor.advance_segments(&stats.segments);
            r.cursor.count_today(r.campaign.day_start_ms(at), &sample);
            batch.push((r.key.clone(), sample, r.cursor.clone()));
        }
        hours += 1;
        if hours % BATCH_HOURS == 0 {
            written += write(store, &mut batch)?;
        }
    }
    written += write(store, &mut batch)?;
    for r in &recorders {
        store.prune_samples(&r.key, to_ms - RAW_RETENTION_MS)?;
        store.pack(&r.key, to_ms)?;
    }
    net.advance_to(to_ms);
    store.flush()?;
    Ok(written)
}

fn write(
    store: &Store,
    batch: &mut Vec<(ChannelKey, crate::domain::Sample, ChannelCursor)>,
) -> crate::store::Result<usize> {
    let items: Vec<Ingest<'_>> = batch.iter().map(|(key, sample, cursor)| Ingest { key, sample, cursor }).collect();
    store.ingest(&items)?;
    let n = items.len();
    drop(items);
    batch.clear();
    Ok(n)
}
