//! Listener, connection handling and the `/_sim/` control API.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::controls::{Faults, SimControls};
use crate::plumbing::SimCtx;
use crate::{protocols, SimError, SimOptions, SimSpec};

/// A simulated provider serving on its own port until shut down.
#[derive(Debug)]
pub struct RunningSim {
    spec: SimSpec,
    addr: SocketAddr,
    controls: SimControls,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningSim {
    /// Binds the listener, spawns the server and returns once it is accepting connections.
    pub async fn start(spec: SimSpec) -> Result<RunningSim, SimError> {
        Self::start_with(spec, SimOptions::default()).await
    }

    /// [`RunningSim::start`] with non-default options (another AWS secret key).
    pub async fn start_with(spec: SimSpec, options: SimOptions) -> Result<RunningSim, SimError> {
        let io_err = |source| SimError::Io {
            addr: spec.listen.to_string(),
            source,
        };
        let listener = TcpListener::bind(spec.listen).await.map_err(io_err)?;
        let addr = listener.local_addr().map_err(io_err)?;
        let controls = SimControls::default();
        let ctx = Arc::new(SimCtx::new(
            spec.name.clone(),
            spec.protocol,
            spec.api_key.clone(),
            controls.clone(),
            options.aws_secret_access_key,
        ));
        let app = protocols::router(ctx).merge(control_router(controls.clone()));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, app, stopped));
        Ok(RunningSim {
            spec,
            addr,
            controls,
            stop,
            task,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (the loopback address when bound to an unspecified address).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The spec this simulator was started with.
    pub fn spec(&self) -> &SimSpec {
        &self.spec
    }

    /// In-process fault control and counters (the same state as the HTTP control API).
    pub fn controls(&self) -> &SimControls {
        &self.controls
    }

    /// Stops accepting, closes every open connection and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Accepts connections until told to stop; dropping the `JoinSet` closes the open ones.
async fn serve(listener: TcpListener, app: Router, mut stopped: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Streams are written event by event: Nagle would hold the last small event.
                let _ = stream.set_nodelay(true);
                let svc = TowerToHyperService::new(app.clone());
                conns.spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "sim connection ended with an error");
                    }
                });
            }
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// The `/_sim/` control routes.
fn control_router(controls: SimControls) -> Router {
    Router::new()
        .route(
            "/_sim/faults",
            post(set_faults).delete(clear_faults).get(get_faults),
        )
        .route("/_sim/stats", get(stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .route(
            "/_sim/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .with_state(controls)
}

async fn set_faults(State(c): State<SimControls>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            c.set_faults(f.clone());
            Json(f).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn clear_faults(State(c): State<SimControls>) -> Json<Faults> {
    c.clear_faults();
    Json(c.faults())
}

async fn get_faults(State(c): State<SimControls>) -> Json<Faults> {
    Json(c.faults())
}

async fn stats(State(c): State<SimControls>) -> Response {
    Json(c.stats()).into_response()
}

async fn reset_stats(State(c): State<SimControls>) -> StatusCode {
    c.reset_stats();
    StatusCode::NO_CONTENT
}
