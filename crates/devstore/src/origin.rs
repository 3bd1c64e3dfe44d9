//! Cross-site form posts refused: the control routes and the consent
//! decision change the simulator's state (uninstall a shop, send webhooks,
//! grant an install), so a browser may only post them from the development
//! store's own pages.
//!
//! A POST is refused with 403 when it carries `Sec-Fetch-Site: cross-site`,
//! or an `Origin` that is not the development store's: the configured
//! [`DevStoreConfig::public_origin`](crate::DevStoreConfig::public_origin)
//! when set (the app's `HIRECJ_PUBLIC_URL` when mounted in it), else the
//! origin the request was addressed to (its `Host`). Requests without
//! `Origin` (the CLI, tests, other programs) are not browsers' cross-site
//! posts and pass, as in the app's own check.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::DevStore;

/// Why a request is not from the development store's own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CrossSite {
    #[error("Sec-Fetch-Site is cross-site")]
    FetchSite,
    #[error("the Origin is not the development store's")]
    Origin,
}

fn origin_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
}

/// Whether `headers` come from a page of the development store's own
/// origin (or from no browser page at all).
pub(crate) fn check(headers: &HeaderMap, public_origin: Option<&str>) -> Result<(), CrossSite> {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|v| v.trim().eq_ignore_ascii_case("cross-site")) {
        return Err(CrossSite::FetchSite);
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .ok()
        .and_then(origin_of)
        .ok_or(CrossSite::Origin)?;
    let own = match public_origin {
        Some(public) => origin_of(public),
        None => {
            // The origin the browser addressed: the Origin's scheme with the
            // request's Host (port defaults and case normalised by `url`).
            let scheme = origin.split_once("://").map_or("http", |(s, _)| s);
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|host| origin_of(&format!("{scheme}://{host}")))
        }
    };
    if own.as_deref() == Some(origin.as_str()) {
        Ok(())
    } else {
        Err(CrossSite::Origin)
    }
}

/// Middleware: refuses cross-site POSTs (and any other non-GET method)
/// with 403 before the handler runs.
pub(crate) async fn same_origin(
    State(store): State<DevStore>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    match check(
        request.headers(),
        store.inner.config.public_origin.as_deref(),
    ) {
        Ok(()) => next.run(request).await,
        Err(reason) => {
            tracing::warn!(
                path = request.uri().path(),
                %reason,
                "cross-site form post to the development store refused"
            );
            (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "forbidden", "error_description": "cross-site request refused"})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins() {
        let host = ("host", "127.0.0.1:8080");
        let ok = |p: &[(&'static str, &'static str)], public| check(&headers(p), public);
        assert_eq!(ok(&[host], None), Ok(()));
        assert_eq!(
            ok(&[host, ("origin", "http://127.0.0.1:8080")], None),
            Ok(())
        );
        assert_eq!(
            ok(
                &[("host", "Dev.Example"), ("origin", "http://dev.example:80")],
                None
            ),
            Ok(())
        );
        for bad in [
            "http://evil.example",
            "http://127.0.0.1:9999",
            "null",
            "garbage",
        ] {
            let h = [host, ("origin", bad)];
            assert_eq!(ok(&h, None), Err(CrossSite::Origin), "{bad}");
        }
        assert_eq!(
            ok(&[("origin", "http://127.0.0.1:8080")], None),
            Err(CrossSite::Origin)
        );
        let cross = [
            host,
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site"),
        ];
        assert_eq!(ok(&cross, None), Err(CrossSite::FetchSite));
        assert_eq!(ok(&[host, ("sec-fetch-site", "same-origin")], None), Ok(()));
        // A configured public origin is the only one accepted.
        let public = Some("https://cj.example/");
        assert_eq!(
            ok(&[host, ("origin", "https://cj.example")], public),
            Ok(())
        );
        assert_eq!(
            ok(&[host, ("origin", "http://127.0.0.1:8080")], public),
            Err(CrossSite::Origin)
        );
    }
}
