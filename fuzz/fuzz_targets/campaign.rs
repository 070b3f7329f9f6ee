//! The campaign file parser never panics on any text, TOML or JSON, and what it accepts
//! round-trips through both forms.
#![no_main]
use campaign_cockpit::domain::Campaign;
use campaign_cockpit::domain::campaign::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [Format::Toml, Format::Json] {
        if let Ok(c) = Campaign::parse(text, format, "fuzz") {
            let again = Campaign::parse(&c.to_toml(), Format::Toml, "fuzz.toml").expect("an accepted campaign exports to TOML it accepts");
            assert_eq!(again, c);
            let again = Campaign::parse(&c.to_json(), Format::Json, "fuzz.json").expect("and to JSON");
            assert_eq!(again, c);
        }
    }
});
