//! Durable facts merchants told CJ about their business.

use hirecj_domain::{ConversationId, Fact, FactId, UserId, normalize_fact};

use crate::row::RowExt;
use crate::{Result, Store, StoreError, now, on_pool};

fn fact_from(r: &impl RowExt) -> Result<Fact> {
    Ok(Fact {
        id: FactId(r.uuid("id")?),
        user_id: r
            .text("user_id")?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        text: r.text("text")?,
        source_conversation_id: r.opt_uuid("source_conversation_id")?.map(ConversationId),
        created_at: r.time("created_at")?,
    })
}

impl Store {
    /// Remembers a fact. Returns `None` when the user already has it (or it
    /// is empty once normalised).
    pub async fn add_fact(
        &self,
        user: &UserId,
        text: &str,
        source: Option<ConversationId>,
    ) -> Result<Option<Fact>> {
        let normalized = normalize_fact(text);
        if normalized.is_empty() {
            return Ok(None);
        }
        let id = FactId::generate();
        let n = on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO facts (id, user_id, text, normalized, source_conversation_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(id.0)
            .bind(user.as_str())
            .bind(text.trim())
            .bind(&normalized)
            .bind(source.map(|c| c.0))
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Ok(None);
        }
        Ok(self.facts(user).await?.into_iter().find(|f| f.id == id))
    }

    /// Everything CJ remembers about a user, oldest first.
    pub async fn facts(&self, user: &UserId) -> Result<Vec<Fact>> {
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, user_id, text, source_conversation_id, created_at FROM facts
                 WHERE user_id = $1 ORDER BY created_at, id",
            )
            .bind(user.as_str())
            .fetch_all(p)
            .await?
            .iter()
            .map(fact_from)
            .collect()
        })
    }

    /// Forgets one of the user's facts. Returns whether it existed (and
    /// belonged to this user).
    pub async fn delete_fact(&self, user: &UserId, id: FactId) -> Result<bool> {
        let n = on_pool!(self, |p| {
            sqlx::query("DELETE FROM facts WHERE id = $1 AND user_id = $2")
                .bind(id.0)
                .bind(user.as_str())
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }
}
