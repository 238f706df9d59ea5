//! Test helpers for real services: PostgreSQL in a throwaway schema.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Executor;

/// A pool whose connections use a fresh random schema, and that schema's name; `None` (after
/// a loud SKIPPED line) when PostgreSQL is unreachable and `CI` is unset. In CI it fails.
pub(crate) async fn pg_schema_pool(test: &str) -> Option<(PgPool, String)> {
    let url = std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    // A short acquire timeout: an unreachable server should skip in seconds, not a minute.
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect(&url)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: PostgreSQL at {url} unreachable in CI: {e}");
            }
            eprintln!("SKIPPED {test}: PostgreSQL at {url} unreachable: {e}");
            return None;
        }
    };
    let schema = format!("gov_test_{}", crate::secret::new_id("s").to_lowercase());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    admin.close().await;
    let path = schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .after_connect(move |conn, _| {
            let sql = format!("SET search_path TO {path}");
            Box::pin(async move {
                conn.execute(sql.as_str()).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    Some((pool, schema))
}

/// Drops a schema made by [`pg_schema_pool`].
pub(crate) async fn drop_schema(pool: &PgPool, schema: &str) {
    pool.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
    pool.close().await;
}
