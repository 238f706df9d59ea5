//! Gemini API embeddings: `:embedContent` for one input, `:batchEmbedContents` for several.

use super::PROTOCOL;
use crate::canonical::{EmbeddingsRequest, EmbeddingsResponse};
use crate::json;
use crate::{DecodeError, Unsupported};
use serde::{Deserialize, Serialize};

/// Which method the body is for; it picks the URL suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedMethod {
    /// `models/{model}:embedContent`, one input.
    EmbedContent,
    /// `models/{model}:batchEmbedContents`, several inputs.
    BatchEmbedContents,
}

impl EmbedMethod {
    /// The URL suffix after the model name: `:embedContent` or `:batchEmbedContents`.
    pub fn url_suffix(self) -> &'static str {
        match self {
            EmbedMethod::EmbedContent => ":embedContent",
            EmbedMethod::BatchEmbedContents => ":batchEmbedContents",
        }
    }
}

/// One upstream embeddings call: the method and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsCall {
    /// Which endpoint.
    pub method: EmbedMethod,
    /// The JSON body.
    pub body: Vec<u8>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedOut<'a> {
    /// Required inside a batch (`models/{model}`), optional for a single call.
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    content: ContentOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Serialize)]
struct ContentOut<'a> {
    parts: [TextOut<'a>; 1],
}

#[derive(Serialize)]
struct TextOut<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct BatchOut<'a> {
    requests: Vec<EmbedOut<'a>>,
}

/// Canonical → one call for `upstream_model` (the bare name, such as
/// `gemini-embedding-001`). `dimensions` becomes `outputDimensionality`; pre-tokenized input
/// is [`Unsupported`].
pub fn encode_embeddings_request(
    upstream_model: &str,
    req: &EmbeddingsRequest,
) -> Result<EmbeddingsCall, Unsupported> {
    if req.token_input.is_some() {
        return Err(Unsupported::new(PROTOCOL, "pre-tokenized embeddings input"));
    }
    let model = format!("models/{}", upstream_model.trim_start_matches("models/"));
    let one = |text| EmbedOut {
        model: None,
        content: ContentOut {
            parts: [TextOut { text }],
        },
        output_dimensionality: req.dimensions,
    };
    let mut body = Vec::with_capacity(64);
    let method = if let [text] = req.input.as_slice() {
        json::write_json(&mut body, &one(text));
        EmbedMethod::EmbedContent
    } else {
        let requests = req
            .input
            .iter()
            .map(|t| EmbedOut {
                model: Some(&model),
                ..one(t)
            })
            .collect();
        json::write_json(&mut body, &BatchOut { requests });
        EmbedMethod::BatchEmbedContents
    };
    Ok(EmbeddingsCall { method, body })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseIn {
    #[serde(default)]
    embedding: Option<ValuesIn>,
    #[serde(default)]
    embeddings: Option<Vec<ValuesIn>>,
    #[serde(default)]
    usage_metadata: Option<UsageIn>,
}

#[derive(Deserialize)]
struct ValuesIn {
    #[serde(default)]
    values: Vec<f32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageIn {
    #[serde(default)]
    prompt_token_count: Option<u64>,
}

/// `embedContent` (`{"embedding": {"values"}}`) or `batchEmbedContents`
/// (`{"embeddings": [...]}`) answer → canonical. The Gemini API reports no token count for
/// embeddings unless `usageMetadata` is present, so `input_tokens` is usually 0; `model` is
/// empty (the caller knows it).
pub fn decode_embeddings_response(body: &[u8]) -> Result<EmbeddingsResponse, DecodeError> {
    let r: ResponseIn = serde_json::from_slice(body).map_err(|e| {
        DecodeError::new(format!("invalid upstream Gemini embeddings response: {e}"))
    })?;
    let vectors: Vec<Vec<f32>> = match (r.embedding, r.embeddings) {
        (Some(one), _) => vec![one.values],
        (None, Some(many)) => many.into_iter().map(|v| v.values).collect(),
        (None, None) => {
            return Err(DecodeError::new(
                "invalid upstream Gemini embeddings response: no 'embedding' or 'embeddings'",
            ))
        }
    };
    Ok(EmbeddingsResponse {
        model: String::new(),
        vectors,
        input_tokens: r
            .usage_metadata
            .and_then(|u| u.prompt_token_count)
            .unwrap_or(0),
    })
}
