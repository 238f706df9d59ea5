//! Bedrock `InvokeModel` for embedding models: Amazon Titan text embeddings and Cohere embed.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::bedrock::{authorize, Shape};
use crate::plumbing::{json_response, ErrorShape, Inbound, Sim};
use crate::rules;

/// The embedding dimension when the request does not ask for one (the rules' default).
const DEFAULT_DIMS: usize = 8;

/// `POST /model/{modelId}/invoke`.
pub(super) async fn invoke(
    State(ctx): State<Sim>,
    Path(model_id): Path<String>,
    req: Request,
) -> Response {
    let inb = match Inbound::read(req).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if let Err(r) = ctx.gate(&inb, Some(&model_id), false, &Shape).await {
        return r;
    }
    if let Err(r) = authorize(&ctx, &inb) {
        return r;
    }
    // Inference-profile prefixes (`us.`) and ARNs name the same model families.
    let family = model_id.rsplit('/').next().unwrap_or(&model_id);
    let family = family
        .split_once('.')
        .filter(|(p, _)| p.len() == 2)
        .map_or(family, |(_, rest)| rest);
    let body = inb.body();
    let answer = if family.starts_with("amazon.titan-embed") {
        titan(body)
    } else if family.starts_with("cohere.embed") {
        cohere(body, &ctx.next_id(""))
    } else {
        Err(format!(
            "The simulator's InvokeModel serves only embedding models (amazon.titan-embed-*, cohere.embed-*), not {model_id}"
        ))
    };
    match answer {
        Ok(v) => {
            // Bedrock reports InvokeModel usage in headers, whatever the model's body says.
            let tokens: u32 = match (v.get("inputTextTokenCount"), v.get("texts")) {
                (Some(n), _) => n
                    .as_u64()
                    .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                (None, Some(Value::Array(texts))) => texts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(rules::words)
                    .sum(),
                _ => 0,
            };
            let headers = [
                (
                    "x-amzn-RequestId",
                    ctx.next_id("").chars().take(20).collect::<String>(),
                ),
                ("X-Amzn-Bedrock-Input-Token-Count", tokens.to_string()),
                ("X-Amzn-Bedrock-Output-Token-Count", "0".to_owned()),
            ];
            json_response(StatusCode::OK, &v, &headers)
        }
        Err(message) => Shape.error(StatusCode::BAD_REQUEST, &message, None),
    }
}

fn dims(v: Option<&Value>) -> usize {
    v.and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| (1..=8192).contains(d))
        .unwrap_or(DEFAULT_DIMS)
}

/// Titan: `{inputText, dimensions?}` → `{embedding, inputTextTokenCount}`.
fn titan(body: &Value) -> Result<Value, String> {
    let text = body
        .get("inputText")
        .and_then(Value::as_str)
        .ok_or("Malformed input request: required key [inputText] not found")?;
    Ok(json!({
        "embedding": rules::embedding(text, dims(body.get("dimensions"))),
        "inputTextTokenCount": rules::words(text),
    }))
}

/// Cohere: `{texts, input_type}` → `{embeddings, id, texts, response_type}`.
fn cohere(body: &Value, id: &str) -> Result<Value, String> {
    let texts: Vec<&str> = body
        .get("texts")
        .and_then(Value::as_array)
        .ok_or("Malformed input request: required key [texts] not found")?
        .iter()
        .map(|t| {
            t.as_str()
                .ok_or("Malformed input request: texts must be strings")
        })
        .collect::<Result<_, _>>()?;
    if body.get("input_type").and_then(Value::as_str).is_none() {
        return Err("Malformed input request: required key [input_type] not found".to_owned());
    }
    let n = dims(body.get("output_dimension"));
    let embeddings: Vec<Vec<f32>> = texts.iter().map(|t| rules::embedding(t, n)).collect();
    Ok(json!({
        "embeddings": embeddings,
        "id": id,
        "texts": texts,
        "response_type": "embeddings_floats",
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn titan_and_cohere_shapes() {
        let t = titan(&json!({"inputText": "a b c", "dimensions": 4})).unwrap();
        assert_eq!(t["inputTextTokenCount"], 3);
        assert_eq!(t["embedding"].as_array().unwrap().len(), 4);
        assert!(titan(&json!({})).is_err());
        let c = cohere(
            &json!({"texts": ["x", "y z"], "input_type": "search_document"}),
            "id1",
        )
        .unwrap();
        assert_eq!(c["embeddings"].as_array().unwrap().len(), 2);
        assert_eq!(c["embeddings"][0].as_array().unwrap().len(), DEFAULT_DIMS);
        assert_eq!(c["response_type"], "embeddings_floats");
        assert!(cohere(&json!({"texts": ["x"]}), "i").is_err());
    }
}
