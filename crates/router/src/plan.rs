//! Planning: from a request to an ordered list of candidate deployments. Pure: it reads the
//! catalog and a view of health, and draws from the random source it is given.

use crate::catalog::{Catalog, Commitment, Deployment, Hedging, Model, Policy};
use crate::constraints::{ConstraintSource, DataClass, Exclusion};
use crate::health::{DeploymentView, Health};
use crate::preferences::{PreferenceError, Preferences};
use crate::retry::RetryRules;
use crate::strategy::{apply_order, rank, Entry, Ranking};
use rand::Rng;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use switchyard_types::{ErrorKind, Money};
use tokio::time::Instant;

/// What the caller expects a request to use, for price ranking and TPM limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Estimated input tokens.
    pub input_tokens: u64,
    /// The most output tokens the request allows.
    pub max_output_tokens: u64,
}

impl Estimate {
    /// Input plus maximum output: what a TPM limit is charged up front.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.max_output_tokens)
    }
}

/// A request to route.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// The model the client asked for.
    pub model: &'a str,
    /// The request's data class (from its key, or a header the server trusts).
    pub data_class: Option<&'a DataClass>,
    /// The caller's preferences.
    pub preferences: &'a Preferences,
    /// Expected token use.
    pub estimate: Estimate,
    /// Whether the response is streamed (picks TTFT over latency; disables hedging).
    pub stream: bool,
}

/// A deployment the plan will try.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The deployment.
    pub deployment: Arc<Deployment>,
    /// The model it serves (the requested one or a fallback).
    pub model: Arc<str>,
    /// Its ranking score (lower is better; the unit depends on the strategy).
    pub score: f64,
    /// Effective marginal price of this request there.
    pub price: Money,
    /// Whether the attempt would be the breaker's half-open probe.
    pub probe: bool,
}

/// One deployment left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Excluded {
    /// The deployment.
    pub deployment: Arc<str>,
    /// The model it belongs to.
    pub model: Arc<str>,
    /// The first reason found.
    pub reason: Exclusion,
}

/// The ordered deployments to try for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The requested model.
    pub model: Arc<str>,
    /// Candidates, best first: the model's own, then each fallback model's.
    pub candidates: Vec<Candidate>,
    /// Deployments left out and why.
    pub excluded: Vec<Excluded>,
    /// The estimate the plan was made for.
    pub estimate: Estimate,
    /// Whether the response is streamed.
    pub stream: bool,
    /// Hedging, when the model enables it and the request is not streamed.
    pub hedging: Option<Hedging>,
    /// Candidates of the model's context fallbacks, best first, tried only after an attempt
    /// met [`ErrorKind::ContextLengthExceeded`]; none of them is also in `candidates`.
    pub context_candidates: Vec<Candidate>,
    /// The requested model's retry table (its own, or the policy's).
    pub retry: RetryRules,
    pub(crate) policy: Arc<Policy>,
}

impl Plan {
    /// The routing policy the plan was made under.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The model `d` serves in this plan (a deployment is in a plan once): its candidate's,
    /// else the requested one.
    pub fn model_of(&self, d: &Arc<Deployment>) -> &Arc<str> {
        self.candidates
            .iter()
            .chain(&self.context_candidates)
            .find(|c| Arc::ptr_eq(&c.deployment, d))
            .map_or(&self.model, |c| &c.model)
    }

    /// The plan narrowed to the candidates `keep` accepts, in order and without hedging: what
    /// is left to continue a stream that broke on one of them.
    pub fn narrowed(&self, keep: impl Fn(&Candidate) -> bool) -> Plan {
        Plan {
            model: self.model.clone(),
            candidates: self
                .candidates
                .iter()
                .filter(|c| keep(c))
                .cloned()
                .collect(),
            context_candidates: Vec::new(),
            retry: self.retry,
            excluded: Vec::new(),
            estimate: self.estimate,
            stream: self.stream,
            hedging: None,
            policy: self.policy.clone(),
        }
    }
}

/// Nothing is eligible: which constraint or condition removed which deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct NotEligible {
    /// The requested model.
    pub model: Arc<str>,
    /// Every deployment and the reason it was removed.
    pub excluded: Vec<Excluded>,
}

impl fmt::Display for NotEligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no deployment of model '{}' is eligible:", self.model)?;
        for (i, e) in self.excluded.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{} ({}): {}", e.deployment, e.model, e.reason)?;
        }
        Ok(())
    }
}

/// Why a request cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    /// The model does not exist.
    #[error("unknown model '{0}'")]
    UnknownModel(String),
    /// The data class is not defined in the config.
    #[error("unknown data class '{0}'")]
    UnknownDataClass(DataClass),
    /// The caller's preferences are invalid.
    #[error(transparent)]
    Preference(#[from] PreferenceError),
    /// Constraints, health or capacity left nothing.
    #[error("{0}")]
    NotEligible(NotEligible),
}

impl RouteError {
    /// The error kind (and so the status) the server answers with: 400 for bad
    /// preferences or when the request's own preferences removed everything, 403 when policy
    /// (global, model or data class) did, 429 when every remaining deployment is cooling down
    /// after a rate limit, else 503.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RouteError::UnknownModel(_) => ErrorKind::NotFound,
            RouteError::UnknownDataClass(_) => ErrorKind::Internal,
            RouteError::Preference(_) => ErrorKind::InvalidRequest,
            RouteError::NotEligible(n) => {
                let reasons = || n.excluded.iter().map(|e| &e.reason);
                if n.excluded.is_empty() {
                    ErrorKind::NoCapacity
                } else if reasons().any(Exclusion::is_transient) {
                    if reasons()
                        .filter(|r| r.is_transient())
                        .all(|r| matches!(r, Exclusion::CoolingDown { .. }))
                    {
                        ErrorKind::RateLimited
                    } else {
                        ErrorKind::NoCapacity
                    }
                } else if reasons().all(is_request_made) {
                    ErrorKind::InvalidRequest
                } else {
                    ErrorKind::PermissionDenied
                }
            }
        }
    }

    /// For a 429: when the first cooling deployment takes traffic again.
    pub fn retry_after(&self) -> Option<Duration> {
        let RouteError::NotEligible(n) = self else {
            return None;
        };
        let now = Instant::now();
        n.excluded
            .iter()
            .filter_map(|e| match e.reason {
                Exclusion::CoolingDown { until } => Some(until.saturating_duration_since(now)),
                _ => None,
            })
            .min()
    }
}

fn is_request_made(r: &Exclusion) -> bool {
    matches!(
        r,
        Exclusion::NotInOnly
            | Exclusion::Ignored
            | Exclusion::OverMaxPrice { .. }
            | Exclusion::FallbacksDisabled
            | Exclusion::DataPolicy(_)
            | Exclusion::Duplicate
            | Exclusion::Jurisdiction {
                source: ConstraintSource::Request,
                ..
            }
    )
}

/// Everything planning learned about one deployment.
pub(crate) struct Evaluated<'a> {
    pub deployment: &'a Arc<Deployment>,
    pub model: &'a Model,
    pub position: usize,
    pub view: DeploymentView,
    pub price: Money,
    pub committed: bool,
    pub reasons: Vec<Exclusion>,
}

/// Checks every deployment of the model chain against constraints, preferences, health and
/// capacity. `first_only` stops at the first reason per deployment (planning); `route
/// explain` wants them all.
pub(crate) fn evaluate<'a>(
    catalog: &'a Catalog,
    health: &Health,
    model: &'a Model,
    req: &RouteRequest<'_>,
    first_only: bool,
    now: Instant,
) -> Result<Vec<Evaluated<'a>>, RouteError> {
    let policy = catalog.policy();
    let class = match req.data_class {
        None => None,
        Some(c) => Some((
            ConstraintSource::DataClass(c.clone()),
            policy
                .data_classes
                .get(c)
                .ok_or_else(|| RouteError::UnknownDataClass(c.clone()))?,
        )),
    };
    let prefs = req.preferences;
    validate_names(catalog, prefs)?;
    let tokens = req.estimate.tokens();
    let health = health.reader();
    let mut out: Vec<Evaluated<'a>> = Vec::with_capacity(model.deployments.len());
    for (group, m) in catalog.chain(model).into_iter().enumerate() {
        let model_source = ConstraintSource::Model(m.name.clone());
        for (position, d) in m.deployments.iter().enumerate() {
            let mut reasons = Vec::new();
            let stop = |r: &Vec<Exclusion>| first_only && !r.is_empty();
            if out.iter().any(|e| Arc::ptr_eq(e.deployment, d)) {
                reasons.push(Exclusion::Duplicate);
            }
            if group > 0 && prefs.allow_fallbacks == Some(false) && !stop(&reasons) {
                reasons.push(Exclusion::FallbacksDisabled);
            }
            if !stop(&reasons) {
                policy
                    .constraints
                    .check(d, &ConstraintSource::Global, first_only, &mut reasons);
            }
            if !stop(&reasons) {
                m.constraints
                    .check(d, &model_source, first_only, &mut reasons);
            }
            if let Some((source, constraints)) = &class {
                if !stop(&reasons) {
                    constraints.check(d, source, first_only, &mut reasons);
                }
            }
            let provider = &*d.provider.id;
            if let Some(p) = prefs.data_policy {
                if !stop(&reasons) && !p.kept_by(d) {
                    reasons.push(Exclusion::DataPolicy(p));
                }
            }
            if !prefs.only.is_empty()
                && !stop(&reasons)
                && !Preferences::names_match(&prefs.only, &d.id, provider)
            {
                reasons.push(Exclusion::NotInOnly);
            }
            if !stop(&reasons) && Preferences::names_match(&prefs.ignore, &d.id, provider) {
                reasons.push(Exclusion::Ignored);
            }
            let view = health.view(d, now);
            let committed = match d.commitment {
                Some(Commitment::Provisioned { .. }) => true,
                Some(Commitment::Prepaid { .. }) => {
                    view.prepaid_remaining.is_some_and(|r| r > Money::ZERO)
                }
                None => false,
            };
            let price = if committed {
                Money::ZERO
            } else {
                d.prices
                    .estimate(req.estimate.input_tokens, req.estimate.max_output_tokens)
            };
            if let Some(max) = prefs.max_price {
                if !stop(&reasons) && price > max {
                    reasons.push(Exclusion::OverMaxPrice { cost: price, max });
                }
            }
            if !stop(&reasons) {
                if let Some(r) = view.unavailable(tokens, now) {
                    reasons.push(r);
                }
            }
            out.push(Evaluated {
                deployment: d,
                model: m,
                position,
                view,
                price,
                committed,
                reasons,
            });
        }
    }
    Ok(out)
}

fn validate_names(catalog: &Catalog, prefs: &Preferences) -> Result<(), PreferenceError> {
    for (key, list) in [
        ("order", &prefs.order),
        ("only", &prefs.only),
        ("ignore", &prefs.ignore),
    ] {
        for name in list {
            let known = catalog.models().any(|m| {
                m.deployments
                    .iter()
                    .any(|d| *d.id == **name || *d.provider.id == **name)
            });
            if !known {
                return Err(PreferenceError::UnknownName {
                    key,
                    name: name.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Ranks the eligible deployments of each model in the chain and concatenates the groups.
pub(crate) fn rank_groups<'a, R: Rng + ?Sized>(
    evaluated: &[Evaluated<'a>],
    prefs: &Preferences,
    stream: bool,
    rng: &mut R,
) -> Vec<Entry<'a>> {
    let mut ranked: Vec<Entry<'a>> = Vec::with_capacity(evaluated.len());
    let mut start = 0;
    while start < evaluated.len() {
        let model = evaluated[start].model;
        let end = evaluated[start..]
            .iter()
            .position(|e| !std::ptr::eq(e.model, model))
            .map_or(evaluated.len(), |n| start + n);
        let group_start = ranked.len();
        for e in evaluated[start..end]
            .iter()
            .filter(|e| e.reasons.is_empty())
        {
            ranked.push(Entry {
                deployment: e.deployment,
                model: &model.name,
                position: e.position,
                view: e.view,
                price: e.price,
                committed: e.committed,
                score: 0.0,
            });
        }
        let ranking = match prefs.sort {
            Some(sort) => Ranking::Sort(sort),
            None => Ranking::Strategy(&model.strategy),
        };
        let group = &mut ranked[group_start..];
        rank(ranking, group, stream, rng);
        apply_order(&prefs.order, group);
        start = end;
    }
    ranked
}

impl Catalog {
    /// Plans a request: the candidates to try, best first, or why there are none.
    pub fn route<R: Rng + ?Sized>(
        &self,
        health: &Health,
        req: &RouteRequest<'_>,
        rng: &mut R,
    ) -> Result<Plan, RouteError> {
        let model = self
            .model(req.model)
            .ok_or_else(|| RouteError::UnknownModel(req.model.to_string()))?;
        let now = Instant::now();
        let evaluated = evaluate(self, health, model, req, true, now)?;
        let ranked = rank_groups(&evaluated, req.preferences, req.stream, rng);
        let excluded: Vec<Excluded> = evaluated
            .iter()
            .filter_map(|e| {
                let reason = e.reasons.first()?;
                (*reason != Exclusion::Duplicate).then(|| Excluded {
                    deployment: e.deployment.id.clone(),
                    model: e.model.name.clone(),
                    reason: reason.clone(),
                })
            })
            .collect();
        if ranked.is_empty() {
            return Err(RouteError::NotEligible(NotEligible {
                model: model.name.clone(),
                excluded,
            }));
        }
        let candidate = |e: Entry<'_>| Candidate {
            deployment: e.deployment.clone(),
            model: e.model.clone(),
            score: e.score,
            price: e.price,
            probe: e.view.is_probe(),
        };
        let candidates: Vec<Candidate> = ranked.into_iter().map(candidate).collect();
        let mut context_candidates: Vec<Candidate> = Vec::new();
        // A caller that refuses fallback models refuses larger-context ones too.
        let context_fallbacks = match req.preferences.allow_fallbacks {
            Some(false) => &[][..],
            _ => &model.context_fallbacks[..],
        };
        for name in context_fallbacks {
            let Some(larger) = self.model(name) else {
                continue;
            };
            // Its exclusions are not the request's: the plan explains the requested model.
            let evaluated = evaluate(self, health, larger, req, true, now)?;
            for e in rank_groups(&evaluated, req.preferences, req.stream, rng) {
                let seen = candidates
                    .iter()
                    .chain(&context_candidates)
                    .any(|c| Arc::ptr_eq(&c.deployment, e.deployment));
                if !seen {
                    context_candidates.push(candidate(e));
                }
            }
        }
        Ok(Plan {
            model: model.name.clone(),
            candidates,
            excluded,
            estimate: req.estimate,
            stream: req.stream,
            hedging: if req.stream { None } else { model.hedging },
            context_candidates,
            retry: model.retry.unwrap_or(self.policy().retry_rules),
            policy: self.policy().clone(),
        })
    }
}
