//! HireCJ's persistence: one API over SQLite (embedded default) and
//! PostgreSQL (deployment).
//!
//! Every query is written once. [`on_pool!`] expands a body for each backend,
//! so both run the same SQL (`$1` placeholders work on both); only the
//! migrations differ, because PostgreSQL gets native types (`timestamptz`,
//! `jsonb`, `uuid`). Nothing outside this crate writes SQL.
//!
//! Invariants kept here:
//! * access and refresh tokens are encrypted before they are written;
//! * session cookies and OAuth states are stored only as SHA-256 hashes;
//! * message sequence numbers are allocated atomically per conversation;
//! * times are UTC with microsecond precision on both backends.

mod checkpoint;
pub mod compliance;
mod conversations;
pub mod crypto;
pub mod facts;
mod integrations;
mod migrate;
mod mirror;
mod notify;
mod row;
pub mod scratch;
mod sessions;
mod users;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use compliance::RedactionCounts;
pub use conversations::{ReplyWrites, TurnLease};
pub use crypto::Cipher;
pub use migrate::MIGRATIONS;
pub use mirror::{MIRROR_DENSE_DAYS, MirrorKind, UpsertOutcome};
pub use notify::{Listener, NOTIFY_PAYLOAD_MAX};
pub use webhooks::{WEBHOOK_FUTURE_SKEW, WEBHOOK_REPLAY_WINDOW, WebhookDelivery};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database schema is at version {found}, newer than this build knows ({known}); upgrade HireCJ"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("unsupported database URL (expected sqlite:… or postgres://…)")]
    UnsupportedUrl,
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("a stored secret could not be decrypted (was the secret key changed?)")]
    Decrypt,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("another replica is running CJ's turn of this conversation")]
    TurnClaimed,
    #[error("database file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The database could not be reached or refused work for now (a lost
    /// or refused connection, a pool with no connection to give, a server
    /// shutting down or starting, a database file locked too long): the
    /// same request may succeed later. Anything else is a fault of the
    /// request or of the data.
    pub fn is_unavailable(&self) -> bool {
        let Self::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL: connection exceptions (08…), operator
                // intervention (57P01–57P05: shutdown, crash, cannot
                // connect now), too many connections (53300). SQLite:
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), plain or extended.
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || (db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                        && code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)))
            }),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the backend's pool. The body is compiled
/// once per backend, so it must be valid for both.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the
/// transaction holds the database's write lock from its first statement,
/// so one that reads before it writes cannot fail with
/// `SQLITE_BUSY_SNAPSHOT` (which no busy timeout waits out) when another
/// connection wrote in between. On PostgreSQL, a plain `BEGIN`.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;

    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Self::Db>>;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;

    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;

    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin().await
    }
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The one persistence API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    cipher: Cipher,
    /// SQLite: one write transaction at a time in this process. SQLite
    /// has one writer anyway; waiting here wakes the next writer as soon
    /// as the lock is free, where SQLite's busy handler would poll it with
    /// sleeps of up to tens of milliseconds (the tail of a busy server's
    /// turns). `None` on PostgreSQL.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
    /// SQLite: copies the write-ahead log into the database beside the
    /// writers rather than inside a commit (see `checkpoint`); `None` on
    /// PostgreSQL.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

/// A write transaction ([`Store::write_tx`]): the transaction, and on
/// SQLite this process's write lock, held until it ends. Derefs to the
/// connection, like a transaction.
pub(crate) struct WriteTx<DB: sqlx::Database> {
    tx: sqlx::Transaction<'static, DB>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    pub(crate) async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> sqlx::Result<()> {
        self.tx.rollback().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Makes the SQLite database readable by its owner only (0600): created so
/// before SQLite opens it (SQLite gives its `-wal` and `-shm` files the
/// database's mode), and tightened if an older start left it wider.
fn private_database_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let name = path.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return Ok(());
    }
    let file_error = |source| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(file_error(e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(file_error)?;
            tracing::warn!(file = %file.display(), "the database file was readable by others; made it 0600");
        }
    }
    Ok(())
}

impl Store {
    /// Connects to `url` (`sqlite:path`, `sqlite::memory:`, `postgres://…`)
    /// without touching the schema. Call [`Store::migrate`] next.
    pub async fn connect(url: &str, cipher: Cipher, options: &StoreOptions) -> Result<Self> {
        let mut checkpointer = None;
        let writer = Arc::new(tokio::sync::Mutex::new(()));
        let pool = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?;
            private_database_file(connect.get_filename())?;
            let connect = connect
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // Checkpoints are the checkpointer's (see `checkpoint`).
                .pragma(
                    "wal_autocheckpoint",
                    checkpoint::SAFETY_NET_PAGES.to_string(),
                );
            let commits = Arc::new(checkpoint::Commits::default());
            let hook = Arc::clone(&commits);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.clamp(1, 16))
                .acquire_timeout(options.acquire_timeout)
                // A file does not drop a connection: no ping before each
                // query (a round trip to the connection's thread, and
                // half of the thread hand-offs of a turn).
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    let commits = Arc::clone(&hook);
                    Box::pin(async move {
                        conn.lock_handle().await?.set_commit_hook(move || {
                            commits.committed();
                            true
                        });
                        Ok(())
                    })
                })
                .connect_with(connect)
                .await?;
            checkpointer = Some(Arc::new(checkpoint::Checkpointer::start(
                pool.clone(),
                commits,
                Arc::clone(&writer),
            )));
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)?.application_name("hirecj");
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let writer = matches!(pool, Pool::Sqlite(_)).then_some(writer);
        Ok(Self {
            pool,
            cipher,
            writer,
            _checkpointer: checkpointer,
        })
    }

    /// Starts a write transaction on `pool` (this store's): on SQLite, after
    /// taking this process's write lock (see [`Store`]'s `writer`). Code
    /// holding one must not start another (the lock is not reentrant).
    pub(crate) async fn write_tx<P: BeginWrite>(&self, pool: &P) -> sqlx::Result<WriteTx<P::Db>> {
        let writer = self.write_lock().await;
        let tx = pool.begin_write().await?;
        Ok(WriteTx {
            tx,
            _writer: writer,
        })
    }

    /// This process's SQLite write lock (see [`Store`]'s `writer`), for a
    /// write transaction; `None` on PostgreSQL.
    pub(crate) async fn write_lock(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.writer {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        }
    }

    /// Connects and applies pending migrations.
    pub async fn open(url: &str, cipher: Cipher, options: &StoreOptions) -> Result<Self> {
        let store = Self::connect(url, cipher, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Is the database answering? Used by `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    /// Closes every connection; waits for checked-out ones to come back.
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }

    pub(crate) fn cipher(&self) -> &Cipher {
        &self.cipher
    }
}

/// The current time as the store keeps it (UTC, microseconds), so values
/// read back compare equal to what was written on both backends.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// A time stored as an integer: unix microseconds (leases, the mirror).
pub(crate) fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time stored by [`us`].
pub(crate) fn from_us(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Corrupt(format!("time {v}")))
}

/// An optional time stored by [`us`].
pub(crate) fn opt_from_us(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(from_us).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable_a_bad_request_is_not() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::Database(sqlx::Error::Io(io)).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::NotFound("conversation").is_unavailable());
        assert!(!StoreError::TurnClaimed.is_unavailable());
        assert!(!StoreError::Corrupt("bad row".into()).is_unavailable());
    }
}
