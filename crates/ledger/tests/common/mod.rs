//! Test databases: a fresh SQLite file, or a fresh schema in the test PostgreSQL.

// Test helpers: a panic is a failed test; not every test file uses every helper.
#![allow(dead_code, clippy::unwrap_used)]

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePool;
use sqlx::{Executor, PgPool};
use std::sync::Arc;
use std::time::Duration;
use switchyard_ledger::store::{LedgerStore, PostgresStore, SqliteStore};

/// Where the PostgreSQL tests connect.
pub const POSTGRES_URL_ENV: &str = "SWITCHYARD_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A ledger store with raw access to its database, for tampering.
pub struct TestDb {
    pub store: Arc<dyn LedgerStore>,
    raw: Raw,
    _dir: Option<tempfile::TempDir>,
    pub url: String,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres {
        pool: PgPool,
        admin: PgPool,
        schema: String,
    },
}

impl TestDb {
    /// A fresh SQLite ledger file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let store = SqliteStore::connect(&url, true).await.unwrap();
        TestDb {
            raw: Raw::Sqlite(store.pool().clone()),
            store: Arc::new(store),
            _dir: Some(dir),
            url,
        }
    }

    /// Another store on the same SQLite file (a second "process").
    pub async fn second_sqlite_store(&self) -> Arc<dyn LedgerStore> {
        Arc::new(SqliteStore::connect(&self.url, false).await.unwrap())
    }

    /// A fresh schema in the test PostgreSQL, or `None` (after a loud SKIPPED line) when it
    /// cannot be reached and `CI` is not set. Under CI an unreachable database fails the test.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let url = std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        let admin = match PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL at {url} is unreachable under CI: {e}");
                }
                // Written to the stderr handle, not with eprintln!, which the test harness
                // captures and hides for passing tests: a skip must be seen.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test}: PostgreSQL at {url} is unreachable ({e}); set {POSTGRES_URL_ENV} or start it"
                );
                return None;
            }
        };
        let schema = format!("t_{:016x}", rand::random::<u64>());
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        let pool = schema_pool(&url, &schema).await;
        let store = PostgresStore::from_pool(pool.clone()).await.unwrap();
        Some(TestDb {
            store: Arc::new(store),
            raw: Raw::Postgres {
                pool,
                admin,
                schema,
            },
            _dir: None,
            url,
        })
    }

    /// Another store (its own pool) on the same PostgreSQL schema (a second "process").
    pub async fn second_postgres_store(&self) -> Arc<dyn LedgerStore> {
        let Raw::Postgres { schema, .. } = &self.raw else {
            panic!("not a PostgreSQL test database");
        };
        let pool = schema_pool(&self.url, schema).await;
        Arc::new(PostgresStore::from_pool(pool).await.unwrap())
    }

    /// Runs tampering SQL directly (test-written text, no user input).
    pub async fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(p) => {
                sqlx::raw_sql(sql).execute(p).await.unwrap();
            }
            Raw::Postgres { pool, .. } => {
                sqlx::raw_sql(sql).execute(pool).await.unwrap();
            }
        }
    }

    /// Drops the PostgreSQL schema (SQLite files go with their temp dir).
    pub async fn cleanup(self) {
        if let Raw::Postgres {
            pool,
            admin,
            schema,
        } = self.raw
        {
            pool.close().await;
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

async fn schema_pool(url: &str, schema: &str) -> PgPool {
    let set_path = format!("SET search_path TO {schema}");
    PgPoolOptions::new()
        .max_connections(4)
        .after_connect(move |conn, _meta| {
            let set_path = set_path.clone();
            Box::pin(async move {
                conn.execute(set_path.as_str()).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .unwrap()
}
