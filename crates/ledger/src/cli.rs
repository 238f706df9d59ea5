//! The `switchyard audit` and `switchyard report` subcommands: argument types (clap) and their
//! implementations, so the binary only parses and calls [`run_audit`] / [`run_report`].

use crate::audit::{self, HMAC_KEY_ENV};
use crate::report::{Format, SpendReport};
use crate::store::{self, SpendBy, TimeRange};
use crate::time::{format_ms, parse_time};
use crate::LedgerError;
use std::io::Write;
use std::path::PathBuf;

/// `switchyard audit ...`
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Walk the ledger's hash chain and report the first modified, deleted or inserted record.
    Verify {
        /// The ledger database: sqlite://PATH or postgres://...
        #[arg(long, env = "SWITCHYARD_LEDGER_URL", hide_env_values = true)]
        db: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the records of a time range as JSON lines, ending with a signed-off summary line
    /// (HMAC-SHA-256 when SWITCHYARD_AUDIT_HMAC_KEY is set, SHA-256 otherwise).
    Export {
        /// The ledger database: sqlite://PATH or postgres://...
        #[arg(long, env = "SWITCHYARD_LEDGER_URL", hide_env_values = true)]
        db: String,
        /// Start (inclusive): YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// End (exclusive): YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        until: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `switchyard report ...`
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

/// The ledger-only reports (the server adds those that need the config).
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Spend grouped by cloud, provider, region, model, team, key, deployment or jurisdiction.
    Spend {
        /// The ledger database: sqlite://PATH or postgres://...
        #[arg(long, env = "SWITCHYARD_LEDGER_URL", hide_env_values = true)]
        db: String,
        /// What to group by.
        #[arg(long, value_enum, default_value_t = SpendBy::Cloud)]
        by: SpendBy,
        /// Start (inclusive): YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// End (exclusive): YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        until: Option<String>,
        /// Output format; `focus` writes FinOps FOCUS rows (CSV, one per day and deployment,
        /// model and team; needs --since; --by does not apply).
        #[arg(long, value_enum, default_value_t = SpendFormat::Table)]
        format: SpendFormat,
        /// The BillingAccountId of FOCUS rows.
        #[arg(long, default_value = "switchyard")]
        billing_account: String,
    },
    /// Provider SLOs per deployment over the last hour, day and 30 days: availability,
    /// latency and TTFT percentiles, error-budget burn.
    Slo {
        /// The ledger database: sqlite://PATH or postgres://...
        #[arg(long, env = "SWITCHYARD_LEDGER_URL", hide_env_values = true)]
        db: String,
        /// The windows' end: an age (1h), YYYY-MM-DD (UTC) or RFC 3339; now when absent.
        #[arg(long)]
        until: Option<String>,
        /// The availability objective the error budget comes from.
        #[arg(long, default_value_t = 0.999)]
        objective: f64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = crate::escape::ViewFormat::Table)]
        format: crate::escape::ViewFormat,
    },
}

/// The output formats of `report spend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpendFormat {
    /// Aligned columns with a total line, for terminals.
    Table,
    /// RFC 4180 CSV with a header line, for spreadsheets.
    Csv,
    /// One JSON document, for programs.
    Json,
    /// FinOps FOCUS 1.2 columns as CSV, for cost tools.
    Focus,
}

/// The window the `--since` / `--until` arguments describe.
pub fn time_range(since: Option<&str>, until: Option<&str>) -> Result<TimeRange, LedgerError> {
    Ok(TimeRange {
        since_ms: since.map(parse_time).transpose()?.unwrap_or(i64::MIN),
        until_ms: until.map(parse_time).transpose()?.unwrap_or(i64::MAX),
    })
}

/// Runs `switchyard audit ...`, writing to standard output. A damaged chain is an error
/// ([`LedgerError::ChainDamaged`]) after the report is printed, so the exit status shows it.
pub async fn run_audit(args: AuditArgs) -> Result<(), LedgerError> {
    match args.command {
        AuditCommand::Verify { db, json } => {
            let mut stdout = std::io::stdout().lock();
            audit_verify(&db, json, &mut stdout).await
        }
        AuditCommand::Export {
            db,
            since,
            until,
            out,
        } => {
            let range = time_range(since.as_deref(), until.as_deref())?;
            let key = std::env::var(HMAC_KEY_ENV).ok().filter(|k| !k.is_empty());
            let store = store::open(&db, false).await?;
            let summary = match out {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    audit::export(
                        store.as_ref(),
                        range,
                        key.as_deref().map(str::as_bytes),
                        &mut file,
                    )
                    .await?
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    audit::export(
                        store.as_ref(),
                        range,
                        key.as_deref().map(str::as_bytes),
                        &mut stdout,
                    )
                    .await?
                }
            };
            tracing::info!(
                records = summary.count,
                digest_alg = summary.digest_alg,
                "audit export written"
            );
            Ok(())
        }
    }
}

/// `switchyard audit verify`: prints the report to `out`.
pub async fn audit_verify(db: &str, json: bool, out: &mut dyn Write) -> Result<(), LedgerError> {
    let store = store::open(db, false).await?;
    let report = audit::verify(store.as_ref()).await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else if let Some(p) = &report.first_problem {
        writeln!(
            out,
            "DAMAGED at record {}: {:?}: {}",
            p.seq, p.kind, p.detail
        )?;
        writeln!(
            out,
            "{} records verified before the problem",
            report.checked
        )?;
    } else {
        let head = report.head.as_ref();
        writeln!(
            out,
            "OK: {} records verified; chain head {} {}",
            report.checked,
            head.map_or(0, |h| h.seq),
            head.map_or("", |h| h.hash.as_str())
        )?;
    }
    match report.first_problem {
        Some(p) => Err(LedgerError::ChainDamaged {
            seq: p.seq,
            kind: p.kind,
        }),
        None => Ok(()),
    }
}

/// Runs `switchyard report ...`, writing to standard output.
pub async fn run_report(args: ReportArgs) -> Result<(), LedgerError> {
    run_report_command(args.command).await
}

/// Runs one ledger-only report, writing to standard output.
pub async fn run_report_command(command: ReportCommand) -> Result<(), LedgerError> {
    match command {
        ReportCommand::Spend {
            db,
            by,
            since,
            until,
            format,
            billing_account,
        } => {
            let range = time_range(since.as_deref(), until.as_deref())?;
            let store = store::open(&db, false).await?;
            let format = match format {
                SpendFormat::Table => Format::Table,
                SpendFormat::Csv => Format::Csv,
                SpendFormat::Json => Format::Json,
                SpendFormat::Focus => {
                    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
                    crate::escape::focus::export(
                        store.as_ref(),
                        range,
                        crate::now_ms(),
                        &billing_account,
                        &mut stdout,
                    )
                    .await?;
                    stdout.flush()?;
                    return Ok(());
                }
            };
            let report = spend_report(store.as_ref(), by, range).await?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(report.render(format).as_bytes())?;
            Ok(())
        }
        ReportCommand::Slo {
            db,
            until,
            objective,
            format,
        } => {
            let now = crate::now_ms();
            let until_ms = crate::escape::window(None, until.as_deref(), now)?.until_ms;
            let until_ms = if until_ms == i64::MAX { now } else { until_ms };
            let store = store::open(&db, false).await?;
            let report = crate::escape::slo::slo(store.as_ref(), until_ms, objective).await?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(report.render(format)?.as_bytes())?;
            Ok(())
        }
    }
}

/// Builds a spend report (also what the admin API should call).
pub async fn spend_report(
    store: &dyn store::LedgerStore,
    by: SpendBy,
    range: TimeRange,
) -> Result<SpendReport, LedgerError> {
    let rows = store.spend(by, range).await?;
    let bound = |ms: i64, open: i64| (ms != open).then(|| format_ms(ms));
    Ok(SpendReport {
        by,
        since: bound(range.since_ms, i64::MIN),
        until: bound(range.until_ms, i64::MAX),
        rows,
    })
}
