//! The app's Shopify configuration and the URLs derived from it.

use std::time::Duration;

use crate::domain::ShopDomain;
use crate::signing::encode_component;
use hirecj_domain::Secret;

/// The Admin API version HireCJ pins (the newest stable one in late 2026).
pub const DEFAULT_API_VERSION: &str = "2026-10";
/// Where a shop's admin lives; `{shop}` is replaced by `name.myshopify.com`.
pub const DEFAULT_ADMIN_BASE_URL: &str = "https://{shop}";
/// The scopes HireCJ asks for by default.
pub const DEFAULT_SCOPES: &[&str] = &["read_products", "read_orders", "read_customers"];
/// The default timeout of one HTTP request to Shopify.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The app's Shopify settings.
#[derive(Debug, Clone)]
pub struct ShopifyConfig {
    /// The app's client id (API key).
    pub client_id: String,
    /// The app's client secret: signs OAuth redirects and webhooks.
    pub client_secret: Secret,
    /// The access scopes requested at install, e.g. `read_orders`.
    pub scopes: Vec<String>,
    /// The Admin API version, `YYYY-MM`.
    pub api_version: String,
    /// Template of a shop's admin base URL; must contain `{shop}`
    /// (e.g. `https://{shop}`, or `http://127.0.0.1:4000/devstore/{shop}`).
    pub admin_base_url: String,
    /// The OAuth callback URL registered for the app.
    pub redirect_uri: String,
    /// The timeout of every HTTP request made with this configuration.
    pub request_timeout: Duration,
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The admin base URL template lacks the `{shop}` placeholder.
    #[error("the Shopify admin base URL `{0}` must contain `{{shop}}`")]
    MissingShopPlaceholder(String),
    /// The admin base URL is not an http(s) URL.
    #[error("the Shopify admin base URL `{0}` must start with http:// or https://")]
    BadScheme(String),
    /// The API version is not `YYYY-MM`.
    #[error("the Shopify API version `{0}` must look like `2026-10`")]
    BadApiVersion(String),
    /// No client id.
    #[error("the Shopify client id is empty")]
    MissingClientId,
}

/// Is `version` an Admin API version Shopify publishes: a quarterly
/// `YYYY-01`, `-04`, `-07` or `-10`, or `unstable`? The one rule for it
/// (the settings check it with this too).
pub fn is_api_version(version: &str) -> bool {
    let b = version.as_bytes();
    let quarterly = b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && matches!(&version[5..], "01" | "04" | "07" | "10");
    quarterly || version == "unstable"
}

impl ShopifyConfig {
    /// A configuration with the default scopes, API version, base URL and
    /// timeout.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            admin_base_url: DEFAULT_ADMIN_BASE_URL.to_owned(),
            redirect_uri: redirect_uri.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Checks the parts that would otherwise fail on first use.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::MissingClientId);
        }
        if !self.admin_base_url.contains("{shop}") {
            return Err(ConfigError::MissingShopPlaceholder(
                self.admin_base_url.clone(),
            ));
        }
        if !(self.admin_base_url.starts_with("https://")
            || self.admin_base_url.starts_with("http://"))
        {
            return Err(ConfigError::BadScheme(self.admin_base_url.clone()));
        }
        if !is_api_version(&self.api_version) {
            return Err(ConfigError::BadApiVersion(self.api_version.clone()));
        }
        Ok(())
    }

    /// The scopes as Shopify wants them: comma-joined.
    pub fn scope_param(&self) -> String {
        self.scopes.join(",")
    }

    /// The shop's admin base URL (no trailing slash).
    pub fn admin_base(&self, shop: &ShopDomain) -> String {
        admin_base(&self.admin_base_url, shop)
    }

    /// The authorize page the merchant is sent to:
    /// `{base}/admin/oauth/authorize?client_id=…&scope=…&redirect_uri=…&state=…&grant_options[]=`
    /// (form-encoded, spaces as `%20`; an empty `grant_options[]` asks for
    /// an offline token).
    pub fn authorize_url(&self, shop: &ShopDomain, state: &str) -> String {
        format!(
            "{}/admin/oauth/authorize?client_id={}&scope={}&redirect_uri={}&state={}&grant_options[]=",
            self.admin_base(shop),
            encode_component(&self.client_id),
            encode_component(&self.scope_param()),
            encode_component(&self.redirect_uri),
            encode_component(state),
        )
    }

    /// `{base}/admin/api/{version}/graphql.json`.
    pub fn graphql_url(&self, shop: &ShopDomain) -> String {
        graphql_url(&self.admin_base_url, &self.api_version, shop)
    }

    /// The token endpoint, `{base}/admin/oauth/access_token`.
    pub fn token_url(&self, shop: &ShopDomain) -> String {
        format!("{}/admin/oauth/access_token", self.admin_base(shop))
    }
}

pub(crate) fn admin_base(template: &str, shop: &ShopDomain) -> String {
    template
        .replace("{shop}", shop.as_str())
        .trim_end_matches('/')
        .to_owned()
}

pub(crate) fn graphql_url(template: &str, version: &str, shop: &ShopDomain) -> String {
    format!(
        "{}/admin/api/{version}/graphql.json",
        admin_base(template, shop)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> ShopDomain {
        match ShopDomain::parse("cool-shop") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn config() -> ShopifyConfig {
        ShopifyConfig::new(
            "client id",
            "s3cret",
            "https://app.example.com/api/v1/shopify/callback",
        )
    }

    #[test]
    fn urls() {
        let c = config();
        assert_eq!(c.admin_base(&shop()), "https://cool-shop.myshopify.com");
        assert_eq!(
            c.graphql_url(&shop()),
            "https://cool-shop.myshopify.com/admin/api/2026-10/graphql.json"
        );
        assert_eq!(
            c.token_url(&shop()),
            "https://cool-shop.myshopify.com/admin/oauth/access_token"
        );
        let mut local = config();
        local.admin_base_url = "http://127.0.0.1:4000/devstore/{shop}/".to_owned();
        assert_eq!(
            local.token_url(&shop()),
            "http://127.0.0.1:4000/devstore/cool-shop.myshopify.com/admin/oauth/access_token"
        );
    }

    #[test]
    fn authorize_url_is_form_encoded_with_percent_20() {
        let url = config().authorize_url(&shop(), "ab cd");
        assert_eq!(
            url,
            "https://cool-shop.myshopify.com/admin/oauth/authorize?client_id=client%20id\
             &scope=read_products%2Cread_orders%2Cread_customers\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fapi%2Fv1%2Fshopify%2Fcallback\
             &state=ab%20cd&grant_options[]="
        );
        let parsed = url::Url::parse(&url).ok();
        let pairs: Vec<(String, String)> = parsed
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        assert!(pairs.contains(&(
            "scope".into(),
            "read_products,read_orders,read_customers".into()
        )));
        assert!(pairs.contains(&("grant_options[]".into(), String::new())));
    }

    #[test]
    fn validate() {
        assert_eq!(config().validate(), Ok(()));
        let mut c = config();
        c.admin_base_url = "https://example.com".into();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::MissingShopPlaceholder(_))
        ));
        let mut c = config();
        c.admin_base_url = "ftp://{shop}".into();
        assert!(matches!(c.validate(), Err(ConfigError::BadScheme(_))));
        let mut c = config();
        c.api_version = "2026-1".into();
        assert!(matches!(c.validate(), Err(ConfigError::BadApiVersion(_))));
        for bad in ["2026-02", "2026-13", "26-10", "2026_10", "stable"] {
            assert!(!is_api_version(bad), "{bad}");
        }
        for good in ["2026-10", "2025-01", "unstable"] {
            assert!(is_api_version(good), "{good}");
        }
        let mut c = config();
        c.client_id = " ".into();
        assert_eq!(c.validate(), Err(ConfigError::MissingClientId));
    }

    #[test]
    fn debug_hides_the_secret() {
        let dbg = format!("{:?}", config());
        assert!(!dbg.contains("s3cret"));
        assert!(dbg.contains("***"));
    }
}
