//! Front doors: one axum handler per endpoint. A handler only decodes its protocol's body;
//! everything else is the pipeline's.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use switchyard_types::ErrorKind;

pub(crate) mod anthropic;
pub(crate) mod openai;

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: a config is loaded and at least one model can be served.
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.snapshot();
    if snapshot.catalog.models().next().is_some() {
        (http::StatusCode::OK, "ready").into_response()
    } else {
        ApiError::new(ErrorKind::NoCapacity, "no models are configured").into_response()
    }
}

/// Unknown paths.
pub(crate) async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("Unknown request URL: {}", uri.path()),
    )
    .with_code("unknown_url")
}

/// Known paths with the wrong method.
pub(crate) async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Response {
    let mut response = ApiError::new(
        ErrorKind::InvalidRequest,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
    .into_response();
    *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    response
}
