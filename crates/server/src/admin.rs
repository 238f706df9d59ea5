//! The admin API: managed keys and teams, spend and budget reports. Behind its own token
//! (`[admin] token_env`); off when no token is configured. JSON in, JSON out.

use crate::runtime::authorize;
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::{budget_report, GovernanceError, KeySpec, KeyStore, TeamSpec};
use switchyard_ledger::{SpendBy, TimeRange};
use switchyard_types::ErrorKind;

/// The admin routes, to be nested under `/admin`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}/rotate", post(rotate_key))
        .route("/keys/{id}/revoke", post(revoke_key))
        .route("/teams", get(list_teams).post(create_team))
        .route("/spend", get(spend))
        .route("/budgets", get(budgets))
        .route("/route/explain", get(explain))
        .route("/drill", get(drill))
        .merge(crate::dashboard::routes())
        .merge(crate::escape::routes())
}

fn governance_error(e: GovernanceError) -> ApiError {
    let kind = match &e {
        GovernanceError::Invalid(_) => ErrorKind::InvalidRequest,
        GovernanceError::NotFound(_) => ErrorKind::NotFound,
        GovernanceError::Conflict(_) => ErrorKind::InvalidRequest,
        GovernanceError::Corrupt(_) => ErrorKind::Internal,
        _ => ErrorKind::NoCapacity,
    };
    ApiError::new(kind, e.to_string())
}

async fn list_keys(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let keys = state
        .runtime
        .key_store
        .list_keys(None)
        .await
        .map_err(governance_error)?;
    Ok(Json(json!({ "data": keys })).into_response())
}

async fn create_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(spec): Json<KeySpec>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let issued = state
        .runtime
        .key_store
        .create_key(&spec)
        .await
        .map_err(governance_error)?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

#[derive(Deserialize, Default)]
struct RotateBody {
    #[serde(default)]
    grace_secs: u64,
}

async fn rotate_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<RotateBody>>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let grace = Duration::from_secs(body.map(|b| b.grace_secs).unwrap_or_default());
    // Through the cache, like revocation: without a grace period the old secret stops
    // working in this process at once.
    let issued = state
        .runtime
        .keys
        .rotate_key(&id, grace)
        .await
        .map_err(governance_error)?;
    Ok(Json(issued).into_response())
}

async fn revoke_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    // Through the cache, which forgets the key at once: this process stops accepting it now,
    // the others within their cache's TTL.
    let info = state
        .runtime
        .keys
        .revoke_key(&id)
        .await
        .map_err(governance_error)?;
    Ok(Json(info).into_response())
}

async fn list_teams(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let teams = state
        .runtime
        .key_store
        .list_teams()
        .await
        .map_err(governance_error)?;
    Ok(Json(json!({ "data": teams })).into_response())
}

async fn create_team(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(spec): Json<TeamSpec>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let team = state
        .runtime
        .key_store
        .create_team(&spec)
        .await
        .map_err(governance_error)?;
    Ok((StatusCode::CREATED, Json(team)).into_response())
}

#[derive(Deserialize)]
struct SpendQuery {
    by: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// `GET /admin/spend?by=cloud&since=2026-11-01&until=…`
async fn spend(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SpendQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let by_name = q.by.as_deref().unwrap_or("cloud");
    let Some(by) = SpendBy::ALL.into_iter().find(|b| b.as_str() == by_name) else {
        let known: Vec<&str> = SpendBy::ALL.iter().map(|b| b.as_str()).collect();
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!(
                "unknown grouping '{by_name}'; use one of {}",
                known.join(", ")
            ),
        ));
    };
    let range: TimeRange =
        switchyard_ledger::cli::time_range(q.since.as_deref(), q.until.as_deref())
            .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.to_string()))?;
    let report =
        switchyard_ledger::cli::spend_report(state.runtime.ledger_store.as_ref(), by, range)
            .await
            .map_err(|e| ApiError::new(ErrorKind::NoCapacity, e.to_string()))?;
    let body = report.render(switchyard_ledger::report::Format::Json);
    Ok(([(http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /admin/drill?down=cloud=aws&down=region=eastus&since=…&until=…`: the window's
/// requests replayed offline through the live routing with those down.
async fn drill(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let bad = |e: &dyn std::fmt::Display| ApiError::new(ErrorKind::InvalidRequest, e.to_string());
    let snapshot = state.snapshot();
    let (mut down, mut since, mut until, mut detail) = (Vec::new(), None, None, false);
    for (k, v) in &q {
        match k.as_str() {
            "detail" => detail = v == "true",
            "down" => down.push(crate::drill::parse_down(v, &snapshot).map_err(|e| bad(&e))?),
            "since" => since = Some(v.as_str()),
            "until" => until = Some(v.as_str()),
            other => {
                return Err(bad(&format!(
                    "unknown parameter '{other}': use down, since, until"
                )))
            }
        }
    }
    let range = switchyard_ledger::escape::window(since, until, switchyard_ledger::now_ms())
        .map_err(|e| bad(&e))?;
    let (requests, latency) = crate::drill::from_ledger(state.runtime.ledger_store.as_ref(), range)
        .await
        .map_err(|e| ApiError::new(ErrorKind::NoCapacity, e.to_string()))?;
    let report =
        switchyard_router::drill::drill(&snapshot.catalog, &requests, &down, &latency, detail);
    Ok(Json(json!({ "data": report })).into_response())
}

/// `GET /admin/budgets`: each team's and key's budget use in the current periods.
async fn budgets(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let rows = budget_report(
        state.runtime.key_store.as_ref(),
        state.runtime.state.as_ref(),
        switchyard_ledger::now_ms(),
    )
    .await
    .map_err(governance_error)?;
    Ok(Json(json!({ "data": rows })).into_response())
}

/// `GET /admin/route/explain?model=…&key=…&header=…`: the live config and health's view of a
/// hypothetical request (what `switchyard route explain --gateway` prints).
async fn explain(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<crate::explain::ExplainQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let text = q
        .explain(&state.snapshot(), &state.health)
        .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.to_string()))?;
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response())
}
