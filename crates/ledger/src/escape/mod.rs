//! The escape hatch, measured from the ledger: how concentrated the traffic is on clouds,
//! providers and regions ([`concentration`]), and what the recorded token mix would cost
//! elsewhere ([`whatif`]). The database aggregates; these modules only combine the few
//! grouped rows it returns with the live config's catalog ([`Footprint`]).

pub mod concentration;
pub mod focus;
pub mod slo;
pub mod whatif;

use crate::store::TimeRange;
use crate::time::{format_ms, parse_time};
use crate::LedgerError;
use serde::{Deserialize, Serialize};
use switchyard_types::{Cloud, Jurisdiction, Money, Prices};

/// Output of the escape-hatch views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ViewFormat {
    /// Aligned columns, for terminals.
    Table,
    /// One JSON document, for programs.
    Json,
}

/// One deployment of a model as the live config places and prices it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The deployment's name.
    pub deployment: String,
    /// Its provider's name.
    pub provider: String,
    /// The provider's cloud.
    pub cloud: Cloud,
    /// The provider's region.
    pub region: String,
    /// The provider's jurisdiction.
    pub jurisdiction: Jurisdiction,
    /// Its prices; `None` when the config has no known price for it.
    pub prices: Option<Prices>,
    /// A prepaid commitment: the amount paid per period and the period's length in ms.
    pub prepaid: Option<Prepaid>,
}

/// Money paid in advance per period, whether used or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepaid {
    /// The amount per period.
    pub amount: Money,
    /// The period's length in milliseconds.
    pub period_ms: i64,
}

/// Every model of the live config with its deployments (what the server's catalog says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Models by name, each with its own deployments (fallback models not included).
    pub models: Vec<(String, Vec<Place>)>,
    /// Each model's fallback models, tried when all its own deployments fail.
    pub fallbacks: Vec<(String, Vec<String>)>,
}

impl Footprint {
    /// The deployments of `model`, if the config has it.
    pub fn places(&self, model: &str) -> Option<&[Place]> {
        self.models
            .iter()
            .find(|(m, _)| m == model)
            .map(|(_, p)| p.as_slice())
    }

    /// Every deployment `model` can reach: its own, then its fallback models' (transitively).
    pub fn reachable(&self, model: &str) -> Vec<&Place> {
        let mut seen = std::collections::BTreeSet::new();
        let mut queue = vec![model];
        let mut out = Vec::new();
        while let Some(m) = queue.pop() {
            if !seen.insert(m) {
                continue;
            }
            out.extend(self.places(m).unwrap_or_default());
            if let Some((_, f)) = self.fallbacks.iter().find(|(name, _)| name == m) {
                queue.extend(f.iter().map(String::as_str));
            }
        }
        out
    }

    /// The deployment named `name`, under whichever model lists it.
    pub fn deployment(&self, name: &str) -> Option<&Place> {
        self.models
            .iter()
            .flat_map(|(_, p)| p)
            .find(|p| p.deployment == name)
    }
}

/// The window of `--since` / `--until`: each a relative age (`7d`, `12h`, `30m`, counted
/// back from `now_ms`), a date (`2026-11-01`, UTC) or RFC 3339; open when absent.
pub fn window(
    since: Option<&str>,
    until: Option<&str>,
    now_ms: i64,
) -> Result<TimeRange, LedgerError> {
    let at = |s: &str| match relative_ms(s) {
        Some(age) => Ok(now_ms.saturating_sub(age)),
        None => parse_time(s).map_err(|_| {
            LedgerError::BadArgument(format!(
                "bad time {s:?}: use an age (7d, 12h, 30m), YYYY-MM-DD or RFC 3339"
            ))
        }),
    };
    Ok(TimeRange {
        since_ms: since.map(at).transpose()?.unwrap_or(i64::MIN),
        until_ms: until.map(at).transpose()?.unwrap_or(i64::MAX),
    })
}

/// `7d` / `12h` / `30m` / `45s` in milliseconds.
fn relative_ms(s: &str) -> Option<i64> {
    // The unit is the last character, which need not be one byte in client input.
    let (unit_at, _) = s.char_indices().last()?;
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0)?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => return None,
    };
    n.checked_mul(ms)
}

/// A window's bounds as RFC 3339 (`None` when open), for report headers.
pub fn bounds(range: TimeRange) -> (Option<String>, Option<String>) {
    let bound = |ms: i64, open: i64| (ms != open).then(|| format_ms(ms));
    (
        bound(range.since_ms, i64::MIN),
        bound(range.until_ms, i64::MAX),
    )
}

/// `a - b` in nano-USD, saturating.
pub(crate) fn minus(a: Money, b: Money) -> Money {
    Money(a.nanos().saturating_sub(b.nanos()))
}

/// A fraction `part / whole` (0 when `whole` is 0).
pub(crate) fn share(part: i128, whole: i128) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A fraction as a percentage with one decimal, for tables.
pub(crate) fn percent(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// Aligned columns: the first left-aligned, the others right-aligned; trailing blanks trimmed.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let head: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for l in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, (c, w)) in l.iter().zip(&widths).enumerate() {
            if i == 0 {
                line.push_str(&format!("{c:<w$}"));
            } else {
                line.push_str(&format!("  {c:>w$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Pretty JSON with a final newline.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<String, LedgerError> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_accept_ages_dates_and_rfc3339() {
        let now = parse_time("2026-11-08T00:00:00Z").unwrap();
        let w = window(Some("7d"), None, now).unwrap();
        assert_eq!(w.since_ms, parse_time("2026-11-01").unwrap());
        assert_eq!(w.until_ms, i64::MAX);
        let w = window(Some("2026-11-01"), Some("90m"), now).unwrap();
        assert_eq!(w.until_ms, now - 90 * 60_000);
        assert_eq!(
            window(Some("12h"), None, now).unwrap().since_ms,
            now - 43_200_000
        );
        // Client input from the admin API: multi-byte and control characters are errors too.
        for bad in [
            "7w",
            "d",
            "-1d",
            "yesterday",
            "",
            "7ä",
            "v\u{a5}\u{10}\u{9c}\u{f1}",
            "\u{16}o",
        ] {
            assert!(window(Some(bad), None, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["name", "n"],
            &[
                vec!["a".into(), "100".into()],
                vec!["long".into(), "1".into()],
            ],
        );
        assert_eq!(t, "name    n\na     100\nlong    1\n");
    }
}
