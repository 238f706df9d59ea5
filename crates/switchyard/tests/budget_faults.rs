//! Hard budgets under Redis faults: two gateway processes share a Redis the test starts and
//! stops itself and a PostgreSQL ledger (a fresh schema); clients keep sending requests while
//! Redis is paused for 8 s, restarted empty, or never reachable, under `fail_open` and
//! `fail_closed`. In each case the ledger's final spend stays within the budget plus the bound
//! the README states (one worst-case request per request in flight fleet-wide), and no
//! reservation is left behind.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_sim::SimProtocol;

/// "hello world" → 3 input tokens; the sim answers 4 output tokens; `max_tokens` 5.
/// At $0.01 a token: $0.07 a request, $0.08 reserved.
const ACTUAL: i64 = 70_000_000;
const WORST: i64 = 80_000_000;
/// A budget for 60 requests.
const BUDGET: i64 = 60 * ACTUAL;
/// Client tasks per gateway process.
const CLIENTS: usize = 3;
const PROCESSES: usize = 2;

/// A `redis-server` this test owns, on its own port, keeping nothing on disk.
struct OwnRedis {
    child: Option<Child>,
    port: u16,
}

impl OwnRedis {
    /// Starts one, or `None` (after a loud SKIPPED line) without `redis-server` outside CI.
    fn start(test: &str) -> Option<OwnRedis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have redis-server installed"
            );
            eprintln!("SKIPPED {test}: redis-server is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = OwnRedis { child: None, port };
        redis.spawn();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pong() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    }

    /// SIGKILL, then a fresh empty server on the same port.
    fn restart_empty(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A PostgreSQL ledger URL in a fresh schema, or `None` (loudly) outside CI without one.
fn pg_ledger(test: &str) -> Option<String> {
    let schema = format!(
        "budget_faults_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            ^ u128::from(std::process::id())
    );
    let created = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!("CREATE SCHEMA {schema}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !created {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI must provide PostgreSQL at 127.0.0.1:5432 (and psql)"
        );
        eprintln!("SKIPPED {test}: PostgreSQL at 127.0.0.1:5432 is not reachable with psql");
        return None;
    }
    Some(format!(
        "postgres://postgres@127.0.0.1:5432/test?options[search_path]={schema}"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// SIGSTOP for 8 s, then SIGCONT.
    Pause,
    /// SIGKILL and an empty server on the same port.
    RestartEmpty,
    /// The configured Redis never answers (nothing listens on its port).
    Unreachable,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    over_budget: AtomicU64,
    unavailable: AtomicU64,
    sent: AtomicU64,
}

/// One client: requests back to back until `stop`; refusals are paced so a fast 503 does not
/// spin.
async fn client_loop(url: String, secret: String, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut body = chat("m", "hello world");
    body["max_tokens"] = json!(5);
    while !stop.load(Ordering::Relaxed) {
        let r = chat_as(&url, &secret, &body).await;
        tally.sent.fetch_add(1, Ordering::Relaxed);
        let status = r.status().as_u16();
        let answer: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        match status {
            200 => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            429 => {
                assert_eq!(answer["error"]["code"], "insufficient_quota", "{answer}");
                tally.over_budget.fetch_add(1, Ordering::Relaxed);
            }
            503 => {
                tally.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            other => panic!("unexpected {other}: {answer}"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `check` every 20 ms until it holds or `secs` pass.
async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

async fn drill(test: &str, fault: Fault, fail_closed: bool) {
    let Some(ledger) = pg_ledger(test) else {
        return;
    };
    let Some(mut redis) = OwnRedis::start(test) else {
        return;
    };
    let redis_url = if fault == Fault::Unreachable {
        // A port nobody listens on: take one and let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("redis://127.0.0.1:{port}")
    } else {
        redis.url()
    };
    let sim = sim("p1", SimProtocol::OpenAi).await;
    let shared = tempfile::tempdir().unwrap();
    let config = format!(
        "{}{}{}[deployments.d]\nprovider = \"p1\"\nupstream_model = \"gpt-4o\"\nprice = {{ input = 10000.0, output = 10000.0 }}\n\n\
         [governance]\nkeys_db = \"sqlite://{}/keys.db\"\nstate = \"{redis_url}\"\nredis_key_prefix = \"bf\"\n\
         on_redis_error = \"{}\"\nfleet_size = {PROCESSES}\n\n[ledger]\nurl = \"{ledger}\"\nflush_interval_ms = 100\n\n\
         [models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        admin_toml(),
        provider_toml("p1", &sim, SimProtocol::OpenAi),
        shared.path().display(),
        if fail_closed { "fail_closed" } else { "fail_open" },
    );
    let gateways: Vec<Gateway> = (0..PROCESSES).map(|_| Gateway::start(&config)).collect();
    let (status, issued) = gateways[0]
        .admin(
            Method::POST,
            "/keys",
            Some(json!({"team": "finance", "name": "batch", "budgets": [{"period": "day", "amount_usd": BUDGET as f64 / 1e9, "mode": "hard"}]})),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let secret = issued["secret"].as_str().unwrap().to_string();
    let key_id = issued["id"].as_str().unwrap().to_string();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..PROCESSES * CLIENTS)
        .map(|i| {
            tokio::spawn(client_loop(
                gateways[i % PROCESSES].url.clone(),
                secret.clone(),
                tally.clone(),
                stop.clone(),
            ))
        })
        .collect();

    match fault {
        Fault::Pause | Fault::RestartEmpty => {
            // A quarter of the budget spent with Redis healthy, then the fault.
            assert!(
                eventually(30, || tally.ok.load(Ordering::Relaxed) >= 15).await,
                "no traffic got through before the fault"
            );
            if fault == Fault::Pause {
                redis.signal("-STOP");
                tokio::time::sleep(Duration::from_secs(8)).await;
                redis.signal("-CONT");
            } else {
                redis.restart_empty();
            }
        }
        Fault::Unreachable => {}
    }
    // Until the budget is used up (or, failing closed without Redis, a fair number of tries).
    let refused = tally.over_budget.load(Ordering::Relaxed);
    let done = eventually(60, || {
        if fault == Fault::Unreachable && fail_closed {
            tally.unavailable.load(Ordering::Relaxed) >= 30
        } else {
            tally.over_budget.load(Ordering::Relaxed) >= refused + 3 * (PROCESSES * CLIENTS) as u64
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(done, "the load did not reach the end of the budget in 60 s");
    let (ok, sent) = (
        tally.ok.load(Ordering::Relaxed),
        tally.sent.load(Ordering::Relaxed),
    );

    // The shared ledger, once every request's record is in (refusals included).
    let (mut spent, mut recorded);
    let complete = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, report) = gateways[0].admin(Method::GET, "/spend?by=key", None).await;
            (recorded, spent) = report["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["group"] == key_id.as_str())
                .map(|r| {
                    (
                        r["requests"].as_u64().unwrap(),
                        r["cost_nanos"].as_i64().unwrap(),
                    )
                })
                .fold((0, 0), |(n, c), (a, b)| (n + a, c + b));
            if recorded >= sent || Instant::now() > deadline {
                break recorded >= sent;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(complete, "{recorded} of {sent} requests reached the ledger");
    eprintln!(
        "{test}: {ok} answered, {} over budget, {} unavailable; spent ${:.2} of ${:.2}",
        tally.over_budget.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
        spent as f64 / 1e9,
        BUDGET as f64 / 1e9
    );
    assert_eq!(
        spent,
        ok as i64 * ACTUAL,
        "the ledger's spend is the answered requests'"
    );
    let bound = BUDGET + (PROCESSES * CLIENTS) as i64 * WORST;
    assert!(
        spent <= bound,
        "{test}: spent ${:.2} against a ${:.2} budget (bound ${:.2}); {ok} answered",
        spent as f64 / 1e9,
        BUDGET as f64 / 1e9,
        bound as f64 / 1e9
    );
    if fault == Fault::Unreachable && fail_closed {
        assert_eq!(ok, 0, "failing closed without Redis serves nothing");
    } else {
        assert!(
            spent >= BUDGET / 2,
            "{test}: only ${:.2} of ${:.2} was spent",
            spent as f64 / 1e9,
            BUDGET as f64 / 1e9
        );
    }

    // No reservation is left behind in Redis.
    if fault != Fault::Unreachable {
        let mut last = Value::Null;
        let mut clean = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !clean && Instant::now() < deadline {
            let (status, report) = gateways[0].admin(Method::GET, "/budgets", None).await;
            if status == 200 {
                let row = report["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["key_id"] == key_id.as_str())
                    .cloned()
                    .unwrap();
                clean = row["open_holds"] == 0 && row["reserved_usd"].as_f64() == Some(0.0);
                last = row;
            }
            if !clean {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(clean, "{test}: reservations left behind: {last}");
    }
}

#[tokio::test]
async fn fail_open_redis_paused_8s_keeps_the_budget() {
    drill("fail_open_redis_paused", Fault::Pause, false).await;
}

#[tokio::test]
async fn fail_closed_redis_paused_8s_keeps_the_budget() {
    drill("fail_closed_redis_paused", Fault::Pause, true).await;
}

#[tokio::test]
async fn fail_open_redis_restarted_empty_keeps_the_budget() {
    drill("fail_open_redis_restarted", Fault::RestartEmpty, false).await;
}

#[tokio::test]
async fn fail_closed_redis_restarted_empty_keeps_the_budget() {
    drill("fail_closed_redis_restarted", Fault::RestartEmpty, true).await;
}

#[tokio::test]
async fn fail_open_redis_unreachable_from_start_keeps_the_budget() {
    drill("fail_open_redis_unreachable", Fault::Unreachable, false).await;
}

#[tokio::test]
async fn fail_closed_redis_unreachable_from_start_serves_nothing() {
    drill("fail_closed_redis_unreachable", Fault::Unreachable, true).await;
}
