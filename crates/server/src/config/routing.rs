//! The routing part of the config: strategies, commitments, constraints, data classes,
//! retry tables, breakers and hedging, from raw TOML to `switchyard_router` types.

use super::{known, Compiler};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use switchyard_router::{
    Action, Backoff, BreakerConfig, Budget, Commitment, Constraints, DataClass, ErrorClass, Filter,
    Hedging, Period, Policy, RetryPolicy, RetryRules, StatusSet, Strategy,
};
use switchyard_types::{Cloud, Jurisdiction, Money, ProviderKind};

/// `strategy = "..."` on a model.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawStrategy {
    #[default]
    Priority,
    Weighted,
    Cheapest,
    Fastest,
    LeastBusy,
    Spillover,
}

/// Where deployments may run and what they must promise (global, per model, per data class).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConstraints {
    #[serde(default)]
    jurisdictions: Vec<Jurisdiction>,
    #[serde(default)]
    deny_jurisdictions: Vec<Jurisdiction>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    deny_regions: Vec<String>,
    #[serde(default)]
    clouds: Vec<Cloud>,
    #[serde(default)]
    deny_clouds: Vec<Cloud>,
    #[serde(default)]
    require_tags: Vec<String>,
}

/// `commitment = { kind = "prepaid", amount_usd = 500, period = "month" }` or
/// `{ kind = "provisioned", rpm = 100, tpm = 200000 }`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawCommitment {
    Prepaid { amount_usd: f64, period: RawPeriod },
    Provisioned { rpm: Option<u32>, tpm: Option<u64> },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawPeriod {
    Day,
    Week,
    Month,
}

/// `hedging = { delay_ms = 800, percentile = 95 }` on a model.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHedging {
    delay_ms: u64,
    percentile: Option<f64>,
}

/// `[retry]`: budgets, backoff, the retryable-status table per protocol and the retry table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    time_budget_ms: Option<u64>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    rate_limit_cooldown_ms: Option<u64>,
    #[serde(default)]
    statuses: HashMap<ProviderKind, Vec<u16>>,
    // The retry table's keys, as in [`RawRetryRules`] (serde cannot flatten into a struct
    // that denies unknown fields).
    same_deployment_retries: Option<u32>,
    retry_after_wait_max_ms: Option<u64>,
    #[serde(default)]
    on: BTreeMap<ErrorClass, Action>,
}

/// The retry table: in `[retry]`, and as `retry` on a model (overriding it key by key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetryRules {
    same_deployment_retries: Option<u32>,
    retry_after_wait_max_ms: Option<u64>,
    #[serde(default)]
    on: BTreeMap<ErrorClass, Action>,
}

/// `[breaker]`: when a deployment's circuit breaker opens and for how long.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    consecutive_failures: Option<u32>,
    error_rate: Option<f64>,
    min_requests: Option<u32>,
    window_ms: Option<u64>,
    probe_initial_ms: Option<u64>,
    open_ms: Option<u64>,
}

/// The routing sections of the config, gathered for [`Compiler::policy`].
pub(super) struct RawRouting<'a> {
    pub constraints: &'a RawConstraints,
    pub data_classes: &'a BTreeMap<String, RawConstraints>,
    pub retry: &'a RawRetry,
    pub breaker: &'a RawBreaker,
    pub provider_statuses: Vec<(&'a str, &'a [u16])>,
    pub max_attempts: usize,
    /// The default time budget: room for a failover after one timed-out attempt.
    pub default_budget: Duration,
}

impl Compiler {
    pub(super) fn constraints(&mut self, loc: &str, raw: &RawConstraints) -> Constraints {
        let overlap = |allow: &[String], deny: &[String]| allow.iter().any(|a| deny.contains(a));
        let names =
            |v: &[Jurisdiction]| v.iter().map(|j| j.as_str().to_string()).collect::<Vec<_>>();
        let clouds = |v: &[Cloud]| v.iter().map(|c| c.as_str().to_string()).collect::<Vec<_>>();
        for (field, clash) in [
            (
                "jurisdictions",
                overlap(&names(&raw.jurisdictions), &names(&raw.deny_jurisdictions)),
            ),
            ("regions", overlap(&raw.regions, &raw.deny_regions)),
            (
                "clouds",
                overlap(&clouds(&raw.clouds), &clouds(&raw.deny_clouds)),
            ),
        ] {
            if clash {
                self.warn(
                    format!("{loc}.deny_{field}"),
                    format!("a value is both in {field} and deny_{field}; deny wins"),
                    "remove it from one of the two lists",
                );
            }
        }
        for (i, t) in raw.require_tags.iter().enumerate() {
            if t.trim().is_empty() {
                self.error(
                    format!("{loc}.require_tags[{i}]"),
                    "an empty tag can never match",
                    "name a tag deployments carry, for example \"zdr\"",
                );
            }
        }
        Constraints {
            jurisdictions: Filter {
                allow: raw.jurisdictions.clone(),
                deny: raw.deny_jurisdictions.clone(),
            },
            regions: Filter {
                allow: raw.regions.iter().map(|r| r.as_str().into()).collect(),
                deny: raw.deny_regions.iter().map(|r| r.as_str().into()).collect(),
            },
            clouds: Filter {
                allow: raw.clouds.clone(),
                deny: raw.deny_clouds.clone(),
            },
            require_tags: raw.require_tags.clone(),
        }
    }

    pub(super) fn commitment(&mut self, loc: &str, raw: &RawCommitment) -> Option<Commitment> {
        match *raw {
            RawCommitment::Prepaid { amount_usd, period } => {
                let amount = Money::from_usd(amount_usd).filter(|m| *m > Money::ZERO);
                let Some(amount) = amount else {
                    self.error(
                        format!("{loc}.commitment.amount_usd"),
                        format!("{amount_usd} is not a positive amount"),
                        "the prepaid amount per period in USD, for example 5000",
                    );
                    return None;
                };
                let period = match period {
                    RawPeriod::Day => Period::Day,
                    RawPeriod::Week => Period::Week,
                    RawPeriod::Month => Period::Month,
                };
                Some(Commitment::Prepaid { amount, period })
            }
            RawCommitment::Provisioned { rpm, tpm } => {
                if rpm.is_none() && tpm.is_none() {
                    self.error(
                        format!("{loc}.commitment"),
                        "provisioned capacity without rpm or tpm",
                        "state the capacity you bought: rpm = ... and/or tpm = ...",
                    );
                    return None;
                }
                Some(Commitment::Provisioned { rpm, tpm })
            }
        }
    }

    pub(super) fn strategy(
        &mut self,
        loc: &str,
        raw: RawStrategy,
        weights: &BTreeMap<String, u32>,
        deployments: &[String],
    ) -> Strategy {
        if raw != RawStrategy::Weighted && !weights.is_empty() {
            self.error(
                format!("{loc}.weights"),
                "weights only apply to strategy = \"weighted\"",
                "set strategy = \"weighted\" or remove weights",
            );
        }
        match raw {
            RawStrategy::Priority => Strategy::Priority,
            RawStrategy::Cheapest => Strategy::Cheapest,
            RawStrategy::Fastest => Strategy::Fastest,
            RawStrategy::LeastBusy => Strategy::LeastBusy,
            RawStrategy::Spillover => Strategy::Spillover,
            RawStrategy::Weighted => {
                for name in weights.keys() {
                    if !deployments.contains(name) {
                        self.error(
                            format!("{loc}.weights.{name}"),
                            format!("'{name}' is not one of this model's deployments"),
                            format!("this model's deployments: {}", deployments.join(", ")),
                        );
                    }
                }
                let missing: Vec<&str> = deployments
                    .iter()
                    .filter(|d| !weights.contains_key(*d))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    self.error(
                        format!("{loc}.weights"),
                        format!("no weight for {}", missing.join(", ")),
                        "give every deployment a weight, for example weights = { a = 3, b = 1 } (0 = last resort)",
                    );
                }
                if !weights.is_empty() && weights.values().all(|w| *w == 0) {
                    self.error(
                        format!("{loc}.weights"),
                        "every weight is 0",
                        "give at least one deployment a positive weight",
                    );
                }
                Strategy::Weighted {
                    weights: deployments
                        .iter()
                        .map(|d| weights.get(d).copied().unwrap_or(0))
                        .collect(),
                }
            }
        }
    }

    pub(super) fn hedging(&mut self, loc: &str, raw: &RawHedging) -> Option<Hedging> {
        if raw.delay_ms == 0 {
            self.error(
                format!("{loc}.hedging.delay_ms"),
                "a hedge delay of 0 doubles every request",
                "use the latency after which a second attempt is worth its cost, for example 1000",
            );
            return None;
        }
        if let Some(p) = raw.percentile.filter(|p| !(*p > 0.0 && *p < 100.0)) {
            self.error(
                format!("{loc}.hedging.percentile"),
                format!("{p} is not a percentile between 0 and 100"),
                "for example 95: hedge once the first deployment is slower than 95% of its recent answers",
            );
            return None;
        }
        Some(Hedging {
            delay: Duration::from_millis(raw.delay_ms),
            percentile: raw.percentile,
        })
    }

    /// `base` with the keys `raw` sets replaced.
    pub(super) fn retry_rules(
        &mut self,
        loc: &str,
        base: RetryRules,
        raw: &RawRetryRules,
    ) -> RetryRules {
        let mut rules = base;
        if let Some(n) = raw.same_deployment_retries {
            rules.same_deployment = n;
        }
        if let Some(ms) = raw.retry_after_wait_max_ms {
            rules.retry_after_wait_max = Duration::from_millis(ms);
        }
        for (class, action) in &raw.on {
            rules.set_action(*class, *action);
        }
        if rules.same_deployment > 10 {
            self.warn(
                format!("{loc}.same_deployment_retries"),
                format!("{} retries on one deployment", rules.same_deployment),
                "server.max_attempts still bounds a request; 1 or 2 is usually enough",
            );
        }
        rules
    }

    pub(super) fn data_class(
        &mut self,
        loc: &str,
        name: &str,
        defined: &[String],
    ) -> Option<DataClass> {
        match DataClass::new(name) {
            Err(e) => {
                self.error(loc, e.to_string(), "for example \"confidential\"");
                None
            }
            Ok(_) if !defined.iter().any(|d| d == name) => {
                self.error(
                    loc,
                    format!("unknown data class '{name}'"),
                    known("data classes", name, defined.iter()),
                );
                None
            }
            Ok(c) => Some(c),
        }
    }

    pub(super) fn policy(&mut self, raw: RawRouting<'_>) -> Policy {
        let constraints = self.constraints("constraints", raw.constraints);
        let mut data_classes = HashMap::new();
        for (name, c) in raw.data_classes {
            let loc = format!("data_classes.{name}");
            let compiled = self.constraints(&loc, c);
            match DataClass::new(name) {
                Ok(class) => {
                    if compiled.is_empty() {
                        self.warn(
                            &loc,
                            "this data class constrains nothing",
                            "add jurisdictions, regions, clouds or require_tags",
                        );
                    }
                    data_classes.insert(class, compiled);
                }
                Err(e) => self.error(
                    loc,
                    e.to_string(),
                    "use lowercase letters, digits, '-' or '_'",
                ),
            }
        }
        let mut retry = RetryPolicy::default();
        let statuses = |this: &mut Compiler, loc: String, list: &[u16]| {
            for (i, s) in list.iter().enumerate() {
                if !(100..=599).contains(s) {
                    this.error(
                        format!("{loc}[{i}]"),
                        format!("{s} is not an HTTP status"),
                        "use statuses from 100 to 599, for example 429 or 529",
                    );
                }
            }
            StatusSet::new(list.iter().copied())
        };
        let mut kinds: Vec<_> = raw.retry.statuses.iter().collect();
        kinds.sort_by_key(|(k, _)| k.as_str());
        for (kind, list) in kinds {
            let set = statuses(self, format!("retry.statuses.{kind}"), list);
            retry.set_kind(*kind, set);
        }
        for (provider, list) in raw.provider_statuses {
            let set = statuses(self, format!("providers.{provider}.retry_statuses"), list);
            retry.set_provider(Arc::from(provider), set);
        }
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let defaults = BreakerConfig::default();
        let b = raw.breaker;
        let breaker = BreakerConfig {
            consecutive_failures: b
                .consecutive_failures
                .unwrap_or(defaults.consecutive_failures),
            error_rate: b.error_rate.unwrap_or(defaults.error_rate),
            min_requests: b.min_requests.unwrap_or(defaults.min_requests),
            window: ms(b.window_ms, defaults.window),
            probe_initial: ms(b.probe_initial_ms, defaults.probe_initial),
            open_for: ms(b.open_ms, defaults.open_for),
        };
        if !(breaker.error_rate > 0.0 && breaker.error_rate <= 1.0) {
            self.error(
                "breaker.error_rate",
                format!(
                    "{} is not a ratio above 0 and at most 1",
                    breaker.error_rate
                ),
                "for example 0.5: open when half the requests in the window fail",
            );
        }
        for (field, v) in [
            ("window_ms", breaker.window),
            ("probe_initial_ms", breaker.probe_initial),
            ("open_ms", breaker.open_for),
        ] {
            if v.is_zero() {
                self.error(
                    format!("breaker.{field}"),
                    "0 ms makes the breaker meaningless",
                    "use a positive number of milliseconds, or remove the line for the default",
                );
            }
        }
        if breaker.probe_initial > breaker.open_for {
            self.error(
                "breaker.probe_initial_ms",
                format!(
                    "{} ms is longer than open_ms ({} ms), the longest an open breaker waits",
                    breaker.probe_initial.as_millis(),
                    breaker.open_for.as_millis()
                ),
                "the wait starts at probe_initial_ms and doubles per failed probe up to open_ms",
            );
        }
        let backoff_default = Backoff::default();
        let r = raw.retry;
        let budget = Budget {
            max_attempts: raw.max_attempts,
            time: ms(r.time_budget_ms, raw.default_budget),
            backoff: Backoff {
                base: ms(r.backoff_base_ms, backoff_default.base),
                max: ms(r.backoff_max_ms, backoff_default.max),
            },
        };
        if budget.time.is_zero() {
            self.error(
                "retry.time_budget_ms",
                "a time budget of 0 fails every request",
                "use a positive number of milliseconds; the default is server.timeouts.total_ms, or twice the attempt timeout when that is more",
            );
        }
        if budget.backoff.max < budget.backoff.base {
            self.error(
                "retry.backoff_max_ms",
                "the largest backoff is below the first one",
                "make backoff_max_ms at least backoff_base_ms",
            );
        }
        let global = RawRetryRules {
            same_deployment_retries: r.same_deployment_retries,
            retry_after_wait_max_ms: r.retry_after_wait_max_ms,
            on: r.on.clone(),
        };
        let retry_rules = self.retry_rules("retry", RetryRules::default(), &global);
        Policy {
            constraints,
            data_classes,
            retry,
            retry_rules,
            breaker,
            budget,
            rate_limit_cooldown: ms(r.rate_limit_cooldown_ms, Duration::from_secs(1)),
        }
    }
}
