//! Conversations, their messages (numbered per conversation) and the
//! per-turn traces of what CJ did.

use chrono::{DateTime, Utc};
use hirecj_domain::{
    Conversation, ConversationId, ConversationSummary, Message, MessageStatus, NewMessage, Page,
    Role, TurnTrace, UserId,
};
use serde_json::Value;
use sqlx::types::Json;

use crate::row::RowExt;
use crate::{Result, Store, StoreError, micros, now, on_pool};

const CONVERSATION_COLUMNS: &str = "id, user_id, session_id, workflow, title, state, last_seq,
    started_at, updated_at, ended_at, summary, summary_through";
const MESSAGE_COLUMNS: &str =
    "conversation_id, seq, role, content, ui_elements, status, client_id, created_at";

const SAVE_TRACE: &str = "INSERT INTO turn_traces (conversation_id, turn, data, created_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (conversation_id, turn) DO UPDATE SET data = excluded.data";

/// How an append's trace replaces one stored for the same turn, as
/// [`SAVE_TRACE`] does.
const TRACE_REPLACES: &str =
    " ON CONFLICT (conversation_id, turn) DO UPDATE SET data = excluded.data";

/// What is written with CJ's reply, in the reply's own transaction
/// ([`Store::append_reply`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyWrites<'a> {
    /// The turn's trace, stored under the reply's sequence number.
    pub trace: Option<&'a Value>,
    /// A title, for a conversation that has none yet.
    pub title: Option<&'a str>,
    /// The conversation's next workflow and its state (a transition).
    pub workflow: Option<(&'a str, &'a Value)>,
    /// The merchant, seen now.
    pub seen: Option<&'a UserId>,
}

/// What storing a message does to the conversation's turn lease: the
/// claim that keeps CJ's turns of a conversation one at a time across
/// replicas (owner and expiry on the conversation's row).
#[derive(Debug, Clone, Copy)]
pub enum TurnLease<'a> {
    /// Leaves it as it is.
    Keep,
    /// Takes it for `owner` until `until`, unless another owner's runs.
    Claim {
        owner: &'a str,
        until: DateTime<Utc>,
    },
    /// Gives it up if it is `owner`'s (the turn is over).
    Release { owner: &'a str },
}

fn parse_user(s: Option<String>) -> Result<Option<UserId>> {
    s.map(|s| s.parse())
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("{e}")))
}

fn conversation_from(r: &impl RowExt) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(r.uuid("id")?),
        user_id: parse_user(r.opt_text("user_id")?)?,
        session_id: r.opt_text("session_id")?,
        workflow: r.text("workflow")?,
        title: r.opt_text("title")?,
        state: r.json("state")?,
        last_seq: r.int("last_seq")?,
        started_at: r.time("started_at")?,
        updated_at: r.time("updated_at")?,
        ended_at: r.opt_time("ended_at")?,
        summary: r.opt_text("summary")?,
        summary_through: r.int("summary_through")?,
    })
}

fn message_from(r: &impl RowExt) -> Result<Message> {
    let role = r.text("role")?;
    let status = r.text("status")?;
    Ok(Message {
        conversation_id: ConversationId(r.uuid("conversation_id")?),
        seq: r.int("seq")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        content: r.text("content")?,
        ui_elements: r.json("ui_elements")?,
        status: MessageStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("message status {status:?}")))?,
        client_id: r.opt_text("client_id")?,
        created_at: r.time("created_at")?,
    })
}

/// One message to append, with what its transaction also does.
struct Append<'a> {
    conversation: ConversationId,
    at: DateTime<Utc>,
    message: &'a NewMessage,
    lease: TurnLease<'a>,
    writes: ReplyWrites<'a>,
}

/// What appending did.
enum Appended {
    Stored(Message),
    /// The `client_id` was stored already: nothing was written.
    Duplicate,
    /// Another owner's turn runs, or there is no such conversation:
    /// nothing was written.
    Refused,
}

/// A pooled SQLite connection inside a batch's transaction: closed on drop
/// (which ends the transaction) unless [`CloseUnlessEnded::end`] says the
/// transaction was committed or rolled back.
struct CloseUnlessEnded(Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>);

impl CloseUnlessEnded {
    /// The transaction is over: the connection goes back to the pool.
    fn end(&mut self) {
        self.0.take();
    }
}

impl Drop for CloseUnlessEnded {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// `UPDATE conversations …` for [`Append`]: the next sequence number, the
/// lease, and the reply's title and workflow (no `RETURNING`, no `;`). All
/// right-hand sides read the row as it was.
fn push_conversation_update<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, a: &Append<'a>)
where
    DB: sqlx::Database,
    uuid::Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Json<&'a Value>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push("UPDATE conversations SET last_seq = last_seq + 1, updated_at = ");
    qb.push_bind(a.at);
    qb.push(", ended_at = NULL");
    match a.lease {
        TurnLease::Keep => {}
        TurnLease::Claim { owner, until } => {
            qb.push(", turn_owner = ");
            qb.push_bind(owner);
            qb.push(", turn_lease_until = ");
            qb.push_bind(crate::us(until));
        }
        TurnLease::Release { owner } => {
            qb.push(", turn_lease_until = CASE WHEN turn_owner = ");
            qb.push_bind(owner);
            qb.push(" THEN NULL ELSE turn_lease_until END, turn_owner = CASE WHEN turn_owner = ");
            qb.push_bind(owner);
            qb.push(" THEN NULL ELSE turn_owner END");
        }
    }
    if let Some(title) = a.writes.title {
        qb.push(", title = COALESCE(title, ");
        qb.push_bind(title);
        qb.push(")");
    }
    if let Some((workflow, state)) = a.writes.workflow {
        qb.push(", workflow = ");
        qb.push_bind(workflow);
        qb.push(", state = ");
        qb.push_bind(Json(state));
    }
    qb.push(" WHERE id = ");
    qb.push_bind(a.conversation.0);
    if let TurnLease::Claim { owner, .. } = a.lease {
        // Unless another owner's lease runs.
        qb.push(" AND (turn_owner IS NULL OR turn_owner = ");
        qb.push_bind(owner);
        qb.push(" OR turn_lease_until < ");
        qb.push_bind(crate::us(a.at));
        qb.push(")");
    }
}

/// `SELECT` of the new message's columns, its sequence number `seq` (a
/// column of the `FROM` that follows).
fn push_message_select<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, a: &Append<'a>, seq: &str)
where
    DB: sqlx::Database,
    uuid::Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Json<&'a Value>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let m = a.message;
    qb.push("SELECT ");
    qb.push_bind(a.conversation.0);
    qb.push(", ");
    qb.push(seq);
    qb.push(", ");
    qb.push_bind(m.role.as_str());
    qb.push(", ");
    qb.push_bind(m.content.as_str());
    qb.push(", ");
    qb.push_bind(Json(&m.ui_elements));
    qb.push(", ");
    qb.push_bind(m.status.as_str());
    qb.push(", ");
    qb.push_bind(m.client_id.as_deref());
    qb.push(", ");
    qb.push_bind(a.at);
}

/// On SQLite, after the conversation's update: ` WHERE` its row, if the
/// update took it (a claim leaves the row another owner's when refused).
fn push_appended_where<'a>(qb: &mut sqlx::QueryBuilder<'a, sqlx::Sqlite>, a: &Append<'a>) {
    qb.push(" WHERE id = ");
    qb.push_bind(a.conversation.0);
    if let TurnLease::Claim { owner, .. } = a.lease {
        qb.push(" AND turn_owner = ");
        qb.push_bind(owner);
    }
}

/// [`Store::append_with`] on PostgreSQL: one statement (data-modifying
/// `WITH` clauses), so one round trip and its own transaction. The
/// conversation's row lock orders concurrent appends; a claim re-checks
/// the lease on the row as the earlier append left it.
async fn append_postgres(pool: &sqlx::PgPool, a: &Append<'_>) -> Result<Appended> {
    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("WITH c AS (");
    push_conversation_update(&mut qb, a);
    qb.push(" RETURNING last_seq), m AS (INSERT INTO messages (");
    qb.push(MESSAGE_COLUMNS);
    qb.push(") ");
    push_message_select(&mut qb, a, "last_seq");
    qb.push(" FROM c RETURNING ");
    qb.push(MESSAGE_COLUMNS);
    qb.push(")");
    if let Some(trace) = a.writes.trace {
        qb.push(", t AS (INSERT INTO turn_traces (conversation_id, turn, data, created_at) SELECT conversation_id, seq, ");
        qb.push_bind(Json(trace));
        qb.push(", created_at FROM m");
        qb.push(TRACE_REPLACES);
        qb.push(")");
    }
    if let Some(user) = a.writes.seen {
        qb.push(", u AS (UPDATE users SET last_seen_at = ");
        qb.push_bind(a.at);
        qb.push(" WHERE id = ");
        qb.push_bind(user.as_str());
        qb.push(" AND EXISTS (SELECT 1 FROM m))");
    }
    qb.push(" SELECT ");
    qb.push(MESSAGE_COLUMNS);
    qb.push(" FROM m");
    match qb.build().fetch_optional(pool).await {
        Ok(Some(row)) => Ok(Appended::Stored(message_from(&row)?)),
        Ok(None) => Ok(Appended::Refused),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Appended::Duplicate),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// Starts a conversation owned by a user or, for a visitor, by a session.
    pub async fn create_conversation(
        &self,
        id: ConversationId,
        user: Option<&UserId>,
        session_id: Option<&str>,
        workflow: &str,
    ) -> Result<Conversation> {
        let at = now();
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO conversations (id, user_id, session_id, workflow, state, last_seq,
                    started_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
            )
            .bind(id.0)
            .bind(user.map(UserId::as_str))
            .bind(session_id)
            .bind(workflow)
            .bind(Json(Value::Object(Default::default())))
            .bind(at)
            .execute(p)
            .await?;
        });
        self.conversation(id)
            .await?
            .ok_or(StoreError::NotFound("conversation"))
    }

    pub async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1");
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(id.0)
                .fetch_optional(p)
                .await?
                .map(|r| conversation_from(&r))
                .transpose()
        })
    }

    /// The conversation and the role of its newest message (`None` when it
    /// has none), in one read: what deciding whether CJ owes a reply needs.
    pub async fn conversation_with_last_role(
        &self,
        id: ConversationId,
    ) -> Result<Option<(Conversation, Option<Role>)>> {
        let columns = CONVERSATION_COLUMNS
            .split(',')
            .map(|c| format!("c.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, m.role AS last_role FROM conversations c
             LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
             WHERE c.id = $1"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(id.0)
                .fetch_optional(p)
                .await?
                .map(|r| {
                    let role = r.opt_text("last_role")?;
                    let role = role
                        .map(|s| {
                            Role::parse(&s)
                                .ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
                        })
                        .transpose()?;
                    Ok((conversation_from(&r)?, role))
                })
                .transpose()
        })
    }

    /// Moves a conversation to another workflow.
    pub async fn set_conversation_workflow(
        &self,
        id: ConversationId,
        workflow: &str,
    ) -> Result<()> {
        self.update_conversation(id, "workflow = $2", Bind::Text(workflow.to_owned()))
            .await
    }

    /// Gives a visitor's conversation to the merchant they turned out to be.
    pub async fn set_conversation_user(&self, id: ConversationId, user: &UserId) -> Result<()> {
        self.update_conversation(id, "user_id = $2", Bind::Text(user.as_str().to_owned()))
            .await
    }

    pub async fn set_conversation_title(&self, id: ConversationId, title: &str) -> Result<()> {
        self.update_conversation(id, "title = $2", Bind::Text(title.to_owned()))
            .await
    }

    /// Replaces the agent's state for a conversation.
    pub async fn set_conversation_state(&self, id: ConversationId, state: &Value) -> Result<()> {
        self.update_conversation(id, "state = $2", Bind::Json(state.clone()))
            .await
    }

    /// Replaces the conversation's rolling summary with `summary`, which
    /// covers the messages up to `through`, if the stored one still covers
    /// exactly `previous_through` (two writers never interleave: the
    /// later one finds it moved and writes nothing). Returns whether it
    /// was written.
    pub async fn set_conversation_summary(
        &self,
        id: ConversationId,
        previous_through: i64,
        summary: &str,
        through: i64,
    ) -> Result<bool> {
        if through <= previous_through {
            return Ok(false);
        }
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE conversations SET summary = $2, summary_through = $3
                 WHERE id = $1 AND summary_through = $4 AND last_seq >= $3",
            )
            .bind(id.0)
            .bind(summary)
            .bind(through)
            .bind(previous_through)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Marks a conversation ended (archived). Ending twice keeps the first time.
    pub async fn end_conversation(&self, id: ConversationId) -> Result<()> {
        self.update_conversation(id, "ended_at = COALESCE(ended_at, $2)", Bind::Time(now()))
            .await
    }

    async fn update_conversation(&self, id: ConversationId, set: &str, value: Bind) -> Result<()> {
        let sql = format!("UPDATE conversations SET {set}, updated_at = $3 WHERE id = $1");
        let n = on_pool!(self, |p| {
            let q = sqlx::query(&sql).bind(id.0);
            let q = match &value {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Json(v) => q.bind(Json(v.clone())),
                Bind::Time(t) => q.bind(*t),
            };
            q.bind(now()).execute(p).await?.rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound("conversation"));
        }
        Ok(())
    }

    /// Ends every open conversation with no activity since `idle_since`.
    /// Returns how many were ended.
    pub async fn end_idle_conversations(&self, idle_since: DateTime<Utc>) -> Result<u64> {
        let at = now();
        Ok(on_pool!(self, |p| {
            sqlx::query(
                "UPDATE conversations SET ended_at = $2
                 WHERE ended_at IS NULL AND updated_at < $1",
            )
            .bind(micros(idle_since))
            .bind(at)
            .execute(p)
            .await?
            .rows_affected()
        }))
    }

    /// A user's conversations, newest first, with message counts.
    pub async fn conversations_for_user(
        &self,
        user: &UserId,
        limit: i64,
        offset: i64,
    ) -> Result<Page<ConversationSummary>> {
        let limit = limit.clamp(1, 200);
        let offset = offset.max(0);
        on_pool!(self, |p| {
            let total: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE user_id = $1")
                    .bind(user.as_str())
                    .fetch_one(p)
                    .await?;
            let items = sqlx::query(
                "SELECT c.id, c.workflow, c.title, c.started_at, c.updated_at, c.ended_at,
                        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
                 FROM conversations c WHERE c.user_id = $1
                 ORDER BY c.started_at DESC, c.id DESC LIMIT $2 OFFSET $3",
            )
            .bind(user.as_str())
            .bind(limit)
            .bind(offset)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                Ok(ConversationSummary {
                    id: ConversationId(r.uuid("id")?),
                    workflow: r.text("workflow")?,
                    title: r.opt_text("title")?,
                    started_at: r.time("started_at")?,
                    updated_at: r.time("updated_at")?,
                    ended_at: r.opt_time("ended_at")?,
                    message_count: r.int("message_count")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            Ok(Page {
                items,
                total,
                limit,
                offset,
            })
        })
    }

    /// Appends a message with the conversation's next sequence number.
    ///
    /// A merchant message carrying a `client_id` that was already stored is
    /// not stored again: the earlier message is returned with `false`, so a
    /// client that resends after a dropped connection never duplicates it.
    pub async fn append_message(
        &self,
        conversation: ConversationId,
        message: &NewMessage,
    ) -> Result<(Message, bool)> {
        self.append_message_in_turn(conversation, message, TurnLease::Keep)
            .await
    }

    /// [`Self::append_message`], doing `lease` to the conversation's turn
    /// lease in the same statement: a merchant message claims the turn
    /// that answers it ([`StoreError::TurnClaimed`] while another owner's
    /// lease runs: nothing is stored), CJ's reply releases it.
    pub async fn append_message_in_turn(
        &self,
        conversation: ConversationId,
        message: &NewMessage,
        lease: TurnLease<'_>,
    ) -> Result<(Message, bool)> {
        self.append_with(conversation, message, lease, ReplyWrites::default())
            .await
    }

    /// Stores CJ's reply, releasing `owner`'s turn, with what goes with it
    /// (`writes`) in the same transaction: one commit per turn.
    pub async fn append_reply(
        &self,
        conversation: ConversationId,
        message: &NewMessage,
        owner: &str,
        writes: ReplyWrites<'_>,
    ) -> Result<Message> {
        let (stored, _) = self
            .append_with(conversation, message, TurnLease::Release { owner }, writes)
            .await?;
        Ok(stored)
    }

    async fn append_with(
        &self,
        conversation: ConversationId,
        message: &NewMessage,
        lease: TurnLease<'_>,
        writes: ReplyWrites<'_>,
    ) -> Result<(Message, bool)> {
        // One statement on PostgreSQL, one batch on SQLite: a single round
        // trip to the database, where a transaction of separate statements
        // took one per statement (on SQLite each a hand-off to the
        // connection's thread while the write lock is held: the limit of a
        // busy server's turns per second).
        let append = Append {
            conversation,
            at: now(),
            message,
            lease,
            writes,
        };
        let outcome = match &self.pool {
            crate::Pool::Sqlite(p) => self.append_sqlite(p, &append).await?,
            crate::Pool::Postgres(p) => append_postgres(p, &append).await?,
        };
        match outcome {
            Appended::Stored(m) => Ok((m, true)),
            // A resend (same `client_id`), or the same client id raced in
            // from another connection: nothing is stored (the sequence
            // number and any claim are undone with it).
            Appended::Duplicate => {
                let client_id = message.client_id.as_deref().unwrap_or_default();
                let existing = self
                    .message_by_client_id(conversation, client_id)
                    .await?
                    .ok_or(StoreError::NotFound("message"))?;
                Ok((existing, false))
            }
            // Refused (another owner's turn runs), or no such conversation:
            // a resend of a stored message still gets its original.
            Appended::Refused => {
                if let Some(client_id) = &message.client_id
                    && let Some(existing) =
                        self.message_by_client_id(conversation, client_id).await?
                {
                    return Ok((existing, false));
                }
                Err(match lease {
                    TurnLease::Claim { .. } if self.conversation(conversation).await?.is_some() => {
                        StoreError::TurnClaimed
                    }
                    _ => StoreError::NotFound("conversation"),
                })
            }
        }
    }

    /// [`Self::append_with`] on SQLite: `BEGIN IMMEDIATE`, the writes and
    /// `COMMIT` in one batch, under this process's write lock. A batch that
    /// fails part-way is rolled back; a connection whose transaction could
    /// not be ended (the rollback failed, or the caller went away mid-way)
    /// is closed rather than returned to the pool, which ends it.
    async fn append_sqlite(
        &self,
        pool: &sqlx::SqlitePool,
        append: &Append<'_>,
    ) -> Result<Appended> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new("BEGIN IMMEDIATE; ");
        push_conversation_update(&mut qb, append);
        qb.push("; INSERT INTO messages (");
        qb.push(MESSAGE_COLUMNS);
        qb.push(") ");
        push_message_select(&mut qb, append, "last_seq");
        qb.push(" FROM conversations");
        push_appended_where(&mut qb, append);
        qb.push(" RETURNING ");
        qb.push(MESSAGE_COLUMNS);
        if let Some(trace) = append.writes.trace {
            qb.push("; INSERT INTO turn_traces (conversation_id, turn, data, created_at) SELECT id, last_seq, ");
            qb.push_bind(Json(trace));
            qb.push(", ");
            qb.push_bind(append.at);
            qb.push(" FROM conversations");
            push_appended_where(&mut qb, append);
            qb.push(TRACE_REPLACES);
        }
        if let Some(user) = append.writes.seen {
            qb.push("; UPDATE users SET last_seen_at = ");
            qb.push_bind(append.at);
            qb.push(" WHERE id = ");
            qb.push_bind(user.as_str());
            qb.push(" AND EXISTS (SELECT 1 FROM conversations");
            push_appended_where(&mut qb, append);
            qb.push(")");
        }
        qb.push("; COMMIT");

        let _writer = self.write_lock().await;
        let mut conn = CloseUnlessEnded(Some(pool.acquire().await?));
        let Some(c) = conn.0.as_mut() else {
            return Err(StoreError::Corrupt("no connection".into()));
        };
        match qb.build().fetch_all(&mut **c).await {
            Ok(rows) => {
                conn.end();
                match rows.first() {
                    Some(row) => Ok(Appended::Stored(message_from(row)?)),
                    None => Ok(Appended::Refused),
                }
            }
            Err(e) => {
                // The batch stopped at the statement that failed, inside its
                // transaction. If the rollback fails too (nothing to roll
                // back: it failed at `BEGIN`; or the connection is broken),
                // the connection is closed.
                if sqlx::query("ROLLBACK").execute(&mut **c).await.is_ok() {
                    conn.end();
                }
                match e {
                    sqlx::Error::Database(d) if d.is_unique_violation() => Ok(Appended::Duplicate),
                    e => Err(e.into()),
                }
            }
        }
    }

    /// The merchant message of `conversation` that carried `client_id`.
    pub async fn message_by_client_id(
        &self,
        conversation: ConversationId,
        client_id: &str,
    ) -> Result<Option<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND client_id = $2"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(conversation.0)
                .bind(client_id)
                .fetch_optional(p)
                .await?
                .map(|r| message_from(&r))
                .transpose()
        })
    }

    /// Claims CJ's turn of `conversation` for `owner` until `until`: `true`
    /// when it is now `owner`'s (it was free, lapsed, or already `owner`'s).
    pub async fn claim_turn(
        &self,
        conversation: ConversationId,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE conversations SET turn_owner = $2, turn_lease_until = $3
                 WHERE id = $1 AND (turn_owner IS NULL OR turn_owner = $2 OR turn_lease_until < $4)",
            )
            .bind(conversation.0)
            .bind(owner)
            .bind(crate::us(until))
            .bind(crate::us(now()))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Extends `owner`'s claim on the turn to `until`: `false` when the
    /// claim is no longer `owner`'s.
    pub async fn renew_turn(
        &self,
        conversation: ConversationId,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE conversations SET turn_lease_until = $3
                 WHERE id = $1 AND turn_owner = $2",
            )
            .bind(conversation.0)
            .bind(owner)
            .bind(crate::us(until))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Whether an owner other than `owner` holds a running claim on the
    /// turn of `conversation`.
    pub async fn turn_claimed_elsewhere(
        &self,
        conversation: ConversationId,
        owner: &str,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(CASE WHEN turn_owner IS NOT NULL AND turn_owner <> $2
                   AND turn_lease_until >= $3 THEN 1 ELSE 0 END AS BIGINT)
                 FROM conversations WHERE id = $1",
            )
            .bind(conversation.0)
            .bind(owner)
            .bind(crate::us(now()))
            .fetch_optional(p)
            .await?;
            Ok(held == Some(1))
        })
    }

    /// Gives up `owner`'s claim on the turn (nothing if it is not theirs).
    pub async fn release_turn(&self, conversation: ConversationId, owner: &str) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE conversations SET turn_owner = NULL, turn_lease_until = NULL
                 WHERE id = $1 AND turn_owner = $2",
            )
            .bind(conversation.0)
            .bind(owner)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// The conversation's messages with `seq > after_seq`, in order.
    pub async fn messages(
        &self,
        conversation: ConversationId,
        after_seq: i64,
    ) -> Result<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2
             ORDER BY seq"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(conversation.0)
                .bind(after_seq)
                .fetch_all(p)
                .await?
                .iter()
                .map(message_from)
                .collect()
        })
    }

    /// A conversation and its messages after its summary (what CJ's next
    /// turn reads), in one query: a consistent view of both.
    pub async fn conversation_and_history(
        &self,
        id: ConversationId,
    ) -> Result<Option<(Conversation, Vec<Message>)>> {
        const SQL: &str = "SELECT c.id, c.user_id, c.session_id, c.workflow, c.title, c.state,
               c.last_seq, c.started_at, c.updated_at, c.ended_at, c.summary, c.summary_through,
               m.conversation_id, m.seq, m.role, m.content, m.ui_elements, m.status,
               m.client_id, m.created_at
             FROM conversations c
             LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq > c.summary_through
             WHERE c.id = $1 ORDER BY m.seq";
        on_pool!(self, |p| {
            let rows = sqlx::query(SQL).bind(id.0).fetch_all(p).await?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            let conversation = conversation_from(first)?;
            let mut history = Vec::with_capacity(rows.len());
            for row in &rows {
                // A conversation without such messages is one row of NULLs.
                if row.opt_int("seq")?.is_some() {
                    history.push(message_from(row)?);
                }
            }
            Ok(Some((conversation, history)))
        })
    }

    /// Marks a message as stopped or interrupted (or complete again).
    pub async fn set_message_status(
        &self,
        conversation: ConversationId,
        seq: i64,
        status: MessageStatus,
    ) -> Result<()> {
        let n = on_pool!(self, |p| {
            sqlx::query("UPDATE messages SET status = $3 WHERE conversation_id = $1 AND seq = $2")
                .bind(conversation.0)
                .bind(seq)
                .bind(status.as_str())
                .execute(p)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound("message"));
        }
        Ok(())
    }

    /// Stores what CJ did on one turn (replacing an earlier trace of that turn).
    pub async fn save_trace(
        &self,
        conversation: ConversationId,
        turn: i64,
        data: &Value,
    ) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(SAVE_TRACE)
                .bind(conversation.0)
                .bind(turn)
                .bind(Json(data))
                .bind(now())
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Deletes up to `limit` turn traces stored before `before`, oldest
    /// first (the retention window). Returns how many.
    pub async fn purge_traces(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(on_pool!(self, |p| {
            sqlx::query(
                "DELETE FROM turn_traces WHERE (conversation_id, turn) IN (
                   SELECT conversation_id, turn FROM turn_traces
                   WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
            )
            .bind(micros(before))
            .bind(i64::from(limit))
            .execute(p)
            .await?
            .rows_affected()
        }))
    }

    /// A conversation's turn traces, in turn order.
    pub async fn traces(&self, conversation: ConversationId) -> Result<Vec<TurnTrace>> {
        self.traces_of(conversation, None).await
    }

    /// A conversation's turn traces, in turn order: all of them, or only
    /// turn `turn`'s (read alone: a debug trace holds the whole history,
    /// so a long conversation's traces are large).
    pub async fn traces_of(
        &self,
        conversation: ConversationId,
        turn: Option<i64>,
    ) -> Result<Vec<TurnTrace>> {
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT conversation_id, turn, data, created_at FROM turn_traces
                 WHERE conversation_id = $1 AND ($2 IS NULL OR turn = $2) ORDER BY turn",
            )
            .bind(conversation.0)
            .bind(turn)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                Ok(TurnTrace {
                    conversation_id: ConversationId(r.uuid("conversation_id")?),
                    turn: r.int("turn")?,
                    data: r.json("data")?,
                    created_at: r.time("created_at")?,
                })
            })
            .collect()
        })
    }
}

/// The one value an [`Store::update_conversation`] sets, bound the same way
/// on both backends.
enum Bind {
    Text(String),
    Json(Value),
    Time(DateTime<Utc>),
}
