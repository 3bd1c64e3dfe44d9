//! Static assets, embedded in the binary and served under content-hashed
//! names (`/assets/chat.<10 hex of sha256>.js`) with a one-year immutable
//! cache. The hashes are computed once, on first use; templates ask
//! [`url`] for the current name.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The logical name templates use (`chat.js`).
    pub name: &'static str,
    /// The served name (`chat.0123456789.js`).
    pub hashed_name: String,
    /// `/assets/` + the served name.
    pub url: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! embed {
    ($name:literal, $type:literal) => {
        (
            $name,
            $type,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $name)) as &[u8],
        )
    };
}

const FILES: &[(&str, &str, &[u8])] = &[
    embed!("app.css", "text/css; charset=utf-8"),
    embed!("chat.js", "text/javascript; charset=utf-8"),
    embed!("page.js", "text/javascript; charset=utf-8"),
    embed!("favicon.svg", "image/svg+xml"),
];

/// The first 10 hex digits of the SHA-256 of `bytes`.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(digest)[..10].to_owned()
}

fn hashed_name(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, content_type, bytes)| {
            let hashed = hashed_name(name, &content_hash(bytes));
            Asset {
                name,
                url: format!("/assets/{hashed}"),
                hashed_name: hashed,
                content_type,
                bytes,
            }
        })
        .collect()
});

/// Every embedded asset.
pub fn all() -> &'static [Asset] {
    &ASSETS
}

/// The hashed URL of the asset with logical name `name`.
///
/// # Panics
/// When `name` is not embedded: a programming error caught by the tests.
pub fn url(name: &str) -> &'static str {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => &a.url,
        None => panic!("asset {name} is not embedded"),
    }
}

/// `GET /assets/{file}`: an embedded asset by its hashed name.
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.hashed_name == file) {
        Some(a) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            a.bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            "no such asset",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        for a in all() {
            let hash = content_hash(a.bytes);
            assert_eq!(hash.len(), 10);
            assert!(a.hashed_name.contains(&hash), "{}", a.hashed_name);
            assert_eq!(url(a.name), format!("/assets/{}", a.hashed_name));
        }
        assert_eq!(hashed_name("chat.js", "abc"), "chat.abc.js");
    }
}
