//! Canonical request, response and stream-event types, and one pure codec per wire format.
//! No I/O and no async here: everything is a function over bytes and types, so it can be
//! unit-, property- and fuzz-tested.

pub mod canonical;
pub mod codec;
pub mod error;
pub mod fuzzing;
mod json;
pub mod sse;

pub use canonical::*;
pub use error::{DecodeError, Unsupported, UpstreamError, UpstreamStreamError};
