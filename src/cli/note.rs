//! `cockpit note add|list`: notes on a campaign's timeline from the command line.

use super::{BadInput, NoteCmd, os_user, report::parse_time};
use crate::clock::{Clock, SystemClock};
use crate::store::Store;

pub fn run(cmd: &NoteCmd, store: &Store, out: &mut String) -> color_eyre::Result<()> {
    use crate::domain::{Note, NoteKind};
    match cmd {
        NoteCmd::Add { campaign, channel, at, text } => {
            let c = store.campaign(campaign)?.ok_or_else(|| BadInput(format!("no campaign '{campaign}'")))?;
            if let Some(ch) = channel
                && c.channel(ch).is_none()
            {
                return Err(BadInput(format!("campaign '{campaign}' has no channel '{ch}'")).into());
            }
            let at_ms = match at {
                Some(t) => parse_time(t, &c, "--at")?,
                None => SystemClock.now_ms(),
            };
            let note = Note {
                id: store.next_id()?,
                at_ms,
                campaign: campaign.clone(),
                channel: channel.clone(),
                kind: NoteKind::Note,
                text: text.join(" "),
                by: os_user(),
                rule: None,
                fired: None,
            };
            store.put_note(&note)?;
            say!(out, "noted on {campaign}");
        }
        NoteCmd::List { campaign, json } => {
            let notes = store.notes(campaign.as_deref())?;
            if *json {
                say!(out, "{}", serde_json::to_string_pretty(&notes)?);
            } else if notes.is_empty() {
                say!(out, "no notes");
            } else {
                for n in &notes {
                    let when = chrono::DateTime::from_timestamp_millis(n.at_ms)
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default();
                    let on = n.channel.as_deref().map(|c| format!("/{c}")).unwrap_or_default();
                    say!(out, "{when} UTC  {:<6} {}{on}  {}  ({})", n.kind.label(), n.campaign, n.text, n.by);
                }
            }
        }
    }
    Ok(())
}
