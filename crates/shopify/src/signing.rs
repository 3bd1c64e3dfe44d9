//! HMAC signatures exactly as Shopify computes them.
//!
//! * OAuth redirects (and app proxies) sign their query string: every parameter
//!   except `hmac` and `signature`, sorted by key, form-encoded with spaces as
//!   `%20`, joined with `&`, HMAC-SHA256 with the app's client secret, hex.
//! * Webhooks sign the raw request body: base64 of HMAC-SHA256 with the client
//!   secret, sent in `X-Shopify-Hmac-Sha256`.
//!
//! Verification always compares in constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    }
}

/// Percent-encodes one key or value the way Shopify's libraries do before
/// signing: `application/x-www-form-urlencoded`, but spaces as `%20`.
pub(crate) fn encode_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The message Shopify signs for a query: all parameters but `hmac` and
/// `signature`, sorted by key (then value), `k=v` joined with `&`.
pub fn query_message<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| *k != "hmac" && *k != "signature")
        .map(|(k, v)| (encode_component(k), encode_component(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lower-case hex HMAC-SHA256 of the query `params` (see [`query_message`]).
pub fn sign_query<'a, I>(params: I, secret: &str) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut m = mac(secret.as_bytes());
    m.update(query_message(params).as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Checks the `hmac` parameter of a query against all the other parameters.
/// Returns `false` when `hmac` is missing, repeated, not hex, or wrong.
pub fn verify_query<'a, I>(params: I, secret: &str) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a str)> + Clone,
{
    let mut given = params.clone().into_iter().filter(|(k, _)| *k == "hmac");
    let (Some((_, hmac_hex)), None) = (given.next(), given.next()) else {
        return false;
    };
    let Ok(expected) = hex::decode(hmac_hex) else {
        return false;
    };
    let mut m = mac(secret.as_bytes());
    m.update(query_message(params).as_bytes());
    m.verify_slice(&expected).is_ok()
}

/// Base64 HMAC-SHA256 of a webhook body, as sent in `X-Shopify-Hmac-Sha256`.
pub fn sign_webhook(body: &[u8], secret: &str) -> String {
    let mut m = mac(secret.as_bytes());
    m.update(body);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// Checks a webhook's `X-Shopify-Hmac-Sha256` header against its raw body.
pub fn verify_webhook(body: &[u8], header: &str, secret: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let mut m = mac(secret.as_bytes());
    m.update(body);
    m.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_HMAC: &str = "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20";

    #[test]
    fn oauth_reference_vector() {
        let params = [
            ("shop", "some-shop.myshopify.com"),
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("timestamp", "1337178173"),
        ];
        assert_eq!(
            query_message(params),
            "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173"
        );
        assert_eq!(sign_query(params, "hush"), VECTOR_HMAC);
        let with_hmac = [
            ("shop", "some-shop.myshopify.com"),
            ("hmac", VECTOR_HMAC),
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("timestamp", "1337178173"),
        ];
        assert!(verify_query(with_hmac, "hush"));
        assert!(!verify_query(with_hmac, "other"));
    }

    #[test]
    fn every_parameter_is_signed() {
        let mut params = vec![("shop", "a.myshopify.com"), ("code", "c"), ("extra", "x y")];
        let sig = sign_query(params.iter().copied(), "s");
        params.push(("hmac", &sig));
        assert!(verify_query(params.iter().copied(), "s"));
        // Dropping or changing any parameter breaks the signature.
        let dropped: Vec<_> = params
            .iter()
            .copied()
            .filter(|(k, _)| *k != "extra")
            .collect();
        assert!(!verify_query(dropped.iter().copied(), "s"));
        let changed: Vec<_> = params
            .iter()
            .map(|&(k, v)| if k == "code" { (k, "d") } else { (k, v) })
            .collect();
        assert!(!verify_query(changed.iter().copied(), "s"));
    }

    #[test]
    fn spaces_are_percent_20() {
        assert_eq!(query_message([("a", "x y")]), "a=x%20y");
    }

    #[test]
    fn missing_or_repeated_hmac_fails() {
        assert!(!verify_query([("shop", "a")], "s"));
        let sig = sign_query([("shop", "a")], "s");
        assert!(!verify_query(
            [("shop", "a"), ("hmac", &sig), ("hmac", &sig)],
            "s"
        ));
        assert!(!verify_query([("shop", "a"), ("hmac", "zz")], "s"));
    }

    #[test]
    fn webhook_reference_vector() {
        let body = br#"{"shop_id":954889,"shop_domain":"snowdevil.myshopify.com"}"#;
        assert_eq!(
            sign_webhook(body, "hush"),
            "unXxOs41nqtk5v6Btqh9qz9Dh6mprKtn5eLN4XfJwSY="
        );
        assert!(verify_webhook(
            body,
            "unXxOs41nqtk5v6Btqh9qz9Dh6mprKtn5eLN4XfJwSY=",
            "hush"
        ));
        assert!(!verify_webhook(
            body,
            "unXxOs41nqtk5v6Btqh9qz9Dh6mprKtn5eLN4XfJwSX=",
            "hush"
        ));
        assert!(!verify_webhook(body, "not base64!", "hush"));
    }
}
