//! Google's `generateContent` wire format, spoken by both the Gemini API (`gemini`) and
//! Vertex AI (`vertex`); the two differ only in URL and auth, which `providers` owns.
//!
//! - `request`: canonical → upstream body.
//! - `response`: upstream body → canonical.
//! - `stream`: `?alt=sse` chunks → canonical events.
//! - `error`: `google.rpc.Status` errors → kinds, with `RetryInfo` delays.
//! - `embeddings`: Gemini `batchEmbedContents`, Vertex `predict`.

mod embeddings;
mod error;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

/// The protocol's name in [`Unsupported`](crate::Unsupported) errors.
const PROTOCOL: &str = "gemini";

pub use embeddings::{
    decode_embeddings_response, decode_vertex_embeddings_response, encode_embeddings_request,
    encode_vertex_embeddings_request,
};
pub use error::decode_error;
pub use request::encode_request;
pub use response::decode_response;
pub use stream::StreamDecoder;
