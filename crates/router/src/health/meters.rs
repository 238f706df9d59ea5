//! Small per-deployment meters: token buckets for RPM/TPM, decaying latency estimates, a
//! ring of recent latencies for percentiles, and prepaid spend per period.

use std::time::Duration;
use switchyard_types::Money;
use tokio::time::Instant;

/// A token bucket refilled continuously at `capacity` per minute, full when first used.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    level: f64,
    at: Option<Instant>,
}

impl Bucket {
    /// Tokens available at `now` (read-only).
    pub(crate) fn available(&self, capacity: f64, now: Instant) -> f64 {
        match self.at {
            None => capacity,
            Some(at) => {
                let refill = capacity * now.saturating_duration_since(at).as_secs_f64() / 60.0;
                (self.level + refill).min(capacity)
            }
        }
    }

    /// Takes `n` tokens (may go negative when settling more than was estimated).
    pub(crate) fn take(&mut self, n: f64, capacity: f64, now: Instant) {
        self.level = self.available(capacity, now) - n;
        self.at = Some(now);
    }
}

/// How fast old latency samples lose weight while new ones arrive.
const EWMA_TAU: Duration = Duration::from_secs(5);
/// The least weight a new sample gets, so bursts of samples still move the estimate.
const MIN_ALPHA: f64 = 0.2;
/// How fast an estimate fades while no samples arrive, so a deployment that was slow gets
/// tried again eventually instead of being starved forever.
const STALE_DECAY: Duration = Duration::from_secs(30);

/// A decaying exponentially weighted moving average of a latency, in seconds.
#[derive(Debug, Default)]
pub(crate) struct Ewma {
    value: f64,
    at: Option<Instant>,
}

impl Ewma {
    pub(crate) fn record(&mut self, sample: Duration, now: Instant) {
        let sample = sample.as_secs_f64();
        self.value = match self.at {
            None => sample,
            Some(at) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                let alpha = (1.0 - (-dt / EWMA_TAU.as_secs_f64()).exp()).max(MIN_ALPHA);
                self.value + alpha * (sample - self.value)
            }
        };
        self.at = Some(now);
    }

    /// The estimate at `now`, faded by its age; `None` before the first sample.
    pub(crate) fn estimate(&self, now: Instant) -> Option<Duration> {
        let at = self.at?;
        let age = now.saturating_duration_since(at).as_secs_f64();
        let faded = self.value * (-age / STALE_DECAY.as_secs_f64()).exp();
        Some(Duration::from_secs_f64(faded.max(0.0)))
    }
}

/// Samples kept for latency percentiles.
const RECENT: usize = 64;

/// The most recent latencies of successful attempts, for hedging percentiles.
#[derive(Debug)]
pub(crate) struct Recent {
    samples: [Duration; RECENT],
    len: usize,
    next: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            samples: [Duration::ZERO; RECENT],
            len: 0,
            next: 0,
        }
    }
}

impl Recent {
    pub(crate) fn record(&mut self, sample: Duration) {
        self.samples[self.next] = sample;
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
    }

    /// The `p`th percentile (0-100), once there are enough samples to mean something.
    pub(crate) fn percentile(&self, p: f64) -> Option<Duration> {
        if self.len < 16 {
            return None;
        }
        let mut sorted = self.samples[..self.len].to_vec();
        sorted.sort_unstable();
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * (self.len - 1) as f64).round() as usize;
        sorted.get(rank).copied()
    }
}

/// Spend against a prepaid commitment in the current period (in memory; the ledger will
/// persist it).
#[derive(Debug, Default)]
pub(crate) struct Spend {
    start: Option<Instant>,
    spent: Money,
}

impl Spend {
    fn current(&self, period: Duration, now: Instant) -> Money {
        match self.start {
            Some(start) if now.saturating_duration_since(start) < period => self.spent,
            _ => Money::ZERO,
        }
    }

    /// What is left of `amount` at `now`.
    pub(crate) fn remaining(&self, amount: Money, period: Duration, now: Instant) -> Money {
        Money((amount.0 - self.current(period, now).0).max(0))
    }

    /// Adds `cost` to the current period, starting a new one when the old one is over.
    pub(crate) fn add(&mut self, cost: Money, period: Duration, now: Instant) {
        match self.start {
            Some(start) if now.saturating_duration_since(start) < period => {}
            Some(start) => {
                // Keep periods aligned to the first one instead of drifting to each spend.
                let elapsed = now.saturating_duration_since(start).as_nanos();
                let n = elapsed / period.as_nanos().max(1);
                let offset = period.as_nanos().saturating_mul(n);
                self.start =
                    Some(start + Duration::from_nanos(offset.min(u128::from(u64::MAX)) as u64));
                self.spent = Money::ZERO;
            }
            None => {
                self.start = Some(now);
                self.spent = Money::ZERO;
            }
        }
        self.spent += cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buckets_refill_per_minute() {
        let mut b = Bucket::default();
        let now = Instant::now();
        assert_eq!(b.available(60.0, now), 60.0);
        b.take(60.0, 60.0, now);
        assert_eq!(b.available(60.0, now), 0.0);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!((b.available(60.0, Instant::now()) - 10.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn ewma_follows_rises_and_fades_when_stale() {
        let mut e = Ewma::default();
        for _ in 0..10 {
            e.record(Duration::from_millis(10), Instant::now());
        }
        for _ in 0..10 {
            e.record(Duration::from_millis(200), Instant::now());
        }
        let est = e.estimate(Instant::now()).unwrap();
        assert!(est > Duration::from_millis(150), "{est:?}");
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(e.estimate(Instant::now()).unwrap() < Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn prepaid_spend_resets_each_period() {
        let mut s = Spend::default();
        let day = Duration::from_secs(86_400);
        s.add(Money(700), day, Instant::now());
        assert_eq!(s.remaining(Money(1_000), day, Instant::now()), Money(300));
        s.add(Money(700), day, Instant::now());
        assert_eq!(s.remaining(Money(1_000), day, Instant::now()), Money::ZERO);
        tokio::time::advance(day).await;
        assert_eq!(s.remaining(Money(1_000), day, Instant::now()), Money(1_000));
    }

    #[test]
    fn percentiles_need_enough_samples() {
        let mut r = Recent::default();
        for i in 1..=10 {
            r.record(Duration::from_millis(i));
        }
        assert_eq!(r.percentile(50.0), None);
        for i in 11..=100 {
            r.record(Duration::from_millis(i));
        }
        // The last 64 samples are 37..=100 ms.
        assert_eq!(r.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(r.percentile(0.0), Some(Duration::from_millis(37)));
    }
}
