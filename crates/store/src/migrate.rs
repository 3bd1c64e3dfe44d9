//! Forward-only migrations, tracked in `hirecj_schema_migrations` and applied
//! at start. PostgreSQL replicas starting together serialise on an advisory
//! lock; SQLite on `BEGIN IMMEDIATE`.

use sqlx::Connection as _;

use crate::{Pool, Result, Store, StoreError, now};

/// One schema change, written for each backend.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration this build knows, in order.
pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "webhook_replay",
        sqlite: include_str!("../migrations/sqlite/0002_webhook_replay.sql"),
        postgres: include_str!("../migrations/postgres/0002_webhook_replay.sql"),
    },
    Migration {
        version: 3,
        name: "session_revocations",
        sqlite: include_str!("../migrations/sqlite/0003_session_revocations.sql"),
        postgres: include_str!("../migrations/postgres/0003_session_revocations.sql"),
    },
    Migration {
        version: 4,
        name: "store_mirror",
        sqlite: include_str!("../migrations/sqlite/0004_store_mirror.sql"),
        postgres: include_str!("../migrations/postgres/0004_store_mirror.sql"),
    },
    Migration {
        version: 5,
        name: "mirror_customer_totals",
        sqlite: include_str!("../migrations/sqlite/0005_mirror_customer_totals.sql"),
        postgres: include_str!("../migrations/postgres/0005_mirror_customer_totals.sql"),
    },
    Migration {
        version: 6,
        name: "turn_leases",
        sqlite: include_str!("../migrations/sqlite/0006_turn_leases.sql"),
        postgres: include_str!("../migrations/postgres/0006_turn_leases.sql"),
    },
    Migration {
        version: 7,
        name: "job_leases",
        sqlite: include_str!("../migrations/sqlite/0007_job_leases.sql"),
        postgres: include_str!("../migrations/postgres/0007_job_leases.sql"),
    },
    Migration {
        version: 8,
        name: "mirror_refunded_units",
        sqlite: include_str!("../migrations/sqlite/0008_mirror_refunded_units.sql"),
        postgres: include_str!("../migrations/postgres/0008_mirror_refunded_units.sql"),
    },
    Migration {
        version: 9,
        name: "mirror_deleted_orders",
        sqlite: include_str!("../migrations/sqlite/0009_mirror_deleted_orders.sql"),
        postgres: include_str!("../migrations/postgres/0009_mirror_deleted_orders.sql"),
    },
    Migration {
        version: 10,
        name: "turn_trace_retention",
        sqlite: include_str!("../migrations/sqlite/0010_turn_trace_retention.sql"),
        postgres: include_str!("../migrations/postgres/0010_turn_trace_retention.sql"),
    },
    Migration {
        version: 11,
        name: "conversation_summary",
        sqlite: include_str!("../migrations/sqlite/0011_conversation_summary.sql"),
        postgres: include_str!("../migrations/postgres/0011_conversation_summary.sql"),
    },
    Migration {
        version: 12,
        name: "shop_money_format",
        sqlite: include_str!("../migrations/sqlite/0012_shop_money_format.sql"),
        postgres: include_str!("../migrations/postgres/0012_shop_money_format.sql"),
    },
];

/// An arbitrary constant identifying HireCJ's migration lock.
const PG_LOCK_KEY: i64 = 0x4869_7265_434a;

const TRACKING_TABLE: &str = "CREATE TABLE IF NOT EXISTS hirecj_schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

impl Store {
    /// Applies every migration the database does not have yet. Returns the
    /// versions applied.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let outcome = async {
                    sqlx::query(TRACKING_TABLE).execute(&mut *conn).await?;
                    let applied: Vec<i64> =
                        sqlx::query_scalar("SELECT version FROM hirecj_schema_migrations")
                            .fetch_all(&mut *conn)
                            .await?;
                    check_not_newer(&applied, known)?;
                    let mut done = Vec::new();
                    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
                        sqlx::raw_sql(m.sqlite)
                            .execute(&mut *conn)
                            .await
                            .map_err(|source| StoreError::Migration {
                                version: m.version,
                                name: m.name,
                                source,
                            })?;
                        record(&mut *conn, m).await?;
                        done.push(m.version);
                    }
                    Ok::<_, StoreError>(done)
                }
                .await;
                match outcome {
                    Ok(done) => {
                        sqlx::query("COMMIT").execute(&mut *conn).await?;
                        log_applied(&done);
                        Ok(done)
                    }
                    Err(e) => {
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                        Err(e)
                    }
                }
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                let outcome = async {
                    sqlx::query(TRACKING_TABLE).execute(&mut *conn).await?;
                    let applied: Vec<i64> =
                        sqlx::query_scalar("SELECT version FROM hirecj_schema_migrations")
                            .fetch_all(&mut *conn)
                            .await?;
                    check_not_newer(&applied, known)?;
                    let mut done = Vec::new();
                    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
                        let mut tx = conn.begin().await?;
                        sqlx::raw_sql(m.postgres)
                            .execute(&mut *tx)
                            .await
                            .map_err(|source| StoreError::Migration {
                                version: m.version,
                                name: m.name,
                                source,
                            })?;
                        record(&mut *tx, m).await?;
                        tx.commit().await?;
                        done.push(m.version);
                    }
                    Ok::<_, StoreError>(done)
                }
                .await;
                let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *conn)
                    .await;
                let done = outcome?;
                unlock?;
                log_applied(&done);
                Ok(done)
            }
        }
    }

    /// The newest schema version the database has.
    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> = crate::on_pool!(self, |p| {
            sqlx::query_scalar("SELECT MAX(version) FROM hirecj_schema_migrations")
                .fetch_one(p)
                .await?
        });
        Ok(v.unwrap_or(0))
    }

    /// Bytes the database's data takes: SQLite's pages in use (committed
    /// data, the write-ahead log's included; free pages not), PostgreSQL's
    /// `pg_database_size`. For measuring growth.
    pub async fn database_bytes(&self) -> Result<u64> {
        let bytes: i64 = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT (c.page_count - f.freelist_count) * s.page_size
                     FROM pragma_page_count() AS c, pragma_freelist_count() AS f,
                          pragma_page_size() AS s",
                )
                .fetch_one(p)
                .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(p)
                    .await?
            }
        };
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

fn check_not_newer(applied: &[i64], known: i64) -> Result<()> {
    match applied.iter().max() {
        Some(&found) if found > known => Err(StoreError::SchemaTooNew { found, known }),
        _ => Ok(()),
    }
}

async fn record<'c, E>(executor: E, m: &Migration) -> Result<()>
where
    E: sqlx::Executor<'c>,
    for<'q> i64: sqlx::Encode<'q, E::Database> + sqlx::Type<E::Database>,
    for<'q> &'q str: sqlx::Encode<'q, E::Database> + sqlx::Type<E::Database>,
    for<'q> String: sqlx::Encode<'q, E::Database> + sqlx::Type<E::Database>,
    for<'q> <E::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, E::Database>,
{
    sqlx::query(
        "INSERT INTO hirecj_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
    )
    .bind(m.version)
    .bind(m.name)
    .bind(now().to_rfc3339())
    .execute(executor)
    .await?;
    Ok(())
}

fn log_applied(done: &[i64]) {
    if done.is_empty() {
        tracing::debug!("database schema is up to date");
    } else {
        tracing::info!(versions = ?done, "applied database migrations");
    }
}
