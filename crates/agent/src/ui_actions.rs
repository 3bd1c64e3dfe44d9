//! UI actions (seed Phase 4.1): markers in CJ's text that become interactive
//! elements in the chat.
//!
//! CJ writes `{{oauth:shopify}}` where the **Connect Shopify** button belongs.
//! [`UiActionParser`] turns each marker into a placeholder in the text
//! (`__OAUTH_BUTTON_1__`, see [`UiElement::placeholder`]) plus a [`UiElement`]
//! entry (`{"id":"oauth_button_1","type":"oauth_button","provider":"shopify"}`)
//! that the front end renders in the placeholder's place.
//!
//! - Case and whitespace tolerant between the tokens: `{{ OAuth : Shopify }}`.
//! - Streaming safe: text arrives in chunks; a possible marker prefix at the
//!   end of a chunk is held back until it resolves, so the merchant never sees
//!   half a marker. Nothing else is held back.
//! - Other `{{…}}` text passes through unchanged; an unclosed `{` / `{{` /
//!   marker prefix is flushed as text by [`UiActionParser::finish`].
//! - When markers are disabled (the workflow does not enable the component,
//!   or the store is already connected) markers are removed silently.

use serde::{Deserialize, Serialize};

use crate::chart::Chart;

/// The component kind of the Connect-Shopify button.
pub const OAUTH_BUTTON: &str = "oauth_button";

/// The component kind of a chart: `{{chart}}` shows the next chart of the
/// turn's tool results ([`UiActionParser::offer_chart`]), in order; with
/// none left the marker is removed. Charts need no workflow to enable them.
pub const CHART: &str = "chart";

/// UI components a workflow may enable (`ui_components` in workflow YAML).
pub const KNOWN_COMPONENTS: &[&str] = &[OAUTH_BUTTON];

/// A recognised marker: its tokens (matched case-insensitively, whitespace
/// allowed between them) and the element it produces.
struct MarkerSpec {
    tokens: &'static [&'static str],
    kind: &'static str,
    provider: &'static str,
}

const MARKERS: &[MarkerSpec] = &[
    MarkerSpec {
        tokens: &["oauth", ":", "shopify", "}}"],
        kind: OAUTH_BUTTON,
        provider: "shopify",
    },
    MarkerSpec {
        tokens: &["chart", "}}"],
        kind: CHART,
        provider: "",
    },
];

/// Longest text after `{{` that may still become a marker; a longer prefix
/// is released as text (bounds the hold-back on runs of whitespace).
const MAX_MARKER_LEN: usize = 64;

/// An interactive element referenced from the message text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiElement {
    /// Unique within one message, e.g. `oauth_button_1`.
    pub id: String,
    /// Component kind, e.g. `oauth_button` (serialized as `type`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Integration, e.g. `shopify` (empty for a chart).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// What a chart shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
}

impl UiElement {
    /// The placeholder that stands for this element in the text:
    /// `__` + the id in upper case + `__`, e.g. `__OAUTH_BUTTON_1__`.
    pub fn placeholder(&self) -> String {
        format!("__{}__", self.id.to_ascii_uppercase())
    }
}

enum MarkerMatch {
    /// A complete marker of `len` bytes (from the `{{`).
    Full(usize, &'static MarkerSpec),
    /// Could still become a marker; more input needed.
    Partial,
    /// Not a marker.
    No,
}

/// Matches `spec` against `s`, which starts with `{{`.
fn match_spec(s: &str, spec: &'static MarkerSpec) -> MarkerMatch {
    let mut token = 0;
    let mut pos = 0; // bytes of tokens[token] matched
    for (off, c) in s.char_indices().skip(2) {
        let want = spec.tokens[token].as_bytes();
        if pos == 0 && c.is_whitespace() {
            // whitespace between tokens
        } else if c.is_ascii() && (c as u8).to_ascii_lowercase() == want[pos] {
            pos += 1;
            if pos == want.len() {
                token += 1;
                pos = 0;
                if token == spec.tokens.len() {
                    return MarkerMatch::Full(off + c.len_utf8(), spec);
                }
            }
        } else {
            return MarkerMatch::No;
        }
        if off >= MAX_MARKER_LEN {
            return MarkerMatch::No;
        }
    }
    MarkerMatch::Partial
}

fn match_marker(s: &str) -> MarkerMatch {
    let mut partial = false;
    for spec in MARKERS {
        match match_spec(s, spec) {
            m @ MarkerMatch::Full(..) => return m,
            MarkerMatch::Partial => partial = true,
            MarkerMatch::No => {}
        }
    }
    if partial {
        MarkerMatch::Partial
    } else {
        MarkerMatch::No
    }
}

/// Streaming marker parser for one message.
#[derive(Debug, Clone)]
pub struct UiActionParser {
    enabled: bool,
    pending: String,
    elements: Vec<UiElement>,
    /// Charts offered and not yet placed, oldest first.
    charts: std::collections::VecDeque<Chart>,
}

impl UiActionParser {
    /// A parser for one message. `markers_enabled`: the workflow enables the
    /// component and the store is not connected; otherwise markers are
    /// removed from the text without producing elements.
    pub fn new(markers_enabled: bool) -> Self {
        Self {
            enabled: markers_enabled,
            pending: String::new(),
            elements: Vec::new(),
            charts: std::collections::VecDeque::new(),
        }
    }

    /// A chart the next `{{chart}}` marker shows (a tool result's).
    pub fn offer_chart(&mut self, chart: Chart) {
        self.charts.push_back(chart);
    }

    /// Honours markers from now on (a tool found that the merchant must
    /// reconnect Shopify: the Connect button is what they need).
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    /// Feeds the next chunk of model text; returns the text that is safe to
    /// show now (possibly empty).
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        self.drain(false)
    }

    /// Ends the message; returns the held-back rest as text.
    pub fn finish(&mut self) -> String {
        self.drain(true)
    }

    /// Elements produced so far, in text order.
    pub fn elements(&self) -> &[UiElement] {
        &self.elements
    }

    /// Consumes the parser, returning the elements.
    pub fn into_elements(self) -> Vec<UiElement> {
        self.elements
    }

    fn replacement(&mut self, spec: &MarkerSpec) -> String {
        let chart = if spec.kind == CHART {
            match self.charts.pop_front() {
                Some(chart) => Some(chart),
                None => return String::new(),
            }
        } else if self.enabled {
            None
        } else {
            return String::new();
        };
        let n = self.elements.iter().filter(|e| e.kind == spec.kind).count() + 1;
        let element = UiElement {
            id: format!("{}_{n}", spec.kind),
            kind: spec.kind.to_owned(),
            provider: spec.provider.to_owned(),
            chart,
        };
        let placeholder = element.placeholder();
        self.elements.push(element);
        placeholder
    }

    fn drain(&mut self, at_end: bool) -> String {
        let text = std::mem::take(&mut self.pending);
        let mut out = String::with_capacity(text.len());
        let mut start = 0; // first byte not yet emitted
        let mut search = 0; // where to look for the next `{`
        while let Some(rel) = text[search..].find('{') {
            let at = search + rel;
            let rest = &text[at..];
            if rest == "{" {
                if at_end {
                    break;
                }
                out.push_str(&text[start..at]);
                self.pending = rest.to_owned();
                return out;
            }
            if !rest.starts_with("{{") {
                search = at + 1;
                continue;
            }
            match match_marker(rest) {
                MarkerMatch::Full(len, spec) => {
                    out.push_str(&text[start..at]);
                    let r = self.replacement(spec);
                    out.push_str(&r);
                    start = at + len;
                    search = start;
                }
                MarkerMatch::Partial if !at_end => {
                    out.push_str(&text[start..at]);
                    self.pending = rest.to_owned();
                    return out;
                }
                MarkerMatch::Partial | MarkerMatch::No => search = at + 1,
            }
        }
        out.push_str(&text[start..]);
        out
    }
}

/// Parses a complete text at once: `(text with placeholders, elements)`.
pub fn parse_complete(text: &str, markers_enabled: bool) -> (String, Vec<UiElement>) {
    let mut p = UiActionParser::new(markers_enabled);
    let mut out = p.push(text);
    out.push_str(&p.finish());
    (out, p.into_elements())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(n: usize) -> UiElement {
        UiElement {
            id: format!("oauth_button_{n}"),
            kind: "oauth_button".into(),
            provider: "shopify".into(),
            chart: None,
        }
    }

    fn chart(title: &str) -> Chart {
        Chart::new(
            title,
            crate::chart::ChartKind::Columns,
            "Day",
            "Revenue",
            vec![crate::chart::ChartPoint::new("Mon", 1.0, "$1.00")],
        )
    }

    #[test]
    fn chart_markers_place_the_offered_charts_in_order() {
        let mut p = UiActionParser::new(false);
        p.offer_chart(chart("first"));
        p.offer_chart(chart("second"));
        let mut text = p.push("Sales:\n\n{{chart}}\n\nand {{ Chart }}, then {{chart}}.");
        text.push_str(&p.finish());
        assert_eq!(text, "Sales:\n\n__CHART_1__\n\nand __CHART_2__, then .");
        let elements = p.into_elements();
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0].id, "chart_1");
        assert_eq!(elements[0].chart.as_ref().unwrap().title, "first");
        assert_eq!(elements[1].chart.as_ref().unwrap().title, "second");
        let json = serde_json::to_value(&elements[0]).unwrap();
        assert_eq!(json["type"], "chart");
        assert!(json.get("provider").is_none(), "{json}");
        // Without a chart offered, the marker goes (the button's setting
        // does not matter).
        let (t, e) = parse_complete("a {{chart}} b", true);
        assert_eq!(t, "a  b");
        assert!(e.is_empty());
    }

    fn run_chunks(chunks: &[&str], enabled: bool) -> (Vec<String>, Vec<UiElement>) {
        let mut p = UiActionParser::new(enabled);
        let mut outs: Vec<String> = chunks.iter().map(|c| p.push(c)).collect();
        outs.push(p.finish());
        (outs, p.into_elements())
    }

    #[test]
    fn basic_marker() {
        let (t, e) = parse_complete("Connect here: {{oauth:shopify}} then we talk.", true);
        assert_eq!(t, "Connect here: __OAUTH_BUTTON_1__ then we talk.");
        assert_eq!(e, vec![oauth(1)]);
    }

    #[test]
    fn case_and_whitespace_tolerant() {
        for m in [
            "{{ OAuth : Shopify }}",
            "{{OAUTH:SHOPIFY}}",
            "{{\toauth\n:\u{a0}shopify  }}",
            "{{oAuTh :shopify}}",
        ] {
            let (t, e) = parse_complete(&format!("a{m}b"), true);
            assert_eq!(t, "a__OAUTH_BUTTON_1__b", "{m:?}");
            assert_eq!(e, vec![oauth(1)]);
        }
    }

    #[test]
    fn non_markers_pass_through() {
        for s in [
            "{{ name }}",
            "{{oauth:google}}",
            "{{oa uth:shopify}}",
            "{{oauth:shopify}",
            "{{oauth::shopify}}",
            "{ {oauth:shopify}}",
            "json {\"a\": {\"b\": 1}}",
            "{{}}",
            "}}{{",
            "{{ö}}",
        ] {
            let (t, e) = parse_complete(s, true);
            assert_eq!(t, s);
            assert!(e.is_empty(), "{s:?}");
        }
    }

    #[test]
    fn extra_braces_around_a_marker() {
        let (t, e) = parse_complete("{{{oauth:shopify}}}", true);
        assert_eq!(t, "{__OAUTH_BUTTON_1__}");
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn unclosed_prefixes_are_flushed_at_the_end() {
        for s in [
            "end {",
            "end {{",
            "end {{ oauth",
            "end {{oauth:shopify",
            "end {{oauth:shopify}",
        ] {
            let (outs, e) = run_chunks(&[s], true);
            assert_eq!(outs[0], "end ", "{s:?}: only the possible prefix is held");
            assert_eq!(outs.concat(), s);
            assert!(e.is_empty());
        }
    }

    #[test]
    fn long_whitespace_run_is_not_held_forever() {
        let s = format!("{{{{{}", " ".repeat(200));
        let (outs, _) = run_chunks(&[&s], true);
        assert_eq!(outs[0], s);
    }

    #[test]
    fn disabled_removes_markers_silently() {
        let (t, e) = parse_complete("Hi {{ oauth:shopify }}there {{x}}", false);
        assert_eq!(t, "Hi there {{x}}");
        assert!(e.is_empty());
    }

    #[test]
    fn several_markers_get_distinct_ids() {
        let (t, e) = parse_complete("{{oauth:shopify}} and {{OAUTH:shopify}}", true);
        assert_eq!(t, "__OAUTH_BUTTON_1__ and __OAUTH_BUTTON_2__");
        assert_eq!(e, vec![oauth(1), oauth(2)]);
    }

    #[test]
    fn element_serializes_with_type() {
        assert_eq!(
            serde_json::to_value(oauth(1)).unwrap(),
            serde_json::json!({"id":"oauth_button_1","type":"oauth_button","provider":"shopify"})
        );
    }

    fn boundaries(s: &str) -> Vec<usize> {
        (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect()
    }

    /// Every split of the text into three chunks gives the same result as
    /// parsing it whole, in both modes.
    #[test]
    fn every_split_position() {
        let texts = [
            "Hi! {{ OAuth : Shopify }} — café {{name}} {{oauth:google}} {x} {{{oauth:shopify}}} end {{",
            "{{oauth:shopify}}",
            "a{{oauth:shopify}}{{oauth:shopify}}b{",
        ];
        for text in texts {
            for enabled in [true, false] {
                let (whole, whole_elems) = parse_complete(text, enabled);
                let b = boundaries(text);
                for (x, &i) in b.iter().enumerate() {
                    for &j in &b[x..] {
                        let (outs, elems) =
                            run_chunks(&[&text[..i], &text[i..j], &text[j..]], enabled);
                        assert_eq!(outs.concat(), whole, "{text:?} split {i},{j}");
                        assert_eq!(elems, whole_elems, "{text:?} split {i},{j}");
                    }
                }
            }
        }
    }

    /// With the marker as the only braces in the text, no emitted piece ever
    /// contains part of it, wherever the chunks are cut.
    #[test]
    fn merchant_never_sees_half_a_marker() {
        let text = "Ready when you are. {{ OAuth : Shopify }} Tap the button above.";
        let b = boundaries(text);
        for (x, &i) in b.iter().enumerate() {
            for &j in &b[x..] {
                for enabled in [true, false] {
                    let (outs, _) = run_chunks(&[&text[..i], &text[i..j], &text[j..]], enabled);
                    for o in &outs {
                        let o = o.replace("__OAUTH_BUTTON_1__", "");
                        assert!(
                            !o.contains('{')
                                && !o.contains('}')
                                && !o.to_lowercase().contains("oauth"),
                            "piece {o:?} at split {i},{j}"
                        );
                    }
                }
            }
        }
        // Byte by byte (char by char) too.
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        let (outs, elems) = run_chunks(&refs, true);
        assert_eq!(
            outs.concat(),
            "Ready when you are. __OAUTH_BUTTON_1__ Tap the button above."
        );
        assert_eq!(elems.len(), 1);
    }
}
