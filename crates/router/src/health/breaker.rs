//! A circuit breaker per deployment: opens on N consecutive failures or on an error rate over
//! a sliding window, rejects traffic while open, lets one probe through when the open period
//! ends (half-open), and closes on that probe's success.
//!
//! The open period starts short ([`BreakerConfig::probe_initial`]) and doubles after each
//! failed probe up to [`BreakerConfig::open_for`], so a deployment that recovers gets its
//! traffic back within seconds while a dead one costs at most one probe per `open_for`.

use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// Buckets of the error-rate window; more buckets slide more smoothly.
const BUCKETS: usize = 10;

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Opens after this many failures in a row.
    pub consecutive_failures: u32,
    /// Opens when failures / requests in the window reach this ratio (0-1)…
    pub error_rate: f64,
    /// …once the window holds at least this many requests.
    pub min_requests: u32,
    /// The error-rate window.
    pub window: Duration,
    /// How long it stays open after tripping before it lets the first probe through.
    pub probe_initial: Duration,
    /// The longest it stays open: the wait doubles after each failed probe up to this.
    pub open_for: Duration,
}

impl BreakerConfig {
    /// How long it stays open after `failed_probes` probes in a row failed.
    pub fn open_period(&self, failed_probes: u32) -> Duration {
        let cap = self.open_for;
        // 2^20 × any sensible initial wait is far past any cap; stop doubling there.
        let growth = 1u32 << failed_probes.min(20);
        self.probe_initial
            .checked_mul(growth)
            .map_or(cap, |d| d.min(cap))
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            error_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(30),
            probe_initial: Duration::from_secs(1),
            open_for: Duration::from_secs(10),
        }
    }
}

/// Why a breaker opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripReason {
    /// This many failures in a row.
    ConsecutiveFailures(u32),
    /// This many failures among this many requests in the window.
    ErrorRate {
        /// Failures in the window.
        failures: u32,
        /// Requests in the window.
        requests: u32,
    },
    /// The half-open probe failed.
    ProbeFailed,
}

impl fmt::Display for TripReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TripReason::ConsecutiveFailures(n) => write!(f, "{n} consecutive failures"),
            TripReason::ErrorRate { failures, requests } => {
                write!(f, "{failures} of the last {requests} requests failed")
            }
            TripReason::ProbeFailed => f.write_str("the half-open probe failed"),
        }
    }
}

/// A breaker's state, for planning and `route explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerStatus {
    /// Traffic flows.
    Closed,
    /// No traffic until `until`.
    Open {
        /// Why it opened.
        reason: TripReason,
        /// When it lets a probe through.
        until: Instant,
    },
    /// One probe may go through (or is in flight).
    HalfOpen {
        /// Why it had opened.
        reason: TripReason,
        /// Whether the probe is already out.
        probe_in_flight: bool,
    },
}

#[derive(Debug)]
pub(crate) struct Breaker {
    status: BreakerStatus,
    /// Probes that failed since it last closed: sets the next open period.
    pub(crate) failed_probes: u32,
    consecutive: u32,
    buckets: [(u32, u32); BUCKETS],
    head: usize,
    head_start: Option<Instant>,
    pub(crate) trips: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            status: BreakerStatus::Closed,
            failed_probes: 0,
            consecutive: 0,
            buckets: [(0, 0); BUCKETS],
            head: 0,
            head_start: None,
            trips: 0,
        }
    }
}

impl Breaker {
    /// The status at `now`: an open breaker whose time is up reads as half-open.
    pub(crate) fn status(&self, now: Instant) -> BreakerStatus {
        match self.status {
            BreakerStatus::Open { reason, until } if now >= until => BreakerStatus::HalfOpen {
                reason,
                probe_in_flight: false,
            },
            s => s,
        }
    }

    /// Admits one attempt: `Ok(true)` for the half-open probe, `Ok(false)` for normal traffic.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<bool, TripReason> {
        self.status = self.status(now);
        match self.status {
            BreakerStatus::Closed => Ok(false),
            BreakerStatus::Open { reason, .. }
            | BreakerStatus::HalfOpen {
                reason,
                probe_in_flight: true,
            } => Err(reason),
            BreakerStatus::HalfOpen { reason, .. } => {
                self.status = BreakerStatus::HalfOpen {
                    reason,
                    probe_in_flight: true,
                };
                Ok(true)
            }
        }
    }

    /// A probe ended without an outcome (cancelled): let the next one through.
    pub(crate) fn release_probe(&mut self) {
        if let BreakerStatus::HalfOpen { reason, .. } = self.status {
            self.status = BreakerStatus::HalfOpen {
                reason,
                probe_in_flight: false,
            };
        }
    }

    pub(crate) fn success(&mut self, now: Instant, cfg: &BreakerConfig) {
        self.consecutive = 0;
        match self.status {
            BreakerStatus::HalfOpen { .. } | BreakerStatus::Open { .. } => {
                // Any success (the probe, or an attempt admitted before the trip) closes it.
                self.status = BreakerStatus::Closed;
                self.failed_probes = 0;
                self.clear_window();
            }
            BreakerStatus::Closed => self.bucket(now, cfg).0 += 1,
        }
    }

    pub(crate) fn failure(&mut self, now: Instant, cfg: &BreakerConfig) {
        match self.status {
            BreakerStatus::HalfOpen { .. } => {
                self.failed_probes = self.failed_probes.saturating_add(1);
                self.trip(now, cfg, TripReason::ProbeFailed);
                return;
            }
            // Attempts admitted before the trip may still fail; the breaker is already open.
            BreakerStatus::Open { .. } => return,
            BreakerStatus::Closed => {}
        }
        self.consecutive = self.consecutive.saturating_add(1);
        self.bucket(now, cfg).1 += 1;
        let (ok, failed) = self
            .buckets
            .iter()
            .fold((0u32, 0u32), |(o, f), (bo, bf)| (o + bo, f + bf));
        let requests = ok + failed;
        if cfg.consecutive_failures > 0 && self.consecutive >= cfg.consecutive_failures {
            self.trip(now, cfg, TripReason::ConsecutiveFailures(self.consecutive));
        } else if requests >= cfg.min_requests.max(1)
            && f64::from(failed) >= cfg.error_rate * f64::from(requests)
        {
            self.trip(
                now,
                cfg,
                TripReason::ErrorRate {
                    failures: failed,
                    requests,
                },
            );
        }
    }

    fn trip(&mut self, now: Instant, cfg: &BreakerConfig, reason: TripReason) {
        self.trips += 1;
        self.status = BreakerStatus::Open {
            reason,
            until: now + cfg.open_period(self.failed_probes),
        };
        self.consecutive = 0;
        self.clear_window();
    }

    fn clear_window(&mut self) {
        self.buckets = [(0, 0); BUCKETS];
        self.head_start = None;
    }

    /// The current bucket, after sliding the window to `now`.
    fn bucket(&mut self, now: Instant, cfg: &BreakerConfig) -> &mut (u32, u32) {
        let width = (cfg.window / BUCKETS as u32).max(Duration::from_millis(1));
        match self.head_start {
            None => {
                self.head_start = Some(now);
            }
            Some(start) => {
                let steps = (now.saturating_duration_since(start).as_nanos() / width.as_nanos())
                    .min(u128::from(u32::MAX)) as u32;
                if steps as usize >= BUCKETS {
                    self.buckets = [(0, 0); BUCKETS];
                } else {
                    for i in 1..=steps as usize {
                        self.buckets[(self.head + i) % BUCKETS] = (0, 0);
                    }
                }
                self.head = (self.head + steps as usize) % BUCKETS;
                self.head_start = Some(start + width * steps);
            }
        }
        &mut self.buckets[self.head]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            error_rate: 0.5,
            min_requests: 10,
            window: Duration::from_secs(10),
            probe_initial: Duration::from_secs(5),
            open_for: Duration::from_secs(40),
        }
    }

    /// Trips `b` with three failures in a row.
    fn trip(b: &mut Breaker, c: &BreakerConfig) {
        for _ in 0..3 {
            assert_eq!(b.admit(Instant::now()), Ok(false));
            b.failure(Instant::now(), c);
        }
    }

    /// Asserts `b` stays open for exactly `wait` from now, then admits one probe.
    async fn open_for_exactly(b: &mut Breaker, wait: Duration) {
        tokio::time::advance(wait - Duration::from_millis(1)).await;
        assert!(
            b.admit(Instant::now()).is_err(),
            "still open before {wait:?}"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.admit(Instant::now()), Ok(true), "a probe after {wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_consecutive_failures_then_probes_then_closes() {
        let mut b = Breaker::default();
        let c = cfg();
        for _ in 0..3 {
            assert_eq!(b.admit(Instant::now()), Ok(false));
            b.failure(Instant::now(), &c);
        }
        assert_eq!(
            b.admit(Instant::now()),
            Err(TripReason::ConsecutiveFailures(3))
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.admit(Instant::now()), Ok(true), "one probe");
        assert!(b.admit(Instant::now()).is_err(), "only one probe at a time");
        b.failure(Instant::now(), &c);
        assert_eq!(b.admit(Instant::now()), Err(TripReason::ProbeFailed));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit(Instant::now()), Ok(true));
        b.success(Instant::now(), &c);
        assert_eq!(b.status(Instant::now()), BreakerStatus::Closed);
        assert_eq!(b.trips, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_error_rate_over_the_window_only() {
        let mut b = Breaker::default();
        let c = cfg();
        // Alternating failures never reach 3 in a row, but reach 50% of 10 requests.
        for i in 0..10 {
            b.admit(Instant::now()).unwrap();
            if i % 2 == 1 {
                b.failure(Instant::now(), &c);
            } else {
                b.success(Instant::now(), &c);
            }
        }
        assert_eq!(
            b.admit(Instant::now()),
            Err(TripReason::ErrorRate {
                failures: 5,
                requests: 10
            })
        );
        // Old failures slide out of the window.
        let mut b = Breaker::default();
        for _ in 0..2 {
            b.failure(Instant::now(), &c);
            b.success(Instant::now(), &c);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..6 {
            b.success(Instant::now(), &c);
            b.failure(Instant::now(), &c);
            b.success(Instant::now(), &c);
        }
        assert_eq!(b.status(Instant::now()), BreakerStatus::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_lets_the_next_one_through() {
        let mut b = Breaker::default();
        let c = cfg();
        for _ in 0..3 {
            b.failure(Instant::now(), &c);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.admit(Instant::now()), Ok(true));
        b.release_probe();
        assert_eq!(b.admit(Instant::now()), Ok(true));
    }

    #[test]
    fn the_open_period_doubles_per_failed_probe_up_to_open_for() {
        let c = cfg();
        let secs: Vec<u64> = (0..6).map(|n| c.open_period(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 40, 40]);
        assert_eq!(c.open_period(u32::MAX), c.open_for, "no overflow");
        let short = BreakerConfig {
            open_for: Duration::from_millis(50),
            ..c
        };
        assert_eq!(short.open_period(0), Duration::from_millis(50), "capped");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probes_grow_the_wait_and_a_successful_probe_resets_it() {
        let mut b = Breaker::default();
        let c = cfg();
        trip(&mut b, &c);
        open_for_exactly(&mut b, Duration::from_secs(5)).await;
        for (failed, wait) in [(1, 10), (2, 20), (3, 40), (4, 40)] {
            b.failure(Instant::now(), &c);
            assert_eq!(b.failed_probes, failed);
            match b.status(Instant::now()) {
                BreakerStatus::Open { reason, until } => {
                    assert_eq!(reason, TripReason::ProbeFailed);
                    assert_eq!(until - Instant::now(), Duration::from_secs(wait));
                }
                other => panic!("not open after a failed probe: {other:?}"),
            }
            open_for_exactly(&mut b, Duration::from_secs(wait)).await;
        }
        b.success(Instant::now(), &c);
        assert_eq!(b.status(Instant::now()), BreakerStatus::Closed);
        assert_eq!(b.failed_probes, 0, "a successful probe resets the backoff");
        // The next trip starts short again.
        trip(&mut b, &c);
        open_for_exactly(&mut b, Duration::from_secs(5)).await;
        assert_eq!(
            b.trips, 6,
            "the first trip, four reopenings, the second trip"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_does_not_grow_the_wait() {
        let mut b = Breaker::default();
        let c = cfg();
        trip(&mut b, &c);
        open_for_exactly(&mut b, Duration::from_secs(5)).await;
        b.release_probe();
        assert_eq!(b.failed_probes, 0);
        assert_eq!(b.admit(Instant::now()), Ok(true));
        b.failure(Instant::now(), &c);
        open_for_exactly(&mut b, Duration::from_secs(10)).await;
    }
}
