//! The authentication cache: how revocation reaches every gateway process within a second.
//!
//! Each process caches successful `authenticate` results, keyed by the secret's SHA-256, for
//! at most `ttl` (≤ 1 s) counted from the moment the database read *started*. A revocation
//! committed at time `r` is seen by every read that starts after `r`, so a cached principal
//! read before `r` is dropped by `r + ttl` at the latest: every process stops accepting a
//! revoked key within `ttl` (plus one database round trip), with no pub/sub to lose messages
//! and nothing to configure. Unknown secrets are never cached, so a key created on one
//! process works on all others at once. Revoking or rotating through this wrapper also drops
//! the local entries immediately.
//!
//! The cost is at most one indexed lookup per key per `ttl` per process.

use super::{BoxFuture, KeyStore};
use crate::error::GovernanceError;
use crate::model::{IssuedKey, KeyInfo, KeySpec, Principal, Team, TeamSpec};
use crate::secret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The longest TTL allowed: the product promises revocation within one second.
pub const MAX_AUTH_CACHE_TTL: Duration = Duration::from_secs(1);
/// Beyond this many entries, expired ones are swept (and, if still full, all are dropped).
const MAX_ENTRIES: usize = 100_000;

/// A `KeyStore` wrapper that caches successful authentications for at most one second.
pub struct CachedKeyStore {
    inner: Arc<dyn KeyStore>,
    ttl: Duration,
    /// By the secret's raw SHA-256 (no hex string per lookup); principals are shared so the
    /// lock is held for a lookup and a refcount bump, and the copy is made outside it.
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

type Entry = (Instant, Arc<Principal>);

impl std::fmt::Debug for CachedKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKeyStore")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedKeyStore {
    /// Wraps `inner`; `ttl` is clamped to one second.
    pub fn new(inner: Arc<dyn KeyStore>, ttl: Duration) -> CachedKeyStore {
        CachedKeyStore {
            inner,
            ttl: ttl.min(MAX_AUTH_CACHE_TTL),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The effective TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A cache is always safe to use after a panic elsewhere: worst case a stale entry,
        // which the TTL bounds anyway.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget_key(&self, key_id: &str) {
        self.entries().retain(|_, (_, p)| p.key_id != key_id);
    }

    async fn authenticate_cached(
        &self,
        presented: &str,
    ) -> Result<Option<Principal>, GovernanceError> {
        let hash = secret::digest(presented);
        let now = Instant::now();
        let hit = self
            .entries()
            .get(&hash)
            .filter(|(read_at, _)| now.duration_since(*read_at) < self.ttl)
            .map(|(_, p)| p.clone());
        if let Some(p) = hit {
            return Ok(Some(Principal::clone(&p)));
        }
        let started = Instant::now();
        let found = self.inner.authenticate(presented).await?;
        let mut entries = self.entries();
        match &found {
            Some(p) => {
                if entries.len() >= MAX_ENTRIES {
                    let ttl = self.ttl;
                    entries.retain(|_, (at, _)| started.duration_since(*at) < ttl);
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                }
                entries.insert(hash, (started, Arc::new(p.clone())));
            }
            None => {
                entries.remove(&hash);
            }
        }
        Ok(found)
    }
}

impl KeyStore for CachedKeyStore {
    fn create_team<'a>(
        &'a self,
        spec: &'a TeamSpec,
    ) -> BoxFuture<'a, Result<Team, GovernanceError>> {
        self.inner.create_team(spec)
    }

    fn get_team<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Team>, GovernanceError>> {
        self.inner.get_team(name)
    }

    fn list_teams(&self) -> BoxFuture<'_, Result<Vec<Team>, GovernanceError>> {
        self.inner.list_teams()
    }

    fn create_key<'a>(
        &'a self,
        spec: &'a KeySpec,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
        self.inner.create_key(spec)
    }

    fn list_keys<'a>(
        &'a self,
        team: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<KeyInfo>, GovernanceError>> {
        self.inner.list_keys(team)
    }

    fn get_key<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, GovernanceError>> {
        self.inner.get_key(id)
    }

    fn rotate_key<'a>(
        &'a self,
        id: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
        Box::pin(async move {
            let issued = self.inner.rotate_key(id, grace).await?;
            if grace.is_zero() {
                self.forget_key(id);
            }
            Ok(issued)
        })
    }

    fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<KeyInfo, GovernanceError>> {
        Box::pin(async move {
            let info = self.inner.revoke_key(id).await?;
            self.forget_key(id);
            Ok(info)
        })
    }

    fn authenticate<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, GovernanceError>> {
        Box::pin(self.authenticate_cached(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MemoryKeyStore;

    #[tokio::test(start_paused = true)]
    async fn a_revoked_key_stops_working_through_another_cache_within_the_ttl() {
        let shared: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
        let admin = CachedKeyStore::new(shared.clone(), Duration::from_millis(500));
        let other = CachedKeyStore::new(shared.clone(), Duration::from_secs(5));
        assert_eq!(other.ttl(), MAX_AUTH_CACHE_TTL, "TTL is clamped to 1 s");
        let issued = admin.create_key(&KeySpec::new("t", "k")).await.unwrap();
        // Works at once on the other "process": unknown secrets are never cached.
        assert!(other.authenticate(&issued.secret).await.unwrap().is_some());
        admin.revoke_key(&issued.info.id).await.unwrap();
        assert!(admin.authenticate(&issued.secret).await.unwrap().is_none());
        // The other cache may still answer from its entry, but only until the TTL runs out.
        tokio::time::advance(MAX_AUTH_CACHE_TTL).await;
        assert!(other.authenticate(&issued.secret).await.unwrap().is_none());
    }
}
