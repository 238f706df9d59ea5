//! The overview document: what `GET /admin/overview` serializes.

use super::{BreakerState, Filter};
use serde::Serialize;

/// Everything the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The window covered.
    pub window: WindowInfo,
    /// The filters applied.
    pub filters: Filter,
    /// Sums over the window.
    pub totals: Totals,
    /// Requests, errors and cost per bucket, oldest first, covering the whole window.
    pub timeline: Vec<Bucket>,
    /// Traffic and spend per group.
    pub breakdowns: Breakdowns,
    /// Per deployment: traffic, latency, errors, failovers, breaker.
    pub deployments: Vec<DeploymentStats>,
    /// What depends on a single cloud.
    pub concentration: Concentration,
    /// Values for the filter selects (unfiltered: catalog and window).
    pub options: Options,
    /// True when the window held more records than the overview reads; everything then covers
    /// the newest ones only.
    pub truncated: bool,
}

/// The window covered.
#[derive(Debug, Clone, Serialize)]
pub struct WindowInfo {
    /// Length in seconds.
    pub seconds: i64,
    /// Timeline bucket length in seconds.
    pub bucket_seconds: i64,
    /// Inclusive start, Unix milliseconds.
    pub since_ms: i64,
    /// Exclusive end, Unix milliseconds.
    pub until_ms: i64,
    /// Inclusive start, RFC 3339.
    pub since: String,
    /// Exclusive end, RFC 3339.
    pub until: String,
}

/// Sums over the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// Requests answered in full.
    pub ok: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Requests whose client went away first.
    pub client_disconnected: u64,
    /// Requests that needed more than one upstream attempt.
    pub failovers: u64,
    /// Upstream attempts.
    pub attempts: u64,
    /// Streamed requests.
    pub streams: u64,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Cost in USD (for display; `cost_nanos` is exact).
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// Requests served where no price was known (not in the cost).
    pub unpriced_requests: u64,
    /// errors / requests (0 without requests).
    pub error_rate: f64,
    /// Latency of successful requests.
    pub latency_ms: Option<Percentiles>,
    /// Time to first token of successful streams.
    pub ttft_ms: Option<Percentiles>,
    /// Errors by kind, most frequent first.
    pub errors_by_kind: Vec<KindCount>,
}

/// A count of one error kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindCount {
    /// The kind (`upstream_server`, `no_capacity`, ...).
    pub kind: String,
    /// How many requests ended with it.
    pub count: u64,
}

/// Nearest-rank percentiles, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Samples.
    pub samples: u64,
}

/// One timeline bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Bucket start, Unix milliseconds.
    pub start_ms: i64,
    /// Requests that arrived in it.
    pub requests: u64,
    /// Of those, ended in error.
    pub errors: u64,
    /// Of those, failed over.
    pub failovers: u64,
    /// Tokens.
    pub tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
}

/// Traffic and spend per group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdowns {
    /// By the serving provider's cloud.
    pub cloud: Vec<Group>,
    /// By the serving provider.
    pub provider: Vec<Group>,
    /// By the serving provider's region.
    pub region: Vec<Group>,
    /// By logical model.
    pub model: Vec<Group>,
    /// By the key's team.
    pub team: Vec<Group>,
}

/// One group of a breakdown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    /// The group's value, or `(none)`.
    pub name: String,
    /// Requests.
    pub requests: u64,
    /// Requests that ended in error.
    pub errors: u64,
    /// Tokens.
    pub tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// Share of the window's requests (0-1).
    pub request_share: f64,
    /// Share of the window's cost (0-1).
    pub cost_share: f64,
}

/// One deployment's traffic and health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentStats {
    /// The deployment id.
    pub deployment: String,
    /// Its provider.
    pub provider: String,
    /// The provider's cloud.
    pub cloud: String,
    /// The provider's region.
    pub region: String,
    /// Models that list it.
    pub models: Vec<String>,
    /// Requests it served (or last tried).
    pub requests: u64,
    /// Of those, ended in error.
    pub errors: u64,
    /// Upstream attempts on it.
    pub attempts: u64,
    /// Attempts on it that failed.
    pub failed_attempts: u64,
    /// Failed attempts on it after which the request went on to another attempt.
    pub failovers: u64,
    /// Latency of its successful requests.
    pub latency_ms: Option<Percentiles>,
    /// Time to first token of its successful streams.
    pub ttft_ms: Option<Percentiles>,
    /// Cost in USD of the requests it served.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// The breaker's state now.
    pub breaker: BreakerState,
    /// Why the breaker is not closed.
    pub breaker_reason: Option<String>,
    /// Resting after a 429 or Retry-After.
    pub cooling_down: bool,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Times the breaker opened since the gateway started.
    pub trips: u64,
    /// Probes that failed in a row since the breaker last closed (each doubles the wait).
    pub breaker_failed_probes: u32,
    /// Milliseconds until an open breaker lets its next probe through.
    pub breaker_next_probe_ms: Option<u64>,
    /// Whether the current config still lists it.
    pub in_catalog: bool,
}

/// What share of traffic and spend depends on each cloud, and which models have no
/// deployment outside a single cloud.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Concentration {
    /// Per cloud, costliest first.
    pub clouds: Vec<CloudShare>,
    /// Per catalog model.
    pub models: Vec<ModelSpread>,
    /// Models whose own deployments are all on one cloud.
    pub single_cloud_models: Vec<String>,
    /// Share of the window's requests asking for a single-cloud model.
    pub single_cloud_request_share: f64,
    /// Share of the window's cost from single-cloud models.
    pub single_cloud_cost_share: f64,
}

/// One cloud's share.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CloudShare {
    /// The cloud.
    pub cloud: String,
    /// Requests served there.
    pub requests: u64,
    /// Share of requests (0-1).
    pub request_share: f64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// Share of cost (0-1).
    pub cost_share: f64,
    /// Catalog deployments on this cloud.
    pub deployments: u64,
    /// Catalog models with at least one deployment on this cloud.
    pub models: Vec<String>,
}

/// Where one model can run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpread {
    /// The model.
    pub model: String,
    /// Clouds of its own deployments.
    pub clouds: Vec<String>,
    /// Its deployments.
    pub deployments: Vec<String>,
    /// Clouds reachable through its fallback models (transitively), its own excluded.
    pub fallback_clouds: Vec<String>,
    /// Its own deployments are all on one cloud.
    pub single_cloud: bool,
    /// Even with fallbacks, everything is on one cloud.
    pub no_escape: bool,
    /// Requests asking for it in the window.
    pub requests: u64,
    /// Share of requests (0-1).
    pub request_share: f64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Share of cost (0-1).
    pub cost_share: f64,
}

/// Values for the filter selects.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Options {
    /// Clouds.
    pub clouds: Vec<String>,
    /// Providers.
    pub providers: Vec<String>,
    /// Regions.
    pub regions: Vec<String>,
    /// Models.
    pub models: Vec<String>,
    /// Teams.
    pub teams: Vec<String>,
}
