//! UTC budget periods and the injectable clock.

use crate::model::Period;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration as TimeDuration, Month, OffsetDateTime, Time};

/// The current period of a budget: its bucket label and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// A stable label for state keys: `2026-03-14`, `2026-03-09` (the week's Monday) or `2026-03`.
    pub label: String,
    /// Period start, Unix milliseconds.
    pub start_ms: i64,
    /// Period end (exclusive) = when the budget resets, Unix milliseconds.
    pub end_ms: i64,
}

/// The bucket of `period` containing `now_ms`, in UTC.
pub fn bucket(period: Period, now_ms: i64) -> Bucket {
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let today = now.date();
    let (start, end, label) = match period {
        Period::Day => {
            let next = today.next_day().unwrap_or(today);
            (today, next, today.to_string())
        }
        Period::Week => {
            let monday =
                today - TimeDuration::days(i64::from(today.weekday().number_days_from_monday()));
            (monday, monday + TimeDuration::days(7), monday.to_string())
        }
        Period::Month => {
            let first = Date::from_calendar_date(today.year(), today.month(), 1).unwrap_or(today);
            let (y, m) = match today.month() {
                Month::December => (today.year() + 1, Month::January),
                m => (today.year(), m.next()),
            };
            let next = Date::from_calendar_date(y, m, 1).unwrap_or(first);
            (
                first,
                next,
                format!("{:04}-{:02}", today.year(), u8::from(today.month())),
            )
        }
    };
    Bucket {
        label,
        start_ms: midnight_ms(start),
        end_ms: midnight_ms(end),
    }
}

fn midnight_ms(d: Date) -> i64 {
    let t = d.with_time(Time::MIDNIGHT).assume_utc();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 text for Unix milliseconds (`2026-03-15T00:00:00Z`).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The time source for rate windows and budget periods.
///
/// Production uses the system clock (and Redis uses its own `TIME`); tests use a manual clock
/// so a minute of traffic runs in milliseconds.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// Wall-clock time; the Redis backend then reads the Redis server's `TIME`.
    #[default]
    System,
    /// A manually advanced clock (tests, simulations); Redis scripts get `now` from it.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start_ms`.
    pub fn manual(start_ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start_ms)))
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// The time to hand to Redis scripts: `None` means "use Redis `TIME`".
    pub fn override_ms(&self) -> Option<i64> {
        match self {
            Clock::System => None,
            Clock::Manual(t) => Some(t.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance_ms(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set_ms(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.store(ms, Ordering::SeqCst);
        }
    }
}

/// Wall-clock Unix milliseconds.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-03-14T15:30:00Z, a Saturday.
    const NOW: i64 = 1_773_502_200_000;

    #[test]
    fn buckets_are_utc_calendar_periods() {
        let d = bucket(Period::Day, NOW);
        assert_eq!(d.label, "2026-03-14");
        assert_eq!(rfc3339(d.end_ms), "2026-03-15T00:00:00Z");
        let w = bucket(Period::Week, NOW);
        assert_eq!(w.label, "2026-03-09");
        assert_eq!(rfc3339(w.end_ms), "2026-03-16T00:00:00Z");
        let m = bucket(Period::Month, NOW);
        assert_eq!(m.label, "2026-03");
        assert_eq!(rfc3339(m.start_ms), "2026-03-01T00:00:00Z");
        assert_eq!(rfc3339(m.end_ms), "2026-04-01T00:00:00Z");
        let dec = bucket(Period::Month, 1_798_502_400_000); // 2026-12-29
        assert_eq!(rfc3339(dec.end_ms), "2027-01-01T00:00:00Z");
    }
}
