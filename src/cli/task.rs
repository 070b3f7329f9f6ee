//! `cockpit task list|done`: the launch checklists from the command line.

use super::{BadInput, TaskCmd, os_user};
use crate::clock::{Clock, SystemClock};
use crate::domain::Campaign;
use crate::domain::campaign::task_order;
use crate::store::Store;

/// One task as `task list --json` gives it.
#[derive(serde::Serialize)]
struct Listed<'a> {
    campaign: &'a str,
    /// Its number in the campaign file, from 1: what `task done` takes.
    number: usize,
    #[serde(flatten)]
    task: &'a crate::domain::campaign::Task,
    overdue: bool,
}

pub fn run(cmd: &TaskCmd, store: &Store, out: &mut String) -> color_eyre::Result<()> {
    let now = SystemClock.now_ms();
    match cmd {
        TaskCmd::List { campaign, json } => {
            let campaigns = match campaign {
                Some(id) => vec![store.campaign(id)?.ok_or_else(|| BadInput(format!("no campaign '{id}'")))?],
                None => store.campaigns()?,
            };
            list(&campaigns, now, *json, out)?;
        }
        TaskCmd::Done { campaign, task, reopen } => {
            let mut c = store.campaign(campaign)?.ok_or_else(|| BadInput(format!("no campaign '{campaign}'")))?;
            let i = c.find_task(&task.join(" ")).map_err(BadInput)?;
            let by = os_user();
            if !c.set_task_done(i, !*reopen, &by, now) {
                let state = if *reopen { "open" } else { "done" };
                say!(out, "'{}' is {state} already", c.tasks[i].title);
                return Ok(());
            }
            store.put_campaign(&c)?;
            let mut note = crate::domain::note::task_note(&c.id, &c.tasks[i], by, now);
            note.id = store.next_id()?;
            store.put_note(&note)?;
            say!(out, "{} on {campaign}", note.text);
        }
    }
    Ok(())
}

/// The tasks of `campaigns`, each campaign's overdue first, then by due time.
pub fn list(campaigns: &[Campaign], now: i64, json: bool, out: &mut String) -> color_eyre::Result<()> {
    let listed: Vec<Listed<'_>> = campaigns
        .iter()
        .flat_map(|c| {
            task_order(&c.tasks, now).into_iter().map(move |i| Listed {
                campaign: &c.id,
                number: i + 1,
                task: &c.tasks[i],
                overdue: c.tasks[i].overdue(now),
            })
        })
        .collect();
    if json {
        say!(out, "{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    if listed.is_empty() {
        say!(out, "no tasks ([[tasks]] in a campaign file: title, owner, due)");
        return Ok(());
    }
    for l in &listed {
        let t = l.task;
        let state = if t.done {
            format!("done {}", t.done_at.map(|d| d.format("%m-%d %H:%M").to_string()).unwrap_or_default())
        } else if l.overdue {
            "OVERDUE".to_string()
        } else {
            "open".to_string()
        };
        let by = t.done_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
        let channel = t.channel.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
        say!(
            out,
            "{:<14} {:>2}  {:<14} due {}  {}{channel}  ({}{by})",
            l.campaign,
            l.number,
            state,
            t.due.format("%Y-%m-%d %H:%M %:z"),
            t.title,
            t.owner
        );
    }
    Ok(())
}
