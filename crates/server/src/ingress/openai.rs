//! The OpenAI-compatible front door: chat completions, embeddings and models.

use crate::egress::IngressRequest;
use crate::endpoints::{Chat, Embeddings};
use crate::error::ApiError;
use crate::pipeline::{self, phases, Front};
use crate::request::{Api, ClientProtocol};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::HeaderMap;
use serde_json::json;
use std::sync::Arc;
use switchyard_protocol::codec::openai_chat::{self, GATEWAY_EXTENSION};

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let front = Front {
        dialect: ClientProtocol::OpenAiChat,
        api: Api::Chat,
    };
    pipeline::run(state, headers, body, front, |_, bytes| {
        let parsed = openai_chat::decode_request(&bytes)?;
        let extension = parsed.raw_field(GATEWAY_EXTENSION).map(str::to_string);
        Ok(Chat {
            request: std::sync::Arc::new(IngressRequest::OpenAi(parsed)),
            extension,
        })
    })
    .await
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let front = Front {
        dialect: ClientProtocol::OpenAiChat,
        api: Api::Embeddings,
    };
    pipeline::run(state, headers, body, front, |_, bytes| {
        Ok(Embeddings {
            parsed: openai_chat::decode_embeddings_request(&bytes)?,
        })
    })
    .await
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
    let key = phases::authenticate(&state, &snapshot, &headers).await?;
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
    let key = phases::authenticate(&state, &snapshot, &headers).await?;
    let model = phases::resolve_model(&snapshot, &key, &id)?;
    Ok(Json(model_object(&model.name)).into_response())
}
