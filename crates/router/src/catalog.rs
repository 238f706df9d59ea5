//! The compiled, immutable routing table of one config version: models, their deployments
//! with prices, limits and commitments, and the routing policy shared by all of them.

use crate::constraints::{Constraints, DataClass};
use crate::health::BreakerConfig;
use crate::retry::{Budget, RetryPolicy, RetryRules};
use crate::strategy::Strategy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchyard_protocol::translate::Malformed;
use switchyard_providers::{Endpoints, ProviderSpec};
pub use switchyard_types::Prices;
use switchyard_types::{Money, ProviderKind};

/// One concrete place a model is served.
#[derive(Debug)]
pub struct Deployment {
    /// The deployment's name in the config.
    pub id: Arc<str>,
    /// Who serves it (and so its cloud, region and jurisdiction).
    pub provider: Arc<ProviderSpec>,
    /// The upstream model id (or Azure deployment name).
    pub upstream_model: String,
    /// Each operation's URL and fixed headers: `Endpoints::new(&provider, &upstream_model)`.
    pub endpoints: Endpoints,
    /// Prices per million tokens.
    pub prices: Prices,
    /// Capacity limits, enforced by every strategy.
    pub limits: Limits,
    /// Free-form tags such as `zdr` or `hipaa`.
    pub tags: Vec<String>,
    /// A prepaid amount or provisioned capacity, if any.
    pub commitment: Option<Commitment>,
    /// Continues a trailing assistant message (so it can finish another deployment's broken
    /// stream): its protocol's default unless configured.
    pub accepts_prefill: bool,
    /// The most output tokens one answer can have (budget reservations of uncapped requests).
    pub max_output_tokens: u64,
}

impl Deployment {
    /// The provider kind, for dispatch.
    pub fn kind(&self) -> ProviderKind {
        self.provider.kind
    }

    /// Whether the deployment carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The limits in force: the configured ones, tightened by provisioned capacity (which is
    /// all the deployment can serve).
    pub fn effective_limits(&self) -> Limits {
        let mut limits = self.limits;
        if let Some(Commitment::Provisioned { rpm, tpm }) = self.commitment {
            limits.rpm = min_opt(limits.rpm, rpm);
            limits.tpm = min_opt(limits.tpm, tpm);
        }
        limits
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Capacity limits of a deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute (input plus output).
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
}

/// Capacity paid for whether it is used or not, so its marginal price is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commitment {
    /// An amount paid in advance per period; requests are free at the margin until the
    /// period's amount is used up (tracked in memory by [`Health`]).
    Prepaid {
        /// The prepaid amount per period.
        amount: Money,
        /// How often it renews.
        period: Period,
    },
    /// Reserved throughput (Azure PTU, Bedrock provisioned throughput): free at the margin up
    /// to its capacity, and nothing beyond it.
    Provisioned {
        /// Requests per minute it can serve.
        rpm: Option<u32>,
        /// Tokens per minute it can serve.
        tpm: Option<u64>,
    },
}

/// How often a prepaid commitment renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Every 24 hours.
    Day,
    /// Every 7 days.
    Week,
    /// Every 30 days (calendar months are the ledger's job once spend is persisted).
    Month,
}

impl Period {
    /// The period's length.
    pub fn duration(self) -> Duration {
        const DAY: u64 = 24 * 60 * 60;
        Duration::from_secs(match self {
            Period::Day => DAY,
            Period::Week => 7 * DAY,
            Period::Month => 30 * DAY,
        })
    }

    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// Hedging for non-streaming requests: a second attempt on the next deployment when the
/// first has not answered after a delay; the first answer wins and the other is cancelled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hedging {
    /// Wait this long before hedging (also used while a deployment has too few samples).
    pub delay: Duration,
    /// When set, wait for this latency percentile (0-100) of the first deployment instead.
    pub percentile: Option<f64>,
}

/// A logical model: what a client asks for.
#[derive(Debug)]
pub struct Model {
    /// The name clients use.
    pub name: Arc<str>,
    /// Its deployments, in configured order.
    pub deployments: Vec<Arc<Deployment>>,
    /// How they are ranked per request.
    pub strategy: Strategy,
    /// Models tried, in order, when every deployment of this one failed.
    pub fallbacks: Vec<Arc<str>>,
    /// Constraints on this model's deployments (on top of the global ones).
    pub constraints: Constraints,
    /// Hedging of non-streaming requests, when enabled for this model.
    pub hedging: Option<Hedging>,
    /// Larger-context models tried, in order, when an attempt finds the input longer than
    /// this model's context window.
    pub context_fallbacks: Vec<Arc<str>>,
    /// This model's retry table, when it overrides the policy's.
    pub retry: Option<RetryRules>,
    /// What its streams do when an upstream breaks or sends what it cannot read.
    pub streams: StreamPolicy,
}

/// How a model's streams survive their upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamPolicy {
    /// A stream that breaks after the client got text.
    pub recovery: StreamRecovery,
    /// An event that cannot be read inside an otherwise valid stream.
    pub malformed: Malformed,
}

/// What a stream that broke mid-answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamRecovery {
    /// Continue the answer on the next eligible deployment that accepts a prefill.
    #[default]
    Continue,
    /// End the client's stream with the error.
    Error,
}

impl Model {
    /// A model with the priority strategy and no constraints, fallbacks or hedging.
    pub fn new(name: &str, deployments: Vec<Arc<Deployment>>) -> Model {
        Model {
            name: name.into(),
            deployments,
            strategy: Strategy::Priority,
            fallbacks: Vec::new(),
            constraints: Constraints::default(),
            hedging: None,
            context_fallbacks: Vec::new(),
            retry: None,
            streams: StreamPolicy::default(),
        }
    }
}

/// Routing settings shared by every model of a config version.
#[derive(Debug, Default)]
pub struct Policy {
    /// Constraints on every deployment.
    pub constraints: Constraints,
    /// What each data class requires.
    pub data_classes: HashMap<DataClass, Constraints>,
    /// Which upstream statuses are retried, per protocol and provider.
    pub retry: RetryPolicy,
    /// When breakers open and for how long.
    pub breaker: BreakerConfig,
    /// What each class of failure does (models may override it).
    pub retry_rules: RetryRules,
    /// Default attempt and time budget per request.
    pub budget: Budget,
    /// How long a deployment rests after a 429 that carried no Retry-After.
    pub rate_limit_cooldown: Duration,
}

/// The compiled, immutable routing table of one config version.
#[derive(Debug, Default)]
pub struct Catalog {
    models: HashMap<Arc<str>, Model>,
    order: Vec<Arc<str>>,
    policy: Arc<Policy>,
}

impl Catalog {
    /// Builds a catalog with the default policy; models keep the given order for listing.
    pub fn new(models: Vec<Model>) -> Catalog {
        Catalog::with_policy(models, Policy::default())
    }

    /// Builds a catalog with a routing policy.
    pub fn with_policy(models: Vec<Model>, policy: Policy) -> Catalog {
        let order = models.iter().map(|m| m.name.clone()).collect();
        let models = models.into_iter().map(|m| (m.name.clone(), m)).collect();
        Catalog {
            models,
            order,
            policy: Arc::new(policy),
        }
    }

    /// A model by its client-facing name.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// All models, in config order.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.order.iter().filter_map(|n| self.models.get(n))
    }

    /// The routing policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The model followed by its fallback models, in order, each once.
    pub(crate) fn chain<'a>(&'a self, model: &'a Model) -> Vec<&'a Model> {
        let mut chain = vec![model];
        for name in &model.fallbacks {
            if let Some(m) = self.models.get(name) {
                if !chain.iter().any(|c| c.name == m.name) {
                    chain.push(m);
                }
            }
        }
        chain
    }
}
