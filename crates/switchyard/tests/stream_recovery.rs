//! Streams that survive their upstream: a stream without its end marker or with one
//! unreadable event is delivered whole; a stream cut or stalled mid-answer is continued on a
//! second deployment with the delivered text as a prefill and arrives as one exact answer;
//! where no deployment can take the prefill, the client gets the original error. For both
//! front doors over each upstream protocol family, counted in the simulators and the ledger.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use switchyard_ledger::StoredRecord;
use switchyard_sim::{RunningSim, SimProtocol};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Door {
    OpenAi,
    Anthropic,
}

/// The protocol families, each with the protocol its continuing deployment speaks (an
/// OpenAI-shaped continuation needs a server with vLLM's `continue_final_message`).
const FAMILIES: [(&str, SimProtocol, SimProtocol); 4] = [
    ("openai", SimProtocol::OpenAi, SimProtocol::OpenAiCompatible),
    ("anthropic", SimProtocol::Anthropic, SimProtocol::Anthropic),
    ("bedrock", SimProtocol::Bedrock, SimProtocol::Bedrock),
    ("gemini", SimProtocol::Gemini, SimProtocol::Gemini),
];

/// The words the user sends: the simulated reply is "sim says: " and these, 60 words.
fn prompt() -> String {
    (1..=58)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn answer() -> String {
    format!("sim says: {}", prompt())
}

fn deployment(name: &str, provider: &str, extra: &str) -> String {
    format!(
        "[deployments.{name}]\nprovider = \"{provider}\"\nupstream_model = \"model-{name}\"\nprice = {{ input = 2.0, output = 8.0 }}\n{extra}\n"
    )
}

/// One family's simulators: the one that breaks, the one that continues.
struct Family {
    name: &'static str,
    first: RunningSim,
    second: RunningSim,
}

struct Fleet {
    families: Vec<Family>,
    /// An OpenAI provider, which takes no prefill.
    plain: RunningSim,
    gw: Gateway,
}

/// Per family `f`: model `rec-f` over `f-first` then `f-second` (which accepts prefill), and
/// model `plain-f` over `f-first` then the plain OpenAI provider. `rec-f`'s streams stall
/// after 300 ms (its own stall timeout).
async fn fleet() -> Fleet {
    let plain = sim("plain", SimProtocol::OpenAi).await;
    let mut config = server_toml("");
    config += &provider_toml("plain", &plain, SimProtocol::OpenAi);
    config += &deployment("plain", "plain", "");
    let mut families = Vec::new();
    for (name, breaks, continues) in FAMILIES {
        let first = sim(&format!("{name}-first"), breaks).await;
        let second = sim(&format!("{name}-second"), continues).await;
        config += &provider_toml(&format!("{name}-first"), &first, breaks);
        config += &provider_toml(&format!("{name}-second"), &second, continues);
        config += &deployment(&format!("{name}-first"), &format!("{name}-first"), "");
        config += &deployment(
            &format!("{name}-second"),
            &format!("{name}-second"),
            "accepts_prefill = true\n",
        );
        config += &format!(
            "[models.rec-{name}]\ndeployments = [\"{name}-first\", \"{name}-second\"]\ntimeouts = {{ stall_ms = 300 }}\n\n\
             [models.plain-{name}]\ndeployments = [\"{name}-first\", \"plain\"]\n\n"
        );
        families.push(Family {
            name,
            first,
            second,
        });
    }
    let gw = Gateway::start(&config);
    Fleet {
        families,
        plain,
        gw,
    }
}

/// Sets faults with the shared speaker, so every simulator gives the same answer.
async fn faults(sim: &RunningSim, mut faults: Value) {
    faults["speaker"] = json!("sim");
    set_faults(sim, faults).await;
}

/// What a client made of a stream.
#[derive(Debug)]
struct Received {
    request_id: String,
    text: String,
    /// Ended with the protocol's end marker (and no error event).
    complete: bool,
    /// The error event's type, when it ended with one.
    error: Option<String>,
    /// Starts of the answer (OpenAI role chunks, Anthropic message_start).
    starts: usize,
    raw: String,
}

async fn stream(gw: &Gateway, door: Door, model: &str) -> Received {
    let response = match door {
        Door::OpenAi => {
            let mut body = chat(model, &prompt());
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
            gw.post("/v1/chat/completions", &body).await
        }
        Door::Anthropic => client()
            .post(format!("{}/v1/messages", gw.url))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(
                json!({"model": model, "max_tokens": 200, "stream": true,
                "messages": [{"role": "user", "content": prompt()}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap(),
    };
    assert_eq!(response.status(), 200, "{door:?} {model}");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let raw = response.text().await.unwrap();
    let mut r = Received {
        request_id,
        text: String::new(),
        complete: false,
        error: None,
        starts: 0,
        raw: raw.clone(),
    };
    for event in raw.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
            continue;
        };
        if data == "[DONE]" {
            r.complete = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        match door {
            Door::OpenAi => {
                if let Some(kind) = v["error"]["type"].as_str() {
                    r.error = Some(kind.to_owned());
                }
                let delta = &v["choices"][0]["delta"];
                r.starts += usize::from(delta.get("role").is_some());
                r.text += delta["content"].as_str().unwrap_or_default();
            }
            Door::Anthropic => match v["type"].as_str().unwrap() {
                "message_start" => r.starts += 1,
                "content_block_delta" => r.text += v["delta"]["text"].as_str().unwrap_or_default(),
                "message_stop" => r.complete = true,
                "error" => r.error = Some(v["error"]["type"].as_str().unwrap().to_owned()),
                _ => {}
            },
        }
    }
    r
}

fn assert_whole(r: &Received, what: &str) {
    assert!(r.complete && r.error.is_none(), "{what}: {}", r.raw);
    assert_eq!(r.text, answer(), "{what}: {}", r.raw);
    assert_eq!(r.starts, 1, "{what}: one answer, started once: {}", r.raw);
}

fn assert_failed(r: &Received, what: &str) {
    assert!(
        !r.complete,
        "{what}: no end marker after an error: {}",
        r.raw
    );
    assert!(r.error.is_some(), "{what}: {}", r.raw);
    // The original failure (a cut stream), not a continuation's rejection of the prefill.
    assert_ne!(
        r.error.as_deref(),
        Some("invalid_request_error"),
        "{what}: {}",
        r.raw
    );
    assert!(r.text.starts_with("sim says: w1 "), "{what}: {}", r.raw);
    assert_ne!(r.text, answer(), "{what}");
}

async fn requests(sim: &RunningSim) -> u64 {
    stats(sim).await["requests"].as_u64().unwrap()
}

/// What a scenario expects of the request's ledger record.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Served by the first deployment alone, with this many skipped events.
    Whole { malformed: u32 },
    /// Served in two parts: the first deployment's (broken by this error kind), the second's.
    Continued(&'static str),
    /// Ended with an error after the first deployment's stream broke.
    Failed,
}

#[tokio::test]
async fn streams_survive_what_upstreams_do_for_both_front_doors_and_every_family() {
    let mut fleet = fleet().await;
    let mut expected: Vec<(String, String, Expect)> = Vec::new();
    for door in [Door::OpenAi, Door::Anthropic] {
        for f in &fleet.families {
            let (first, second, name) = (&f.first, &f.second, f.name);
            let rec = format!("rec-{name}");
            let what = |case: &str| format!("{door:?} over {name}: {case}");

            // No end sentinel after the finish reason and usage: complete, no second call.
            faults(first, json!({"omit_end_marker": true})).await;
            faults(second, json!({})).await;
            let before = requests(second).await;
            let r = stream(&fleet.gw, door, &rec).await;
            assert_whole(&r, &what("no end marker"));
            assert_eq!(requests(second).await, before, "{}", what("no end marker"));
            expected.push((
                r.request_id,
                what("no end marker"),
                Expect::Whole { malformed: 0 },
            ));

            // One unreadable event mid-stream: skipped, counted, the rest delivered.
            faults(first, json!({"garbage_after_tokens": 20})).await;
            let r = stream(&fleet.gw, door, &rec).await;
            assert_whole(&r, &what("malformed event"));
            assert_eq!(
                requests(second).await,
                before,
                "{}",
                what("malformed event")
            );
            expected.push((
                r.request_id,
                what("malformed event"),
                Expect::Whole { malformed: 1 },
            ));

            // Cut after 40 of 60 words: the second deployment finishes the answer.
            faults(first, json!({"drop_after_tokens": 40})).await;
            let r = stream(&fleet.gw, door, &rec).await;
            assert_whole(&r, &what("cut"));
            assert_eq!(requests(second).await, before + 1, "{}", what("cut"));
            expected.push((
                r.request_id,
                what("cut"),
                Expect::Continued("upstream_protocol"),
            ));

            // Stalled after 40 words, past the model's 300 ms stall limit: the same.
            faults(first, json!({"stall_after_tokens": 40})).await;
            let r = stream(&fleet.gw, door, &rec).await;
            assert_whole(&r, &what("stall"));
            assert_eq!(requests(second).await, before + 2, "{}", what("stall"));
            expected.push((
                r.request_id,
                what("stall"),
                Expect::Continued("upstream_timeout"),
            ));

            // The second deployment refuses the prefill: the client gets the original error.
            faults(first, json!({"drop_after_tokens": 40})).await;
            faults(second, json!({"reject_prefill": true})).await;
            let r = stream(&fleet.gw, door, &rec).await;
            assert_failed(&r, &what("prefill refused"));
            assert_eq!(
                requests(second).await,
                before + 3,
                "{}",
                what("prefill refused")
            );
            expected.push((r.request_id, what("prefill refused"), Expect::Failed));

            // No other deployment takes a prefill: the original error, no second call.
            let plain_before = requests(&fleet.plain).await;
            let r = stream(&fleet.gw, door, &format!("plain-{name}")).await;
            assert_failed(&r, &what("no prefill"));
            assert_eq!(
                requests(&fleet.plain).await,
                plain_before,
                "{}",
                what("no prefill")
            );
            expected.push((r.request_id, what("no prefill"), Expect::Failed));
            faults(first, json!({})).await;
            faults(second, json!({})).await;
        }
    }

    let metrics = client()
        .get(format!("{}/metrics", fleet.gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchyard_stream_malformed_events_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "switchyard_stream_recoveries_total{model=\"rec-openai\",outcome=\"continued\"} 4"
        ),
        "{metrics}"
    );

    assert_eq!(fleet.gw.stop(), Some(0));
    let records: Vec<StoredRecord> = fleet.gw.ledger().await;
    let by_id: HashMap<&str, &StoredRecord> = records
        .iter()
        .map(|r| (r.record.request_id.as_str(), r))
        .collect();
    for (id, what, expect) in expected {
        let rec = &by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{what}: no record"))
            .record;
        let attempts = &rec.attempts;
        match expect {
            Expect::Whole { malformed } => {
                assert_eq!(rec.outcome.as_str(), "ok", "{what}: {rec:?}");
                assert_eq!(attempts.len(), 1, "{what}: {rec:?}");
                assert_eq!(attempts[0].malformed_events, malformed, "{what}: {rec:?}");
                assert_eq!(rec.usage.output, 60, "{what}: {rec:?}");
            }
            Expect::Continued(kind) => {
                assert_eq!(rec.outcome.as_str(), "ok", "{what}: {rec:?}");
                assert_eq!(attempts.len(), 2, "{what}: {rec:?}");
                assert!(
                    attempts[0].deployment.ends_with("-first"),
                    "{what}: {rec:?}"
                );
                assert_eq!(
                    attempts[0].error_kind.map(|k| k.as_str()),
                    Some(kind),
                    "{what}: {rec:?}"
                );
                assert!(
                    attempts[1].deployment.ends_with("-second"),
                    "{what}: {rec:?}"
                );
                assert_eq!(attempts[1].error_kind, None, "{what}: {rec:?}");
                assert_eq!(rec.deployment.as_deref(), Some(&*attempts[1].deployment));
                let (a, b) = (attempts[0].usage.unwrap(), attempts[1].usage.unwrap());
                // 40 words before the break, the other 20 from the continuation.
                assert_eq!((a.output, b.output), (40, 20), "{what}: {rec:?}");
                assert_eq!(rec.usage.output, 60, "{what}: {rec:?}");
                let costs = attempts[0].cost_nanos.unwrap() + attempts[1].cost_nanos.unwrap();
                assert_eq!(rec.cost.nanos(), costs, "{what}: {rec:?}");
                assert!(attempts[0].cost_nanos.unwrap() > 0 && attempts[1].cost_nanos.unwrap() > 0);
            }
            Expect::Failed => {
                assert_ne!(rec.outcome.as_str(), "ok", "{what}: {rec:?}");
                assert!(
                    attempts[0].deployment.ends_with("-first"),
                    "{what}: {rec:?}"
                );
            }
        }
    }
}

/// Model `m` over two Anthropic simulators (both take prefills), with `model_extra` in its
/// table.
async fn two_anthropic(model_extra: &str) -> (RunningSim, RunningSim, Gateway) {
    let first = sim("first", SimProtocol::Anthropic).await;
    let second = sim("second", SimProtocol::Anthropic).await;
    let config = format!(
        "{}{}{}{}{}[models.m]\ndeployments = [\"first\", \"second\"]\n{model_extra}",
        server_toml(""),
        provider_toml("first", &first, SimProtocol::Anthropic),
        provider_toml("second", &second, SimProtocol::Anthropic),
        deployment("first", "first", ""),
        deployment("second", "second", ""),
    );
    (first, second, Gateway::start(&config))
}

#[tokio::test]
async fn a_tool_call_cut_mid_stream_is_not_continued() {
    let (first, second, gw) = two_anthropic("").await;
    faults(&first, json!({"drop_after_tokens": 1})).await;
    let mut body = chat("m", "weather in Paris");
    body["stream"] = json!(true);
    body["tools"] = json!([{"type": "function", "function": {"name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let response = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    assert_eq!(
        requests(&second).await,
        0,
        "a tool call is never continued: {text}"
    );
}

#[tokio::test]
async fn stream_recovery_error_ends_the_stream_with_the_error() {
    let (first, second, gw) =
        two_anthropic("stream_recovery = \"error\"\nmalformed_stream_events = \"fail\"\n").await;
    for fault in [
        json!({"drop_after_tokens": 40}),
        json!({"garbage_after_tokens": 20}),
    ] {
        faults(&first, fault.clone()).await;
        let r = stream(&gw, Door::Anthropic, "m").await;
        assert!(!r.complete && r.error.is_some(), "{fault}: {}", r.raw);
    }
    assert_eq!(requests(&second).await, 0);
}
