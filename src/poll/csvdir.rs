//! A `csv` source: a directory of report exports, read with the mapping's column names. A
//! file is read once it has stood still (its size and modification time unchanged for
//! `SETTLE`), so one still being written or copied is never read half; rows of later files
//! replace those of earlier ones for the same channel and period.

use super::PollError;
use super::mapping::{Row, parse_period};
use super::request::MappedSource;
use crate::domain::Counters;
use crate::domain::source::{Mapping, Mode};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long a file must have stood still before it is read.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Reads every settled `.csv` file of `dir`, oldest first; a file too fresh is left for the
/// next poll.
pub fn read_dir(dir: &Path, m: &MappedSource, now: SystemTime) -> Result<Vec<Row>, PollError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PollError::Other(format!("directory {}: {e}", dir.display())))?;
    let mut files: Vec<(SystemTime, std::path::PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if !p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if now.duration_since(modified).unwrap_or_default() < SETTLE {
            continue;
        }
        files.push((modified, p));
    }
    files.sort();
    let mapping = &m.mappings.resolved.mapping;
    let mut rows = Vec::new();
    for (_, path) in files {
        let text = std::fs::read_to_string(&path).map_err(|e| PollError::Other(format!("{}: {e}", path.display())))?;
        rows.extend(read_file(&text, &path.display().to_string(), mapping, m)?);
    }
    // Later files first stand over earlier ones: keep the last row of each (id, period).
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<Row> = rows.into_iter().rev().filter(|r| seen.insert((r.id.clone(), r.period))).collect();
    kept.reverse();
    Ok(kept)
}

/// The rows of one export; an error names the file, line and column.
fn read_file(text: &str, name: &str, mapping: &Mapping, m: &MappedSource) -> Result<Vec<Row>, PollError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| PollError::BadData(format!("{name}: {e}")))?.clone();
    let column = |field: &str, col: &str| {
        headers.iter().position(|h| h.trim() == col.trim()).ok_or_else(|| {
            let known: Vec<&str> = headers.iter().collect();
            PollError::BadData(format!(
                "{name}: mapping.{field}: no column '{col}' (the file has: {})",
                known.join(", ")
            ))
        })
    };
    let id_col = column("id", mapping.id.as_deref().unwrap_or(""))?;
    let period_col = match (&mapping.period, m.mappings.mode()) {
        (Some(p), Mode::Rows) => Some(column("period", p)?),
        _ => None,
    };
    let mut counters = Vec::new();
    for (field, f) in mapping.counters() {
        if let Some(f) = f {
            counters.push((field, f.expr(), column(field, f.expr())?, f.scale()));
        }
    }
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| PollError::BadData(format!("{name}: {e}")))?;
        let line = rec.position().map_or(i as u64 + 2, |p| p.line());
        let id = rec.get(id_col).unwrap_or("").trim();
        // Exports end with totals and notes: rows without an id are not a channel's.
        if id.is_empty() || id.eq_ignore_ascii_case("total") {
            continue;
        }
        let period = match period_col {
            Some(c) => {
                let v = rec.get(c).unwrap_or("");
                Some(parse_period(v, m.tz).ok_or_else(|| {
                    PollError::BadData(format!("{name}:{line}: {}: '{v}' is not a date", headers.get(c).unwrap_or("")))
                })?)
            }
            None => None,
        };
        let mut c = Counters::default();
        for (field, col_name, col, scale) in &counters {
            let raw = rec.get(*col).unwrap_or("").trim();
            let clean: String = raw.chars().filter(|ch| !matches!(ch, ',' | ' ' | '%')).collect();
            let v: f64 = if clean.is_empty() || clean == "-" || clean == "--" {
                0.0
            } else {
                clean.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                    PollError::BadData(format!("{name}:{line}: {col_name}: '{raw}' is not a number ≥ 0"))
                })?
            };
            c.set(field, v * scale);
        }
        rows.push(Row { id: id.to_string(), period, counters: c });
    }
    Ok(rows)
}
