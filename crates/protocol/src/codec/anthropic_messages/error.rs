//! Anthropic error bodies: the client-facing encoding of an [`ErrorKind`], and the reading of
//! upstream Anthropic errors.
//!
//! | kind | status | `error.type` |
//! |---|---|---|
//! | InvalidRequest, ContentFilter, ContextLengthExceeded | 400 | `invalid_request_error` |
//! | Authentication | 401 | `authentication_error` |
//! | PermissionDenied | 403 | `permission_error` |
//! | NotFound | 404 | `not_found_error` |
//! | PayloadTooLarge | 413 | `request_too_large` |
//! | RateLimited | 429 | `rate_limit_error` |
//! | Overloaded | 529 | `overloaded_error` |
//! | NoCapacity | 503 | `overloaded_error` |
//! | UpstreamTimeout | 504 | `timeout_error` |
//! | Internal | 500 | `api_error` |
//! | UpstreamServer, UpstreamRejected, UpstreamProtocol, UpstreamConnect | 502 | `api_error` |

use super::wire::{ErrorEnvelopeIn, ErrorEnvelopeOut, ErrorIn, ErrorOut};
use crate::error::{body_excerpt, kind_for_status};
use crate::json;
use crate::{UpstreamError, UpstreamStreamError};
use switchyard_types::ErrorKind;

/// The status and `error.type` the gateway answers an Anthropic client with (table above).
///
/// Anthropic has no type for a bad gateway, so the gateway's upstream failures are
/// `api_error` (what the SDK expects on 5xx) with the kind's own status.
pub(super) fn status_and_type(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::ContentFilter | ErrorKind::ContextLengthExceeded => {
            (400, "invalid_request_error")
        }
        ErrorKind::Authentication => (401, "authentication_error"),
        ErrorKind::PermissionDenied => (403, "permission_error"),
        ErrorKind::NotFound => (404, "not_found_error"),
        ErrorKind::PayloadTooLarge => (413, "request_too_large"),
        ErrorKind::RateLimited => (429, "rate_limit_error"),
        // 529 is Anthropic's own overload status; the SDK raises `OverloadedError` and retries.
        ErrorKind::Overloaded => (529, "overloaded_error"),
        // No deployment had room: the same advice to the client (retry later), but the
        // gateway's one status for the kind.
        ErrorKind::NoCapacity => (kind.status(), "overloaded_error"),
        ErrorKind::UpstreamTimeout => (504, "timeout_error"),
        ErrorKind::Internal
        | ErrorKind::UpstreamServer
        | ErrorKind::UpstreamRejected
        | ErrorKind::UpstreamProtocol
        | ErrorKind::UpstreamConnect => (kind.status(), "api_error"),
    }
}

/// Client-facing Anthropic error: the status and `{"type":"error","error":{"type","message"}}`.
pub fn encode_error(kind: ErrorKind, message: &str) -> (u16, Vec<u8>) {
    let (status, kind_name) = status_and_type(kind);
    (status, error_body(kind_name, message))
}

pub(super) fn error_body(kind_name: &'static str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.len());
    json::write_json(
        &mut out,
        &ErrorEnvelopeOut {
            kind: "error",
            error: ErrorOut {
                kind: kind_name,
                message,
            },
        },
    );
    out
}

/// The kind an Anthropic `error.type` names, if it is one the gateway knows.
fn kind_for_type(kind: &str) -> Option<ErrorKind> {
    Some(match kind {
        "overloaded_error" => ErrorKind::Overloaded,
        "rate_limit_error" => ErrorKind::RateLimited,
        "api_error" => ErrorKind::UpstreamServer,
        "timeout_error" => ErrorKind::UpstreamTimeout,
        "request_too_large" => ErrorKind::PayloadTooLarge,
        "invalid_request_error" => ErrorKind::InvalidRequest,
        // The gateway's key, account or model name: not the client's to fix.
        "authentication_error" | "permission_error" | "not_found_error" | "billing_error" => {
            ErrorKind::UpstreamRejected
        }
        _ => return None,
    })
}

/// Upstream Anthropic error (status + body) → kind and message. Never fails.
///
/// Status decides (529 → `Overloaded`, 429 → `RateLimited`, 400 → `InvalidRequest`,
/// 401/403/404 → `UpstreamRejected`, 413 → `PayloadTooLarge`, 408/504 → `UpstreamTimeout`,
/// other 5xx → `UpstreamServer`, other 4xx → `UpstreamRejected`), except that an
/// `overloaded_error` type is `Overloaded` whatever the status (Anthropic has sent it with 500).
/// A 400 whose message is "prompt is too long: N tokens > M maximum" is
/// `ContextLengthExceeded`; "Output blocked by content filtering policy" is `ContentFilter`.
pub fn decode_error(status: u16, body: &[u8]) -> UpstreamError {
    let err = serde_json::from_slice::<ErrorEnvelopeIn>(body)
        .ok()
        .and_then(|e| e.error);
    let (kind_name, message) = match err {
        Some(ErrorIn { kind, message }) => (kind, message),
        None => (None, None),
    };
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| body_excerpt(status, body));
    let kind = if kind_name.as_deref() == Some("overloaded_error") {
        ErrorKind::Overloaded
    } else if status == 400 && message.starts_with("prompt is too long") {
        ErrorKind::ContextLengthExceeded
    } else if status == 400 && message.contains("content filtering policy") {
        ErrorKind::ContentFilter
    } else {
        kind_for_status(status)
    };
    UpstreamError {
        kind,
        message,
        code: kind_name,
        retry_after: None,
    }
}

/// The kind of a mid-stream `error` event, from its `error.type`.
pub(super) fn stream_error(e: Option<&ErrorIn>) -> UpstreamStreamError {
    UpstreamStreamError {
        kind: e
            .and_then(|e| e.kind.as_deref())
            .and_then(kind_for_type)
            .unwrap_or(ErrorKind::UpstreamServer),
        message: e
            .and_then(|e| e.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "upstream reported an error mid-stream".to_owned()),
    }
}
