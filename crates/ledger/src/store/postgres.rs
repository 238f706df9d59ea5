//! The shared ledger for many gateway processes: PostgreSQL.

use super::analysis::{
    bind_reprice, grouped_sql, read_grouped, read_reprice, reprice_sql, slo_attempts_sql, slo_fold,
    slo_ttft_sql, Placeholders,
};
use super::sqlite::receipt;
use super::{
    bind_row, read_row, read_spend_row, sort_rows, spend_sql, AppendReceipt, BoxFuture,
    LedgerStore, Row, SpendBy, SpendRow, TimeRange, COLUMNS,
};
use super::{DeploymentCounts, Filter, GroupedRow, RepriceTotals};
use crate::chain::{link, ChainHead};
use crate::record::{now_ms, LedgerRecord, StoredRecord};
use crate::LedgerError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use switchyard_types::{DbTimeouts, Prices};

/// Schema versions, applied in order, each once (see the SQLite store for why not sqlx's
/// migrator).
const MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../../migrations/postgres/0001_ledger.sql"))];

/// A fixed key for `pg_advisory_xact_lock`, so gateway processes starting together migrate
/// one at a time ("sy-ledger" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x7379_6c65_6467_6572;

/// A ledger in a PostgreSQL database (the tables live in the connection's `search_path`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<PostgresStore, LedgerError> {
        Self::connect_with(url, DbTimeouts::default()).await
    }

    /// [`PostgresStore::connect`] with explicit pool time limits (the statement limit is the
    /// server's `statement_timeout` on every connection).
    pub async fn connect_with(
        url: &str,
        timeouts: DbTimeouts,
    ) -> Result<PostgresStore, LedgerError> {
        let options = PgConnectOptions::from_str(url)?.options([(
            "statement_timeout",
            timeouts.statement.as_millis().to_string(),
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(timeouts.acquire)
            .connect_with(options)
            .await?;
        Self::from_pool(pool).await
    }

    /// Wraps an existing pool (e.g. one whose `after_connect` sets a schema), running
    /// migrations.
    pub async fn from_pool(pool: PgPool) -> Result<PostgresStore, LedgerError> {
        migrate(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// The underlying pool (for tests and admin tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn migrate(pool: &PgPool) -> Result<(), LedgerError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS ledger_migrations \
         (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM ledger_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_none() {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO ledger_migrations (version, applied_ms) VALUES ($1, $2)")
                .bind(version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn insert_sql() -> String {
    let params: Vec<String> = (1..=28).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO ledger_records ({COLUMNS}) VALUES ({})",
        params.join(", ")
    )
}

impl LedgerStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn append_batch<'a>(
        &'a self,
        records: &'a [LedgerRecord],
    ) -> BoxFuture<'a, Result<AppendReceipt, LedgerError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // The row lock on the head serialises appends from every gateway process; it is
            // held until commit, so the chain never forks.
            let (head_seq, head_hash): (i64, String) =
                sqlx::query_as("SELECT seq, hash FROM ledger_head WHERE id = 1 FOR UPDATE")
                    .fetch_one(&mut *tx)
                    .await?;
            let linked = link(head_seq, &head_hash, records);
            let insert = insert_sql();
            for s in &linked {
                let row = Row::from_stored(s)?;
                bind_row!(sqlx::query(&insert), row)
                    .execute(&mut *tx)
                    .await?;
            }
            let receipt = receipt(head_seq, head_hash, &linked);
            sqlx::query("UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(receipt.last_seq)
                .bind(&receipt.head_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(receipt)
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<ChainHead, LedgerError>> {
        Box::pin(async move {
            let (seq, hash, max_seq): (i64, String, i64) = sqlx::query_as(
                "SELECT h.seq, h.hash, COALESCE((SELECT MAX(seq) FROM ledger_records), 0) \
                 FROM ledger_head h WHERE h.id = 1",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(ChainHead { seq, hash, max_seq })
        })
    }

    fn records(
        &self,
        after_seq: i64,
        through_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM ledger_records WHERE seq > $1 AND seq <= $2 \
                 ORDER BY seq LIMIT $3"
            );
            let rows = sqlx::query(&sql)
                .bind(after_seq)
                .bind(through_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            decode_all(&rows)
        })
    }

    fn records_in_time(
        &self,
        range: TimeRange,
        after_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM ledger_records \
                 WHERE time_ms >= $1 AND time_ms < $2 AND seq > $3 ORDER BY seq LIMIT $4"
            );
            let rows = sqlx::query(&sql)
                .bind(range.since_ms)
                .bind(range.until_ms)
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            decode_all(&rows)
        })
    }

    fn spend(
        &self,
        by: SpendBy,
        range: TimeRange,
    ) -> BoxFuture<'_, Result<Vec<SpendRow>, LedgerError>> {
        Box::pin(async move {
            let sql = spend_sql(by, "$1", "$2");
            let rows = sqlx::query(&sql)
                .bind(range.since_ms)
                .bind(range.until_ms)
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(read_spend_row!(r));
            }
            sort_rows(&mut out);
            Ok(out)
        })
    }

    fn spend_grouped<'a>(
        &'a self,
        by: &'a [SpendBy],
        range: TimeRange,
    ) -> BoxFuture<'a, Result<Vec<GroupedRow>, LedgerError>> {
        Box::pin(async move {
            let sql = grouped_sql(by, Placeholders::Postgres);
            let rows = sqlx::query(&sql)
                .bind(range.since_ms)
                .bind(range.until_ms)
                .fetch_all(&self.pool)
                .await?;
            Ok(read_grouped!(&rows, by.len()))
        })
    }

    fn reprice<'a>(
        &'a self,
        range: TimeRange,
        filters: &'a [Filter],
        prices: &'a Prices,
    ) -> BoxFuture<'a, Result<RepriceTotals, LedgerError>> {
        Box::pin(async move {
            let sql = reprice_sql(filters, Placeholders::Postgres);
            let row = bind_reprice!(sqlx::query(&sql), prices, range, filters)
                .fetch_one(&self.pool)
                .await?;
            Ok(read_reprice!(&row))
        })
    }

    fn slo_counts(
        &self,
        range: TimeRange,
    ) -> BoxFuture<'_, Result<Vec<DeploymentCounts>, LedgerError>> {
        Box::pin(async move {
            let attempts: Vec<(String, i64, i64, i64)> =
                sqlx::query_as(&slo_attempts_sql(Placeholders::Postgres))
                    .bind(range.since_ms)
                    .bind(range.until_ms)
                    .fetch_all(&self.pool)
                    .await?;
            let ttft: Vec<(String, i64, i64)> =
                sqlx::query_as(&slo_ttft_sql(Placeholders::Postgres))
                    .bind(range.since_ms)
                    .bind(range.until_ms)
                    .fetch_all(&self.pool)
                    .await?;
            slo_fold(attempts, ttft)
        })
    }
}

fn decode_all(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<StoredRecord>, LedgerError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let values: Row = read_row!(r);
        out.push(values.into_stored()?);
    }
    Ok(out)
}
