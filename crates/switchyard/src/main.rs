//! `switchyard`: the gateway binary. Subcommands only parse arguments and call into the
//! library crates; no logic lives here.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use switchyard_server::telemetry::{self, Telemetry};
use switchyard_server::{demo, Severity};

#[derive(Parser)]
#[command(name = "switchyard", version, about = "A multi-cloud LLM gateway")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "SWITCHYARD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a config file.
    Serve {
        /// The config file (TOML).
        #[arg(long, short, env = "SWITCHYARD_CONFIG", hide_env_values = true)]
        config: PathBuf,
        /// Listen address; overrides server.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run the gateway and a simulated multi-cloud fleet in one process, no cloud account needed.
    Demo(demo::DemoOptions),
    /// Validate a config file and report every problem.
    Check {
        /// The config file (TOML).
        config: PathBuf,
        /// Do not read the environment: every variable the config names counts as set (for
        /// CI, or a machine without the secrets).
        #[arg(long)]
        offline: bool,
    },
    /// Run simulated providers (OpenAI, Azure, Anthropic, Bedrock, Gemini, Vertex).
    Sim(switchyard_sim::cli::SimArgs),
    /// Manage virtual keys and teams: create, list, rotate, revoke, team-create, teams, budgets.
    Keys(switchyard_governance::cli::KeysArgs),
    /// Audit trail: `audit verify` checks the ledger's hash chain, `audit export` writes a
    /// signed-off range as JSON lines.
    Audit(switchyard_ledger::cli::AuditArgs),
    /// Reports from the ledger: `report spend --by cloud|provider|region|model|team|key ...`,
    /// `report concentration`.
    Report(switchyard_server::escape::ReportArgs),
    /// Exit-cost what-if: reprice a window's recorded traffic on other deployments or clouds.
    Whatif(switchyard_server::escape::WhatifArgs),
    /// Outage drill: replay a ledger window (or a trace file) offline through this config's
    /// routing with clouds, regions, providers or deployments down.
    Drill(switchyard_server::drill::DrillArgs),
    /// Routing tools: `route explain` shows how a request would be routed and why.
    Route {
        #[command(subcommand)]
        command: switchyard_server::explain::RouteCommand,
    },
    /// Convert another gateway's config: `import litellm config.yaml --out switchyard.toml`.
    Import(switchyard_import::cli::ImportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = Telemetry::init(match cli.log_format {
        LogFormat::Human => telemetry::LogFormat::Human,
        LogFormat::Json => telemetry::LogFormat::Json,
    });
    if let Command::Check { config, offline } = &cli.command {
        return check(config, *offline);
    }
    if let Command::Import(args) = cli.command {
        return match switchyard_import::cli::run(
            args,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switchyard: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Route {
        command: switchyard_server::explain::RouteCommand::Explain(options),
    } = &cli.command
    {
        return match switchyard_server::explain::run(options) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchyard: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchyard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen } => {
                switchyard_server::serve(switchyard_server::ServeOptions { config, listen })
                    .await
                    .map_err(|e| e.to_string())
            }
            Command::Demo(options) => demo::run(options).await.map_err(|e| e.to_string()),
            Command::Sim(args) => switchyard_sim::cli::run(args)
                .await
                .map_err(|e| e.to_string()),
            Command::Keys(args) => switchyard_governance::cli::run(args, &mut std::io::stdout())
                .await
                .map_err(|e| e.to_string()),
            Command::Audit(args) => switchyard_ledger::cli::run_audit(args)
                .await
                .map_err(|e| e.to_string()),
            Command::Report(args) => switchyard_server::escape::run_report(args)
                .await
                .map_err(|e| e.to_string()),
            Command::Whatif(args) => switchyard_server::escape::run_whatif(args)
                .await
                .map_err(|e| e.to_string()),
            Command::Drill(args) => switchyard_server::drill::run_cli(args)
                .await
                .map(|out| print!("{out}")),
            Command::Check { .. } | Command::Route { .. } | Command::Import(_) => Ok(()),
        }
    });
    // Outside the runtime: the exporter's blocking client must not run on it.
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `switchyard check`: prints every problem; exit status 1 when any is an error.
fn check(path: &std::path::Path, offline: bool) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    // Offline, a variable stands for a value of the right kind: long enough for any check.
    let env = |name: &str| {
        if offline {
            Some(format!("offline-value-of-{name}"))
        } else {
            std::env::var(name).ok()
        }
    };
    let problems = match switchyard_server::compile(&text, &env) {
        Ok(snapshot) => snapshot.warnings,
        Err(problems) => problems,
    };
    for p in &problems {
        println!("{}: {p}", path.display());
    }
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    if errors > 0 {
        println!(
            "{}: {errors} error(s), {warnings} warning(s): the config is rejected",
            path.display()
        );
        ExitCode::FAILURE
    } else {
        println!("{}: OK ({warnings} warning(s))", path.display());
        ExitCode::SUCCESS
    }
}
