//! Shop domains: the one place where outside input becomes a `*.myshopify.com`
//! host that the client may talk to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SUFFIX: &str = ".myshopify.com";
const ADMIN_PREFIX: &str = "admin.shopify.com/store/";
/// A store name is one DNS label.
const MAX_NAME_LEN: usize = 63;

/// Why a shop domain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShopDomainError {
    /// Nothing was given.
    #[error("enter your Shopify store address, e.g. `your-store.myshopify.com`")]
    Empty,
    /// The input is not a Shopify store address.
    #[error(
        "`{0}` is not a Shopify store address: use `your-store`, `your-store.myshopify.com` \
         or `admin.shopify.com/store/your-store` (letters, digits and hyphens, not starting \
         with a hyphen)"
    )]
    Invalid(String),
    /// The value parses, but is not written in its canonical form
    /// (`name.myshopify.com`, lower case), as Shopify's own redirects are.
    #[error("`{0}` is not a canonical `name.myshopify.com` domain")]
    NotCanonical(String),
}

impl ShopDomainError {
    /// Stable machine code, the same for every variant: `invalid_shop`.
    pub fn code(&self) -> &'static str {
        "invalid_shop"
    }
}

/// A validated shop domain, always `name.myshopify.com` in lower case,
/// matching the anchored `^[a-z0-9][a-z0-9-]*\.myshopify\.com$`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShopDomain(String);

impl ShopDomain {
    /// Parses what a merchant may type: `name`, `name.myshopify.com`,
    /// `https://name.myshopify.com/admin…`, `admin.shopify.com/store/name…`
    /// (with or without scheme). Trims and lowercases first; anything else is
    /// rejected (`evil.com`, `shop.myshopify.com.evil.com`,
    /// `a@b.myshopify.com`, `-x.myshopify.com`, ports, …).
    pub fn parse(input: &str) -> Result<Self, ShopDomainError> {
        let lowered = input.trim().to_ascii_lowercase();
        if lowered.is_empty() {
            return Err(ShopDomainError::Empty);
        }
        let invalid = || ShopDomainError::Invalid(shorten(input.trim()));
        let rest = lowered
            .strip_prefix("https://")
            .or_else(|| lowered.strip_prefix("http://"))
            .unwrap_or(&lowered);
        let end_of_host = |s: &str| s.find(['/', '?', '#']).unwrap_or(s.len());
        let candidate = if let Some(after) = rest.strip_prefix(ADMIN_PREFIX) {
            let name = &after[..end_of_host(after)];
            if name.is_empty() {
                return Err(invalid());
            }
            format!("{name}{SUFFIX}")
        } else {
            let host = &rest[..end_of_host(rest)];
            if host.is_empty() {
                return Err(invalid());
            }
            if host.contains('.') {
                host.to_owned()
            } else {
                format!("{host}{SUFFIX}")
            }
        };
        if is_canonical(&candidate) {
            Ok(Self(candidate))
        } else {
            Err(invalid())
        }
    }

    /// Accepts only a value that is already canonical (`name.myshopify.com`,
    /// lower case, nothing around it): what Shopify puts in its redirects
    /// and webhook headers.
    pub fn parse_exact(input: &str) -> Result<Self, ShopDomainError> {
        if input.is_empty() {
            return Err(ShopDomainError::Empty);
        }
        if is_canonical(input) {
            return Ok(Self(input.to_owned()));
        }
        match Self::parse(input) {
            Ok(_) => Err(ShopDomainError::NotCanonical(shorten(input))),
            Err(e) => Err(e),
        }
    }

    /// The full domain, `name.myshopify.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The store name, the part before `.myshopify.com`.
    pub fn name(&self) -> &str {
        self.0.strip_suffix(SUFFIX).unwrap_or(&self.0)
    }
}

/// The anchored check `^[a-z0-9][a-z0-9-]*\.myshopify\.com$`, plus a length
/// bound of one DNS label for the name.
fn is_canonical(s: &str) -> bool {
    let Some(name) = s.strip_suffix(SUFFIX) else {
        return false;
    };
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Error messages quote the input, bounded so a huge input stays a short error.
fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

impl fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShopDomain({})", self.0)
    }
}

impl AsRef<str> for ShopDomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ShopDomain {
    type Err = ShopDomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ShopDomain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ShopDomain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse_exact(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let table = [
            ("cool-shop", "cool-shop.myshopify.com"),
            ("  Cool-Shop  ", "cool-shop.myshopify.com"),
            ("cool-shop.myshopify.com", "cool-shop.myshopify.com"),
            ("COOL-SHOP.MYSHOPIFY.COM", "cool-shop.myshopify.com"),
            ("https://cool-shop.myshopify.com", "cool-shop.myshopify.com"),
            (
                "https://cool-shop.myshopify.com/",
                "cool-shop.myshopify.com",
            ),
            (
                "https://cool-shop.myshopify.com/admin/orders?x=1",
                "cool-shop.myshopify.com",
            ),
            ("http://cool-shop.myshopify.com", "cool-shop.myshopify.com"),
            ("cool-shop.myshopify.com/admin", "cool-shop.myshopify.com"),
            (
                "admin.shopify.com/store/cool-shop",
                "cool-shop.myshopify.com",
            ),
            (
                "https://admin.shopify.com/store/cool-shop",
                "cool-shop.myshopify.com",
            ),
            (
                "https://admin.shopify.com/store/cool-shop/orders",
                "cool-shop.myshopify.com",
            ),
            (
                "admin.shopify.com/store/Cool-Shop?x=y",
                "cool-shop.myshopify.com",
            ),
            ("0shop", "0shop.myshopify.com"),
            ("a", "a.myshopify.com"),
        ];
        for (input, expected) in table {
            let parsed = ShopDomain::parse(input);
            assert_eq!(
                parsed.as_ref().map(ShopDomain::as_str),
                Ok(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn rejected_forms() {
        let table = [
            "",
            "   ",
            "evil.com",
            "shop.myshopify.com.evil.com",
            "a@b.myshopify.com",
            "-x.myshopify.com",
            "-x",
            ".myshopify.com",
            "myshopify.com",
            "shop.myshopify.com:443",
            "https://shop.myshopify.com:8080/",
            "shop.myshopify.com.",
            "sub.shop.myshopify.com",
            "shop_1.myshopify.com",
            "shop name",
            "https://evil.com/shop.myshopify.com",
            "evil.com?shop=a.myshopify.com",
            "admin.shopify.com/store/",
            "admin.shopify.com/store/-bad",
            "admin.shopify.com/store/a.b",
            "https://",
            "ftp://shop.myshopify.com",
            "shöp.myshopify.com",
            "shop.myshopify.com%2eevil.com",
            "javascript:alert(1)",
        ];
        for input in table {
            assert!(
                ShopDomain::parse(input).is_err(),
                "input {input:?} was accepted"
            );
        }
        let long = "a".repeat(64);
        assert!(ShopDomain::parse(&long).is_err());
        assert!(ShopDomain::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn errors_are_clear() {
        assert_eq!(ShopDomain::parse(" "), Err(ShopDomainError::Empty));
        let err = ShopDomain::parse("evil.com").err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("evil.com") && m.contains("myshopify.com")));
        assert_eq!(ShopDomainError::Empty.code(), "invalid_shop");
    }

    #[test]
    fn name_and_exact() {
        let shop = ShopDomain::parse("cool-shop").ok();
        assert_eq!(shop.as_ref().map(ShopDomain::name), Some("cool-shop"));
        assert!(ShopDomain::parse_exact("cool-shop.myshopify.com").is_ok());
        assert!(matches!(
            ShopDomain::parse_exact("Cool-Shop.myshopify.com"),
            Err(ShopDomainError::NotCanonical(_))
        ));
        assert!(matches!(
            ShopDomain::parse_exact("cool-shop"),
            Err(ShopDomainError::NotCanonical(_))
        ));
        assert!(matches!(
            ShopDomain::parse_exact("evil.com"),
            Err(ShopDomainError::Invalid(_))
        ));
        assert_eq!(ShopDomain::parse_exact(""), Err(ShopDomainError::Empty));
    }

    #[test]
    fn serde_round_trip_is_strict() {
        let shop: Result<ShopDomain, _> = serde_json::from_str("\"a.myshopify.com\"");
        assert!(shop.is_ok());
        let bad: Result<ShopDomain, _> = serde_json::from_str("\"evil.com\"");
        assert!(bad.is_err());
        let json = shop.ok().map(|s| serde_json::to_string(&s).ok());
        assert_eq!(json.flatten().as_deref(), Some("\"a.myshopify.com\""));
    }
}
