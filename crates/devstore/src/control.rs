//! The index page and the control endpoints (drain, bucket, webhooks).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::pages::{esc, page};
use crate::shop::normalize_shop;
use crate::webhooks::WebhookTopic;
use crate::{DevStore, lock};

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The path prefix the router is mounted under (e.g. `/devstore`), from the
/// original URI and the path the nested router saw.
fn mount_prefix(original: &Uri, inner: &Uri) -> String {
    let orig = original.path();
    let inner = inner.path();
    let prefix = if inner != "/" {
        orig.strip_suffix(inner).unwrap_or("")
    } else {
        orig
    };
    prefix.trim_end_matches('/').to_string()
}

/// `GET /`: installed shops with webhook buttons.
pub(crate) async fn index(
    State(store): State<DevStore>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    let prefix = mount_prefix(&original, &uri);
    let query = pairs(query.unwrap_or_default().as_bytes());
    let config = &store.inner.config;
    let flash = get(&query, "message")
        .map(|m| format!("<p class=\"flash\">{}</p>", esc(m)))
        .unwrap_or_default();
    let installed = store.installed_shops();
    let rows: String = installed
        .iter()
        .map(|i| {
            let shop = esc(&i.shop);
            let buttons: String = WebhookTopic::ALL
                .iter()
                .filter(|t| **t != WebhookTopic::AppUninstalled)
                .map(|t| {
                    format!(
                        "<form method=\"post\" action=\"{prefix}/_control/webhook\">\
<input type=\"hidden\" name=\"shop\" value=\"{shop}\">\
<input type=\"hidden\" name=\"topic\" value=\"{topic}\">\
<button type=\"submit\">Send {topic}</button></form>",
                        prefix = esc(&prefix),
                        topic = t.as_str()
                    )
                })
                .collect();
            format!(
                "<tr><td><b>{shop}</b><br><span class=\"muted\">{scope}</span></td><td>{buttons}\
<form method=\"post\" action=\"{prefix}/_control/uninstall\">\
<input type=\"hidden\" name=\"shop\" value=\"{shop}\">\
<button type=\"submit\">Uninstall (sends app/uninstalled)</button></form></td></tr>",
                scope = esc(&i.scope),
                prefix = esc(&prefix),
            )
        })
        .collect();
    let table = if installed.is_empty() {
        "<p class=\"muted\">No shop has installed the app yet. Connect any \
<code>name.myshopify.com</code> from the app to install it here.</p>"
            .to_string()
    } else {
        format!("<table><tr><th>Shop</th><th>Actions</th></tr>{rows}</table>")
    };
    let body = format!(
        "<h1>Development store</h1>{flash}\
<p class=\"muted\">Every <code>*.myshopify.com</code> name is a store with its own \
deterministic products, customers and orders. App: <b>{app}</b>, callback \
<code>{callback}</code>, webhooks to <code>{webhooks}</code>.</p>\
<h2>Installed shops</h2>{table}",
        app = esc(&config.app_name),
        callback = esc(&config.app_callback_url),
        webhooks = esc(&config.app_webhook_url),
    );
    Html(page("Development store", &body)).into_response()
}

fn back(prefix: &str, message: &str) -> Response {
    let msg: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            format!(
                "{}?message={msg}",
                if prefix.is_empty() { "/" } else { prefix }
            ),
        )],
    )
        .into_response()
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// `POST /_control/drain?shop=`: empties the shop's bucket.
pub(crate) async fn drain(State(store): State<DevStore>, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    let Some(shop) = get(&query, "shop").and_then(normalize_shop) else {
        return bad("missing or invalid shop");
    };
    store.drain_bucket(&shop);
    Json(json!({"shop": shop, "currentlyAvailable": 0})).into_response()
}

/// `POST /_control/expire_tokens?shop=`: expires the shop's expiring
/// access tokens now.
pub(crate) async fn expire_tokens(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    let Some(shop) = get(&query, "shop").and_then(normalize_shop) else {
        return bad("missing or invalid shop");
    };
    store.expire_access_tokens(&shop);
    Json(json!({"shop": shop, "expired": true})).into_response()
}

/// `POST /_control/bucket?max=&restore_rate=`: changes the bucket limits.
pub(crate) async fn bucket(State(store): State<DevStore>, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    let current = *lock(&store.inner.limits);
    let parse = |k: &str, d: f64| get(&query, k).map_or(Ok(d), |v| v.parse::<f64>());
    match (
        parse("max", current.max),
        parse("restore_rate", current.restore_rate),
    ) {
        (Ok(max), Ok(rate)) => {
            store.set_bucket_limits(max, rate);
            Json(json!({"maximumAvailable": max, "restoreRate": rate})).into_response()
        }
        _ => bad("max and restore_rate must be numbers"),
    }
}

/// `POST /_control/webhook` (form `shop`, `topic`).
pub(crate) async fn webhook(
    State(store): State<DevStore>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    body: Bytes,
) -> Response {
    let prefix = mount_prefix(&original, &uri);
    let form = pairs(&body);
    let Some(shop) = get(&form, "shop").and_then(normalize_shop) else {
        return bad("missing or invalid shop");
    };
    let topic = match get(&form, "topic")
        .unwrap_or_default()
        .parse::<WebhookTopic>()
    {
        Ok(t) => t,
        Err(e) => return bad(&e),
    };
    let result = if topic == WebhookTopic::AppUninstalled {
        store.uninstall(&shop).await
    } else {
        store.send_webhook(topic, &shop, None).await
    };
    match result {
        Ok(d) => back(
            &prefix,
            &format!(
                "Sent {topic} for {shop}: the app answered HTTP {}.",
                d.status
            ),
        ),
        Err(e) => back(&prefix, &format!("Could not send {topic} for {shop}: {e}")),
    }
}

/// `POST /_control/uninstall` (form `shop`): revoke and send `app/uninstalled`.
pub(crate) async fn uninstall(
    State(store): State<DevStore>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    body: Bytes,
) -> Response {
    let prefix = mount_prefix(&original, &uri);
    let form = pairs(&body);
    let Some(shop) = get(&form, "shop").and_then(normalize_shop) else {
        return bad("missing or invalid shop");
    };
    match store.uninstall(&shop).await {
        Ok(d) => back(
            &prefix,
            &format!(
                "Uninstalled from {shop}; app/uninstalled answered HTTP {}.",
                d.status
            ),
        ),
        Err(e) => back(
            &prefix,
            &format!("Uninstalled from {shop}, but the webhook failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            mount_prefix(&u("/devstore/_control/webhook"), &u("/_control/webhook")),
            "/devstore"
        );
        assert_eq!(mount_prefix(&u("/devstore"), &u("/")), "/devstore");
        assert_eq!(mount_prefix(&u("/devstore/"), &u("/")), "/devstore");
        assert_eq!(mount_prefix(&u("/"), &u("/")), "");
    }
}
