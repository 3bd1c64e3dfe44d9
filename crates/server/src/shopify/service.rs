//! Access to a merchant's store for the rest of the app: a fresh token (the
//! expiring offline token is refreshed, and stored, when it expires within
//! [`REFRESH_MARGIN`]), a [`ShopifyDataFetcher`] built on it, and the one
//! reaction to a 401 from Shopify: the integration is marked
//! `needs_reconnect` and the merchant is asked to reconnect.
//!
//! The shop and token always come from the user's integration, never from
//! the model or the request.

use std::time::Duration;

use chrono::Utc;
use hirecj_domain::{Integration, IntegrationStatus, NewIntegration, Secret, UserId};
use hirecj_shopify::{ShopDomain, ShopifyDataFetcher, ShopifyError, refresh_token};

use super::{PROVIDER, ShopifyRuntime};
use hirecj_store::{Store, StoreError};

/// A token expiring within this margin is refreshed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Why no usable token could be produced.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The user never connected a store.
    #[error("no Shopify store is connected")]
    NotConnected,
    /// The token was refused, or cannot be refreshed: the merchant must
    /// reconnect the store.
    #[error("the Shopify connection has expired: reconnect the store")]
    NeedsReconnect,
    /// The app was uninstalled from the store.
    #[error("the HireCJ app was uninstalled from the store")]
    Uninstalled,
    /// The stored shop domain is not valid (should not happen).
    #[error("the stored shop domain is invalid")]
    InvalidShop,
    /// Refreshing failed for a reason that may pass (timeout, 5xx).
    #[error("could not refresh the Shopify token: {0}")]
    Refresh(#[source] ShopifyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccessError {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConnected => "not_connected",
            Self::NeedsReconnect => "needs_reconnect",
            Self::Uninstalled => "uninstalled",
            Self::InvalidShop => "invalid_shop",
            Self::Refresh(_) => "refresh_failed",
            Self::Store(_) => "internal",
        }
    }
}

/// A shop and a token valid for at least [`REFRESH_MARGIN`] (or not
/// expiring), with the granted scopes.
#[derive(Debug, Clone)]
pub struct ShopAccess {
    pub shop: ShopDomain,
    pub token: Secret,
    pub scopes: Vec<String>,
}

fn expires_soon(i: &Integration) -> bool {
    let margin = chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or(chrono::Duration::zero());
    i.token_expires_at
        .is_some_and(|at| at - margin <= Utc::now())
}

fn scopes_of(i: &Integration) -> Vec<String> {
    hirecj_shopify::oauth::split_scopes(&i.scopes)
}

fn usable(i: &Integration) -> Result<ShopAccess, AccessError> {
    let shop = ShopDomain::parse_exact(&i.shop_domain).map_err(|_| AccessError::InvalidShop)?;
    let token = i.access_token.clone().ok_or(AccessError::NeedsReconnect)?;
    Ok(ShopAccess {
        shop,
        token,
        scopes: scopes_of(i),
    })
}

async fn integration(store: &Store, user: &UserId) -> Result<Integration, AccessError> {
    let i = store
        .integration_for_user(user, PROVIDER)
        .await?
        .ok_or(AccessError::NotConnected)?;
    match i.status {
        IntegrationStatus::Active => Ok(i),
        IntegrationStatus::NeedsReconnect => Err(AccessError::NeedsReconnect),
        IntegrationStatus::Uninstalled => Err(AccessError::Uninstalled),
    }
}

/// The user's shop and a fresh access token, refreshing (and storing) it
/// when it expires within 5 minutes. A refused refresh marks the
/// integration `needs_reconnect`.
pub async fn access_token_for(
    store: &Store,
    shopify: &ShopifyRuntime,
    user: &UserId,
) -> Result<ShopAccess, AccessError> {
    let current = integration(store, user).await?;
    if !expires_soon(&current) {
        return usable(&current);
    }
    // One refresh per shop at a time in this process; re-read under the
    // lock, since another task (or replica) may have refreshed already.
    let lock = shopify.refresh_lock(&current.shop_domain);
    let _guard = lock.lock().await;
    let current = integration(store, user).await?;
    if !expires_soon(&current) {
        return usable(&current);
    }
    let shop =
        ShopDomain::parse_exact(&current.shop_domain).map_err(|_| AccessError::InvalidShop)?;
    let refresh_usable = current.refresh_expires_at.is_none_or(|at| at > Utc::now());
    let Some(refresh) = current.refresh_token.clone().filter(|_| refresh_usable) else {
        tracing::info!(%shop, "the Shopify token expired and cannot be refreshed");
        mark_needs_reconnect(store, &shop).await;
        return Err(AccessError::NeedsReconnect);
    };
    match refresh_token(&shopify.http, &shopify.config, &shop, &refresh).await {
        Ok(grant) => {
            let updated = store
                .upsert_integration(&NewIntegration {
                    user_id: current.user_id.clone(),
                    provider: PROVIDER.to_owned(),
                    shop_domain: current.shop_domain.clone(),
                    access_token: grant.access_token.clone(),
                    // Shopify rotates refresh tokens; keep the old one if
                    // the answer has none.
                    refresh_token: grant.refresh_token.clone().or(Some(refresh)),
                    scopes: if grant.scope.is_empty() {
                        current.scopes.clone()
                    } else {
                        grant.scope.clone()
                    },
                    token_expires_at: grant.expires_at,
                    refresh_expires_at: grant
                        .refresh_token_expires_at
                        .or(current.refresh_expires_at),
                })
                .await?;
            tracing::info!(%shop, "refreshed the Shopify access token");
            usable(&updated)
        }
        Err(e @ (ShopifyError::Unauthorized { .. } | ShopifyError::TokenRejected { .. })) => {
            // Another replica may have rotated the refresh token first.
            let again = integration(store, user).await?;
            if !expires_soon(&again) {
                return usable(&again);
            }
            tracing::warn!(%shop, code = e.code(), request_id = e.request_id(), "Shopify refused the token refresh");
            mark_needs_reconnect(store, &shop).await;
            Err(AccessError::NeedsReconnect)
        }
        Err(e) => {
            tracing::warn!(%shop, code = e.code(), "could not refresh the Shopify token");
            Err(AccessError::Refresh(e))
        }
    }
}

/// A data fetcher for the user's store, on a fresh token, sharing the
/// app's Admin client (pacing) and cache.
pub async fn fetcher_for(
    store: &Store,
    shopify: &ShopifyRuntime,
    user: &UserId,
) -> Result<ShopifyDataFetcher, AccessError> {
    let access = access_token_for(store, shopify, user).await?;
    Ok(ShopifyDataFetcher::new(
        shopify.admin.clone(),
        access.shop,
        access.token,
        shopify.cache.clone(),
    )
    .with_granted_scopes(access.scopes))
}

/// What to do with an error from Shopify: a 401 marks the shop's
/// integration `needs_reconnect` (returns `true`), anything else is left to
/// the caller.
pub async fn note_shopify_error(store: &Store, shop: &ShopDomain, error: &ShopifyError) -> bool {
    if error.needs_reconnect() {
        mark_needs_reconnect(store, shop).await;
        true
    } else {
        false
    }
}

async fn mark_needs_reconnect(store: &Store, shop: &ShopDomain) {
    match store
        .set_integration_status(PROVIDER, shop.as_str(), IntegrationStatus::NeedsReconnect)
        .await
    {
        Ok(_) => tracing::warn!(%shop, "Shopify integration marked as needing reconnection"),
        Err(e) => {
            tracing::error!(%shop, error = %e, "could not mark the integration for reconnection")
        }
    }
}
