//! `switchyard demo --traffic` serves its own steady stream of requests from the simulated fleet.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn demo_traffic_flows_through_several_clouds() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "--log-format",
            "json",
            "demo",
            "--traffic",
            "--rps",
            "40",
            "--listen",
            "127.0.0.1:0",
            "--config-out",
        ])
        .arg(dir.path().join("demo.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // A watchdog bounds the test: if the demo goes quiet, it is killed and reading ends.
    let pid = child.id().to_string();
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if watchdog
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            let _ = Command::new("kill").arg(&pid).status();
        }
    });
    let mut ok = 0;
    let mut providers = BTreeSet::new();
    let mut eu_served = BTreeSet::new();
    // Reads until enough requests finished; the demo runs until killed, so this is bounded
    // by the count, and the process is killed whatever happens.
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let fields = &v["fields"];
        if fields["message"] == "request finished" {
            assert_eq!(fields["outcome"], "ok", "{line}");
            ok += 1;
            let provider = fields["provider"].as_str().unwrap_or_default().to_string();
            if fields["key"] == "demo-eu" {
                eu_served.insert(provider.clone());
            }
            providers.insert(provider);
            if ok >= 60 {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = done.send(());
    let _ = guard.join();
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
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "--log-format",
            "json",
            "demo",
            "--traffic",
            "--rps",
            "10",
            "--listen",
            "127.0.0.1:0",
            "--config-out",
        ])
        .arg(dir.path().join("demo.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if watchdog
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            let _ = Command::new("kill").arg(&pid).status();
        }
    });
    let mut failed_over = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let f = &v["fields"];
        if f["message"] == "request finished"
            && f["outcome"] == "ok"
            && f["attempts"].as_u64() > Some(1)
        {
            failed_over = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = done.send(());
    let _ = guard.join();
    assert!(
        failed_over.is_some(),
        "no request failed over within a minute of --traffic"
    );
}
