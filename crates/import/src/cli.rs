//! `switchyard import ...`: reads the foreign config, writes the Switchyard config and the
//! findings report. The conversion itself is [`crate::litellm::convert`].

use crate::{Conversion, ImportError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `switchyard import ...`
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    source: Source,
}

#[derive(Debug, clap::Subcommand)]
enum Source {
    /// Convert a LiteLLM proxy config (config.yaml) into a Switchyard config.
    Litellm {
        /// The LiteLLM config file (YAML).
        config: PathBuf,
        /// Where to write the Switchyard config; standard output without it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where to write the findings report; standard error without it.
        #[arg(long)]
        findings: Option<PathBuf>,
        /// The findings report's format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// How the findings report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One line per finding, then the environment variables to export.
    Text,
    /// `{"findings": [...], "env_vars": [...]}`.
    Json,
}

/// Runs `switchyard import`; `stdout` and `stderr` receive what is not written to files.
pub fn run(
    args: ImportArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), ImportError> {
    let Source::Litellm {
        config,
        out,
        findings,
        format,
    } = args.source;
    let text = std::fs::read_to_string(&config).map_err(|e| io(&config, e))?;
    let conversion = crate::litellm::convert(&text)?;
    let report = report(&conversion, format)?;
    match &out {
        Some(path) => std::fs::write(path, &conversion.toml).map_err(|e| io(path, e))?,
        None => stdout
            .write_all(conversion.toml.as_bytes())
            .map_err(|e| io(Path::new("<stdout>"), e))?,
    }
    match &findings {
        Some(path) => std::fs::write(path, &report).map_err(|e| io(path, e))?,
        None => stderr
            .write_all(report.as_bytes())
            .map_err(|e| io(Path::new("<stderr>"), e))?,
    }
    Ok(())
}

fn report(c: &Conversion, format: Format) -> Result<String, ImportError> {
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&serde_json::json!({
                "findings": c.findings,
                "env_vars": c.env_vars,
            }))?;
            s.push('\n');
            s
        }
        Format::Text => {
            let mut s = String::new();
            for f in &c.findings {
                s.push_str(&format!("{f}\n"));
            }
            s.push_str(&format!("{} finding(s)\n", c.findings.len()));
            if !c.env_vars.is_empty() {
                s.push_str(&format!(
                    "the config reads these environment variables: {}\n",
                    c.env_vars.join(", ")
                ));
            }
            s
        }
    })
}

fn io(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Io {
        path: path.display().to_string(),
        source,
    }
}
