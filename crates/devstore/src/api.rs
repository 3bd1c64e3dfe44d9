//! The GraphQL endpoint: authentication, cost, throttling, execution.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value as Json, json};

use crate::bulk::BulkRequest;
use crate::cost::{CostWalker, cost_json};
use crate::graphql::ApiContext;
use crate::shop::normalize_shop;
use crate::{DevStore, lock};

/// Shopify's ceiling on one query's requested cost.
pub(crate) const MAX_QUERY_COST: u64 = 1000;

fn json_response(status: StatusCode, body: Json, version: Option<&str>) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-request-id", v);
    }
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert("x-shopify-api-version", v);
    }
    resp
}

fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"errors": "Not Found"}), None)
}

fn valid_version(v: &str) -> bool {
    if v == "unstable" {
        return true;
    }
    let b = v.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && matches!(&v[5..], "01" | "04" | "07" | "10")
}

/// The development store's base URL as this request reached it (the public
/// origin when configured, else `http://{Host}`, plus the mount prefix,
/// e.g. `http://127.0.0.1:8080/devstore`): where bulk results are served.
fn base_url(store: &DevStore, headers: &HeaderMap, path: &str, shop_segment: &str) -> String {
    let origin = store.inner.config.public_origin.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    let marker = format!("/{shop_segment}/admin/api/");
    let prefix = path.find(&marker).map_or("", |i| &path[..i]);
    format!("{}{prefix}", origin.trim_end_matches('/'))
}

/// Rewrites async-graphql's validation messages into Shopify's wording.
fn shopify_error(mut err: Json) -> Json {
    let Some(message) = err
        .get("message")
        .and_then(Json::as_str)
        .map(str::to_string)
    else {
        return err;
    };
    if let Some(rest) = message.strip_prefix("Unknown field \"") {
        let mut parts = rest.splitn(3, '"');
        let field = parts.next().unwrap_or_default().to_string();
        let ty = parts
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        err["message"] = json!(format!("Field '{field}' doesn't exist on type '{ty}'"));
        err["extensions"] = json!({"code": "undefinedField", "typeName": ty, "fieldName": field});
    }
    err
}

/// A GraphQL request: query, variables, operation name.
type GraphqlBody = (String, Map<String, Json>, Option<String>);

/// Reads `{"query", "variables", "operationName"}` (JSON), or a bare query
/// with `Content-Type: application/graphql`.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Option<GraphqlBody> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.contains("application/graphql") {
        let query = std::str::from_utf8(body).ok()?;
        return Some((query.to_string(), Map::new(), None));
    }
    if !content_type.contains("json") && body.first() != Some(&b'{') {
        return None;
    }
    let v: Json = serde_json::from_slice(body).ok()?;
    let query = v.get("query")?.as_str()?.to_string();
    let vars = match v.get("variables") {
        Some(Json::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let op = v
        .get("operationName")
        .and_then(Json::as_str)
        .map(str::to_string);
    Some((query, vars, op))
}

/// `POST /{shop}/admin/api/{version}/graphql.json`.
pub(crate) async fn graphql(
    State(store): State<DevStore>,
    Path((shop_segment, version)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(shop) = normalize_shop(&shop_segment) else {
        return not_found();
    };
    if !valid_version(&version) {
        return not_found();
    }
    let version = Some(version.as_str());

    // Authentication: a live token of this very shop.
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = Utc::now();
    let scope = {
        let auth = lock(&store.inner.auth);
        match auth.tokens.get(token) {
            Some(t) if t.shop == shop && t.expires_at.is_none_or(|e| e > now) => t.scope.clone(),
            _ => {
                return json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
                    version,
                );
            }
        }
    };

    let parsed = parse_body(&headers, &body);
    let Some((query, variables, operation_name)) = parsed else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"errors": {"query": "Required parameter missing or invalid"}}),
            version,
        );
    };

    // Cost, before running anything.
    let doc = async_graphql::parser::parse_query(&query).ok();
    let walker = doc
        .as_ref()
        .and_then(|d| CostWalker::new(d, operation_name.as_deref(), &variables));
    let requested = walker.as_ref().map_or(1, CostWalker::requested);
    let limits = *lock(&store.inner.limits);
    if requested > MAX_QUERY_COST {
        let available = lock(&store.inner.buckets).available(&shop, limits);
        return json_response(
            StatusCode::OK,
            json!({
                "errors": [{
                    "message": format!("Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"),
                    "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST}
                }],
                "extensions": {"cost": cost_json(requested, None, available, limits)}
            }),
            version,
        );
    }
    let taken = lock(&store.inner.buckets).try_take(&shop, requested, limits);
    if let Err(available) = taken {
        return json_response(
            StatusCode::OK,
            json!({
                "errors": [{
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}
                }],
                "extensions": {"cost": cost_json(requested, None, available, limits)}
            }),
            version,
        );
    }

    // Execute.
    let context = ApiContext {
        dataset: store.dataset(&shop),
        now,
        scopes: scope.split(',').map(|s| s.trim().to_string()).collect(),
    };
    let bulk = BulkRequest {
        store: store.clone(),
        shop: shop.clone(),
        base_url: base_url(&store, &headers, uri.path(), &shop_segment),
    };
    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(Json::Object(
            variables.clone(),
        )))
        .data(context)
        .data(bulk);
    if let Some(op) = operation_name {
        request = request.operation_name(op);
    }
    let response = store.inner.schema.execute(request).await;
    let mut out = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    let data = out.get("data").cloned().unwrap_or(Json::Null);
    let actual = walker
        .as_ref()
        .map_or(0, |w| w.actual(&data))
        .min(requested);
    let available = lock(&store.inner.buckets).refund(&shop, requested - actual, limits);

    let Some(obj) = out.as_object_mut() else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errors": "Internal error"}),
            version,
        );
    };
    if let Some(Json::Array(errors)) = obj.remove("errors") {
        obj.insert(
            "errors".into(),
            Json::Array(errors.into_iter().map(shopify_error).collect()),
        );
        if obj.get("data").is_some_and(Json::is_null) {
            obj.remove("data");
        }
    }
    obj.insert(
        "extensions".into(),
        json!({"cost": cost_json(requested, Some(actual), available, limits)}),
    );
    json_response(StatusCode::OK, out, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(valid_version("2026-10"));
        assert!(valid_version("unstable"));
        assert!(!valid_version("2026-11"));
        assert!(!valid_version("latest"));
    }

    #[test]
    fn error_rewrite() {
        let e = shopify_error(
            json!({"message": "Unknown field \"foo\" on type \"Shop\". Did you mean \"id\"?"}),
        );
        assert_eq!(e["message"], "Field 'foo' doesn't exist on type 'Shop'");
        assert_eq!(e["extensions"]["code"], "undefinedField");
        assert_eq!(e["extensions"]["typeName"], "Shop");
    }
}
