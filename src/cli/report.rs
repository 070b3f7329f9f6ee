//! `cockpit report`: the review (复盘) of a campaign over its run or a period, as Markdown,
//! HTML, CSV or JSON.

use super::BadInput;
use crate::domain::Campaign;
use crate::store::Store;
use color_eyre::eyre::WrapErr;
use std::path::Path;

/// Writes the review of campaign `id` to `output`, or prints it.
pub fn run(
    store: &Store,
    id: &str,
    format: crate::report::ReportFormat,
    from: Option<&str>,
    to: Option<&str>,
    output: Option<&Path>,
    out: &mut String,
) -> color_eyre::Result<()> {
    let all = store.campaigns()?;
    let c = all.iter().find(|c| c.id == id).ok_or_else(|| {
        BadInput(format!("no campaign '{id}' in {} (see `cockpit campaign list`)", store.path().display()))
    })?;
    let from = from.map(|t| parse_time(t, c, "--from")).transpose()?;
    let to = to.map(|t| parse_time(t, c, "--to")).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(BadInput("--from must be before --to".into()).into());
    }
    let review = crate::report::build(store, c, &all, from, to)?;
    let text = crate::report::render(&review, format);
    match output {
        Some(path) => {
            std::fs::write(path, text).wrap_err_with(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => out.push_str(&text),
    }
    Ok(())
}

/// RFC 3339, or a date meaning midnight in the campaign's time zone.
pub fn parse_time(text: &str, c: &Campaign, what: &str) -> color_eyre::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| BadInput(format!("{what} '{text}': write an RFC 3339 time or a date like 2026-06-08")))?;
    let local = date.and_hms_opt(0, 0, 0).expect("midnight exists").and_local_timezone(*c.start.offset());
    Ok(local.single().map_or(0, |t| t.timestamp_millis()))
}
