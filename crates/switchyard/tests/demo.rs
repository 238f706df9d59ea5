//! `switchyard demo --traffic` serves its own steady stream of requests from the simulated fleet.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs `switchyard demo --traffic --rps RPS` and hands each JSON log line to `done` until it
/// says so; a watchdog kills the demo after 60 s, which ends the reading too.
fn watch_demo(rps: &str, mut done: impl FnMut(&Value) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--log-format", "json", "demo", "--traffic", "--rps", rps])
        .args(["--listen", "127.0.0.1:0", "--config-out"])
        .arg(dir.path().join("demo.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    let (finished, watchdog) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if watchdog
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            let _ = Command::new("kill").arg(&pid).status();
        }
    });
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if done(&v["fields"]) {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = finished.send(());
    let _ = guard.join();
}

#[test]
fn demo_traffic_flows_through_several_clouds() {
    let mut ok = 0;
    let mut providers = BTreeSet::new();
    let mut eu_served = BTreeSet::new();
    // Bounded by the count, and by the watchdog if the demo goes quiet.
    watch_demo("40", |fields| {
        if fields["message"] == "request finished" {
            assert_eq!(fields["outcome"], "ok", "{fields}");
            ok += 1;
            let provider = fields["provider"].as_str().unwrap_or_default().to_string();
            if fields["key"] == "demo-eu" {
                eu_served.insert(provider.clone());
            }
            providers.insert(provider);
        }
        ok >= 60
    });
    assert!(ok >= 60, "only {ok} demo requests finished");
    // Every protocol of the fleet serves some of it: OpenAI-shaped, Anthropic, Bedrock, Gemini.
    for p in [
        "openai-us",
        "anthropic-us",
        "bedrock-us-east-1",
        "gemini-api",
        "coreweave-vllm",
    ] {
        assert!(
            providers.contains(p),
            "traffic never reached {p}: {providers:?}"
        );
    }
    // The EU-only key's requests ran in the EU, and only there.
    assert!(!eu_served.is_empty(), "no EU-only request finished");
    let eu = ["azure-swedencentral", "bedrock-eu-central-1"];
    assert!(
        eu_served.iter().all(|p| eu.contains(&p.as_str())),
        "{eu_served:?}"
    );
}

/// With faults on, the demo's first outage (20 s in) makes requests fail over within a minute.
#[test]
fn demo_faults_show_failovers_within_a_minute() {
    let mut failed_over = false;
    watch_demo("10", |f| {
        failed_over = f["message"] == "request finished"
            && f["outcome"] == "ok"
            && f["attempts"].as_u64() > Some(1);
        failed_over
    });
    assert!(
        failed_over,
        "no request failed over within a minute of --traffic"
    );
}
