//! AWS event-stream framing (`application/vnd.amazon.eventstream`): push bytes, pull
//! messages. Frames are parsed and CRC-checked by `aws-smithy-eventstream`; this type only
//! buffers, bounds the frame size, and reads the headers Bedrock uses.

use crate::DecodeError;
use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::Bytes;

/// The largest frame accepted. AWS caps event-stream messages at 16 MiB of payload plus
/// 128 KiB of headers; a longer length prefix is corruption, not a big event.
const MAX_FRAME: usize = 16 * 1024 * 1024 + 128 * 1024 + 16;
/// Prelude (12 bytes) plus the message CRC (4 bytes): the shortest possible frame.
const MIN_FRAME: usize = 16;

/// One decoded frame with the headers Bedrock sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// `:message-type`: `event`, `exception` or `error`.
    pub message_type: String,
    /// `:event-type` of an event (`messageStart`, `contentBlockDelta`, ...).
    pub event_type: Option<String>,
    /// `:exception-type` of an exception (`throttlingException`, ...).
    pub exception_type: Option<String>,
    /// `:error-code` of an `error` message.
    pub error_code: Option<String>,
    /// `:error-message` of an `error` message.
    pub error_message: Option<String>,
    /// The payload (JSON for Bedrock).
    pub payload: Bytes,
}

/// An incremental event-stream decoder: [`EventStreamDecoder::push`] bytes as they arrive,
/// then call [`EventStreamDecoder::next_message`] until it returns `Ok(None)`.
///
/// A corrupt frame (bad CRC, impossible length) cannot be resynchronised, so once one is
/// seen every later call returns the same error.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: Vec<u8>,
    pos: usize,
    failed: Option<DecodeError>,
}

impl EventStreamDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes; they may split frames anywhere.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            // Only the unfinished frame is kept, so the copy is bounded by one frame.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<EventMessage>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let rest = &self.buf[self.pos..];
        let Some(prefix) = rest.first_chunk::<4>() else {
            return Ok(None);
        };
        let total = u32::from_be_bytes(*prefix) as usize;
        if !(MIN_FRAME..=MAX_FRAME).contains(&total) {
            return Err(self.fail(format!(
                "invalid event-stream frame: length {total} is out of range"
            )));
        }
        if rest.len() < total {
            return Ok(None);
        }
        let frame = &rest[..total];
        let message = match read_message_from(frame) {
            Ok(m) => m,
            Err(e) => return Err(self.fail(format!("invalid event-stream frame: {e}"))),
        };
        self.pos += total;
        Ok(Some(event_message(&message)))
    }

    /// Whether bytes of an unfinished frame are buffered (a stream that ends now was cut).
    pub fn has_partial_frame(&self) -> bool {
        self.pos < self.buf.len()
    }

    fn fail(&mut self, message: String) -> DecodeError {
        let e = DecodeError::new(message);
        self.failed = Some(e.clone());
        e
    }
}

fn event_message(m: &Message) -> EventMessage {
    let header = |name: &str| {
        m.headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| match h.value() {
                HeaderValue::String(s) => Some(s.as_str().to_owned()),
                _ => None,
            })
    };
    EventMessage {
        // Absent means an event, as the AWS SDKs treat it.
        message_type: header(":message-type").unwrap_or_else(|| "event".to_owned()),
        event_type: header(":event-type"),
        exception_type: header(":exception-type"),
        error_code: header(":error-code"),
        error_message: header(":error-message"),
        payload: m.payload().clone(),
    }
}
