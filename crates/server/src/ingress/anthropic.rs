//! The Anthropic-compatible front door: `POST /v1/messages`, so Anthropic-SDK clients can be
//! routed to any provider.

use super::{authenticate, finish, read_body, request_id, resolve_model, Dialect};
use crate::egress::IngressRequest;
use crate::observe::Context;
use crate::{pipeline, ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;
use std::sync::Arc;
use switchyard_protocol::codec::anthropic_messages;
use switchyard_types::ErrorKind;
use tokio::time::Instant;

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
    let id = request_id();
    let started = Instant::now();
    let result = async {
        let snapshot = state.snapshot();
        let key = authenticate(&snapshot, &headers)?;
        require_version(&headers)?;
        let bytes = read_body(&headers, body, snapshot.settings.max_body_bytes).await?;
        let request = anthropic_messages::decode_request(&bytes)?;
        let model = resolve_model(&snapshot, &key, &request.model)?;
        let ctx = Context {
            request_id: id.clone(),
            dialect: Dialect::Anthropic,
            key: key.name.clone(),
            model: model.name.clone(),
            stream: request.stream,
            started,
            input_estimate: request.estimate_input_tokens(),
        };
        pipeline::chat(
            &state,
            &snapshot,
            model,
            IngressRequest::Anthropic(request),
            ctx,
        )
        .await
    }
    .await;
    finish(result, id, Dialect::Anthropic)
}
