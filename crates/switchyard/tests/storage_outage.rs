//! Databases that stop answering (a TCP proxy in front of PostgreSQL holds every byte, as a
//! network dropping packets would): managed-key requests fail within the configured
//! statement timeout instead of hanging and recover when the network does; a ledger cut never
//! holds an answer, its queued records are written after recovery, and a SIGTERM during a cut
//! keeps its deadlines and counts what it could not write.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};
use switchyard_sim::SimProtocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards 127.0.0.1:PORT to PostgreSQL; while `cut` is true no byte goes either way.
async fn proxy(target: &'static str) -> (u16, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, watching) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, watching.clone()));
            tokio::spawn(pipe(sr, cw, watching.clone()));
        }
    });
    (port, cut)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held back while cut, as packets dropped and retransmitted would be.
        if cut.wait_for(|c| !*c).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Drops a test schema (a connection still held by the cut proxy may hold locks: bounded).
fn drop_schema(schema: &str) {
    let _ = psql(&format!(
        "SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
    ));
}

/// Runs SQL in the local `test` database; its output, if it succeeded.
fn psql(sql: &str) -> Option<String> {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-q",
            "-t",
            "-A",
            "-c",
        ])
        .arg(sql)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A fresh schema in the local PostgreSQL, or `None` (loudly) when it is not running.
fn schema(test: &str) -> Option<String> {
    let name = format!("sy_{test}_{}", std::process::id());
    let ok = psql(&format!(
        "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
    ))
    .is_some();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL at 127.0.0.1:5432 is needed in CI"
        );
        eprintln!("SKIPPED: PostgreSQL at 127.0.0.1:5432 (psql) unavailable");
        return None;
    }
    Some(name)
}

// Multi-threaded: the proxy must run while the harness blocks waiting for the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_database_that_stops_answering_fails_requests_in_time_and_shutdown_keeps_its_deadline(
) {
    let Some(schema) = schema("keys") else { return };
    let (port, cut) = proxy("127.0.0.1:5432").await;
    let upstream = sim("up", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}{}[governance]\nkeys_db = \"postgres://postgres@127.0.0.1:{port}/test?options=-c%20search_path%3D{schema}\"\nauth_cache_ttl_ms = 1\nacquire_timeout_ms = 1000\nstatement_timeout_ms = 1000\n\n[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        admin_toml(),
        provider_toml("up", &upstream, SimProtocol::OpenAi),
        deployment_toml("d", "up", "model-up"),
    );
    let mut gw = Gateway::start(&config);
    let (status, issued) = gw
        .admin(
            Method::POST,
            "/keys",
            Some(json!({"team": "t", "name": "k", "allowed_models": ["m"]})),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let secret = issued["secret"].as_str().unwrap().to_string();
    assert_eq!(
        chat_as(&gw.url, &secret, &chat("m", "hi")).await.status(),
        200
    );

    cut.send_replace(true);
    for _ in 0..3 {
        let started = Instant::now();
        let r = chat_as(&gw.url, &secret, &chat("m", "hi")).await;
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "a key that cannot be checked");
        assert!(
            took < Duration::from_secs(4),
            "a request waited {took:?} on a 1 s statement timeout"
        );
    }

    // Once the network heals, requests succeed again.
    cut.send_replace(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while chat_as(&gw.url, &secret, &chat("m", "hi")).await.status() != 200 {
        assert!(Instant::now() < deadline, "no recovery after the cut ended");
        tokio::task::yield_now().await;
    }

    // A shutdown during a cut, with a lookup hanging on it, keeps the drain deadline.
    cut.send_replace(true);
    let hanging = tokio::spawn({
        let url = gw.url.clone();
        let secret = secret.clone();
        async move { chat_as(&url, &secret, &chat("m", "hi")).await.status() }
    });
    let started = Instant::now();
    assert_eq!(gw.stop(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM during the cut took {:?}",
        started.elapsed()
    );
    let _ = hanging.await;
    drop_schema(&schema);
}

/// The number of records in the ledger of `schema`.
fn ledger_rows(schema: &str) -> u64 {
    psql(&format!("SELECT count(*) FROM {schema}.ledger_records"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Polls (at most 30 s) until the ledger holds `n` records.
async fn wait_rows(schema: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = ledger_rows(schema);
        if rows == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the ledger holds {rows} records, not {n}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_database_that_stops_answering_never_holds_requests_and_loses_nothing_silently() {
    let Some(schema) = schema("ledger") else {
        return;
    };
    let (port, cut) = proxy("127.0.0.1:5432").await;
    let upstream = sim("up", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}[ledger]\nurl = \"postgres://postgres@127.0.0.1:{port}/test?options=-c%20search_path%3D{schema}\"\nflush_interval_ms = 50\nstatement_timeout_ms = 1000\nshutdown_timeout_ms = 2000\n\n[models.m]\ndeployments = [\"d\"]\n",
        server_toml("drain_timeout_ms = 2000\n"),
        provider_toml("up", &upstream, SimProtocol::OpenAi),
        deployment_toml("d", "up", "model-up"),
    );
    let mut gw = Gateway::start(&config);
    let answer = |gw: &Gateway| {
        let url = gw.url.clone();
        async move {
            let started = Instant::now();
            let r = chat_as(&url, KEY, &chat("m", "hi")).await;
            assert_eq!(r.status(), 200);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(2),
                "an answer waited {took:?} on the ledger"
            );
        }
    };
    for _ in 0..3 {
        answer(&gw).await;
    }
    wait_rows(&schema, 3).await;

    // Cut: requests are answered at once; their records wait and are written after recovery.
    cut.send_replace(true);
    for _ in 0..5 {
        answer(&gw).await;
    }
    cut.send_replace(false);
    wait_rows(&schema, 8).await;

    // Cut through shutdown: the exit keeps drain + ledger deadlines and counts what it lost.
    cut.send_replace(true);
    for _ in 0..2 {
        answer(&gw).await;
    }
    let started = Instant::now();
    assert_eq!(gw.stop(), Some(0));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "SIGTERM during the cut took {took:?}"
    );
    let lost = gw.wait_for_line("records lost", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("records lost"))
    });
    assert_eq!(lost["fields"]["lost_total"], 2, "{lost}");
    cut.send_replace(false);
    drop_schema(&schema);
}
