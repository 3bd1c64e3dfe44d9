//! Users (one per shop), their events and their profile statistics.

use hirecj_domain::{ConversationId, Event, ProfileStats, User, UserId};
use serde_json::Value;
use sqlx::types::Json;

use crate::row::RowExt;
use crate::{Result, Store, StoreError, now, on_pool};

const USER_COLUMNS: &str = "id, shop_domain, email, name, created_at, last_seen_at";

pub(crate) fn user_from(r: &impl RowExt) -> Result<User> {
    let id = r.text("id")?;
    Ok(User {
        id: id
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        shop_domain: r.text("shop_domain")?,
        email: r.opt_text("email")?,
        name: r.opt_text("name")?,
        created_at: r.time("created_at")?,
        last_seen_at: r.time("last_seen_at")?,
    })
}

fn event_from(r: &impl RowExt) -> Result<Event> {
    Ok(Event {
        id: r.int("id")?,
        user_id: r
            .opt_text("user_id")?
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        conversation_id: r.opt_uuid("conversation_id")?.map(ConversationId),
        kind: r.text("kind")?,
        data: r.json("data")?,
        created_at: r.time("created_at")?,
    })
}

impl Store {
    /// Finds the user for `shop_domain`, or creates one with a fresh
    /// `usr_xxxxxxxx` id. Returns the user and whether it was just created.
    /// Safe under concurrency: any number of simultaneous calls for one new
    /// shop create exactly one user. Email and name fill in blanks on an
    /// existing user; they never overwrite what is there.
    pub async fn get_or_create_user(
        &self,
        shop_domain: &str,
        email: Option<&str>,
        name: Option<&str>,
    ) -> Result<(User, bool)> {
        // A clash of random ids is astronomically rare; retry a few times anyway.
        for _ in 0..5 {
            let at = now();
            let id = UserId::generate();
            let inserted = on_pool!(self, |p| {
                sqlx::query(
                    "INSERT INTO users (id, shop_domain, email, name, created_at, last_seen_at)
                     VALUES ($1, $2, $3, $4, $5, $5)
                     ON CONFLICT DO NOTHING",
                )
                .bind(id.as_str())
                .bind(shop_domain)
                .bind(email)
                .bind(name)
                .bind(at)
                .execute(p)
                .await?
                .rows_affected()
            });
            if inserted == 1 {
                let user = self.user(&id).await?.ok_or(StoreError::NotFound("user"))?;
                return Ok((user, true));
            }
            if let Some(existing) = self.user_by_shop(shop_domain).await? {
                on_pool!(self, |p| {
                    sqlx::query(
                        "UPDATE users SET email = COALESCE(email, $2), name = COALESCE(name, $3),
                         last_seen_at = $4 WHERE id = $1",
                    )
                    .bind(existing.id.as_str())
                    .bind(email)
                    .bind(name)
                    .bind(now())
                    .execute(p)
                    .await?;
                });
                let user = self
                    .user(&existing.id)
                    .await?
                    .ok_or(StoreError::NotFound("user"))?;
                return Ok((user, false));
            }
        }
        Err(StoreError::Corrupt(
            "could not allocate a unique user id".into(),
        ))
    }

    pub async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(id.as_str())
                .fetch_optional(p)
                .await?
                .map(|r| user_from(&r))
                .transpose()
        })
    }

    pub async fn user_by_shop(&self, shop_domain: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE shop_domain = $1");
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(shop_domain)
                .fetch_optional(p)
                .await?
                .map(|r| user_from(&r))
                .transpose()
        })
    }

    /// Records activity: moves `last_seen_at` to now.
    pub async fn touch_user(&self, id: &UserId) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE users SET last_seen_at = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(now())
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Records that something happened, for audit and analytics.
    pub async fn log_event(
        &self,
        user: Option<&UserId>,
        conversation: Option<ConversationId>,
        kind: &str,
        data: Value,
    ) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO events (user_id, conversation_id, kind, data, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user.map(UserId::as_str))
            .bind(conversation.map(|c| c.0))
            .bind(kind)
            .bind(Json(&data))
            .bind(now())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// `log_event` for a user, as the seed names it.
    pub async fn log_user_event(&self, user: &UserId, kind: &str, data: Value) -> Result<()> {
        self.log_event(Some(user), None, kind, data).await
    }

    /// A user's events, oldest first.
    pub async fn events_for_user(&self, user: &UserId, limit: i64) -> Result<Vec<Event>> {
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, user_id, conversation_id, kind, data, created_at FROM events
                 WHERE user_id = $1 ORDER BY id LIMIT $2",
            )
            .bind(user.as_str())
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(event_from)
            .collect()
        })
    }

    /// Events of one kind across all users, newest first (operators' view).
    pub async fn events_of_kind(&self, kind: &str, limit: i64) -> Result<Vec<Event>> {
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, user_id, conversation_id, kind, data, created_at FROM events
                 WHERE kind = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(kind)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(event_from)
            .collect()
        })
    }

    /// Totals over a user's conversations.
    pub async fn profile_stats(&self, user: &UserId) -> Result<ProfileStats> {
        on_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT COUNT(*) AS total,
                        CAST(COALESCE(SUM(last_seq), 0) AS BIGINT) AS messages,
                        MIN(started_at) AS first_at,
                        MAX(started_at) AS last_at
                 FROM conversations WHERE user_id = $1",
            )
            .bind(user.as_str())
            .fetch_one(p)
            .await?;
            Ok(ProfileStats {
                total_conversations: r.int("total")?,
                total_messages: r.int("messages")?,
                first_conversation_at: r.opt_time("first_at")?,
                last_conversation_at: r.opt_time("last_at")?,
            })
        })
    }
}
