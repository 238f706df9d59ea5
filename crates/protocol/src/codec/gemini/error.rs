//! Google API errors (`google.rpc.Status` in JSON) → kinds, with `RetryInfo` delays.

use crate::error::{body_excerpt, kind_for_status};
use crate::{UpstreamError, UpstreamStreamError};
use serde::Deserialize;
use std::time::Duration;
use switchyard_types::ErrorKind;

#[derive(Deserialize)]
struct EnvelopeIn {
    #[serde(default)]
    error: Option<ErrorIn>,
}

/// `{"code", "message", "status", "details"}`.
#[derive(Deserialize, Default)]
pub(super) struct ErrorIn {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<DetailIn>,
}

#[derive(Deserialize)]
struct DetailIn {
    #[serde(default, rename = "@type")]
    kind: Option<String>,
    #[serde(default, rename = "retryDelay")]
    retry_delay: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The kind a canonical status names, if it is one the gateway maps.
fn kind_for_code(status: &str, details: &[DetailIn]) -> Option<ErrorKind> {
    Some(match status {
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        // A bad API key is reported as INVALID_ARGUMENT; it is the gateway's key, not the
        // client's request.
        "INVALID_ARGUMENT"
            if details
                .iter()
                .any(|d| d.reason.as_deref() == Some("API_KEY_INVALID")) =>
        {
            ErrorKind::UpstreamRejected
        }
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        // FAILED_PRECONDITION is billing or region setup on the gateway's account.
        "UNAUTHENTICATED" | "PERMISSION_DENIED" | "NOT_FOUND" | "FAILED_PRECONDITION" => {
            ErrorKind::UpstreamRejected
        }
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "ABORTED" | "CANCELLED" => ErrorKind::UpstreamServer,
        "DEADLINE_EXCEEDED" => ErrorKind::UpstreamTimeout,
        _ => return None,
    })
}

/// A protobuf JSON duration (`"30s"`, `"1.5s"`, `"0.250s"`).
pub(super) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim().strip_suffix('s')?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos))
}

fn retry_delay(details: &[DetailIn]) -> Option<Duration> {
    details
        .iter()
        .filter(|d| {
            d.kind
                .as_deref()
                .is_some_and(|k| k.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| d.retry_delay.as_deref().and_then(parse_duration))
}

/// Gemini / Vertex error (status + body) → kind, message and retry delay. Never fails.
///
/// The canonical `status` decides: RESOURCE_EXHAUSTED → `RateLimited` (with `retry_after`
/// from a `google.rpc.RetryInfo` detail), UNAVAILABLE → `Overloaded`, INVALID_ARGUMENT →
/// `InvalidRequest` (but `UpstreamRejected` for an `API_KEY_INVALID` reason),
/// UNAUTHENTICATED / PERMISSION_DENIED / NOT_FOUND / FAILED_PRECONDITION →
/// `UpstreamRejected`, INTERNAL → `UpstreamServer`, DEADLINE_EXCEEDED → `UpstreamTimeout`;
/// otherwise the HTTP status. Bodies wrapped in a one-element array (the non-SSE stream
/// form) are read too. An INVALID_ARGUMENT saying "The input token count (N) exceeds the maximum
/// number of tokens allowed (M)" is `ContextLengthExceeded`.
pub fn decode_error(status: u16, body: &[u8]) -> UpstreamError {
    // Checked by the first byte: serde would also read a one-element array as the struct.
    let parsed = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice::<Vec<EnvelopeIn>>(body)
            .ok()
            .and_then(|v| v.into_iter().next())
    } else {
        serde_json::from_slice::<EnvelopeIn>(body).ok()
    }
    .and_then(|e| e.error)
    .unwrap_or_default();
    let mut kind = parsed
        .status
        .as_deref()
        .and_then(|s| kind_for_code(s, &parsed.details))
        .unwrap_or_else(|| kind_for_status(status));
    let message = parsed
        .message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| body_excerpt(status, body));
    if kind == ErrorKind::InvalidRequest
        && message.contains("input token count")
        && message.contains("exceeds the maximum")
    {
        kind = ErrorKind::ContextLengthExceeded;
    }
    UpstreamError {
        kind,
        retry_after: retry_delay(&parsed.details),
        message,
        code: parsed.status,
    }
}

/// The kind of a mid-stream `{"error": ...}`: its `status`, else its numeric `code`.
pub(super) fn stream_error(e: &ErrorIn) -> UpstreamStreamError {
    let kind = e
        .status
        .as_deref()
        .and_then(|s| kind_for_code(s, &e.details))
        .or_else(|| e.code.map(kind_for_status))
        .unwrap_or(ErrorKind::UpstreamServer);
    UpstreamStreamError {
        kind,
        message: e
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "upstream reported an error mid-stream".to_owned()),
    }
}
