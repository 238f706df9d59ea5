//! Shared helpers for tests against a real Redis.

// Tests may unwrap (a panic is a failed test); each test binary uses a different subset.
#![allow(dead_code, clippy::unwrap_used)]

use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::{
    Governor, KeySpec, KeyStore, MemoryKeyStore, OnRedisError, Principal, RedisState,
    RedisStateConfig,
};

/// The Redis URL when it answers PING; `None` after a loud SKIPPED line when it does not and
/// `CI` is unset. In CI an unreachable Redis fails the test.
pub async fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reachable = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), reachable).await {
        Ok(Some(_)) => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("{test}: Redis at {url} unreachable in CI"),
        _ => {
            eprintln!("SKIPPED {test}: Redis at {url} unreachable (set SWITCHYARD_TEST_REDIS_URL)");
            None
        }
    }
}

/// A random key prefix, so tests run in parallel without touching other data.
pub fn unique_prefix() -> String {
    let n: u64 = rand::random();
    format!("sytest:{n:016x}")
}

/// A Redis state client (one simulated gateway process) with the given prefix.
pub fn redis_state(url: &str, prefix: &str, on_error: OnRedisError) -> Arc<RedisState> {
    let mut config = RedisStateConfig::new(url);
    config.key_prefix = prefix.to_string();
    config.on_error = on_error;
    Arc::new(RedisState::new(config).unwrap())
}

/// Every key under `prefix`, with its type.
pub async fn keys_under(url: &str, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys = Vec::new();
    let mut iter: redis::AsyncIter<String> = conn.scan_match(format!("{prefix}:*")).await.unwrap();
    while let Some(k) = iter.next_item().await {
        keys.push(k.unwrap());
    }
    keys
}

/// Deletes every key under `prefix`.
pub async fn cleanup(url: &str, prefix: &str) {
    let keys = keys_under(url, prefix).await;
    if keys.is_empty() {
        return;
    }
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = conn.del(keys).await.unwrap();
}

/// A key (with `spec` tweaks) in a fresh memory key store, and its principal.
pub async fn principal(tweak: impl FnOnce(&mut KeySpec)) -> (Principal, String) {
    let store = MemoryKeyStore::new();
    let mut spec = KeySpec::new("team-a", "key-a");
    tweak(&mut spec);
    let issued = store.create_key(&spec).await.unwrap();
    let p = store.authenticate(&issued.secret).await.unwrap().unwrap();
    (p, issued.secret)
}

/// Waits for every pending settle/release of these governors.
pub async fn drain(govs: &[Governor]) {
    for g in govs {
        g.shutdown().await;
    }
}
