//! The concentration view: what share of traffic and spend depends on each cloud, and which
//! models cannot leave a single cloud, even through their fallbacks.

use super::{
    cost_share, share, CatalogModel, CatalogView, CloudShare, Concentration, Filter, ModelSpread,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchyard_types::Money;

pub(super) fn concentration(
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
