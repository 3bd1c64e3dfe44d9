//! Coordination between replicas sharing one database: notifications
//! (PostgreSQL's `LISTEN`/`NOTIFY`; on SQLite, one process, there is nobody
//! to tell) and leases on periodic jobs.

use sqlx::postgres::PgListener;

use chrono::{DateTime, Utc};

use crate::{Pool, Result, Store, on_pool};

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

    /// Claims periodic job `name` for `owner` until `until`: `true` when it
    /// is now `owner`'s (it was free, lapsed, or already `owner`'s, which
    /// renews it). One replica runs the job at a time; if it dies, another
    /// takes it once the lease lapses.
    pub async fn claim_job(&self, name: &str, owner: &str, until: DateTime<Utc>) -> Result<bool> {
        let now = crate::us(Utc::now());
        let n = on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO job_leases (name, owner, lease_until) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,
                   lease_until = excluded.lease_until
                 WHERE job_leases.owner = excluded.owner OR job_leases.lease_until < $4",
            )
            .bind(name)
            .bind(owner)
            .bind(crate::us(until))
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }
}
