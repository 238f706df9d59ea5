//! `route explain`: for a hypothetical request, every deployment of the model and its
//! fallbacks, whether it is eligible and every reason it is not, its health and headroom,
//! and the ranking the request would get. Pure, like planning.

use crate::catalog::Catalog;
use crate::health::{DeploymentView, Health};
use crate::plan::{evaluate, rank_groups, RouteError, RouteRequest};
use crate::{Deployment, Exclusion};
use rand::Rng;
use std::sync::Arc;
use switchyard_types::Money;
use tokio::time::Instant;

/// One deployment in an explanation.
#[derive(Debug, Clone)]
pub struct Row {
    /// The deployment.
    pub deployment: Arc<Deployment>,
    /// The model it is listed under (the requested one or a fallback).
    pub model: Arc<str>,
    /// The model's strategy (or the request's sort), by name.
    pub ranking: &'static str,
    /// Every reason it is not eligible; empty when it is.
    pub reasons: Vec<Exclusion>,
    /// Health and headroom now.
    pub view: DeploymentView,
    /// Effective marginal price of the request there.
    pub price: Money,
    /// Position in the plan (1-based), when eligible.
    pub rank: Option<usize>,
    /// Ranking score (lower is better), when eligible.
    pub score: Option<f64>,
}

/// The explanation of one hypothetical request.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The requested model.
    pub model: Arc<str>,
    /// Every deployment of the model chain, in config order.
    pub rows: Vec<Row>,
}

impl Explanation {
    /// Rows of eligible deployments, in plan order.
    pub fn ranking(&self) -> Vec<&Row> {
        let mut ranked: Vec<&Row> = self.rows.iter().filter(|r| r.rank.is_some()).collect();
        ranked.sort_by_key(|r| r.rank);
        ranked
    }
}

/// Explains how `req` would be routed now. Randomised strategies (weighted, fastest, ties of
/// least_busy) show one draw of `rng`.
pub fn explain<R: Rng + ?Sized>(
    catalog: &Catalog,
    health: &Health,
    req: &RouteRequest<'_>,
    rng: &mut R,
) -> Result<Explanation, RouteError> {
    let model = catalog
        .model(req.model)
        .ok_or_else(|| RouteError::UnknownModel(req.model.to_string()))?;
    let evaluated = evaluate(catalog, health, model, req, false, Instant::now())?;
    let ranked = rank_groups(&evaluated, req.preferences, req.stream, rng);
    let rows = evaluated
        .iter()
        .map(|e| {
            let placed = if e.reasons.is_empty() {
                ranked
                    .iter()
                    .position(|r| Arc::ptr_eq(r.deployment, e.deployment))
                    .map(|i| (i + 1, ranked[i].score))
            } else {
                None
            };
            Row {
                deployment: e.deployment.clone(),
                model: e.model.name.clone(),
                ranking: req
                    .preferences
                    .sort
                    .map_or(e.model.strategy.as_str(), |s| s.as_str()),
                reasons: e.reasons.clone(),
                view: e.view,
                price: e.price,
                rank: placed.map(|p| p.0),
                score: placed.map(|p| p.1),
            }
        })
        .collect();
    Ok(Explanation {
        model: model.name.clone(),
        rows,
    })
}
