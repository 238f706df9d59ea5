//! Budget use per team (and per key): limit, spent, reserved and reset time of each budget's
//! current period, rendered as a table, CSV or JSON.

use crate::error::GovernanceError;
use crate::keys::KeyStore;
use crate::model::{Budget, BudgetMode, Period, Scope};
use crate::period::{bucket, rfc3339};
use crate::state::{budget_key, StateStore};
use serde::Serialize;
use switchyard_types::Money;

/// One budget's use in its current period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetUse {
    /// The team (owner of the key, for key budgets).
    pub team: String,
    /// Team budget or key budget.
    pub scope: Scope,
    /// The key's name, for key budgets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key's id, for key budgets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The budget's period.
    pub period: Period,
    /// Hard or alert.
    pub mode: BudgetMode,
    /// The budget's amount (USD in JSON).
    #[serde(rename = "limit_usd")]
    pub limit: Money,
    /// Settled spend this period (USD in JSON).
    #[serde(rename = "spent_usd")]
    pub spent: Money,
    /// Reserved by requests in flight (USD in JSON).
    #[serde(rename = "reserved_usd")]
    pub reserved: Money,
    /// Reservations not yet settled or released.
    pub open_holds: u64,
    /// Reservations never settled, released when they expired, this period.
    pub expired_holds: u64,
    /// What the expired reservations had held (USD in JSON).
    #[serde(rename = "expired_usd")]
    pub expired: Money,
    /// When the period ends, RFC 3339.
    pub resets_at: String,
}

/// Every team budget, then every active key's budget, in their periods containing `now_ms`.
pub async fn budget_report(
    keys: &dyn KeyStore,
    state: &dyn StateStore,
    now_ms: i64,
) -> Result<Vec<BudgetUse>, GovernanceError> {
    let mut rows = Vec::new();
    for team in keys.list_teams().await? {
        for b in &team.budgets {
            rows.push(row(state, &team.name, Scope::Team, &team.name, None, b, now_ms).await?);
        }
    }
    for key in keys.list_keys(None).await? {
        if key.revoked_ms.is_some() {
            continue;
        }
        for b in &key.budgets {
            rows.push(
                row(
                    state,
                    &key.team,
                    Scope::Key,
                    &key.id,
                    Some(&key.name),
                    b,
                    now_ms,
                )
                .await?,
            );
        }
    }
    Ok(rows)
}

async fn row(
    state: &dyn StateStore,
    team: &str,
    scope: Scope,
    owner: &str,
    key_name: Option<&str>,
    budget: &Budget,
    now_ms: i64,
) -> Result<BudgetUse, GovernanceError> {
    let b = bucket(budget.period, now_ms);
    let tally = state
        .tally(
            &budget_key(scope, owner, budget.period, budget.mode, &b.label),
            now_ms,
        )
        .await?;
    Ok(BudgetUse {
        team: team.to_string(),
        scope,
        key: key_name.map(str::to_string),
        key_id: (scope == Scope::Key).then(|| owner.to_string()),
        period: budget.period,
        mode: budget.mode,
        limit: budget.amount,
        spent: tally.spent,
        reserved: tally.reserved,
        open_holds: tally.open_holds,
        expired_holds: tally.expired_holds,
        expired: tally.expired,
        resets_at: rfc3339(b.end_ms),
    })
}

/// Output formats for reports and listings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// A JSON array.
    Json,
}

/// Renders budget rows.
pub fn render_budget_report(rows: &[BudgetUse], format: Format) -> Result<String, GovernanceError> {
    let header = [
        "team",
        "scope",
        "key",
        "period",
        "mode",
        "limit_usd",
        "spent_usd",
        "reserved_usd",
        "holds",
        "expired_holds",
        "used_pct",
        "resets_at",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let used = if r.limit.0 > 0 {
                format!(
                    "{:.1}",
                    (r.spent.0 + r.reserved.0) as f64 * 100.0 / r.limit.0 as f64
                )
            } else {
                "-".into()
            };
            vec![
                r.team.clone(),
                r.scope.to_string(),
                r.key.clone().unwrap_or_default(),
                r.period.to_string(),
                r.mode.as_str().to_string(),
                format!("{:.2}", r.limit.as_usd()),
                format!("{:.6}", r.spent.as_usd()),
                format!("{:.6}", r.reserved.as_usd()),
                r.open_holds.to_string(),
                r.expired_holds.to_string(),
                used,
                r.resets_at.clone(),
            ]
        })
        .collect();
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(rows)?),
        Format::Csv => Ok(csv(&header, &cells)),
        Format::Table => Ok(table(&header, &cells)),
    }
}

/// CSV with RFC 4180 quoting where needed.
pub(crate) fn csv(header: &[&str], cells: &[Vec<String>]) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = header.join(",");
    out.push('\n');
    for row in cells {
        out.push_str(&row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table(header: &[&str], cells: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: Vec<&str>| {
        let mut s = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governor::{Estimate, Governor};
    use crate::keys::MemoryKeyStore;
    use crate::model::{KeySpec, TeamSpec};
    use crate::period::Clock;
    use crate::state::MemoryState;
    use std::sync::Arc;
    use switchyard_types::TokenUsage;

    #[tokio::test]
    async fn the_report_shows_spent_and_reserved_per_budget_and_period() {
        let keys = MemoryKeyStore::new();
        keys.create_team(&TeamSpec {
            name: "search".into(),
            budgets: vec![
                "day:100".parse().unwrap(),
                "month:1000:alert".parse().unwrap(),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        let mut spec = KeySpec::new("search", "ranker");
        spec.budgets = vec!["week:50".parse().unwrap()];
        let issued = keys.create_key(&spec).await.unwrap();
        let state = Arc::new(MemoryState::new());
        let now = 1_773_502_200_000; // 2026-03-14T15:30:00Z
        let gov = Governor::with_clock(state.clone(), Clock::manual(now));
        let p = keys.authenticate(&issued.secret).await.unwrap().unwrap();
        let estimate = Estimate {
            input_tokens: 10,
            max_output_tokens: 10,
            cost: Money::from_usd(2.0).unwrap(),
        };
        let settled = gov.admit(&p, "m", &estimate).await.unwrap();
        settled
            .settle(TokenUsage::default(), Money::from_usd(1.5).unwrap())
            .await
            .unwrap();
        let in_flight = gov.admit(&p, "m", &estimate).await.unwrap();

        let rows = budget_report(&keys, state.as_ref(), now).await.unwrap();
        assert_eq!(rows.len(), 3);
        let day = &rows[0];
        assert_eq!(
            (day.scope, day.period, day.mode),
            (Scope::Team, Period::Day, BudgetMode::Hard)
        );
        assert_eq!(day.spent, Money::from_usd(1.5).unwrap());
        assert_eq!(day.reserved, Money::from_usd(2.0).unwrap());
        assert_eq!((day.open_holds, day.expired_holds), (1, 0));
        assert_eq!(day.resets_at, "2026-03-15T00:00:00Z");
        assert_eq!(rows[1].period, Period::Month);
        assert_eq!(rows[1].spent, Money::from_usd(1.5).unwrap());
        let week = &rows[2];
        assert_eq!(week.key.as_deref(), Some("ranker"));
        assert_eq!(week.resets_at, "2026-03-16T00:00:00Z");
        assert_eq!(week.limit, Money::from_usd(50.0).unwrap());

        let table = render_budget_report(&rows, Format::Table).unwrap();
        assert!(table.starts_with("team "), "{table}");
        assert!(table.contains("search  team"), "{table}");
        let csv = render_budget_report(&rows, Format::Csv).unwrap();
        assert_eq!(csv.lines().count(), 4);
        assert!(
            csv.contains(
                "search,team,,day,hard,100.00,1.500000,2.000000,1,0,3.5,2026-03-15T00:00:00Z"
            ),
            "{csv}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_budget_report(&rows, Format::Json).unwrap()).unwrap();
        assert_eq!(json[0]["spent_usd"], 1.5);
        assert_eq!(json[2]["key"], "ranker");

        in_flight.release();
        gov.shutdown().await;
        let rows = budget_report(&keys, state.as_ref(), now).await.unwrap();
        assert_eq!(rows[0].reserved, Money::ZERO, "released on drop");
    }
}
