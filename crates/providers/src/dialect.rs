//! Per-kind facts: endpoint URLs, fixed headers and error classification. Pure functions;
//! adding a provider kind means adding its arms here (and its codec and dispatch entry in
//! `switchyard_protocol::upstream`, which owns the wire shapes, errors included).

use crate::{AttemptError, Operation, ProviderSpec};
use http::{HeaderMap, HeaderName, HeaderValue};
use switchyard_protocol::upstream::upstream_codec;
use switchyard_types::{ErrorKind, ProviderKind};

/// The `anthropic-version` sent when the provider does not configure one.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// The public endpoint of a kind, when it has one. `region` is the AWS region for Bedrock and
/// the Vertex location (`global` has no regional prefix); OpenAI-compatible servers and Azure
/// resources have no default.
pub fn default_base_url(kind: ProviderKind, region: &str) -> Option<String> {
    match kind {
        ProviderKind::OpenAi => Some("https://api.openai.com/v1".to_owned()),
        ProviderKind::Anthropic => Some("https://api.anthropic.com".to_owned()),
        ProviderKind::Bedrock => Some(format!("https://bedrock-runtime.{region}.amazonaws.com")),
        ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com".to_owned()),
        ProviderKind::Vertex if region == "global" => {
            Some("https://aiplatform.googleapis.com".to_owned())
        }
        ProviderKind::Vertex => Some(format!("https://{region}-aiplatform.googleapis.com")),
        ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => None,
    }
}

/// The URL of one operation on one provider; an error when the kind has no such operation.
pub(crate) fn url(
    provider: &ProviderSpec,
    op: Operation,
    upstream_model: &str,
) -> Result<String, AttemptError> {
    let base = &provider.base_url;
    let unsupported = || {
        let mut e = AttemptError::new(
            ErrorKind::InvalidRequest,
            format!(
                "provider '{}' ({}) does not support {}",
                provider.id,
                provider.kind.as_str(),
                op_name(op)
            ),
        );
        e.client_message = Some(format!(
            "This model's {} deployment does not support {}.",
            provider.kind.as_str(),
            op_name(op)
        ));
        e
    };
    let openai_path = match op {
        Operation::Chat { .. } => "chat/completions",
        Operation::Embeddings => "embeddings",
        Operation::CountTokens => "",
    };
    Ok(match provider.kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::AzureOpenAi
            if op == Operation::CountTokens =>
        {
            return Err(unsupported())
        }
        ProviderKind::AzureOpenAi => match &provider.api_version {
            // Classic surface: the deployment in the path picks the model.
            Some(version) => format!(
                "{base}/openai/deployments/{}/{openai_path}?api-version={}",
                encode_segment(upstream_model),
                encode_segment(version)
            ),
            // The v1 surface takes the model from the body.
            None => format!("{base}/openai/v1/{openai_path}"),
        },
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => format!("{base}/{openai_path}"),
        ProviderKind::Anthropic => match op {
            Operation::Chat { .. } => format!("{base}/v1/messages"),
            Operation::CountTokens => format!("{base}/v1/messages/count_tokens"),
            Operation::Embeddings => return Err(unsupported()),
        },
        ProviderKind::Bedrock => {
            // One URI label: `:` and the `/` of ARNs are percent-encoded, as botocore does.
            let model = encode_segment(upstream_model);
            match op {
                Operation::Chat { stream: false } => format!("{base}/model/{model}/converse"),
                Operation::Chat { stream: true } => format!("{base}/model/{model}/converse-stream"),
                Operation::Embeddings => format!("{base}/model/{model}/invoke"),
                Operation::CountTokens => return Err(unsupported()),
            }
        }
        ProviderKind::Gemini => {
            let model = google_model(upstream_model);
            format!(
                "{base}/v1beta/models/{model}:{}",
                google_method(provider.kind, op)
            )
        }
        ProviderKind::Vertex => {
            let model = google_model(upstream_model);
            let method = google_method(provider.kind, op);
            match &provider.extra.gcp_project {
                Some(project) => {
                    let location = provider
                        .extra
                        .gcp_location
                        .as_deref()
                        .unwrap_or(&provider.region);
                    format!(
                        "{base}/v1/projects/{}/locations/{}/publishers/google/models/{model}:{method}",
                        encode_segment(project),
                        encode_segment(location)
                    )
                }
                // Express mode: an API key and no project.
                None => format!("{base}/v1/publishers/google/models/{model}:{method}"),
            }
        }
    })
}

/// A Gemini model id as a path segment (`models/` prefixes, as the SDKs allow, are dropped).
fn google_model(upstream_model: &str) -> String {
    encode_segment(
        upstream_model
            .strip_prefix("models/")
            .unwrap_or(upstream_model),
    )
}

/// The `:method` suffix (with its query) of a Gemini or Vertex operation.
fn google_method(kind: ProviderKind, op: Operation) -> &'static str {
    match op {
        Operation::Chat { stream: false } => "generateContent",
        Operation::Chat { stream: true } => "streamGenerateContent?alt=sse",
        Operation::CountTokens => "countTokens",
        // Vertex serves text-embedding models through `predict`; the Gemini API batches.
        Operation::Embeddings if kind == ProviderKind::Vertex => "predict",
        Operation::Embeddings => "batchEmbedContents",
    }
}

/// Fixed headers an operation needs besides `content-type` and auth.
pub(crate) fn headers(provider: &ProviderSpec, op: Operation) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if provider.kind == ProviderKind::Anthropic {
        let version = provider
            .extra
            .anthropic_version
            .as_deref()
            .unwrap_or(DEFAULT_ANTHROPIC_VERSION);
        match HeaderValue::from_str(version) {
            Ok(v) => out.push((HeaderName::from_static("anthropic-version"), v)),
            Err(_) => out.push((
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION),
            )),
        }
    }
    let accept = match op {
        Operation::Chat { stream: true } => upstream_codec(provider.kind).stream_media_type(),
        Operation::Chat { stream: false } | Operation::Embeddings | Operation::CountTokens => {
            "application/json"
        }
    };
    out.push((http::header::ACCEPT, HeaderValue::from_static(accept)));
    out
}

/// Classifies an upstream error answer.
pub(crate) fn decode_error(
    provider: &ProviderSpec,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> AttemptError {
    let decoded = upstream_codec(provider.kind).decode_error(status, headers, body);
    let mut err = AttemptError::new(
        decoded.kind,
        format!(
            "provider '{}' answered {status}: {}",
            provider.id, decoded.message
        ),
    );
    err.status = Some(status);
    err.retry_after = decoded.retry_after;
    err.code = decoded.code;
    err.client_message = Some(decoded.message);
    if status == 408 {
        err.kind = ErrorKind::UpstreamTimeout;
    }
    err
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Chat { .. } => "chat",
        Operation::Embeddings => "embeddings",
        Operation::CountTokens => "token counting",
    }
}

/// Percent-encodes a URL path segment or query value (RFC 3986 unreserved characters pass).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "dialect_tests.rs"]
mod tests;
