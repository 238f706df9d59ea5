//! The batched writer: the request path hands records to a bounded queue; one task appends
//! them to the store in batches, on size or on a timer, and drains the queue on shutdown.
//!
//! # When the database is down
//!
//! A failed append is retried with exponential backoff (`retry_initial` doubling up to
//! `retry_max`), the batch kept in memory, forever while the gateway runs; an append the
//! store does not answer within `append_timeout` counts as failed (so a database behind a
//! network partition cannot hold the writer), and once shutdown starts an append in progress
//! is abandoned at the shutdown deadline; each failure
//! counts in `flush_errors` and logs a warning. Meanwhile new records wait in the queue. When
//! the queue is full, [`OnFull`] decides: wait up to a timeout, or drop at once; either way
//! each record not taken counts in `dropped` and is logged. At shutdown the writer keeps
//! retrying for `shutdown_timeout`, then gives up on what it still holds and counts it in
//! `lost` (logged as an error with the count). No record disappears without a counter moving.
//!
//! Appends are at-least-once: if the connection breaks during COMMIT the batch may have been
//! stored and is written again; `request_id` identifies such duplicates.
//!
//! # Durable records
//!
//! With [`Durability::BeforeResponse`], [`LedgerWriter::submit`] hands back a [`Durable`] that
//! resolves once the record's batch is committed. A durable record does not wait for the
//! batch to fill or the timer: it is appended at once together with everything queued behind
//! it (group commit), so concurrent requests share one commit.

use crate::record::LedgerRecord;
use crate::store::LedgerStore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// What `record` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// Wait for room up to `timeout`, then drop the record (counted).
    Block {
        /// How long a caller may wait.
        timeout: Duration,
    },
    /// Drop the new record at once (counted); never waits.
    Drop,
}

/// When a request's record counts as kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Once queued: the response does not wait for the database (a crash can lose what is
    /// queued).
    #[default]
    Queued,
    /// Once committed: [`LedgerWriter::submit`] returns a [`Durable`] to wait on before the
    /// response completes, so a crash loses no answered request's record.
    BeforeResponse,
}

/// Resolves when a durable record is committed (`true`), or `false` when it was given up
/// (dropped at shutdown after the store kept failing) or not committed within the writer's
/// `durable_timeout` (a database that is down must not hold answers forever).
#[derive(Debug)]
pub struct Durable {
    rx: oneshot::Receiver<bool>,
    timeout: Duration,
}

impl Durable {
    /// Waits for the record's batch to be committed, at most the writer's `durable_timeout`.
    pub async fn written(self) -> bool {
        matches!(
            tokio::time::timeout(self.timeout, self.rx).await,
            Ok(Ok(true))
        )
    }
}

/// A queued record, with whom to tell once it is committed.
struct Queued {
    rec: LedgerRecord,
    ack: Option<oneshot::Sender<bool>>,
}

/// Writer settings (the `[ledger]` config section).
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Append when this many records are waiting.
    pub batch_size: usize,
    /// Append at least this often while records are waiting.
    pub flush_interval: Duration,
    /// Records that may wait in the queue.
    pub queue_capacity: usize,
    /// What to do when the queue is full.
    pub on_full: OnFull,
    /// First retry delay after a failed append.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How long shutdown keeps retrying a failing store before counting records as lost;
    /// an append in progress is abandoned at this deadline too.
    pub shutdown_timeout: Duration,
    /// Whether [`LedgerWriter::submit`] waits for commits.
    pub durability: Durability,
    /// The longest a [`Durable`] waits for its commit.
    pub durable_timeout: Duration,
    /// Longest one append may take before it is abandoned and retried (a database that stops
    /// answering, such as one behind a network partition, would otherwise hold the writer).
    pub append_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            flush_interval: Duration::from_millis(500),
            queue_capacity: 10_000,
            on_full: OnFull::Block {
                timeout: Duration::from_secs(1),
            },
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            durability: Durability::Queued,
            durable_timeout: Duration::from_secs(5),
            append_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a record was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The queue was full (after the policy's wait, if any); the record was dropped and counted.
    #[error("ledger queue full: record dropped")]
    Full,
    /// The writer is shut down; the record was dropped and counted.
    #[error("ledger writer shut down: record dropped")]
    Closed,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    lost: AtomicU64,
    flush_errors: AtomicU64,
    batches: AtomicU64,
}

/// A snapshot of the writer's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records taken into the queue.
    pub accepted: u64,
    /// Records appended to the store.
    pub written: u64,
    /// Records waiting (queued or in the batch being appended).
    pub pending: u64,
    /// Records refused because the queue was full or the writer shut down.
    pub dropped: u64,
    /// Records given up at shutdown because the store kept failing.
    pub lost: u64,
    /// Failed append attempts (each retried).
    pub flush_errors: u64,
    /// Successful appends.
    pub batches: u64,
}

struct Control {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A cheap-to-clone handle to the ledger's writer task.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::Sender<Queued>,
    on_full: OnFull,
    durability: Durability,
    durable_timeout: Duration,
    counters: Arc<Counters>,
    control: Arc<Control>,
}

impl std::fmt::Debug for LedgerWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerWriter")
            .field("on_full", &self.on_full)
            .field("stats", &self.stats())
            .finish()
    }
}

impl LedgerWriter {
    /// Starts the writer task on the current tokio runtime. Call [`LedgerWriter::shutdown`]
    /// before exiting, or queued records are lost.
    pub fn spawn(store: Arc<dyn LedgerStore>, config: WriterConfig) -> LedgerWriter {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let on_full = config.on_full;
        let (durability, durable_timeout) = (config.durability, config.durable_timeout);
        let task = Task {
            store,
            config,
            counters: counters.clone(),
            stop: stop_rx,
            deadline: None,
            acks: Vec::new(),
        };
        // Not fire-and-forget: the handle is kept and awaited by `shutdown`.
        let handle = tokio::spawn(task.run(rx));
        LedgerWriter {
            tx,
            on_full,
            durability,
            durable_timeout,
            counters,
            control: Arc::new(Control {
                stop,
                task: Mutex::new(Some(handle)),
            }),
        }
    }

    /// Queues `rec` under the configured [`OnFull`] policy: with `Block`, waits at most its
    /// timeout; with `Drop`, never waits.
    pub async fn record(&self, rec: LedgerRecord) -> Result<(), RecordError> {
        match self.on_full {
            OnFull::Drop => self.try_record(rec),
            OnFull::Block { timeout } => match self
                .tx
                .send_timeout(Queued { rec, ack: None }, timeout)
                .await
            {
                Ok(()) => {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Err(mpsc::error::SendTimeoutError::Timeout(r)) => {
                    Err(self.refuse(&r, RecordError::Full))
                }
                Err(mpsc::error::SendTimeoutError::Closed(r)) => {
                    Err(self.refuse(&r, RecordError::Closed))
                }
            },
        }
    }

    /// Queues `rec` without waiting, whatever the policy; drops (and counts) it when full.
    pub fn try_record(&self, rec: LedgerRecord) -> Result<(), RecordError> {
        self.enqueue(Queued { rec, ack: None })
    }

    /// Whether records are durable before responses complete ([`Durability::BeforeResponse`]).
    pub fn durable(&self) -> bool {
        self.durability == Durability::BeforeResponse
    }

    /// Queues `rec` without waiting; with [`Durability::BeforeResponse`], also returns what to
    /// wait on before the response completes.
    pub fn submit(&self, rec: LedgerRecord) -> Result<Option<Durable>, RecordError> {
        match self.durability {
            Durability::Queued => self.try_record(rec).map(|()| None),
            Durability::BeforeResponse => {
                let (tx, rx) = oneshot::channel();
                self.enqueue(Queued { rec, ack: Some(tx) })?;
                Ok(Some(Durable {
                    rx,
                    timeout: self.durable_timeout,
                }))
            }
        }
    }

    fn enqueue(&self, q: Queued) -> Result<(), RecordError> {
        match self.tx.try_send(q) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(q)) => Err(self.refuse(&q, RecordError::Full)),
            Err(mpsc::error::TrySendError::Closed(q)) => Err(self.refuse(&q, RecordError::Closed)),
        }
    }

    fn refuse(&self, q: &Queued, why: RecordError) -> RecordError {
        let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(request_id = %q.rec.request_id, dropped_total = dropped, reason = %why, "ledger record dropped");
        why
    }

    /// The counters now.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        let accepted = c.accepted.load(Ordering::Relaxed);
        let written = c.written.load(Ordering::Relaxed);
        let lost = c.lost.load(Ordering::Relaxed);
        WriterStats {
            accepted,
            written,
            pending: accepted.saturating_sub(written + lost),
            dropped: c.dropped.load(Ordering::Relaxed),
            lost,
            flush_errors: c.flush_errors.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
        }
    }

    /// Stops taking records, appends everything queued, and waits for the task to end
    /// (bounded by `shutdown_timeout` while the store fails). Later calls return at once.
    pub async fn shutdown(&self) -> WriterStats {
        // `send_replace` works even when the task already ended and dropped its receiver.
        self.control.stop.send_replace(true);
        let handle = self
            .control
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "ledger writer task failed");
            }
        }
        self.stats()
    }
}

struct Task {
    store: Arc<dyn LedgerStore>,
    config: WriterConfig,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    /// Set once shutdown starts: retries end here.
    deadline: Option<Instant>,
    /// Whom to tell when the batch being built is committed (or given up).
    acks: Vec<oneshot::Sender<bool>>,
}

/// Resolves at `deadline`, or never without one.
async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Why one append did not complete.
#[derive(Debug, thiserror::Error)]
enum AppendFailure {
    /// The store refused or failed it.
    #[error(transparent)]
    Store(crate::LedgerError),
    /// The store did not answer within the limit.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The shutdown deadline had passed before it could start.
    #[error("the shutdown deadline passed")]
    Deadline,
}

/// How many `batch_size`s of queued records one append may take.
const MAX_BATCHES_PER_APPEND: usize = 16;

impl Task {
    /// Takes a queued record into `batch`; returns whether someone waits for its commit.
    fn take(&mut self, q: Queued, batch: &mut Vec<LedgerRecord>) -> bool {
        batch.push(q.rec);
        match q.ack {
            Some(ack) => {
                self.acks.push(ack);
                true
            }
            None => false,
        }
    }

    /// Tells every waiter of the batch just committed (`true`) or given up (`false`).
    fn answer(&mut self, written: bool) {
        for ack in self.acks.drain(..) {
            let _ = ack.send(written);
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
        let batch_size = self.config.batch_size.max(1);
        let mut batch = Vec::with_capacity(batch_size);
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
                           // A shutdown seen inside `flush` (during a retry) sets the deadline: leave then too.
        while self.deadline.is_none() {
            tokio::select! {
                biased;
                changed = self.stop.changed(), if self.deadline.is_none() => {
                    // A dropped sender (`Err`) also means nobody can record any more.
                    let _ = changed;
                    break;
                }
                msg = rx.recv() => match msg {
                    Some(q) => {
                        // Someone waits for this one: commit now, with whatever is queued.
                        let waited = self.take(q, &mut batch);
                        if waited || batch.len() >= batch_size {
                            // A backlog goes in the same transaction: a commit (an fsync)
                            // per batch bounds throughput, so batches grow when records
                            // arrive faster than commits.
                            while batch.len() < batch_size * MAX_BATCHES_PER_APPEND {
                                match rx.try_recv() {
                                    Ok(q) => {
                                        self.take(q, &mut batch);
                                    }
                                    Err(_) => break,
                                }
                            }
                            self.flush(&mut batch).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if !batch.is_empty() {
                        self.flush(&mut batch).await;
                    }
                }
            }
        }
        self.begin_shutdown();
        // Refuse new records, then take everything already queued.
        rx.close();
        while let Some(q) = rx.recv().await {
            self.take(q, &mut batch);
            if batch.len() >= batch_size {
                self.flush(&mut batch).await;
            }
        }
        if !batch.is_empty() {
            self.flush(&mut batch).await;
        }
    }

    fn begin_shutdown(&mut self) {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.config.shutdown_timeout);
        }
    }

    /// Appends `batch`, retrying with backoff until it succeeds or the shutdown deadline
    /// passes; empties `batch` either way.
    async fn flush(&mut self, batch: &mut Vec<LedgerRecord>) {
        let mut delay = self.config.retry_initial;
        loop {
            // Each append is bounded by its own timeout and, once shutdown started, by the
            // shutdown deadline: an unanswering database cannot hold shutdown past it.
            let mut limit = self.config.append_timeout;
            if let Some(deadline) = self.deadline {
                limit = limit.min(deadline.saturating_duration_since(Instant::now()));
            }
            let appended = if limit.is_zero() {
                Err(AppendFailure::Deadline)
            } else {
                let store = self.store.clone();
                let append = tokio::time::timeout(limit, store.append_batch(batch));
                tokio::pin!(append);
                loop {
                    let deadline = self.deadline;
                    tokio::select! {
                        result = &mut append => break match result {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(AppendFailure::Store(e)),
                            Err(_) => Err(AppendFailure::Timeout(limit)),
                        },
                        // Shutdown during an append: it may finish, but only until the deadline.
                        _ = self.stop.changed(), if deadline.is_none() => self.begin_shutdown(),
                        () = sleep_until_or_never(deadline) => break Err(AppendFailure::Deadline),
                    }
                }
            };
            match appended {
                Ok(()) => {
                    self.counters
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                    batch.clear();
                    self.answer(true);
                    return;
                }
                Err(e) => {
                    let errors = self.counters.flush_errors.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(error = %e, records = batch.len(), flush_errors = errors, retry_in = ?delay, "ledger append failed; retrying");
                }
            }
            if let Some(deadline) = self.deadline {
                if Instant::now() + delay >= deadline {
                    let lost = batch.len() as u64;
                    let total = self.counters.lost.fetch_add(lost, Ordering::Relaxed) + lost;
                    tracing::error!(
                        records = lost,
                        lost_total = total,
                        "ledger store still failing at shutdown: records lost"
                    );
                    batch.clear();
                    self.answer(false);
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // Shutdown during a retry: keep trying, but only until the deadline.
                _ = self.stop.changed(), if self.deadline.is_none() => self.begin_shutdown(),
            }
            delay = (delay * 2).min(self.config.retry_max);
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
