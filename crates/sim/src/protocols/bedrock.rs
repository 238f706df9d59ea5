//! AWS Bedrock Runtime: `Converse` (JSON) and `ConverseStream` (binary event-stream frames).

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::plumbing::{
    json_response, stream_response, trailing_prefill, ErrorShape, Frame, Inbound, Sim,
};
use crate::rules::{self, Conversation, Finish, Msg, Plan, Tool, ToolChoice};
use crate::sigv4::{self, SigV4Auth, SignedRequest};

/// Routes for the Bedrock protocol.
pub(super) fn router(ctx: Sim) -> Router {
    Router::new()
        .route("/model/{model_id}/converse", post(converse))
        .route("/model/{model_id}/converse-stream", post(converse_stream))
        .route(
            "/model/{model_id}/invoke",
            post(super::bedrock_invoke::invoke),
        )
        .with_state(ctx)
}

// === errors ===

pub(super) struct Shape;

/// The modelled error name for an HTTP status.
fn error_name(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// The stream exception member name for an HTTP status.
fn exception_name(status: u16) -> &'static str {
    match status {
        400 => "validationException",
        429 => "throttlingException",
        500 => "internalServerException",
        503 => "serviceUnavailableException",
        _ => "modelStreamErrorException",
    }
}

/// An HTTP error with the name in `x-amzn-ErrorType` and `{"message"}` as the body.
pub(super) fn aws_error(status: StatusCode, name: &str, message: &str) -> Response {
    let headers = [
        (
            "x-amzn-ErrorType",
            format!("{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        ),
        (
            "x-amzn-RequestId",
            "00000000-0000-4000-8000-000000000000".to_owned(),
        ),
    ];
    json_response(status, &json!({"message": message}), &headers)
}

impl ErrorShape for Shape {
    fn error(&self, status: StatusCode, message: &str, _retry_after: Option<u32>) -> Response {
        aws_error(status, error_name(status.as_u16()), message)
    }

    fn stream_error(&self, status: StatusCode, message: &str) -> Bytes {
        let msg = Message::new(json!({"message": message}).to_string())
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("exception".into()),
            ))
            .add_header(Header::new(
                ":exception-type",
                HeaderValue::String(exception_name(status.as_u16()).into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ));
        encode(&msg)
    }

    fn malformed(&self) -> Bytes {
        // A well-formed frame whose message CRC is wrong.
        let mut bytes = event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "x"}}),
            0,
        )
        .to_vec();
        if let Some(last) = bytes.last_mut() {
            *last ^= 0xff;
        }
        Bytes::from(bytes)
    }

    fn garbage(&self, _first: bool) -> Bytes {
        // A frame with valid prelude and message CRCs whose JSON payload lacks its closing brace.
        event_frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex": 0, "delta": {"text": "sim garbage"}"#.to_owned(),
        )
    }

    fn context_length(&self, _input: u64, _window: u64) -> Response {
        aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Input is too long for requested model.",
        )
    }

    /// Bedrock refuses in-band: a guardrail answers 200 with `stopReason: guardrail_intervened`.
    fn content_filter(&self) -> Option<Response> {
        None
    }
}

/// Bedrock passes the model's own validation errors on behind this prefix.
const MODEL_ERRORS: &str = "The model returned the following errors: ";

/// Encodes one event-stream message.
fn encode(msg: &Message) -> Bytes {
    let mut buf = Vec::new();
    if let Err(e) = write_message_to(msg, &mut buf) {
        tracing::warn!(error = %e, "could not encode event-stream frame");
    }
    Bytes::from(buf)
}

/// An event frame; the payload gets the service's `p` padding field.
fn event(event_type: &str, mut payload: Value, n: usize) -> Bytes {
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123";
    payload["p"] = json!(&LETTERS[..(n * 7) % 40 + 1]);
    event_frame(event_type, payload.to_string())
}

/// An event frame carrying `payload` as it is (valid JSON or not).
fn event_frame(event_type: &str, payload: String) -> Bytes {
    let msg = Message::new(payload)
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ));
    encode(&msg)
}

// === auth ===

/// Verifies a SigV4 signature against the request with the simulator's secret key.
pub(crate) fn verify_sigv4(ctx: &Sim, auth: &SigV4Auth, inb: &Inbound) -> Result<(), Response> {
    let req = SignedRequest {
        method: inb.method.as_str(),
        path: &inb.path,
        query: inb.query.as_deref(),
        headers: &inb.headers,
        body: &inb.bytes,
    };
    let now = i64::try_from(crate::plumbing::unix_now()).unwrap_or(i64::MAX);
    sigv4::verify(auth, req, &ctx.aws_secret, now)
        .map_err(|e| aws_error(StatusCode::FORBIDDEN, e.error_name(), &e.to_string()))
}

/// Checks SigV4 (or a Bedrock API key as Bearer) the way the service reports failures.
pub(super) fn authorize(ctx: &Sim, inb: &Inbound) -> Result<(), Response> {
    let Some(value) = inb.header("authorization") else {
        return Err(aws_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    if let Some(token) = inb.bearer() {
        return match &ctx.api_key {
            Some(k) if k != token => Err(aws_error(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )),
            _ => Ok(()),
        };
    }
    let Some(auth) = sigv4::parse_authorization(value) else {
        return Err(aws_error(
            StatusCode::FORBIDDEN,
            "IncompleteSignatureException",
            "Authorization header is malformed.",
        ));
    };
    if ctx.api_key.as_ref().is_some_and(|k| *k != auth.access_key) {
        return Err(aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if auth.service != "bedrock" {
        return Err(aws_error(
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            &format!(
                "Credential should be scoped to correct service: 'bedrock'. (got '{}')",
                auth.service
            ),
        ));
    }
    verify_sigv4(ctx, &auth, inb)
}

// === conversation ===

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolsView {
    tool_config: Option<ToolConfigView>,
}

#[derive(Deserialize)]
struct ToolConfigView {
    #[serde(default)]
    tools: Vec<ToolEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolEntry {
    tool_spec: Option<ToolSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec {
    name: String,
    input_schema: Option<SchemaView>,
}

#[derive(Deserialize)]
struct SchemaView {
    json: Option<Box<RawValue>>,
}

pub(crate) fn conversation(body: &Value, bytes: &[u8]) -> Conversation {
    let mut messages = Vec::new();
    if let Some(system) = body.get("system").and_then(Value::as_array) {
        let texts = system
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        messages.push(Msg {
            texts,
            ..Msg::default()
        });
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut msg = Msg {
            is_user: m.get("role").and_then(Value::as_str) == Some("user"),
            ..Msg::default()
        };
        for b in m
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = b.get("text").and_then(Value::as_str) {
                msg.texts.push(t.to_owned());
            } else if let Some(u) = b.get("toolUse") {
                msg.tool_args
                    .push(rules::args_text(u.get("input").unwrap_or(&json!({}))));
            } else if let Some(r) = b.get("toolResult") {
                let parts = r
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten();
                let texts: Vec<String> = parts
                    .filter_map(|c| {
                        c.get("text")
                            .map(rules::value_text)
                            .or_else(|| c.get("json").map(Value::to_string))
                    })
                    .collect();
                msg.tool_results.push(texts.join(" "));
            }
        }
        messages.push(msg);
    }
    let view = serde_json::from_slice::<ToolsView>(bytes)
        .ok()
        .and_then(|v| v.tool_config);
    let tools = view
        .map(|c| c.tools)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| t.tool_spec)
        .map(|s| Tool {
            name: s.name,
            schema: s
                .input_schema
                .and_then(|i| i.json)
                .as_deref()
                .map(rules::schema_props)
                .unwrap_or_default(),
        })
        .collect();
    let choice = body.pointer("/toolConfig/toolChoice");
    let tool_choice = match choice {
        Some(c) if c.get("any").is_some() => ToolChoice::Any,
        Some(c) => c
            .pointer("/tool/name")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, |n| ToolChoice::Named(n.to_owned())),
        None => ToolChoice::Auto,
    };
    let cfg = body.get("inferenceConfig");
    let max_tokens = cfg
        .and_then(|c| c.get("maxTokens"))
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let stop = cfg
        .and_then(|c| c.get("stopSequences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Conversation {
        messages,
        tools,
        tool_choice,
        max_tokens,
        stop,
        // Converse has no JSON mode here: structured answers come as a forced tool.
        answer: None,
    }
}

fn stop_reason(plan: &Plan) -> &'static str {
    match plan {
        Plan::ToolCall { .. } => "tool_use",
        Plan::Text {
            finish: Finish::Length,
            ..
        } => "max_tokens",
        Plan::Text {
            finish: Finish::StopSequence(_),
            ..
        } => "stop_sequence",
        Plan::Text {
            finish: Finish::Stop,
            ..
        } => "end_turn",
    }
}

/// Usage with Bedrock semantics: `inputTokens` excludes cache reads; `totalTokens` includes them.
fn usage(input: u32, output: u32) -> Value {
    let cached = rules::cached_tokens(input);
    json!({
        "inputTokens": input - cached, "outputTokens": output, "totalTokens": input + output,
        "cacheReadInputTokens": cached, "cacheWriteInputTokens": 0,
    })
}

// === handlers ===

async fn converse(State(ctx): State<Sim>, Path(model_id): Path<String>, req: Request) -> Response {
    handle(ctx, model_id, req, false).await
}

async fn converse_stream(
    State(ctx): State<Sim>,
    Path(model_id): Path<String>,
    req: Request,
) -> Response {
    handle(ctx, model_id, req, true).await
}

async fn handle(ctx: Sim, model_id: String, req: Request, stream: bool) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let faults = match ctx.gate(&inb, Some(&model_id), stream, &Shape).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = authorize(&ctx, &inb) {
        return r;
    }
    if !inb.body().get("messages").is_some_and(Value::is_array) {
        return Shape.error(
            StatusCode::BAD_REQUEST,
            "1 validation error detected: messages must not be null",
            None,
        );
    }
    let conv = conversation(inb.body(), &inb.bytes);
    // Converse continues a trailing assistant message (as Claude models do) and relays the
    // model's refusals as ValidationException.
    let prefill = trailing_prefill(inb.body(), "messages", "assistant", &conv);
    if let Some(p) = &prefill {
        let refusal = if faults.reject_prefill {
            Some("This model does not support assistant message prefill. The conversation must end with a user message.")
        } else if p.ends_with(char::is_whitespace) {
            Some("messages: final assistant content cannot end with trailing whitespace")
        } else {
            None
        };
        if let Some(r) = refusal {
            return Shape.error(StatusCode::BAD_REQUEST, &format!("{MODEL_ERRORS}{r}"), None);
        }
    }
    let speaker = ctx.speaker(&faults).to_owned();
    let plan = match &prefill {
        Some(p) => conv.plan_continuing(&speaker, p),
        None => conv.plan(&speaker),
    };
    let input = conv.input_tokens();
    if let Some(r) = ctx.content_gate(&faults, u64::from(input), &Shape) {
        return r;
    }
    let tool_id = format!(
        "tooluse_{}",
        &rules::hash_id(&[&speaker, &conv.last_user_text()])[..22]
    );
    let headers = [(
        "x-amzn-RequestId",
        ctx.next_id("").chars().take(20).collect::<String>(),
    )];
    let usage = usage(input, plan.output_tokens());
    if !stream {
        let content = match &plan {
            Plan::Text { text, .. } => json!([{"text": text}]),
            Plan::ToolCall { name, args } => {
                let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
                json!([{"toolUse": {"toolUseId": tool_id, "name": name, "input": input}}])
            }
        };
        let body = json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason(&plan), "usage": usage, "metrics": {"latencyMs": 1},
        });
        return json_response(StatusCode::OK, &body, &headers);
    }
    let mut n = 0;
    let mut ev = |ty: &str, payload: Value| {
        n += 1;
        event(ty, payload, n)
    };
    let mut frames = vec![Frame::meta(ev(
        "messageStart",
        json!({"role": "assistant"}),
    ))];
    match &plan {
        Plan::Text { text, .. } => {
            for piece in Plan::text_pieces(text) {
                frames.push(Frame::token(ev(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
                )));
            }
        }
        Plan::ToolCall { name, args } => {
            let start = json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": tool_id, "name": name}}});
            frames.push(Frame::meta(ev("contentBlockStart", start)));
            for frag in Plan::arg_fragments(args) {
                let d = json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": frag}}});
                frames.push(Frame::token(ev("contentBlockDelta", d)));
            }
        }
    }
    frames.push(Frame::meta(ev(
        "contentBlockStop",
        json!({"contentBlockIndex": 0}),
    )));
    frames.push(Frame::meta(ev(
        "messageStop",
        json!({"stopReason": stop_reason(&plan)}),
    )));
    frames.push(Frame::meta(ev(
        "metadata",
        json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    )));
    stream_response(
        &ctx,
        faults,
        "application/vnd.amazon.eventstream",
        frames,
        &Shape,
        &headers,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};

    #[test]
    fn event_frame_round_trips_through_the_smithy_decoder() {
        let bytes = event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "hi"}}),
            3,
        );
        let mut dec = MessageFrameDecoder::new();
        let DecodedFrame::Complete(msg) = dec.decode_frame(&mut bytes.clone()).unwrap() else {
            panic!("incomplete")
        };
        let header = |n: &str| {
            msg.headers()
                .iter()
                .find(|h| h.name().as_str() == n)
                .map(|h| h.value().as_string().unwrap().as_str().to_owned())
        };
        assert_eq!(header(":event-type").as_deref(), Some("contentBlockDelta"));
        assert_eq!(header(":message-type").as_deref(), Some("event"));
        let payload: Value = serde_json::from_slice(msg.payload()).unwrap();
        assert_eq!(payload["delta"]["text"], "hi");
        assert!(payload["p"].is_string());
    }

    #[test]
    fn malformed_frame_fails_crc() {
        let mut dec = MessageFrameDecoder::new();
        assert!(dec.decode_frame(&mut Shape.malformed()).is_err());
    }
}
