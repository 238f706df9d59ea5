//! Imports other gateways' configs into Switchyard's TOML config.
//!
//! Each converter is a pure function from the foreign config's text to Switchyard TOML plus
//! [`Finding`]s: everything that could not be mapped, was approximated, or was assumed, each
//! with the foreign key path it came from. The output is meant for `switchyard check`; the CLI
//! ([`cli`]) only reads and writes files.

use serde::Serialize;
use std::fmt;

pub mod cli;
pub mod litellm;
mod regions;
mod toml_out;

/// What a converter produced: the config text, what it could not carry over, and the
/// environment variables the config reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The Switchyard config (TOML).
    pub toml: String,
    /// Everything not mapped exactly, in input order.
    pub findings: Vec<Finding>,
    /// Environment variables the config names (`*_env` fields), sorted, each once.
    pub env_vars: Vec<String>,
}

/// One thing the converter could not carry over as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How it was handled.
    pub kind: FindingKind,
    /// The key path in the input, e.g. `model_list[2].litellm_params.temperature`.
    pub path: String,
    /// What happened and why, and what to do about it.
    pub message: String,
}

/// How a [`Finding`]'s input was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Dropped: Switchyard has no equivalent, or the value was unusable.
    Unmapped,
    /// Mapped to the nearest Switchyard setting, whose meaning differs.
    Approximated,
    /// Not in the input; the converter filled in a value that should be checked.
    Assumed,
}

impl FindingKind {
    /// The label used in text reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unmapped => "unmapped",
            Self::Approximated => "approximated",
            Self::Assumed => "assumed",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.kind.as_str(), self.path, self.message)
    }
}

/// Why an input could not be converted at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not valid YAML.
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// The input parsed but is not a LiteLLM config.
    #[error("not a LiteLLM proxy config: {0}")]
    Shape(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Findings could not be written as JSON.
    #[error("cannot write findings as JSON: {0}")]
    Json(#[from] serde_json::Error),
}
