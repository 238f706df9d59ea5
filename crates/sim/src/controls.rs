//! Fault settings and counters shared by the HTTP control API and in-process callers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// Faults to inject; every field is optional in JSON and defaults to "no fault".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay before the response headers, in milliseconds.
    pub latency_ms: u64,
    /// Extra delay before the first token of a stream, in milliseconds.
    pub ttft_ms: u64,
    /// Delay before each later token of a stream, in milliseconds.
    pub token_delay_ms: u64,
    /// Fail this many of the next calls with `fail_status` (decremented per failed call).
    pub fail_next: u32,
    /// Fail every call with `fail_status` while set.
    pub fail_always: bool,
    /// The HTTP status for injected failures and mid-stream errors (default 500).
    pub fail_status: u16,
    /// Adds `retry-after` (and the protocol's own hint) to injected failures.
    pub retry_after_s: Option<u32>,
    /// Accept requests and never answer (the handler ends when the client disconnects).
    pub hang: bool,
    /// Cut the connection (no end marker) once this many token frames were sent.
    pub drop_after_tokens: Option<u32>,
    /// Send the protocol's mid-stream error event after this many token frames, then end.
    pub error_after_tokens: Option<u32>,
    /// Send one malformed frame after this many token frames, then cut the connection.
    pub malformed_after_tokens: Option<u32>,
    /// End streams cleanly after the finish reason and usage but without the end sentinel.
    pub omit_end_marker: bool,
    /// Send one well-framed event with a non-JSON payload after this many token frames, then go on.
    pub garbage_after_tokens: Option<u32>,
    /// Stop sending after this many token frames, keeping the connection open.
    pub stall_after_tokens: Option<u32>,
    /// Replaces the provider's name in replies and call ids (`"{speaker} says: …"`).
    pub speaker: Option<String>,
    /// Refuse requests that carry an assistant prefill with the protocol's 400.
    pub reject_prefill: bool,
    /// Lifetime of access tokens the Vertex token endpoint issues from now on (default 3600).
    pub token_lifetime_s: Option<u64>,
    /// Chat requests with more input tokens than this get the protocol's context-length error.
    pub context_window: Option<u64>,
    /// Chat requests get the protocol's content-policy refusal (where it is an HTTP error).
    pub content_filter: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            ttft_ms: 0,
            token_delay_ms: 0,
            fail_next: 0,
            fail_always: false,
            fail_status: 500,
            retry_after_s: None,
            hang: false,
            drop_after_tokens: None,
            error_after_tokens: None,
            malformed_after_tokens: None,
            omit_end_marker: false,
            garbage_after_tokens: None,
            stall_after_tokens: None,
            speaker: None,
            reject_prefill: false,
            token_lifetime_s: None,
            context_window: None,
            content_filter: false,
        }
    }
}

/// The last request a simulated provider received, for tests asserting what a gateway sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LastRequest {
    /// HTTP method.
    pub method: String,
    /// Path as received (still percent-encoded).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// All request headers, names lower-cased (repeated headers joined by ", ").
    pub headers: BTreeMap<String, String>,
    /// The JSON body, when it parsed as JSON.
    pub body: Option<serde_json::Value>,
}

/// Counters for one simulated provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimStats {
    /// Protocol requests received (control API calls excluded).
    pub requests: u64,
    /// Requests that asked for a streamed answer.
    pub stream_requests: u64,
    /// Requests answered with an injected HTTP error (`fail_next` / `fail_always`).
    pub failures_injected: u64,
    /// Requests that hit the `hang` fault.
    pub hangs: u64,
    /// Streams cut by `drop_after_tokens` or `malformed_after_tokens`.
    pub streams_dropped: u64,
    /// Streams ended by an injected mid-stream error event.
    pub stream_errors_injected: u64,
    /// Well-framed garbage events injected by `garbage_after_tokens` (the stream went on).
    pub malformed_injected: u64,
    /// Streams left open without further frames by `stall_after_tokens`.
    pub streams_stalled: u64,
    /// Requests per path (without the query string).
    pub by_path: BTreeMap<String, u64>,
    /// Requests per model (from the path or the body, as the protocol puts it).
    pub by_model: BTreeMap<String, u64>,
    /// The last protocol request received.
    pub last_request: Option<LastRequest>,
    /// Chat requests refused by the `context_window` or `content_filter` fault.
    pub content_errors_injected: u64,
    /// Access tokens granted by the Vertex token endpoint (`POST /token`).
    pub token_grants: u64,
    /// Vertex requests refused for an unknown or expired sim-issued token.
    pub tokens_rejected: u64,
}

#[derive(Debug, Default)]
struct State {
    faults: Faults,
    stats: SimStats,
}

/// In-process handle on a simulated provider's faults and counters (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct SimControls {
    state: Arc<Mutex<State>>,
}

/// What the fault gate decided for one request.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The faults in force when the request arrived.
    pub faults: Faults,
    /// Whether this call must fail with `faults.fail_status`.
    pub fail: bool,
}

impl SimControls {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another request panicked mid-update; the counters are still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the current faults.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// Changes the current faults in place, atomically (a caller adding or removing one fault
    /// keeps the others, even if the control API changes them meanwhile).
    pub fn update_faults<R>(&self, change: impl FnOnce(&mut Faults) -> R) -> R {
        change(&mut self.lock().faults)
    }

    /// The faults currently in force.
    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.lock().stats.clone()
    }

    /// Zeroes the counters and forgets the last request.
    pub fn reset_stats(&self) {
        self.lock().stats = SimStats::default();
    }

    /// Counts a request and decides whether an injected failure applies to it.
    pub(crate) fn admit(&self, last: LastRequest, model: Option<&str>, stream: bool) -> Admission {
        let mut st = self.lock();
        let stats = &mut st.stats;
        stats.requests += 1;
        if stream {
            stats.stream_requests += 1;
        }
        *stats.by_path.entry(last.path.clone()).or_default() += 1;
        if let Some(model) = model {
            *stats.by_model.entry(model.to_owned()).or_default() += 1;
        }
        stats.last_request = Some(last);
        let faults = st.faults.clone();
        let fail = if faults.fail_always {
            true
        } else if st.faults.fail_next > 0 {
            st.faults.fail_next -= 1;
            true
        } else {
            false
        };
        if fail {
            st.stats.failures_injected += 1;
        }
        if faults.hang && !fail {
            st.stats.hangs += 1;
        }
        Admission { faults, fail }
    }

    /// Counts a stream cut by a drop or malformed-frame fault.
    pub(crate) fn count_dropped(&self) {
        self.lock().stats.streams_dropped += 1;
    }

    /// Counts an access token granted by the token endpoint.
    pub(crate) fn count_token_grant(&self) {
        self.lock().stats.token_grants += 1;
    }

    /// Counts a request refused for an unknown or expired token.
    pub(crate) fn count_token_rejected(&self) {
        self.lock().stats.tokens_rejected += 1;
    }

    /// Counts a request refused by a content fault.
    pub(crate) fn count_content_error(&self) {
        self.lock().stats.content_errors_injected += 1;
    }

    /// Counts a stream ended by an injected error event.
    pub(crate) fn count_stream_error(&self) {
        self.lock().stats.stream_errors_injected += 1;
    }

    /// Counts a garbage event injected into a stream that goes on.
    pub(crate) fn count_garbage(&self) {
        self.lock().stats.malformed_injected += 1;
    }

    /// Counts a stream stalled by a fault.
    pub(crate) fn count_stalled(&self) {
        self.lock().stats.streams_stalled += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_counts_down_and_is_counted() {
        let c = SimControls::default();
        c.set_faults(Faults {
            fail_next: 2,
            fail_status: 429,
            ..Faults::default()
        });
        let admit = |c: &SimControls| c.admit(LastRequest::default(), Some("m"), false).fail;
        assert!(admit(&c));
        assert!(admit(&c));
        assert!(!admit(&c));
        let s = c.stats();
        assert_eq!((s.requests, s.failures_injected), (3, 2));
        assert_eq!(s.by_model.get("m"), Some(&3));
        assert_eq!(c.faults().fail_next, 0);
    }

    #[test]
    fn faults_json_defaults() {
        let f: Faults = serde_json::from_str(r#"{"fail_next":1}"#).unwrap();
        assert_eq!(f.fail_status, 500);
        assert!(serde_json::from_str::<Faults>(r#"{"nope":1}"#).is_err());
    }
}
