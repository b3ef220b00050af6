// Temporary launcher until the config room lands.
use stanchion::config::{Config, StoreKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: Vec<String> = std::env::args().collect();
    let mut config = Config::default();
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].trim_start_matches('-') {
            "nats_server" | "ns" => config.nats_server = v,
            "cluster_id" | "cid" => config.cluster_id = v,
            "dir" => config.dir = v.into(),
            "store" | "st" => {
                config.store = if v.eq_ignore_ascii_case("memory") {
                    StoreKind::Memory
                } else {
                    StoreKind::Sled
                }
            }
            "file_sync" => config.file_sync = v == "true",
            _ => {}
        }
        i += 2;
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    stanchion::server::run(config, shutdown).await?;
    Ok(())
}
