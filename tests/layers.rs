//! The module layout holds: data flows one way, sources → poll → engine → store and views. The pure cores name no I/O
//! layer and no I/O crate, and no two top-level modules import each other. Read from the
//! sources, so a new `use` that breaks the layering fails here, naming the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules and crates that do I/O (or draw): the pure cores name none of them.
const IO: &[&str] =
    &["engine", "store", "poll", "ui", "sim", "cli", "tokio", "reqwest", "sled", "ratatui", "crossterm", "axum"];

/// The pure cores: whole modules, or single files of a module whose other files do I/O.
const PURE: &[&str] = &[
    "domain",
    "alert",
    "analyze/mod.rs",
    "analyze/notes.rs",
    "optimize/recommend.rs",
    "optimize/stats.rs",
    "optimize/journal.rs",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a line without its comment (a `//` outside a string) and without string
/// literals, so that prose and messages naming a module do not count.
fn code(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_str => {
                chars.next();
            }
            '"' => in_str = !in_str,
            '/' if !in_str && chars.peek() == Some(&'/') => break,
            _ if !in_str => out.push(c),
            _ => {}
        }
    }
    out
}

/// Every path a line names: `crate::x`, `x::` at the start of a `use`, and `x::` anywhere
/// (crates are named that way too).
fn named(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_alphanumeric() || bytes[i] == '_') {
            i += 1;
        }
        if i > start {
            let word: String = bytes[start..i].iter().collect();
            let preceded_by_path = start >= 2 && bytes[start - 1] == ':' && bytes[start - 2] == ':';
            let followed_by_path = i + 1 < bytes.len() && bytes[i] == ':' && bytes[i + 1] == ':';
            if followed_by_path && !preceded_by_path {
                found.insert(word);
            } else if preceded_by_path && start >= 7 {
                let before: String = bytes[start.saturating_sub(7)..start].iter().collect();
                if before == "crate::" {
                    found.insert(word);
                }
            }
        } else {
            i += 1;
        }
    }
    found
}

/// The top-level module a file belongs to ("engine" for `src/engine/mod.rs`).
fn top_module(rel: &Path) -> String {
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

struct Source {
    rel: PathBuf,
    lines: Vec<(usize, BTreeSet<String>)>,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let lines = text.lines().enumerate().map(|(i, l)| (i + 1, named(&code(l)))).collect();
            Source { rel: p.strip_prefix(src()).unwrap().to_path_buf(), lines }
        })
        .collect()
}

fn modules() -> BTreeSet<String> {
    sources().iter().map(|s| top_module(&s.rel)).filter(|m| m != "lib" && m != "main").collect()
}

#[test]
fn the_pure_cores_name_no_io_layer_or_io_crate() {
    let mut bad = Vec::new();
    for s in sources() {
        let rel = s.rel.to_string_lossy().to_string();
        let pure = PURE.iter().any(|p| rel == *p || rel.starts_with(&format!("{p}/")));
        if !pure {
            continue;
        }
        for (line, names) in &s.lines {
            for n in names.iter().filter(|n| IO.contains(&n.as_str())) {
                bad.push(format!("src/{rel}:{line}: names `{n}`"));
            }
        }
    }
    assert!(bad.is_empty(), "pure code names an I/O layer:\n{}", bad.join("\n"));
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let modules = modules();
    // module → (module it names → first place it does)
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in sources() {
        let from = top_module(&s.rel);
        for (line, names) in &s.lines {
            for n in names.iter().filter(|n| modules.contains(*n) && **n != from) {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(n.clone())
                    .or_insert_with(|| format!("src/{}:{line}", s.rel.display()));
            }
        }
    }
    let mut cycles = Vec::new();
    for (a, targets) in &edges {
        for (b, at) in targets {
            if a < b
                && let Some(back) = edges.get(b).and_then(|t| t.get(a))
            {
                cycles.push(format!("{a} ↔ {b}: {at} names {b}, {back} names {a}"));
            }
        }
    }
    assert!(cycles.is_empty(), "modules that import each other:\n{}", cycles.join("\n"));
}

#[test]
fn the_checks_see_what_they_check() {
    // The scanner finds paths in code, and not in comments or strings.
    assert!(named(&code("use crate::engine::Command;")).contains("engine"));
    assert!(named(&code("let x = tokio::time::sleep(d);")).contains("tokio"));
    assert!(!named(&code("// crate::engine is mentioned")).contains("engine"));
    assert!(!named(&code(r#"let s = "sled::Db";"#)).contains("sled"));
    assert!(!named(&code("use crate::domain::time::HOUR_MS;")).contains("time"));
    // Every layer that exists is seen as a module.
    let m = modules();
    for want in ["alert", "analyze", "cli", "domain", "engine", "optimize", "poll", "store", "ui"] {
        assert!(m.contains(want), "{want} not found among {m:?}");
    }
}

/// The code's docs stand on their own: they cite no document that is not in the repository.
#[test]
fn the_docs_cite_no_document_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    let outside = ["DESIGN.md", "STYLE.md", "DOMAIN.md", "../shared"];
    let cited: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let rel = f.strip_prefix(root).unwrap().display().to_string();
            text.lines()
                .enumerate()
                .filter(|(_, l)| outside.iter().any(|o| l.contains(o)) && !l.contains("let outside"))
                .map(|(i, _)| format!("{rel}:{}", i + 1))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(cited.is_empty(), "docs citing a file that is not in the repository: {cited:?}");
}
