//! The authentication cache: how revocation reaches every gateway process within a second.
//!
//! Each process caches `authenticate` results, keyed by the secret's SHA-256, for at most
//! `ttl` (≤ 1 s) counted from the moment the database read *started*. A revocation committed
//! at time `r` is seen by every read that starts after `r`, so a cached principal read before
//! `r` is dropped by `r + ttl` at the latest: every process stops accepting a revoked key
//! within `ttl` (plus one database round trip), with no pub/sub to lose messages and nothing
//! to configure. Revoking or rotating through this wrapper drops the local entries at once,
//! and a lookup that was already reading the database when they were dropped reads again, so
//! the revoking process never accepts the key after the revocation returned.
//!
//! Unknown secrets are cached too (a negative entry, at most [`MAX_NEGATIVE_ENTRIES`], for the
//! same `ttl`), so a client retrying a bad key costs one lookup per `ttl`, not one per request.
//! A secret is random and unknown until its key is created, so a negative entry can only
//! delay a key that becomes valid elsewhere by at most `ttl` (the same bound as revocation);
//! keys created or rotated through this wrapper clear their own entry at once.
//!
//! Lookups are bounded by the lookup timeout: a database that does not answer fails the
//! request with [`GovernanceError::Timeout`] instead of holding it.
//!
//! The cost is at most one indexed lookup per presented secret per `ttl` per process.

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
/// The most unknown secrets remembered; past it, expired ones are swept (and, if still full,
/// all are dropped), so random bad keys cannot grow memory.
pub const MAX_NEGATIVE_ENTRIES: usize = 10_000;
/// How many times a lookup reads again because a revocation happened while it read.
const MAX_REREADS: usize = 3;

/// A `KeyStore` wrapper that caches authentications for at most one second.
pub struct CachedKeyStore {
    inner: Arc<dyn KeyStore>,
    ttl: Duration,
    lookup_timeout: Option<Duration>,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// By the secret's raw SHA-256 (no hex string per lookup); principals are shared so the
    /// lock is held for a lookup and a refcount bump, and the copy is made outside it.
    known: HashMap<[u8; 32], (Instant, Arc<Principal>)>,
    /// Secrets the store did not know, with when that read started.
    unknown: HashMap<[u8; 32], Instant>,
    /// Bumped whenever entries are dropped for a revocation or rotation: a lookup that read
    /// across a bump may hold the pre-revocation answer, so it reads again.
    epoch: u64,
}

impl std::fmt::Debug for CachedKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKeyStore")
            .field("ttl", &self.ttl)
            .field("lookup_timeout", &self.lookup_timeout)
            .finish_non_exhaustive()
    }
}

impl CachedKeyStore {
    /// Wraps `inner`; `ttl` is clamped to one second.
    pub fn new(inner: Arc<dyn KeyStore>, ttl: Duration) -> CachedKeyStore {
        CachedKeyStore {
            inner,
            ttl: ttl.min(MAX_AUTH_CACHE_TTL),
            lookup_timeout: None,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Bounds each database lookup made by `authenticate` (none by default).
    pub fn with_lookup_timeout(mut self, timeout: Duration) -> CachedKeyStore {
        self.lookup_timeout = Some(timeout);
        self
    }

    /// The effective TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A cache is always safe to use after a panic elsewhere: worst case a stale entry,
        // which the TTL bounds anyway.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget_key(&self, key_id: &str) {
        let mut entries = self.entries();
        entries.known.retain(|_, (_, p)| p.key_id != key_id);
        entries.epoch += 1;
    }

    fn forget_unknown(&self, issued: &IssuedKey) {
        self.entries()
            .unknown
            .remove(&secret::digest(&issued.secret));
    }

    async fn lookup(&self, presented: &str) -> Result<Option<Principal>, GovernanceError> {
        match self.lookup_timeout {
            None => self.inner.authenticate(presented).await,
            Some(limit) => tokio::time::timeout(limit, self.inner.authenticate(presented))
                .await
                .map_err(|_| GovernanceError::Timeout(limit))?,
        }
    }

    async fn authenticate_cached(
        &self,
        presented: &str,
    ) -> Result<Option<Principal>, GovernanceError> {
        if !secret::looks_like_secret(presented) {
            // The store refuses these without a lookup; nothing to save by caching them.
            return self.inner.authenticate(presented).await;
        }
        let hash = secret::digest(presented);
        let now = Instant::now();
        let mut epoch = {
            let entries = self.entries();
            if let Some((read_at, p)) = entries.known.get(&hash) {
                if now.duration_since(*read_at) < self.ttl {
                    let p = p.clone();
                    drop(entries);
                    return Ok(Some(Principal::clone(&p)));
                }
            }
            if let Some(read_at) = entries.unknown.get(&hash) {
                if now.duration_since(*read_at) < self.ttl {
                    return Ok(None);
                }
            }
            entries.epoch
        };
        let mut reads = 0;
        loop {
            let started = Instant::now();
            let found = self.lookup(presented).await?;
            reads += 1;
            let mut entries = self.entries();
            if entries.epoch != epoch {
                // Entries were dropped while this read ran: its answer may predate the
                // revocation. Read again (it starts after the revocation committed).
                epoch = entries.epoch;
                if reads < MAX_REREADS {
                    continue;
                }
                return Ok(found);
            }
            let ttl = self.ttl;
            match &found {
                Some(p) => {
                    entries.unknown.remove(&hash);
                    if entries.known.len() >= MAX_ENTRIES {
                        entries
                            .known
                            .retain(|_, (at, _)| started.duration_since(*at) < ttl);
                        if entries.known.len() >= MAX_ENTRIES {
                            entries.known.clear();
                        }
                    }
                    entries.known.insert(hash, (started, Arc::new(p.clone())));
                }
                None => {
                    entries.known.remove(&hash);
                    if entries.unknown.len() >= MAX_NEGATIVE_ENTRIES {
                        entries
                            .unknown
                            .retain(|_, at| started.duration_since(*at) < ttl);
                        if entries.unknown.len() >= MAX_NEGATIVE_ENTRIES {
                            entries.unknown.clear();
                        }
                    }
                    entries.unknown.insert(hash, started);
                }
            }
            return Ok(found);
        }
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
        Box::pin(async move {
            let issued = self.inner.create_key(spec).await?;
            self.forget_unknown(&issued);
            Ok(issued)
        })
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
            self.forget_unknown(&issued);
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    /// A store that counts lookups and can hold one lookup's answer until released (a read
    /// that started before a revocation committed and returns after it).
    #[derive(Default)]
    struct Probe {
        inner: MemoryKeyStore,
        lookups: AtomicUsize,
        hold_first: bool,
        hang: bool,
        entered: Notify,
        release: Notify,
    }

    impl KeyStore for Probe {
        fn create_team<'a>(
            &'a self,
            s: &'a TeamSpec,
        ) -> BoxFuture<'a, Result<Team, GovernanceError>> {
            self.inner.create_team(s)
        }
        fn get_team<'a>(
            &'a self,
            n: &'a str,
        ) -> BoxFuture<'a, Result<Option<Team>, GovernanceError>> {
            self.inner.get_team(n)
        }
        fn list_teams(&self) -> BoxFuture<'_, Result<Vec<Team>, GovernanceError>> {
            self.inner.list_teams()
        }
        fn create_key<'a>(
            &'a self,
            s: &'a KeySpec,
        ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
            self.inner.create_key(s)
        }
        fn list_keys<'a>(
            &'a self,
            t: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Vec<KeyInfo>, GovernanceError>> {
            self.inner.list_keys(t)
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
            g: Duration,
        ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
            self.inner.rotate_key(id, g)
        }
        fn revoke_key<'a>(
            &'a self,
            id: &'a str,
        ) -> BoxFuture<'a, Result<KeyInfo, GovernanceError>> {
            self.inner.revoke_key(id)
        }
        fn authenticate<'a>(
            &'a self,
            s: &'a str,
        ) -> BoxFuture<'a, Result<Option<Principal>, GovernanceError>> {
            Box::pin(async move {
                if self.hang {
                    std::future::pending::<()>().await;
                }
                let n = self.lookups.fetch_add(1, Ordering::SeqCst);
                let found = self.inner.authenticate(s).await;
                if self.hold_first && n == 0 {
                    self.entered.notify_one();
                    self.release.notified().await;
                }
                found
            })
        }
    }

    #[tokio::test]
    async fn a_lookup_that_read_before_a_local_revocation_does_not_accept_the_key() {
        let probe = Arc::new(Probe {
            hold_first: true,
            ..Probe::default()
        });
        let cache = Arc::new(CachedKeyStore::new(probe.clone(), Duration::from_secs(1)));
        let issued = cache.create_key(&KeySpec::new("t", "k")).await.unwrap();
        let lookup = tokio::spawn({
            let cache = cache.clone();
            let secret = issued.secret.clone();
            async move { cache.authenticate(&secret).await.unwrap() }
        });
        // The lookup has read the key as valid and not yet returned.
        probe.entered.notified().await;
        cache.revoke_key(&issued.info.id).await.unwrap();
        probe.release.notify_one();
        assert!(
            lookup.await.unwrap().is_none(),
            "accepted after the revocation returned"
        );
        assert!(cache.authenticate(&issued.secret).await.unwrap().is_none());
        assert_eq!(
            probe.lookups.load(Ordering::SeqCst),
            2,
            "re-read, then cached as unknown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_secrets_are_cached_for_the_ttl_and_bounded() {
        let probe = Arc::new(Probe::default());
        let cache = CachedKeyStore::new(probe.clone(), Duration::from_millis(500));
        let unknown = crate::secret::generate();
        assert!(cache.authenticate(&unknown).await.unwrap().is_none());
        assert!(cache.authenticate(&unknown).await.unwrap().is_none());
        assert_eq!(probe.lookups.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(cache.authenticate(&unknown).await.unwrap().is_none());
        assert_eq!(
            probe.lookups.load(Ordering::SeqCst),
            2,
            "expired after the TTL"
        );
        // Malformed tokens (refused by the store without a lookup) take no cache entry.
        assert!(cache.authenticate("nope").await.unwrap().is_none());
        assert_eq!(cache.entries().unknown.len(), 1);
        for _ in 0..MAX_NEGATIVE_ENTRIES + 10 {
            let _ = cache
                .authenticate(&crate::secret::generate())
                .await
                .unwrap();
        }
        assert!(cache.entries().unknown.len() <= MAX_NEGATIVE_ENTRIES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_created_elsewhere_works_within_the_ttl_and_one_created_here_at_once() {
        let shared: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
        let here = CachedKeyStore::new(shared.clone(), Duration::from_millis(500));
        let elsewhere = CachedKeyStore::new(shared.clone(), Duration::from_millis(500));
        let issued = elsewhere.create_key(&KeySpec::new("t", "k")).await.unwrap();
        assert!(here.authenticate(&issued.secret).await.unwrap().is_some());
        // Rotating here with no grace forgets the old secret and knows the new one at once.
        let rotated = here
            .rotate_key(&issued.info.id, Duration::ZERO)
            .await
            .unwrap();
        assert!(here.authenticate(&issued.secret).await.unwrap().is_none());
        assert!(here.authenticate(&rotated.secret).await.unwrap().is_some());
        // The other process may refuse an old negative answer only until its TTL passes.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(elsewhere
            .authenticate(&rotated.secret)
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_the_database_does_not_answer_fails_after_the_timeout() {
        let probe = Arc::new(Probe {
            hang: true,
            ..Probe::default()
        });
        let cache = CachedKeyStore::new(probe, Duration::from_millis(500))
            .with_lookup_timeout(Duration::from_millis(800));
        let started = Instant::now();
        let e = cache
            .authenticate(&crate::secret::generate())
            .await
            .unwrap_err();
        assert!(matches!(e, GovernanceError::Timeout(_)), "{e}");
        assert_eq!(started.elapsed(), Duration::from_millis(800));
    }

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
