//! Draws a [`Chart`] as HTML: a figure with its title, an inline SVG (no
//! script to download, sized by its container, so it reads at 320 px) and
//! the numbers as a table behind "The numbers". The table is what
//! assistive technology reads (the SVG is hidden from it); exports carry
//! it as Markdown.
//!
//! Every label may come from the store (product titles): all text is
//! escaped; numbers that are not finite are drawn as zero.

use std::fmt::Write;

use hirecj_agent::chart::{Chart, ChartKind, ChartPoint};

use crate::web::escape_html as escape;

/// Width of the drawing's coordinate space; the SVG scales to its box.
const WIDTH: f64 = 320.0;
/// Columns: height of the plot and the space left of it for the axis.
const PLOT_HEIGHT: f64 = 150.0;
const AXIS_WIDTH: f64 = 44.0;
const TOP: f64 = 10.0;
/// Columns: how many labels the time axis shows at most.
const AXIS_LABELS: usize = 3;
/// About how wide one character of a label is, in drawing units.
const LABEL_CHAR_WIDTH: f64 = 7.5;
/// Bars: height of one row (label above, bar below).
const ROW: f64 = 38.0;
/// Bars: longest label drawn (the table has the whole text).
const BAR_LABEL_CHARS: usize = 36;

/// The chart as a `<figure>`.
pub fn figure(chart: &Chart) -> String {
    let mut out = String::with_capacity(2_048 + chart.points.len() * 160);
    let _ = write!(
        out,
        "<figure class=\"chart\"><figcaption>{}</figcaption>",
        escape(&chart.title)
    );
    if !chart.points.is_empty() {
        match chart.kind {
            ChartKind::Columns => columns(&mut out, &chart.points),
            ChartKind::Bars => bars(&mut out, &chart.points),
        }
    }
    table(&mut out, chart);
    out.push_str("</figure>");
    out
}

/// The chart as a Markdown table under its title (for exports).
pub fn markdown(chart: &Chart) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!(
        "**{}**\n\n| {} | {} |\n|---|---:|\n",
        cell(&chart.title),
        cell(&chart.label_heading),
        cell(&chart.value_heading)
    );
    for p in &chart.points {
        let _ = writeln!(out, "| {} | {} |", cell(&p.label), cell(&p.display));
    }
    out
}

fn value(p: &ChartPoint) -> f64 {
    if p.value.is_finite() {
        p.value.max(0.0)
    } else {
        0.0
    }
}

fn largest(points: &[ChartPoint]) -> f64 {
    points.iter().map(value).fold(0.0, f64::max)
}

fn open_svg(out: &mut String, height: f64) {
    let _ = write!(
        out,
        "<svg class=\"chart-svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" \
         preserveAspectRatio=\"xMinYMin meet\" aria-hidden=\"true\" focusable=\"false\">"
    );
}

/// Columns over time, with three gridlines and a few dates under them.
fn columns(out: &mut String, points: &[ChartPoint]) {
    let max = nice_ceiling(largest(points));
    let height = TOP + PLOT_HEIGHT + 24.0;
    let base = TOP + PLOT_HEIGHT;
    open_svg(out, height);
    for step in 0..=2 {
        let v = max * f64::from(step) / 2.0;
        let y = base - PLOT_HEIGHT * f64::from(step) / 2.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{AXIS_WIDTH}\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            AXIS_WIDTH - 6.0,
            y + 4.0,
            compact(v)
        );
    }
    let n = points.len() as f64;
    let slot = (WIDTH - AXIS_WIDTH) / n;
    let bar = (slot * 0.75).max(1.0);
    let every = points.len().div_ceil(AXIS_LABELS).max(1);
    for (i, p) in points.iter().enumerate() {
        let h = if max > 0.0 {
            PLOT_HEIGHT * value(p) / max
        } else {
            0.0
        };
        let x = AXIS_WIDTH + slot * i as f64 + (slot - bar) / 2.0;
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\"/>",
            base - h
        );
        if i % every == 0 {
            // From its column's left edge, but never past the right edge
            // (a label's width estimated from its length).
            let label = shorten(&p.label, 12);
            let width = LABEL_CHAR_WIDTH * label.chars().count() as f64;
            let (at, anchor) = if x + width > WIDTH {
                (WIDTH, "end")
            } else {
                (x, "start")
            };
            let _ = write!(
                out,
                "<text class=\"axis\" x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                base + 16.0,
                escape(&label)
            );
        }
    }
    out.push_str("</svg>");
}

/// One row per point: the label, then a bar with the value after it.
fn bars(out: &mut String, points: &[ChartPoint]) {
    let max = largest(points);
    let height = ROW * points.len() as f64 + 4.0;
    open_svg(out, height);
    // Room after the longest bar for its value.
    let room = WIDTH - 96.0;
    for (i, p) in points.iter().enumerate() {
        let y = ROW * i as f64;
        let w = if max > 0.0 {
            (room * value(p) / max).max(2.0)
        } else {
            2.0
        };
        let _ = write!(
            out,
            "<text class=\"label\" x=\"0\" y=\"{:.1}\">{}</text>\
             <rect class=\"bar\" x=\"0\" y=\"{:.1}\" width=\"{w:.1}\" height=\"14\"/>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 14.0,
            escape(&shorten(&p.label, BAR_LABEL_CHARS)),
            y + 19.0,
            w + 6.0,
            y + 31.0,
            escape(&p.display)
        );
    }
    out.push_str("</svg>");
}

fn table(out: &mut String, chart: &Chart) {
    let _ = write!(
        out,
        "<details><summary>The numbers</summary><table class=\"chart-data\"><caption>{}</caption><thead><tr><th scope=\"col\">{}</th>\
         <th scope=\"col\" class=\"align-right\">{}</th></tr></thead><tbody>",
        escape(&chart.title),
        escape(&chart.label_heading),
        escape(&chart.value_heading)
    );
    for p in &chart.points {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"align-right\">{}</td></tr>",
            escape(&p.label),
            escape(&p.display)
        );
    }
    out.push_str("</tbody></table></details>");
}

/// The smallest of 1, 2, 2.5 or 5 × 10ⁿ at or above `v` (an axis top).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

/// An axis number: 950, 1.5k, 12k, 3.2M.
fn compact(v: f64) -> String {
    let (scaled, suffix) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if scaled >= 10.0 || scaled.fract() == 0.0 {
        format!("{scaled:.0}{suffix}")
    } else {
        format!("{scaled:.1}{suffix}")
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(kind: ChartKind, points: &[(&str, f64)]) -> Chart {
        Chart::new(
            "Revenue by day",
            kind,
            "Day",
            "Revenue (USD)",
            points
                .iter()
                .map(|(l, v)| ChartPoint::new(*l, *v, format!("${v:.2}")))
                .collect(),
        )
    }

    #[test]
    fn columns_scale_to_the_largest_value_with_a_table_of_every_number() {
        let c = chart(
            ChartKind::Columns,
            &[("Mon", 100.0), ("Tue", 250.0), ("Wed", 0.0)],
        );
        let html = figure(&c);
        assert!(
            html.starts_with("<figure class=\"chart\"><figcaption>Revenue by day</figcaption>")
        );
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 3);
        // 250 is the top of the axis: its column is the plot's full height.
        assert!(html.contains("height=\"150.0\""), "{html}");
        assert!(html.contains(">250</text>"), "{html}");
        assert!(html.contains("aria-hidden=\"true\""));
        assert!(html.contains("<caption>Revenue by day</caption>"));
        assert!(
            html.contains(
                "<tr><th scope=\"row\">Tue</th><td class=\"align-right\">$250.00</td></tr>"
            ),
            "{html}"
        );
    }

    #[test]
    fn bars_rank_with_their_values_and_long_labels_shortened() {
        let long = "A very long product title that goes on and on and on past the edge";
        let c = chart(ChartKind::Bars, &[(long, 61.0), ("Mug", 16.0)]);
        let html = figure(&c);
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 2);
        assert!(html.contains(&format!("{}…", &long[..35])), "{html}");
        // The table keeps the whole title.
        assert!(html.contains(&format!("<th scope=\"row\">{long}</th>")));
        assert!(html.contains(">$61.00</text>"));
    }

    #[test]
    fn store_text_is_escaped_and_odd_numbers_are_drawn_as_zero() {
        let c = chart(
            ChartKind::Bars,
            &[
                ("<script>alert(1)</script> & \"more\"", f64::NAN),
                ("x", -5.0),
            ],
        );
        let html = figure(&c);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;"));
        assert!(!html.contains("=\"NaN"), "{html}");
        assert!(!html.contains("=\"-"), "no negative size: {html}");
        let empty = figure(&chart(ChartKind::Columns, &[]));
        assert!(
            !empty.contains("<svg"),
            "nothing to draw: only the title and the table"
        );
    }

    #[test]
    fn axis_numbers_read_like_a_person_writes_them() {
        assert_eq!(nice_ceiling(250.0), 250.0);
        assert_eq!(nice_ceiling(7_737.41), 10_000.0);
        assert_eq!(nice_ceiling(1_800.0), 2_000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(1_500.0), "1.5k");
        assert_eq!(compact(12_000.0), "12k");
        assert_eq!(compact(3_200_000.0), "3.2M");
    }

    #[test]
    fn the_export_is_a_table() {
        let c = chart(ChartKind::Columns, &[("Mon | Tue", 1.0)]);
        let md = markdown(&c);
        assert!(md.starts_with("**Revenue by day**\n\n| Day | Revenue (USD) |\n|---|---:|\n"));
        assert!(md.contains("| Mon \\| Tue | $1.00 |"), "{md}");
    }
}
