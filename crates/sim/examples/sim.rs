//! Stand-alone `sim` runner, equivalent to `switchyard sim` (handy before the main binary exists).

use clap::Parser;
use switchyard_sim::cli::{run, SimArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

#[tokio::main]
async fn main() -> Result<(), switchyard_sim::SimError> {
    run(Cli::parse().args).await
}
