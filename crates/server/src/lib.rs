//! Everything that faces the client: the HTTP ingress, config loading and live reload, and
//! `switchyard demo`.
//!
//! The request path (see ARCHITECTURE.md): `ingress` decodes a front door's body and hands
//! it to `pipeline::run`, which runs the phases — authenticate, decode, route, admit, the
//! attempt loop, answer, record — for every endpoint in `endpoints`. `egress` builds each
//! attempt's body and reads its answer, `relay` streams, `observe` records how every
//! request ended (logs, metrics, ledger) and `request` holds the vocabulary they share.

use arc_swap::ArcSwap;
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use switchyard_providers::{PoolSettings, Upstream};
use switchyard_router::Health;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod admin;
pub mod config;
mod dashboard;
pub mod demo;
pub mod drill;
mod egress;
mod endpoints;
mod error;
pub mod escape;
pub mod explain;
mod ingress;
mod listener;
mod logs;
mod metrics;
mod observe;
mod pipeline;
mod relay;
mod reload;
mod request;
mod runtime;
pub mod telemetry;

pub use config::{compile, Problem, Severity, Snapshot};
pub use error::ApiError;
use runtime::Runtime;

/// State shared by every request.
pub struct AppState {
    snapshot: ArcSwap<Snapshot>,
    upstream: Upstream,
    health: Health,
    runtime: Runtime,
}

impl AppState {
    /// The config version serving new requests now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the config for new requests; requests in flight keep the version they began with.
    pub fn replace(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }
}

/// Errors that stop the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config has errors.
    #[error("config {path} has errors:\n{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Everything wrong with it.
        problems: Vec<Problem>,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("{0}")]
    Client(String),
    /// The server failed while running.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// A gateway ready to serve: its state and its HTTP routes.
pub struct Gateway {
    state: Arc<AppState>,
}

impl Gateway {
    /// Builds a gateway around a compiled config, opening its keys, state and ledger
    /// (relative SQLite paths resolve against `base`, the config file's folder).
    pub async fn open(
        snapshot: Snapshot,
        base: Option<&std::path::Path>,
    ) -> Result<Gateway, StartError> {
        let upstream = Upstream::new(PoolSettings {
            connect_timeout: snapshot.settings.timeouts.connect,
            ..PoolSettings::default()
        })
        .map_err(|e| StartError::Client(e.message))?;
        let runtime = Runtime::open(&snapshot.settings.runtime, base).await?;
        Ok(Gateway {
            state: Arc::new(AppState {
                snapshot: ArcSwap::from_pointee(snapshot),
                upstream,
                health: Health::default(),
                runtime,
            }),
        })
    }

    /// The shared state (for reloads and the demo).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The HTTP routes, the admin API included.
    pub fn router(&self) -> Router {
        self.routes(true)
    }

    /// The data plane's routes, with or without the admin API under `/admin`.
    fn routes(&self, with_admin: bool) -> Router {
        let mut router = Router::new()
            .route("/v1/chat/completions", post(ingress::openai::chat))
            .route("/v1/embeddings", post(ingress::openai::embeddings))
            .route("/v1/messages", post(ingress::anthropic::messages))
            .route(
                "/v1/messages/count_tokens",
                post(ingress::anthropic::count_tokens),
            )
            .route("/v1/models", get(ingress::openai::list_models))
            .route("/v1/models/{*id}", get(ingress::openai::get_model))
            .route("/healthz", get(ingress::healthz))
            .route("/readyz", get(ingress::readyz))
            .route("/metrics", get(escape::scrape));
        if with_admin {
            router = router.nest("/admin", admin::routes());
        }
        router
            .fallback(ingress::not_found)
            .method_not_allowed_fallback(ingress::method_not_allowed)
            .with_state(self.state.clone())
    }

    /// The admin listener's routes: the admin API (and dashboard) and health.
    fn admin_routes(&self) -> Router {
        Router::new()
            .route("/healthz", get(ingress::healthz))
            .nest("/admin", admin::routes())
            .fallback(ingress::not_found)
            .method_not_allowed_fallback(ingress::method_not_allowed)
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then closes idle connections and lets
    /// requests in flight finish for up to `server.drain_timeout_ms` (see `listener`).
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        self.serve_split(listener, None, shutdown).await
    }

    /// Like [`Gateway::serve`], with the admin API on `admin` only when given (the data
    /// plane then answers `/admin` with 404); both stop and drain together.
    pub async fn serve_split(
        &self,
        listener: TcpListener,
        admin: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let limits = self.state.snapshot().settings.connections;
        let stop = CancellationToken::new();
        let admin_task = admin.map(|l| {
            tokio::spawn(listener::serve(
                l,
                self.admin_routes(),
                limits,
                stop.clone().cancelled_owned(),
            ))
        });
        let app = self.routes(admin_task.is_none());
        let stopping = stop.clone();
        listener::serve(listener, app, limits, async move {
            shutdown.await;
            stopping.cancel();
        })
        .await;
        stop.cancel();
        if let Some(task) = admin_task {
            let _ = task.await;
        }
        // Every response that reached a client has queued its ledger record by now.
        self.state.runtime.shutdown().await;
        Ok(())
    }
}

/// Options of `switchyard serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The config file.
    pub config: PathBuf,
    /// Overrides `server.listen`.
    pub listen: Option<SocketAddr>,
}

/// Reads and compiles a config file with the process environment.
pub fn load(path: &std::path::Path) -> Result<Snapshot, StartError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    compile(&text, &|name| std::env::var(name).ok()).map_err(|problems| StartError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// `switchyard serve`: runs until SIGINT or SIGTERM, reloading the config on SIGHUP and
/// whenever the file changes.
pub async fn serve(options: ServeOptions) -> Result<(), StartError> {
    let snapshot = load(&options.config)?;
    for w in &snapshot.warnings {
        tracing::warn!("{w}");
    }
    let addr = options.listen.unwrap_or(snapshot.settings.listen);
    let gateway = Gateway::open(snapshot, options.config.parent()).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let admin = match gateway.state().snapshot().settings.runtime.admin_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let local = l.local_addr().map_err(StartError::Serve)?;
            tracing::info!(%local, "the admin API is listening (and not on the data plane)");
            Some(l)
        }
        None => None,
    };
    let local = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(%local, config = %options.config.display(), "switchyard is listening");
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(reload::watch(
        gateway.state().clone(),
        options.config.clone(),
        stop.clone(),
    ));
    let result = gateway
        .serve_split(listener, admin, shutdown_signal())
        .await;
    stop.cancel();
    let _ = watcher.await;
    result
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
