//! One ledger record per request, as the server hands it over and as the stores keep it.

use crate::LedgerError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use switchyard_types::{Cloud, ErrorKind, Jurisdiction, Money, TokenUsage};

/// Everything the ledger keeps about one request: who, what, where it ran, every attempt,
/// tokens, cost, timing and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRecord {
    /// The gateway's request id (as returned to the client in `x-request-id`).
    pub request_id: String,
    /// When the request arrived, in milliseconds since the Unix epoch (UTC).
    pub time_ms: i64,
    /// The virtual key's id (never the key itself); `None` when authentication failed.
    pub key_id: Option<Arc<str>>,
    /// The key's team.
    pub team: Option<Arc<str>>,
    /// The logical model the client asked for.
    pub model: Arc<str>,
    /// The deployment that served (or last tried) the request.
    pub deployment: Option<Arc<str>>,
    /// The provider of that deployment.
    pub provider: Option<Arc<str>>,
    /// The provider's cloud.
    pub cloud: Option<Cloud>,
    /// The provider's region, as configured (`eastus2`, `eu-central-1`).
    pub region: Option<Arc<str>>,
    /// The provider's jurisdiction.
    pub jurisdiction: Option<Jurisdiction>,
    /// The request's data class label.
    pub data_class: Option<Arc<str>>,
    /// Every upstream attempt, in order (failed-over ones included).
    pub attempts: Vec<AttemptRecord>,
    /// Normalised token usage (see [`crate::pricing`] for the per-protocol mapping).
    pub usage: TokenUsage,
    /// The cost in nano-USD; zero when `price_known` is false.
    #[serde(serialize_with = "money_nanos")]
    pub cost: Money,
    /// False when the serving deployment has no known price: the cost is unknown, not zero.
    pub price_known: bool,
    /// Total time from arrival to the last byte sent, in milliseconds.
    pub latency_ms: u64,
    /// Time to the first byte of the answer (streams), in milliseconds.
    pub ttft_ms: Option<u64>,
    /// How the request ended.
    pub outcome: Outcome,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The prompt body, only when the key or model opted in to storing bodies.
    pub prompt_body: Option<String>,
    /// The response body, only when the key or model opted in to storing bodies.
    pub response_body: Option<String>,
}

/// Money is kept and exported as integer nano-USD so sums are exact.
fn money_nanos<S: serde::Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(m.nanos())
}

impl LedgerRecord {
    /// A record with only the request id, time and model set; the rest empty.
    pub fn new(request_id: impl Into<String>, time_ms: i64, model: impl Into<Arc<str>>) -> Self {
        Self {
            request_id: request_id.into(),
            time_ms,
            key_id: None,
            team: None,
            model: model.into(),
            deployment: None,
            provider: None,
            cloud: None,
            region: None,
            jurisdiction: None,
            data_class: None,
            attempts: Vec::new(),
            usage: TokenUsage::default(),
            cost: Money::ZERO,
            price_known: false,
            latency_ms: 0,
            ttft_ms: None,
            outcome: Outcome::Ok,
            stream: false,
            prompt_body: None,
            response_body: None,
        }
    }
}

/// One upstream attempt inside a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The deployment tried.
    pub deployment: Arc<str>,
    /// Its provider.
    pub provider: Arc<str>,
    /// The upstream's HTTP status, when it answered at all.
    pub status: Option<u16>,
    /// Why the attempt failed; `None` for the attempt that served the request.
    pub error_kind: Option<ErrorKind>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u64,
    /// What this attempt consumed, when the answer came in parts (a stream that broke and
    /// was continued on another deployment); the record's usage is then the parts' sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// What this attempt cost at its deployment's prices, in nano-USD, with `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_nanos: Option<i64>,
    /// Unreadable events the gateway skipped in this attempt's stream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub malformed_events: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The answer was delivered in full.
    Ok,
    /// The request failed with this kind of error.
    Error(ErrorKind),
    /// The client went away before the answer was complete.
    ClientDisconnected,
}

impl Outcome {
    /// The stored name: `ok`, `client_disconnected`, or the error kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientDisconnected => "client_disconnected",
            Self::Error(kind) => kind.as_str(),
        }
    }

    /// Parses a stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Self::Ok),
            "client_disconnected" => Some(Self::ClientDisconnected),
            other => parse_name::<ErrorKind>(other).map(Self::Error),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Parses a config/metrics name (`aws`, `eu`, `upstream_timeout`) into its enum through serde,
/// so the names stay defined once, in `switchyard-types`.
pub(crate) fn parse_name<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    use serde::de::value::{Error, StrDeserializer};
    use serde::de::IntoDeserializer;
    let de: StrDeserializer<'_, Error> = s.into_deserializer();
    T::deserialize(de).ok()
}

/// A record as stored: its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The previous record's `hash` (64 zeros for the first record).
    pub prev_hash: String,
    /// SHA-256 over this record's canonical form and `prev_hash` (see [`crate::chain`]).
    pub hash: String,
    /// The record itself.
    #[serde(flatten)]
    pub record: LedgerRecord,
}

/// Converts a count to the database's signed 64-bit integer, saturating (a count past 2^63 is
/// not a real request).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Converts a stored signed integer back to a count; a negative one means a damaged row.
pub(crate) fn to_u64(seq: i64, column: &str, v: i64) -> Result<u64, LedgerError> {
    u64::try_from(v).map_err(|_| LedgerError::decode(seq, format!("{column} is negative: {v}")))
}

/// The current time in Unix milliseconds (wall clock, UTC).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for o in [
            Outcome::Ok,
            Outcome::ClientDisconnected,
            Outcome::Error(ErrorKind::UpstreamTimeout),
            Outcome::Error(ErrorKind::RateLimited),
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("nonsense"), None);
    }

    #[test]
    fn enum_names_parse_through_serde() {
        assert_eq!(parse_name::<Cloud>("aws"), Some(Cloud::Aws));
        assert_eq!(parse_name::<Cloud>("openai"), Some(Cloud::OpenAi));
        assert_eq!(parse_name::<Jurisdiction>("eu"), Some(Jurisdiction::Eu));
        assert_eq!(parse_name::<Cloud>("mars"), None);
    }
}
