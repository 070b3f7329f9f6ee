//! `cockpit campaign import|export|list|show|rm`: the plans in the database, as files.

use super::{BadInput, CampaignCmd, ExportFormat, read_campaign};
use crate::domain::Campaign;
use crate::store::Store;
use color_eyre::eyre::{WrapErr, eyre};

pub fn run(cmd: &CampaignCmd, store: &Store, out: &mut String) -> color_eyre::Result<()> {
    let get = |id: &str| -> color_eyre::Result<Campaign> {
        store.campaign(id)?.ok_or_else(|| {
            let known: Vec<String> = store.campaigns().unwrap_or_default().into_iter().map(|c| c.id).collect();
            BadInput(format!(
                "no campaign '{id}' in {} (known: {})",
                store.path().display(),
                if known.is_empty() { "none".into() } else { known.join(", ") }
            ))
            .into()
        })
    };
    match cmd {
        CampaignCmd::Import { files } => {
            // Parse every file before writing any, so a bad file leaves the database untouched.
            let parsed = files.iter().map(|f| read_campaign(f)).collect::<color_eyre::Result<Vec<_>>>()?;
            for c in parsed {
                let verb = if store.campaign(&c.id)?.is_some() { "updated" } else { "imported" };
                store.put_campaign(&c)?;
                say!(out, "{verb} {} ({} channels): {}", c.id, c.channels.len(), c.name);
            }
        }
        CampaignCmd::Export { id, format, output } => {
            let c = get(id)?;
            let text = match format {
                ExportFormat::Toml => c.to_toml(),
                ExportFormat::Json => c.to_json() + "\n",
            };
            match output {
                Some(p) => std::fs::write(p, text).wrap_err_with(|| format!("writing {}", p.display()))?,
                None => out.push_str(&text),
            }
        }
        CampaignCmd::List { json } => {
            let all = store.campaigns()?;
            if *json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|c| {
                        serde_json::json!({ "id": c.id, "name": c.name, "start": c.start, "end": c.end,
                            "currency": c.currency, "total_budget": c.total_budget, "channels": c.channels.len() })
                    })
                    .collect();
                say!(out, "{}", serde_json::to_string_pretty(&rows)?);
            } else if all.is_empty() {
                say!(
                    out,
                    "no campaigns in {} — try `cockpit demo` or `cockpit campaign import FILE`",
                    store.path().display()
                );
            } else {
                say!(out, "{:<16} {:<12} {:<12} {:>4} {:>14}  NAME", "ID", "START", "END", "CH", "BUDGET");
                for c in all {
                    say!(
                        out,
                        "{:<16} {:<12} {:<12} {:>4} {:>10} {}  {}",
                        c.id,
                        c.start.format("%Y-%m-%d"),
                        c.end.format("%Y-%m-%d"),
                        c.channels.len(),
                        crate::domain::format::count(c.total_budget.round() as i64),
                        c.currency,
                        c.name
                    );
                }
            }
        }
        CampaignCmd::Show { id, json: true } => {
            let c = get(id)?;
            let mut channels = Vec::new();
            for ch in &c.channels {
                let t = store.cursor(&crate::domain::ChannelKey::new(&c.id, &ch.id))?.unwrap_or_default().totals;
                channels.push(super::source::Recorded::new(&ch.id, &t));
            }
            let shown = serde_json::json!({ "campaign": c, "channels": channels });
            say!(out, "{}", serde_json::to_string_pretty(&shown)?);
        }
        CampaignCmd::Show { id, json: false } => {
            let c = get(id)?;
            say!(out, "{} — {}", c.id, c.name);
            say!(out, "{} → {}, budget {} {}", c.start, c.end, c.total_budget, c.currency);
            for g in &c.goals {
                say!(out, "goal: {} {} by {}", g.metric, g.target, g.deadline.unwrap_or(c.end));
            }
            for k in &c.kpis {
                say!(out, "kpi:  {k}");
            }
            say!(
                out,
                "{:<20} {:>10} {:>10} {:>8} {:>8} {:>12} {:>12}",
                "CHANNEL",
                "IMPR",
                "CLICKS",
                "LEADS",
                "CONV",
                "SPEND",
                "REVENUE"
            );
            for ch in &c.channels {
                let t = store.cursor(&crate::domain::ChannelKey::new(&c.id, &ch.id))?.unwrap_or_default().totals;
                say!(
                    out,
                    "{:<20} {:>10} {:>10} {:>8} {:>8} {:>12.2} {:>12.2}",
                    ch.id,
                    t.impressions,
                    t.clicks,
                    t.leads,
                    t.conversions,
                    t.spend,
                    t.revenue
                );
            }
        }
        CampaignCmd::Rm { id } => {
            if !store.remove_campaign(id)? {
                return Err(eyre!(BadInput(format!("no campaign '{id}' in {}", store.path().display()))));
            }
            say!(out, "removed {id}");
        }
        CampaignCmd::Edit { id } => match crate::ui::editor::edit(&get(id)?, &crate::ui::editor::editor())? {
            crate::ui::editor::Edited::Changed(c) => {
                store.put_campaign(&c)?;
                say!(out, "updated {} ({} channels): {}", c.id, c.channels.len(), c.name);
            }
            crate::ui::editor::Edited::Unchanged(why) => say!(out, "{id}: {why}"),
        },
        CampaignCmd::New { .. } => unreachable!("written without a database (new_campaign)"),
    }
    Ok(())
}

/// `campaign new`: a template filled in, written where asked (never over a file unless
/// `force`).
pub fn new_campaign(template: &str, id: &str, output: Option<&std::path::Path>, force: bool) -> color_eyre::Result<()> {
    if !crate::domain::campaign::valid_id(id) {
        return Err(BadInput(format!("'{id}' is not a campaign id: 1–64 letters, digits, '-', '_' or '.'")).into());
    }
    let now = chrono::Local::now();
    let text = super::template::template(template, id, now.date_naive(), *now.offset()).map_err(BadInput)?;
    let path = output.map_or_else(|| std::path::PathBuf::from(format!("{id}.toml")), std::path::Path::to_path_buf);
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    if path.exists() && !force {
        return Err(BadInput(format!("{} exists: --force replaces it", path.display())).into());
    }
    std::fs::write(&path, text).wrap_err_with(|| format!("writing {}", path.display()))?;
    println!("wrote {}: edit it, then cockpit campaign import {}", path.display(), path.display());
    Ok(())
}
