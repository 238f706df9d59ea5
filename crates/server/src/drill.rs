//! `switchyard drill` and `/admin/drill`: the requests of a ledger window (or a trace file)
//! replayed through the live config's routing with clouds, regions or providers down
//! ([`switchyard_router::drill`]), read and rendered here.

use crate::config::Snapshot;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use switchyard_ledger::{LedgerError, LedgerStore, Outcome, TimeRange};
use switchyard_router::drill::{drill, Down, DrillReport, Replay};
use switchyard_router::DataClass;
use switchyard_types::{Cloud, Money};

/// Records read per ledger query.
const PAGE: u32 = 5_000;

/// Why a drill cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// A `--down` value that is not `cloud=…`, `region=…`, `provider=…` or `deployment=…`,
    /// or that names nothing in the config.
    #[error("--down {0:?}: {1}")]
    BadDown(String, String),
    /// A trace file line that is not `TIMESTAMP,ContextTokens,GeneratedTokens`.
    #[error("trace line {0}: {1}")]
    BadTrace(usize, String),
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Parses `cloud=aws`, `region=eastus`, `provider=NAME` or `deployment=NAME`, and checks that
/// it covers at least one deployment of `snapshot` (a typo would otherwise drill nothing).
pub fn parse_down(s: &str, snapshot: &Snapshot) -> Result<Down, DrillError> {
    let bad = |why: &str| DrillError::BadDown(s.to_string(), why.to_string());
    let (kind, name) = s
        .split_once('=')
        .ok_or_else(|| bad("use cloud=NAME, region=NAME, provider=NAME or deployment=NAME"))?;
    let down = match kind {
        "cloud" => Down::Cloud(
            serde_json::from_value::<Cloud>(serde_json::Value::String(name.into()))
                .map_err(|_| bad("not a cloud (aws, azure, gcp, oci, openai, anthropic, …)"))?,
        ),
        "region" => Down::Region(name.into()),
        "provider" => Down::Provider(name.into()),
        "deployment" => Down::Deployment(name.into()),
        _ => return Err(bad("the kind is cloud, region, provider or deployment")),
    };
    let covers_any = snapshot
        .catalog
        .models()
        .flat_map(|m| &m.deployments)
        .any(|d| down.covers(d));
    if covers_any {
        Ok(down)
    } else {
        Err(bad("no deployment in the config matches it"))
    }
}

/// The requests of `range` that reached routing, in arrival order, and each deployment's
/// median latency over its answered requests, read page by page.
pub async fn from_ledger(
    store: &dyn LedgerStore,
    range: TimeRange,
) -> Result<(Vec<Replay>, HashMap<String, u64>), DrillError> {
    let mut requests = Vec::new();
    let mut latencies: HashMap<String, Vec<u64>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.records_in_time(range, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for stored in page {
            let r = stored.record;
            // Refused before routing (no key, over budget, …): nothing to replay.
            let Some(deployment) = r.deployment.as_deref() else {
                continue;
            };
            if r.outcome == Outcome::Ok {
                latencies
                    .entry(deployment.to_string())
                    .or_default()
                    .push(r.latency_ms);
            }
            requests.push(Replay {
                id: Some(r.request_id.clone()),
                time_ms: r.time_ms,
                model: r.model.clone(),
                data_class: r.data_class.as_deref().and_then(|c| DataClass::new(c).ok()),
                input_tokens: r.usage.input,
                output_tokens: r.usage.output,
                stream: r.stream,
            });
        }
    }
    requests.sort_by_key(|r| r.time_ms);
    let medians = latencies
        .into_iter()
        .map(|(d, mut v)| {
            v.sort_unstable();
            let m = v[v.len() / 2];
            (d, m)
        })
        .collect();
    Ok((requests, medians))
}

/// A trace file (`TIMESTAMP,ContextTokens,GeneratedTokens`, as in the Azure LLM inference
/// traces) as requests for `model`.
pub fn from_trace(text: &str, model: &str) -> Result<Vec<Replay>, DrillError> {
    let model: Arc<str> = model.into();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if n == 1 && line.starts_with("TIMESTAMP") || line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split(',');
        let (Some(ts), Some(input), Some(output)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(DrillError::BadTrace(n, "expected three columns".into()));
        };
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| DrillError::BadTrace(n, format!("{s:?} is not a token count")))
        };
        out.push(Replay {
            id: None,
            time_ms: trace_time_ms(ts)
                .ok_or_else(|| DrillError::BadTrace(n, format!("{ts:?} is not a timestamp")))?,
            model: model.clone(),
            data_class: None,
            input_tokens: number(input)?,
            output_tokens: number(output)?,
            stream: false,
        });
    }
    out.sort_by_key(|r| r.time_ms);
    Ok(out)
}

/// `2023-11-16 18:17:03.9799600` (UTC) in Unix milliseconds.
fn trace_time_ms(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let midnight = switchyard_ledger::time::parse_time(date).ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (parts.next()??, parts.next()??, parts.next()??);
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    Some(midnight + ((h * 60 + m) * 60 + sec) * 1_000 + ms)
}

/// The report as an aligned table.
pub fn render_table(report: &DrillReport) -> String {
    let down: Vec<String> = report.down.iter().map(ToString::to_string).collect();
    let total: u64 = report.models.iter().map(|m| m.requests).sum();
    let mut out = format!(
        "drill: {} down · {total} requests replayed offline\n\n",
        if down.is_empty() {
            "nothing".into()
        } else {
            down.join(", ")
        }
    );
    let usd = |n: i64| format!("${:.4}", Money(n).as_usd());
    let ms = |v: Option<u64>| v.map_or("-".into(), |v| format!("{v} ms"));
    let _ = writeln!(
        out,
        "{:<24} {:>9} {:>8} {:>24} {:>12} {:>18}",
        "model", "requests", "served", "spend (now → drill)", "extra", "p50 (now → drill)"
    );
    for m in &report.models {
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:>7.1}% {:>24} {:>12} {:>18}",
            m.model,
            m.requests,
            m.served_share() * 100.0,
            format!("{} → {}", usd(m.spend_baseline_nanos), usd(m.spend_nanos)),
            format!(
                "{}{}",
                if m.extra_cost_nanos >= 0 { "+" } else { "" },
                usd(m.extra_cost_nanos)
            ),
            format!(
                "{} → {}",
                ms(m.latency_p50_baseline_ms),
                ms(m.latency_p50_ms)
            ),
        );
        if !m.served_by.is_empty() {
            let by: Vec<String> = m
                .served_by
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect();
            let _ = writeln!(out, "    served by: {}", by.join(", "));
        }
        for (why, n) in &m.failed {
            let _ = writeln!(out, "    {n} would fail: {}", why.describe());
        }
    }
    out
}

/// `switchyard drill ...`
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The config whose routing is drilled (TOML).
    #[arg(long, short, env = "SWITCHYARD_CONFIG", hide_env_values = true)]
    pub config: std::path::PathBuf,
    /// What is down: cloud=NAME, region=NAME, provider=NAME or deployment=NAME (repeat).
    #[arg(long, required = true)]
    pub down: Vec<String>,
    /// The ledger to replay (default: the config's `[ledger] url`).
    #[arg(long, env = "SWITCHYARD_LEDGER_URL", hide_env_values = true)]
    pub db: Option<String>,
    /// Start (inclusive): an age (7d, 12h), YYYY-MM-DD (UTC) or RFC 3339; the whole ledger
    /// when absent.
    #[arg(long)]
    pub since: Option<String>,
    /// End (exclusive): an age, YYYY-MM-DD (UTC) or RFC 3339.
    #[arg(long)]
    pub until: Option<String>,
    /// Replay this trace file (TIMESTAMP,ContextTokens,GeneratedTokens) instead of the ledger.
    #[arg(long, requires = "model")]
    pub trace: Option<std::path::PathBuf>,
    /// The model the trace's requests ask for.
    #[arg(long)]
    pub model: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// With --json: each request's placement too (deployment or failure, cost).
    #[arg(long)]
    pub requests: bool,
}

/// Runs `switchyard drill`: the rendered report, or what went wrong.
pub async fn run_cli(args: DrillArgs) -> Result<String, String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
    let snapshot = crate::compile(&text, &|name| std::env::var(name).ok()).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("the config is rejected:\n{}", lines.join("\n"))
    })?;
    let down = args
        .down
        .iter()
        .map(|d| parse_down(d, &snapshot))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let db = args.db.clone().unwrap_or_else(|| {
        crate::config::RuntimeSettings::resolve_db(
            &snapshot.settings.runtime.ledger_url,
            args.config.parent(),
        )
    });
    let open = || async {
        switchyard_ledger::open(&db, false)
            .await
            .map_err(|e| format!("ledger {db}: {e}"))
    };
    let (requests, latency) = match (&args.trace, &args.model) {
        (Some(path), Some(model)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let requests = from_trace(&text, model).map_err(|e| e.to_string())?;
            // Observed latencies come from the ledger when there is one to read.
            let latency = match (args.db.is_some(), open().await) {
                (true, Ok(store)) => {
                    from_ledger(store.as_ref(), TimeRange::ALL)
                        .await
                        .map_err(|e| e.to_string())?
                        .1
                }
                (true, Err(e)) => return Err(e),
                (false, _) => HashMap::new(),
            };
            (requests, latency)
        }
        _ => {
            let range = switchyard_ledger::escape::window(
                args.since.as_deref(),
                args.until.as_deref(),
                switchyard_ledger::now_ms(),
            )
            .map_err(|e| e.to_string())?;
            let store = open().await?;
            from_ledger(store.as_ref(), range)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let report = drill(&snapshot.catalog, &requests, &down, &latency, args.requests);
    Ok(if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n"
    } else {
        render_table(&report)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_timestamps_and_counts_are_read_exactly() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8\n";
        let r = from_trace(text, "m").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].time_ms, 1_700_158_623_979);
        assert_eq!(r[1].time_ms - r[0].time_ms, 52);
        assert_eq!((r[0].input_tokens, r[0].output_tokens), (4808, 10));
        assert!(matches!(
            from_trace("2023-11-16 18:17:03.1,x,1\n", "m"),
            Err(DrillError::BadTrace(1, _))
        ));
    }
}
