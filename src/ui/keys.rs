//! Every key binding in one table: key handling, the help screen and the footer hints all read
//! it, so they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    NextView,
    PrevView,
    Overview,
    CampaignView,
    ChannelView,
    AlertsView,
    Ack,
    Silence,
    SilenceChannel,
    SeverityFilter,
    StateFilter,
    OptimizeView,
    ApplyRec,
    Undo,
    Snooze,
    JournalFocus,
    PauseChannel,
    SetBudget,
    Help,
    Filter,
    SortNext,
    SortReverse,
    MetricNext,
    MetricPrev,
    WindowNext,
    AnalyzeView,
    AddNote,
    AnalyzeMode,
    CompareWith,
    CustomWindow,
    CommandLine,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Lists,
    Campaign,
    Channel,
    Alerts,
    Optimize,
    Analyze,
}

impl Scope {
    /// Where a binding applies, in words.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Global => "everywhere",
            Scope::Lists => "lists",
            Scope::Campaign => "campaign view",
            Scope::Channel => "channel view",
            Scope::Alerts => "alerts view",
            Scope::Optimize => "optimize view",
            Scope::Analyze => "analyze view",
        }
    }
}

pub struct Binding {
    pub keys: &'static str,
    pub action: Action,
    pub scope: Scope,
    pub help: &'static str,
    /// The word shown in the footer of the views it applies to, if any.
    pub hint: Option<&'static str>,
}

const fn b(
    keys: &'static str,
    action: Action,
    scope: Scope,
    help: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding { keys, action, scope, help, hint }
}

pub const BINDINGS: &[Binding] = &[
    b("q Ctrl-c", Action::Quit, Scope::Global, "quit", Some("quit")),
    b("? F1", Action::Help, Scope::Global, "show or hide this help", Some("help")),
    b("Tab", Action::NextView, Scope::Global, "next view", Some("view")),
    b("S-Tab", Action::PrevView, Scope::Global, "previous view", None),
    b("1", Action::Overview, Scope::Global, "overview", None),
    b("2", Action::CampaignView, Scope::Global, "campaign view", None),
    b("3", Action::ChannelView, Scope::Global, "channel view", None),
    b("4", Action::AlertsView, Scope::Global, "alerts", None),
    b("5", Action::OptimizeView, Scope::Global, "optimize", None),
    b("6", Action::AnalyzeView, Scope::Global, "analyze", None),
    b("n", Action::AddNote, Scope::Global, "add a note (now)", None),
    b(":", Action::CommandLine, Scope::Global, "command line (see Commands)", None),
    b("j ↓", Action::Down, Scope::Lists, "move down", None),
    b("k ↑", Action::Up, Scope::Lists, "move up", None),
    b("PgDn Ctrl-d", Action::PageDown, Scope::Lists, "page down", None),
    b("PgUp Ctrl-u", Action::PageUp, Scope::Lists, "page up", None),
    b("g Home", Action::Top, Scope::Lists, "first row", None),
    b("G End", Action::Bottom, Scope::Lists, "last row", None),
    b("Enter l →", Action::Open, Scope::Lists, "open the selection", Some("open")),
    b("Esc h ←", Action::Back, Scope::Global, "back / clear filter", Some("back")),
    b("/", Action::Filter, Scope::Campaign, "filter channels", Some("filter")),
    b("s", Action::SortNext, Scope::Campaign, "sort by the next column", Some("sort")),
    b("S", Action::SortReverse, Scope::Campaign, "reverse the sort order", None),
    b("m", Action::MetricNext, Scope::Channel, "chart the next KPI", Some("KPI")),
    b("M", Action::MetricPrev, Scope::Channel, "chart the previous KPI", None),
    b("a", Action::Ack, Scope::Alerts, "acknowledge the alert", Some("ack")),
    b("s", Action::Silence, Scope::Alerts, "silence the alert", Some("silence")),
    b("S", Action::SilenceChannel, Scope::Alerts, "silence its channel", None),
    b("v", Action::SeverityFilter, Scope::Alerts, "filter by severity", Some("severity")),
    b("t", Action::StateFilter, Scope::Alerts, "filter by state", Some("state")),
    b("w", Action::WindowNext, Scope::Channel, "window: 1h 6h 24h 7d all", Some("window")),
    b("p", Action::PauseChannel, Scope::Campaign, "pause or resume", Some("pause")),
    b("b", Action::SetBudget, Scope::Campaign, "set daily budget", Some("budget")),
    b("y", Action::ApplyRec, Scope::Optimize, "apply (after confirming)", Some("apply")),
    b("u", Action::Undo, Scope::Optimize, "undo the last action", Some("undo")),
    b("d", Action::Snooze, Scope::Optimize, "dismiss for a while", Some("dismiss")),
    b("J", Action::JournalFocus, Scope::Optimize, "select in the journal", Some("journal")),
    b("f", Action::AnalyzeMode, Scope::Analyze, "compare, funnel, segments, past", Some("mode")),
    b("w", Action::WindowNext, Scope::Analyze, "window: 1h, today, 7d, to date", Some("window")),
    b("W", Action::CustomWindow, Scope::Analyze, "window: type FROM..TO", None),
    b("x", Action::CompareWith, Scope::Analyze, "past: next earlier campaign", Some("vs")),
];

/// Every binding as a Markdown table, a row per scope (where, then each key and what it
/// does), for the README: a test checks that the README's table is this one.
pub fn markdown_table() -> String {
    let mut out = String::from("| where | keys |\n|---|---|\n");
    let mut scopes: Vec<Scope> = Vec::new();
    for b in BINDINGS {
        if !scopes.contains(&b.scope) {
            scopes.push(b.scope);
        }
    }
    for scope in scopes {
        let keys: Vec<String> = BINDINGS.iter().filter(|b| b.scope == scope).map(markdown_binding).collect();
        out.push_str(&format!("| {} | {} |\n", scope.label(), keys.join(" · ")));
    }
    out
}

/// One binding as the README's table shows it: "`q` `Ctrl-c` quit".
pub fn markdown_binding(b: &Binding) -> String {
    let keys: Vec<String> = b.keys.split(' ').map(|k| format!("`{k}`")).collect();
    format!("{} {}", keys.join(" "), b.help)
}

/// The action for a key press in a view of the given scope, if any.
pub fn action_for(k: KeyEvent, scope: Scope) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    Some(match k.code {
        KeyCode::Char('s') if scope == Scope::Alerts => Action::Silence,
        KeyCode::Char('S') if scope == Scope::Alerts => Action::SilenceChannel,
        KeyCode::Char('v') if scope == Scope::Alerts => Action::SeverityFilter,
        KeyCode::Char('t') if scope == Scope::Alerts => Action::StateFilter,
        KeyCode::Char('y') if scope == Scope::Optimize => Action::ApplyRec,
        KeyCode::Char('u') if scope == Scope::Optimize => Action::Undo,
        KeyCode::Char('d') if scope == Scope::Optimize => Action::Snooze,
        KeyCode::Char('J') if scope == Scope::Optimize => Action::JournalFocus,
        KeyCode::Char('p') if scope == Scope::Campaign => Action::PauseChannel,
        KeyCode::Char('b') if scope == Scope::Campaign => Action::SetBudget,
        KeyCode::Char('f') if scope == Scope::Analyze => Action::AnalyzeMode,
        KeyCode::Char('x') if scope == Scope::Analyze => Action::CompareWith,
        KeyCode::Char('W') if scope == Scope::Analyze => Action::CustomWindow,
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('d') if ctrl => Action::PageDown,
        KeyCode::Char('u') if ctrl => Action::PageUp,
        _ if ctrl => return None,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Char(':') => Action::CommandLine,
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PrevView,
        KeyCode::Char('1') => Action::Overview,
        KeyCode::Char('2') => Action::CampaignView,
        KeyCode::Char('3') => Action::ChannelView,
        KeyCode::Char('4') => Action::AlertsView,
        KeyCode::Char('5') => Action::OptimizeView,
        KeyCode::Char('6') => Action::AnalyzeView,
        KeyCode::Char('n') => Action::AddNote,
        KeyCode::Char('a') => Action::Ack,
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => Action::Open,
        KeyCode::Esc | KeyCode::Char('h') | KeyCode::Left | KeyCode::Backspace => Action::Back,
        KeyCode::Char('/') => Action::Filter,
        KeyCode::Char('s') => Action::SortNext,
        KeyCode::Char('S') => Action::SortReverse,
        KeyCode::Char('m') => Action::MetricNext,
        KeyCode::Char('M') => Action::MetricPrev,
        KeyCode::Char('w') => Action::WindowNext,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyCode;

    /// Parses a key as written in the table into a key event.
    fn parse(key: &str) -> KeyEvent {
        let none = KeyModifiers::NONE;
        let (code, m) = match key {
            "Tab" => (KeyCode::Tab, none),
            "S-Tab" => (KeyCode::BackTab, KeyModifiers::SHIFT),
            "Enter" => (KeyCode::Enter, none),
            "Esc" => (KeyCode::Esc, none),
            "PgDn" => (KeyCode::PageDown, none),
            "PgUp" => (KeyCode::PageUp, none),
            "Home" => (KeyCode::Home, none),
            "End" => (KeyCode::End, none),
            "F1" => (KeyCode::F(1), none),
            "↓" => (KeyCode::Down, none),
            "↑" => (KeyCode::Up, none),
            "←" => (KeyCode::Left, none),
            "→" => (KeyCode::Right, none),
            k if k.starts_with("Ctrl-") => (KeyCode::Char(k.chars().last().unwrap()), KeyModifiers::CONTROL),
            k => (KeyCode::Char(k.chars().next().unwrap()), none),
        };
        KeyEvent::new(code, m)
    }

    #[test]
    fn every_documented_key_does_what_the_help_says() {
        for b in BINDINGS {
            for key in b.keys.split(' ') {
                assert_eq!(action_for(parse(key), b.scope), Some(b.action), "key {key} of '{}'", b.help);
            }
        }
    }

    #[test]
    fn every_action_is_documented() {
        use std::collections::HashSet;
        let documented: HashSet<Action> = BINDINGS.iter().map(|b| b.action).collect();
        let all = [
            Action::Quit,
            Action::Up,
            Action::Down,
            Action::PageUp,
            Action::PageDown,
            Action::Top,
            Action::Bottom,
            Action::Open,
            Action::Back,
            Action::NextView,
            Action::PrevView,
            Action::Overview,
            Action::CampaignView,
            Action::ChannelView,
            Action::AlertsView,
            Action::Ack,
            Action::Silence,
            Action::Help,
            Action::Filter,
            Action::SortNext,
            Action::SortReverse,
            Action::MetricNext,
            Action::MetricPrev,
            Action::WindowNext,
            Action::SilenceChannel,
            Action::SeverityFilter,
            Action::StateFilter,
            Action::OptimizeView,
            Action::ApplyRec,
            Action::Undo,
            Action::Snooze,
            Action::JournalFocus,
            Action::PauseChannel,
            Action::SetBudget,
            Action::AnalyzeView,
            Action::AddNote,
            Action::AnalyzeMode,
            Action::CompareWith,
            Action::CustomWindow,
        ];
        for a in all {
            assert!(documented.contains(&a), "{a:?} has no help line");
        }
    }
}
