//! The bodies of the cargo-fuzz targets in `crates/protocol/fuzz`, kept here so stable CI runs
//! the same code over generated inputs (see the tests below). Each must never panic.

use crate::codec::openai_chat;
use crate::sse::SseDecoder;

/// Feeds `data` to the SSE decoder in chunks whose sizes come from the data itself, and checks
/// that the events match feeding it whole.
pub fn sse_decoder(data: &[u8]) {
    let whole = collect(data, &[data.len()]);
    // Chunk sizes 1..=7 chosen by the first byte, so splits land inside CRLF and UTF-8.
    let step = usize::from(data.first().copied().unwrap_or(0) % 7) + 1;
    let sizes: Vec<usize> = std::iter::repeat_n(step, data.len() / step + 1).collect();
    let split = collect(data, &sizes);
    assert_eq!(whole, split, "chunking changed the events");
}

/// Events (or error markers) from feeding `data` in chunks of the given sizes.
fn collect(data: &[u8], sizes: &[usize]) -> Vec<Result<crate::sse::SseEvent, String>> {
    let mut dec = SseDecoder::new();
    let mut out = Vec::new();
    let mut rest = data;
    for &size in sizes {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        dec.push(chunk);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) => out.push(Ok(ev)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.message)),
            }
        }
    }
    out.extend(dec.finish().map(Ok));
    out
}

/// Decodes `data` as a client chat request; a success must also pass through and re-encode.
pub fn openai_decode_request(data: &[u8]) {
    if let Ok(parsed) = openai_chat::decode_request(data) {
        let body = parsed.passthrough_body("upstream", true);
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "passthrough produced invalid JSON"
        );
        let encoded = openai_chat::encode_request(&parsed.request, "upstream");
        assert!(
            openai_chat::decode_request(&encoded).is_ok(),
            "a decoded request did not survive encode → decode"
        );
    }
}

/// Probes `data` as a stream chunk, and decodes it with a stream decoder.
pub fn openai_inspect_chunk(data: &[u8]) {
    let _ = openai_chat::inspect_chunk(data);
    let _ = openai_chat::StreamDecoder::new().decode(data);
}

/// Decodes `data` as an upstream non-streamed response, error and embeddings body.
pub fn openai_decode_response(data: &[u8]) {
    if let Ok(resp) = openai_chat::decode_response(data) {
        let _ = openai_chat::encode_response(&resp);
    }
    let _ = openai_chat::usage_from_response(data);
    let _ = openai_chat::decode_error(500, data);
    let _ = openai_chat::decode_embeddings_response(data);
}
