//! Concentration risk: how much of the traffic, spend and set of models depends on each
//! cloud, provider and region, which models have no deployment outside one cloud or one
//! jurisdiction, and a Herfindahl–Hirschman index (HHI) over clouds per model and overall.
//!
//! HHI = Σ sᵢ², where sᵢ is cloud i's share of the spend (priced requests only). It is 1 when
//! everything runs on one cloud and 1/n when spend is split evenly over n clouds. When the
//! spend is zero (every request unpriced), the shares are of requests instead, and the report
//! says so (`basis`).

use super::{bounds, json, percent, share, table, Footprint, ViewFormat};
use crate::record::parse_name;
use crate::store::{GroupedRow, LedgerStore, SpendBy, TimeRange, NONE_GROUP};
use crate::LedgerError;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use switchyard_types::{Cloud, Jurisdiction, Money};

/// The formula, as printed with every report.
pub const FORMULA: &str = "HHI = sum over clouds of (cloud's share of spend)^2; 1 = one cloud, 1/n = spread evenly over n clouds; request shares when spend is zero";

/// The dimensions the one grouped query returns, in this order.
const DIMS: [SpendBy; 4] = [
    SpendBy::Model,
    SpendBy::Cloud,
    SpendBy::Provider,
    SpendBy::Region,
];

/// What a share-based score was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Shares of priced spend.
    Spend,
    /// Shares of requests (the spend was zero).
    Requests,
}

/// The kind of thing traffic depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// A cloud.
    Cloud,
    /// A provider (one endpoint with credentials).
    Provider,
    /// A region of a cloud.
    Region,
}

/// How much depends on one cloud, provider or region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dependency {
    /// Cloud, provider or region.
    pub kind: DependencyKind,
    /// Its name (`aws`, `azure-sweden`, `eastus2`).
    pub name: String,
    /// The cloud it belongs to.
    pub cloud: Cloud,
    /// Requests it served.
    pub requests: u64,
    /// Its share of the routed requests.
    pub request_share: f64,
    /// The priced spend it served.
    #[serde(serialize_with = "nanos")]
    pub cost_nanos: Money,
    /// Its share of the spend.
    pub cost_share: f64,
    /// Distinct models it served.
    pub models: u64,
    /// Its share of the distinct models served.
    pub model_share: f64,
    /// Its requests whose model has no deployment in the live config outside it, even through
    /// fallback models: what an outage here would strand, before residency and capacity limits
    /// (which a drill adds).
    pub stranded_requests: u64,
    /// `stranded_requests` as a share of its requests.
    pub stranded_share: f64,
}

/// One model's concentration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRisk {
    /// The logical model.
    pub model: String,
    /// Routed requests for it in the window.
    pub requests: u64,
    /// Their priced spend.
    #[serde(serialize_with = "nanos")]
    pub cost_nanos: Money,
    /// HHI over clouds of this model's traffic; `None` without routed traffic.
    pub hhi: Option<f64>,
    /// What `hhi` was computed from.
    pub basis: Basis,
    /// The cloud carrying the largest share, and that share.
    pub top_cloud: Option<CloudShare>,
    /// The clouds the live config can serve it from.
    pub catalog_clouds: Vec<Cloud>,
    /// The jurisdictions the live config can serve it in.
    pub catalog_jurisdictions: Vec<Jurisdiction>,
    /// True when every deployment in the live config is on one cloud.
    pub single_cloud: bool,
    /// True when every deployment in the live config is in one jurisdiction.
    pub single_jurisdiction: bool,
    /// False when the live config no longer has this model.
    pub in_config: bool,
}

/// A cloud and its share (of spend, or of requests as the model's `basis` says).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CloudShare {
    /// The cloud.
    pub cloud: Cloud,
    /// Its share, 0..1.
    pub share: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConcentrationReport {
    /// Window start (RFC 3339), if bounded.
    pub since: Option<String>,
    /// Window end (RFC 3339, exclusive), if bounded.
    pub until: Option<String>,
    /// The formula of the scores.
    pub formula: &'static str,
    /// Requests that reached a deployment.
    pub routed_requests: u64,
    /// Requests that never reached one (refused before routing); not in any share.
    pub unrouted_requests: u64,
    /// Priced spend of the routed requests.
    #[serde(serialize_with = "nanos")]
    pub cost_nanos: Money,
    /// Distinct models with routed traffic.
    pub models_served: u64,
    /// HHI over clouds of all routed traffic; `None` without any.
    pub overall_hhi: Option<f64>,
    /// What `overall_hhi` was computed from.
    pub overall_basis: Basis,
    /// The largest single dependency by spend share (request share when spend is zero).
    pub biggest_dependency: Option<Dependency>,
    /// Per cloud, costliest first.
    pub clouds: Vec<Dependency>,
    /// Per provider, costliest first.
    pub providers: Vec<Dependency>,
    /// Per region, costliest first.
    pub regions: Vec<Dependency>,
    /// Per model (traffic or config), most concentrated first.
    pub models: Vec<ModelRisk>,
    /// Config models whose every deployment is on one cloud.
    pub single_cloud_models: Vec<String>,
    /// Config models whose every deployment is in one jurisdiction.
    pub single_jurisdiction_models: Vec<String>,
}

fn nanos<S: serde::Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(m.nanos())
}

/// Builds the report for `range` from the ledger (one grouped query) and the live config.
pub async fn concentration(
    store: &dyn LedgerStore,
    range: TimeRange,
    footprint: &Footprint,
) -> Result<ConcentrationReport, LedgerError> {
    let rows = store.spend_grouped(&DIMS, range).await?;
    let mut report = from_rows(&rows, footprint)?;
    (report.since, report.until) = bounds(range);
    Ok(report)
}

#[derive(Default)]
struct Acc {
    requests: u64,
    cost: i128,
    models: BTreeSet<String>,
    stranded: u64,
}

/// The report from grouped rows keyed (model, cloud, provider, region) and the config.
pub fn from_rows(
    rows: &[GroupedRow],
    footprint: &Footprint,
) -> Result<ConcentrationReport, LedgerError> {
    let mut unrouted = 0;
    let mut clouds: BTreeMap<Cloud, Acc> = BTreeMap::new();
    let mut providers: BTreeMap<(String, Cloud), Acc> = BTreeMap::new();
    let mut regions: BTreeMap<(String, Cloud), Acc> = BTreeMap::new();
    let mut per_model: BTreeMap<String, BTreeMap<Cloud, Acc>> = BTreeMap::new();
    for r in rows {
        let [model, cloud, provider, region] = r.keys.as_slice() else {
            return Err(LedgerError::decode(0, "grouped row without four keys"));
        };
        if cloud == NONE_GROUP {
            unrouted += r.requests;
            continue;
        }
        let cloud: Cloud = parse_name(cloud)
            .ok_or_else(|| LedgerError::decode(0, format!("unknown cloud {cloud:?}")))?;
        // Confined: every deployment the model can reach (its own and its fallback models')
        // is inside this dependency; a model the config no longer has cannot go anywhere.
        let places = footprint.reachable(model);
        let confined = |inside: &dyn Fn(&super::Place) -> bool| places.iter().all(|p| inside(p));
        let add = |acc: &mut Acc, stranded: bool| {
            acc.requests += r.requests;
            acc.cost += i128::from(r.cost.nanos());
            acc.models.insert(model.clone());
            acc.stranded += if stranded { r.requests } else { 0 };
        };
        add(
            clouds.entry(cloud).or_default(),
            confined(&|p| p.cloud == cloud),
        );
        add(
            providers.entry((provider.clone(), cloud)).or_default(),
            confined(&|p| &p.provider == provider),
        );
        add(
            regions.entry((region.clone(), cloud)).or_default(),
            confined(&|p| &p.region == region && p.cloud == cloud),
        );
        add(
            per_model
                .entry(model.clone())
                .or_default()
                .entry(cloud)
                .or_default(),
            false,
        );
    }
    let requests: u64 = clouds.values().map(|a| a.requests).sum();
    let cost: i128 = clouds.values().map(|a| a.cost).sum();
    let models_served = per_model.len() as u64;
    let dependencies = |kind, accs: Vec<(String, Cloud, &Acc)>| {
        let mut out: Vec<Dependency> = accs
            .into_iter()
            .map(|(name, cloud, a)| Dependency {
                kind,
                name,
                cloud,
                requests: a.requests,
                request_share: share(i128::from(a.requests), i128::from(requests)),
                cost_nanos: Money(i64::try_from(a.cost).unwrap_or(i64::MAX)),
                cost_share: share(a.cost, cost),
                models: a.models.len() as u64,
                model_share: share(a.models.len() as i128, i128::from(models_served)),
                stranded_requests: a.stranded,
                stranded_share: share(i128::from(a.stranded), i128::from(a.requests)),
            })
            .collect();
        out.sort_by(|a, b| {
            b.cost_nanos
                .cmp(&a.cost_nanos)
                .then(b.requests.cmp(&a.requests))
                .then_with(|| a.name.cmp(&b.name))
        });
        out
    };
    let cloud_rows = dependencies(
        DependencyKind::Cloud,
        clouds
            .iter()
            .map(|(c, a)| (c.as_str().to_owned(), *c, a))
            .collect(),
    );
    let provider_rows = dependencies(
        DependencyKind::Provider,
        providers
            .iter()
            .map(|((p, c), a)| (p.clone(), *c, a))
            .collect(),
    );
    let region_rows = dependencies(
        DependencyKind::Region,
        regions
            .iter()
            .map(|((r, c), a)| (r.clone(), *c, a))
            .collect(),
    );
    let (overall_hhi, overall_basis) = hhi(clouds.iter().map(|(c, a)| (*c, a)));
    // Strictly greater wins, so a tie goes to the broader dependency (cloud before provider
    // before region) that comes first.
    let key = |d: &Dependency| match overall_basis {
        Basis::Spend => d.cost_share,
        Basis::Requests => d.request_share,
    };
    let mut biggest_dependency: Option<Dependency> = None;
    for d in cloud_rows.iter().chain(&provider_rows).chain(&region_rows) {
        if biggest_dependency.as_ref().is_none_or(|b| key(d) > key(b)) {
            biggest_dependency = Some(d.clone());
        }
    }

    let mut names: BTreeSet<&str> = per_model.keys().map(String::as_str).collect();
    names.extend(footprint.models.iter().map(|(m, _)| m.as_str()));
    let mut models: Vec<ModelRisk> = names
        .into_iter()
        .map(|name| {
            let by_cloud = per_model.get(name);
            let (hhi_v, basis) = by_cloud.map_or((None, Basis::Spend), |m| {
                hhi(m.iter().map(|(c, a)| (*c, a)))
            });
            let top_cloud = by_cloud.and_then(|m| {
                let total_cost: i128 = m.values().map(|a| a.cost).sum();
                let total_req: u64 = m.values().map(|a| a.requests).sum();
                m.iter()
                    .map(|(c, a)| {
                        let s = match basis {
                            Basis::Spend => share(a.cost, total_cost),
                            Basis::Requests => share(i128::from(a.requests), i128::from(total_req)),
                        };
                        CloudShare {
                            cloud: *c,
                            share: s,
                        }
                    })
                    .max_by(|a, b| a.share.total_cmp(&b.share))
            });
            let places = footprint.places(name);
            let catalog_clouds: Vec<Cloud> = places
                .unwrap_or_default()
                .iter()
                .map(|p| p.cloud)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let catalog_jurisdictions: Vec<Jurisdiction> = places
                .unwrap_or_default()
                .iter()
                .map(|p| p.jurisdiction)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            ModelRisk {
                model: name.to_owned(),
                requests: by_cloud.map_or(0, |m| m.values().map(|a| a.requests).sum()),
                cost_nanos: Money(
                    by_cloud
                        .map_or(0, |m| m.values().map(|a| a.cost).sum::<i128>())
                        .try_into()
                        .unwrap_or(i64::MAX),
                ),
                hhi: hhi_v,
                basis,
                top_cloud,
                single_cloud: places.is_some() && catalog_clouds.len() <= 1,
                single_jurisdiction: places.is_some() && catalog_jurisdictions.len() <= 1,
                catalog_clouds,
                catalog_jurisdictions,
                in_config: places.is_some(),
            }
        })
        .collect();
    models.sort_by(|a, b| {
        b.hhi
            .unwrap_or(-1.0)
            .total_cmp(&a.hhi.unwrap_or(-1.0))
            .then(b.cost_nanos.cmp(&a.cost_nanos))
            .then_with(|| a.model.cmp(&b.model))
    });
    let single_cloud_models = models
        .iter()
        .filter(|m| m.single_cloud)
        .map(|m| m.model.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let single_jurisdiction_models = models
        .iter()
        .filter(|m| m.single_jurisdiction)
        .map(|m| m.model.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(ConcentrationReport {
        since: None,
        until: None,
        formula: FORMULA,
        routed_requests: requests,
        unrouted_requests: unrouted,
        cost_nanos: Money(i64::try_from(cost).unwrap_or(i64::MAX)),
        models_served,
        overall_hhi,
        overall_basis,
        biggest_dependency,
        clouds: cloud_rows,
        providers: provider_rows,
        regions: region_rows,
        models,
        single_cloud_models,
        single_jurisdiction_models,
    })
}

/// HHI over clouds: spend shares, or request shares when the spend is zero.
fn hhi<'a>(accs: impl Iterator<Item = (Cloud, &'a Acc)> + Clone) -> (Option<f64>, Basis) {
    let cost: i128 = accs.clone().map(|(_, a)| a.cost).sum();
    let requests: u64 = accs.clone().map(|(_, a)| a.requests).sum();
    if requests == 0 {
        return (None, Basis::Spend);
    }
    let (basis, parts): (Basis, Vec<f64>) = if cost > 0 {
        (
            Basis::Spend,
            accs.map(|(_, a)| share(a.cost, cost)).collect(),
        )
    } else {
        (
            Basis::Requests,
            accs.map(|(_, a)| share(i128::from(a.requests), i128::from(requests)))
                .collect(),
        )
    };
    (Some(parts.iter().map(|s| s * s).sum()), basis)
}

impl ConcentrationReport {
    /// Renders in `format`; the text ends with a newline.
    pub fn render(&self, format: ViewFormat) -> Result<String, LedgerError> {
        match format {
            ViewFormat::Json => json(self),
            ViewFormat::Table => Ok(self.table()),
        }
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let window = format!(
            "window: {} .. {}\n",
            self.since.as_deref().unwrap_or("(start)"),
            self.until.as_deref().unwrap_or("(now)")
        );
        out.push_str(&window);
        out.push_str(&format!(
            "routed requests: {}  unrouted: {}  spend_usd: {}  models served: {}\n",
            self.routed_requests, self.unrouted_requests, self.cost_nanos, self.models_served
        ));
        out.push_str(&format!(
            "overall HHI over clouds: {} ({})\n",
            score(self.overall_hhi),
            basis_name(self.overall_basis)
        ));
        if let Some(d) = &self.biggest_dependency {
            out.push_str(&format!(
                "biggest single dependency: {} {} ({} of spend, {} of requests; {} of its requests have no deployment elsewhere)\n",
                kind_name(d.kind),
                d.name,
                percent(d.cost_share),
                percent(d.request_share),
                percent(d.stranded_share)
            ));
        }
        for (title, deps) in [
            ("cloud", &self.clouds),
            ("provider", &self.providers),
            ("region", &self.regions),
        ] {
            out.push('\n');
            let rows: Vec<Vec<String>> = deps
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.cloud.as_str().to_owned(),
                        d.requests.to_string(),
                        percent(d.request_share),
                        d.cost_nanos.to_string(),
                        percent(d.cost_share),
                        d.models.to_string(),
                        percent(d.model_share),
                        percent(d.stranded_share),
                    ]
                })
                .collect();
            out.push_str(&table(
                &[
                    title,
                    "cloud",
                    "requests",
                    "req_share",
                    "cost_usd",
                    "cost_share",
                    "models",
                    "model_share",
                    "stranded",
                ],
                &rows,
            ));
        }
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .models
            .iter()
            .map(|m| {
                let list = |v: Vec<&str>| {
                    if v.is_empty() {
                        "-".to_owned()
                    } else {
                        v.join(",")
                    }
                };
                let mut flags = Vec::new();
                if !m.in_config {
                    flags.push("not in config");
                }
                if m.single_cloud {
                    flags.push("single cloud");
                }
                if m.single_jurisdiction {
                    flags.push("single jurisdiction");
                }
                vec![
                    m.model.clone(),
                    m.requests.to_string(),
                    m.cost_nanos.to_string(),
                    score(m.hhi),
                    m.top_cloud.map_or("-".to_owned(), |t| {
                        format!("{} {}", t.cloud, percent(t.share))
                    }),
                    list(m.catalog_clouds.iter().map(|c| c.as_str()).collect()),
                    list(m.catalog_jurisdictions.iter().map(|j| j.as_str()).collect()),
                    list(flags),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "model",
                "requests",
                "cost_usd",
                "hhi",
                "top_cloud",
                "config_clouds",
                "config_jurisdictions",
                "risk",
            ],
            &rows,
        ));
        out.push_str(&format!("\n{FORMULA}\n"));
        out
    }
}

fn score(h: Option<f64>) -> String {
    h.map_or("-".to_owned(), |h| format!("{h:.4}"))
}

fn basis_name(b: Basis) -> &'static str {
    match b {
        Basis::Spend => "spend shares",
        Basis::Requests => "request shares: no priced spend",
    }
}

fn kind_name(k: DependencyKind) -> &'static str {
    match k {
        DependencyKind::Cloud => "cloud",
        DependencyKind::Provider => "provider",
        DependencyKind::Region => "region",
    }
}

#[cfg(test)]
#[path = "concentration_tests.rs"]
mod tests;
