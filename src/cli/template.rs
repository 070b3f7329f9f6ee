//! `cockpit campaign new`: a commented starting campaign from a template.

/// The starting campaigns `campaign new --template` writes.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("ecommerce", include_str!("templates/ecommerce.toml")),
    ("webinar", include_str!("templates/webinar.toml")),
    ("app-install", include_str!("templates/app-install.toml")),
];

/// A template filled in for `id`: it starts tomorrow at midnight (in `offset`) and runs 30
/// days; its tasks are due the day before it starts.
pub fn template(name: &str, id: &str, today: chrono::NaiveDate, offset: chrono::FixedOffset) -> Result<String, String> {
    let Some((_, text)) = TEMPLATES.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        return Err(format!("no template '{name}' (templates: {})", names.join(", ")));
    };
    let at = |date: chrono::NaiveDate, h, m, s| {
        date.and_hms_opt(h, m, s)
            .and_then(|d| d.and_local_timezone(offset).single())
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
            .unwrap_or_default()
    };
    let start = today + chrono::Days::new(1);
    Ok(text
        .replace("{{id}}", id)
        .replace("{{start}}", &at(start, 0, 0, 0))
        .replace("{{end}}", &at(start + chrono::Days::new(29), 23, 59, 59))
        .replace("{{due}}", &at(today, 18, 0, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Campaign;
    use crate::domain::campaign::Format;

    #[test]
    fn every_template_is_a_valid_campaign_with_tasks_and_costs() {
        let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        for (name, _) in TEMPLATES {
            let text = template(name, "spring", today, offset).unwrap();
            let c = Campaign::parse(&text, Format::Toml, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.id, "spring");
            assert_eq!(c.start.to_rfc3339(), "2026-12-02T00:00:00+08:00");
            assert_eq!(c.end.to_rfc3339(), "2026-12-31T23:59:59+08:00");
            assert!(!c.tasks.is_empty() && !c.costs.is_empty() && c.channels.len() >= 2, "{name}");
            assert!(text.lines().filter(|l| l.starts_with('#')).count() >= 2, "{name} is commented");
        }
        assert!(
            template("b2b", "x", today, offset).unwrap_err().contains("templates: ecommerce, webinar, app-install")
        );
    }
}
