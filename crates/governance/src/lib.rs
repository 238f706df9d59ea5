//! Governance: managed virtual keys, teams, rate limits and budgets.
//!
//! # Pieces
//! - [`KeyStore`]: keys and teams. [`MemoryKeyStore`] (tests, config-defined keys) and
//!   [`SqlKeyStore`] (SQLite embedded default, PostgreSQL shared). Secrets (`sk-sy-` + 40
//!   base62) are returned once and stored only as SHA-256 plus a 12-character display prefix.
//!   [`CachedKeyStore`] wraps any store for the request path.
//! - [`Governor`]: `admit(principal, model, estimate)` → [`Admission`] (a `#[must_use]` hold
//!   on 1 request, the estimated tokens and the estimated cost) or a typed [`Denied`];
//!   [`Admission::settle`] replaces the estimates with the real usage and cost; dropping an
//!   unsettled admission releases it on a tracked task.
//! - [`StateStore`]: where limits and budgets are counted: [`MemoryState`] (one process,
//!   default) or [`RedisState`] (many processes; one Lua script per operation, Redis `TIME`).
//! - [`budget_report`], and [`cli`] for `switchyard keys …`.
//!
//! # The overshoot bound (hard budgets)
//! An admission is accepted only if `spent + reserved + estimate ≤ limit`, checked and
//! reserved in one atomic step (one Lua script in Redis, one mutex section in memory).
//! Settling moves a request's amount from `reserved` to `spent`, replacing its estimate by its
//! actual cost. So at any time `spent + reserved ≤ limit + Σ (actualᵢ − estimateᵢ)⁺` over the
//! requests settled so far, and therefore the final spend of a period is bounded by
//!
//! ```text
//! spent ≤ limit + Σ over admitted requests of max(0, actual_cost − estimated_cost)
//! ```
//!
//! - With estimates that are upper bounds (input tokens plus `max_tokens` at the dearest
//!   eligible price — what the server should pass), every term is zero: **concurrent
//!   requests never overshoot a hard budget at all**, and in particular never by more than
//!   one request's cost; the price is that the last few requests of a period may be refused
//!   while some budget remains (up to one estimate's worth).
//! - When an estimate can be low (no `max_tokens` and no known model maximum), the overshoot
//!   is at most the sum of the under-estimates of the requests admitted while the budget was
//!   nearly used up — with `n` requests in flight, at most `n` times the largest
//!   under-estimate. Only upper-bound estimates give the one-request guarantee, so the
//!   server must produce them.
//! - Requests admitted by the local fallback during a Redis outage (`fail_open`) are counted
//!   only in that process, against its share of the remainder Redis last reported (the
//!   remainder divided by the processes seen admitting in the last minute, at least
//!   `fleet_size`): together the processes admit at most that remainder, plus whatever was
//!   admitted elsewhere after a process last heard from Redis (at most the requests then in
//!   flight). What the fallback spent is added to Redis when it is back.
//! - When Redis loses its data, the counters are seeded again from the ledger
//!   ([`SpendSource`]) after one ledger flush interval; the reservations of requests in
//!   flight at that moment are lost, so the overshoot is at most their worst cases.
//!
//! Rate limits are exact sliding windows over 60 s: in any 60 s window the admitted weight
//! (requests, or estimated tokens adjusted to actual tokens at settle) stays within the limit.
//!
//! # Revocation reaches every process within one second
//! See [`keys::CachedKeyStore`]: successful authentications are cached per process for at most
//! 1 s (default 500 ms) from the moment the database read started; unknown secrets are never
//! cached, so new keys work everywhere at once.
//!
//! # Simulated time
//! [`Clock::Manual`] drives both backends: [`MemoryState`] reads it directly, and
//! [`RedisState`]'s scripts receive `now` as an argument instead of calling `TIME` (production
//! passes nothing, so Redis's clock is used). Tests advance it to run a minute in milliseconds.
//!
//! # Denials and their HTTP answers (suggested mapping for `server::error`)
//! - `RateLimited` → 429 with `Retry-After` ([`Denied::retry_after_secs`]); OpenAI
//!   `rate_limit_exceeded` / Anthropic `rate_limit_error`.
//! - `OverBudget` → OpenAI 429 `insufficient_quota` (what OpenAI sends when credit runs out);
//!   Anthropic 400 `invalid_request_error` (what Anthropic sends for exhausted spend limits —
//!   a 429 would make its SDK retry pointlessly until the period resets). No `Retry-After`:
//!   the message names the budget and its reset time.
//! - `ModelNotAllowed` → 403 `permission_error`; `Unavailable` (fail closed) → 503 with
//!   `Retry-After: 1`.

pub mod cli;
mod error;
mod governor;
pub mod keys;
mod model;
mod period;
mod report;
mod secret;
pub mod state;

pub use error::{Denied, DenyReason, GovernanceError};
pub use governor::{Admission, Estimate, GovernanceStats, Governor, GovernorOptions, SpendSource};
pub use keys::{
    open_key_store, open_key_store_with, CachedKeyStore, KeyStore, MemoryKeyStore, SqlKeyStore,
};
pub use model::{
    Budget, BudgetMode, IssuedKey, KeyInfo, KeySpec, Limits, ModelPattern, Period, Principal,
    RateKind, Scope, Team, TeamSpec,
};
pub use period::{bucket, rfc3339, Bucket, Clock};
pub use report::{budget_report, render_budget_report, BudgetUse, Format};
pub use secret::{looks_like_secret, SECRET_PREFIX};
pub use state::{MemoryState, OnRedisError, RedisState, RedisStateConfig, StateStats, StateStore};

#[cfg(test)]
mod testing;
