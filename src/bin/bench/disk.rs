//! Disk-space scenario: the store directory's size over time while
//! retention limits remove messages (to be written).

/// Flags of this scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

/// Runs the scenario.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
