//! Every model the shipped configs use has a price: `config/example.toml` and the demo's
//! generated config pass `switchyard check` without a "no price" warning (a deployment without
//! its own price is priced from the shipped table, which must know its model).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `switchyard check` on `config` with `env`; its stdout.
fn check(config: &Path, env: &[(String, String)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}: {stdout}", config.display());
    stdout
}

/// The environment variables a config names in `*_env = "NAME"` lines, each with its own
/// value (client keys must differ).
fn env_of(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            if !key.trim().ends_with("_env") {
                return None;
            }
            let var = value
                .split('#')
                .next()?
                .trim()
                .trim_matches('"')
                .to_string();
            Some((var.clone(), format!("test-value-of-{var}")))
        })
        .collect()
}

#[test]
fn every_deployment_of_the_example_config_has_a_price() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
    let env = env_of(&std::fs::read_to_string(&path).unwrap());
    assert!(!env.is_empty());
    let out = check(&path, &env);
    assert!(!out.contains("no price"), "{out}");
}

#[test]
fn every_deployment_of_the_demo_has_a_price() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("demo.toml");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["demo", "--listen", "127.0.0.1:0", "--config-out"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The demo writes its config before it serves; it runs until killed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        if text.contains("[models.") || Instant::now() > deadline {
            // One more short wait so a write in progress is complete.
            std::thread::sleep(Duration::from_millis(200));
            break std::fs::read_to_string(&config).unwrap_or_default();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(
        text.contains("[deployments."),
        "the demo wrote no config: {text}"
    );
    let out = check(&config, &env_of(&text));
    assert!(!out.contains("no price"), "{out}");
}
