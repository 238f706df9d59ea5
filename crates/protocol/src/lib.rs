//! Canonical request, response and stream-event types, and one pure codec per wire format.
//! No I/O and no async here: everything is a function over bytes and types, so it can be
//! unit-, property- and fuzz-tested.
//!
//! Dispatch over protocols lives here too, so the server never matches on a kind:
//! [`upstream::upstream_codec`] per provider kind, [`client::ClientProtocol`] per front door,
//! and [`translate`] for streams between the two.

pub mod canonical;
pub mod client;
pub mod codec;
pub mod error;
pub mod fuzzing;
mod json;
pub mod sse;
pub mod translate;
pub mod upstream;

pub use canonical::*;
pub use error::{DecodeError, Unsupported, UpstreamError, UpstreamStreamError};
