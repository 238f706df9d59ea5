//! LiteLLM proxy config (`config.yaml`) → Switchyard config.
//!
//! `model_list` entries become providers (one per distinct endpoint and credentials),
//! deployments (one per entry) and models (one per `model_name`); `router_settings`,
//! `litellm_settings` and `general_settings` become `[server]`, `[breaker]`, `[governance]`,
//! `[admin]` and model fallbacks where Switchyard has an equivalent. Everything else is a
//! [`Finding`].

use crate::toml_out::{Doc, Val};
use crate::{regions, Conversion, Finding, FindingKind, ImportError};
use std::collections::{BTreeMap, BTreeSet};
use switchyard_ledger::DefaultPrices;
use switchyard_types::{Cloud, Jurisdiction, ProviderKind};
use yaml_rust2::{Yaml, YamlLoader};

/// Converts the text of a LiteLLM proxy config into a Switchyard config and its findings.
pub fn convert(yaml: &str) -> Result<Conversion, ImportError> {
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| ImportError::Yaml(e.to_string()))?;
    let root = match docs.first() {
        Some(Yaml::Hash(h)) => h,
        Some(_) => return Err(ImportError::Shape("the top level is not a mapping".into())),
        None => return Err(ImportError::Shape("the file is empty".into())),
    };
    let mut c = Converter::default();
    let mut sections = Sections::default();
    for (k, v) in root {
        let key = key_str(k);
        match key.as_str() {
            "model_list" => sections.model_list = Some(v),
            "router_settings" => sections.router = Some(v),
            "litellm_settings" => sections.litellm = Some(v),
            "general_settings" => sections.general = Some(v),
            "environment_variables" => {
                let names: Vec<String> = v
                    .as_hash()
                    .map(|h| h.keys().map(key_str).collect())
                    .unwrap_or_default();
                c.finding(
                    FindingKind::Unmapped,
                    "environment_variables",
                    format!(
                        "values are not copied into the config (they are often secrets): export {} in the gateway's environment",
                        if names.is_empty() { "them".to_string() } else { names.join(", ") }
                    ),
                );
            }
            _ => c.finding(
                FindingKind::Unmapped,
                &key,
                "a top-level section Switchyard has no equivalent for",
            ),
        }
    }
    match sections.model_list {
        Some(Yaml::Array(entries)) => {
            for (i, entry) in entries.iter().enumerate() {
                c.entry(i, entry);
            }
        }
        Some(_) => c.finding(FindingKind::Unmapped, "model_list", "not a list of models"),
        None => c.finding(
            FindingKind::Unmapped,
            "model_list",
            "missing: the config has no models, so Switchyard would have nothing to route",
        ),
    }
    c.settings(&sections);
    c.prices();
    Ok(c.finish())
}

/// The top-level sections, read after the models they refer to.
#[derive(Default)]
struct Sections<'a> {
    model_list: Option<&'a Yaml>,
    router: Option<&'a Yaml>,
    litellm: Option<&'a Yaml>,
    general: Option<&'a Yaml>,
}

/// A LiteLLM value that may name an environment variable (`os.environ/NAME`).
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Literal(String),
    Env(String),
}

impl Source {
    fn of(y: &Yaml) -> Option<Source> {
        let s = scalar(y)?;
        Some(match s.strip_prefix("os.environ/") {
            Some(var) => Source::Env(var.trim().to_string()),
            None => Source::Literal(s),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Provider {
    name: String,
    kind: ProviderKind,
    base_url: Option<String>,
    api_key_env: Option<String>,
    api_version: Option<String>,
    aws_access_key_id_env: Option<String>,
    aws_secret_access_key_env: Option<String>,
    aws_session_token_env: Option<String>,
    gcp_project: Option<String>,
    gcp_location: Option<String>,
    cloud: Cloud,
    region: String,
    jurisdiction: Jurisdiction,
    /// Lines written as comments in the provider's table (values the user must supply).
    notes: Vec<String>,
}

impl Provider {
    /// Two entries share a provider when everything but the name and notes is the same.
    fn same_endpoint(&self, other: &Provider) -> bool {
        let strip = |p: &Provider| Provider {
            name: String::new(),
            notes: Vec::new(),
            ..p.clone()
        };
        strip(self) == strip(other)
    }
}

#[derive(Debug)]
struct Deployment {
    name: String,
    provider: String,
    kind: ProviderKind,
    upstream_model: String,
    /// The entry's path, for findings about it.
    path: String,
    rpm: Option<i64>,
    tpm: Option<i64>,
    weight: Option<i64>,
    attempt_ms: Option<i64>,
    first_byte_ms: Option<i64>,
    /// `model_info.base_model`, without its provider prefix: what to price it as.
    base_model: Option<String>,
    /// USD per token, from `input_cost_per_token` / `output_cost_per_token`.
    cost_per_token: Option<(f64, f64)>,
    price: Option<(f64, f64, String)>,
}

#[derive(Debug, Default)]
struct Model {
    deployments: Vec<String>,
    fallbacks: Vec<String>,
    context_fallbacks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Weighted,
    Fastest,
    Cheapest,
    LeastBusy,
}

impl Strategy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::Fastest => "fastest",
            Self::Cheapest => "cheapest",
            Self::LeastBusy => "least_busy",
        }
    }
}

#[derive(Default)]
struct Converter {
    findings: Vec<Finding>,
    env: BTreeSet<String>,
    providers: Vec<Provider>,
    deployments: Vec<Deployment>,
    models: BTreeMap<String, Model>,
    strategy: Option<Strategy>,
    max_attempts: Option<i64>,
    attempt_ms: Option<i64>,
    first_byte_ms: Option<i64>,
    consecutive_failures: Option<i64>,
    cooldown_ms: Option<i64>,
    redis_state: Option<String>,
    master_key_env: Option<String>,
}

/// `litellm_params` keys that set request defaults, which Switchyard leaves to the caller.
const REQUEST_DEFAULTS: &[&str] = &[
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "response_format",
    "tool_choice",
    "drop_params",
];

impl Converter {
    fn finding(&mut self, kind: FindingKind, path: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            kind,
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// One `model_list` entry: a deployment of the model `model_name`.
    fn entry(&mut self, i: usize, entry: &Yaml) {
        let at = format!("model_list[{i}]");
        let Some(h) = entry.as_hash() else {
            self.finding(FindingKind::Unmapped, &at, "not a mapping");
            return;
        };
        let Some(model_name) = h.get(&y("model_name")).and_then(scalar) else {
            self.finding(FindingKind::Unmapped, &at, "no model_name: skipped");
            return;
        };
        let Some(params) = h.get(&y("litellm_params")).and_then(Yaml::as_hash) else {
            self.finding(
                FindingKind::Unmapped,
                &format!("{at}.litellm_params"),
                "missing: the entry does not say which model to call; skipped",
            );
            return;
        };
        for (k, _) in h {
            let key = key_str(k);
            if !matches!(
                key.as_str(),
                "model_name" | "litellm_params" | "model_info" | "rpm" | "tpm"
            ) {
                self.finding(
                    FindingKind::Unmapped,
                    &format!("{at}.{key}"),
                    "no Switchyard equivalent",
                );
            }
        }
        let pat = format!("{at}.litellm_params");
        let Some(model) = params.get(&y("model")).and_then(scalar) else {
            self.finding(
                FindingKind::Unmapped,
                &format!("{pat}.model"),
                "missing: skipped",
            );
            return;
        };
        if model_name.contains('*') || model.contains('*') {
            self.finding(
                FindingKind::Unmapped,
                &at,
                format!("wildcard route '{model_name}' → '{model}': Switchyard models are explicit names; add a [models] entry per model clients may ask for"),
            );
            return;
        }
        let get = |k: &str| params.get(&y(k));
        // openai/ with an api_base is LiteLLM's OpenAI-compatible route, unless it is OpenAI's.
        let compatible = get("api_base")
            .and_then(scalar)
            .is_some_and(|u| !u.contains("://api.openai.com"));
        let Some((kind, upstream)) = self.kind_of(&pat, &model, compatible) else {
            return;
        };
        let Some(provider) = self.provider(&pat, kind, &model, params) else {
            return;
        };
        let provider = self.intern(provider);
        for k in params.keys() {
            let key = key_str(k);
            let path = format!("{pat}.{key}");
            match key.as_str() {
                "model" | "api_key" | "api_base" | "api_version" | "rpm" | "tpm" | "weight"
                | "timeout" | "stream_timeout" | "aws_region_name" | "aws_access_key_id"
                | "aws_secret_access_key" | "aws_session_token" | "vertex_project"
                | "vertex_location" | "vertex_credentials" | "input_cost_per_token"
                | "output_cost_per_token" => {}
                k if REQUEST_DEFAULTS.contains(&k) => self.finding(
                    FindingKind::Unmapped,
                    &path,
                    "a request default: Switchyard forwards what the caller sends and does not add parameters",
                ),
                "azure_ad_token" | "azure_ad_token_provider" | "tenant_id" | "client_id"
                | "client_secret" => self.finding(
                    FindingKind::Unmapped,
                    &path,
                    "Entra ID credentials are not supported for Azure OpenAI yet: use an API key (api_key_env)",
                ),
                _ => self.finding(FindingKind::Unmapped, &path, "no Switchyard equivalent"),
            }
        }
        let int = |c: &mut Converter, k: &str, from: Option<&Yaml>| -> Option<i64> {
            let v = from?;
            match v.as_i64().or_else(|| scalar(v)?.parse().ok()) {
                Some(n) if n >= 0 => Some(n),
                _ => {
                    c.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.{k}"),
                        "not a non-negative whole number",
                    );
                    None
                }
            }
        };
        // rpm/tpm are documented inside litellm_params; older configs put them beside it.
        let rpm = int(self, "rpm", get("rpm").or_else(|| h.get(&y("rpm"))));
        let tpm = int(self, "tpm", get("tpm").or_else(|| h.get(&y("tpm"))));
        let weight = int(self, "weight", get("weight"));
        let attempt_ms = get("timeout").and_then(seconds_ms);
        let first_byte_ms = get("stream_timeout").and_then(seconds_ms);
        let mut base_model = None;
        let mut cost = (
            get("input_cost_per_token").and_then(Yaml::as_f64),
            get("output_cost_per_token").and_then(Yaml::as_f64),
        );
        if let Some(info) = h.get(&y("model_info")).and_then(Yaml::as_hash) {
            for (k, v) in info {
                let key = key_str(k);
                let path = format!("{at}.model_info.{key}");
                match key.as_str() {
                    "base_model" => {
                        base_model = scalar(v).map(|b| match b.split_once('/') {
                            Some((_, rest)) => rest.to_string(),
                            None => b,
                        })
                    }
                    "input_cost_per_token" => cost.0 = v.as_f64(),
                    "output_cost_per_token" => cost.1 = v.as_f64(),
                    "id" => self.finding(
                        FindingKind::Approximated,
                        &path,
                        "deployment ids are the [deployments] table names here; fallbacks to a single deployment id are not supported",
                    ),
                    _ => self.finding(FindingKind::Unmapped, &path, "no Switchyard equivalent"),
                }
            }
        }
        let name = unique(&format!("{}-{}", sanitize(&model_name), provider), |n| {
            self.deployments.iter().any(|d| d.name == n)
        });
        self.models
            .entry(model_name)
            .or_default()
            .deployments
            .push(name.clone());
        self.deployments.push(Deployment {
            name,
            provider,
            kind,
            upstream_model: upstream,
            path: pat,
            rpm,
            tpm,
            weight,
            attempt_ms,
            first_byte_ms,
            base_model,
            cost_per_token: match cost {
                (Some(i), Some(o)) => Some((i, o)),
                _ => None,
            },
            price: None,
        });
    }

    /// The provider kind and upstream model id of a LiteLLM `model` string.
    fn kind_of(
        &mut self,
        pat: &str,
        model: &str,
        has_api_base: bool,
    ) -> Option<(ProviderKind, String)> {
        let path = format!("{pat}.model");
        let (prefix, rest) = match model.split_once('/') {
            Some((p, r)) => (p, r.to_string()),
            None => {
                // LiteLLM infers the provider of well-known bare names.
                let openai = ["gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-"];
                if openai.iter().any(|p| model.starts_with(p)) {
                    return Some((ProviderKind::OpenAi, model.to_string()));
                }
                if model.starts_with("claude-") {
                    return Some((ProviderKind::Anthropic, model.to_string()));
                }
                self.finding(
                    FindingKind::Unmapped,
                    &path,
                    format!("'{model}' has no provider prefix (openai/, azure/, anthropic/, bedrock/, vertex_ai/, gemini/, hosted_vllm/) and is not a name LiteLLM infers one for; skipped"),
                );
                return None;
            }
        };
        let kind = match prefix {
            "openai" | "text-completion-openai" if has_api_base => ProviderKind::OpenAiCompatible,
            "openai" => ProviderKind::OpenAi,
            "azure" => ProviderKind::AzureOpenAi,
            "anthropic" => ProviderKind::Anthropic,
            "bedrock" => {
                let rest = match rest.split_once('/') {
                    Some(("converse", m)) => m.to_string(),
                    Some(("invoke", m)) => {
                        self.finding(
                            FindingKind::Approximated,
                            &path,
                            "bedrock/invoke/ calls InvokeModel; Switchyard calls the same model through the Converse API",
                        );
                        m.to_string()
                    }
                    _ => rest,
                };
                return Some((ProviderKind::Bedrock, rest));
            }
            "vertex_ai" | "vertex_ai_beta" => {
                if !(rest.starts_with("gemini") || rest.contains("embedding")) {
                    self.finding(
                        FindingKind::Unmapped,
                        &path,
                        format!("'{rest}' is a Vertex partner or Model Garden model; Switchyard's vertex provider speaks the Gemini API only; skipped"),
                    );
                    return None;
                }
                ProviderKind::Vertex
            }
            "gemini" => ProviderKind::Gemini,
            "hosted_vllm" | "openai_like" | "lm_studio" | "xinference" | "llamafile" => {
                ProviderKind::OpenAiCompatible
            }
            "ollama" | "ollama_chat" => {
                self.finding(
                    FindingKind::Approximated,
                    &path,
                    "LiteLLM calls Ollama's native API; Switchyard calls its OpenAI-compatible API under /v1 on the same server",
                );
                ProviderKind::OpenAiCompatible
            }
            other => {
                self.finding(
                    FindingKind::Unmapped,
                    &path,
                    format!("LiteLLM provider '{other}' has no Switchyard provider kind (openai, azure_openai, openai_compatible, anthropic, bedrock, gemini, vertex); skipped"),
                );
                return None;
            }
        };
        Some((kind, rest))
    }

    /// The provider an entry calls: endpoint, credentials and location.
    fn provider(
        &mut self,
        pat: &str,
        kind: ProviderKind,
        model: &str,
        params: &yaml_rust2::yaml::Hash,
    ) -> Option<Provider> {
        let get = |k: &str| params.get(&y(k)).and_then(Source::of);
        let mut p = Provider {
            name: String::new(),
            kind,
            base_url: None,
            api_key_env: None,
            api_version: None,
            aws_access_key_id_env: None,
            aws_secret_access_key_env: None,
            aws_session_token_env: None,
            gcp_project: None,
            gcp_location: None,
            cloud: Cloud::OpenAi,
            region: String::new(),
            jurisdiction: Jurisdiction::Global,
            notes: Vec::new(),
        };
        let mut host = None;
        match get("api_base") {
            Some(Source::Literal(url)) => {
                let mut url = url.trim_end_matches('/').to_string();
                if model.starts_with("ollama") && !url.ends_with("/v1") {
                    url.push_str("/v1");
                }
                host = url_host(&url);
                if host.is_none() {
                    self.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.api_base"),
                        format!("'{url}' is not an http(s) URL; skipped"),
                    );
                    return None;
                }
                p.base_url = Some(url);
            }
            Some(Source::Env(var)) => {
                let placeholder =
                    format!("https://{}.invalid", var.to_lowercase().replace('_', "-"));
                self.finding(
                    FindingKind::Unmapped,
                    &format!("{pat}.api_base"),
                    format!("the URL comes from environment variable {var}; Switchyard needs it in the file: replace the placeholder base_url {placeholder}"),
                );
                p.base_url = Some(placeholder);
            }
            None => {}
        }
        let candidate = match kind {
            ProviderKind::OpenAi => "openai".to_string(),
            ProviderKind::Anthropic => "anthropic".to_string(),
            ProviderKind::Gemini => "gemini".to_string(),
            ProviderKind::AzureOpenAi => match &host {
                Some(h) => format!("azure-{}", sanitize(h.split('.').next().unwrap_or(h))),
                None => "azure".to_string(),
            },
            ProviderKind::OpenAiCompatible => match &host {
                Some(h) => format!("compat-{}", sanitize(&h.replace(['.', ':'], "-"))),
                None => "compat".to_string(),
            },
            ProviderKind::Bedrock | ProviderKind::Vertex => String::new(),
        };
        // Credentials.
        let default_env = match kind {
            ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
            ProviderKind::AzureOpenAi => Some("AZURE_API_KEY"),
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
            ProviderKind::Gemini => Some("GEMINI_API_KEY"),
            ProviderKind::OpenAiCompatible | ProviderKind::Bedrock | ProviderKind::Vertex => None,
        };
        match get("api_key") {
            Some(Source::Env(var)) => p.api_key_env = Some(var),
            Some(Source::Literal(_)) if kind == ProviderKind::OpenAiCompatible => self.finding(
                FindingKind::Unmapped,
                &format!("{pat}.api_key"),
                "a literal key is not copied into the config; the provider is called without one: if the server needs a key, set api_key_env",
            ),
            Some(Source::Literal(_)) => {
                let var = format!("{}_API_KEY", candidate.to_uppercase().replace('-', "_"));
                self.finding(
                    FindingKind::Unmapped,
                    &format!("{pat}.api_key"),
                    format!("a literal key is not copied into the config: export it as {var}"),
                );
                p.api_key_env = Some(var);
            }
            None => {
                if let Some(var) = default_env {
                    self.finding(
                        FindingKind::Assumed,
                        &format!("{pat}.api_key"),
                        format!("not set: LiteLLM reads {var}, so api_key_env = \"{var}\""),
                    );
                    p.api_key_env = Some(var.to_string());
                }
            }
        }
        match get("api_version") {
            Some(Source::Literal(v)) => p.api_version = Some(v),
            Some(Source::Env(var)) => self.finding(
                FindingKind::Unmapped,
                &format!("{pat}.api_version"),
                format!("comes from environment variable {var}; Switchyard needs it in the file: set api_version on the provider (without it, Azure's v1 surface is used)"),
            ),
            None => {}
        }
        match kind {
            ProviderKind::OpenAi => {
                (p.cloud, p.region, p.jurisdiction) =
                    (Cloud::OpenAi, "us".into(), Jurisdiction::Us);
                self.assumed_location(pat, &p, "OpenAI's API platform");
            }
            ProviderKind::Anthropic => {
                (p.cloud, p.region, p.jurisdiction) =
                    (Cloud::Anthropic, "us".into(), Jurisdiction::Us);
                self.assumed_location(pat, &p, "Anthropic's API");
            }
            ProviderKind::Gemini => {
                (p.cloud, p.region, p.jurisdiction) =
                    (Cloud::Gcp, "global".into(), Jurisdiction::Global);
                self.assumed_location(pat, &p, "the Gemini API (Google chooses where it runs)");
            }
            ProviderKind::AzureOpenAi => {
                p.cloud = Cloud::Azure;
                if p.base_url.is_none() {
                    self.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.api_base"),
                        "an Azure OpenAI deployment needs its resource URL (api_base); skipped",
                    );
                    return None;
                }
                match host.as_deref().and_then(regions::azure_from_host) {
                    Some((region, j)) => {
                        (p.region, p.jurisdiction) = (region.into(), j);
                        self.finding(
                            FindingKind::Assumed,
                            &format!("{pat}.api_base"),
                            format!(
                                "region {region} (jurisdiction {}) read from the host name",
                                j.as_str()
                            ),
                        );
                    }
                    None => {
                        (p.region, p.jurisdiction) = ("unknown".into(), Jurisdiction::Global);
                        self.finding(
                            FindingKind::Assumed,
                            &format!("{pat}.api_base"),
                            "the Azure region is not recognisable from the host name: region = \"unknown\", jurisdiction = \"global\"; set both, or residency rules cannot use this provider",
                        );
                    }
                }
            }
            ProviderKind::OpenAiCompatible => {
                if p.base_url.is_none() {
                    self.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.api_base"),
                        "an OpenAI-compatible server needs its URL (api_base); skipped",
                    );
                    return None;
                }
                (p.cloud, p.region, p.jurisdiction) =
                    (Cloud::SelfHosted, "unknown".into(), Jurisdiction::Global);
                self.finding(
                    FindingKind::Assumed,
                    &format!("{pat}.api_base"),
                    "an OpenAI-compatible server: cloud = \"self_hosted\", region = \"unknown\", jurisdiction = \"global\"; set where it runs",
                );
            }
            ProviderKind::Bedrock => {
                let region = match get("aws_region_name") {
                    Some(Source::Literal(r)) => r,
                    other => {
                        let why = match other {
                            Some(Source::Env(var)) => {
                                format!("comes from environment variable {var}")
                            }
                            _ => "not set (LiteLLM then reads AWS_REGION_NAME)".to_string(),
                        };
                        self.finding(
                            FindingKind::Assumed,
                            &format!("{pat}.aws_region_name"),
                            format!("{why}: region = \"us-east-1\" assumed; Switchyard needs the region in the file"),
                        );
                        "us-east-1".to_string()
                    }
                };
                p.cloud = Cloud::Aws;
                p.jurisdiction = regions::aws(&region).unwrap_or_else(|| {
                    self.finding(
                        FindingKind::Assumed,
                        &format!("{pat}.aws_region_name"),
                        format!(
                            "no jurisdiction known for AWS region {region}: \"global\" assumed"
                        ),
                    );
                    Jurisdiction::Global
                });
                p.region = region;
                for (field, slot) in [
                    ("aws_access_key_id", &mut p.aws_access_key_id_env),
                    ("aws_secret_access_key", &mut p.aws_secret_access_key_env),
                    ("aws_session_token", &mut p.aws_session_token_env),
                ] {
                    match params.get(&y(field)).and_then(Source::of) {
                        Some(Source::Env(var)) => *slot = Some(var),
                        Some(Source::Literal(_)) => {
                            let var = field.to_uppercase();
                            self.finding(
                                FindingKind::Unmapped,
                                &format!("{pat}.{field}"),
                                format!("a literal credential is not copied into the config: export it as {var}"),
                            );
                            *slot = Some(var);
                        }
                        None => {}
                    }
                }
                if p.aws_access_key_id_env.is_some() != p.aws_secret_access_key_env.is_some() {
                    self.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.aws_access_key_id"),
                        "an access key id needs its secret and the other way round: both dropped, the AWS credential chain is used",
                    );
                    p.aws_access_key_id_env = None;
                    p.aws_secret_access_key_env = None;
                }
            }
            ProviderKind::Vertex => {
                match get("vertex_project") {
                    Some(Source::Literal(project)) => p.gcp_project = Some(project),
                    Some(Source::Env(var)) => self.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.vertex_project"),
                        format!("comes from environment variable {var}; set gcp_project on the provider"),
                    ),
                    None => self.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.vertex_project"),
                        "not set (LiteLLM then reads VERTEXAI_PROJECT): set gcp_project on the provider",
                    ),
                }
                let location = match get("vertex_location") {
                    Some(Source::Literal(l)) => l,
                    other => {
                        let why = match other {
                            Some(Source::Env(var)) => {
                                format!("comes from environment variable {var}")
                            }
                            _ => "not set".to_string(),
                        };
                        self.finding(
                            FindingKind::Assumed,
                            &format!("{pat}.vertex_location"),
                            format!("{why}: \"us-central1\" assumed (LiteLLM's default)"),
                        );
                        "us-central1".to_string()
                    }
                };
                p.cloud = Cloud::Gcp;
                p.jurisdiction = regions::gcp(&location).unwrap_or_else(|| {
                    self.finding(
                        FindingKind::Assumed,
                        &format!("{pat}.vertex_location"),
                        format!(
                            "no jurisdiction known for location {location}: \"global\" assumed"
                        ),
                    );
                    Jurisdiction::Global
                });
                p.gcp_location = Some(location.clone());
                p.region = location;
                if let Some(creds) = get("vertex_credentials") {
                    let what = match creds {
                        Source::Literal(path) => {
                            p.notes.push(format!("credentials_file = \"{path}\"   # from vertex_credentials: uncomment once the file exists"));
                            format!("'{path}' is written as a commented-out credentials_file (check reads the file, so it must exist)")
                        }
                        Source::Env(var) => format!("comes from environment variable {var}; set credentials_file to the service-account file"),
                    };
                    self.finding(
                        FindingKind::Unmapped,
                        &format!("{pat}.vertex_credentials"),
                        format!("{what}; until then application-default credentials are used"),
                    );
                }
            }
        }
        p.name = match kind {
            ProviderKind::Bedrock => format!("bedrock-{}", p.region),
            ProviderKind::Vertex => format!("vertex-{}", p.region),
            _ => candidate,
        };
        Some(p)
    }

    /// Notes once per provider that its location was assumed.
    fn assumed_location(&mut self, pat: &str, p: &Provider, what: &str) {
        if self.providers.iter().any(|q| q.kind == p.kind) {
            return;
        }
        self.finding(
            FindingKind::Assumed,
            &format!("{pat}.model"),
            format!(
                "{what}: cloud = \"{}\", region = \"{}\", jurisdiction = \"{}\"",
                p.cloud.as_str(),
                p.region,
                p.jurisdiction.as_str()
            ),
        );
    }

    /// The name of the provider equal to `p`, adding it if it is new.
    fn intern(&mut self, mut p: Provider) -> String {
        if let Some(q) = self.providers.iter_mut().find(|q| q.same_endpoint(&p)) {
            for n in p.notes {
                if !q.notes.contains(&n) {
                    q.notes.push(n);
                }
            }
            return q.name.clone();
        }
        p.name = unique(&p.name, |n| self.providers.iter().any(|q| q.name == n));
        let name = p.name.clone();
        self.providers.push(p);
        name
    }

    /// `router_settings`, `litellm_settings` and `general_settings`.
    fn settings(&mut self, s: &Sections) {
        let mut fallbacks: Vec<(String, &Yaml)> = Vec::new();
        let mut context: Vec<(String, &Yaml)> = Vec::new();
        let mut aliases = None;
        // litellm_settings first: router_settings overrides what both set.
        for (section, value) in [
            ("litellm_settings", s.litellm),
            ("router_settings", s.router),
        ] {
            let Some(value) = value else { continue };
            let Some(h) = value.as_hash() else {
                self.finding(FindingKind::Unmapped, section, "not a mapping");
                continue;
            };
            let mut redis = (None, None, false);
            for (k, v) in h {
                let key = key_str(k);
                let path = format!("{section}.{key}");
                match key.as_str() {
                    "routing_strategy" => {
                        self.strategy = self.routing_strategy(&path, v);
                    }
                    "fallbacks" => fallbacks.push((path, v)),
                    "context_window_fallbacks" => context.push((path, v)),
                    "model_group_alias" => aliases = Some((path, v)),
                    "num_retries" => match v.as_i64() {
                        Some(n) if n >= 0 => {
                            self.max_attempts = Some(n + 1);
                            self.finding(
                                FindingKind::Approximated,
                                &path,
                                format!("server.max_attempts = {}: LiteLLM retries a model group {n} times; Switchyard counts every upstream attempt, failovers included", n + 1),
                            );
                        }
                        _ => self.finding(FindingKind::Unmapped, &path, "not a whole number"),
                    },
                    "timeout" | "request_timeout" => match seconds_ms(v) {
                        Some(ms) => {
                            self.attempt_ms = Some(ms);
                            self.finding(
                                FindingKind::Approximated,
                                &path,
                                format!("server.timeouts.attempt_ms = {ms}: one non-streaming attempt; streams keep first_byte_ms, stall_ms and total_ms"),
                            );
                        }
                        None => self.finding(FindingKind::Unmapped, &path, "not a positive number of seconds"),
                    },
                    "stream_timeout" => match seconds_ms(v) {
                        Some(ms) => self.first_byte_ms = Some(ms),
                        None => self.finding(FindingKind::Unmapped, &path, "not a positive number of seconds"),
                    },
                    "allowed_fails" => match v.as_i64() {
                        Some(n) if n >= 0 => {
                            self.consecutive_failures = Some(n + 1);
                            self.finding(
                                FindingKind::Approximated,
                                &path,
                                format!("breaker.consecutive_failures = {}: LiteLLM counts failures per minute, Switchyard's breaker counts failures in a row (and an error rate over window_ms)", n + 1),
                            );
                        }
                        _ => self.finding(FindingKind::Unmapped, &path, "not a whole number"),
                    },
                    "cooldown_time" => match seconds_ms(v) {
                        Some(ms) => {
                            self.cooldown_ms = Some(ms);
                            self.finding(
                                FindingKind::Approximated,
                                &path,
                                format!("breaker.probe_initial_ms = breaker.open_ms = {ms}: after the cooldown Switchyard sends one probe, not all traffic"),
                            );
                        }
                        None => self.finding(FindingKind::Unmapped, &path, "not a positive number of seconds"),
                    },
                    "redis_host" => redis.0 = Source::of(v),
                    "redis_port" => redis.1 = scalar(v),
                    "redis_password" => redis.2 = true,
                    "content_policy_fallbacks" => self.finding(
                        FindingKind::Unmapped,
                        &path,
                        "Switchyard answers a content-filter refusal to the client (retry table: content_filter = \"fail\"); there are no content-policy fallback models",
                    ),
                    "enable_pre_call_checks" => self.finding(
                        FindingKind::Approximated,
                        &path,
                        "no pre-call check: a prompt over the window goes to the model's context_fallbacks when the upstream refuses it",
                    ),
                    _ => self.finding(FindingKind::Unmapped, &path, "no Switchyard equivalent"),
                }
            }
            self.redis(section, redis);
        }
        for (path, v) in fallbacks {
            self.fallbacks(&path, v, false);
        }
        for (path, v) in context {
            self.fallbacks(&path, v, true);
        }
        if let Some((path, v)) = aliases {
            self.aliases(&path, v);
        }
        if let Some(general) = s.general {
            self.general(general);
        }
        if self.master_key_env.is_none() {
            self.finding(
                FindingKind::Assumed,
                "general_settings.master_key",
                "not set: LiteLLM then accepts requests without a key, Switchyard refuses them (401); add [[keys]] or create managed keys with switchyard keys create",
            );
        }
    }

    fn routing_strategy(&mut self, path: &str, v: &Yaml) -> Option<Strategy> {
        let name = scalar(v).unwrap_or_default();
        let (strategy, note) = match name.as_str() {
            "simple-shuffle" => (Strategy::Weighted, None),
            "latency-based-routing" => (Strategy::Fastest, None),
            "cost-based-routing" => (Strategy::Cheapest, None),
            "least-busy" => (Strategy::LeastBusy, None),
            "usage-based-routing" | "usage-based-routing-v2" => (
                Strategy::LeastBusy,
                Some("LiteLLM picks the deployment with the least TPM used this minute; least_busy picks the one with the fewest requests in flight, within each deployment's rpm/tpm limits"),
            ),
            other => {
                self.finding(
                    FindingKind::Unmapped,
                    path,
                    format!("unknown strategy '{other}': models keep simple-shuffle's mapping, weighted"),
                );
                return None;
            }
        };
        if let Some(note) = note {
            self.finding(FindingKind::Approximated, path, note);
        }
        Some(strategy)
    }

    fn redis(
        &mut self,
        section: &str,
        (host, port, password): (Option<Source>, Option<String>, bool),
    ) {
        let Some(host) = host else { return };
        let path = format!("{section}.redis_host");
        let plausible = |h: &str| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        };
        let port = port
            .filter(|p| p.parse::<u16>().is_ok())
            .unwrap_or_else(|| "6379".into());
        match host {
            Source::Literal(h) if plausible(&h) => {
                let url = format!("redis://{h}:{port}");
                self.finding(
                    FindingKind::Approximated,
                    &path,
                    format!("[governance] state = \"{url}\": LiteLLM shares router usage and cooldowns there; Switchyard shares rate limits and budgets{}",
                        if password { "; the password is not copied: put it in the URL (redis://:PASSWORD@host:port)" } else { "" }),
                );
                self.redis_state = Some(url);
            }
            _ => self.finding(
                FindingKind::Unmapped,
                &path,
                "not a literal host name: set [governance] state = \"redis://HOST:PORT\" to share limits and budgets between gateways",
            ),
        }
    }

    /// `[{"model": ["fallback", ...]}, ...]` onto the models' `fallbacks` or
    /// `context_fallbacks`.
    fn fallbacks(&mut self, path: &str, v: &Yaml, context: bool) {
        let Some(list) = v.as_vec() else {
            self.finding(
                FindingKind::Unmapped,
                path,
                "not a list of {model: [fallbacks]} mappings",
            );
            return;
        };
        for (i, item) in list.iter().enumerate() {
            let Some(h) = item.as_hash() else {
                self.finding(
                    FindingKind::Unmapped,
                    &format!("{path}[{i}]"),
                    "not a {model: [fallbacks]} mapping",
                );
                continue;
            };
            for (k, targets) in h {
                let from = key_str(k);
                let at = format!("{path}[{i}].{from}");
                if !self.models.contains_key(&from) {
                    self.finding(
                        FindingKind::Unmapped,
                        &at,
                        format!("model '{from}' was not converted; its fallbacks are dropped"),
                    );
                    continue;
                }
                let targets: Vec<String> = match targets {
                    Yaml::Array(a) => a.iter().filter_map(scalar).collect(),
                    other => scalar(other).into_iter().collect(),
                };
                for t in targets {
                    if t == from || !self.models.contains_key(&t) {
                        self.finding(
                            FindingKind::Unmapped,
                            &at,
                            format!("fallback '{t}' is not another converted model; dropped"),
                        );
                        continue;
                    }
                    let Some(m) = self.models.get_mut(&from) else {
                        continue;
                    };
                    let list = if context {
                        &mut m.context_fallbacks
                    } else {
                        &mut m.fallbacks
                    };
                    if !list.contains(&t) {
                        list.push(t);
                    }
                }
            }
        }
    }

    /// `model_group_alias: {alias: model}`: the alias becomes a model with the same
    /// deployments and fallbacks.
    fn aliases(&mut self, path: &str, v: &Yaml) {
        let Some(h) = v.as_hash() else {
            self.finding(
                FindingKind::Unmapped,
                path,
                "not a mapping of alias → model",
            );
            return;
        };
        for (k, target) in h {
            let alias = key_str(k);
            let at = format!("{path}.{alias}");
            // The long form is {model: NAME, hidden: bool}.
            let target = match target {
                Yaml::Hash(t) => t.get(&y("model")).and_then(scalar),
                other => scalar(other),
            };
            let Some(target) = target else {
                self.finding(FindingKind::Unmapped, &at, "no target model");
                continue;
            };
            if self.models.contains_key(&alias) {
                self.finding(
                    FindingKind::Unmapped,
                    &at,
                    format!("'{alias}' is already a model; the alias is dropped"),
                );
                continue;
            }
            let Some(m) = self.models.get(&target) else {
                self.finding(
                    FindingKind::Unmapped,
                    &at,
                    format!("target '{target}' was not converted; dropped"),
                );
                continue;
            };
            let copy = Model {
                deployments: m.deployments.clone(),
                fallbacks: m.fallbacks.clone(),
                context_fallbacks: m.context_fallbacks.clone(),
            };
            self.finding(
                FindingKind::Approximated,
                &at,
                format!("model '{alias}' with the deployments of '{target}' (Switchyard has no aliases; it is listed in /v1/models)"),
            );
            self.models.insert(alias, copy);
        }
    }

    fn general(&mut self, v: &Yaml) {
        let Some(h) = v.as_hash() else {
            self.finding(FindingKind::Unmapped, "general_settings", "not a mapping");
            return;
        };
        for (k, v) in h {
            let key = key_str(k);
            let path = format!("general_settings.{key}");
            match key.as_str() {
                "master_key" => {
                    let var = match Source::of(v) {
                        Some(Source::Env(var)) => var,
                        _ => {
                            self.finding(
                                FindingKind::Unmapped,
                                &path,
                                "a literal key is not copied into the config: export it as LITELLM_MASTER_KEY",
                            );
                            "LITELLM_MASTER_KEY".to_string()
                        }
                    };
                    self.finding(
                        FindingKind::Approximated,
                        &path,
                        format!("LiteLLM's master key administers the proxy and calls every model: {var} becomes [admin] token_env and a [[keys]] entry 'litellm-master-key' for all models; give applications their own keys (switchyard keys create) and retire it"),
                    );
                    self.master_key_env = Some(var);
                }
                "database_url" => self.finding(
                    FindingKind::Unmapped,
                    &path,
                    "LiteLLM's database keeps its keys, teams and spend in LiteLLM's schema, which Switchyard does not read; Switchyard keeps its own ([governance] keys_db, [ledger] url; SQLite next to the config by default): recreate keys and teams with switchyard keys",
                ),
                _ => self.finding(FindingKind::Unmapped, &path, "no Switchyard equivalent"),
            }
        }
    }

    /// Prices from the shipped table, `model_info.base_model` or per-token costs; a finding
    /// for each deployment left without one.
    fn prices(&mut self) {
        let table = DefaultPrices::shipped().ok();
        let mut findings = Vec::new();
        for d in &mut self.deployments {
            if table.is_some_and(|t| t.lookup(d.kind, &d.upstream_model).is_some()) {
                continue;
            }
            if let Some((i, o)) = d.cost_per_token {
                d.price = Some((i * 1e6, o * 1e6, "from input/output_cost_per_token".into()));
                continue;
            }
            let base = d.base_model.as_deref();
            if let Some((base, p)) = base.and_then(|b| Some((b, table?.lookup(d.kind, b)?))) {
                d.price = Some((
                    p.input.0.as_usd(),
                    p.output.0.as_usd(),
                    format!("the shipped price of {base} (model_info.base_model)"),
                ));
                continue;
            }
            let why = match (d.kind, base) {
                (ProviderKind::OpenAiCompatible, _) => "a self-hosted model: add price = { input = 0.0, output = 0.0 } if it costs nothing per token, or its real price",
                (ProviderKind::AzureOpenAi, None) => "an Azure deployment name says nothing about the model: set model_info.base_model in LiteLLM, or add price = { input = ..., output = ... } (USD per million tokens)",
                _ => "add price = { input = ..., output = ... } (USD per million tokens)",
            };
            findings.push(Finding {
                kind: FindingKind::Unmapped,
                path: format!("{}.model", d.path),
                message: format!(
                    "no price: the shipped price table does not know {} on {}; {why}",
                    d.upstream_model,
                    d.kind.as_str()
                ),
            });
        }
        self.findings.extend(findings);
    }

    fn finish(mut self) -> Conversion {
        let mut doc = Doc::default();
        doc.comment("Converted from a LiteLLM proxy config by `switchyard import litellm`.\nRead the findings report: what was not mapped, approximated or assumed. Validate with `switchyard check`.");
        if self.max_attempts.is_some() || self.attempt_ms.is_some() || self.first_byte_ms.is_some()
        {
            if let Some(n) = self.max_attempts {
                doc.table(&["server"]);
                doc.set("max_attempts", &Val::Int(n), Some("num_retries + 1"));
            }
            if self.attempt_ms.is_some() || self.first_byte_ms.is_some() {
                doc.table(&["server", "timeouts"]);
                if let Some(ms) = self.attempt_ms {
                    doc.set("attempt_ms", &Val::Int(ms), None);
                    // total_ms bounds every attempt; keep it above a long LiteLLM timeout.
                    if ms > 600_000 {
                        doc.set("total_ms", &Val::Int(ms), None);
                    }
                }
                if let Some(ms) = self.first_byte_ms {
                    doc.set("first_byte_ms", &Val::Int(ms), Some("stream_timeout"));
                }
            }
        }
        if let Some(url) = &self.redis_state {
            doc.table(&["governance"]);
            doc.set("state", &Val::Str(url.clone()), None);
        }
        if let Some(var) = self.master_key_env.clone() {
            doc.table(&["admin"]);
            doc.set(
                "token_env",
                &Val::Str(var.clone()),
                Some("general_settings.master_key"),
            );
            self.env.insert(var);
        }
        if self.consecutive_failures.is_some() || self.cooldown_ms.is_some() {
            doc.table(&["breaker"]);
            if let Some(n) = self.consecutive_failures {
                doc.set(
                    "consecutive_failures",
                    &Val::Int(n),
                    Some("allowed_fails + 1"),
                );
                doc.set(
                    "window_ms",
                    &Val::Int(60_000),
                    Some("LiteLLM counts per minute"),
                );
            }
            if let Some(ms) = self.cooldown_ms {
                doc.set("probe_initial_ms", &Val::Int(ms), Some("cooldown_time"));
                doc.set("open_ms", &Val::Int(ms), None);
            }
        }
        if let Some(var) = &self.master_key_env {
            doc.array_table("keys");
            doc.set("name", &Val::Str("litellm-master-key".into()), None);
            doc.set("secret_env", &Val::Str(var.clone()), None);
            doc.set("models", &Val::Strs(vec!["*".into()]), None);
        }
        for p in &self.providers {
            doc.table(&["providers", &p.name]);
            doc.set("kind", &Val::Str(p.kind.as_str().into()), None);
            let strs: [(&str, &Option<String>); 8] = [
                ("base_url", &p.base_url),
                ("api_key_env", &p.api_key_env),
                ("api_version", &p.api_version),
                ("aws_access_key_id_env", &p.aws_access_key_id_env),
                ("aws_secret_access_key_env", &p.aws_secret_access_key_env),
                ("aws_session_token_env", &p.aws_session_token_env),
                ("gcp_project", &p.gcp_project),
                ("gcp_location", &p.gcp_location),
            ];
            for (k, v) in strs {
                if let Some(v) = v {
                    doc.set(k, &Val::Str(v.clone()), None);
                    if k.ends_with("_env") {
                        self.env.insert(v.clone());
                    }
                }
            }
            doc.set("cloud", &Val::Str(p.cloud.as_str().into()), None);
            doc.set("region", &Val::Str(p.region.clone()), None);
            doc.set(
                "jurisdiction",
                &Val::Str(p.jurisdiction.as_str().into()),
                None,
            );
            for n in &p.notes {
                doc.comment(n);
            }
        }
        for d in &self.deployments {
            doc.table(&["deployments", &d.name]);
            doc.set("provider", &Val::Str(d.provider.clone()), None);
            doc.set("upstream_model", &Val::Str(d.upstream_model.clone()), None);
            if let Some((i, o, why)) = &d.price {
                doc.set(
                    "price",
                    &Val::Inline(vec![
                        ("input".into(), Val::Float(round(*i))),
                        ("output".into(), Val::Float(round(*o))),
                    ]),
                    Some(why),
                );
            }
            let limits: Vec<(String, Val)> = [("rpm", d.rpm), ("tpm", d.tpm)]
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), Val::Int(v?))))
                .collect();
            if !limits.is_empty() {
                doc.set("limits", &Val::Inline(limits), None);
            }
            let timeouts: Vec<(String, Val)> = [
                ("attempt_ms", d.attempt_ms),
                ("first_byte_ms", d.first_byte_ms),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), Val::Int(v?))))
            .collect();
            if !timeouts.is_empty() {
                doc.set(
                    "timeouts",
                    &Val::Inline(timeouts),
                    Some("timeout / stream_timeout"),
                );
            }
        }
        let strategy = self.strategy.unwrap_or(Strategy::Weighted);
        for (name, m) in &self.models {
            doc.table(&["models", name]);
            doc.set("deployments", &Val::Strs(m.deployments.clone()), None);
            if m.deployments.len() > 1 {
                doc.set("strategy", &Val::Str(strategy.as_str().into()), None);
                if strategy == Strategy::Weighted {
                    // simple-shuffle weighs by weight, else rpm, else tpm, else evenly.
                    let weights: Vec<(String, Val)> = m
                        .deployments
                        .iter()
                        .filter_map(|n| self.deployments.iter().find(|d| &d.name == n))
                        .map(|d| {
                            let w = d
                                .weight
                                .or(d.rpm)
                                .or(d.tpm)
                                .unwrap_or(1)
                                .clamp(0, i64::from(u32::MAX));
                            (d.name.clone(), Val::Int(w))
                        })
                        .collect();
                    doc.set(
                        "weights",
                        &Val::Inline(weights),
                        Some("simple-shuffle: weight, else rpm, else tpm"),
                    );
                }
            }
            if !m.fallbacks.is_empty() {
                doc.set("fallbacks", &Val::Strs(m.fallbacks.clone()), None);
            }
            if !m.context_fallbacks.is_empty() {
                doc.set(
                    "context_fallbacks",
                    &Val::Strs(m.context_fallbacks.clone()),
                    None,
                );
            }
        }
        Conversion {
            toml: doc.finish(),
            findings: self.findings,
            env_vars: self.env.into_iter().collect(),
        }
    }
}

/// Rounds a USD-per-million price to what a price table states (no float noise).
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn y(s: &str) -> Yaml {
    Yaml::String(s.to_string())
}

/// A scalar as text (YAML reads `2023-05-15` as a string but `2` as an integer).
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn key_str(k: &Yaml) -> String {
    scalar(k).unwrap_or_else(|| "?".to_string())
}

/// Seconds (integer or fractional) → positive milliseconds.
fn seconds_ms(v: &Yaml) -> Option<i64> {
    let s = v.as_f64().or_else(|| v.as_i64().map(|i| i as f64))?;
    let ms = (s * 1000.0).round();
    (1.0..1e12).contains(&ms).then_some(ms as i64)
}

/// The host (and port) of an http(s) URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| host.to_string())
}

/// A name usable as a Switchyard table key and in metrics: lower-case letters, digits, `-`,
/// `_` and `.`; anything else becomes `-`.
fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.trim_matches('-').to_string()
}

/// `base`, or `base-2`, `base-3`, ... the first that `taken` says is free.
fn unique(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
#[path = "litellm_tests.rs"]
mod tests;
