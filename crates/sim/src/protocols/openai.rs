//! OpenAI Chat Completions, shared by `openai`, `openai_compatible` and `azure_openai`.
//!
//! The three differ only in the data held by [`Flavor`]; the wire code is shared.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::plumbing::{
    json_response, sse_data, stream_response, trailing_prefill, unix_now, ErrorShape, Frame,
    Inbound, Sim,
};
use crate::rules::{self, Conversation, Finish, Msg, Plan, Tool, ToolChoice};
use crate::SimProtocol;

/// What distinguishes the OpenAI-shaped protocols.
#[derive(Clone, Copy, Debug)]
struct Flavor {
    /// Adds `service_tier` to responses.
    service_tier: bool,
    /// Adds an `obfuscation` padding field to stream chunks (unless the client opts out).
    obfuscation: bool,
    /// Azure: content-filter results, the special first chunk, versioned model names, Azure errors.
    azure: bool,
}

impl Flavor {
    fn of(p: SimProtocol) -> Self {
        match p {
            SimProtocol::OpenAi => Self {
                service_tier: true,
                obfuscation: true,
                azure: false,
            },
            SimProtocol::AzureOpenAi => Self {
                service_tier: false,
                obfuscation: false,
                azure: true,
            },
            _ => Self {
                service_tier: false,
                obfuscation: false,
                azure: false,
            },
        }
    }
}

struct Api {
    ctx: Sim,
    flavor: Flavor,
}

type Shared = Arc<Api>;

/// Routes for the OpenAI-shaped protocols.
pub(super) fn router(ctx: Sim) -> Router {
    let flavor = Flavor::of(ctx.protocol);
    let api = Arc::new(Api { ctx, flavor });
    let r = Router::new();
    let r = if flavor.azure {
        r.route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure_chat),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(azure_embeddings),
        )
        .route("/openai/v1/chat/completions", post(chat))
        .route("/openai/v1/embeddings", post(embeddings))
        .route("/openai/v1/models", get(models))
    } else {
        r.route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/models", get(models))
            .route("/v1/models/{id}", get(model))
    };
    r.with_state(api)
}

// === errors ===

struct Shape {
    azure: bool,
}

impl Shape {
    fn body(&self, status: StatusCode, message: &str) -> Value {
        let code = status.as_u16();
        if self.azure && code < 500 {
            return json!({"error": {"code": code.to_string(), "message": message}});
        }
        let (ty, code) = match code {
            400 => ("invalid_request_error", Value::Null),
            401 => ("invalid_request_error", json!("invalid_api_key")),
            403 => ("request_forbidden", Value::Null),
            404 => ("invalid_request_error", json!("model_not_found")),
            429 => ("requests", json!("rate_limit_exceeded")),
            c if c >= 500 => ("server_error", Value::Null),
            _ => ("invalid_request_error", Value::Null),
        };
        json!({"error": {"message": message, "type": ty, "param": null, "code": code}})
    }
}

impl ErrorShape for Shape {
    fn error(&self, status: StatusCode, message: &str, retry_after: Option<u32>) -> Response {
        let mut headers = vec![("x-request-id", "req_sim_error".to_owned())];
        if let (true, Some(s)) = (self.azure, retry_after) {
            headers.push(("retry-after-ms", (u64::from(s) * 1000).to_string()));
        }
        json_response(status, &self.body(status, message), &headers)
    }

    fn stream_error(&self, status: StatusCode, message: &str) -> Bytes {
        sse_data(&self.body(status, message))
    }

    fn malformed(&self) -> Bytes {
        Bytes::from_static(b"data: {\"id\": \"chatcmpl-broken\", \"choices\": [{\"delta\": \n\n")
    }

    fn garbage(&self, _first: bool) -> Bytes {
        // A complete SSE event; only its JSON lacks the closing brace.
        Bytes::from_static(b"data: {\"object\": \"chat.completion.chunk\", \"choices\": [{\"index\": 0, \"delta\": {\"content\": \"sim garbage\"}}]\n\n")
    }

    fn context_length(&self, input: u64, window: u64) -> Response {
        let message = format!("This model's maximum context length is {window} tokens. However, your messages resulted in {input} tokens. Please reduce the length of the messages.");
        let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
        json_response(
            StatusCode::BAD_REQUEST,
            &body,
            &[("x-request-id", "req_sim_error".to_owned())],
        )
    }

    fn content_filter(&self) -> Option<Response> {
        let body = if self.azure {
            // Azure's prompt filter: `type` null, the verdict per category in `innererror`.
            json!({"error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                "type": null, "param": "prompt", "code": "content_filter", "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                    "hate": {"filtered": true, "severity": "high"},
                    "self_harm": {"filtered": false, "severity": "safe"},
                    "sexual": {"filtered": false, "severity": "safe"},
                    "violence": {"filtered": false, "severity": "safe"}
                }}
            }})
        } else {
            json!({"error": {"message": "Your request was rejected as a result of our safety system.", "type": "invalid_request_error", "param": "messages", "code": "content_filter"}})
        };
        Some(json_response(
            StatusCode::BAD_REQUEST,
            &body,
            &[("x-request-id", "req_sim_error".to_owned())],
        ))
    }
}

impl Api {
    fn shape(&self) -> Shape {
        Shape {
            azure: self.flavor.azure,
        }
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        self.shape().error(status, message, None)
    }

    /// Checks the key: Bearer, or for Azure also the `api-key` header.
    fn authorize(&self, inb: &Inbound) -> Result<(), Response> {
        let Some(key) = &self.ctx.api_key else {
            return Ok(());
        };
        let given = inb.bearer().or_else(|| {
            if self.flavor.azure {
                inb.header("api-key")
            } else {
                None
            }
        });
        match given {
            Some(g) if g == key => Ok(()),
            Some(_) => Err(self.error(StatusCode::UNAUTHORIZED, "Incorrect API key provided.")),
            None if self.flavor.azure => Err(self.error(
                StatusCode::UNAUTHORIZED,
                "Access denied due to missing subscription key.",
            )),
            None => Err(json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error", "param": null, "code": null}}),
                &[],
            )),
        }
    }

    fn headers(&self, id: &str) -> Vec<(&'static str, String)> {
        let mut h = vec![("x-request-id", id.to_owned())];
        if self.flavor.azure {
            h.push(("apim-request-id", id.to_owned()));
            h.push(("x-ms-region", "Sim Central".to_owned()));
            h.push(("x-ratelimit-remaining-requests", "999".to_owned()));
            h.push(("x-ratelimit-remaining-tokens", "999999".to_owned()));
        } else {
            h.push(("openai-processing-ms", "1".to_owned()));
            h.push(("x-ratelimit-limit-requests", "1000".to_owned()));
            h.push(("x-ratelimit-remaining-requests", "999".to_owned()));
            h.push(("x-ratelimit-reset-requests", "60ms".to_owned()));
            h.push(("x-ratelimit-limit-tokens", "1000000".to_owned()));
            h.push(("x-ratelimit-remaining-tokens", "999999".to_owned()));
            h.push(("x-ratelimit-reset-tokens", "0s".to_owned()));
        }
        h
    }

    /// The model name a response reports: Azure answers with a versioned model name.
    fn response_model(&self, model: &str) -> String {
        if self.flavor.azure {
            format!("{model}-2024-08-06")
        } else {
            model.to_owned()
        }
    }
}

/// Azure's API-version check for deployment routes.
fn valid_api_version(v: Option<&String>) -> bool {
    let Some(v) = v else { return false };
    let b = v.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": {"code": "404", "message": "Resource not found"}}),
        &[],
    )
}

// === chat ===

async fn chat(State(api): State<Shared>, req: Request) -> Response {
    match Inbound::read(req).await {
        Ok(inb) => {
            let model = inb
                .body()
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned);
            chat_impl(&api, inb, model).await
        }
        Err(r) => r,
    }
}

async fn azure_chat(
    State(api): State<Shared>,
    Path(deployment): Path<String>,
    req: Request,
) -> Response {
    match Inbound::read(req).await {
        Ok(inb) if !valid_api_version(inb.params.get("api-version")) => not_found(),
        Ok(inb) => chat_impl(&api, inb, Some(deployment)).await,
        Err(r) => r,
    }
}

async fn chat_impl(api: &Api, inb: Inbound, model: Option<String>) -> Response {
    let body = inb.body();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let faults = match api
        .ctx
        .gate(&inb, model.as_deref(), stream, &api.shape())
        .await
    {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = api.authorize(&inb) {
        return r;
    }
    let Some(model) = model else {
        return missing("model");
    };
    if !body.get("messages").is_some_and(Value::is_array) {
        return missing("messages");
    }
    let conv = conversation(inb.body(), &inb.bytes);
    let prefill = match prefill(api, body, &conv, &faults) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let speaker = api.ctx.speaker(&faults).to_owned();
    let plan = match &prefill {
        Some(p) => conv.plan_continuing(&speaker, p),
        None => conv.plan(&speaker),
    };
    let input = conv.input_tokens();
    if let Some(r) = api
        .ctx
        .content_gate(&faults, u64::from(input), &api.shape())
    {
        return r;
    }
    // `n` choices, each the same reply, billed n times over (the prompt once), as OpenAI
    // does; a stream carries choice 0 only.
    let n = if stream {
        1
    } else {
        body.get("n")
            .and_then(Value::as_u64)
            .map_or(1, |n| n.clamp(1, 128) as u32)
    };
    let out = Out {
        id: api.ctx.next_id("chatcmpl-"),
        model: api.response_model(&model),
        created: unix_now(),
        usage: usage(input, plan.output_tokens() * n),
        call_id: format!(
            "call_{}",
            rules::hash_id(&[&speaker, &conv.last_user_text()])
        ),
    };
    let headers = api.headers(&out.id);
    if !stream {
        return json_response(StatusCode::OK, &api.completion(&out, &plan, n), &headers);
    }
    let opts = body.get("stream_options");
    let flag = |k: &str| opts.and_then(|o| o.get(k)).and_then(Value::as_bool);
    let include_usage = flag("include_usage").unwrap_or(false);
    let obfuscate = api.flavor.obfuscation && flag("include_obfuscation").unwrap_or(true);
    let frames = api.chunks(&out, &plan, include_usage, obfuscate);
    stream_response(
        &api.ctx,
        faults,
        "text/event-stream; charset=utf-8",
        frames,
        &api.shape(),
        &headers,
    )
}

/// The assistant prefill to continue: the trailing assistant message's text, only with vLLM's
/// and SGLang's `continue_final_message: true` (otherwise it is history, as for OpenAI).
fn prefill(
    api: &Api,
    body: &Value,
    conv: &Conversation,
    faults: &crate::Faults,
) -> Result<Option<String>, Response> {
    let flag = |k: &str| body.get(k).and_then(Value::as_bool);
    if flag("continue_final_message") != Some(true) {
        return Ok(None);
    }
    if faults.reject_prefill {
        // What OpenAI itself answers to the extension's field.
        return Err(api.error(
            StatusCode::BAD_REQUEST,
            "Unrecognized request argument supplied: continue_final_message",
        ));
    }
    if flag("add_generation_prompt") == Some(true) {
        return Err(api.error(
            StatusCode::BAD_REQUEST,
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
        ));
    }
    Ok(trailing_prefill(body, "messages", "assistant", conv))
}

fn missing(param: &str) -> Response {
    let msg = format!("Missing required parameter: '{param}'.");
    let body = json!({"error": {"message": msg, "type": "invalid_request_error", "param": param, "code": "missing_required_parameter"}});
    json_response(StatusCode::BAD_REQUEST, &body, &[])
}

/// Text of a `content` that is a string or a list of parts.
fn content_text(c: Option<&Value>) -> Vec<String> {
    match c {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Deserialize)]
struct ToolsView {
    #[serde(default)]
    tools: Option<Vec<ToolView>>,
}

#[derive(Deserialize)]
struct ToolView {
    function: Option<FnView>,
}

#[derive(Deserialize)]
struct FnView {
    name: String,
    parameters: Option<Box<RawValue>>,
}

/// The canonical conversation of a chat request.
pub(crate) fn conversation(body: &Value, bytes: &[u8]) -> Conversation {
    let mut messages = Vec::new();
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let mut msg = Msg {
            is_user: role == "user" || role == "tool",
            ..Msg::default()
        };
        if role == "tool" {
            msg.tool_results = content_text(m.get("content"));
        } else {
            msg.texts = content_text(m.get("content"));
        }
        for call in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let args = call
                .pointer("/function/arguments")
                .cloned()
                .unwrap_or(Value::Null);
            msg.tool_args.push(rules::args_text(&args));
        }
        messages.push(msg);
    }
    let tools = serde_json::from_slice::<ToolsView>(bytes)
        .ok()
        .and_then(|t| t.tools)
        .unwrap_or_default();
    let tools = tools
        .into_iter()
        .filter_map(|t| t.function)
        .map(|f| Tool {
            name: f.name,
            schema: f
                .parameters
                .as_deref()
                .map(rules::schema_props)
                .unwrap_or_default(),
        })
        .collect();
    let tool_choice = match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "required" => ToolChoice::Any,
        Some(v @ Value::Object(_)) => v
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Any, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let stop = match body.get("stop") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    // `response_format`: a schema's answer, or (`json_object`) any JSON object.
    let answer = match body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
    {
        Some("json_schema") => Some(
            rules::raw_at(bytes, &["response_format", "json_schema", "schema"])
                .map_or_else(rules::Schema::empty, |raw| rules::schema_props(&raw)),
        ),
        Some("json_object") => Some(rules::Schema::empty()),
        _ => None,
    };
    Conversation {
        messages,
        tools,
        tool_choice,
        max_tokens,
        stop,
        answer,
    }
}

fn usage(input: u32, output: u32) -> Value {
    json!({
        "prompt_tokens": input,
        "completion_tokens": output,
        "total_tokens": input + output,
        "prompt_tokens_details": {"cached_tokens": rules::cached_tokens(input), "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

fn finish_reason(plan: &Plan) -> &'static str {
    match plan {
        Plan::ToolCall { .. } => "tool_calls",
        Plan::Text {
            finish: Finish::Length,
            ..
        } => "length",
        Plan::Text { .. } => "stop",
    }
}

/// Per-response values shared by the body and the chunks.
struct Out {
    id: String,
    model: String,
    created: u64,
    usage: Value,
    call_id: String,
}

fn severity_results() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

fn prompt_filter_results() -> Value {
    let mut r = severity_results();
    r["jailbreak"] = json!({"filtered": false, "detected": false});
    json!([{"prompt_index": 0, "content_filter_results": r}])
}

impl Api {
    fn completion(&self, out: &Out, plan: &Plan, n: u32) -> Value {
        let mut message =
            json!({"role": "assistant", "content": null, "refusal": null, "annotations": []});
        match plan {
            Plan::Text { text, .. } => message["content"] = json!(text),
            Plan::ToolCall { name, args } => {
                message["tool_calls"] = json!([{"id": out.call_id, "type": "function", "function": {"name": name, "arguments": args}}]);
            }
        }
        let mut choice = json!({"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(plan)});
        let mut body = json!({
            "id": out.id, "object": "chat.completion", "created": out.created, "model": out.model,
            "system_fingerprint": "fp_sim", "choices": [], "usage": out.usage,
        });
        if self.flavor.service_tier {
            body["service_tier"] = json!("default");
        }
        if self.flavor.azure {
            let mut filters = severity_results();
            filters["protected_material_code"] = json!({"filtered": false, "detected": false});
            filters["protected_material_text"] = json!({"filtered": false, "detected": false});
            choice["content_filter_results"] = filters;
            body["prompt_filter_results"] = prompt_filter_results();
        }
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                let mut c = choice.clone();
                c["index"] = json!(i);
                c
            })
            .collect();
        body["choices"] = json!(choices);
        body
    }

    fn chunks(&self, out: &Out, plan: &Plan, include_usage: bool, obfuscate: bool) -> Vec<Frame> {
        let mut n = 0usize;
        let mut chunk = |choices: Value, usage: Option<&Value>| {
            let mut c = json!({
                "id": out.id, "object": "chat.completion.chunk", "created": out.created,
                "model": out.model, "system_fingerprint": "fp_sim", "choices": choices,
            });
            if self.flavor.service_tier {
                c["service_tier"] = json!("default");
            }
            if include_usage {
                c["usage"] = usage.cloned().unwrap_or(Value::Null);
            }
            if obfuscate {
                n += 1;
                let pad = rules::hash_id(&[&out.id, &n.to_string()]);
                c["obfuscation"] = json!(&pad[..4 + n % 12]);
            }
            sse_data(&c)
        };
        let choice = |delta: Value, finish: Value, filters: Value| {
            let mut ch =
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
            if self.flavor.azure {
                ch["content_filter_results"] = filters;
            }
            json!([ch])
        };
        let mut frames = Vec::new();
        if self.flavor.azure {
            let first = json!({"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": prompt_filter_results()});
            frames.push(Frame::meta(sse_data(&first)));
        }
        match plan {
            Plan::Text { text, .. } => {
                let role = json!({"role": "assistant", "content": "", "refusal": null});
                frames.push(Frame::meta(chunk(
                    choice(role, Value::Null, json!({})),
                    None,
                )));
                for piece in Plan::text_pieces(text) {
                    let c = choice(json!({"content": piece}), Value::Null, severity_results());
                    frames.push(Frame::token(chunk(c, None)));
                }
            }
            Plan::ToolCall { name, args } => {
                let call = json!([{"index": 0, "id": out.call_id, "type": "function", "function": {"name": name, "arguments": ""}}]);
                let first = json!({"role": "assistant", "content": null, "tool_calls": call});
                frames.push(Frame::meta(chunk(
                    choice(first, Value::Null, json!({})),
                    None,
                )));
                for frag in Plan::arg_fragments(args) {
                    let d = json!({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]});
                    frames.push(Frame::token(chunk(choice(d, Value::Null, json!({})), None)));
                }
            }
        }
        let fin = choice(json!({}), json!(finish_reason(plan)), json!({}));
        frames.push(Frame::meta(chunk(fin, None)));
        if include_usage {
            frames.push(Frame::meta(chunk(json!([]), Some(&out.usage))));
        }
        frames.push(Frame::end(Bytes::from_static(b"data: [DONE]\n\n")));
        frames
    }
}

// === embeddings and models ===

async fn embeddings(State(api): State<Shared>, req: Request) -> Response {
    match Inbound::read(req).await {
        Ok(inb) => {
            let model = inb
                .body()
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned);
            embeddings_impl(&api, inb, model).await
        }
        Err(r) => r,
    }
}

async fn azure_embeddings(
    State(api): State<Shared>,
    Path(deployment): Path<String>,
    req: Request,
) -> Response {
    match Inbound::read(req).await {
        Ok(inb) if !valid_api_version(inb.params.get("api-version")) => not_found(),
        Ok(inb) => embeddings_impl(&api, inb, Some(deployment)).await,
        Err(r) => r,
    }
}

/// Embedding inputs as `(text, tokens)`; token arrays become their numbers joined by spaces.
fn embedding_inputs(input: &Value) -> Vec<(String, u32)> {
    let tokens_text = |a: &[Value]| {
        let text = a.iter().map(Value::to_string).collect::<Vec<_>>().join(" ");
        (text, u32::try_from(a.len()).unwrap_or(u32::MAX))
    };
    match input {
        Value::String(s) => vec![(s.clone(), rules::words(s))],
        Value::Array(items) if items.iter().all(Value::is_number) => vec![tokens_text(items)],
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Array(a) => tokens_text(a),
                other => {
                    let s = rules::value_text(other);
                    let w = rules::words(&s);
                    (s, w)
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

async fn embeddings_impl(api: &Api, inb: Inbound, model: Option<String>) -> Response {
    if let Err(r) = api
        .ctx
        .gate(&inb, model.as_deref(), false, &api.shape())
        .await
    {
        return r;
    }
    if let Err(r) = api.authorize(&inb) {
        return r;
    }
    let Some(model) = model else {
        return missing("model");
    };
    let body = inb.body();
    let Some(input) = body.get("input") else {
        return missing("input");
    };
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(8, |d| usize::try_from(d).unwrap_or(8));
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let inputs = embedding_inputs(input);
    let tokens: u32 = inputs.iter().map(|(_, t)| t).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, (text, _))| {
            let v = rules::embedding(text, dims);
            let emb = if base64 {
                let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(raw))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": emb})
        })
        .collect();
    let body = json!({
        "object": "list", "data": data, "model": api.response_model(&model),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    let id = api.ctx.next_id("req_");
    json_response(StatusCode::OK, &body, &api.headers(&id))
}

/// The models every OpenAI-shaped simulator lists.
const MODELS: [&str; 3] = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"];

fn model_json(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "switchyard-sim"})
}

async fn models(State(api): State<Shared>, req: Request) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if let Err(r) = api.ctx.gate(&inb, None, false, &api.shape()).await {
        return r;
    }
    if let Err(r) = api.authorize(&inb) {
        return r;
    }
    let data: Vec<Value> = MODELS.iter().map(|m| model_json(m)).collect();
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data}),
        &[],
    )
}

async fn model(State(api): State<Shared>, Path(id): Path<String>, req: Request) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if let Err(r) = api.ctx.gate(&inb, Some(&id), false, &api.shape()).await {
        return r;
    }
    if let Err(r) = api.authorize(&inb) {
        return r;
    }
    json_response(StatusCode::OK, &model_json(&id), &[])
}
