//! Provider SLOs from the ledger: per deployment and window (the last hour, day and 30 days),
//! availability of its upstream attempts, latency and time-to-first-token percentiles, and
//! how fast the error budget burns.
//!
//! - availability = 1 − failures / attempts, where a failure is an attempt that failed by the
//!   upstream's fault (429, overload, 5xx, connect, timeout, protocol; not the client's errors);
//! - latency percentiles are over the attempts that did not fail, TTFT percentiles over the
//!   streams the deployment served in full; both are histogram buckets counted by the
//!   database, reported as the bucket's upper bound ([`LATENCY_BOUNDS_MS`] is the resolution);
//! - error-budget burn = (failures / attempts) / (1 − objective): 1 spends the budget exactly
//!   over the window, above 1 spends it faster.

use super::{json, percent, table, ViewFormat};
use crate::store::{DeploymentCounts, LedgerStore, TimeRange, LATENCY_BOUNDS_MS};
use crate::time::format_ms;
use crate::LedgerError;
use serde::Serialize;

/// A window ending at the report's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SloWindow {
    /// The last hour.
    #[serde(rename = "1h")]
    Hour,
    /// The last day.
    #[serde(rename = "1d")]
    Day,
    /// The last 30 days.
    #[serde(rename = "30d")]
    Days30,
}

impl SloWindow {
    /// Every window, shortest first.
    pub const ALL: [SloWindow; 3] = [Self::Hour, Self::Day, Self::Days30];

    /// Its length in milliseconds.
    pub fn ms(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
            Self::Days30 => 30 * 86_400_000,
        }
    }

    /// Its name (`1h`, `1d`, `30d`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "1d",
            Self::Days30 => "30d",
        }
    }
}

/// Where a percentile falls: within a bucket bound, or past the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// At most this many milliseconds.
    AtMost(u64),
    /// Slower than this many milliseconds (the last bound).
    Above(u64),
}

/// p50, p95 and p99 of a histogram; `None` without data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Bound,
    /// 95th percentile.
    pub p95: Bound,
    /// 99th percentile.
    pub p99: Bound,
}

/// The bucket holding the `q`-quantile (nearest rank) of `hist`.
fn quantile(hist: &[u64], total: u64, q_per_mille: u64) -> Bound {
    // Nearest rank: the smallest value with at least ceil(q × n) values at or below it.
    let rank = (total * q_per_mille).div_ceil(1_000).max(1);
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return match LATENCY_BOUNDS_MS.get(i) {
                Some(b) => Bound::AtMost(*b),
                None => Bound::Above(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]),
            };
        }
    }
    Bound::Above(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1])
}

/// The percentiles of a histogram, `None` when it is empty.
pub fn percentiles(hist: &[u64]) -> Option<Percentiles> {
    let total: u64 = hist.iter().sum();
    (total > 0).then(|| Percentiles {
        p50: quantile(hist, total, 500),
        p95: quantile(hist, total, 950),
        p99: quantile(hist, total, 990),
    })
}

/// One deployment in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloRow {
    /// The deployment.
    pub deployment: String,
    /// The window.
    pub window: SloWindow,
    /// Upstream attempts.
    pub attempts: u64,
    /// Attempts failed by the upstream's fault.
    pub failures: u64,
    /// 1 − failures / attempts; `None` without attempts.
    pub availability: Option<f64>,
    /// Latency of the attempts that did not fail.
    pub latency_ms: Option<Percentiles>,
    /// Streams served in full.
    pub streams: u64,
    /// Their time to first token.
    pub ttft_ms: Option<Percentiles>,
    /// (failures / attempts) / (1 − objective); `None` without attempts.
    pub error_budget_burn: Option<f64>,
}

/// The SLO report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloReport {
    /// The windows' common end (RFC 3339, exclusive).
    pub until: String,
    /// The availability objective the burn is measured against (e.g. 0.999).
    pub objective: f64,
    /// Per deployment, then window.
    pub rows: Vec<SloRow>,
}

/// Builds the report for windows ending at `until_ms` (two database queries per window).
pub async fn slo(
    store: &dyn LedgerStore,
    until_ms: i64,
    objective: f64,
) -> Result<SloReport, LedgerError> {
    if !(objective > 0.0 && objective < 1.0) {
        return Err(LedgerError::BadArgument(format!(
            "objective {objective}: use a fraction between 0 and 1, like 0.999"
        )));
    }
    let mut rows = Vec::new();
    for window in SloWindow::ALL {
        let range = TimeRange {
            since_ms: until_ms.saturating_sub(window.ms()),
            until_ms,
        };
        for c in store.slo_counts(range).await? {
            rows.push(row(c, window, objective));
        }
    }
    rows.sort_by(|a, b| {
        a.deployment
            .cmp(&b.deployment)
            .then(a.window.ms().cmp(&b.window.ms()))
    });
    Ok(SloReport {
        until: format_ms(until_ms),
        objective,
        rows,
    })
}

fn row(c: DeploymentCounts, window: SloWindow, objective: f64) -> SloRow {
    let error_rate = (c.attempts > 0).then(|| c.failures as f64 / c.attempts as f64);
    SloRow {
        window,
        attempts: c.attempts,
        failures: c.failures,
        availability: error_rate.map(|e| 1.0 - e),
        latency_ms: percentiles(&c.latency),
        streams: c.ttft.iter().sum(),
        ttft_ms: percentiles(&c.ttft),
        error_budget_burn: error_rate.map(|e| e / (1.0 - objective)),
        deployment: c.deployment,
    }
}

impl SloReport {
    /// Renders in `format`; the text ends with a newline.
    pub fn render(&self, format: ViewFormat) -> Result<String, LedgerError> {
        match format {
            ViewFormat::Json => json(self),
            ViewFormat::Table => Ok(self.table()),
        }
    }

    fn table(&self) -> String {
        let b = |b: Bound| match b {
            Bound::AtMost(ms) => format!("≤{ms}"),
            Bound::Above(ms) => format!(">{ms}"),
        };
        let pcts = |p: Option<Percentiles>| {
            p.map_or(["-".to_owned(), "-".to_owned(), "-".to_owned()], |p| {
                [b(p.p50), b(p.p95), b(p.p99)]
            })
        };
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let [l50, l95, l99] = pcts(r.latency_ms);
                let [t50, t95, t99] = pcts(r.ttft_ms);
                vec![
                    r.deployment.clone(),
                    r.window.as_str().to_owned(),
                    r.attempts.to_string(),
                    r.failures.to_string(),
                    r.availability
                        .map_or("-".to_owned(), |a| format!("{:.3}%", a * 100.0)),
                    l50,
                    l95,
                    l99,
                    r.streams.to_string(),
                    t50,
                    t95,
                    t99,
                    r.error_budget_burn
                        .map_or("-".to_owned(), |x| format!("{x:.2}")),
                ]
            })
            .collect();
        let mut out = format!(
            "windows ending {}; objective {} availability\n",
            self.until,
            percent(self.objective)
        );
        out.push_str(&table(
            &[
                "deployment",
                "window",
                "attempts",
                "failures",
                "availability",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "streams",
                "ttft_p50",
                "ttft_p95",
                "ttft_p99",
                "burn",
            ],
            &rows,
        ));
        out.push_str("burn = error rate / (1 - objective): 1 spends the error budget exactly over the window; percentiles are histogram bucket bounds\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::AttemptRecord;
    use crate::store::MemoryStore;
    use crate::{LedgerRecord, Outcome};
    use switchyard_types::ErrorKind;

    const NOW: i64 = 1_800_000_000_000;

    fn attempt(d: &str, latency_ms: u64, error: Option<ErrorKind>) -> AttemptRecord {
        AttemptRecord {
            deployment: d.into(),
            provider: "p".into(),
            error_kind: error,
            latency_ms,
            ..Default::default()
        }
    }

    fn rec(i: usize, age_ms: i64, attempts: Vec<AttemptRecord>, ttft: Option<u64>) -> LedgerRecord {
        let mut r = LedgerRecord::new(format!("r{i}"), NOW - age_ms, "m");
        r.deployment = attempts.last().map(|a| a.deployment.clone());
        r.attempts = attempts;
        r.ttft_ms = ttft;
        r.stream = ttft.is_some();
        r.outcome = Outcome::Ok;
        r
    }

    #[tokio::test]
    async fn availability_percentiles_and_burn_match_the_hand_computed_values() {
        let store = MemoryStore::new();
        let mut records = Vec::new();
        // Within the hour on "a": 8 fast successes, one slow, one timeout that failed over to
        // "b", one client error (not the upstream's fault).
        for i in 0..8 {
            records.push(rec(i, 60_000, vec![attempt("a", 100, None)], Some(40)));
        }
        records.push(rec(8, 60_000, vec![attempt("a", 2_000, None)], None));
        records.push(rec(
            9,
            60_000,
            vec![
                attempt("a", 30_000, Some(ErrorKind::UpstreamTimeout)),
                attempt("b", 90, None),
            ],
            None,
        ));
        records.push(rec(
            10,
            60_000,
            vec![attempt("a", 5, Some(ErrorKind::InvalidRequest))],
            None,
        ));
        // Two days ago: only in the 30-day window.
        records.push(rec(
            11,
            2 * 86_400_000,
            vec![attempt("a", 50, Some(ErrorKind::UpstreamServer))],
            None,
        ));
        store.append_batch(&records).await.unwrap();

        let r = slo(&store, NOW, 0.99).await.unwrap();
        let get = |d: &str, w: SloWindow| {
            r.rows
                .iter()
                .find(|x| x.deployment == d && x.window == w)
                .unwrap()
        };
        let hour = get("a", SloWindow::Hour);
        assert_eq!((hour.attempts, hour.failures), (11, 1));
        assert_eq!(hour.availability, Some(1.0 - 1.0 / 11.0));
        assert_eq!(hour.error_budget_burn, Some((1.0 / 11.0) / (1.0 - 0.99)));
        // Successes: 8 × 100 ms, 1 × 2,000 ms, 1 × 5 ms (the client error) = 10 values.
        // p50: rank 5 → ≤100; p95: rank 10 → ≤2,000; p99 the same.
        let l = hour.latency_ms.unwrap();
        assert_eq!(
            (l.p50, l.p95, l.p99),
            (
                Bound::AtMost(100),
                Bound::AtMost(2_000),
                Bound::AtMost(2_000)
            )
        );
        assert_eq!(hour.streams, 8);
        assert_eq!(hour.ttft_ms.unwrap().p99, Bound::AtMost(50));
        let day = get("a", SloWindow::Day);
        assert_eq!(
            (day.attempts, day.failures, day.latency_ms),
            (11, 1, hour.latency_ms)
        );
        let month = get("a", SloWindow::Days30);
        assert_eq!((month.attempts, month.failures), (12, 2));
        let b = get("b", SloWindow::Hour);
        assert_eq!((b.attempts, b.failures, b.availability), (1, 0, Some(1.0)));
        let table = r.render(ViewFormat::Table).unwrap();
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("a ") && l.contains("30d")),
            "{table}"
        );
    }

    #[test]
    fn only_the_upstreams_failures_count_against_it() {
        for k in crate::store::PROVIDER_FAULTS {
            assert!(k.retryable(), "{k}");
        }
        for k in [
            ErrorKind::InvalidRequest,
            ErrorKind::ContentFilter,
            ErrorKind::ContextLengthExceeded,
        ] {
            assert!(!crate::store::PROVIDER_FAULTS.contains(&k), "{k}");
        }
    }

    #[test]
    fn the_slowest_bucket_is_open_ended_and_the_objective_is_checked() {
        let mut hist = vec![0; LATENCY_BOUNDS_MS.len() + 1];
        hist[LATENCY_BOUNDS_MS.len()] = 1;
        assert_eq!(percentiles(&hist).unwrap().p50, Bound::Above(300_000));
        assert_eq!(percentiles(&[0; 3]), None);
        let store = MemoryStore::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for bad in [0.0, 1.0, 1.5] {
            assert!(rt.block_on(slo(&store, NOW, bad)).is_err());
        }
    }
}
