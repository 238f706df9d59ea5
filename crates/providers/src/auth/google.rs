//! Google OAuth2 access tokens for Vertex, from the `gcp_auth` crate (service-account keys,
//! application-default credentials), cached here so concurrent requests share one refresh.

use super::cache::SingleFlight;
use crate::AttemptError;
use gcp_auth::{CustomServiceAccount, Token, TokenProvider};
use std::sync::Arc;
use switchyard_types::ErrorKind;

/// The scope Vertex AI needs.
pub const GOOGLE_CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Where a provider's Google access tokens come from; cheap to clone, shared cache.
#[derive(Clone)]
pub struct GoogleTokens {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    cache: SingleFlight<Arc<Token>>,
}

enum Source {
    /// A ready token provider (a service-account key, or one injected by a test).
    Provider(Arc<dyn TokenProvider>),
    /// Application-default credentials, looked up on first use (the lookup is async).
    ApplicationDefault(tokio::sync::OnceCell<Arc<dyn TokenProvider>>),
}

impl std::fmt::Debug for GoogleTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.source {
            Source::Provider(_) => f.write_str("GoogleTokens::Provider"),
            Source::ApplicationDefault(_) => f.write_str("GoogleTokens::ApplicationDefault"),
        }
    }
}

impl GoogleTokens {
    fn new(source: Source) -> Self {
        GoogleTokens {
            inner: Arc::new(Inner {
                source,
                cache: SingleFlight::default(),
            }),
        }
    }

    /// A service-account key file; tokens come from its `token_uri` (JWT-bearer grant).
    pub fn service_account_file(path: &std::path::Path) -> Result<Self, AttemptError> {
        let account = CustomServiceAccount::from_file(path).map_err(|e| {
            AttemptError::new(
                ErrorKind::Internal,
                format!("service account key {}: {e}", path.display()),
            )
        })?;
        Ok(Self::from_provider(Arc::new(account)))
    }

    /// A service-account key given as JSON text.
    pub fn service_account_json(json: &str) -> Result<Self, AttemptError> {
        let account = CustomServiceAccount::from_json(json).map_err(|e| {
            AttemptError::new(ErrorKind::Internal, format!("service account key: {e}"))
        })?;
        Ok(Self::from_provider(Arc::new(account)))
    }

    /// Application-default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's files,
    /// the metadata server), resolved when the first request needs a token.
    pub fn application_default() -> Self {
        Self::new(Source::ApplicationDefault(tokio::sync::OnceCell::new()))
    }

    /// Any `gcp_auth` token provider.
    pub fn from_provider(provider: Arc<dyn TokenProvider>) -> Self {
        Self::new(Source::Provider(provider))
    }

    /// A valid access token, fetched or refreshed when the cached one is (nearly) expired.
    pub(crate) async fn token(&self, provider_id: &str) -> Result<String, AttemptError> {
        let reject = |e: gcp_auth::Error| super::rejected(provider_id, e);
        let source = match &self.inner.source {
            Source::Provider(p) => p,
            Source::ApplicationDefault(cell) => cell
                .get_or_try_init(gcp_auth::provider)
                .await
                .map_err(reject)?,
        };
        // `has_expired` keeps a margin before the real expiry, so a token handed out here
        // is still good when the request reaches Google.
        let token = self
            .inner
            .cache
            .get(
                |t: &Arc<Token>| !t.has_expired(),
                || async {
                    source
                        .token(&[GOOGLE_CLOUD_PLATFORM_SCOPE])
                        .await
                        .map_err(reject)
                },
            )
            .await?;
        Ok(token.as_str().to_owned())
    }
}
