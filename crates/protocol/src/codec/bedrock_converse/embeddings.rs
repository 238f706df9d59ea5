//! Embeddings through Bedrock `InvokeModel` (`POST /model/{id}/invoke`), whose body is the
//! model family's own JSON.
//!
//! - Titan Text Embeddings (`amazon.titan-embed-text-*`) takes one text per call, so a request
//!   with several inputs becomes one call per input, in order.
//! - Cohere Embed (`cohere.embed-*`) takes up to 96 texts per call, so inputs are sent in
//!   batches of 96, with `input_type: "search_document"` (OpenAI's API has no input type;
//!   documents is the neutral choice for stored vectors).
//!
//! The caller sends the bodies in order and hands the answers, in the same order, to
//! [`decode_embeddings_response`].

use super::PROTOCOL;
use crate::canonical::{EmbeddingsRequest, EmbeddingsResponse};
use crate::json;
use crate::{DecodeError, Unsupported};
use serde::{Deserialize, Serialize};

/// Cohere's documented maximum of texts per call.
const COHERE_BATCH: usize = 96;

/// A Bedrock embeddings model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingsFamily {
    /// Amazon Titan Text Embeddings: one text per call.
    Titan,
    /// Cohere Embed: up to 96 texts per call.
    Cohere,
}

/// The family of a model id (foundation-model or inference-profile id such as
/// `us.cohere.embed-v4:0`), or `None` for one the gateway cannot speak to.
pub fn embeddings_family(model_id: &str) -> Option<EmbeddingsFamily> {
    if model_id.contains("amazon.titan-embed") {
        Some(EmbeddingsFamily::Titan)
    } else if model_id.contains("cohere.embed") {
        Some(EmbeddingsFamily::Cohere)
    } else {
        None
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanOut<'a> {
    input_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
}

#[derive(Serialize)]
struct CohereOut<'a> {
    texts: &'a [String],
    input_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<u32>,
}

fn family(model_id: &str) -> Result<EmbeddingsFamily, Unsupported> {
    embeddings_family(model_id).ok_or_else(|| {
        Unsupported::new(
            PROTOCOL,
            format!(
                "embeddings with model '{model_id}' (supported: amazon.titan-embed-*, cohere.embed-*)"
            ),
        )
    })
}

/// Canonical → the `InvokeModel` bodies for `model_id`, one per upstream call (see the module
/// docs). Pre-tokenized input is [`Unsupported`]; so are `dimensions` for Cohere models
/// before Embed v4 (which takes `output_dimension`).
pub fn encode_embeddings_request(
    model_id: &str,
    req: &EmbeddingsRequest,
) -> Result<Vec<Vec<u8>>, Unsupported> {
    if req.token_input.is_some() {
        return Err(Unsupported::new(PROTOCOL, "pre-tokenized embeddings input"));
    }
    let mut bodies = Vec::new();
    match family(model_id)? {
        EmbeddingsFamily::Titan => {
            for text in &req.input {
                let mut out = Vec::with_capacity(32 + text.len());
                json::write_json(
                    &mut out,
                    &TitanOut {
                        input_text: text,
                        dimensions: req.dimensions,
                    },
                );
                bodies.push(out);
            }
        }
        EmbeddingsFamily::Cohere => {
            if req.dimensions.is_some() && !model_id.contains("embed-v4") {
                return Err(Unsupported::new(
                    PROTOCOL,
                    "`dimensions` with Cohere Embed models before v4",
                ));
            }
            for texts in req.input.chunks(COHERE_BATCH) {
                let mut out = Vec::with_capacity(64);
                json::write_json(
                    &mut out,
                    &CohereOut {
                        texts,
                        input_type: "search_document",
                        output_dimension: req.dimensions,
                    },
                );
                bodies.push(out);
            }
        }
    }
    Ok(bodies)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanIn {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: Option<u64>,
}

#[derive(Deserialize)]
struct CohereIn {
    embeddings: CohereEmbeddingsIn,
}

/// A plain list, or by type when `embedding_types` was sent (`{"float": [...]}`).
#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddingsIn {
    List(Vec<Vec<f32>>),
    ByType { float: Vec<Vec<f32>> },
}

/// The answers to the bodies of [`encode_embeddings_request`], in order → canonical.
///
/// Cohere's Bedrock answer carries no token count (Bedrock reports it in the
/// `X-Amzn-Bedrock-Input-Token-Count` header), so `input_tokens` is 0 for Cohere and the
/// caller adds the header's value.
pub fn decode_embeddings_response(
    model_id: &str,
    bodies: &[&[u8]],
) -> Result<EmbeddingsResponse, DecodeError> {
    let family = embeddings_family(model_id)
        .ok_or_else(|| DecodeError::new(format!("unknown embeddings model '{model_id}'")))?;
    let mut vectors = Vec::new();
    let mut input_tokens = 0;
    for body in bodies {
        match family {
            EmbeddingsFamily::Titan => {
                let r: TitanIn = serde_json::from_slice(body).map_err(|e| {
                    DecodeError::new(format!("invalid upstream Titan embeddings response: {e}"))
                })?;
                vectors.push(r.embedding);
                input_tokens += r.input_text_token_count.unwrap_or(0);
            }
            EmbeddingsFamily::Cohere => {
                let r: CohereIn = serde_json::from_slice(body).map_err(|e| {
                    DecodeError::new(format!("invalid upstream Cohere embeddings response: {e}"))
                })?;
                match r.embeddings {
                    CohereEmbeddingsIn::List(v) | CohereEmbeddingsIn::ByType { float: v } => {
                        vectors.extend(v)
                    }
                }
            }
        }
    }
    Ok(EmbeddingsResponse {
        model: model_id.to_owned(),
        vectors,
        input_tokens,
    })
}
