//! Outage drills: recorded (or traced) requests replayed offline through the live routing
//! policy with clouds, regions, providers or deployments marked down. No upstream is called:
//! each request is routed as it would be now (constraints, data classes, strategy), the first
//! candidate that is not down and has capacity at the request's recorded arrival time serves
//! it, and the outcome is compared with the same replay with nothing down.
//!
//! Capacity is simulated per deployment from the replayed requests themselves: requests and
//! tokens in the trailing 60 s against `rpm` / `tpm`, and requests still running (arrival plus
//! the deployment's observed median latency) against `concurrency`. Cost is each request's
//! tokens at the serving deployment's list prices; commitments only change ranking here, as
//! they do on the request path.

use crate::plan::{Estimate, RouteError, RouteRequest};
use crate::{Catalog, DataClass, Deployment, Health, Preferences};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use switchyard_types::{Cloud, Money, TokenUsage};

/// The rate windows' length.
const WINDOW_MS: i64 = 60_000;

/// Something marked down for a drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Down {
    /// Every deployment in this cloud.
    Cloud(Cloud),
    /// Every deployment in this region (as configured on its provider).
    Region(String),
    /// Every deployment of this provider.
    Provider(String),
    /// One deployment.
    Deployment(String),
}

impl Down {
    /// Whether `d` is down under this entry.
    pub fn covers(&self, d: &Deployment) -> bool {
        match self {
            Down::Cloud(c) => d.provider.cloud == *c,
            Down::Region(r) => *d.provider.region == **r,
            Down::Provider(p) => *d.provider.id == **p,
            Down::Deployment(id) => *d.id == **id,
        }
    }
}

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Down::Cloud(c) => write!(f, "cloud={c}"),
            Down::Region(r) => write!(f, "region={r}"),
            Down::Provider(p) => write!(f, "provider={p}"),
            Down::Deployment(d) => write!(f, "deployment={d}"),
        }
    }
}

/// One request to replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The recorded request's id, when it comes from the ledger.
    pub id: Option<String>,
    /// Arrival, Unix milliseconds.
    pub time_ms: i64,
    /// The logical model asked for.
    pub model: Arc<str>,
    /// The request's data class, if any.
    pub data_class: Option<DataClass>,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Whether it was streamed.
    pub stream: bool,
}

/// Why a replayed request would fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The model is not in the config.
    UnknownModel,
    /// No deployment is eligible under the request's constraints and data class, even with
    /// nothing down.
    NotEligible,
    /// Every eligible deployment is down.
    AllEligibleDown,
    /// Eligible deployments are up but at their limits at the recorded arrival rate.
    CapacityExhausted,
}

impl Failure {
    /// A plain-words description.
    pub fn describe(self) -> &'static str {
        match self {
            Failure::UnknownModel => "the model is not in the config",
            Failure::NotEligible => "no deployment is eligible under the request's residency and data class",
            Failure::AllEligibleDown => "every deployment eligible under the request's residency and data class is down",
            Failure::CapacityExhausted => "the deployments left are at their rpm/tpm/concurrency limits at the recorded arrival rate",
        }
    }
}

/// What one model's traffic does in the drill, against the same replay with nothing down.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelDrill {
    /// The model.
    pub model: String,
    /// Requests replayed.
    pub requests: u64,
    /// Served with nothing down.
    pub served_baseline: u64,
    /// Served in the drill.
    pub served: u64,
    /// Spend of the requests served with nothing down (nano-USD).
    pub spend_baseline_nanos: i64,
    /// Spend of the requests served in the drill (nano-USD).
    pub spend_nanos: i64,
    /// Extra spend of the requests served in both, drill minus baseline (nano-USD).
    pub extra_cost_nanos: i64,
    /// Median latency with nothing down, of the deployments that served (observed, ms).
    pub latency_p50_baseline_ms: Option<u64>,
    /// Median latency in the drill (observed, ms).
    pub latency_p50_ms: Option<u64>,
    /// Requests served per deployment in the drill.
    pub served_by: BTreeMap<String, u64>,
    /// Requests failing in the drill, by reason.
    pub failed: BTreeMap<Failure, u64>,
}

impl ModelDrill {
    /// The share of requests still served (1.0 with none replayed).
    pub fn served_share(&self) -> f64 {
        if self.requests == 0 {
            1.0
        } else {
            self.served as f64 / self.requests as f64
        }
    }
}

/// Where one replayed request goes in the drill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// The recorded request's id, when it came from the ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model asked for.
    pub model: String,
    /// The deployment that would serve it.
    pub deployment: Option<String>,
    /// Why it would fail, when it would.
    pub failure: Option<Failure>,
    /// Its cost there (nano-USD; 0 when it fails).
    pub cost_nanos: i64,
}

/// A drill's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrillReport {
    /// What was marked down.
    pub down: Vec<Down>,
    /// Per model, by name.
    pub models: Vec<ModelDrill>,
    /// Per request in arrival order, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Placement>,
}

/// Per-deployment capacity over simulated time.
#[derive(Default)]
struct Capacity {
    /// (arrival, tokens) in the trailing window.
    window: VecDeque<(i64, u64)>,
    tokens: u64,
    /// End times of requests still running.
    running: Vec<i64>,
}

impl Capacity {
    fn fits(&mut self, d: &Deployment, now: i64, tokens: u64) -> bool {
        while let Some(&(t, n)) = self.window.front() {
            if t > now - WINDOW_MS {
                break;
            }
            self.window.pop_front();
            self.tokens -= n;
        }
        self.running.retain(|end| *end > now);
        let limits = d.effective_limits();
        let rpm_ok = limits
            .rpm
            .is_none_or(|l| self.window.len() < usize::try_from(l).unwrap_or(usize::MAX));
        let tpm_ok = limits.tpm.is_none_or(|l| self.tokens + tokens <= l);
        let conc_ok = limits
            .concurrency
            .is_none_or(|l| self.running.len() < usize::try_from(l).unwrap_or(usize::MAX));
        rpm_ok && tpm_ok && conc_ok
    }

    fn take(&mut self, now: i64, tokens: u64, latency_ms: u64) {
        self.window.push_back((now, tokens));
        self.tokens += tokens;
        self.running
            .push(now.saturating_add(i64::try_from(latency_ms).unwrap_or(i64::MAX)));
    }
}

/// Where one replayed request went.
enum Placed {
    Served { deployment: Arc<Deployment> },
    Failed(Failure),
}

/// One replay of the requests with `down` marked down.
struct Run<'a> {
    catalog: &'a Catalog,
    down: &'a [Down],
    latency: &'a HashMap<String, u64>,
    capacity: HashMap<Arc<str>, Capacity>,
    health: Health,
    rng: rand::rngs::StdRng,
}

impl Run<'_> {
    fn place(&mut self, r: &Replay) -> Placed {
        let prefs = Preferences::default();
        // As on the request path: a label without a policy in this config constrains nothing.
        let data_class = r
            .data_class
            .as_ref()
            .filter(|c| self.catalog.policy().data_classes.contains_key(*c));
        let req = RouteRequest {
            model: &r.model,
            data_class,
            preferences: &prefs,
            estimate: Estimate {
                input_tokens: r.input_tokens,
                max_output_tokens: r.output_tokens,
            },
            stream: r.stream,
        };
        let plan = match self.catalog.route(&self.health, &req, &mut self.rng) {
            Ok(plan) => plan,
            Err(RouteError::UnknownModel(_)) => return Placed::Failed(Failure::UnknownModel),
            Err(_) => return Placed::Failed(Failure::NotEligible),
        };
        let tokens = r.input_tokens + r.output_tokens;
        let mut any_up = false;
        for c in &plan.candidates {
            let d = &c.deployment;
            if self.down.iter().any(|down| down.covers(d)) {
                continue;
            }
            any_up = true;
            let latency = self.latency.get(&*d.id).copied().unwrap_or(0);
            let cap = self.capacity.entry(d.id.clone()).or_default();
            if cap.fits(d, r.time_ms, tokens) {
                cap.take(r.time_ms, tokens, latency);
                return Placed::Served {
                    deployment: d.clone(),
                };
            }
        }
        Placed::Failed(if any_up {
            Failure::CapacityExhausted
        } else {
            Failure::AllEligibleDown
        })
    }
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// Replays `requests` (in arrival order) with `down` marked down and with nothing down, and
/// compares them per model. `latency` is each deployment's observed median latency (ms);
/// `detail` adds each request's placement.
pub fn drill(
    catalog: &Catalog,
    requests: &[Replay],
    down: &[Down],
    latency: &HashMap<String, u64>,
    detail: bool,
) -> DrillReport {
    use rand::SeedableRng;
    let run = |down: &[Down]| {
        let mut run = Run {
            catalog,
            down,
            latency,
            capacity: HashMap::new(),
            health: Health::default(),
            // Weighted strategies draw: a fixed seed makes a drill repeatable.
            rng: rand::rngs::StdRng::seed_from_u64(7),
        };
        requests.iter().map(|r| run.place(r)).collect::<Vec<_>>()
    };
    let baseline = run(&[]);
    let drilled = run(down);
    let mut models: BTreeMap<Arc<str>, (ModelDrill, Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let mut placements = Vec::new();
    for ((r, before), after) in requests.iter().zip(&baseline).zip(&drilled) {
        let (m, lat_before, lat_after) = models.entry(r.model.clone()).or_default();
        m.requests += 1;
        let usage = TokenUsage {
            input: r.input_tokens,
            output: r.output_tokens,
            ..TokenUsage::default()
        };
        let cost_before = match before {
            Placed::Served { deployment } => {
                m.served_baseline += 1;
                let cost = deployment.prices.cost(&usage);
                m.spend_baseline_nanos += cost.0;
                lat_before.extend(latency.get(&*deployment.id));
                Some(cost)
            }
            Placed::Failed(_) => None,
        };
        if detail {
            placements.push(match after {
                Placed::Served { deployment } => Placement {
                    id: r.id.clone(),
                    model: r.model.to_string(),
                    deployment: Some(deployment.id.to_string()),
                    failure: None,
                    cost_nanos: deployment.prices.cost(&usage).0,
                },
                Placed::Failed(why) => Placement {
                    id: r.id.clone(),
                    model: r.model.to_string(),
                    deployment: None,
                    failure: Some(*why),
                    cost_nanos: 0,
                },
            });
        }
        match after {
            Placed::Served { deployment } => {
                m.served += 1;
                let cost: Money = deployment.prices.cost(&usage);
                m.spend_nanos += cost.0;
                if let Some(before) = cost_before {
                    m.extra_cost_nanos += cost.0 - before.0;
                }
                lat_after.extend(latency.get(&*deployment.id));
                *m.served_by.entry(deployment.id.to_string()).or_default() += 1;
            }
            Placed::Failed(why) => *m.failed.entry(*why).or_default() += 1,
        }
    }
    DrillReport {
        down: down.to_vec(),
        models: models
            .into_iter()
            .map(|(name, (mut m, before, after))| {
                m.model = name.to_string();
                m.latency_p50_baseline_ms = median(before);
                m.latency_p50_ms = median(after);
                m
            })
            .collect(),
        requests: placements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{d, one_model};
    use crate::{Filter, Model, Policy, Strategy};
    use switchyard_types::Jurisdiction;

    fn model(deployments: Vec<Arc<Deployment>>, strategy: Strategy) -> Model {
        let mut m = Model::new("m", deployments);
        m.strategy = strategy;
        m
    }

    fn replay(n: usize, gap_ms: i64) -> Vec<Replay> {
        (0..n)
            .map(|i| Replay {
                id: None,
                time_ms: 1_000_000 + i as i64 * gap_ms,
                model: "m".into(),
                data_class: None,
                input_tokens: 1_000,
                output_tokens: 100,
                stream: false,
            })
            .collect()
    }

    #[test]
    fn a_cloud_down_moves_traffic_to_the_next_deployment_at_its_price() {
        let aws = d("aws-use1")
            .at(Cloud::Aws, "us-east-1", Jurisdiction::Us)
            .price(1.0, 2.0)
            .build();
        let azure = d("az-eastus")
            .at(Cloud::Azure, "eastus", Jurisdiction::Us)
            .price(3.0, 4.0)
            .build();
        let catalog = one_model(
            model(vec![aws, azure], Strategy::Priority),
            Policy::default(),
        );
        let latency = HashMap::from([
            ("aws-use1".to_string(), 100),
            ("az-eastus".to_string(), 300),
        ]);
        let report = drill(
            &catalog,
            &replay(10, 1_000),
            &[Down::Cloud(Cloud::Aws)],
            &latency,
            false,
        );
        let m = &report.models[0];
        assert_eq!((m.requests, m.served_baseline, m.served), (10, 10, 10));
        // 1,000 in + 100 out: $0.0012 on aws, $0.0034 on azure, per request.
        assert_eq!(m.spend_baseline_nanos, 10 * 1_200_000);
        assert_eq!(m.spend_nanos, 10 * 3_400_000);
        assert_eq!(m.extra_cost_nanos, 10 * 2_200_000);
        assert_eq!(m.served_by, BTreeMap::from([("az-eastus".to_string(), 10)]));
        assert_eq!(
            (m.latency_p50_baseline_ms, m.latency_p50_ms),
            (Some(100), Some(300))
        );
    }

    #[test]
    fn a_data_class_without_a_policy_constrains_nothing_as_on_the_request_path() {
        let aws = d("aws")
            .at(Cloud::Aws, "us-east-1", Jurisdiction::Us)
            .build();
        let catalog = one_model(model(vec![aws], Strategy::Priority), Policy::default());
        let mut requests = replay(2, 1_000);
        for r in &mut requests {
            r.data_class = Some(DataClass::new("internal").unwrap());
        }
        let report = drill(&catalog, &requests, &[], &HashMap::new(), false);
        assert_eq!(report.models[0].served, 2, "{report:?}");
    }

    #[test]
    fn the_survivor_s_limits_fail_what_does_not_fit_at_the_recorded_rate() {
        let aws = d("aws")
            .at(Cloud::Aws, "us-east-1", Jurisdiction::Us)
            .build();
        let small = d("small")
            .at(Cloud::Azure, "eastus", Jurisdiction::Us)
            .limits(Some(4), None, None)
            .build();
        let catalog = one_model(
            model(vec![aws, small], Strategy::Priority),
            Policy::default(),
        );
        // 10 requests within one minute, then 10 more a minute later.
        let mut requests = replay(10, 1_000);
        requests.extend(replay(10, 1_000).into_iter().map(|mut r| {
            r.time_ms += 120_000;
            r
        }));
        let report = drill(
            &catalog,
            &requests,
            &[Down::Provider("aws-provider".into())],
            &HashMap::new(),
            true,
        );
        let m = &report.models[0];
        assert_eq!(m.served, 8, "4 per minute on the survivor");
        assert_eq!(m.failed, BTreeMap::from([(Failure::CapacityExhausted, 12)]));
        // Per request: the first 4 of each minute fit, the rest do not.
        let fits: Vec<bool> = report
            .requests
            .iter()
            .map(|p| p.deployment.is_some())
            .collect();
        assert_eq!(
            fits[..10],
            [true, true, true, true, false, false, false, false, false, false]
        );
        assert_eq!(fits[10..14], [true, true, true, true]);
    }

    #[test]
    fn residency_that_only_the_down_region_meets_fails_as_all_eligible_down() {
        let eu = d("eu")
            .at(Cloud::Azure, "swedencentral", Jurisdiction::Eu)
            .build();
        let us = d("us").at(Cloud::Azure, "eastus", Jurisdiction::Us).build();
        let mut m = model(vec![eu, us], Strategy::Priority);
        m.constraints = crate::Constraints {
            jurisdictions: Filter {
                allow: vec![Jurisdiction::Eu],
                deny: vec![],
            },
            ..Default::default()
        };
        let catalog = one_model(m, Policy::default());
        let report = drill(
            &catalog,
            &replay(3, 1_000),
            &[Down::Region("swedencentral".into())],
            &HashMap::new(),
            false,
        );
        let m = &report.models[0];
        assert_eq!((m.served_baseline, m.served), (3, 0));
        assert_eq!(m.failed, BTreeMap::from([(Failure::AllEligibleDown, 3)]));
        assert_eq!(m.spend_nanos, 0);
    }
}
