//! `switchyard sim`: run simulated providers until SIGINT or SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::{RunningSim, SimError, SimOptions, SimProtocol, SimSpec};

/// Arguments of `switchyard sim`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// A provider to simulate, as NAME=PROTOCOL@HOST:PORT (repeatable; port 0 picks a free port).
    #[arg(long = "provider", value_name = "NAME=PROTOCOL@HOST:PORT", required = true, value_parser = parse_provider)]
    pub providers: Vec<SimSpec>,
    /// An API key every simulated provider requires (checked the protocol's way).
    #[arg(long, env = "SWITCHYARD_SIM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The AWS secret access key Bedrock simulators verify SigV4 signatures with.
    #[arg(long, env = "SWITCHYARD_SIM_AWS_SECRET", hide_env_values = true, default_value = crate::SIM_AWS_SECRET_ACCESS_KEY)]
    pub aws_secret: String,
}

/// Parses `NAME=PROTOCOL@HOST:PORT`.
pub fn parse_provider(s: &str) -> Result<SimSpec, SimError> {
    let bad = || SimError::BadSpec(s.to_owned());
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (protocol, addr) = rest.split_once('@').ok_or_else(bad)?;
    let listen = addr
        .parse::<SocketAddr>()
        .or_else(|_| {
            addr.replacen("localhost", "127.0.0.1", 1)
                .parse::<SocketAddr>()
        })
        .map_err(|_| bad())?;
    if name.is_empty() {
        return Err(bad());
    }
    Ok(SimSpec {
        name: name.to_owned(),
        protocol: SimProtocol::from_str(protocol)?,
        listen,
        api_key: None,
    })
}

/// The line printed per provider at start-up, fields in this order.
#[derive(serde::Serialize)]
struct StartLine<'a> {
    name: &'a str,
    protocol: SimProtocol,
    base_url: String,
    /// What to paste into the gateway's `[providers.NAME] base_url` (OpenAI-shaped
    /// protocols are called under `/v1`).
    provider_base_url: String,
}

/// Starts every provider, prints one JSON line per provider, and runs until SIGINT or SIGTERM.
pub async fn run(args: SimArgs) -> Result<(), SimError> {
    let mut sims = Vec::with_capacity(args.providers.len());
    for mut spec in args.providers {
        spec.api_key = args.api_key.clone().or(spec.api_key);
        let options = SimOptions {
            aws_secret_access_key: args.aws_secret.clone(),
        };
        sims.push(RunningSim::start_with(spec, options).await?);
    }
    {
        let mut out = std::io::stdout().lock();
        for sim in &sims {
            let protocol = sim.spec().protocol;
            let line = StartLine {
                name: &sim.spec().name,
                protocol,
                base_url: sim.base_url(),
                provider_base_url: provider_base_url(protocol, &sim.base_url()),
            };
            let line = serde_json::to_string(&line).map_err(|e| SimError::Stdout(e.into()))?;
            writeln!(out, "{line}").map_err(SimError::Stdout)?;
        }
        out.flush().map_err(SimError::Stdout)?;
    }
    wait_for_signal().await;
    for sim in sims {
        sim.shutdown().await;
    }
    Ok(())
}

/// The `base_url` a gateway provider of `protocol` needs for a simulator at `base`: the
/// OpenAI-shaped ones are called under `/v1`.
fn provider_base_url(protocol: SimProtocol, base: &str) -> String {
    match protocol {
        SimProtocol::OpenAi | SimProtocol::OpenAiCompatible => format!("{base}/v1"),
        _ => base.to_string(),
    }
}

/// Resolves on SIGINT, or on SIGTERM where the platform has it.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn provider_specs_parse() {
        let s = parse_provider("oa=openai@127.0.0.1:0").unwrap();
        assert_eq!(
            (s.name.as_str(), s.protocol, s.listen.port()),
            ("oa", SimProtocol::OpenAi, 0)
        );
        assert_eq!(
            parse_provider("az=azure_openai@localhost:9")
                .unwrap()
                .protocol,
            SimProtocol::AzureOpenAi
        );
        assert!(parse_provider("x=nope@127.0.0.1:0").is_err());
        assert!(parse_provider("openai@127.0.0.1:0").is_err());
    }

    #[test]
    fn printed_provider_urls_paste_into_a_gateway_provider() {
        let base = "http://127.0.0.1:9";
        assert_eq!(
            provider_base_url(SimProtocol::OpenAi, base),
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(
            provider_base_url(SimProtocol::OpenAiCompatible, base),
            "http://127.0.0.1:9/v1"
        );
        for p in [
            SimProtocol::AzureOpenAi,
            SimProtocol::Anthropic,
            SimProtocol::Bedrock,
        ] {
            assert_eq!(provider_base_url(p, base), base);
        }
    }
}
