//! The escape hatch from the config's side: the catalog as a [`Footprint`] for the ledger's
//! concentration and what-if reports, their admin routes (`/admin/concentration`,
//! `/admin/whatif`) and their subcommands (`switchyard report concentration`,
//! `switchyard whatif`). The figures themselves are computed in `switchyard_ledger::escape`.

use crate::config::{RuntimeSettings, Severity, Snapshot};
use crate::runtime::authorize;
use crate::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchyard_ledger::escape::whatif::{Selector, Target};
use switchyard_ledger::escape::{
    self, concentration, whatif, Footprint, Place, Prepaid, ViewFormat,
};
use switchyard_ledger::{LedgerError, LedgerStore};
use switchyard_router::Commitment;
use switchyard_types::ErrorKind;

/// The live config's models and deployments, placed and priced, for the ledger's reports.
pub fn footprint(snapshot: &Snapshot) -> Footprint {
    let models = snapshot
        .catalog
        .models()
        .map(|m| {
            let places = m
                .deployments
                .iter()
                .map(|d| Place {
                    deployment: d.id.to_string(),
                    provider: d.provider.id.to_string(),
                    cloud: d.provider.cloud,
                    region: d.provider.region.to_string(),
                    jurisdiction: d.provider.jurisdiction,
                    prices: (!snapshot.unpriced.contains(&d.id)).then_some(d.prices),
                    prepaid: match d.commitment {
                        Some(Commitment::Prepaid { amount, period }) => Some(Prepaid {
                            amount,
                            period_ms: i64::try_from(period.duration().as_millis())
                                .unwrap_or(i64::MAX),
                        }),
                        // Provisioned capacity is free only up to its rate, which a what-if
                        // over totals cannot check: priced as pay-as-you-go.
                        Some(Commitment::Provisioned { .. }) | None => None,
                    },
                })
                .collect();
            (m.name.to_string(), places)
        })
        .collect();
    let fallbacks = snapshot
        .catalog
        .models()
        .map(|m| {
            let f = m.fallbacks.iter().map(ToString::to_string).collect();
            (m.name.to_string(), f)
        })
        .collect();
    Footprint { models, fallbacks }
}

/// Why an escape-hatch subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum EscapeError {
    /// The config file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config has errors.
    #[error("the config has errors:\n{0}")]
    Config(String),
    /// The ledger or the arguments.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The admin routes, merged under `/admin`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/concentration", get(concentration_route))
        .route("/whatif", get(whatif_route))
        .route("/focus", get(focus_route))
        .route("/slo", get(slo_route))
}

/// Query of `GET /admin/concentration`.
#[derive(Debug, Deserialize)]
struct ConcentrationQuery {
    since: Option<String>,
    until: Option<String>,
    #[serde(default = "json_format")]
    format: ViewFormat,
}

fn json_format() -> ViewFormat {
    ViewFormat::Json
}

fn bad(e: LedgerError) -> ApiError {
    match e {
        LedgerError::BadArgument(_) | LedgerError::BadTime(_) => {
            ApiError::new(ErrorKind::InvalidRequest, e.to_string())
        }
        other => ApiError::new(ErrorKind::NoCapacity, other.to_string()),
    }
}

fn rendered(format: ViewFormat, body: String) -> Response {
    let content_type = match format {
        ViewFormat::Json => "application/json",
        ViewFormat::Table => "text/plain; charset=utf-8",
    };
    ([(http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `GET /admin/concentration?since=7d&until=…&format=json|table`
async fn concentration_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ConcentrationQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let range = escape::window(
        q.since.as_deref(),
        q.until.as_deref(),
        switchyard_ledger::now_ms(),
    )
    .map_err(bad)?;
    let snapshot = state.snapshot();
    let store = state.runtime.ledger_store.as_ref();
    let report = concentration::concentration(store, range, &footprint(&snapshot))
        .await
        .map_err(bad)?;
    let drill = biggest_dependency_drill(&snapshot, store, range, &report)
        .await
        .map_err(|e| ApiError::new(ErrorKind::NoCapacity, e.to_string()))?;
    Ok(rendered(
        q.format,
        with_drill(report, drill, q.format).map_err(bad)?,
    ))
}

/// What losing the biggest single dependency would do to the window's traffic.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DependencyDrill {
    /// What the drill marked down (`cloud=aws`).
    pub down: String,
    /// Requests replayed.
    pub requests: u64,
    /// The share still served.
    pub served_share: f64,
    /// Extra spend of the requests served both ways (nano-USD).
    pub extra_cost_nanos: i64,
    /// Requests that would fail, by reason.
    pub failed: std::collections::BTreeMap<switchyard_router::drill::Failure, u64>,
}

/// Drills the report's biggest dependency over the same window (offline).
async fn biggest_dependency_drill(
    snapshot: &Snapshot,
    store: &dyn LedgerStore,
    range: switchyard_ledger::TimeRange,
    report: &concentration::ConcentrationReport,
) -> Result<Option<DependencyDrill>, crate::drill::DrillError> {
    use switchyard_ledger::escape::concentration::DependencyKind;
    use switchyard_router::drill::Down;
    let Some(d) = &report.biggest_dependency else {
        return Ok(None);
    };
    let down = match d.kind {
        DependencyKind::Cloud => Down::Cloud(d.cloud),
        DependencyKind::Provider => Down::Provider(d.name.clone()),
        DependencyKind::Region => Down::Region(d.name.clone()),
    };
    let (requests, latency) = crate::drill::from_ledger(store, range).await?;
    let drilled = switchyard_router::drill::drill(
        &snapshot.catalog,
        &requests,
        std::slice::from_ref(&down),
        &latency,
        false,
    );
    let mut out = DependencyDrill {
        down: down.to_string(),
        requests: 0,
        served_share: 1.0,
        extra_cost_nanos: 0,
        failed: Default::default(),
    };
    let mut served = 0;
    for m in &drilled.models {
        out.requests += m.requests;
        served += m.served;
        out.extra_cost_nanos += m.extra_cost_nanos;
        for (why, n) in &m.failed {
            *out.failed.entry(*why).or_default() += n;
        }
    }
    if out.requests > 0 {
        out.served_share = served as f64 / out.requests as f64;
    }
    Ok(Some(out))
}

/// The concentration report with its biggest dependency's drill: a `drill` member in JSON,
/// a closing line in the table.
fn with_drill(
    report: concentration::ConcentrationReport,
    drill: Option<DependencyDrill>,
    format: ViewFormat,
) -> Result<String, LedgerError> {
    match format {
        ViewFormat::Json => {
            let mut v = serde_json::to_value(&report)
                .map_err(|e| LedgerError::BadArgument(e.to_string()))?;
            v["biggest_dependency_drill"] = serde_json::to_value(&drill)
                .map_err(|e| LedgerError::BadArgument(e.to_string()))?;
            serde_json::to_string_pretty(&v).map_err(|e| LedgerError::BadArgument(e.to_string()))
        }
        ViewFormat::Table => {
            let mut text = report.render(format)?;
            if let Some(d) = drill {
                let failed: u64 = d.failed.values().sum();
                text.push_str(&format!(
                    "if {} went down (drill, offline): {:.1}% of {} requests still served, {} would fail, ${:.4} extra spend\n",
                    d.down,
                    d.served_share * 100.0,
                    d.requests,
                    failed,
                    switchyard_types::Money(d.extra_cost_nanos).as_usd()
                ));
            }
            Ok(text)
        }
    }
}

/// Query of `GET /admin/whatif`: the selectors as their own parameters, `to` as on the CLI.
#[derive(Debug, Deserialize)]
struct WhatifQuery {
    since: Option<String>,
    until: Option<String>,
    model: Option<String>,
    deployment: Option<String>,
    provider: Option<String>,
    cloud: Option<String>,
    region: Option<String>,
    to: String,
    #[serde(default = "json_format")]
    format: ViewFormat,
}

impl WhatifQuery {
    fn selectors(&self) -> Result<Vec<Selector>, LedgerError> {
        [
            ("model", &self.model),
            ("deployment", &self.deployment),
            ("provider", &self.provider),
            ("cloud", &self.cloud),
            ("region", &self.region),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}").parse()))
        .collect()
    }
}

/// `GET /admin/whatif?since=7d&model=M&to=deployment=D` (also `cloud=`, `provider=`,
/// `deployment=`, `region=` selectors, and `to=cloud=C`, `to=provider=P`, `to=recorded`,
/// `to=every`).
async fn whatif_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<WhatifQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let range = escape::window(
        q.since.as_deref(),
        q.until.as_deref(),
        switchyard_ledger::now_ms(),
    )
    .map_err(bad)?;
    let selectors = q.selectors().map_err(bad)?;
    let target: Target = q.to.parse().map_err(bad)?;
    let footprint = footprint(&state.snapshot());
    let report = whatif::whatif(
        state.runtime.ledger_store.as_ref(),
        range,
        &selectors,
        &target,
        &footprint,
    )
    .await
    .map_err(bad)?;
    Ok(rendered(q.format, report.render(q.format).map_err(bad)?))
}

/// Query of `GET /admin/focus`.
#[derive(Debug, Deserialize)]
struct FocusQuery {
    since: Option<String>,
    until: Option<String>,
    billing_account: Option<String>,
}

/// `GET /admin/focus?since=30d&until=…&billing_account=…`: spend as FOCUS CSV.
async fn focus_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<FocusQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let now = switchyard_ledger::now_ms();
    let range = escape::window(q.since.as_deref(), q.until.as_deref(), now).map_err(bad)?;
    let mut body = Vec::new();
    escape::focus::export(
        state.runtime.ledger_store.as_ref(),
        range,
        now,
        q.billing_account.as_deref().unwrap_or("switchyard"),
        &mut body,
    )
    .await
    .map_err(bad)?;
    Ok((
        [(http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        body,
    )
        .into_response())
}

/// Query of `GET /admin/slo`.
#[derive(Debug, Deserialize)]
struct SloQuery {
    until: Option<String>,
    objective: Option<f64>,
    #[serde(default = "json_format")]
    format: ViewFormat,
}

/// `GET /admin/slo?until=…&objective=0.999&format=json|table`: per deployment SLOs over the
/// last hour, day and 30 days.
async fn slo_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SloQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let now = switchyard_ledger::now_ms();
    let until = escape::window(None, q.until.as_deref(), now)
        .map_err(bad)?
        .until_ms;
    let until = if until == i64::MAX { now } else { until };
    let report = escape::slo::slo(
        state.runtime.ledger_store.as_ref(),
        until,
        q.objective.unwrap_or(0.999),
    )
    .await
    .map_err(bad)?;
    Ok(rendered(q.format, report.render(q.format).map_err(bad)?))
}

/// How long `/metrics` reuses its SLO gauges before asking the ledger again: the 30-day
/// window is a real query, and scrapes come every few seconds.
const SLO_METRICS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The availability objective of the SLO gauges' error-budget burn.
const SLO_METRICS_OBJECTIVE: f64 = 0.999;

/// Sets the SLO gauges of `/metrics` from the ledger, at most every [`SLO_METRICS_TTL`]:
/// `switchyard_slo_availability` and `switchyard_slo_error_budget_burn` per deployment of the
/// live config (labels only from the config and the closed set of windows) and window.
/// `GET /metrics`: the SLO gauges refreshed from the ledger (at most every 30 s), then every
/// metric (`metrics::scrape`). Here rather than in `metrics`, which sits below the config.
pub(crate) async fn scrape(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<AppState>>,
) -> axum::response::Response {
    publish_slo_metrics(&state).await;
    crate::metrics::scrape(axum::extract::State(state)).await
}

pub(crate) async fn publish_slo_metrics(state: &AppState) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;
    // Keyed by the ledger store, so gateways sharing a process (tests) keep their own pace.
    static LAST: Mutex<Option<HashMap<usize, Instant>>> = Mutex::new(None);
    let key = Arc::as_ptr(&state.runtime.ledger_store) as *const () as usize;
    {
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        let map = last.get_or_insert_with(HashMap::new);
        if map.get(&key).is_some_and(|t| t.elapsed() < SLO_METRICS_TTL) {
            return;
        }
        // Claimed before the query, so concurrent scrapes do not all query.
        map.insert(key, Instant::now());
    }
    let report = match escape::slo::slo(
        state.runtime.ledger_store.as_ref(),
        switchyard_ledger::now_ms(),
        SLO_METRICS_OBJECTIVE,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "SLO metrics: the ledger did not answer");
            return;
        }
    };
    let snapshot = state.snapshot();
    let configured: std::collections::HashSet<&str> = snapshot
        .catalog
        .models()
        .flat_map(|m| m.deployments.iter().map(|d| &*d.id))
        .collect();
    for row in report
        .rows
        .iter()
        .filter(|r| configured.contains(r.deployment.as_str()))
    {
        let labels = [
            ("deployment", row.deployment.clone()),
            ("window", row.window.as_str().to_owned()),
        ];
        if let (Some(a), Some(b)) = (row.availability, row.error_budget_burn) {
            metrics::gauge!("switchyard_slo_availability", &labels).set(a);
            metrics::gauge!("switchyard_slo_error_budget_burn", &labels).set(b);
        }
    }
}

/// Where a subcommand finds the config and the ledger.
#[derive(Debug, Clone, clap::Args)]
pub struct Sources {
    /// The config file (TOML): the catalog the report compares against.
    #[arg(long, short, env = "SWITCHYARD_CONFIG", hide_env_values = true)]
    pub config: PathBuf,
    /// The ledger database (sqlite://PATH or postgres://...); the config's `[ledger] url` when
    /// absent.
    #[arg(long, env = "SWITCHYARD_LEDGER_URL", hide_env_values = true)]
    pub db: Option<String>,
}

impl Sources {
    /// The compiled config and the ledger it (or `--db`) names.
    async fn open(&self) -> Result<(Snapshot, Arc<dyn LedgerStore>), EscapeError> {
        let text = std::fs::read_to_string(&self.config).map_err(|source| EscapeError::Read {
            path: self.config.display().to_string(),
            source,
        })?;
        let snapshot = crate::config::compile(&text, &|name| std::env::var(name).ok()).map_err(
            |problems| {
                let errors: Vec<String> = problems
                    .iter()
                    .filter(|p| p.severity == Severity::Error)
                    .map(ToString::to_string)
                    .collect();
                EscapeError::Config(errors.join("\n"))
            },
        )?;
        let url = match &self.db {
            Some(url) => url.clone(),
            None => RuntimeSettings::resolve_db(
                &snapshot.settings.runtime.ledger_url,
                self.config.parent().filter(|p| p != &Path::new("")),
            ),
        };
        let store = switchyard_ledger::open(&url, false).await?;
        Ok((snapshot, store))
    }
}

/// `switchyard report ...`: the ledger's own reports and those that need the config.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReportCommand {
    /// Concentration risk: shares of traffic, spend and models per cloud, provider and region;
    /// single-cloud and single-jurisdiction models; a Herfindahl index over clouds.
    Concentration {
        #[command(flatten)]
        sources: Sources,
        /// Start (inclusive): an age (7d, 12h), YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// End (exclusive), in the same forms.
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ViewFormat::Table)]
        format: ViewFormat,
    },
    #[command(flatten)]
    Ledger(switchyard_ledger::cli::ReportCommand),
}

/// Runs `switchyard report ...`, writing to standard output.
pub async fn run_report(args: ReportArgs) -> Result<(), EscapeError> {
    match args.command {
        ReportCommand::Ledger(command) => {
            Ok(switchyard_ledger::cli::run_report_command(command).await?)
        }
        ReportCommand::Concentration {
            sources,
            since,
            until,
            format,
        } => {
            let range = escape::window(
                since.as_deref(),
                until.as_deref(),
                switchyard_ledger::now_ms(),
            )?;
            let (snapshot, store) = sources.open().await?;
            let report =
                concentration::concentration(store.as_ref(), range, &footprint(&snapshot)).await?;
            let drill = biggest_dependency_drill(&snapshot, store.as_ref(), range, &report)
                .await
                .map_err(|e| EscapeError::from(LedgerError::BadArgument(e.to_string())))?;
            print(&with_drill(report, drill, format)?)
        }
    }
}

/// `switchyard whatif`: reprice a window's recorded traffic elsewhere.
#[derive(Debug, clap::Args)]
pub struct WhatifArgs {
    #[command(flatten)]
    sources: Sources,
    /// Start (inclusive): an age (7d, 12h), YYYY-MM-DD (UTC) or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// End (exclusive), in the same forms.
    #[arg(long)]
    until: Option<String>,
    /// The traffic to move: model=M, deployment=D, provider=P, cloud=C or region=R;
    /// repeat to narrow (all must hold). None: all traffic.
    #[arg(long = "move", value_name = "SELECTOR")]
    moves: Vec<Selector>,
    /// Where to: deployment=D, cloud=C (each model's cheapest deployment there),
    /// provider=P, recorded (each record's own deployment at today's prices), or every.
    #[arg(long, value_name = "TARGET", required_unless_present = "reprice_all")]
    to: Option<Target>,
    /// Reprice each moved model on every one of its deployments (the same as --to every).
    #[arg(long, conflicts_with = "to")]
    reprice_all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ViewFormat::Table)]
    format: ViewFormat,
}

/// Runs `switchyard whatif`, writing to standard output.
pub async fn run_whatif(args: WhatifArgs) -> Result<(), EscapeError> {
    let range = escape::window(
        args.since.as_deref(),
        args.until.as_deref(),
        switchyard_ledger::now_ms(),
    )?;
    let target = args.to.unwrap_or(Target::Every);
    let (snapshot, store) = args.sources.open().await?;
    let report = whatif::whatif(
        store.as_ref(),
        range,
        &args.moves,
        &target,
        &footprint(&snapshot),
    )
    .await?;
    print(&report.render(args.format)?)
}

fn print(text: &str) -> Result<(), EscapeError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .map_err(|e| EscapeError::Ledger(e.into()))
}
