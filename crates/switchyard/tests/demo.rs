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
            providers.insert(fields["provider"].as_str().unwrap_or_default().to_string());
            if ok >= 20 {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = done.send(());
    let _ = guard.join();
    assert!(ok >= 20, "only {ok} demo requests finished");
    assert!(providers.len() >= 2, "traffic reached only {providers:?}");
}
