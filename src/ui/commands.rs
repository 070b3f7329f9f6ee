//! The `:` command line: what each command does, and Tab completion of command names,
//! campaign and channel ids, themes and windows.

use super::app::{App, View};
use crate::engine::Command;
use crate::engine::snapshot::Window;

/// Every command: its name, what it takes, what it does (for `:help` and the help screen).
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("campaign", "ID", "open a campaign"),
    ("channel", "ID", "open a channel of the campaign on screen (or CAMPAIGN/ID)"),
    ("overview", "", "the overview"),
    ("alerts", "", "the alerts"),
    ("optimize", "", "the optimize panel"),
    ("analyze", "", "the analyze view"),
    ("window", "1h|6h|24h|7d|all", "the chart's window"),
    ("theme", "NAME", "another colour theme"),
    ("note", "TEXT", "a note on the campaign (and channel) on screen, now"),
    ("silence", "DURATION", "silence the selected alert"),
    ("help", "", "the keys and these commands"),
    ("q", "", "quit"),
];

/// Runs a command line; a mistake is said in the status line.
pub fn run(line: &str, app: &mut App) -> Option<Command> {
    let (name, arg) = line.split_once(' ').map_or((line, ""), |(n, a)| (n, a.trim()));
    let found: Vec<&str> = COMMANDS.iter().map(|c| c.0).filter(|c| c.starts_with(name)).collect();
    let name = match (name, found.as_slice()) {
        ("", _) => return None,
        ("quit" | "q", _) => "q",
        (_, [one]) => one,
        (_, []) => return say(app, format!("no command ':{name}' (:help lists them)")),
        (_, many) => return say(app, format!("':{name}' is one of {}", many.join(", "))),
    };
    let needs = |app: &mut App, what: &str| say(app, format!(":{name} needs {what}"));
    match name {
        "q" => {
            app.quit = true;
            None
        }
        "help" => {
            app.help = true;
            None
        }
        "overview" => app.goto(View::Overview),
        "alerts" => app.goto(View::Alerts),
        "optimize" => app.goto(View::Optimize),
        "analyze" => app.goto(View::Analyze),
        "campaign" if arg.is_empty() => needs(app, "a campaign id"),
        "campaign" => match find_campaign(app, arg) {
            Ok(i) => {
                select(app, i);
                app.goto(View::Campaign)
            }
            Err(e) => say(app, e),
        },
        "channel" if arg.is_empty() => needs(app, "a channel id"),
        "channel" => {
            let (campaign, channel) = match arg.split_once('/') {
                Some((c, ch)) => (Some(c), ch),
                None => (app.campaign().map(|c| c.campaign.id.as_str()), arg),
            };
            let Some(i) = campaign.and_then(|id| app.snap.campaigns.iter().position(|c| c.campaign.id == id)) else {
                return say(app, format!("no campaign for channel '{arg}': open one first, or say CAMPAIGN/{arg}"));
            };
            let Some(key) =
                app.snap.campaigns[i].channels.iter().find(|v| v.key.channel == channel).map(|v| v.key.clone())
            else {
                return say(app, format!("no channel '{channel}' in {}", app.snap.campaigns[i].campaign.id));
            };
            select(app, i);
            app.channel = Some(key);
            // The campaign table's cursor follows, for Esc.
            app.refresh_rows();
            app.view = View::Channel;
            app.series_command()
        }
        "window" => match Window::ALL.iter().find(|w| window_name(**w) == arg) {
            Some(w) => {
                app.chart.window = *w;
                if app.view == View::Channel { app.series_command() } else { None }
            }
            None => needs(app, "1h, 6h, 24h, 7d or all"),
        },
        "theme" => match crate::ui::theme::Theme::load(arg) {
            Ok(t) => {
                app.theme = t;
                None
            }
            Err(e) => say(app, e),
        },
        "note" if arg.is_empty() => needs(app, "its text"),
        "note" => {
            let Some(c) = app.campaign() else { return say(app, "no campaign on screen to note on".into()) };
            let campaign = c.campaign.id.clone();
            let channel =
                (app.view == View::Channel).then(|| app.channel.as_ref().map(|k| k.channel.clone())).flatten();
            Some(Command::Note { campaign, channel, text: arg.to_string(), by: app.user.clone() })
        }
        "silence" if app.view != View::Alerts => {
            say(app, ":silence works on the selected alert: open the alerts (4)".into())
        }
        "silence" => app.silence(if arg.is_empty() { "1h" } else { arg }, false),
        _ => None,
    }
}

/// The campaign an argument names: its id, else the one campaign whose id starts so or whose
/// name holds the words (any case).
fn find_campaign(app: &App, arg: &str) -> Result<usize, String> {
    let cs = &app.snap.campaigns;
    if let Some(i) = cs.iter().position(|c| c.campaign.id == arg) {
        return Ok(i);
    }
    let needle = arg.to_lowercase();
    let found: Vec<usize> = (0..cs.len())
        .filter(|i| {
            let c = &cs[*i].campaign;
            c.id.starts_with(arg) || c.name.to_lowercase().contains(&needle)
        })
        .collect();
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(format!("no campaign '{arg}'")),
        many => {
            let ids: Vec<&str> = many.iter().map(|i| cs[*i].campaign.id.as_str()).collect();
            Err(format!("'{arg}' could be {}", ids.join(", ")))
        }
    }
}

/// Another campaign on screen: its table sorted afresh, unfiltered, from its top.
fn select(app: &mut App, i: usize) {
    app.campaign_sel = i;
    app.table.filter.clear();
    app.table.row = 0;
    app.refresh_rows();
}

/// A chart window as typed: its label, one word for the whole campaign.
fn window_name(w: Window) -> &'static str {
    if w == Window::ToDate { "all" } else { w.label() }
}

fn say(app: &mut App, text: String) -> Option<Command> {
    app.message = Some(text);
    None
}

/// The line with its last word completed as far as the candidates agree (a whole word gets a
/// space after it), and, when several remain, what they are: `id name` for campaigns and
/// channels (a word matches an id's start or a name's words).
pub fn complete(line: &str, app: &App) -> (String, Vec<String>) {
    let (head, word) = match line.rsplit_once(' ') {
        Some((h, w)) => (Some(h), w),
        None => (None, line),
    };
    // (the word completed to, how it is listed)
    let candidates: Vec<(String, String)> = match head.map(str::trim) {
        None => COMMANDS.iter().map(|c| (c.0.to_string(), format!(":{}", c.0))).collect(),
        Some("campaign") => app
            .snap
            .campaigns
            .iter()
            .map(|c| (c.campaign.id.clone(), labelled(&c.campaign.id, &c.campaign.name)))
            .collect(),
        Some("channel") => app.campaign().map_or(Vec::new(), |c| {
            c.channels.iter().map(|v| (v.key.channel.clone(), labelled(&v.key.channel, &v.name))).collect()
        }),
        Some("theme") => crate::ui::theme::BUILT_IN.iter().map(|(n, _)| (n.to_string(), n.to_string())).collect(),
        Some("window") => {
            Window::ALL.iter().map(|w| (window_name(*w).to_string(), window_name(*w).to_string())).collect()
        }
        Some(_) => Vec::new(),
    };
    let mut matching: Vec<&(String, String)> = candidates.iter().filter(|c| c.0.starts_with(word)).collect();
    if matching.is_empty() && !word.is_empty() {
        // No id starts so: those whose name holds the word, by their id.
        let w = word.to_lowercase();
        matching = candidates.iter().filter(|c| c.1.to_lowercase().contains(&w)).collect();
    }
    let Some(first) = matching.first() else { return (line.to_string(), Vec::new()) };
    let common = matching.iter().fold(first.0.as_str(), |acc, c| {
        let n = acc.chars().zip(c.0.chars()).take_while(|(a, b)| a == b).count();
        &acc[..acc.char_indices().nth(n).map_or(acc.len(), |(i, _)| i)]
    });
    // Completing by name to no common start keeps what was typed.
    let common = if common.is_empty() { word } else { common };
    let done = if matching.len() == 1 { " " } else { "" };
    let listed = if matching.len() > 1 { matching.iter().map(|c| c.1.clone()).collect() } else { Vec::new() };
    let text = match head {
        Some(h) => format!("{h} {common}{done}"),
        None => format!("{common}{done}"),
    };
    (text, listed)
}

/// "id (name)", or the id alone when the name says no more.
fn labelled(id: &str, name: &str) -> String {
    if name.is_empty() || name == id { id.to_string() } else { format!("{id} ({name})") }
}
