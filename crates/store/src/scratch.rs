//! Throwaway PostgreSQL databases, for tools that measure the app on a
//! database of their own (`hirecj-bench --database-url`): created through
//! an administrative URL, dropped when done, so repeated runs start alike
//! and leave the server as they found it.

use sqlx::Connection as _;

use crate::{Result, StoreError};

/// A database name this module accepts: lower-case ASCII letters, digits
/// and `_`, starting with a letter, at most 63 bytes (PostgreSQL's limit).
/// The name is written into SQL as an identifier, so nothing else passes.
fn checked(name: &str) -> Result<&str> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(StoreError::Corrupt(format!(
            "{name:?} is not a database name this tool creates (a-z, 0-9, _)"
        )))
    }
}

async fn admin(admin_url: &str) -> Result<sqlx::PgConnection> {
    if !(admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://")) {
        return Err(StoreError::UnsupportedUrl);
    }
    Ok(sqlx::PgConnection::connect(admin_url).await?)
}

/// Creates the empty database `name` on the server of `admin_url` (a role
/// that may create databases).
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<()> {
    let name = checked(name)?;
    let mut conn = admin(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Drops the database `name` on the server of `admin_url`, ending any
/// session still connected to it; a database already gone is fine.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<()> {
    let name = checked(name)?;
    let mut conn = admin(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// The size in bytes of the PostgreSQL database `url` names.
pub async fn postgres_database_bytes(url: &str) -> Result<u64> {
    let mut conn = admin(url).await?;
    let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_plain_identifiers_are_written_into_sql() {
        // Refused before any connection is made.
        let url = "postgres://nobody@127.0.0.1:1/postgres";
        for bad in [
            "",
            "Bench",
            "1bench",
            "a-b",
            "a;drop",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    create_postgres_database(url, bad).await,
                    Err(StoreError::Corrupt(_))
                ),
                "{bad:?}"
            );
            assert!(
                matches!(
                    drop_postgres_database(url, bad).await,
                    Err(StoreError::Corrupt(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            create_postgres_database("sqlite://x.db", "hirecj_bench_1").await,
            Err(StoreError::UnsupportedUrl)
        ));
    }
}
