//! Shop names as the simulator accepts them in its URLs.

/// Normalises a shop given as `name.myshopify.com` or as a bare store name
/// (`name`) into the full `name.myshopify.com` domain.
///
/// The name must match `^[a-z0-9][a-z0-9-]*$` after lowercasing (Shopify's
/// rule for store handles), at most 60 characters. Returns `None` otherwise.
///
/// ```
/// use hirecj_devstore::normalize_shop;
/// assert_eq!(normalize_shop("Cool-Shirts").as_deref(), Some("cool-shirts.myshopify.com"));
/// assert_eq!(normalize_shop("cool-shirts.myshopify.com").as_deref(), Some("cool-shirts.myshopify.com"));
/// assert_eq!(normalize_shop("evil.com"), None);
/// assert_eq!(normalize_shop("-x.myshopify.com"), None);
/// ```
pub fn normalize_shop(shop: &str) -> Option<String> {
    let lower = shop.trim().to_ascii_lowercase();
    let name = lower.strip_suffix(".myshopify.com").unwrap_or(&lower);
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = name.len() <= 60
        && first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    valid.then(|| format!("{name}.myshopify.com"))
}

/// The store handle of a normalised domain: `name` for `name.myshopify.com`.
pub(crate) fn shop_handle(domain: &str) -> &str {
    domain.strip_suffix(".myshopify.com").unwrap_or(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_lookalikes() {
        for bad in [
            "",
            "evil.com",
            "shop.myshopify.com.evil.com",
            "a@b.myshopify.com",
            "-x.myshopify.com",
            "a_b",
            ".myshopify.com",
            "a/b",
        ] {
            assert_eq!(normalize_shop(bad), None, "{bad}");
        }
        assert_eq!(
            normalize_shop("0shop").as_deref(),
            Some("0shop.myshopify.com")
        );
        assert_eq!(shop_handle("x.myshopify.com"), "x");
    }
}
