//! The OAuth endpoints: the consent page and the token endpoint.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use chrono::{Duration, Utc};
use hirecj_shopify::signing::sign_query;
use serde_json::{Value as Json, json};

use crate::pages::{describe_scope, error_page, esc, page};
use crate::shop::{normalize_shop, shop_handle};
use crate::{
    DevStore, PendingCode, RefreshRecord, TokenRecord, lock, mark_installed, random_token,
};

/// How long an authorization code lives.
const CODE_TTL_SECONDS: i64 = 60;
/// Lifetime of expiring offline access tokens.
const ACCESS_TTL_SECONDS: i64 = 3600;
/// Lifetime of refresh tokens (90 days).
const REFRESH_TTL_SECONDS: i64 = 7_776_000;
/// Lifetime of online (per-user) tokens.
const ONLINE_TTL_SECONDS: i64 = 86_400;

fn parse_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A validated authorization request.
struct AuthRequest {
    shop: String,
    scope: String,
    redirect_uri: String,
    state: Option<String>,
    online: bool,
}

fn validate(
    store: &DevStore,
    shop: &str,
    pairs: &[(String, String)],
) -> Result<AuthRequest, Box<Response>> {
    let Some(shop) = normalize_shop(shop) else {
        return Err(Box::new(error_page(
            StatusCode::NOT_FOUND,
            "There is no store at this address",
            "Store names look like name.myshopify.com: letters, digits and hyphens.",
        )));
    };
    let config = &store.inner.config;
    match get(pairs, "client_id") {
        Some(id) if id == config.client_id => {}
        Some(id) => {
            return Err(Box::new(error_page(
                StatusCode::BAD_REQUEST,
                "Oauth error invalid_request",
                &format!("Could not find Shopify API application with api_key {id}"),
            )));
        }
        None => {
            return Err(Box::new(error_page(
                StatusCode::BAD_REQUEST,
                "Oauth error invalid_request",
                "Required parameter missing or invalid: client_id",
            )));
        }
    }
    let redirect_uri = get(pairs, "redirect_uri").unwrap_or_default();
    if redirect_uri != config.app_callback_url {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Oauth error invalid_request",
            "The redirect_uri is not whitelisted",
        )));
    }
    let scope = get(pairs, "scope").unwrap_or_default();
    let scopes: Vec<&str> = scope
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for s in &scopes {
        let valid = s.split_once('_').is_some_and(|(a, r)| {
            matches!(a, "read" | "write" | "unauthenticated")
                && !r.is_empty()
                && r.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
        if !valid {
            return Err(Box::new(error_page(
                StatusCode::BAD_REQUEST,
                "Oauth error invalid_scope",
                &format!("Scope undefined: {s}"),
            )));
        }
    }
    let online = pairs
        .iter()
        .any(|(k, v)| (k == "grant_options[]" || k == "grant_options") && v == "per-user");
    Ok(AuthRequest {
        shop,
        scope: scopes.join(","),
        redirect_uri: redirect_uri.to_string(),
        state: get(pairs, "state").map(str::to_string),
        online,
    })
}

/// `GET /{shop}/admin/oauth/authorize`: the consent page.
/// What the consent page does while the app prepares its welcome (the
/// redirect back can take a few seconds): the choice is kept, both buttons
/// are disabled (no second submit) and the page says what is happening.
const INSTALLING_SCRIPT: &str = "<script>\
document.querySelector('form').addEventListener('submit', (e) => {\
const f = e.target; const b = e.submitter;\
if (f.dataset.sent) { e.preventDefault(); return; } f.dataset.sent = '1';\
const keep = document.createElement('input'); keep.type = 'hidden';\
keep.name = 'decision'; keep.value = b ? b.value : 'install'; f.append(keep);\
f.setAttribute('aria-busy', 'true');\
setTimeout(() => f.querySelectorAll('button').forEach((x) => { x.disabled = true; }), 0);\
if (keep.value === 'install') { if (b) b.textContent = 'Installing…';\
document.getElementById('status').textContent = 'Installing. The app is getting ready for you; this can take a few seconds.'; }\
});</script>";

pub(crate) async fn authorize_page(
    State(store): State<DevStore>,
    Path(shop): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = parse_pairs(query.unwrap_or_default().as_bytes());
    let req = match validate(&store, &shop, &pairs) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let config = &store.inner.config;
    let scopes: String = req
        .scope
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            format!(
                "<li>{} <span class=\"muted\">(<code>{}</code>)</span></li>",
                esc(&describe_scope(s)),
                esc(s)
            )
        })
        .collect();
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(name),
            esc(value)
        )
    };
    let body = format!(
        "<h1>Install {app}</h1>\
<p class=\"muted\">on <b class=\"shop\">{shop}</b>{token_kind}</p>\
<p>{app} will be able to:</p><ul class=\"scopes\">{scopes}</ul>\
<form method=\"post\" action=\"authorize\">{h1}{h2}{h3}{h4}{h5}\
<div class=\"actions\"><button type=\"submit\" name=\"decision\" value=\"cancel\">Cancel</button>\
<button class=\"primary\" type=\"submit\" name=\"decision\" value=\"install\">Install</button></div>\
<p class=\"muted\" id=\"status\" role=\"status\"></p></form>{INSTALLING_SCRIPT}",
        app = esc(&config.app_name),
        shop = esc(&req.shop),
        token_kind = if req.online {
            " · per-user access"
        } else {
            ""
        },
        h1 = hidden("client_id", &config.client_id),
        h2 = hidden("scope", &req.scope),
        h3 = hidden("redirect_uri", &req.redirect_uri),
        h4 = hidden("state", req.state.as_deref().unwrap_or_default()),
        h5 = hidden("grant_options[]", if req.online { "per-user" } else { "" }),
    );
    Html(page(&format!("Install {}", config.app_name), &body)).into_response()
}

/// Appends `params` (plus `hmac` over every query parameter) to `base`.
fn signed_redirect(base: &str, params: Vec<(String, String)>, secret: &str) -> Response {
    let Ok(mut url) = url::Url::parse(base) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Oauth error invalid_request",
            "Bad redirect_uri",
        );
    };
    let mut all: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    all.extend(params);
    let hmac = sign_query(all.iter().map(|(k, v)| (k.as_str(), v.as_str())), secret);
    all.push(("hmac".to_string(), hmac));
    all.sort();
    url.query_pairs_mut().clear().extend_pairs(all);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

/// `POST /{shop}/admin/oauth/authorize`: Install or Cancel.
pub(crate) async fn authorize_decision(
    State(store): State<DevStore>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = parse_pairs(&body);
    let req = match validate(&store, &shop, &pairs) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let secret = &store.inner.config.client_secret;
    let timestamp = Utc::now().timestamp().to_string();
    let mut params = vec![
        ("shop".to_string(), req.shop.clone()),
        ("timestamp".to_string(), timestamp),
    ];
    if let Some(state) = &req.state {
        params.push(("state".to_string(), state.clone()));
    }
    if get(&pairs, "decision") != Some("install") {
        params.push(("error".to_string(), "access_denied".to_string()));
        params.push((
            "error_description".to_string(),
            "The merchant declined to install the app.".to_string(),
        ));
        return signed_redirect(&req.redirect_uri, params, secret);
    }
    let code = random_token("");
    let mut auth = lock(&store.inner.auth);
    let now = Utc::now();
    auth.codes.retain(|_, c| c.expires_at >= now);
    auth.codes.insert(
        code.clone(),
        PendingCode {
            shop: req.shop.clone(),
            scope: granted_scope(&req.shop, &req.scope),
            online: req.online,
            expires_at: Utc::now() + Duration::seconds(CODE_TTL_SECONDS),
        },
    );
    drop(auth);
    let host = base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!(
        "admin.shopify.com/store/{}",
        shop_handle(&req.shop)
    ));
    params.push(("code".to_string(), code));
    params.push(("host".to_string(), host));
    signed_redirect(&req.redirect_uri, params, secret)
}

/// The scopes granted for `requested` (comma-separated): what was asked,
/// plus `read_all_orders` for a large shop that may read orders (see
/// [`crate::is_large_shop`]), as a merchant approving the protected scope
/// would grant it.
pub(crate) fn granted_scope(shop: &str, requested: &str) -> String {
    let scopes: Vec<&str> = requested
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let reads_orders = scopes
        .iter()
        .any(|s| *s == "read_orders" || *s == "write_orders");
    if crate::is_large_shop(shop) && reads_orders && !scopes.contains(&"read_all_orders") {
        let mut all = scopes;
        all.push("read_all_orders");
        return all.join(",");
    }
    scopes.join(",")
}

fn oauth_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_request", "error_description": message})),
    )
        .into_response()
}

/// Reads a JSON or form body into string fields (`expiring` may be a
/// number or boolean in JSON).
fn token_fields(headers: &HeaderMap, body: &[u8]) -> Option<Vec<(String, String)>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let looks_json = content_type.contains("json") || body.first() == Some(&b'{');
    if looks_json {
        let Ok(Json::Object(map)) = serde_json::from_slice::<Json>(body) else {
            return None;
        };
        Some(
            map.into_iter()
                .map(|(k, v)| {
                    let s = match v {
                        Json::String(s) => s,
                        Json::Bool(b) => if b { "1" } else { "0" }.to_string(),
                        Json::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k, s)
                })
                .collect(),
        )
    } else {
        Some(parse_pairs(body))
    }
}

/// `POST /{shop}/admin/oauth/access_token`.
pub(crate) async fn access_token(
    State(store): State<DevStore>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(shop) = normalize_shop(&shop) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errors": "Not Found"})),
        )
            .into_response();
    };
    let Some(fields) = token_fields(&headers, &body) else {
        return oauth_error("The request body could not be parsed.");
    };
    let config = &store.inner.config;
    if get(&fields, "client_id") != Some(config.client_id.as_str())
        || get(&fields, "client_secret") != Some(config.client_secret.as_str())
    {
        return oauth_error(
            "Client authentication failed: unknown client_id or wrong client_secret.",
        );
    }
    let now = Utc::now();
    let mut auth = lock(&store.inner.auth);

    // Refresh-token grant: rotate.
    if get(&fields, "grant_type") == Some("refresh_token") {
        let Some(refresh) = get(&fields, "refresh_token") else {
            return oauth_error("Required parameter missing: refresh_token.");
        };
        let Some(record) = auth.refresh.remove(refresh) else {
            return oauth_error("The refresh token is invalid, expired or was already used.");
        };
        if record.shop != shop || record.expires_at < now {
            return oauth_error("The refresh token is invalid, expired or was already used.");
        }
        let (access, refresh) = (random_token("shpat_"), random_token("shprt_"));
        auth.tokens.insert(
            access.clone(),
            TokenRecord {
                shop: shop.clone(),
                scope: record.scope.clone(),
                expires_at: Some(now + Duration::seconds(ACCESS_TTL_SECONDS)),
            },
        );
        auth.refresh.insert(
            refresh.clone(),
            RefreshRecord {
                shop: shop.clone(),
                scope: record.scope.clone(),
                expires_at: now + Duration::seconds(REFRESH_TTL_SECONDS),
            },
        );
        return axum::Json(json!({
            "access_token": access,
            "scope": record.scope,
            "expires_in": ACCESS_TTL_SECONDS,
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TTL_SECONDS,
        }))
        .into_response();
    }

    // Authorization-code grant: codes are single-use, for one shop, 60 s.
    let Some(code) = get(&fields, "code") else {
        return oauth_error("Required parameter missing: code.");
    };
    let pending = match auth.codes.remove(code) {
        Some(p) if p.shop == shop && p.expires_at >= now => p,
        _ => return oauth_error("The authorization code was not found or was already used."),
    };
    let expiring = matches!(get(&fields, "expiring"), Some("1" | "true"));
    mark_installed(&mut auth, &shop, &pending.scope);
    if pending.online {
        let access = random_token("shpua_");
        auth.tokens.insert(
            access.clone(),
            TokenRecord {
                shop: shop.clone(),
                scope: pending.scope.clone(),
                expires_at: Some(now + Duration::seconds(ONLINE_TTL_SECONDS)),
            },
        );
        let user_id = 70_000_000_000u64 + crate::data::fnv1a(shop.as_bytes()) % 1_000_000_000;
        return axum::Json(json!({
            "access_token": access,
            "scope": pending.scope,
            "expires_in": ONLINE_TTL_SECONDS,
            "associated_user_scope": pending.scope,
            "associated_user": {
                "id": user_id,
                "first_name": "Dev",
                "last_name": "Owner",
                "email": format!("owner@{}.example.com", shop_handle(&shop)),
                "email_verified": true,
                "account_owner": true,
                "locale": "en",
                "collaborator": false
            }
        }))
        .into_response();
    }
    let access = random_token("shpat_");
    if !expiring {
        auth.tokens.insert(
            access.clone(),
            TokenRecord {
                shop,
                scope: pending.scope.clone(),
                expires_at: None,
            },
        );
        return axum::Json(json!({"access_token": access, "scope": pending.scope})).into_response();
    }
    let refresh = random_token("shprt_");
    auth.tokens.insert(
        access.clone(),
        TokenRecord {
            shop: shop.clone(),
            scope: pending.scope.clone(),
            expires_at: Some(now + Duration::seconds(ACCESS_TTL_SECONDS)),
        },
    );
    auth.refresh.insert(
        refresh.clone(),
        RefreshRecord {
            shop,
            scope: pending.scope.clone(),
            expires_at: now + Duration::seconds(REFRESH_TTL_SECONDS),
        },
    );
    axum::Json(json!({
        "access_token": access,
        "scope": pending.scope,
        "expires_in": ACCESS_TTL_SECONDS,
        "refresh_token": refresh,
        "refresh_token_expires_in": REFRESH_TTL_SECONDS,
    }))
    .into_response()
}
