//! Each operation's upstream URL and fixed headers for one deployment, compiled once when the
//! config is loaded so that an attempt only clones them (no formatting, percent-encoding or
//! URL parsing per request).

use crate::{dialect, AttemptError, Operation, ProviderSpec};
use http::{HeaderMap, HeaderValue};

/// One operation's parsed URL and the headers every request to it carries (before auth).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The parsed upstream URL.
    pub url: reqwest::Url,
    /// `content-type`, `accept` and per-kind fixed headers such as `anthropic-version`.
    pub headers: HeaderMap,
}

/// The compiled endpoints of one deployment (a provider and an upstream model), one per
/// [`Operation`]; an operation the kind does not support keeps the error an attempt returns.
#[derive(Debug, Clone)]
pub struct Endpoints {
    chat: Result<Endpoint, AttemptError>,
    stream: Result<Endpoint, AttemptError>,
    embeddings: Result<Endpoint, AttemptError>,
    count_tokens: Result<Endpoint, AttemptError>,
}

impl Endpoints {
    /// Compiles every operation's URL and headers for `upstream_model` on `provider`.
    pub fn new(provider: &ProviderSpec, upstream_model: &str) -> Endpoints {
        let one = |op| compile(provider, op, upstream_model);
        Endpoints {
            chat: one(Operation::Chat { stream: false }),
            stream: one(Operation::Chat { stream: true }),
            embeddings: one(Operation::Embeddings),
            count_tokens: one(Operation::CountTokens),
        }
    }

    /// The endpoint of `op`, or the error an attempt at it fails with.
    pub fn get(&self, op: Operation) -> Result<&Endpoint, AttemptError> {
        let slot = match op {
            Operation::Chat { stream: false } => &self.chat,
            Operation::Chat { stream: true } => &self.stream,
            Operation::Embeddings => &self.embeddings,
            Operation::CountTokens => &self.count_tokens,
        };
        slot.as_ref().map_err(Clone::clone)
    }
}

fn compile(
    provider: &ProviderSpec,
    op: Operation,
    upstream_model: &str,
) -> Result<Endpoint, AttemptError> {
    let url = dialect::url(provider, op, upstream_model)?;
    let url = parse(&provider.id, &url)?;
    let fixed = dialect::headers(provider, op);
    let mut headers = HeaderMap::with_capacity(fixed.len() + 1);
    headers.append(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in fixed {
        headers.append(name, value);
    }
    Ok(Endpoint { url, headers })
}

/// Parses a URL as reqwest's `RequestBuilder` would, with the same error for a bad one.
fn parse(provider: &str, url: &str) -> Result<reqwest::Url, AttemptError> {
    let builder_error = |detail: String| {
        AttemptError::new(
            switchyard_types::ErrorKind::UpstreamProtocol,
            format!("provider '{provider}': builder error{detail}"),
        )
    };
    match reqwest::Url::parse(url) {
        Err(e) => Err(builder_error(format!(": {e}"))),
        Ok(u) if !u.has_host() => Err(builder_error(format!(
            " for url ({u}): URL scheme is not allowed"
        ))),
        Ok(u) => Ok(u),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Auth, ProviderExtras};
    use switchyard_types::{Cloud, ErrorKind, Jurisdiction, ProviderKind};

    fn spec(kind: ProviderKind, base_url: &str) -> ProviderSpec {
        ProviderSpec {
            id: "p".into(),
            kind,
            base_url: base_url.into(),
            auth: Auth::None,
            api_version: Some("2024-10-21".into()),
            cloud: Cloud::Azure,
            region: "r".into(),
            jurisdiction: Jurisdiction::Eu,
            http2_prior_knowledge: false,
            extra: ProviderExtras::default(),
        }
    }

    const OPS: [Operation; 4] = [
        Operation::Chat { stream: false },
        Operation::Chat { stream: true },
        Operation::Embeddings,
        Operation::CountTokens,
    ];

    #[test]
    fn compiled_urls_and_headers_match_the_per_request_builders() {
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::OpenAiCompatible,
            ProviderKind::AzureOpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Bedrock,
            ProviderKind::Gemini,
            ProviderKind::Vertex,
        ] {
            let p = spec(kind, "https://h.example/base");
            let model = "arn:aws:bedrock:us-east-1:1:inference-profile/x y";
            let e = Endpoints::new(&p, model);
            for op in OPS {
                match (dialect::url(&p, op, model), e.get(op)) {
                    (Ok(s), Ok(ep)) => {
                        assert_eq!(ep.url.as_str(), s, "{kind:?} {op:?}");
                        let expected = reqwest::Client::new().post(&s).build().unwrap();
                        assert_eq!(ep.url, *expected.url());
                        let mut want = vec![("content-type".to_owned(), "application/json")];
                        let fixed = dialect::headers(&p, op);
                        want.extend(
                            fixed
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.to_str().unwrap())),
                        );
                        let got: Vec<_> = ep
                            .headers
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_str().unwrap()))
                            .collect();
                        assert_eq!(got, want, "{kind:?} {op:?}");
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (a, b) => panic!("{kind:?} {op:?}: {a:?} vs {b:?}"),
                }
            }
        }
    }

    #[test]
    fn a_bad_url_fails_like_reqwest() {
        for base in ["", "not a url", "mailto:x"] {
            let p = spec(ProviderKind::OpenAi, base);
            let got = Endpoints::new(&p, "m")
                .get(Operation::Chat { stream: false })
                .unwrap_err();
            let url = dialect::url(&p, Operation::Chat { stream: false }, "m").unwrap();
            let e = reqwest::Client::new().post(url).build().unwrap_err();
            assert_eq!(got, AttemptError::from_reqwest("p", &e), "{base:?}");
            assert_eq!(got.kind, ErrorKind::UpstreamProtocol);
        }
    }
}
