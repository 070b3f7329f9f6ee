//! The stats parser never panics, and what it accepts holds only valid counters.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = campaign_cockpit::poll::wire::parse_stats(data) {
        for ch in &doc.channels {
            assert!(ch.totals.spend.is_finite() && ch.totals.spend >= 0.0);
            assert!(ch.totals.revenue.is_finite() && ch.totals.revenue >= 0.0);
        }
    }
});
