//! Small self-contained HTML pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f1f2f4;color:#202223;margin:0}\
.bar{background:#1a1a1a;color:#fff;padding:10px 24px;font-size:14px}\
.bar b{color:#95bf47}\
main{max-width:560px;margin:40px auto;background:#fff;border-radius:12px;padding:28px;box-shadow:0 1px 3px rgba(0,0,0,.15)}\
h1{font-size:20px;margin:0 0 8px}\
.muted{color:#5c5f62;font-size:14px}\
ul{padding-left:20px}\
li{margin:4px 0}\
code{background:#f1f2f4;padding:1px 4px;border-radius:4px}\
.actions{display:flex;gap:12px;justify-content:flex-end;margin-top:24px}\
button{font-size:15px;padding:9px 18px;border-radius:8px;border:1px solid #8c9196;background:#fff;cursor:pointer}\
button.primary{background:#008060;border-color:#008060;color:#fff}\
.error{border-left:4px solid #d72c0d;padding-left:12px}\
table{width:100%;border-collapse:collapse;font-size:14px}\
td.num{text-align:right}\
td,th{text-align:left;padding:6px 4px;border-bottom:1px solid #e1e3e5;vertical-align:top}\
td form{display:inline}\
td button{font-size:12px;padding:4px 8px;margin:2px}\
.flash{background:#e3f1df;padding:8px 12px;border-radius:8px}";

/// A full page with the development-store banner.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{} · HireCJ development store</title><style>{STYLE}</style></head>\
<body><div class=\"bar\"><b>HireCJ development store</b> · a local Shopify simulator, not real Shopify</div>\
<main>{body}</main></body></html>",
        esc(title)
    )
}

/// An error page like Shopify's "Oauth error" pages.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<div class=\"error\"><h1>{}</h1><p>{}</p></div>",
        esc(title),
        esc(message)
    );
    (status, Html(page(title, &body))).into_response()
}

/// What a scope lets the app do, for the consent page.
pub(crate) fn describe_scope(scope: &str) -> String {
    let (access, resource) = match scope.split_once('_') {
        Some(("read", r)) => ("View", r),
        Some(("write", r)) => ("Edit", r),
        _ => return scope.to_string(),
    };
    let resource = match resource {
        "all_orders" => "all orders, including those older than 60 days",
        r => r,
    };
    format!("{access} {}", resource.replace('_', " "))
}
