//! OpenAI error bodies: the client-facing encoding of an [`ErrorKind`], and the reading of
//! OpenAI, Azure and OpenAI-compatible upstream errors.

use super::wire::{code_to_string, ErrorEnvelopeIn, ErrorEnvelopeOut, ErrorIn, ErrorOut};
use crate::error::{body_excerpt, kind_for_status};
pub use crate::error::{UpstreamError, UpstreamStreamError};
use crate::json;
use switchyard_types::ErrorKind;

/// The OpenAI `type` and default `code` the gateway uses for each kind.
///
/// Client-side kinds follow PROTOCOLS.md's table. OpenAI has no words for the gateway's own
/// upstream failures, so those use `server_error` (what the SDK expects on 5xx) with the kind's
/// stable name as `code`, which lets a client tell a timeout from a capacity problem.
fn type_and_code(kind: ErrorKind) -> (&'static str, Option<&'static str>) {
    match kind {
        ErrorKind::InvalidRequest => ("invalid_request_error", None),
        // The caller passes `invalid_api_key` when a key was given; OpenAI sends null otherwise.
        ErrorKind::Authentication => ("invalid_request_error", None),
        ErrorKind::PermissionDenied => ("request_forbidden", None),
        ErrorKind::NotFound => ("invalid_request_error", Some("model_not_found")),
        ErrorKind::PayloadTooLarge => ("invalid_request_error", Some("request_too_large")),
        ErrorKind::RateLimited => ("requests", Some("rate_limit_exceeded")),
        // Azure's shape for a blocked prompt, which the SDK surfaces as `code == "content_filter"`.
        ErrorKind::ContentFilter => ("invalid_request_error", Some("content_filter")),
        // OpenAI's own code, which SDKs and agents test for to trim a conversation.
        ErrorKind::ContextLengthExceeded => {
            ("invalid_request_error", Some("context_length_exceeded"))
        }
        ErrorKind::Overloaded
        | ErrorKind::UpstreamServer
        | ErrorKind::UpstreamRejected
        | ErrorKind::UpstreamProtocol
        | ErrorKind::UpstreamConnect
        | ErrorKind::UpstreamTimeout
        | ErrorKind::NoCapacity
        | ErrorKind::Internal => ("server_error", Some(kind.as_str())),
    }
}

/// Client-facing OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.
///
/// `code` overrides the kind's default code (see the table in the source: `NotFound` →
/// `model_not_found`, `RateLimited` → `rate_limit_exceeded`, upstream kinds → the kind's name).
pub fn encode_error(
    kind: ErrorKind,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Vec<u8> {
    let (kind_name, default_code) = type_and_code(kind);
    let mut out = Vec::with_capacity(96 + message.len());
    json::write_json(
        &mut out,
        &ErrorEnvelopeOut {
            error: ErrorOut {
                message,
                kind: kind_name,
                param,
                code: code.or(default_code),
            },
        },
    );
    out
}

/// Upstream OpenAI/Azure error body + status → kind and message. Never fails: a body that is not
/// JSON gives a message made of its first 200 bytes.
///
/// Status decides first (401/403/404 → `UpstreamRejected`: the gateway's credentials or
/// deployment are wrong, not the client's; 408 and 504 → `UpstreamTimeout`; 413 →
/// `PayloadTooLarge`; 429 → `RateLimited`; 529 → `Overloaded`; other 5xx → `UpstreamServer`; other 4xx → `InvalidRequest` for 400/422 and
/// `UpstreamRejected` otherwise), except that a `content_filter` code is always `ContentFilter`
/// and a `context_length_exceeded` code (or, from servers that send no code, such as vLLM,
/// OpenAI's "maximum context length" message on a 400) is `ContextLengthExceeded`.
pub fn decode_error(status: u16, body: &[u8]) -> UpstreamError {
    let parsed = serde_json::from_slice::<ErrorEnvelopeIn>(body).ok();
    let (message, kind_name, code) = match parsed {
        Some(ErrorEnvelopeIn { error: Some(e), .. }) => {
            let code = e.code_string();
            (e.message, e.kind, code)
        }
        Some(ErrorEnvelopeIn {
            error: None,
            message,
            kind,
            code,
        }) => (message, kind, code_to_string(code.as_ref())),
        None => (None, None, None),
    };
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| body_excerpt(status, body));

    let filtered =
        code.as_deref() == Some("content_filter") || kind_name.as_deref() == Some("content_filter");
    let too_long = code.as_deref() == Some("context_length_exceeded")
        || (status == 400 && message.contains("maximum context length"));
    let kind = if filtered {
        ErrorKind::ContentFilter
    } else if too_long {
        ErrorKind::ContextLengthExceeded
    } else {
        kind_for_status(status)
    };
    UpstreamError {
        kind,
        message,
        code,
        retry_after: None,
    }
}

/// The kind of a mid-stream `{"error": ...}`, from its `type` and `code`.
pub(super) fn stream_error(e: &ErrorIn) -> UpstreamStreamError {
    let code = e.code_string();
    let words = [e.kind.as_deref(), code.as_deref()];
    let has = |names: &[&str]| words.iter().flatten().any(|w| names.contains(w));
    let kind = if has(&["content_filter"]) {
        ErrorKind::ContentFilter
    } else if has(&[
        "rate_limit_exceeded",
        "requests",
        "tokens",
        "insufficient_quota",
        "429",
    ]) {
        ErrorKind::RateLimited
    } else if has(&["overloaded", "overloaded_error", "503"]) {
        ErrorKind::Overloaded
    } else if has(&["timeout", "408", "504"]) {
        ErrorKind::UpstreamTimeout
    } else {
        ErrorKind::UpstreamServer
    };
    UpstreamStreamError {
        message: e
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "upstream reported an error mid-stream".to_owned()),
        kind,
    }
}
