//! Applying a declared mapping (see `domain::source`) to an answer: JMESPath expressions pick
//! the rows and, per row, the id, the period and each counter. Numbers may be strings; an
//! expression that finds nothing counts 0. What does not fit is an error naming the field, its
//! expression, the page and the row, and the value found.

use super::json::{self, Expr, Json};
use crate::domain::Counters;
use crate::domain::source::{COUNTERS, Mapping, Mode, PeriodLength, Resolved};
use crate::domain::time::Zone;
use crate::domain::time::{DAY_MS, HOUR_MS};
use chrono::{NaiveDate, NaiveDateTime};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One row of an answer, mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    /// The period's start (unix ms), in `rows` mode.
    pub period: Option<i64>,
    pub counters: Counters,
    /// The counters whose expression found nothing in the row (bit `i` for `COUNTERS[i]`): a
    /// counter found in no row of an answer is a mapping that reads nothing, not a zero.
    pub absent: u8,
}

/// A mapping with its expressions compiled.
pub struct Compiled {
    pub mode: Mode,
    pub period_length: PeriodLength,
    pub restate_days: u32,
    rows: Expr,
    id: Expr,
    period: Option<Expr>,
    /// How the period is written, when it is not a form `parse_period` reads by itself.
    pub date_format: Option<String>,
    counters: Vec<(&'static str, Expr, f64)>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("mode", &self.mode).field("rows", &self.rows.text).finish_non_exhaustive()
    }
}

impl Compiled {
    pub fn new(m: &Mapping) -> Result<Compiled, String> {
        let need = |name: &str, e: &Option<String>| e.clone().ok_or_else(|| format!("mapping.{name} is needed"));
        let mut counters = Vec::new();
        for (name, f) in m.counters() {
            if let Some(f) = f {
                counters.push((name, Expr::new(name, f.expr())?, f.scale()));
            }
        }
        Ok(Compiled {
            mode: m.mode.unwrap_or_default(),
            period_length: m.period_length.unwrap_or_default(),
            restate_days: m.restate_days.unwrap_or(7).max(1),
            rows: Expr::new("rows", &need("rows", &m.rows)?)?,
            id: Expr::new("id", &need("id", &m.id)?)?,
            period: m.period.as_deref().map(|p| Expr::new("period", p)).transpose()?,
            date_format: m.date_format.clone(),
            counters,
        })
    }

    /// The rows of one page (numbered from 1), mapped. `tz` places dates without a zone.
    pub fn rows(&self, page: &Json, page_no: usize, tz: Zone) -> Result<Vec<Row>, String> {
        self.rows_of(page, page_no, tz, false)
    }

    /// The rows of a page; `slotted` when its rows were read into slots (`json::Slots`).
    fn rows_of(&self, page: &Json, page_no: usize, tz: Zone, slotted: bool) -> Result<Vec<Row>, String> {
        let at = |row: Option<usize>| match row {
            Some(r) => format!("page {page_no}, row {}", r + 1),
            None => format!("page {page_no}"),
        };
        let found = self.rows.search(page).map_err(|e| format!("mapping.rows `{}`: {e}", self.rows.text))?;
        let list = found.items().map_err(|kind| {
            format!("mapping.rows `{}`: {}: found {kind}, not a list of rows", self.rows.text, at(None))
        })?;
        let mut out = Vec::with_capacity(list.len());
        for (i, row) in list.into_iter().enumerate() {
            // Expression `k` of the row: its slot when the page was read into slots.
            let eval = |k: usize, name: &str, e: &Expr| -> Result<Json, String> {
                match row {
                    Json::Array(slots) if slotted => Ok(slots.get(k).cloned().unwrap_or(Json::Null)),
                    _ => e
                        .search(row)
                        .map(|f| f.value().into_owned())
                        .map_err(|err| format!("mapping.{name} `{}`: {}: {err}", e.text, at(Some(i)))),
                }
            };
            let id = match eval(0, "id", &self.id)? {
                Json::Str(s) => s.into_owned(),
                n @ (Json::Int(_) | Json::Uint(_) | Json::Float(_)) => n.scalar_text().unwrap_or_default(),
                other => {
                    return Err(format!(
                        "mapping.id `{}`: {}: found {}, not an id",
                        self.id.text,
                        at(Some(i)),
                        other.shown()
                    ));
                }
            };
            let period = match &self.period {
                Some(p) if self.mode == Mode::Rows => {
                    let v = eval(1, "period", p)?;
                    let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.shown());
                    Some(parse_period_as(&text, tz, self.date_format.as_deref()).ok_or_else(|| {
                        format!(
                            "mapping.period `{}`: {}: {text} is not a date or time{}",
                            p.text,
                            at(Some(i)),
                            expected_form(self.date_format.as_deref())
                        )
                    })?)
                }
                _ => None,
            };
            let first_counter = 1 + usize::from(self.period.is_some());
            let mut c = Counters::default();
            let mut absent = 0u8;
            for (k, (name, e, scale)) in self.counters.iter().enumerate() {
                let v = eval(first_counter + k, name, e)?;
                if v.is_null() {
                    absent |= counter_bit(name);
                }
                let n = number(&v).ok_or_else(|| {
                    format!("mapping.{name} `{}`: {}: {} is not a number ≥ 0", e.text, at(Some(i)), v.shown())
                })? * scale;
                c.set(name, n);
            }
            out.push(Row { id, period, counters: c, absent });
        }
        Ok(out)
    }

    /// The counters mapped, with their expressions.
    pub fn counter_exprs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.counters.iter().map(|(name, e, _)| (*name, e.text.as_str()))
    }

    /// The row selection's expression.
    pub fn rows_expr(&self) -> &str {
        &self.rows.text
    }

    /// The row's expressions in slot order: the id, the period, the counters.
    fn exprs(&self) -> Vec<&Expr> {
        let mut v = vec![&self.id];
        v.extend(self.period.iter());
        v.extend(self.counters.iter().map(|(_, e, _)| e));
        v
    }

    /// What of a row its expressions read.
    fn row_want(&self) -> json::Want {
        let mut w = self.id.want();
        for e in self.period.iter().chain(self.counters.iter().map(|(_, e, _)| e)) {
            w = w.merge(e.want());
        }
        w
    }

    /// The start of the period `t` falls in (campaign-local days).
    pub fn period_of(&self, t: i64, tz: Zone) -> i64 {
        let len = match self.period_length {
            PeriodLength::Day => DAY_MS,
            PeriodLength::Hour => HOUR_MS,
        };
        local_start(t, tz, len)
    }
}

/// Of `names`, the one nearest to `wanted` by edit distance, when it is near enough to be a
/// likely slip (a letter or two, or a third of the name): what an error suggests instead.
pub fn nearest<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w: Vec<char> = wanted.to_lowercase().chars().collect();
    let far = (w.len() / 3).max(2);
    names
        .into_iter()
        .filter(|n| !n.is_empty() && *n != wanted)
        .map(|n| (edit_distance(&w, &n.to_lowercase().chars().collect::<Vec<_>>()), n))
        .filter(|(d, _)| *d <= far)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance between two strings of characters.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (up + 1).min(row[j] + 1).min(diag + usize::from(ca != cb));
            diag = up;
        }
    }
    row[b.len()]
}

/// The start of the local period of `len` ms (a day, an hour) that `t` falls in.
pub fn local_start(t: i64, tz: Zone, len: i64) -> i64 {
    tz.start_of(t, len)
}

/// A number, or a string holding one; nothing found counts 0. Negative or not finite is `None`.
fn number(v: &Json) -> Option<f64> {
    let n = match v {
        Json::Null => 0.0,
        Json::Str(s) => {
            let t = s.trim();
            if t.contains(',') { t.replace(',', "").parse::<f64>().ok()? } else { t.parse::<f64>().ok()? }
        }
        n => n.as_f64()?,
    };
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// A period written as `format` (strftime; a date, or a date and time) in `tz`, or without a
/// format as `parse_period` reads it.
pub fn parse_period_as(text: &str, tz: Zone, format: Option<&str>) -> Option<i64> {
    let Some(f) = format else { return parse_period(text, tz) };
    let t = text.trim();
    let naive = NaiveDateTime::parse_from_str(t, f)
        .or_else(|_| NaiveDate::parse_from_str(t, f).map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists")))
        .ok()?;
    tz.from_local(naive)
}

/// The words an error about an unreadable period ends with: the form expected.
pub fn expected_form(format: Option<&str>) -> String {
    match format {
        Some(f) => format!(" (date_format is '{f}')"),
        None => " (expected 2026-06-01, 2026/06/01, 20260601 or 2026-06-01 09:00:00; set mapping.date_format for another form, e.g. %d/%m/%Y)".into(),
    }
}

/// `2026-06-01`, `2026/06/01`, `20260601`, `2026-06-01 00:00:00` (in `tz`) or RFC 3339.
pub fn parse_period(text: &str, tz: Zone) -> Option<i64> {
    let t = text.trim();
    // `YYYY-MM-DD`, the platforms' usual day, without a format parser.
    if let [y, m, d] = t.splitn(3, '-').collect::<Vec<_>>()[..]
        && (y.len(), m.len(), d.len()) == (4, 2, 2)
        && let (Ok(y), Ok(m), Ok(d)) = (y.parse(), m.parse(), d.parse())
    {
        let day = NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(0, 0, 0)?;
        return tz.from_local(day);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    let naive = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y%m%d"))
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y/%m/%d"))
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y年%m月%d日"))
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y/%m/%d %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y/%m/%d %H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    tz.from_local(naive)
}

/// A source's mappings: the first channel's, and those of channels that override it.
#[derive(Debug)]
pub struct Mappings {
    pub resolved: Resolved,
    default: Compiled,
    /// Channels (by source id) whose counters are mapped differently.
    own: HashMap<String, Compiled>,
    /// A Prometheus source: each counter's query, and the mapping of its answer (an instant
    /// vector: the label naming the channel, and the value).
    pub prometheus: Vec<(&'static str, String, Compiled)>,
    /// What of a page the mappings read.
    want: json::Want,
}

impl Mappings {
    /// `channels`: each channel of the source with its resolved format (all share the
    /// request and the row selection; their counters may differ).
    pub fn new(channels: &[(String, Resolved)]) -> Result<Mappings, String> {
        let (_, first) = channels.first().ok_or("a source without channels")?;
        if first.format == "csv" {
            // Column names, not expressions: only the mode and periods are compiled.
            let m = Mapping { rows: Some("@".into()), id: Some("@".into()), period: None, ..first.mapping.clone() };
            let m = Mapping {
                impressions: None,
                clicks: None,
                leads: None,
                conversions: None,
                spend: None,
                revenue: None,
                ..m
            };
            return Ok(Mappings {
                resolved: first.clone(),
                default: Compiled::new(&m)?,
                own: HashMap::new(),
                prometheus: Vec::new(),
                want: json::Want::All,
            });
        }
        if first.format == "prometheus" {
            let label = first.mapping.id.clone().unwrap_or_else(|| "channel".into());
            let vector = |name: &str, scale: f64| {
                let mut m = Mapping {
                    rows: Some("data.result".into()),
                    id: Some(format!("metric.\"{label}\"")),
                    ..Mapping::default()
                };
                m.set_counter(name, Some(crate::domain::source::Field::Scaled { expr: "value[1]".into(), scale }));
                Compiled::new(&m)
            };
            let mut prometheus = Vec::new();
            for (name, f) in first.mapping.counters() {
                if let Some(f) = f {
                    prometheus.push((name, f.expr().to_string(), vector(name, f.scale())?));
                }
            }
            return Ok(Mappings {
                resolved: first.clone(),
                default: vector("impressions", 1.0)?,
                own: HashMap::new(),
                prometheus,
                want: json::Want::All,
            });
        }
        let default = Compiled::new(&first.mapping)?;
        let mut own = HashMap::new();
        for (id, r) in &channels[1..] {
            if r.mapping != first.mapping {
                own.insert(id.clone(), Compiled::new(&r.mapping)?);
            }
        }
        let mut row = default.row_want();
        let mut same_rows = true;
        for m in own.values() {
            same_rows &= m.rows.text == default.rows.text;
            row = row.merge(m.row_want());
        }
        let want = match json::Slots::new(&default.exprs()) {
            Some(slots) if own.is_empty() => json::Want::page(&default.rows, json::Want::Rows(Arc::new(slots))),
            _ if same_rows => json::Want::page(&default.rows, row),
            _ => json::Want::All,
        };
        Ok(Mappings { resolved: first.clone(), default, own, prometheus: Vec::new(), want })
    }

    /// Parses a page, building only what the mappings read.
    pub fn parse<'b>(&self, body: &'b [u8]) -> Result<Json<'b>, String> {
        self.want.parse(body)
    }

    pub fn mode(&self) -> Mode {
        self.default.mode
    }

    pub fn default(&self) -> &Compiled {
        &self.default
    }

    /// The rows of a page; a channel with a mapping of its own has its rows mapped by it.
    pub fn rows(&self, page: &Json, page_no: usize, tz: Zone) -> Result<Vec<Row>, String> {
        let mut rows = self.default.rows_of(page, page_no, tz, self.want.slotted())?;
        if !self.own.is_empty() {
            for (id, m) in &self.own {
                rows.retain(|r| &r.id != id);
                rows.extend(m.rows(page, page_no, tz)?.into_iter().filter(|r| &r.id == id));
            }
        }
        Ok(rows)
    }
}

/// The metric names a PromQL query reads: its identifiers outside label matchers, strings,
/// ranges and grouping clauses, less functions, aggregations and keywords.
pub fn promql_metrics(query: &str) -> Vec<String> {
    const KEYWORDS: [&str; 10] =
        ["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset"];
    // Blank out what holds no metric name: "…" and '…', {…}, […], and the lists after the
    // grouping keywords.
    let mut plain = String::with_capacity(query.len());
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut quote: Option<char> = None;
    for c in query.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '{') => depth_brace += 1,
            (None, '}') => depth_brace -= 1,
            (None, '[') => depth_bracket += 1,
            (None, ']') => depth_bracket -= 1,
            (None, c) if depth_brace == 0 && depth_bracket == 0 => {
                plain.push(c);
                continue;
            }
            _ => {}
        }
        plain.push(' ');
    }
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < plain.len() {
        let c = plain[i..].chars().next().expect("within the text");
        if c.is_ascii_digit() || c == '.' {
            // A number or a duration (`1h`, `1e3`).
            i += plain[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '.')).unwrap_or(plain.len() - i);
            continue;
        }
        if !is_ident(c) {
            i += c.len_utf8();
            continue;
        }
        let j = i + plain[i..].find(|c: char| !is_ident(c)).unwrap_or(plain.len() - i);
        let tok = &plain[i..j];
        let after = plain[j..].trim_start();
        let lower = tok.to_ascii_lowercase();
        i = j;
        if KEYWORDS.contains(&lower.as_str()) {
            // The label list of a grouping clause holds no metric.
            if after.starts_with('(') {
                let open = plain.len() - after.len();
                i = open + plain[open..].find(')').map_or(plain.len() - open, |k| k + 1);
            }
            continue;
        }
        let aggregation = after.starts_with("by") || after.starts_with("without");
        if after.starts_with('(') || aggregation || matches!(lower.as_str(), "bool" | "inf" | "nan") {
            continue;
        }
        if !out.iter().any(|o| o == tok) {
            out.push(tok.to_string());
        }
    }
    out
}

/// The bit of the counter called `name` in `Row::absent`.
pub fn counter_bit(name: &str) -> u8 {
    COUNTERS.iter().position(|c| *c == name).map_or(0, |i| 1 << i)
}

/// The counters of `mapped` (bits) that every one of `rows` lacks, when there are rows.
pub fn absent_everywhere(rows: &[Row], mapped: u8) -> u8 {
    if rows.is_empty() {
        return 0;
    }
    rows.iter().fold(mapped, |all, r| all & r.absent)
}

/// Why a row expression finds nothing, said from the rows of an answer: the first step of a
/// dotted path that no row has, what the rows have there, and the nearest of those names
/// (true when there is one: a likely slip of the keyboard).
pub fn why_nothing(rows: &[&Json<'_>], expr: &str) -> (String, bool) {
    // The dotted path the expression starts with (`metrics.clicks`, `actions[?…]` → `actions`).
    let path: Vec<&str> = expr
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .next()
        .unwrap_or("")
        .split('.')
        .take_while(|s| !s.is_empty())
        .collect();
    let mut level: Vec<&Json<'_>> = rows.to_vec();
    for (depth, step) in path.iter().enumerate() {
        let next: Vec<&Json<'_>> = level.iter().filter_map(|v| v.get(step)).collect();
        if next.is_empty() {
            let mut names: Vec<&str> = Vec::new();
            for v in &level {
                if let Json::Object(members) = v {
                    for (k, _) in members {
                        if !names.contains(&k.as_ref()) {
                            names.push(k.as_ref());
                        }
                    }
                }
            }
            let at =
                if depth == 0 { "the rows have".to_string() } else { format!("`{}` has", path[..depth].join(".")) };
            let near = nearest(step, names.iter().copied())
                .map(|n| {
                    format!(
                        "; did you mean `{}`?",
                        path[..depth].iter().copied().chain([n]).collect::<Vec<_>>().join(".")
                    )
                })
                .unwrap_or_default();
            names.truncate(20);
            let slip = !near.is_empty();
            return (format!("no row has `{step}` ({at}: {}{near})", names.join(", ")), slip);
        }
        level = next;
    }
    ("it gives nothing (null) in every row".into(), false)
}

/// Rows summed by id, and by period in `rows` mode.
pub fn group(rows: Vec<Row>) -> BTreeMap<String, BTreeMap<i64, Counters>> {
    let mut out: BTreeMap<String, BTreeMap<i64, Counters>> = BTreeMap::new();
    for r in rows {
        out.entry(r.id).or_default().entry(r.period.unwrap_or(0)).or_default().add(&r.counters);
    }
    out
}

/// Parses an answer as JSON for the expressions.
pub fn parse_page(body: &[u8]) -> Result<Json<'_>, String> {
    json::parse(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::source::resolve;

    fn tz() -> Zone {
        Zone::Fixed(chrono::FixedOffset::east_opt(8 * 3600).unwrap())
    }

    #[test]
    fn meta_rows_take_one_action_type_and_coerce_strings() {
        let r = resolve(Some("meta-insights"), None, None).unwrap().unwrap();
        let m = Compiled::new(&r.mapping).unwrap();
        let page = parse_page(
            br#"{"data":[{"campaign_id":"238","date_start":"2026-06-01","date_stop":"2026-06-01",
            "impressions":"361324","clicks":"5120","spend":"5339.50",
            "actions":[{"action_type":"lead","value":"12"},{"action_type":"onsite_conversion.lead_grouped","value":"12"},
                       {"action_type":"purchase","value":"3"},{"action_type":"omni_purchase","value":"3"}],
            "action_values":[{"action_type":"purchase","value":"890.50"}]}],"paging":{"cursors":{"after":"x"}}}"#,
        )
        .unwrap();
        let rows = m.rows(&page, 1, tz()).unwrap();
        assert_eq!(rows.len(), 1);
        let c = rows[0].counters;
        assert_eq!((c.impressions, c.clicks, c.leads, c.conversions), (361_324, 5_120, 12, 3));
        assert_eq!((c.spend, c.revenue), (5339.5, 890.5));
        assert_eq!(rows[0].period, parse_period("2026-06-01", tz()));
        assert_eq!(
            rows[0].period,
            Some(chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00+08:00").unwrap().timestamp_millis())
        );
    }

    #[test]
    fn google_costs_are_micros_and_batches_flatten() {
        let r = resolve(Some("google-ads"), None, None).unwrap().unwrap();
        let m = Compiled::new(&r.mapping).unwrap();
        let page = parse_page(
            br#"[{"results":[{"campaign":{"id":"17"},"segments":{"date":"2026-06-01"},"metrics":{"impressions":"10922","clicks":"311","costMicros":"1712480000","conversions":24.0,"conversionsValue":8569.77}}]},
                 {"results":[{"campaign":{"id":"17"},"segments":{"date":"2026-06-02"},"metrics":{"impressions":"5","clicks":"1","costMicros":"500000"}}]}]"#,
        )
        .unwrap();
        let rows = m.rows(&page, 1, tz()).unwrap();
        assert_eq!(rows.len(), 2);
        assert!((rows[0].counters.spend - 1712.48).abs() < 1e-9);
        assert_eq!(rows[0].counters.conversions, 24);
        assert_eq!(rows[1].counters.conversions, 0, "a metric left out counts nothing");
        let grouped = group(rows);
        assert_eq!(grouped["17"].len(), 2);
    }

    #[test]
    fn what_does_not_fit_names_the_expression_page_row_and_value() {
        let r = resolve(Some("meta-insights"), None, None).unwrap().unwrap();
        let m = Compiled::new(&r.mapping).unwrap();
        let page = parse_page(
            br#"{"data":[{"campaign_id":"1","date_start":"2026-06-01","clicks":"3"},
            {"campaign_id":"2","date_start":"2026-06-01","clicks":"12x"}]}"#,
        )
        .unwrap();
        let e = m.rows(&page, 3, tz()).unwrap_err();
        assert_eq!(e, "mapping.clicks `clicks`: page 3, row 2: \"12x\" is not a number ≥ 0");
        let page = parse_page(br#"{"data":{"campaign_id":"1"}}"#).unwrap();
        let e = m.rows(&page, 1, tz()).unwrap_err();
        assert!(e.contains("found an object, not a list of rows"), "{e}");
        let page = parse_page(br#"{"data":[{"campaign_id":"1","date_start":"June 1st"}]}"#).unwrap();
        let e = m.rows(&page, 1, tz()).unwrap_err();
        assert!(e.starts_with("mapping.period `date_start`: page 1, row 1: June 1st"), "{e}");
    }

    /// Rows read straight into slots map as rows read from the whole page do, for every preset
    /// whose expressions allow it.
    #[test]
    fn rows_read_into_slots_map_as_the_whole_page() {
        let page = br#"{"data":[{"campaign_id":"238","date_start":"2026-06-01","impressions":"10","clicks":7,
            "spend":"1,234.5","actions":[{"action_type":"purchase"},{"action_type":"lead","value":"2"},{"action_type":"purchase","value":"3"}],
            "action_values":"odd","extra":{"a":[1]}},{"campaign_id":239,"date_start":"2026-06-02"},
            {"campaign_id":"240","date_start":"2026-06-02","actions":{"not":"a list"}}],"paging":{"next":"x"}}"#;
        let r = resolve(Some("meta-insights"), None, None).unwrap().unwrap();
        let m = Mappings::new(&[(String::new(), r)]).unwrap();
        assert!(m.want.slotted(), "Meta's mapping is read into slots");
        let slotted = m.rows(&m.parse(page).unwrap(), 1, tz()).unwrap();
        let whole = m.default().rows(&parse_page(page).unwrap(), 1, tz()).unwrap();
        assert_eq!(slotted, whole);
        assert_eq!(slotted[0].counters.conversions, 3, "the first purchase with a value");
        assert_eq!(slotted[1].id, "239");
        let bad = br#"{"data":[{"campaign_id":"1","date_start":"2026-06-01","clicks":"12x"}]}"#;
        assert_eq!(
            m.rows(&m.parse(bad).unwrap(), 2, tz()).unwrap_err(),
            m.default().rows(&parse_page(bad).unwrap(), 2, tz()).unwrap_err()
        );
        for preset in ["google-ads", "baidu", "ga4", "tiktok", "oceanengine"] {
            let r = resolve(Some(preset), None, None).unwrap().unwrap();
            Mappings::new(&[(String::new(), r)]).unwrap();
        }
    }

    #[test]
    fn the_metrics_a_query_reads() {
        assert_eq!(
            promql_metrics(r#"sum by (channel) (cockpit_sim_spend_total{campaign="618-promo", job=~"a|b"})"#),
            ["cockpit_sim_spend_total"]
        );
        assert_eq!(
            promql_metrics(
                "sum without (instance) (rate(ad_clicks_total[5m])) / on (channel) group_left ad:impressions:sum"
            ),
            ["ad_clicks_total", "ad:impressions:sum"]
        );
        assert_eq!(promql_metrics(r#"{__name__="x"} * 100 + ad_spend offset 1h"#), ["ad_spend"]);
        assert!(promql_metrics("vector(1)").is_empty());
    }

    #[test]
    fn slips_are_near_and_other_names_are_not() {
        assert_eq!(nearest("metric", ["campaign_id", "metrics", "date"]), Some("metrics"));
        assert_eq!(
            nearest("cockpit_sim_click_total", ["cockpit_sim_clicks_total", "up"]),
            Some("cockpit_sim_clicks_total")
        );
        assert_eq!(nearest("leads", ["campaign_id", "date"]), None);
    }

    #[test]
    fn periods_in_a_named_zone_follow_its_clock_change() {
        let la = Zone::parse("America/Los_Angeles").unwrap();
        let utc = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        // 01:00 before the change is PDT (UTC−7), after it PST (UTC−8).
        assert_eq!(parse_period("2026-10-31 01:00:00", la), Some(utc("2026-10-31T08:00:00Z")));
        assert_eq!(parse_period("2026-11-02 01:00:00", la), Some(utc("2026-11-02T09:00:00Z")));
        assert_eq!(parse_period("2026-11-02", la), Some(utc("2026-11-02T08:00:00Z")));
        let r = resolve(
            Some("csv"),
            None,
            Some(&Mapping {
                time_zone: Some("Europe/Atlantis".into()),
                id: Some("id".into()),
                period: Some("day".into()),
                clicks: Some(crate::domain::source::Field::Expr("c".into())),
                ..Default::default()
            }),
        );
        assert_eq!(r.unwrap_err().0, "mapping.time_zone");
    }

    #[test]
    fn periods_are_campaign_local() {
        let r = resolve(Some("meta-insights"), None, None).unwrap().unwrap();
        let m = Compiled::new(&r.mapping).unwrap();
        let day = parse_period("2026-06-01", tz()).unwrap();
        assert_eq!(m.period_of(day + 23 * HOUR_MS, tz()), day);
        assert_eq!(m.period_of(day + DAY_MS, tz()), day + DAY_MS);
        assert_eq!(parse_period("20260601", tz()), Some(day));
        assert_eq!(parse_period("2026-06-01 00:00:00", tz()), Some(day));
    }
}
