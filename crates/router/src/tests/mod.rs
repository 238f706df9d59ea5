//! Unit tests of planning, strategies and the attempt loop (paused time, seeded randomness).
//! Tests against the real simulator live in `crates/router/tests/`.

use crate::testkit::*;
use crate::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::Duration;
use switchyard_providers::AttemptError;
use switchyard_types::{Cloud, ErrorKind, Jurisdiction};

mod breakers;
mod planning;
mod property;
mod resilience;
mod retry_table;
mod strategies;

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn est() -> Estimate {
    Estimate {
        input_tokens: 1_000,
        max_output_tokens: 1_000,
    }
}

fn req<'a>(model: &'a str, prefs: &'a Preferences) -> RouteRequest<'a> {
    RouteRequest {
        model,
        data_class: None,
        preferences: prefs,
        estimate: est(),
        stream: false,
    }
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.candidates.iter().map(|c| &*c.deployment.id).collect()
}

fn first(catalog: &Catalog, health: &Health, r: &mut StdRng) -> String {
    let prefs = Preferences::default();
    let plan = catalog.route(health, &req("m", &prefs), r).unwrap();
    plan.candidates[0].deployment.id.to_string()
}

fn err(kind: ErrorKind, status: Option<u16>) -> AttemptError {
    let mut e = AttemptError::new(kind, "test");
    e.status = status;
    e
}
