//! Applying a declared mapping (see `domain::source`) to an answer: JMESPath expressions pick
//! the rows and, per row, the id, the period and each counter. Numbers may be strings; an
//! expression that finds nothing counts 0. What does not fit is an error naming the field, its
//! expression, the page and the row, and the value found.

use crate::domain::source::{Mapping, Mode, PeriodLength, Resolved};
use crate::domain::time::{DAY_MS, HOUR_MS};
use crate::domain::{Counters, source::COUNTERS};
use chrono::{FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use jmespath::{Expression, Rcvar, Variable};
use std::collections::{BTreeMap, HashMap};

/// One row of an answer, mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    /// The period's start (unix ms), in `rows` mode.
    pub period: Option<i64>,
    pub counters: Counters,
}

/// A mapping with its expressions compiled.
pub struct Compiled {
    pub mode: Mode,
    pub period_length: PeriodLength,
    pub restate_days: u32,
    rows: Expr,
    id: Expr,
    period: Option<Expr>,
    counters: Vec<(&'static str, Expr, f64)>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("mode", &self.mode).field("rows", &self.rows.text).finish_non_exhaustive()
    }
}

/// A compiled expression. A plain path (`a.b[0]."c d"`), the most common by far, is walked
/// directly: the same answer as the interpreter's, without its cost per row.
struct Expr {
    text: String,
    compiled: Expression<'static>,
    path: Option<Vec<Step>>,
    /// `list[?key=='value'].field | [0]`: the first item whose key is the value (Meta's
    /// actions), walked directly too.
    first: Option<(Vec<Step>, String, String, String)>,
}

enum Step {
    Field(String),
    Index(usize),
}

impl Expr {
    fn search(&self, v: &Rcvar) -> Result<Rcvar, jmespath::JmespathError> {
        if let Some(path) = &self.path {
            return Ok(walk(v, path));
        }
        if let Some((list, key, value, field)) = &self.first {
            let found = match &*walk(v, list) {
                Variable::Array(items) => items
                    .iter()
                    .find(|it| matches!(&***it, Variable::Object(o) if o.get(key).is_some_and(|k| k.as_string() == Some(value))))
                    .and_then(|it| match &**it {
                        Variable::Object(o) => o.get(field).cloned(),
                        _ => None,
                    }),
                _ => None,
            };
            return Ok(found.unwrap_or_else(|| Rcvar::new(Variable::Null)));
        }
        self.compiled.search(v.clone())
    }
}

fn walk(v: &Rcvar, path: &[Step]) -> Rcvar {
    let mut cur = v.clone();
    for step in path {
        let next = match (step, &*cur) {
            (Step::Field(f), Variable::Object(o)) => o.get(f).cloned(),
            (Step::Index(i), Variable::Array(a)) => a.get(*i).cloned(),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Rcvar::new(Variable::Null),
        }
    }
    cur
}

/// `list[?key=='value'].field | [0]` taken apart, or `None`.
fn first_match(expr: &str) -> Option<(Vec<Step>, String, String, String)> {
    let (head, tail) = expr.trim().split_once("[?")?;
    let (cond, after) = tail.split_once(']')?;
    let (key, value) = cond.split_once("==")?;
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    let field = after
        .trim()
        .strip_prefix('.')?
        .strip_suffix("| [0]")
        .or_else(|| after.trim().strip_prefix('.')?.strip_suffix("|[0]"))?;
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let (key, field) = (key.trim(), field.trim());
    if !plain(key) || !plain(field) || value.contains(['\'', '\\']) {
        return None;
    }
    Some((plain_path(head)?, key.to_string(), value.to_string(), field.to_string()))
}

/// The steps of a plain path, or `None` for anything else (left to the interpreter).
fn plain_path(expr: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = expr.trim();
    loop {
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"')?;
            if r[..end].contains('\\') {
                return None;
            }
            steps.push(Step::Field(r[..end].to_string()));
            rest = &r[end + 1..];
        } else {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            steps.push(Step::Field(name.to_string()));
            rest = &rest[end..];
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            steps.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
        if rest.is_empty() {
            return Some(steps);
        }
        rest = rest.strip_prefix('.')?;
    }
}

fn compile(name: &str, expr: &str) -> Result<Expr, String> {
    let compiled = jmespath::compile(expr).map_err(|e| format!("mapping.{name} `{expr}`: {e}"))?;
    let path = plain_path(expr);
    let first = if path.is_none() { first_match(expr) } else { None };
    Ok(Expr { text: expr.to_string(), compiled, path, first })
}

impl Compiled {
    pub fn new(m: &Mapping) -> Result<Compiled, String> {
        let need = |name: &str, e: &Option<String>| e.clone().ok_or_else(|| format!("mapping.{name} is needed"));
        let mut counters = Vec::new();
        for (name, f) in m.counters() {
            if let Some(f) = f {
                counters.push((name, compile(name, f.expr())?, f.scale()));
            }
        }
        Ok(Compiled {
            mode: m.mode.unwrap_or_default(),
            period_length: m.period_length.unwrap_or_default(),
            restate_days: m.restate_days.unwrap_or(7).max(1),
            rows: compile("rows", &need("rows", &m.rows)?)?,
            id: compile("id", &need("id", &m.id)?)?,
            period: m.period.as_deref().map(|p| compile("period", p)).transpose()?,
            counters,
        })
    }

    /// The rows of one page (numbered from 1), mapped. `tz` places dates without a zone.
    pub fn rows(&self, page: &Rcvar, page_no: usize, tz: FixedOffset) -> Result<Vec<Row>, String> {
        let at = |row: Option<usize>| match row {
            Some(r) => format!("page {page_no}, row {}", r + 1),
            None => format!("page {page_no}"),
        };
        let found = self.rows.search(page).map_err(|e| format!("mapping.rows `{}`: {e}", self.rows.text))?;
        let list = match &*found {
            Variable::Null => return Ok(Vec::new()),
            Variable::Array(a) => a,
            other => {
                return Err(format!(
                    "mapping.rows `{}`: {}: found {}, not a list of rows",
                    self.rows.text,
                    at(None),
                    kind(other)
                ));
            }
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, row) in list.iter().enumerate() {
            let eval = |name: &str, e: &Expr| {
                e.search(row).map_err(|err| format!("mapping.{name} `{}`: {}: {err}", e.text, at(Some(i))))
            };
            let id = eval("id", &self.id)?;
            let id = match &*id {
                Variable::String(s) => s.clone(),
                Variable::Number(n) => n.to_string(),
                other => {
                    return Err(format!(
                        "mapping.id `{}`: {}: found {}, not an id",
                        self.id.text,
                        at(Some(i)),
                        shown(other)
                    ));
                }
            };
            let period = match &self.period {
                Some(p) if self.mode == Mode::Rows => {
                    let v = eval("period", p)?;
                    let text = v.as_string().cloned().unwrap_or_else(|| shown(&v));
                    Some(parse_period(&text, tz).ok_or_else(|| {
                        format!("mapping.period `{}`: {}: {text} is not a date or time", p.text, at(Some(i)))
                    })?)
                }
                _ => None,
            };
            let mut c = Counters::default();
            for (name, e, scale) in &self.counters {
                let text = &e.text;
                let v = e.search(row).map_err(|err| format!("mapping.{name} `{text}`: {}: {err}", at(Some(i))))?;
                let n = number(&v).ok_or_else(|| {
                    format!("mapping.{name} `{text}`: {}: {} is not a number ≥ 0", at(Some(i)), shown(&v))
                })? * scale;
                set(&mut c, name, n);
            }
            out.push(Row { id, period, counters: c });
        }
        Ok(out)
    }

    /// The start of the period `t` falls in (campaign-local days).
    pub fn period_of(&self, t: i64, tz: FixedOffset) -> i64 {
        let len = match self.period_length {
            PeriodLength::Day => DAY_MS,
            PeriodLength::Hour => HOUR_MS,
        };
        local_start(t, tz, len)
    }
}

/// The start of the campaign-local period of `len` ms (a day, an hour) that `t` falls in.
pub fn local_start(t: i64, tz: FixedOffset, len: i64) -> i64 {
    let off = i64::from(tz.local_minus_utc()) * 1000;
    (t + off).div_euclid(len) * len - off
}

/// A number, or a string holding one; nothing found counts 0. Negative or not finite is `None`.
fn number(v: &Variable) -> Option<f64> {
    let n = match v {
        Variable::Null => 0.0,
        Variable::Number(n) => n.as_f64()?,
        Variable::String(s) => s.trim().replace(',', "").parse::<f64>().ok()?,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// Sets the counter called `name` (counts rounded).
pub fn set_counter(c: &mut Counters, name: &str, v: f64) {
    set(c, name, v)
}

fn set(c: &mut Counters, name: &str, v: f64) {
    let count = v.round() as u64;
    match name {
        "impressions" => c.impressions = count,
        "clicks" => c.clicks = count,
        "leads" => c.leads = count,
        "conversions" => c.conversions = count,
        "spend" => c.spend = v,
        "revenue" => c.revenue = v,
        _ => debug_assert!(COUNTERS.contains(&name)),
    }
}

fn kind(v: &Variable) -> &'static str {
    match v {
        Variable::Null => "nothing",
        Variable::String(_) => "a string",
        Variable::Bool(_) => "a boolean",
        Variable::Number(_) => "a number",
        Variable::Array(_) => "a list",
        Variable::Object(_) => "an object",
        Variable::Expref(_) => "an expression",
    }
}

/// A value as an error shows it: short, JSON-like.
fn shown(v: &Variable) -> String {
    let s = match v {
        Variable::Null => return "nothing".into(),
        Variable::String(s) => format!("\"{s}\""),
        other => serde_json::to_string(other).unwrap_or_else(|_| kind(other).to_string()),
    };
    if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s }
}

/// `2026-06-01`, `20260601`, `2026-06-01 00:00:00` (in `tz`) or RFC 3339.
pub fn parse_period(text: &str, tz: FixedOffset) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    let naive = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y%m%d"))
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    tz.from_local_datetime(&naive).single().map(|d| d.timestamp_millis())
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
            });
        }
        let default = Compiled::new(&first.mapping)?;
        let mut own = HashMap::new();
        for (id, r) in &channels[1..] {
            if r.mapping != first.mapping {
                own.insert(id.clone(), Compiled::new(&r.mapping)?);
            }
        }
        Ok(Mappings { resolved: first.clone(), default, own, prometheus: Vec::new() })
    }

    pub fn mode(&self) -> Mode {
        self.default.mode
    }

    pub fn default(&self) -> &Compiled {
        &self.default
    }

    /// The rows of a page; a channel with a mapping of its own has its rows mapped by it.
    pub fn rows(&self, page: &Rcvar, page_no: usize, tz: FixedOffset) -> Result<Vec<Row>, String> {
        let mut rows = self.default.rows(page, page_no, tz)?;
        if !self.own.is_empty() {
            for (id, m) in &self.own {
                rows.retain(|r| &r.id != id);
                rows.extend(m.rows(page, page_no, tz)?.into_iter().filter(|r| &r.id == id));
            }
        }
        Ok(rows)
    }
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
pub fn parse_page(body: &[u8]) -> Result<Rcvar, String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8 text".to_string())?;
    Variable::from_json(text).map(Rcvar::new).map_err(|e| format!("not JSON: {e}"))
}

/// Reads a value at a path expression of a page (paging cursors, next URLs, page counts,
/// error fields): a plain path is walked, anything else compiled.
pub fn lookup(page: &Rcvar, expr: &str) -> Option<Rcvar> {
    let found = match plain_path(expr) {
        Some(path) => walk(page, &path),
        None => jmespath::compile(expr).ok()?.search(page.clone()).ok()?,
    };
    (!found.is_null()).then_some(found)
}

/// The text of a scalar (a cursor, a URL, a number).
pub fn scalar_text(v: &Variable) -> Option<String> {
    match v {
        Variable::String(s) => Some(s.clone()),
        Variable::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::source::resolve;

    fn tz() -> FixedOffset {
        FixedOffset::east_opt(8 * 3600).unwrap()
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

    #[test]
    fn plain_paths_are_walked_as_the_interpreter_would() {
        let page = parse_page(br#"{"a":{"b":[{"c d":1},{"e":"x"}]},"n":null}"#).unwrap();
        for expr in ["a.b[1].e", "a.b[0].\"c d\"", "a.x.y", "n.z", "a.b[5]", "a", "a.b[0]"] {
            let e = compile("t", expr).unwrap();
            assert!(e.path.is_some(), "{expr} is plain");
            assert_eq!(e.search(&page).unwrap(), e.compiled.search(page.clone()).unwrap(), "{expr}");
        }
        for expr in ["a.b[?e=='x'].e | [0]", "a.b[?e=='y'].e | [0]", "a.b[?e=='x'].f | [0]", "n[?e=='x'].e | [0]"] {
            let e = compile("t", expr).unwrap();
            assert!(e.first.is_some(), "{expr} is a first match");
            assert_eq!(e.search(&page).unwrap(), e.compiled.search(page.clone()).unwrap(), "{expr}");
        }
        for expr in ["[].results[]", "@", "a.b[-1]", "a.*", "a.b[?e=='x'].e"] {
            let e = compile("t", expr).unwrap();
            assert!(e.path.is_none() && e.first.is_none(), "{expr} goes to the interpreter");
        }
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
