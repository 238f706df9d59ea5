//! The OpenAI chat-completions and embeddings wire format (also spoken by Azure OpenAI and
//! OpenAI-compatible servers).
//!
//! - `request`: client body → [`ChatRequest`](crate::ChatRequest) with validation that names
//!   the offending field, the pass-through rewrite, and canonical → upstream body.
//! - `response`: non-streamed bodies both ways, and a usage-only probe.
//! - `stream`: the pass-through chunk probe, upstream chunks → events, events → client SSE.
//! - `error`: client error bodies per [`ErrorKind`](switchyard_types::ErrorKind), upstream
//!   error mapping.
//! - `embeddings`: the embeddings endpoint.

mod embeddings;
mod error;
mod request;
mod response;
mod stream;
mod wire;

#[cfg(test)]
mod tests;

pub use embeddings::{
    decode_embeddings_request, decode_embeddings_response, embeddings_usage,
    encode_embeddings_response, ParsedEmbeddingsRequest,
};
pub use error::{decode_error, encode_error, UpstreamError, UpstreamStreamError};
pub use request::{
    decode_request, encode_continuation, encode_request, ParsedChatRequest, GATEWAY_EXTENSION,
};
pub use response::{decode_response, encode_response, usage_from_response};
pub use stream::{inspect_chunk, ChunkInfo, StreamDecoder, StreamEncoder, END_MARKER};
