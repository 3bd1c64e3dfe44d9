//! Reading columns the same way from SQLite and PostgreSQL rows.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use uuid::Uuid;

pub(crate) trait RowExt {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn json(&self, col: &str) -> Result<Value, sqlx::Error>;
    fn uuid(&self, col: &str) -> Result<Uuid, sqlx::Error>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, sqlx::Error>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
                self.try_get(col)
            }
            fn json(&self, col: &str) -> Result<Value, sqlx::Error> {
                self.try_get::<Json<Value>, _>(col).map(|j| j.0)
            }
            fn uuid(&self, col: &str) -> Result<Uuid, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}

impl_row_ext!(SqliteRow);
impl_row_ext!(PgRow);
