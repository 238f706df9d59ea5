//! The Anthropic-compatible front door: `POST /v1/messages` and its `count_tokens`, so
//! Anthropic-SDK clients can be routed to any provider.

use crate::egress::IngressRequest;
use crate::endpoints::{Chat, CountTokens};
use crate::error::ApiError;
use crate::pipeline::{self, Front};
use crate::request::{Api, ClientProtocol};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;
use std::sync::Arc;
use switchyard_protocol::codec::anthropic_messages;
use switchyard_types::ErrorKind;

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
    let front = Front {
        dialect: ClientProtocol::AnthropicMessages,
        api: Api::Chat,
    };
    pipeline::run(state, headers, body, front, |headers, bytes| {
        require_version(headers)?;
        let request = anthropic_messages::decode_request(&bytes)?;
        Ok(Chat {
            request: std::sync::Arc::new(IngressRequest::Anthropic(request)),
            extension: extension(&bytes)?,
        })
    })
    .await
}

/// `POST /v1/messages/count_tokens`.
pub(crate) async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let front = Front {
        dialect: ClientProtocol::AnthropicMessages,
        api: Api::CountTokens,
    };
    pipeline::run(state, headers, body, front, |headers, bytes| {
        require_version(headers)?;
        Ok(CountTokens {
            request: anthropic_messages::decode_count_tokens_request(&bytes)?,
        })
    })
    .await
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
