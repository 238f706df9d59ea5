//! The deterministic rules every simulated protocol follows (documented in the crate README).
//!
//! Protocol modules translate their request into a [`Conversation`]; [`plan`] decides the reply,
//! and the token counters give the usage numbers.

use serde::de::{MapAccess, Visitor};
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

/// A tool the caller offers, with its schema's properties in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// The tool (function) name.
    pub name: String,
    /// `(property name, JSON schema type)` in order; the type is lower-cased, "" when absent.
    pub props: Vec<(String, String)>,
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
                let first_word = self
                    .last_user_text()
                    .split_whitespace()
                    .next()
                    .unwrap_or("sim")
                    .to_owned();
                return Plan::ToolCall {
                    name: tool.name.clone(),
                    args: build_args(&tool.props, &first_word),
                };
            }
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

/// Builds tool arguments from schema properties as compact JSON text, in order.
pub fn build_args(props: &[(String, String)], first_word: &str) -> String {
    let members: Vec<String> = props
        .iter()
        .map(|(name, ty)| {
            let value = match ty.as_str() {
                "string" => Value::from(first_word),
                "integer" => Value::from(42),
                "number" => Value::from(4.2),
                "boolean" => Value::Bool(true),
                "array" => Value::Array(Vec::new()),
                "object" => Value::Object(serde_json::Map::new()),
                _ => Value::Null,
            };
            format!("{}:{}", Value::from(name.as_str()), value)
        })
        .collect();
    format!("{{{}}}", members.join(","))
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

/// Reads a JSON schema's `properties` in declaration order, with each property's type.
pub fn schema_props(schema: &RawValue) -> Vec<(String, String)> {
    #[derive(Deserialize)]
    struct Schema {
        #[serde(default)]
        properties: Option<Props>,
    }
    serde_json::from_str::<Schema>(schema.get())
        .ok()
        .and_then(|s| s.properties)
        .map(|p| p.0)
        .unwrap_or_default()
}

/// Properties of a schema, order kept.
struct Props(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Props {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Props;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a properties object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Props, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let prop: Value = map.next_value()?;
                    out.push((key, prop_type(&prop)));
                }
                Ok(Props(out))
            }
            fn visit_unit<E>(self) -> Result<Props, E> {
                Ok(Props(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The JSON type of one property schema (first non-null when `type` is a list), lower-cased.
fn prop_type(prop: &Value) -> String {
    let ty = match prop.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|s| !s.eq_ignore_ascii_case("null"))
            .unwrap_or("")
            .to_owned(),
        _ => String::new(),
    };
    ty.to_ascii_lowercase()
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
            props: schema_props(&raw),
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

    #[test]
    fn tool_result_reply_and_none_choice() {
        let result = Msg {
            is_user: true,
            tool_results: vec!["sunny and warm".into()],
            ..Msg::default()
        };
        let tools = vec![Tool {
            name: "get".into(),
            props: vec![],
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
            props: vec![],
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
