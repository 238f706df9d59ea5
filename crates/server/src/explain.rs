//! `switchyard route explain`: how a hypothetical request would be routed, from a config file
//! (with fresh health) — every deployment of the model and its fallbacks, eligible or not and
//! why, breaker state (when it probes next, failed probes, trips) and cooldown, headroom, and the ranking with scores.
//!
//! Against a running gateway's live health (`--gateway URL --admin-token T`) is left for the
//! admin API: it would fetch the same [`Explanation`] as JSON from an admin route that calls
//! [`explain`] with the gateway's own snapshot and `Health`.

use crate::config::{self, Problem, Snapshot};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt::Write as _;
use std::path::PathBuf;
use switchyard_router::{
    BreakerStatus, DataClass, DataClassError, DeploymentView, Estimate, Explanation, Health,
    PreferenceError, Preferences, RouteError, RouteRequest,
};
use tokio::time::Instant;

/// `switchyard route ...` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RouteCommand {
    /// Explain how a request for a model would be routed.
    Explain(ExplainOptions),
}

/// Arguments of `switchyard route explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainOptions {
    /// The config file (TOML); health starts fresh. Not needed with --gateway.
    #[arg(
        long,
        short,
        env = "SWITCHYARD_CONFIG",
        hide_env_values = true,
        required_unless_present = "gateway"
    )]
    pub config: Option<PathBuf>,
    /// Ask a running gateway instead: its live config and health (`http://host:port`).
    #[arg(long)]
    pub gateway: Option<String>,
    /// The gateway's admin token (with --gateway).
    #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The model the request asks for.
    #[arg(long)]
    pub model: String,
    /// Route as this key (by name): its model access and default data class apply.
    #[arg(long)]
    pub key: Option<String>,
    /// The routing header, e.g. 'x-switchyard-route: sort=price; only=a,b'.
    #[arg(long)]
    pub header: Option<String>,
    /// The data class (overrides the key's).
    #[arg(long)]
    pub data_class: Option<String>,
    /// Estimated input tokens.
    #[arg(long, default_value_t = 1_000)]
    pub input_tokens: u64,
    /// Maximum output tokens.
    #[arg(long, default_value_t = 1_000)]
    pub max_output_tokens: u64,
    /// Explain a streamed request (TTFT instead of latency; no hedging).
    #[arg(long)]
    pub stream: bool,
}

/// Why a request cannot be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The config file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config has errors.
    #[error("the config has errors:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Config(Vec<Problem>),
    /// No key has that name.
    #[error("no key is named '{0}'")]
    UnknownKey(String),
    /// The key may not use the model.
    #[error("key '{key}' may not use model '{model}'")]
    ModelNotAllowed {
        /// The key.
        key: String,
        /// The model.
        model: String,
    },
    /// The data class name is invalid.
    #[error(transparent)]
    DataClass(#[from] DataClassError),
    /// The routing header is invalid (a 400 for a real request).
    #[error("invalid x-switchyard-route header: {0}")]
    Header(#[from] PreferenceError),
    /// Routing itself failed before ranking (unknown model or data class).
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The running gateway could not be asked.
    #[error("gateway: {0}")]
    Gateway(String),
}

/// A hypothetical request.
#[derive(Debug, Clone, Copy)]
pub struct Hypothetical<'a> {
    /// The model.
    pub model: &'a str,
    /// The key's name.
    pub key: Option<&'a str>,
    /// The `x-switchyard-route` header (with or without its name).
    pub header: Option<&'a str>,
    /// A data class overriding the key's.
    pub data_class: Option<&'a str>,
    /// Token estimate.
    pub estimate: Estimate,
    /// Streamed or not.
    pub stream: bool,
}

/// Explains `req` against a snapshot and health. Pure apart from reading the clock.
pub fn explain(
    snapshot: &Snapshot,
    health: &Health,
    req: &Hypothetical<'_>,
) -> Result<Explanation, ExplainError> {
    let key = match req.key {
        None => None,
        Some(name) => {
            let key = snapshot
                .key_by_name(name)
                .ok_or_else(|| ExplainError::UnknownKey(name.to_string()))?;
            if !key.allows(req.model) {
                return Err(ExplainError::ModelNotAllowed {
                    key: name.to_string(),
                    model: req.model.to_string(),
                });
            }
            Some(key)
        }
    };
    let class = match req.data_class {
        Some(c) => Some(DataClass::new(c)?),
        None => key.and_then(|k| k.data_class.clone()),
    };
    let preferences = match req.header {
        None => Preferences::default(),
        Some(h) => {
            let value = match h.split_once(':') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("x-switchyard-route") => {
                    value
                }
                _ => h,
            };
            Preferences::parse_header(value)?
        }
    };
    let route = RouteRequest {
        model: req.model,
        data_class: class.as_ref(),
        preferences: &preferences,
        estimate: req.estimate,
        stream: req.stream,
    };
    // A fixed seed: the same question gets the same answer.
    let mut rng = StdRng::seed_from_u64(0);
    Ok(switchyard_router::explain(
        &snapshot.catalog,
        health,
        &route,
        &mut rng,
    )?)
}

/// Renders an explanation as a text table.
pub fn render(x: &Explanation) -> String {
    let now = Instant::now();
    let mut rows = vec![[
        "rank",
        "deployment",
        "model",
        "provider",
        "cloud",
        "region",
        "jur",
        "tags",
        "price $",
        "score",
        "breaker",
        "headroom",
        "eligible / why not",
    ]
    .map(String::from)];
    for r in &x.rows {
        let d = &r.deployment;
        let p = &d.provider;
        let breaker = breaker_cell(&r.view, now);
        let mut headroom = Vec::new();
        if let Some(h) = r.view.rpm_headroom {
            headroom.push(format!("rpm {h}"));
        }
        if let Some(h) = r.view.tpm_headroom {
            headroom.push(format!("tpm {h}"));
        }
        if let Some(h) = r.view.concurrency_headroom {
            headroom.push(format!("conc {h}"));
        }
        let why = if r.reasons.is_empty() {
            "eligible".to_string()
        } else {
            r.reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        rows.push([
            r.rank.map_or("-".into(), |n| n.to_string()),
            d.id.to_string(),
            r.model.to_string(),
            p.id.to_string(),
            p.cloud.to_string(),
            p.region.to_string(),
            p.jurisdiction.to_string(),
            d.tags.join(","),
            format!("{:.6}", r.price.as_usd()),
            r.score
                .map_or("-".into(), |s| format!("{s:.4} ({})", r.ranking)),
            breaker,
            if headroom.is_empty() {
                "unlimited".into()
            } else {
                headroom.join(" ")
            },
            why,
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("route explain: model '{}'\n", x.model);
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let ranked: Vec<&str> = x.ranking().iter().map(|r| &*r.deployment.id).collect();
    let _ = writeln!(
        out,
        "plan: {}",
        if ranked.is_empty() {
            "nothing is eligible".to_string()
        } else {
            ranked.join(" → ")
        }
    );
    out
}

/// The breaker column: state, when an open breaker probes next, failed probes and trips.
fn breaker_cell(v: &DeploymentView, now: Instant) -> String {
    let (state, reason) = match v.breaker {
        BreakerStatus::Closed => ("closed".to_string(), None),
        BreakerStatus::Open { reason, until } => (
            format!(
                "open, probe in {:.1}s",
                until.saturating_duration_since(now).as_secs_f64()
            ),
            Some(reason),
        ),
        BreakerStatus::HalfOpen {
            reason,
            probe_in_flight,
        } => (
            if probe_in_flight {
                "half-open, probe in flight"
            } else {
                "half-open, next request probes"
            }
            .to_string(),
            Some(reason),
        ),
    };
    let mut notes: Vec<String> = reason.map(|r| r.to_string()).into_iter().collect();
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if v.failed_probes > 0 {
        let n = u64::from(v.failed_probes);
        notes.push(format!("{n} failed probe{}", plural(n)));
    }
    if v.trips > 0 {
        notes.push(format!("opened {} time{}", v.trips, plural(v.trips)));
    }
    if notes.is_empty() {
        state
    } else {
        format!("{state} ({})", notes.join("; "))
    }
}

/// Runs `switchyard route explain`: against a running gateway's live config and health with
/// `--gateway`, else against the config file with fresh health. Returns the text to print.
pub fn run(options: &ExplainOptions) -> Result<String, ExplainError> {
    if let Some(gateway) = &options.gateway {
        return ask_gateway(gateway, options);
    }
    let path = options.config.clone().unwrap_or_default();
    let text = std::fs::read_to_string(&path).map_err(|source| ExplainError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let snapshot =
        config::compile(&text, &|name| std::env::var(name).ok()).map_err(ExplainError::Config)?;
    let x = explain(&snapshot, &Health::default(), &options.hypothetical())?;
    Ok(render(&x))
}

impl ExplainOptions {
    fn hypothetical(&self) -> Hypothetical<'_> {
        Hypothetical {
            model: &self.model,
            key: self.key.as_deref(),
            header: self.header.as_deref(),
            data_class: self.data_class.as_deref(),
            estimate: Estimate {
                input_tokens: self.input_tokens,
                max_output_tokens: self.max_output_tokens,
            },
            stream: self.stream,
        }
    }
}

/// The query of `GET /admin/route/explain`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct ExplainQuery {
    model: String,
    key: Option<String>,
    header: Option<String>,
    data_class: Option<String>,
    #[serde(default = "thousand")]
    input_tokens: u64,
    #[serde(default = "thousand")]
    max_output_tokens: u64,
    #[serde(default)]
    stream: bool,
}

fn thousand() -> u64 {
    1_000
}

impl ExplainQuery {
    /// Explains the query against live state.
    pub(crate) fn explain(
        &self,
        snapshot: &Snapshot,
        health: &Health,
    ) -> Result<String, ExplainError> {
        let x = explain(
            snapshot,
            health,
            &Hypothetical {
                model: &self.model,
                key: self.key.as_deref(),
                header: self.header.as_deref(),
                data_class: self.data_class.as_deref(),
                estimate: Estimate {
                    input_tokens: self.input_tokens,
                    max_output_tokens: self.max_output_tokens,
                },
                stream: self.stream,
            },
        )?;
        Ok(render(&x))
    }
}

/// Asks a running gateway's admin API (`GET /admin/route/explain`).
fn ask_gateway(gateway: &str, o: &ExplainOptions) -> Result<String, ExplainError> {
    let fail = |e: &dyn std::fmt::Display| ExplainError::Gateway(e.to_string());
    let query = ExplainQuery {
        model: o.model.clone(),
        key: o.key.clone(),
        header: o.header.clone(),
        data_class: o.data_class.clone(),
        input_tokens: o.input_tokens,
        max_output_tokens: o.max_output_tokens,
        stream: o.stream,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&e))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| fail(&e))?;
        let mut url = reqwest::Url::parse(&format!(
            "{}/admin/route/explain",
            gateway.trim_end_matches('/')
        ))
        .map_err(|e| fail(&e))?;
        url.query_pairs_mut().extend_pairs(
            serde_json::to_value(&query)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string))),
        );
        let mut request = client.get(url);
        if let Some(token) = &o.admin_token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| fail(&e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| fail(&e))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(fail(&format!("{status}: {body}")))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[data_classes.confidential]
jurisdictions = ["eu"]
require_tags = ["zdr"]

[[keys]]
name = "eu-team"
secret = "sk-eu"
data_class = "confidential"

[providers.eu]
kind = "openai_compatible"
base_url = "http://127.0.0.1:1/v1"
cloud = "azure"
region = "swedencentral"
jurisdiction = "eu"

[providers.us]
kind = "openai_compatible"
base_url = "http://127.0.0.1:2/v1"
cloud = "aws"
region = "us-east-1"
jurisdiction = "us"

[deployments.eu-zdr]
provider = "eu"
upstream_model = "m"
price = { input = 2.0, output = 8.0 }
tags = ["zdr"]

[deployments.us-cheap]
provider = "us"
upstream_model = "m"
price = { input = 1.0, output = 2.0 }
limits = { rpm = 60 }

[models.m]
deployments = ["eu-zdr", "us-cheap"]
strategy = "cheapest"
"#;

    fn hypo<'a>(key: Option<&'a str>, header: Option<&'a str>) -> Hypothetical<'a> {
        Hypothetical {
            model: "m",
            key,
            header,
            data_class: None,
            estimate: Estimate {
                input_tokens: 1_000,
                max_output_tokens: 1_000,
            },
            stream: false,
        }
    }

    #[test]
    fn explains_ranking_and_exclusions_for_a_key_and_a_header() {
        let snap = config::compile(CONFIG, &|_| None)
            .map_err(|p| format!("{p:?}"))
            .unwrap();
        let health = Health::default();
        let x = explain(&snap, &health, &hypo(None, None)).unwrap();
        let ranked: Vec<&str> = x.ranking().iter().map(|r| &*r.deployment.id).collect();
        assert_eq!(ranked, ["us-cheap", "eu-zdr"], "cheapest first");
        let text = render(&x);
        assert!(text.contains("plan: us-cheap → eu-zdr"), "{text}");
        assert!(text.contains("rpm 60"), "{text}");

        let x = explain(&snap, &health, &hypo(Some("eu-team"), None)).unwrap();
        let text = render(&x);
        assert!(text.contains("plan: eu-zdr\n"), "{text}");
        assert!(
            text.contains("jurisdiction 'us' not allowed by data class 'confidential'; tag 'zdr' required by data class 'confidential'"),
            "{text}"
        );

        let x = explain(
            &snap,
            &health,
            &hypo(None, Some("x-switchyard-route: ignore=us-cheap")),
        )
        .unwrap();
        assert!(render(&x).contains("in the request's 'ignore' list"));
    }

    #[test]
    fn an_open_breaker_shows_its_reason_next_probe_failed_probes_and_trips() {
        let snap = config::compile(CONFIG, &|_| None)
            .map_err(|p| format!("{p:?}"))
            .unwrap();
        let health = Health::default();
        let policy = snap.catalog.policy();
        let cheap = snap.catalog.model("m").unwrap().deployments[1].clone();
        let cut = switchyard_providers::AttemptError::new(
            switchyard_types::ErrorKind::UpstreamProtocol,
            "cut",
        );
        for _ in 0..policy.breaker.consecutive_failures {
            let mut permit = health.admit(&cheap, 1, &policy.breaker).unwrap();
            permit.stream_broke(&cut, policy.rate_limit_cooldown);
        }
        let x = explain(&snap, &health, &hypo(None, None)).unwrap();
        let text = render(&x);
        assert!(text.contains("open, probe in "), "{text}");
        assert!(
            text.contains("s (5 consecutive failures; opened 1 time)"),
            "{text}"
        );
        assert!(text.contains("plan: eu-zdr\n"), "{text}");
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let snap = config::compile(CONFIG, &|_| None)
            .map_err(|p| format!("{p:?}"))
            .unwrap();
        let health = Health::default();
        assert!(matches!(
            explain(&snap, &health, &hypo(Some("nobody"), None)),
            Err(ExplainError::UnknownKey(_))
        ));
        assert!(matches!(
            explain(&snap, &health, &hypo(None, Some("sort=fast"))),
            Err(ExplainError::Header(_))
        ));
        let mut h = hypo(None, None);
        h.model = "nope";
        assert!(matches!(
            explain(&snap, &health, &h),
            Err(ExplainError::Route(RouteError::UnknownModel(_)))
        ));
    }
}
