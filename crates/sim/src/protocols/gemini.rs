//! Google `generateContent`: the Gemini API and Vertex AI (which adds `createTime` and `trafficType`).
//!
//! Paths contain `model:method`, so one fallback handler parses them.

use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::google_oauth::{token_valid, TOKEN_PREFIX};
use crate::plumbing::{
    json_response, stream_response, trailing_prefill, ErrorShape, Frame, Inbound, Sim,
};
use crate::rules::{self, Conversation, Finish, Msg, Plan, Tool, ToolChoice};
use crate::SimProtocol;

/// Routes for the Gemini and Vertex protocols.
pub(super) fn router(ctx: Sim) -> Router {
    let routes = Router::new();
    // Vertex simulators also run the OAuth2 token endpoint their tokens come from.
    let routes = if ctx.protocol == SimProtocol::Vertex {
        routes.route("/token", axum::routing::post(super::google_oauth::token))
    } else {
        routes
    };
    routes.fallback(dispatch).with_state(ctx)
}

// === errors ===

struct Shape {
    /// Mid-stream errors as SSE events rather than JSON array elements.
    sse: bool,
}

fn canonical(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

fn error_json(status: StatusCode, message: &str, details: Vec<Value>) -> Value {
    let code = status.as_u16();
    json!({"error": {"code": code, "message": message, "status": canonical(code), "details": details}})
}

impl ErrorShape for Shape {
    fn error(&self, status: StatusCode, message: &str, retry_after: Option<u32>) -> Response {
        let details = retry_after
            .map(|s| vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{s}s")})])
            .unwrap_or_default();
        json_response(status, &error_json(status, message, details), &[])
    }

    fn stream_error(&self, status: StatusCode, message: &str) -> Bytes {
        let body = error_json(status, message, Vec::new());
        if self.sse {
            Bytes::from(format!("data: {body}\r\n\r\n"))
        } else {
            Bytes::from(format!(",\r\n{body}]"))
        }
    }

    fn malformed(&self) -> Bytes {
        let prefix = if self.sse { "data: " } else { ",\r\n" };
        Bytes::from(format!(
            "{prefix}{{\"candidates\": [{{\"content\": \r\n\r\n"
        ))
    }

    fn garbage(&self, first: bool) -> Bytes {
        // SSE: a complete event whose JSON lacks its closing brace. JSON array: an element with
        // balanced brackets and quotes (so it frames like any other) holding a bare word.
        const BAD: &str =
            r#"{"candidates": [{"content": {"role": "model", "parts": [{"text": sim-garbage}]}}]}"#;
        let bytes = match (self.sse, first) {
            (true, _) => format!("data: {}\r\n\r\n", &BAD[..BAD.len() - 1]),
            (false, true) => format!("{BAD},\r\n"),
            (false, false) => format!(",\r\n{BAD}"),
        };
        Bytes::from(bytes)
    }

    fn context_length(&self, input: u64, window: u64) -> Response {
        let message = format!("The input token count ({input}) exceeds the maximum number of tokens allowed ({window}).");
        error(StatusCode::BAD_REQUEST, &message, Vec::new())
    }

    /// Gemini refuses in-band: a 200 with `promptFeedback.blockReason`.
    fn content_filter(&self) -> Option<Response> {
        None
    }
}

fn error(status: StatusCode, message: &str, details: Vec<Value>) -> Response {
    json_response(status, &error_json(status, message, details), &[])
}

// === routing ===

/// A parsed `…/models/{model}:{method}` path.
#[derive(Debug, PartialEq)]
struct Target {
    model: String,
    method: String,
}

/// Parses a Gemini or Vertex path; `None` when it is not a model method.
fn parse_path(path: &str, vertex: bool) -> Option<Target> {
    let path = path.replace("%3A", ":").replace("%3a", ":");
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (ver, rest) = segs.split_first()?;
    if !ver.starts_with("v1") {
        return None;
    }
    let tail = match (vertex, rest) {
        (false, ["models", tail]) => *tail,
        (true, ["projects", _, "locations", _, "publishers", "google", "models", tail]) => *tail,
        (true, ["publishers", "google", "models", tail]) => *tail,
        _ => return None,
    };
    let (model, method) = tail.split_once(':')?;
    Some(Target {
        model: model.to_owned(),
        method: method.to_owned(),
    })
}

async fn dispatch(State(ctx): State<Sim>, req: Request) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let vertex = ctx.protocol == SimProtocol::Vertex;
    let sse = inb.params.get("alt").map(String::as_str) == Some("sse");
    let shape = Shape { sse };
    let target = parse_path(&inb.path, vertex);
    let is_list = inb.method == Method::GET && inb.path.trim_end_matches('/').ends_with("/models");
    let stream = target
        .as_ref()
        .is_some_and(|t| t.method == "streamGenerateContent");
    let faults = match ctx
        .gate(
            &inb,
            target.as_ref().map(|t| t.model.as_str()),
            stream,
            &shape,
        )
        .await
    {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = authorize(&ctx, &inb, vertex) {
        return r;
    }
    if is_list {
        let models: Vec<Value> = ["gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004"]
            .iter()
            .map(|m| json!({"name": format!("models/{m}"), "displayName": m, "supportedGenerationMethods": ["generateContent", "countTokens"]}))
            .collect();
        return json_response(StatusCode::OK, &json!({"models": models}), &[]);
    }
    let Some(target) = target.filter(|_| inb.method == Method::POST) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Method not found: {} {}", inb.method, inb.path),
            Vec::new(),
        );
    };
    let gen = Gen {
        ctx: &ctx,
        vertex,
        model: &target.model,
    };
    if matches!(
        target.method.as_str(),
        "generateContent" | "streamGenerateContent"
    ) {
        let input = conversation(inb.body(), &inb.bytes).input_tokens();
        if let Some(r) = ctx.content_gate(&faults, u64::from(input), &shape) {
            return r;
        }
    }
    match target.method.as_str() {
        "generateContent" => gen.generate(&inb, &faults),
        "streamGenerateContent" => gen.stream(&inb, faults, shape),
        "countTokens" => count_tokens(&inb),
        "embedContent" => embed(inb.body(), false),
        "batchEmbedContents" => embed(inb.body(), true),
        "predict" if vertex => predict(inb.body()),
        other => error(
            StatusCode::NOT_FOUND,
            &format!("Method {other} not found for model {}", target.model),
            Vec::new(),
        ),
    }
}

/// Gemini: `x-goog-api-key` or `?key=`; Vertex: `Authorization: Bearer` with a token from
/// this simulator's `/token` (unexpired), or the API key as a static token.
fn authorize(ctx: &Sim, inb: &Inbound, vertex: bool) -> Result<(), Response> {
    let unauthenticated = || {
        error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            Vec::new(),
        )
    };
    if vertex {
        if let Some(t) = inb.bearer().filter(|t| t.starts_with(TOKEN_PREFIX)) {
            if token_valid(ctx, t) {
                return Ok(());
            }
            ctx.controls.count_token_rejected();
            return Err(unauthenticated());
        }
    }
    let Some(key) = &ctx.api_key else {
        return Ok(());
    };
    if vertex {
        return match inb.bearer() {
            Some(t) if t == key => Ok(()),
            _ => Err(unauthenticated()),
        };
    }
    match inb.header("x-goog-api-key").or_else(|| inb.params.get("key").map(String::as_str)) {
        Some(g) if g == key => Ok(()),
        Some(_) => {
            let info = json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"});
            Err(error(StatusCode::BAD_REQUEST, "API key not valid. Please pass a valid API key.", vec![info]))
        }
        None => Err(error(StatusCode::FORBIDDEN, "Method doesn't allow unregistered callers. Please use API Key or other form of API consumer identity to call this API.", Vec::new())),
    }
}

// === conversation ===

/// A member by its lowerCamelCase or snake_case name.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

#[derive(Deserialize)]
struct ToolsView {
    #[serde(default)]
    tools: Option<Vec<ToolGroup>>,
}

#[derive(Deserialize)]
struct ToolGroup {
    #[serde(
        default,
        rename = "functionDeclarations",
        alias = "function_declarations"
    )]
    function_declarations: Option<Vec<FnDecl>>,
}

#[derive(Deserialize)]
struct FnDecl {
    name: String,
    parameters: Option<Box<RawValue>>,
    #[serde(rename = "parametersJsonSchema", alias = "parameters_json_schema")]
    parameters_json_schema: Option<Box<RawValue>>,
}

/// A function response as text: its only string member, or else its compact JSON.
fn response_text(resp: &Value) -> String {
    match resp.as_object() {
        Some(o) if o.len() == 1 => o
            .values()
            .next()
            .map_or_else(String::new, rules::value_text),
        _ => resp.to_string(),
    }
}

fn parts_msg(content: &Value, is_user: bool) -> Msg {
    let mut msg = Msg {
        is_user,
        ..Msg::default()
    };
    for p in content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            msg.texts.push(t.to_owned());
        } else if let Some(c) = field(p, "functionCall", "function_call") {
            msg.tool_args
                .push(rules::args_text(c.get("args").unwrap_or(&json!({}))));
        } else if let Some(r) = field(p, "functionResponse", "function_response") {
            msg.tool_results
                .push(response_text(r.get("response").unwrap_or(&Value::Null)));
        }
    }
    msg
}

pub(crate) fn conversation(body: &Value, bytes: &[u8]) -> Conversation {
    // countTokens may wrap the request.
    let body = field(body, "generateContentRequest", "generate_content_request").unwrap_or(body);
    let mut messages = Vec::new();
    if let Some(sys) = field(body, "systemInstruction", "system_instruction") {
        messages.push(parts_msg(sys, false));
    }
    for c in body
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        messages.push(parts_msg(
            c,
            c.get("role").and_then(Value::as_str) != Some("model"),
        ));
    }
    let tools = serde_json::from_slice::<ToolsView>(bytes)
        .ok()
        .and_then(|t| t.tools)
        .unwrap_or_default();
    let tools = tools
        .into_iter()
        .flat_map(|g| g.function_declarations.unwrap_or_default())
        .map(|f| {
            let schema = f.parameters_json_schema.or(f.parameters);
            Tool {
                name: f.name,
                schema: schema
                    .as_deref()
                    .map(rules::schema_props)
                    .unwrap_or_default(),
            }
        })
        .collect();
    let fcc = field(body, "toolConfig", "tool_config")
        .and_then(|t| field(t, "functionCallingConfig", "function_calling_config"));
    let mode = fcc
        .and_then(|c| c.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("AUTO")
        .to_ascii_uppercase();
    let allowed = fcc
        .and_then(|c| field(c, "allowedFunctionNames", "allowed_function_names"))
        .and_then(Value::as_array);
    let tool_choice = match mode.as_str() {
        "NONE" => ToolChoice::None,
        "ANY" => allowed
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map_or(ToolChoice::Any, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    let cfg = field(body, "generationConfig", "generation_config");
    let max_tokens = cfg
        .and_then(|c| field(c, "maxOutputTokens", "max_output_tokens"))
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let stop = cfg
        .and_then(|c| field(c, "stopSequences", "stop_sequences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // JSON mode: `responseMimeType: application/json`, with `responseJsonSchema` or the
    // OpenAPI-subset `responseSchema` (either spelling of each).
    let json_mode = cfg
        .and_then(|c| field(c, "responseMimeType", "response_mime_type"))
        .and_then(Value::as_str)
        == Some("application/json");
    let answer = json_mode.then(|| {
        let cfg_keys = ["generationConfig", "generation_config"];
        let schema_keys = [
            "responseJsonSchema",
            "response_json_schema",
            "responseSchema",
            "response_schema",
        ];
        cfg_keys
            .iter()
            .flat_map(|c| schema_keys.iter().map(move |s| [*c, *s]))
            .find_map(|path| rules::raw_at(bytes, &path))
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

// === generateContent ===

struct Gen<'a> {
    ctx: &'a Sim,
    vertex: bool,
    model: &'a str,
}

fn finish_reason(plan: &Plan) -> &'static str {
    match plan {
        Plan::Text {
            finish: Finish::Length,
            ..
        } => "MAX_TOKENS",
        _ => "STOP",
    }
}

impl Gen<'_> {
    /// `usageMetadata`; `output: None` gives the prompt-only form of early stream chunks.
    fn usage(&self, input: u32, output: Option<u32>) -> Value {
        let mut u =
            json!({"promptTokenCount": input, "totalTokenCount": input + output.unwrap_or(0)});
        let details = |n: u32| json!([{"modality": "TEXT", "tokenCount": n}]);
        u["promptTokensDetails"] = details(input);
        if let Some(out) = output {
            u["candidatesTokenCount"] = json!(out);
            u["candidatesTokensDetails"] = details(out);
            let cached = rules::cached_tokens(input);
            if cached > 0 {
                u["cachedContentTokenCount"] = json!(cached);
                u["cacheTokensDetails"] = details(cached);
            }
        }
        if self.vertex {
            u["trafficType"] = json!("ON_DEMAND");
        }
        u
    }

    /// One `GenerateContentResponse`.
    fn response(&self, id: &str, parts: Value, finish: Option<&str>, usage: Value) -> Value {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = json!(f);
        }
        let mut r = json!({"candidates": [cand], "usageMetadata": usage, "modelVersion": self.model, "responseId": id});
        if self.vertex {
            let now = aws_smithy_types::DateTime::from(SystemTime::now());
            r["createTime"] = json!(now
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default());
        }
        r
    }

    fn call_part(plan: &Plan) -> Option<Value> {
        match plan {
            Plan::ToolCall { name, args } => {
                let args: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
                Some(json!([{"functionCall": {"name": name, "args": args}}]))
            }
            Plan::Text { .. } => None,
        }
    }

    /// The conversation and its plan; a trailing `model` content with text is continued.
    fn plan(
        &self,
        inb: &Inbound,
        faults: &crate::Faults,
    ) -> Result<(Conversation, Plan), Response> {
        let conv = conversation(inb.body(), &inb.bytes);
        let prefill = trailing_prefill(inb.body(), "contents", "model", &conv);
        let speaker = self.ctx.speaker(faults);
        let plan = match &prefill {
            Some(_) if faults.reject_prefill => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Please ensure that multiturn requests end with a user role or a function response.",
                    Vec::new(),
                ))
            }
            Some(p) => conv.plan_continuing(speaker, p),
            None => conv.plan(speaker),
        };
        Ok((conv, plan))
    }

    fn generate(&self, inb: &Inbound, faults: &crate::Faults) -> Response {
        let (conv, plan) = match self.plan(inb, faults) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let parts = match &plan {
            Plan::Text { text, .. } => json!([{"text": text}]),
            Plan::ToolCall { .. } => Self::call_part(&plan).unwrap_or_default(),
        };
        let usage = self.usage(conv.input_tokens(), Some(plan.output_tokens()));
        let body = self.response(
            &self.ctx.next_id(""),
            parts,
            Some(finish_reason(&plan)),
            usage,
        );
        json_response(StatusCode::OK, &body, &[])
    }

    fn stream(&self, inb: &Inbound, faults: crate::Faults, shape: Shape) -> Response {
        let (conv, plan) = match self.plan(inb, &faults) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let input = conv.input_tokens();
        let id = self.ctx.next_id("");
        let finish = finish_reason(&plan);
        let final_usage = self.usage(input, Some(plan.output_tokens()));
        let mut objects = Vec::new();
        match &plan {
            Plan::Text { text, .. } => {
                let pieces = Plan::text_pieces(text);
                let last = pieces.len().saturating_sub(1);
                if pieces.is_empty() {
                    objects.push(self.response(
                        &id,
                        json!([{"text": ""}]),
                        Some(finish),
                        final_usage.clone(),
                    ));
                }
                for (i, p) in pieces.into_iter().enumerate() {
                    let (f, u) = if i == last {
                        (Some(finish), final_usage.clone())
                    } else {
                        (None, self.usage(input, None))
                    };
                    objects.push(self.response(&id, json!([{"text": p}]), f, u));
                }
            }
            Plan::ToolCall { .. } => {
                let parts = Self::call_part(&plan).unwrap_or_default();
                objects.push(self.response(&id, parts, Some(finish), final_usage.clone()));
            }
        }
        // The array's `[` is a frame of its own, so a fault can put an element before the first.
        let mut frames = Vec::new();
        if !shape.sse {
            frames.push(Frame::meta(Bytes::from_static(b"[")));
        }
        frames.extend(objects.iter().enumerate().map(|(i, o)| {
            let bytes = match (shape.sse, i) {
                (true, _) => format!("data: {o}\r\n\r\n"),
                (false, 0) => o.to_string(),
                (false, _) => format!(",\r\n{o}"),
            };
            Frame::token(Bytes::from(bytes))
        }));
        let content_type = if shape.sse {
            "text/event-stream"
        } else {
            frames.push(Frame::meta(Bytes::from_static(b"]")));
            "application/json; charset=UTF-8"
        };
        stream_response(self.ctx, faults, content_type, frames, &shape, &[])
    }
}

fn count_tokens(inb: &Inbound) -> Response {
    let n = conversation(inb.body(), &inb.bytes).input_tokens();
    json_response(
        StatusCode::OK,
        &json!({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}),
        &[],
    )
}

/// `embedContent` (`{embedding}`) or `batchEmbedContents` (`{embeddings: [...]}`).
fn embed(body: &Value, batch: bool) -> Response {
    let one = |req: &Value| {
        let text: Vec<String> = req
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let dims = field(req, "outputDimensionality", "output_dimensionality")
            .and_then(Value::as_u64)
            .map_or(8, |d| usize::try_from(d).unwrap_or(8));
        json!({"values": rules::embedding(&text.join(" "), dims)})
    };
    if batch {
        let reqs = body
            .get("requests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let embeddings: Vec<Value> = reqs.iter().map(one).collect();
        json_response(StatusCode::OK, &json!({"embeddings": embeddings}), &[])
    } else {
        json_response(StatusCode::OK, &json!({"embedding": one(body)}), &[])
    }
}

/// Vertex `predict` for text-embedding models: `{instances: [{content}], parameters:
/// {outputDimensionality}}` → `{predictions: [{embeddings: {values, statistics}}]}`.
fn predict(body: &Value) -> Response {
    let dims = body
        .pointer("/parameters/outputDimensionality")
        .and_then(Value::as_u64)
        .map_or(8, |d| usize::try_from(d).unwrap_or(8));
    let predictions: Vec<Value> = body
        .get("instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| {
            let text = i.get("content").and_then(Value::as_str).unwrap_or_default();
            json!({"embeddings": {"values": rules::embedding(text, dims),
                "statistics": {"token_count": rules::words(text), "truncated": false}}})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"predictions": predictions}), &[])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let t = parse_path(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            false,
        )
        .unwrap();
        assert_eq!(
            (t.model.as_str(), t.method.as_str()),
            ("gemini-2.5-flash", "streamGenerateContent")
        );
        let v = parse_path(
            "/v1beta1/projects/p/locations/us-central1/publishers/google/models/g:generateContent",
            true,
        );
        assert_eq!(v.unwrap().model, "g");
        assert!(parse_path("/v1/models/g:generateContent", true).is_none());
        assert!(parse_path("/v1/models", false).is_none());
    }

    #[test]
    fn function_response_text() {
        assert_eq!(response_text(&json!({"result": "sunny day"})), "sunny day");
        assert_eq!(response_text(&json!({"a": 1, "b": 2})), r#"{"a":1,"b":2}"#);
    }
}
