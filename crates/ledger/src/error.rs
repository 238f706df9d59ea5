//! The ledger's one error type.

/// Everything that can go wrong in the ledger: storage, decoding stored rows, bad arguments.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database refused or failed a statement, or could not be reached.
    #[error("ledger database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row could not be turned back into a record (a column holds an unknown value).
    #[error("ledger row {seq}: {message}")]
    Decode {
        /// The row's sequence number (0 when unknown).
        seq: i64,
        /// What was wrong.
        message: String,
    },
    /// A database URL that is neither `sqlite:` nor `postgres:`.
    #[error("unsupported ledger URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A time argument that is neither a date (`2026-11-01`) nor RFC 3339.
    #[error("bad time {0:?}: use YYYY-MM-DD or RFC 3339 (2026-11-01T12:00:00Z)")]
    BadTime(String),
    /// A report argument that does not parse or names nothing (`--move`, `--to`, `--since`).
    #[error("{0}")]
    BadArgument(String),
    /// The shipped price table or a price file did not parse.
    #[error("price table: {0}")]
    Prices(String),
    /// Reading or writing a file or stream.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding JSON for export or rendering.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// `audit verify` found damage (the report has the details).
    #[error("the ledger chain is damaged at record {seq} ({kind:?})")]
    ChainDamaged {
        /// Where.
        seq: i64,
        /// What kind of damage.
        kind: crate::chain::ProblemKind,
    },
}

impl LedgerError {
    /// A decode error for row `seq`.
    pub(crate) fn decode(seq: i64, message: impl Into<String>) -> Self {
        Self::Decode {
            seq,
            message: message.into(),
        }
    }
}
