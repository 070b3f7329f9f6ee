//! The README shows what the program does: its key table is the one binding table, and its
//! screenshot is the overview's screen snapshot. `UPDATE_README=1 cargo test --test readme`
//! writes both into the README.

use std::path::Path;

const KEYS_START: &str = "<!-- keys: generated from ui::keys::BINDINGS -->\n";
const KEYS_END: &str = "<!-- /keys -->";

fn readme_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

/// The README with `want` between the key table's markers.
fn with_keys(readme: &str, want: &str) -> String {
    let a = readme.find(KEYS_START).expect("the README marks where its key table goes") + KEYS_START.len();
    let b = a + readme[a..].find(KEYS_END).expect("the key table's end marker");
    format!("{}{want}{}", &readme[..a], &readme[b..])
}

/// The screen of `tests/snapshots/ui__overview_at_80x24.snap`, without insta's header.
fn overview_screen() -> String {
    let snap = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/ui__overview_at_80x24.snap"),
    )
    .unwrap();
    snap.splitn(3, "---\n").nth(2).expect("an insta snapshot has a header").trim_end_matches('\n').to_string()
}

/// The README with `screen` as its first `text` block.
fn with_screen(readme: &str, screen: &str) -> String {
    let a = readme.find("```text\n").expect("the README shows a screen") + "```text\n".len();
    let b = a + readme[a..].find("\n```").unwrap();
    format!("{}{screen}{}", &readme[..a], &readme[b..])
}

#[test]
fn the_readme_keys_and_screenshot_are_the_programs() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let want = with_screen(&with_keys(&readme, &campaign_cockpit::ui::keys::markdown_table()), &overview_screen());
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(readme_path(), &want).unwrap();
        return;
    }
    assert!(
        readme == want,
        "README.md's key table or screenshot differs from the program's; run UPDATE_README=1 cargo test --test readme"
    );
    // The screenshot is a screen, not a snapshot file.
    assert!(!readme.contains("expression: \"render_to_string"));
}

#[test]
fn every_binding_is_in_the_readme_once() {
    use campaign_cockpit::ui::keys::{BINDINGS, markdown_binding, markdown_table};
    let table = markdown_table();
    for b in BINDINGS {
        let shown = markdown_binding(b);
        assert_eq!(table.matches(&shown).count(), 1, "{shown}");
        let row = table.lines().find(|l| l.starts_with(&format!("| {} |", b.scope.label()))).unwrap();
        assert!(row.contains(&shown), "{shown} is in the row of {}", b.scope.label());
    }
}
