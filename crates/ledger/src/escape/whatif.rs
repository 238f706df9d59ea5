//! Exit-cost what-if: the recorded token mix of a window (input, cache reads, cache writes,
//! output) repriced at another deployment's prices, per model, against what the ledger says
//! it cost. Repricing runs in the database, record by record, with the ledger's own rounding
//! ([`switchyard_types::Prices::cost`]), so repricing on the recorded deployments at unchanged
//! prices gives the ledger's totals to the nano-dollar.
//!
//! A request answered in parts on several deployments (stream recovery) is repriced whole at
//! the target, as the target would have served it.

use super::{bounds, json, minus, table, Footprint, Place, ViewFormat};
use crate::record::parse_name;
use crate::store::{Filter, LedgerStore, RepriceTotals, SpendBy, TimeRange, NONE_GROUP};
use crate::LedgerError;
use serde::Serialize;
use std::collections::BTreeSet;
use std::str::FromStr;
use switchyard_types::{Cloud, Money, Prices};

/// A column traffic can be selected by (`--move model=M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The logical model.
    Model,
    /// The recorded deployment.
    Deployment,
    /// The recorded provider.
    Provider,
    /// The recorded cloud.
    Cloud,
    /// The recorded region.
    Region,
}

impl Dimension {
    fn column(self) -> SpendBy {
        match self {
            Self::Model => SpendBy::Model,
            Self::Deployment => SpendBy::Deployment,
            Self::Provider => SpendBy::Provider,
            Self::Cloud => SpendBy::Cloud,
            Self::Region => SpendBy::Region,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "model" => Self::Model,
            "deployment" => Self::Deployment,
            "provider" => Self::Provider,
            "cloud" => Self::Cloud,
            "region" => Self::Region,
            _ => return None,
        })
    }
}

/// Which recorded traffic moves: records whose `dimension` is `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selector {
    /// The column.
    pub dimension: Dimension,
    /// Its value.
    pub value: String,
}

impl FromStr for Selector {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, LedgerError> {
        let bad = || {
            LedgerError::BadArgument(format!(
                "bad selector {s:?}: use model=M, deployment=D, provider=P, cloud=C or region=R"
            ))
        };
        let (k, v) = s.split_once('=').ok_or_else(bad)?;
        let dimension = Dimension::parse(k.trim()).ok_or_else(bad)?;
        let value = v.trim();
        if value.is_empty() {
            return Err(bad());
        }
        if dimension == Dimension::Cloud && parse_name::<Cloud>(value).is_none() {
            return Err(LedgerError::BadArgument(format!("unknown cloud {value:?}")));
        }
        Ok(Selector {
            dimension,
            value: value.to_owned(),
        })
    }
}

/// Where the moved traffic is repriced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One named deployment, for every moved model.
    Deployment(String),
    /// For each moved model, its cheapest deployment on this cloud (for the window's mix).
    Cloud(Cloud),
    /// For each moved model, its cheapest deployment behind this provider.
    Provider(String),
    /// Each record's own deployment at the live config's prices (a check: at unchanged
    /// prices the difference is zero).
    Recorded,
    /// Every deployment of each moved model, one row each; the total takes each model's
    /// cheapest (its best exit).
    Every,
}

impl FromStr for Target {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, LedgerError> {
        let bad = || {
            LedgerError::BadArgument(format!(
                "bad target {s:?}: use deployment=D, cloud=C, provider=P, recorded or every"
            ))
        };
        match s {
            "recorded" => return Ok(Target::Recorded),
            "every" => return Ok(Target::Every),
            _ => {}
        }
        let (k, v) = s.split_once('=').ok_or_else(bad)?;
        let v = v.trim();
        if v.is_empty() {
            return Err(bad());
        }
        match k.trim() {
            "deployment" => Ok(Target::Deployment(v.to_owned())),
            "provider" => Ok(Target::Provider(v.to_owned())),
            "cloud" => parse_name(v)
                .map(Target::Cloud)
                .ok_or_else(|| LedgerError::BadArgument(format!("unknown cloud {v:?}"))),
            _ => Err(bad()),
        }
    }
}

/// Whether a row could be repriced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Repriced at `to`.
    Repriced,
    /// The live config has no deployment of this model at the target.
    NoDeployment,
    /// The target deployments have no known price.
    Unpriced,
}

/// One model's moved traffic (per recorded deployment with [`Target::Recorded`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatifRow {
    /// The logical model.
    pub model: String,
    /// The recorded deployment, when the row covers only one.
    pub from: Option<String>,
    /// The deployment it was repriced at.
    pub to: Option<String>,
    /// That deployment's cloud.
    pub to_cloud: Option<Cloud>,
    /// Whether it could be repriced.
    pub status: RowStatus,
    /// Whether the row is in the report's total (with [`Target::Every`], only each model's
    /// cheapest row is).
    pub in_total: bool,
    /// Requests, tokens and costs.
    #[serde(flatten)]
    pub totals: Totals,
}

/// Counts and costs of a set of requests, for JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Requests moved.
    pub requests: u64,
    /// All input tokens (cache reads and writes included).
    pub input_tokens: u64,
    /// Input tokens read from a prompt cache.
    pub cached_input_tokens: u64,
    /// Input tokens written to a prompt cache.
    pub cache_write_tokens: u64,
    /// All output tokens (reasoning included).
    pub output_tokens: u64,
    /// Reasoning tokens (part of output).
    pub reasoning_tokens: u64,
    /// What the priced requests cost, per the ledger.
    pub current_nanos: i64,
    /// What the same requests would cost at the target's prices.
    pub whatif_nanos: i64,
    /// The part of `whatif_nanos` the target's prepaid commitment already covers: its amount
    /// prorated over the window, less what the target's own traffic used of it.
    pub commitment_credit_nanos: i64,
    /// `whatif_nanos - commitment_credit_nanos - current_nanos`: what moving adds.
    pub difference_nanos: i64,
    /// Requests whose recorded deployment had no price (not in the two costs above).
    pub unpriced_requests: u64,
    /// What those would cost at the target.
    pub unpriced_whatif_nanos: i64,
}

impl Totals {
    fn from_reprice(t: &RepriceTotals, repriced: bool) -> Totals {
        let (whatif, unpriced_whatif) = if repriced {
            (t.repriced, t.repriced_unpriced)
        } else {
            (Money::ZERO, Money::ZERO)
        };
        Totals {
            requests: t.requests,
            input_tokens: t.usage.input,
            cached_input_tokens: t.usage.cached_input,
            cache_write_tokens: t.usage.cache_write,
            output_tokens: t.usage.output,
            reasoning_tokens: t.usage.reasoning,
            current_nanos: t.ledger_cost.nanos(),
            whatif_nanos: whatif.nanos(),
            commitment_credit_nanos: 0,
            difference_nanos: if repriced {
                minus(whatif, t.ledger_cost).nanos()
            } else {
                0
            },
            unpriced_requests: t.unpriced_requests,
            unpriced_whatif_nanos: unpriced_whatif.nanos(),
        }
    }

    fn add(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.input_tokens += o.input_tokens;
        self.cached_input_tokens += o.cached_input_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.output_tokens += o.output_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.current_nanos = self.current_nanos.saturating_add(o.current_nanos);
        self.whatif_nanos = self.whatif_nanos.saturating_add(o.whatif_nanos);
        self.commitment_credit_nanos = self
            .commitment_credit_nanos
            .saturating_add(o.commitment_credit_nanos);
        self.difference_nanos = self.difference_nanos.saturating_add(o.difference_nanos);
        self.unpriced_requests += o.unpriced_requests;
        self.unpriced_whatif_nanos = self
            .unpriced_whatif_nanos
            .saturating_add(o.unpriced_whatif_nanos);
    }
}

/// The what-if report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatifReport {
    /// Window start (RFC 3339), if bounded.
    pub since: Option<String>,
    /// Window end (RFC 3339, exclusive), if bounded.
    pub until: Option<String>,
    /// The traffic moved (all of these hold).
    pub selectors: Vec<Selector>,
    /// Where it moved.
    pub target: Target,
    /// Per model (and recorded deployment), largest current spend first.
    pub rows: Vec<WhatifRow>,
    /// The sum of the repriced rows (rows that could not be repriced are not in it).
    pub total: Totals,
    /// Requests in rows that could not be repriced.
    pub not_repriced_requests: u64,
}

/// Reprices the window's records matching every selector at `target`, per model.
pub async fn whatif(
    store: &dyn LedgerStore,
    range: TimeRange,
    selectors: &[Selector],
    target: &Target,
    footprint: &Footprint,
) -> Result<WhatifReport, LedgerError> {
    if let Target::Deployment(d) = target {
        if footprint.deployment(d).is_none() {
            return Err(LedgerError::BadArgument(format!(
                "no deployment {d:?} in the config"
            )));
        }
    }
    let dims = [SpendBy::Model, SpendBy::Deployment];
    let base: Vec<Filter> = selectors
        .iter()
        .map(|s| Filter {
            by: s.dimension.column(),
            value: s.value.clone(),
        })
        .collect();
    // Which (model, deployment) pairs the selectors leave: the other selector columns are
    // checked by the database in each reprice query, so a pair may come back empty there.
    let groups = store.spend_grouped(&dims, range).await?;
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for g in &groups {
        let (model, deployment) = (&g.keys[0], &g.keys[1]);
        let keep = selectors.iter().all(|s| match s.dimension {
            Dimension::Model => &s.value == model,
            Dimension::Deployment => &s.value == deployment,
            _ => true,
        });
        if keep && deployment != NONE_GROUP {
            pairs.insert((model.clone(), deployment.clone()));
        }
    }
    let models: BTreeSet<String> = pairs.iter().map(|(m, _)| m.clone()).collect();
    let mut rows = Vec::new();
    for model in &models {
        let filters = narrowed(&base, selectors, Dimension::Model, model);
        match target {
            Target::Recorded => {
                for (_, deployment) in pairs.iter().filter(|(m, _)| m == model) {
                    let f = narrowed(&filters, selectors, Dimension::Deployment, deployment);
                    let place = footprint.deployment(deployment);
                    let row = reprice_at(store, range, &f, model, place.into_iter()).await?;
                    if let Some(mut row) = row {
                        row.from = Some(deployment.clone());
                        rows.push(row);
                    }
                }
            }
            Target::Every => {
                let places = footprint.places(model).unwrap_or_default();
                let mut model_rows = Vec::new();
                for p in places {
                    let row = reprice_at(store, range, &filters, model, std::iter::once(p)).await?;
                    model_rows.extend(row);
                }
                if places.is_empty() {
                    let row = reprice_at(store, range, &filters, model, std::iter::empty()).await?;
                    model_rows.extend(row);
                }
                for r in &mut model_rows {
                    r.in_total = false;
                }
                let best = model_rows
                    .iter_mut()
                    .filter(|r| r.status == RowStatus::Repriced)
                    .min_by(|a, b| {
                        let cost = |r: &WhatifRow| {
                            i128::from(r.totals.whatif_nanos)
                                + i128::from(r.totals.unpriced_whatif_nanos)
                        };
                        cost(a).cmp(&cost(b)).then_with(|| a.to.cmp(&b.to))
                    });
                if let Some(best) = best {
                    best.in_total = true;
                }
                rows.extend(model_rows);
            }
            other => {
                let candidates: Vec<&Place> = match other {
                    Target::Deployment(d) => footprint.deployment(d).into_iter().collect(),
                    Target::Cloud(c) => footprint
                        .places(model)
                        .unwrap_or_default()
                        .iter()
                        .filter(|p| p.cloud == *c)
                        .collect(),
                    Target::Provider(p) => footprint
                        .places(model)
                        .unwrap_or_default()
                        .iter()
                        .filter(|x| &x.provider == p)
                        .collect(),
                    Target::Recorded | Target::Every => Vec::new(),
                };
                if let Some(row) =
                    reprice_at(store, range, &filters, model, candidates.into_iter()).await?
                {
                    rows.push(row);
                }
            }
        }
    }
    rows.sort_by(|a, b| {
        b.totals
            .current_nanos
            .cmp(&a.totals.current_nanos)
            .then_with(|| a.model.cmp(&b.model))
            .then_with(|| a.from.cmp(&b.from))
    });
    if *target != Target::Recorded {
        apply_prepaid(
            store, range, &base, selectors, &mut rows, footprint, &groups,
        )
        .await?;
    }
    let mut total = Totals::default();
    for r in rows.iter().filter(|r| r.in_total) {
        total.add(&r.totals);
    }
    // Traffic no row of the total covers: per model (and recorded deployment), counted once.
    let mut covered: BTreeSet<(&str, Option<&str>)> = BTreeSet::new();
    for r in rows.iter().filter(|r| r.in_total) {
        covered.insert((&r.model, r.from.as_deref()));
    }
    let mut uncovered: BTreeSet<(&str, Option<&str>)> = BTreeSet::new();
    let mut not_repriced = 0;
    for r in &rows {
        let key = (r.model.as_str(), r.from.as_deref());
        if !covered.contains(&key) && uncovered.insert(key) {
            not_repriced += r.totals.requests;
        }
    }
    let (since, until) = bounds(range);
    Ok(WhatifReport {
        since,
        until,
        selectors: selectors.to_vec(),
        target: target.clone(),
        rows,
        total,
        not_repriced_requests: not_repriced,
    })
}

/// `filters` plus `dimension = value`, unless a selector already fixes that dimension.
fn narrowed(
    filters: &[Filter],
    selectors: &[Selector],
    dimension: Dimension,
    value: &str,
) -> Vec<Filter> {
    let mut f = filters.to_vec();
    if !selectors.iter().any(|s| s.dimension == dimension) {
        f.push(Filter {
            by: dimension.column(),
            value: value.to_owned(),
        });
    }
    f
}

/// Lets each target's prepaid commitment cover moved traffic first: its amount prorated over
/// the window, less what the traffic staying on it already used, handed out to the rows in
/// order (costliest first). Needs a bounded start; an open end is now.
async fn apply_prepaid(
    store: &dyn LedgerStore,
    range: TimeRange,
    base: &[Filter],
    selectors: &[Selector],
    rows: &mut [WhatifRow],
    footprint: &Footprint,
    groups: &[crate::store::GroupedRow],
) -> Result<(), LedgerError> {
    if range.since_ms == i64::MIN {
        return Ok(());
    }
    let until = if range.until_ms == i64::MAX {
        crate::now_ms()
    } else {
        range.until_ms
    };
    let window = i128::from(until.saturating_sub(range.since_ms).max(0));
    let targets: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.in_total)
        .filter_map(|r| r.to.clone())
        .collect();
    for d in targets {
        let Some(prepaid) = footprint.deployment(&d).and_then(|p| p.prepaid) else {
            continue;
        };
        let paid =
            i128::from(prepaid.amount.nanos()) * window / i128::from(prepaid.period_ms.max(1));
        let on_d: i128 = groups
            .iter()
            .filter(|g| g.keys[1] == d)
            .map(|g| i128::from(g.cost.nanos()))
            .sum();
        // Moved records already on the target used the commitment too, but they are the
        // ones being priced now: only the staying traffic's use reduces the headroom.
        let mut moved_on_d = 0i128;
        for r in rows
            .iter()
            .filter(|r| r.in_total && r.to.as_deref() == Some(&d))
        {
            let f = narrowed(base, selectors, Dimension::Model, &r.model);
            let f = narrowed(&f, selectors, Dimension::Deployment, &d);
            moved_on_d += i128::from(
                store
                    .reprice(range, &f, &Prices::default())
                    .await?
                    .ledger_cost
                    .nanos(),
            );
        }
        let mut headroom = (paid - (on_d - moved_on_d)).max(0);
        for r in rows
            .iter_mut()
            .filter(|r| r.in_total && r.to.as_deref() == Some(&d))
        {
            let credit = headroom.min(i128::from(r.totals.whatif_nanos)).max(0);
            headroom -= credit;
            let credit = i64::try_from(credit).unwrap_or(i64::MAX);
            r.totals.commitment_credit_nanos = credit;
            r.totals.difference_nanos = r
                .totals
                .whatif_nanos
                .saturating_sub(credit)
                .saturating_sub(r.totals.current_nanos);
        }
    }
    Ok(())
}

/// The cheapest of `candidates` for the records `filters` select (ties by name); `None` when
/// no record matches.
async fn reprice_at(
    store: &dyn LedgerStore,
    range: TimeRange,
    filters: &[Filter],
    model: &str,
    candidates: impl Iterator<Item = &Place>,
) -> Result<Option<WhatifRow>, LedgerError> {
    let mut best: Option<(RepriceTotals, &Place)> = None;
    let mut any_candidate = false;
    for place in candidates {
        any_candidate = true;
        let Some(prices) = place.prices else { continue };
        let t = store.reprice(range, filters, &prices).await?;
        let cost = |t: &RepriceTotals| {
            i128::from(t.repriced.nanos()) + i128::from(t.repriced_unpriced.nanos())
        };
        let better = best.as_ref().is_none_or(|(b, bp)| {
            cost(&t) < cost(b) || (cost(&t) == cost(b) && place.deployment < bp.deployment)
        });
        if better {
            best = Some((t, place));
        }
    }
    let row = match best {
        Some((t, place)) => WhatifRow {
            model: model.to_owned(),
            from: None,
            to: Some(place.deployment.clone()),
            to_cloud: Some(place.cloud),
            status: RowStatus::Repriced,
            in_total: true,
            totals: Totals::from_reprice(&t, true),
        },
        None => {
            // Still count what would have moved, priced at nothing.
            let t = store.reprice(range, filters, &Prices::default()).await?;
            WhatifRow {
                model: model.to_owned(),
                from: None,
                to: None,
                to_cloud: None,
                status: if any_candidate {
                    RowStatus::Unpriced
                } else {
                    RowStatus::NoDeployment
                },
                in_total: false,
                totals: Totals::from_reprice(&t, false),
            }
        }
    };
    Ok((row.totals.requests > 0).then_some(row))
}

impl WhatifReport {
    /// Renders in `format`; the text ends with a newline.
    pub fn render(&self, format: ViewFormat) -> Result<String, LedgerError> {
        match format {
            ViewFormat::Json => json(self),
            ViewFormat::Table => Ok(self.table()),
        }
    }

    fn table(&self) -> String {
        let usd = |n: i64| Money(n).to_string();
        let cells = |model: &str, from: &str, to: &str, t: &Totals| {
            vec![
                model.to_owned(),
                from.to_owned(),
                to.to_owned(),
                t.requests.to_string(),
                t.input_tokens.to_string(),
                t.cached_input_tokens.to_string(),
                t.cache_write_tokens.to_string(),
                t.output_tokens.to_string(),
                usd(t.current_nanos),
                usd(t.whatif_nanos),
                usd(t.commitment_credit_nanos),
                usd(t.difference_nanos),
                t.unpriced_requests.to_string(),
            ]
        };
        let mut lines: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let to = match (r.status, &r.to) {
                    (RowStatus::Repriced, Some(to))
                        if self.target == Target::Every && r.in_total =>
                    {
                        format!("{to} (cheapest)")
                    }
                    (RowStatus::Repriced, Some(to)) => to.clone(),
                    (RowStatus::Unpriced, _) => "(target unpriced)".to_owned(),
                    _ => "(no deployment)".to_owned(),
                };
                cells(&r.model, r.from.as_deref().unwrap_or("*"), &to, &r.totals)
            })
            .collect();
        lines.push(cells("TOTAL", "", "", &self.total));
        let mut out = format!(
            "window: {} .. {}\n",
            self.since.as_deref().unwrap_or("(start)"),
            self.until.as_deref().unwrap_or("(now)")
        );
        out.push_str(&table(
            &[
                "model",
                "from",
                "to",
                "requests",
                "input",
                "cached",
                "cache_write",
                "output",
                "current_usd",
                "whatif_usd",
                "prepaid_usd",
                "difference_usd",
                "unpriced",
            ],
            &lines,
        ));
        if self.not_repriced_requests > 0 {
            out.push_str(&format!(
                "note: {} requests could not be repriced (no priced deployment at the target); they are not in TOTAL\n",
                self.not_repriced_requests
            ));
        }
        if self.total.unpriced_requests > 0 {
            out.push_str(&format!(
                "note: {} requests ran on unpriced deployments; their current cost is unknown, at the target they would cost {} USD (not in whatif_usd)\n",
                self.total.unpriced_requests,
                usd(self.total.unpriced_whatif_nanos)
            ));
        }
        out
    }
}

#[cfg(test)]
#[path = "whatif_tests.rs"]
mod tests;
