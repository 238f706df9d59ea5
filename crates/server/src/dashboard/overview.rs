//! `GET /admin/overview`: one JSON document with everything the dashboard draws for a recent
//! window of the ledger — totals, a timeline, spend and traffic by cloud, provider, region,
//! model and team, per-deployment latency, errors, failovers and breaker state, and the
//! concentration view.
//!
//! [`build`] is a pure function over ledger records, a plain view of the catalog and the
//! deployments' health, so it is unit-tested without a server.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchyard_ledger::store::NONE_GROUP;
use switchyard_ledger::{LedgerRecord, Outcome};
use switchyard_types::Money;

/// The shortest window the overview accepts, in seconds.
pub const MIN_WINDOW_SECS: i64 = 10;
/// The longest window the overview accepts, in seconds (31 days).
pub const MAX_WINDOW_SECS: i64 = 31 * 86_400;
/// The timeline never has more buckets than this.
pub const MAX_BUCKETS: i64 = 90;

/// Parses a window length: `90s`, `15m`, `6h`, `7d` or a bare number of seconds.
pub fn parse_window(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("window '{s}': expected a number with s, m, h or d, like 15m"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "window '{s}': unknown unit '{unit}' (use s, m, h or d)"
            ))
        }
    };
    let secs = n.saturating_mul(mult);
    if !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&secs) {
        return Err(format!(
            "window '{s}': must be between {MIN_WINDOW_SECS}s and 31d"
        ));
    }
    Ok(secs)
}

/// The timeline's bucket length for a window: the smallest round size giving at most
/// [`MAX_BUCKETS`] buckets.
pub fn bucket_secs(window_secs: i64) -> i64 {
    const SIZES: [i64; 15] = [
        1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 10_800, 21_600, 86_400,
    ];
    SIZES
        .into_iter()
        .find(|b| (window_secs + b - 1) / b <= MAX_BUCKETS)
        .unwrap_or(86_400)
}

/// What to keep: every set field must match the record (where it was served).
/// `(none)` matches records without a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// The serving provider's cloud.
    pub cloud: Option<String>,
    /// The serving provider.
    pub provider: Option<String>,
    /// The serving provider's region.
    pub region: Option<String>,
    /// The logical model asked for.
    pub model: Option<String>,
    /// The key's team.
    pub team: Option<String>,
}

impl Filter {
    fn matches(&self, r: &LedgerRecord) -> bool {
        let ok = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .is_none_or(|w| w == have.unwrap_or(NONE_GROUP))
        };
        ok(&self.cloud, r.cloud.map(|c| c.as_str()))
            && ok(&self.provider, r.provider.as_deref())
            && ok(&self.region, r.region.as_deref())
            && ok(&self.model, Some(&r.model))
            && ok(&self.team, r.team.as_deref())
    }

    /// Whether a catalog deployment of `model` on `d` is inside the filter's location and
    /// model (the team does not narrow deployments).
    fn matches_deployment(&self, model: Option<&str>, d: &CatalogDeployment) -> bool {
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        ok(&self.cloud, &d.cloud)
            && ok(&self.provider, &d.provider)
            && ok(&self.region, &d.region)
            && self
                .model
                .as_deref()
                .is_none_or(|w| model.is_some_and(|m| m == w))
    }
}

/// The catalog as the overview needs it.
#[derive(Debug, Clone, Default)]
pub struct CatalogView {
    /// Models in config order.
    pub models: Vec<CatalogModel>,
}

/// One model of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogModel {
    /// The client-facing name.
    pub name: String,
    /// Its deployments.
    pub deployments: Vec<CatalogDeployment>,
    /// Its fallback models, in order.
    pub fallbacks: Vec<String>,
}

/// One deployment of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogDeployment {
    /// The deployment id.
    pub id: String,
    /// Its provider.
    pub provider: String,
    /// The provider's cloud.
    pub cloud: String,
    /// The provider's region.
    pub region: String,
}

/// A deployment's health right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthView {
    /// The breaker's state.
    pub breaker: BreakerState,
    /// Why it opened, when it is not closed.
    pub reason: Option<String>,
    /// Resting after a 429 or Retry-After.
    pub cooling_down: bool,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Times the breaker opened since the gateway started.
    pub trips: u64,
}

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    #[default]
    Closed,
    /// No traffic until the open period ends.
    Open,
    /// One probe may go through.
    HalfOpen,
}

/// The window an overview covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start, Unix milliseconds.
    pub since_ms: i64,
    /// Exclusive end, Unix milliseconds.
    pub until_ms: i64,
    /// Timeline bucket length, seconds.
    pub bucket_secs: i64,
}

impl Window {
    /// The window of `secs` seconds ending at `until_ms`, with its bucket size.
    pub fn ending_at(until_ms: i64, secs: i64) -> Window {
        Window {
            since_ms: until_ms - secs * 1_000,
            until_ms,
            bucket_secs: bucket_secs(secs),
        }
    }
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The window covered.
    pub window: WindowInfo,
    /// The filters applied.
    pub filters: Filter,
    /// Sums over the window.
    pub totals: Totals,
    /// Requests, errors and cost per bucket, oldest first, covering the whole window.
    pub timeline: Vec<Bucket>,
    /// Traffic and spend per group.
    pub breakdowns: Breakdowns,
    /// Per deployment: traffic, latency, errors, failovers, breaker.
    pub deployments: Vec<DeploymentStats>,
    /// What depends on a single cloud.
    pub concentration: Concentration,
    /// Values for the filter selects (unfiltered: catalog and window).
    pub options: Options,
    /// True when the window held more records than the overview reads; everything then covers
    /// the newest ones only.
    pub truncated: bool,
}

/// The window covered.
#[derive(Debug, Clone, Serialize)]
pub struct WindowInfo {
    /// Length in seconds.
    pub seconds: i64,
    /// Timeline bucket length in seconds.
    pub bucket_seconds: i64,
    /// Inclusive start, Unix milliseconds.
    pub since_ms: i64,
    /// Exclusive end, Unix milliseconds.
    pub until_ms: i64,
    /// Inclusive start, RFC 3339.
    pub since: String,
    /// Exclusive end, RFC 3339.
    pub until: String,
}

/// Sums over the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// Requests answered in full.
    pub ok: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Requests whose client went away first.
    pub client_disconnected: u64,
    /// Requests that needed more than one upstream attempt.
    pub failovers: u64,
    /// Upstream attempts.
    pub attempts: u64,
    /// Streamed requests.
    pub streams: u64,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Cost in USD (for display; `cost_nanos` is exact).
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// Requests served where no price was known (not in the cost).
    pub unpriced_requests: u64,
    /// errors / requests (0 without requests).
    pub error_rate: f64,
    /// Latency of successful requests.
    pub latency_ms: Option<Percentiles>,
    /// Time to first token of successful streams.
    pub ttft_ms: Option<Percentiles>,
    /// Errors by kind, most frequent first.
    pub errors_by_kind: Vec<KindCount>,
}

/// A count of one error kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindCount {
    /// The kind (`upstream_server`, `no_capacity`, ...).
    pub kind: String,
    /// How many requests ended with it.
    pub count: u64,
}

/// Nearest-rank percentiles, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Samples.
    pub samples: u64,
}

/// One timeline bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Bucket start, Unix milliseconds.
    pub start_ms: i64,
    /// Requests that arrived in it.
    pub requests: u64,
    /// Of those, ended in error.
    pub errors: u64,
    /// Of those, failed over.
    pub failovers: u64,
    /// Tokens.
    pub tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
}

/// Traffic and spend per group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdowns {
    /// By the serving provider's cloud.
    pub cloud: Vec<Group>,
    /// By the serving provider.
    pub provider: Vec<Group>,
    /// By the serving provider's region.
    pub region: Vec<Group>,
    /// By logical model.
    pub model: Vec<Group>,
    /// By the key's team.
    pub team: Vec<Group>,
}

/// One group of a breakdown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    /// The group's value, or `(none)`.
    pub name: String,
    /// Requests.
    pub requests: u64,
    /// Requests that ended in error.
    pub errors: u64,
    /// Tokens.
    pub tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// Share of the window's requests (0-1).
    pub request_share: f64,
    /// Share of the window's cost (0-1).
    pub cost_share: f64,
}

/// One deployment's traffic and health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentStats {
    /// The deployment id.
    pub deployment: String,
    /// Its provider.
    pub provider: String,
    /// The provider's cloud.
    pub cloud: String,
    /// The provider's region.
    pub region: String,
    /// Models that list it.
    pub models: Vec<String>,
    /// Requests it served (or last tried).
    pub requests: u64,
    /// Of those, ended in error.
    pub errors: u64,
    /// Upstream attempts on it.
    pub attempts: u64,
    /// Attempts on it that failed.
    pub failed_attempts: u64,
    /// Failed attempts on it after which the request went on to another attempt.
    pub failovers: u64,
    /// Latency of its successful requests.
    pub latency_ms: Option<Percentiles>,
    /// Time to first token of its successful streams.
    pub ttft_ms: Option<Percentiles>,
    /// Cost in USD of the requests it served.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// The breaker's state now.
    pub breaker: BreakerState,
    /// Why the breaker is not closed.
    pub breaker_reason: Option<String>,
    /// Resting after a 429 or Retry-After.
    pub cooling_down: bool,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Times the breaker opened since the gateway started.
    pub trips: u64,
    /// Whether the current config still lists it.
    pub in_catalog: bool,
}

/// What share of traffic and spend depends on each cloud, and which models have no
/// deployment outside a single cloud.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Concentration {
    /// Per cloud, costliest first.
    pub clouds: Vec<CloudShare>,
    /// Per catalog model.
    pub models: Vec<ModelSpread>,
    /// Models whose own deployments are all on one cloud.
    pub single_cloud_models: Vec<String>,
    /// Share of the window's requests asking for a single-cloud model.
    pub single_cloud_request_share: f64,
    /// Share of the window's cost from single-cloud models.
    pub single_cloud_cost_share: f64,
}

/// One cloud's share.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CloudShare {
    /// The cloud.
    pub cloud: String,
    /// Requests served there.
    pub requests: u64,
    /// Share of requests (0-1).
    pub request_share: f64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Cost in nano-USD.
    pub cost_nanos: i64,
    /// Share of cost (0-1).
    pub cost_share: f64,
    /// Catalog deployments on this cloud.
    pub deployments: u64,
    /// Catalog models with at least one deployment on this cloud.
    pub models: Vec<String>,
}

/// Where one model can run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpread {
    /// The model.
    pub model: String,
    /// Clouds of its own deployments.
    pub clouds: Vec<String>,
    /// Its deployments.
    pub deployments: Vec<String>,
    /// Clouds reachable through its fallback models (transitively), its own excluded.
    pub fallback_clouds: Vec<String>,
    /// Its own deployments are all on one cloud.
    pub single_cloud: bool,
    /// Even with fallbacks, everything is on one cloud.
    pub no_escape: bool,
    /// Requests asking for it in the window.
    pub requests: u64,
    /// Share of requests (0-1).
    pub request_share: f64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Share of cost (0-1).
    pub cost_share: f64,
}

/// Values for the filter selects.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Options {
    /// Clouds.
    pub clouds: Vec<String>,
    /// Providers.
    pub providers: Vec<String>,
    /// Regions.
    pub regions: Vec<String>,
    /// Models.
    pub models: Vec<String>,
    /// Teams.
    pub teams: Vec<String>,
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn cost_share(part: Money, whole: Money) -> f64 {
    if whole.nanos() <= 0 {
        0.0
    } else {
        part.nanos() as f64 / whole.nanos() as f64
    }
}

/// Nearest-rank p50 and p95 of `samples` (sorted here); `None` when empty.
pub fn percentiles(samples: &mut [u64]) -> Option<Percentiles> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = |p: f64| {
        let n = samples.len();
        let i = ((p / 100.0) * n as f64).ceil() as usize;
        samples[i.clamp(1, n) - 1]
    };
    Some(Percentiles {
        p50: rank(50.0),
        p95: rank(95.0),
        samples: samples.len() as u64,
    })
}

#[derive(Default)]
struct Acc {
    requests: u64,
    errors: u64,
    tokens: u64,
    cost: Money,
}

impl Acc {
    fn add(&mut self, r: &LedgerRecord) {
        self.requests += 1;
        self.errors += u64::from(matches!(r.outcome, Outcome::Error(_)));
        self.tokens += r.usage.input + r.usage.output;
        self.cost += r.cost;
    }

    fn group(&self, name: String, total: &Acc) -> Group {
        Group {
            name,
            requests: self.requests,
            errors: self.errors,
            tokens: self.tokens,
            cost_usd: self.cost.as_usd(),
            cost_nanos: self.cost.nanos(),
            request_share: share(self.requests, total.requests),
            cost_share: cost_share(self.cost, total.cost),
        }
    }
}

fn groups(map: BTreeMap<String, Acc>, total: &Acc) -> Vec<Group> {
    let mut v: Vec<Group> = map
        .into_iter()
        .map(|(name, acc)| acc.group(name, total))
        .collect();
    v.sort_by(|a, b| {
        b.cost_nanos
            .cmp(&a.cost_nanos)
            .then(b.requests.cmp(&a.requests))
            .then_with(|| a.name.cmp(&b.name))
    });
    v
}

#[derive(Default)]
struct DeploymentAcc {
    provider: Option<String>,
    cloud: Option<String>,
    region: Option<String>,
    requests: u64,
    errors: u64,
    attempts: u64,
    failed_attempts: u64,
    failovers: u64,
    latency: Vec<u64>,
    ttft: Vec<u64>,
    cost: Money,
}

fn name_or_none(v: Option<&str>) -> String {
    v.unwrap_or(NONE_GROUP).to_owned()
}

/// Builds the overview of `records` (those of the window; others are ignored) under `filter`.
/// `health` gives a deployment's health by id; `teams` adds known team names to the options.
pub fn build(
    records: &[LedgerRecord],
    window: Window,
    filter: &Filter,
    catalog: &CatalogView,
    health: &dyn Fn(&str) -> HealthView,
    teams: &[String],
    truncated: bool,
) -> Overview {
    let in_window: Vec<&LedgerRecord> = records
        .iter()
        .filter(|r| window.since_ms <= r.time_ms && r.time_ms < window.until_ms)
        .collect();
    let options = options(&in_window, catalog, teams);
    let kept: Vec<&LedgerRecord> = in_window
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();

    // Totals and breakdowns.
    let mut total = Acc::default();
    let mut totals = Totals::default();
    let mut latency = Vec::new();
    let mut ttft = Vec::new();
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by: [BTreeMap<String, Acc>; 5] = Default::default();
    for r in &kept {
        total.add(r);
        totals.requests += 1;
        match r.outcome {
            Outcome::Ok => {
                totals.ok += 1;
                latency.push(r.latency_ms);
                if let Some(t) = r.ttft_ms.filter(|_| r.stream) {
                    ttft.push(t);
                }
            }
            Outcome::Error(kind) => {
                totals.errors += 1;
                *kinds.entry(kind.as_str()).or_default() += 1;
            }
            Outcome::ClientDisconnected => totals.client_disconnected += 1,
        }
        totals.failovers += u64::from(r.attempts.len() > 1);
        totals.attempts += r.attempts.len() as u64;
        totals.streams += u64::from(r.stream);
        totals.input_tokens += r.usage.input;
        totals.output_tokens += r.usage.output;
        totals.cached_tokens += r.usage.cached_input;
        totals.unpriced_requests += u64::from(r.deployment.is_some() && !r.price_known);
        let keys = [
            name_or_none(r.cloud.map(|c| c.as_str())),
            name_or_none(r.provider.as_deref()),
            name_or_none(r.region.as_deref()),
            r.model.to_string(),
            name_or_none(r.team.as_deref()),
        ];
        for (map, key) in by.iter_mut().zip(keys) {
            map.entry(key).or_default().add(r);
        }
    }
    totals.tokens = totals.input_tokens + totals.output_tokens;
    totals.cost_usd = total.cost.as_usd();
    totals.cost_nanos = total.cost.nanos();
    totals.error_rate = share(totals.errors, totals.requests);
    totals.latency_ms = percentiles(&mut latency);
    totals.ttft_ms = percentiles(&mut ttft);
    let mut kinds: Vec<KindCount> = kinds
        .into_iter()
        .map(|(kind, count)| KindCount {
            kind: kind.to_owned(),
            count,
        })
        .collect();
    kinds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    totals.errors_by_kind = kinds;
    let [cloud, provider, region, model, team] = by;
    let by_model_acc: HashMap<String, (u64, Money)> = model
        .iter()
        .map(|(k, a)| (k.clone(), (a.requests, a.cost)))
        .collect();
    let by_cloud_acc: HashMap<String, (u64, Money)> = cloud
        .iter()
        .map(|(k, a)| (k.clone(), (a.requests, a.cost)))
        .collect();
    let breakdowns = Breakdowns {
        cloud: groups(cloud, &total),
        provider: groups(provider, &total),
        region: groups(region, &total),
        model: groups(model, &total),
        team: groups(team, &total),
    };

    Overview {
        window: WindowInfo {
            seconds: (window.until_ms - window.since_ms) / 1_000,
            bucket_seconds: window.bucket_secs,
            since_ms: window.since_ms,
            until_ms: window.until_ms,
            since: switchyard_ledger::time::format_ms(window.since_ms),
            until: switchyard_ledger::time::format_ms(window.until_ms),
        },
        filters: filter.clone(),
        timeline: timeline(&kept, window),
        deployments: deployments(&kept, filter, catalog, health),
        concentration: concentration(
            catalog,
            filter,
            &by_model_acc,
            &by_cloud_acc,
            totals.requests,
            total.cost,
        ),
        totals,
        breakdowns,
        options,
        truncated,
    }
}

fn timeline(records: &[&LedgerRecord], window: Window) -> Vec<Bucket> {
    let size = window.bucket_secs.max(1) * 1_000;
    let first = window.since_ms.div_euclid(size) * size;
    let count = usize::try_from((window.until_ms - first + size - 1).div_euclid(size))
        .unwrap_or(0)
        .min(MAX_BUCKETS as usize + 1);
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start_ms: first + i as i64 * size,
            ..Bucket::default()
        })
        .collect();
    for r in records {
        let Ok(i) = usize::try_from((r.time_ms - first).div_euclid(size)) else {
            continue;
        };
        let Some(b) = buckets.get_mut(i) else {
            continue;
        };
        b.requests += 1;
        b.errors += u64::from(matches!(r.outcome, Outcome::Error(_)));
        b.failovers += u64::from(r.attempts.len() > 1);
        b.tokens += r.usage.input + r.usage.output;
        b.cost_nanos += r.cost.nanos();
    }
    for b in &mut buckets {
        b.cost_usd = Money(b.cost_nanos).as_usd();
    }
    buckets
}

fn deployments(
    records: &[&LedgerRecord],
    filter: &Filter,
    catalog: &CatalogView,
    health: &dyn Fn(&str) -> HealthView,
) -> Vec<DeploymentStats> {
    let mut accs: BTreeMap<String, DeploymentAcc> = BTreeMap::new();
    let mut models_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut known: HashMap<String, &CatalogDeployment> = HashMap::new();
    for m in &catalog.models {
        for d in &m.deployments {
            known.insert(d.id.clone(), d);
            models_of
                .entry(d.id.clone())
                .or_default()
                .insert(m.name.clone());
            if filter.matches_deployment(Some(&m.name), d) {
                accs.entry(d.id.clone()).or_default();
            }
        }
    }
    for r in records {
        for (i, a) in r.attempts.iter().enumerate() {
            let acc = accs.entry(a.deployment.to_string()).or_default();
            acc.attempts += 1;
            if a.error_kind.is_some() {
                acc.failed_attempts += 1;
                acc.failovers += u64::from(i + 1 < r.attempts.len());
            }
            acc.provider.get_or_insert_with(|| a.provider.to_string());
        }
        let Some(d) = &r.deployment else { continue };
        let acc = accs.entry(d.to_string()).or_default();
        acc.provider = r
            .provider
            .as_deref()
            .map(str::to_owned)
            .or(acc.provider.take());
        acc.cloud = r.cloud.map(|c| c.as_str().to_owned()).or(acc.cloud.take());
        acc.region = r.region.as_deref().map(str::to_owned).or(acc.region.take());
        acc.requests += 1;
        acc.cost += r.cost;
        match r.outcome {
            Outcome::Ok => {
                acc.latency.push(r.latency_ms);
                if let Some(t) = r.ttft_ms.filter(|_| r.stream) {
                    acc.ttft.push(t);
                }
            }
            Outcome::Error(_) => acc.errors += 1,
            Outcome::ClientDisconnected => {}
        }
    }
    let mut out: Vec<DeploymentStats> = accs
        .into_iter()
        .map(|(id, mut acc)| {
            let cat = known.get(&id);
            let h = health(&id);
            DeploymentStats {
                provider: cat
                    .map(|d| d.provider.clone())
                    .or(acc.provider.take())
                    .unwrap_or_else(|| NONE_GROUP.into()),
                cloud: cat
                    .map(|d| d.cloud.clone())
                    .or(acc.cloud.take())
                    .unwrap_or_else(|| NONE_GROUP.into()),
                region: cat
                    .map(|d| d.region.clone())
                    .or(acc.region.take())
                    .unwrap_or_else(|| NONE_GROUP.into()),
                models: models_of
                    .get(&id)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                requests: acc.requests,
                errors: acc.errors,
                attempts: acc.attempts,
                failed_attempts: acc.failed_attempts,
                failovers: acc.failovers,
                latency_ms: percentiles(&mut acc.latency),
                ttft_ms: percentiles(&mut acc.ttft),
                cost_usd: acc.cost.as_usd(),
                cost_nanos: acc.cost.nanos(),
                breaker: h.breaker,
                breaker_reason: h.reason,
                cooling_down: h.cooling_down,
                in_flight: h.in_flight,
                trips: h.trips,
                in_catalog: cat.is_some(),
                deployment: id,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(b.attempts.cmp(&a.attempts))
            .then_with(|| a.deployment.cmp(&b.deployment))
    });
    out
}

fn concentration(
    catalog: &CatalogView,
    filter: &Filter,
    by_model: &HashMap<String, (u64, Money)>,
    by_cloud: &HashMap<String, (u64, Money)>,
    total_requests: u64,
    total_cost: Money,
) -> Concentration {
    let by_name: HashMap<&str, &CatalogModel> = catalog
        .models
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let own_clouds = |m: &CatalogModel| -> BTreeSet<String> {
        m.deployments.iter().map(|d| d.cloud.clone()).collect()
    };
    let mut models = Vec::new();
    let mut single = Vec::new();
    let (mut single_requests, mut single_cost) = (0u64, Money::ZERO);
    let mut cloud_models: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut cloud_deployments: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &catalog.models {
        if filter.model.as_deref().is_some_and(|w| w != m.name) {
            continue;
        }
        let clouds = own_clouds(m);
        for d in &m.deployments {
            cloud_models
                .entry(d.cloud.clone())
                .or_default()
                .insert(m.name.clone());
            cloud_deployments
                .entry(d.cloud.clone())
                .or_default()
                .insert(d.id.clone());
        }
        // Clouds reachable through fallbacks, transitively, each model once.
        let mut fallback_clouds = BTreeSet::new();
        let mut seen: BTreeSet<&str> = BTreeSet::from([m.name.as_str()]);
        let mut queue: Vec<&str> = m.fallbacks.iter().map(String::as_str).collect();
        while let Some(name) = queue.pop() {
            if !seen.insert(name) {
                continue;
            }
            if let Some(f) = by_name.get(name) {
                fallback_clouds.extend(own_clouds(f));
                queue.extend(f.fallbacks.iter().map(String::as_str));
            }
        }
        let no_escape = clouds.union(&fallback_clouds).count() <= 1;
        let single_cloud = clouds.len() == 1;
        for c in &clouds {
            fallback_clouds.remove(c);
        }
        let (requests, cost) = by_model.get(&m.name).copied().unwrap_or_default();
        if single_cloud {
            single.push(m.name.clone());
            single_requests += requests;
            single_cost += cost;
        }
        models.push(ModelSpread {
            model: m.name.clone(),
            clouds: clouds.into_iter().collect(),
            deployments: m.deployments.iter().map(|d| d.id.clone()).collect(),
            fallback_clouds: fallback_clouds.into_iter().collect(),
            single_cloud,
            no_escape,
            requests,
            request_share: share(requests, total_requests),
            cost_usd: cost.as_usd(),
            cost_share: cost_share(cost, total_cost),
        });
    }
    let names: BTreeSet<&String> = by_cloud.keys().chain(cloud_models.keys()).collect();
    let mut clouds: Vec<CloudShare> = names
        .into_iter()
        .filter(|c| filter.cloud.as_deref().is_none_or(|w| w == c.as_str()))
        .map(|c| {
            let (requests, cost) = by_cloud.get(c).copied().unwrap_or_default();
            CloudShare {
                cloud: c.clone(),
                requests,
                request_share: share(requests, total_requests),
                cost_usd: cost.as_usd(),
                cost_nanos: cost.nanos(),
                cost_share: cost_share(cost, total_cost),
                deployments: cloud_deployments.get(c).map_or(0, |s| s.len() as u64),
                models: cloud_models
                    .get(c)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    clouds.sort_by(|a, b| {
        b.cost_nanos
            .cmp(&a.cost_nanos)
            .then(b.requests.cmp(&a.requests))
            .then_with(|| a.cloud.cmp(&b.cloud))
    });
    Concentration {
        clouds,
        models,
        single_cloud_models: single,
        single_cloud_request_share: share(single_requests, total_requests),
        single_cloud_cost_share: cost_share(single_cost, total_cost),
    }
}

fn options(records: &[&LedgerRecord], catalog: &CatalogView, teams: &[String]) -> Options {
    let mut clouds = BTreeSet::new();
    let mut providers = BTreeSet::new();
    let mut regions = BTreeSet::new();
    let mut models = BTreeSet::new();
    let mut team_names: BTreeSet<String> = teams.iter().cloned().collect();
    for m in &catalog.models {
        models.insert(m.name.clone());
        for d in &m.deployments {
            clouds.insert(d.cloud.clone());
            providers.insert(d.provider.clone());
            regions.insert(d.region.clone());
        }
    }
    for r in records {
        if let Some(c) = r.cloud {
            clouds.insert(c.as_str().to_owned());
        }
        providers.extend(r.provider.as_deref().map(str::to_owned));
        regions.extend(r.region.as_deref().map(str::to_owned));
        models.insert(r.model.to_string());
        team_names.insert(name_or_none(r.team.as_deref()));
    }
    Options {
        clouds: clouds.into_iter().collect(),
        providers: providers.into_iter().collect(),
        regions: regions.into_iter().collect(),
        models: models.into_iter().collect(),
        teams: team_names.into_iter().collect(),
    }
}

#[cfg(test)]
#[path = "overview_tests.rs"]
mod tests;
