//! Numbers as people read them, one function per shape, so that a figure reads the same on
//! every screen, in every report and in every alert. Money is named by its shape:
//! - `money`: two decimals below 1,000, grouped whole units to 1M, then "1.23M" (screens);
//! - `money_cents`: grouped with cents, always ("12,345.67"; reports, where sums must add up);
//! - `money_whole`: grouped whole units ("12,346"; budgets in recommendations);
//! - `money_short`: at most six characters ("12.3k", "1.23M"; gauges and tight columns).

/// Money for screens: see the module's note.
pub fn money(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 1_000.0 {
        count(v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

/// Money to the cent, grouped.
pub fn money_cents(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", count((cents / 100).abs()), (cents % 100).abs())
}

/// Money in whole units, grouped.
pub fn money_whole(v: f64) -> String {
    count(v.round() as i64)
}

/// Money in at most six characters.
pub fn money_short(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        money(v)
    }
}

/// A ratio as a percentage: one decimal below 100 %, whole above ("9.8%", "265%").
pub fn percent(v: f64) -> String {
    let p = v * 100.0;
    if p.abs() >= 100.0 { format!("{p:.0}%") } else { format!("{p:.1}%") }
}

/// A ratio as a percentage with one decimal, always ("265.0%"; columns that line up).
pub fn percent_1(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A ratio as a percentage with two decimals ("2.13%"; rates in reports).
pub fn percent_2(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// A signed change as a percentage ("+12.5%"), or "–" when there is nothing to compare.
pub fn change(v: Option<f64>) -> String {
    v.map_or("–".into(), |c| format!("{:+.1}%", c * 100.0))
}

/// A count in at most seven characters: grouped below 100,000, then "123.4k", "1.23M", "1.23B".
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}B", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e5 {
        format!("{:.1}k", v / 1e3)
    } else {
        count(v.round() as i64)
    }
}

/// `n` of a thing, in the right number: "1 action", "3 actions" (the count grouped).
pub fn count_of(n: usize, thing: &str) -> String {
    format!("{} {thing}{}", count(n as i64), if n == 1 { "" } else { "s" })
}

/// A whole number with thousands grouped ("1,234,567").
pub fn count(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3 + 1);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A span in its largest unit, for tight columns: `45m`, `5h`, `3d`.
pub fn span_short(ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    match m {
        0..60 => format!("{m}m"),
        60..2880 => format!("{}h", m / 60),
        _ => format!("{}d", m / 1440),
    }
}

/// A span of time in whole minutes ("3h", "1h 30m"), or seconds below a minute ("45s").
pub fn span(ms: i64) -> String {
    let secs = (ms.max(0) / 1000) as u64;
    let secs = if secs >= 60 { secs / 60 * 60 } else { secs };
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_one_shape_per_name() {
        assert_eq!(money(12.5), "12.50");
        assert_eq!(money(12_345.6), "12,346");
        assert_eq!(money(2_400_000.0), "2.40M");
        assert_eq!(money_cents(-12_345.678), "-12,345.68");
        assert_eq!(money_whole(12_345.6), "12,346");
        assert_eq!(money_short(43_512.0), "43.5k");
        assert_eq!(money_short(999.0), "999.00");
    }

    #[test]
    fn counts_and_spans() {
        assert_eq!(count(-1_234_567), "-1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(span(3 * crate::domain::time::HOUR_MS), "3h");
        assert_eq!(span(90 * 60_000 + 59_000), "1h 30m");
        assert_eq!(span(45_000), "45s");
        assert_eq!(percent(0.098), "9.8%");
        assert_eq!(percent(2.65), "265%");
        assert_eq!(change(Some(0.125)), "+12.5%");
    }
}
