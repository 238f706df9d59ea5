//! Startup-only settings: where keys, limits, budgets and the ledger live, and the admin
//! token. They are read when the gateway starts; a reload that changes them is logged as
//! needing a restart (state such as connection pools and queues cannot be swapped safely).

use super::Compiler;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use switchyard_types::DbTimeouts;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGovernance {
    keys_db: Option<String>,
    state: Option<String>,
    on_redis_error: Option<RawOnRedisError>,
    redis_key_prefix: Option<String>,
    auth_cache_ttl_ms: Option<u64>,
    hold_ttl_ms: Option<u64>,
    fleet_size: Option<u32>,
    reconcile_ms: Option<u64>,
    acquire_timeout_ms: Option<u64>,
    statement_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawOnRedisError {
    FailOpen,
    FailClosed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLedger {
    url: Option<String>,
    batch_size: Option<usize>,
    flush_interval_ms: Option<u64>,
    queue_capacity: Option<usize>,
    on_full: Option<RawOnFull>,
    block_timeout_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    acquire_timeout_ms: Option<u64>,
    statement_timeout_ms: Option<u64>,
    durability: Option<RawDurability>,
    durable_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawDurability {
    Queued,
    BeforeResponse,
}

/// Only `drop` is served: records are queued from the request path (and from a stream's
/// end, which cannot wait) without blocking. `block` is parsed to refuse it with a hint.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawOnFull {
    Block,
    Drop,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    token: Option<String>,
    token_env: Option<String>,
    listen: Option<std::net::SocketAddr>,
}

/// Where shared state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateBackend {
    /// In this process only.
    Memory,
    /// A Redis server shared by every gateway process.
    Redis {
        /// `redis://…`
        url: String,
        /// Key prefix, so several gateways can share one Redis.
        prefix: String,
        /// Deny (true) or fall back to local limits (false) while Redis is unreachable.
        fail_closed: bool,
        /// The fewest processes assumed to share a budget's remainder during an outage.
        fleet_size: u32,
    },
}

/// Startup-only settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Managed keys database (`sqlite://…` or `postgres://…`); relative SQLite paths are
    /// resolved against the config file's folder.
    pub keys_db: String,
    /// Limits and budgets state.
    pub state: StateBackend,
    /// How long a successful key lookup is cached (at most one second).
    pub auth_cache_ttl: Duration,
    /// How long a budget reservation lives unsettled before it is released.
    pub hold_ttl: Duration,
    /// How often shared budgets are reconciled with the ledger.
    pub reconcile_every: Duration,
    /// Ledger database (`sqlite://…`, `postgres://…` or `memory`).
    pub ledger_url: String,
    /// Ledger writer: records per batch.
    pub ledger_batch_size: usize,
    /// Ledger writer: longest wait before a partial batch is written.
    pub ledger_flush_interval: Duration,
    /// Ledger writer: records queued at most.
    pub ledger_queue_capacity: usize,
    /// Ledger writer: how long shutdown waits for the database.
    pub ledger_shutdown_timeout: Duration,
    /// When a request's record counts as kept: queued, or committed before the response ends.
    pub ledger_durability: switchyard_ledger::Durability,
    /// Durable mode: the longest an answer waits for its record's commit.
    pub ledger_durable_timeout: Duration,
    /// Keys database pool limits (a lookup on the request path is bounded by the statement
    /// limit).
    pub keys_db_timeouts: DbTimeouts,
    /// Ledger database pool limits (each append is bounded by the statement limit).
    pub ledger_db_timeouts: DbTimeouts,
    /// SHA-256 of the admin token; the admin API is off without one.
    pub admin_token_hash: Option<[u8; 32]>,
    /// A separate listener for the admin API (and the dashboard); the data plane then
    /// serves no `/admin` routes.
    pub admin_listen: Option<std::net::SocketAddr>,
}

/// Keys database defaults: a lookup is on every managed-key request's path, so it fails fast.
const KEYS_DB_TIMEOUTS: DbTimeouts = DbTimeouts {
    acquire: Duration::from_secs(1),
    statement: Duration::from_secs(2),
};

/// Ledger database defaults: appends are off the request path and may carry a backlog.
const LEDGER_DB_TIMEOUTS: DbTimeouts = DbTimeouts {
    acquire: Duration::from_secs(5),
    statement: Duration::from_secs(10),
};

/// The embedded default database, beside the config file.
const DEFAULT_DB: &str = "sqlite://switchyard.db";

impl Compiler {
    pub(super) fn runtime(
        &mut self,
        governance: &RawGovernance,
        ledger: &RawLedger,
        admin: &RawAdmin,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> RuntimeSettings {
        let state = match governance.state.as_deref() {
            None | Some("memory") => StateBackend::Memory,
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                StateBackend::Redis {
                    url: url.to_string(),
                    prefix: governance
                        .redis_key_prefix
                        .clone()
                        .unwrap_or_else(|| "switchyard".into()),
                    fail_closed: matches!(
                        governance.on_redis_error,
                        Some(RawOnRedisError::FailClosed)
                    ),
                    fleet_size: governance.fleet_size.unwrap_or(1).max(1),
                }
            }
            Some(other) => {
                self.error(
                    "governance.state",
                    format!("'{other}' is neither \"memory\" nor a redis:// URL"),
                    "use \"memory\" for one process, or \"redis://HOST:6379\" to share limits between processes",
                );
                StateBackend::Memory
            }
        };
        for (field, url) in [
            ("governance.keys_db", &governance.keys_db),
            ("ledger.url", &ledger.url),
        ] {
            if let Some(url) = url {
                let known = ["sqlite://", "postgres://", "postgresql://"]
                    .iter()
                    .any(|p| url.starts_with(p))
                    || (field == "ledger.url" && url == "memory");
                if !known {
                    self.error(
                        field,
                        format!("'{url}' is not a sqlite:// or postgres:// URL"),
                        "for example \"sqlite://switchyard.db\" or \"postgres://user@host/db\"",
                    );
                }
            }
        }
        let admin_token = self.secret(
            "admin",
            "token",
            admin.token.as_deref(),
            admin.token_env.as_deref(),
            env,
        );
        if let Some(t) = &admin_token {
            if t.len() < 16 {
                self.error(
                    "admin.token",
                    "the admin token is shorter than 16 characters",
                    "use a long random value, for example from `openssl rand -hex 32`",
                );
            }
        }
        match ledger.on_full {
            Some(RawOnFull::Block) => self.error(
                "ledger.on_full",
                "\"block\" is not supported: records are queued without waiting, so a request never stalls on the ledger",
                "remove on_full (\"drop\" is the only policy: a record that finds the queue full is dropped, counted in switchyard_ledger_records{state=\"dropped\"} and logged); raise queue_capacity to ride out longer database outages",
            ),
            Some(RawOnFull::Drop) | None => {}
        }
        if ledger.block_timeout_ms.is_some() {
            self.error(
                "ledger.block_timeout_ms",
                "block_timeout_ms belonged to on_full = \"block\", which is not supported",
                "remove it; size queue_capacity for the outages the ledger should ride out",
            );
        }
        let timeouts = |c: &mut Compiler,
                        section: &str,
                        acquire: Option<u64>,
                        statement: Option<u64>,
                        d: DbTimeouts| {
            let mut pick = |field: &str, v: Option<u64>, default: Duration| match v {
                Some(0) => {
                    c.error(
                        format!("{section}.{field}"),
                        "0 ms would fail every database call",
                        format!(
                            "use a positive number of milliseconds; the default is {}",
                            default.as_millis()
                        ),
                    );
                    default
                }
                Some(v) => Duration::from_millis(v),
                None => default,
            };
            DbTimeouts {
                acquire: pick("acquire_timeout_ms", acquire, d.acquire),
                statement: pick("statement_timeout_ms", statement, d.statement),
            }
        };
        let keys_db_timeouts = timeouts(
            self,
            "governance",
            governance.acquire_timeout_ms,
            governance.statement_timeout_ms,
            KEYS_DB_TIMEOUTS,
        );
        let ledger_db_timeouts = timeouts(
            self,
            "ledger",
            ledger.acquire_timeout_ms,
            ledger.statement_timeout_ms,
            LEDGER_DB_TIMEOUTS,
        );
        let ms = |v: Option<u64>, d: u64| Duration::from_millis(v.unwrap_or(d));
        RuntimeSettings {
            keys_db: governance
                .keys_db
                .clone()
                .unwrap_or_else(|| DEFAULT_DB.into()),
            state,
            auth_cache_ttl: ms(governance.auth_cache_ttl_ms, 500).min(Duration::from_secs(1)),
            // Longer than any request may run: a hold outliving its request only delays the
            // release of a reservation nobody settled.
            hold_ttl: ms(governance.hold_ttl_ms, 600_000).max(Duration::from_secs(1)),
            reconcile_every: ms(governance.reconcile_ms, 10_000).max(Duration::from_millis(100)),
            ledger_url: ledger.url.clone().unwrap_or_else(|| DEFAULT_DB.into()),
            ledger_batch_size: ledger.batch_size.unwrap_or(256).max(1),
            ledger_flush_interval: ms(ledger.flush_interval_ms, 200),
            ledger_queue_capacity: ledger.queue_capacity.unwrap_or(10_000).max(1),
            ledger_shutdown_timeout: ms(ledger.shutdown_timeout_ms, 10_000),
            ledger_durability: match ledger.durability {
                Some(RawDurability::BeforeResponse) => {
                    switchyard_ledger::Durability::BeforeResponse
                }
                Some(RawDurability::Queued) | None => switchyard_ledger::Durability::Queued,
            },
            ledger_durable_timeout: ms(ledger.durable_timeout_ms, 5_000),
            keys_db_timeouts,
            ledger_db_timeouts,
            admin_token_hash: admin_token.map(|t| super::hash_secret(&t)),
            admin_listen: admin.listen,
        }
    }
}

impl RuntimeSettings {
    /// A database URL with a relative SQLite path resolved against `base`.
    pub fn resolve_db(url: &str, base: Option<&std::path::Path>) -> String {
        match (url.strip_prefix("sqlite://"), base) {
            (Some(path), Some(base)) if !path.starts_with('/') && path != ":memory:" => {
                format!("sqlite://{}", PathBuf::from(base).join(path).display())
            }
            _ => url.to_string(),
        }
    }
}
