//! The web dashboard and the admin API's read side that feeds it:
//!
//! - `GET /admin/overview` (admin token): totals, timeline, breakdowns, per-deployment latency,
//!   errors, failovers and breaker state, and the concentration view of a recent ledger window
//!   ([`overview::build`]);
//! - `GET /admin/dashboard` (+ `app.js`, `app.css`): one self-contained page, embedded in the
//!   binary, that asks for the admin token and draws the admin API's JSON as charts;
//! - `GET /admin/openapi.json`: the OpenAPI 3.1 document of every `/admin` route.
//!
//! The page and the document carry no data, so they need no token; like the rest of `/admin`
//! they are off (404) when no admin token is configured.

use crate::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use switchyard_ledger::{LedgerRecord, TimeRange};
use switchyard_router::BreakerStatus;
use switchyard_types::ErrorKind;

pub(crate) mod overview;

use overview::{BreakerState, CatalogDeployment, CatalogModel, CatalogView, Filter, HealthView};

/// Records read per page from the ledger.
const PAGE: u32 = 5_000;
/// Records an overview reads at most; past that it says `truncated`.
const MAX_RECORDS: usize = 200_000;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const OPENAPI_JSON: &str = include_str!("openapi.json");

/// The dashboard routes, merged into the admin routes (nested under `/admin`).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/overview", get(overview_handler))
        .route("/dashboard", get(page))
        .route("/dashboard/app.js", get(script))
        .route("/dashboard/app.css", get(style))
        .route("/openapi.json", get(openapi))
}

/// The page and the document need no token, but exist only when the admin API is on.
fn admin_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.runtime.admin_token_hash.is_some() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::NotFound,
            "the admin API is off: set [admin] token_env in the config",
        ))
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn page(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    admin_enabled(&state)?;
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    let h = response.headers_mut();
    // Everything is same-origin and embedded: no CDN, no inline script, no framing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; \
             style-src-attr 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

async fn script(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    admin_enabled(&state)?;
    Ok(asset("text/javascript; charset=utf-8", APP_JS))
}

async fn style(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    admin_enabled(&state)?;
    Ok(asset("text/css; charset=utf-8", APP_CSS))
}

async fn openapi(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    admin_enabled(&state)?;
    Ok(asset("application/json", OPENAPI_JSON))
}

#[derive(Deserialize, Default)]
struct OverviewQuery {
    window: Option<String>,
    until: Option<String>,
    cloud: Option<String>,
    provider: Option<String>,
    region: Option<String>,
    model: Option<String>,
    team: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// `until`: Unix milliseconds or RFC 3339 / `YYYY-MM-DD`.
fn parse_until(s: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    let parsed = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<i64>().ok()
    } else {
        switchyard_ledger::time::parse_time(s).ok()
    };
    parsed
        .filter(|ms| (0..=253_402_300_799_999).contains(ms))
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::InvalidRequest,
                format!("until '{s}': expected Unix milliseconds or an RFC 3339 time"),
            )
        })
}

/// `GET /admin/overview?window=15m&until=…&cloud=&provider=&region=&model=&team=`
async fn overview_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, ApiError> {
    crate::runtime::authorize(&state, &headers)?;
    let bad = |m: String| ApiError::new(ErrorKind::InvalidRequest, m);
    let secs = overview::parse_window(q.window.as_deref().unwrap_or("15m")).map_err(bad)?;
    let until_ms = match non_empty(q.until) {
        Some(u) => parse_until(&u)?,
        None => switchyard_ledger::now_ms(),
    };
    let window = overview::Window::ending_at(until_ms, secs);
    let filter = Filter {
        cloud: non_empty(q.cloud),
        provider: non_empty(q.provider),
        region: non_empty(q.region),
        model: non_empty(q.model),
        team: non_empty(q.team),
    };

    let (records, truncated) = read_window(&state, window).await?;
    let snapshot = state.snapshot();
    let mut deployments = HashMap::new();
    let catalog = CatalogView {
        models: snapshot
            .catalog
            .models()
            .map(|m| CatalogModel {
                name: m.name.to_string(),
                deployments: m
                    .deployments
                    .iter()
                    .map(|d| {
                        deployments.insert(d.id.to_string(), d.clone());
                        CatalogDeployment {
                            id: d.id.to_string(),
                            provider: d.provider.id.to_string(),
                            cloud: d.provider.cloud.as_str().to_owned(),
                            region: d.provider.region.to_string(),
                        }
                    })
                    .collect(),
                fallbacks: m.fallbacks.iter().map(|f| f.to_string()).collect(),
            })
            .collect(),
    };
    let now = tokio::time::Instant::now();
    let health = |id: &str| -> HealthView {
        let Some(d) = deployments.get(id) else {
            return HealthView::default();
        };
        let v = state.health.view(d, now);
        let (breaker, reason) = match v.breaker {
            BreakerStatus::Closed => (BreakerState::Closed, None),
            BreakerStatus::Open { reason, .. } => (BreakerState::Open, Some(reason.to_string())),
            BreakerStatus::HalfOpen { reason, .. } => {
                (BreakerState::HalfOpen, Some(reason.to_string()))
            }
        };
        HealthView {
            breaker,
            reason,
            cooling_down: v.cooling_until.is_some(),
            in_flight: v.in_flight,
            trips: v.trips,
            failed_probes: v.failed_probes,
            next_probe_ms: match v.breaker {
                BreakerStatus::Open { until, .. } => Some(
                    u64::try_from(until.saturating_duration_since(now).as_millis())
                        .unwrap_or(u64::MAX),
                ),
                _ => None,
            },
        }
    };
    // Team names are only a convenience for the filter select: a key store error is not fatal.
    let teams: Vec<String> = match state.runtime.key_store.list_teams().await {
        Ok(teams) => teams.into_iter().map(|t| t.name).collect(),
        Err(_) => Vec::new(),
    };
    let body = overview::build(
        &records, window, &filter, &catalog, &health, &teams, truncated,
    );
    Ok(Json(body).into_response())
}

/// The window's records by sequence: all of them, or, past [`MAX_RECORDS`], the newest
/// [`MAX_RECORDS`] (then `true`), so a busy long window still shows its recent end.
async fn read_window(
    state: &AppState,
    window: overview::Window,
) -> Result<(Vec<LedgerRecord>, bool), ApiError> {
    let store = state.runtime.ledger_store.as_ref();
    let unavailable =
        |e: switchyard_ledger::LedgerError| ApiError::new(ErrorKind::NoCapacity, e.to_string());
    let range = TimeRange {
        since_ms: window.since_ms,
        until_ms: window.until_ms,
    };
    // Sequence numbers grow with time (records are appended as requests end), so starting
    // MAX_RECORDS before the head keeps the newest ones.
    let head = store.head().await.map_err(unavailable)?;
    let mut after = (head.seq.max(head.max_seq) - MAX_RECORDS as i64).max(0);
    let truncated = after > 0
        && store
            .records_in_time(range, 0, 1)
            .await
            .map_err(unavailable)?
            .first()
            .is_some_and(|r| r.seq <= after);
    let mut records = Vec::new();
    loop {
        let page = store
            .records_in_time(range, after, PAGE)
            .await
            .map_err(unavailable)?;
        let full = page.len() == PAGE as usize;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        records.extend(page.into_iter().map(|s| s.record));
        if !full || records.len() >= MAX_RECORDS {
            return Ok((records, truncated));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn until_accepts_milliseconds_and_rfc3339() {
        assert_eq!(parse_until("1800000000000").unwrap(), 1_800_000_000_000);
        assert_eq!(
            parse_until("2027-01-15T08:00:00Z").unwrap(),
            1_800_000_000_000
        );
        assert!(parse_until("yesterday").is_err());
        assert!(parse_until("99999999999999999999").is_err());
    }

    #[test]
    fn the_openapi_document_is_json_and_lists_every_admin_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for (path, methods) in [
            ("/admin/keys", &["get", "post"][..]),
            ("/admin/keys/{id}/rotate", &["post"]),
            ("/admin/keys/{id}/revoke", &["post"]),
            ("/admin/teams", &["get", "post"]),
            ("/admin/spend", &["get"]),
            ("/admin/budgets", &["get"]),
            ("/admin/concentration", &["get"]),
            ("/admin/whatif", &["get"]),
            ("/admin/focus", &["get"]),
            ("/admin/slo", &["get"]),
            ("/admin/drill", &["get"]),
            ("/admin/overview", &["get"]),
            ("/admin/dashboard", &["get"]),
            ("/admin/openapi.json", &["get"]),
        ] {
            for m in methods {
                assert!(paths[path][m].is_object(), "{m} {path} is not documented");
            }
        }
    }

    #[test]
    fn the_page_loads_only_embedded_assets() {
        assert!(INDEX_HTML.contains("/admin/dashboard/app.js"));
        assert!(INDEX_HTML.contains("/admin/dashboard/app.css"));
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
