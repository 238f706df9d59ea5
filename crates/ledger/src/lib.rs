//! The ledger: one record per request (who, what, where it ran, every attempt, tokens, cost,
//! timing, outcome), priced from normalised token usage, chained by hash for audit, stored in
//! SQLite (default) or PostgreSQL, and written off the request path by a batched writer.
//!
//! How the server uses it:
//! 1. at startup, `store::open(url, true)` then `LedgerWriter::spawn(store, WriterConfig)`;
//! 2. per request, after the answer is settled, build a [`LedgerRecord`] (cost from
//!    [`pricing::price`]) and `writer.record(rec).await` on the tracked settle task;
//! 3. at shutdown, after the HTTP server drained, `writer.shutdown().await`.

pub mod audit;
pub mod chain;
pub mod cli;
mod error;
pub mod escape;
pub mod pricing;
mod record;
pub mod report;
pub mod store;
pub mod testing;
pub mod time;
pub mod writer;

pub use chain::{ChainHead, Problem, ProblemKind, VerifyReport};
pub use error::LedgerError;
pub use pricing::{cost, DefaultPrices, Prices};
pub use record::{now_ms, AttemptRecord, LedgerRecord, Outcome, StoredRecord};
pub use store::{open, open_with, LedgerStore, SpendBy, SpendRow, TimeRange};
pub use writer::{
    Durability, Durable, LedgerWriter, OnFull, RecordError, WriterConfig, WriterStats,
};
