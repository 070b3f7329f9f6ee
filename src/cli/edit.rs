//! `cockpit campaign new` and `campaign edit`: a commented starting campaign from a template,
//! and a campaign opened in `$VISUAL` / `$EDITOR` as TOML, checked when saved. On an error the
//! file is opened again with the error as a comment on top (as `kubectl edit` does); an editor
//! that fails, or a file saved unchanged, changes nothing.

use crate::domain::Campaign;
use crate::domain::campaign::{CampaignError, Format};
use color_eyre::eyre::WrapErr;
use std::path::Path;

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

/// How an edit ended.
#[derive(Debug, PartialEq)]
pub enum Edited {
    /// Saved, and it checks out.
    Changed(Box<Campaign>),
    /// Nothing changed, and why.
    Unchanged(String),
}

/// The editor the user asked for: `$VISUAL`, else `$EDITOR`, else `vi`, with its arguments
/// (`code --wait`).
pub fn editor() -> Vec<String> {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The lines above the campaign in the file being edited.
fn header(id: &str, error: Option<&str>) -> String {
    let mut h = format!(
        "# Editing campaign {id}. Save and quit to apply; quit without saving to change nothing.\n# Lines starting with # are comments.\n"
    );
    if let Some(e) = error {
        h.push_str(&format!("# error: {e}\n"));
    }
    h
}

/// The campaign text of an edited file: without the header this module wrote.
fn body(saved: &str) -> &str {
    let mut rest = saved;
    for prefix in ["# Editing campaign ", "# Lines starting with # ", "# error: "] {
        if rest.starts_with(prefix) {
            rest = rest.split_once('\n').map_or("", |(_, r)| r);
        }
    }
    rest
}

/// Reads an edited campaign: an error names the line as the file being edited shows it once
/// the error is on top (`lines_above` lines above the campaign).
fn check(text: &str, id: &str, file: &str, lines_above: usize) -> Result<Campaign, String> {
    let c = Campaign::parse(text, Format::Toml, file).map_err(|e| match e {
        CampaignError::Syntax { line, col, msg, .. } => format!("line {}:{col}: {msg}", line + lines_above),
        CampaignError::Invalid { line, field, msg, .. } => format!("line {}: {field}: {msg}", line + lines_above),
    })?;
    if c.id != id {
        return Err(format!("id: this is campaign '{id}' (to make another one, use cockpit campaign new)"));
    }
    Ok(c)
}

/// Opens `campaign` in `editor` until it is saved valid, saved unchanged, or the editor fails.
/// The file is private to the user (mode 0600) and removed afterwards.
pub fn edit(campaign: &Campaign, editor: &[String]) -> color_eyre::Result<Edited> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let id = &campaign.id;
    let path = std::env::temp_dir().join(format!("cockpit-edit-{id}-{}.toml", std::process::id()));
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .wrap_err_with(|| format!("creating {}", path.display()))?;
    let _remove = Remove(&path);
    let mut written = header(id, None) + &campaign.to_toml();
    f.write_all(written.as_bytes()).wrap_err_with(|| format!("writing {}", path.display()))?;
    drop(f);
    let (program, args) = editor.split_first().ok_or_else(|| super::BadInput("no editor: set $EDITOR".into()))?;
    loop {
        let status =
            std::process::Command::new(program).args(args).arg(&path).status().map_err(|e| {
                super::BadInput(format!("cannot run the editor '{program}': {e} (set $VISUAL or $EDITOR)"))
            })?;
        if !status.success() {
            return Ok(Edited::Unchanged(format!("the editor exited with {status}: nothing changed")));
        }
        let saved = std::fs::read_to_string(&path).wrap_err_with(|| format!("reading {}", path.display()))?;
        if saved == written {
            return Ok(Edited::Unchanged("saved unchanged: nothing changed".into()));
        }
        let text = body(&saved);
        let lines_above = header(id, Some("")).lines().count();
        match check(text, id, &format!("{id}.toml"), lines_above) {
            Ok(c) if c == *campaign => return Ok(Edited::Unchanged("no change to the campaign".into())),
            Ok(c) => return Ok(Edited::Changed(Box::new(c))),
            Err(e) => {
                written = header(id, Some(&e)) + text;
                std::fs::write(&path, &written).wrap_err_with(|| format!("writing {}", path.display()))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn an_error_names_the_line_of_the_file_that_shows_it() {
        let offset = chrono::FixedOffset::east_opt(0).unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let text =
            template("webinar", "w", today, offset).unwrap().replace("total_budget = 30000.0", "total_budget = -1.0");
        let lines_above = header("w", Some("")).lines().count();
        let e = check(&text, "w", "w.toml", lines_above).unwrap_err();
        let shown = header("w", Some(&e)) + &text;
        let line: usize = e.strip_prefix("line ").unwrap().split(':').next().unwrap().parse().unwrap();
        assert!(shown.lines().nth(line - 1).unwrap().starts_with("total_budget = -1.0"), "{e}");
        assert_eq!(body(&shown), text);
        let other = text.replace("id = \"w\"", "id = \"v\"").replace("-1.0", "1.0");
        assert_eq!(
            check(&other, "w", "w.toml", 0).unwrap_err(),
            "id: this is campaign 'w' (to make another one, use cockpit campaign new)"
        );
    }
}
