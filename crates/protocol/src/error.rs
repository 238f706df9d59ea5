//! The one error a codec returns when bytes cannot be turned into canonical types.

use std::fmt;

/// A client request (or upstream body) that could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What is wrong, in words a client can act on (names the field).
    pub message: String,
    /// The offending field as a JSON path such as `messages[2].content[0].type`, if known.
    pub param: Option<String>,
}

impl DecodeError {
    /// An error that is not about one field (invalid JSON, invalid UTF-8, ...).
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
            param: None,
        }
    }

    /// An error about the field at `param`.
    pub fn at(param: impl fmt::Display, message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}
