//! A keys database that stops answering (a TCP proxy in front of PostgreSQL holds every
//! byte, as a network dropping packets would): managed-key requests fail within the
//! configured statement timeout instead of hanging, recover when the network does, and a
//! SIGTERM during the cut keeps its deadline.
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

/// A fresh schema in the local PostgreSQL, or `None` (loudly) when it is not running.
fn schema() -> Option<String> {
    let name = format!("sy_outage_{}", std::process::id());
    let ok = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-q",
            "-c",
        ])
        .arg(format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .status()
        .is_ok_and(|s| s.success());
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
    let Some(schema) = schema() else { return };
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
    let _ = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-q",
            "-c",
        ])
        .arg(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .status();
}
