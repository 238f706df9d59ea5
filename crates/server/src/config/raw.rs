//! The config file's raw shape, as TOML deserialises it (`deny_unknown_fields`), before
//! [`super::compile`] checks and compiles it.

use serde::Deserialize;
use std::collections::BTreeMap;
use switchyard_types::{Cloud, Jurisdiction, PricePerMillion, ProviderKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) keys: Vec<RawKey>,
    #[serde(default)]
    pub(super) providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub(super) deployments: BTreeMap<String, RawDeployment>,
    #[serde(default)]
    pub(super) models: BTreeMap<String, RawModel>,
    #[serde(default)]
    pub(super) constraints: super::routing::RawConstraints,
    #[serde(default)]
    pub(super) data_classes: BTreeMap<String, super::routing::RawConstraints>,
    #[serde(default)]
    pub(super) retry: super::routing::RawRetry,
    #[serde(default)]
    pub(super) breaker: super::routing::RawBreaker,
    #[serde(default)]
    pub(super) governance: super::runtime::RawGovernance,
    #[serde(default)]
    pub(super) ledger: super::runtime::RawLedger,
    #[serde(default)]
    pub(super) admin: super::runtime::RawAdmin,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) max_attempts: Option<usize>,
    pub(super) reload_poll_ms: Option<u64>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) header_read_timeout_ms: Option<u64>,
    pub(super) body_read_timeout_ms: Option<u64>,
    pub(super) idle_timeout_ms: Option<u64>,
    pub(super) drain_timeout_ms: Option<u64>,
    #[serde(default)]
    pub(super) timeouts: RawTimeouts,
}

/// `[server.timeouts]`, and the same keys as `timeouts` on a model or a deployment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub(super) connect_ms: Option<u64>,
    pub(super) first_byte_ms: Option<u64>,
    pub(super) stall_ms: Option<u64>,
    pub(super) total_ms: Option<u64>,
    pub(super) attempt_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) name: String,
    pub(super) secret: Option<String>,
    pub(super) secret_env: Option<String>,
    #[serde(default = "all_models")]
    pub(super) models: Vec<String>,
    pub(super) data_class: Option<String>,
}

pub(super) fn all_models() -> Vec<String> {
    vec!["*".to_string()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) kind: ProviderKind,
    pub(super) base_url: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) api_key_env: Option<String>,
    pub(super) api_version: Option<String>,
    pub(super) anthropic_version: Option<String>,
    pub(super) aws_access_key_id: Option<String>,
    pub(super) aws_access_key_id_env: Option<String>,
    pub(super) aws_secret_access_key: Option<String>,
    pub(super) aws_secret_access_key_env: Option<String>,
    pub(super) aws_session_token_env: Option<String>,
    pub(super) gcp_project: Option<String>,
    pub(super) gcp_location: Option<String>,
    pub(super) credentials_file: Option<std::path::PathBuf>,
    pub(super) cloud: Cloud,
    pub(super) region: String,
    pub(super) jurisdiction: Jurisdiction,
    #[serde(default)]
    pub(super) http2_prior_knowledge: bool,
    pub(super) retry_statuses: Option<Vec<u16>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployment {
    pub(super) provider: String,
    pub(super) upstream_model: String,
    pub(super) price: Option<RawPrice>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    pub(super) commitment: Option<super::routing::RawCommitment>,
    pub(super) accepts_prefill: Option<bool>,
    pub(super) max_output_tokens: Option<u64>,
    pub(super) timeouts: Option<RawTimeouts>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrice {
    pub(super) input: PricePerMillion,
    pub(super) output: PricePerMillion,
    pub(super) cached_input: Option<PricePerMillion>,
    pub(super) cache_write: Option<PricePerMillion>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) rpm: Option<u32>,
    pub(super) tpm: Option<u64>,
    pub(super) concurrency: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub(super) deployments: Vec<String>,
    #[serde(default)]
    pub(super) strategy: super::routing::RawStrategy,
    #[serde(default)]
    pub(super) weights: BTreeMap<String, u32>,
    #[serde(default)]
    pub(super) fallbacks: Vec<String>,
    #[serde(default)]
    pub(super) constraints: super::routing::RawConstraints,
    pub(super) hedging: Option<super::routing::RawHedging>,
    #[serde(default)]
    pub(super) context_fallbacks: Vec<String>,
    pub(super) retry: Option<super::routing::RawRetryRules>,
    pub(super) timeouts: Option<RawTimeouts>,
    #[serde(default)]
    pub(super) stream_recovery: RawStreamRecovery,
    #[serde(default)]
    pub(super) malformed_stream_events: RawMalformed,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawStreamRecovery {
    #[default]
    Continue,
    Error,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawMalformed {
    #[default]
    Skip,
    Fail,
}
