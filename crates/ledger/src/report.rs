//! Spend reports: rows from [`crate::store::LedgerStore::spend`], rendered as a table, CSV or
//! JSON. Costs are printed exactly (nine decimals of USD), never rounded through floats.

use crate::store::{SpendBy, SpendRow};
use serde::Serialize;
use switchyard_types::Money;

/// An output format for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a total line, for terminals.
    Table,
    /// RFC 4180 CSV with a header line, for spreadsheets.
    Csv,
    /// One JSON document, for programs.
    Json,
}

/// A spend report: the rows and what they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendReport {
    /// The grouping.
    pub by: SpendBy,
    /// The window's start (RFC 3339), if bounded.
    pub since: Option<String>,
    /// The window's exclusive end (RFC 3339), if bounded.
    pub until: Option<String>,
    /// The groups, costliest first.
    pub rows: Vec<SpendRow>,
}

impl SpendReport {
    /// The sum of every row (its `group` is `TOTAL`).
    pub fn total(&self) -> SpendRow {
        let mut t = SpendRow {
            group: "TOTAL".into(),
            requests: 0,
            input_tokens: 0,
            output_tokens: 0,
            cached_tokens: 0,
            cost: Money::ZERO,
            unpriced_requests: 0,
        };
        for r in &self.rows {
            t.requests += r.requests;
            t.input_tokens += r.input_tokens;
            t.output_tokens += r.output_tokens;
            t.cached_tokens += r.cached_tokens;
            t.cost += r.cost;
            t.unpriced_requests += r.unpriced_requests;
        }
        t
    }

    /// Renders in `format`; the text ends with a newline.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.table(),
            Format::Csv => self.csv(),
            Format::Json => self.json(),
        }
    }

    fn cells(row: &SpendRow) -> [String; 7] {
        [
            row.group.clone(),
            row.requests.to_string(),
            row.input_tokens.to_string(),
            row.output_tokens.to_string(),
            row.cached_tokens.to_string(),
            row.cost.to_string(),
            row.unpriced_requests.to_string(),
        ]
    }

    fn header(&self) -> [&'static str; 7] {
        [
            self.by.as_str(),
            "requests",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cost_usd",
            "unpriced",
        ]
    }

    fn table(&self) -> String {
        let mut lines: Vec<[String; 7]> = vec![self.header().map(str::to_owned)];
        lines.extend(self.rows.iter().map(Self::cells));
        lines.push(Self::cells(&self.total()));
        let mut widths = [0usize; 7];
        for l in &lines {
            for (w, c) in widths.iter_mut().zip(l) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for l in &lines {
            let mut line = String::new();
            for (i, (c, w)) in l.iter().zip(widths).enumerate() {
                if i == 0 {
                    line.push_str(&format!("{c:<w$}"));
                } else {
                    line.push_str(&format!("  {c:>w$}"));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if self.total().unpriced_requests > 0 {
            out.push_str(
                "note: unpriced requests ran on deployments without a known price; their cost is not in cost_usd\n",
            );
        }
        out
    }

    fn csv(&self) -> String {
        let mut out = String::new();
        let mut header: Vec<String> = self.header().map(str::to_owned).to_vec();
        header[6] = "unpriced_requests".into();
        header.push("cost_nanos".into());
        out.push_str(&header.join(","));
        out.push('\n');
        for r in &self.rows {
            let mut cells: Vec<String> = Self::cells(r).to_vec();
            cells[0] = csv_field(&cells[0]);
            cells.push(r.cost.nanos().to_string());
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    fn json(&self) -> String {
        #[derive(Serialize)]
        struct JsonRow<'a> {
            group: &'a str,
            requests: u64,
            input_tokens: u64,
            output_tokens: u64,
            cached_tokens: u64,
            cost_usd: String,
            cost_nanos: i64,
            unpriced_requests: u64,
        }
        fn row(r: &SpendRow) -> JsonRow<'_> {
            JsonRow {
                group: &r.group,
                requests: r.requests,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cached_tokens: r.cached_tokens,
                cost_usd: r.cost.to_string(),
                cost_nanos: r.cost.nanos(),
                unpriced_requests: r.unpriced_requests,
            }
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            by: SpendBy,
            since: &'a Option<String>,
            until: &'a Option<String>,
            rows: Vec<JsonRow<'a>>,
            total: JsonRow<'a>,
        }
        let total = self.total();
        let doc = Doc {
            by: self.by,
            since: &self.since,
            until: &self.until,
            rows: self.rows.iter().map(row).collect(),
            total: row(&total),
        };
        // Plain structs of strings and integers always serialise.
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> SpendReport {
        let row = |g: &str, n: u64, cost: i64, unpriced: u64| SpendRow {
            group: g.into(),
            requests: n,
            input_tokens: n * 1_000,
            output_tokens: n * 200,
            cached_tokens: n * 100,
            cost: Money(cost),
            unpriced_requests: unpriced,
        };
        SpendReport {
            by: SpendBy::Cloud,
            since: Some("2026-11-01T00:00:00Z".into()),
            until: None,
            rows: vec![
                row("azure", 120, 4_512_345_678, 0),
                row("aws", 40, 1_000_000_001, 0),
                row("self_hosted", 7, 0, 7),
                row("odd, \"name\"", 1, 5, 0),
            ],
        }
    }

    #[test]
    fn table_snapshot() {
        insta::assert_snapshot!(report().render(Format::Table));
    }

    #[test]
    fn csv_snapshot() {
        insta::assert_snapshot!(report().render(Format::Csv));
    }

    #[test]
    fn json_snapshot() {
        insta::assert_snapshot!(report().render(Format::Json));
    }
}
