//! `GET /admin/overview`: one JSON document with everything the dashboard draws for a recent
//! window of the ledger — totals, a timeline, spend and traffic by cloud, provider, region,
//! model and team, per-deployment latency, errors, failovers and breaker state, and the
//! concentration view.
//!
//! [`build`] is a pure function over ledger records, a plain view of the catalog and the
//! deployments' health, so it is unit-tested without a server.
//!
//! This file holds the window, the filter and the aggregation (totals, breakdowns, timeline,
//! filter options); `input` the catalog and health views it reads, `output` the document's
//! types, `deployments` the per-deployment table and `concentration` the single-cloud view.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchyard_ledger::store::NONE_GROUP;
use switchyard_ledger::{LedgerRecord, Outcome};
use switchyard_types::Money;

mod concentration;
mod deployments;
mod input;
mod output;

pub use input::{BreakerState, CatalogDeployment, CatalogModel, CatalogView, HealthView};
pub use output::{
    Breakdowns, Bucket, CloudShare, Concentration, DeploymentStats, Group, KindCount, ModelSpread,
    Options, Overview, Percentiles, Totals, WindowInfo,
};

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
        deployments: deployments::deployments(&kept, filter, catalog, health),
        concentration: concentration::concentration(
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
