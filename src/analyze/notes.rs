//! Annotations: what happened when, on a campaign's timeline. People add notes (`n` in any
//! view, `cockpit note add`); alerts firing and resolving and applied actions add themselves.
//! Charts mark them and the review report lists them.

use crate::domain::{Note, NoteKind};
use serde::{Deserialize, Serialize};

/// An alert's run: when it fired and resolved (still firing at the end of the data when
/// `resolved_ms` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRun {
    pub channel: Option<String>,
    pub rule: String,
    pub fired_ms: i64,
    pub resolved_ms: Option<i64>,
    pub summary: String,
}

/// Pairs the alert notes of one campaign (oldest first) into runs.
pub fn alert_runs(notes: &[Note]) -> Vec<AlertRun> {
    let mut runs: Vec<AlertRun> = Vec::new();
    for n in notes.iter().filter(|n| n.kind == NoteKind::Alert) {
        let Some(rule) = &n.rule else { continue };
        match n.fired {
            Some(true) => runs.push(AlertRun {
                channel: n.channel.clone(),
                rule: rule.clone(),
                fired_ms: n.at_ms,
                resolved_ms: None,
                summary: n.text.clone(),
            }),
            Some(false) => {
                if let Some(r) =
                    runs.iter_mut().rev().find(|r| r.resolved_ms.is_none() && &r.rule == rule && r.channel == n.channel)
                {
                    r.resolved_ms = Some(n.at_ms);
                }
            }
            None => {}
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(at: i64, ch: &str, rule: &str, fired: bool) -> Note {
        Note {
            id: at as u64,
            at_ms: at,
            campaign: "c".into(),
            channel: Some(ch.into()),
            kind: NoteKind::Alert,
            text: format!("{rule} {fired}"),
            by: "cockpit".into(),
            rule: Some(rule.into()),
            fired: Some(fired),
        }
    }

    #[test]
    fn alert_notes_pair_into_runs() {
        let notes = vec![
            alert(1, "a", "kpi", true),
            alert(2, "b", "kpi", true),
            alert(5, "a", "kpi", false),
            alert(7, "a", "kpi", true),
            alert(9, "x", "kpi", false),
        ];
        let runs = alert_runs(&notes);
        let got: Vec<_> = runs.iter().map(|r| (r.channel.as_deref().unwrap(), r.fired_ms, r.resolved_ms)).collect();
        assert_eq!(got, [("a", 1, Some(5)), ("b", 2, None), ("a", 7, None)]);
    }
}
