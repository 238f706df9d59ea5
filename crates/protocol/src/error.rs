//! The errors codecs share: undecodable bytes, upstream errors mapped to an [`ErrorKind`], and
//! features a wire protocol cannot express.

use std::fmt;
use std::time::Duration;
use switchyard_types::ErrorKind;

/// A client request (or upstream body) that could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What is wrong, in words a client can act on (names the field).
    pub message: String,
    /// The offending field as a JSON path such as `messages[2].content[0].type`, if known.
    pub param: Option<String>,
}

impl DecodeError {
    /// An error that is not about one field (invalid JSON, invalid UTF-8, ...).
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
            param: None,
        }
    }

    /// An error about the field at `param`.
    pub fn at(param: impl fmt::Display, message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}

/// An upstream error (HTTP status plus body) mapped to the gateway's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// What kind of failure this is (drives retry and the client's status).
    pub kind: ErrorKind,
    /// The upstream's message, or the start of its body when it was not JSON.
    pub message: String,
    /// The upstream's own error code or type as a string (`rate_limit_error`,
    /// `ThrottlingException`, `RESOURCE_EXHAUSTED`, Azure's `"429"`), if it sent one.
    pub code: Option<String>,
    /// How long the upstream asked us to wait, when the body says so (Gemini's `RetryInfo`).
    /// Header-borne hints (`retry-after`) are read by the provider layer, not here.
    pub retry_after: Option<Duration>,
}

/// An error event inside an upstream stream (the HTTP status was already 200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStreamError {
    /// The upstream's message.
    pub message: String,
    /// The kind, from the event's error type or code.
    pub kind: ErrorKind,
}

/// Something the caller asked for that the deployment's wire protocol cannot express.
///
/// Codecs return it instead of dropping a feature silently; the server turns it into a 400
/// that also names the deployment. docs/translation.md lists every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the deployment's protocol ({protocol}) cannot express {feature}")]
pub struct Unsupported {
    /// The wire protocol: `anthropic`, `bedrock`, `gemini`.
    pub protocol: &'static str,
    /// The feature, in words a client can act on (``"`n` > 1"``).
    pub feature: String,
}

impl Unsupported {
    /// `protocol` cannot express `feature`.
    pub fn new(protocol: &'static str, feature: impl Into<String>) -> Self {
        Unsupported {
            protocol,
            feature: feature.into(),
        }
    }
}

/// The first 200 bytes of an error body that is not the expected JSON (cut at a character
/// boundary), or a placeholder for an empty body.
pub(crate) fn body_excerpt(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.trim();
    if text.is_empty() {
        format!("upstream returned HTTP {status} with an empty body")
    } else {
        // Lossy decoding of a cut multi-byte character leaves a replacement char; drop it.
        text.trim_end_matches('\u{FFFD}').to_owned()
    }
}

/// The kind for an upstream HTTP status when the body gives nothing more specific.
///
/// 401/403/404 are the gateway's fault (credentials, deployment name), not the client's, so
/// they are `UpstreamRejected` (retryable elsewhere); 400/422 are the client's request.
pub(crate) fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        400 | 422 => ErrorKind::InvalidRequest,
        401 | 403 | 404 => ErrorKind::UpstreamRejected,
        408 | 504 => ErrorKind::UpstreamTimeout,
        413 => ErrorKind::PayloadTooLarge,
        429 => ErrorKind::RateLimited,
        529 => ErrorKind::Overloaded,
        500..=599 => ErrorKind::UpstreamServer,
        400..=499 => ErrorKind::UpstreamRejected,
        // An error body with a success or redirect status is not something we understand.
        _ => ErrorKind::UpstreamProtocol,
    }
}
