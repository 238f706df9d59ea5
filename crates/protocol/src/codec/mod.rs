//! One pure codec per wire format; each translates to and from the canonical types.
//! docs/translation.md records, per feature and protocol, what is translated, dropped or
//! rejected.

pub mod anthropic_messages;
pub mod bedrock_converse;
pub mod gemini;
pub mod openai_chat;
pub mod structured;
mod turns;

#[cfg(test)]
pub(crate) mod test_support;

use serde_json::Value;

/// A tool's schema, or `{"type": "object"}` when it has none (Anthropic and Bedrock require
/// one; a function without parameters takes an empty object).
pub(crate) fn schema_or_empty(schema: &Value) -> &Value {
    static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    if schema.is_null() {
        EMPTY.get_or_init(|| serde_json::json!({"type": "object"}))
    } else {
        schema
    }
}

/// Rejects what protocols with a single answer (Anthropic, Bedrock) cannot express: several
/// choices. Their JSON response formats go as an answer tool ([`structured`]) or natively.
pub(crate) fn reject_choices(
    req: &crate::ChatRequest,
    protocol: &'static str,
) -> Result<(), crate::Unsupported> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(crate::Unsupported::new(protocol, "`n` > 1"));
    }
    Ok(())
}
