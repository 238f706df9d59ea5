//! Anthropic Messages: `/v1/messages` (JSON and SSE), `/v1/messages/count_tokens`, `/v1/models`.

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::plumbing::{
    json_response, sse_event, stream_response, trailing_prefill, ErrorShape, Frame, Inbound, Sim,
};
use crate::rules::{self, Conversation, Finish, Msg, Plan, Tool, ToolChoice};

/// Routes for the Anthropic protocol.
pub(super) fn router(ctx: Sim) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .with_state(ctx)
}

struct Shape;

fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn error_json(status: StatusCode, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(status.as_u16()), "message": message}, "request_id": "req_sim_error"})
}

impl ErrorShape for Shape {
    fn error(&self, status: StatusCode, message: &str, _retry_after: Option<u32>) -> Response {
        json_response(
            status,
            &error_json(status, message),
            &[("request-id", "req_sim_error".to_owned())],
        )
    }

    fn stream_error(&self, status: StatusCode, message: &str) -> Bytes {
        let body = json!({"type": "error", "error": {"type": error_type(status.as_u16()), "message": message}});
        sse_event("error", &body)
    }

    fn malformed(&self) -> Bytes {
        Bytes::from_static(b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\n\n")
    }

    fn garbage(&self, _first: bool) -> Bytes {
        // A complete SSE event; only its JSON lacks the closing brace.
        Bytes::from_static(b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"sim garbage\"}\n\n")
    }

    fn context_length(&self, input: u64, window: u64) -> Response {
        bad_request(&format!(
            "prompt is too long: {input} tokens > {window} maximum"
        ))
    }

    fn content_filter(&self) -> Option<Response> {
        Some(bad_request("Output blocked by content filtering policy"))
    }
}

/// Anthropic's answer to a prefill on models that do not take one (Claude 4.6 and later).
const PREFILL_UNSUPPORTED: &str =
    "This model does not support assistant message prefill. The conversation must end with a user message.";

/// Anthropic's answer to a prefill that ends with whitespace.
const PREFILL_TRAILING_WHITESPACE: &str =
    "messages: final assistant content cannot end with trailing whitespace";

fn bad_request(message: &str) -> Response {
    Shape.error(StatusCode::BAD_REQUEST, message, None)
}

/// Checks `x-api-key` or `Authorization: Bearer`, then `anthropic-version`.
fn authorize(ctx: &Sim, inb: &Inbound) -> Result<(), Response> {
    if let Some(key) = &ctx.api_key {
        match inb.header("x-api-key").or_else(|| inb.bearer()) {
            Some(g) if g == key => {}
            Some(_) => {
                return Err(Shape.error(StatusCode::UNAUTHORIZED, "invalid x-api-key", None))
            }
            None => {
                return Err(Shape.error(
                    StatusCode::UNAUTHORIZED,
                    "x-api-key header is required",
                    None,
                ))
            }
        }
    }
    if inb.header("anthropic-version").is_none() {
        return Err(bad_request("anthropic-version: header is required"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ToolsView {
    #[serde(default)]
    tools: Option<Vec<ToolView>>,
}

#[derive(Deserialize)]
struct ToolView {
    name: String,
    input_schema: Option<Box<RawValue>>,
}

/// Text of a string or a list of text blocks.
fn blocks_text(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str).map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The canonical conversation of a messages (or count_tokens) request.
pub(crate) fn conversation(body: &Value, bytes: &[u8]) -> Conversation {
    let mut messages = Vec::new();
    if let Some(system) = body.get("system") {
        messages.push(Msg {
            texts: blocks_text(Some(system)),
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
        match m.get("content") {
            Some(Value::String(s)) => msg.texts.push(s.clone()),
            Some(Value::Array(blocks)) => {
                for b in blocks {
                    match b.get("type").and_then(Value::as_str) {
                        Some("text") => msg
                            .texts
                            .extend(b.get("text").and_then(Value::as_str).map(str::to_owned)),
                        Some("tool_use") => msg
                            .tool_args
                            .push(rules::args_text(b.get("input").unwrap_or(&json!({})))),
                        Some("tool_result") => msg
                            .tool_results
                            .push(blocks_text(b.get("content")).join(" ")),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        messages.push(msg);
    }
    let tools = serde_json::from_slice::<ToolsView>(bytes)
        .ok()
        .and_then(|t| t.tools)
        .unwrap_or_default();
    let tools = tools
        .into_iter()
        .map(|t| Tool {
            name: t.name,
            schema: t
                .input_schema
                .as_deref()
                .map(rules::schema_props)
                .unwrap_or_default(),
        })
        .collect();
    let tc = body.get("tool_choice");
    let tool_choice = match tc.and_then(|t| t.get("type")).and_then(Value::as_str) {
        Some("none") => ToolChoice::None,
        Some("any") => ToolChoice::Any,
        Some("tool") => tc
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
            .map_or(ToolChoice::Any, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let stop = body
        .get("stop_sequences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // Native structured outputs: `output_config.format` (GA) or the beta `output_format`.
    let answer = [&["output_config", "format"][..], &["output_format"][..]]
        .iter()
        .find(|path| {
            let kind: Vec<&str> = path.iter().copied().chain(["type"]).collect();
            rules::raw_at(bytes, &kind).is_some_and(|t| t.get() == "\"json_schema\"")
        })
        .map(|path| {
            let at: Vec<&str> = path.iter().copied().chain(["schema"]).collect();
            rules::raw_at(bytes, &at)
                .map_or_else(rules::Schema::empty, |raw| rules::schema_props(&raw))
        });
    Conversation {
        messages,
        tools,
        tool_choice,
        max_tokens,
        stop,
        answer,
    }
}

fn stop_fields(plan: &Plan) -> (&'static str, Value) {
    match plan {
        Plan::ToolCall { .. } => ("tool_use", Value::Null),
        Plan::Text {
            finish: Finish::Length,
            ..
        } => ("max_tokens", Value::Null),
        Plan::Text {
            finish: Finish::StopSequence(s),
            ..
        } => ("stop_sequence", json!(s)),
        Plan::Text {
            finish: Finish::Stop,
            ..
        } => ("end_turn", Value::Null),
    }
}

/// Usage with Anthropic semantics: `input_tokens` excludes cache reads.
fn usage(input: u32, output: u32) -> Value {
    let cached = rules::cached_tokens(input);
    json!({
        "input_tokens": input - cached, "output_tokens": output,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached, "service_tier": "standard",
    })
}

async fn messages(State(ctx): State<Sim>, req: Request) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = inb.body();
    let model = body.get("model").and_then(Value::as_str).map(str::to_owned);
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let faults = match ctx.gate(&inb, model.as_deref(), stream, &Shape).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = authorize(&ctx, &inb) {
        return r;
    }
    let Some(model) = model else {
        return bad_request("model: Field required");
    };
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return bad_request("max_tokens: Field required");
    }
    let conv = conversation(inb.body(), &inb.bytes);
    let prefill = trailing_prefill(body, "messages", "assistant", &conv);
    if let Some(p) = &prefill {
        if faults.reject_prefill {
            return bad_request(PREFILL_UNSUPPORTED);
        }
        if p.ends_with(char::is_whitespace) {
            return bad_request(PREFILL_TRAILING_WHITESPACE);
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
    let id = ctx.next_id("msg_");
    let tool_id = format!(
        "toolu_{}",
        rules::hash_id(&[&speaker, &conv.last_user_text()])
    );
    let headers = [
        ("request-id", ctx.next_id("req_")),
        ("anthropic-ratelimit-requests-remaining", "999".to_owned()),
        ("anthropic-ratelimit-tokens-remaining", "999999".to_owned()),
    ];
    let (stop_reason, stop_sequence) = stop_fields(&plan);
    if !stream {
        let content = match &plan {
            Plan::Text { text, .. } => json!([{"type": "text", "text": text}]),
            Plan::ToolCall { name, args } => {
                let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
                json!([{"type": "tool_use", "id": tool_id, "name": name, "input": input}])
            }
        };
        let body = json!({
            "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": usage(input, plan.output_tokens()),
        });
        return json_response(StatusCode::OK, &body, &headers);
    }
    let mut start_usage = usage(input, 1);
    start_usage["output_tokens"] = json!(1);
    let message = json!({
        "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": start_usage,
    });
    let mut frames = vec![Frame::meta(sse_event(
        "message_start",
        &json!({"type": "message_start", "message": message}),
    ))];
    let (block, deltas): (Value, Vec<Value>) = match &plan {
        Plan::Text { text, .. } => (
            json!({"type": "text", "text": ""}),
            Plan::text_pieces(text)
                .into_iter()
                .map(|t| json!({"type": "text_delta", "text": t}))
                .collect(),
        ),
        Plan::ToolCall { name, args } => (
            json!({"type": "tool_use", "id": tool_id, "name": name, "input": {}}),
            Plan::arg_fragments(args)
                .into_iter()
                .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                .collect(),
        ),
    };
    let start = json!({"type": "content_block_start", "index": 0, "content_block": block});
    frames.push(Frame::meta(sse_event("content_block_start", &start)));
    frames.push(Frame::meta(sse_event("ping", &json!({"type": "ping"}))));
    for d in deltas {
        let ev = json!({"type": "content_block_delta", "index": 0, "delta": d});
        frames.push(Frame::token(sse_event("content_block_delta", &ev)));
    }
    frames.push(Frame::meta(sse_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    )));
    let mut final_usage = usage(input, plan.output_tokens());
    if let Some(u) = final_usage.as_object_mut() {
        u.remove("service_tier");
    }
    let delta = json!({
        "type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": final_usage,
    });
    frames.push(Frame::meta(sse_event("message_delta", &delta)));
    frames.push(Frame::end(sse_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    )));
    stream_response(
        &ctx,
        faults,
        "text/event-stream; charset=utf-8",
        frames,
        &Shape,
        &headers,
    )
}

async fn count_tokens(State(ctx): State<Sim>, req: Request) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let model = inb
        .body()
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Err(r) = ctx.gate(&inb, model.as_deref(), false, &Shape).await {
        return r;
    }
    if let Err(r) = authorize(&ctx, &inb) {
        return r;
    }
    let input = conversation(inb.body(), &inb.bytes).input_tokens();
    json_response(StatusCode::OK, &json!({"input_tokens": input}), &[])
}

/// The models the Anthropic simulator lists.
const MODELS: [&str; 2] = ["claude-sonnet-4-5", "claude-haiku-4-5"];

async fn models(State(ctx): State<Sim>, req: Request) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if let Err(r) = ctx.gate(&inb, None, false, &Shape).await {
        return r;
    }
    if let Err(r) = authorize(&ctx, &inb) {
        return r;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| {
            json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z", "lifecycle": "active"})
        })
        .collect();
    let body =
        json!({"data": data, "has_more": false, "first_id": MODELS[0], "last_id": MODELS[1]});
    json_response(StatusCode::OK, &body, &[])
}
