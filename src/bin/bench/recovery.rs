//! Recovery scenario: restart time, RSS and catch-up rate of a large
//! store (to be written).

/// Flags of this scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

/// Runs the scenario.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
