//! What gateway tests of stream recovery need from every protocol: the speaker override,
//! assistant prefill, and the end-marker, garbage, stall and drop stream faults.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_sim::{Faults, RunningSim, SimProtocol, SimSpec};

mod common;

const KEY: &str = "k1";

/// One protocol and, for Gemini, its stream framing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    OpenAi(SimProtocol),
    Anthropic,
    Bedrock,
    Gemini { sse: bool },
    Vertex,
}

use Case::{Anthropic, Bedrock, Gemini, OpenAi, Vertex};

const ALL: [Case; 8] = [
    OpenAi(SimProtocol::OpenAi),
    OpenAi(SimProtocol::AzureOpenAi),
    OpenAi(SimProtocol::OpenAiCompatible),
    Anthropic,
    Bedrock,
    Gemini { sse: true },
    Gemini { sse: false },
    Vertex,
];

impl Case {
    fn protocol(self) -> SimProtocol {
        match self {
            OpenAi(p) => p,
            Anthropic => SimProtocol::Anthropic,
            Bedrock => SimProtocol::Bedrock,
            Gemini { .. } => SimProtocol::Gemini,
            Vertex => SimProtocol::Vertex,
        }
    }

    /// A request body: one user turn, then the prefill as an assistant turn when given.
    fn body(self, user: &str, prefill: Option<&str>, stream: bool) -> Value {
        match self {
            OpenAi(_) => {
                let mut msgs = vec![json!({"role": "user", "content": user})];
                msgs.extend(prefill.map(|p| json!({"role": "assistant", "content": p})));
                let mut b = json!({"model": "m", "stream": stream, "messages": msgs});
                if stream {
                    b["stream_options"] = json!({"include_usage": true});
                }
                if prefill.is_some() {
                    b["continue_final_message"] = json!(true);
                    b["add_generation_prompt"] = json!(false);
                }
                b
            }
            Anthropic => {
                let mut msgs = vec![json!({"role": "user", "content": user})];
                msgs.extend(prefill.map(
                    |p| json!({"role": "assistant", "content": [{"type": "text", "text": p}]}),
                ));
                json!({"model": "c", "max_tokens": 1000, "stream": stream, "messages": msgs})
            }
            Bedrock => {
                let mut msgs = vec![json!({"role": "user", "content": [{"text": user}]})];
                msgs.extend(
                    prefill.map(|p| json!({"role": "assistant", "content": [{"text": p}]})),
                );
                json!({"messages": msgs})
            }
            Gemini { .. } | Vertex => {
                let mut contents = vec![json!({"role": "user", "parts": [{"text": user}]})];
                contents.extend(prefill.map(|p| json!({"role": "model", "parts": [{"text": p}]})));
                json!({"contents": contents})
            }
        }
    }

    /// A ready request for `body`, streamed or not.
    fn request(self, sim: &RunningSim, body: &Value, stream: bool) -> reqwest::Request {
        let base = sim.base_url();
        let c = reqwest::Client::new();
        let gemini_method = if stream {
            "streamGenerateContent"
        } else {
            "generateContent"
        };
        let alt = if stream && self != (Gemini { sse: false }) {
            "?alt=sse"
        } else {
            ""
        };
        let b = match self {
            OpenAi(SimProtocol::AzureOpenAi) => c
                .post(format!("{base}/openai/v1/chat/completions"))
                .header("api-key", KEY),
            OpenAi(_) => c
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(KEY),
            Anthropic => c
                .post(format!("{base}/v1/messages"))
                .header("x-api-key", KEY)
                .header("anthropic-version", "2023-06-01"),
            Bedrock => {
                let op = if stream { "converse-stream" } else { "converse" };
                return common::signed_post(
                    &format!("{base}/model/anthropic.claude-sonnet-4-5/{op}"),
                    body,
                    KEY,
                    switchyard_sim::SIM_AWS_SECRET_ACCESS_KEY,
                    std::time::SystemTime::now(),
                );
            }
            Gemini { .. } => c
                .post(format!("{base}/v1beta/models/g:{gemini_method}{alt}"))
                .header("x-goog-api-key", KEY),
            Vertex => c
                .post(format!(
                    "{base}/v1/projects/p/locations/l/publishers/google/models/g:{gemini_method}{alt}"
                ))
                .bearer_auth(KEY),
        };
        b.json(body).build().unwrap()
    }

    /// The reply text of a non-streamed answer.
    fn reply_text(self, v: &Value) -> String {
        let t = match self {
            OpenAi(_) => &v["choices"][0]["message"]["content"],
            Anthropic => &v["content"][0]["text"],
            Bedrock => &v["output"]["message"]["content"][0]["text"],
            Gemini { .. } | Vertex => &v["candidates"][0]["content"]["parts"][0]["text"],
        };
        t.as_str().unwrap_or_default().to_owned()
    }

    /// Output tokens reported by a non-streamed answer.
    fn output_tokens(self, v: &Value) -> u64 {
        let t = match self {
            OpenAi(_) => &v["usage"]["completion_tokens"],
            Anthropic => &v["usage"]["output_tokens"],
            Bedrock => &v["usage"]["outputTokens"],
            Gemini { .. } | Vertex => &v["usageMetadata"]["candidatesTokenCount"],
        };
        t.as_u64().unwrap()
    }

    /// Splits a streamed body into its events (names and parsed payloads) and text pieces.
    fn parse(self, bytes: &[u8]) -> Parsed {
        let mut p = Parsed::default();
        let payload = |p: &mut Parsed, name: String, data: &[u8]| {
            let Ok(v) = serde_json::from_slice::<Value>(data) else {
                p.bad += 1;
                return;
            };
            let text = match self {
                OpenAi(_) => v.pointer("/choices/0/delta/content"),
                Anthropic => v.pointer("/delta/text"),
                Bedrock => v.pointer("/delta/text"),
                Gemini { .. } | Vertex => v.pointer("/candidates/0/content/parts/0/text"),
            };
            if let Some(t) = text.and_then(Value::as_str).filter(|t| !t.is_empty()) {
                p.pieces.push(t.to_owned());
            }
            if let Some(u) = v.get("usage").or_else(|| v.get("usageMetadata")) {
                p.usage = Some(u.clone());
            }
            p.names.push(name);
        };
        match self {
            Bedrock => {
                let mut buf = Bytes::copy_from_slice(bytes);
                let mut dec = MessageFrameDecoder::new();
                while let Ok(DecodedFrame::Complete(m)) = dec.decode_frame(&mut buf) {
                    let name = m
                        .headers()
                        .iter()
                        .find(|h| h.name().as_str() == ":event-type")
                        .map(|h| h.value().as_string().unwrap().as_str().to_owned())
                        .unwrap_or_default();
                    payload(&mut p, name, m.payload());
                }
            }
            Gemini { sse: false } => {
                for element in array_elements(bytes) {
                    payload(&mut p, String::new(), element.as_bytes());
                }
            }
            _ => {
                let text = String::from_utf8(bytes.to_vec())
                    .unwrap()
                    .replace("\r\n", "\n");
                for event in text.split("\n\n").filter(|e| !e.is_empty()) {
                    let name = event
                        .lines()
                        .find_map(|l| l.strip_prefix("event: "))
                        .unwrap_or_default()
                        .to_owned();
                    let data = event
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .unwrap_or_default();
                    if data == "[DONE]" {
                        p.names.push("[DONE]".into());
                    } else {
                        payload(&mut p, name, data.as_bytes());
                    }
                }
            }
        }
        p
    }
}

/// The elements of a streamed JSON array, split at top-level commas (as a streaming reader does).
fn array_elements(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let inner = text.trim().strip_prefix('[').unwrap_or(&text);
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    let (mut out, mut cur, mut depth, mut in_str, mut esc) =
        (vec![], String::new(), 0, false, false);
    for ch in inner.chars() {
        if in_str {
            cur.push(ch);
            match (esc, ch) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_owned());
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

#[derive(Debug, Default)]
struct Parsed {
    /// Event names (SSE `event:`, Bedrock `:event-type`, `[DONE]`), one per parsed event.
    names: Vec<String>,
    /// Text deltas in order.
    pieces: Vec<String>,
    /// Events whose payload was not JSON.
    bad: usize,
    /// The last usage object seen.
    usage: Option<Value>,
}

async fn start(name: &str, case: Case) -> RunningSim {
    RunningSim::start(SimSpec {
        name: name.into(),
        protocol: case.protocol(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(KEY.into()),
    })
    .await
    .unwrap()
}

/// A stream's bytes and whether it ended cleanly; `None` for the latter when it stalled.
async fn read_stream(req: reqwest::Request) -> (Vec<u8>, Option<bool>) {
    let mut r = reqwest::Client::new().execute(req).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(400), r.chunk()).await {
            Err(_) => return (got, None),
            Ok(Ok(Some(c))) => got.extend_from_slice(&c),
            Ok(Ok(None)) => return (got, Some(true)),
            Ok(Err(_)) => return (got, Some(false)),
        }
    }
}

async fn send_json(req: reqwest::Request) -> (u16, Value) {
    let r = reqwest::Client::new().execute(req).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `w1 … wN`.
fn words(n: usize) -> String {
    (1..=n)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn speaker_makes_providers_answer_alike() {
    let mut replies = Vec::new();
    for case in ALL {
        let sim = start(&format!("{case:?}"), case).await;
        sim.controls().set_faults(Faults {
            speaker: Some("twin".into()),
            ..Faults::default()
        });
        let (status, v) =
            send_json(case.request(&sim, &case.body("hi there", None, false), false)).await;
        assert_eq!(status, 200, "{case:?}: {v}");
        replies.push(case.reply_text(&v));
        let (bytes, clean) =
            read_stream(case.request(&sim, &case.body("hi there", None, true), true)).await;
        assert_eq!(clean, Some(true), "{case:?}");
        assert_eq!(
            case.parse(&bytes).pieces.concat(),
            "twin says: hi there",
            "{case:?}"
        );
        sim.shutdown().await;
    }
    assert!(
        replies.iter().all(|r| r == "twin says: hi there"),
        "{replies:?}"
    );
}

#[tokio::test]
async fn prefill_is_continued_by_every_protocol() {
    for case in ALL {
        let sim = start("a", case).await;
        let body = case.body("w1 w2 w3", Some("a says: w1"), false);
        let (status, v) = send_json(case.request(&sim, &body, false)).await;
        assert_eq!(status, 200, "{case:?}: {v}");
        assert_eq!(case.reply_text(&v), " w2 w3", "{case:?}");
        assert_eq!(case.output_tokens(&v), 2, "{case:?}");
        let body = case.body("w1 w2 w3", Some("a says: w1"), true);
        let (bytes, clean) = read_stream(case.request(&sim, &body, true)).await;
        assert_eq!(clean, Some(true), "{case:?}");
        assert_eq!(case.parse(&bytes).pieces, [" w2 ", "w3"], "{case:?}");
        // Not a prefix of the reply: the normal reply.
        let body = case.body("w1 w2 w3", Some("something else"), false);
        let (_, v) = send_json(case.request(&sim, &body, false)).await;
        assert_eq!(case.reply_text(&v), "a says: w1 w2 w3", "{case:?}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn openai_continues_only_with_continue_final_message() {
    for p in [
        SimProtocol::OpenAi,
        SimProtocol::AzureOpenAi,
        SimProtocol::OpenAiCompatible,
    ] {
        let case = OpenAi(p);
        let sim = start("a", case).await;
        let mut body = case.body("w1 w2", Some("a says:"), false);
        body.as_object_mut()
            .unwrap()
            .remove("continue_final_message");
        let (_, v) = send_json(case.request(&sim, &body, false)).await;
        assert_eq!(case.reply_text(&v), "a says: w1 w2", "{p}: history only");
        body["continue_final_message"] = json!(true);
        body["add_generation_prompt"] = json!(true);
        let (status, v) = send_json(case.request(&sim, &body, false)).await;
        assert_eq!(status, 400, "{p}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("add_generation_prompt"));
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn prefill_refusals() {
    for case in ALL {
        let sim = start("a", case).await;
        // Anthropic and Bedrock refuse a prefill ending with whitespace; the others continue.
        let body = case.body("w1 w2", Some("a says: "), false);
        let (status, v) = send_json(case.request(&sim, &body, false)).await;
        if matches!(case, Anthropic | Bedrock) {
            assert_eq!(status, 400, "{case:?}");
            let msg = if case == Anthropic {
                assert_eq!(v["error"]["type"], "invalid_request_error");
                v["error"]["message"].as_str().unwrap().to_owned()
            } else {
                v["message"].as_str().unwrap().to_owned()
            };
            assert!(msg.ends_with("final assistant content cannot end with trailing whitespace"));
        } else {
            assert_eq!(
                (status, case.reply_text(&v)),
                (200, " w1 w2".into()),
                "{case:?}"
            );
        }
        sim.controls().set_faults(Faults {
            reject_prefill: true,
            ..Faults::default()
        });
        let body = case.body("w1 w2", Some("a says:"), true);
        let (status, v) = send_json(case.request(&sim, &body, true)).await;
        assert_eq!(status, 400, "{case:?}: {v}");
        let error = match case {
            Bedrock => v["message"].clone(),
            Anthropic => v["error"]["type"].clone(),
            Gemini { .. } | Vertex => v["error"]["status"].clone(),
            OpenAi(SimProtocol::AzureOpenAi) => v["error"]["code"].clone(),
            OpenAi(_) => v["error"]["type"].clone(),
        };
        let want = match case {
            Bedrock => "The model returned the following errors: This model does not support assistant message prefill. The conversation must end with a user message.",
            Anthropic | OpenAi(SimProtocol::OpenAi | SimProtocol::OpenAiCompatible) => {
                "invalid_request_error"
            }
            Gemini { .. } | Vertex => "INVALID_ARGUMENT",
            OpenAi(_) => "400",
        };
        assert_eq!(error, want, "{case:?}");
        // Without a prefill the same deployment answers.
        let (status, _) = send_json(case.request(&sim, &case.body("w1", None, false), false)).await;
        assert_eq!(status, 200, "{case:?}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn anthropic_prefill_makes_no_tool_call() {
    let sim = start("a", Anthropic).await;
    let mut body = Anthropic.body("w1 w2", Some("a says:"), false);
    body["tools"] = json!([{"name": "t", "input_schema": {"type": "object", "properties": {}}}]);
    let (_, v) = send_json(Anthropic.request(&sim, &body, false)).await;
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"][0]["text"], " w1 w2");
    assert_eq!(v["stop_reason"], "end_turn");
    body["max_tokens"] = json!(1);
    let (_, v) = send_json(Anthropic.request(&sim, &body, false)).await;
    assert_eq!(
        (v["content"][0]["text"].as_str(), v["stop_reason"].as_str()),
        (Some(" w1"), Some("max_tokens"))
    );
    sim.shutdown().await;
}

/// A stream cut after 40 of 62 words on one protocol and continued from the text received on
/// another equals the unbroken answer, when both speak as the same speaker.
#[tokio::test]
async fn cut_then_continue_elsewhere_equals_the_unbroken_answer() {
    let user = words(60);
    let unbroken = format!("twin says: {user}");
    for (first, second) in [
        (OpenAi(SimProtocol::OpenAi), Anthropic),
        (Anthropic, Bedrock),
        (Bedrock, Gemini { sse: true }),
        (Vertex, OpenAi(SimProtocol::OpenAiCompatible)),
        (Gemini { sse: false }, OpenAi(SimProtocol::AzureOpenAi)),
    ] {
        let a = start("a", first).await;
        let b = start("b", second).await;
        let speaker = Some("twin".to_owned());
        a.controls().set_faults(Faults {
            drop_after_tokens: Some(40),
            speaker: speaker.clone(),
            ..Faults::default()
        });
        b.controls().set_faults(Faults {
            speaker,
            ..Faults::default()
        });
        let (bytes, clean) =
            read_stream(first.request(&a, &first.body(&user, None, true), true)).await;
        assert_eq!(clean, Some(false), "{first:?} must be cut");
        let got = first.parse(&bytes).pieces;
        assert_eq!(got.len(), 40, "{first:?}");
        let sent = got.concat();
        // What a gateway sends as prefill: Anthropic refuses trailing whitespace.
        let prefill = sent.trim_end();
        let body = second.body(&user, Some(prefill), true);
        let (bytes, clean) = read_stream(second.request(&b, &body, true)).await;
        assert_eq!(clean, Some(true), "{second:?}");
        let rest = second.parse(&bytes);
        assert_eq!(
            format!("{prefill}{}", rest.pieces.concat()),
            unbroken,
            "{first:?} → {second:?}"
        );
        assert_eq!(rest.pieces.len(), 22, "{second:?}");
        a.shutdown().await;
        b.shutdown().await;
    }
}

#[tokio::test]
async fn drop_after_tokens_cuts_after_exactly_n_text_frames() {
    for case in ALL {
        let sim = start("a", case).await;
        for n in [0, 1, 40] {
            sim.controls().set_faults(Faults {
                drop_after_tokens: Some(n),
                ..Faults::default()
            });
            let (bytes, clean) =
                read_stream(case.request(&sim, &case.body(&words(60), None, true), true)).await;
            assert_eq!(clean, Some(false), "{case:?} {n}");
            let p = case.parse(&bytes);
            assert_eq!(p.pieces.len(), n as usize, "{case:?} {n}");
            assert_eq!(p.bad, 0, "{case:?} {n}");
        }
        assert_eq!(sim.controls().stats().streams_dropped, 3, "{case:?}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn omit_end_marker_keeps_finish_and_usage() {
    for case in ALL {
        let sim = start("a", case).await;
        let body = case.body("w1 w2", None, true);
        let (full, _) = read_stream(case.request(&sim, &body, true)).await;
        sim.controls().set_faults(Faults {
            omit_end_marker: true,
            ..Faults::default()
        });
        let (bytes, clean) = read_stream(case.request(&sim, &body, true)).await;
        assert_eq!(
            clean,
            Some(true),
            "{case:?}: the connection closes normally"
        );
        let (full, p) = (case.parse(&full), case.parse(&bytes));
        assert_eq!(p.pieces.concat(), "a says: w1 w2", "{case:?}");
        assert!(p.usage.is_some(), "{case:?}");
        let mut want = full.names.clone();
        match case {
            OpenAi(_) => assert_eq!(want.pop().as_deref(), Some("[DONE]")),
            Anthropic => {
                assert_eq!(want.pop().as_deref(), Some("message_stop"));
                assert_eq!(want.last().map(String::as_str), Some("message_delta"));
            }
            // Bedrock's last frames carry the stop reason and the usage, Gemini has no sentinel:
            // nothing is left out.
            Bedrock | Gemini { .. } | Vertex => {}
        }
        assert_eq!(p.names, want, "{case:?}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn garbage_event_is_well_framed_and_the_stream_goes_on() {
    for case in ALL {
        let sim = start("a", case).await;
        for n in [0, 2] {
            sim.controls().set_faults(Faults {
                garbage_after_tokens: Some(n),
                ..Faults::default()
            });
            let body = case.body("w1 w2 w3", None, true);
            let (bytes, clean) = read_stream(case.request(&sim, &body, true)).await;
            assert_eq!(clean, Some(true), "{case:?} {n}");
            let p = case.parse(&bytes);
            assert_eq!(p.bad, 1, "{case:?} {n}: one event fails to parse");
            assert_eq!(p.pieces.concat(), "a says: w1 w2 w3", "{case:?} {n}");
            if case == Bedrock {
                // Every frame, the garbage one included, decodes with valid checksums.
                let mut buf = Bytes::from(bytes);
                let mut dec = MessageFrameDecoder::new();
                let mut frames = 0;
                while let DecodedFrame::Complete(_) = dec.decode_frame(&mut buf).unwrap() {
                    frames += 1;
                }
                assert_eq!(frames, p.names.len() + 1);
            }
        }
        assert_eq!(sim.controls().stats().malformed_injected, 2, "{case:?}");
        assert_eq!(sim.controls().stats().streams_dropped, 0, "{case:?}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn stall_keeps_the_connection_open_without_frames() {
    for case in ALL {
        let sim = start("a", case).await;
        sim.controls().set_faults(Faults {
            stall_after_tokens: Some(2),
            ..Faults::default()
        });
        let (bytes, clean) =
            read_stream(case.request(&sim, &case.body("w1 w2 w3", None, true), true)).await;
        assert_eq!(clean, None, "{case:?}: still open, nothing more sent");
        assert_eq!(case.parse(&bytes).pieces, ["a ", "says: "], "{case:?}");
        assert_eq!(sim.controls().stats().streams_stalled, 1, "{case:?}");
        // A stalled stream still open at shutdown does not hold the simulator.
        sim.shutdown().await;
    }
}
