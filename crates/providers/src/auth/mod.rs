//! How a request to a provider authenticates. One [`Auth`] per provider, applied in one place
//! ([`Auth::authorize`], called by `Upstream::send` once the URL, headers and body are final).

mod aws;
mod cache;
mod google;

pub use aws::AwsCredentials;
pub use google::{GoogleTokens, GOOGLE_CLOUD_PLATFORM_SCOPE};

use crate::{AttemptError, ProviderSpec};
use http::{HeaderName, HeaderValue};
use switchyard_types::{ErrorKind, ProviderKind};

/// How a request to a provider authenticates.
#[derive(Clone)]
pub enum Auth {
    /// No credentials (local vLLM, Ollama).
    None,
    /// A fixed header, e.g. `Authorization: Bearer …`, `x-api-key: …` or `api-key: …`.
    Header(HeaderName, HeaderValue),
    /// AWS Signature Version 4 over the whole request (Bedrock). The region is the provider's.
    SigV4 {
        /// Where the access key comes from (cached and refreshed before expiry).
        credentials: AwsCredentials,
        /// The signing name: `bedrock` for Bedrock Runtime (not `bedrock-runtime`).
        service: &'static str,
    },
    /// `Authorization: Bearer <OAuth2 access token>` (Vertex), refreshed before expiry.
    GoogleOAuth {
        /// The token source (service account key or application-default credentials).
        tokens: GoogleTokens,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Header(name, _) => write!(f, "Auth::Header({name}, <redacted>)"),
            Auth::SigV4 {
                credentials,
                service,
            } => write!(f, "Auth::SigV4({service}, {credentials:?})"),
            Auth::GoogleOAuth { tokens } => write!(f, "Auth::GoogleOAuth({tokens:?})"),
        }
    }
}

impl Auth {
    /// The default auth scheme of a provider kind for an API key.
    pub fn api_key(kind: ProviderKind, key: &str) -> Result<Auth, AttemptError> {
        let (name, value) = match kind {
            ProviderKind::AzureOpenAi => (HeaderName::from_static("api-key"), key.to_string()),
            ProviderKind::Anthropic => (HeaderName::from_static("x-api-key"), key.to_string()),
            ProviderKind::Gemini => (HeaderName::from_static("x-goog-api-key"), key.to_string()),
            // Bedrock API keys and static Vertex tokens are Bearer, like OpenAI's.
            ProviderKind::OpenAi
            | ProviderKind::OpenAiCompatible
            | ProviderKind::Bedrock
            | ProviderKind::Vertex => (http::header::AUTHORIZATION, format!("Bearer {key}")),
        };
        Ok(Auth::Header(name, sensitive(&value)?))
    }

    /// SigV4 for Bedrock with credentials from the standard AWS chain (environment, shared
    /// profile files, web identity, ECS container, EC2 instance metadata), resolved on first use.
    pub fn bedrock_default_chain(region: &str) -> Auth {
        Auth::SigV4 {
            credentials: AwsCredentials::default_chain(region),
            service: "bedrock",
        }
    }

    /// SigV4 for Bedrock with a fixed access key (and session token for temporary keys).
    pub fn bedrock_static(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Auth {
        Auth::SigV4 {
            credentials: AwsCredentials::from_keys(access_key_id, secret_access_key, session_token),
            service: "bedrock",
        }
    }

    /// Google OAuth from a service-account key file (its `token_uri` is where tokens come from).
    pub fn google_service_account_file(path: &std::path::Path) -> Result<Auth, AttemptError> {
        Ok(Auth::GoogleOAuth {
            tokens: GoogleTokens::service_account_file(path)?,
        })
    }

    /// Google OAuth from application-default credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's files, the metadata server), resolved on first use.
    pub fn google_application_default() -> Auth {
        Auth::GoogleOAuth {
            tokens: GoogleTokens::application_default(),
        }
    }

    /// Adds this provider's credentials to a request whose URL, headers and body are final.
    pub(crate) async fn authorize(
        &self,
        provider: &ProviderSpec,
        request: &mut reqwest::Request,
        body: &[u8],
    ) -> Result<(), AttemptError> {
        match self {
            Auth::None => Ok(()),
            Auth::Header(name, value) => {
                request.headers_mut().insert(name.clone(), value.clone());
                Ok(())
            }
            Auth::SigV4 {
                credentials,
                service,
            } => {
                let creds = credentials.get(&provider.id).await?;
                aws::sign(
                    &creds,
                    &provider.region,
                    service,
                    request,
                    body,
                    std::time::SystemTime::now(),
                )
                .map_err(|e| rejected(&provider.id, e))
            }
            Auth::GoogleOAuth { tokens } => {
                let token = tokens.token(&provider.id).await?;
                let value = sensitive(&format!("Bearer {token}"))?;
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
                Ok(())
            }
        }
    }
}

/// A header value marked sensitive (kept out of logs and HPACK tables).
fn sensitive(value: &str) -> Result<HeaderValue, AttemptError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        AttemptError::new(
            ErrorKind::Internal,
            "the provider's credential contains characters not allowed in an HTTP header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Credentials could not be obtained: the gateway's problem, and another deployment (with
/// other credentials) may still work, so it is retryable like an upstream 401.
fn rejected(provider: &str, message: impl std::fmt::Display) -> AttemptError {
    AttemptError::new(
        ErrorKind::UpstreamRejected,
        format!("provider '{provider}': no usable credentials: {message}"),
    )
}
