//! Small text-level widgets shared by the views: progress bars with a pace marker, sparklines,
//! width-aware truncation (CJK characters are two columns wide).

use ratatui::style::Style;
use ratatui::text::Span;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A bar `width` columns wide filled to `ratio` (clamped to 1), with a `│` marker at
/// `marker` (the share of time elapsed) when given.
pub fn bar(
    width: usize,
    ratio: f64,
    marker: Option<f64>,
    fill: Style,
    empty: Style,
    mark: Style,
) -> Vec<Span<'static>> {
    if width == 0 {
        return Vec::new();
    }
    let ratio = if ratio.is_finite() { ratio.clamp(0.0, 1.0) } else { 0.0 };
    let eighths = (ratio * width as f64 * 8.0).round() as usize;
    let mut cells: Vec<(char, u8)> = (0..width)
        .map(|i| {
            let filled = eighths.saturating_sub(i * 8).min(8);
            match filled {
                8 => ('█', 0),
                0 => ('░', 1),
                n => (EIGHTHS[n], 0),
            }
        })
        .collect();
    if let Some(m) = marker.filter(|m| m.is_finite()) {
        let pos = ((m.clamp(0.0, 1.0) * width as f64) as usize).min(width - 1);
        cells[pos] = ('│', 2);
    }
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut kind = cells[0].1;
    let style = |k: u8| match k {
        0 => fill,
        1 => empty,
        _ => mark,
    };
    for (ch, k) in cells {
        if k != kind {
            spans.push(Span::styled(std::mem::take(&mut run), style(kind)));
            kind = k;
        }
        run.push(ch);
    }
    spans.push(Span::styled(run, style(kind)));
    spans
}

/// A sparkline of `values` scaled from 0 to their maximum; gaps (no data) are blank.
pub fn sparkline(values: &[Option<f64>], width: usize) -> String {
    let from = values.len().saturating_sub(width);
    let vals = &values[from..];
    let max = vals.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
    let mut s: String = " ".repeat(width - vals.len());
    for v in vals {
        s.push(match v {
            Some(v) if max > 0.0 => SPARKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize],
            Some(_) => SPARKS[0],
            None => ' ',
        });
    }
    s
}

/// Cuts `s` to at most `width` display columns, ending in `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for ch in s.chars() {
        let cw = ch.width().unwrap_or(0);
        if w + cw > width - 1 {
            break;
        }
        out.push(ch);
        w += cw;
    }
    out.push('…');
    out
}

/// `s` cut or padded with spaces to exactly `width` columns.
pub fn fit(s: &str, width: usize) -> String {
    let t = truncate(s, width);
    let pad = width.saturating_sub(t.width());
    format!("{t}{}", " ".repeat(pad))
}

/// `s` split where its first `width` columns end, at the last space before them when there
/// is one: the head, and the rest without its leading spaces.
pub fn split_at_width(s: &str, width: usize) -> (&str, &str) {
    if s.width() <= width {
        return (s, "");
    }
    let mut w = 0;
    let mut cut = 0;
    let mut space = None;
    for (i, ch) in s.char_indices() {
        w += ch.width().unwrap_or(0);
        if ch == ' ' {
            space = Some(i);
        }
        if w > width {
            break;
        }
        cut = i + ch.len_utf8();
    }
    let at = space.filter(|&i| i > 0).unwrap_or(cut);
    (&s[..at], s[at..].trim_start())
}

/// Like `truncate` but keeps the end (for paths).
pub fn truncate_left(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let rev: String = s.chars().rev().collect();
    let t = truncate(&rev, width);
    let mut out: String = t.trim_end_matches('…').chars().rev().collect();
    out.insert(0, '…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(spans: &[Span<'_>]) -> String {
        spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_line_splits_at_the_last_space_that_fits() {
        assert_eq!(split_at_width("CPA 303.65 vs limit", 12), ("CPA 303.65", "vs limit"));
        assert_eq!(split_at_width("CPA 303.65 vs limit", 10), ("CPA 303.65", "vs limit"));
        assert_eq!(split_at_width("short", 12), ("short", ""));
        assert_eq!(split_at_width("unbrokenword", 4), ("unbr", "okenword"));
        assert_eq!(split_at_width("微信朋友圈 广告", 6), ("微信朋", "友圈 广告"));
    }

    #[test]
    fn bars_fill_and_mark() {
        let s = Style::default();
        assert_eq!(text(&bar(10, 0.5, None, s, s, s)), "█████░░░░░");
        assert_eq!(text(&bar(10, 0.5, Some(0.8), s, s, s)), "█████░░░│░");
        assert_eq!(text(&bar(4, 2.0, Some(1.0), s, s, s)), "███│");
        assert_eq!(text(&bar(4, f64::NAN, None, s, s, s)), "░░░░");
        assert_eq!(text(&bar(8, 0.0625, None, s, s, s)), "▌░░░░░░░");
    }

    #[test]
    fn sparklines_scale_and_pad() {
        assert_eq!(sparkline(&[Some(0.0), Some(5.0), Some(10.0)], 5), "  ▁▅█");
        assert_eq!(sparkline(&[None, Some(1.0)], 2), " █");
        assert_eq!(sparkline(&[Some(1.0); 10], 3), "███");
    }

    #[test]
    fn truncation_counts_wide_characters() {
        assert_eq!(truncate("微信朋友圈广告", 7), "微信朋…");
        assert_eq!(fit("微信", 6), "微信  ");
        assert_eq!(truncate_left("/very/long/path/db", 8), "…path/db");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
