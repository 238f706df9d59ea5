//! Safe output against the real binary: client text cannot forge or flood log lines in
//! either log format, and `--help` never prints a secret from the environment.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use switchyard_sim::SimProtocol;

/// Longest line the gateway writes (its `MAX_LINE`, plus the cut marker).
const BOUND: usize = 16 * 1024 + 64;

/// Sends every kind of client-controlled text the gateway may log: CR LF and 100 KB in the
/// model name (both front doors), the routing header, the user agent and the URL.
async fn hostile_traffic(gw: &Gateway) {
    let huge = "x".repeat(100 * 1024);
    let forged = format!("m\r\n2026-01-01T00:00:00Z  INFO forged: line\u{1b}[2J{huge}");
    let r = gw.post("/v1/chat/completions", &chat(&forged, "hi")).await;
    assert_eq!(r.status(), 404);
    let r = gw
        .post("/v1/chat/completions", &chat("m\r\nforged", "hi"))
        .await;
    assert_eq!(r.status(), 404);
    let r = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .header("user-agent", format!("forged {}", "u".repeat(50 * 1024)))
        .body(
            json!({"model": forged, "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .header(
            "x-switchyard-route",
            format!("forged={}", "r".repeat(50 * 1024)),
        )
        .body(chat("m", "hi").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .get(format!("{}/forged%0D%0A{}", gw.url, "p".repeat(10 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A model name the gateway serves still works and is logged as sent.
    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(r.status(), 200);
}

async fn gateway(format: &str) -> (switchyard_sim::RunningSim, Gateway) {
    let upstream = sim("up", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        provider_toml("up", &upstream, SimProtocol::OpenAi),
        deployment_toml("d", "up", "model-up"),
    );
    let gw = Gateway::start_opts(tempfile::tempdir().unwrap(), &config, &[], format);
    (upstream, gw)
}

/// Stops the gateway and returns every line it logged (all of them: the last is written
/// after the ledger flushed).
fn all_lines(gw: &mut Gateway) -> Vec<String> {
    assert_eq!(gw.stop(), Some(0));
    gw.wait_for_text("ledger flushed");
    gw.logs().lines().map(str::to_string).collect()
}

#[tokio::test]
async fn client_text_makes_one_bounded_json_line_per_event() {
    let (_upstream, mut gw) = gateway("json").await;
    hostile_traffic(&gw).await;
    let lines = all_lines(&mut gw);
    let mut finished = 0;
    for line in &lines {
        assert!(line.len() <= BOUND, "a {} byte log line", line.len());
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON event per line ({e}): {line:.200}"));
        if v["fields"]["message"] == "request finished" {
            finished += 1;
            let model = v["fields"]["model"].as_str().unwrap();
            assert!(model.len() <= 2048, "a {} byte model field", model.len());
        }
    }
    // The three 404s, the 400 and the answer each finished once (the unknown URL is no
    // request of a key).
    assert_eq!(finished, 5, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("forged")),
        "client text was logged"
    );
}

#[tokio::test]
async fn client_text_makes_one_bounded_human_line_per_event() {
    let (_upstream, mut gw) = gateway("human").await;
    hostile_traffic(&gw).await;
    let lines = all_lines(&mut gw);
    let mut finished = 0;
    for line in &lines {
        assert!(line.len() <= BOUND, "a {} byte log line", line.len());
        // Every line is an event of its own: it starts with the event's timestamp.
        assert!(
            line.len() > 20 && line.as_bytes()[..4].iter().all(u8::is_ascii_digit),
            "a line that is no event of its own: {line:.200}"
        );
        assert!(
            !line.contains('\u{1b}'),
            "a terminal escape reached the log"
        );
        if line.contains("request finished") {
            finished += 1;
        }
    }
    assert_eq!(finished, 5, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("forged")),
        "client text was logged"
    );
}

/// Every subcommand path of the binary, from its own `--help`.
fn subcommands(path: &[&str]) -> Vec<Vec<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{path:?} --help failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut found = vec![path.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    let mut in_commands = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                in_commands = false;
                continue;
            }
            let name = line.split_whitespace().next().unwrap();
            if name != "help" {
                let mut sub: Vec<&str> = path.to_vec();
                sub.push(name);
                found.extend(subcommands(&sub));
            }
        }
    }
    found
}

#[test]
fn help_of_every_subcommand_never_prints_secrets_from_the_environment() {
    let secret = "s3cr3t-from-env-0123456789";
    let url = format!("postgres://user:{secret}@db.internal/ledger");
    let commands = subcommands(&[]);
    assert!(commands.len() > 10, "{commands:?}");
    // Every environment variable any `--help` names, set to a secret value.
    let mut vars = std::collections::BTreeSet::new();
    for path in &commands {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(path)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        for part in text.split("[env: ").skip(1) {
            let name = part.split([']', '=']).next().unwrap().to_string();
            // The variables that carry credentials: tokens, keys, secrets, database and
            // state URLs (which may hold passwords).
            if ["TOKEN", "KEY", "SECRET", "URL", "DB", "STATE"]
                .iter()
                .any(|w| name.contains(w))
            {
                vars.insert(name);
            }
        }
    }
    for name in [
        "SWITCHYARD_ADMIN_TOKEN",
        "SWITCHYARD_KEYS_DB",
        "SWITCHYARD_LEDGER_URL",
    ] {
        assert!(
            vars.contains(name),
            "{name} is not named by any --help: {vars:?}"
        );
    }
    for path in &commands {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(path).arg("--help");
        for name in &vars {
            let value = if name.contains("URL") || name.contains("DB") {
                url.clone()
            } else {
                secret.to_string()
            };
            cmd.env(name, value);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !text.contains(secret),
            "`switchyard {} --help` printed a secret from the environment:\n{text}",
            path.join(" ")
        );
    }
}

/// A gateway whose only provider and deployment have names a client must never see.
async fn named_gateway() -> (switchyard_sim::RunningSim, Gateway) {
    let upstream = sim("hidden-provider-x", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}[breaker]\nconsecutive_failures = 1000\nmin_requests = 1000\n\n[models.m]\ndeployments = [\"hidden-deployment-y\"]\n",
        server_toml(""),
        provider_toml("hidden-provider-x", &upstream, SimProtocol::OpenAi),
        deployment_toml("hidden-deployment-y", "hidden-provider-x", "model-up"),
    );
    (upstream, Gateway::start(&config))
}

fn assert_hides_internals(text: &str) {
    for secret in [
        "hidden-provider-x",
        "hidden-deployment-y",
        "answered",
        "sim-key",
    ] {
        assert!(!text.contains(secret), "the client saw '{secret}': {text}");
    }
}

#[tokio::test]
async fn clients_get_stable_errors_without_provider_names_or_upstream_text() {
    let (upstream, gw) = named_gateway().await;
    // Mid-stream: the error event names the failure, not the provider.
    // The simulator says its own name in replies unless told another.
    set_faults(
        &upstream,
        json!({"error_after_tokens": 1, "speaker": "sim"}),
    )
    .await;
    let mut body = chat("m", "one two three four");
    body["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"error\""), "{text}");
    assert_hides_internals(&text);
    for status in [401, 500, 503] {
        set_faults(
            &upstream,
            json!({"fail_always": true, "fail_status": status}),
        )
        .await;
        let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
        assert!(r.status().is_server_error(), "{status}: {}", r.status());
        let text = r.text().await.unwrap();
        assert_hides_internals(&text);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            !v["error"]["message"].as_str().unwrap().is_empty(),
            "{text}"
        );
    }
    // The operator still learns which provider said what.
    gw.wait_for_text("hidden-provider-x");
}

#[tokio::test]
async fn an_upstream_400_about_the_request_still_reaches_the_client() {
    let (upstream, gw) = named_gateway().await;
    set_faults(&upstream, json!({"context_window": 2})).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            &chat("m", "a prompt longer than two tokens"),
        )
        .await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert_hides_internals(&text);
    let v: Value = serde_json::from_str(&text).unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("maximum context length"), "{message}");
}
