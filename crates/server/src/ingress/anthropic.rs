//! The Anthropic-compatible front door: `POST /v1/messages`, so Anthropic-SDK clients can be
//! routed to any provider.

use super::{
    authenticate, chat_front_door, finish, read_body, request_id, request_span, resolve_model,
    Dialect,
};
use crate::egress::{self, IngressRequest};
use crate::{pipeline, ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;
use std::sync::Arc;
use switchyard_protocol::codec::anthropic_messages;
use switchyard_protocol::upstream::upstream_codec;
use switchyard_providers::{Operation, Timeouts};
use switchyard_router::Estimate;
use switchyard_types::{ErrorKind, ProviderKind};
use tracing::Instrument;

/// Anthropic requires the header; so do we, to stay protocol-correct for its SDKs.
fn require_version(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key("anthropic-version") {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "anthropic-version: header is required",
        ))
    }
}

/// `POST /v1/messages`.
pub(crate) async fn messages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat_front_door(
        state,
        headers,
        body,
        Dialect::AnthropicMessages,
        |headers, bytes| {
            require_version(headers)?;
            let request = anthropic_messages::decode_request(bytes)?;
            Ok((IngressRequest::Anthropic(request), extension(bytes)?))
        },
    )
    .await
}

/// `POST /v1/messages/count_tokens`: answered by the first of the model's deployments whose
/// protocol can count (`UpstreamCodec::counts_tokens`: Anthropic, Gemini, Vertex); a 400 when
/// none can.
pub(crate) async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = request_id();
    let span = request_span(&id, "count_tokens");
    let result = async {
        let snapshot = state.snapshot();
        let key = authenticate(&state, &snapshot, &headers).await?;
        require_version(&headers)?;
        let bytes = read_body(&headers, body, snapshot.settings.max_body_bytes).await?;
        let request = Arc::new(anthropic_messages::decode_count_tokens_request(&bytes)?);
        let model = resolve_model(&snapshot, &key, &request.model)?;
        if !model.deployments.iter().any(|d| egress::counts_tokens(d)) {
            let counting: Vec<&str> = ProviderKind::ALL
                .into_iter()
                .filter(|&k| upstream_codec(k).counts_tokens())
                .map(ProviderKind::as_str)
                .collect();
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "count_tokens is not supported for model '{}': none of its deployments speaks a protocol that counts tokens ({})",
                    model.name,
                    counting.join(", ")
                ),
            ));
        }
        let estimate = Estimate {
            input_tokens: request.estimate_input_tokens(),
            max_output_tokens: 0,
        };
        let preferences = pipeline::preferences(&headers, None)?;
        let mut plan = pipeline::route(&state, &snapshot, &model.name, key.data_class.as_ref(), &preferences, estimate, false)?;
        plan.candidates.retain(|c| egress::counts_tokens(&c.deployment));
        let total = snapshot.settings.timeouts.total;
        let timeouts = Timeouts { first_byte: total, total };
        let budget = snapshot.catalog.policy().budget;
        let served = switchyard_router::execute(&plan, &state.health, &budget, |d| {
            let (state, request) = (state.clone(), request.clone());
            async move {
                let body = egress::count_tokens_body(&request, &d)?;
                let sent = state
                    .upstream
                    .send(&d.provider, Operation::CountTokens, &d.upstream_model, body, timeouts)
                    .await?;
                let answer = sent.body(&d.provider, 1024 * 1024).await?;
                egress::count_tokens_answer(&d, &answer)
            }
        })
        .await
        .map_err(|f| ApiError::from(f.error))?;
        let mut response = Response::new(Body::from(anthropic_messages::encode_count_tokens_response(served.value)));
        // Counting is free: release the capacity at once.
        served.permit.settle(&Default::default());
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        Ok(response)
    }
    .instrument(span)
    .await;
    finish(result, id, Dialect::AnthropicMessages)
}

/// The body's `switchyard` routing extension, if present (a shallow look at the top level).
fn extension(body: &[u8]) -> Result<Option<String>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow, rename = "switchyard")]
        ext: Option<&'a serde_json::value::RawValue>,
    }
    let top: Top<'_> = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.to_string()))?;
    Ok(top.ext.map(|r| r.get().to_string()))
}
