//! Notifications between replicas sharing one database: PostgreSQL's
//! `LISTEN`/`NOTIFY`. On SQLite (one process) there is nobody to tell.

use sqlx::postgres::PgListener;

use crate::{Pool, Result, Store};

/// The largest payload PostgreSQL accepts is 8000 bytes; a longer one is
/// not sent (see [`Store::notify`]).
pub const NOTIFY_PAYLOAD_MAX: usize = 7_900;

/// A connection listening on one channel. It reconnects by itself when
/// the connection drops (what was sent meanwhile is lost: listeners must
/// not depend on every notification arriving).
pub struct Listener(PgListener);

impl Listener {
    /// The next notification's payload; `None` once the store is closed.
    pub async fn recv(&mut self) -> Result<Option<String>> {
        match self.0.recv().await {
            Ok(n) => Ok(Some(n.payload().to_owned())),
            Err(sqlx::Error::PoolClosed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Store {
    /// Listens on `channel`: `None` on SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<Listener>> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(channel).await?;
                Ok(Some(Listener(listener)))
            }
        }
    }

    /// Sends `payload` to every listener on `channel` (this process's
    /// too). Returns `false`, sending nothing, on SQLite or when the
    /// payload is longer than [`NOTIFY_PAYLOAD_MAX`].
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<bool> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(false),
            Pool::Postgres(_) if payload.len() > NOTIFY_PAYLOAD_MAX => Ok(false),
            Pool::Postgres(pool) => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(channel)
                    .bind(payload)
                    .execute(pool)
                    .await?;
                Ok(true)
            }
        }
    }
}
