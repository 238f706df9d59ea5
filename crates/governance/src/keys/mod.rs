//! Virtual keys and teams: the `KeyStore` trait, an in-memory store, SQL stores and the
//! authentication cache that bounds how long a revoked key keeps working.

mod cache;
mod memory;
mod sql;

pub use cache::CachedKeyStore;
pub use memory::MemoryKeyStore;
pub use sql::SqlKeyStore;

use crate::error::GovernanceError;
use crate::model::{IssuedKey, KeyInfo, KeySpec, Principal, Team, TeamSpec};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, `Send` future: keeps the store traits usable as `Arc<dyn …>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where keys and teams live. Secrets are never stored: only their SHA-256 and a display prefix.
pub trait KeyStore: Send + Sync {
    /// Creates a team; `Conflict` if the name is taken.
    fn create_team<'a>(
        &'a self,
        spec: &'a TeamSpec,
    ) -> BoxFuture<'a, Result<Team, GovernanceError>>;
    /// One team by name.
    fn get_team<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Team>, GovernanceError>>;
    /// Every team, by name.
    fn list_teams(&self) -> BoxFuture<'_, Result<Vec<Team>, GovernanceError>>;
    /// Creates a key (and its team, without limits, if missing); the secret is in the result
    /// and nowhere else.
    fn create_key<'a>(
        &'a self,
        spec: &'a KeySpec,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>>;
    /// Keys (revoked ones included), optionally of one team, by team then name.
    fn list_keys<'a>(
        &'a self,
        team: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<KeyInfo>, GovernanceError>>;
    /// One key by id.
    fn get_key<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, GovernanceError>>;
    /// Issues a new secret for a key; the old one keeps working for `grace` (zero: stops now).
    fn rotate_key<'a>(
        &'a self,
        id: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>>;
    /// Revokes a key: its secrets stop working (within the auth cache's TTL elsewhere).
    fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<KeyInfo, GovernanceError>>;
    /// The principal for a presented secret, or `None` if it is unknown, revoked or expired.
    fn authenticate<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, GovernanceError>>;
}

/// Builds the principal from a key and its team (a missing team contributes no limits).
pub(crate) fn principal(key: &KeyInfo, team: Option<&Team>) -> Principal {
    Principal {
        key_id: key.id.clone(),
        key_name: key.name.clone(),
        team: key.team.clone(),
        allowed_models: key.allowed_models.clone(),
        data_class: key.default_data_class.clone(),
        limits: key.limits,
        budgets: key.budgets.clone(),
        team_limits: team.map(|t| t.limits).unwrap_or_default(),
        team_budgets: team.map(|t| t.budgets.clone()).unwrap_or_default(),
        store_bodies: key.store_bodies,
    }
}

/// A duration as whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Opens the durable key store named by a URL: `sqlite://PATH` (created if missing),
/// `sqlite::memory:` or `postgres://…`.
pub async fn open_key_store(url: &str) -> Result<SqlKeyStore, GovernanceError> {
    SqlKeyStore::connect(url).await
}

/// [`open_key_store`] with explicit pool time limits.
pub async fn open_key_store_with(
    url: &str,
    timeouts: switchyard_types::DbTimeouts,
) -> Result<SqlKeyStore, GovernanceError> {
    SqlKeyStore::connect_with(url, timeouts).await
}

#[cfg(test)]
pub(crate) mod conformance;
