use super::*;
use crate::{Auth, ProviderExtras};
use std::time::Duration;
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
        extra: ProviderExtras::default(),
    }
}

const CHAT: Operation = Operation::Chat { stream: false };
const STREAM: Operation = Operation::Chat { stream: true };

fn u(p: &ProviderSpec, op: Operation, model: &str) -> String {
    match url(p, op, model) {
        Ok(u) => u,
        Err(e) => format!("ERR {}: {}", e.kind, e.message),
    }
}

#[test]
fn azure_urls_carry_deployment_and_api_version() {
    let p = spec(ProviderKind::AzureOpenAi, Some("2024-10-21"));
    assert_eq!(
        u(&p, STREAM, "gpt 4o"),
        "http://h/openai/deployments/gpt%204o/chat/completions?api-version=2024-10-21"
    );
    let v1 = spec(ProviderKind::AzureOpenAi, None);
    assert_eq!(
        u(&v1, Operation::Embeddings, "e"),
        "http://h/openai/v1/embeddings"
    );
}

#[test]
fn openai_urls_append_to_base() {
    for kind in [ProviderKind::OpenAi, ProviderKind::OpenAiCompatible] {
        let p = spec(kind, None);
        assert_eq!(u(&p, CHAT, "gpt-4o"), "http://h/chat/completions");
        assert_eq!(u(&p, Operation::Embeddings, "e"), "http://h/embeddings");
        assert!(url(&p, Operation::CountTokens, "m").is_err());
    }
}

#[test]
fn anthropic_urls() {
    let p = spec(ProviderKind::Anthropic, None);
    assert_eq!(u(&p, CHAT, "claude"), "http://h/v1/messages");
    assert_eq!(u(&p, STREAM, "claude"), "http://h/v1/messages");
    assert_eq!(
        u(&p, Operation::CountTokens, "c"),
        "http://h/v1/messages/count_tokens"
    );
    let e = url(&p, Operation::Embeddings, "c").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(
        e.message
            .contains("'p' (anthropic) does not support embeddings"),
        "{}",
        e.message
    );
}

#[test]
fn bedrock_model_ids_are_one_encoded_label() {
    let p = spec(ProviderKind::Bedrock, None);
    let id = "anthropic.claude-3-haiku-20240307-v1:0";
    assert_eq!(
        u(&p, CHAT, id),
        "http://h/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(
        u(&p, STREAM, &format!("us.{id}")),
        "http://h/model/us.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    );
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0";
    assert_eq!(
        u(&p, CHAT, arn),
        "http://h/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(
        u(&p, Operation::Embeddings, "amazon.titan-embed-text-v2:0"),
        "http://h/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    assert!(url(&p, Operation::CountTokens, id).is_err());
}

#[test]
fn gemini_urls() {
    let p = spec(ProviderKind::Gemini, None);
    assert_eq!(
        u(&p, CHAT, "gemini-2.5-flash"),
        "http://h/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        u(&p, STREAM, "models/gemini-2.5-flash"),
        "http://h/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        u(&p, Operation::Embeddings, "text-embedding-004"),
        "http://h/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(
        u(&p, Operation::CountTokens, "g"),
        "http://h/v1beta/models/g:countTokens"
    );
}

#[test]
fn vertex_urls_carry_project_and_location() {
    let mut p = spec(ProviderKind::Vertex, None);
    p.region = "us-central1".into();
    p.extra.gcp_project = Some("my-proj".into());
    assert_eq!(
        u(&p, CHAT, "gemini-2.5-flash"),
        "http://h/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    p.extra.gcp_location = Some("global".into());
    assert_eq!(
        u(&p, STREAM, "g"),
        "http://h/v1/projects/my-proj/locations/global/publishers/google/models/g:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        u(&p, Operation::Embeddings, "text-embedding-005"),
        "http://h/v1/projects/my-proj/locations/global/publishers/google/models/text-embedding-005:predict"
    );
    p.extra.gcp_project = None;
    assert_eq!(
        u(&p, CHAT, "g"),
        "http://h/v1/publishers/google/models/g:generateContent"
    );
}

#[test]
fn default_base_urls() {
    assert_eq!(
        default_base_url(ProviderKind::Bedrock, "eu-west-1").as_deref(),
        Some("https://bedrock-runtime.eu-west-1.amazonaws.com")
    );
    assert_eq!(
        default_base_url(ProviderKind::Vertex, "europe-west4").as_deref(),
        Some("https://europe-west4-aiplatform.googleapis.com")
    );
    assert_eq!(
        default_base_url(ProviderKind::Vertex, "global").as_deref(),
        Some("https://aiplatform.googleapis.com")
    );
    assert_eq!(
        default_base_url(ProviderKind::Anthropic, "x").as_deref(),
        Some("https://api.anthropic.com")
    );
    assert!(default_base_url(ProviderKind::AzureOpenAi, "x").is_none());
}

#[test]
fn fixed_headers_per_kind() {
    let find = |h: &[(HeaderName, HeaderValue)], n: &str| {
        h.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.to_str().unwrap_or_default().to_owned())
    };
    let mut a = spec(ProviderKind::Anthropic, None);
    let h = headers(&a, STREAM);
    assert_eq!(find(&h, "anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(find(&h, "accept").as_deref(), Some("text/event-stream"));
    a.extra.anthropic_version = Some("2026-10-21".into());
    assert_eq!(
        find(&headers(&a, CHAT), "anthropic-version").as_deref(),
        Some("2026-10-21")
    );
    let b = spec(ProviderKind::Bedrock, None);
    assert_eq!(
        find(&headers(&b, STREAM), "accept").as_deref(),
        Some("application/vnd.amazon.eventstream")
    );
    assert_eq!(
        find(&headers(&b, CHAT), "accept").as_deref(),
        Some("application/json")
    );
    assert!(find(&headers(&b, CHAT), "anthropic-version").is_none());
}

fn classify(kind: ProviderKind, status: u16, header: Option<&str>, body: &str) -> AttemptError {
    let mut h = HeaderMap::new();
    if let Some(t) = header {
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_str(t).unwrap_or(HeaderValue::from_static("")),
        );
    }
    decode_error(&spec(kind, None), status, &h, body.as_bytes())
}

#[test]
fn anthropic_errors() {
    let body =
        |t: &str| format!(r#"{{"type":"error","error":{{"type":"{t}","message":"m {t}"}}}}"#);
    let table = [
        (400, "invalid_request_error", ErrorKind::InvalidRequest),
        (401, "authentication_error", ErrorKind::UpstreamRejected),
        (403, "permission_error", ErrorKind::UpstreamRejected),
        (404, "not_found_error", ErrorKind::UpstreamRejected),
        (413, "request_too_large", ErrorKind::PayloadTooLarge),
        (429, "rate_limit_error", ErrorKind::RateLimited),
        (500, "api_error", ErrorKind::UpstreamServer),
        (504, "timeout_error", ErrorKind::UpstreamTimeout),
        (529, "overloaded_error", ErrorKind::Overloaded),
    ];
    for (status, ty, kind) in table {
        let e = classify(ProviderKind::Anthropic, status, None, &body(ty));
        assert_eq!((e.kind, e.status), (kind, Some(status)), "{ty}");
        assert!(e.message.ends_with(&format!("m {ty}")), "{}", e.message);
    }
    let e = classify(ProviderKind::Anthropic, 529, None, "<html>busy</html>");
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert!(e.message.contains("<html>busy</html>"));
}

#[test]
fn bedrock_errors_use_the_error_type_header() {
    let ns = ":http://internal.amazon.com/coral/com.amazon.bedrock/";
    let table = [
        (400, "ValidationException", ErrorKind::InvalidRequest),
        (400, "ServiceQuotaExceededException", ErrorKind::RateLimited),
        (403, "AccessDeniedException", ErrorKind::UpstreamRejected),
        (
            403,
            "UnrecognizedClientException",
            ErrorKind::UpstreamRejected,
        ),
        (
            403,
            "InvalidSignatureException",
            ErrorKind::UpstreamRejected,
        ),
        (
            404,
            "ResourceNotFoundException",
            ErrorKind::UpstreamRejected,
        ),
        (408, "ModelTimeoutException", ErrorKind::UpstreamTimeout),
        (424, "ModelErrorException", ErrorKind::UpstreamServer),
        (429, "ThrottlingException", ErrorKind::RateLimited),
        (429, "ModelNotReadyException", ErrorKind::Overloaded),
        (500, "InternalServerException", ErrorKind::UpstreamServer),
        (503, "ServiceUnavailableException", ErrorKind::Overloaded),
    ];
    for (status, name, kind) in table {
        let e = classify(
            ProviderKind::Bedrock,
            status,
            Some(&format!("{name}{ns}")),
            r#"{"message":"boom"}"#,
        );
        assert_eq!(e.kind, kind, "{name}");
        assert!(e.message.ends_with("boom"));
        assert_eq!(
            e.kind.retryable(),
            !matches!(kind, ErrorKind::InvalidRequest),
            "{name}"
        );
    }
    // Without the header: the body's `__type`, then the status.
    let e = classify(
        ProviderKind::Bedrock,
        400,
        None,
        r#"{"__type":"com.amazon.coral#ThrottlingException","message":"slow"}"#,
    );
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(
        classify(ProviderKind::Bedrock, 503, None, "").kind,
        ErrorKind::UpstreamServer
    );
}

#[test]
fn gemini_errors_and_retry_info() {
    let body = |code: u16, status: &str, details: &str| {
        format!(
            r#"{{"error":{{"code":{code},"message":"m","status":"{status}","details":[{details}]}}}}"#
        )
    };
    let table = [
        (400, "INVALID_ARGUMENT", ErrorKind::InvalidRequest),
        (401, "UNAUTHENTICATED", ErrorKind::UpstreamRejected),
        (403, "PERMISSION_DENIED", ErrorKind::UpstreamRejected),
        (404, "NOT_FOUND", ErrorKind::UpstreamRejected),
        (429, "RESOURCE_EXHAUSTED", ErrorKind::RateLimited),
        (500, "INTERNAL", ErrorKind::UpstreamServer),
        (503, "UNAVAILABLE", ErrorKind::Overloaded),
        (504, "DEADLINE_EXCEEDED", ErrorKind::UpstreamTimeout),
    ];
    for kind_of in [ProviderKind::Gemini, ProviderKind::Vertex] {
        for (status, canonical, kind) in table {
            let e = classify(kind_of, status, None, &body(status, canonical, ""));
            assert_eq!(e.kind, kind, "{canonical}");
            assert_eq!(e.retry_after, None);
        }
    }
    let bad_key =
        r#"{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}"#;
    let e = classify(
        ProviderKind::Gemini,
        400,
        None,
        &body(400, "INVALID_ARGUMENT", bad_key),
    );
    assert_eq!(e.kind, ErrorKind::UpstreamRejected);
    let retry = r#"{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}"#;
    let e = classify(
        ProviderKind::Gemini,
        429,
        None,
        &body(429, "RESOURCE_EXHAUSTED", retry),
    );
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
}

#[test]
fn the_upstreams_code_is_kept_for_the_client() {
    let azure =
        r#"{"error":{"code":"content_filter","message":"filtered","param":"prompt","status":400}}"#;
    let e = classify(ProviderKind::AzureOpenAi, 400, None, azure);
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::ContentFilter, Some("content_filter"))
    );
    let e = classify(
        ProviderKind::Bedrock,
        400,
        Some("ValidationException:ns"),
        r#"{"message":"Input is too long for requested model."}"#,
    );
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (
            ErrorKind::ContextLengthExceeded,
            Some("ValidationException")
        )
    );
}
