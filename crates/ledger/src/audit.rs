//! Audit operations over a store: walk and verify the chain, export a signed-off range.
//!
//! # Export format
//!
//! JSON lines. Every line but the last is a record: `{"type":"record","time":RFC3339,` then the
//! stored record's fields (`seq`, `prev_hash`, `hash`, the record with `cost` in integer
//! nano-USD)`}`. The last line is the summary:
//!
//! ```json
//! {"type":"summary","count":N,"since":..,"until":..,"first_seq":..,"last_seq":..,
//!  "first_hash":..,"last_hash":..,"chain_head":{"seq":..,"hash":..,"max_seq":..},
//!  "exported_at":RFC3339,"digest_alg":"sha256"|"hmac-sha256","digest":HEX}
//! ```
//!
//! `digest` is over the exact bytes of every line before the summary, newlines included:
//! HMAC-SHA-256 with the key in `SWITCHYARD_AUDIT_HMAC_KEY` when it is set (so only holders of
//! the key can produce a valid export), plain SHA-256 otherwise (which shows the file is
//! complete and unedited, but anyone can recompute it).

use crate::chain::{ChainHead, ChainVerifier, VerifyReport};
use crate::record::StoredRecord;
use crate::store::{LedgerStore, TimeRange};
use crate::LedgerError;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;

/// How many records a walk or export reads per query.
const PAGE: u32 = 1_000;

/// The environment variable holding the export HMAC key.
pub const HMAC_KEY_ENV: &str = "SWITCHYARD_AUDIT_HMAC_KEY";

/// Walks the whole chain up to the head read at the start (records appended meanwhile are
/// left for the next run) and reports the first problem.
pub async fn verify(store: &dyn LedgerStore) -> Result<VerifyReport, LedgerError> {
    let head = store.head().await?;
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    'pages: loop {
        let page = store.records(after, head.seq, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if !verifier.push(r) {
                break 'pages;
            }
        }
    }
    Ok(verifier.finish(Some(head)))
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Always `summary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Records written.
    pub count: u64,
    /// The range's start (RFC 3339), if bounded.
    pub since: Option<String>,
    /// The range's end (RFC 3339, exclusive), if bounded.
    pub until: Option<String>,
    /// The first record's sequence number.
    pub first_seq: Option<i64>,
    /// The last record's sequence number.
    pub last_seq: Option<i64>,
    /// The first record's hash.
    pub first_hash: Option<String>,
    /// The last record's hash.
    pub last_hash: Option<String>,
    /// The whole chain's head when the export started: anchor it somewhere the database's
    /// administrators cannot write.
    pub chain_head: ChainHead,
    /// When the export was made (RFC 3339).
    pub exported_at: String,
    /// `sha256` or `hmac-sha256`.
    pub digest_alg: &'static str,
    /// Hex digest of every preceding line.
    pub digest: String,
}

#[derive(Serialize)]
struct ExportLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    time: String,
    #[serde(flatten)]
    record: &'a StoredRecord,
}

enum Digester {
    Plain(Sha256),
    Keyed(Hmac<Sha256>),
}

impl Digester {
    fn new(key: Option<&[u8]>) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail; fall back to the
        // plain digest rather than panic if that ever changes.
        match key.map(Hmac::<Sha256>::new_from_slice) {
            Some(Ok(mac)) => Self::Keyed(mac),
            _ => Self::Plain(Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Plain(h) => h.update(bytes),
            Self::Keyed(m) => m.update(bytes),
        }
    }

    fn finish(self) -> (&'static str, String) {
        match self {
            Self::Plain(h) => ("sha256", hex::encode(h.finalize())),
            Self::Keyed(m) => ("hmac-sha256", hex::encode(m.finalize().into_bytes())),
        }
    }
}

/// Writes the records of `range` (by sequence) as JSON lines, then the signed-off summary line.
pub async fn export(
    store: &dyn LedgerStore,
    range: TimeRange,
    hmac_key: Option<&[u8]>,
    out: &mut dyn Write,
) -> Result<ExportSummary, LedgerError> {
    let head = store.head().await?;
    let mut digest = Digester::new(hmac_key);
    let mut count = 0u64;
    let mut first: Option<(i64, String)> = None;
    let mut last: Option<(i64, String)> = None;
    let mut after = 0;
    loop {
        let page = store.records_in_time(range, after, PAGE).await?;
        let Some(tail) = page.last() else { break };
        after = tail.seq;
        for r in page.iter().filter(|r| r.seq <= head.seq) {
            let mut line = serde_json::to_vec(&ExportLine {
                kind: "record",
                time: crate::time::format_ms(r.record.time_ms),
                record: r,
            })?;
            line.push(b'\n');
            digest.update(&line);
            out.write_all(&line)?;
            count += 1;
            if first.is_none() {
                first = Some((r.seq, r.hash.clone()));
            }
            last = Some((r.seq, r.hash.clone()));
        }
    }
    let (digest_alg, digest) = digest.finish();
    let bound = |ms: i64, open: i64| (ms != open).then(|| crate::time::format_ms(ms));
    let summary = ExportSummary {
        kind: "summary",
        count,
        since: bound(range.since_ms, i64::MIN),
        until: bound(range.until_ms, i64::MAX),
        first_seq: first.as_ref().map(|f| f.0),
        last_seq: last.as_ref().map(|l| l.0),
        first_hash: first.map(|f| f.1),
        last_hash: last.map(|l| l.1),
        chain_head: head,
        exported_at: crate::time::format_ms(crate::record::now_ms()),
        digest_alg,
        digest,
    };
    serde_json::to_writer(&mut *out, &summary)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(summary)
}

/// Checks an export's summary digest against its record lines (the chain links inside the
/// export are checked by [`crate::chain::record_hash`] on the auditor's side).
pub fn check_export_digest(text: &str, hmac_key: Option<&[u8]>) -> Result<bool, LedgerError> {
    let body_end = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
    let (body, summary) = text.split_at(body_end);
    let summary: serde_json::Value = serde_json::from_str(summary.trim_end())?;
    let mut digest = Digester::new(hmac_key);
    digest.update(body.as_bytes());
    let (alg, hex) = digest.finish();
    Ok(summary["digest_alg"] == alg && summary["digest"] == hex.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::traffic;

    #[tokio::test]
    async fn export_digest_covers_every_line() {
        let store = MemoryStore::new();
        let records = traffic(5, 1_790_000_000_000, 20);
        store.append_batch(&records).await.unwrap();
        let range = TimeRange {
            since_ms: records[5].time_ms,
            until_ms: records[15].time_ms,
        };
        for key in [None, Some(&b"auditor-key"[..])] {
            let mut out = Vec::new();
            let summary = export(&store, range, key, &mut out).await.unwrap();
            assert_eq!(summary.count, 10);
            assert_eq!(summary.first_seq, Some(6));
            assert_eq!(summary.last_seq, Some(15));
            assert_eq!(summary.chain_head.seq, 20);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.lines().count(), 11);
            assert!(check_export_digest(&text, key).unwrap());
            let edited = text.replacen("\"team\":\"", "\"team\":\"x", 1);
            assert!(!check_export_digest(&edited, key).unwrap());
        }
        // The keyed digest does not verify without the key.
        let mut out = Vec::new();
        export(&store, range, Some(b"k"), &mut out).await.unwrap();
        assert!(!check_export_digest(&String::from_utf8(out).unwrap(), None).unwrap());
    }

    #[tokio::test]
    async fn verify_walks_several_pages() {
        let store = MemoryStore::new();
        for chunk in traffic(9, 0, 2_500).chunks(300) {
            store.append_batch(chunk).await.unwrap();
        }
        let report = verify(&store).await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.checked, 2_500);
    }
}
