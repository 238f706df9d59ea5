//! AWS credentials (fixed keys, the standard chain, or any provider) and SigV4 signing with
//! the `aws-sigv4` crate.

use super::cache::SingleFlight;
use crate::AttemptError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign as sigv4_sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Refresh temporary credentials this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Credentials without an expiry (environment, profile keys) are re-read this often, so a
/// rotated profile file is picked up (the AWS SDK's lazy cache uses the same default).
const NO_EXPIRY_TTL: Duration = Duration::from_secs(15 * 60);

/// Where a provider's AWS credentials come from; cheap to clone, shared cache.
#[derive(Clone)]
pub struct AwsCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    cache: SingleFlight<(Credentials, Instant)>,
}

enum Source {
    /// Fixed keys: nothing to refresh.
    Static(Credentials),
    /// The default chain, built on first use (building it is async and may read files).
    Chain {
        region: String,
        provider: tokio::sync::OnceCell<SharedCredentialsProvider>,
    },
    /// Any credentials provider (tests, custom sources).
    Provider(SharedCredentialsProvider),
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are never printed, only where they come from.
        match &self.inner.source {
            Source::Static(c) => write!(f, "AwsCredentials::Static({})", c.access_key_id()),
            Source::Chain { region, .. } => write!(f, "AwsCredentials::Chain({region})"),
            Source::Provider(_) => f.write_str("AwsCredentials::Provider"),
        }
    }
}

impl AwsCredentials {
    fn new(source: Source) -> Self {
        AwsCredentials {
            inner: Arc::new(Inner {
                source,
                cache: SingleFlight::default(),
            }),
        }
    }

    /// The standard AWS chain: environment, shared profile files, web identity, ECS container
    /// and EC2 instance metadata. `region` is used by the chain's STS and SSO calls.
    pub fn default_chain(region: &str) -> Self {
        Self::new(Source::Chain {
            region: region.to_owned(),
            provider: tokio::sync::OnceCell::new(),
        })
    }

    /// A fixed access key, with a session token for temporary keys.
    pub fn from_keys(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Self {
        Self::new(Source::Static(Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_owned),
            None,
            "switchyard-config",
        )))
    }

    /// Any credentials provider (its answers are cached here until shortly before expiry).
    pub fn from_provider(provider: impl ProvideCredentials + 'static) -> Self {
        Self::new(Source::Provider(SharedCredentialsProvider::new(provider)))
    }

    /// Current credentials, resolving or refreshing them when needed.
    pub(crate) async fn get(&self, provider_id: &str) -> Result<Credentials, AttemptError> {
        let provider = match &self.inner.source {
            Source::Static(c) => return Ok(c.clone()),
            Source::Chain { region, provider } => {
                provider.get_or_init(|| default_chain(region.clone())).await
            }
            Source::Provider(p) => p,
        };
        let usable = |(c, fetched): &(Credentials, Instant)| match c.expiry() {
            Some(expiry) => expiry
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > EXPIRY_MARGIN),
            None => fetched.elapsed() < NO_EXPIRY_TTL,
        };
        let fetch = || async {
            provider
                .provide_credentials()
                .await
                .map(|c| (c, Instant::now()))
                .map_err(|e| super::rejected(provider_id, error_chain(&e)))
        };
        self.inner.cache.get(usable, fetch).await.map(|(c, _)| c)
    }
}

/// Builds the default chain with an HTTP client on rustls + ring (the TLS stack reqwest
/// already uses), so the aws-lc build is not needed for IMDS, ECS and STS calls.
async fn default_chain(region: String) -> SharedCredentialsProvider {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_config::provider_config::ProviderConfig::default().with_http_client(http);
    let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .region(aws_config::Region::new(region))
        .configure(config)
        .build()
        .await;
    SharedCredentialsProvider::new(chain)
}

/// An error with its causes, which is where the AWS errors keep the useful part.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Signs `request` (final URL, headers and body) with SigV4 in the `Authorization` header.
///
/// The path is percent-encoded a second time in the canonical request, as every AWS service
/// except S3 expects; `host` is taken from the URL, since reqwest adds it only when sending.
pub(crate) fn sign(
    creds: &Credentials,
    region: &str,
    service: &str,
    request: &mut reqwest::Request,
    body: &[u8],
    time: SystemTime,
) -> Result<(), String> {
    let identity: Identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let instructions = {
        let headers = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers,
            SignableBody::Bytes(body),
        )
        .map_err(|e| error_chain(&e))?;
        let (instructions, _signature) = sigv4_sign(signable, &params)
            .map_err(|e| error_chain(&e))?
            .into_parts();
        instructions
    };
    for (name, value) in instructions.headers() {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let mut value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        if name == http::header::AUTHORIZATION || name.as_str() == "x-amz-security-token" {
            value.set_sensitive(true);
        }
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(url: &str) -> reqwest::Request {
        let mut r = reqwest::Request::new(http::Method::POST, url.parse().unwrap());
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    #[test]
    fn signing_adds_the_sigv4_headers() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session".into()),
            None,
            "test",
        );
        let mut r = request("https://bedrock-runtime.us-east-1.amazonaws.com/model/a%3A0/converse");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600); // 2025-01-01
        sign(&creds, "us-east-1", "bedrock", &mut r, b"{}", t).unwrap();
        let h = |n: &str| r.headers().get(n).unwrap().to_str().unwrap().to_owned();
        let auth = h("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders="
            ),
            "{auth}"
        );
        let signed = auth.split("SignedHeaders=").nth(1).unwrap();
        assert!(
            signed.starts_with("content-type;host;x-amz-date;x-amz-security-token,"),
            "{signed}"
        );
        assert_eq!(h("x-amz-date"), "20250101T000000Z");
        assert_eq!(h("x-amz-security-token"), "session");
        assert!(r.headers()["authorization"].is_sensitive());
        // Deterministic: the same input gives the same signature.
        let mut again =
            request("https://bedrock-runtime.us-east-1.amazonaws.com/model/a%3A0/converse");
        sign(&creds, "us-east-1", "bedrock", &mut again, b"{}", t).unwrap();
        assert_eq!(
            again.headers()["authorization"],
            r.headers()["authorization"]
        );
        // Any change to the body changes it.
        let mut other =
            request("https://bedrock-runtime.us-east-1.amazonaws.com/model/a%3A0/converse");
        sign(&creds, "us-east-1", "bedrock", &mut other, b"{ }", t).unwrap();
        assert_ne!(
            other.headers()["authorization"],
            r.headers()["authorization"]
        );
    }

    #[derive(Debug)]
    struct Rotating(std::sync::atomic::AtomicU32, Duration);

    impl ProvideCredentials for Rotating {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let c = Credentials::new(
                format!("AKID{n}"),
                "s",
                None,
                Some(SystemTime::now() + self.1),
                "test",
            );
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(c))
        }
    }

    #[tokio::test]
    async fn provider_credentials_are_cached_until_near_expiry() {
        let long = AwsCredentials::from_provider(Rotating(0.into(), Duration::from_secs(3600)));
        assert_eq!(long.get("p").await.unwrap().access_key_id(), "AKID0");
        assert_eq!(long.get("p").await.unwrap().access_key_id(), "AKID0");
        // Expiring within the margin: every use refreshes.
        let short = AwsCredentials::from_provider(Rotating(0.into(), Duration::from_secs(30)));
        assert_eq!(short.get("p").await.unwrap().access_key_id(), "AKID0");
        assert_eq!(short.get("p").await.unwrap().access_key_id(), "AKID1");
    }
}
