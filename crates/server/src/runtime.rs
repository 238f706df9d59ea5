//! State that lives as long as the process, not as long as a config version: managed keys,
//! limits and budgets, and the ledger writer. Opened at startup, drained at shutdown.

use crate::config::{RuntimeSettings, StateBackend};
use crate::error::ApiError;
use crate::{AppState, StartError};
use std::path::Path;
use std::sync::Arc;
use switchyard_governance::keys::BoxFuture;
use switchyard_governance::state::{
    MemoryState, OnRedisError, RedisState, RedisStateConfig, StateStore,
};
use switchyard_governance::{
    open_key_store_with, CachedKeyStore, Clock, GovernanceError, Governor, GovernorOptions,
    KeyStore, Scope, SpendSource,
};
use switchyard_ledger::{LedgerStore, LedgerWriter, OnFull, SpendBy, TimeRange, WriterConfig};
use switchyard_types::{ErrorKind, Money};

/// The ledger as the budgets' source of truth: what a key or team spent in a period.
struct LedgerSpend(Arc<dyn LedgerStore>);

impl SpendSource for LedgerSpend {
    fn spent<'a>(
        &'a self,
        scope: Scope,
        owner: &'a str,
        since_ms: i64,
        until_ms: i64,
    ) -> BoxFuture<'a, Result<Money, GovernanceError>> {
        Box::pin(async move {
            let by = match scope {
                Scope::Key => SpendBy::Key,
                Scope::Team => SpendBy::Team,
            };
            let rows = self
                .0
                .spend(by, TimeRange { since_ms, until_ms })
                .await
                .map_err(|e| GovernanceError::Unavailable(format!("ledger: {e}")))?;
            Ok(rows
                .iter()
                .find(|r| r.group == owner)
                .map_or(Money::ZERO, |r| r.cost))
        })
    }
}

/// Keys, governance and ledger of one gateway process.
pub struct Runtime {
    /// Managed keys, uncached (listings and creation; revocation and rotation go through
    /// `keys` so this process forgets them at once).
    pub key_store: Arc<dyn KeyStore>,
    /// Managed keys as the request path reads them (cached for at most a second, so a revoked
    /// key stops working on every process within a second).
    pub keys: CachedKeyStore,
    /// Rate limits and budgets.
    pub governor: Governor,
    /// Limits and budgets state (for the budget report).
    pub state: Arc<dyn StateStore>,
    /// The ledger, for reports.
    pub ledger_store: Arc<dyn LedgerStore>,
    /// Batched ledger writes, off the request path.
    pub ledger: LedgerWriter,
    /// SHA-256 of the admin token; the admin API is off without one.
    pub admin_token_hash: Option<[u8; 32]>,
}

impl Runtime {
    /// Opens everything; relative SQLite paths are resolved against `base` (the config's folder).
    pub async fn open(
        settings: &RuntimeSettings,
        base: Option<&Path>,
    ) -> Result<Runtime, StartError> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| StartError::Client(format!("{what}: {e}"));
        let keys_db = RuntimeSettings::resolve_db(&settings.keys_db, base);
        let key_store: Arc<dyn KeyStore> = Arc::new(
            open_key_store_with(&keys_db, settings.keys_db_timeouts)
                .await
                .map_err(|e| fail(&format!("keys database {keys_db}"), &e))?,
        );
        let state: Arc<dyn StateStore> = match &settings.state {
            StateBackend::Memory => Arc::new(MemoryState::new()),
            StateBackend::Redis {
                url,
                prefix,
                fail_closed,
                fleet_size,
            } => {
                let mut config = RedisStateConfig::new(url.clone());
                config.key_prefix = prefix.clone();
                config.fleet_size = *fleet_size;
                config.on_error = if *fail_closed {
                    OnRedisError::FailClosed
                } else {
                    OnRedisError::FailOpen
                };
                Arc::new(RedisState::new(config).map_err(|e| fail("redis", &e))?)
            }
        };
        let ledger_url = RuntimeSettings::resolve_db(&settings.ledger_url, base);
        let ledger_store =
            switchyard_ledger::open_with(&ledger_url, true, settings.ledger_db_timeouts)
                .await
                .map_err(|e| fail(&format!("ledger {ledger_url}"), &e))?;
        let ledger = LedgerWriter::spawn(
            ledger_store.clone(),
            WriterConfig {
                batch_size: settings.ledger_batch_size,
                flush_interval: settings.ledger_flush_interval,
                queue_capacity: settings.ledger_queue_capacity,
                // The request path queues with `try_record`, which never waits.
                on_full: OnFull::Drop,
                durability: settings.ledger_durability,
                durable_timeout: settings.ledger_durable_timeout,
                shutdown_timeout: settings.ledger_shutdown_timeout,
                append_timeout: settings.ledger_db_timeouts.statement,
                ..WriterConfig::default()
            },
        );
        let options = GovernorOptions {
            hold_ttl: settings.hold_ttl,
            spend: Some(Arc::new(LedgerSpend(ledger_store.clone()))),
            // Every process's writer flushes within its interval: after that the ledger holds
            // every request that finished before a shared counter was lost.
            seed_delay: settings.ledger_flush_interval + std::time::Duration::from_millis(100),
            reconcile_every: settings.reconcile_every,
        };
        Ok(Runtime {
            keys: CachedKeyStore::new(key_store.clone(), settings.auth_cache_ttl)
                .with_lookup_timeout(settings.keys_db_timeouts.statement),
            key_store,
            governor: Governor::with_options(state.clone(), Clock::System, options),
            state,
            ledger_store,
            ledger,
            admin_token_hash: settings.admin_token_hash,
        })
    }

    /// After the HTTP server drained: settle what governance still holds, then flush the ledger.
    pub async fn shutdown(&self) {
        self.governor.shutdown().await;
        let stats = self.ledger.shutdown().await;
        tracing::info!(?stats, "ledger flushed");
    }
}

/// Checks `Authorization: Bearer <admin token>` against the configured token's hash.
pub(crate) fn authorize(state: &AppState, headers: &http::HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.runtime.admin_token_hash else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "the admin API is off: set [admin] token_env in the config",
        ));
    };
    let presented = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(crate::config::hash_secret);
    // Comparing hashes keeps the comparison's timing independent of the secret.
    if presented == Some(expected) {
        Ok(())
    } else {
        Err(
            ApiError::new(ErrorKind::Authentication, "a valid admin token is required")
                .with_code("invalid_admin_token"),
        )
    }
}
