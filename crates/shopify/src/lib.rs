//! Shopify: shop-domain validation, OAuth and webhook signatures, the GraphQL
//! Admin API client and the store-data fetcher.

pub mod signing;
