use super::*;
use crate::audit::verify;
use crate::chain::ChainHead;
use crate::record::StoredRecord;
use crate::store::{AppendReceipt, BoxFuture, MemoryStore, SpendBy, SpendRow, TimeRange};
use crate::testing::traffic;
use crate::LedgerError;
use std::sync::atomic::AtomicBool;

/// A store that fails its first `failures` appends, and can be held shut.
struct TestStore {
    inner: MemoryStore,
    failures: AtomicU64,
    calls: AtomicU64,
    gate: watch::Sender<bool>,
    always_fail: AtomicBool,
}

impl TestStore {
    fn new(failures: u64) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            failures: AtomicU64::new(failures),
            calls: AtomicU64::new(0),
            gate: watch::channel(true).0,
            always_fail: AtomicBool::new(false),
        })
    }
}

impl LedgerStore for TestStore {
    fn backend(&self) -> &'static str {
        "test"
    }
    fn append_batch<'a>(
        &'a self,
        records: &'a [LedgerRecord],
    ) -> BoxFuture<'a, Result<AppendReceipt, LedgerError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut open = self.gate.subscribe();
            let _ = open.wait_for(|o| *o).await;
            let failing = self.always_fail.load(Ordering::SeqCst)
                || self
                    .failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                    .is_ok();
            if failing {
                return Err(LedgerError::Database(sqlx::Error::PoolClosed));
            }
            self.inner.append_batch(records).await
        })
    }
    fn head(&self) -> BoxFuture<'_, Result<ChainHead, LedgerError>> {
        self.inner.head()
    }
    fn records(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        self.inner.records(after, through, limit)
    }
    fn records_in_time(
        &self,
        range: TimeRange,
        after: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        self.inner.records_in_time(range, after, limit)
    }
    fn spend(
        &self,
        by: SpendBy,
        range: TimeRange,
    ) -> BoxFuture<'_, Result<Vec<SpendRow>, LedgerError>> {
        self.inner.spend(by, range)
    }
}

fn config(batch_size: usize, flush_interval: Duration) -> WriterConfig {
    WriterConfig {
        batch_size,
        flush_interval,
        queue_capacity: 1_000,
        on_full: OnFull::Drop,
        ..WriterConfig::default()
    }
}

/// Lets the writer task run (paused time advances only when every task is idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn flushes_when_a_batch_is_full() {
    let store = TestStore::new(0);
    let w = LedgerWriter::spawn(store.clone(), config(10, Duration::from_secs(3_600)));
    for r in traffic(1, 0, 25) {
        w.record(r).await.unwrap();
    }
    settle().await;
    // The batch that filled up took the queued backlog with it: one append, not three.
    assert_eq!(store.inner.len(), 25, "a full batch and its backlog");
    assert_eq!(w.stats().batches, 1);
    for r in traffic(1, 25, 5) {
        w.record(r).await.unwrap();
    }
    settle().await;
    assert_eq!(
        store.inner.len(),
        25,
        "five waiting for a full batch or the interval"
    );
    let stats = w.shutdown().await;
    assert_eq!(store.inner.len(), 30);
    assert_eq!((stats.written, stats.pending, stats.batches), (30, 0, 2));
}

#[tokio::test(start_paused = true)]
async fn a_backlog_is_appended_in_at_most_sixteen_batches_worth() {
    let store = TestStore::new(0);
    let w = LedgerWriter::spawn(store.clone(), config(10, Duration::from_secs(3_600)));
    for r in traffic(1, 0, 200) {
        w.record(r).await.unwrap();
    }
    settle().await;
    assert_eq!(store.inner.len(), 200);
    assert_eq!(w.stats().batches, 2, "160 records, then the other 40");
    w.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn flushes_on_the_interval() {
    let store = TestStore::new(0);
    let w = LedgerWriter::spawn(store.clone(), config(100, Duration::from_secs(1)));
    for r in traffic(2, 0, 5) {
        w.record(r).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.inner.len(), 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.inner.len(), 5);
    w.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_everything_in_order() {
    let store = TestStore::new(0);
    let w = LedgerWriter::spawn(store.clone(), config(64, Duration::from_secs(3_600)));
    let records = traffic(3, 0, 1_000);
    for r in records.clone() {
        w.try_record(r).unwrap();
    }
    let stats = w.shutdown().await;
    assert_eq!(stats.written, 1_000);
    let stored: Vec<_> = store
        .inner
        .snapshot()
        .into_iter()
        .map(|s| s.record)
        .collect();
    assert_eq!(stored, records);
    assert!(verify(store.as_ref()).await.unwrap().ok);
    // After shutdown nothing is taken, and the refusal is counted.
    assert_eq!(w.try_record(records[0].clone()), Err(RecordError::Closed));
    assert_eq!(w.stats().dropped, 1);
    // A second shutdown is harmless.
    assert_eq!(w.shutdown().await.written, 1_000);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_and_counts_under_both_policies() {
    for on_full in [
        OnFull::Drop,
        OnFull::Block {
            timeout: Duration::from_millis(20),
        },
    ] {
        let store = TestStore::new(0);
        store.gate.send_replace(false); // the database hangs
        let cfg = WriterConfig {
            queue_capacity: 4,
            on_full,
            ..config(2, Duration::from_secs(3_600))
        };
        let w = LedgerWriter::spawn(store.clone(), cfg);
        let mut refused = 0;
        for r in traffic(4, 0, 20) {
            if w.record(r).await.is_err() {
                refused += 1;
            }
            settle().await;
        }
        let stats = w.stats();
        // Two records sit in the stuck batch, four in the queue; the rest were refused.
        assert_eq!((stats.accepted, stats.dropped), (6, 14), "{on_full:?}");
        assert_eq!(refused, 14);
        store.gate.send_replace(true);
        let stats = w.shutdown().await;
        assert_eq!((stats.written, stats.lost), (6, 0));
        assert_eq!(store.inner.len(), 6);
    }
}

#[tokio::test(start_paused = true)]
async fn failed_appends_are_retried_and_counted() {
    let store = TestStore::new(3);
    let w = LedgerWriter::spawn(store.clone(), config(5, Duration::from_secs(3_600)));
    for r in traffic(5, 0, 5) {
        w.record(r).await.unwrap();
    }
    // Backoff 100 + 200 + 400 ms, then success.
    tokio::time::sleep(Duration::from_millis(650)).await;
    assert_eq!(store.inner.len(), 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.inner.len(), 5);
    let stats = w.shutdown().await;
    assert_eq!((stats.flush_errors, stats.written, stats.lost), (3, 5, 0));
}

#[tokio::test(start_paused = true)]
async fn a_store_failing_through_shutdown_loses_records_loudly_not_silently() {
    let store = TestStore::new(0);
    store.always_fail.store(true, Ordering::SeqCst);
    let cfg = WriterConfig {
        shutdown_timeout: Duration::from_secs(2),
        ..config(10, Duration::from_secs(3_600))
    };
    let w = LedgerWriter::spawn(store.clone(), cfg);
    for r in traffic(6, 0, 7) {
        w.record(r).await.unwrap();
    }
    let started = Instant::now();
    let stats = w.shutdown().await;
    assert!(started.elapsed() <= Duration::from_secs(3));
    assert_eq!((stats.written, stats.lost, stats.pending), (0, 7, 0));
    assert!(stats.flush_errors >= 2);
}

#[tokio::test(start_paused = true)]
async fn an_append_the_store_never_answers_is_abandoned_and_retried() {
    let store = TestStore::new(0);
    store.gate.send_replace(false);
    let cfg = WriterConfig {
        append_timeout: Duration::from_secs(1),
        ..config(1, Duration::from_secs(3_600))
    };
    let w = LedgerWriter::spawn(store.clone(), cfg);
    w.try_record(traffic(1, 0, 1).remove(0)).unwrap();
    // Past the append timeout and the first retry delay: a second append has started.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(store.calls.load(Ordering::SeqCst) >= 2);
    assert!(w.stats().flush_errors >= 1);
    store.gate.send_replace(true);
    let stats = w.shutdown().await;
    assert_eq!((stats.written, stats.lost), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_cuts_an_append_in_progress_at_its_deadline() {
    let store = TestStore::new(0);
    store.gate.send_replace(false);
    let cfg = WriterConfig {
        append_timeout: Duration::from_secs(60),
        shutdown_timeout: Duration::from_secs(2),
        ..config(1, Duration::from_secs(3_600))
    };
    let w = LedgerWriter::spawn(store.clone(), cfg);
    for r in traffic(3, 0, 3) {
        w.try_record(r).unwrap();
    }
    settle().await;
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        1,
        "an append is in progress"
    );
    let started = Instant::now();
    let stats = w.shutdown().await;
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "shutdown took {:?} past its 2 s deadline",
        started.elapsed()
    );
    assert_eq!((stats.written, stats.lost, stats.pending), (0, 3, 0));
}
