//! Per-kind facts: endpoint URLs and error shapes. Pure functions; adding a provider kind
//! means adding its arms here (and its codec in `switchyard-protocol`).

use crate::{AttemptError, Operation, ProviderSpec};
use http::HeaderMap;
use switchyard_protocol::codec::openai_chat;
use switchyard_types::{ErrorKind, ProviderKind};

/// The URL of one operation on one provider.
pub(crate) fn url(provider: &ProviderSpec, op: Operation, upstream_model: &str) -> String {
    let base = &provider.base_url;
    let path = match op {
        Operation::Chat { .. } => "chat/completions",
        Operation::Embeddings => "embeddings",
    };
    match provider.kind {
        ProviderKind::AzureOpenAi => match &provider.api_version {
            // Classic surface: the deployment in the path picks the model.
            Some(version) => format!(
                "{base}/openai/deployments/{}/{path}?api-version={}",
                encode_segment(upstream_model),
                encode_segment(version)
            ),
            // The v1 surface takes the model from the body.
            None => format!("{base}/openai/v1/{path}"),
        },
        _ => format!("{base}/{path}"),
    }
}

/// Classifies an upstream error answer.
pub(crate) fn decode_error(
    provider: &ProviderSpec,
    status: u16,
    _headers: &HeaderMap,
    body: &[u8],
) -> AttemptError {
    let decoded = openai_chat::decode_error(status, body);
    let mut err = AttemptError::new(
        decoded.kind,
        format!(
            "provider '{}' answered {status}: {}",
            provider.id, decoded.message
        ),
    );
    err.status = Some(status);
    if status == 408 {
        err.kind = ErrorKind::UpstreamTimeout;
    }
    err
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
mod tests {
    use super::*;
    use crate::Auth;
    use switchyard_types::{Cloud, Jurisdiction};

    fn spec(kind: ProviderKind, api_version: Option<&str>) -> ProviderSpec {
        ProviderSpec {
            id: "p".into(),
            kind,
            base_url: "http://h".into(),
            auth: Auth::None,
            api_version: api_version.map(str::to_string),
            cloud: Cloud::Azure,
            region: "r".into(),
            jurisdiction: Jurisdiction::Eu,
            http2_prior_knowledge: false,
        }
    }

    #[test]
    fn azure_urls_carry_deployment_and_api_version() {
        let p = spec(ProviderKind::AzureOpenAi, Some("2024-10-21"));
        assert_eq!(
            url(&p, Operation::Chat { stream: true }, "gpt 4o"),
            "http://h/openai/deployments/gpt%204o/chat/completions?api-version=2024-10-21"
        );
        let v1 = spec(ProviderKind::AzureOpenAi, None);
        assert_eq!(
            url(&v1, Operation::Embeddings, "e"),
            "http://h/openai/v1/embeddings"
        );
    }

    #[test]
    fn openai_urls_append_to_base() {
        let p = spec(ProviderKind::OpenAi, None);
        assert_eq!(
            url(&p, Operation::Chat { stream: false }, "gpt-4o"),
            "http://h/chat/completions"
        );
    }
}
