//! The OpenAI-compatible front door: chat completions, embeddings and models.

use super::{
    authenticate, chat_front_door, finish, read_body, request_id, request_span, resolve_model,
    Dialect,
};
use crate::egress::{self, IngressRequest};
use crate::observe::{Context, Outcome, RequestEnd, Served};
use crate::pipeline;
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::HeaderMap;
use serde_json::json;
use std::sync::Arc;
use switchyard_protocol::codec::openai_chat::{self, GATEWAY_EXTENSION};
use switchyard_providers::Timeouts;
use switchyard_router::Estimate;
use tokio::time::Instant;
use tracing::Instrument;

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat_front_door(state, headers, body, Dialect::OpenAiChat, |_, bytes| {
        let parsed = openai_chat::decode_request(bytes)?;
        let extension = parsed.raw_field(GATEWAY_EXTENSION).map(str::to_string);
        Ok((IngressRequest::OpenAi(parsed), extension))
    })
    .await
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = request_id();
    let started = Instant::now();
    let span = request_span(&id, "embeddings");
    let result = async {
        let snapshot = state.snapshot();
        let key = authenticate(&state, &snapshot, &headers).await?;
        let bytes = read_body(&headers, body, snapshot.settings.max_body_bytes).await?;
        let parsed = Arc::new(openai_chat::decode_embeddings_request(&bytes)?);
        let model = resolve_model(&snapshot, &key, &parsed.request.model)?;
        let preferences = pipeline::preferences(&headers, None)?;
        let input_tokens = parsed
            .request
            .input
            .iter()
            .map(|t| t.len() as u64 / 4 + 1)
            .sum();
        let estimate = Estimate {
            input_tokens,
            max_output_tokens: 0,
        };
        let plan = pipeline::route(
            &state,
            &snapshot,
            &model.name,
            key.data_class.as_ref(),
            &preferences,
            estimate,
            false,
        )?;
        let admission = pipeline::admit(&state, &key, &model.name, &plan, estimate).await?;
        let total = snapshot.settings.timeouts.total;
        let timeouts = Timeouts {
            first_byte: total,
            total,
        };
        let budget = snapshot.catalog.policy().budget;
        let s = switchyard_router::execute(&plan, &state.health, &budget, |d| {
            let (parsed, state) = (parsed.clone(), state.clone());
            async move { egress::embeddings_attempt(&state.upstream, &parsed, &d, timeouts).await }
        })
        .await
        .map_err(|f| ApiError::from(f.error))?;
        let (body, usage) = s.value;
        let spent = usage.unwrap_or_default();
        let cost = s.permit.settle(&spent).cost;
        if let Some(admission) = admission {
            admission.settle_detached(spent, cost);
        }
        let served = Served {
            deployment: s.deployment,
            attempts: s.attempts,
        };
        let ctx = Context::new(
            &id,
            Dialect::OpenAiChat,
            &key,
            &state.runtime.ledger,
            started,
            ("embeddings", model.name.clone(), false, input_tokens),
        );
        RequestEnd {
            ctx: &ctx,
            served: Some(&served),
            failed_attempts: &Vec::new(),
            usage,
            usage_estimated: false,
            ttft: None,
            outcome: Outcome::Ok,
            unpriced: snapshot.unpriced.contains(&served.deployment.id),
        }
        .emit();
        Ok::<_, ApiError>(pipeline::json_response(body, &served, Some(cost)))
    }
    .instrument(span)
    .await;
    finish(result, id, Dialect::OpenAiChat)
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
    let key = authenticate(&state, &snapshot, &headers).await?;
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
    let key = authenticate(&state, &snapshot, &headers).await?;
    let model = resolve_model(&snapshot, &key, &id)?;
    Ok(Json(model_object(&model.name)).into_response())
}
