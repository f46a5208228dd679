//! Server-rendered SVG charts of the registration funnel: horizontal bars
//! per stage (the whole funnel, or one platform), and one column per day in
//! which each stage's bar stands in front of the stage before it.

use mdm_core::mail_templates::html_escape;
use std::fmt::Write;

/// Colours from the first stage (light) to the last (dark).
const SHADES: [&str; 7] = [
    "#cfe2f3", "#b0cde8", "#8fb6dc", "#6b9ccf", "#4a82bf", "#2f68a8", "#1d3557",
];

/// Horizontal bars: one per stage with its count and its share of `base`
/// (the registrations counted; not every one starts with an invitation).
pub fn stage_bars(title: &str, base: i64, stages: &[(&str, i64)]) -> String {
    let (label_w, bar_w, row_h) = (150.0, 360.0, 22.0);
    let height = row_h * stages.len() as f64 + 28.0;
    let first = stages
        .iter()
        .map(|s| s.1)
        .chain([base])
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="funnel" role="img" aria-label="{t}" width="{w}" height="{height}" viewBox="0 0 {w} {height}" xmlns="http://www.w3.org/2000/svg"><text x="0" y="14" font-weight="bold">{t}</text>"##,
        t = html_escape(title),
        w = label_w + bar_w + 90.0,
    );
    for (i, (label, n)) in stages.iter().enumerate() {
        let y = 24.0 + i as f64 * row_h;
        let len = bar_w * (*n as f64 / first).min(1.0);
        let pct = 100.0 * *n as f64 / first;
        let _ = write!(
            out,
            r##"<text x="0" y="{ty}">{l}</text><rect x="{label_w}" y="{y}" width="{len:.1}" height="{h}" fill="{c}"><title>{l}: {n}</title></rect><text x="{tx:.1}" y="{ty}">{n} ({pct:.0}%)</text>"##,
            ty = y + 14.0,
            l = html_escape(label),
            h = row_h - 6.0,
            c = SHADES[i.min(SHADES.len() - 1)],
            tx = label_w + len + 6.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// One column per day: the bars of all stages overlaid, tallest (the
/// first stage) at the back.
pub fn day_columns(days: &[(String, Vec<i64>)]) -> String {
    let (col_w, chart_h, left, bottom) = (18.0, 160.0, 36.0, 40.0);
    let max = days
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let width = left + col_w * days.len().max(1) as f64 + 10.0;
    let height = chart_h + bottom;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="funnel-days" role="img" aria-label="registrations per day" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><line x1="{left}" y1="{chart_h}" x2="{width}" y2="{chart_h}" stroke="#999"/><text x="0" y="12">{max}</text><text x="0" y="{chart_h}">0</text>"##,
        max = max as i64,
    );
    for (i, (day, counts)) in days.iter().enumerate() {
        let x = left + i as f64 * col_w;
        for (s, n) in counts.iter().enumerate() {
            let h = chart_h * (*n as f64 / max);
            let inset = s as f64 * 1.2;
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {n}</title></rect>"##,
                x + 1.0 + inset,
                chart_h - h,
                (col_w - 2.0 - 2.0 * inset).max(1.0),
                SHADES[s.min(SHADES.len() - 1)],
                html_escape(day),
            );
        }
        if i % 7 == 0 || i + 1 == days.len() {
            let _ = write!(
                out,
                r##"<text x="{x}" y="{y}" transform="rotate(45 {x} {y})">{d}</text>"##,
                y = chart_h + 12.0,
                d = html_escape(day.get(5..).unwrap_or(day)),
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_and_escape_labels() {
        let bars = stage_bars("All <platforms>", 10, &[("invited", 8), ("active", 4)]);
        assert!(bars.starts_with("<svg") && bars.ends_with("</svg>"));
        assert!(bars.contains("All &lt;platforms&gt;") && bars.contains("4 (40%)"));
        assert!(bars.contains("8 (80%)"));
        let empty = stage_bars("none", 0, &[("invited", 0), ("active", 0)]);
        assert!(empty.contains("0 (0%)"));
        let days = day_columns(&[
            ("2026-12-01".into(), vec![3, 2, 1]),
            ("2026-12-02".into(), vec![0, 0, 0]),
        ]);
        assert_eq!(days.matches("<rect").count(), 6);
        assert!(days.contains("12-01"));
        assert!(day_columns(&[]).ends_with("</svg>"));
    }
}
