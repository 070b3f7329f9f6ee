//! A `csv` source: a directory of report exports, read with the mapping's column names. A
//! file is read once it has stood still (its size and modification time unchanged for
//! `SETTLE`), so one still being written or copied is never read half, and the files still
//! settling are named; rows of later files replace those of earlier ones for the same channel
//! and period.
//!
//! Exports are read as the report centres write them: `.csv`, `.tsv` and `.txt` files,
//! comma-, semicolon- or tab-separated (the header line decides); UTF-8 with or without a
//! byte-order mark, UTF-16 (Excel's "Unicode text"), GBK/GB18030 (Chinese report centres and
//! Excel on a Chinese Windows), as `mapping.encoding` says or as can be told without it; title
//! lines before the header; totals rows (`Total`, `合计`, `总计`, `汇总`) and trailer lines
//! after the rows; numbers with currency signs, percent signs and thousands separators.

use super::PollError;
use super::mapping::{Row, expected_form, parse_period_as};
use super::request::MappedSource;
use crate::domain::Counters;
use crate::domain::source::{Mapping, Mode};
use encoding_rs::Encoding;
use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long a file must have stood still before it is read.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The file names read as exports.
const EXTENSIONS: [&str; 3] = ["csv", "tsv", "txt"];

/// Header lines looked for before the rows (report centres put a title and the date range
/// above them).
const MAX_PREAMBLE: usize = 20;

/// What a directory of exports gave: the rows of the settled files, and the files still being
/// written, each with how long until it is read.
#[derive(Debug, Default)]
pub struct DirRead {
    pub rows: Vec<Row>,
    pub settling: Vec<(String, Duration)>,
}

impl DirRead {
    /// "2 files still being written (b.csv, c.csv); read in 2 s", when any is.
    pub fn settling_note(&self) -> Option<String> {
        let wait = self.settling.iter().map(|(_, d)| *d).max()?;
        let names: Vec<&str> = self.settling.iter().map(|(n, _)| n.as_str()).collect();
        Some(format!(
            "{} still being written ({}); read in {} s",
            crate::domain::format::count_of(names.len(), "file"),
            names.join(", "),
            wait.as_secs().max(1)
        ))
    }
}

/// Reads every settled export of `dir`, oldest first; a file too fresh is left for the next
/// poll and named.
pub fn read_dir(dir: &Path, m: &MappedSource, now: SystemTime) -> Result<DirRead, PollError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PollError::Other(format!("directory {}: {e}", dir.display())))?;
    let mut files: Vec<(SystemTime, std::path::PathBuf)> = Vec::new();
    let mut out = DirRead::default();
    for e in entries.flatten() {
        let p = e.path();
        if !p.extension().and_then(|x| x.to_str()).is_some_and(|x| EXTENSIONS.iter().any(|k| x.eq_ignore_ascii_case(k)))
        {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let age = now.duration_since(modified).unwrap_or_default();
        if age < SETTLE {
            out.settling.push((e.file_name().to_string_lossy().into_owned(), SETTLE - age));
            continue;
        }
        files.push((modified, p));
    }
    files.sort();
    out.settling.sort();
    let mapping = &m.mappings.resolved.mapping;
    let mut rows = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(&path).map_err(|e| PollError::Other(format!("{}: {e}", path.display())))?;
        let name = path.display().to_string();
        let text = decode(&bytes, &name, mapping)?;
        rows.extend(read_file(&text, &name, mapping, m)?);
    }
    // Later files first stand over earlier ones: keep the last row of each (id, period).
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<Row> = rows.into_iter().rev().filter(|r| seen.insert((r.id.clone(), r.period))).collect();
    kept.reverse();
    out.rows = kept;
    Ok(out)
}

/// An export's text: in `mapping.encoding` when it is given; else as its byte-order mark says;
/// else UTF-8; else GB18030 (which reads GBK and GB2312) where the mapping's columns are then
/// found in it. An error names the file and the setting to give.
pub fn decode<'a>(bytes: &'a [u8], name: &str, mapping: &Mapping) -> Result<Cow<'a, str>, PollError> {
    if let Some(label) = &mapping.encoding {
        let enc = Encoding::for_label(label.trim().as_bytes())
            .ok_or_else(|| PollError::Config(format!("mapping.encoding: unknown encoding '{label}'")))?;
        // A byte-order mark of another Unicode form still wins: it cannot be mistaken.
        let (enc, skip) = Encoding::for_bom(bytes).unwrap_or((enc, 0));
        return enc.decode_without_bom_handling_and_without_replacement(&bytes[skip..]).ok_or_else(|| {
            PollError::BadData(format!("{name}: not valid {} text (mapping.encoding = \"{label}\")", enc.name()))
        });
    }
    if let Some((enc, skip)) = Encoding::for_bom(bytes) {
        return enc.decode_without_bom_handling_and_without_replacement(&bytes[skip..]).ok_or_else(|| {
            PollError::BadData(format!("{name}: not valid {} text after its byte-order mark", enc.name()))
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    let columns = column_names(mapping);
    if let Some(text) = encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes)
        && !columns.is_empty()
        && header_line(&text, &columns).is_some()
    {
        return Ok(text);
    }
    Err(PollError::BadData(format!(
        "{name}: not UTF-8 text, and its encoding cannot be told: set mapping.encoding (\"gbk\" for Chinese report \
         centres and Excel on a Chinese Windows, \"utf-16\" for Excel's Unicode text, \"windows-1252\", …)"
    )))
}

/// The column names the mapping reads: the id, the period and each counter's.
fn column_names(mapping: &Mapping) -> Vec<&str> {
    let mut cols: Vec<&str> = [&mapping.id, &mapping.period].into_iter().flatten().map(|s| s.trim()).collect();
    cols.extend(mapping.counters().into_iter().filter_map(|(_, f)| f.map(|f| f.expr().trim())));
    cols
}

/// The header: the first of the first lines that holds every column the mapping reads (its
/// index), with the separator it uses.
fn header_line(text: &str, columns: &[&str]) -> Option<(usize, u8)> {
    text.lines().take(MAX_PREAMBLE).enumerate().find_map(|(i, line)| {
        let sep = separator(line);
        let cells: Vec<String> = split_simple(line, sep);
        columns.iter().all(|c| cells.iter().any(|h| h == c)).then_some((i, sep))
    })
}

/// The separator a header line uses: a tab, a semicolon or a comma, whichever it has most of.
fn separator(line: &str) -> u8 {
    let count = |c: char| line.matches(c).count();
    [(b'\t', count('\t')), (b';', count(';')), (b',', count(','))]
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .filter(|(_, n)| *n > 0)
        .map_or(b',', |(s, _)| s)
}

/// A header line's cells, unquoted and trimmed (headers hold no separators inside quotes in
/// practice; the real parse below is the csv reader's).
fn split_simple(line: &str, sep: u8) -> Vec<String> {
    line.split(sep as char).map(|c| c.trim().trim_matches('"').trim().to_string()).collect()
}

/// The words that mark a totals row instead of a channel's.
fn is_totals(cell: &str) -> bool {
    const WORDS: [&str; 8] = ["total", "totals", "grand total", "合计", "总计", "汇总", "總計", "合計"];
    let c = cell.trim().to_lowercase();
    // "Total", "合计：", or a totals row of a level ("Total: Campaigns", "总计：账户").
    WORDS.iter().any(|w| c.strip_prefix(w).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '：'])))
}

/// A number as exports write it: currency signs, percent signs, spaces and thousands
/// separators around the digits; empty, `-` and `--` are 0. `None` when it is none.
fn export_number(raw: &str) -> Option<f64> {
    let clean: String = raw
        .chars()
        .filter(|ch| !matches!(ch, ',' | ' ' | '%' | '¥' | '￥' | '$' | '€' | '£' | '\u{a0}' | '，'))
        .collect();
    let clean = clean.trim_start_matches("CNY").trim_start_matches("RMB").trim_start_matches("USD");
    if clean.is_empty() || clean == "-" || clean == "--" {
        return Some(0.0);
    }
    clean.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

/// The rows of one export; an error names the file, line and column.
fn read_file(text: &str, name: &str, mapping: &Mapping, m: &MappedSource) -> Result<Vec<Row>, PollError> {
    let text = text.trim_start_matches('\u{feff}');
    let columns = column_names(mapping);
    // The header is the first line holding every column; a file without one is named with what
    // its first line holds, nearest to the columns asked for.
    let (skip, sep) = match header_line(text, &columns) {
        Some(h) => h,
        None => {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let sep = separator(first);
            let known = split_simple(first, sep);
            let missing: Vec<(&str, &str)> = [("id", &mapping.id), ("period", &mapping.period)]
                .into_iter()
                .filter_map(|(f, c)| c.as_deref().map(|c| (f, c.trim())))
                .chain(mapping.counters().into_iter().filter_map(|(f, c)| c.map(|c| (f, c.expr().trim()))))
                .filter(|(_, c)| !known.iter().any(|h| h == c))
                .collect();
            let (field, col) = missing.first().copied().unwrap_or(("id", ""));
            let near = super::mapping::nearest(col, known.iter().map(String::as_str));
            return Err(PollError::BadData(format!(
                "{name}: mapping.{field}: no column '{col}'{} (the file has: {})",
                near.map(|n| format!(" (did you mean '{n}'?)")).unwrap_or_default(),
                known.join(", ")
            )));
        }
    };
    let body: String = text.lines().skip(skip).collect::<Vec<_>>().join("\n");
    let mut reader = csv::ReaderBuilder::new().flexible(true).delimiter(sep).from_reader(body.as_bytes());
    let headers = reader.headers().map_err(|e| PollError::BadData(format!("{name}: {e}")))?.clone();
    let column =
        |col: &str| headers.iter().position(|h| h.trim() == col.trim()).expect("the header holds every column");
    let id_col = column(mapping.id.as_deref().unwrap_or(""));
    let period_col = match (&mapping.period, m.mappings.mode()) {
        (Some(p), Mode::Rows) => Some(column(p)),
        _ => None,
    };
    let mut counters = Vec::new();
    for (field, f) in mapping.counters() {
        if let Some(f) = f {
            counters.push((field, f.expr(), column(f.expr()), f.scale()));
        }
    }
    let needed = counters.iter().map(|(_, _, c, _)| *c).chain([id_col]).chain(period_col).max().unwrap_or(0);
    let date_format = mapping.date_format.as_deref();
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| PollError::BadData(format!("{name}: {e}")))?;
        let line = skip as u64 + rec.position().map_or(i as u64 + 2, |p| p.line());
        // Trailer lines ("Report generated …") are shorter than a row.
        if rec.len() <= needed && rec.iter().filter(|c| !c.trim().is_empty()).count() <= 1 {
            continue;
        }
        let id = rec.get(id_col).unwrap_or("").trim();
        let period_text = period_col.and_then(|c| rec.get(c)).unwrap_or("");
        // Exports end with totals and notes: rows without an id, or marked as totals in the
        // id or the day, are not a channel's.
        if id.is_empty() || is_totals(id) || is_totals(period_text) || is_totals(rec.get(0).unwrap_or("")) {
            continue;
        }
        let period = match period_col {
            Some(c) => Some(parse_period_as(period_text, m.tz, date_format).ok_or_else(|| {
                PollError::BadData(format!(
                    "{name}:{line}: {}: '{period_text}' is not a date{}",
                    headers.get(c).unwrap_or(""),
                    expected_form(date_format)
                ))
            })?),
            None => None,
        };
        let mut c = Counters::default();
        for (field, col_name, col, scale) in &counters {
            let raw = rec.get(*col).unwrap_or("").trim();
            let v = export_number(raw)
                .ok_or_else(|| PollError::BadData(format!("{name}:{line}: {col_name}: '{raw}' is not a number ≥ 0")))?;
            c.set(field, v * scale);
        }
        rows.push(Row { id: id.to_string(), period, counters: c, absent: 0 });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_exports_write_them() {
        assert_eq!(export_number("¥1,234.50"), Some(1234.5));
        assert_eq!(export_number("￥ 12,000"), Some(12_000.0));
        assert_eq!(export_number("3.2%"), Some(3.2));
        assert_eq!(export_number("--"), Some(0.0));
        assert_eq!(export_number(""), Some(0.0));
        assert_eq!(export_number("-5"), None);
        assert_eq!(export_number("1.0x"), None);
    }

    #[test]
    fn totals_rows_are_told_apart() {
        for t in ["Total", "合计", "总计：", "汇总", "Grand total", "Total: Campaigns", "总计：账户"] {
            assert!(is_totals(t), "{t}");
        }
        assert!(!is_totals("Total Recall campaign"));
    }

    #[test]
    fn the_header_is_found_below_a_title_with_its_separator() {
        let text = "报告名称：推广报告\n日期范围：2026/12/05 - 2026/12/06\n日期\t计划ID\t展现\n2026/12/05\t1\t10\n";
        assert_eq!(header_line(text, &["日期", "计划ID", "展现"]), Some((2, b'\t')));
        assert_eq!(header_line("a;b\n1;2\n", &["a", "b"]), Some((0, b';')));
        assert_eq!(header_line("a,b\n", &["a", "c"]), None);
    }

    #[test]
    fn a_column_not_in_the_file_is_named_with_the_nearest_one_it_has() {
        let mapping = Mapping {
            id: Some("计划ID".into()),
            period: Some("日期".into()),
            impressions: Some(crate::domain::source::Field::Expr("展现数".into())),
            ..Default::default()
        };
        let r = crate::domain::source::resolve(Some("csv"), None, Some(&mapping)).unwrap().unwrap();
        let m = MappedSource {
            mappings: crate::poll::mapping::Mappings::new(&[("1".into(), r)]).unwrap(),
            tz: crate::domain::time::Zone::Fixed(chrono::FixedOffset::east_opt(8 * 3600).unwrap()),
            start_ms: 0,
        };
        let text = "日期,计划ID,展示数\n2026/12/05,1,10\n合计,,10\n";
        let e = read_file(text, "a.csv", &mapping, &m).unwrap_err().to_string();
        assert!(e.contains("a.csv: mapping.impressions: no column '展现数' (did you mean '展示数'?)"), "{e}");
        let fixed = Mapping { impressions: Some(crate::domain::source::Field::Expr("展示数".into())), ..mapping };
        let rows = read_file(text, "a.csv", &fixed, &m).unwrap();
        assert_eq!(rows.len(), 1, "the totals row is not a channel's");
        assert_eq!(rows[0].counters.impressions, 10);
    }

    #[test]
    fn gbk_is_read_where_the_columns_say_so_and_named_where_nothing_does() {
        let (bytes, _, _) = encoding_rs::GBK.encode("日期,计划ID,展现\n2026/12/05,1,10\n");
        let mapping = Mapping {
            id: Some("计划ID".into()),
            period: Some("日期".into()),
            impressions: Some(crate::domain::source::Field::Expr("展现".into())),
            ..Default::default()
        };
        assert!(decode(&bytes, "a.csv", &mapping).unwrap().starts_with("日期,计划ID"));
        let other = Mapping { id: Some("Campaign".into()), ..mapping.clone() };
        let e = decode(&bytes, "a.csv", &other).unwrap_err().to_string();
        assert!(e.contains("a.csv: not UTF-8") && e.contains("mapping.encoding"), "{e}");
        let given = Mapping { encoding: Some("gbk".into()), ..other };
        assert!(decode(&bytes, "a.csv", &given).unwrap().contains("展现"));
        // UTF-16 with its mark, as Excel saves "Unicode text".
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend("a\tb\n".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&utf16, "u.txt", &mapping).unwrap(), "a\tb\n");
    }
}
