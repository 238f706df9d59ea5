//! The retry table per error class and the per-model attempt timeouts, end to end: the real
//! binary against simulated providers, asserting where each request was served and how many
//! upstream requests each provider saw (never wall-clock time).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchyard_ledger::Outcome;
use switchyard_sim::{RunningSim, SimProtocol};
use switchyard_types::ErrorKind;

fn anthropic_toml(name: &str, sim: &RunningSim) -> String {
    format!(
        "[providers.{name}]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"{UPSTREAM_KEY}\"\ncloud = \"anthropic\"\nregion = \"us\"\njurisdiction = \"us\"\n\n",
        sim.base_url()
    )
}

/// Upstream requests a simulated provider received.
async fn requests(sim: &RunningSim) -> u64 {
    stats(sim).await["requests"].as_u64().unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()[name].to_str().unwrap()
}

async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// A gateway over OpenAI-shaped sims `a` and `b` (deployments `d-a`, `d-b`), with `models`.
async fn two_sims(protocol_a: SimProtocol, models: &str) -> (RunningSim, RunningSim, Gateway) {
    let a = sim("a", protocol_a).await;
    let b = sim("b", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}{}{}{models}",
        server_toml(""),
        provider_toml("a", &a, protocol_a),
        provider_toml("b", &b, SimProtocol::OpenAi),
        deployment_toml("d-a", "a", "gpt-4o"),
        deployment_toml("d-b", "b", "gpt-4o"),
    );
    (a, b, Gateway::start(&config))
}

#[tokio::test]
async fn one_transient_500_is_retried_on_the_same_deployment() {
    let (a, _b, gw) = two_sims(SimProtocol::OpenAi, "[models.m]\ndeployments = [\"d-a\"]\n").await;
    set_faults(&a, json!({"fail_next": 1, "fail_status": 500})).await;
    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-deployment"), "d-a");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    assert_eq!(requests(&a).await, 2, "the 500 and its retry");
}

#[tokio::test]
async fn a_short_retry_after_on_the_preferred_deployment_is_waited_out_there() {
    let (a, b, gw) = two_sims(
        SimProtocol::OpenAi,
        "[models.m]\ndeployments = [\"d-a\", \"d-b\"]\n",
    )
    .await;
    set_faults(
        &a,
        json!({"fail_next": 1, "fail_status": 429, "retry_after_s": 1}),
    )
    .await;
    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-deployment"), "d-a");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    assert_eq!((requests(&a).await, requests(&b).await), (2, 0));
}

#[tokio::test]
async fn a_content_filter_400_is_one_attempt_and_the_client_sees_the_providers_code() {
    let (a, b, gw) = two_sims(
        SimProtocol::AzureOpenAi,
        "[models.m]\ndeployments = [\"d-a\", \"d-b\"]\n",
    )
    .await;
    set_faults(&a, json!({"content_filter": true})).await;
    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(r.status(), 400);
    let v = json_of(r).await;
    assert_eq!(v["error"]["code"], "content_filter", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("content management policy"), "{message}");
    assert_eq!((requests(&a).await, requests(&b).await), (1, 0));
}

#[tokio::test]
async fn an_upstream_401_fails_over_and_is_never_retried_on_the_same_deployment() {
    let a = sim("a", SimProtocol::OpenAi).await;
    let b = sim("b", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}{}{}[models.m]\ndeployments = [\"d-a\", \"d-b\"]\n",
        server_toml(""),
        provider_toml("a", &a, SimProtocol::OpenAi).replace(
            &format!("api_key = \"{UPSTREAM_KEY}\""),
            "api_key = \"wrong\""
        ),
        provider_toml("b", &b, SimProtocol::OpenAi),
        deployment_toml("d-a", "a", "gpt-4o"),
        deployment_toml("d-b", "b", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-deployment"), "d-b");
    assert_eq!((requests(&a).await, requests(&b).await), (1, 1));
}

#[tokio::test]
async fn a_context_length_400_goes_to_the_context_fallback_or_reaches_the_client_with_its_code() {
    // The small model's upstream speaks Anthropic ("prompt is too long"), so the OpenAI
    // front door's code comes from the error kind, not from the upstream's words.
    let small = sim("small", SimProtocol::Anthropic).await;
    let large = sim("large", SimProtocol::OpenAi).await;
    set_faults(&small, json!({"context_window": 3})).await;
    let config = format!(
        "{}{}{}{}{}{}",
        server_toml(""),
        anthropic_toml("small", &small),
        provider_toml("large", &large, SimProtocol::OpenAi),
        deployment_toml("d-small", "small", "claude-sonnet-4"),
        deployment_toml("d-large", "large", "gpt-4.1"),
        "[models.m]\ndeployments = [\"d-small\"]\ncontext_fallbacks = [\"big\"]\n\n\
         [models.m-alone]\ndeployments = [\"d-small\"]\n\n\
         [models.big]\ndeployments = [\"d-large\"]\n",
    );
    let mut gw = Gateway::start(&config);
    let long = "one two three four five six";
    let r = gw.post("/v1/chat/completions", &chat("m", long)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-deployment"), "d-large");
    assert_eq!(json_of(r).await["model"], "gpt-4.1");
    // A short prompt stays on the model itself.
    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(header(&r, "x-switchyard-deployment"), "d-small");

    let r = gw
        .post("/v1/chat/completions", &chat("m-alone", long))
        .await;
    assert_eq!(r.status(), 400);
    let v = json_of(r).await;
    assert_eq!(v["error"]["code"], "context_length_exceeded", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let r = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(json!({"model": "m-alone", "max_tokens": 10, "messages": [{"role": "user", "content": long}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v = json_of(r).await;
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("prompt is too long: 7 tokens > 3 maximum"),
        "{message}"
    );
    // Each too-long request reached the small model once; only the fallback reached `large`.
    assert_eq!((requests(&small).await, requests(&large).await), (4, 1));

    assert_eq!(gw.stop(), Some(0));
    let records = gw.ledger().await;
    let fell_back = &records[0].record;
    let tried: Vec<_> = fell_back
        .attempts
        .iter()
        .map(|a| (&*a.deployment, a.error_kind))
        .collect();
    assert_eq!(
        tried,
        [
            ("d-small", Some(ErrorKind::ContextLengthExceeded)),
            ("d-large", None)
        ]
    );
    assert_eq!(
        records[2].record.outcome,
        Outcome::Error(ErrorKind::ContextLengthExceeded)
    );
}

#[tokio::test]
async fn two_models_with_different_attempt_timeouts_meet_the_same_hanging_upstream() {
    let hang = sim("hang", SimProtocol::OpenAi).await;
    let ok = sim("ok", SimProtocol::OpenAi).await;
    set_faults(&hang, json!({"hang": true})).await;
    let config = format!(
        "{}{}{}{}{}{}",
        server_toml(""),
        provider_toml("hang", &hang, SimProtocol::OpenAi),
        provider_toml("ok", &ok, SimProtocol::OpenAi),
        deployment_toml("d-hang", "hang", "gpt-4o"),
        deployment_toml("d-ok", "ok", "gpt-4o"),
        "[models.fast]\ndeployments = [\"d-hang\", \"d-ok\"]\ntimeouts = { attempt_ms = 500 }\n\n\
         [models.patient]\ndeployments = [\"d-hang\", \"d-ok\"]\ntimeouts = { attempt_ms = 120000 }\n",
    );
    let gw = Gateway::start(&config);
    let r = gw.post("/v1/chat/completions", &chat("fast", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-deployment"), "d-ok");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");

    // The same hang under a two-minute attempt timeout: still waiting when the client gives up.
    let gave_up = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .timeout(Duration::from_secs(2))
        .header("content-type", "application/json")
        .body(chat("patient", "hi").to_string())
        .send()
        .await
        .unwrap_err();
    assert!(gave_up.is_timeout(), "{gave_up}");
    let (hung, served) = (stats(&hang).await, requests(&ok).await);
    assert_eq!(hung["hangs"], 2, "{hung}");
    assert_eq!(served, 1, "only the fast model failed over");
}
