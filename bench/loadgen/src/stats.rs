//! Per-worker results, merged into the JSON summary.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{Failure, Sample};

/// What one worker saw inside the measured window.
#[derive(Debug, Default)]
pub struct Tally {
    /// Successful requests.
    pub samples: Vec<Sample>,
    /// Failed requests by kind.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one failure.
    pub fn fail(&mut self, f: Failure) {
        *self.errors.entry(f.name()).or_default() += 1;
    }

    /// Adds another worker's results.
    pub fn merge(&mut self, other: Tally) {
        self.samples.extend(other.samples);
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }

    /// The summary: count, errors, rate and latency percentiles in microseconds.
    pub fn summary(&self, window: Duration) -> Value {
        let count = self.samples.len();
        let errors: u64 = self.errors.values().sum();
        let secs = window.as_secs_f64();
        let rps = if secs > 0.0 { count as f64 / secs } else { 0.0 };
        let bytes: u64 = self.samples.iter().map(|s| s.bytes).sum();
        let mean_bytes = if count > 0 { bytes / count as u64 } else { 0 };
        json!({
            "count": count,
            "errors": errors,
            "error_kinds": self.errors,
            "window_s": round3(secs),
            "rps": round3(rps),
            "response_bytes_mean": mean_bytes,
            "headers_us": percentiles(self.samples.iter().map(|s| s.headers)),
            "ttfb_us": percentiles(self.samples.iter().map(|s| s.ttfb)),
            "total_us": percentiles(self.samples.iter().map(|s| s.total)),
        })
    }
}

/// p50/p90/p99/max/mean of durations in whole microseconds (nearest-rank percentiles).
fn percentiles(ds: impl Iterator<Item = Duration>) -> Value {
    let mut us: Vec<u64> = ds
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .collect();
    if us.is_empty() {
        return Value::Null;
    }
    us.sort_unstable();
    let rank = |p: f64| {
        let i = (p * us.len() as f64).ceil() as usize;
        us[i.clamp(1, us.len()) - 1]
    };
    let mean = us.iter().sum::<u64>() / us.len() as u64;
    json!({
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": us[us.len() - 1],
        "mean": mean,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ds = (1..=100).map(Duration::from_micros);
        let p = percentiles(ds);
        assert_eq!(p["p50"], 50);
        assert_eq!(p["p90"], 90);
        assert_eq!(p["p99"], 99);
        assert_eq!(p["max"], 100);
        assert_eq!(
            percentiles(std::iter::once(Duration::from_micros(7)))["p99"],
            7
        );
        assert!(percentiles(std::iter::empty()).is_null());
    }
}
