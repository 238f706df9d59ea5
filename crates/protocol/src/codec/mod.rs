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

/// Rejects a `seed` on protocols with no seeded sampling (Anthropic, Bedrock): the client
/// asked for reproducible output, which they cannot promise.
pub(crate) fn reject_seed(
    req: &crate::ChatRequest,
    protocol: &'static str,
) -> Result<(), crate::Unsupported> {
    match req.seed {
        Some(_) => Err(crate::Unsupported::new(protocol, "`seed`")),
        None => Ok(()),
    }
}

/// Rejects `parallel_tool_calls: false` with tools on protocols that cannot limit a turn to
/// one call (Bedrock, Gemini).
pub(crate) fn reject_serial_tool_calls(
    req: &crate::ChatRequest,
    protocol: &'static str,
) -> Result<(), crate::Unsupported> {
    if req.parallel_tool_calls == Some(false) && !req.tools.is_empty() {
        return Err(crate::Unsupported::new(
            protocol,
            "`parallel_tool_calls: false` (one tool call per turn)",
        ));
    }
    Ok(())
}

/// The top-level members of a client body that its front door does not translate (not in
/// `mapped`), by name and in order: they reach a same-protocol upstream in the passed-through
/// body, and a translated request that has them is refused naming them. A value that asks for
/// nothing (`null`, `false`, `0`, `""`, `{}`, `[]`, or one of `neutral`'s `(member, compact
/// JSON)` defaults) is no request and is left out.
pub(crate) fn untranslated(
    top: &crate::json::RawObject<'_>,
    mapped: &[&str],
    neutral: &[(&str, &str)],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (key, raw) in &top.0 {
        if mapped.contains(&key.as_ref()) || out.iter().any(|k| k == key) {
            continue;
        }
        let value = crate::json::compact(raw.get());
        let nothing = matches!(
            value.as_str(),
            "null" | "false" | "0" | "0.0" | "\"\"" | "{}" | "[]"
        ) || neutral.iter().any(|(k, v)| k == key && *v == value);
        if !nothing {
            out.push(key.to_string());
        }
    }
    out
}
