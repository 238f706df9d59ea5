//! The small shared vocabulary of Switchyard: kinds, places, money and usage. No I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

mod money;
pub use money::{Money, PricePerMillion, Prices};

/// The wire protocol (and auth scheme) an upstream provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    /// api.openai.com and anything byte-compatible that authenticates with a bearer key.
    #[serde(rename = "openai")]
    OpenAi,
    /// Azure OpenAI: deployment URLs, `api-version`, `api-key` header.
    #[serde(rename = "azure_openai")]
    AzureOpenAi,
    /// vLLM, Ollama, GPU clouds: the OpenAI chat shape with looser guarantees.
    #[serde(rename = "openai_compatible")]
    OpenAiCompatible,
    /// Anthropic Messages API.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// AWS Bedrock Converse / ConverseStream.
    #[serde(rename = "bedrock")]
    Bedrock,
    /// Google Gemini API (API key).
    #[serde(rename = "gemini")]
    Gemini,
    /// Google Vertex AI (OAuth2).
    #[serde(rename = "vertex")]
    Vertex,
}

impl ProviderKind {
    /// Every kind, in a stable order.
    pub const ALL: [ProviderKind; 7] = [
        Self::OpenAi,
        Self::AzureOpenAi,
        Self::OpenAiCompatible,
        Self::Anthropic,
        Self::Bedrock,
        Self::Gemini,
        Self::Vertex,
    ];

    /// The name used in config files, metrics and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::AzureOpenAi => "azure_openai",
            Self::OpenAiCompatible => "openai_compatible",
            Self::Anthropic => "anthropic",
            Self::Bedrock => "bedrock",
            Self::Gemini => "gemini",
            Self::Vertex => "vertex",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cloud (or operator) that runs a provider's endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
    /// Google Cloud.
    Gcp,
    /// Oracle Cloud Infrastructure.
    Oci,
    /// OpenAI's own platform.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's own platform.
    Anthropic,
    /// CoreWeave GPU cloud.
    Coreweave,
    /// Any other GPU cloud or hosting company.
    GpuCloud,
    /// The company's own hardware (vLLM, Ollama).
    SelfHosted,
}

impl Cloud {
    /// The name used in config files, metrics and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Azure => "azure",
            Self::Gcp => "gcp",
            Self::Oci => "oci",
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Coreweave => "coreweave",
            Self::GpuCloud => "gpu_cloud",
            Self::SelfHosted => "self_hosted",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The legal jurisdiction whose data rules apply where a provider processes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jurisdiction {
    /// United States.
    Us,
    /// European Union / EEA.
    Eu,
    /// United Kingdom.
    Uk,
    /// Switzerland.
    Ch,
    /// Canada.
    Ca,
    /// Japan.
    Jp,
    /// South Korea.
    Kr,
    /// Australia.
    Au,
    /// India.
    In,
    /// Singapore.
    Sg,
    /// Brazil.
    Br,
    /// Processed wherever the provider chooses (global endpoints).
    Global,
}

impl Jurisdiction {
    /// The name used in config files, metrics and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
            Self::Uk => "uk",
            Self::Ch => "ch",
            Self::Ca => "ca",
            Self::Jp => "jp",
            Self::Kr => "kr",
            Self::Au => "au",
            Self::In => "in",
            Self::Sg => "sg",
            Self::Br => "br",
            Self::Global => "global",
        }
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, independent of any wire protocol. Each ingress dialect maps a kind to its
/// own status and error body exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The client's request is malformed or asks for something impossible.
    InvalidRequest,
    /// No key, or a key the gateway does not know.
    Authentication,
    /// The key is valid but may not do this.
    PermissionDenied,
    /// Unknown model or route.
    NotFound,
    /// The request body is over the configured limit.
    PayloadTooLarge,
    /// A rate limit (ours or the upstream's) refused the request.
    RateLimited,
    /// The upstream refused the content (safety filter).
    ContentFilter,
    /// The request's input is longer than the model's context window (OpenAI
    /// `context_length_exceeded` and each protocol's equivalent); a larger-context model may
    /// serve it.
    ContextLengthExceeded,
    /// The upstream is overloaded (Anthropic 529, Gemini 503 UNAVAILABLE).
    Overloaded,
    /// The upstream answered 5xx.
    UpstreamServer,
    /// The upstream answered 4xx in a way that is the gateway's fault (bad credentials, bad
    /// deployment name): the client cannot fix it.
    UpstreamRejected,
    /// The upstream sent bytes we could not understand.
    UpstreamProtocol,
    /// Could not connect to the upstream.
    UpstreamConnect,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// No deployment was available to serve the request.
    NoCapacity,
    /// A bug or an unexpected condition inside the gateway.
    Internal,
}

impl ErrorKind {
    /// The HTTP status the gateway answers with for this kind.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::ContentFilter | Self::ContextLengthExceeded => 400,
            Self::Authentication => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::UpstreamServer
            | Self::UpstreamRejected
            | Self::UpstreamProtocol
            | Self::UpstreamConnect => 502,
            Self::Overloaded | Self::NoCapacity => 503,
            Self::UpstreamTimeout => 504,
        }
    }

    /// Whether another deployment may succeed where this attempt failed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited
                | Self::Overloaded
                | Self::UpstreamServer
                | Self::UpstreamRejected
                | Self::UpstreamProtocol
                | Self::UpstreamConnect
                | Self::UpstreamTimeout
        )
    }

    /// A short, stable, low-cardinality name for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Authentication => "authentication",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::ContentFilter => "content_filter",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::Overloaded => "overloaded",
            Self::UpstreamServer => "upstream_server",
            Self::UpstreamRejected => "upstream_rejected",
            Self::UpstreamProtocol => "upstream_protocol",
            Self::UpstreamConnect => "upstream_connect",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::NoCapacity => "no_capacity",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Token counts of one request, as reported by the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// All input tokens, cached ones included.
    pub input: u64,
    /// All output tokens, reasoning ones included.
    pub output: u64,
    /// Input tokens served from the provider's prompt cache (a subset of `input`).
    pub cached_input: u64,
    /// Input tokens written to the provider's prompt cache (a subset of `input`).
    pub cache_write: u64,
    /// Output tokens spent on hidden reasoning (a subset of `output`).
    pub reasoning: u64,
}

impl TokenUsage {
    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input + self.output
    }

    /// Adds another part's counts (an answer served in parts).
    pub fn add(&mut self, other: &TokenUsage) {
        self.input += other.input;
        self.output += other.output;
        self.cached_input += other.cached_input;
        self.cache_write += other.cache_write;
        self.reasoning += other.reasoning;
    }
}

/// Time limits of a database pool, so a slow or unreachable database fails a caller instead
/// of holding it (sqlx's own default waits 30 s for a connection and forever for a statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbTimeouts {
    /// Waiting for a pooled connection (and for a new one to connect).
    pub acquire: std::time::Duration,
    /// One statement or transaction: enforced by the server (PostgreSQL `statement_timeout`,
    /// SQLite's busy timeout) and, on the request path and in the ledger writer, by the client.
    pub statement: std::time::Duration,
}

impl Default for DbTimeouts {
    fn default() -> Self {
        DbTimeouts {
            acquire: std::time::Duration::from_secs(2),
            statement: std::time::Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_kind_names_round_trip_through_serde() {
        for kind in ProviderKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            let back: ProviderKind = serde_json::from_str(&json).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn client_errors_are_not_retryable() {
        for kind in [
            ErrorKind::InvalidRequest,
            ErrorKind::Authentication,
            ErrorKind::NotFound,
            ErrorKind::PayloadTooLarge,
            ErrorKind::ContentFilter,
            ErrorKind::ContextLengthExceeded,
        ] {
            assert!(!kind.retryable(), "{kind}");
            assert!((400..500).contains(&kind.status()), "{kind}");
        }
        assert_eq!(ErrorKind::UpstreamTimeout.status(), 504);
        assert_eq!(ErrorKind::UpstreamServer.status(), 502);
        assert_eq!(ErrorKind::RateLimited.status(), 429);
    }
}
