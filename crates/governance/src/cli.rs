//! `switchyard keys …`: manage keys and teams in the durable store. The binary only parses
//! arguments and calls [`run`].

use crate::error::GovernanceError;
use crate::keys::{open_key_store, KeyStore};
use crate::model::{Budget, IssuedKey, KeyInfo, KeySpec, Limits, ModelPattern, Team, TeamSpec};
use crate::period::{rfc3339, system_now_ms};
use crate::report::{budget_report, csv, render_budget_report, table, Format};
use crate::state::{RedisState, RedisStateConfig};
use std::io::Write;
use std::time::Duration;

/// `switchyard keys`: create, list, rotate and revoke virtual keys; manage teams.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// The key database: `sqlite://PATH` (created if missing) or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_KEYS_DB",
        hide_env_values = true,
        // The gateway's own default (`[governance] keys_db`), so keys created here from the
        // config's folder are the ones `serve` reads.
        default_value = "sqlite://switchyard.db"
    )]
    pub db: String,
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints its secret once.
    Create {
        /// The owning team (created without limits if new).
        #[arg(long)]
        team: String,
        /// The key's name, unique within the team.
        #[arg(long)]
        name: String,
        /// An allowed model: exact, `prefix*` or `*` (repeatable; default `*`).
        #[arg(long = "model")]
        models: Vec<String>,
        /// The default data class of this key's requests.
        #[arg(long, default_value = "internal")]
        data_class: String,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// A budget `PERIOD:USD[:MODE]`, e.g. `day:10` or `month:500:alert` (repeatable).
        #[arg(long = "budget")]
        budgets: Vec<Budget>,
        /// Allow storing prompt and response bodies in the ledger.
        #[arg(long)]
        store_bodies: bool,
        /// Output format (`json` includes the secret as a field).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// List keys (never secrets).
    List {
        /// Only this team's keys.
        #[arg(long)]
        team: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Issue a new secret for a key; prints it once.
    Rotate {
        /// The key's id (`key_…`).
        id: String,
        /// Seconds the old secret keeps working (default 0: it stops now).
        #[arg(long, default_value_t = 0)]
        grace_secs: u64,
    },
    /// Revoke a key: every gateway stops accepting it within one second.
    Revoke {
        /// The key's id (`key_…`).
        id: String,
    },
    /// Create a team with its own limits and budgets (applied on top of its keys').
    TeamCreate {
        /// The team's name.
        name: String,
        /// Team-wide requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Team-wide tokens per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// A team budget `PERIOD:USD[:MODE]` (repeatable).
        #[arg(long = "budget")]
        budgets: Vec<Budget>,
    },
    /// List teams.
    Teams {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Budget use per team and key, read from the shared state (Redis).
    Budgets {
        /// The state store, `redis://…` (the in-memory state lives inside a gateway process).
        #[arg(long, env = "SWITCHYARD_STATE", hide_env_values = true)]
        state: String,
        /// The key prefix the gateways use in Redis.
        #[arg(long, default_value = "switchyard")]
        prefix: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Runs one `keys` subcommand, writing its output to `out`.
pub async fn run(args: KeysArgs, out: &mut (dyn Write + Send)) -> Result<(), GovernanceError> {
    let store = open_key_store(&args.db).await?;
    let result = run_on(&store, args.command, out).await;
    store.close().await;
    result
}

/// Runs one `keys` subcommand against an open store (what the admin API does too).
pub async fn run_on(
    store: &dyn KeyStore,
    command: KeysCommand,
    out: &mut (dyn Write + Send),
) -> Result<(), GovernanceError> {
    match command {
        KeysCommand::Create {
            team,
            name,
            models,
            data_class,
            rpm,
            tpm,
            budgets,
            store_bodies,
            format,
        } => {
            let mut spec = KeySpec::new(team, name);
            if !models.is_empty() {
                spec.allowed_models = models
                    .into_iter()
                    .map(ModelPattern::new)
                    .collect::<Result<_, _>>()?;
            }
            spec.default_data_class = data_class;
            spec.limits = Limits { rpm, tpm };
            spec.budgets = budgets;
            spec.store_bodies = store_bodies;
            let issued = store.create_key(&spec).await?;
            print_issued(&issued, format, out)
        }
        KeysCommand::List { team, format } => {
            let keys = store.list_keys(team.as_deref()).await?;
            out.write_all(render_keys(&keys, format)?.as_bytes())?;
            Ok(())
        }
        KeysCommand::Rotate { id, grace_secs } => {
            let issued = store
                .rotate_key(&id, Duration::from_secs(grace_secs))
                .await?;
            print_issued(&issued, Format::Table, out)
        }
        KeysCommand::Revoke { id } => {
            let info = store.revoke_key(&id).await?;
            writeln!(
                out,
                "revoked {} ({}/{}); gateways stop accepting it within one second",
                info.id, info.team, info.name
            )?;
            Ok(())
        }
        KeysCommand::TeamCreate {
            name,
            rpm,
            tpm,
            budgets,
        } => {
            let team = store
                .create_team(&TeamSpec {
                    name,
                    limits: Limits { rpm, tpm },
                    budgets,
                })
                .await?;
            writeln!(out, "created team {}", team.name)?;
            Ok(())
        }
        KeysCommand::Teams { format } => {
            let teams = store.list_teams().await?;
            out.write_all(render_teams(&teams, format)?.as_bytes())?;
            Ok(())
        }
        KeysCommand::Budgets {
            state,
            prefix,
            format,
        } => {
            let mut config = RedisStateConfig::new(state);
            config.key_prefix = prefix;
            let redis = RedisState::new(config)?;
            let rows = budget_report(store, &redis, system_now_ms()).await?;
            out.write_all(render_budget_report(&rows, format)?.as_bytes())?;
            Ok(())
        }
    }
}

fn print_issued(
    issued: &IssuedKey,
    format: Format,
    out: &mut (dyn Write + Send),
) -> Result<(), GovernanceError> {
    if format == Format::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(issued)?)?;
    } else {
        writeln!(
            out,
            "key id: {}  team: {}  name: {}",
            issued.info.id, issued.info.team, issued.info.name
        )?;
        writeln!(out, "secret: {}", issued.secret)?;
        writeln!(
            out,
            "Store the secret now: it is not stored and cannot be shown again."
        )?;
    }
    Ok(())
}

fn limits_text(l: &Limits) -> String {
    let rpm = l.rpm.map_or("-".into(), |v| v.to_string());
    let tpm = l.tpm.map_or("-".into(), |v| v.to_string());
    format!("{rpm}/{tpm}")
}

fn budgets_text(budgets: &[Budget]) -> String {
    budgets
        .iter()
        .map(|b| format!("{}:{:.2}:{}", b.period, b.amount.as_usd(), b.mode.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders a key listing.
pub fn render_keys(keys: &[KeyInfo], format: Format) -> Result<String, GovernanceError> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(keys)?);
    }
    let header = [
        "id",
        "team",
        "name",
        "prefix",
        "models",
        "data_class",
        "rpm/tpm",
        "budgets",
        "status",
        "created",
    ];
    let now = system_now_ms();
    let cells: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let status = match (k.revoked_ms, k.previous_valid_until_ms) {
                (Some(_), _) => "revoked".to_string(),
                (None, Some(until)) if until > now => format!("rotating until {}", rfc3339(until)),
                _ => "active".to_string(),
            };
            vec![
                k.id.clone(),
                k.team.clone(),
                k.name.clone(),
                format!("{}…", k.prefix),
                k.allowed_models
                    .iter()
                    .map(ModelPattern::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                k.default_data_class.clone(),
                limits_text(&k.limits),
                budgets_text(&k.budgets),
                status,
                rfc3339(k.created_ms),
            ]
        })
        .collect();
    Ok(match format {
        Format::Csv => csv(&header, &cells),
        _ => table(&header, &cells),
    })
}

/// Renders a team listing.
pub fn render_teams(teams: &[Team], format: Format) -> Result<String, GovernanceError> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(teams)?);
    }
    let header = ["team", "rpm/tpm", "budgets", "created"];
    let cells: Vec<Vec<String>> = teams
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                limits_text(&t.limits),
                budgets_text(&t.budgets),
                rfc3339(t.created_ms),
            ]
        })
        .collect();
    Ok(match format {
        Format::Csv => csv(&header, &cells),
        _ => table(&header, &cells),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(clap::Subcommand)]
    enum Top {
        Keys(KeysArgs),
    }

    async fn keys(argv: &[&str]) -> String {
        let Top::Keys(args) = Cli::try_parse_from(argv).unwrap().cmd;
        let mut out = Vec::new();
        run(args, &mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn create_list_rotate_revoke_through_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("keys.db").display());
        let created = keys(&[
            "sy",
            "keys",
            "--db",
            &db,
            "create",
            "--team",
            "ml",
            "--name",
            "batch",
            "--model",
            "gpt-4o*",
            "--rpm",
            "60",
            "--budget",
            "day:10",
            "--budget",
            "month:200:alert",
        ])
        .await;
        let secret = created
            .lines()
            .find_map(|l| l.strip_prefix("secret: "))
            .unwrap()
            .to_string();
        let id = created
            .split_whitespace()
            .find(|w| w.starts_with("key_"))
            .unwrap()
            .to_string();
        // `--db` is global: it may also follow the subcommand.
        let listed = keys(&["sy", "keys", "list", "--db", &db]).await;
        assert!(
            listed.contains("batch") && listed.contains("gpt-4o*"),
            "{listed}"
        );
        assert!(
            listed.contains("day:10.00:hard month:200.00:alert"),
            "{listed}"
        );
        assert!(!listed.contains(&secret), "listing shows the secret");
        assert!(
            listed.contains(&secret[..12]),
            "listing shows the display prefix"
        );

        let store = open_key_store(&db).await.unwrap();
        assert!(store.authenticate(&secret).await.unwrap().is_some());
        let rotated = keys(&["sy", "keys", "--db", &db, "rotate", &id]).await;
        assert!(store.authenticate(&secret).await.unwrap().is_none());
        let new_secret = rotated
            .lines()
            .find_map(|l| l.strip_prefix("secret: "))
            .unwrap();
        assert!(store.authenticate(new_secret).await.unwrap().is_some());
        let revoked = keys(&["sy", "keys", "--db", &db, "revoke", &id]).await;
        assert!(revoked.starts_with("revoked key_"), "{revoked}");
        assert!(store.authenticate(new_secret).await.unwrap().is_none());

        keys(&[
            "sy",
            "keys",
            "--db",
            &db,
            "team-create",
            "search",
            "--tpm",
            "100000",
            "--budget",
            "week:70",
        ])
        .await;
        let teams = keys(&["sy", "keys", "--db", &db, "teams", "--format", "csv"]).await;
        assert!(
            teams.contains("search,-/100000,week:70.00:hard,"),
            "{teams}"
        );
        let json = keys(&["sy", "keys", "--db", &db, "list", "--format", "json"]).await;
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(parsed[0]["revoked_ms"].is_i64());
    }
}
