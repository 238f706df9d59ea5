//! The Anthropic Messages wire format, both as a front door (clients using the Anthropic
//! SDK) and as an upstream (the `anthropic` provider).
//!
//! - `request`: client body → [`ChatRequest`](crate::ChatRequest) with validation that names
//!   the offending field; canonical → upstream body.
//! - `response`: non-streamed bodies both ways; the `count_tokens` answer.
//! - `stream`: upstream SSE events → canonical events; canonical events → client SSE.
//! - `error`: client error bodies per [`ErrorKind`](switchyard_types::ErrorKind) (the table
//!   is in that module), upstream error mapping.

mod error;
mod request;
mod response;
mod stream;
mod wire;

#[cfg(test)]
mod tests;

/// The protocol's name in [`Unsupported`](crate::Unsupported) errors.
const PROTOCOL: &str = "anthropic";

pub use error::{decode_error, encode_error};
pub use request::{
    answer_tool, decode_count_tokens_request, decode_request, encode_request,
    native_structured_outputs, ParsedMessagesRequest,
};
pub use response::{decode_response, encode_count_tokens_response, encode_response};
pub use stream::{StreamDecoder, StreamEncoder, END_MARKER};
