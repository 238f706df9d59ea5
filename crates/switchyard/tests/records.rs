//! Exactly one ledger record per authenticated request, for every endpoint and every way a
//! request can end: served, refused before routing, refused by routing (every breaker open),
//! failed upstream, abandoned by its client mid-call; each record carries its attempts.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use switchyard_ledger::{Outcome, StoredRecord};
use switchyard_sim::{RunningSim, SimProtocol};
use switchyard_types::ErrorKind;

fn anthropic_toml(name: &str, sim: &RunningSim) -> String {
    format!(
        "[providers.{name}]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"{UPSTREAM_KEY}\"\ncloud = \"anthropic\"\nregion = \"us\"\njurisdiction = \"us\"\n\n",
        sim.base_url()
    )
}

/// The gateway's request id of a response.
fn id_of(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

/// POSTs `body` with `secret`, the way an Anthropic SDK does (`x-api-key` and
/// `anthropic-version`).
async fn post_anthropic(gw: &Gateway, secret: &str, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url))
        .header("x-api-key", secret)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Polls `check` (state, not time) until it holds, for at most 10 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn every_authenticated_request_has_exactly_one_record_with_its_attempts() {
    let good = sim("good", SimProtocol::OpenAi).await;
    let bad1 = sim("bad1", SimProtocol::OpenAi).await;
    let bad2 = sim("bad2", SimProtocol::OpenAi).await;
    let hang = sim("hang", SimProtocol::OpenAi).await;
    let counter = sim("counter", SimProtocol::Anthropic).await;
    for s in [&bad1, &bad2] {
        set_faults(s, json!({"fail_always": true, "fail_status": 500})).await;
    }
    set_faults(&hang, json!({"hang": true})).await;
    let config = format!(
        "{}[breaker]\nconsecutive_failures = 1\nprobe_initial_ms = 600000\nopen_ms = 600000\n\n{}{}{}{}{}{}{}{}{}{}{}{}\
         [models.ok]\ndeployments = [\"d-good\"]\n\
         [models.failing]\ndeployments = [\"d-bad1\", \"d-bad2\"]\n\
         [models.emb-failing]\ndeployments = [\"d-emb-bad\"]\n\
         [models.hanging]\ndeployments = [\"d-hang\"]\n\
         [models.counting]\ndeployments = [\"d-count\"]\n",
        server_toml(""),
        provider_toml("good", &good, SimProtocol::OpenAi),
        provider_toml("bad1", &bad1, SimProtocol::OpenAi),
        provider_toml("bad2", &bad2, SimProtocol::OpenAi),
        provider_toml("hang", &hang, SimProtocol::OpenAi),
        anthropic_toml("counter", &counter),
        deployment_toml("d-good", "good", "gpt-4o"),
        deployment_toml("d-bad1", "bad1", "gpt-4o"),
        deployment_toml("d-bad2", "bad2", "gpt-4o"),
        deployment_toml("d-emb-bad", "bad1", "text-embedding-3-small"),
        deployment_toml("d-hang", "hang", "gpt-4o"),
        deployment_toml("d-count", "counter", "claude-sonnet-4-5"),
        "",
    );
    let mut gw = Gateway::start(&config);

    // request id → (outcome, deployments attempted, in order)
    let mut expected: HashMap<String, (Outcome, Vec<&str>)> = HashMap::new();
    let mut expect =
        |r: &reqwest::Response, status: u16, outcome: Outcome, attempts: Vec<&'static str>| {
            assert_eq!(r.status().as_u16(), status, "{:?}", r.headers());
            assert!(expected.insert(id_of(r), (outcome, attempts)).is_none());
        };

    // Served: chat, streamed chat, embeddings, token counting.
    let r = gw.post("/v1/chat/completions", &chat("ok", "hello")).await;
    expect(&r, 200, Outcome::Ok, vec!["d-good"]);
    let mut streamed = chat("ok", "hello stream");
    streamed["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", &streamed).await;
    expect(&r, 200, Outcome::Ok, vec!["d-good"]);
    r.bytes().await.unwrap();
    let r = gw
        .post("/v1/embeddings", &json!({"model": "ok", "input": "a b"}))
        .await;
    expect(&r, 200, Outcome::Ok, vec!["d-good"]);
    let count = json!({"model": "counting", "messages": [{"role": "user", "content": "one two"}]});
    let r = post_anthropic(&gw, KEY, "/v1/messages/count_tokens", &count).await;
    expect(&r, 200, Outcome::Ok, vec!["d-count"]);

    // Refused before routing: unreadable body, unknown model, a model that cannot count.
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect(&r, 400, Outcome::Error(ErrorKind::InvalidRequest), vec![]);
    let r = gw
        .post("/v1/chat/completions", &chat("no-such-model", "x"))
        .await;
    expect(&r, 404, Outcome::Error(ErrorKind::NotFound), vec![]);
    let count_ok = json!({"model": "ok", "messages": [{"role": "user", "content": "x"}]});
    let r = post_anthropic(&gw, KEY, "/v1/messages/count_tokens", &count_ok).await;
    expect(&r, 400, Outcome::Error(ErrorKind::InvalidRequest), vec![]);

    // Failed upstream: both deployments answer 500 (and their breakers open).
    let r = gw.post("/v1/chat/completions", &chat("failing", "x")).await;
    expect(
        &r,
        502,
        Outcome::Error(ErrorKind::UpstreamServer),
        vec!["d-bad1", "d-bad2"],
    );
    // Refused by routing: every breaker of the model is open, nothing is attempted.
    let r = gw.post("/v1/chat/completions", &chat("failing", "y")).await;
    expect(&r, 503, Outcome::Error(ErrorKind::NoCapacity), vec![]);
    // An embeddings request whose only deployment fails.
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "emb-failing", "input": "a"}),
        )
        .await;
    expect(
        &r,
        502,
        Outcome::Error(ErrorKind::UpstreamServer),
        vec!["d-emb-bad"],
    );

    // Not authenticated: answered, logged and counted, but not in the ledger.
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-wrong")
        .header("content-type", "application/json")
        .body(chat("ok", "x").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let unauthenticated = id_of(&r);

    // A non-streaming client that leaves while the upstream is working on its call.
    let url = gw.url.clone();
    let leaving = tokio::spawn(async move {
        client()
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(chat("hanging", "never answered").to_string())
            .send()
            .await
    });
    until("the upstream to receive the call", async || {
        stats(&hang).await["requests"].as_u64() == Some(1)
    })
    .await;
    leaving.abort();
    assert!(leaving.await.unwrap_err().is_cancelled());
    // Stop only once the gateway has seen the client go: a SIGTERM before that would be a
    // shutdown with a call in flight, not a disconnect.
    gw.wait_for_line("the disconnected call's end", |v| {
        v["fields"]["message"] == "request finished"
            && v["fields"]["outcome"] == "client_disconnected"
    });

    // SIGTERM flushes the ledger.
    assert_eq!(gw.stop(), Some(0));
    let records: Vec<StoredRecord> = gw.ledger().await;

    let mut by_id: HashMap<&str, Vec<&StoredRecord>> = HashMap::new();
    for r in &records {
        by_id.entry(&r.record.request_id).or_default().push(r);
    }
    assert!(!by_id.contains_key(unauthenticated.as_str()));
    for (id, (outcome, attempts)) in &expected {
        let found = by_id.get(id.as_str()).map_or(0, Vec::len);
        assert_eq!(found, 1, "request {id} ({outcome:?}) has {found} records");
        let rec = &by_id[id.as_str()][0].record;
        assert_eq!(rec.outcome, *outcome, "{rec:?}");
        let tried: Vec<&str> = rec.attempts.iter().map(|a| &*a.deployment).collect();
        assert_eq!(&tried, attempts, "{rec:?}");
        assert_eq!(rec.key_id.as_deref(), Some("test"));
    }
    // The disconnected call: one record, its one attempt cancelled mid-flight.
    let left: Vec<_> = records
        .iter()
        .filter(|r| &*r.record.model == "hanging")
        .collect();
    assert_eq!(left.len(), 1, "{records:#?}");
    let rec = &left[0].record;
    assert_eq!(rec.outcome, Outcome::ClientDisconnected);
    assert_eq!(rec.attempts.len(), 1);
    assert_eq!(&*rec.attempts[0].deployment, "d-hang");
    assert_eq!(rec.attempts[0].status, None);
    // The call it abandoned is likely billed: its input, estimated, at d-hang's price.
    assert!(rec.usage.input > 0 && rec.usage.output == 0, "{rec:?}");
    assert!(rec.cost.nanos() > 0, "{rec:?}");
    assert_eq!(records.len(), expected.len() + 1, "no other records");
    // Served requests cost something, counting is free, failures cost nothing, an abandoned
    // upstream call costs its estimated input.
    for r in &records {
        let rec = &r.record;
        let priced = (rec.outcome == Outcome::Ok && &*rec.model != "counting")
            || rec.outcome == Outcome::ClientDisconnected;
        assert_eq!(rec.cost.nanos() > 0, priced, "{rec:?}");
    }
}

#[tokio::test]
async fn token_counting_goes_through_the_same_admission_as_every_endpoint() {
    let counter = sim("counter", SimProtocol::Anthropic).await;
    let config = format!(
        "{}{}{}{}[models.counting]\ndeployments = [\"d-count\"]\n",
        server_toml(""),
        admin_toml(),
        anthropic_toml("counter", &counter),
        deployment_toml("d-count", "counter", "claude-sonnet-4-5"),
    );
    let gw = Gateway::start(&config);
    let (status, issued) = gw
        .admin(
            reqwest::Method::POST,
            "/keys",
            Some(json!({"team": "t", "name": "counter", "limits": {"rpm": 2}})),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let secret = issued["secret"].as_str().unwrap().to_string();
    let body = json!({"model": "counting", "messages": [{"role": "user", "content": "one two"}]});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = post_anthropic(&gw, &secret, "/v1/messages/count_tokens", &body).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(stats(&counter).await["requests"].as_u64(), Some(2));
}
