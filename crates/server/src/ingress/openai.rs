//! The OpenAI-compatible front door: chat completions, embeddings and models.

use super::{authenticate, read_body, request_id, REQUEST_ID};
use crate::config::KeyEntry;
use crate::relay::{self, Served};
use crate::{ApiError, AppState, Snapshot};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use serde_json::json;
use std::sync::Arc;
use switchyard_protocol::codec::openai_chat::{self, ParsedChatRequest};
use switchyard_providers::{AttemptError, Operation, Timeouts};
use switchyard_router::{Deployment, Model};
use switchyard_types::ErrorKind;
use tokio::time::Instant;

/// Largest upstream answer we buffer for a non-streaming call.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = request_id();
    let started = Instant::now();
    let mut response = match chat_inner(&state, &headers, body, &id, started).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(request_id = ?id, kind = %e.kind, status = e.kind.status(), error = %e.message, "chat request failed");
            e.into_response()
        }
    };
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}

async fn chat_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    id: &HeaderValue,
    started: Instant,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot();
    let key = authenticate(&snapshot, headers)?;
    let bytes = read_body(headers, body, snapshot.settings.max_body_bytes).await?;
    let parsed = Arc::new(openai_chat::decode_request(&bytes)?);
    let model = resolve_model(&snapshot, &key, &parsed.request.model)?;
    let plan = snapshot.catalog.plan(model, &state.health);
    let settings = &snapshot.settings;
    let stream = parsed.request.stream;
    let timeouts = Timeouts {
        first_byte: if stream {
            settings.timeouts.first_byte
        } else {
            settings.timeouts.total
        },
        total: settings.timeouts.total,
    };
    let ctx = relay::Context {
        request_id: id.clone(),
        key: key.name.clone(),
        model: model.name.clone(),
        started,
    };
    if stream {
        let include_usage = parsed.request.include_usage;
        let stall = settings.timeouts.stall;
        let (relay, deployment, attempts) =
            switchyard_router::run(&plan, &state.health, settings.max_attempts, |d| {
                let parsed = parsed.clone();
                let state = state.clone();
                async move {
                    let body = egress_body(&parsed, &d, true)?;
                    let sent = state
                        .upstream
                        .send(
                            &d.provider,
                            Operation::Chat { stream: true },
                            &d.upstream_model,
                            body,
                            timeouts,
                        )
                        .await?;
                    relay::Relay::open(sent, d.provider.clone(), include_usage, stall).await
                }
            })
            .await
            .map_err(|f| ApiError::from(f.error))?;
        let served = Served {
            deployment,
            attempts,
        };
        let mut response = Response::new(Body::from_stream(relay.into_stream(ctx, served.clone())));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        served.write_headers(h);
        Ok(response)
    } else {
        let (body, deployment, attempts) =
            switchyard_router::run(&plan, &state.health, settings.max_attempts, |d| {
                let parsed = parsed.clone();
                let state = state.clone();
                async move {
                    let body = egress_body(&parsed, &d, false)?;
                    let sent = state
                        .upstream
                        .send(
                            &d.provider,
                            Operation::Chat { stream: false },
                            &d.upstream_model,
                            body,
                            timeouts,
                        )
                        .await?;
                    sent.body(&d.provider, MAX_RESPONSE_BYTES).await
                }
            })
            .await
            .map_err(|f| ApiError::from(f.error))?;
        let served = Served {
            deployment,
            attempts,
        };
        relay::finished(&ctx, &served, openai_chat::usage_from_response(&body), "ok");
        Ok(json_response(body, &served))
    }
}

/// The body for one upstream attempt: passed through with minimal rewriting for
/// OpenAI-shaped upstreams.
fn egress_body(
    parsed: &ParsedChatRequest,
    d: &Deployment,
    stream: bool,
) -> Result<Bytes, AttemptError> {
    if d.kind().is_openai_shaped() {
        Ok(Bytes::from(
            parsed.passthrough_body(&d.upstream_model, stream),
        ))
    } else {
        Err(AttemptError::new(
            ErrorKind::Internal,
            format!(
                "provider kind '{}' is not supported by this build",
                d.kind()
            ),
        ))
    }
}

fn json_response(body: Bytes, served: &Served) -> Response {
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    served.write_headers(h);
    response
}

fn resolve_model<'a>(
    snapshot: &'a Snapshot,
    key: &KeyEntry,
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

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = request_id();
    let started = Instant::now();
    let result = async {
        let snapshot = state.snapshot();
        let key = authenticate(&snapshot, &headers)?;
        let bytes = read_body(&headers, body, snapshot.settings.max_body_bytes).await?;
        let parsed = Arc::new(openai_chat::decode_embeddings_request(&bytes)?);
        let model = resolve_model(&snapshot, &key, &parsed.request.model)?;
        let plan = snapshot.catalog.plan(model, &state.health);
        let timeouts = Timeouts {
            first_byte: snapshot.settings.timeouts.total,
            total: snapshot.settings.timeouts.total,
        };
        let (body, deployment, attempts) =
            switchyard_router::run(&plan, &state.health, snapshot.settings.max_attempts, |d| {
                let parsed = parsed.clone();
                let state = state.clone();
                async move {
                    if !d.kind().is_openai_shaped() {
                        return Err(AttemptError::new(
                            ErrorKind::Internal,
                            format!(
                                "embeddings through '{}' are not supported by this build",
                                d.kind()
                            ),
                        ));
                    }
                    let body = Bytes::from(parsed.passthrough_body(&d.upstream_model));
                    let sent = state
                        .upstream
                        .send(
                            &d.provider,
                            Operation::Embeddings,
                            &d.upstream_model,
                            body,
                            timeouts,
                        )
                        .await?;
                    sent.body(&d.provider, MAX_RESPONSE_BYTES).await
                }
            })
            .await
            .map_err(|f| ApiError::from(f.error))?;
        let served = Served {
            deployment,
            attempts,
        };
        let ctx = relay::Context {
            request_id: id.clone(),
            key: key.name.clone(),
            model: model.name.clone(),
            started,
        };
        relay::finished(&ctx, &served, openai_chat::embeddings_usage(&body), "ok");
        Ok::<_, ApiError>(json_response(body, &served))
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}

fn model_object(name: &str) -> serde_json::Value {
    json!({"id": name, "object": "model", "created": 0, "owned_by": "switchyard"})
}

/// `GET /v1/models`: the models the caller's key may use.
pub(crate) async fn list_models(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot();
    let key = authenticate(&snapshot, &headers)?;
    let data: Vec<_> = snapshot
        .catalog
        .models()
        .filter(|m| key.allows(&m.name))
        .map(|m| model_object(&m.name))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

/// `GET /v1/models/{id}`.
pub(crate) async fn get_model(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot();
    let key = authenticate(&snapshot, &headers)?;
    let model = resolve_model(&snapshot, &key, &id)?;
    Ok(Json(model_object(&model.name)).into_response())
}
