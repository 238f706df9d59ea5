//! Keys and teams in process memory: for tests, demos and single-process setups from config.

use super::{millis, principal, BoxFuture, KeyStore};
use crate::error::GovernanceError;
use crate::model::{IssuedKey, KeyInfo, KeySpec, Principal, Team, TeamSpec};
use crate::period::system_now_ms;
use crate::secret;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// An in-memory `KeyStore`.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    teams: BTreeMap<String, Team>,
    keys: BTreeMap<String, Stored>,
    /// Current and previous (grace) hashes → key id.
    by_hash: HashMap<String, String>,
}

#[derive(Debug)]
struct Stored {
    info: KeyInfo,
    hash: String,
    previous_hash: Option<String>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> MemoryKeyStore {
        MemoryKeyStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update of plain maps; the
        // maps are still consistent enough to serve, and refusing all auth would be worse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create_team_now(&self, spec: &TeamSpec) -> Result<Team, GovernanceError> {
        spec.validate()?;
        let mut inner = self.lock();
        if inner.teams.contains_key(&spec.name) {
            return Err(GovernanceError::Conflict(format!("team `{}`", spec.name)));
        }
        let team = Team {
            name: spec.name.clone(),
            limits: spec.limits,
            budgets: spec.budgets.clone(),
            created_ms: system_now_ms(),
        };
        inner.teams.insert(team.name.clone(), team.clone());
        Ok(team)
    }

    fn create_key_now(&self, spec: &KeySpec) -> Result<IssuedKey, GovernanceError> {
        spec.validate()?;
        let secret = secret::generate();
        let now = system_now_ms();
        let mut inner = self.lock();
        if inner
            .keys
            .values()
            .any(|k| k.info.team == spec.team && k.info.name == spec.name)
        {
            return Err(GovernanceError::Conflict(format!(
                "key `{}` in team `{}`",
                spec.name, spec.team
            )));
        }
        inner
            .teams
            .entry(spec.team.clone())
            .or_insert_with(|| Team {
                name: spec.team.clone(),
                limits: Default::default(),
                budgets: Vec::new(),
                created_ms: now,
            });
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
        inner.by_hash.insert(hash.clone(), info.id.clone());
        inner.keys.insert(
            info.id.clone(),
            Stored {
                info: info.clone(),
                hash,
                previous_hash: None,
            },
        );
        Ok(IssuedKey { info, secret })
    }

    fn rotate_now(&self, id: &str, grace: Duration) -> Result<IssuedKey, GovernanceError> {
        let secret = secret::generate();
        let hash = secret::hash(&secret);
        let now = system_now_ms();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let stored = inner
            .keys
            .get_mut(id)
            .filter(|k| k.info.revoked_ms.is_none())
            .ok_or_else(|| GovernanceError::NotFound(format!("active key `{id}`")))?;
        if let Some(old_prev) = stored.previous_hash.take() {
            inner.by_hash.remove(&old_prev);
        }
        let old = std::mem::replace(&mut stored.hash, hash.clone());
        if grace.is_zero() {
            inner.by_hash.remove(&old);
            stored.info.previous_valid_until_ms = None;
        } else {
            stored.previous_hash = Some(old);
            stored.info.previous_valid_until_ms = Some(now.saturating_add(millis(grace)));
        }
        stored.info.prefix = secret::display_prefix(&secret);
        inner.by_hash.insert(hash, id.to_string());
        Ok(IssuedKey {
            info: stored.info.clone(),
            secret,
        })
    }

    fn revoke_now(&self, id: &str) -> Result<KeyInfo, GovernanceError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let stored = inner
            .keys
            .get_mut(id)
            .ok_or_else(|| GovernanceError::NotFound(format!("key `{id}`")))?;
        stored.info.revoked_ms.get_or_insert_with(system_now_ms);
        inner.by_hash.remove(&stored.hash);
        if let Some(prev) = stored.previous_hash.take() {
            inner.by_hash.remove(&prev);
        }
        Ok(stored.info.clone())
    }

    fn authenticate_now(&self, presented: &str) -> Option<Principal> {
        let hash = secret::hash(presented);
        let inner = self.lock();
        let id = inner.by_hash.get(&hash)?;
        let stored = inner.keys.get(id)?;
        if stored.info.revoked_ms.is_some() {
            return None;
        }
        if stored.hash != hash {
            // The previous secret: valid only inside its grace period.
            let until = stored.info.previous_valid_until_ms?;
            if system_now_ms() >= until {
                return None;
            }
        }
        Some(principal(&stored.info, inner.teams.get(&stored.info.team)))
    }
}

impl KeyStore for MemoryKeyStore {
    fn create_team<'a>(
        &'a self,
        spec: &'a TeamSpec,
    ) -> BoxFuture<'a, Result<Team, GovernanceError>> {
        Box::pin(async move { self.create_team_now(spec) })
    }

    fn get_team<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Team>, GovernanceError>> {
        Box::pin(async move { Ok(self.lock().teams.get(name).cloned()) })
    }

    fn list_teams(&self) -> BoxFuture<'_, Result<Vec<Team>, GovernanceError>> {
        Box::pin(async move { Ok(self.lock().teams.values().cloned().collect()) })
    }

    fn create_key<'a>(
        &'a self,
        spec: &'a KeySpec,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
        Box::pin(async move { self.create_key_now(spec) })
    }

    fn list_keys<'a>(
        &'a self,
        team: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<KeyInfo>, GovernanceError>> {
        Box::pin(async move {
            let mut keys: Vec<KeyInfo> = self
                .lock()
                .keys
                .values()
                .filter(|k| team.is_none_or(|t| k.info.team == t))
                .map(|k| k.info.clone())
                .collect();
            keys.sort_by(|a, b| (&a.team, &a.name).cmp(&(&b.team, &b.name)));
            Ok(keys)
        })
    }

    fn get_key<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, GovernanceError>> {
        Box::pin(async move { Ok(self.lock().keys.get(id).map(|k| k.info.clone())) })
    }

    fn rotate_key<'a>(
        &'a self,
        id: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<IssuedKey, GovernanceError>> {
        Box::pin(async move { self.rotate_now(id, grace) })
    }

    fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<KeyInfo, GovernanceError>> {
        Box::pin(async move { self.revoke_now(id) })
    }

    fn authenticate<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, GovernanceError>> {
        Box::pin(async move { Ok(self.authenticate_now(secret)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_key_store_conformance_suite() {
        crate::keys::conformance::run(&MemoryKeyStore::new()).await;
    }
}
