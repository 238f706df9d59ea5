//! The durable key store: SQLite (embedded default) or PostgreSQL (shared by many gateways).
//!
//! Both run the same SQL (`$N` parameters work in both); the enum dispatch keeps one code path
//! without sqlx's `Any` driver.

use super::{millis, principal, BoxFuture, KeyStore};
use crate::error::GovernanceError;
use crate::model::{IssuedKey, KeyInfo, KeySpec, Principal, Team, TeamSpec};
use crate::period::system_now_ms;
use crate::secret;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;
use switchyard_types::DbTimeouts;

/// Schema versions, applied once each, recorded in `governance_migrations` (not sqlx's
/// migrator, whose single `_sqlx_migrations` table would collide with the ledger's).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/0001_keys.sql"))];

/// Serialises concurrent PostgreSQL migrations from gateways starting together ("sy-govrn").
const MIGRATION_LOCK: i64 = 0x7379_2d67_6f76_726e;

/// Keys and teams in SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum SqlKeyStore {
    /// A SQLite file (WAL) or in-memory database.
    Sqlite(SqlitePool),
    /// A PostgreSQL database (tables in the connection's `search_path`).
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool this is.
macro_rules! on_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match $self {
            SqlKeyStore::Sqlite($pool) => $body,
            SqlKeyStore::Postgres($pool) => $body,
        }
    };
}

const KEY_COLUMNS: &str = "k.id, k.team, k.name, k.prefix, k.allowed_models, k.data_class, \
     k.limits, k.budgets, k.store_bodies, k.created_ms, k.revoked_ms, k.previous_valid_until_ms";

type KeyRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    i64,
    Option<i64>,
    Option<i64>,
);
type TeamRow = (String, String, String, i64);
type AuthRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// Applies the migrations not yet recorded, inside the transaction `tx` (either backend: the
/// statements are the same, only the connection types differ).
macro_rules! apply_migrations {
    ($tx:ident) => {
        for (version, sql) in MIGRATIONS {
            let done: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM governance_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *$tx)
                    .await?;
            if done.is_none() {
                sqlx::raw_sql(sql).execute(&mut *$tx).await?;
                sqlx::query(
                    "INSERT INTO governance_migrations (version, applied_ms) VALUES ($1, $2)",
                )
                .bind(version)
                .bind(system_now_ms())
                .execute(&mut *$tx)
                .await?;
            }
        }
    };
}

impl SqlKeyStore {
    /// Opens `sqlite://PATH` (created if missing), `sqlite::memory:` or `postgres://…`, and
    /// brings the schema up to date.
    pub async fn connect(url: &str) -> Result<SqlKeyStore, GovernanceError> {
        Self::connect_with(url, DbTimeouts::default()).await
    }

    /// [`SqlKeyStore::connect`] with explicit pool time limits.
    pub async fn connect_with(
        url: &str,
        timeouts: DbTimeouts,
    ) -> Result<SqlKeyStore, GovernanceError> {
        if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            // SQLite's statement limit is how long it waits for a lock another writer holds.
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(timeouts.statement);
            // An in-memory database lives in one connection: keep exactly one, forever.
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
            Self::from_sqlite(pool).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?.options([(
                "statement_timeout",
                timeouts.statement.as_millis().to_string(),
            )]);
            let pool = PgPoolOptions::new()
                .max_connections(5)
                .acquire_timeout(timeouts.acquire)
                .connect_with(options)
                .await?;
            Self::from_postgres(pool).await
        } else {
            Err(GovernanceError::UnsupportedUrl(url.to_string()))
        }
    }

    /// Wraps an existing SQLite pool (e.g. the ledger's), running migrations.
    pub async fn from_sqlite(pool: SqlitePool) -> Result<SqlKeyStore, GovernanceError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS governance_migrations \
             (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        let mut tx = pool.begin().await?;
        apply_migrations!(tx);
        tx.commit().await?;
        Ok(SqlKeyStore::Sqlite(pool))
    }

    /// Wraps an existing PostgreSQL pool (e.g. one whose `after_connect` sets a schema),
    /// running migrations under an advisory lock.
    pub async fn from_postgres(pool: PgPool) -> Result<SqlKeyStore, GovernanceError> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS governance_migrations \
             (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        apply_migrations!(tx);
        tx.commit().await?;
        Ok(SqlKeyStore::Postgres(pool))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    async fn create_team_impl(&self, spec: &TeamSpec) -> Result<Team, GovernanceError> {
        spec.validate()?;
        let team = Team {
            name: spec.name.clone(),
            limits: spec.limits,
            budgets: spec.budgets.clone(),
            created_ms: system_now_ms(),
        };
        let limits = serde_json::to_string(&team.limits)?;
        let budgets = serde_json::to_string(&team.budgets)?;
        let sql = "INSERT INTO governance_teams (name, limits, budgets, created_ms) VALUES ($1, $2, $3, $4)";
        let result = on_pool!(self, pool => sqlx::query(sql)
            .bind(&team.name).bind(&limits).bind(&budgets).bind(team.created_ms)
            .execute(pool).await.map(|_| ()));
        result.map_err(|e| conflict(e, || format!("team `{}`", spec.name)))?;
        Ok(team)
    }

    async fn get_team_impl(&self, name: &str) -> Result<Option<Team>, GovernanceError> {
        let sql = "SELECT name, limits, budgets, created_ms FROM governance_teams WHERE name = $1";
        let row: Option<TeamRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?;
        row.map(team_from_row).transpose()
    }

    async fn list_teams_impl(&self) -> Result<Vec<Team>, GovernanceError> {
        let sql = "SELECT name, limits, budgets, created_ms FROM governance_teams ORDER BY name";
        let rows: Vec<TeamRow> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        rows.into_iter().map(team_from_row).collect()
    }

    async fn create_key_impl(&self, spec: &KeySpec) -> Result<IssuedKey, GovernanceError> {
        spec.validate()?;
        let now = system_now_ms();
        let ensure_team = "INSERT INTO governance_teams (name, limits, budgets, created_ms) \
                           VALUES ($1, '{}', '[]', $2) ON CONFLICT (name) DO NOTHING";
        on_pool!(self, pool => sqlx::query(ensure_team).bind(&spec.team).bind(now)
            .execute(pool).await.map(|_| ()))?;
        let secret = secret::generate();
        let info = KeyInfo {
            id: secret::new_id("key"),
            team: spec.team.clone(),
            name: spec.name.clone(),
            prefix: secret::display_prefix(&secret),
            allowed_models: spec.allowed_models.clone(),
            default_data_class: spec.default_data_class.clone(),
            limits: spec.limits,
            budgets: spec.budgets.clone(),
            store_bodies: spec.store_bodies,
            created_ms: now,
            revoked_ms: None,
            previous_valid_until_ms: None,
        };
        let hash = secret::hash(&secret);
        let models = serde_json::to_string(&info.allowed_models)?;
        let limits = serde_json::to_string(&info.limits)?;
        let budgets = serde_json::to_string(&info.budgets)?;
        let sql = "INSERT INTO governance_keys (id, team, name, prefix, secret_sha256, \
                   allowed_models, data_class, limits, budgets, store_bodies, created_ms) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        let result = on_pool!(self, pool => sqlx::query(sql)
            .bind(&info.id).bind(&info.team).bind(&info.name).bind(&info.prefix).bind(&hash)
            .bind(&models).bind(&info.default_data_class).bind(&limits).bind(&budgets)
            .bind(info.store_bodies).bind(info.created_ms)
            .execute(pool).await.map(|_| ()));
        result
            .map_err(|e| conflict(e, || format!("key `{}` in team `{}`", spec.name, spec.team)))?;
        Ok(IssuedKey { info, secret })
    }

    async fn list_keys_impl(&self, team: Option<&str>) -> Result<Vec<KeyInfo>, GovernanceError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM governance_keys k \
             WHERE ($1 IS NULL OR k.team = $1) ORDER BY k.team, k.name"
        );
        let rows: Vec<KeyRow> = on_pool!(self, pool =>
            sqlx::query_as(&sql).bind(team).fetch_all(pool).await)?;
        rows.into_iter().map(key_from_row).collect()
    }

    async fn get_key_impl(&self, id: &str) -> Result<Option<KeyInfo>, GovernanceError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM governance_keys k WHERE k.id = $1");
        let row: Option<KeyRow> = on_pool!(self, pool =>
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.map(key_from_row).transpose()
    }

    async fn rotate_impl(&self, id: &str, grace: Duration) -> Result<IssuedKey, GovernanceError> {
        let secret = secret::generate();
        let grace_ms = millis(grace);
        let until = (grace_ms > 0).then(|| system_now_ms().saturating_add(grace_ms));
        // One statement: SET expressions read the row's old values, so the old hash moves to
        // `previous_sha256` atomically even if two rotations race.
        let sql = "UPDATE governance_keys SET \
                   previous_sha256 = CASE WHEN $1 > 0 THEN secret_sha256 ELSE NULL END, \
                   previous_valid_until_ms = $2, secret_sha256 = $3, prefix = $4 \
                   WHERE id = $5 AND revoked_ms IS NULL";
        let updated = on_pool!(self, pool => sqlx::query(sql)
            .bind(grace_ms).bind(until).bind(secret::hash(&secret))
            .bind(secret::display_prefix(&secret)).bind(id)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(GovernanceError::NotFound(format!("active key `{id}`")));
        }
        let info = self
            .get_key_impl(id)
            .await?
            .ok_or_else(|| GovernanceError::NotFound(format!("key `{id}`")))?;
        Ok(IssuedKey { info, secret })
    }

    async fn revoke_impl(&self, id: &str) -> Result<KeyInfo, GovernanceError> {
        let sql = "UPDATE governance_keys SET revoked_ms = COALESCE(revoked_ms, $1), \
                   previous_sha256 = NULL, previous_valid_until_ms = NULL WHERE id = $2";
        let updated = on_pool!(self, pool => sqlx::query(sql)
            .bind(system_now_ms()).bind(id)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(GovernanceError::NotFound(format!("key `{id}`")));
        }
        self.get_key_impl(id)
            .await?
            .ok_or_else(|| GovernanceError::NotFound(format!("key `{id}`")))
    }

    async fn authenticate_impl(
        &self,
        presented: &str,
    ) -> Result<Option<Principal>, GovernanceError> {
        if !secret::looks_like_secret(presented) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {KEY_COLUMNS}, t.limits, t.budgets, t.created_ms \
             FROM governance_keys k LEFT JOIN governance_teams t ON t.name = k.team \
             WHERE (k.secret_sha256 = $1 OR (k.previous_sha256 = $1 AND k.previous_valid_until_ms > $2)) \
             AND k.revoked_ms IS NULL"
        );
        let row: Option<AuthRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(secret::hash(presented)).bind(system_now_ms())
            .fetch_optional(pool).await)?;
        let Some(r) = row else { return Ok(None) };
        let key = key_from_row((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11))?;
        let team = match (r.12, r.13, r.14) {
            (Some(limits), Some(budgets), Some(created_ms)) => Some(team_from_row((
                key.team.clone(),
                limits,
                budgets,
                created_ms,
            ))?),
            _ => None,
        };
        Ok(Some(principal(&key, team.as_ref())))
    }
}

fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> GovernanceError {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => GovernanceError::Conflict(what()),
        _ => GovernanceError::Database(e),
    }
}

fn team_from_row(r: TeamRow) -> Result<Team, GovernanceError> {
    Ok(Team {
        name: r.0,
        limits: serde_json::from_str(&r.1)?,
        budgets: serde_json::from_str(&r.2)?,
        created_ms: r.3,
    })
}

fn key_from_row(r: KeyRow) -> Result<KeyInfo, GovernanceError> {
    Ok(KeyInfo {
        id: r.0,
        team: r.1,
        name: r.2,
        prefix: r.3,
        allowed_models: serde_json::from_str(&r.4)?,
        default_data_class: r.5,
        limits: serde_json::from_str(&r.6)?,
        budgets: serde_json::from_str(&r.7)?,
        store_bodies: r.8,
        created_ms: r.9,
        revoked_ms: r.10,
        previous_valid_until_ms: r.11,
    })
}

impl KeyStore for SqlKeyStore {
    fn create_team<'a>(
        &'a self,
        spec: &'a TeamSpec,
    ) -> BoxFuture<'a, Result<Team, GovernanceError>> {
        Box::pin(self.create_team_impl(spec))
    }

    fn get_team<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Team>, GovernanceError>> {
        Box::pin(self.get_team_impl(name))
    }

    fn list_teams(&self) -> BoxFuture<'_, Result<Vec<Team>, GovernanceError>> {
        Box::pin(self.list_teams_impl())
    }

    fn create_key<'a>(
        &'a self,
        spec: &'a KeySpec,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
        Box::pin(self.create_key_impl(spec))
    }

    fn list_keys<'a>(
        &'a self,
        team: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<KeyInfo>, GovernanceError>> {
        Box::pin(self.list_keys_impl(team))
    }

    fn get_key<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, GovernanceError>> {
        Box::pin(self.get_key_impl(id))
    }

    fn rotate_key<'a>(
        &'a self,
        id: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
        Box::pin(self.rotate_impl(id, grace))
    }

    fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<KeyInfo, GovernanceError>> {
        Box::pin(self.revoke_impl(id))
    }

    fn authenticate<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, GovernanceError>> {
        Box::pin(self.authenticate_impl(secret))
    }
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
