//! The SQLite and PostgreSQL stores against real databases: round trips, the audit chain under
//! tampering, concurrent appenders, identical spend reports, and the writer on a real store.

// A panic in a test is a failed test, which is the point.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;
use std::sync::Arc;
use std::time::Duration;
use switchyard_ledger::audit::verify;
use switchyard_ledger::chain::record_hash;
use switchyard_ledger::store::{LedgerStore, MemoryStore, SpendBy, TimeRange};
use switchyard_ledger::testing::traffic;
use switchyard_ledger::{LedgerWriter, OnFull, ProblemKind, WriterConfig};

const T0: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z

async fn fill(store: &dyn LedgerStore, n: usize, seed: u64) {
    for chunk in traffic(seed, T0, n).chunks(10) {
        store.append_batch(chunk).await.unwrap();
    }
}

async fn problem(db: &TestDb) -> Option<(i64, ProblemKind)> {
    let report = verify(db.store.as_ref()).await.unwrap();
    report.first_problem.map(|p| (p.seq, p.kind))
}

/// Runs every tamper case on fresh databases from `make`.
async fn tamper_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<TestDb>>,
{
    // Untouched.
    let Some(db) = make().await else { return };
    fill(db.store.as_ref(), 30, 1).await;
    let report = verify(db.store.as_ref()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 30);
    db.cleanup().await;

    // Modified: a cost edited in place.
    let db = make().await.unwrap();
    fill(db.store.as_ref(), 30, 2).await;
    db.exec("UPDATE ledger_records SET cost_nanos = cost_nanos + 1 WHERE seq = 12")
        .await;
    assert_eq!(problem(&db).await, Some((12, ProblemKind::Modified)));
    db.cleanup().await;

    // Deleted: a record in the middle, and the last one.
    let db = make().await.unwrap();
    fill(db.store.as_ref(), 30, 3).await;
    db.exec("DELETE FROM ledger_records WHERE seq = 7").await;
    assert_eq!(problem(&db).await, Some((7, ProblemKind::Deleted)));
    db.cleanup().await;
    let db = make().await.unwrap();
    fill(db.store.as_ref(), 30, 3).await;
    db.exec("DELETE FROM ledger_records WHERE seq = 30").await;
    assert_eq!(problem(&db).await, Some((30, ProblemKind::Deleted)));
    db.cleanup().await;

    // Inserted: a forged record slipped in at 15 with a correct-looking hash, the rest
    // renumbered (two steps, so the primary key never collides).
    let db = make().await.unwrap();
    fill(db.store.as_ref(), 30, 4).await;
    let r14 = db.store.records(13, 14, 1).await.unwrap().remove(0);
    let mut forged = r14.record.clone();
    forged.request_id = "forged".into();
    let forged_hash = record_hash(&r14.hash, &forged);
    db.exec(
        "UPDATE ledger_records SET seq = seq + 1000 WHERE seq >= 15;
         UPDATE ledger_records SET seq = seq - 999 WHERE seq >= 1015;",
    )
    .await;
    let copy_cols = COPY_COLUMNS.replace("{seq}", "15");
    db.exec(&format!(
        "INSERT INTO ledger_records ({COLUMNS}) SELECT {copy_cols} FROM ledger_records WHERE seq = 14;
         UPDATE ledger_records SET request_id = 'forged', prev_hash = '{}', hash = '{forged_hash}' WHERE seq = 15;",
        r14.hash
    ))
    .await;
    assert_eq!(problem(&db).await, Some((15, ProblemKind::Inserted)));
    db.cleanup().await;

    // Inserted at the tail, behind the writer's back (the head was not moved).
    let db = make().await.unwrap();
    fill(db.store.as_ref(), 30, 5).await;
    let copy_cols = COPY_COLUMNS.replace("{seq}", "31");
    db.exec(&format!(
        "INSERT INTO ledger_records ({COLUMNS}) SELECT {copy_cols} FROM ledger_records WHERE seq = 30;"
    ))
    .await;
    assert_eq!(problem(&db).await, Some((31, ProblemKind::Inserted)));
    db.cleanup().await;
}

const COLUMNS: &str = "seq, prev_hash, hash, request_id, time_ms, key_id, team, model, \
     deployment, provider, cloud, region, jurisdiction, data_class, attempts, input_tokens, \
     output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, \
     price_known, latency_ms, ttft_ms, outcome, stream, prompt_body, response_body";
const COPY_COLUMNS: &str = "{seq}, prev_hash, hash, request_id, time_ms, key_id, team, model, \
     deployment, provider, cloud, region, jurisdiction, data_class, attempts, input_tokens, \
     output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, \
     price_known, latency_ms, ttft_ms, outcome, stream, prompt_body, response_body";

#[tokio::test]
async fn sqlite_chain_detects_tampering() {
    tamper_suite(|| async { Some(TestDb::sqlite().await) }).await;
}

#[tokio::test]
async fn postgres_chain_detects_tampering() {
    tamper_suite(|| TestDb::postgres("postgres_chain_detects_tampering")).await;
}

async fn round_trip(db: TestDb) {
    let records = traffic(11, T0, 40);
    db.store.append_batch(&records).await.unwrap();
    let stored = db.store.records(0, i64::MAX, 1_000).await.unwrap();
    let back: Vec<_> = stored.into_iter().map(|s| s.record).collect();
    assert_eq!(back, records);
    let window = TimeRange {
        since_ms: records[10].time_ms,
        until_ms: records[20].time_ms,
    };
    let in_time = db.store.records_in_time(window, 0, 1_000).await.unwrap();
    assert_eq!(in_time.len(), 10);
    assert_eq!(in_time[0].seq, 11);
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_round_trips_every_field() {
    round_trip(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_round_trips_every_field() {
    if let Some(db) = TestDb::postgres("postgres_round_trips_every_field").await {
        round_trip(db).await;
    }
}

/// Several stores ("processes") appending at once still form one chain.
async fn concurrent_appenders(db: TestDb, others: Vec<Arc<dyn LedgerStore>>) {
    let mut stores = others;
    stores.push(db.store.clone());
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for chunk in traffic(100 + i as u64, T0, 60).chunks(6) {
                store.append_batch(chunk).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = verify(db.store.as_ref()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 60 * stores.len() as u64);
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_concurrent_appenders_keep_one_chain() {
    let db = TestDb::sqlite().await;
    let other = db.second_sqlite_store().await;
    concurrent_appenders(db, vec![other]).await;
}

#[tokio::test]
async fn postgres_concurrent_appenders_keep_one_chain() {
    if let Some(db) = TestDb::postgres("postgres_concurrent_appenders_keep_one_chain").await {
        let mut others = Vec::new();
        for _ in 0..2 {
            others.push(db.second_postgres_store().await);
        }
        concurrent_appenders(db, others).await;
    }
}

#[tokio::test]
async fn sqlite_and_postgres_give_identical_spend_reports() {
    let records = traffic(77, T0, 500);
    let memory = MemoryStore::new();
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres("sqlite_and_postgres_give_identical_spend_reports").await;
    for chunk in records.chunks(50) {
        memory.append_batch(chunk).await.unwrap();
        sqlite.store.append_batch(chunk).await.unwrap();
        if let Some(pg) = &postgres {
            pg.store.append_batch(chunk).await.unwrap();
        }
    }
    let windows = [
        TimeRange::ALL,
        TimeRange {
            since_ms: records[100].time_ms,
            until_ms: records[300].time_ms,
        },
    ];
    for by in SpendBy::ALL {
        for range in windows {
            let expected = memory.spend(by, range).await.unwrap();
            assert!(!expected.is_empty());
            assert_eq!(
                sqlite.store.spend(by, range).await.unwrap(),
                expected,
                "sqlite {by:?}"
            );
            if let Some(pg) = &postgres {
                assert_eq!(
                    pg.store.spend(by, range).await.unwrap(),
                    expected,
                    "postgres {by:?}"
                );
            }
        }
    }
    // The report covers everything exactly once.
    let total: u64 = memory
        .spend(SpendBy::Cloud, TimeRange::ALL)
        .await
        .unwrap()
        .iter()
        .map(|r| r.requests)
        .sum();
    assert_eq!(total, 500);
    sqlite.cleanup().await;
    if let Some(pg) = postgres {
        pg.cleanup().await;
    }
}

#[tokio::test]
async fn writer_drains_into_sqlite_on_shutdown() {
    let db = TestDb::sqlite().await;
    let config = WriterConfig {
        batch_size: 50,
        flush_interval: Duration::from_secs(3_600),
        queue_capacity: 2_000,
        on_full: OnFull::Drop,
        ..WriterConfig::default()
    };
    let writer = LedgerWriter::spawn(db.store.clone(), config);
    let records = traffic(21, T0, 1_234);
    for r in records.clone() {
        writer.try_record(r).unwrap();
    }
    let stats = writer.shutdown().await;
    assert_eq!((stats.written, stats.dropped, stats.lost), (1_234, 0, 0));
    let report = verify(db.store.as_ref()).await.unwrap();
    assert!(report.ok);
    assert_eq!(report.checked, 1_234);
    db.cleanup().await;
}

#[tokio::test]
async fn writer_counts_flush_errors_when_the_table_is_gone() {
    let db = TestDb::sqlite().await;
    db.exec("DROP TABLE ledger_records").await;
    let config = WriterConfig {
        batch_size: 5,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(20),
        shutdown_timeout: Duration::from_millis(200),
        ..WriterConfig::default()
    };
    let writer = LedgerWriter::spawn(db.store.clone(), config);
    for r in traffic(22, T0, 5) {
        writer.record(r).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(writer.stats().flush_errors >= 2, "{:?}", writer.stats());
    let stats = writer.shutdown().await;
    assert_eq!((stats.written, stats.lost, stats.pending), (0, 5, 0));
    db.cleanup().await;
}

#[tokio::test]
async fn cli_verify_reports_ok_then_damage() {
    use switchyard_ledger::{cli, LedgerError};
    let db = TestDb::sqlite().await;
    fill(db.store.as_ref(), 20, 9).await;
    let mut out = Vec::new();
    cli::audit_verify(&db.url, false, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("OK: 20 records verified"), "{text}");

    db.exec("UPDATE ledger_records SET team = 'someone-else' WHERE seq = 3")
        .await;
    let mut out = Vec::new();
    let err = cli::audit_verify(&db.url, false, &mut out)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::ChainDamaged {
                seq: 3,
                kind: ProblemKind::Modified
            }
        ),
        "{err}"
    );
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("DAMAGED at record 3"));
    db.cleanup().await;
}

#[tokio::test]
async fn cli_refuses_a_missing_sqlite_file_instead_of_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nope.db").display());
    let mut out = Vec::new();
    assert!(switchyard_ledger::cli::audit_verify(&url, false, &mut out)
        .await
        .is_err());
    assert!(!dir.path().join("nope.db").exists());
}

#[tokio::test]
async fn spend_report_window_uses_dates() {
    use switchyard_ledger::cli::{spend_report, time_range};
    let db = TestDb::sqlite().await;
    fill(db.store.as_ref(), 50, 10).await;
    let all = spend_report(
        db.store.as_ref(),
        SpendBy::Team,
        time_range(None, None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(all.total().requests, 50);
    let none = spend_report(
        db.store.as_ref(),
        SpendBy::Team,
        time_range(Some("2026-11-02"), None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(none.total().requests, 0);
    assert_eq!(none.since.as_deref(), Some("2026-11-02T00:00:00Z"));
    db.cleanup().await;
}
