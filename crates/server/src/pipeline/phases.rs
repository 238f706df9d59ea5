//! The phases of the request path, each a small function: authenticate, read the body,
//! resolve the model, read the caller's preferences, route, admit, bound the attempts, and
//! answer (with the transparency headers) or render the error.

use super::{Answer, Ask};
use crate::error::ApiError;
use crate::observe::Pending;
use crate::relay::{Forwarding, Recovery};
use crate::request::{Api, Caller, ClientProtocol, Context, Served, Who, REQUEST_ID};
use crate::{AppState, Snapshot};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;
use switchyard_governance::{Admission, Denied, KeyStore};
use switchyard_providers::AttemptError;
use switchyard_router::{
    DataClass, Deployment, Model, Plan, Preferences, RouteError, RouteRequest,
};
use switchyard_types::{ErrorKind, Money};
use tracing::Instrument;

/// The header carrying per-request routing preferences.
pub(crate) const ROUTE_HEADER: &str = "x-switchyard-route";

/// The span of one request: its id for every log line inside it and, when traces are
/// exported, the GenAI attributes recorded when it ends (OpenTelemetry semantic conventions).
/// Without an exporter the span carries the id alone, so it costs the log layer one field.
pub(crate) fn request_span(id: &HeaderValue, api: Api) -> tracing::Span {
    let request_id = id.to_str().unwrap_or_default();
    if !crate::telemetry::traces_enabled() {
        return tracing::info_span!("request", request_id);
    }
    tracing::info_span!(
        "request",
        request_id,
        otel.name = api.as_str(),
        otel.kind = "server",
        gen_ai.operation.name = api.as_str(),
        gen_ai.request.model = tracing::field::Empty,
        gen_ai.provider.name = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        switchyard.deployment = tracing::field::Empty,
        switchyard.attempts = tracing::field::Empty,
        switchyard.outcome = tracing::field::Empty,
    )
}

/// The secret the client presented: `x-api-key` (the Anthropic SDK's classic header) or
/// `Authorization: Bearer`; both front doors accept both.
fn presented_secret(headers: &HeaderMap) -> Result<&str, ApiError> {
    if let Some(key) = headers.get("x-api-key") {
        return Ok(key.to_str().unwrap_or_default().trim());
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorKind::Authentication,
            "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'.",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Authentication,
                "The Authorization header must be 'Bearer <key>'.",
            )
            .with_code("invalid_api_key")
        })
}

/// Authenticate: config keys first, then managed keys.
pub(crate) async fn authenticate(
    state: &AppState,
    snapshot: &Snapshot,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let secret = presented_secret(headers)?;
    if let Some(key) = snapshot.key(secret) {
        return Ok(Caller {
            key_id: key.name.clone(),
            key_name: key.name.clone(),
            team: None,
            data_class: key.data_class.clone(),
            who: Who::Config(key.clone()),
        });
    }
    let principal = state.runtime.keys.authenticate(secret).await.map_err(|e| {
        tracing::error!(error = %e, "the keys database cannot be read");
        ApiError::new(
            ErrorKind::NoCapacity,
            "Keys cannot be checked right now; retry shortly.",
        )
    })?;
    let Some(p) = principal else {
        return Err(
            ApiError::new(ErrorKind::Authentication, "Incorrect API key provided.")
                .with_code("invalid_api_key"),
        );
    };
    let data_class = match p.data_class.as_str() {
        "" => None,
        label => DataClass::new(label).ok(),
    };
    Ok(Caller {
        key_id: p.key_id.as_str().into(),
        key_name: p.key_name.as_str().into(),
        team: Some(p.team.as_str().into()),
        data_class,
        who: Who::Managed(Box::new(p)),
    })
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("The request body is larger than this gateway's limit of {limit} bytes."),
        )
        .with_code("request_too_large")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) if caused_by::<crate::listener::BodyTimeout>(e.as_ref()) => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "The request body did not arrive in time.",
        )
        .with_code("request_timeout")),
        Err(e) => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Could not read the request body: {e}"),
        )),
    }
}

/// Whether `e` or an error it wraps (axum and the length limit box their sources) is an `E`.
fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(|e| e.is::<E>())
}

/// The model `name`, if it exists and the caller may use it.
pub(crate) fn resolve_model<'a>(
    snapshot: &'a Snapshot,
    caller: &Caller,
    name: &str,
) -> Result<&'a Model, ApiError> {
    let not_found = || {
        let mut e = ApiError::new(
            ErrorKind::NotFound,
            format!("The model '{name}' does not exist or you do not have access to it."),
        )
        .with_code("model_not_found");
        e.param = Some("model".into());
        e
    };
    let model = snapshot.catalog.model(name).ok_or_else(not_found)?;
    if caller.allows(name) {
        Ok(model)
    } else {
        // Same answer as an unknown model, so keys cannot probe what exists.
        Err(not_found())
    }
}

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

/// Route: plans the deployments for a request; when nothing is eligible, the error says why.
pub(crate) fn route(
    state: &AppState,
    snapshot: &Snapshot,
    model: &str,
    caller: &Caller,
    preferences: &Preferences,
    ask: &Ask<'_>,
) -> Result<Plan, ApiError> {
    // A label without a policy in this config constrains nothing (managed keys default to
    // "internal"); say so, since a typo here would otherwise go unnoticed.
    let data_class = caller.data_class.as_ref().filter(|c| {
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
        estimate: ask.estimate,
        stream: ask.stream,
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

/// Admit: reserves the request's worst-case cost against the caller's limits and budgets
/// (managed keys only), so concurrent requests cannot overshoot a budget.
pub(crate) async fn admit(
    state: &AppState,
    caller: &Caller,
    model: &str,
    plan: &Plan,
    ask: &Ask<'_>,
) -> Result<Option<Admission>, ApiError> {
    let Some(principal) = caller.principal() else {
        return Ok(None);
    };
    let estimate = ask.estimate;
    // An upper bound of what any deployment the plan might use can charge: the input, and per
    // answer the client's output cap, or else the cap the protocol always sends, or else all
    // the deployment can produce.
    let worst = |d: &Deployment| {
        let cap = ask
            .output_cap
            .or_else(|| crate::egress::default_output_cap(d).map(u64::from));
        let per_answer = cap.map_or(d.max_output_tokens, |c| c.min(d.max_output_tokens));
        per_answer.saturating_mul(ask.choices)
    };
    let (cost, max_output_tokens) = plan
        .candidates
        .iter()
        .map(|c| {
            let output = worst(&c.deployment);
            let cost = c.deployment.prices.estimate(estimate.input_tokens, output);
            (cost, output)
        })
        .fold((Money::ZERO, 0), |(c, o), (cost, output)| {
            (c.max(cost), o.max(output))
        });
    let ask = switchyard_governance::Estimate {
        input_tokens: estimate.input_tokens,
        max_output_tokens,
        cost: if ask.free { Money::ZERO } else { cost },
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
                err.code = Some("insufficient_quota".into());
            }
            err
        })
}

/// The span of one upstream attempt, a child of the request's (GenAI client span); none
/// unless traces are exported.
pub(crate) fn attempt_span(ctx: &Context, d: &Deployment) -> tracing::Span {
    if !crate::telemetry::traces_enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        parent: &ctx.span,
        "attempt",
        otel.name = format!("{} {}", ctx.api.as_str(), d.upstream_model),
        otel.kind = "client",
        gen_ai.operation.name = ctx.api.as_str(),
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

/// Answer: the client's response from the winning attempt. A complete answer settles the
/// capacity and the budget with the real usage and pays the record now; a stream takes the
/// record, the permit and the reservation with it and pays when it ends.
pub(crate) fn respond(
    served: switchyard_router::Served<Answer>,
    admission: Option<Admission>,
    pending: &mut Pending,
    snapshot: &Snapshot,
    recovery: Option<Recovery>,
) -> Response {
    let unpriced = snapshot.unpriced.contains(&served.deployment.id);
    let record = Served {
        deployment: served.deployment,
        attempts: served.attempts,
    };
    match served.value {
        Answer::Complete { body, usage } => {
            let spent = usage.unwrap_or_default();
            let cost = served.permit.settle(&spent).cost;
            if let Some(admission) = admission {
                // Replaces the reservation with the real cost, on a tracked task.
                admission.settle_detached(spent, cost);
            }
            let durable = pending.answered(&record, usage, cost, unpriced);
            let length = HeaderValue::from(body.len());
            let body = match durable {
                None => Body::from(body),
                // Durable mode: the answer's bytes go out once its record is committed, so
                // a client never holds an answer the ledger could still lose.
                Some(d) => {
                    let id = pending.ctx.request_id.clone();
                    Body::from_stream(futures_util::stream::once(async move {
                        crate::observe::kept(Some(d), &id).await;
                        Ok::<_, std::convert::Infallible>(body)
                    }))
                }
            };
            let mut response = Response::new(body);
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CONTENT_LENGTH, length);
            write_served_headers(&record, Some(cost), h);
            response
        }
        Answer::Stream(relay) => {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Written before the relay takes the record along.
            write_served_headers(&record, None, &mut h);
            let (ctx, meters) = pending.hand_over();
            let forwarding = Forwarding::new(
                ctx,
                meters,
                record,
                served.permit,
                admission,
                unpriced,
                recovery,
            );
            let mut response = Response::new(Body::from_stream(relay.into_stream(forwarding)));
            *response.headers_mut() = h;
            response
        }
    }
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

/// Renders an error in the client's protocol and stamps the request id.
pub(crate) fn finish(
    result: Result<Response, ApiError>,
    id: HeaderValue,
    dialect: ClientProtocol,
) -> Response {
    let mut response = result.unwrap_or_else(|e| {
        crate::metrics::rejected(dialect.as_str(), e.kind);
        e.render(dialect)
    });
    if dialect == ClientProtocol::AnthropicMessages {
        response
            .headers_mut()
            .insert(HeaderName::from_static("request-id"), id.clone());
    }
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}
