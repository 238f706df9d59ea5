//! OpenAI embeddings: request validation and pass-through, response encoding and decoding
//! (float arrays or base64 of little-endian f32).

use crate::canonical::{EmbeddingsRequest, EmbeddingsResponse};
use crate::json::{self, Members, Path};
use crate::DecodeError;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchyard_types::TokenUsage;

/// A decoded embeddings request plus the raw top-level members for pass-through.
#[derive(Debug, Clone)]
pub struct ParsedEmbeddingsRequest {
    /// The canonical request (`token_input` set for pre-tokenized input).
    pub request: EmbeddingsRequest,
    members: Members,
}

const ROOT: Path<'static> = Path::Root;

/// Parses and validates an embeddings body: `input` is a string, an array of strings, an
/// array of token ids or an array of such arrays, and must not be empty.
pub fn decode_embeddings_request(body: &[u8]) -> Result<ParsedEmbeddingsRequest, DecodeError> {
    let (text, top) = json::body_object(body)?;
    let model: String = json::required(&top, "model", &ROOT, "a string")?;
    let input_raw = top
        .get_non_null("input")
        .ok_or_else(|| DecodeError::at("input", "missing required parameter 'input'"))?;
    let (input, token_input) = input(input_raw)?;
    let encoding: Option<String> = json::opt(&top, "encoding_format", &ROOT, "a string")?;
    let base64 = match encoding.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(DecodeError::at(
                "encoding_format",
                format!(
                    "invalid 'encoding_format': '{}'; supported: float, base64",
                    json::truncate(other, 40)
                ),
            ))
        }
    };
    let request = EmbeddingsRequest {
        model,
        input,
        token_input,
        dimensions: json::opt(&top, "dimensions", &ROOT, "a positive integer")?,
        base64,
    };
    Ok(ParsedEmbeddingsRequest {
        request,
        members: Members::new(text, &top)?,
    })
}

type Inputs = (Vec<String>, Option<Vec<Vec<u32>>>);

fn input(raw: &RawValue) -> Result<Inputs, DecodeError> {
    let path = ROOT.key("input");
    let expected =
        "a string, an array of strings, an array of token ids or an array of token-id arrays";
    let first = raw.get().as_bytes().first().copied();
    if first == Some(b'"') {
        return Ok((vec![json::string(raw, &path)?], None));
    }
    let items = match first {
        Some(b'[') => json::array(raw, &path)?,
        _ => {
            return Err(DecodeError::at(
                path,
                format!(
                    "invalid 'input': expected {expected}, got {}",
                    json::describe(raw)
                ),
            ))
        }
    };
    if items.is_empty() {
        return Err(DecodeError::at(path, "'input' must not be empty"));
    }
    // The first element decides the form; every element must then have it.
    match items[0].get().as_bytes().first() {
        Some(b'"') => {
            let texts = items
                .iter()
                .enumerate()
                .map(|(i, raw)| json::string(raw, &path.index(i)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((texts, None))
        }
        Some(b'[') => {
            let lists = items
                .iter()
                .enumerate()
                .map(|(i, raw)| {
                    json::typed::<Vec<u32>>(raw, &path.index(i), "an array of token ids")
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((Vec::new(), Some(lists)))
        }
        _ => {
            let tokens: Vec<u32> = json::typed(raw, &path, expected)?;
            Ok((Vec::new(), Some(vec![tokens])))
        }
    }
}

impl ParsedEmbeddingsRequest {
    /// The client's body with only `model` replaced by `upstream_model`, members in order.
    pub fn passthrough_body(&self, upstream_model: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.members.body_len() + upstream_model.len());
        out.push(b'{');
        for (i, (key, raw)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            Members::write_key(&mut out, key);
            out.push(b':');
            if key == "model" {
                json::write_str(&mut out, upstream_model);
            } else {
                out.extend_from_slice(raw.as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

#[derive(Deserialize)]
struct UsageOnlyIn {
    #[serde(default)]
    usage: Option<EmbeddingsUsageIn>,
}

#[derive(Deserialize)]
struct EmbeddingsUsageIn {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// The usage of an embeddings response (input tokens only); `None` if absent or unparsable.
pub fn embeddings_usage(body: &[u8]) -> Option<TokenUsage> {
    let usage = serde_json::from_slice::<UsageOnlyIn>(body).ok()?.usage?;
    Some(TokenUsage {
        input: usage.prompt_tokens.or(usage.total_tokens).unwrap_or(0),
        ..TokenUsage::default()
    })
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    object: &'static str,
    data: Vec<ItemOut<'a>>,
    model: &'a str,
    usage: UsageOut,
}

#[derive(Serialize)]
struct ItemOut<'a> {
    object: &'static str,
    index: usize,
    embedding: EmbeddingOut<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingOut<'a> {
    Floats(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// Canonical → OpenAI embeddings list, vectors as float arrays or base64 of little-endian f32.
pub fn encode_embeddings_response(resp: &EmbeddingsResponse, base64: bool) -> Vec<u8> {
    let data = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| ItemOut {
            object: "embedding",
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                EmbeddingOut::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingOut::Floats(v)
            },
        })
        .collect();
    let mut out = Vec::with_capacity(64 + resp.vectors.iter().map(|v| v.len() * 12).sum::<usize>());
    json::write_json(
        &mut out,
        &ResponseOut {
            object: "list",
            data,
            model: &resp.model,
            usage: UsageOut {
                prompt_tokens: resp.input_tokens,
                total_tokens: resp.input_tokens,
            },
        },
    );
    out
}

#[derive(Deserialize)]
struct ResponseIn<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default, borrow)]
    data: Vec<ItemIn<'a>>,
    #[serde(default)]
    usage: Option<EmbeddingsUsageIn>,
}

#[derive(Deserialize)]
struct ItemIn<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(borrow)]
    embedding: &'a RawValue,
}

/// Upstream embeddings list → canonical; each vector may be a float array or base64 text.
/// Items are put in `index` order.
pub fn decode_embeddings_response(body: &[u8]) -> Result<EmbeddingsResponse, DecodeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| DecodeError::new("invalid upstream embeddings response: not UTF-8"))?;
    let wire: ResponseIn<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(format!("invalid upstream embeddings response: {e}")))?;
    let mut items: Vec<(usize, Vec<f32>)> = Vec::with_capacity(wire.data.len());
    let data_path = ROOT.key("data");
    for (pos, item) in wire.data.iter().enumerate() {
        let item_path = data_path.index(pos);
        let path = item_path.key("embedding");
        let vector = if item.embedding.get().starts_with('"') {
            let b64 = json::string(item.embedding, &path)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| DecodeError::at(path, format!("invalid base64 embedding: {e}")))?;
            if bytes.len() % 4 != 0 {
                return Err(DecodeError::at(
                    path,
                    "base64 embedding is not a whole number of float32 values",
                ));
            }
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            json::typed::<Vec<f32>>(
                item.embedding,
                &path,
                "an array of numbers or a base64 string",
            )?
        };
        items.push((item.index.unwrap_or(pos), vector));
    }
    items.sort_by_key(|(i, _)| *i);
    let usage = wire.usage;
    Ok(EmbeddingsResponse {
        model: wire.model.unwrap_or_default(),
        vectors: items.into_iter().map(|(_, v)| v).collect(),
        input_tokens: usage
            .and_then(|u| u.prompt_tokens.or(u.total_tokens))
            .unwrap_or(0),
    })
}
