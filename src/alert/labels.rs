//! How well alerts match labelled incidents: what `cockpit replay --labels` prints and the
//! detector benchmarks measure. An alarm is a run of alerting rows (a bare series) or a firing
//! episode (the live rules); it is true when it overlaps a labelled incident, widened by a
//! grace after its end (an alert may trail the data it judges). Recall counts incidents with a
//! true alarm, precision true alarms among all; the delay runs from an incident's start to its
//! first alarm (0 when one was already under way). Pure.

use super::replay::{ReplayError, data_lines, parse_time};

/// A labelled incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub from: i64,
    pub to: i64,
    pub name: String,
}

/// Reads `from,to,label` rows (an optional header, `#` comments); an error names the line.
pub fn read_labels(text: &str, file: &str) -> Result<Vec<Label>, ReplayError> {
    let err = |line: usize, msg: String| ReplayError { file: file.to_string(), line, msg };
    let mut out = Vec::new();
    for (line, l) in data_lines(text) {
        let fields: Vec<&str> = l.splitn(3, ',').map(str::trim).collect();
        if out.is_empty() && fields.first().is_some_and(|f| f.eq_ignore_ascii_case("from")) {
            continue;
        }
        if fields.len() < 2 {
            return Err(err(line, format!("{} field; expected from,to[,label]", fields.len())));
        }
        let from = parse_time(fields[0]).map_err(|m| err(line, format!("from: {m}")))?;
        let to = parse_time(fields[1]).map_err(|m| err(line, format!("to: {m}")))?;
        if to < from {
            return Err(err(line, format!("to {} is before from {}", fields[1], fields[0])));
        }
        let name = fields.get(2).map_or_else(|| format!("line {line}"), |s| s.to_string());
        out.push(Label { from, to, name });
    }
    if out.is_empty() {
        return Err(err(1, "no labels: expected from,to,label rows".into()));
    }
    Ok(out)
}

/// An alarm: from its first alerting time to its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    pub start: i64,
    pub end: i64,
}

/// Runs of alerting rows as alarms (rows in time order).
pub fn alarms_of_rows(rows: impl IntoIterator<Item = (i64, bool)>) -> Vec<Alarm> {
    let mut out: Vec<Alarm> = Vec::new();
    let mut open = false;
    for (t, alert) in rows {
        match (alert, open) {
            (true, true) => {
                if let Some(a) = out.last_mut() {
                    a.end = t;
                }
            }
            (true, false) => out.push(Alarm { start: t, end: t }),
            _ => {}
        }
        open = alert;
    }
    out
}

/// Firing episodes of the live rules as alarms: firing to resolved per rule (one still firing
/// at the end runs to `end`).
pub fn alarms_of_changes(changes: &[super::backtest::Change], end: i64) -> Vec<Alarm> {
    use super::state::AlertState;
    let mut open: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for c in changes {
        match c.state {
            AlertState::Firing => {
                open.entry(c.rule.as_str()).or_insert(c.at_ms);
            }
            AlertState::Resolved => {
                if let Some(start) = open.remove(c.rule.as_str()) {
                    out.push(Alarm { start, end: c.at_ms });
                }
            }
            AlertState::Pending => {}
        }
    }
    out.extend(open.into_values().map(|start| Alarm { start, end: end.max(start) }));
    out.sort_by_key(|a| a.start);
    out
}

/// The match of alarms against labels over a span of time.
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    /// Per label: the delay to its first alarm, if any.
    pub found: Vec<(Label, Option<i64>)>,
    pub alarms: usize,
    pub true_alarms: usize,
    /// The time the replay covered (ms).
    pub span_ms: i64,
}

/// Matches `alarms` against `labels`; an alarm that starts up to `grace_ms` after an
/// incident's end still belongs to it.
pub fn judge(alarms: &[Alarm], labels: &[Label], span_ms: i64, grace_ms: i64) -> Quality {
    let hits = |a: &Alarm, l: &Label| a.start <= l.to + grace_ms && a.end >= l.from;
    let found = labels
        .iter()
        .map(|l| {
            let delay = alarms.iter().filter(|a| hits(a, l)).map(|a| (a.start - l.from).max(0)).min();
            (l.clone(), delay)
        })
        .collect();
    let true_alarms = alarms.iter().filter(|a| labels.iter().any(|l| hits(a, l))).count();
    Quality { found, alarms: alarms.len(), true_alarms, span_ms }
}

impl Quality {
    pub fn recall(&self) -> f64 {
        if self.found.is_empty() {
            return 1.0;
        }
        self.found.iter().filter(|(_, d)| d.is_some()).count() as f64 / self.found.len() as f64
    }

    /// 1 when there was no alarm at all.
    pub fn precision(&self) -> f64 {
        if self.alarms == 0 { 1.0 } else { self.true_alarms as f64 / self.alarms as f64 }
    }

    pub fn median_delay(&self) -> Option<i64> {
        let mut d: Vec<i64> = self.found.iter().filter_map(|(_, d)| *d).collect();
        d.sort_unstable();
        d.get(d.len().saturating_sub(1) / 2).copied()
    }

    /// Alarms outside every incident, per week of the span.
    pub fn false_per_week(&self) -> f64 {
        let weeks = self.span_ms.max(1) as f64 / (7.0 * crate::domain::time::DAY_MS as f64);
        (self.alarms - self.true_alarms) as f64 / weeks
    }

    /// One line per label, then the totals.
    pub fn report(&self) -> String {
        use crate::domain::format::span;
        let mut out = String::from("label,from,to,found,delay\n");
        for (l, d) in &self.found {
            let at = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
            };
            let name = if l.name.contains([',', '"']) {
                format!("\"{}\"", l.name.replace('"', "\"\""))
            } else {
                l.name.clone()
            };
            let (found, delay) = match d {
                Some(d) => ("yes", span(*d)),
                None => ("no", String::new()),
            };
            out.push_str(&format!("{name},{},{},{found},{delay}\n", at(l.from), at(l.to)));
        }
        let found = self.found.iter().filter(|(_, d)| d.is_some()).count();
        out.push_str(&format!(
            "# recall {:.2} ({found} of {} incidents), precision {:.2} ({} of {} alarms in an incident), median delay {}, {:.1} false alarms a week over {}\n",
            self.recall(),
            self.found.len(),
            self.precision(),
            self.true_alarms,
            self.alarms,
            self.median_delay().map_or_else(|| "-".to_string(), span),
            self.false_per_week(),
            span(self.span_ms),
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn alarms_match_incidents_with_a_grace_and_count_the_rest_as_false() {
        let labels = vec![
            Label { from: 10 * H, to: 13 * H, name: "drop".into() },
            Label { from: 50 * H, to: 51 * H, name: "spike".into() },
            Label { from: 90 * H, to: 91 * H, name: "missed".into() },
        ];
        let alarms = alarms_of_rows(
            [(9, false), (11, true), (12, true), (13, false), (14, true), (51, false), (52, true), (70, true)]
                .map(|(h, a)| (h * H, a)),
        );
        assert_eq!(alarms.len(), 3, "{alarms:?}");
        assert_eq!(alarms[0], Alarm { start: 11 * H, end: 12 * H });
        let q = judge(&alarms, &labels, 7 * 24 * H, H);
        // 11h–12h in the drop (1 h late), 14h an hour after it (the grace), 52h–70h an hour
        // after the spike: all three true; the third incident is missed.
        assert_eq!(q.found[0].1, Some(H));
        assert_eq!(q.found[1].1, Some(2 * H));
        assert_eq!(q.found[2].1, None);
        assert_eq!((q.alarms, q.true_alarms), (3, 3));
        assert!((q.recall() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(q.median_delay(), Some(H));
        assert_eq!(q.false_per_week(), 0.0);
        let strict = judge(&alarms, &labels, 7 * 24 * H, 0);
        assert_eq!(strict.true_alarms, 1);
        assert_eq!(strict.false_per_week(), 2.0);
        let report = q.report();
        assert!(report.starts_with("label,from,to,found,delay\ndrop,1970-01-01T10:00:00+00:00,"), "{report}");
        assert!(report.contains("missed,") && report.contains(",no,\n"), "{report}");
        assert!(report.contains("# recall 0.67 (2 of 3 incidents), precision 1.00 (3 of 3 alarms"), "{report}");
    }

    #[test]
    fn labels_are_read_with_their_line_in_errors() {
        let l = read_labels("from,to,label\n# a note\n1780880400,1780884000,cpc spike, big\n", "l.csv").unwrap();
        assert_eq!(l, [Label { from: 1_780_880_400_000, to: 1_780_884_000_000, name: "cpc spike, big".into() }]);
        let e = read_labels("from,to\n2026-06-08 10:00:00,2026-06-08 09:00:00,x\n", "l.csv").unwrap_err();
        assert_eq!(e.to_string(), "l.csv:2: to 2026-06-08 09:00:00 is before from 2026-06-08 10:00:00");
        let e = read_labels("1780880400\n", "l.csv").unwrap_err();
        assert!(e.to_string().starts_with("l.csv:1: 1 field"), "{e}");
        let e = read_labels("yesterday,1780880400\n", "l.csv").unwrap_err();
        assert!(e.to_string().starts_with("l.csv:1: from: 'yesterday' is not a timestamp"), "{e}");
        assert!(read_labels("# nothing\n", "l.csv").unwrap_err().to_string().contains("no labels"));
    }
}
