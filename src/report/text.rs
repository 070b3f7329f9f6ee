//! Markdown (renders on common forges) and CSV (one long table: section, item, field, value),
//! both from the review's tables.

use super::Review;
use super::tables::{Tone, tables};
use crate::domain::format::percent_1;
use std::fmt::Write;

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(r: &Review) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Review: {} (`{}`)\n", md_escape(&r.name), r.campaign);
    let _ = writeln!(
        o,
        "Campaign {} → {}; period reviewed {} → {} ({} of the campaign's time gone). Currency {}.",
        r.start,
        r.end,
        r.from,
        r.to,
        percent_1(r.elapsed),
        r.currency
    );
    for t in tables(r) {
        let _ = writeln!(o, "\n## {}\n", t.title);
        if t.rows.is_empty() {
            let _ = writeln!(o, "{}", t.empty);
            continue;
        }
        let head: Vec<String> = t.columns.iter().map(|c| md_escape(&c.label)).collect();
        let align: Vec<&str> = t.columns.iter().map(|c| if c.numeric { "---:" } else { "---" }).collect();
        let _ = writeln!(o, "| {} |\n|{}|", head.join(" | "), align.join("|"));
        for row in &t.rows {
            let cells: Vec<String> = row
                .cells
                .iter()
                .map(|c| match c.tone {
                    Tone::Bad | Tone::Strong if !c.text.is_empty() => format!("**{}**", md_escape(&c.text)),
                    _ => md_escape(&c.text),
                })
                .collect();
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
    }
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Numbers as plain decimals (cents for money, fractions for rates), so a spreadsheet reads them.
fn num(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn csv(r: &Review) -> String {
    let mut o = String::from("section,item,field,value\n");
    let _ = writeln!(o, "campaign,{},name,{}", csv_field(&r.campaign), csv_field(&r.name));
    for t in tables(r) {
        for row in &t.rows {
            for (i, (c, cell)) in t.columns.iter().zip(&row.cells).enumerate() {
                let value = cell.value.map_or_else(|| cell.text.clone(), num);
                // The first column names the row: written when it is not the item itself.
                if value.is_empty() || c.field.is_empty() || (i == 0 && value == row.item) {
                    continue;
                }
                let _ = writeln!(o, "{},{},{},{}", t.key, csv_field(&row.item), csv_field(&c.field), csv_field(&value));
            }
        }
    }
    o
}
