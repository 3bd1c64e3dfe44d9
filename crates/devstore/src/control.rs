//! The index page and the control endpoints (drain, bucket, webhooks).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::data::{Cents, FinancialStatus, FulfillmentStatus, Order, ProductStatus};
use crate::pages::{esc, page};
use crate::payloads;
use crate::shop::normalize_shop;
use crate::webhooks::WebhookTopic;
use crate::{
    CancelOrder, ChangeError, CustomerUpdate, Delivery, DeliveryFaults, DeliveryOutcome, DevStore,
    DevStoreError, NewCustomer, NewLineItem, NewOrder, NewProduct, NewRefund, OrderUpdate,
    ProductUpdate, RefundLine, lock,
};

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
            let buttons: String = WebhookTopic::COMPLIANCE
                .iter()
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
            let subscriptions = store.webhook_subscriptions(&i.shop).len();
            let buttons = format!(
                "{buttons}<form method=\"post\" action=\"{prefix}/_control/orders\">\
<input type=\"hidden\" name=\"shop\" value=\"{shop}\">\
<button type=\"submit\">Create a random order ({subscriptions} webhook subscriptions)</button></form>",
                prefix = esc(&prefix),
            );
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

/// `POST /_control/bulk?shop=[&hold=true|false]`: holds the shop's bulk
/// operations `RUNNING` (`true`) or lets them finish (`false`); answers
/// the shop's operations.
pub(crate) async fn bulk(State(store): State<DevStore>, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    let Some(shop) = get(&query, "shop").and_then(normalize_shop) else {
        return bad("missing or invalid shop");
    };
    match get(&query, "hold") {
        None => {}
        Some("true") => store.hold_bulk_operations(&shop),
        Some("false") => store.release_bulk_operations(&shop),
        Some(_) => return bad("hold must be true or false"),
    }
    let held = lock(&store.inner.bulk).held.contains(&shop);
    Json(json!({
        "shop": shop,
        "held": held,
        "operations": store.bulk_operations(&shop),
    }))
    .into_response()
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

// ---------------------------------------------------------------- data changes
//
// Form posts (`application/x-www-form-urlencoded`, the query string works
// too) answering JSON: the changed object as its webhook payload
// (`payloads.rs`), 400 for a malformed form, 404 for an unknown object,
// 422 for a change Shopify would refuse. Every one takes `shop` and,
// optionally, `delivery` (repeated or comma-separated `send`, `duplicate`,
// `hold`, `drop`): the fault plan for the deliveries this change causes.

/// A form: the query string's pairs, then the body's.
fn form(query: Option<String>, body: &[u8]) -> Vec<(String, String)> {
    let mut all = pairs(query.unwrap_or_default().as_bytes());
    all.extend(pairs(body));
    all
}

fn all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

fn non_empty<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    get(pairs, key).map(str::trim).filter(|v| !v.is_empty())
}

fn status(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({"error": message}))).into_response()
}

/// A refused change: 404 for what does not exist, 422 for what Shopify
/// would refuse, 400 otherwise.
impl From<DevStoreError> for Refusal {
    fn from(e: DevStoreError) -> Self {
        let code = match e {
            DevStoreError::Change(ChangeError::NotFound { .. }) => StatusCode::NOT_FOUND,
            DevStoreError::Change(ChangeError::Invalid(_)) | DevStoreError::Subscription(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal(code, e.to_string())
    }
}

/// A money amount like `12.50` or `12` in cents.
pub(crate) fn parse_cents(s: &str) -> Option<Cents> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

fn parse_financial(s: &str) -> Option<FinancialStatus> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "paid" => FinancialStatus::Paid,
        "pending" => FinancialStatus::Pending,
        "authorized" => FinancialStatus::Authorized,
        "partially_refunded" => FinancialStatus::PartiallyRefunded,
        "refunded" => FinancialStatus::Refunded,
        "voided" => FinancialStatus::Voided,
        _ => return None,
    })
}

fn parse_fulfillment(s: &str) -> Option<FulfillmentStatus> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "fulfilled" => FulfillmentStatus::Fulfilled,
        "unfulfilled" | "null" | "none" => FulfillmentStatus::Unfulfilled,
        "partial" | "partially_fulfilled" => FulfillmentStatus::PartiallyFulfilled,
        _ => return None,
    })
}

fn parse_product_status(s: &str) -> Option<ProductStatus> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "active" => ProductStatus::Active,
        "draft" => ProductStatus::Draft,
        "archived" => ProductStatus::Archived,
        _ => return None,
    })
}

/// `ID`, `gid://shopify/Kind/ID`.
fn parse_id(kind: &str, s: &str) -> Option<u64> {
    let s = s.trim();
    s.parse()
        .ok()
        .or_else(|| crate::graphql::parse_gid(kind, s))
}

/// `ID:QTY` (or `ID`, one unit).
fn parse_line(kind: &str, s: &str) -> Option<(u64, i64)> {
    let (id, qty) = s.split_once(':').unwrap_or((s, "1"));
    Some((parse_id(kind, id)?, qty.trim().parse().ok()?))
}

/// A refused control call: its status and message.
pub(crate) struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        status(self.0, &self.1)
    }
}

fn refuse(message: &str) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.to_string())
}

/// What a change endpoint needs: the shop, the form, the fault plan set.
struct Call {
    shop: String,
    form: Vec<(String, String)>,
}

fn call(store: &DevStore, query: Option<String>, body: &[u8]) -> Result<Call, Refusal> {
    let form = form(query, body);
    let Some(shop) = get(&form, "shop").and_then(normalize_shop) else {
        return Err(refuse("missing or invalid shop"));
    };
    let plan: Result<Vec<Delivery>, String> =
        all(&form, "delivery").into_iter().map(str::parse).collect();
    match plan {
        Ok(plan) if !plan.is_empty() => store.plan_deliveries(&shop, plan),
        Ok(_) => {}
        Err(e) => return Err(refuse(&e)),
    }
    Ok(Call { shop, form })
}

/// The order `id` names: a numeric id, a GID or a name like `#1042`.
fn order_id(store: &DevStore, c: &Call) -> Result<u64, Refusal> {
    let Some(raw) = non_empty(&c.form, "id").or_else(|| non_empty(&c.form, "order")) else {
        return Err(refuse("missing order id"));
    };
    if let Some(number) = raw.strip_prefix('#') {
        let number: u64 = number.parse().map_err(|_| refuse("invalid order name"))?;
        return store
            .dataset(&c.shop)
            .orders
            .iter()
            .find(|o| o.number == number)
            .map(|o| o.id)
            .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, format!("order #{number} not found")));
    }
    parse_id("Order", raw).ok_or_else(|| refuse("invalid order id"))
}

fn id_of(c: &Call, kind: &str) -> Result<u64, Refusal> {
    non_empty(&c.form, "id")
        .and_then(|raw| parse_id(kind, raw))
        .ok_or_else(|| {
            refuse(&format!(
                "missing or invalid {} id",
                kind.to_ascii_lowercase()
            ))
        })
}

fn order_json(store: &DevStore, shop: &str, order: &Order) -> Response {
    let ds = store.dataset(shop);
    Json(json!({"order": payloads::order(&ds, order)})).into_response()
}

/// `POST /_control/orders`: create an order. Form: `line=VARIANT_ID[:QTY]`
/// (repeated; none: a random plausible order), `customer_id`, `email`,
/// `financial_status`, `fulfillment_status`, `tags` (comma-separated),
/// `note`, `source_name`, `seed`.
pub(crate) async fn create_order(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let mut order = NewOrder::default();
    for raw in all(&c.form, "line") {
        let Some((variant_id, quantity)) = parse_line("ProductVariant", raw) else {
            return Err(refuse("line must be VARIANT_ID or VARIANT_ID:QUANTITY"));
        };
        order.line_items.push(NewLineItem {
            variant_id,
            quantity,
        });
    }
    if let Some(raw) = non_empty(&c.form, "customer_id") {
        let Some(id) = parse_id("Customer", raw) else {
            return Err(refuse("invalid customer_id"));
        };
        order.customer_id = Some(id);
    }
    order.email = non_empty(&c.form, "email").map(str::to_string);
    if let Some(raw) = non_empty(&c.form, "financial_status") {
        let Some(s) = parse_financial(raw) else {
            return Err(refuse("invalid financial_status"));
        };
        order.financial_status = Some(s);
    }
    if let Some(raw) = non_empty(&c.form, "fulfillment_status") {
        let Some(s) = parse_fulfillment(raw) else {
            return Err(refuse("invalid fulfillment_status"));
        };
        order.fulfillment_status = Some(s);
    }
    order.tags = all(&c.form, "tags")
        .into_iter()
        .map(str::to_string)
        .collect();
    order.note = non_empty(&c.form, "note").map(str::to_string);
    order.source_name = non_empty(&c.form, "source_name").map(str::to_string);
    if let Some(raw) = non_empty(&c.form, "seed") {
        let Ok(seed) = raw.parse() else {
            return Err(refuse("invalid seed"));
        };
        order.seed = Some(seed);
    }
    let o = store.create_order(&c.shop, order)?;
    Ok(order_json(&store, &c.shop, &o))
}

/// `POST /_control/orders/update`: form `id` (id, GID or `#name`), `tags`
/// (replaces them; empty clears), `note`, `email`, `financial_status`,
/// `fulfillment_status`.
pub(crate) async fn update_order(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = order_id(&store, &c)?;
    let mut update = OrderUpdate::default();
    if get(&c.form, "tags").is_some() {
        update.tags = Some(
            all(&c.form, "tags")
                .into_iter()
                .map(str::to_string)
                .collect(),
        );
    }
    if let Some(note) = get(&c.form, "note") {
        update.note = Some(Some(note.to_string()).filter(|n| !n.trim().is_empty()));
    }
    update.email = non_empty(&c.form, "email").map(str::to_string);
    if let Some(raw) = non_empty(&c.form, "financial_status") {
        let Some(s) = parse_financial(raw) else {
            return Err(refuse("invalid financial_status"));
        };
        update.financial_status = Some(s);
    }
    if let Some(raw) = non_empty(&c.form, "fulfillment_status") {
        let Some(s) = parse_fulfillment(raw) else {
            return Err(refuse("invalid fulfillment_status"));
        };
        update.fulfillment_status = Some(s);
    }
    let o = store.update_order(&c.shop, id, update)?;
    Ok(order_json(&store, &c.shop, &o))
}

/// `POST /_control/orders/cancel`: form `id`, `reason`, `refund`
/// (`true` refunds what is left).
pub(crate) async fn cancel_order(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = order_id(&store, &c)?;
    let cancel = CancelOrder {
        reason: non_empty(&c.form, "reason").map(str::to_string),
        refund: non_empty(&c.form, "refund").is_some_and(|v| matches!(v, "true" | "1" | "on")),
    };
    let o = store.cancel_order(&c.shop, id, cancel)?;
    Ok(order_json(&store, &c.shop, &o))
}

/// `POST /_control/orders/delete`: form `id` (a cancelled or archived
/// order). Answers the deleted order.
pub(crate) async fn delete_order(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = order_id(&store, &c)?;
    let o = store.delete_order(&c.shop, id)?;
    Ok(Json(json!({"deleted": {"id": o.id, "name": o.name()}})).into_response())
}

/// `POST /_control/orders/refund`: form `id`, `amount` (decimal, e.g.
/// `12.50`; default: the lines' subtotals, or everything left), `note`,
/// `line=LINE_ITEM_ID[:QTY]` (repeated). Answers the refund and the order.
pub(crate) async fn refund_order(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = order_id(&store, &c)?;
    let mut refund = NewRefund {
        note: non_empty(&c.form, "note").map(str::to_string),
        ..NewRefund::default()
    };
    if let Some(raw) = non_empty(&c.form, "amount") {
        let Some(cents) = parse_cents(raw) else {
            return Err(refuse("amount must be a decimal like 12.50"));
        };
        refund.amount = Some(cents);
    }
    for raw in all(&c.form, "line") {
        let Some((line_item_id, quantity)) = parse_line("LineItem", raw) else {
            return Err(refuse("line must be LINE_ITEM_ID or LINE_ITEM_ID:QUANTITY"));
        };
        refund.line_items.push(RefundLine {
            line_item_id,
            quantity,
        });
    }
    let (o, r) = store.refund_order(&c.shop, id, refund)?;
    let ds = store.dataset(&c.shop);
    Ok(Json(json!({
        "refund": payloads::refund(&ds, &o, &r),
        "order": payloads::order(&ds, &o),
    }))
    .into_response())
}

/// `POST /_control/products`: form `title`, `price` (decimal), `vendor`,
/// `product_type`, `status`, `sku`, `inventory`.
pub(crate) async fn create_product(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let Some(price) = parse_cents(non_empty(&c.form, "price").unwrap_or("0")) else {
        return Err(refuse("price must be a decimal like 24.00"));
    };
    let status = match non_empty(&c.form, "status").map(parse_product_status) {
        Some(None) => return Err(refuse("status must be active, draft or archived")),
        Some(s) => s,
        None => None,
    };
    let Ok(inventory_quantity) = non_empty(&c.form, "inventory").unwrap_or("0").parse() else {
        return Err(refuse("inventory must be an integer"));
    };
    let product = NewProduct {
        title: non_empty(&c.form, "title").unwrap_or_default().to_string(),
        vendor: non_empty(&c.form, "vendor").map(str::to_string),
        product_type: non_empty(&c.form, "product_type").map(str::to_string),
        status,
        price,
        sku: non_empty(&c.form, "sku").map(str::to_string),
        inventory_quantity,
    };
    let p = store.create_product(&c.shop, product)?;
    let ds = store.dataset(&c.shop);
    Ok(Json(json!({"product": payloads::product(&ds, &p)})).into_response())
}

/// `POST /_control/products/update`: form `id`, `title`, `price`,
/// `vendor`, `product_type`, `status`.
pub(crate) async fn update_product(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = id_of(&c, "Product")?;
    let price = match non_empty(&c.form, "price").map(parse_cents) {
        Some(None) => return Err(refuse("price must be a decimal like 24.00")),
        Some(p) => p,
        None => None,
    };
    let status = match non_empty(&c.form, "status").map(parse_product_status) {
        Some(None) => return Err(refuse("status must be active, draft or archived")),
        Some(s) => s,
        None => None,
    };
    let update = ProductUpdate {
        title: non_empty(&c.form, "title").map(str::to_string),
        vendor: non_empty(&c.form, "vendor").map(str::to_string),
        product_type: non_empty(&c.form, "product_type").map(str::to_string),
        status,
        price,
    };
    let p = store.update_product(&c.shop, id, update)?;
    let ds = store.dataset(&c.shop);
    Ok(Json(json!({"product": payloads::product(&ds, &p)})).into_response())
}

/// `POST /_control/products/delete`: form `id`.
pub(crate) async fn delete_product(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = id_of(&c, "Product")?;
    let p = store.delete_product(&c.shop, id)?;
    Ok(Json(json!({"deleted": {"id": p.id}})).into_response())
}

/// `POST /_control/customers`: form `email`, `first_name`, `last_name`,
/// `phone`.
pub(crate) async fn create_customer(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let customer = NewCustomer {
        email: non_empty(&c.form, "email").unwrap_or_default().to_string(),
        first_name: non_empty(&c.form, "first_name")
            .unwrap_or_default()
            .to_string(),
        last_name: non_empty(&c.form, "last_name")
            .unwrap_or_default()
            .to_string(),
        phone: non_empty(&c.form, "phone").map(str::to_string),
    };
    let customer = store.create_customer(&c.shop, customer)?;
    let ds = store.dataset(&c.shop);
    Ok(Json(json!({"customer": payloads::customer(&ds, &customer)})).into_response())
}

/// `POST /_control/customers/update`: form `id`, `email`, `first_name`,
/// `last_name`, `phone` (empty clears it).
pub(crate) async fn update_customer(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = id_of(&c, "Customer")?;
    let update = CustomerUpdate {
        email: non_empty(&c.form, "email").map(str::to_string),
        first_name: non_empty(&c.form, "first_name").map(str::to_string),
        last_name: non_empty(&c.form, "last_name").map(str::to_string),
        phone: get(&c.form, "phone").map(|p| Some(p.trim().to_string()).filter(|p| !p.is_empty())),
    };
    let customer = store.update_customer(&c.shop, id, update)?;
    let ds = store.dataset(&c.shop);
    Ok(Json(json!({"customer": payloads::customer(&ds, &customer)})).into_response())
}

/// `POST /_control/customers/delete`: form `id`.
pub(crate) async fn delete_customer(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c = call(&store, query, &body)?;
    let id = id_of(&c, "Customer")?;
    let customer = store.delete_customer(&c.shop, id)?;
    Ok(Json(json!({"deleted": {"id": customer.id}})).into_response())
}

/// `POST /_control/deliveries`: the shop's delivery fault controls. Form:
/// `delivery` (the plan for the next deliveries, see above), `duplicate`,
/// `hold`, `drop` (random fault rates, 0 to 1) with `seed`, `faults=off`
/// (no random faults), `release=true` (send what is held now). Answers the
/// shop's subscriptions and recent deliveries.
pub(crate) async fn deliveries(
    State(store): State<DevStore>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let c = match call(&store, query, &body) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let rate = |k: &str| -> Result<Option<f64>, Refusal> {
        match non_empty(&c.form, k) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .map(Some)
                .ok_or_else(|| refuse(&format!("{k} must be a probability between 0 and 1"))),
        }
    };
    let rates = (rate("duplicate"), rate("hold"), rate("drop"));
    let (duplicate, hold, drop) = match rates {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r.into_response(),
    };
    if non_empty(&c.form, "faults") == Some("off") {
        store.set_delivery_faults(&c.shop, None);
    } else if duplicate.is_some() || hold.is_some() || drop.is_some() {
        let Ok(seed) = non_empty(&c.form, "seed").unwrap_or("0").parse() else {
            return bad("seed must be an integer");
        };
        store.set_delivery_faults(
            &c.shop,
            Some(DeliveryFaults {
                duplicate: duplicate.unwrap_or(0.0),
                hold: hold.unwrap_or(0.0),
                drop: drop.unwrap_or(0.0),
                seed,
            }),
        );
    }
    if non_empty(&c.form, "release").is_some_and(|v| matches!(v, "true" | "1" | "on")) {
        store.release_held_deliveries(&c.shop);
    }
    let subscriptions: Vec<_> = store
        .webhook_subscriptions(&c.shop)
        .into_iter()
        .map(|s| json!({"id": s.id, "topic": s.topic.as_str(), "uri": s.uri}))
        .collect();
    let log: Vec<_> = store
        .delivery_log(&c.shop)
        .into_iter()
        .rev()
        .take(50)
        .map(|r| {
            let outcome = match r.outcome {
                DeliveryOutcome::Answered(code) => json!({"status": code}),
                DeliveryOutcome::Failed(e) => json!({"error": e}),
                DeliveryOutcome::Dropped => json!({"dropped": true}),
            };
            json!({
                "topic": r.topic.as_str(),
                "uri": r.uri,
                "webhook_id": r.webhook_id,
                "delivery": format!("{:?}", r.delivery).to_ascii_lowercase(),
                "outcome": outcome,
            })
        })
        .collect();
    Json(json!({"shop": c.shop, "subscriptions": subscriptions, "recent_deliveries": log}))
        .into_response()
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

    #[test]
    fn amounts_and_ids() {
        assert_eq!(parse_cents("12.50"), Some(1250));
        assert_eq!(parse_cents("12.5"), Some(1250));
        assert_eq!(parse_cents("12"), Some(1200));
        assert_eq!(parse_cents(".05"), Some(5));
        assert_eq!(parse_cents("1.234"), None);
        assert_eq!(parse_cents("-1"), None);
        assert_eq!(parse_cents("abc"), None);
        assert_eq!(parse_cents(""), None);
        assert_eq!(parse_id("Order", "gid://shopify/Order/42"), Some(42));
        assert_eq!(parse_id("Order", "42"), Some(42));
        assert_eq!(parse_line("LineItem", "7:2"), Some((7, 2)));
        assert_eq!(parse_line("LineItem", "7"), Some((7, 1)));
        assert_eq!(parse_line("LineItem", "x:2"), None);
    }
}
