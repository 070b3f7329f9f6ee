//! A simulated past: runs the network from its campaigns' start and stores what a cockpit
//! polling every hour would have stored (hourly rollups, cursors with campaign-to-date and
//! segment totals, and raw samples for the last two days). `cockpit demo` starts with it, so
//! the analysis views and the review report have days of history to work on.

use super::model::Network;
use crate::domain::{Campaign, ChannelCursor, Counters};
use crate::engine::RAW_RETENTION_MS;
use crate::store::{ChannelKey, Ingest, Store};

const HOUR: i64 = 3_600_000;

/// Records `net` hour by hour from the earliest campaign start up to `to_ms` (campaign time)
/// into `store`, then leaves the network at `to_ms`. Returns the number of samples written.
/// Each hour's reading is stamped a millisecond before the hour ends, so that it counts in the
/// hour it covers.
pub fn record(store: &Store, net: &mut Network, campaigns: &[Campaign], to_ms: i64) -> crate::store::Result<usize> {
    let Some(first) = campaigns.iter().map(Campaign::start_ms).min() else { return Ok(0) };
    let mut t = first.div_euclid(HOUR) * HOUR;
    net.advance_coarse(t);
    let mut cursors: Vec<(ChannelKey, String, ChannelCursor)> = Vec::new();
    for c in campaigns {
        for ch in &c.channels {
            let key = ChannelKey::new(&c.id, &ch.id);
            cursors.push((key, ch.source_id().to_string(), ChannelCursor::default()));
        }
    }
    let mut written = 0;
    while t + HOUR <= to_ms {
        t += HOUR;
        net.advance_coarse(t);
        let at = t - 1;
        let mut batch = Vec::new();
        for (key, source_id, cursor) in &mut cursors {
            let campaign = campaigns.iter().find(|c| c.id == key.campaign).expect("a channel of these campaigns");
            if at < campaign.start_ms() || at - HOUR >= campaign.end_ms() {
                continue;
            }
            let Some(sim) = net.channels.iter().find(|s| s.campaign == key.campaign && s.id == *source_id) else {
                continue;
            };
            let stats = sim.stats();
            let Some(sample) = cursor.advance(at, stats.totals, &stats.variants) else { continue };
            cursor.advance_segments(&stats.segments);
            let day_start = campaign.day_start_ms(at);
            if cursor.day_start != day_start {
                cursor.day_start = day_start;
                cursor.today = Counters::default();
            }
            if !sample.first {
                cursor.today.add(&sample.delta);
            }
            batch.push((key.clone(), sample, cursor.clone()));
        }
        let items: Vec<Ingest<'_>> = batch.iter().map(|(key, sample, cursor)| Ingest { key, sample, cursor }).collect();
        store.ingest(&items)?;
        written += items.len();
    }
    for (key, _, _) in &cursors {
        store.prune_samples(key, to_ms - RAW_RETENTION_MS)?;
    }
    net.advance_to(to_ms);
    store.flush()?;
    Ok(written)
}
