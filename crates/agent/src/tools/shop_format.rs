//! How the merchant's shop writes what CJ tells it: money in the shop's own
//! format (`$7,737.41`, `1.204,50 €`), orders linked to the Shopify admin.

use chrono::{DateTime, Utc};
use hirecj_domain::mirror::ShopTimeZone;
use hirecj_shopify::{Amount, MoneyFormat};

/// The shop's way of writing figures, for the texts and charts CJ shows.
/// The model reads exact amounts with their currency; this decides only how
/// they are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShopFormat {
    money: Option<MoneyFormat>,
    admin: Option<String>,
    zone: Option<ShopTimeZone>,
}

impl ShopFormat {
    /// The shop's money format, when known (without it, amounts are written
    /// the way Shopify writes their currency).
    pub fn new(money: Option<MoneyFormat>) -> Self {
        Self {
            money,
            admin: None,
            zone: None,
        }
    }

    /// Days and times on the shop's clock (UTC without it).
    pub fn with_zone(mut self, zone: ShopTimeZone) -> Self {
        self.zone = Some(zone);
        self
    }

    /// The shop's time zone, when known.
    pub fn zone(&self) -> Option<ShopTimeZone> {
        self.zone
    }

    /// The shop's day at `at`, as `YYYY-MM-DD`.
    pub fn day(&self, at: DateTime<Utc>) -> String {
        self.zone
            .unwrap_or(ShopTimeZone::UTC)
            .day_of(at)
            .format("%Y-%m-%d")
            .to_string()
    }

    /// Orders link to the shop's admin at `admin` (e.g.
    /// `https://admin.shopify.com/store/cool-shop`).
    pub fn with_admin(mut self, admin: impl Into<String>) -> Self {
        let admin: String = admin.into();
        self.admin = Some(admin.trim_end_matches('/').to_owned());
        self
    }

    /// The shop's money format, when known.
    pub fn money_format(&self) -> Option<&MoneyFormat> {
        self.money.as_ref()
    }

    /// The shop's admin, when known.
    pub fn admin(&self) -> Option<&str> {
        self.admin.as_deref()
    }

    /// `amount` (in `currency`) as the shop writes it: `$7,737.41`.
    pub fn money(&self, amount: Amount, currency: Option<&str>) -> String {
        match &self.money {
            Some(format) => format.format(amount),
            None => MoneyFormat::for_currency(currency.unwrap_or_default()).format(amount),
        }
    }

    /// Order `name` (`#1001`), linked to the order in the shop's admin when
    /// both the admin and the order's numeric id are known.
    pub fn order(&self, name: &str, id: Option<u64>) -> String {
        match (&self.admin, id) {
            (Some(_), Some(id)) if name.contains([']', '[', '(', ')']) => {
                format!("{name} ({})", self.order_url(id).unwrap_or_default())
            }
            (Some(admin), Some(id)) => format!("[{name}]({admin}/orders/{id})"),
            _ => name.to_owned(),
        }
    }

    /// Order `name` linked by its global id (`gid://shopify/Order/42`).
    pub fn order_by_gid(&self, name: &str, gid: &str) -> String {
        self.order(name, gid.rsplit('/').next().and_then(|n| n.parse().ok()))
    }

    fn order_url(&self, id: u64) -> Option<String> {
        self.admin
            .as_ref()
            .map(|admin| format!("{admin}/orders/{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_follows_the_shop_then_the_currency() {
        let a: Amount = "7737.41".parse().unwrap();
        let euro = MoneyFormat::parse("{{amount_with_comma_separator}} €").unwrap();
        assert_eq!(
            ShopFormat::new(Some(euro)).money(a, Some("EUR")),
            "7.737,41 €"
        );
        assert_eq!(ShopFormat::default().money(a, Some("USD")), "$7,737.41");
        assert_eq!(ShopFormat::default().money(a, None), "7,737.41");
    }

    #[test]
    fn orders_link_to_the_admin_when_it_is_known() {
        let f = ShopFormat::default();
        assert_eq!(f.order("#1001", Some(42)), "#1001");
        let f = f.with_admin("https://admin.shopify.com/store/cool-shop/");
        assert_eq!(
            f.order("#1001", Some(42)),
            "[#1001](https://admin.shopify.com/store/cool-shop/orders/42)"
        );
        assert_eq!(f.order("#1001", None), "#1001");
        assert_eq!(
            f.order_by_gid("#7", "gid://shopify/Order/9"),
            "[#7](https://admin.shopify.com/store/cool-shop/orders/9)"
        );
    }

    #[test]
    fn days_are_the_shops() {
        let at = "2026-11-29T03:00:00Z".parse().unwrap();
        assert_eq!(ShopFormat::default().day(at), "2026-11-29");
        let ny = "America/New_York".parse().unwrap();
        assert_eq!(ShopFormat::default().with_zone(ny).day(at), "2026-11-28");
    }
}
