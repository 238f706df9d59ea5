//! Prometheus metrics. Every metric name is a [`Metric`] variant, labels come only from the
//! config (model, deployment, provider, cloud, region) or closed enums (front door, outcome,
//! error kind), so cardinality is bounded and no key or user text can leak into a label.
//! Counters are recorded where a request ends (`observe`); gauges of state that lives
//! elsewhere (breakers, in-flight, governance and ledger counters) are read at scrape time.

use crate::request::{ClientProtocol, Outcome, RequestEnd};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram, Counter, Histogram, Label};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use switchyard_router::BreakerStatus;
use switchyard_router::{Catalog, Deployment};

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
    BreakerTrips,
    BreakerFailedProbes,
    BreakerNextProbe,
    GovernanceDenials,
    RedisDown,
    RedisErrors,
    LedgerRecords,
    StreamMalformedEvents,
    StreamRecoveries,
    ConnectionsRefused,
    Shed,
    OpenConnections,
    DurableUnconfirmed,
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
            Metric::BreakerTrips => "switchyard_breaker_trips_total",
            Metric::BreakerFailedProbes => "switchyard_breaker_failed_probes",
            Metric::BreakerNextProbe => "switchyard_breaker_next_probe_seconds",
            Metric::GovernanceDenials => "switchyard_governance_denials_total",
            Metric::RedisDown => "switchyard_state_redis_down",
            Metric::RedisErrors => "switchyard_state_redis_errors_total",
            Metric::LedgerRecords => "switchyard_ledger_records",
            Metric::StreamMalformedEvents => "switchyard_stream_malformed_events_total",
            Metric::StreamRecoveries => "switchyard_stream_recoveries_total",
            Metric::ConnectionsRefused => "switchyard_connections_refused_total",
            Metric::Shed => "switchyard_requests_shed_total",
            Metric::OpenConnections => "switchyard_open_connections",
            Metric::DurableUnconfirmed => "switchyard_ledger_durable_unconfirmed_total",
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

/// Counts a connection closed at once because `max_connections` were open.
pub(crate) fn connection_refused() {
    counter!(Metric::ConnectionsRefused.name()).increment(1);
}

/// Counts an open client connection while it lives.
pub(crate) struct OpenConnection;

impl OpenConnection {
    /// Counts one more open connection until dropped.
    pub(crate) fn new() -> OpenConnection {
        gauge!(Metric::OpenConnections.name()).increment(1.0);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!(Metric::OpenConnections.name()).decrement(1.0);
    }
}

/// Counts an answer sent before its record's commit was confirmed (durable mode).
pub(crate) fn durable_unconfirmed() {
    counter!(Metric::DurableUnconfirmed.name()).increment(1);
}

/// Counts a request shed because `max_in_flight` requests were being served.
pub(crate) fn shed(front_door: ClientProtocol) {
    counter!(Metric::Shed.name(), "front_door" => front_door.as_str()).increment(1);
}

/// Records an error response (refused before routing — auth, validation, limits, budgets,
/// nothing eligible — or failed upstream), by front door and error kind.
pub(crate) fn rejected(front_door: &'static str, kind: switchyard_types::ErrorKind) {
    counter!(Metric::Rejections.name(), "front_door" => front_door, "kind" => kind.as_str())
        .increment(1);
}

/// Counts unreadable events skipped in one request's stream (rare: the registry path).
pub(crate) fn malformed_events(model: &Arc<str>, deployment: &Arc<str>, n: u32) {
    counter!(Metric::StreamMalformedEvents.name(), "model" => model.to_string(), "deployment" => deployment.to_string())
        .increment(u64::from(n));
}

/// Counts an attempt to continue a broken stream elsewhere, by whether it was continued.
pub(crate) fn stream_recovery(model: &Arc<str>, continued: bool) {
    let outcome = if continued { "continued" } else { "failed" };
    counter!(Metric::StreamRecoveries.name(), "model" => model.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Metric handles resolved once per config version (per model, and per model × serving
/// deployment), so recording a request's end is a handful of atomic adds instead of a
/// registry lookup with label strings built per request. Combinations not resolved up front
/// (a fallback chain deeper than one level) take the registry path.
pub(crate) struct Meters {
    models: HashMap<Arc<str>, ModelMeters>,
}

impl std::fmt::Debug for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meters")
            .field("models", &self.models.len())
            .finish()
    }
}

/// One model's handles.
struct ModelMeters {
    /// Requests that ended `ok`, by front door in `ClientProtocol::ALL` order (the hot series).
    ok: [Counter; ClientProtocol::ALL.len()],
    failovers: Counter,
    served: HashMap<Arc<str>, ServedMeters>,
}

/// One (model, serving deployment) pair's handles.
struct ServedMeters {
    attempt_ok: Counter,
    duration: Histogram,
    ttft: Histogram,
    /// Input, output and cached input tokens.
    tokens: [Counter; 3],
    cost: Counter,
}

const TOKEN_TYPES: [&str; 3] = ["input", "output", "cached_input"];

fn served_labels(model: &str, d: &Deployment) -> Vec<Label> {
    vec![
        Label::new("model", model.to_string()),
        Label::new("deployment", d.id.to_string()),
        Label::new("provider", d.provider.id.to_string()),
        Label::new("cloud", d.provider.cloud.as_str()),
        Label::new("region", d.provider.region.to_string()),
    ]
}

impl ServedMeters {
    fn new(model: &str, d: &Deployment) -> ServedMeters {
        let labels = served_labels(model, d);
        let token = |kind: &'static str| {
            let mut l = labels.clone();
            l.push(Label::new("type", kind));
            counter!(Metric::Tokens.name(), l)
        };
        ServedMeters {
            attempt_ok: counter!(Metric::Attempts.name(), "deployment" => d.id.to_string(), "provider" => d.provider.id.to_string(), "result" => "ok"),
            duration: histogram!(Metric::RequestDuration.name(), labels.clone()),
            ttft: histogram!(Metric::TimeToFirstToken.name(), labels.clone()),
            tokens: TOKEN_TYPES.map(token),
            cost: counter!(Metric::CostNanoUsd.name(), labels),
        }
    }
}

impl Meters {
    /// Resolves the handles of every model and the deployments that may serve it (its own
    /// and its fallback models'). Installs the process's recorder first, so the handles are
    /// live.
    pub fn new(catalog: &Catalog) -> Meters {
        handle();
        let mut models = HashMap::new();
        for model in catalog.models() {
            let name = &model.name;
            let mut served = HashMap::new();
            let fallbacks = model.fallbacks.iter().filter_map(|f| catalog.model(f));
            for d in model
                .deployments
                .iter()
                .chain(fallbacks.flat_map(|f| f.deployments.iter()))
            {
                served
                    .entry(d.id.clone())
                    .or_insert_with(|| ServedMeters::new(name, d));
            }
            let ok = ClientProtocol::ALL.map(|f| {
                counter!(Metric::Requests.name(), "model" => name.to_string(), "front_door" => f.as_str(), "outcome" => "ok")
            });
            models.insert(
                name.clone(),
                ModelMeters {
                    ok,
                    failovers: counter!(Metric::Failovers.name(), "model" => name.to_string()),
                    served,
                },
            );
        }
        Meters { models }
    }

    /// Records a finished request. Only configured model names become labels: a request
    /// that never resolved its model counts in the error-response metric alone.
    pub fn record(&self, end: &RequestEnd<'_>) {
        let ctx = end.ctx;
        if !ctx.model_known {
            return;
        }
        let model = self.models.get(&*ctx.model);
        let door = ClientProtocol::ALL.iter().position(|p| *p == ctx.dialect);
        match (model, end.outcome, door) {
            (Some(m), Outcome::Ok, Some(i)) => m.ok[i].increment(1),
            _ => counter!(Metric::Requests.name(), "model" => ctx.model.to_string(), "front_door" => ctx.dialect.as_str(), "outcome" => end.outcome.as_str()).increment(1),
        }
        let attempts = end.attempts();
        // The serving deployment and its resolved handles.
        let served = end.served.and_then(|s| {
            let id = &s.deployment.id;
            Some((id, model?.served.get(&**id)?))
        });
        for a in attempts {
            match served {
                Some((id, s)) if a.error.is_none() && a.deployment == *id => {
                    s.attempt_ok.increment(1)
                }
                _ => {
                    let result = a.error.map_or("ok", |k| k.as_str());
                    counter!(Metric::Attempts.name(), "deployment" => a.deployment.to_string(), "provider" => a.provider.to_string(), "result" => result).increment(1);
                }
            }
        }
        if attempts.len() > 1 {
            let n = attempts.len() as u64 - 1;
            match model {
                Some(m) => m.failovers.increment(n),
                None => counter!(Metric::Failovers.name(), "model" => ctx.model.to_string())
                    .increment(n),
            }
        }
        let Some(s) = end.served else {
            return;
        };
        let slow;
        let meters = match served {
            Some((_, m)) => m,
            None => {
                slow = ServedMeters::new(&ctx.model, &s.deployment);
                &slow
            }
        };
        meters.duration.record(ctx.started.elapsed().as_secs_f64());
        if let Some(ttft) = end.ttft {
            meters.ttft.record(ttft.as_secs_f64());
        }
        if let Some(u) = end.usage {
            for (counter, n) in meters
                .tokens
                .iter()
                .zip([u.input, u.output, u.cached_input])
            {
                counter.increment(n);
            }
            if end.outcome == Outcome::Ok || end.usage_estimated {
                meters
                    .cost
                    .increment(u64::try_from(end.cost.nanos()).unwrap_or(0));
            }
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
            let (breaker, next_probe) = match view.breaker {
                BreakerStatus::Closed => (0.0, 0.0),
                BreakerStatus::HalfOpen { .. } => (1.0, 0.0),
                BreakerStatus::Open { until, .. } => {
                    (2.0, until.saturating_duration_since(now).as_secs_f64())
                }
            };
            gauge!(Metric::BreakerOpen.name(), &labels).set(breaker);
            gauge!(Metric::BreakerNextProbe.name(), &labels).set(next_probe);
            gauge!(Metric::BreakerFailedProbes.name(), &labels).set(f64::from(view.failed_probes));
            // Health keeps the count (across reloads); the scrape publishes it.
            counter!(Metric::BreakerTrips.name(), &labels).absolute(view.trips);
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
