//! Front doors. Handlers stay thin: authenticate, read, decode, then hand over to routing.

use crate::config::KeyEntry;
use crate::egress::IngressRequest;
use crate::observe::Context;
use crate::{pipeline, ApiError, AppState, Snapshot};
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::Arc;
use switchyard_governance::{KeyStore, Principal};
use switchyard_router::{DataClass, Model};
use switchyard_types::ErrorKind;
use tokio::time::Instant;
use tracing::Instrument;

pub(crate) mod anthropic;
pub(crate) mod openai;

/// A client protocol (front door); the protocol crate owns what each one writes.
pub(crate) type Dialect = switchyard_protocol::client::ClientProtocol;

/// The request id header, set on every response and in every log line of the request.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The span of one request: its id for every log line inside it, and the GenAI attributes
/// recorded when it ends (OpenTelemetry semantic conventions).
pub(crate) fn request_span(id: &HeaderValue, operation: &'static str) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        otel.name = operation,
        otel.kind = "server",
        gen_ai.operation.name = operation,
        gen_ai.request.model = tracing::field::Empty,
        gen_ai.provider.name = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        switchyard.deployment = tracing::field::Empty,
        switchyard.attempts = tracing::field::Empty,
        switchyard.outcome = tracing::field::Empty,
    )
}

/// A fresh request id: 16 random bytes in hex.
pub(crate) fn request_id() -> HeaderValue {
    let id: u128 = rand::random();
    HeaderValue::from_str(&format!("req_{id:032x}"))
        .unwrap_or(HeaderValue::from_static("req_unknown"))
}

/// Who is calling: a key from the config file, or a managed key with its team, limits and
/// budgets.
pub(crate) struct Caller {
    /// The key's id (its name for config keys); never the secret.
    pub key_id: Arc<str>,
    /// The key's name.
    pub key_name: Arc<str>,
    /// The owning team (managed keys).
    pub team: Option<Arc<str>>,
    /// The data class of the key's requests.
    pub data_class: Option<DataClass>,
    who: Who,
}

enum Who {
    Config(Arc<KeyEntry>),
    Managed(Box<Principal>),
}

impl Caller {
    /// Whether the key may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        match &self.who {
            Who::Config(k) => k.allows(model),
            Who::Managed(p) => p.allows_model(model),
        }
    }

    /// The governance principal (managed keys only: config keys carry no limits or budgets).
    pub fn principal(&self) -> Option<&Principal> {
        match &self.who {
            Who::Config(_) => None,
            Who::Managed(p) => Some(p),
        }
    }
}

/// The secret the client presented: `x-api-key` (the Anthropic SDK's classic header) or
/// `Authorization: Bearer`; both front doors accept both.
fn presented_secret(headers: &HeaderMap) -> Result<&str, ApiError> {
    if let Some(key) = headers.get("x-api-key") {
        return Ok(key.to_str().unwrap_or_default().trim());
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorKind::Authentication,
            "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'.",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Authentication,
                "The Authorization header must be 'Bearer <key>'.",
            )
            .with_code("invalid_api_key")
        })
}

/// Finds the caller: config keys first, then managed keys.
pub(crate) async fn authenticate(
    state: &AppState,
    snapshot: &Snapshot,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let secret = presented_secret(headers)?;
    if let Some(key) = snapshot.key(secret) {
        return Ok(Caller {
            key_id: key.name.clone(),
            key_name: key.name.clone(),
            team: None,
            data_class: key.data_class.clone(),
            who: Who::Config(key.clone()),
        });
    }
    let principal = state.runtime.keys.authenticate(secret).await.map_err(|e| {
        tracing::error!(error = %e, "the keys database cannot be read");
        ApiError::new(
            ErrorKind::NoCapacity,
            "Keys cannot be checked right now; retry shortly.",
        )
    })?;
    let Some(p) = principal else {
        return Err(
            ApiError::new(ErrorKind::Authentication, "Incorrect API key provided.")
                .with_code("invalid_api_key"),
        );
    };
    let data_class = match p.data_class.as_str() {
        "" => None,
        label => DataClass::new(label).ok(),
    };
    Ok(Caller {
        key_id: p.key_id.as_str().into(),
        key_name: p.key_name.as_str().into(),
        team: Some(p.team.as_str().into()),
        data_class,
        who: Who::Managed(Box::new(p)),
    })
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("The request body is larger than this gateway's limit of {limit} bytes."),
        )
        .with_code("request_too_large")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Could not read the request body: {e}"),
        )),
    }
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: a config is loaded and at least one model can be served.
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.snapshot();
    if snapshot.catalog.models().next().is_some() {
        (http::StatusCode::OK, "ready").into_response()
    } else {
        ApiError::new(ErrorKind::NoCapacity, "no models are configured").into_response()
    }
}

/// Unknown paths.
pub(crate) async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("Unknown request URL: {}", uri.path()),
    )
    .with_code("unknown_url")
}

/// Known paths with the wrong method.
pub(crate) async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Response {
    let mut response = ApiError::new(
        ErrorKind::InvalidRequest,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
    .into_response();
    *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Renders an error in the client's protocol and stamps the request id.
pub(crate) fn finish(
    result: Result<Response, ApiError>,
    id: HeaderValue,
    dialect: Dialect,
) -> Response {
    let mut response = result.unwrap_or_else(|e| {
        tracing::info!(request_id = ?id, kind = %e.kind, error = %e.message, "request rejected");
        crate::metrics::rejected(dialect.as_str(), e.kind);
        e.render(dialect)
    });
    if dialect == Dialect::AnthropicMessages {
        response
            .headers_mut()
            .insert(HeaderName::from_static("request-id"), id.clone());
    }
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}

/// The model `name`, if it exists and `key` may use it.
pub(crate) fn resolve_model<'a>(
    snapshot: &'a Snapshot,
    key: &Caller,
    name: &str,
) -> Result<&'a Model, ApiError> {
    let not_found = || {
        let mut e = ApiError::new(
            ErrorKind::NotFound,
            format!("The model '{name}' does not exist or you do not have access to it."),
        )
        .with_code("model_not_found");
        e.param = Some("model".into());
        e
    };
    let model = snapshot.catalog.model(name).ok_or_else(not_found)?;
    if key.allows(name) {
        Ok(model)
    } else {
        // Same answer as an unknown model, so keys cannot probe what exists.
        Err(not_found())
    }
}

/// A decoded chat request and its `switchyard` routing extension, if any.
pub(crate) type Decoded = (IngressRequest, Option<String>);

/// The path every chat front door shares: authenticate, read the body, decode it (the front
/// door's part), resolve the model, then hand over to the pipeline.
pub(crate) async fn chat_front_door(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    dialect: Dialect,
    decode: impl FnOnce(&HeaderMap, &[u8]) -> Result<Decoded, ApiError>,
) -> Response {
    let id = request_id();
    let started = Instant::now();
    let span = request_span(&id, "chat");
    let result = async {
        let snapshot = state.snapshot();
        let key = authenticate(&state, &snapshot, &headers).await?;
        let bytes = read_body(&headers, body, snapshot.settings.max_body_bytes).await?;
        let (request, extension) = decode(&headers, &bytes)?;
        let canonical = request.canonical();
        let model = resolve_model(&snapshot, &key, &canonical.model)?;
        let ctx = Context::new(
            &id,
            dialect,
            &key,
            &state.runtime.ledger,
            started,
            (
                "chat",
                model.name.clone(),
                canonical.stream,
                canonical.estimate_input_tokens(),
            ),
        );
        let preferences = pipeline::preferences(&headers, extension.as_deref())?;
        pipeline::chat(&state, &snapshot, request, ctx, &key, &preferences).await
    }
    .instrument(span)
    .await;
    finish(result, id, dialect)
}
