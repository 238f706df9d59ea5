//! Prometheus metrics. Every metric name is a [`Metric`] variant, labels come only from the
//! config (model, deployment, provider, cloud, region) or closed enums (front door, outcome,
//! error kind), so cardinality is bounded and no key or user text can leak into a label.
//! Counters are recorded where a request ends (`observe`); gauges of state that lives
//! elsewhere (breakers, in-flight, governance and ledger counters) are read at scrape time.

use crate::observe::{Outcome, RequestEnd};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use switchyard_router::BreakerStatus;

/// Every metric the gateway exports.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Metric {
    Requests,
    Rejections,
    Attempts,
    Failovers,
    RequestDuration,
    TimeToFirstToken,
    Tokens,
    CostNanoUsd,
    InFlight,
    BreakerOpen,
    GovernanceDenials,
    RedisDown,
    RedisErrors,
    LedgerRecords,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::Requests => "switchyard_requests_total",
            Metric::Rejections => "switchyard_error_responses_total",
            Metric::Attempts => "switchyard_upstream_attempts_total",
            Metric::Failovers => "switchyard_failovers_total",
            Metric::RequestDuration => "switchyard_request_duration_seconds",
            Metric::TimeToFirstToken => "switchyard_time_to_first_token_seconds",
            Metric::Tokens => "switchyard_tokens_total",
            Metric::CostNanoUsd => "switchyard_cost_nano_usd_total",
            Metric::InFlight => "switchyard_in_flight_requests",
            Metric::BreakerOpen => "switchyard_breaker_state",
            Metric::GovernanceDenials => "switchyard_governance_denials_total",
            Metric::RedisDown => "switchyard_state_redis_down",
            Metric::RedisErrors => "switchyard_state_redis_errors_total",
            Metric::LedgerRecords => "switchyard_ledger_records",
        }
    }
}

/// The process-wide Prometheus recorder (one per process, shared by every gateway in it).
pub(crate) fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; metrics then go there.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Records an error response (refused before routing — auth, validation, limits, budgets,
/// nothing eligible — or failed upstream), by front door and error kind.
pub(crate) fn rejected(front_door: &'static str, kind: switchyard_types::ErrorKind) {
    counter!(Metric::Rejections.name(), "front_door" => front_door, "kind" => kind.as_str())
        .increment(1);
}

/// Records a finished request.
pub(crate) fn record(end: &RequestEnd<'_>, cost: switchyard_types::Money) {
    let ctx = end.ctx;
    let model = ctx.model.to_string();
    let outcome = end.outcome.as_str();
    counter!(Metric::Requests.name(), "model" => model.clone(), "front_door" => ctx.dialect.as_str(), "outcome" => outcome)
        .increment(1);
    let attempts = end.served.map_or(end.failed_attempts, |s| &s.attempts);
    for a in attempts {
        let result = a.error.map_or("ok", |k| k.as_str());
        counter!(Metric::Attempts.name(), "deployment" => a.deployment.to_string(), "provider" => a.provider.to_string(), "result" => result)
            .increment(1);
    }
    if attempts.len() > 1 {
        counter!(Metric::Failovers.name(), "model" => model.clone())
            .increment(attempts.len() as u64 - 1);
    }
    let Some(served) = end.served else {
        return;
    };
    let d = &served.deployment;
    let labels = [
        ("model", model),
        ("deployment", d.id.to_string()),
        ("provider", d.provider.id.to_string()),
        ("cloud", d.provider.cloud.as_str().to_string()),
        ("region", d.provider.region.to_string()),
    ];
    histogram!(Metric::RequestDuration.name(), &labels).record(ctx.started.elapsed().as_secs_f64());
    if let Some(ttft) = end.ttft {
        histogram!(Metric::TimeToFirstToken.name(), &labels).record(ttft.as_secs_f64());
    }
    if let Some(u) = end.usage {
        for (kind, n) in [
            ("input", u.input),
            ("output", u.output),
            ("cached_input", u.cached_input),
        ] {
            let mut l = labels.to_vec();
            l.push(("type", kind.to_string()));
            counter!(Metric::Tokens.name(), &l).increment(n);
        }
        if end.outcome == Outcome::Ok || end.usage_estimated {
            let nanos = u64::try_from(cost.nanos()).unwrap_or(0);
            counter!(Metric::CostNanoUsd.name(), &labels).increment(nanos);
        }
    }
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn scrape(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.snapshot();
    let now = tokio::time::Instant::now();
    let mut seen = std::collections::HashSet::new();
    for model in snapshot.catalog.models() {
        for d in &model.deployments {
            if !seen.insert(d.id.clone()) {
                continue;
            }
            let view = state.health.view(d, now);
            let labels = [
                ("deployment", d.id.to_string()),
                ("provider", d.provider.id.to_string()),
            ];
            gauge!(Metric::InFlight.name(), &labels).set(f64::from(view.in_flight));
            // 0 closed, 1 half-open, 2 open: one series per deployment.
            let breaker = match view.breaker {
                BreakerStatus::Closed => 0.0,
                BreakerStatus::HalfOpen { .. } => 1.0,
                BreakerStatus::Open { .. } => 2.0,
            };
            gauge!(Metric::BreakerOpen.name(), &labels).set(breaker);
        }
    }
    let g = state.runtime.governor.stats();
    for (reason, n) in [
        ("model_not_allowed", g.denied_model_not_allowed),
        ("rate_limited", g.denied_rate_limited),
        ("over_budget", g.denied_over_budget),
        ("state_unavailable", g.denied_unavailable),
    ] {
        gauge!(Metric::GovernanceDenials.name(), "reason" => reason).set(n as f64);
    }
    gauge!(Metric::RedisDown.name()).set(if g.state.redis_down { 1.0 } else { 0.0 });
    gauge!(Metric::RedisErrors.name()).set(g.state.redis_errors as f64);
    let l = state.runtime.ledger.stats();
    for (what, n) in [
        ("written", l.written),
        ("pending", l.pending),
        ("dropped", l.dropped),
        ("lost", l.lost),
    ] {
        gauge!(Metric::LedgerRecords.name(), "state" => what).set(n as f64);
    }
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}
