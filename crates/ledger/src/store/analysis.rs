//! The SQL behind the escape-hatch reports (concentration, what-if): grouped spend over
//! several dimensions at once, and repricing of the recorded token mix at other prices,
//! record by record, inside the database. The in-memory versions here are the reference the
//! SQL must agree with.

use super::{SpendBy, TimeRange, NONE_GROUP};
use crate::record::LedgerRecord;
use switchyard_types::{ErrorKind, Money, Prices, TokenUsage};

/// One group of records sharing a value in each of several dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedRow {
    /// The values, one per requested dimension and in that order ([`NONE_GROUP`] for none).
    pub keys: Vec<String>,
    /// Requests in the group.
    pub requests: u64,
    /// All input tokens (cache reads and writes included).
    pub input_tokens: u64,
    /// All output tokens (reasoning included).
    pub output_tokens: u64,
    /// Total cost of the priced requests.
    pub cost: Money,
    /// Requests whose deployment had no known price.
    pub unpriced_requests: u64,
}

/// Keeps only records whose `by` column equals `value` (never matches a missing value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The column.
    pub by: SpendBy,
    /// The value it must hold.
    pub value: String,
}

/// What the records matching a filter cost in the ledger and would cost at other prices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepriceTotals {
    /// Matching requests.
    pub requests: u64,
    /// Those whose recorded deployment had no known price (ledger cost unknown).
    pub unpriced_requests: u64,
    /// Their summed token counts.
    pub usage: TokenUsage,
    /// Their cost as recorded (priced requests only).
    pub ledger_cost: Money,
    /// The priced requests' cost at the new prices.
    pub repriced: Money,
    /// The unpriced requests' cost at the new prices.
    pub repriced_unpriced: Money,
}

/// How a backend writes bind parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placeholders {
    /// `?`, bound in textual order.
    Sqlite,
    /// `$1`, `$2`, ... in textual order.
    Postgres,
}

impl Placeholders {
    fn next(self, n: &mut usize) -> String {
        *n += 1;
        match self {
            Self::Sqlite => "?".to_owned(),
            Self::Postgres => format!("${n}"),
        }
    }
}

/// The SQL grouping by every column of `by`; binds: since, until. Group values come back as
/// `g0`, `g1`, ...
pub(crate) fn grouped_sql(by: &[SpendBy], p: Placeholders) -> String {
    let mut n = 0;
    let keys: Vec<String> = by
        .iter()
        .enumerate()
        .map(|(i, b)| format!("COALESCE({}, '{NONE_GROUP}') AS g{i}", b.column()))
        .collect();
    let group: Vec<String> = (0..by.len()).map(|i| format!("g{i}")).collect();
    let (p1, p2) = (p.next(&mut n), p.next(&mut n));
    let select = if keys.is_empty() {
        String::new()
    } else {
        format!("{}, ", keys.join(", "))
    };
    let group_by = if group.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", group.join(", "))
    };
    format!(
        "SELECT {select}COUNT(*) AS requests, \
         CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
         CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
         CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos, \
         CAST(COALESCE(SUM(CASE WHEN price_known THEN 0 ELSE 1 END), 0) AS BIGINT) AS unpriced \
         FROM ledger_records WHERE time_ms >= {p1} AND time_ms < {p2}{group_by}"
    )
}

/// The SQL repricing matching records; binds, in order: the four rates (input, cache read,
/// cache write, output, in nano-USD per million tokens), since, until, then each filter value.
///
/// Each part of each record rounds half up to the nano-dollar exactly as
/// [`Prices::cost`] does, so the sum is the one the ledger would have recorded. The products
/// are 64-bit: exact while rate × tokens of one record stays below 9.2e18 (e.g. $1,000 per
/// million tokens × 9 billion tokens).
pub(crate) fn reprice_sql(filters: &[Filter], p: Placeholders) -> String {
    let mut n = 0;
    let rate_in = p.next(&mut n);
    let rate_cached = p.next(&mut n);
    let rate_write = p.next(&mut n);
    let rate_out = p.next(&mut n);
    let since = p.next(&mut n);
    let until = p.next(&mut n);
    let mut wheres = vec![format!("time_ms >= {since}"), format!("time_ms < {until}")];
    for f in filters {
        wheres.push(format!("{} = {}", f.by.column(), p.next(&mut n)));
    }
    let part = |rate: &str, tokens: &str| format!("(({rate}) * ({tokens}) + 500000) / 1000000");
    // Cache reads and writes are taken out of the input count, capped like Prices::cost.
    let base = format!(
        "SELECT input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, \
         reasoning_tokens, cost_nanos, price_known, \
         CASE WHEN cached_input_tokens < input_tokens THEN cached_input_tokens ELSE input_tokens END AS c \
         FROM ledger_records WHERE {}",
        wheres.join(" AND ")
    );
    let split = format!(
        "SELECT a.*, CASE WHEN cache_write_tokens < input_tokens - c THEN cache_write_tokens \
         ELSE input_tokens - c END AS wr FROM ({base}) a"
    );
    let priced = format!(
        "SELECT b.*, {} + {} + {} + {} AS w FROM ({split}) b",
        part(&rate_in, "input_tokens - c - wr"),
        part(&rate_cached, "c"),
        part(&rate_write, "wr"),
        part(&rate_out, "output_tokens"),
    );
    // The rates sit in `priced`'s select list, before the inner WHERE: bound first.
    let sum = |e: &str, alias: &str| format!("CAST(COALESCE(SUM({e}), 0) AS BIGINT) AS {alias}");
    format!(
        "SELECT COUNT(*) AS requests, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM ({priced}) t",
        sum("CASE WHEN price_known THEN 0 ELSE 1 END", "unpriced"),
        sum("input_tokens", "input_tokens"),
        sum("output_tokens", "output_tokens"),
        sum("cached_input_tokens", "cached_input_tokens"),
        sum("cache_write_tokens", "cache_write_tokens"),
        sum("reasoning_tokens", "reasoning_tokens"),
        sum("cost_nanos", "ledger_nanos"),
        sum("CASE WHEN price_known THEN w ELSE 0 END", "repriced"),
        sum(
            "CASE WHEN price_known THEN 0 ELSE w END",
            "repriced_unpriced"
        ),
    )
}

/// Binds the reprice parameters in the order [`reprice_sql`] expects.
macro_rules! bind_reprice {
    ($query:expr, $prices:expr, $range:expr, $filters:expr) => {{
        let prices: &switchyard_types::Prices = $prices;
        let mut q = $query
            .bind(prices.input.0.nanos())
            .bind(prices.cached_input_rate().0.nanos())
            .bind(prices.cache_write_rate().0.nanos())
            .bind(prices.output.0.nanos())
            .bind($range.since_ms)
            .bind($range.until_ms);
        for f in $filters {
            q = q.bind(f.value.clone());
        }
        q
    }};
}
pub(crate) use bind_reprice;

/// Reads the grouped rows of [`grouped_sql`] from either backend.
macro_rules! read_grouped {
    ($rows:expr, $dims:expr) => {{
        use sqlx::Row as _;
        let n = |name: &str, v: i64| $crate::record::to_u64(0, name, v);
        let mut out = Vec::with_capacity($rows.len());
        for r in $rows {
            let mut keys = Vec::with_capacity($dims);
            for i in 0..$dims {
                keys.push(r.try_get::<String, _>(format!("g{i}").as_str())?);
            }
            out.push($crate::store::GroupedRow {
                keys,
                requests: n("requests", r.try_get("requests")?)?,
                input_tokens: n("input_tokens", r.try_get("input_tokens")?)?,
                output_tokens: n("output_tokens", r.try_get("output_tokens")?)?,
                cost: switchyard_types::Money(r.try_get("cost_nanos")?),
                unpriced_requests: n("unpriced", r.try_get("unpriced")?)?,
            });
        }
        $crate::store::analysis::sort_grouped(&mut out);
        out
    }};
}
pub(crate) use read_grouped;

/// Reads the one row of [`reprice_sql`] from either backend.
macro_rules! read_reprice {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = $row;
        let n = |name: &str, v: i64| $crate::record::to_u64(0, name, v);
        $crate::store::RepriceTotals {
            requests: n("requests", r.try_get("requests")?)?,
            unpriced_requests: n("unpriced", r.try_get("unpriced")?)?,
            usage: switchyard_types::TokenUsage {
                input: n("input_tokens", r.try_get("input_tokens")?)?,
                output: n("output_tokens", r.try_get("output_tokens")?)?,
                cached_input: n("cached_input_tokens", r.try_get("cached_input_tokens")?)?,
                cache_write: n("cache_write_tokens", r.try_get("cache_write_tokens")?)?,
                reasoning: n("reasoning_tokens", r.try_get("reasoning_tokens")?)?,
            },
            ledger_cost: switchyard_types::Money(r.try_get("ledger_nanos")?),
            repriced: switchyard_types::Money(r.try_get("repriced")?),
            repriced_unpriced: switchyard_types::Money(r.try_get("repriced_unpriced")?),
        }
    }};
}
pub(crate) use read_reprice;

/// Sorts grouped rows by their keys, the order every backend returns.
pub(crate) fn sort_grouped(rows: &mut [GroupedRow]) {
    rows.sort_by(|a, b| a.keys.cmp(&b.keys));
}

/// Grouped rows built up a page of records at a time.
#[derive(Debug, Default)]
pub(crate) struct GroupedAcc {
    groups: std::collections::BTreeMap<Vec<String>, GroupedRow>,
}

impl GroupedAcc {
    /// Adds the records of `range`.
    pub(crate) fn add<'a>(
        &mut self,
        records: impl Iterator<Item = &'a LedgerRecord>,
        by: &[SpendBy],
        range: TimeRange,
    ) {
        for r in records.filter(|r| range.contains(r.time_ms)) {
            let keys: Vec<String> = by.iter().map(|b| b.group_of(r)).collect();
            let row = self
                .groups
                .entry(keys.clone())
                .or_insert_with(|| GroupedRow {
                    keys,
                    requests: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost: Money::ZERO,
                    unpriced_requests: 0,
                });
            row.requests += 1;
            row.input_tokens += r.usage.input;
            row.output_tokens += r.usage.output;
            row.cost += r.cost;
            row.unpriced_requests += u64::from(!r.price_known);
        }
    }

    /// The rows, sorted by keys.
    pub(crate) fn rows(self) -> Vec<GroupedRow> {
        let mut rows: Vec<GroupedRow> = self.groups.into_values().collect();
        sort_grouped(&mut rows);
        rows
    }
}

/// [`grouped_sql`] over records in memory.
pub(crate) fn grouped_in_memory<'a>(
    records: impl Iterator<Item = &'a LedgerRecord>,
    by: &[SpendBy],
    range: TimeRange,
) -> Vec<GroupedRow> {
    let mut acc = GroupedAcc::default();
    acc.add(records, by, range);
    acc.rows()
}

/// [`reprice_sql`] over records in memory, with the gateway's own pricing rule.
pub(crate) fn reprice_in_memory<'a>(
    records: impl Iterator<Item = &'a LedgerRecord>,
    range: TimeRange,
    filters: &[Filter],
    prices: &Prices,
) -> RepriceTotals {
    let mut t = RepriceTotals::default();
    reprice_into(&mut t, records, range, filters, prices);
    t
}

/// Adds the matching records of `range`, repriced at `prices`, to `t`.
pub(crate) fn reprice_into<'a>(
    t: &mut RepriceTotals,
    records: impl Iterator<Item = &'a LedgerRecord>,
    range: TimeRange,
    filters: &[Filter],
    prices: &Prices,
) {
    let matches = |r: &LedgerRecord| {
        filters.iter().all(|f| {
            // group_of turns a missing value into NONE_GROUP; SQL equality never matches NULL.
            !is_missing(f.by, r) && f.by.group_of(r) == f.value
        })
    };
    for r in records.filter(|r| range.contains(r.time_ms) && matches(r)) {
        t.requests += 1;
        t.usage.add(&r.usage);
        t.ledger_cost += r.cost;
        let at_new = prices.cost(&r.usage);
        if r.price_known {
            t.repriced += at_new;
        } else {
            t.unpriced_requests += 1;
            t.repriced_unpriced += at_new;
        }
    }
}

fn is_missing(by: SpendBy, r: &LedgerRecord) -> bool {
    match by {
        SpendBy::Cloud => r.cloud.is_none(),
        SpendBy::Provider => r.provider.is_none(),
        SpendBy::Region => r.region.is_none(),
        SpendBy::Model => false,
        SpendBy::Team => r.team.is_none(),
        SpendBy::Key => r.key_id.is_none(),
        SpendBy::Deployment => r.deployment.is_none(),
        SpendBy::Jurisdiction => r.jurisdiction.is_none(),
    }
}

/// Upper bounds (inclusive, in milliseconds) of the latency histogram buckets the SLO queries
/// count in; one more bucket holds everything slower. Percentiles are reported as the bound of
/// the bucket they fall in, so this list is their resolution.
pub const LATENCY_BOUNDS_MS: [u64; 29] = [
    1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000,
    4_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000,
];

/// The error kinds that count against a deployment's availability: the upstream's failures
/// (the retryable kinds), not the client's.
pub const PROVIDER_FAULTS: [ErrorKind; 7] = [
    ErrorKind::RateLimited,
    ErrorKind::Overloaded,
    ErrorKind::UpstreamServer,
    ErrorKind::UpstreamRejected,
    ErrorKind::UpstreamProtocol,
    ErrorKind::UpstreamConnect,
    ErrorKind::UpstreamTimeout,
];

/// Counts of one deployment's attempts and streams in a window, with latency histograms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentCounts {
    /// The deployment.
    pub deployment: String,
    /// Upstream attempts on it.
    pub attempts: u64,
    /// Those that failed by the upstream's fault ([`PROVIDER_FAULTS`]).
    pub failures: u64,
    /// Latencies of the attempts that did not fail, per bucket of [`LATENCY_BOUNDS_MS`]
    /// (one longer: the last bucket is everything slower).
    pub latency: Vec<u64>,
    /// Times to first token of the streams it served in full, per bucket.
    pub ttft: Vec<u64>,
}

impl DeploymentCounts {
    pub(crate) fn new(deployment: String) -> Self {
        Self {
            deployment,
            attempts: 0,
            failures: 0,
            latency: vec![0; LATENCY_BOUNDS_MS.len() + 1],
            ttft: vec![0; LATENCY_BOUNDS_MS.len() + 1],
        }
    }
}

/// The histogram bucket of `ms`.
pub(crate) fn bucket_of(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

fn bucket_sql(value: &str) -> String {
    let arms: Vec<String> = LATENCY_BOUNDS_MS
        .iter()
        .enumerate()
        .map(|(i, b)| format!("WHEN {value} <= {b} THEN {i}"))
        .collect();
    format!(
        "CAST(CASE {} ELSE {} END AS BIGINT)",
        arms.join(" "),
        LATENCY_BOUNDS_MS.len()
    )
}

fn faults_sql() -> String {
    let names: Vec<String> = PROVIDER_FAULTS
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    names.join(", ")
}

/// The attempts query: rows (dep, failed, b, n); binds since, until. Attempts live as a JSON
/// array per record, unnested by each database's own JSON functions.
pub(crate) fn slo_attempts_sql(p: Placeholders) -> String {
    let mut n = 0;
    let (p1, p2) = (p.next(&mut n), p.next(&mut n));
    let (from, dep, kind, latency) = match p {
        Placeholders::Sqlite => (
            "ledger_records r, json_each(r.attempts) a",
            "json_extract(a.value, '$.deployment')",
            "json_extract(a.value, '$.error_kind')",
            "CAST(json_extract(a.value, '$.latency_ms') AS INTEGER)",
        ),
        Placeholders::Postgres => (
            "ledger_records r CROSS JOIN LATERAL jsonb_array_elements(r.attempts::jsonb) AS a(value)",
            "(a.value->>'deployment')",
            "(a.value->>'error_kind')",
            "CAST(a.value->>'latency_ms' AS BIGINT)",
        ),
    };
    format!(
        "SELECT COALESCE({dep}, '{NONE_GROUP}') AS dep, \
         CAST(CASE WHEN {kind} IN ({faults}) THEN 1 ELSE 0 END AS BIGINT) AS failed, \
         {bucket} AS b, COUNT(*) AS n FROM {from} \
         WHERE r.time_ms >= {p1} AND r.time_ms < {p2} GROUP BY dep, failed, b",
        faults = faults_sql(),
        bucket = bucket_sql(latency),
    )
}

/// The TTFT query: rows (dep, b, n) of streams answered in full; binds since, until.
pub(crate) fn slo_ttft_sql(p: Placeholders) -> String {
    let mut n = 0;
    let (p1, p2) = (p.next(&mut n), p.next(&mut n));
    format!(
        "SELECT COALESCE(deployment, '{NONE_GROUP}') AS dep, {} AS b, COUNT(*) AS n \
         FROM ledger_records WHERE time_ms >= {p1} AND time_ms < {p2} \
         AND ttft_ms IS NOT NULL AND outcome = 'ok' GROUP BY dep, b",
        bucket_sql("ttft_ms")
    )
}

/// Adds one record's attempts and stream to `counts` (the reference the SQL agrees with).
pub(crate) fn slo_add(
    counts: &mut std::collections::BTreeMap<String, DeploymentCounts>,
    r: &LedgerRecord,
) {
    for a in &r.attempts {
        let c = counts
            .entry(a.deployment.to_string())
            .or_insert_with(|| DeploymentCounts::new(a.deployment.to_string()));
        c.attempts += 1;
        if a.error_kind.is_some_and(|k| PROVIDER_FAULTS.contains(&k)) {
            c.failures += 1;
        } else {
            c.latency[bucket_of(a.latency_ms)] += 1;
        }
    }
    if let (Some(ttft), crate::Outcome::Ok) = (r.ttft_ms, r.outcome) {
        let d = r.deployment.as_deref().unwrap_or(NONE_GROUP).to_owned();
        counts
            .entry(d.clone())
            .or_insert_with(|| DeploymentCounts::new(d))
            .ttft[bucket_of(ttft)] += 1;
    }
}

/// Folds the two SLO queries' rows into counts per deployment.
pub(crate) fn slo_fold(
    attempts: Vec<(String, i64, i64, i64)>,
    ttft: Vec<(String, i64, i64)>,
) -> Result<Vec<DeploymentCounts>, crate::LedgerError> {
    let mut counts: std::collections::BTreeMap<String, DeploymentCounts> = Default::default();
    let idx = |b: i64| usize::try_from(b).unwrap_or(0).min(LATENCY_BOUNDS_MS.len());
    for (dep, failed, b, n) in attempts {
        let n = crate::record::to_u64(0, "n", n)?;
        let c = counts
            .entry(dep.clone())
            .or_insert_with(|| DeploymentCounts::new(dep));
        c.attempts += n;
        if failed == 1 {
            c.failures += n;
        } else {
            c.latency[idx(b)] += n;
        }
    }
    for (dep, b, n) in ttft {
        let n = crate::record::to_u64(0, "n", n)?;
        counts
            .entry(dep.clone())
            .or_insert_with(|| DeploymentCounts::new(dep))
            .ttft[idx(b)] += n;
    }
    Ok(counts.into_values().collect())
}
