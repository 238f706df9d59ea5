//! Per-deployment traffic, latency, errors and failovers, joined with the catalog and the
//! deployments' health.

use super::{
    percentiles, CatalogDeployment, CatalogView, DeploymentStats, Filter, HealthView, NONE_GROUP,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchyard_ledger::{LedgerRecord, Outcome};
use switchyard_types::Money;

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

pub(super) fn deployments(
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
                breaker_failed_probes: h.failed_probes,
                breaker_next_probe_ms: h.next_probe_ms,
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
