//! End-to-end: the real binary, real HTTP, simulated providers.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::SimProtocol;

/// One OpenAI and one Azure provider; model `m` prefers the first, `az` is Azure only.
async fn two_provider_setup() -> (
    switchyard_sim::RunningSim,
    switchyard_sim::RunningSim,
    String,
) {
    let p1 = sim("p1", SimProtocol::OpenAi).await;
    let p2 = sim("p2", SimProtocol::AzureOpenAi).await;
    let config = format!(
        "{}{}{}{}{}{}{}[models.m]\ndeployments = [\"d1\", \"d2\"]\n\n[models.az]\ndeployments = [\"d2\"]\n\n[models.solo]\ndeployments = [\"d1\"]\n\n[models.solo2]\ndeployments = [\"d1b\"]\n\n[models.solo3]\ndeployments = [\"d1c\"]\n",
        server_toml(""),
        provider_toml("p1", &p1, SimProtocol::OpenAi),
        provider_toml("p2", &p2, SimProtocol::AzureOpenAi),
        deployment_toml("d1", "p1", "gpt-4o-2024-08-06"),
        deployment_toml("d2", "p2", "gpt4o-prod"),
        deployment_toml("d1b", "p1", "gpt-4o-2024-08-06"),
        deployment_toml("d1c", "p1", "gpt-4o-2024-08-06"),
    );
    (p1, p2, config)
}

#[tokio::test]
async fn non_streaming_chat_passes_through_with_the_upstream_model_name() {
    let (p1, _p2, config) = two_provider_setup().await;
    let gw = Gateway::start(&config);
    let r = gw
        .post("/v1/chat/completions", &chat("m", "hello brave new world"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "p1");
    assert_eq!(r.headers()["x-switchyard-deployment"], "d1");
    assert_eq!(r.headers()["x-switchyard-attempts"], "1");
    assert!(r.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let body: Value = r.json_value().await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "p1 says: hello brave new world"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // 4 words + 1 for the message; the reply has 6 words.
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens"], 6);
    let seen = stats(&p1).await;
    assert_eq!(
        seen["last_request"]["body"]["model"], "gpt-4o-2024-08-06",
        "{seen}"
    );
    assert!(
        seen["last_request"]["body"].get("stream_options").is_none(),
        "{seen}"
    );
}

#[tokio::test]
async fn streaming_honours_include_usage_and_always_asks_upstream_for_it() {
    let (p1, _p2, config) = two_provider_setup().await;
    let gw = Gateway::start(&config);
    for include_usage in [false, true] {
        let mut req = chat("m", "stream me three words");
        req["stream"] = json!(true);
        if include_usage {
            req["stream_options"] = json!({"include_usage": true});
        }
        let r = gw.post("/v1/chat/completions", &req).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let events = sse_data(r).await;
        assert_eq!(events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "p1 says: stream me three words");
        let usage: Vec<&Value> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
        if include_usage {
            assert_eq!(usage.len(), 1, "exactly one usage chunk");
            assert_eq!(usage[0]["choices"], json!([]));
            assert_eq!(usage[0]["usage"]["prompt_tokens"], 5);
            assert_eq!(usage[0]["usage"]["completion_tokens"], 6);
        } else {
            assert!(
                usage.is_empty(),
                "usage chunk must not leak to a client that did not ask"
            );
        }
        let seen = stats(&p1).await;
        assert_eq!(
            seen["last_request"]["body"]["stream_options"]["include_usage"],
            true
        );
    }
}

#[tokio::test]
async fn azure_streams_lose_the_prompt_filter_preamble() {
    let (_p1, p2, config) = two_provider_setup().await;
    let gw = Gateway::start(&config);
    let mut req = chat("az", "hello azure");
    req["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", &req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-cloud"], "azure");
    let events = sse_data(r).await;
    for e in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(e).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk", "{e}");
    }
    assert_eq!(stats(&p2).await["requests"], 1);
}

#[tokio::test]
async fn bad_inputs_get_the_right_status_and_an_openai_error() {
    let (_p1, _p2, config) = two_provider_setup().await;
    let gw = Gateway::start(
        &format!("{config}\n").replace("[server]\n", "[server]\nmax_body_bytes = 4096\n"),
    );
    let url = format!("{}/v1/chat/completions", gw.url);
    let big = format!(
        "{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(5000)
    );
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        ("invalid json", Some(KEY), b"{\"model\": ".to_vec(), 400),
        ("not an object", Some(KEY), b"[1,2]".to_vec(), 400),
        (
            "wrong type",
            Some(KEY),
            br#"{"model":"m","messages":"hi"}"#.to_vec(),
            400,
        ),
        (
            "wrong temperature type",
            Some(KEY),
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#
                .to_vec(),
            400,
        ),
        (
            "empty messages",
            Some(KEY),
            br#"{"model":"m","messages":[]}"#.to_vec(),
            400,
        ),
        (
            "unknown role",
            Some(KEY),
            br#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#.to_vec(),
            400,
        ),
        (
            "unknown content part",
            Some(KEY),
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"hologram","x":1}]}]}"#
                .to_vec(),
            400,
        ),
        (
            "invalid utf-8",
            Some(KEY),
            b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"
                .to_vec(),
            400,
        ),
        (
            "unknown model",
            Some(KEY),
            br#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#.to_vec(),
            404,
        ),
        (
            "missing key",
            None,
            br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.to_vec(),
            401,
        ),
        (
            "wrong key",
            Some("sk-wrong"),
            br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.to_vec(),
            401,
        ),
        ("oversized body", Some(KEY), big.into_bytes(), 413),
    ];
    for (name, key, body, status) in cases {
        let mut req = client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
        assert_eq!(r.headers()["content-type"], "application/json", "{name}");
        let v: Value = r.json_value().await;
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {v}"));
        assert!(!message.is_empty(), "{name}");
        assert!(v["error"]["type"].is_string(), "{name}: {v}");
        assert!(
            v["error"].as_object().unwrap().contains_key("param"),
            "{name}: {v}"
        );
        assert!(
            v["error"].as_object().unwrap().contains_key("code"),
            "{name}: {v}"
        );
    }
    // Unknown paths and methods answer in the same format.
    let r = client()
        .get(format!("{}/v1/nothing", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.json_value().await["error"]["message"].is_string());
}

#[tokio::test]
async fn upstream_failures_map_to_client_statuses() {
    let (p1, _p2, config) = two_provider_setup().await;
    let config = config.replace(
        "reload_poll_ms = 100\n",
        "reload_poll_ms = 100\nmax_attempts = 1\n[server.timeouts]\nfirst_byte_ms = 500\ntotal_ms = 1000\n",
    );
    let gw = Gateway::start(&config);

    set_faults(
        &p1,
        json!({"fail_next": 1, "fail_status": 429, "retry_after_s": 7}),
    )
    .await;
    let r = gw.post("/v1/chat/completions", &chat("solo", "x")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(r.json_value().await["error"]["type"], "requests");
    // The deployment now cools down: the gateway answers 429 itself, without calling upstream.
    let before = stats(&p1).await["requests"].as_u64().unwrap();
    let r = gw.post("/v1/chat/completions", &chat("solo", "x")).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=7).contains(&wait), "{wait}");
    assert_eq!(stats(&p1).await["requests"].as_u64().unwrap(), before);

    set_faults(&p1, json!({"fail_next": 1, "fail_status": 503})).await;
    let r = gw.post("/v1/chat/completions", &chat("solo2", "x")).await;
    assert_eq!(r.status(), 502);

    set_faults(&p1, json!({"hang": true})).await;
    let r = gw.post("/v1/chat/completions", &chat("solo3", "x")).await;
    assert_eq!(r.status(), 504);
    let mut req = chat("solo3", "x");
    req["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", &req).await;
    assert_eq!(r.status(), 504);
}

#[tokio::test]
async fn a_dead_provider_is_failed_over_invisibly() {
    let (p1, p2, config) = two_provider_setup().await;
    let gw = Gateway::start(&config);
    for i in 0..10 {
        let r = gw
            .post("/v1/chat/completions", &chat("m", &format!("before {i}")))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-provider"], "p1");
    }
    p1.shutdown().await;
    let mut served_by_p2 = 0;
    for i in 0..20 {
        let mut req = chat("m", &format!("after {i}"));
        req["stream"] = json!(i % 2 == 0);
        let r = gw.post("/v1/chat/completions", &req).await;
        assert_eq!(r.status(), 200, "request {i} after the provider died");
        if r.headers()["x-switchyard-provider"] == "p2" {
            served_by_p2 += 1;
        }
        let body = r.text().await.unwrap();
        let expected = if i % 2 == 0 {
            "\"p2 \""
        } else {
            "p2 says: after"
        };
        assert!(body.contains(expected), "{body}");
    }
    assert_eq!(served_by_p2, 20);
    assert_eq!(stats(&p2).await["requests"], 20);
}

#[tokio::test]
async fn a_stream_failing_before_its_first_event_fails_over() {
    let (p1, p2, config) = two_provider_setup().await;
    // A 500 fails over at once under this table (the default retries it in place first).
    let gw = Gateway::start(&config.replace(
        "[models.m]\ndeployments = [\"d1\", \"d2\"]\n",
        "[models.m]\ndeployments = [\"d1\", \"d2\"]\nretry = { on = { server_error = \"failover\" } }\n",
    ));
    set_faults(&p1, json!({"fail_next": 1, "fail_status": 500})).await;
    let mut req = chat("m", "fail over please");
    req["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", &req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-attempts"], "2");
    assert_eq!(r.headers()["x-switchyard-provider"], "p2");
    let events = sse_data(r).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(stats(&p2).await["requests"], 1);
}

#[tokio::test]
async fn a_stream_cut_after_its_first_event_ends_with_an_error_not_done() {
    let (p1, p2, config) = two_provider_setup().await;
    let gw = Gateway::start(&config);
    set_faults(&p1, json!({"drop_after_tokens": 2})).await;
    let mut req = chat("m", "this answer will be cut short");
    req["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", &req).await;
    assert_eq!(r.status(), 200);
    let events = sse_data(r).await;
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{last}");
    assert_eq!(
        stats(&p2).await["requests"],
        0,
        "no second upstream call after the first byte"
    );
}

#[tokio::test]
async fn embeddings_pass_through() {
    let (p1, _p2, config) = two_provider_setup().await;
    let gw = Gateway::start(&config);
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "m", "input": ["one two", "three"], "encoding_format": "float"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json_value().await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    assert_eq!(
        stats(&p1).await["last_request"]["body"]["model"],
        "gpt-4o-2024-08-06"
    );
}

#[tokio::test]
async fn models_lists_what_the_key_may_use() {
    let (_p1, _p2, config) = two_provider_setup().await;
    let config = config.replace(
        "[[keys]]\nname = \"test\"\nsecret = \"sk-test-key\"\n",
        "[[keys]]\nname = \"test\"\nsecret = \"sk-test-key\"\nmodels = [\"m\", \"a*\"]\n",
    );
    let gw = Gateway::start(&config);
    let r = client()
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json_value().await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["az", "m"]);
    let r = gw.post("/v1/chat/completions", &chat("solo", "x")).await;
    assert_eq!(
        r.status(),
        404,
        "a model outside the key's list looks like an unknown one"
    );
    let r = client()
        .get(format!("{}/v1/models/az", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json_value().await["id"], "az");
    assert_eq!(
        client()
            .get(format!("{}/healthz", gw.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(format!("{}/readyz", gw.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn config_reloads_on_change_and_on_sighup_and_rejects_bad_configs() {
    let (_p1, _p2, config) = two_provider_setup().await;
    let mut gw = Gateway::start(&config);
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("extra", "x"))
            .await
            .status(),
        404
    );

    gw.rewrite_config(&format!(
        "{config}\n[models.extra]\ndeployments = [\"d1\"]\n"
    ));
    gw.wait_for_log("config reloaded");
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("extra", "x"))
            .await
            .status(),
        200
    );

    gw.rewrite_config(&format!(
        "{config}\n[models.broken]\ndeployments = [\"missing\"]\n"
    ));
    gw.wait_for_log("config reload rejected");
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("extra", "x"))
            .await
            .status(),
        200,
        "the old config keeps serving"
    );

    gw.rewrite_config(&config);
    gw.wait_for_log("config reloaded");
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("extra", "x"))
            .await
            .status(),
        404
    );

    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    gw.wait_for_log("config reloaded");
}

#[test]
fn check_reports_every_problem_with_location_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[providers.p]\nkind = \"openai\"\nbase_url = \"ftp://x\"\napi_key_env = \"SWITCHYARD_TEST_UNSET_VAR\"\ncloud = \"aws\"\nregion = \"us-east-1\"\njurisdiction = \"us\"\n\n[models.m]\ndeployments = [\"ghost\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check")
        .arg(&path)
        .env_remove("SWITCHYARD_TEST_UNSET_VAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("providers.p.base_url"), "{text}");
    assert!(
        text.contains(
            "providers.p.api_key_env: environment variable SWITCHYARD_TEST_UNSET_VAR is not set"
        ),
        "{text}"
    );
    assert!(
        text.contains("models.m.deployments[0]: unknown deployment 'ghost'"),
        "{text}"
    );
    assert!(text.contains("hint:"), "{text}");
    assert!(text.contains("3 error(s)"), "{text}");
}

/// `reqwest` without its `json` feature: parse the body ourselves.
trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    }
}

/// The most common setup mistake, an OpenAI-shaped base_url without `/v1`, is named in the
/// log when the provider answers 404.
#[tokio::test]
async fn a_provider_answering_404_points_at_its_base_url_in_the_log() {
    let s = sim("p1", SimProtocol::OpenAi).await;
    let config = format!(
        "{}[providers.p1]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{UPSTREAM_KEY}\"\ncloud = \"azure\"\nregion = \"r\"\njurisdiction = \"us\"\n\n{}[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        s.base_url(),
        deployment_toml("d", "p1", "gpt-4o"),
    );
    let mut gw = Gateway::start(&config);
    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert!(!r.status().is_success());
    let line = gw.wait_for_line("the failure's log line", |v| {
        v.to_string().contains("check provider 'p1' base_url")
    });
    assert!(line.to_string().contains("/v1"), "{line}");
}
