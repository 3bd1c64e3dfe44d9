//! Merchants' connected stores. Tokens are encrypted on the way in and
//! decrypted on the way out; plain text never reaches the database.

use hirecj_domain::{Integration, IntegrationStatus, NewIntegration, UserId};

use crate::row::RowExt;
use crate::{Result, Store, StoreError, micros, now, on_pool};

const COLUMNS: &str = "provider, shop_domain, user_id, access_token_enc, refresh_token_enc, scopes,
    token_expires_at, refresh_expires_at, status, installed_at, updated_at";

impl Store {
    fn integration_from(&self, r: &impl RowExt) -> Result<Integration> {
        let decrypt = |col: &str| -> Result<_> {
            r.opt_text(col)?
                .map(|s| self.cipher().decrypt(&s).map_err(|_| StoreError::Decrypt))
                .transpose()
        };
        let status = r.text("status")?;
        Ok(Integration {
            user_id: r
                .text("user_id")?
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
            provider: r.text("provider")?,
            shop_domain: r.text("shop_domain")?,
            access_token: decrypt("access_token_enc")?,
            refresh_token: decrypt("refresh_token_enc")?,
            scopes: r.text("scopes")?,
            token_expires_at: r.opt_time("token_expires_at")?,
            refresh_expires_at: r.opt_time("refresh_expires_at")?,
            status: IntegrationStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("integration status {status:?}")))?,
            installed_at: r.time("installed_at")?,
            updated_at: r.time("updated_at")?,
        })
    }

    /// Stores (or replaces) a merchant's tokens for a shop and marks the
    /// integration active. The shop moves to this user if it was elsewhere.
    pub async fn upsert_integration(&self, new: &NewIntegration) -> Result<Integration> {
        let access = self.cipher().encrypt(new.access_token.expose());
        let refresh = new
            .refresh_token
            .as_ref()
            .map(|t| self.cipher().encrypt(t.expose()));
        let at = now();
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO merchant_integrations
                   (provider, shop_domain, user_id, access_token_enc, refresh_token_enc, scopes,
                    token_expires_at, refresh_expires_at, status, installed_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $9)
                 ON CONFLICT (provider, shop_domain) DO UPDATE SET
                   user_id = excluded.user_id,
                   access_token_enc = excluded.access_token_enc,
                   refresh_token_enc = excluded.refresh_token_enc,
                   scopes = excluded.scopes,
                   token_expires_at = excluded.token_expires_at,
                   refresh_expires_at = excluded.refresh_expires_at,
                   status = 'active',
                   updated_at = excluded.updated_at",
            )
            .bind(&new.provider)
            .bind(&new.shop_domain)
            .bind(new.user_id.as_str())
            .bind(&access)
            .bind(refresh.as_deref())
            .bind(&new.scopes)
            .bind(new.token_expires_at.map(micros))
            .bind(new.refresh_expires_at.map(micros))
            .bind(at)
            .execute(p)
            .await?;
        });
        self.integration_for_shop(&new.provider, &new.shop_domain)
            .await?
            .ok_or(StoreError::NotFound("integration"))
    }

    pub async fn integration_for_shop(
        &self,
        provider: &str,
        shop_domain: &str,
    ) -> Result<Option<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM merchant_integrations WHERE provider = $1 AND shop_domain = $2"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(provider)
                .bind(shop_domain)
                .fetch_optional(p)
                .await?
                .map(|r| self.integration_from(&r))
                .transpose()
        })
    }

    /// The user's integration with `provider` (the most recently updated one).
    pub async fn integration_for_user(
        &self,
        user: &UserId,
        provider: &str,
    ) -> Result<Option<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM merchant_integrations WHERE user_id = $1 AND provider = $2
             ORDER BY updated_at DESC LIMIT 1"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(user.as_str())
                .bind(provider)
                .fetch_optional(p)
                .await?
                .map(|r| self.integration_from(&r))
                .transpose()
        })
    }

    /// Changes an integration's status. `Uninstalled` also deletes its
    /// tokens. Returns whether an integration was found.
    pub async fn set_integration_status(
        &self,
        provider: &str,
        shop_domain: &str,
        status: IntegrationStatus,
    ) -> Result<bool> {
        let wipe = status == IntegrationStatus::Uninstalled;
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE merchant_integrations SET status = $3, updated_at = $4,
                   access_token_enc = CASE WHEN $5 THEN NULL ELSE access_token_enc END,
                   refresh_token_enc = CASE WHEN $5 THEN NULL ELSE refresh_token_enc END
                 WHERE provider = $1 AND shop_domain = $2",
            )
            .bind(provider)
            .bind(shop_domain)
            .bind(status.as_str())
            .bind(now())
            .bind(wipe)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }
}
