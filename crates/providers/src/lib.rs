//! Upstream clients. This crate knows where each provider kind's endpoints are, how it
//! authenticates and how its errors look; it sends one attempt and reports what happened.
//! It never retries or fails over: the router's attempt loop does that, in one place.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use switchyard_types::{Cloud, ErrorKind, Jurisdiction, ProviderKind};
use tokio::time::Instant;

mod auth;
mod dialect;
mod endpoints;
mod error;

pub use auth::{Auth, AwsCredentials, GoogleTokens, GOOGLE_CLOUD_PLATFORM_SCOPE};
pub use dialect::{default_base_url, DEFAULT_ANTHROPIC_VERSION};
pub use endpoints::{Endpoint, Endpoints};
pub use error::AttemptError;

/// One configured upstream endpoint with its credentials and location.
#[derive(Debug)]
pub struct ProviderSpec {
    /// The provider's name in the config.
    pub id: Arc<str>,
    /// The wire protocol it speaks.
    pub kind: ProviderKind,
    /// Base URL without a trailing slash (for OpenAI-style kinds it includes `/v1`).
    pub base_url: String,
    /// How requests authenticate.
    pub auth: Auth,
    /// Azure's `api-version` query value.
    pub api_version: Option<String>,
    /// Where it runs.
    pub cloud: Cloud,
    /// The cloud region.
    pub region: Arc<str>,
    /// Whose data rules apply.
    pub jurisdiction: Jurisdiction,
    /// Speak HTTP/2 without TLS (h2c) to this provider.
    pub http2_prior_knowledge: bool,
    /// Per-kind settings (Anthropic version, Vertex project and location); all optional.
    pub extra: ProviderExtras,
}

/// Settings only some provider kinds use, grouped so that adding one does not touch every
/// place a [`ProviderSpec`] is built (`extra: ProviderExtras::default()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderExtras {
    /// Anthropic's `anthropic-version` header; [`DEFAULT_ANTHROPIC_VERSION`] when unset.
    pub anthropic_version: Option<String>,
    /// Vertex: the Google Cloud project in the URL. Unset means Vertex express mode
    /// (`/v1/publishers/google/models/…`, API key auth).
    pub gcp_project: Option<String>,
    /// Vertex: the location in the URL (`us-central1`, `global`); the provider's `region`
    /// when unset.
    pub gcp_location: Option<String>,
}

/// What a request asks the provider to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A chat completion (streamed or not).
    Chat {
        /// Whether the response is a stream.
        stream: bool,
    },
    /// Embeddings (Bedrock InvokeModel, Gemini `batchEmbedContents`, Vertex `predict`).
    Embeddings,
    /// Count a request's input tokens (Anthropic `count_tokens`, Gemini/Vertex `countTokens`).
    CountTokens,
}

/// Per-attempt time limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until the response headers (non-streaming: until the whole body).
    pub first_byte: Duration,
    /// Until the whole response has arrived.
    pub total: Duration,
    /// TCP connect (and TLS handshake) limit, when it differs from the pools' default
    /// ([`PoolSettings::connect_timeout`]).
    pub connect: Option<Duration>,
}

/// Connection pools shared by every provider (and kept across config reloads).
#[derive(Clone)]
pub struct Upstream {
    settings: PoolSettings,
    default: Clients,
    /// Pools for connect timeouts other than the default, made on first use. The connect
    /// limit is a property of a reqwest client, and configs name only a few distinct ones.
    by_connect: Arc<RwLock<HashMap<Duration, Clients>>>,
}

/// The two pools of one connect timeout: negotiating HTTP/1.1 or HTTP/2 by ALPN, and h2c.
#[derive(Clone)]
struct Clients {
    negotiated: reqwest::Client,
    h2c: reqwest::Client,
}

impl Clients {
    fn new(settings: PoolSettings) -> Result<Clients, AttemptError> {
        let base = || {
            reqwest::Client::builder()
                .connect_timeout(settings.connect_timeout)
                .pool_idle_timeout(settings.idle_timeout)
                .pool_max_idle_per_host(settings.max_idle_per_host)
                .tcp_nodelay(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        };
        let build_error =
            |e: reqwest::Error| AttemptError::new(ErrorKind::Internal, format!("HTTP client: {e}"));
        Ok(Clients {
            negotiated: base().build().map_err(build_error)?,
            h2c: base()
                .http2_prior_knowledge()
                .build()
                .map_err(build_error)?,
        })
    }
}

/// Settings for the upstream connection pools.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// TCP connect (and TLS handshake) limit.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 256,
        }
    }
}

impl Upstream {
    /// Builds the pools: one negotiating HTTP/1.1 or HTTP/2 by ALPN, one for h2c.
    pub fn new(settings: PoolSettings) -> Result<Upstream, AttemptError> {
        Ok(Upstream {
            settings,
            default: Clients::new(settings)?,
            by_connect: Arc::default(),
        })
    }

    /// The pools for a connect timeout (`None`: the default one).
    fn clients(&self, connect: Option<Duration>) -> Result<Clients, AttemptError> {
        let Some(connect) = connect.filter(|c| *c != self.settings.connect_timeout) else {
            return Ok(self.default.clone());
        };
        if let Some(c) = self
            .by_connect
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&connect)
        {
            return Ok(c.clone());
        }
        let mut map = self
            .by_connect
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get(&connect) {
            return Ok(c.clone());
        }
        let clients = Clients::new(PoolSettings {
            connect_timeout: connect,
            ..self.settings
        })?;
        map.insert(connect, clients.clone());
        Ok(clients)
    }

    /// Sends one attempt and waits for the response headers. A non-2xx answer is read
    /// (bounded) and returned as a classified [`AttemptError`]. `endpoints` are the
    /// deployment's, compiled from `provider` at config load ([`Endpoints::new`]).
    pub async fn send(
        &self,
        provider: &ProviderSpec,
        endpoints: &Endpoints,
        op: Operation,
        body: Bytes,
        timeouts: Timeouts,
    ) -> Result<Sent, AttemptError> {
        let started = Instant::now();
        let deadline = started + timeouts.total;
        let clients = self.clients(timeouts.connect)?;
        let client = if provider.http2_prior_knowledge {
            &clients.h2c
        } else {
            &clients.negotiated
        };
        let endpoint = endpoints.get(op)?;
        let mut request = reqwest::Request::new(http::Method::POST, endpoint.url.clone());
        *request.headers_mut() = endpoint.headers.clone();
        *request.body_mut() = Some(body.clone().into());
        let first_byte = deadline.min(started + timeouts.first_byte);
        // Fetching a token or credentials counts against the first-byte limit: to the caller
        // it is part of waiting for the upstream.
        let attempt = async {
            provider
                .auth
                .authorize(provider, &mut request, &body)
                .await?;
            client
                .execute(request)
                .await
                .map_err(|e| AttemptError::from_reqwest(&provider.id, &e))
        };
        let response = match tokio::time::timeout_at(first_byte, attempt).await {
            Err(_) => {
                return Err(AttemptError::new(
                    ErrorKind::UpstreamTimeout,
                    format!(
                        "provider '{}' sent no response headers within {} ms",
                        provider.id,
                        timeouts.first_byte.min(timeouts.total).as_millis()
                    ),
                ))
            }
            Ok(result) => result?,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(Sent {
                response,
                deadline,
                first_byte_deadline: first_byte,
                started,
            });
        }
        let retry_after = error::retry_after(response.headers());
        let headers = response.headers().clone();
        // Error bodies are small; cap what we read so a hostile upstream cannot make us buffer a lot.
        let body = read_capped(response, deadline, 64 * 1024)
            .await
            .unwrap_or_default();
        let mut err = dialect::decode_error(provider, status.as_u16(), &headers, &body);
        // A header hint wins over one in the body (Gemini's RetryInfo).
        err.retry_after = retry_after.or(err.retry_after);
        if status == reqwest::StatusCode::NOT_FOUND {
            // The most common setup mistake; the operator reads this in the log.
            err.message.push_str(&format!(
                " (a 404: check provider '{}' base_url {} — OpenAI-shaped providers usually end in /v1 — and the deployment's upstream_model)",
                provider.id, provider.base_url
            ));
        }
        Err(err)
    }
}

/// A 2xx upstream response whose body has not been read yet.
pub struct Sent {
    /// The live response.
    pub response: reqwest::Response,
    /// When the whole attempt must be over.
    pub deadline: Instant,
    /// When the first body byte must have arrived.
    pub first_byte_deadline: Instant,
    /// When the attempt began.
    pub started: Instant,
}

impl Sent {
    /// Reads the whole body before the deadline.
    pub async fn body(self, provider: &ProviderSpec, limit: usize) -> Result<Bytes, AttemptError> {
        match read_capped(self.response, self.deadline, limit).await {
            Ok(b) => Ok(b),
            Err(ReadError::Timeout) => Err(AttemptError::new(
                ErrorKind::UpstreamTimeout,
                format!(
                    "provider '{}' did not finish its response in time",
                    provider.id
                ),
            )),
            Err(ReadError::TooLarge) => Err(AttemptError::new(
                ErrorKind::UpstreamProtocol,
                format!(
                    "provider '{}' sent a response larger than {limit} bytes",
                    provider.id
                ),
            )),
            Err(ReadError::Http(e)) => Err(AttemptError::from_reqwest(&provider.id, &e)),
        }
    }
}

enum ReadError {
    Timeout,
    TooLarge,
    Http(reqwest::Error),
}

async fn read_capped(
    mut response: reqwest::Response,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, ReadError> {
    let read = async {
        let mut buf = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
            if buf.len() + chunk.len() > limit {
                return Err(ReadError::TooLarge);
            }
            if buf.is_empty() && response.content_length() == Some(chunk.len() as u64) {
                return Ok(chunk);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| ReadError::Timeout)?
}
