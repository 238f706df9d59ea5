//! The outcome of a failed attempt, classified once so the router and every ingress agree.

use http::HeaderMap;
use std::time::Duration;
use switchyard_types::ErrorKind;

/// Why one upstream attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct AttemptError {
    /// The classified kind (decides retry and client status).
    pub kind: ErrorKind,
    /// A message safe to show the client.
    pub message: String,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// How long the upstream asked us to wait.
    pub retry_after: Option<Duration>,
    /// The upstream's own error code or type (`content_filter`, `invalid_request_error`,
    /// `ValidationException`), when it answered with one; shown to clients for errors that are
    /// theirs to act on.
    pub code: Option<String>,
    /// What the client is told when the error is about its own request: the upstream's own
    /// words, or the gateway's without internal names (`message`, which names the provider,
    /// is for logs and the ledger).
    pub client_message: Option<String>,
}

impl AttemptError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AttemptError {
        AttemptError {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
            code: None,
            client_message: None,
        }
    }

    /// Classifies a transport error from the HTTP client.
    pub fn from_reqwest(provider: &str, e: &reqwest::Error) -> AttemptError {
        let kind = if e.is_timeout() {
            ErrorKind::UpstreamTimeout
        } else if e.is_connect() {
            ErrorKind::UpstreamConnect
        } else {
            ErrorKind::UpstreamProtocol
        };
        // reqwest's Display omits the cause chain, which is where the useful part is.
        let mut message = format!("provider '{provider}': {e}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        AttemptError::new(kind, message)
    }
}

/// Reads `retry-after-ms`, then `retry-after` in seconds (HTTP dates are rare from LLM APIs
/// and are ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = read("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    read("retry-after").map(Duration::from_secs_f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after-ms", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    }
}
