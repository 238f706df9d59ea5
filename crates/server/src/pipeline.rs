//! The chat request path shared by every front door: route, attempt with failover, answer.

use crate::egress::{IngressRequest, DEFAULT_MAX_TOKENS};
use crate::ingress::Caller;
use crate::observe::{Context, Outcome, RequestEnd, Served};
use crate::relay::Relay;
use crate::{ApiError, AppState, Snapshot};
use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::{Admission, Denied};
use switchyard_providers::{AttemptError, Operation, Timeouts};
use switchyard_router::Deployment;
use switchyard_router::{DataClass, Estimate, Plan, Preferences, RouteError, RouteRequest};
use switchyard_types::{ErrorKind, Money};
use tracing::Instrument;

/// Largest upstream answer buffered for a non-streaming call.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The header carrying per-request routing preferences.
pub(crate) const ROUTE_HEADER: &str = "x-switchyard-route";

/// The caller's routing preferences: the body's `switchyard` object, overridden by the
/// `x-switchyard-route` header. Invalid values are the client's 400.
pub(crate) fn preferences(
    headers: &HeaderMap,
    body_extension: Option<&str>,
) -> Result<Preferences, ApiError> {
    let invalid =
        |e: &dyn std::fmt::Display| ApiError::new(ErrorKind::InvalidRequest, e.to_string());
    let header = match headers.get(ROUTE_HEADER) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| invalid(&format!("{ROUTE_HEADER} is not text")))?;
            Preferences::parse_header(v).map_err(|e| invalid(&e))?
        }
        None => Preferences::default(),
    };
    let body = match body_extension {
        Some(raw) => {
            let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| invalid(&e))?;
            Preferences::from_json(&value).map_err(|e| invalid(&e))?
        }
        None => Preferences::default(),
    };
    Ok(body.overridden_by(header))
}

/// Plans the deployments for a request; when nothing is eligible, the error says why.
pub(crate) fn route(
    state: &AppState,
    snapshot: &Snapshot,
    model: &str,
    data_class: Option<&DataClass>,
    preferences: &Preferences,
    estimate: Estimate,
    stream: bool,
) -> Result<Plan, ApiError> {
    // A label without a policy in this config constrains nothing (managed keys default to
    // "internal"); say so, since a typo here would otherwise go unnoticed.
    let data_class = data_class.filter(|c| {
        let known = snapshot.catalog.policy().data_classes.contains_key(*c);
        if !known {
            tracing::debug!(
                data_class = c.as_str(),
                "data class has no policy in the config"
            );
        }
        known
    });
    let request = RouteRequest {
        model,
        data_class,
        preferences,
        estimate,
        stream,
    };
    snapshot
        .catalog
        .route(&state.health, &request, &mut rand::rng())
        .map_err(|e: RouteError| {
            let mut err = ApiError::new(e.kind(), e.to_string());
            err.retry_after = e.retry_after();
            err
        })
}

/// Reserves the request's worst-case cost against the caller's limits and budgets (managed
/// keys only), so concurrent requests cannot overshoot a budget.
pub(crate) async fn admit(
    state: &AppState,
    caller: &Caller,
    model: &str,
    plan: &Plan,
    estimate: Estimate,
) -> Result<Option<Admission>, ApiError> {
    let Some(principal) = caller.principal() else {
        return Ok(None);
    };
    // An upper bound: the whole estimate at the dearest deployment the plan might use.
    let cost = plan
        .candidates
        .iter()
        .map(|c| {
            c.deployment
                .prices
                .estimate(estimate.input_tokens, estimate.max_output_tokens)
        })
        .max()
        .unwrap_or(Money::ZERO);
    let ask = switchyard_governance::Estimate {
        input_tokens: estimate.input_tokens,
        max_output_tokens: estimate.max_output_tokens,
        cost,
    };
    state
        .runtime
        .governor
        .admit(principal, model, &ask)
        .await
        .map(Some)
        .map_err(|denied| {
            let mut err = ApiError::new(denied.error_kind(), denied.to_string());
            err.retry_after = denied.retry_after_secs().map(Duration::from_secs);
            if matches!(denied, Denied::OverBudget { .. }) {
                err.code = Some("insufficient_quota");
            }
            err
        })
}

/// Serves one decoded chat request.
pub(crate) async fn chat(
    state: &Arc<AppState>,
    snapshot: &Snapshot,
    request: IngressRequest,
    ctx: Context,
    caller: &Caller,
    preferences: &Preferences,
) -> Result<Response, ApiError> {
    let canonical = request.canonical();
    let stream = canonical.stream;
    let estimate = Estimate {
        input_tokens: ctx.input_estimate,
        max_output_tokens: u64::from(canonical.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    };
    let plan = route(
        state,
        snapshot,
        &ctx.model,
        caller.data_class.as_ref(),
        preferences,
        estimate,
        stream,
    )?;
    let admission = admit(state, caller, &ctx.model, &plan, estimate).await?;
    let request = Arc::new(request);
    let settings = &snapshot.settings;
    let budget = snapshot.catalog.policy().budget;
    let timeouts = Timeouts {
        // A non-streaming answer's headers come only when it is complete.
        first_byte: if stream {
            settings.timeouts.first_byte
        } else {
            settings.timeouts.total
        },
        total: settings.timeouts.total,
    };
    let stall = settings.timeouts.stall;
    let op = Operation::Chat { stream };
    let result = if stream {
        switchyard_router::execute(&plan, &state.health, &budget, |d| {
            let (state, request) = (state.clone(), request.clone());
            let span = attempt_span(&ctx, &d);
            traced(
                async move {
                    let body = request.upstream_body(&d)?;
                    let translator = request.translator(&d)?;
                    let sent = state
                        .upstream
                        .send(&d.provider, &d.endpoints, op, body, timeouts)
                        .await?;
                    Relay::open(sent, d.provider.clone(), translator, stall).await
                },
                span,
            )
        })
        .await
        .map(|s| {
            let served = Served {
                deployment: s.deployment,
                attempts: s.attempts,
            };
            let unpriced = snapshot.unpriced.contains(&served.deployment.id);
            let body =
                s.value
                    .into_stream(ctx.clone(), served.clone(), s.permit, admission, unpriced);
            let mut response = Response::new(Body::from_stream(body));
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            write_served_headers(&served, None, h);
            response
        })
    } else {
        switchyard_router::execute(&plan, &state.health, &budget, |d| {
            let (state, request) = (state.clone(), request.clone());
            let span = attempt_span(&ctx, &d);
            traced(
                async move {
                    let body = request.upstream_body(&d)?;
                    let sent = state
                        .upstream
                        .send(&d.provider, &d.endpoints, op, body, timeouts)
                        .await?;
                    let upstream = sent.body(&d.provider, MAX_RESPONSE_BYTES).await?;
                    request.client_body(&d, upstream)
                },
                span,
            )
        })
        .await
        .map(|s| {
            let (body, usage) = s.value;
            let spent = usage.unwrap_or_default();
            let cost = s.permit.settle(&spent).cost;
            let served = Served {
                deployment: s.deployment,
                attempts: s.attempts,
            };
            if let Some(admission) = admission {
                // Replaces the reservation with the real cost, on a tracked task.
                admission.settle_detached(spent, cost);
            }
            RequestEnd {
                ctx: &ctx,
                served: Some(&served),
                failed_attempts: &Vec::new(),
                usage,
                usage_estimated: false,
                ttft: None,
                outcome: Outcome::Ok,
                unpriced: snapshot.unpriced.contains(&served.deployment.id),
            }
            .emit();
            json_response(body, &served, Some(cost))
        })
    };
    result.map_err(|failed| {
        RequestEnd {
            ctx: &ctx,
            served: None,
            failed_attempts: &failed.attempts,
            usage: None,
            usage_estimated: false,
            ttft: None,
            outcome: Outcome::Failed(failed.error.kind),
            unpriced: false,
        }
        .emit();
        ApiError::from(failed.error)
    })
}

/// The span of one upstream attempt, a child of the request's (GenAI client span).
pub(crate) fn attempt_span(ctx: &Context, d: &Deployment) -> tracing::Span {
    tracing::info_span!(
        parent: &ctx.span,
        "attempt",
        otel.name = format!("chat {}", d.upstream_model),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = d.kind().as_str(),
        gen_ai.request.model = %d.upstream_model,
        switchyard.deployment = %d.id,
        switchyard.provider = %d.provider.id,
        switchyard.cloud = d.provider.cloud.as_str(),
        cloud.region = %d.provider.region,
        error.type = tracing::field::Empty,
    )
}

/// Runs an attempt inside its span, recording the error kind when it fails.
pub(crate) async fn traced<T>(
    attempt: impl std::future::Future<Output = Result<T, AttemptError>>,
    span: tracing::Span,
) -> Result<T, AttemptError> {
    let result = attempt.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("error.type", e.kind.as_str());
    }
    result
}

/// A JSON response with the transparency headers.
pub(crate) fn json_response(body: bytes::Bytes, served: &Served, cost: Option<Money>) -> Response {
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    write_served_headers(served, cost, h);
    response
}

/// Transparency headers: where the request ran, after how many attempts, at what cost.
pub(crate) fn write_served_headers(served: &Served, cost: Option<Money>, h: &mut HeaderMap) {
    let d = &served.deployment;
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-switchyard-deployment", &d.id);
    put("x-switchyard-provider", &d.provider.id);
    put("x-switchyard-cloud", d.provider.cloud.as_str());
    put("x-switchyard-region", &d.provider.region);
    put("x-switchyard-attempts", &served.attempts.len().to_string());
    if let Some(cost) = cost {
        put("x-switchyard-cost", &cost.to_string());
    }
}
