//! The chat request path shared by every front door: plan, attempt with failover, answer.

use crate::egress::IngressRequest;
use crate::observe::{Context, Outcome, RequestEnd, Served};
use crate::relay::Relay;
use crate::{ApiError, AppState, Snapshot};
use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use switchyard_providers::{Operation, Timeouts};
use switchyard_router::Model;

/// Largest upstream answer buffered for a non-streaming call.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Serves one decoded chat request on `model`.
pub(crate) async fn chat(
    state: &Arc<AppState>,
    snapshot: &Snapshot,
    model: &Model,
    request: IngressRequest,
    ctx: Context,
) -> Result<Response, ApiError> {
    let request = Arc::new(request);
    let plan = snapshot.catalog.plan(model, &state.health);
    let settings = &snapshot.settings;
    let stream = request.canonical().stream;
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
        switchyard_router::run(&plan, &state.health, settings.max_attempts, |d| {
            let (state, request) = (state.clone(), request.clone());
            async move {
                let body = request.upstream_body(&d)?;
                let translator = request.translator(&d)?;
                let sent = state
                    .upstream
                    .send(&d.provider, op, &d.upstream_model, body, timeouts)
                    .await?;
                Relay::open(sent, d.provider.clone(), translator, stall).await
            }
        })
        .await
        .map(|(relay, deployment, attempts)| {
            let served = Served {
                deployment,
                attempts,
            };
            let mut response = Response::new(Body::from_stream(
                relay.into_stream(ctx.clone(), served.clone()),
            ));
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            write_served_headers(&served, h);
            response
        })
    } else {
        switchyard_router::run(&plan, &state.health, settings.max_attempts, |d| {
            let (state, request) = (state.clone(), request.clone());
            async move {
                let body = request.upstream_body(&d)?;
                let sent = state
                    .upstream
                    .send(&d.provider, op, &d.upstream_model, body, timeouts)
                    .await?;
                let upstream = sent.body(&d.provider, MAX_RESPONSE_BYTES).await?;
                request.client_body(&d, upstream)
            }
        })
        .await
        .map(|((body, usage), deployment, attempts)| {
            let served = Served {
                deployment,
                attempts,
            };
            RequestEnd {
                ctx: &ctx,
                served: Some(&served),
                failed_attempts: &Vec::new(),
                usage,
                usage_estimated: false,
                ttft: None,
                outcome: Outcome::Ok,
            }
            .emit();
            json_response(body, &served)
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
        }
        .emit();
        ApiError::from(failed.error)
    })
}

/// A JSON response with the transparency headers.
pub(crate) fn json_response(body: bytes::Bytes, served: &Served) -> Response {
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    write_served_headers(served, h);
    response
}

/// Transparency headers: where the request ran and how many attempts it took.
pub(crate) fn write_served_headers(served: &Served, h: &mut HeaderMap) {
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
}
