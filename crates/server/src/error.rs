//! The one place where an error becomes a client response: status, body in the client's
//! protocol, and Retry-After. Building the response has no side effects; logging happens
//! where the request ends.

use crate::request::ClientProtocol;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use std::borrow::Cow;
use std::time::Duration;
use switchyard_protocol::DecodeError;
use switchyard_providers::AttemptError;
use switchyard_types::ErrorKind;

/// A request that ends in an error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A message for the client.
    pub message: String,
    /// The offending request field, if any.
    pub param: Option<String>,
    /// A machine-readable code, if any (the gateway's own, or the upstream's).
    pub code: Option<Cow<'static, str>>,
    /// How long the client should wait before retrying.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(Cow::Borrowed(code));
        self
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> ApiError {
        ApiError {
            kind: ErrorKind::InvalidRequest,
            message: e.message,
            param: e.param,
            code: None,
            retry_after: None,
        }
    }
}

impl From<AttemptError> for ApiError {
    /// The upstream's code and message reach the client only for errors in the client's
    /// request, which the client acts on (Azure's `content_filter`, a prompt over the context
    /// window); for the rest the client gets the kind's stable message and code, the same
    /// whichever provider failed, naming no provider or deployment and carrying no upstream
    /// text (which stays in the log and the ledger's attempts).
    fn from(e: AttemptError) -> ApiError {
        let theirs = matches!(
            e.kind,
            ErrorKind::InvalidRequest | ErrorKind::ContentFilter | ErrorKind::ContextLengthExceeded
        );
        let code = match e.kind {
            ErrorKind::InvalidRequest | ErrorKind::ContentFilter => e.code.map(Cow::Owned),
            _ => None,
        };
        let message = if theirs {
            // The upstream's words, or the gateway's own about the request (a feature the
            // protocol cannot express) without internal names where it has set them.
            e.client_message.unwrap_or(e.message)
        } else {
            stable_message(e.kind).to_string()
        };
        ApiError {
            kind: e.kind,
            message,
            param: None,
            code,
            retry_after: e.retry_after,
        }
    }
}

/// What a client is told about an upstream failure of `kind` that is not about its request:
/// stable whichever provider failed, naming no provider, deployment or upstream text.
pub(crate) fn stable_message(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "The request was rejected as invalid.",
        ErrorKind::Authentication => "Authentication failed.",
        ErrorKind::PermissionDenied => "This request is not permitted.",
        ErrorKind::NotFound => "The requested resource was not found.",
        ErrorKind::PayloadTooLarge => "The request is too large.",
        ErrorKind::RateLimited => "The model's rate limit was reached; retry later.",
        ErrorKind::ContentFilter => "The content was refused by the provider's content policy.",
        ErrorKind::ContextLengthExceeded => {
            "The input is longer than the model's context window."
        }
        ErrorKind::Overloaded => "The model is overloaded; retry shortly.",
        ErrorKind::UpstreamServer => "The model's provider failed to answer; retry shortly.",
        ErrorKind::UpstreamRejected => {
            "The gateway could not call the model's provider (a gateway configuration problem, not the request)."
        }
        ErrorKind::UpstreamProtocol => {
            "The model's provider sent an answer the gateway could not read."
        }
        ErrorKind::UpstreamConnect => "The model's provider could not be reached.",
        ErrorKind::UpstreamTimeout => "The model's provider did not answer in time.",
        ErrorKind::NoCapacity => "No deployment can serve this request right now; retry shortly.",
        ErrorKind::Internal => "The gateway failed while serving this request.",
    }
}

impl ApiError {
    /// The response in the client's protocol: status, error body and Retry-After.
    pub(crate) fn render(self, dialect: ClientProtocol) -> Response {
        let (status, body) = dialect.encode_error(
            self.kind,
            &self.message,
            self.param.as_deref(),
            self.code.as_deref(),
        );
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up, so a client never retries early.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Paths outside a front door (health, unknown URLs) answer in the OpenAI format.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render(ClientProtocol::OpenAiChat)
    }
}
