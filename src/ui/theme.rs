//! Colour themes from `themes/*.toml` (built in, or a file path). `NO_COLOR` selects `mono`.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

pub const BUILT_IN: [(&str, &str); 4] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    fg: String,
    muted: String,
    accent: String,
    good: String,
    warn: String,
    bad: String,
    header_fg: String,
    header_bg: String,
    selected_bg: String,
    gauge_empty: String,
    #[serde(default)]
    bold: bool,
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    pub base: Style,
    pub muted: Style,
    pub accent: Style,
    pub good: Style,
    pub warn: Style,
    pub bad: Style,
    pub header: Style,
    pub selected: Style,
    pub gauge_empty: Style,
}

impl Theme {
    /// A built-in theme by name, or a theme file by path.
    pub fn load(name_or_path: &str) -> Result<Theme, String> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Theme::parse(text, &format!("themes/{name_or_path}.toml"));
        }
        if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
            let text = std::fs::read_to_string(name_or_path).map_err(|e| format!("{name_or_path}: {e}"))?;
            return Theme::parse(&text, name_or_path);
        }
        let names: Vec<_> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        Err(format!("unknown theme '{name_or_path}' (built in: {}; or give a .toml path)", names.join(", ")))
    }

    /// Whether colour alone cannot tell good from bad (`mono`, `NO_COLOR`, a theme that gives
    /// both one colour): breaches and better/worse then carry a mark (✗, ✓) as well.
    pub fn colourless(&self) -> bool {
        self.good.fg == self.bad.fg
    }

    /// The mark after a value that breaks a limit, where colour cannot say so.
    pub fn breach_mark(&self, breached: bool) -> char {
        if breached && self.colourless() { '✗' } else { ' ' }
    }

    /// The mark after a value against its limits, where colour cannot say so: `✗` breached,
    /// `?` past a limit on too little data yet.
    pub fn standing_mark(&self, s: crate::alert::evidence::Standing) -> char {
        use crate::alert::evidence::Standing;
        match s {
            Standing::Breached => self.breach_mark(true),
            Standing::Unsure if self.colourless() => '?',
            _ => ' ',
        }
    }

    pub fn mono() -> Theme {
        Theme::load("mono").expect("built-in theme")
    }

    pub fn parse(text: &str, file: &str) -> Result<Theme, String> {
        // file:line:col of a byte offset.
        let at = |offset: usize| {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{file}:{line}:{col}")
        };
        let f: ThemeFile = toml::from_str(text).map_err(|e| {
            format!("{}: {}", at(e.span().map_or(0, |s| s.start)), e.message().lines().next().unwrap_or(""))
        })?;
        let color = |field: &str, v: &str| -> Result<Color, String> {
            v.parse::<Color>().map_err(|_| {
                // The value's place in the file, where the field sets it.
                let offset = text
                    .lines()
                    .scan(0, |pos, l| {
                        let start = *pos;
                        *pos += l.len() + 1;
                        Some((start, l))
                    })
                    .find(|(_, l)| l.trim_start().starts_with(field) && l.contains(v))
                    .map_or(0, |(start, l)| start + l.find(v).unwrap_or(0));
                format!("{}: {field} = \"{v}\" is not a colour (a name such as \"red\", or \"#rrggbb\")", at(offset))
            })
        };
        let fg = |field: &str, v: &str| color(field, v).map(|c| Style::default().fg(c));
        let mono = |c: Color| c == Color::Reset;
        let mut base = fg("fg", &f.fg)?;
        if f.bold {
            base = base.add_modifier(Modifier::BOLD);
        }
        let header_bg = color("header_bg", &f.header_bg)?;
        let header = if mono(header_bg) {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default().fg(color("header_fg", &f.header_fg)?).bg(header_bg).add_modifier(Modifier::BOLD)
        };
        let sel = color("selected_bg", &f.selected_bg)?;
        let selected = if mono(sel) {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().bg(sel).add_modifier(Modifier::BOLD)
        };
        Ok(Theme {
            name: f.name,
            base,
            muted: fg("muted", &f.muted)?,
            accent: fg("accent", &f.accent)?.add_modifier(Modifier::BOLD),
            good: fg("good", &f.good)?,
            warn: fg("warn", &f.warn)?,
            bad: fg("bad", &f.bad)?.add_modifier(Modifier::BOLD),
            header,
            selected,
            gauge_empty: fg("gauge_empty", &f.gauge_empty)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_loads() {
        for (name, _) in BUILT_IN {
            let t = Theme::load(name).unwrap();
            assert_eq!(t.name, name);
        }
    }

    #[test]
    fn bad_theme_files_say_where() {
        let e = Theme::parse("name = \"x\"\nfg = \"blurple\"\n", "t.toml").unwrap_err();
        assert!(e.starts_with("t.toml:1:1:"), "a missing field is reported at the top: {e}");
        let text = BUILT_IN[0].1.replace("warn = \"yellow\"", "warn = \"blurple\"");
        assert!(Theme::parse(&text, "t.toml").unwrap_err().contains("warn = \"blurple\""));
        assert!(Theme::load("nope").unwrap_err().contains("unknown theme 'nope'"));
    }
}
