//! Shopify webhook deliveries already processed, so that none is processed
//! twice.
//!
//! A delivery is remembered two ways, and either one marks a later delivery
//! as a duplicate:
//!
//! * by its `X-Shopify-Webhook-Id` (Shopify's retries of one delivery
//!   carry the same id);
//! * by the SHA-256 of its raw body, per shop and topic. The id header is
//!   not covered by Shopify's signature, so a captured signed delivery
//!   replayed under a new id is still recognised by its body.
//!
//! Records are kept for at least [`WEBHOOK_REPLAY_WINDOW`] plus
//! [`WEBHOOK_FUTURE_SKEW`] after they were received ([`Store::purge_expired`]
//! deletes older ones): a delivery triggered longer ago than the window is
//! not processed anyway, so within its window a replay always meets its
//! record.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{Result, Store, micros, now, on_pool};

/// How long after `X-Shopify-Triggered-At` a delivery is still processed.
///
/// Shopify retries a failed delivery 8 times over about 4 hours, so an
/// honest delivery is at most a few hours old. `shop/redact` is sent 48
/// hours after an uninstall; 72 hours leave room should its trigger time
/// ever be the uninstall rather than the send, plus its retries. Anything
/// older can only be a replay.
pub const WEBHOOK_REPLAY_WINDOW: Duration = Duration::from_secs(72 * 60 * 60);

/// How far in the future `X-Shopify-Triggered-At` may be (clock skew
/// between Shopify and this server).
pub const WEBHOOK_FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);

/// One verified webhook delivery, as the store remembers it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookDelivery<'a> {
    /// `X-Shopify-Webhook-Id`, when the delivery carried one.
    pub webhook_id: Option<&'a str>,
    /// `X-Shopify-Topic`.
    pub topic: &'a str,
    /// The shop the delivery is about (canonical `name.myshopify.com`).
    pub shop: &'a str,
    /// The raw body, exactly as signed.
    pub body: &'a [u8],
}

impl WebhookDelivery<'_> {
    /// Lowercase hex SHA-256 of the body.
    pub fn body_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.body))
    }
}

/// The newest `received_at` a record may have and still be deleted when
/// purging at `before`.
pub(crate) fn purge_cutoff(before: DateTime<Utc>) -> DateTime<Utc> {
    let keep = chrono::Duration::from_std(WEBHOOK_REPLAY_WINDOW + WEBHOOK_FUTURE_SKEW)
        .unwrap_or(chrono::Duration::MAX);
    micros(
        before
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    )
}

impl Store {
    /// Remembers a delivery. Returns `true` the first time, `false` when
    /// its id, or its body for the same shop and topic, was seen before
    /// (then nothing is written). Atomic: of two copies arriving together,
    /// one wins.
    pub async fn record_webhook(&self, delivery: &WebhookDelivery<'_>) -> Result<bool> {
        let hash = delivery.body_sha256();
        let at = now();
        let fresh = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            let mut fresh = true;
            if let Some(id) = delivery.webhook_id {
                fresh = sqlx::query(
                    "INSERT INTO processed_webhooks (webhook_id, topic, shop_domain, received_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(delivery.topic)
                .bind(delivery.shop)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            }
            if fresh {
                fresh = sqlx::query(
                    "INSERT INTO webhook_bodies (shop_domain, topic, body_sha256, received_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(delivery.shop)
                .bind(delivery.topic)
                .bind(&hash)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            }
            if fresh {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            fresh
        });
        tracing::debug!(
            shop = delivery.shop,
            topic = delivery.topic,
            fresh,
            "recorded a webhook delivery"
        );
        Ok(fresh)
    }

    /// Forgets a delivery recorded by [`Store::record_webhook`] (its id and
    /// its body), so that Shopify's retry is processed again. Used when
    /// processing failed. Returns whether anything was forgotten.
    pub async fn forget_webhook(&self, delivery: &WebhookDelivery<'_>) -> Result<bool> {
        let hash = delivery.body_sha256();
        let n = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            let mut n = 0;
            if let Some(id) = delivery.webhook_id {
                n += sqlx::query("DELETE FROM processed_webhooks WHERE webhook_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            n += sqlx::query(
                "DELETE FROM webhook_bodies
                 WHERE shop_domain = $1 AND topic = $2 AND body_sha256 = $3",
            )
            .bind(delivery.shop)
            .bind(delivery.topic)
            .bind(&hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    }

    /// Deletes webhook records whose replay window had passed at `before`.
    pub(crate) async fn purge_webhook_records(&self, before: DateTime<Utc>) -> Result<u64> {
        let cutoff = purge_cutoff(before);
        on_pool!(self, |p| {
            let mut n = 0;
            for sql in [
                "DELETE FROM processed_webhooks WHERE received_at < $1",
                "DELETE FROM webhook_bodies WHERE received_at < $1",
            ] {
                n += sqlx::query(sql)
                    .bind(cutoff)
                    .execute(p)
                    .await?
                    .rows_affected();
            }
            Ok(n)
        })
    }
}
