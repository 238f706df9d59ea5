//! A store in process memory: for tests and for a gateway run without a ledger file. Records
//! are lost when the process exits.

use super::analysis::{grouped_in_memory, reprice_in_memory};
use super::sqlite::receipt;
use super::{spend_in_memory, AppendReceipt, BoxFuture, LedgerStore, SpendBy, SpendRow, TimeRange};
use super::{Filter, GroupedRow, RepriceTotals};
use crate::chain::{link, ChainHead, GENESIS_HASH};
use crate::record::{LedgerRecord, StoredRecord};
use crate::LedgerError;
use std::sync::{Mutex, MutexGuard};
use switchyard_types::Prices;

#[derive(Debug, Default)]
struct Inner {
    rows: Vec<StoredRecord>,
    head_seq: i64,
    head_hash: Option<String>,
}

/// An in-memory ledger with the same chain rules as the database stores.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    // No await happens while the guard is held, and a panic in another holder cannot leave
    // the rows half-written (each append pushes complete rows), so a poisoned lock is usable.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stored record (a copy), in sequence order.
    pub fn snapshot(&self) -> Vec<StoredRecord> {
        self.lock().rows.clone()
    }

    /// Number of stored records.
    pub fn len(&self) -> usize {
        self.lock().rows.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LedgerStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn append_batch<'a>(
        &'a self,
        records: &'a [LedgerRecord],
    ) -> BoxFuture<'a, Result<AppendReceipt, LedgerError>> {
        Box::pin(async move {
            let mut inner = self.lock();
            let head_hash = inner
                .head_hash
                .clone()
                .unwrap_or_else(|| GENESIS_HASH.to_owned());
            let linked = link(inner.head_seq, &head_hash, records);
            let receipt = receipt(inner.head_seq, head_hash, &linked);
            inner.rows.extend(linked);
            inner.head_seq = receipt.last_seq;
            inner.head_hash = Some(receipt.head_hash.clone());
            Ok(receipt)
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<ChainHead, LedgerError>> {
        Box::pin(async move {
            let inner = self.lock();
            Ok(ChainHead {
                seq: inner.head_seq,
                hash: inner
                    .head_hash
                    .clone()
                    .unwrap_or_else(|| GENESIS_HASH.to_owned()),
                max_seq: inner.rows.iter().map(|r| r.seq).max().unwrap_or(0),
            })
        })
    }

    fn records(
        &self,
        after_seq: i64,
        through_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .rows
                .iter()
                .filter(|r| r.seq > after_seq && r.seq <= through_seq)
                .take(limit as usize)
                .cloned()
                .collect())
        })
    }

    fn records_in_time(
        &self,
        range: TimeRange,
        after_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, LedgerError>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .rows
                .iter()
                .filter(|r| r.seq > after_seq && range.contains(r.record.time_ms))
                .take(limit as usize)
                .cloned()
                .collect())
        })
    }

    fn spend(
        &self,
        by: SpendBy,
        range: TimeRange,
    ) -> BoxFuture<'_, Result<Vec<SpendRow>, LedgerError>> {
        Box::pin(async move {
            let inner = self.lock();
            Ok(spend_in_memory(
                inner.rows.iter().map(|r| &r.record),
                by,
                range,
            ))
        })
    }

    fn spend_grouped<'a>(
        &'a self,
        by: &'a [SpendBy],
        range: TimeRange,
    ) -> BoxFuture<'a, Result<Vec<GroupedRow>, LedgerError>> {
        Box::pin(async move {
            let inner = self.lock();
            Ok(grouped_in_memory(
                inner.rows.iter().map(|r| &r.record),
                by,
                range,
            ))
        })
    }

    fn reprice<'a>(
        &'a self,
        range: TimeRange,
        filters: &'a [Filter],
        prices: &'a Prices,
    ) -> BoxFuture<'a, Result<RepriceTotals, LedgerError>> {
        Box::pin(async move {
            let inner = self.lock();
            Ok(reprice_in_memory(
                inner.rows.iter().map(|r| &r.record),
                range,
                filters,
                prices,
            ))
        })
    }
}
