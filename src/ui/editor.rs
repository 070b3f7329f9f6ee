//! A campaign opened in `$VISUAL` / `$EDITOR` as TOML, checked when saved (`cockpit campaign
//! edit`, `e` in the cockpit). On an error the file is opened again with the error as a comment
//! on top (as `kubectl edit` does); an editor that fails, or a file saved unchanged, changes
//! nothing.

use crate::domain::Campaign;
use crate::domain::campaign::{CampaignError, Format};
use color_eyre::eyre::{WrapErr, eyre};
use std::path::Path;

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
        "# Editing campaign {id}: save and quit to apply; quit unsaved to change nothing.\n# Lines starting with # are comments.\n"
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
    let (program, args) = editor.split_first().ok_or_else(|| eyre!("no editor: set $VISUAL or $EDITOR"))?;
    loop {
        let status = std::process::Command::new(program)
            .args(args)
            .arg(&path)
            .status()
            .map_err(|e| eyre!("cannot run the editor '{program}': {e} (set $VISUAL or $EDITOR)"))?;
        if !status.success() {
            return Ok(Edited::Unchanged(format!("the editor failed ({status}): nothing changed")));
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
    fn an_error_names_the_line_of_the_file_that_shows_it() {
        let text =
            include_str!("../../fixtures/q2-webinar.toml").replace("total_budget = 90000.0", "total_budget = -1.0");
        let w = "q2-webinar";
        let lines_above = header(w, Some("")).lines().count();
        let e = check(&text, w, "w.toml", lines_above).unwrap_err();
        let shown = header(w, Some(&e)) + &text;
        let line: usize = e.strip_prefix("line ").unwrap().split(':').next().unwrap().parse().unwrap();
        assert!(shown.lines().nth(line - 1).unwrap().starts_with("total_budget = -1.0"), "{e}");
        assert_eq!(body(&shown), text);
        let other = text.replace("id = \"q2-webinar\"", "id = \"v\"").replace("-1.0", "1.0");
        assert_eq!(
            check(&other, w, "w.toml", 0).unwrap_err(),
            "id: this is campaign 'q2-webinar' (to make another one, use cockpit campaign new)"
        );
    }
}
