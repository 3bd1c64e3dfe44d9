//! Charts in CJ's replies: the numbers of a tool result (sales per day or
//! week, a period against the one before, the best sellers) as a picture.
//!
//! A tool that has a chart says so ([`crate::tools`]' `chart`); CJ places it
//! by writing `{{chart}}` on its own line ([`crate::ui_actions`]), which
//! becomes a `chart` UI element carrying the [`Chart`]. The server draws it
//! as inline SVG with the numbers as a table; the model never writes the
//! numbers of a chart, so a chart always shows what the tool read.

use serde::{Deserialize, Serialize};

/// Most points a chart holds (a daily series spans at most 93 days; the
/// newest points are kept).
pub const MAX_POINTS: usize = 120;

/// A chart of one tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// What it shows, e.g. "Revenue by day, 2026-11-01 to 2026-11-07".
    pub title: String,
    /// Columns over time, or bars for a ranking.
    pub kind: ChartKind,
    /// The heading of the labels' column in the table, e.g. "Day".
    pub label_heading: String,
    /// The heading of the values' column, e.g. "Revenue (USD)".
    pub value_heading: String,
    /// In the order drawn: oldest first for [`ChartKind::Columns`], top
    /// to bottom for [`ChartKind::Bars`].
    pub points: Vec<ChartPoint>,
}

/// How a chart is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Vertical columns along a time axis.
    Columns,
    /// Horizontal bars, one labelled row each.
    Bars,
}

/// One value of a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartPoint {
    /// What the value is of ("Mon 3 Nov", "Previous 7 days", a product).
    pub label: String,
    /// The value drawn.
    pub value: f64,
    /// The value as the table and the bar's label show it ("$1,204.50").
    pub display: String,
}

impl Chart {
    /// A chart, keeping at most [`MAX_POINTS`] points (the last ones).
    pub fn new(
        title: impl Into<String>,
        kind: ChartKind,
        label_heading: impl Into<String>,
        value_heading: impl Into<String>,
        mut points: Vec<ChartPoint>,
    ) -> Self {
        if points.len() > MAX_POINTS {
            points.drain(..points.len() - MAX_POINTS);
        }
        Self {
            title: title.into(),
            kind,
            label_heading: label_heading.into(),
            value_heading: value_heading.into(),
            points,
        }
    }
}

impl ChartPoint {
    pub fn new(label: impl Into<String>, value: f64, display: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value,
            display: display.into(),
        }
    }
}
