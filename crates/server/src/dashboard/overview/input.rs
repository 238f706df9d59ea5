//! What the overview reads besides the ledger: a plain view of the catalog and of each
//! deployment's health, filled in by the handler.

use serde::Serialize;

/// The catalog as the overview needs it.
#[derive(Debug, Clone, Default)]
pub struct CatalogView {
    /// Models in config order.
    pub models: Vec<CatalogModel>,
}

/// One model of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogModel {
    /// The client-facing name.
    pub name: String,
    /// Its deployments.
    pub deployments: Vec<CatalogDeployment>,
    /// Its fallback models, in order.
    pub fallbacks: Vec<String>,
}

/// One deployment of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogDeployment {
    /// The deployment id.
    pub id: String,
    /// Its provider.
    pub provider: String,
    /// The provider's cloud.
    pub cloud: String,
    /// The provider's region.
    pub region: String,
}

/// A deployment's health right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthView {
    /// The breaker's state.
    pub breaker: BreakerState,
    /// Why it opened, when it is not closed.
    pub reason: Option<String>,
    /// Resting after a 429 or Retry-After.
    pub cooling_down: bool,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Times the breaker opened since the gateway started.
    pub trips: u64,
    /// Probes that failed in a row since the breaker last closed.
    pub failed_probes: u32,
    /// Milliseconds until an open breaker lets its next probe through.
    pub next_probe_ms: Option<u64>,
}

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    #[default]
    Closed,
    /// No traffic until the open period ends.
    Open,
    /// One probe may go through.
    HalfOpen,
}
