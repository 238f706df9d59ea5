//! The escape-hatch queries (grouped spend, repricing, SLO counts) in SQLite and PostgreSQL agree with the
//! in-memory reference and with the paging default every other store gets, and repricing at
//! the recorded prices reproduces the ledger's own costs to the nano-dollar.

// A panic in a test is a failed test, which is the point.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;
use switchyard_ledger::chain::ChainHead;
use switchyard_ledger::store::{
    AppendReceipt, BoxFuture, Filter, LedgerStore, MemoryStore, SpendBy, SpendRow, TimeRange,
};
use switchyard_ledger::testing::traffic;
use switchyard_ledger::{LedgerError, LedgerRecord, StoredRecord};
use switchyard_types::{Money, PricePerMillion, Prices};

const T0: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z

/// A store that only implements the required methods, so the trait's paging defaults run.
struct Plain(MemoryStore);

impl LedgerStore for Plain {
    fn backend(&self) -> &'static str {
        "plain"
    }
    fn append_batch<'a>(
        &'a self,
        records: &'a [LedgerRecord],
    ) -> BoxFuture<'a, Result<AppendReceipt, LedgerError>> {
        self.0.append_batch(records)
    }
    fn head(&self) -> BoxFuture<'_, Result<ChainHead, LedgerError>> {
        self.0.head()
    }
    fn records(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        self.0.records(after, through, limit)
    }
    fn records_in_time(
        &self,
        range: TimeRange,
        after: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        self.0.records_in_time(range, after, limit)
    }
    fn spend(
        &self,
        by: SpendBy,
        range: TimeRange,
    ) -> BoxFuture<'_, Result<Vec<SpendRow>, LedgerError>> {
        self.0.spend(by, range)
    }
}

fn per_m(nanos: i64) -> PricePerMillion {
    PricePerMillion(Money(nanos))
}

/// Odd rates, so rounding happens in every part.
fn odd_prices() -> Prices {
    Prices {
        input: per_m(3_333_333_333),
        output: per_m(14_999_999_999),
        cached_input: Some(per_m(333_333_333)),
        cache_write: None,
    }
}

#[tokio::test]
async fn sql_backends_agree_with_memory_and_the_paging_default() {
    // More than one page (1,000 records) for the default.
    let records = traffic(5, T0, 2_300);
    let memory = MemoryStore::new();
    let plain = Plain(MemoryStore::new());
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres("escape_sql_backends_agree").await;
    for chunk in records.chunks(400) {
        memory.append_batch(chunk).await.unwrap();
        plain.append_batch(chunk).await.unwrap();
        sqlite.store.append_batch(chunk).await.unwrap();
        if let Some(pg) = &postgres {
            pg.store.append_batch(chunk).await.unwrap();
        }
    }
    let mut stores: Vec<(&str, &dyn LedgerStore)> =
        vec![("plain", &plain), ("sqlite", sqlite.store.as_ref())];
    if let Some(pg) = &postgres {
        stores.push(("postgres", pg.store.as_ref()));
    }
    let windows = [
        TimeRange::ALL,
        TimeRange {
            since_ms: records[500].time_ms,
            until_ms: records[1_800].time_ms,
        },
    ];
    let dims: [&[SpendBy]; 3] = [
        &[
            SpendBy::Model,
            SpendBy::Cloud,
            SpendBy::Provider,
            SpendBy::Region,
        ],
        &[SpendBy::Deployment],
        &[],
    ];
    let filters: [Vec<Filter>; 3] = [
        vec![],
        vec![Filter {
            by: SpendBy::Model,
            value: "gpt-4o".into(),
        }],
        vec![
            Filter {
                by: SpendBy::Cloud,
                value: "aws".into(),
            },
            Filter {
                by: SpendBy::Team,
                value: "ads".into(),
            },
        ],
    ];
    let prices = odd_prices();
    for range in windows {
        let expected = memory.slo_counts(range).await.unwrap();
        assert!(expected
            .iter()
            .any(|c| c.failures > 0 && c.ttft.iter().sum::<u64>() == 0));
        assert!(expected.iter().any(|c| c.ttft.iter().sum::<u64>() > 0));
        for (name, store) in &stores {
            assert_eq!(
                store.slo_counts(range).await.unwrap(),
                expected,
                "{name} slo"
            );
        }
        for by in dims {
            let expected = memory.spend_grouped(by, range).await.unwrap();
            assert!(!expected.is_empty());
            let requests: u64 = expected.iter().map(|r| r.requests).sum();
            let in_range = records.iter().filter(|r| range.contains(r.time_ms)).count();
            assert_eq!(
                requests, in_range as u64,
                "every record in exactly one group"
            );
            for (name, store) in &stores {
                assert_eq!(
                    store.spend_grouped(by, range).await.unwrap(),
                    expected,
                    "{name} {by:?}"
                );
            }
        }
        for f in &filters {
            let expected = memory.reprice(range, f, &prices).await.unwrap();
            assert!(expected.requests > 0, "{f:?} selects something");
            // The reference itself: the pricing rule applied record by record.
            let by_hand: i64 = records
                .iter()
                .filter(|r| range.contains(r.time_ms) && r.price_known)
                .filter(|r| {
                    f.iter().all(|f| match f.by {
                        SpendBy::Model => *r.model == *f.value,
                        SpendBy::Cloud => r.cloud.map(|c| c.as_str()) == Some(f.value.as_str()),
                        SpendBy::Team => r.team.as_deref() == Some(f.value.as_str()),
                        _ => unreachable!(),
                    })
                })
                .map(|r| prices.cost(&r.usage).nanos())
                .sum();
            assert_eq!(expected.repriced.nanos(), by_hand);
            for (name, store) in &stores {
                assert_eq!(
                    store.reprice(range, f, &prices).await.unwrap(),
                    expected,
                    "{name} {f:?}"
                );
            }
        }
    }
    sqlite.cleanup().await;
    if let Some(pg) = postgres {
        pg.cleanup().await;
    }
}

#[tokio::test]
async fn repricing_at_the_recorded_prices_reproduces_the_ledger_in_sql() {
    let records = traffic(9, T0, 700);
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres("escape_reprice_reproduces_the_ledger").await;
    for chunk in records.chunks(100) {
        sqlite.store.append_batch(chunk).await.unwrap();
        if let Some(pg) = &postgres {
            pg.store.append_batch(chunk).await.unwrap();
        }
    }
    // The prices crate::testing::traffic charges every priced deployment.
    let recorded = Prices {
        input: per_m(2_500_000_000),
        output: per_m(10_000_000_000),
        cached_input: Some(per_m(1_250_000_000)),
        cache_write: None,
    };
    let ledger: i64 = records
        .iter()
        .filter(|r| r.price_known)
        .map(|r| r.cost.nanos())
        .sum();
    let mut stores = vec![sqlite.store.clone()];
    if let Some(pg) = &postgres {
        stores.push(pg.store.clone());
    }
    for store in stores {
        let t = store.reprice(TimeRange::ALL, &[], &recorded).await.unwrap();
        assert_eq!(t.ledger_cost.nanos(), ledger, "{}", store.backend());
        assert_eq!(t.repriced.nanos(), ledger, "{}", store.backend());
        assert_eq!(t.requests, 700);
    }
    sqlite.cleanup().await;
    if let Some(pg) = postgres {
        pg.cleanup().await;
    }
}
