//! Simulated upstream LLM providers, faithful to each wire protocol, with fault injection and counters.
//!
//! Each [`RunningSim`] serves one protocol on its own port. Its output is deterministic (see the
//! crate README for the rules), and its faults and counters are reachable in-process through
//! [`SimControls`] or over HTTP under `/_sim/`.
#![expect(
    clippy::result_large_err,
    reason = "handlers return ready-made error responses; boxing them buys nothing in a simulator"
)]

pub mod cli;
mod controls;
pub mod parse;
mod plumbing;
mod protocols;
pub mod rules;
mod server;
pub mod sigv4;

use std::fmt;
use std::net::SocketAddr;

pub use controls::{Faults, LastRequest, SimControls, SimStats};
pub use server::RunningSim;

/// The wire protocol a simulated provider speaks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum SimProtocol {
    /// OpenAI Chat Completions, embeddings and models.
    #[serde(rename = "openai")]
    #[value(name = "openai")]
    OpenAi,
    /// Azure OpenAI (deployment routes and the `/openai/v1` surface).
    #[serde(rename = "azure_openai")]
    #[value(name = "azure_openai")]
    AzureOpenAi,
    /// An OpenAI-compatible server such as vLLM (no obfuscation, no service tier).
    #[serde(rename = "openai_compatible")]
    #[value(name = "openai_compatible")]
    OpenAiCompatible,
    /// Anthropic Messages.
    Anthropic,
    /// AWS Bedrock Runtime Converse and ConverseStream.
    Bedrock,
    /// Google Gemini API (generativelanguage).
    Gemini,
    /// Google Vertex AI generateContent.
    Vertex,
}

impl SimProtocol {
    /// The protocol's config and CLI name, e.g. `azure_openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::AzureOpenAi => "azure_openai",
            Self::OpenAiCompatible => "openai_compatible",
            Self::Anthropic => "anthropic",
            Self::Bedrock => "bedrock",
            Self::Gemini => "gemini",
            Self::Vertex => "vertex",
        }
    }
}

impl fmt::Display for SimProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SimProtocol {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as clap::ValueEnum>::from_str(s, false)
            .map_err(|_| SimError::UnknownProtocol(s.to_owned()))
    }
}

/// What to simulate: one provider's name, protocol, listen address and optional API key.
#[derive(Clone, Debug)]
pub struct SimSpec {
    /// The provider's name; it appears in every reply text (`"{name} says: …"`) unless the
    /// `speaker` fault replaces it.
    pub name: String,
    /// The wire protocol served.
    pub protocol: SimProtocol,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// When set, requests must carry this key the protocol's way.
    pub api_key: Option<String>,
}

/// The secret access key Bedrock simulators check SigV4 signatures with, unless
/// [`SimOptions::aws_secret_access_key`] (CLI `--aws-secret`) says otherwise. The access key id
/// is the simulator's API key when it has one, else any.
pub const SIM_AWS_SECRET_ACCESS_KEY: &str = "sim-secret";

/// Simulator settings beyond [`SimSpec`], with test-friendly defaults.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The secret access key SigV4 signatures are verified with (Bedrock).
    pub aws_secret_access_key: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            aws_secret_access_key: SIM_AWS_SECRET_ACCESS_KEY.to_owned(),
        }
    }
}

/// Errors from starting or running simulated providers.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding or serving the listener failed.
    #[error("listener error on {addr}: {source}")]
    Io {
        /// The address involved.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `--provider` argument was not `NAME=PROTOCOL@HOST:PORT`.
    #[error("bad provider spec {0:?}: expected NAME=PROTOCOL@HOST:PORT")]
    BadSpec(String),
    /// An unknown protocol name.
    #[error("unknown protocol {0:?}")]
    UnknownProtocol(String),
    /// Writing the start-up lines failed.
    #[error("could not write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
}
