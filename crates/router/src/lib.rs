//! Routing: the compiled catalog of models and deployments, per-deployment health, and the
//! attempt loop that fails over to the next deployment while nothing has reached the client.

use std::collections::HashMap;
use std::sync::Arc;
use switchyard_providers::ProviderSpec;
use switchyard_types::{PricePerMillion, ProviderKind};

mod attempt;
mod health;

pub use attempt::{run, Attempt, AttemptLog, Failed};
pub use health::Health;

/// One concrete place a model is served.
#[derive(Debug)]
pub struct Deployment {
    /// The deployment's name in the config.
    pub id: Arc<str>,
    /// Who serves it.
    pub provider: Arc<ProviderSpec>,
    /// The upstream model id (or Azure deployment name).
    pub upstream_model: String,
    /// Prices per million tokens.
    pub prices: Prices,
    /// Capacity limits (enforced by the routing issue's strategies).
    pub limits: Limits,
    /// Free-form tags such as `zdr` or `hipaa`.
    pub tags: Vec<String>,
}

impl Deployment {
    /// The provider kind, for dispatch.
    pub fn kind(&self) -> ProviderKind {
        self.provider.kind
    }
}

/// Prices of a deployment, per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    /// Uncached input tokens.
    pub input: PricePerMillion,
    /// Output tokens.
    pub output: PricePerMillion,
    /// Input tokens read from the prompt cache.
    pub cached_input: PricePerMillion,
}

/// Capacity limits of a deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
}

/// How a model orders its deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// In the configured order; the next one only when the previous failed or is cooling down.
    Priority,
}

/// A logical model: what a client asks for.
#[derive(Debug)]
pub struct Model {
    /// The name clients use.
    pub name: Arc<str>,
    /// Its deployments, in configured order.
    pub deployments: Vec<Arc<Deployment>>,
    /// How they are ordered per request.
    pub strategy: Strategy,
    /// Models tried, in order, when every deployment of this one failed.
    pub fallbacks: Vec<Arc<str>>,
}

/// The compiled, immutable routing table of one config version.
#[derive(Debug, Default)]
pub struct Catalog {
    models: HashMap<Arc<str>, Model>,
    order: Vec<Arc<str>>,
}

impl Catalog {
    /// Builds a catalog; models keep the given order for listing.
    pub fn new(models: Vec<Model>) -> Catalog {
        let order = models.iter().map(|m| m.name.clone()).collect();
        let models = models.into_iter().map(|m| (m.name.clone(), m)).collect();
        Catalog { models, order }
    }

    /// A model by its client-facing name.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// All models, in config order.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.order.iter().filter_map(|n| self.models.get(n))
    }

    /// The deployments to try for `model`, best first: its own (healthy ones before those
    /// cooling down), then each fallback model's, each deployment once.
    pub fn plan(&self, model: &Model, health: &Health) -> Vec<Arc<Deployment>> {
        let mut plan: Vec<Arc<Deployment>> = Vec::with_capacity(model.deployments.len());
        let push_model = |m: &Model, plan: &mut Vec<Arc<Deployment>>| {
            let start = plan.len();
            for d in &m.deployments {
                if !plan.iter().any(|p| Arc::ptr_eq(p, d)) {
                    plan.push(d.clone());
                }
            }
            // Stable: keeps priority order within the healthy and the cooling groups.
            plan[start..].sort_by_key(|d| health.is_cooling(&d.id));
        };
        push_model(model, &mut plan);
        for name in &model.fallbacks {
            if let Some(fallback) = self.models.get(name) {
                push_model(fallback, &mut plan);
            }
        }
        plan
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
