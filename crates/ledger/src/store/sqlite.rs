//! The embedded default: one SQLite file in WAL mode.

use super::analysis::{
    bind_reprice, grouped_sql, read_grouped, read_reprice, reprice_sql, slo_attempts_sql, slo_fold,
    slo_ttft_sql, Placeholders,
};
use super::{
    read_row, read_spend_row, sort_rows, spend_sql, AppendReceipt, BoxFuture, LedgerStore, Row,
    SpendBy, SpendRow, TimeRange, COLUMNS,
};
use super::{DeploymentCounts, Filter, GroupedRow, RepriceTotals};
use crate::chain::{link, ChainHead};
use crate::record::{now_ms, LedgerRecord, StoredRecord};
use crate::LedgerError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use std::str::FromStr;
use switchyard_types::{DbTimeouts, Prices};

/// Schema versions, applied in order, each once (recorded in `ledger_migrations`).
///
/// Hand-run rather than `sqlx::migrate!`: sqlx keeps one `_sqlx_migrations` table per
/// database, which would collide with other crates' migrations sharing the database.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite/0001_ledger.sql"))];

/// A ledger in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (and, with `create`, creates) the database at `url` (`sqlite://PATH` or
    /// `sqlite::memory:`) and brings its schema up to date.
    ///
    /// WAL mode lets reports read while the writer appends; `synchronous = FULL` makes each
    /// committed batch survive a power cut (batching keeps the fsyncs few).
    pub async fn connect(url: &str, create: bool) -> Result<SqliteStore, LedgerError> {
        Self::connect_with(url, create, DbTimeouts::default()).await
    }

    /// [`SqliteStore::connect`] with explicit pool time limits (the statement limit is how
    /// long SQLite waits for another writer's lock).
    pub async fn connect_with(
        url: &str,
        create: bool,
        timeouts: DbTimeouts,
    ) -> Result<SqliteStore, LedgerError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(timeouts.statement);
        // An in-memory database exists once per connection: keep exactly one, forever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(timeouts.acquire)
                .connect_with(options)
                .await?
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(timeouts.acquire)
                .connect_with(options)
                .await?
        };
        Self::from_pool(pool).await
    }

    /// Wraps an existing pool, running migrations.
    pub async fn from_pool(pool: SqlitePool) -> Result<SqliteStore, LedgerError> {
        migrate(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// The underlying pool (for tests and admin tools).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), LedgerError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS ledger_migrations \
         (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let mut tx = pool.begin().await?;
    // A write first takes SQLite's write lock now, so two processes migrating at once queue
    // instead of failing to upgrade a read lock.
    sqlx::query("UPDATE ledger_migrations SET version = version WHERE version < 0")
        .execute(&mut *tx)
        .await?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM ledger_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_none() {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO ledger_migrations (version, applied_ms) VALUES (?, ?)")
                .bind(version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

impl LedgerStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn append_batch<'a>(
        &'a self,
        records: &'a [LedgerRecord],
    ) -> BoxFuture<'a, Result<AppendReceipt, LedgerError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // Writing the head row first takes the database write lock for the whole
            // transaction: appends from several connections or processes queue here.
            sqlx::query("UPDATE ledger_head SET seq = seq WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            let (head_seq, head_hash): (i64, String) =
                sqlx::query_as("SELECT seq, hash FROM ledger_head WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            let linked = link(head_seq, &head_hash, records);
            // Multi-row inserts: each statement is a round trip to SQLite's worker thread, so
            // one per chunk instead of one per record (28 columns × 500 rows stays under
            // SQLite's 32,766 bound parameters).
            for chunk in linked.chunks(500) {
                let rows = chunk
                    .iter()
                    .map(Row::from_stored)
                    .collect::<Result<Vec<_>, _>>()?;
                let mut insert =
                    QueryBuilder::<Sqlite>::new(format!("INSERT INTO ledger_records ({COLUMNS}) "));
                insert.push_values(rows, |mut b, v| {
                    b.push_bind(v.seq)
                        .push_bind(v.prev_hash)
                        .push_bind(v.hash)
                        .push_bind(v.request_id)
                        .push_bind(v.time_ms)
                        .push_bind(v.key_id)
                        .push_bind(v.team)
                        .push_bind(v.model)
                        .push_bind(v.deployment)
                        .push_bind(v.provider)
                        .push_bind(v.cloud)
                        .push_bind(v.region)
                        .push_bind(v.jurisdiction)
                        .push_bind(v.data_class)
                        .push_bind(v.attempts)
                        .push_bind(v.input_tokens)
                        .push_bind(v.output_tokens)
                        .push_bind(v.cached_input_tokens)
                        .push_bind(v.cache_write_tokens)
                        .push_bind(v.reasoning_tokens)
                        .push_bind(v.cost_nanos)
                        .push_bind(v.price_known)
                        .push_bind(v.latency_ms)
                        .push_bind(v.ttft_ms)
                        .push_bind(v.outcome)
                        .push_bind(v.stream)
                        .push_bind(v.prompt_body)
                        .push_bind(v.response_body);
                });
                insert.build().execute(&mut *tx).await?;
            }
            let receipt = receipt(head_seq, head_hash, &linked);
            sqlx::query("UPDATE ledger_head SET seq = ?, hash = ? WHERE id = 1")
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
                "SELECT {COLUMNS} FROM ledger_records WHERE seq > ? AND seq <= ? \
                 ORDER BY seq LIMIT ?"
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
                 WHERE time_ms >= ? AND time_ms < ? AND seq > ? ORDER BY seq LIMIT ?"
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
            let sql = spend_sql(by, "?", "?");
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
            let sql = grouped_sql(by, Placeholders::Sqlite);
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
            let sql = reprice_sql(filters, Placeholders::Sqlite);
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
                sqlx::query_as(&slo_attempts_sql(Placeholders::Sqlite))
                    .bind(range.since_ms)
                    .bind(range.until_ms)
                    .fetch_all(&self.pool)
                    .await?;
            let ttft: Vec<(String, i64, i64)> = sqlx::query_as(&slo_ttft_sql(Placeholders::Sqlite))
                .bind(range.since_ms)
                .bind(range.until_ms)
                .fetch_all(&self.pool)
                .await?;
            slo_fold(attempts, ttft)
        })
    }
}

fn decode_all(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<StoredRecord>, LedgerError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let values: Row = read_row!(r);
        out.push(values.into_stored()?);
    }
    Ok(out)
}

/// What an append reports, from the head it started at and the rows it linked.
pub(super) fn receipt(head_seq: i64, head_hash: String, linked: &[StoredRecord]) -> AppendReceipt {
    match (linked.first(), linked.last()) {
        (Some(first), Some(last)) => AppendReceipt {
            first_seq: first.seq,
            last_seq: last.seq,
            head_hash: last.hash.clone(),
        },
        _ => AppendReceipt {
            first_seq: 0,
            last_seq: head_seq,
            head_hash,
        },
    }
}
