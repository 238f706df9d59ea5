//! A budget reservation is an upper bound of what the upstream can charge, even for a client
//! that sets no output cap and asks for several answers: the deployment's maximum output per
//! answer, times `n`. Concurrent uncapped requests then cannot overshoot a hard budget by more
//! than one worst-case request, and what does not fit is refused, never sent uncapped.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_sim::SimProtocol;

/// Words in the prompt; the simulated reply echoes them after "p1 says:".
const WORDS: usize = 4000;
/// The deployment's configured maximum output per answer (the reply fits under it).
const MAX_OUTPUT: u64 = 4100;
/// Answers per request.
const N: u64 = 3;

#[tokio::test]
async fn uncapped_requests_for_three_answers_cannot_overshoot_a_hard_budget() {
    let sim = sim("p1", SimProtocol::OpenAi).await;
    // $1 per million input tokens, $10 per million output tokens.
    let config = format!(
        "{}{}{}[deployments.d]\nprovider = \"p1\"\nupstream_model = \"sim-long\"\nprice = {{ input = 1.0, output = 10.0 }}\nmax_output_tokens = {MAX_OUTPUT}\n\n[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        admin_toml(),
        provider_toml("p1", &sim, SimProtocol::OpenAi),
    );
    let gw = Gateway::start(&config);
    let budget: i64 = 250_000_000; // $0.25 in nano-USD
    let (status, issued) = gw
        .admin(
            Method::POST,
            "/keys",
            Some(json!({"team": "t", "name": "uncapped", "budgets": [{"period": "day", "amount_usd": budget as f64 / 1e9, "mode": "hard"}]})),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let secret = issued["secret"].as_str().unwrap().to_owned();

    let prompt: String = (0..WORDS).map(|i| format!("w{i} ")).collect();
    // What one request really costs: the prompt once, the reply three times.
    let input = WORDS as i64 + 1;
    let output = (WORDS as i64 + 2) * N as i64;
    let real = input * 1_000 + output * 10_000; // nano-USD at $1 and $10 per million
                                                // Without the deployment's maximum and `n` the reservation would assume 4,096 output
                                                // tokens for one answer, well under the real cost, so five would run at once.
    assert!(real > 2 * (input * 1_000 + 4096 * 10_000));

    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (url, secret, prompt) = (gw.url.clone(), secret.clone(), prompt.clone());
        tasks.push(tokio::spawn(async move {
            let body =
                json!({"model": "m", "n": N, "messages": [{"role": "user", "content": prompt}]});
            let r = chat_as(&url, &secret, &body).await;
            let status = r.status().as_u16();
            let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            (status, body)
        }));
    }
    let mut served = 0u64;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => {
                served += 1;
                assert_eq!(body["choices"].as_array().unwrap().len(), N as usize);
                assert_eq!(
                    body["usage"]["completion_tokens"], output,
                    "{}",
                    body["usage"]
                );
            }
            429 => assert_eq!(body["error"]["code"], "insufficient_quota", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(served >= 1, "one request fits the budget");
    // Refused requests never reached the upstream.
    assert_eq!(stats(&sim).await["requests"], served);

    let mut gw = gw;
    assert_eq!(gw.stop(), Some(0));
    let spent: i64 = gw
        .ledger()
        .await
        .iter()
        .map(|r| r.record.cost.nanos())
        .sum();
    assert_eq!(
        spent,
        served as i64 * real,
        "spent {spent} for {served} requests"
    );
    // The bound: one worst-case request (the prompt estimate and MAX_OUTPUT × n) over.
    let worst = (input * 2) * 1_000 + (MAX_OUTPUT * N) as i64 * 10_000;
    assert!(
        spent <= budget + worst,
        "spent {spent} nano-USD against a budget of {budget} (+ {worst})"
    );
}
