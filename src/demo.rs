//! The demo set compiled into the binary, so `cockpit demo` and `cockpit sim` work from any
//! directory: the fixture campaigns and the demo scenario.

use crate::domain::Campaign;
use crate::domain::campaign::Format;
use crate::sim::scenario::Scenario;

pub const CAMPAIGNS: [(&str, &str); 3] = [
    ("fixtures/q2-webinar.toml", include_str!("../fixtures/q2-webinar.toml")),
    ("fixtures/618-promo.toml", include_str!("../fixtures/618-promo.toml")),
    ("fixtures/app-launch.toml", include_str!("../fixtures/app-launch.toml")),
];

/// Ended campaigns the demo records a full run of, to compare with and review.
pub const PAST_CAMPAIGNS: [(&str, &str); 1] =
    [("fixtures/618-promo-2025.toml", include_str!("../fixtures/618-promo-2025.toml"))];

pub const SCENARIO: (&str, &str) = ("fixtures/scenarios/demo.toml", include_str!("../fixtures/scenarios/demo.toml"));

/// The address the fixture campaigns point at (`cockpit sim`'s default).
pub const DEFAULT_SIM_ORIGIN: &str = "http://127.0.0.1:7878";

pub fn campaigns() -> Vec<Campaign> {
    parse(&CAMPAIGNS)
}

/// Last year's 618 festival, for comparisons by day since launch.
pub fn past_campaigns() -> Vec<Campaign> {
    parse(&PAST_CAMPAIGNS)
}

fn parse(files: &[(&str, &str)]) -> Vec<Campaign> {
    files
        .iter()
        .map(|(file, text)| Campaign::parse(text, Format::Toml, file).expect("the built-in fixtures are valid"))
        .collect()
}

pub fn scenario() -> Scenario {
    Scenario::parse(SCENARIO.1, SCENARIO.0).expect("the built-in scenario is valid")
}

/// Points every URL of `campaigns` that targets the default simulator address at `origin`.
pub fn rebase(campaigns: &mut [Campaign], origin: &str) {
    for c in campaigns {
        for ch in &mut c.channels {
            if let Some(rest) = ch.source.strip_prefix(DEFAULT_SIM_ORIGIN) {
                ch.source = format!("{origin}{rest}");
            }
            if let Some(rest) = ch.control.as_deref().and_then(|u| u.strip_prefix(DEFAULT_SIM_ORIGIN)) {
                ch.control = Some(format!("{origin}{rest}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_and_scenario_agree() {
        let campaigns = super::campaigns();
        let sc = super::scenario();
        let (channels, incidents) = sc.build(&campaigns, sc.start.unwrap().timestamp_millis()).unwrap();
        assert_eq!(channels.len(), campaigns.iter().map(|c| c.channels.len()).sum::<usize>());
        assert_eq!(incidents.len(), 3);
    }
}
