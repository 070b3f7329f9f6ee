//! Every key binding in one table: key handling, the help screen and the footer hints all read
//! it, so they cannot disagree. [`BINDINGS`] is the default; a `[keys]` table in `config.toml`
//! rebinds actions by name ([`Keymap::with_overrides`]).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fmt;

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
    Checklist,
    TaskDone,
    Edit,
    AlertDetail,
}

/// Every action by the name a `[keys]` table gives it.
pub const ACTION_NAMES: &[(Action, &str)] = &[
    (Action::Quit, "quit"),
    (Action::Up, "up"),
    (Action::Down, "down"),
    (Action::PageUp, "page_up"),
    (Action::PageDown, "page_down"),
    (Action::Top, "top"),
    (Action::Bottom, "bottom"),
    (Action::Open, "open"),
    (Action::Back, "back"),
    (Action::NextView, "next_view"),
    (Action::PrevView, "prev_view"),
    (Action::Overview, "overview"),
    (Action::CampaignView, "campaign_view"),
    (Action::ChannelView, "channel_view"),
    (Action::AlertsView, "alerts_view"),
    (Action::Ack, "ack"),
    (Action::Silence, "silence"),
    (Action::SilenceChannel, "silence_channel"),
    (Action::SeverityFilter, "severity_filter"),
    (Action::StateFilter, "state_filter"),
    (Action::OptimizeView, "optimize_view"),
    (Action::ApplyRec, "apply"),
    (Action::Undo, "undo"),
    (Action::Snooze, "dismiss"),
    (Action::JournalFocus, "journal"),
    (Action::PauseChannel, "pause"),
    (Action::SetBudget, "budget"),
    (Action::Help, "help"),
    (Action::Filter, "filter"),
    (Action::SortNext, "sort"),
    (Action::SortReverse, "sort_reverse"),
    (Action::MetricNext, "metric_next"),
    (Action::MetricPrev, "metric_prev"),
    (Action::WindowNext, "window"),
    (Action::AnalyzeView, "analyze_view"),
    (Action::AddNote, "note"),
    (Action::AnalyzeMode, "analyze_mode"),
    (Action::CompareWith, "compare_with"),
    (Action::CustomWindow, "custom_window"),
    (Action::CommandLine, "command_line"),
    (Action::Checklist, "checklist"),
    (Action::TaskDone, "task_done"),
    (Action::Edit, "edit"),
    (Action::AlertDetail, "alert_detail"),
];

impl Action {
    /// Its name in a `[keys]` table.
    pub fn name(self) -> &'static str {
        ACTION_NAMES.iter().find(|(a, _)| *a == self).map_or("?", |(_, n)| n)
    }
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
    pub const ALL: [Scope; 7] =
        [Scope::Global, Scope::Lists, Scope::Campaign, Scope::Channel, Scope::Alerts, Scope::Optimize, Scope::Analyze];

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

    /// Its name as a `[keys.NAME]` table.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Lists => "lists",
            Scope::Campaign => "campaign",
            Scope::Channel => "channel",
            Scope::Alerts => "alerts",
            Scope::Optimize => "optimize",
            Scope::Analyze => "analyze",
        }
    }

    /// The scopes whose bindings a view of this scope answers: its own first, then the
    /// global ones and the list movements.
    fn layers(self) -> [Scope; 3] {
        [self, Scope::Global, Scope::Lists]
    }
}

/// A binding of the built-in table: its keys as written (space-separated), what it does and
/// where.
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

/// The default bindings.
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
    b("Esc h ← BS", Action::Back, Scope::Global, "back / clear filter", Some("back")),
    b("/", Action::Filter, Scope::Campaign, "filter channels", Some("filter")),
    b("s", Action::SortNext, Scope::Campaign, "sort by the next column", Some("sort")),
    b("S", Action::SortReverse, Scope::Campaign, "reverse the sort order", None),
    b("m", Action::MetricNext, Scope::Channel, "chart the next KPI", Some("KPI")),
    b("M", Action::MetricPrev, Scope::Channel, "chart the previous KPI", None),
    b("e", Action::Edit, Scope::Channel, "edit the campaign's plan", None),
    b("a", Action::Ack, Scope::Alerts, "acknowledge the alert", Some("ack")),
    b("s", Action::Silence, Scope::Alerts, "silence the alert", Some("silence")),
    b("S", Action::SilenceChannel, Scope::Alerts, "silence its channel", None),
    b("v", Action::SeverityFilter, Scope::Alerts, "filter by severity", Some("severity")),
    b("t", Action::StateFilter, Scope::Alerts, "filter by state", Some("state")),
    b("i", Action::AlertDetail, Scope::Alerts, "read the whole alert and its plan", Some("read")),
    b("w", Action::WindowNext, Scope::Channel, "window: 1h 6h 24h 7d all", Some("window")),
    b("p", Action::PauseChannel, Scope::Campaign, "pause or resume", Some("pause")),
    b("b", Action::SetBudget, Scope::Campaign, "set daily budget", Some("budget")),
    b("e", Action::Edit, Scope::Campaign, "edit the plan ($EDITOR)", Some("edit")),
    b("t", Action::Checklist, Scope::Campaign, "checklist / channels", Some("tasks")),
    b("x", Action::TaskDone, Scope::Campaign, "task done / open again", Some("done")),
    b("y", Action::ApplyRec, Scope::Optimize, "apply (after confirming)", Some("apply")),
    b("u", Action::Undo, Scope::Optimize, "undo the last action", Some("undo")),
    b("d", Action::Snooze, Scope::Optimize, "dismiss for a while", Some("dismiss")),
    b("J", Action::JournalFocus, Scope::Optimize, "select in the journal", Some("journal")),
    b("f", Action::AnalyzeMode, Scope::Analyze, "compare, funnel, segments, past", Some("mode")),
    b("w", Action::WindowNext, Scope::Analyze, "window: 1h, today, 7d, to date", Some("window")),
    b("W", Action::CustomWindow, Scope::Analyze, "window: type FROM..TO", None),
    b("x", Action::CompareWith, Scope::Analyze, "past: next earlier campaign", Some("vs")),
];

/// A key as the tables write it: `q`, `Ctrl-c`, `Alt-x`, `S-Tab`, `F1`, `Enter`, `↓` (or
/// `Down`). Shift is in the character (`S`), not a modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
}

/// Named keys: the name shown first, then the names also accepted (any case).
const NAMED: &[(KeyCode, &[&str])] = &[
    (KeyCode::Tab, &["Tab"]),
    (KeyCode::BackTab, &["S-Tab", "Shift-Tab", "BackTab"]),
    (KeyCode::Enter, &["Enter", "Return"]),
    (KeyCode::Esc, &["Esc", "Escape"]),
    (KeyCode::Backspace, &["BS", "Backspace"]),
    (KeyCode::Delete, &["Del", "Delete"]),
    (KeyCode::Insert, &["Ins", "Insert"]),
    (KeyCode::PageDown, &["PgDn", "PageDown"]),
    (KeyCode::PageUp, &["PgUp", "PageUp"]),
    (KeyCode::Home, &["Home"]),
    (KeyCode::End, &["End"]),
    (KeyCode::Down, &["↓", "Down"]),
    (KeyCode::Up, &["↑", "Up"]),
    (KeyCode::Left, &["←", "Left"]),
    (KeyCode::Right, &["→", "Right"]),
    (KeyCode::Char(' '), &["Space"]),
];

impl Key {
    /// A key press as the tables match it.
    pub fn of(k: KeyEvent) -> Key {
        let code = match k.code {
            KeyCode::Char(c) if k.modifiers.contains(KeyModifiers::CONTROL) => KeyCode::Char(c.to_ascii_lowercase()),
            c => c,
        };
        Key { code, ctrl: k.modifiers.contains(KeyModifiers::CONTROL), alt: k.modifiers.contains(KeyModifiers::ALT) }
    }

    /// A key as written in a table; an error says what is accepted.
    pub fn parse(s: &str) -> Result<Key, String> {
        let (mut ctrl, mut alt, mut rest) = (false, false, s);
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 2 && (lower.starts_with("ctrl-") || lower.starts_with("c-")) {
                ctrl = true;
                rest = &rest[rest.find('-').map_or(0, |i| i + 1)..];
            } else if rest.chars().count() > 2 && (lower.starts_with("alt-") || lower.starts_with("a-")) {
                alt = true;
                rest = &rest[rest.find('-').map_or(0, |i| i + 1)..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            _ => {
                if let Some(n) =
                    rest.strip_prefix(['F', 'f']).and_then(|n| n.parse::<u8>().ok()).filter(|n| (1..=12).contains(n))
                {
                    KeyCode::F(n)
                } else {
                    NAMED
                        .iter()
                        .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(rest)))
                        .map(|(code, _)| *code)
                        .ok_or_else(|| {
                            format!(
                                "'{s}' is not a key (write a character, Ctrl-x, Alt-x, F1-F12 or one of {})",
                                NAMED.iter().map(|(_, n)| n[0]).collect::<Vec<_>>().join(" ")
                            )
                        })?
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::F(n) => write!(f, "F{n}"),
            code => match NAMED.iter().find(|(c, _)| *c == code) {
                Some((_, names)) => f.write_str(names[0]),
                None => match code {
                    KeyCode::Char(c) => write!(f, "{c}"),
                    other => write!(f, "{other:?}"),
                },
            },
        }
    }
}

/// A binding as in force: the built-in one, its keys perhaps rebound.
#[derive(Debug, Clone)]
pub struct Bound {
    pub keys: Vec<Key>,
    pub action: Action,
    pub scope: Scope,
    pub help: &'static str,
    pub hint: Option<&'static str>,
}

impl Bound {
    /// Its keys as the help screen shows them ("—" when none is left).
    pub fn keys_text(&self) -> String {
        if self.keys.is_empty() {
            return "—".into();
        }
        self.keys.iter().map(Key::to_string).collect::<Vec<_>>().join(" ")
    }
}

/// One rebinding from a `[keys]` table: an action (in one scope, or wherever it is bound)
/// and the keys it takes instead of its own.
#[derive(Debug, Clone)]
pub struct Override {
    pub scope: Option<Scope>,
    pub action: String,
    pub keys: Vec<String>,
    /// Where it was written, for errors.
    pub line: usize,
}

/// The bindings in force.
#[derive(Debug, Clone)]
pub struct Keymap {
    pub bindings: Vec<Bound>,
}

impl Default for Keymap {
    fn default() -> Self {
        let bindings = BINDINGS
            .iter()
            .map(|b| Bound {
                keys: b.keys.split(' ').map(|k| Key::parse(k).expect("the built-in key table parses")).collect(),
                action: b.action,
                scope: b.scope,
                help: b.help,
                hint: b.hint,
            })
            .collect();
        Keymap { bindings }
    }
}

/// Whether two scopes' bindings can both answer in one view.
fn overlap(a: Scope, b: Scope) -> bool {
    a == b || matches!(a, Scope::Global | Scope::Lists) || matches!(b, Scope::Global | Scope::Lists)
}

impl Keymap {
    /// The defaults with a `[keys]` table's rebindings; an unknown action or scope, a key
    /// that is not one, or a key that would do two things in one view is refused with the
    /// line it was written on.
    pub fn with_overrides(overrides: &[Override]) -> Result<Keymap, (usize, String)> {
        let mut map = Keymap::default();
        let mut rebound = Vec::new();
        for o in overrides {
            let err = |m: String| (o.line, m);
            let Some(action) = ACTION_NAMES.iter().find(|(_, n)| *n == o.action).map(|(a, _)| *a) else {
                let names: Vec<&str> = ACTION_NAMES.iter().map(|(_, n)| *n).collect();
                return Err(err(format!("'{}' is not an action (actions: {})", o.action, names.join(", "))));
            };
            let keys = o.keys.iter().map(|k| Key::parse(k)).collect::<Result<Vec<_>, _>>().map_err(err)?;
            let targets: Vec<usize> = (0..map.bindings.len())
                .filter(|&i| map.bindings[i].action == action && o.scope.is_none_or(|s| s == map.bindings[i].scope))
                .collect();
            if targets.is_empty() {
                let scope = o.scope.map_or("", Scope::label);
                return Err(err(format!("'{}' is not bound in the {scope}", o.action)));
            }
            for &i in &targets {
                map.bindings[i].keys = keys.clone();
                rebound.push((i, o.line));
            }
        }
        // Clashes once everything is rebound, so that keys can be swapped.
        for (i, line) in rebound {
            if let Some(m) = map.conflict(i) {
                return Err((line, m));
            }
        }
        Ok(map)
    }

    /// What binding `i` clashes with: another action on one of its keys in a view where both
    /// answer.
    fn conflict(&self, i: usize) -> Option<String> {
        let me = &self.bindings[i];
        self.bindings.iter().filter(|o| o.action != me.action && overlap(me.scope, o.scope)).find_map(|other| {
            let k = me.keys.iter().find(|k| other.keys.contains(k))?;
            let view = if matches!(me.scope, Scope::Global | Scope::Lists) { other.scope } else { me.scope };
            Some(format!(
                "{k} for '{}' is already '{}' ({}) in the {}",
                me.action.name(),
                other.help,
                other.action.name(),
                view.label()
            ))
        })
    }

    /// The action for a key press in a view of the given scope, if any.
    pub fn action(&self, k: KeyEvent, scope: Scope) -> Option<Action> {
        let key = Key::of(k);
        scope.layers().iter().find_map(|layer| {
            self.bindings.iter().find(|b| b.scope == *layer && b.keys.contains(&key)).map(|b| b.action)
        })
    }

    /// The first key of an action in a scope (or anywhere), as shown in messages and hints.
    pub fn key_of(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .and_then(|b| b.keys.first())
            .map_or_else(|| format!(":{}", action.name()), Key::to_string)
    }
}

/// The action for a key press under the default bindings.
pub fn action_for(k: KeyEvent, scope: Scope) -> Option<Action> {
    DEFAULT.with(|m| m.action(k, scope))
}

thread_local! {
    static DEFAULT: Keymap = Keymap::default();
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(k: Key) -> KeyEvent {
        let mut m = KeyModifiers::NONE;
        if k.ctrl {
            m |= KeyModifiers::CONTROL;
        }
        if k.alt {
            m |= KeyModifiers::ALT;
        }
        KeyEvent::new(k.code, m)
    }

    #[test]
    fn every_documented_key_does_what_the_help_says() {
        for b in BINDINGS {
            for key in b.keys.split(' ') {
                let k = Key::parse(key).unwrap();
                assert_eq!(k.to_string(), key, "{key} is shown as written");
                assert_eq!(action_for(event(k), b.scope), Some(b.action), "key {key} of '{}'", b.help);
            }
        }
        // Shift is in the character; Ctrl-C is Ctrl-c.
        let shifted = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(action_for(shifted, Scope::Lists), Some(Action::Bottom));
        let ctrl = KeyEvent::new(KeyCode::Char('C'), KeyModifiers::CONTROL | KeyModifiers::SHIFT);
        assert_eq!(action_for(ctrl, Scope::Alerts), Some(Action::Quit));
    }

    #[test]
    fn every_action_is_documented_and_no_default_clashes() {
        for (a, name) in ACTION_NAMES {
            assert!(BINDINGS.iter().any(|b| b.action == *a), "{a:?} has no help line");
            assert_eq!(a.name(), *name);
        }
        let map = Keymap::default();
        for i in 0..map.bindings.len() {
            assert_eq!(map.conflict(i), None);
        }
    }

    fn rebind(scope: Option<Scope>, action: &str, keys: &[&str]) -> Override {
        Override { scope, action: action.into(), keys: keys.iter().map(|k| k.to_string()).collect(), line: 7 }
    }

    #[test]
    fn a_rebound_key_does_the_action_and_the_old_one_does_not() {
        let map = Keymap::with_overrides(&[rebind(None, "ack", &["A", "Ctrl-a"])]).unwrap();
        let key = |c| KeyEvent::from(KeyCode::Char(c));
        assert_eq!(map.action(key('A'), Scope::Alerts), Some(Action::Ack));
        assert_eq!(
            map.action(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::CONTROL), Scope::Alerts),
            Some(Action::Ack)
        );
        assert_eq!(map.action(key('a'), Scope::Alerts), None);
        assert_eq!(map.key_of(Action::Ack), "A");
        // A window key rebound in one view only.
        let map = Keymap::with_overrides(&[rebind(Some(Scope::Analyze), "window", &["o"])]).unwrap();
        assert_eq!(map.action(key('o'), Scope::Analyze), Some(Action::WindowNext));
        assert_eq!(map.action(key('w'), Scope::Channel), Some(Action::WindowNext));
        assert_eq!(map.action(key('w'), Scope::Analyze), None);
        // Rebinding movement frees j and k for nothing else; arrows stay if written.
        let map =
            Keymap::with_overrides(&[rebind(None, "down", &["n", "Down"]), rebind(None, "note", &["N"])]).unwrap();
        assert_eq!(map.action(key('n'), Scope::Campaign), Some(Action::Down));
        assert_eq!(map.action(KeyEvent::from(KeyCode::Down), Scope::Campaign), Some(Action::Down));
    }

    #[test]
    fn a_clash_an_unknown_action_or_a_bad_key_is_refused_with_its_line() {
        let refused = |o: Override| Keymap::with_overrides(&[o]).unwrap_err();
        let (line, m) = refused(rebind(None, "ack", &["j"]));
        assert_eq!((line, m.as_str()), (7, "j for 'ack' is already 'move down' (down) in the alerts view"));
        let (_, m) = refused(rebind(None, "quit", &["s"]));
        assert!(m.contains("is already 'sort by the next column' (sort) in the campaign view"), "{m}");
        let (_, m) = refused(rebind(None, "acknowledge", &["a"]));
        assert!(m.starts_with("'acknowledge' is not an action (actions: quit, up,"), "{m}");
        let (_, m) = refused(rebind(Some(Scope::Alerts), "sort", &["o"]));
        assert_eq!(m, "'sort' is not bound in the alerts view");
        let (_, m) = refused(rebind(None, "ack", &["Ctrl-"]));
        assert!(m.starts_with("'Ctrl-' is not a key"), "{m}");
        // The same key in two views that never meet is fine.
        assert!(Keymap::with_overrides(&[rebind(None, "ack", &["p"])]).is_ok());
    }
}
