//! Routing: the compiled catalog of models and deployments, the constraints and preferences
//! that remove deployments, the strategies that rank the rest, per-deployment health and
//! capacity (breakers, cooldowns, latency estimates, rate limits, commitments), and the
//! attempt loop that retries and fails over while nothing has reached the client.
//!
//! Layering: [`Catalog::route`] and [`explain()`] are pure functions of the catalog, a
//! read-only view of [`Health`] and a random source; [`execute`] is the only place that changes
//! health (admits attempts, records outcomes) and sleeps.
//!
//! The request path, as the server calls it:
//! 1. [`Preferences::parse_header`] / [`Preferences::from_json`] → a 400 on [`PreferenceError`].
//! 2. [`Catalog::route`] with a [`RouteRequest`] → a [`Plan`] or a [`RouteError`]
//!    (`RouteError::kind()` picks the status).
//! 3. [`execute`] with the plan, [`Health`], a [`Budget`] and the attempt closure → [`Served`]
//!    (value, deployment, attempts, [`Permit`]) or [`Failed`].
//! 4. Hold the [`Permit`] until the response body ends, then [`Permit::settle`] with the usage:
//!    it returns the [`Settlement`] (cost for `x-switchyard-cost`) and frees the concurrency slot.

mod attempt;
mod catalog;
mod constraints;
pub mod drill;
mod explain;
mod health;
mod plan;
mod preferences;
mod retry;
mod strategy;

pub use attempt::{execute, Attempt, AttemptLog, Failed, Served};
pub use catalog::{
    Catalog, Commitment, Deployment, Hedging, Limits, Model, Period, Policy, Prices, StreamPolicy,
    StreamRecovery,
};
pub use constraints::{
    ConstraintSource, Constraints, DataClass, DataClassError, DataPolicy, Exclusion, Filter,
};
pub use explain::{explain, Explanation, Row};
pub use health::{
    BreakerConfig, BreakerStatus, DeploymentView, Health, LimitKind, Permit, Settlement, TripReason,
};
pub use plan::{Candidate, Estimate, Excluded, NotEligible, Plan, RouteError, RouteRequest};
pub use preferences::{PreferenceError, Preferences, Sort};
pub use retry::{
    Action, Attempted, Backoff, Budget, Decision, ErrorClass, RetryPolicy, RetryRules, StatusSet,
};
pub use strategy::Strategy;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
