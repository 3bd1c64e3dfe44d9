//! `get_shopify_store_overview`: the shop, its latest orders and best
//! sellers.

use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::shared::{Order, ProductSales};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition, no_arguments_schema};

/// The tool; it takes no arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct StoreOverview {}

impl ToolDefinition for StoreOverview {
    const NAME: &'static str = "get_shopify_store_overview";
    const DESCRIPTION: &'static str = "The store at a glance: shop name, domain, currency, time \
         zone and plan, the latest 10 orders and the best sellers among the latest orders.";
    const THINKING_STATUS: &'static str = "Looking over your store…";
    const SUBJECT: &'static str = "your store overview";
    const TITLE: &'static str = "Store overview";
    type Output = StoreOverviewResult;

    fn input_schema() -> Value {
        no_arguments_schema()
    }

    fn parse(_arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        Ok(Self {})
    }

    async fn run(self, data: &dyn StoreData) -> Result<StoreOverviewResult, ShopifyError> {
        Ok(data.store_overview().await?.into())
    }

    fn text(output: &StoreOverviewResult, format: &ShopFormat) -> String {
        let shop = &output.shop;
        let mut out = format!("**{}** ({}), currency {}.", shop.name, shop.domain, shop.currency);
        out.push_str(&output.best_seller_line());
        if let Some(o) = output.recent_orders.first() {
            out.push_str(&format!(
                "\n- Latest order: {}, {}",
                format.order_by_gid(&o.name, &o.id),
                format.money(o.total, Some(&o.currency))
            ));
        }
        out
    }
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreOverviewResult {
    /// The shop.
    pub shop: Shop,
    /// The latest orders, newest first.
    pub recent_orders: Vec<Order>,
    /// Best sellers among the latest orders.
    pub top_products: Vec<ProductSales>,
    /// Which orders the best sellers are counted over ("the last 50 orders").
    pub top_products_basis: String,
}

impl StoreOverviewResult {
    /// The overview right after the merchant connected the store: the shop
    /// by name. Its best seller is left out: it is counted over the newest
    /// orders, and the week's report that follows names the week's top
    /// product; two "best sellers" over two bases read as a contradiction.
    pub(crate) fn connected_text(&self) -> String {
        format!("Your store **{}** is connected.", self.shop.name)
    }

    /// `\n- Best seller in …`, or nothing without sales.
    fn best_seller_line(&self) -> String {
        match self.top_products.first() {
            Some(top) => format!(
                "\n- Best seller in {}: {} ({} units)",
                self.top_products_basis, top.title, top.units
            ),
            None => String::new(),
        }
    }
}

impl From<hirecj_shopify::StoreOverview> for StoreOverviewResult {
    fn from(o: hirecj_shopify::StoreOverview) -> Self {
        Self {
            shop: o.shop.into(),
            recent_orders: o.recent_orders.into_iter().map(Order::from).collect(),
            top_products: o.top_products.into_iter().map(ProductSales::from).collect(),
            top_products_basis: o.top_products_basis,
        }
    }
}

/// The shop's settings the model may mention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shop {
    /// Shop name.
    pub name: String,
    /// Contact email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The `*.myshopify.com` domain.
    pub domain: String,
    /// Currency of its amounts.
    pub currency: String,
    /// IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Offset from UTC now, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i32>,
    /// Shopify plan name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// A development store (no real customers).
    pub development_store: bool,
    /// On Shopify Plus.
    pub shopify_plus: bool,
}

impl From<hirecj_shopify::ShopInfo> for Shop {
    fn from(s: hirecj_shopify::ShopInfo) -> Self {
        Self {
            name: s.name,
            email: s.email,
            domain: s.domain,
            currency: s.currency,
            timezone: s.timezone,
            utc_offset_minutes: s.utc_offset_minutes,
            plan: s.plan,
            development_store: s.development_store,
            shopify_plus: s.shopify_plus,
        }
    }
}
