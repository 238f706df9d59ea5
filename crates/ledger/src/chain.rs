//! The audit chain: each record's hash covers its content and the previous record's hash, so
//! changing, removing or slipping in a record anywhere breaks the chain from that point on.
//!
//! # Canonical form (version 1)
//!
//! `hash = hex(SHA-256(prev_hash ‖ "\n" ‖ canonical_json))`, where `prev_hash` is the previous
//! record's hash as 64 lowercase hex characters (64 `0`s for the first record) and
//! `canonical_json` is compact JSON (no whitespace, serde_json string escaping) of an object
//! with exactly these keys in this order:
//!
//! `v` (always `1`), `request_id`, `time_ms`, `key_id`, `team`, `model`, `deployment`,
//! `provider`, `cloud`, `region`, `jurisdiction`, `data_class`, `attempts` (array of objects
//! with `deployment`, `provider`, `status`, `error_kind`, `latency_ms`), `usage` (object with
//! `input`, `output`, `cached_input`, `cache_write`, `reasoning`), `cost_nanos` (integer
//! nano-USD), `price_known`, `latency_ms`, `ttft_ms`, `outcome`, `stream`, `prompt_sha256`,
//! `response_sha256` (hex SHA-256 of the body, when stored).
//!
//! Absent optional values are `null`; enums are their config names (`aws`, `eu`,
//! `upstream_timeout`); all numbers are integers, so no float formatting is involved. The
//! sequence number is not hashed: order is carried by `prev_hash`, and the sequence only lets
//! a verifier name the gap a deleted record leaves.
//!
//! What the chain cannot show on its own: someone with write access who appends forged records
//! at the tail *and* moves the chain head. Anchor the head elsewhere (the summary line of
//! `switchyard audit export` carries it) to close that gap.

use crate::record::{LedgerRecord, StoredRecord};
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchyard_types::TokenUsage;

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The version of the canonical form, written into it as `v`.
pub const CANONICAL_VERSION: u32 = 1;

#[derive(Serialize)]
struct CanonicalV1<'a> {
    v: u32,
    request_id: &'a str,
    time_ms: i64,
    key_id: Option<&'a str>,
    team: Option<&'a str>,
    model: &'a str,
    deployment: Option<&'a str>,
    provider: Option<&'a str>,
    cloud: Option<&'static str>,
    region: Option<&'a str>,
    jurisdiction: Option<&'static str>,
    data_class: Option<&'a str>,
    attempts: Vec<CanonicalAttempt<'a>>,
    usage: CanonicalUsage,
    cost_nanos: i64,
    price_known: bool,
    latency_ms: u64,
    ttft_ms: Option<u64>,
    outcome: &'static str,
    stream: bool,
    prompt_sha256: Option<String>,
    response_sha256: Option<String>,
}

// Own structs (not the public types' derives) so that reordering a public type's fields can
// never change the hashes of records already written.
#[derive(Serialize)]
struct CanonicalAttempt<'a> {
    deployment: &'a str,
    provider: &'a str,
    status: Option<u16>,
    error_kind: Option<&'static str>,
    latency_ms: u64,
    // Absent unless set, so records written before these existed keep their hashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<CanonicalUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_nanos: Option<i64>,
    #[serde(skip_serializing_if = "is_zero")]
    malformed_events: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct CanonicalUsage {
    input: u64,
    output: u64,
    cached_input: u64,
    cache_write: u64,
    reasoning: u64,
}

impl CanonicalUsage {
    fn of(u: &TokenUsage) -> CanonicalUsage {
        CanonicalUsage {
            input: u.input,
            output: u.output,
            cached_input: u.cached_input,
            cache_write: u.cache_write,
            reasoning: u.reasoning,
        }
    }
}

/// The canonical JSON bytes of a record (see the module docs).
pub fn canonical_json(r: &LedgerRecord) -> Vec<u8> {
    let c = CanonicalV1 {
        v: CANONICAL_VERSION,
        request_id: &r.request_id,
        time_ms: r.time_ms,
        key_id: r.key_id.as_deref(),
        team: r.team.as_deref(),
        model: &r.model,
        deployment: r.deployment.as_deref(),
        provider: r.provider.as_deref(),
        cloud: r.cloud.map(|c| c.as_str()),
        region: r.region.as_deref(),
        jurisdiction: r.jurisdiction.map(|j| j.as_str()),
        data_class: r.data_class.as_deref(),
        attempts: r
            .attempts
            .iter()
            .map(|a| CanonicalAttempt {
                deployment: &a.deployment,
                provider: &a.provider,
                status: a.status,
                error_kind: a.error_kind.map(|k| k.as_str()),
                latency_ms: a.latency_ms,
                usage: a.usage.as_ref().map(CanonicalUsage::of),
                cost_nanos: a.cost_nanos,
                malformed_events: a.malformed_events,
            })
            .collect(),
        usage: CanonicalUsage::of(&r.usage),
        cost_nanos: r.cost.nanos(),
        price_known: r.price_known,
        latency_ms: r.latency_ms,
        ttft_ms: r.ttft_ms,
        outcome: r.outcome.as_str(),
        stream: r.stream,
        prompt_sha256: r.prompt_body.as_deref().map(sha256_hex),
        response_sha256: r.response_body.as_deref().map(sha256_hex),
    };
    // Serialising these structs cannot fail: they hold only strings, integers, booleans and
    // options, with no maps and no fallible Serialize impls.
    serde_json::to_vec(&c).unwrap_or_default()
}

/// Hex SHA-256 of a string.
fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The chain hash of `record` when it follows a record whose hash is `prev_hash`.
pub fn record_hash(prev_hash: &str, record: &LedgerRecord) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical_json(record));
    hex::encode(h.finalize())
}

/// The chain head as the store recorded it with the last append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    /// The last appended sequence number (0 when empty).
    pub seq: i64,
    /// The last appended hash ([`GENESIS_HASH`] when empty).
    pub hash: String,
    /// The highest sequence number present in the records table, read in the same snapshot:
    /// more than `seq` means rows were added behind the writer's back.
    pub max_seq: i64,
}

/// What kind of damage a verifier found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record's content no longer matches its hash.
    Modified,
    /// The record with this sequence number is missing.
    Deleted,
    /// The record with this sequence number was not written by the ledger: the chain links
    /// around it.
    Inserted,
    /// The record does not link to the one before it: that one was rewritten with a
    /// recomputed hash, or records before it were removed and the rest renumbered.
    BrokenLink,
}

/// The first damaged place in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The sequence number where the damage is.
    pub seq: i64,
    /// What kind of damage.
    pub kind: ProblemKind,
    /// A sentence for humans.
    pub detail: String,
}

/// The result of walking a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when no problem was found.
    pub ok: bool,
    /// Records checked before stopping.
    pub checked: u64,
    /// The head the walk was checked against.
    pub head: Option<ChainHead>,
    /// The first problem, if any.
    pub first_problem: Option<Problem>,
}

/// Checks records one by one in sequence order; stops at the first problem.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    last_hash: String,
    before_last_hash: String,
    checked: u64,
    problem: Option<Problem>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting the chain to start at sequence 1 from [`GENESIS_HASH`].
    pub fn new() -> Self {
        Self {
            expected_seq: 1,
            last_hash: GENESIS_HASH.to_owned(),
            before_last_hash: String::new(),
            checked: 0,
            problem: None,
        }
    }

    /// Checks the next record. Returns false once a problem has been found (further records
    /// are ignored: after the first break every later link is suspect anyway).
    pub fn push(&mut self, r: &StoredRecord) -> bool {
        if self.problem.is_some() {
            return false;
        }
        if let Some(p) = self.check(r) {
            self.problem = Some(p);
            return false;
        }
        self.before_last_hash = std::mem::replace(&mut self.last_hash, r.hash.clone());
        self.expected_seq = r.seq + 1;
        self.checked += 1;
        true
    }

    fn check(&self, r: &StoredRecord) -> Option<Problem> {
        let expected = self.expected_seq;
        if r.seq > expected {
            return Some(Problem {
                seq: expected,
                kind: ProblemKind::Deleted,
                detail: if r.seq - 1 == expected {
                    format!("record {expected} is missing")
                } else {
                    format!("records {expected}..={} are missing", r.seq - 1)
                },
            });
        }
        if r.seq < expected {
            return Some(Problem {
                seq: r.seq,
                kind: ProblemKind::Inserted,
                detail: format!("a second record with sequence number {}", r.seq),
            });
        }
        if record_hash(&r.prev_hash, &r.record) != r.hash {
            return Some(Problem {
                seq: r.seq,
                kind: ProblemKind::Modified,
                detail: format!(
                    "record {} (request {}) does not match its hash",
                    r.seq, r.record.request_id
                ),
            });
        }
        if r.prev_hash != self.last_hash {
            // If this record links to the one two back, the one in between was slipped in.
            if self.checked > 0 && r.prev_hash == self.before_last_hash {
                return Some(Problem {
                    seq: r.seq - 1,
                    kind: ProblemKind::Inserted,
                    detail: format!(
                        "record {} is not part of the chain: record {} links to the one before it",
                        r.seq - 1,
                        r.seq
                    ),
                });
            }
            return Some(Problem {
                seq: r.seq,
                kind: ProblemKind::BrokenLink,
                detail: format!(
                    "record {} does not link to record {}: that record was rewritten, or records were removed and renumbered",
                    r.seq,
                    r.seq - 1
                ),
            });
        }
        None
    }

    /// Ends the walk, checking the last record against the recorded chain head.
    pub fn finish(mut self, head: Option<ChainHead>) -> VerifyReport {
        if self.problem.is_none() {
            if let Some(h) = &head {
                self.problem = self.check_head(h);
            }
        }
        VerifyReport {
            ok: self.problem.is_none(),
            checked: self.checked,
            head,
            first_problem: self.problem,
        }
    }

    fn check_head(&self, h: &ChainHead) -> Option<Problem> {
        let last = self.expected_seq - 1;
        if h.seq > last {
            return Some(Problem {
                seq: last + 1,
                kind: ProblemKind::Deleted,
                detail: format!(
                    "the chain head is record {} but the records end at {last}",
                    h.seq
                ),
            });
        }
        if h.max_seq > h.seq {
            return Some(Problem {
                seq: h.seq + 1,
                kind: ProblemKind::Inserted,
                detail: format!(
                    "records {}..{} were added past the chain head",
                    h.seq + 1,
                    h.max_seq
                ),
            });
        }
        if h.hash != self.last_hash {
            return Some(Problem {
                seq: last,
                kind: ProblemKind::Modified,
                detail: format!("record {last} does not match the chain head's hash"),
            });
        }
        None
    }
}

/// Assigns sequence numbers and hashes to `records` following `head` (the store does this
/// inside its append transaction).
pub fn link(head_seq: i64, head_hash: &str, records: &[LedgerRecord]) -> Vec<StoredRecord> {
    let mut prev = head_hash.to_owned();
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let hash = record_hash(&prev, r);
        out.push(StoredRecord {
            seq: head_seq + 1 + i as i64,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
            record: r.clone(),
        });
    }
    out
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
