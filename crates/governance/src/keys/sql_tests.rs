//! SQL key stores against real SQLite files and a real PostgreSQL.

use super::*;
use crate::keys::{conformance, CachedKeyStore};
use crate::testing::{drop_schema, pg_schema_pool};
use std::sync::Arc;
use tokio::time::Instant;

async fn sqlite_store(dir: &tempfile::TempDir) -> (SqlKeyStore, String) {
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    (SqlKeyStore::connect(&url).await.unwrap(), url)
}

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite_store(&dir).await;
    conformance::run(&store).await;
    store.close().await;
    // Reopening runs no migration twice and keeps the data.
    let again = SqlKeyStore::connect(&url).await.unwrap();
    assert_eq!(again.list_keys(None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn postgres_store_passes_the_conformance_suite() {
    let Some((pool, schema)) = pg_schema_pool("postgres_store_passes_the_conformance_suite").await
    else {
        return;
    };
    let store = SqlKeyStore::from_postgres(pool.clone()).await.unwrap();
    // A second gateway starting at the same time migrates safely (advisory lock, idempotent).
    SqlKeyStore::from_postgres(pool.clone()).await.unwrap();
    conformance::run(&store).await;
    drop_schema(&pool, &schema).await;
}

/// Creates keys, rotates one with grace, and returns every secret ever issued.
async fn issue_secrets(store: &dyn KeyStore) -> Vec<String> {
    let mut secrets = Vec::new();
    for i in 0..3 {
        let issued = store
            .create_key(&KeySpec::new("plain", format!("k{i}")))
            .await
            .unwrap();
        secrets.push(issued.secret);
        if i == 0 {
            let rotated = store
                .rotate_key(&issued.info.id, Duration::from_secs(60))
                .await
                .unwrap();
            secrets.push(rotated.secret);
        }
    }
    secrets
}

fn assert_absent(haystack: &str, secrets: &[String], place: &str) {
    for s in secrets {
        // The display prefix is stored on purpose; the rest of the secret must not be.
        assert!(!haystack.contains(s.as_str()), "secret found in {place}");
        assert!(!haystack.contains(&s[12..]), "secret body found in {place}");
    }
}

#[tokio::test]
async fn sqlite_never_stores_secrets_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = sqlite_store(&dir).await;
    let secrets = issue_secrets(&store).await;
    let SqlKeyStore::Sqlite(pool) = &store else {
        unreachable!()
    };
    let queries = [
        "SELECT id || team || name || prefix || secret_sha256 || COALESCE(previous_sha256, '') \
         || allowed_models || data_class || limits || budgets FROM governance_keys",
        "SELECT name || limits || budgets FROM governance_teams",
    ];
    for sql in queries {
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(pool).await.unwrap();
        assert!(!rows.is_empty(), "{sql}");
        let dump: String = rows.into_iter().map(|r| r.0).collect();
        assert_absent(&dump, &secrets, sql);
    }
    // The raw bytes on disk too (database and write-ahead log).
    store.close().await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert_absent(
            &String::from_utf8_lossy(&bytes),
            &secrets,
            "the SQLite files",
        );
    }
}

#[tokio::test]
async fn postgres_never_stores_secrets_in_plaintext() {
    let Some((pool, schema)) = pg_schema_pool("postgres_never_stores_secrets_in_plaintext").await
    else {
        return;
    };
    let store = SqlKeyStore::from_postgres(pool.clone()).await.unwrap();
    let secrets = issue_secrets(&store).await;
    for table in [
        "governance_keys",
        "governance_teams",
        "governance_migrations",
    ] {
        let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT t::text FROM {table} t"))
            .fetch_all(&pool)
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table} is empty");
        let dump: String = rows.into_iter().map(|r| r.0).collect();
        assert_absent(&dump, &secrets, table);
    }
    drop_schema(&pool, &schema).await;
}

/// Two "gateway processes": separate pools and caches over one database.
async fn cross_process(a: SqlKeyStore, b: SqlKeyStore) {
    let admin = CachedKeyStore::new(Arc::new(a), Duration::from_millis(500));
    let gateway = CachedKeyStore::new(Arc::new(b), Duration::from_millis(500));
    let issued = admin.create_key(&KeySpec::new("t", "k")).await.unwrap();
    // Works on the other process at once: misses are never cached.
    assert!(gateway
        .authenticate(&issued.secret)
        .await
        .unwrap()
        .is_some());
    assert!(gateway
        .authenticate(&issued.secret)
        .await
        .unwrap()
        .is_some()); // now cached
    admin.revoke_key(&issued.info.id).await.unwrap();
    let revoked_at = Instant::now();
    // Bounded polling on the condition; the cache TTL makes it true within 500 ms.
    while gateway
        .authenticate(&issued.secret)
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "revoked key still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn sqlite_keys_created_work_at_once_and_revoked_stop_within_a_second_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (a, url) = sqlite_store(&dir).await;
    let b = SqlKeyStore::connect(&url).await.unwrap();
    cross_process(a, b).await;
}

#[tokio::test]
async fn postgres_keys_created_work_at_once_and_revoked_stop_within_a_second_elsewhere() {
    let Some((pool, schema)) = pg_schema_pool("postgres_cross_process").await else {
        return;
    };
    let a = SqlKeyStore::from_postgres(pool.clone()).await.unwrap();
    // A second pool = a second process.
    let url = std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let path = schema.clone();
    let other = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(move |conn, _| {
            let sql = format!("SET search_path TO {path}");
            Box::pin(async move {
                sqlx::Executor::execute(conn, sql.as_str()).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let b = SqlKeyStore::from_postgres(other.clone()).await.unwrap();
    cross_process(a, b).await;
    other.close().await;
    drop_schema(&pool, &schema).await;
}

#[tokio::test]
async fn postgres_pools_carry_the_configured_statement_timeout() {
    let Some((pool, schema)) = pg_schema_pool("postgres_statement_timeout").await else {
        return;
    };
    let url = std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    // The schema through the URL's own startup options, which the timeout must not replace.
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let timeouts = switchyard_types::DbTimeouts {
        acquire: Duration::from_secs(3),
        statement: Duration::from_millis(150),
    };
    let store = SqlKeyStore::connect_with(&url, timeouts).await.unwrap();
    let SqlKeyStore::Postgres(pg) = &store else {
        panic!("a postgres URL opens a postgres store")
    };
    let shown: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(pg)
        .await
        .unwrap();
    assert_eq!(shown, "150ms");
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(pg)
        .await
        .unwrap();
    assert!(path.contains(&schema), "{path}");
    let slow = sqlx::query("SELECT pg_sleep(2)").execute(pg).await;
    assert!(slow.is_err(), "a 2 s statement outlived a 150 ms limit");
    pg.close().await;
    drop_schema(&pool, &schema).await;
}
