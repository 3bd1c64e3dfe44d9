//! A throwaway PostgreSQL database per test, made through
//! `TEST_DATABASE_URL` with [`hirecj_store::scratch`]; skipped outside CI
//! when that is not set, required in CI.

/// One test's database, dropped by [`ScratchDatabase::drop`].
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// Where the app under test connects.
    pub url: url::Url,
}

#[allow(clippy::unwrap_used, clippy::expect_used)]
impl ScratchDatabase {
    /// A fresh database `{prefix}_{random}`; `None` (the test is skipped)
    /// when `TEST_DATABASE_URL` is not set outside CI.
    pub async fn create(prefix: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TEST_DATABASE_URL must be set in CI"
            );
            eprintln!("TEST_DATABASE_URL not set: skipping");
            return None;
        };
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        hirecj_store::scratch::create_postgres_database(&admin_url, &name)
            .await
            .expect("a scratch database");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    /// Drops the database but keeps the handle: the database has gone
    /// away under the app ([`ScratchDatabase::recreate`] brings it back,
    /// empty).
    pub async fn remove(&self) {
        hirecj_store::scratch::drop_postgres_database(&self.admin_url, &self.name)
            .await
            .expect("the scratch database removed");
    }

    /// Creates the database again after [`ScratchDatabase::remove`].
    pub async fn recreate(&self) {
        hirecj_store::scratch::create_postgres_database(&self.admin_url, &self.name)
            .await
            .expect("the scratch database created again");
    }

    /// Drops the database (its connections are closed first).
    pub async fn drop(self) {
        hirecj_store::scratch::drop_postgres_database(&self.admin_url, &self.name)
            .await
            .expect("the scratch database dropped");
    }
}
