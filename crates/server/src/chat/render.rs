//! CJ's markdown as sanitized HTML. Raw HTML in a message is never trusted:
//! `ammonia` keeps only harmless tags and `http`, `https` and `mailto` links.
//! UI-element placeholders become `<span data-ui-element="…">` slots the
//! chat fills with the element (e.g. the Connect Shopify form); a page
//! without the chat's script shows what was there in words.

use hirecj_agent::chart::Chart;
use hirecj_agent::ui_actions::{CHART, OAUTH_BUTTON};
use serde_json::Value;

/// Where CJ offered the Connect Shopify button, in words: on pages without
/// the chat's script and in the Markdown export.
pub(crate) const CONNECT_BUTTON_NOTE: &str = "[Connect Shopify button]";

/// Table column alignments: pulldown-cmark's inline style, the class kept.
const ALIGNMENTS: [(&str, &str); 2] = [("right", "align-right"), ("center", "align-center")];

/// Renders `content` (markdown, possibly with UI placeholders) to safe HTML.
pub fn markdown_to_html(content: &str, ui_elements: &Value) -> String {
    // Placeholders like `__OAUTH_BUTTON_1__` would read as bold markdown, so
    // they become plain alphanumeric sentinels first.
    let ids: Vec<String> = ui_elements
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("id").and_then(Value::as_str))
                .filter(|id| id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // Charts are drawn here (from numbers and escaped text); other
    // elements are empty slots the page fills.
    let charts: Vec<Option<String>> = ids
        .iter()
        .map(|id| chart_of(ui_elements, id).map(|c| super::chart::figure(&c)))
        .collect();
    let mut text = content.to_owned();
    for (i, id) in ids.iter().enumerate() {
        let placeholder = format!("__{}__", id.to_ascii_uppercase());
        text = text.replace(&placeholder, &format!("\n\nHIRECJSLOT{i}X\n\n"));
    }

    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    options.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    let parser = pulldown_cmark::Parser::new_ext(&text, options);
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, under_the_page_heading(parser));

    // A table column's alignment (`---:`) comes as an inline style, which
    // the sanitiser drops: it becomes a class it keeps.
    for (style, class) in ALIGNMENTS {
        html = html.replace(
            &format!(" style=\"text-align: {style}\""),
            &format!(" class=\"{class}\""),
        );
    }
    let mut clean = ammonia::Builder::default()
        .add_allowed_classes("th", ALIGNMENTS.map(|(_, class)| class))
        .add_allowed_classes("td", ALIGNMENTS.map(|(_, class)| class))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        // A link (an order in the Shopify admin) opens beside the chat.
        .set_tag_attribute_value("a", "target", "_blank")
        .clean(&html)
        .to_string();
    for (i, id) in ids.iter().enumerate() {
        let slot = match &charts[i] {
            Some(figure) => figure.clone(),
            // What a page without the chat's script shows (a transcript in
            // history, the chat without JavaScript); the chat replaces it
            // with the element.
            None if element_type(ui_elements, id) == Some(OAUTH_BUTTON) => format!(
                "<span class=\"ui-slot\" data-ui-element=\"{id}\"><em class=\"ui-fallback\">{CONNECT_BUTTON_NOTE}</em></span>"
            ),
            None => format!("<span class=\"ui-slot\" data-ui-element=\"{id}\"></span>"),
        };
        clean = clean
            .replace(&format!("<p>HIRECJSLOT{i}X</p>"), &slot)
            .replace(&format!("HIRECJSLOT{i}X"), &slot);
    }
    clean
}

/// A message's headings placed under the page's own `<h1>`: the first is
/// an `<h2>` and none is more than one level below the one before (`###`
/// opening a reply is an `<h2>`), so a screen reader's outline has no
/// gaps. `chat.js` shapes a streaming reply's headings the same way.
fn under_the_page_heading<'a>(
    events: impl Iterator<Item = pulldown_cmark::Event<'a>>,
) -> impl Iterator<Item = pulldown_cmark::Event<'a>> {
    use pulldown_cmark::{Event, HeadingLevel, Tag, TagEnd};
    let mut previous = 1usize;
    let mut open = HeadingLevel::H2;
    events.map(move |event| match event {
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => {
            let wanted = (level as usize + 1).min(previous + 1).clamp(2, 6);
            previous = wanted;
            open = HeadingLevel::try_from(wanted).unwrap_or(HeadingLevel::H6);
            Event::Start(Tag::Heading {
                level: open,
                id,
                classes,
                attrs,
            })
        }
        Event::End(TagEnd::Heading(_)) => Event::End(TagEnd::Heading(open)),
        other => other,
    })
}

/// The UI element `id` of a message.
fn element<'a>(ui_elements: &'a Value, id: &str) -> Option<&'a Value> {
    ui_elements
        .as_array()?
        .iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(id))
}

/// The type of the UI element `id`.
fn element_type<'a>(ui_elements: &'a Value, id: &str) -> Option<&'a str> {
    element(ui_elements, id)?.get("type")?.as_str()
}

/// The chart of the `chart` element `id`, if it is one and reads as one.
pub(crate) fn chart_of(ui_elements: &Value, id: &str) -> Option<Chart> {
    let element = element(ui_elements, id)?;
    if element.get("type").and_then(Value::as_str) != Some(CHART) {
        return None;
    }
    serde_json::from_value(element.get("chart")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markdown_renders() {
        let html = markdown_to_html("**12 orders** last week\n\n- one\n- two", &json!([]));
        assert!(html.contains("<strong>12 orders</strong>"), "{html}");
        assert!(html.contains("<li>one</li>"), "{html}");
    }

    #[test]
    fn numeric_columns_keep_their_alignment() {
        let html = markdown_to_html(
            "| day | revenue |\n|---|---:|\n| Mon | $1,204.50 |",
            &json!([]),
        );
        assert!(
            html.contains("<th class=\"align-right\">revenue</th>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"align-right\">$1,204.50</td>"),
            "{html}"
        );
        assert!(html.contains("<td>Mon</td>"), "{html}");
        assert!(!html.contains("style="), "{html}");
        // A class the sanitiser does not know stays out.
        let html = markdown_to_html("<td class=\"evil\">x</td>", &json!([]));
        assert!(!html.contains("evil"), "{html}");
    }

    #[test]
    fn headings_sit_under_the_page_heading_without_gaps() {
        let html = markdown_to_html(
            "### Sales\n\n#### By day\n\n###### Deep\n\n# Big\n\ntext",
            &json!([]),
        );
        assert!(
            html.starts_with(
                "<h2>Sales</h2>\n<h3>By day</h3>\n<h4>Deep</h4>\n<h2>Big</h2>\n<p>text</p>"
            ),
            "{html}"
        );
    }

    #[test]
    fn links_open_beside_the_chat_without_the_opener() {
        let html = markdown_to_html(
            "[#1001](https://cool-shop.myshopify.com/admin/orders/42) <a href=\"https://x.test\" target=\"_self\">x</a>",
            &json!([]),
        );
        assert!(
            html.contains(
                "<a href=\"https://cool-shop.myshopify.com/admin/orders/42\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">#1001</a>"
            ),
            "{html}"
        );
        assert!(!html.contains("_self"), "{html}");
    }

    #[test]
    fn hostile_html_is_inert() {
        let hostile = "<script>alert(1)</script> <img src=x onerror=alert(2)> \
                       [click](javascript:alert(3)) <a href=\"javascript:alert(4)\">x</a>";
        let html = markdown_to_html(hostile, &json!([]));
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("href=\"javascript:"), "{html}");
        assert!(!html.contains("<a href=\"javascript"), "{html}");
    }

    #[test]
    fn charts_are_drawn_in_their_place() {
        let chart = json!({"title": "Revenue by day", "kind": "columns", "label_heading": "Day",
            "value_heading": "Revenue (USD)",
            "points": [{"label": "Mon", "value": 12.5, "display": "$12.50"}]});
        let html = markdown_to_html(
            "**Sales by day**\n\n__CHART_1__\n\n- Mon: $12.50",
            &json!([{"id": "chart_1", "type": "chart", "chart": chart}]),
        );
        assert!(html.contains("<figure class=\"chart\">"), "{html}");
        assert!(html.contains("<svg"), "{html}");
        assert!(
            !html.contains("<p><figure"),
            "a figure is not inside a paragraph: {html}"
        );
        assert!(!html.contains("CHART_1"), "{html}");
        // A chart element that does not read as one is an empty slot.
        let html = markdown_to_html(
            "__CHART_1__",
            &json!([{"id": "chart_1", "type": "chart", "chart": {"title": 3}}]),
        );
        assert!(html.contains("data-ui-element=\"chart_1\""), "{html}");
        assert!(!html.contains("<svg"), "{html}");
    }

    #[test]
    fn placeholders_become_slots() {
        let html = markdown_to_html(
            "Connect your store:\n\n__OAUTH_BUTTON_1__\n\nThen ask me anything.",
            &json!([{"id": "oauth_button_1", "type": "oauth_button", "provider": "shopify"}]),
        );
        assert!(
            html.contains("data-ui-element=\"oauth_button_1\""),
            "{html}"
        );
        assert!(!html.contains("OAUTH_BUTTON"), "{html}");
        // Without the chat's script, the slot says what was offered there.
        assert!(
            html.contains("<em class=\"ui-fallback\">[Connect Shopify button]</em></span>"),
            "{html}"
        );
        // An id that is not safe is never put into the markup.
        let html = markdown_to_html("x", &json!([{"id": "\"><script>"}]));
        assert!(!html.contains("<script"), "{html}");
    }
}
