//! The deterministic rules every simulated protocol follows (documented in the crate README).
//!
//! Protocol modules translate their request into a [`Conversation`]; [`plan`] decides the reply,
//! and the token counters give the usage numbers.

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The number of tokens in a text: its whitespace-separated words.
pub fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// The words of a text joined by single spaces.
pub fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One message of the canonical conversation (system instructions count as one message).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Msg {
    /// Whether this is a user turn (tool results included).
    pub is_user: bool,
    /// Text parts.
    pub texts: Vec<String>,
    /// Tool-call arguments as compact JSON text.
    pub tool_args: Vec<String>,
    /// Tool-result contents as text.
    pub tool_results: Vec<String>,
}

impl Msg {
    /// A user message with one text part.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            is_user: true,
            texts: vec![text.into()],
            ..Self::default()
        }
    }

    /// Tokens this message contributes to the input: its words plus one.
    pub fn tokens(&self) -> u32 {
        let parts = self
            .texts
            .iter()
            .chain(&self.tool_args)
            .chain(&self.tool_results);
        parts.map(|t| words(t)).sum::<u32>() + 1
    }
}

/// A tool the caller offers, with its input schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// The tool (function) name.
    pub name: String,
    /// The JSON schema of its arguments, member order kept.
    pub schema: Schema,
}

/// How the caller wants tools used.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ToolChoice {
    /// The model may call a tool (the simulator always calls the first one).
    #[default]
    Auto,
    /// Tools must not be called.
    None,
    /// Some tool must be called (the first one).
    Any,
    /// This tool must be called.
    Named(String),
}

/// A request reduced to what the rules need.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversation {
    /// Messages in order, system instructions first when present.
    pub messages: Vec<Msg>,
    /// Offered tools.
    pub tools: Vec<Tool>,
    /// Tool choice.
    pub tool_choice: ToolChoice,
    /// The protocol's output-token limit, if given.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// The schema a JSON answer must follow, when the request asks for one (OpenAI
    /// `response_format`, Anthropic `output_config.format`, Gemini `responseMimeType:
    /// application/json` with its schema); an empty schema for "any JSON object".
    pub answer: Option<Schema>,
}

/// Why a text reply ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The reply ended naturally.
    Stop,
    /// The reply was truncated to `max_tokens` words.
    Length,
    /// The reply was cut before this stop sequence.
    StopSequence(String),
}

/// The simulator's decision for one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Answer with text.
    Text {
        /// The reply text (words joined by single spaces).
        text: String,
        /// Why it ended.
        finish: Finish,
    },
    /// Call a tool.
    ToolCall {
        /// The tool name.
        name: String,
        /// Arguments as compact JSON text, properties in schema order.
        args: String,
    },
}

impl Plan {
    /// Output tokens: the reply's words, or for a tool call the arguments' words plus one.
    pub fn output_tokens(&self) -> u32 {
        match self {
            Self::Text { text, .. } => words(text),
            Self::ToolCall { args, .. } => words(args) + 1,
        }
    }

    /// Streaming pieces of the reply text: each word with a trailing space except the last.
    ///
    /// A continuation of a prefill may start with a space; the first piece keeps it.
    pub fn text_pieces(text: &str) -> Vec<String> {
        let ws: Vec<&str> = text.split_whitespace().collect();
        let last = ws.len().saturating_sub(1);
        let lead = if text.starts_with(char::is_whitespace) {
            " "
        } else {
            ""
        };
        ws.iter()
            .enumerate()
            .map(|(i, w)| {
                let lead = if i == 0 { lead } else { "" };
                let tail = if i == last { "" } else { " " };
                format!("{lead}{w}{tail}")
            })
            .collect()
    }

    /// Tool arguments split into up to three fragments for protocols that stream them.
    pub fn arg_fragments(args: &str) -> Vec<String> {
        let chars: Vec<char> = args.chars().collect();
        let n = chars.len();
        if n < 3 {
            return vec![args.to_owned()];
        }
        let (a, b) = (n / 3, 2 * n / 3);
        [&chars[..a], &chars[a..b], &chars[b..]]
            .iter()
            .map(|c| c.iter().collect())
            .collect()
    }
}

impl Conversation {
    /// Input tokens: the sum of every message's tokens.
    pub fn input_tokens(&self) -> u32 {
        self.messages.iter().map(Msg::tokens).sum()
    }

    /// Decides the reply of the provider called `name`.
    pub fn plan(&self, name: &str) -> Plan {
        let last = self.messages.last();
        let last_is_plain_user = last.is_some_and(|m| m.is_user && m.tool_results.is_empty());
        if last_is_plain_user && self.tool_choice != ToolChoice::None {
            let tool = match &self.tool_choice {
                ToolChoice::Named(n) => self
                    .tools
                    .iter()
                    .find(|t| &t.name == n)
                    .or(self.tools.first()),
                _ => self.tools.first(),
            };
            if let Some(tool) = tool {
                let first_word = self.first_word();
                return Plan::ToolCall {
                    name: tool.name.clone(),
                    args: build_args(&tool.schema, &first_word),
                };
            }
        }
        if let Some(schema) = &self.answer {
            // A structured answer is whole JSON: stop sequences and the word limit would
            // only make it unparseable.
            return Plan::Text {
                text: build_args(schema, &self.first_word()),
                finish: Finish::Stop,
            };
        }
        shape_text(&self.full_reply(name), &self.stop, self.max_tokens)
    }

    /// The unshaped text reply: `"{name} got: …"` after a tool result, else `"{name} says: …"`.
    fn full_reply(&self, name: &str) -> String {
        match self.messages.last() {
            Some(m) if m.is_user && !m.tool_results.is_empty() => {
                format!("{name} got: {}", m.tool_results.join(" "))
            }
            _ => format!("{name} says: {}", self.last_user_text()),
        }
    }

    /// The text of the last message when it can be an assistant prefill: a non-user message
    /// with text and no tool call. The caller checks that its role really is the assistant's.
    pub fn trailing_text(&self) -> Option<String> {
        let m = self.messages.last()?;
        let text = m.texts.concat();
        (!m.is_user && m.tool_args.is_empty() && !text.is_empty()).then_some(text)
    }

    /// The reply when the last message is an assistant prefill `prefill`: the reply to the
    /// conversation before it with the prefill removed from its start (only the continuation,
    /// starting with the whitespace after the prefix), or the whole reply when the prefill is not
    /// a prefix of it (both compared with normalised whitespace). Never a tool call.
    pub fn plan_continuing(&self, name: &str, prefill: &str) -> Plan {
        let before = Conversation {
            messages: self.messages[..self.messages.len().saturating_sub(1)].to_vec(),
            ..Conversation::default()
        };
        let full = normalize(&before.full_reply(name));
        let prefill = normalize(prefill);
        match full.strip_prefix(prefill.as_str()) {
            Some(rest) if !prefill.is_empty() => continuation(rest, &self.stop, self.max_tokens),
            _ => shape_text(&full, &self.stop, self.max_tokens),
        }
    }

    /// The first word of the last user text (`"sim"` if none): the value of string members.
    fn first_word(&self) -> String {
        self.last_user_text()
            .split_whitespace()
            .next()
            .unwrap_or("sim")
            .to_owned()
    }

    /// The text of the last user message that has text, words joined by single spaces.
    pub fn last_user_text(&self) -> String {
        let msg = self
            .messages
            .iter()
            .rev()
            .find(|m| m.is_user && !m.texts.is_empty());
        msg.map(|m| normalize(&m.texts.join(" ")))
            .unwrap_or_default()
    }
}

/// Applies stop sequences (cut before the earliest match) and then the `max_tokens` word limit.
pub fn shape_text(full: &str, stop: &[String], max_tokens: Option<u32>) -> Plan {
    let mut cut = full;
    let mut matched = None;
    let mut best = usize::MAX;
    for s in stop.iter().filter(|s| !s.is_empty()) {
        if let Some(i) = full.find(s.as_str()) {
            if i < best {
                best = i;
                matched = Some(s.clone());
                cut = &full[..i];
            }
        }
    }
    let ws: Vec<&str> = cut.split_whitespace().collect();
    match max_tokens {
        Some(max) if (max as usize) < ws.len() => Plan::Text {
            text: ws[..max as usize].join(" "),
            finish: Finish::Length,
        },
        _ => Plan::Text {
            text: ws.join(" "),
            finish: matched.map_or(Finish::Stop, Finish::StopSequence),
        },
    }
}

/// Shapes a continuation like [`shape_text`] (stop sequences and `max_tokens` apply to the
/// continuation only) but keeps its leading space, which joins it to the prefill.
fn continuation(rest: &str, stop: &[String], max_tokens: Option<u32>) -> Plan {
    match shape_text(rest, stop, max_tokens) {
        Plan::Text { text, finish } if rest.starts_with(' ') && !text.is_empty() => Plan::Text {
            text: format!(" {text}"),
            finish,
        },
        other => other,
    }
}

/// Builds a value that conforms to `schema` as compact JSON text, object members in schema
/// order: see [`Schema`] for the rules.
pub fn build_args(schema: &Schema, first_word: &str) -> String {
    let mut out = String::new();
    if let Some(root) = &schema.0 {
        sample(root, root, first_word, 0, &mut out);
    }
    // No schema, or one that is not an object's: an empty object, as tools without
    // parameters take.
    if !out.starts_with('{') {
        out = "{}".to_owned();
    }
    out
}

/// How deep `$ref`s and nesting are followed before a value is cut short with `null`.
const MAX_DEPTH: u32 = 12;

/// Writes a value conforming to `node` (resolving `$ref`s against `root`).
fn sample(node: &Json, root: &Json, word: &str, depth: u32, out: &mut String) {
    if depth > MAX_DEPTH {
        out.push_str("null");
        return;
    }
    if let Some(Json::Str(r)) = node.get("$ref") {
        match resolve(root, r) {
            Some(target) => sample(target, root, word, depth + 1, out),
            None => out.push_str("null"),
        }
        return;
    }
    if let Some(v) = node.get("const") {
        v.write(out);
        return;
    }
    if let Some(Json::Arr(values)) = node.get("enum") {
        match values.first() {
            Some(v) => v.write(out),
            None => out.push_str("null"),
        }
        return;
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Json::Arr(alts)) = node.get(key) {
            // The first alternative that is not just `null` (Optional[...] in pydantic).
            let alt = alts.iter().find(|a| type_of(a) != "null").or(alts.first());
            match alt {
                Some(a) => sample(a, root, word, depth + 1, out),
                None => out.push_str("null"),
            }
            return;
        }
    }
    match type_of(node).as_str() {
        "string" => Json::Str(word.to_owned()).write(out),
        "integer" => out.push_str(&bounded(node, 42.0, true)),
        "number" => out.push_str(&bounded(node, 4.2, false)),
        "boolean" => out.push_str("true"),
        "array" => {
            let n = match node.get("minItems") {
                Some(Json::Num(n)) => n.as_u64().unwrap_or(0).min(8),
                _ => 0,
            };
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                match node.get("items") {
                    Some(items) => sample(items, root, word, depth + 1, out),
                    None => out.push_str("null"),
                }
            }
            out.push(']');
        }
        "object" | "" if node.get("properties").is_some() => {
            out.push('{');
            if let Some(Json::Obj(props)) = node.get("properties") {
                for (i, (name, prop)) in props.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Str(name.clone()).write(out);
                    out.push(':');
                    sample(prop, root, word, depth + 1, out);
                }
            }
            out.push('}');
        }
        "object" => out.push_str("{}"),
        _ => out.push_str("null"),
    }
}

/// 42 (integers) or 4.2 (numbers), moved into `minimum`..`maximum` when those exclude it.
fn bounded(node: &Json, default: f64, integer: bool) -> String {
    let bound = |k: &str| match node.get(k) {
        Some(Json::Num(n)) => n.as_f64(),
        _ => None,
    };
    let mut v = default;
    if let Some(min) = bound("minimum").or(bound("exclusiveMinimum")) {
        if v < min {
            v = if integer { min.ceil() + 1.0 } else { min + 1.0 };
        }
    }
    if let Some(max) = bound("maximum").or(bound("exclusiveMaximum")) {
        if v > max {
            v = if integer {
                max.floor() - 1.0
            } else {
                max - 1.0
            };
        }
    }
    if integer {
        format!("{}", v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or_else(|| "0".to_owned(), |n| n.to_string())
    }
}

/// A local `$ref` (`#/$defs/Name`, `#/definitions/Name`, any `#/a/b` pointer) in `root`.
fn resolve<'a>(root: &'a Json, reference: &str) -> Option<&'a Json> {
    let path = reference.strip_prefix("#")?;
    path.split('/')
        .filter(|p| !p.is_empty())
        .try_fold(root, |node, key| {
            node.get(&key.replace("~1", "/").replace("~0", "~"))
        })
}

/// The JSON type of one schema (first non-null when `type` is a list), lower-cased; "" when
/// it names none.
fn type_of(node: &Json) -> String {
    let ty = match node.get("type") {
        Some(Json::Str(s)) => s.clone(),
        Some(Json::Arr(a)) => a
            .iter()
            .filter_map(|t| match t {
                Json::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .find(|s| !s.eq_ignore_ascii_case("null"))
            .unwrap_or("null")
            .to_owned(),
        _ => String::new(),
    };
    ty.to_ascii_lowercase()
}

/// Cached input tokens: `(input / 32) * 16` when the input is at least 32 tokens, else 0.
pub fn cached_tokens(input: u32) -> u32 {
    if input >= 32 {
        (input / 32) * 16
    } else {
        0
    }
}

/// A short deterministic id suffix: the first 24 hex digits of SHA-256 over the parts.
pub fn hash_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

/// A deterministic unit-length embedding of `text` with `dims` components.
///
/// Bytes come from SHA-256(text ‖ block as u32 LE) for block 0, 1, …; component i is
/// `byte_i / 127.5 - 1`; the vector is then L2-normalised.
pub fn embedding(text: &str, dims: usize) -> Vec<f32> {
    let mut bytes = Vec::with_capacity(dims + 32);
    let mut block: u32 = 0;
    while bytes.len() < dims {
        let mut h = Sha256::new();
        h.update(text.as_bytes());
        h.update(block.to_le_bytes());
        bytes.extend_from_slice(&h.finalize());
        block += 1;
    }
    let raw: Vec<f32> = bytes[..dims]
        .iter()
        .map(|b| f32::from(*b) / 127.5 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return raw;
    }
    raw.iter().map(|x| x / norm).collect()
}

/// Text of a JSON value for token counting: strings as-is, anything else as compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A tool argument value (a JSON string in OpenAI, an object elsewhere) as compact JSON text.
pub fn args_text(v: &Value) -> String {
    match v {
        Value::String(s) => {
            serde_json::from_str::<Value>(s).map_or_else(|_| s.clone(), |p| p.to_string())
        }
        other => other.to_string(),
    }
}

/// A JSON schema, object member order kept (serde_json's `Value` sorts members).
///
/// A conforming value ([`build_args`]) is built as: `$ref` → the referenced schema (local
/// pointers such as `#/$defs/Name`); `const` → it; `enum` → its first value; `anyOf` /
/// `oneOf` / `allOf` → the first alternative that is not `null`; string → the first word of
/// the last user text; integer → 42 and number → 4.2 (moved inside `minimum` / `maximum`);
/// boolean → true; array → `minItems` (at most 8) sampled `items`, else `[]`; object → every
/// property in declaration order, or `{}` without properties; anything else → null. Types are
/// read case-insensitively (Gemini's `STRING`), and for a type list the first non-null one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema(Option<Json>);

impl Schema {
    /// The schema with no properties: its conforming value is `{}`.
    pub fn empty() -> Self {
        Self(None)
    }
}

/// The raw JSON at `path` (object member names) inside the JSON text `bytes`: member order
/// survives, which parsing into a `Value` would lose.
pub fn raw_at(bytes: &[u8], path: &[&str]) -> Option<Box<RawValue>> {
    let mut current: Box<RawValue> = serde_json::from_slice(bytes).ok()?;
    for key in path {
        let mut members: std::collections::HashMap<String, Box<RawValue>> =
            serde_json::from_str(current.get()).ok()?;
        current = members.remove(*key)?;
    }
    Some(current)
}

/// Reads a JSON schema, keeping member order; anything unreadable is the empty schema.
pub fn schema_props(schema: &RawValue) -> Schema {
    Schema(serde_json::from_str::<Json>(schema.get()).ok())
}

/// A JSON value whose objects keep their member order.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Compact JSON text, as `serde_json` writes it.
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(&n.to_string()),
            Json::Str(s) => out.push_str(&Value::from(s.as_str()).to_string()),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Str(k.clone()).write(out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Num(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
                Ok(serde_json::Number::from_f64(n).map_or(Json::Null, Json::Num))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(Json::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Json::Obj(members))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conv(msgs: Vec<Msg>) -> Conversation {
        Conversation {
            messages: msgs,
            ..Conversation::default()
        }
    }

    #[test]
    fn input_tokens_count_words_plus_one_per_message() {
        let sys = Msg {
            texts: vec!["be brief".into()],
            ..Msg::default()
        };
        let c = conv(vec![sys, Msg::user_text("hello   there world")]);
        assert_eq!(c.input_tokens(), 3 + 4);
    }

    #[test]
    fn echo_reply_and_truncation() {
        let mut c = conv(vec![Msg::user_text("hello  there world")]);
        assert_eq!(
            c.plan("p1"),
            Plan::Text {
                text: "p1 says: hello there world".into(),
                finish: Finish::Stop
            }
        );
        c.max_tokens = Some(3);
        assert_eq!(
            c.plan("p1"),
            Plan::Text {
                text: "p1 says: hello".into(),
                finish: Finish::Length
            }
        );
        c.max_tokens = None;
        c.stop = vec!["world".into(), "there".into()];
        let want = Plan::Text {
            text: "p1 says: hello".into(),
            finish: Finish::StopSequence("there".into()),
        };
        assert_eq!(c.plan("p1"), want);
    }

    #[test]
    fn tool_call_args_follow_schema_order() {
        let raw = RawValue::from_string(
            r#"{"type":"object","properties":{"z":{"type":"string"},"a":{"type":["integer","null"]},"n":{"type":"number"},"b":{"type":"boolean"},"l":{"type":"array"},"o":{"type":"object"}}}"#.into(),
        )
        .unwrap();
        let tools = vec![Tool {
            name: "get".into(),
            schema: schema_props(&raw),
        }];
        let c = Conversation {
            messages: vec![Msg::user_text("Paris weather")],
            tools,
            ..Conversation::default()
        };
        let plan = c.plan("p");
        let args = r#"{"z":"Paris","a":42,"n":4.2,"b":true,"l":[],"o":{}}"#;
        assert_eq!(
            plan,
            Plan::ToolCall {
                name: "get".into(),
                args: args.into()
            }
        );
        assert_eq!(plan.output_tokens(), 2);
    }

    fn schema(text: &str) -> Schema {
        schema_props(&RawValue::from_string(text.into()).unwrap())
    }

    #[test]
    fn arguments_conform_to_nested_schemas_refs_enums_and_bounds() {
        let pydantic = r##"{"$defs":{"Address":{"properties":{"city":{"type":"string"},"zip":{"type":"integer","minimum":100}},"required":["city","zip"],"type":"object"},
            "Kind":{"enum":["home","work"],"type":"string"}},
            "properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/Address"},"kind":{"$ref":"#/$defs/Kind"},
            "nick":{"anyOf":[{"type":"null"},{"type":"string"}]},"tags":{"type":"array","items":{"type":"string"},"minItems":2},
            "score":{"type":"number","maximum":1},"fixed":{"const":"x"}},"type":"object"}"##;
        assert_eq!(
            build_args(&schema(pydantic), "Ada"),
            r#"{"name":"Ada","address":{"city":"Ada","zip":101},"kind":"home","nick":"Ada","tags":["Ada","Ada"],"score":0.0,"fixed":"x"}"#
        );
        // Gemini's upper-case OpenAPI types, and schemas that are no object's.
        let gemini =
            r#"{"type":"OBJECT","properties":{"n":{"type":"INTEGER"},"ok":{"type":"BOOLEAN"}}}"#;
        assert_eq!(build_args(&schema(gemini), "w"), r#"{"n":42,"ok":true}"#);
        assert_eq!(build_args(&schema(r#"{"type":"string"}"#), "w"), "{}");
        assert_eq!(build_args(&Schema::empty(), "w"), "{}");
        // A reference cycle ends in null instead of recursing forever.
        let cyclic = r##"{"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}},"$ref":"#/$defs/N"}"##;
        assert!(build_args(&schema(cyclic), "w").contains("null"));
    }

    #[test]
    fn a_json_answer_format_answers_with_conforming_json_text() {
        let mut c = conv(vec![Msg::user_text("Ada is 36")]);
        c.answer = Some(schema(
            r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}}}"#,
        ));
        c.max_tokens = Some(1);
        assert_eq!(
            c.plan("p"),
            Plan::Text {
                text: r#"{"name":"Ada","age":42}"#.into(),
                finish: Finish::Stop
            }
        );
        // Tools still come first when the choice calls one.
        c.tools = vec![Tool {
            name: "t".into(),
            schema: Schema::empty(),
        }];
        assert!(matches!(c.plan("p"), Plan::ToolCall { .. }));
    }

    #[test]
    fn raw_at_keeps_member_order() {
        let body = br#"{"a":{"b":{"z":1,"a":2}}}"#;
        assert_eq!(raw_at(body, &["a", "b"]).unwrap().get(), r#"{"z":1,"a":2}"#);
        assert!(raw_at(body, &["a", "x"]).is_none());
    }

    #[test]
    fn tool_result_reply_and_none_choice() {
        let result = Msg {
            is_user: true,
            tool_results: vec!["sunny and warm".into()],
            ..Msg::default()
        };
        let tools = vec![Tool {
            name: "get".into(),
            schema: Schema::empty(),
        }];
        let c = Conversation {
            messages: vec![result],
            tools: tools.clone(),
            ..Conversation::default()
        };
        assert_eq!(
            c.plan("p"),
            Plan::Text {
                text: "p got: sunny and warm".into(),
                finish: Finish::Stop
            }
        );
        let c = Conversation {
            messages: vec![Msg::user_text("hi")],
            tools,
            tool_choice: ToolChoice::None,
            ..Conversation::default()
        };
        assert!(matches!(c.plan("p"), Plan::Text { .. }));
    }

    fn prefilled(prefill: &str) -> Conversation {
        let assistant = Msg {
            texts: vec![prefill.into()],
            ..Msg::default()
        };
        conv(vec![Msg::user_text("w1 w2 w3"), assistant])
    }

    fn text(plan: &Plan) -> &str {
        match plan {
            Plan::Text { text, .. } => text,
            Plan::ToolCall { .. } => "",
        }
    }

    #[test]
    fn prefill_is_continued_from_the_whitespace_after_it() {
        let c = prefilled("a says:  w1");
        assert_eq!(c.trailing_text().as_deref(), Some("a says:  w1"));
        let plan = c.plan_continuing("a", "a says:  w1");
        assert_eq!(text(&plan), " w2 w3");
        assert_eq!(plan.output_tokens(), 2);
        assert_eq!(Plan::text_pieces(text(&plan)), vec![" w2 ", "w3"]);
        // The prefill and the continuation make the unbroken reply.
        assert_eq!(format!("a says: w1{}", text(&plan)), text(&c.plan("a")));
        // Mid-word, the continuation starts inside the word.
        assert_eq!(text(&c.plan_continuing("a", "a says: w")), "1 w2 w3");
        // The whole reply as prefill leaves nothing to say.
        let all = c.plan_continuing("a", "a says: w1 w2 w3");
        assert_eq!((text(&all), all.output_tokens()), ("", 0));
        // Not a prefix: the normal reply.
        assert_eq!(text(&c.plan_continuing("a", "b says:")), "a says: w1 w2 w3");
    }

    #[test]
    fn prefill_limits_apply_to_the_continuation_and_never_call_tools() {
        let mut c = prefilled("a says:");
        c.max_tokens = Some(2);
        c.tools = vec![Tool {
            name: "t".into(),
            schema: Schema::empty(),
        }];
        let want = Plan::Text {
            text: " w1 w2".into(),
            finish: Finish::Length,
        };
        assert_eq!(c.plan_continuing("a", "a says:"), want);
        c.max_tokens = None;
        c.stop = vec!["w3".into()];
        let want = Plan::Text {
            text: " w1 w2".into(),
            finish: Finish::StopSequence("w3".into()),
        };
        assert_eq!(c.plan_continuing("a", "a says:"), want);
        // A tool result before the prefill is continued too.
        let result = Msg {
            is_user: true,
            tool_results: vec!["sunny".into()],
            ..Msg::default()
        };
        let c = conv(vec![result, prefilled("a got:").messages[1].clone()]);
        assert_eq!(text(&c.plan_continuing("a", "a got:")), " sunny");
        // A trailing tool call or user turn is no prefill.
        let call = Msg {
            texts: vec!["x".into()],
            tool_args: vec!["{}".into()],
            ..Msg::default()
        };
        assert_eq!(conv(vec![call]).trailing_text(), None);
        assert_eq!(conv(vec![Msg::user_text("x")]).trailing_text(), None);
    }

    #[test]
    fn pieces_fragments_cached_and_embeddings() {
        assert_eq!(Plan::text_pieces("a b c"), vec!["a ", "b ", "c"]);
        assert_eq!(Plan::arg_fragments(r#"{"a":1}"#).concat(), r#"{"a":1}"#);
        assert_eq!(Plan::arg_fragments(r#"{"a":1}"#).len(), 3);
        assert_eq!(
            (cached_tokens(31), cached_tokens(32), cached_tokens(70)),
            (0, 16, 32)
        );
        let e = embedding("hello", 8);
        assert_eq!(e.len(), 8);
        assert!((e.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(e, embedding("hello", 8));
        assert_eq!(embedding("hello", 40).len(), 40);
        assert_eq!(args_text(&Value::from("{ \"a\": 1 }")), r#"{"a":1}"#);
    }
}
