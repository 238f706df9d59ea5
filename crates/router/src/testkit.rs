//! Builders for unit tests.

use crate::{Catalog, Commitment, Deployment, Limits, Model, Policy, Prices};
use std::sync::Arc;
use switchyard_providers::{Auth, Endpoints, ProviderSpec};
use switchyard_types::{Cloud, Jurisdiction, Money, PricePerMillion, ProviderKind};

/// A provider with test defaults (US, OpenAI cloud).
pub(crate) fn provider(id: &str, kind: ProviderKind) -> ProviderSpec {
    ProviderSpec {
        id: id.into(),
        kind,
        base_url: "http://127.0.0.1:1".into(),
        auth: Auth::None,
        api_version: None,
        cloud: Cloud::OpenAi,
        region: "us-east-1".into(),
        jurisdiction: Jurisdiction::Us,
        http2_prior_knowledge: false,
        extra: Default::default(),
    }
}

/// A deployment builder.
pub(crate) struct D {
    pub id: String,
    pub provider: ProviderSpec,
    pub prices: Prices,
    pub limits: Limits,
    pub tags: Vec<String>,
    pub commitment: Option<Commitment>,
}

pub(crate) fn d(id: &str) -> D {
    D {
        id: id.into(),
        provider: provider(&format!("{id}-provider"), ProviderKind::OpenAi),
        prices: Prices::default(),
        limits: Limits::default(),
        tags: vec![],
        commitment: None,
    }
}

pub(crate) fn usd(v: f64) -> PricePerMillion {
    PricePerMillion(Money::from_usd(v).unwrap_or_default())
}

impl D {
    pub fn at(mut self, cloud: Cloud, region: &str, jurisdiction: Jurisdiction) -> D {
        self.provider.cloud = cloud;
        self.provider.region = region.into();
        self.provider.jurisdiction = jurisdiction;
        self
    }
    pub fn price(mut self, input: f64, output: f64) -> D {
        self.prices = Prices {
            input: usd(input),
            output: usd(output),
            cached_input: Some(usd(input / 2.0)),
            cache_write: None,
        };
        self
    }
    pub fn limits(mut self, rpm: Option<u32>, tpm: Option<u64>, concurrency: Option<u32>) -> D {
        self.limits = Limits {
            rpm,
            tpm,
            concurrency,
        };
        self
    }
    pub fn tags(mut self, tags: &[&str]) -> D {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }
    pub fn commit(mut self, c: Commitment) -> D {
        self.commitment = Some(c);
        self
    }
    pub fn build(self) -> Arc<Deployment> {
        let provider = Arc::new(self.provider);
        Arc::new(Deployment {
            id: self.id.as_str().into(),
            endpoints: Endpoints::new(&provider, "m"),
            provider,
            upstream_model: "m".into(),
            prices: self.prices,
            limits: self.limits,
            tags: self.tags,
            commitment: self.commitment,
            accepts_prefill: false,
            max_output_tokens: 16_384,
        })
    }
}

/// A catalog with one model `m` over `deployments`.
pub(crate) fn one_model(model: Model, policy: Policy) -> Catalog {
    Catalog::with_policy(vec![model], policy)
}
