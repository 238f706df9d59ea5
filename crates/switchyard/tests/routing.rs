//! Per-request routing preferences and policy constraints, end to end: the header and the
//! body extension steer the request, bad values are a clear 400, the extension never reaches
//! the upstream, and when nothing is eligible the error says which rule removed what.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::SimProtocol;

async fn setup() -> (
    switchyard_sim::RunningSim,
    switchyard_sim::RunningSim,
    Gateway,
) {
    let us = sim("us", SimProtocol::OpenAi).await;
    let eu = sim("eu", SimProtocol::OpenAi).await;
    let eu_provider = provider_toml("eu", &eu, SimProtocol::OpenAi)
        .replace("jurisdiction = \"us\"", "jurisdiction = \"eu\"");
    let config = format!(
        "{}{}{}{}{}[data_classes.confidential]\njurisdictions = [\"eu\"]\nrequire_tags = [\"zdr\"]\n\n[models.m]\ndeployments = [\"d-us\", \"d-eu\"]\n",
        server_toml("").replace(
            "[[keys]]\nname = \"test\"\nsecret = \"sk-test-key\"\n",
            "[[keys]]\nname = \"test\"\nsecret = \"sk-test-key\"\n\n[[keys]]\nname = \"legal\"\nsecret = \"sk-legal\"\ndata_class = \"confidential\"\n",
        ),
        provider_toml("us", &us, SimProtocol::OpenAi),
        eu_provider,
        deployment_toml("d-us", "us", "gpt-4o"),
        deployment_toml("d-eu", "eu", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    (us, eu, gw)
}

async fn post(gw: &Gateway, key: &str, header: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(h) = header {
        req = req.header("x-switchyard-route", h);
    }
    req.send().await.unwrap()
}

async fn error_message(r: reqwest::Response) -> String {
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    v["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_header_and_the_body_extension_steer_the_request() {
    let (_us, eu, gw) = setup().await;
    let r = post(&gw, KEY, None, &chat("m", "hi")).await;
    assert_eq!(
        r.headers()["x-switchyard-provider"],
        "us",
        "priority order by default"
    );
    assert!(r.headers()["x-switchyard-cost"]
        .to_str()
        .unwrap()
        .starts_with("0."));

    let r = post(&gw, KEY, Some("only=d-eu"), &chat("m", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "eu");

    let mut body = chat("m", "hi");
    body["switchyard"] = json!({"order": ["d-eu", "d-us"]});
    let r = post(&gw, KEY, None, &body).await;
    assert_eq!(r.headers()["x-switchyard-provider"], "eu");
    let seen = stats(&eu).await;
    assert!(
        seen["last_request"]["body"].get("switchyard").is_none(),
        "the extension stays in the gateway: {seen}"
    );

    // The header wins over the body.
    let r = post(&gw, KEY, Some("order=d-us,d-eu"), &body).await;
    assert_eq!(r.headers()["x-switchyard-provider"], "us");
}

#[tokio::test]
async fn bad_preferences_are_a_clear_400() {
    let (_us, _eu, gw) = setup().await;
    for (header, needle) in [
        ("colour=blue", "unknown routing preference 'colour'"),
        ("sort=vibes", "sort"),
        ("only=nowhere", "'nowhere'"),
    ] {
        let r = post(&gw, KEY, Some(header), &chat("m", "hi")).await;
        assert_eq!(r.status(), 400, "{header}");
        let message = error_message(r).await;
        assert!(message.contains(needle), "{header}: {message}");
    }
    let mut body = chat("m", "hi");
    body["switchyard"] = json!({"ordr": ["d-eu"]});
    let r = post(&gw, KEY, None, &body).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_data_class_policy_keeps_requests_in_its_jurisdiction_and_says_why_nothing_fits() {
    let (us, eu, gw) = setup().await;
    // The EU deployment has no zdr tag: the confidential key has nowhere to go.
    let r = post(&gw, "sk-legal", None, &chat("m", "secret stuff")).await;
    assert_eq!(r.status(), 403);
    let message = error_message(r).await;
    assert!(
        message.contains("d-us") && message.contains("d-eu"),
        "{message}"
    );
    assert!(
        message.contains("jurisdiction") && message.contains("zdr"),
        "{message}"
    );
    assert_eq!(stats(&us).await["requests"], 0);
    assert_eq!(stats(&eu).await["requests"], 0);
}

#[tokio::test]
async fn route_explain_reads_the_live_health_of_a_running_gateway() {
    let us = sim("us", SimProtocol::OpenAi).await;
    let eu = sim("eu", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}{}{}{}[models.m]\ndeployments = [\"d-us\", \"d-eu\"]\n",
        server_toml(""),
        admin_toml(),
        provider_toml("us", &us, SimProtocol::OpenAi),
        provider_toml("eu", &eu, SimProtocol::OpenAi),
        deployment_toml("d-us", "us", "gpt-4o"),
        deployment_toml("d-eu", "eu", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    set_faults(&us, json!({"fail_always": true, "fail_status": 500})).await;
    for _ in 0..8 {
        assert_eq!(post(&gw, KEY, None, &chat("m", "hi")).await.status(), 200);
    }
    let explain = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["route", "explain", "--model", "m"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let live = explain(&["--gateway", &gw.url, "--admin-token", ADMIN]);
    let us_row = live
        .lines()
        .find(|l| l.contains("d-us"))
        .unwrap_or_else(|| panic!("{live}"));
    assert!(
        us_row.contains("open"),
        "the failing deployment's breaker is open: {live}"
    );
    let fresh = explain(&["--config", gw.config_path().to_str().unwrap()]);
    let us_row = fresh.lines().find(|l| l.contains("d-us")).unwrap();
    assert!(
        !us_row.contains("open"),
        "a config file alone has fresh health: {fresh}"
    );
}
