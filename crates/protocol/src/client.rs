//! Front doors: the protocols clients speak to the gateway, and everything written to them
//! (complete answers, streams, errors) dispatched in one place.
//!
//! A new front door is a [`ClientProtocol`] variant plus its codec; the compiler then points
//! at every match below that needs an arm.

use crate::codec::{anthropic_messages, openai_chat};
use crate::{ChatResponse, StreamEvent};
use switchyard_types::ErrorKind;

/// A client protocol (front door).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientProtocol {
    /// OpenAI chat completions (and embeddings, which only this front door serves).
    OpenAiChat,
    /// Anthropic messages.
    AnthropicMessages,
}

impl ClientProtocol {
    /// Every front door, for tests and tables.
    pub const ALL: [ClientProtocol; 2] = [
        ClientProtocol::OpenAiChat,
        ClientProtocol::AnthropicMessages,
    ];

    /// A stable label for logs and metrics (changing it breaks dashboards).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientProtocol::OpenAiChat => "openai",
            ClientProtocol::AnthropicMessages => "anthropic",
        }
    }

    /// The bytes a complete stream in this protocol ends with (OpenAI's `data: [DONE]`,
    /// Anthropic's `message_stop` event).
    pub fn end_marker(self) -> &'static [u8] {
        match self {
            ClientProtocol::OpenAiChat => openai_chat::END_MARKER,
            ClientProtocol::AnthropicMessages => anthropic_messages::END_MARKER,
        }
    }

    /// A complete canonical answer as this protocol's response body.
    pub fn encode_response(self, response: &ChatResponse) -> Vec<u8> {
        match self {
            ClientProtocol::OpenAiChat => openai_chat::encode_response(response),
            ClientProtocol::AnthropicMessages => anthropic_messages::encode_response(response),
        }
    }

    /// The HTTP status and JSON error body for `kind`. `param` and `code` are OpenAI's
    /// error fields; protocols without them ignore them.
    pub fn encode_error(
        self,
        kind: ErrorKind,
        message: &str,
        param: Option<&str>,
        code: Option<&str>,
    ) -> (u16, Vec<u8>) {
        match self {
            ClientProtocol::OpenAiChat => (
                kind.status(),
                openai_chat::encode_error(kind, message, param, code),
            ),
            ClientProtocol::AnthropicMessages => anthropic_messages::encode_error(kind, message),
        }
    }

    /// A stream encoder. `include_usage` matters to OpenAI clients only; `fallback` names the
    /// answer when the upstream does not (Bedrock sends no id or model, several no time).
    pub fn stream_encoder(self, include_usage: bool, fallback: StreamIdentity) -> ClientEncoder {
        ClientEncoder {
            protocol: self,
            include_usage,
            fallback,
            inner: None,
        }
    }
}

/// What names a streamed answer: its id, model and creation time (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamIdentity {
    /// The response id.
    pub id: String,
    /// The model that answers.
    pub model: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
}

/// Writes one client protocol's stream from canonical events.
pub struct ClientEncoder {
    protocol: ClientProtocol,
    include_usage: bool,
    fallback: StreamIdentity,
    inner: Option<Encoder>,
}

enum Encoder {
    OpenAiChat(openai_chat::StreamEncoder),
    AnthropicMessages(anthropic_messages::StreamEncoder),
}

impl ClientEncoder {
    /// An OpenAI chat encoder continuing a passed-through stream named `identity`.
    pub(crate) fn openai_resumed(include_usage: bool, identity: StreamIdentity) -> ClientEncoder {
        let inner = openai_chat::StreamEncoder::resumed(
            identity.id.clone(),
            identity.model.clone(),
            identity.created,
            include_usage,
        );
        ClientEncoder {
            protocol: ClientProtocol::OpenAiChat,
            include_usage,
            fallback: identity,
            inner: Some(Encoder::OpenAiChat(inner)),
        }
    }

    /// The encoder, created at the upstream's start event (it needs the id and model).
    fn get(&mut self, start: Option<(&str, &str, u64)>) -> &mut Encoder {
        let (protocol, include_usage, fallback) =
            (self.protocol, self.include_usage, &self.fallback);
        self.inner.get_or_insert_with(|| {
            let (id, model, created) = match start {
                Some((id, model, created)) if !id.is_empty() => (id, model, created),
                _ => (fallback.id.as_str(), fallback.model.as_str(), 0),
            };
            let model = if model.is_empty() {
                fallback.model.as_str()
            } else {
                model
            };
            let created = if created == 0 {
                fallback.created
            } else {
                created
            };
            match protocol {
                ClientProtocol::OpenAiChat => Encoder::OpenAiChat(openai_chat::StreamEncoder::new(
                    id.to_string(),
                    model.to_string(),
                    created,
                    include_usage,
                )),
                ClientProtocol::AnthropicMessages => Encoder::AnthropicMessages(
                    anthropic_messages::StreamEncoder::new(id, model.to_string()),
                ),
            }
        })
    }

    /// Writes one canonical event.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        let start = match ev {
            StreamEvent::Start { id, model, created } => {
                Some((id.as_str(), model.as_str(), *created))
            }
            _ => None,
        };
        match self.get(start) {
            Encoder::OpenAiChat(e) => e.encode(ev, out),
            Encoder::AnthropicMessages(e) => e.encode(ev, out),
        }
    }

    /// The bytes the stream ends with once [`finish`](ClientEncoder::finish) wrote its end.
    pub fn end_marker(&self) -> &'static [u8] {
        self.protocol.end_marker()
    }

    /// Writes the protocol's clean end of stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.get(None) {
            Encoder::OpenAiChat(e) => e.finish(out),
            Encoder::AnthropicMessages(e) => e.finish(out),
        }
    }

    /// Writes the protocol's mid-stream error event; nothing may follow it.
    pub fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        match self.get(None) {
            Encoder::OpenAiChat(e) => e.error(kind, message, out),
            Encoder::AnthropicMessages(e) => e.error(kind, message, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_metric_labels() {
        let labels: Vec<_> = ClientProtocol::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(labels, ["openai", "anthropic"]);
    }

    #[test]
    fn error_status_follows_the_protocol() {
        for p in ClientProtocol::ALL {
            let (status, body) = p.encode_error(ErrorKind::RateLimited, "slow down", None, None);
            assert_eq!(status, 429);
            assert!(String::from_utf8(body).unwrap().contains("slow down"));
        }
        // Anthropic's own overload status, where OpenAI clients get the kind's status.
        let (anthropic, _) =
            ClientProtocol::AnthropicMessages.encode_error(ErrorKind::Overloaded, "m", None, None);
        assert_eq!(anthropic, 529);
        let (openai, _) =
            ClientProtocol::OpenAiChat.encode_error(ErrorKind::Overloaded, "m", None, None);
        assert_eq!(openai, ErrorKind::Overloaded.status());
    }

    #[test]
    fn a_stream_without_start_uses_the_fallback_identity() {
        let fallback = StreamIdentity {
            id: "chatcmpl-x".into(),
            model: "m".into(),
            created: 7,
        };
        let mut enc = ClientProtocol::OpenAiChat.stream_encoder(false, fallback);
        let mut out = Vec::new();
        enc.encode(&StreamEvent::TextDelta("hi".into()), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"id\":\"chatcmpl-x\""), "{text}");
        assert!(text.contains("\"created\":7"), "{text}");
    }
}
