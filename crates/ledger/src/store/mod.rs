//! Where records live: the [`LedgerStore`] trait and its SQLite, PostgreSQL and in-memory
//! implementations.
//!
//! Every store appends through the same rule: inside one transaction, lock the chain head
//! (one row in `ledger_head`), link the batch after it ([`crate::chain::link`]), insert the
//! rows and move the head. Several gateway processes can therefore append to one PostgreSQL
//! database and the chain stays a single line.

use crate::chain::ChainHead;
use crate::record::{
    parse_name, to_i64, to_u64, AttemptRecord, LedgerRecord, Outcome, StoredRecord,
};
use crate::LedgerError;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use switchyard_types::{Money, Prices, TokenUsage};

mod analysis;
mod memory;
mod postgres;
mod sqlite;

pub use analysis::{
    DeploymentCounts, Filter, GroupedRow, RepriceTotals, LATENCY_BOUNDS_MS, PROVIDER_FAULTS,
};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A boxed, sendable future: keeps [`LedgerStore`] usable as `Arc<dyn LedgerStore>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Storage for ledger records. Implementations must make `append_batch` atomic and serialise
/// appends on the chain head.
pub trait LedgerStore: Send + Sync + 'static {
    /// A short name for logs and metrics: `sqlite`, `postgres`, `memory`.
    fn backend(&self) -> &'static str;

    /// Appends `records` in order as one transaction, assigning sequence numbers and hashes.
    fn append_batch<'a>(
        &'a self,
        records: &'a [LedgerRecord],
    ) -> BoxFuture<'a, Result<AppendReceipt, LedgerError>>;

    /// The chain head and the highest stored sequence number, read in one snapshot.
    fn head(&self) -> BoxFuture<'_, Result<ChainHead, LedgerError>>;

    /// Up to `limit` records with `after_seq < seq <= through_seq`, by sequence.
    fn records(
        &self,
        after_seq: i64,
        through_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>>;

    /// Up to `limit` records with `since_ms <= time_ms < until_ms` and `seq > after_seq`, by
    /// sequence (for paging through a time range).
    fn records_in_time(
        &self,
        range: TimeRange,
        after_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>>;

    /// Spend grouped by `by` over `range`, computed by the database. Rows come sorted by
    /// cost (highest first), then group name (byte order), so every backend agrees.
    fn spend(
        &self,
        by: SpendBy,
        range: TimeRange,
    ) -> BoxFuture<'_, Result<Vec<SpendRow>, LedgerError>>;

    /// Requests, spend and unpriced requests grouped by every column of `by` at once, computed
    /// by the database; rows sorted by their keys.
    ///
    /// The default pages through [`LedgerStore::records_in_time`] (never holding more than one
    /// page); the SQL stores aggregate in the database instead.
    fn spend_grouped<'a>(
        &'a self,
        by: &'a [SpendBy],
        range: TimeRange,
    ) -> BoxFuture<'a, Result<Vec<GroupedRow>, LedgerError>> {
        Box::pin(async move {
            let mut acc = analysis::GroupedAcc::default();
            let mut after = 0;
            loop {
                let page = self.records_in_time(range, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                acc.add(page.iter().map(|r| &r.record), by, range);
            }
            Ok(acc.rows())
        })
    }

    /// The records in `range` matching every filter, repriced at `prices` record by record with
    /// the ledger's own rounding, computed by the database.
    ///
    /// The default pages through [`LedgerStore::records_in_time`]; the SQL stores compute it
    /// in the database.
    fn reprice<'a>(
        &'a self,
        range: TimeRange,
        filters: &'a [Filter],
        prices: &'a Prices,
    ) -> BoxFuture<'a, Result<RepriceTotals, LedgerError>> {
        Box::pin(async move {
            let mut totals = RepriceTotals::default();
            let mut after = 0;
            loop {
                let page = self.records_in_time(range, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                analysis::reprice_into(
                    &mut totals,
                    page.iter().map(|r| &r.record),
                    range,
                    filters,
                    prices,
                );
            }
            Ok(totals)
        })
    }

    /// Per deployment over `range`: upstream attempts, those failed by the upstream's fault,
    /// and latency and TTFT histograms (see [`DeploymentCounts`]), sorted by deployment.
    ///
    /// The default pages through [`LedgerStore::records_in_time`]; the SQL stores unnest the
    /// attempts and count in the database.
    fn slo_counts(
        &self,
        range: TimeRange,
    ) -> BoxFuture<'_, Result<Vec<DeploymentCounts>, LedgerError>> {
        Box::pin(async move {
            let mut counts = std::collections::BTreeMap::new();
            let mut after = 0;
            loop {
                let page = self.records_in_time(range, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in page.iter().filter(|r| range.contains(r.record.time_ms)) {
                    analysis::slo_add(&mut counts, &r.record);
                }
            }
            Ok(counts.into_values().collect())
        })
    }
}

/// Records per page when a default report method streams through a store.
const PAGE: u32 = 1_000;

/// What one append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The first sequence number assigned (0 when the batch was empty).
    pub first_seq: i64,
    /// The last sequence number assigned (the new head).
    pub last_seq: i64,
    /// The new head hash.
    pub head_hash: String,
}

/// A half-open time window `[since_ms, until_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub since_ms: i64,
    /// Exclusive end.
    pub until_ms: i64,
}

impl TimeRange {
    /// All of time.
    pub const ALL: TimeRange = TimeRange {
        since_ms: i64::MIN,
        until_ms: i64::MAX,
    };

    /// Whether `t` falls inside.
    pub fn contains(&self, t: i64) -> bool {
        self.since_ms <= t && t < self.until_ms
    }
}

/// The dimension a spend report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SpendBy {
    /// The provider's cloud.
    Cloud,
    /// The provider.
    Provider,
    /// The provider's region.
    Region,
    /// The logical model asked for.
    Model,
    /// The key's team.
    Team,
    /// The virtual key's id.
    Key,
    /// The serving deployment.
    Deployment,
    /// The provider's jurisdiction.
    Jurisdiction,
}

impl SpendBy {
    /// Every grouping.
    pub const ALL: [SpendBy; 8] = [
        Self::Cloud,
        Self::Provider,
        Self::Region,
        Self::Model,
        Self::Team,
        Self::Key,
        Self::Deployment,
        Self::Jurisdiction,
    ];

    /// The column grouped on. A fixed name from this enum, never user text, so it is safe to
    /// place into SQL.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::Cloud => "cloud",
            Self::Provider => "provider",
            Self::Region => "region",
            Self::Model => "model",
            Self::Team => "team",
            Self::Key => "key_id",
            Self::Deployment => "deployment",
            Self::Jurisdiction => "jurisdiction",
        }
    }

    /// The name shown in report headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            other => other.column(),
        }
    }

    /// The group a record falls in (the in-memory store's equivalent of the SQL column).
    pub(crate) fn group_of(self, r: &LedgerRecord) -> String {
        let v = match self {
            Self::Cloud => r.cloud.map(|c| c.as_str().to_owned()),
            Self::Provider => r.provider.as_deref().map(str::to_owned),
            Self::Region => r.region.as_deref().map(str::to_owned),
            Self::Model => Some(r.model.to_string()),
            Self::Team => r.team.as_deref().map(str::to_owned),
            Self::Key => r.key_id.as_deref().map(str::to_owned),
            Self::Deployment => r.deployment.as_deref().map(str::to_owned),
            Self::Jurisdiction => r.jurisdiction.map(|j| j.as_str().to_owned()),
        };
        v.unwrap_or_else(|| NONE_GROUP.to_owned())
    }
}

/// The group name for records without a value in the grouped column.
pub const NONE_GROUP: &str = "(none)";

/// One line of a spend report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRow {
    /// The group's value (`aws`, `team-a`, ...) or [`NONE_GROUP`].
    pub group: String,
    /// Requests in the group.
    pub requests: u64,
    /// All input tokens (cached included).
    pub input_tokens: u64,
    /// All output tokens (reasoning included).
    pub output_tokens: u64,
    /// Input tokens read from a prompt cache.
    pub cached_tokens: u64,
    /// Total cost of the priced requests.
    pub cost: Money,
    /// Requests whose deployment had no known price (their cost is missing from `cost`).
    pub unpriced_requests: u64,
}

/// Sorts report rows the one way every backend must agree on (costliest first, then name).
pub(crate) fn sort_rows(rows: &mut [SpendRow]) {
    rows.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.group.cmp(&b.group)));
}

/// The SQL for a spend report over `ledger_records`, with the two time bounds as parameters
/// `p1` and `p2` (`?` for SQLite, `$1`/`$2` for PostgreSQL).
pub(crate) fn spend_sql(by: SpendBy, p1: &str, p2: &str) -> String {
    let col = by.column();
    // CAST keeps PostgreSQL's SUM(bigint) (a numeric) decodable as i64, like SQLite's.
    format!(
        "SELECT COALESCE({col}, '{NONE_GROUP}') AS grp, COUNT(*) AS requests, \
         CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
         CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
         CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT) AS cached_tokens, \
         CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos, \
         CAST(COALESCE(SUM(CASE WHEN price_known THEN 0 ELSE 1 END), 0) AS BIGINT) AS unpriced \
         FROM ledger_records WHERE time_ms >= {p1} AND time_ms < {p2} GROUP BY grp"
    )
}

/// The columns of `ledger_records` in the order [`Row`] binds and reads them.
pub(crate) const COLUMNS: &str = "seq, prev_hash, hash, request_id, time_ms, key_id, team, model, \
     deployment, provider, cloud, region, jurisdiction, data_class, attempts, input_tokens, \
     output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, \
     price_known, latency_ms, ttft_ms, outcome, stream, prompt_body, response_body";

/// A stored record as database-native values (what both SQL backends bind and read).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub request_id: String,
    pub time_ms: i64,
    pub key_id: Option<String>,
    pub team: Option<String>,
    pub model: String,
    pub deployment: Option<String>,
    pub provider: Option<String>,
    pub cloud: Option<String>,
    pub region: Option<String>,
    pub jurisdiction: Option<String>,
    pub data_class: Option<String>,
    pub attempts: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_nanos: i64,
    pub price_known: bool,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub outcome: String,
    pub stream: bool,
    pub prompt_body: Option<String>,
    pub response_body: Option<String>,
}

impl Row {
    /// The values to insert for `s`.
    pub fn from_stored(s: &StoredRecord) -> Result<Row, LedgerError> {
        let r = &s.record;
        Ok(Row {
            seq: s.seq,
            prev_hash: s.prev_hash.clone(),
            hash: s.hash.clone(),
            request_id: r.request_id.clone(),
            time_ms: r.time_ms,
            key_id: r.key_id.as_deref().map(str::to_owned),
            team: r.team.as_deref().map(str::to_owned),
            model: r.model.to_string(),
            deployment: r.deployment.as_deref().map(str::to_owned),
            provider: r.provider.as_deref().map(str::to_owned),
            cloud: r.cloud.map(|c| c.as_str().to_owned()),
            region: r.region.as_deref().map(str::to_owned),
            jurisdiction: r.jurisdiction.map(|j| j.as_str().to_owned()),
            data_class: r.data_class.as_deref().map(str::to_owned),
            attempts: serde_json::to_string(&r.attempts)?,
            input_tokens: to_i64(r.usage.input),
            output_tokens: to_i64(r.usage.output),
            cached_input_tokens: to_i64(r.usage.cached_input),
            cache_write_tokens: to_i64(r.usage.cache_write),
            reasoning_tokens: to_i64(r.usage.reasoning),
            cost_nanos: r.cost.nanos(),
            price_known: r.price_known,
            latency_ms: to_i64(r.latency_ms),
            ttft_ms: r.ttft_ms.map(to_i64),
            outcome: r.outcome.as_str().to_owned(),
            stream: r.stream,
            prompt_body: r.prompt_body.clone(),
            response_body: r.response_body.clone(),
        })
    }

    /// The record these values describe; fails on values the ledger never writes.
    pub fn into_stored(self) -> Result<StoredRecord, LedgerError> {
        let seq = self.seq;
        let bad = |what: &str, v: &str| LedgerError::decode(seq, format!("unknown {what} {v:?}"));
        let cloud = match &self.cloud {
            Some(c) => Some(parse_name(c).ok_or_else(|| bad("cloud", c))?),
            None => None,
        };
        let jurisdiction = match &self.jurisdiction {
            Some(j) => Some(parse_name(j).ok_or_else(|| bad("jurisdiction", j))?),
            None => None,
        };
        let outcome = Outcome::parse(&self.outcome).ok_or_else(|| bad("outcome", &self.outcome))?;
        let attempts: Vec<AttemptRecord> = serde_json::from_str(&self.attempts)
            .map_err(|e| LedgerError::decode(seq, format!("attempts: {e}")))?;
        let ttft_ms = match self.ttft_ms {
            Some(v) => Some(to_u64(seq, "ttft_ms", v)?),
            None => None,
        };
        Ok(StoredRecord {
            seq,
            prev_hash: self.prev_hash,
            hash: self.hash,
            record: LedgerRecord {
                request_id: self.request_id,
                time_ms: self.time_ms,
                key_id: self.key_id.map(Arc::from),
                team: self.team.map(Arc::from),
                model: self.model.into(),
                deployment: self.deployment.map(Arc::from),
                provider: self.provider.map(Arc::from),
                cloud,
                region: self.region.map(Arc::from),
                jurisdiction,
                data_class: self.data_class.map(Arc::from),
                attempts,
                usage: TokenUsage {
                    input: to_u64(seq, "input_tokens", self.input_tokens)?,
                    output: to_u64(seq, "output_tokens", self.output_tokens)?,
                    cached_input: to_u64(seq, "cached_input_tokens", self.cached_input_tokens)?,
                    cache_write: to_u64(seq, "cache_write_tokens", self.cache_write_tokens)?,
                    reasoning: to_u64(seq, "reasoning_tokens", self.reasoning_tokens)?,
                },
                cost: Money(self.cost_nanos),
                price_known: self.price_known,
                latency_ms: to_u64(seq, "latency_ms", self.latency_ms)?,
                ttft_ms,
                outcome,
                stream: self.stream,
                prompt_body: self.prompt_body,
                response_body: self.response_body,
            },
        })
    }
}

/// Reads a [`Row`] from a sqlx row of either backend (same column names).
macro_rules! read_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = $row;
        $crate::store::Row {
            seq: r.try_get("seq")?,
            prev_hash: r.try_get("prev_hash")?,
            hash: r.try_get("hash")?,
            request_id: r.try_get("request_id")?,
            time_ms: r.try_get("time_ms")?,
            key_id: r.try_get("key_id")?,
            team: r.try_get("team")?,
            model: r.try_get("model")?,
            deployment: r.try_get("deployment")?,
            provider: r.try_get("provider")?,
            cloud: r.try_get("cloud")?,
            region: r.try_get("region")?,
            jurisdiction: r.try_get("jurisdiction")?,
            data_class: r.try_get("data_class")?,
            attempts: r.try_get("attempts")?,
            input_tokens: r.try_get("input_tokens")?,
            output_tokens: r.try_get("output_tokens")?,
            cached_input_tokens: r.try_get("cached_input_tokens")?,
            cache_write_tokens: r.try_get("cache_write_tokens")?,
            reasoning_tokens: r.try_get("reasoning_tokens")?,
            cost_nanos: r.try_get("cost_nanos")?,
            price_known: r.try_get("price_known")?,
            latency_ms: r.try_get("latency_ms")?,
            ttft_ms: r.try_get("ttft_ms")?,
            outcome: r.try_get("outcome")?,
            stream: r.try_get("stream")?,
            prompt_body: r.try_get("prompt_body")?,
            response_body: r.try_get("response_body")?,
        }
    }};
}
pub(crate) use read_row;

/// Binds a [`Row`]'s values to an insert of [`COLUMNS`], in that order.
macro_rules! bind_row {
    ($query:expr, $v:expr) => {{
        let v = $v;
        $query
            .bind(v.seq)
            .bind(v.prev_hash)
            .bind(v.hash)
            .bind(v.request_id)
            .bind(v.time_ms)
            .bind(v.key_id)
            .bind(v.team)
            .bind(v.model)
            .bind(v.deployment)
            .bind(v.provider)
            .bind(v.cloud)
            .bind(v.region)
            .bind(v.jurisdiction)
            .bind(v.data_class)
            .bind(v.attempts)
            .bind(v.input_tokens)
            .bind(v.output_tokens)
            .bind(v.cached_input_tokens)
            .bind(v.cache_write_tokens)
            .bind(v.reasoning_tokens)
            .bind(v.cost_nanos)
            .bind(v.price_known)
            .bind(v.latency_ms)
            .bind(v.ttft_ms)
            .bind(v.outcome)
            .bind(v.stream)
            .bind(v.prompt_body)
            .bind(v.response_body)
    }};
}
pub(crate) use bind_row;

/// Reads a spend row from a sqlx row of either backend.
macro_rules! read_spend_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = $row;
        let n = |name: &str, v: i64| $crate::record::to_u64(0, name, v);
        $crate::store::SpendRow {
            group: r.try_get("grp")?,
            requests: n("requests", r.try_get("requests")?)?,
            input_tokens: n("input_tokens", r.try_get("input_tokens")?)?,
            output_tokens: n("output_tokens", r.try_get("output_tokens")?)?,
            cached_tokens: n("cached_tokens", r.try_get("cached_tokens")?)?,
            cost: switchyard_types::Money(r.try_get("cost_nanos")?),
            unpriced_requests: n("unpriced", r.try_get("unpriced")?)?,
        }
    }};
}
pub(crate) use read_spend_row;

/// Opens the store a URL names: `sqlite://PATH` (created if missing when `create` is set),
/// `sqlite::memory:`, or `postgres://...` / `postgresql://...`. Runs migrations.
pub async fn open(url: &str, create: bool) -> Result<Arc<dyn LedgerStore>, LedgerError> {
    open_with(url, create, switchyard_types::DbTimeouts::default()).await
}

/// [`open`] with explicit pool time limits.
pub async fn open_with(
    url: &str,
    create: bool,
    timeouts: switchyard_types::DbTimeouts,
) -> Result<Arc<dyn LedgerStore>, LedgerError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect_with(url, create, timeouts).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect_with(url, timeouts).await?))
    } else if url == "memory" {
        Ok(Arc::new(MemoryStore::new()))
    } else {
        Err(LedgerError::UnsupportedUrl(url.to_owned()))
    }
}

/// The spend rows of `records`, aggregated in Rust exactly as the SQL backends do.
pub(crate) fn spend_in_memory<'a>(
    records: impl Iterator<Item = &'a LedgerRecord>,
    by: SpendBy,
    range: TimeRange,
) -> Vec<SpendRow> {
    let mut groups: std::collections::BTreeMap<String, SpendRow> = Default::default();
    for r in records.filter(|r| range.contains(r.time_ms)) {
        let g = by.group_of(r);
        let row = groups.entry(g.clone()).or_insert_with(|| SpendRow {
            group: g,
            requests: 0,
            input_tokens: 0,
            output_tokens: 0,
            cached_tokens: 0,
            cost: Money::ZERO,
            unpriced_requests: 0,
        });
        row.requests += 1;
        row.input_tokens += r.usage.input;
        row.output_tokens += r.usage.output;
        row.cached_tokens += r.usage.cached_input;
        row.cost += r.cost;
        row.unpriced_requests += u64::from(!r.price_known);
    }
    let mut rows: Vec<SpendRow> = groups.into_values().collect();
    sort_rows(&mut rows);
    rows
}
