//! Spend in the FinOps FOCUS layout (FOCUS 1.2 column names), so the gateway's spend loads into
//! the cost tools finance already uses: one row per UTC day, cloud, provider, region,
//! deployment, model and team, aggregated by the database (one grouped query per day).
//!
//! What the columns mean here: every cost column is the ledger's cost at the deployment's
//! configured price (the gateway knows no separate list, contracted or amortised price, so
//! `ListCost`, `ContractedCost`, `BilledCost` and `EffectiveCost` are equal); `ProviderName` is
//! the cloud; `RegionId` its region; `ResourceId` the deployment; `SubAccountId` the team;
//! `ConsumedQuantity` the tokens (input + output). Requests that never reached a deployment
//! were billed by no one and have no row. `x_` columns are Switchyard's extensions.

use crate::record::parse_name;
use crate::store::{LedgerStore, SpendBy, TimeRange, NONE_GROUP};
use crate::time::format_ms;
use crate::LedgerError;
use switchyard_types::{Cloud, Money};
use time::{Date, Month, OffsetDateTime};

/// The columns, in output order.
pub const COLUMNS: [&str; 36] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingCategory",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "x_Model",
    "x_GatewayProvider",
    "x_Requests",
    "x_UnpricedRequests",
    "x_CostNanos",
];

const DAY_MS: i64 = 86_400_000;

/// The longest window one export covers, in days: each day is a query, so a typo'd year
/// should be an error, not an afternoon of queries.
pub const MAX_DAYS: i64 = 400;

const DIMS: [SpendBy; 6] = [
    SpendBy::Cloud,
    SpendBy::Provider,
    SpendBy::Region,
    SpendBy::Deployment,
    SpendBy::Model,
    SpendBy::Team,
];

/// Who bills for a cloud and under what service name.
fn provider_names(cloud: Cloud) -> (&'static str, &'static str) {
    match cloud {
        Cloud::Aws => ("Amazon Web Services", "Amazon Bedrock"),
        Cloud::Azure => ("Microsoft", "Azure OpenAI"),
        Cloud::Gcp => ("Google Cloud", "Vertex AI"),
        Cloud::Oci => ("Oracle Cloud Infrastructure", "OCI Generative AI"),
        Cloud::OpenAi => ("OpenAI", "OpenAI API"),
        Cloud::Anthropic => ("Anthropic", "Claude API"),
        Cloud::Coreweave => ("CoreWeave", "CoreWeave Inference"),
        Cloud::GpuCloud => ("GPU cloud", "GPU cloud inference"),
        Cloud::SelfHosted => ("Self-hosted", "Self-hosted inference"),
    }
}

/// Writes the FOCUS CSV for `range` (which must have a start; an open end means `now_ms`).
/// `account` is the `BillingAccountId` (the gateway's own name for the bill).
pub async fn export<W: std::io::Write + ?Sized>(
    store: &dyn LedgerStore,
    range: TimeRange,
    now_ms: i64,
    account: &str,
    out: &mut W,
) -> Result<u64, LedgerError> {
    if range.since_ms == i64::MIN {
        return Err(LedgerError::BadArgument(
            "a FOCUS export needs a start: --since".into(),
        ));
    }
    let until = if range.until_ms == i64::MAX {
        now_ms
    } else {
        range.until_ms
    };
    if until.saturating_sub(range.since_ms) > MAX_DAYS * DAY_MS {
        return Err(LedgerError::BadArgument(format!(
            "a FOCUS export covers at most {MAX_DAYS} days; export longer periods in parts"
        )));
    }
    writeln!(out, "{}", COLUMNS.join(","))?;
    let mut rows = 0;
    let mut day = range.since_ms.div_euclid(DAY_MS) * DAY_MS;
    while day < until {
        // The charge period is the day, clipped to the window, so totals match the window's.
        let period = TimeRange {
            since_ms: day.max(range.since_ms),
            until_ms: (day + DAY_MS).min(until),
        };
        let (bill_start, bill_end) = billing_month(day)?;
        for g in store.spend_grouped(&DIMS, period).await? {
            let [cloud, provider, region, deployment, model, team] = g.keys.as_slice() else {
                return Err(LedgerError::decode(0, "grouped row without six keys"));
            };
            if cloud == NONE_GROUP {
                continue;
            }
            let cloud: Cloud = parse_name(cloud)
                .ok_or_else(|| LedgerError::decode(0, format!("unknown cloud {cloud:?}")))?;
            let (issuer, service) = provider_names(cloud);
            let cost = g.cost.to_string();
            let opt = |v: &str| {
                if v == NONE_GROUP {
                    String::new()
                } else {
                    v.to_owned()
                }
            };
            let cells: [String; 36] = [
                cost.clone(),
                account.to_owned(),
                account.to_owned(),
                "USD".into(),
                format_ms(bill_end),
                format_ms(bill_start),
                "Usage".into(),
                String::new(),
                format!("{model} on {deployment} via Switchyard"),
                "Usage-Based".into(),
                format_ms(period.until_ms),
                format_ms(period.since_ms),
                (g.input_tokens + g.output_tokens).to_string(),
                "Tokens".into(),
                cost.clone(),
                cost.clone(),
                issuer.into(),
                cost,
                "Standard".into(),
                issuer.into(),
                issuer.into(),
                opt(region),
                opt(region),
                opt(deployment),
                opt(deployment),
                "Model deployment".into(),
                "AI and Machine Learning".into(),
                service.into(),
                "Generative AI".into(),
                opt(team),
                opt(team),
                model.clone(),
                opt(provider),
                g.requests.to_string(),
                g.unpriced_requests.to_string(),
                g.cost.nanos().to_string(),
            ];
            let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
            writeln!(out, "{}", line.join(","))?;
            rows += 1;
        }
        day += DAY_MS;
    }
    Ok(rows)
}

/// The calendar month (UTC) holding `ms`: inclusive start, exclusive end.
fn billing_month(ms: i64) -> Result<(i64, i64), LedgerError> {
    let bad = || LedgerError::BadArgument(format!("time {ms} out of range"));
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1_000)).map_err(|_| bad())?;
    let first = Date::from_calendar_date(t.year(), t.month(), 1).map_err(|_| bad())?;
    let (y, m) = match t.month() {
        Month::December => (t.year() + 1, Month::January),
        m => (t.year(), m.next()),
    };
    let next = Date::from_calendar_date(y, m, 1).map_err(|_| bad())?;
    let ms_of = |d: Date| d.midnight().assume_utc().unix_timestamp() * 1_000;
    Ok((ms_of(first), ms_of(next)))
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The sum of a FOCUS CSV's `x_CostNanos` column (for checks).
pub fn total_nanos(csv: &str) -> Option<Money> {
    let mut total = Money::ZERO;
    for line in csv.lines().skip(1) {
        // x_CostNanos is the last column (see COLUMNS) and, a number, never quoted.
        let v = line.rsplit(',').next()?;
        total += Money(v.parse().ok()?);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::traffic;
    use crate::time::parse_time;

    #[tokio::test]
    async fn rows_cover_the_window_exactly_and_carry_the_focus_columns() {
        let start = parse_time("2026-11-30T20:00:00Z").unwrap();
        // ~1.5 s apart: 20,000 records run past midnight into December.
        let records = traffic(3, start, 20_000);
        let store = MemoryStore::new();
        store.append_batch(&records).await.unwrap();
        let since = start + 3_600_000;
        let until = records.last().unwrap().time_ms - 1_000_000;
        let range = TimeRange {
            since_ms: since,
            until_ms: until,
        };
        let mut out = Vec::new();
        let rows = export(&store, range, until, "acme", &mut out)
            .await
            .unwrap();
        let csv = String::from_utf8(out).unwrap();
        assert_eq!(csv.lines().count() as u64, rows + 1);
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        for required in [
            "BilledCost",
            "EffectiveCost",
            "ChargePeriodStart",
            "ChargePeriodEnd",
            "ProviderName",
            "RegionId",
            "ServiceName",
            "BillingCurrency",
        ] {
            assert!(header.contains(&required), "{required}");
        }
        let expected: i64 = records
            .iter()
            .filter(|r| range.contains(r.time_ms) && r.cloud.is_some())
            .map(|r| r.cost.nanos())
            .sum();
        assert!(expected > 0);
        assert_eq!(total_nanos(&csv), Some(Money(expected)));
        // Both days appear, each with its own month as the billing period.
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (cps, bps) = (col("ChargePeriodStart"), col("BillingPeriodStart"));
        let mut periods = std::collections::BTreeSet::new();
        for line in csv.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            periods.insert((cells[cps].to_owned(), cells[bps].to_owned()));
        }
        assert!(
            periods.contains(&(format_ms(since), "2026-11-01T00:00:00Z".to_owned())),
            "{periods:?}"
        );
        assert!(
            periods.contains(&(
                "2026-12-01T00:00:00Z".to_owned(),
                "2026-12-01T00:00:00Z".to_owned()
            )),
            "{periods:?}"
        );
        assert!(
            csv.contains(",Amazon Bedrock,"),
            "the service names come from the cloud"
        );
    }

    #[tokio::test]
    async fn an_open_start_and_an_overlong_window_are_refused() {
        let store = MemoryStore::new();
        let mut out = Vec::new();
        assert!(export(&store, TimeRange::ALL, 0, "a", &mut out)
            .await
            .is_err());
        let too_long = TimeRange {
            since_ms: 0,
            until_ms: (MAX_DAYS + 1) * DAY_MS,
        };
        assert!(export(&store, too_long, 0, "a", &mut out).await.is_err());
        let longest = TimeRange {
            since_ms: 0,
            until_ms: MAX_DAYS * DAY_MS,
        };
        assert!(export(&store, longest, 0, "a", &mut out).await.is_ok());
    }
}
