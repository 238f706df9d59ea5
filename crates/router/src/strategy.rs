//! Ranking strategies: each orders a model's eligible deployments (those that passed the
//! constraints and have health and capacity) best first. Pure, with injected randomness.

use crate::health::DeploymentView;
use crate::preferences::Sort;
use crate::Deployment;
use rand::Rng;
use std::cmp::Ordering;
use std::sync::Arc;
use switchyard_types::Money;

/// How a model orders its deployments per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// In the configured order; the next one only when the previous one fails.
    Priority,
    /// At random in proportion to the weights (`weights[i]` is for `deployments[i]`; 0 =
    /// only when every positive-weight deployment failed or is unavailable).
    Weighted {
        /// One weight per deployment of the model, in order.
        weights: Vec<u32>,
    },
    /// Lowest effective marginal price for this request's estimated tokens (zero while a
    /// prepaid commitment has money left, or on provisioned capacity).
    Cheapest,
    /// Power of two choices over a decaying latency estimate (time to first token for
    /// streams) times the requests in flight.
    Fastest,
    /// Fewest requests in flight (ties broken at random).
    LeastBusy,
    /// Committed or provisioned deployments first, in configured order, up to their limits;
    /// then pay-as-you-go ones by price.
    Spillover,
}

impl Strategy {
    /// The name used in config files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Weighted { .. } => "weighted",
            Strategy::Cheapest => "cheapest",
            Strategy::Fastest => "fastest",
            Strategy::LeastBusy => "least_busy",
            Strategy::Spillover => "spillover",
        }
    }
}

/// One eligible deployment while ranking.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub deployment: &'a Arc<Deployment>,
    pub model: &'a Arc<str>,
    /// Index in its model's deployment list.
    pub position: usize,
    pub view: DeploymentView,
    /// Effective marginal price of this request there.
    pub price: Money,
    /// A commitment makes it free at the margin now.
    pub committed: bool,
    /// Lower is better; what `route explain` shows.
    pub score: f64,
}

/// Which ordering applies: the model's strategy, or the caller's `sort`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ranking<'a> {
    Strategy(&'a Strategy),
    Sort(Sort),
}

fn latency_cost(e: &Entry<'_>, stream: bool) -> f64 {
    let secs = e.view.latency_for(stream).map_or(0.0, |d| d.as_secs_f64());
    secs * f64::from(e.view.in_flight.saturating_add(1))
}

fn by_score(a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
    a.score
        .total_cmp(&b.score)
        .then(a.position.cmp(&b.position))
}

/// Scores and sorts `entries` best first.
pub(crate) fn rank<R: Rng + ?Sized>(
    ranking: Ranking<'_>,
    entries: &mut [Entry<'_>],
    stream: bool,
    rng: &mut R,
) {
    match ranking {
        Ranking::Strategy(Strategy::Priority) => {
            for e in entries.iter_mut() {
                e.score = e.position as f64;
            }
            entries.sort_by(by_score);
        }
        Ranking::Strategy(Strategy::Weighted { weights }) => {
            // Exponential race (Efraimidis–Spirakis): the smallest Exp(w) key wins with
            // probability w / Σw, and sorting the keys gives a weighted order without
            // replacement for failover.
            for e in entries.iter_mut() {
                let w = weights.get(e.position).copied().unwrap_or(1);
                e.score = if w == 0 {
                    f64::INFINITY
                } else {
                    let u: f64 = rng.random();
                    -(1.0 - u).ln() / f64::from(w)
                };
            }
            entries.sort_by(by_score);
        }
        Ranking::Strategy(Strategy::Cheapest) | Ranking::Sort(Sort::Price) => {
            for e in entries.iter_mut() {
                e.score = e.price.as_usd();
            }
            entries.sort_by(by_score);
        }
        Ranking::Strategy(Strategy::Fastest) => {
            for e in entries.iter_mut() {
                e.score = latency_cost(e, stream);
            }
            if entries.len() >= 2 {
                let n = entries.len();
                let i = rng.random_range(0..n);
                let mut j = rng.random_range(0..n - 1);
                if j >= i {
                    j += 1;
                }
                let winner = if entries[j].score < entries[i].score {
                    j
                } else {
                    i
                };
                entries.swap(0, winner);
                entries[1..].sort_by(by_score);
            }
        }
        Ranking::Sort(Sort::Latency) => {
            for e in entries.iter_mut() {
                e.score = latency_cost(e, stream);
            }
            entries.sort_by(by_score);
        }
        Ranking::Strategy(Strategy::LeastBusy) | Ranking::Sort(Sort::Throughput) => {
            for e in entries.iter_mut() {
                // The fraction breaks ties at random without ever beating a whole request.
                let tie: f64 = rng.random::<f64>() * 0.5;
                e.score = f64::from(e.view.in_flight) + tie;
            }
            entries.sort_by(by_score);
        }
        Ranking::Strategy(Strategy::Spillover) => {
            for e in entries.iter_mut() {
                e.score = e.price.as_usd();
            }
            entries.sort_by(|a, b| {
                b.committed.cmp(&a.committed).then_with(|| {
                    if a.committed {
                        a.position.cmp(&b.position)
                    } else {
                        by_score(a, b)
                    }
                })
            });
        }
    }
}

/// Moves the deployments named in `order` (by deployment or provider name) to the front,
/// in that order; the rest keep their ranking.
pub(crate) fn apply_order(order: &[Arc<str>], entries: &mut [Entry<'_>]) {
    if order.is_empty() {
        return;
    }
    let key = |e: &Entry<'_>| {
        order
            .iter()
            .position(|n| **n == *e.deployment.id || **n == *e.deployment.provider.id)
            .unwrap_or(usize::MAX)
    };
    // Stable, so the unnamed keep the strategy's order.
    entries.sort_by_key(key);
}
