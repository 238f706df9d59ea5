//! Times as the ledger keeps them (Unix milliseconds, UTC) and as people type and read them.

use crate::LedgerError;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// RFC 3339 in UTC with milliseconds (`2026-11-01T12:00:00.250Z`); the raw number if it is out
/// of the representable range.
pub fn format_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Parses `YYYY-MM-DD` (midnight UTC) or RFC 3339 into Unix milliseconds.
pub fn parse_time(s: &str) -> Result<i64, LedgerError> {
    let bad = || LedgerError::BadTime(s.to_owned());
    let t = if let Some(date) = parse_date(s) {
        date.midnight().assume_utc()
    } else {
        OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?
    };
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_rfc3339_parse_to_the_same_instant() {
        let day = parse_time("2026-11-01").unwrap();
        assert_eq!(day, parse_time("2026-11-01T00:00:00Z").unwrap());
        assert_eq!(day, parse_time("2026-11-01T01:00:00+01:00").unwrap());
        assert_eq!(format_ms(day + 250), "2026-11-01T00:00:00.25Z");
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-01").is_err());
    }
}
