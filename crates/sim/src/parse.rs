//! The simulator's reading of each protocol's request body, exposed so tests can check that
//! a gateway-encoded request means to the simulator what the canonical request meant:
//! `encode(canonical) → parse::<protocol>(bytes) → rules::Conversation`, compared with the
//! conversation the same canonical request gives through another protocol.
//!
//! These are the exact functions the simulated providers use, so what they return is what
//! the replies and token counts are computed from (see the README's deterministic rules).

use serde_json::Value;

use crate::protocols;
use crate::rules::Conversation;

/// A request body the simulator cannot read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request body is not a JSON object: {0}")]
pub struct ParseError(String);

fn object(body: &[u8]) -> Result<Value, ParseError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(ParseError(format!("found {}", kind(&other)))),
        Err(e) => Err(ParseError(e.to_string())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An OpenAI (or Azure, or OpenAI-compatible) chat completions body.
pub fn openai_chat(body: &[u8]) -> Result<Conversation, ParseError> {
    Ok(protocols::openai_conversation(&object(body)?, body))
}

/// An Anthropic Messages (or `count_tokens`) body.
pub fn anthropic_messages(body: &[u8]) -> Result<Conversation, ParseError> {
    Ok(protocols::anthropic_conversation(&object(body)?, body))
}

/// A Bedrock Converse or ConverseStream body.
pub fn bedrock_converse(body: &[u8]) -> Result<Conversation, ParseError> {
    Ok(protocols::bedrock_conversation(&object(body)?, body))
}

/// A Gemini or Vertex `generateContent` / `streamGenerateContent` / `countTokens` body.
pub fn gemini_generate_content(body: &[u8]) -> Result<Conversation, ParseError> {
    Ok(protocols::gemini_conversation(&object(body)?, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_conversation_through_four_protocols() {
        let oa = openai_chat(br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}],"max_tokens":5}"#).unwrap();
        let an = anthropic_messages(br#"{"model":"m","system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hi there"}]}],"max_tokens":5}"#).unwrap();
        let br = bedrock_converse(br#"{"system":[{"text":"be brief"}],"messages":[{"role":"user","content":[{"text":"hi there"}]}],"inferenceConfig":{"maxTokens":5}}"#).unwrap();
        let ge = gemini_generate_content(br#"{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"hi there"}]}],"generationConfig":{"maxOutputTokens":5}}"#).unwrap();
        for c in [&an, &br, &ge] {
            assert_eq!(c, &oa);
        }
        assert!(openai_chat(b"[1]").is_err());
        assert!(bedrock_converse(b"{").is_err());
    }
}
