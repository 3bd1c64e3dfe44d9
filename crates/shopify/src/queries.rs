//! Every GraphQL query HireCJ sends to the Admin API, in one place, so the
//! development-store simulator and the tests can see exactly which fields
//! and arguments are used. All of them are real Shopify Admin API fields.
//!
//! Search syntax used in `query:` arguments (Shopify's search syntax):
//! * orders: `created_at:>=YYYY-MM-DD`, `created_at:<=YYYY-MM-DD` (space = AND),
//!   `status:open`, `email:"…"`;
//! * customers: `email:"…"`.

/// Orders per page when paginating (with [`LINE_ITEMS_PER_ORDER`] line items
/// per order the requested cost stays well under Shopify's 1,000 points).
pub const ORDERS_PAGE_SIZE: u32 = 30;

/// Line items fetched per order; must match the `lineItems(first: …)` below.
pub const LINE_ITEMS_PER_ORDER: u32 = 10;

/// The order fields every order query selects.
macro_rules! order_fields {
    () => {
        "id name createdAt cancelledAt displayFinancialStatus displayFulfillmentStatus \
         totalPriceSet { shopMoney { amount currencyCode } } \
         totalRefundedSet { shopMoney { amount currencyCode } } \
         customer { id email displayName } \
         lineItems(first: 10) { nodes { title quantity product { id } } }"
    };
}

/// The shop fields.
macro_rules! shop_fields {
    () => {
        "shop { name email myshopifyDomain currencyCode currencyFormats { moneyFormat } \
         ianaTimezone timezoneOffsetMinutes plan { publicDisplayName partnerDevelopment shopifyPlus } }"
    };
}

/// The shop itself. No variables.
pub const SHOP: &str = concat!("query Shop { ", shop_fields!(), " }");

/// The shop's name and contact email, read once at install. No variables.
pub const SHOP_IDENTITY: &str = "query ShopIdentity { shop { name email } }";

/// The shop's time zone, to cut days at the shop's midnight. No variables.
pub const SHOP_TIMEZONE: &str =
    "query ShopTimezone { shop { ianaTimezone timezoneOffsetMinutes } }";

/// Product, order, open-order and customer counts (`{ count precision }`).
/// `limit: null` lifts the default 10,000 cap of `ordersCount`. No variables.
pub const STORE_COUNTS: &str = "query StoreCounts { \
     productsCount { count precision } \
     ordersCount(limit: null) { count precision } \
     openOrders: ordersCount(query: \"status:open\", limit: null) { count precision } \
     customersCount { count precision } }";

/// The shop plus its latest orders. Variables: `first: Int!`.
pub const STORE_OVERVIEW: &str = concat!(
    "query StoreOverview($first: Int!) { ",
    shop_fields!(),
    " orders(first: $first, sortKey: CREATED_AT, reverse: true) { nodes { ",
    order_fields!(),
    " } } }"
);

/// One page of orders matching a search, newest first. Variables:
/// `first: Int!`, `after: String` (the previous page's `endCursor`, or
/// null), `query: String` (e.g. `created_at:>=2026-11-01`).
pub const ORDERS_PAGE: &str = concat!(
    "query OrdersPage($first: Int!, $after: String, $query: String) { ",
    "orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT, reverse: true) { ",
    "pageInfo { hasNextPage endCursor } nodes { ",
    order_fields!(),
    " } } }"
);

/// A customer by email and the latest orders placed with that email.
/// Variables: `customerQuery: String!` and `orderQuery: String!` (both
/// `email:"…"`), `orders: Int!`.
pub const CUSTOMER_BY_EMAIL: &str = concat!(
    "query CustomerByEmail($customerQuery: String!, $orderQuery: String!, $orders: Int!) { ",
    "customers(first: 1, query: $customerQuery) { nodes { id email displayName } } ",
    "orders(first: $orders, query: $orderQuery, sortKey: CREATED_AT, reverse: true) { nodes { ",
    order_fields!(),
    " } } }"
);

/// All queries, with their names, for tools that want to check them (e.g.
/// the simulator validating each against its schema).
pub const ALL: &[(&str, &str)] = &[
    ("Shop", SHOP),
    ("ShopIdentity", SHOP_IDENTITY),
    ("ShopTimezone", SHOP_TIMEZONE),
    ("StoreCounts", STORE_COUNTS),
    ("StoreOverview", STORE_OVERVIEW),
    ("OrdersPage", ORDERS_PAGE),
    ("CustomerByEmail", CUSTOMER_BY_EMAIL),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_balanced_and_named() {
        for (name, q) in ALL {
            assert!(q.starts_with(&format!("query {name}")), "{name}");
            let opens = q.matches('{').count();
            let closes = q.matches('}').count();
            assert_eq!(opens, closes, "{name}: unbalanced braces");
            assert_eq!(q.matches('(').count(), q.matches(')').count(), "{name}");
        }
        assert!(ORDERS_PAGE.contains(&format!("lineItems(first: {LINE_ITEMS_PER_ORDER})")));
        assert!(ORDERS_PAGE.contains("pageInfo { hasNextPage endCursor }"));
    }
}
