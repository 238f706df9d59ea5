//! Config: raw TOML (`deny_unknown_fields`) → compiled [`Snapshot`], reporting every problem
//! at once with its location and a fix hint. `switchyard check`, startup and reload all run
//! [`compile`], so they can never disagree.

use crate::request::AttemptLimits;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchyard_protocol::translate::{Malformed, Options};
use switchyard_providers::{default_base_url, Auth, ProviderExtras, ProviderSpec};
use switchyard_router::{Catalog, Deployment, Limits, Model, Prices};
use switchyard_types::ProviderKind;

mod plain;
mod raw;
mod routing;
mod runtime;
mod timeouts;

pub use runtime::{RuntimeSettings, StateBackend};
pub use timeouts::{TimeoutOverrides, TimeoutTable};

use raw::*;

/// One thing wrong (or suspicious) in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Whether the config is unusable because of it.
    pub severity: Severity,
    /// Where: a dotted key path (plus line and column for syntax errors).
    pub location: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config is rejected.
    Error,
    /// The config works but probably not as intended.
    Warning,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{label}: {}: {}\n  hint: {}",
            self.location, self.message, self.hint
        )
    }
}

/// Time limits for upstream calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutSettings {
    /// TCP/TLS connect.
    pub connect: Duration,
    /// Streams: until the first event; the whole answer for non-streaming calls is `total`.
    pub first_byte: Duration,
    /// Streams: the longest silence between two events.
    pub stall: Duration,
    /// The whole attempt, stream included.
    pub total: Duration,
    /// Non-streaming: one attempt, headers and body (bounded by `total`); a hang fails over
    /// after it.
    pub attempt: Duration,
}

/// How client connections are bounded; read when the listener starts (a reload that changes
/// them applies at the next restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Most open client connections; one more is answered 503 and closed at once.
    pub max_connections: usize,
    /// Most requests served at once; one more is answered 503 with Retry-After.
    pub max_in_flight: usize,
    /// A request's headers must be complete within this from when the connection starts
    /// waiting for it (a new connection, or the end of the previous response on HTTP/1).
    pub header_read: Duration,
    /// A request's body must be complete within this from when its headers arrived.
    pub body_read: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle: Duration,
    /// At shutdown, how long requests in flight may take before their connections are cut.
    pub drain: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_connections: 8_192,
            max_in_flight: 2_048,
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            drain: Duration::from_secs(10),
        }
    }
}

/// Server-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where to listen (the `--listen` flag overrides).
    pub listen: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most upstream attempts per request (failovers included).
    pub max_attempts: usize,
    /// How often the config file is checked for changes.
    pub reload_poll: Duration,
    /// Client connection limits (startup only).
    pub connections: ConnectionSettings,
    /// Upstream time limits.
    pub timeouts: TimeoutSettings,
    /// Per-model and per-deployment overrides of `timeouts`.
    pub timeout_overrides: TimeoutTable,
    /// Startup-only settings (state, ledger, admin).
    pub runtime: RuntimeSettings,
}

pub use crate::request::KeyEntry;

impl Settings {
    /// The time limits of an attempt of `model` on `d` (the server's, overridden by the
    /// deployment's and the model's), with how its stream is read. A non-streaming answer's
    /// headers come only when it is complete, so both its limits are the attempt timeout: a
    /// hang fails over after it.
    pub(crate) fn attempt_limits(
        &self,
        model: &str,
        d: &Deployment,
        stream: bool,
        translate: Options,
    ) -> AttemptLimits {
        let t = self.timeout_overrides.resolve(&self.timeouts, model, &d.id);
        let whole = t.attempt.min(t.total);
        AttemptLimits {
            timeouts: switchyard_providers::Timeouts {
                first_byte: if stream { t.first_byte } else { whole },
                total: if stream { t.total } else { whole },
                connect: Some(t.connect),
            },
            stall: t.stall,
            translate,
        }
    }
}

/// A deployment's most output tokens per answer when neither its config nor the shipped price
/// table says: generous, since budget reservations rely on it being an upper bound.
const FALLBACK_MAX_OUTPUT_TOKENS: u64 = 32_768;

/// Everything one config version compiles to; swapped atomically on reload.
#[derive(Debug)]
pub struct Snapshot {
    /// Server-wide settings.
    pub settings: Settings,
    /// Models and deployments.
    pub catalog: Catalog,
    /// Client keys by SHA-256 of the secret.
    keys: HashMap<[u8; 32], Arc<KeyEntry>>,
    /// Deployments with no known price (their ledger records say so).
    pub unpriced: HashSet<Arc<str>>,
    /// Warnings found while compiling, for logs.
    pub warnings: Vec<Problem>,
    /// Metric handles of this config's models and deployments.
    pub(crate) meters: Arc<crate::metrics::Meters>,
}

impl Snapshot {
    /// The key whose secret is `secret`, if any.
    pub fn key(&self, secret: &str) -> Option<&Arc<KeyEntry>> {
        self.keys.get(&hash_secret(secret))
    }

    /// The key named `name` (for `route explain`; requests authenticate by secret).
    pub fn key_by_name(&self, name: &str) -> Option<&Arc<KeyEntry>> {
        self.keys.values().find(|k| &*k.name == name)
    }
}

/// SHA-256 of a key secret: the only form in which secrets are kept in memory after load.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Parses and compiles a config; `Err` carries every problem found (errors and warnings).
pub fn compile(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Snapshot, Vec<Problem>> {
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return Err(vec![plain::parse_problem(text, &e)]),
    };
    Compiler::default().compile(raw, env)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[derive(Default)]
struct Compiler {
    problems: Vec<Problem>,
    unpriced: HashSet<Arc<str>>,
    /// `providers.NAME`, `deployments.NAME` of every table in the file, compiled or not: a
    /// reference to one that failed is not reported again (one root cause, one error).
    defined: HashSet<String>,
}

/// A deployment's price from the shipped, versioned default table, when it lists the model.
fn shipped_price(kind: ProviderKind, upstream_model: &str) -> Option<Prices> {
    switchyard_ledger::DefaultPrices::shipped()
        .ok()?
        .lookup(kind, upstream_model)
}

impl Compiler {
    fn error(
        &mut self,
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Error, location, message, hint);
    }

    fn warn(
        &mut self,
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Warning, location, message, hint);
    }

    fn push(
        &mut self,
        severity: Severity,
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.problems.push(Problem {
            severity,
            location: location.into(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    fn compile(
        mut self,
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Snapshot, Vec<Problem>> {
        self.defined = (raw.providers.keys().map(|n| format!("providers.{n}")))
            .chain(raw.deployments.keys().map(|n| format!("deployments.{n}")))
            .collect();
        let runtime = self.runtime(&raw.governance, &raw.ledger, &raw.admin, env);
        let mut settings = self.settings(&raw.server, runtime);
        let providers = self.providers(&raw.providers, env);
        let deployments = self.deployments(&raw.deployments, &providers);
        let policy = self.policy(routing::RawRouting {
            constraints: &raw.constraints,
            data_classes: &raw.data_classes,
            retry: &raw.retry,
            breaker: &raw.breaker,
            provider_statuses: raw
                .providers
                .iter()
                .filter_map(|(name, p)| Some((name.as_str(), p.retry_statuses.as_deref()?)))
                .collect(),
            max_attempts: settings.max_attempts,
            default_budget: settings
                .timeouts
                .total
                .max(2 * settings.timeouts.attempt.min(settings.timeouts.total)),
        });
        let catalog = self.models(&raw.models, &deployments, policy);
        settings.timeout_overrides = self.timeout_table(
            raw.models.iter().map(|(n, m)| (n, m.timeouts.as_ref())),
            raw.deployments
                .iter()
                .map(|(n, d)| (n, d.timeouts.as_ref())),
        );
        let classes: Vec<String> = raw.data_classes.keys().cloned().collect();
        let keys = self.keys(&raw.keys, &raw.models, &classes, env);
        if self.problems.iter().any(|p| p.severity == Severity::Error) {
            return Err(self.problems);
        }
        Ok(Snapshot {
            meters: Arc::new(crate::metrics::Meters::new(&catalog)),
            settings,
            catalog,
            keys,
            unpriced: self.unpriced,
            warnings: self.problems,
        })
    }

    fn settings(&mut self, raw: &RawServer, runtime: RuntimeSettings) -> Settings {
        let listen = match raw.listen.as_deref() {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(s) => s.parse().unwrap_or_else(|_| {
                self.error(
                    "server.listen",
                    format!("'{s}' is not an address with a port"),
                    "write it as host:port, for example \"127.0.0.1:8080\" or \"0.0.0.0:8080\"",
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }),
        };
        let timeouts = self.server_timeouts(&raw.timeouts);
        let max_attempts = raw.max_attempts.unwrap_or(3);
        if max_attempts == 0 {
            self.error(
                "server.max_attempts",
                "0 attempts would fail every request",
                "use 1 (no failover) or more; the default is 3",
            );
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(8 * 1024 * 1024);
        if max_body_bytes < 1024 {
            self.error(
                "server.max_body_bytes",
                format!("{max_body_bytes} bytes is too small for any chat request"),
                "use at least 1024; the default is 8388608 (8 MiB)",
            );
        }
        let connections = self.connections(raw);
        Settings {
            listen,
            max_body_bytes,
            max_attempts,
            reload_poll: Duration::from_millis(raw.reload_poll_ms.unwrap_or(1_000).max(50)),
            connections,
            timeouts,
            timeout_overrides: TimeoutTable::default(),
            runtime,
        }
    }

    fn connections(&mut self, raw: &RawServer) -> ConnectionSettings {
        let d = ConnectionSettings::default();
        let mut count = |field: &str, value: Option<usize>, default: usize| match value {
            Some(0) => {
                self.error(
                    format!("server.{field}"),
                    "0 would refuse every request",
                    format!("use a positive number; the default is {default}"),
                );
                default
            }
            v => v.unwrap_or(default),
        };
        let max_connections = count("max_connections", raw.max_connections, d.max_connections);
        let max_in_flight = count("max_in_flight", raw.max_in_flight, d.max_in_flight);
        let mut ms = |field: &str, value: Option<u64>, default: Duration| match value {
            Some(0) => {
                self.error(
                    format!("server.{field}"),
                    "0 ms would cut every connection",
                    format!(
                        "use a positive number of milliseconds; the default is {}",
                        default.as_millis()
                    ),
                );
                default
            }
            Some(v) => Duration::from_millis(v),
            None => default,
        };
        ConnectionSettings {
            max_connections,
            max_in_flight,
            header_read: ms(
                "header_read_timeout_ms",
                raw.header_read_timeout_ms,
                d.header_read,
            ),
            body_read: ms(
                "body_read_timeout_ms",
                raw.body_read_timeout_ms,
                d.body_read,
            ),
            idle: ms("idle_timeout_ms", raw.idle_timeout_ms, d.idle),
            drain: ms("drain_timeout_ms", raw.drain_timeout_ms, d.drain),
        }
    }

    fn secret(
        &mut self,
        location: &str,
        field: &str,
        literal: Option<&str>,
        env_name: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        match (literal, env_name) {
            (Some(_), Some(_)) => {
                self.error(
                    format!("{location}.{field}"),
                    format!("both {field} and {field}_env are set"),
                    format!("keep one; {field}_env (the name of an environment variable) keeps secrets out of the file"),
                );
                None
            }
            (Some(v), None) => Some(v.to_string()),
            (None, Some(var)) => match env(var) {
                Some(v) if !v.is_empty() => Some(v),
                _ => {
                    self.error(
                        format!("{location}.{field}_env"),
                        format!("environment variable {var} is not set"),
                        format!("export {var}=... before starting switchyard, or fix the variable's name"),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn providers(
        &mut self,
        raw: &BTreeMap<String, RawProvider>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> HashMap<String, Arc<ProviderSpec>> {
        let mut out = HashMap::new();
        for (name, p) in raw {
            let loc = format!("providers.{name}");
            let base_url = match (&p.base_url, default_base_url(p.kind, &p.region)) {
                (Some(url), _) => url.trim_end_matches('/').to_string(),
                (None, Some(default)) => default,
                (None, None) => {
                    self.error(
                        format!("{loc}.base_url"),
                        format!("a {} provider needs a base_url", p.kind),
                        "for example \"https://NAME.openai.azure.com\" or \"http://10.0.0.5:8000/v1\"",
                    );
                    String::new()
                }
            };
            if !base_url.is_empty() {
                match reqwest::Url::parse(&base_url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => self.error(
                        format!("{loc}.base_url"),
                        format!("'{base_url}' is not an http(s) URL"),
                        "for example \"https://api.openai.com/v1\" or \"https://NAME.openai.azure.com\"",
                    ),
                }
            }
            let auth = self.provider_auth(&loc, p, env);
            if p.kind == ProviderKind::AzureOpenAi && p.api_version.is_none() {
                self.warn(
                    format!("{loc}.api_version"),
                    "no api_version: requests use Azure's v1 surface (/openai/v1) with the model in the body",
                    "set api_version (for example \"2024-10-21\") to use deployment URLs",
                );
            }
            if p.region.trim().is_empty() {
                self.error(
                    format!("{loc}.region"),
                    "region is empty",
                    "name the cloud region, for example \"eastus\"",
                );
            }
            out.insert(
                name.clone(),
                Arc::new(ProviderSpec {
                    id: name.as_str().into(),
                    kind: p.kind,
                    base_url,
                    auth,
                    api_version: p.api_version.clone(),
                    cloud: p.cloud,
                    region: p.region.as_str().into(),
                    jurisdiction: p.jurisdiction,
                    http2_prior_knowledge: p.http2_prior_knowledge,
                    extra: ProviderExtras {
                        anthropic_version: p.anthropic_version.clone(),
                        gcp_project: p.gcp_project.clone(),
                        gcp_location: p.gcp_location.clone(),
                    },
                }),
            );
        }
        out
    }

    /// How a provider authenticates: an API key for most kinds; SigV4 (static keys or the AWS
    /// chain) for Bedrock; a service-account file or application-default credentials for Vertex.
    fn provider_auth(
        &mut self,
        loc: &str,
        p: &RawProvider,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Auth {
        let key = self.secret(
            loc,
            "api_key",
            p.api_key.as_deref(),
            p.api_key_env.as_deref(),
            env,
        );
        if let Some(key) = key {
            return match Auth::api_key(p.kind, &key) {
                Ok(auth) => auth,
                Err(e) => {
                    self.error(
                        format!("{loc}.api_key"),
                        e.message,
                        "check the key for stray characters or line breaks",
                    );
                    Auth::None
                }
            };
        }
        match p.kind {
            ProviderKind::Bedrock => {
                let id = self.secret(
                    loc,
                    "aws_access_key_id",
                    p.aws_access_key_id.as_deref(),
                    p.aws_access_key_id_env.as_deref(),
                    env,
                );
                let secret = self.secret(
                    loc,
                    "aws_secret_access_key",
                    p.aws_secret_access_key.as_deref(),
                    p.aws_secret_access_key_env.as_deref(),
                    env,
                );
                let token = self.secret(loc, "aws_session_token", None, p.aws_session_token_env.as_deref(), env);
                match (id, secret) {
                    (Some(id), Some(secret)) => Auth::bedrock_static(&id, &secret, token.as_deref()),
                    (None, None) => Auth::bedrock_default_chain(&p.region),
                    _ => {
                        self.error(
                            format!("{loc}.aws_secret_access_key_env"),
                            "an AWS access key id needs its secret, and the other way round",
                            "set both, or neither to use the standard AWS credential chain",
                        );
                        Auth::None
                    }
                }
            }
            ProviderKind::Vertex => match &p.credentials_file {
                Some(path) => Auth::google_service_account_file(path).unwrap_or_else(|e| {
                    self.error(
                        format!("{loc}.credentials_file"),
                        e.message,
                        "point it at a service-account JSON key file, or remove it to use application-default credentials",
                    );
                    Auth::None
                }),
                None => Auth::google_application_default(),
            },
            ProviderKind::OpenAiCompatible => Auth::None,
            // The missing variable was reported above.
            _ if p.api_key_env.is_some() => Auth::None,
            kind => {
                self.error(
                    format!("{loc}.api_key_env"),
                    format!("a {kind} provider needs an API key"),
                    "set api_key_env to the name of the environment variable holding the key",
                );
                Auth::None
            }
        }
    }

    fn deployments(
        &mut self,
        raw: &BTreeMap<String, RawDeployment>,
        providers: &HashMap<String, Arc<ProviderSpec>>,
    ) -> HashMap<String, Arc<Deployment>> {
        let mut out = HashMap::new();
        for (name, d) in raw {
            let loc = format!("deployments.{name}");
            let Some(provider) = providers.get(&d.provider) else {
                // A provider that is in the file but did not compile was reported already.
                if !self.defined.contains(&format!("providers.{}", d.provider)) {
                    self.error(
                        format!("{loc}.provider"),
                        format!("unknown provider '{}'", d.provider),
                        known("providers", &d.provider, providers.keys()),
                    );
                }
                continue;
            };
            if d.upstream_model.trim().is_empty() {
                self.error(
                    format!("{loc}.upstream_model"),
                    "upstream_model is empty",
                    "the provider's model id, or the Azure deployment name",
                );
            }
            let prices = match &d.price {
                Some(p) => Prices {
                    input: p.input,
                    output: p.output,
                    cached_input: p.cached_input,
                    cache_write: p.cache_write,
                },
                None => match shipped_price(provider.kind, &d.upstream_model) {
                    Some(prices) => prices,
                    None => {
                        self.warn(
                            format!("{loc}.price"),
                            "no price, and the shipped price table does not know this model: its cost cannot be computed (the ledger flags it)",
                            "add price = { input = ..., output = ... } in USD per million tokens",
                        );
                        self.unpriced.insert(name.as_str().into());
                        Prices::default()
                    }
                },
            };
            out.insert(
                name.clone(),
                Arc::new(Deployment {
                    id: name.as_str().into(),
                    provider: provider.clone(),
                    upstream_model: d.upstream_model.clone(),
                    endpoints: switchyard_providers::Endpoints::new(provider, &d.upstream_model),
                    prices,
                    limits: Limits {
                        rpm: d.limits.rpm,
                        tpm: d.limits.tpm,
                        concurrency: d.limits.concurrency,
                    },
                    tags: d.tags.clone(),
                    commitment: d.commitment.as_ref().and_then(|c| self.commitment(&loc, c)),
                    max_output_tokens: d.max_output_tokens.unwrap_or_else(|| {
                        switchyard_ledger::DefaultPrices::shipped()
                            .ok()
                            .and_then(|t| t.max_output(provider.kind, &d.upstream_model))
                            .unwrap_or(FALLBACK_MAX_OUTPUT_TOKENS)
                    }),
                    accepts_prefill: d.accepts_prefill.unwrap_or_else(|| {
                        switchyard_protocol::upstream::upstream_codec(provider.kind)
                            .accepts_prefill()
                    }),
                }),
            );
        }
        out
    }

    fn models(
        &mut self,
        raw: &BTreeMap<String, RawModel>,
        deployments: &HashMap<String, Arc<Deployment>>,
        policy: switchyard_router::Policy,
    ) -> Catalog {
        let mut models = Vec::new();
        for (name, m) in raw {
            let loc = format!("models.{name}");
            if m.deployments.is_empty() {
                self.error(
                    format!("{loc}.deployments"),
                    "a model needs at least one deployment",
                    known("deployments", "", deployments.keys()),
                );
            }
            let mut resolved = Vec::new();
            for (i, d) in m.deployments.iter().enumerate() {
                match deployments.get(d) {
                    Some(dep) => resolved.push(dep.clone()),
                    // In the file but broken: reported where it is defined.
                    None if self.defined.contains(&format!("deployments.{d}")) => {}
                    None => self.error(
                        format!("{loc}.deployments[{i}]"),
                        format!("unknown deployment '{d}'"),
                        known("deployments", d, deployments.keys()),
                    ),
                }
            }
            self.model_refs(
                &format!("{loc}.context_fallbacks"),
                &m.context_fallbacks,
                (name, raw),
                "a model cannot be its own larger-context fallback",
                "name a model with a larger context window",
            );
            self.model_refs(
                &format!("{loc}.fallbacks"),
                &m.fallbacks,
                (name, raw),
                "a model cannot fall back to itself",
                "name a different model",
            );
            let resolved_names: Vec<String> = resolved.iter().map(|d| d.id.to_string()).collect();
            let strategy = self.strategy(&loc, m.strategy, &m.weights, &resolved_names);
            let constraints = self.constraints(&format!("{loc}.constraints"), &m.constraints);
            let hedging = m.hedging.as_ref().and_then(|h| self.hedging(&loc, h));
            let retry = m
                .retry
                .as_ref()
                .map(|r| self.retry_rules(&format!("{loc}.retry"), policy.retry_rules, r));
            models.push(Model {
                name: name.as_str().into(),
                deployments: resolved,
                strategy,
                fallbacks: m.fallbacks.iter().map(|f| f.as_str().into()).collect(),
                constraints,
                hedging,
                context_fallbacks: m
                    .context_fallbacks
                    .iter()
                    .map(|f| f.as_str().into())
                    .collect(),
                retry,
                streams: switchyard_router::StreamPolicy {
                    recovery: match m.stream_recovery {
                        RawStreamRecovery::Continue => switchyard_router::StreamRecovery::Continue,
                        RawStreamRecovery::Error => switchyard_router::StreamRecovery::Error,
                    },
                    malformed: match m.malformed_stream_events {
                        RawMalformed::Skip => Malformed::Skip,
                        RawMalformed::Fail => Malformed::Fail,
                    },
                },
            });
        }
        Catalog::with_policy(models, policy)
    }

    /// Checks a model's list of other models (`at`): each must exist and not be `name`
    /// itself (`itself` and `hint` say why and what to do).
    fn model_refs(
        &mut self,
        at: &str,
        list: &[String],
        (name, raw): (&str, &BTreeMap<String, RawModel>),
        itself: &str,
        hint: &str,
    ) {
        for (i, f) in list.iter().enumerate() {
            if f == name {
                self.error(format!("{at}[{i}]"), itself, hint);
            } else if !raw.contains_key(f) {
                self.error(
                    format!("{at}[{i}]"),
                    format!("unknown model '{f}'"),
                    known("models", f, raw.keys()),
                );
            }
        }
    }

    fn keys(
        &mut self,
        raw: &[RawKey],
        models: &BTreeMap<String, RawModel>,
        data_classes: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> HashMap<[u8; 32], Arc<KeyEntry>> {
        let mut out = HashMap::new();
        if raw.is_empty() {
            self.warn(
                "keys",
                "no [[keys]] in the config: only managed keys are accepted (and with none, every request is refused with 401)",
                "create managed keys with `switchyard keys create` or POST /admin/keys, or add [[keys]] with name and secret_env",
            );
        }
        for (i, k) in raw.iter().enumerate() {
            let loc = format!("keys[{i}]");
            let Some(secret) = self.secret(
                &loc,
                "secret",
                k.secret.as_deref(),
                k.secret_env.as_deref(),
                env,
            ) else {
                if k.secret.is_none() && k.secret_env.is_none() {
                    self.error(
                        format!("{loc}.secret_env"),
                        format!("key '{}' has no secret", k.name),
                        "set secret_env to the name of an environment variable holding the key",
                    );
                }
                continue;
            };
            for (j, pattern) in k.models.iter().enumerate() {
                if !pattern.ends_with('*') && !models.contains_key(pattern) {
                    self.error(
                        format!("{loc}.models[{j}]"),
                        format!("unknown model '{pattern}'"),
                        known("models", pattern, models.keys()),
                    );
                }
            }
            let data_class = k
                .data_class
                .as_deref()
                .and_then(|c| self.data_class(&format!("{loc}.data_class"), c, data_classes));
            let entry = Arc::new(KeyEntry {
                name: k.name.as_str().into(),
                models: k.models.clone(),
                data_class,
            });
            if out.insert(hash_secret(&secret), entry).is_some() {
                self.error(
                    format!("{loc}.secret"),
                    format!("key '{}' has the same secret as an earlier key", k.name),
                    "give every key its own secret",
                );
            }
        }
        out
    }
}

/// The hint for an unknown name: the near miss when there is one, and what is defined.
fn known<'a>(what: &str, wanted: &str, names: impl Iterator<Item = &'a String>) -> String {
    let mut names: Vec<&str> = names.map(String::as_str).collect();
    names.sort_unstable();
    if names.is_empty() {
        return format!("no {what} are defined yet");
    }
    let defined = format!("defined {what}: {}", names.join(", "));
    match plain::did_you_mean(wanted, names.iter().copied()) {
        Some(near) if !wanted.is_empty() => format!("did you mean '{near}'? ({defined})"),
        _ => defined,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
