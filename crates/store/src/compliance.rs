//! Privacy requests: what Shopify's compliance webhooks ask HireCJ to forget.
//!
//! * [`Store::redact_customer`] (`customers/redact`): replaces a shop
//!   customer's identifiers (email, phone, id) with `[redacted]` in
//!   everything stored for the shop's merchant: message contents and UI
//!   elements, conversation titles and state, facts, event data and turn
//!   traces; plus the events recorded for the shop while it had no user.
//! * [`Store::delete_shop_data`] (`shop/redact`): deletes the shop's user
//!   and everything that belongs to it (sessions, integration, pending
//!   installs, conversations, messages, traces, facts, events).
//!
//! Both run in one transaction: a request is applied entirely or not at all.

use std::collections::HashSet;

use hirecj_domain::UserId;
use serde_json::Value;
use sqlx::types::Json;

use crate::row::RowExt;
use crate::{Result, Store, on_pool};
use hirecj_domain::normalize_fact;

/// What replaces a redacted identifier.
pub const REDACTED: &str = "[redacted]";

/// Identifiers shorter than this are not redacted: they would match
/// unrelated text.
pub const MIN_NEEDLE_LEN: usize = 3;

/// How many stored records a redaction changed, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedactionCounts {
    pub messages: u64,
    pub conversations: u64,
    pub facts: u64,
    pub events: u64,
    pub traces: u64,
}

impl RedactionCounts {
    /// All records changed.
    pub fn total(&self) -> u64 {
        self.messages + self.conversations + self.facts + self.events + self.traces
    }
}

/// The identifiers to look for: trimmed, without empty or too-short ones,
/// without duplicates.
fn clean_needles(needles: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in needles {
        let n = n.trim();
        if n.chars().count() >= MIN_NEEDLE_LEN && !out.iter().any(|o| o.eq_ignore_ascii_case(n)) {
            out.push(n.to_owned());
        }
    }
    out
}

fn is_word_byte(b: u8, email: bool) -> bool {
    b.is_ascii_alphanumeric() || (email && matches!(b, b'.' | b'_' | b'%' | b'+' | b'-'))
}

/// Replaces every occurrence of `needle` (ASCII case-insensitive, not inside
/// a longer word or number) with [`REDACTED`].
fn redact_one(text: &str, needle: &str) -> Option<String> {
    let hay = text.to_ascii_lowercase();
    let pat = needle.to_ascii_lowercase();
    let email = pat.contains('@');
    let (hb, pb) = (hay.as_bytes(), pat.as_bytes());
    let starts_word = pb.first().is_some_and(|b| b.is_ascii_alphanumeric());
    let ends_word = pb.last().is_some_and(|b| b.is_ascii_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    let mut changed = false;
    while let Some(pos) = hay[from..].find(&pat) {
        let start = from + pos;
        let end = start + pat.len();
        let before_ok =
            !starts_word || start == 0 || !is_word_byte(hb[start - 1], email && start > 0);
        let after_ok = !ends_word || end >= hb.len() || !hb[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            out.push_str(&text[last..start]);
            out.push_str(REDACTED);
            last = end;
            changed = true;
            from = end;
        } else {
            // Step over one character (patterns and text are valid UTF-8;
            // ASCII lowercasing keeps byte offsets).
            from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
        }
        if from >= hay.len() {
            break;
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// `text` with every needle redacted, or `None` when nothing matched.
pub fn redact_text(text: &str, needles: &[String]) -> Option<String> {
    let mut current: Option<String> = None;
    for n in needles {
        let source = current.as_deref().unwrap_or(text);
        if let Some(next) = redact_one(source, n) {
            current = Some(next);
        }
    }
    current
}

/// `value` with every string (and every number equal to a numeric needle)
/// redacted, or `None` when nothing matched.
pub fn redact_json(value: &Value, needles: &[String]) -> Option<Value> {
    match value {
        Value::String(s) => redact_text(s, needles).map(Value::String),
        Value::Number(n) => {
            let s = n.to_string();
            needles
                .contains(&s)
                .then(|| Value::String(REDACTED.to_owned()))
        }
        Value::Array(items) => {
            let mut changed = false;
            let out: Vec<Value> = items
                .iter()
                .map(|v| match redact_json(v, needles) {
                    Some(r) => {
                        changed = true;
                        r
                    }
                    None => v.clone(),
                })
                .collect();
            changed.then_some(Value::Array(out))
        }
        Value::Object(map) => {
            let mut changed = false;
            let out = map
                .iter()
                .map(|(k, v)| {
                    let v = match redact_json(v, needles) {
                        Some(r) => {
                            changed = true;
                            r
                        }
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect();
            changed.then_some(Value::Object(out))
        }
        Value::Null | Value::Bool(_) => None,
    }
}

/// The `LIKE` pattern finding a shop's domain as a JSON string. Shop
/// domains hold only `[a-z0-9.-]`, none of which `LIKE` treats specially.
fn shop_pattern(shop: &str) -> String {
    format!("%\"{shop}\"%")
}

impl Store {
    /// Replaces a shop customer's identifiers (`needles`: email, phone, id,
    /// as strings) with `[redacted]` in everything stored for the shop's
    /// merchant. Matching ignores ASCII case and never matches inside a
    /// longer word or number; identifiers shorter than
    /// [`MIN_NEEDLE_LEN`] characters are ignored.
    pub async fn redact_customer(&self, shop: &str, needles: &[&str]) -> Result<RedactionCounts> {
        let needles = clean_needles(needles);
        let mut counts = RedactionCounts::default();
        if needles.is_empty() {
            return Ok(counts);
        }
        let user: Option<UserId> = self.user_by_shop(shop).await?.map(|u| u.id);
        let user_id = user.as_ref().map(UserId::as_str).unwrap_or("");
        on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;

            let rows = sqlx::query(
                "SELECT m.conversation_id, m.seq, m.content, m.ui_elements FROM messages m
                 JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = $1",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let content = r.text("content")?;
                let ui = r.json("ui_elements")?;
                let new_content = redact_text(&content, &needles);
                let new_ui = redact_json(&ui, &needles);
                if new_content.is_none() && new_ui.is_none() {
                    continue;
                }
                sqlx::query(
                    "UPDATE messages SET content = $3, ui_elements = $4
                     WHERE conversation_id = $1 AND seq = $2",
                )
                .bind(r.uuid("conversation_id")?)
                .bind(r.int("seq")?)
                .bind(new_content.unwrap_or(content))
                .bind(Json(new_ui.unwrap_or(ui)))
                .execute(&mut *tx)
                .await?;
                counts.messages += 1;
            }

            let rows = sqlx::query("SELECT id, title, state FROM conversations WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                let title = r.opt_text("title")?;
                let state = r.json("state")?;
                let new_title = title.as_deref().and_then(|t| redact_text(t, &needles));
                let new_state = redact_json(&state, &needles);
                if new_title.is_none() && new_state.is_none() {
                    continue;
                }
                sqlx::query("UPDATE conversations SET title = $2, state = $3 WHERE id = $1")
                    .bind(r.uuid("id")?)
                    .bind(new_title.or(title))
                    .bind(Json(new_state.unwrap_or(state)))
                    .execute(&mut *tx)
                    .await?;
                counts.conversations += 1;
            }

            let rows = sqlx::query("SELECT id, text, normalized FROM facts WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
            let mut taken: HashSet<String> = rows
                .iter()
                .map(|r| r.text("normalized"))
                .collect::<Result<_, _>>()?;
            for r in &rows {
                let Some(text) = redact_text(&r.text("text")?, &needles) else {
                    continue;
                };
                let old = r.text("normalized")?;
                let normalized = normalize_fact(&text);
                taken.remove(&old);
                if taken.contains(&normalized) {
                    // The redacted fact now says what another one says.
                    sqlx::query("DELETE FROM facts WHERE id = $1")
                        .bind(r.uuid("id")?)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query("UPDATE facts SET text = $2, normalized = $3 WHERE id = $1")
                        .bind(r.uuid("id")?)
                        .bind(&text)
                        .bind(&normalized)
                        .execute(&mut *tx)
                        .await?;
                    taken.insert(normalized);
                }
                counts.facts += 1;
            }

            let rows = sqlx::query(
                "SELECT id, data FROM events
                 WHERE user_id = $1 OR (user_id IS NULL AND CAST(data AS TEXT) LIKE $2)",
            )
            .bind(user_id)
            .bind(shop_pattern(shop))
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let Some(data) = redact_json(&r.json("data")?, &needles) else {
                    continue;
                };
                sqlx::query("UPDATE events SET data = $2 WHERE id = $1")
                    .bind(r.int("id")?)
                    .bind(Json(data))
                    .execute(&mut *tx)
                    .await?;
                counts.events += 1;
            }

            let rows = sqlx::query(
                "SELECT t.conversation_id, t.turn, t.data FROM turn_traces t
                 JOIN conversations c ON c.id = t.conversation_id WHERE c.user_id = $1",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let Some(data) = redact_json(&r.json("data")?, &needles) else {
                    continue;
                };
                sqlx::query(
                    "UPDATE turn_traces SET data = $3 WHERE conversation_id = $1 AND turn = $2",
                )
                .bind(r.uuid("conversation_id")?)
                .bind(r.int("turn")?)
                .bind(Json(data))
                .execute(&mut *tx)
                .await?;
                counts.traces += 1;
            }

            tx.commit().await?;
        });
        tracing::info!(
            shop,
            messages = counts.messages,
            conversations = counts.conversations,
            facts = counts.facts,
            events = counts.events,
            traces = counts.traces,
            "redacted a customer's data"
        );
        Ok(counts)
    }

    /// Deletes everything HireCJ stores for a shop: its user with their
    /// sessions, conversations, messages, turn traces, facts and events;
    /// the shop's integration (tokens included) and pending installs; and
    /// events recorded for the shop without a user. Returns whether there
    /// was anything to delete. Records of processed webhooks (delivery ids
    /// and body hashes) are kept until their replay window has passed: they
    /// hold no personal data and keep retries and replays from being
    /// processed again.
    pub async fn delete_shop_data(&self, shop: &str) -> Result<bool> {
        let user: Option<UserId> = self.user_by_shop(shop).await?.map(|u| u.id);
        let user_id = user.as_ref().map(UserId::as_str).unwrap_or("");
        let deleted = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            let mut n = 0u64;
            let user_scoped = [
                "DELETE FROM turn_traces WHERE conversation_id IN
                   (SELECT id FROM conversations WHERE user_id = $1)",
                "DELETE FROM messages WHERE conversation_id IN
                   (SELECT id FROM conversations WHERE user_id = $1)",
                "DELETE FROM facts WHERE user_id = $1",
                "DELETE FROM events WHERE user_id = $1",
                "DELETE FROM web_sessions WHERE user_id = $1",
                "DELETE FROM conversations WHERE user_id = $1",
                "DELETE FROM merchant_integrations WHERE user_id = $1",
                "DELETE FROM users WHERE id = $1",
            ];
            if user.is_some() {
                for sql in user_scoped {
                    n += sqlx::query(sql)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
            }
            for sql in [
                "DELETE FROM merchant_integrations WHERE shop_domain = $1",
                "DELETE FROM oauth_states WHERE shop_domain = $1",
            ] {
                n += sqlx::query(sql)
                    .bind(shop)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            n += sqlx::query(
                "DELETE FROM events WHERE user_id IS NULL AND CAST(data AS TEXT) LIKE $1",
            )
            .bind(shop_pattern(shop))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            n
        });
        tracing::info!(
            shop,
            had_user = user.is_some(),
            rows = deleted,
            "deleted a shop's data"
        );
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn needles(n: &[&str]) -> Vec<String> {
        clean_needles(n)
    }

    #[test]
    fn text_redaction_respects_word_edges_and_case() {
        let n = needles(&["Bob@Example.com", "+15550100", "207119551", "", "ab"]);
        assert_eq!(n.len(), 3, "empty and short needles are dropped");
        assert_eq!(
            redact_text("Mail bob@example.COM or call +15550100.", &n).as_deref(),
            Some("Mail [redacted] or call [redacted].")
        );
        assert_eq!(
            redact_text("gid://shopify/Customer/207119551 x", &n).as_deref(),
            Some("gid://shopify/Customer/[redacted] x")
        );
        assert_eq!(
            redact_text("order 12071195510 and jimbob@example.com", &n),
            None
        );
        assert_eq!(redact_text("nothing here", &n), None);
        assert_eq!(
            redact_text("é bob@example.com é", &n).as_deref(),
            Some("é [redacted] é")
        );
    }

    #[test]
    fn json_redaction_walks_everything() {
        let n = needles(&["bob@example.com", "207119551"]);
        let v = json!({"customer": {"id": 207119551, "email": "bob@example.com"},
                       "list": ["x", "to bob@example.com"], "n": 5, "ok": true});
        let r = redact_json(&v, &n);
        assert_eq!(
            r,
            Some(
                json!({"customer": {"id": "[redacted]", "email": "[redacted]"},
                        "list": ["x", "to [redacted]"], "n": 5, "ok": true})
            )
        );
        assert_eq!(redact_json(&json!({"a": 1}), &n), None);
    }
}
