//! Browser sessions and pending OAuth installs. Both are stored only as
//! hashes of the random values the browser holds.

use chrono::{DateTime, Utc};
use hirecj_domain::{ConversationId, OAuthState, Secret, UserId, WebSession};

use crate::crypto::{hash_token, random_token};
use crate::row::RowExt;
use crate::{Result, Store, StoreError, micros, now, on_pool};

fn session_from(r: &impl RowExt) -> Result<WebSession> {
    Ok(WebSession {
        id: r.text("id")?,
        user_id: r
            .opt_text("user_id")?
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        last_seen_at: r.time("last_seen_at")?,
    })
}

impl Store {
    /// Starts a session and returns the token for the cookie (never stored)
    /// with the stored record (whose `id` is the token's hash).
    pub async fn create_session(
        &self,
        user: Option<&UserId>,
        expires_at: DateTime<Utc>,
    ) -> Result<(Secret, WebSession)> {
        let token = random_token();
        let id = hash_token(&token);
        let at = now();
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO web_sessions (id, user_id, created_at, expires_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $3)",
            )
            .bind(&id)
            .bind(user.map(UserId::as_str))
            .bind(at)
            .bind(micros(expires_at))
            .execute(p)
            .await?;
        });
        let session = WebSession {
            id,
            user_id: user.cloned(),
            created_at: at,
            expires_at: micros(expires_at),
            last_seen_at: at,
        };
        Ok((Secret::new(token), session))
    }

    /// The live (not expired, not revoked) session a cookie token names.
    pub async fn session_by_token(&self, token: &str) -> Result<Option<WebSession>> {
        self.session(&hash_token(token)).await
    }

    /// The live session with this id (the token's hash).
    pub async fn session(&self, id: &str) -> Result<Option<WebSession>> {
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, user_id, created_at, expires_at, last_seen_at FROM web_sessions
                 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(id)
            .bind(now())
            .fetch_optional(p)
            .await?
            .map(|r| session_from(&r))
            .transpose()
        })
    }

    /// Records activity on a session.
    pub async fn touch_session(&self, id: &str) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE web_sessions SET last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now())
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Moves a session's expiry (a visitor's session on its first use).
    pub async fn extend_session(&self, id: &str, expires_at: DateTime<Utc>) -> Result<()> {
        let expires_at = micros(expires_at);
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE web_sessions SET expires_at = $2, last_seen_at = $3
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(expires_at)
            .bind(now())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Ids of the sessions revoked at or after `since` (each replica closes
    /// the sockets of sessions signed out on any replica).
    pub async fn sessions_revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<String>> {
        let since = micros(since);
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id FROM web_sessions WHERE revoked_at >= $1 ORDER BY revoked_at LIMIT 10000",
            )
            .bind(since)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| r.text("id").map_err(StoreError::from))
                .collect()
        })
    }

    /// Ends a session on the server; its cookie stops working at once.
    pub async fn revoke_session(&self, id: &str) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE web_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Deletes sessions and OAuth states that expired before `before`, and
    /// records of webhook deliveries whose replay window had passed at
    /// `before` (they are kept for [`crate::WEBHOOK_REPLAY_WINDOW`] plus
    /// [`crate::WEBHOOK_FUTURE_SKEW`] after they were received).
    pub async fn purge_expired(&self, before: DateTime<Utc>) -> Result<u64> {
        let webhooks = self.purge_webhook_records(before).await?;
        let before = micros(before);
        let expired: u64 = on_pool!(self, |p| {
            let a = sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected();
            let b = sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected();
            a + b
        });
        Ok(expired + webhooks)
    }

    /// Remembers a pending install under the hash of its `state`.
    pub async fn create_oauth_state(&self, state: &str, pending: &OAuthState) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO oauth_states
                   (state_hash, shop_domain, conversation_id, session_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(hash_token(state))
            .bind(&pending.shop_domain)
            .bind(pending.conversation_id.map(|c| c.0))
            .bind(pending.session_id.as_deref())
            .bind(micros(pending.created_at))
            .bind(micros(pending.expires_at))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Uses up a pending install: returns it only if it exists, has not
    /// expired and was not used before. Atomic, so a replayed state loses
    /// even when both requests arrive together.
    pub async fn take_oauth_state(&self, state: &str) -> Result<Option<OAuthState>> {
        on_pool!(self, |p| {
            let row = sqlx::query(
                "UPDATE oauth_states SET used_at = $2
                 WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING shop_domain, conversation_id, session_id, created_at, expires_at",
            )
            .bind(hash_token(state))
            .bind(now())
            .fetch_optional(p)
            .await?;
            row.map(|r| {
                Ok(OAuthState {
                    shop_domain: r.text("shop_domain")?,
                    conversation_id: r.opt_uuid("conversation_id")?.map(ConversationId),
                    session_id: r.opt_text("session_id")?,
                    created_at: r.time("created_at")?,
                    expires_at: r.time("expires_at")?,
                })
            })
            .transpose()
        })
    }
}
