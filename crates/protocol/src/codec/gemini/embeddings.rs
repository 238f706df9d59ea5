//! Embeddings: the Gemini API's `:batchEmbedContents` (one call for any number of inputs, so
//! the provider's URL does not depend on the input count) and Vertex's `:predict`.

use super::PROTOCOL;
use crate::canonical::{EmbeddingsRequest, EmbeddingsResponse};
use crate::json;
use crate::{DecodeError, Unsupported};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedOut<'a> {
    /// `models/{model}`: required inside a batch.
    model: &'a str,
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

/// Canonical → a `batchEmbedContents` body for `upstream_model` (the bare name, such as
/// `gemini-embedding-001`). `dimensions` becomes `outputDimensionality`; pre-tokenized input
/// is [`Unsupported`].
pub fn encode_embeddings_request(
    upstream_model: &str,
    req: &EmbeddingsRequest,
) -> Result<Vec<u8>, Unsupported> {
    if req.token_input.is_some() {
        return Err(Unsupported::new(PROTOCOL, "pre-tokenized embeddings input"));
    }
    let model = format!("models/{}", upstream_model.trim_start_matches("models/"));
    let requests = req
        .input
        .iter()
        .map(|text| EmbedOut {
            model: &model,
            content: ContentOut {
                parts: [TextOut { text }],
            },
            output_dimensionality: req.dimensions,
        })
        .collect();
    let mut body = Vec::with_capacity(64);
    json::write_json(&mut body, &BatchOut { requests });
    Ok(body)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PredictOut<'a> {
    instances: Vec<InstanceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<ParametersOut>,
}

#[derive(Serialize)]
struct InstanceOut<'a> {
    content: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ParametersOut {
    output_dimensionality: u32,
}

/// Canonical → a Vertex `:predict` body for a text-embedding model:
/// `{instances: [{content}], parameters: {outputDimensionality}}`.
pub fn encode_vertex_embeddings_request(req: &EmbeddingsRequest) -> Result<Vec<u8>, Unsupported> {
    if req.token_input.is_some() {
        return Err(Unsupported::new("vertex", "pre-tokenized embeddings input"));
    }
    let out = PredictOut {
        instances: req
            .input
            .iter()
            .map(|content| InstanceOut { content })
            .collect(),
        parameters: req.dimensions.map(|d| ParametersOut {
            output_dimensionality: d,
        }),
    };
    let mut body = Vec::with_capacity(64);
    json::write_json(&mut body, &out);
    Ok(body)
}

#[derive(Deserialize)]
struct PredictIn {
    predictions: Vec<PredictionIn>,
}

#[derive(Deserialize)]
struct PredictionIn {
    embeddings: PredictionEmbeddingsIn,
}

#[derive(Deserialize)]
struct PredictionEmbeddingsIn {
    #[serde(default)]
    values: Vec<f32>,
    #[serde(default)]
    statistics: Option<StatisticsIn>,
}

#[derive(Deserialize)]
struct StatisticsIn {
    #[serde(default)]
    token_count: f64,
}

/// A Vertex `:predict` answer (`{predictions: [{embeddings: {values, statistics}}]}`) →
/// canonical; input tokens are the sum of each prediction's `statistics.token_count`.
pub fn decode_vertex_embeddings_response(body: &[u8]) -> Result<EmbeddingsResponse, DecodeError> {
    let r: PredictIn = serde_json::from_slice(body).map_err(|e| {
        DecodeError::new(format!("invalid upstream Vertex embeddings response: {e}"))
    })?;
    let input_tokens = r
        .predictions
        .iter()
        .filter_map(|p| p.embeddings.statistics.as_ref())
        .map(|s| s.token_count.max(0.0) as u64)
        .sum();
    Ok(EmbeddingsResponse {
        model: String::new(),
        vectors: r
            .predictions
            .into_iter()
            .map(|p| p.embeddings.values)
            .collect(),
        input_tokens,
    })
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
