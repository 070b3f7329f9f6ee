//! The replay CSV reader never panics, and the detectors give a score in [0, 1] for every row.
#![no_main]
use campaign_cockpit::alert::replay::{ReplaySettings, read_csv, replay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rows) = read_csv(text, "fuzz.csv") else { return };
    for season in [None, Some(86_400_000)] {
        let out = replay(&rows, ReplaySettings { season_ms: season, min_history: 2, ..ReplaySettings::default() });
        for line in out.lines().skip(1) {
            let score: f64 = line.rsplitn(3, ',').nth(1).unwrap().parse().unwrap();
            assert!((0.0..=1.0).contains(&score), "{line}");
        }
    }
});
