//! The bodies of the cargo-fuzz targets in `crates/protocol/fuzz`, kept here so stable CI runs
//! the same code over generated inputs (see the tests below). Each must never panic.

use crate::codec::{anthropic_messages, bedrock_converse, gemini, openai_chat};
use crate::sse::SseDecoder;

/// Feeds `data` to the SSE decoder in chunks whose sizes come from the data itself, and checks
/// that the events match feeding it whole.
pub fn sse_decoder(data: &[u8]) {
    let whole = collect(data, &[data.len()]);
    // Chunk sizes 1..=7 chosen by the first byte, so splits land inside CRLF and UTF-8.
    let step = usize::from(data.first().copied().unwrap_or(0) % 7) + 1;
    let sizes: Vec<usize> = std::iter::repeat_n(step, data.len() / step + 1).collect();
    let split = collect(data, &sizes);
    assert_eq!(whole, split, "chunking changed the events");
}

/// Events (or error markers) from feeding `data` in chunks of the given sizes.
fn collect(data: &[u8], sizes: &[usize]) -> Vec<Result<crate::sse::SseEvent, String>> {
    let mut dec = SseDecoder::new();
    let mut out = Vec::new();
    let mut rest = data;
    for &size in sizes {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        dec.push(chunk);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) => out.push(Ok(ev)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.message)),
            }
        }
    }
    out.extend(dec.finish().map(Ok));
    out
}

/// Decodes `data` as a client chat request; a success must also pass through and re-encode.
pub fn openai_decode_request(data: &[u8]) {
    if let Ok(parsed) = openai_chat::decode_request(data) {
        let body = parsed.passthrough_body("upstream", true);
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "passthrough produced invalid JSON"
        );
        let encoded = openai_chat::encode_request(&parsed.request, "upstream");
        assert!(
            openai_chat::decode_request(&encoded).is_ok(),
            "a decoded request did not survive encode → decode"
        );
    }
}

/// Probes `data` as a stream chunk, and decodes it with a stream decoder.
pub fn openai_inspect_chunk(data: &[u8]) {
    let _ = openai_chat::inspect_chunk(data);
    let _ = openai_chat::StreamDecoder::new().decode(data);
}

/// Decodes `data` as an upstream non-streamed response, error and embeddings body.
pub fn openai_decode_response(data: &[u8]) {
    if let Ok(resp) = openai_chat::decode_response(data) {
        let _ = openai_chat::encode_response(&resp);
    }
    let _ = openai_chat::usage_from_response(data);
    let _ = openai_chat::decode_error(500, data);
    let _ = openai_chat::decode_embeddings_response(data);
}

/// SSE events of `data` fed in chunks of 1..=7 bytes (chosen by the first byte).
fn sse_events(data: &[u8]) -> Vec<crate::sse::SseEvent> {
    let step = usize::from(data.first().copied().unwrap_or(0) % 7) + 1;
    let mut dec = SseDecoder::new();
    let mut out = Vec::new();
    for chunk in data.chunks(step) {
        dec.push(chunk);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) => out.push(ev),
                Ok(None) => break,
                Err(_) => {}
            }
        }
    }
    out.extend(dec.finish());
    out
}

/// Decodes `data` as an Anthropic client request (and a count_tokens request); a success must
/// re-encode, as an upstream body, to valid JSON.
pub fn anthropic_decode_request(data: &[u8]) {
    let _ = anthropic_messages::decode_count_tokens_request(data);
    if let Ok(parsed) = anthropic_messages::decode_request(data) {
        let pass = parsed.passthrough_body("upstream");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&pass).is_ok(),
            "passthrough_body produced invalid JSON"
        );
        let req = parsed.request;
        if let Ok(body) = anthropic_messages::encode_request(&req, "upstream", 1024) {
            assert!(
                serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                "encode_request produced invalid JSON"
            );
        }
        for encode in [bedrock_converse::encode_request, gemini::encode_request] {
            if let Ok(body) = encode(&req) {
                assert!(
                    serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                    "an upstream encoder produced invalid JSON"
                );
            }
        }
    }
}

/// Decodes `data` as an upstream Anthropic body and error; a decoded body must re-encode.
pub fn anthropic_decode_response(data: &[u8]) {
    if let Ok(resp) = anthropic_messages::decode_response(data) {
        let body = anthropic_messages::encode_response(&resp);
        assert!(
            anthropic_messages::decode_response(&body).is_ok(),
            "an encoded response did not decode"
        );
    }
    let _ = anthropic_messages::decode_error(529, data);
}

/// Feeds `data` as an upstream Anthropic SSE stream, and its events to a client encoder.
pub fn anthropic_stream(data: &[u8]) {
    let mut dec = anthropic_messages::StreamDecoder::new();
    let mut enc = anthropic_messages::StreamEncoder::new("msg_fuzz", "m".to_owned());
    let mut out = Vec::new();
    for ev in sse_events(data) {
        match dec.decode(ev.event.as_deref(), ev.data.as_bytes()) {
            Ok(events) => events.iter().for_each(|e| enc.encode(e, &mut out)),
            Err(_) => {
                if let Some(e) = dec.upstream_error() {
                    enc.error(e.kind, &e.message, &mut out);
                }
            }
        }
    }
    enc.finish(&mut out);
}

/// Feeds `data` as a Bedrock event stream (in chunks) to the frame and stream decoders.
pub fn bedrock_event_stream(data: &[u8]) {
    let step = usize::from(data.first().copied().unwrap_or(0) % 13) + 1;
    let mut frames = bedrock_converse::EventStreamDecoder::new();
    let mut dec = bedrock_converse::StreamDecoder::new();
    for chunk in data.chunks(step) {
        frames.push(chunk);
        // A corrupt frame is sticky: stop at the first error, as a caller would.
        while let Ok(Some(msg)) = frames.next_message() {
            let _ = dec.decode(&msg);
        }
    }
    let _ = frames.has_partial_frame();
}

/// Decodes `data` as a Converse body, a Bedrock error and embeddings answers.
pub fn bedrock_decode_response(data: &[u8]) {
    let _ = bedrock_converse::decode_response(data);
    let _ = bedrock_converse::decode_error(400, Some("ValidationException:ns"), data);
    let _ = bedrock_converse::decode_error(500, None, data);
    for model in ["amazon.titan-embed-text-v2:0", "cohere.embed-v4:0"] {
        let _ = bedrock_converse::decode_embeddings_response(model, &[data, data]);
    }
}

/// Decodes `data` as a `generateContent` body, a Google error and an embeddings answer.
pub fn gemini_decode_response(data: &[u8]) {
    let _ = gemini::decode_response(data);
    let _ = gemini::decode_error(429, data);
    let _ = gemini::decode_embeddings_response(data);
}

/// Feeds `data` as a Gemini SSE stream to the stream decoder.
pub fn gemini_stream(data: &[u8]) {
    let mut dec = gemini::StreamDecoder::new();
    for ev in sse_events(data) {
        let _ = dec.decode(ev.data.as_bytes());
    }
}

/// Every embeddings answer decoder: OpenAI (float and base64), Bedrock (Titan, Cohere),
/// Gemini and Vertex.
pub fn embeddings_responses(data: &[u8]) {
    let _ = openai_chat::decode_embeddings_response(data);
    let _ = bedrock_converse::decode_embeddings_response("amazon.titan-embed-text-v2:0", &[data]);
    let _ = bedrock_converse::decode_embeddings_response("cohere.embed-v4:0", &[data, data]);
    let _ = gemini::decode_embeddings_response(data);
    let _ = gemini::decode_vertex_embeddings_response(data);
}

/// Every upstream error-body decoder (they never fail: they classify whatever comes).
pub fn error_bodies(data: &[u8]) {
    let status = data.first().map_or(500, |b| 400 + u16::from(*b % 200));
    let _ = openai_chat::decode_error(status, data);
    let _ = anthropic_messages::decode_error(status, data);
    let _ = bedrock_converse::decode_error(status, std::str::from_utf8(data).ok(), data);
    let _ = gemini::decode_error(status, data);
}

#[cfg(test)]
mod tests {
    //! The new decoders' fuzz bodies over generated near-valid inputs, on stable (the OpenAI
    //! ones run in `codec::openai_chat::tests`).

    use super::*;
    use proptest::prelude::*;

    /// A valid seed with one byte replaced, or raw noise.
    fn corrupted(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::sample::select(seeds)
                .prop_flat_map(|s| {
                    let len = s.len();
                    (Just(s), 0..=len, any::<u8>(), 0..=len)
                })
                .prop_map(|(mut v, at, b, cut)| {
                    if at < v.len() {
                        v[at] = b;
                    }
                    // Sometimes truncate, so partial frames and events are seen too.
                    if cut % 3 == 0 {
                        v.truncate(cut);
                    }
                    v
                }),
        ]
    }

    fn strings(seeds: &[&str]) -> Vec<Vec<u8>> {
        seeds.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn frame(kind: &str, message_type: &str, payload: &str) -> Vec<u8> {
        use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
        let name = if message_type == "exception" {
            ":exception-type"
        } else {
            ":event-type"
        };
        let msg = Message::new(payload.to_owned())
            .add_header(Header::new(
                name,
                HeaderValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String(message_type.to_owned().into()),
            ));
        let mut out = Vec::new();
        let _ = aws_smithy_eventstream::frame::write_message_to(&msg, &mut out);
        out
    }

    fn event_streams() -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        let parts = [
            frame("messageStart", "event", r#"{"role":"assistant"}"#),
            frame(
                "contentBlockStart",
                "event",
                r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#,
            ),
            frame(
                "contentBlockDelta",
                "event",
                r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{}"}}}"#,
            ),
            frame(
                "contentBlockDelta",
                "event",
                r#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#,
            ),
            frame("contentBlockStop", "event", r#"{"contentBlockIndex":1}"#),
            frame("messageStop", "event", r#"{"stopReason":"tool_use"}"#),
            frame(
                "metadata",
                "event",
                r#"{"usage":{"inputTokens":1,"outputTokens":2}}"#,
            ),
            frame("throttlingException", "exception", r#"{"message":"slow"}"#),
        ];
        for (i, p) in parts.iter().enumerate() {
            all.push(p.clone());
            all.push(parts[..=i].concat());
        }
        all
    }

    const ANTHROPIC_REQUESTS: &[&str] = &[
        r#"{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image","source":{"type":"url","url":"u"}}]},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r","is_error":true}]}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"tool","name":"f"}}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":""}],"metadata":{"user_id":"u"},"stream":true}"#,
    ];
    const ANTHROPIC_RESPONSES: &[&str] = &[
        r#"{"id":"msg_1","content":[{"type":"text","text":"a"},{"type":"tool_use","id":"t","name":"f","input":{"x":[1]}}],"stop_reason":"stop_sequence","stop_sequence":"E","usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":3}}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"x"}}"#,
    ];
    const ANTHROPIC_STREAMS: &[&str] = &[
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":4}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}\n\n",
    ];
    const EMBEDDINGS: &[&str] = &[
        r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}"#,
        r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPwAAAEA="}],"model":"m"}"#,
        r#"{"embedding":[0.5,0.25],"inputTextTokenCount":3}"#,
        r#"{"embeddings":{"float":[[0.5]]},"id":"x","response_type":"embeddings_by_type"}"#,
        r#"{"embeddings":[{"values":[1,2]}],"usageMetadata":{"promptTokenCount":4}}"#,
        r#"{"predictions":[{"embeddings":{"values":[0.25],"statistics":{"token_count":3}}}]}"#,
    ];

    const ERRORS: &[&str] = &[
        r#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        r#"{"message":"Rate exceeded"}"#,
        r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#,
    ];

    const GEMINI: &[&str] = &[
        r#"{"candidates":[{"content":{"parts":[{"text":"a"},{"functionCall":{"name":"f","args":{}}}]},"finishReason":"SAFETY"}],"usageMetadata":{"promptTokenCount":1,"thoughtsTokenCount":2}}"#,
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#,
        r#"{"embeddings":[{"values":[1,2]}]}"#,
    ];
    const GEMINI_STREAMS: &[&str] = &[
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\r\n\r\ndata: {\"candidates\":[{\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1}}\r\n\r\n",
        "data: {\"error\":{\"code\":503,\"message\":\"x\"}}\n\n",
    ];
    const BEDROCK: &[&str] = &[
        r#"{"output":{"message":{"content":[{"text":"a"},{"toolUse":{"toolUseId":"t","name":"f","input":{}}}]}},"stopReason":"guardrail_intervened","usage":{"inputTokens":1}}"#,
        r#"{"embedding":[1.0],"inputTextTokenCount":1}"#,
        r#"{"embeddings":{"float":[[1.0]]}}"#,
        r#"{"__type":"x#ThrottlingException","message":"m"}"#,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn anthropic_decode_request_never_panics(data in corrupted(strings(ANTHROPIC_REQUESTS))) {
            anthropic_decode_request(&data);
        }

        #[test]
        fn anthropic_decode_response_never_panics(data in corrupted(strings(ANTHROPIC_RESPONSES))) {
            anthropic_decode_response(&data);
        }

        #[test]
        fn anthropic_stream_never_panics(data in corrupted(strings(ANTHROPIC_STREAMS))) {
            anthropic_stream(&data);
        }

        #[test]
        fn bedrock_event_stream_never_panics(data in corrupted(event_streams())) {
            bedrock_event_stream(&data);
        }

        #[test]
        fn bedrock_decode_response_never_panics(data in corrupted(strings(BEDROCK))) {
            bedrock_decode_response(&data);
        }

        #[test]
        fn gemini_decode_response_never_panics(data in corrupted(strings(GEMINI))) {
            gemini_decode_response(&data);
        }

        #[test]
        fn gemini_stream_never_panics(data in corrupted(strings(GEMINI_STREAMS))) {
            gemini_stream(&data);
        }

        #[test]
        fn embeddings_responses_never_panic(data in corrupted(strings(EMBEDDINGS))) {
            embeddings_responses(&data);
        }

        #[test]
        fn error_bodies_never_panic(data in corrupted(strings(ERRORS))) {
            error_bodies(&data);
        }
    }
}
