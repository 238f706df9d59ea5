#![allow(clippy::unwrap_used)]

use super::*;
use crate::client::{ClientProtocol, StreamIdentity};
use crate::codec::openai_chat::decode_embeddings_request;
use crate::translate::{Translate, Translator};
use crate::{Message, Role};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as FrameHeader, Message as EsMessage};
use http::HeaderValue;
use serde_json::{json, Value};
use switchyard_types::ErrorKind;

fn request() -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, "hello")],
        max_tokens: Some(10),
        temperature: Some(0.5),
        ..ChatRequest::default()
    }
}

#[test]
fn every_kind_has_a_codec_and_todays_capabilities() {
    for kind in ProviderKind::ALL {
        let codec = upstream_codec(kind);
        let counts = matches!(
            kind,
            ProviderKind::Anthropic | ProviderKind::Gemini | ProviderKind::Vertex
        );
        assert_eq!(codec.counts_tokens(), counts, "{kind}");
        let openai = matches!(
            kind,
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible
        );
        assert_eq!(codec.is_openai_shaped(), openai, "{kind}");
        let media = if kind == ProviderKind::Bedrock {
            "application/vnd.amazon.eventstream"
        } else {
            "text/event-stream"
        };
        assert_eq!(codec.stream_media_type(), media, "{kind}");
        // Whatever the protocol, a plain request is expressible and a stream decoder exists.
        assert!(codec.encode_request(&request(), "up").is_ok(), "{kind}");
        assert!(!codec.stream_decoder().is_done(), "{kind}");
        assert_eq!(
            codec.encode_count_tokens(&request(), "up").is_ok(),
            counts,
            "{kind}"
        );
    }
}

#[test]
fn anthropic_count_tokens_drops_generation_settings() {
    let codec = upstream_codec(ProviderKind::Anthropic);
    let body: Value =
        serde_json::from_slice(&codec.encode_count_tokens(&request(), "claude").unwrap()).unwrap();
    assert_eq!(body["model"], "claude");
    assert!(body.get("max_tokens").is_none(), "{body}");
    assert!(body.get("temperature").is_none(), "{body}");
    assert!(body["messages"].is_array(), "{body}");
    assert_eq!(codec.decode_count_tokens(br#"{"input_tokens":12}"#), Ok(12));
    assert!(codec.decode_count_tokens(b"{}").is_err());
}

#[test]
fn google_count_tokens_wraps_a_generate_content_request() {
    for kind in [ProviderKind::Gemini, ProviderKind::Vertex] {
        let codec = upstream_codec(kind);
        let body: Value =
            serde_json::from_slice(&codec.encode_count_tokens(&request(), "g-1").unwrap()).unwrap();
        assert_eq!(body["generateContentRequest"]["model"], "models/g-1");
        assert!(
            body["generateContentRequest"]["contents"].is_array(),
            "{body}"
        );
        assert_eq!(codec.decode_count_tokens(br#"{"totalTokens":5}"#), Ok(5));
    }
}

#[test]
fn bedrock_errors_read_the_error_type_header() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static("ThrottlingException:http://internal.amazon.com/"),
    );
    let codec = upstream_codec(ProviderKind::Bedrock);
    let e = codec.decode_error(400, &headers, br#"{"message":"slow"}"#);
    assert_eq!(e.kind, ErrorKind::RateLimited);
}

#[test]
fn cohere_on_bedrock_takes_its_token_count_from_the_header() {
    let parsed = decode_embeddings_request(br#"{"model":"e","input":["a","b"]}"#).unwrap();
    let codec = upstream_codec(ProviderKind::Bedrock);
    let model = "cohere.embed-english-v3";
    assert_eq!(codec.encode_embeddings(&parsed, model).unwrap().len(), 1);
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-bedrock-input-token-count",
        HeaderValue::from_static("4"),
    );
    let body = json!({"embeddings": [[0.5, 0.25], [1.0, 0.0]]}).to_string();
    let answer = codec
        .decode_embeddings(
            &parsed,
            model,
            &[UpstreamAnswer {
                headers: &headers,
                body: body.as_bytes(),
            }],
        )
        .unwrap();
    assert_eq!(answer.usage.unwrap().input, 4);
    let out: Value = serde_json::from_slice(&answer.body.unwrap()).unwrap();
    assert_eq!(out["data"].as_array().unwrap().len(), 2);
    assert_eq!(out["model"], model);
}

#[test]
fn openai_embeddings_pass_through() {
    let parsed = decode_embeddings_request(br#"{"model":"e","input":"a"}"#).unwrap();
    let codec = upstream_codec(ProviderKind::AzureOpenAi);
    let bodies = codec.encode_embeddings(&parsed, "up").unwrap();
    assert_eq!(bodies, vec![br#"{"model":"up","input":"a"}"#.to_vec()]);
    let body = br#"{"data":[],"usage":{"prompt_tokens":3,"total_tokens":3}}"#;
    let answer = codec
        .decode_embeddings(
            &parsed,
            "up",
            &[UpstreamAnswer {
                headers: &HeaderMap::new(),
                body,
            }],
        )
        .unwrap();
    assert_eq!(answer.body, None);
    assert_eq!(answer.usage.unwrap().input, 3);
}

#[test]
fn anthropic_has_no_embeddings() {
    let parsed = decode_embeddings_request(br#"{"model":"e","input":"a"}"#).unwrap();
    assert!(upstream_codec(ProviderKind::Anthropic)
        .encode_embeddings(&parsed, "up")
        .is_err());
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    let msg = EsMessage::new(payload.to_string())
        .add_header(Header::new(
            ":event-type",
            FrameHeader::String(kind.to_string().into()),
        ))
        .add_header(Header::new(
            ":message-type",
            FrameHeader::String("event".to_string().into()),
        ));
    let mut out = Vec::new();
    write_message_to(&msg, &mut out).unwrap();
    out
}

fn identity() -> StreamIdentity {
    StreamIdentity {
        id: "chatcmpl-fallback".into(),
        model: "fallback-model".into(),
        created: 42,
    }
}

/// Feeds `bytes` `step` at a time, then ends the stream.
fn translate(
    t: &mut dyn Translator,
    bytes: &[u8],
    step: usize,
) -> (String, Result<(), TranslateError>) {
    let mut out = Vec::new();
    for chunk in bytes.chunks(step) {
        if let Err(e) = t.feed(chunk, &mut out) {
            return (String::from_utf8(out).unwrap(), Err(e));
        }
    }
    let end = t.end(&mut out);
    (String::from_utf8(out).unwrap(), end)
}

#[test]
fn a_bedrock_event_stream_reaches_an_anthropic_client() {
    let mut b = Vec::new();
    b.extend(event("messageStart", json!({"role": "assistant"})));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
    ));
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    b.extend(event("messageStop", json!({"stopReason": "end_turn"})));
    b.extend(event(
        "metadata",
        json!({"usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}}),
    ));
    for step in [1, 7, b.len()] {
        let mut t = Translate::new(
            upstream_codec(ProviderKind::Bedrock).stream_decoder(),
            ClientProtocol::AnthropicMessages.stream_encoder(false, identity()),
            crate::translate::Options::default(),
        );
        let (text, end) = translate(&mut t, &b, step);
        assert_eq!(end, Ok(()), "{text}");
        assert!(t.done());
        assert!(text.contains("event: message_start"), "{text}");
        assert!(text.contains("chatcmpl-fallback"), "{text}");
        assert!(text.contains("fallback-model"), "{text}");
        assert!(text.contains("event: message_stop"), "{text}");
        assert_eq!(t.usage().unwrap().input, 3);
        assert_eq!(t.deltas(), 1);
    }
}

#[test]
fn an_anthropic_stream_error_reaches_an_openai_client_as_its_kind() {
    let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{\"input_tokens\":2,\"output_tokens\":0}}}\n\n\
               event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n";
    let mut t = Translate::new(
        upstream_codec(ProviderKind::Anthropic).stream_decoder(),
        ClientProtocol::OpenAiChat.stream_encoder(true, identity()),
        crate::translate::Options::default(),
    );
    let (_, end) = translate(&mut t, sse.as_bytes(), 16);
    assert_eq!(
        end,
        Err(TranslateError::Upstream(
            ErrorKind::Overloaded,
            "busy".into()
        ))
    );
    assert!(!t.done());
}

#[test]
fn a_gemini_stream_cut_short_is_truncated() {
    let sse = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"}}]}\n\n";
    let mut t = Translate::new(
        upstream_codec(ProviderKind::Gemini).stream_decoder(),
        ClientProtocol::OpenAiChat.stream_encoder(false, identity()),
        crate::translate::Options::default(),
    );
    let (text, end) = translate(&mut t, sse.as_bytes(), 5);
    assert_eq!(end, Err(TranslateError::Truncated));
    assert!(text.contains("Hel"), "{text}");
    assert!(text.contains("\"created\":42"), "{text}");
}
