//! AWS Bedrock Runtime as an upstream: Converse and ConverseStream for chat, InvokeModel for
//! Titan and Cohere embeddings.
//!
//! - `request`: canonical → Converse body (the model id goes in the URL).
//! - `response`: Converse body → canonical; HTTP errors (`x-amzn-ErrorType`) → kinds.
//! - `eventstream`: binary event-stream frames → messages with their headers.
//! - `stream`: ConverseStream messages → canonical events.
//! - `embeddings`: InvokeModel bodies for Titan and Cohere embeddings.

mod embeddings;
mod eventstream;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

/// The protocol's name in [`Unsupported`](crate::Unsupported) errors.
const PROTOCOL: &str = "bedrock";

pub use embeddings::{
    decode_embeddings_response, embeddings_family, encode_embeddings_request, EmbeddingsFamily,
};
pub use eventstream::{EventMessage, EventStreamDecoder};
pub use request::encode_request;
pub use response::{decode_error, decode_response};
pub use stream::StreamDecoder;
