//! `stanchion export-jetstream`: the command line of [`stanchion::export`].

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use stanchion::config::{duration, Config};
use stanchion::export::{self, progress::Meter, ExportOptions};
use stanchion::server::{nats_connect, view::Stats};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Copies STAN channels into a JetStream stream.
///
/// Reads each channel through the running streaming server (stanchion or
/// nats-streaming-server, listed through its monitoring endpoint) and
/// publishes every message to `<prefix>.<channel>` with the headers
/// Stan-Channel, Stan-Sequence, Stan-Timestamp (ns), Stan-Reply and
/// Nats-Msg-Id. A second run adds only what is new; an interrupted run
/// resumes where the stream stops. With --follow, new messages (and new
/// channels matching a pattern) are mirrored until SIGINT or SIGTERM.
#[derive(Parser, Debug)]
#[command(name = "stanchion export-jetstream", version)]
struct ExportArgs {
    /// The channel to export, or a pattern: `orders.*` (one token), `orders.>` (the rest), `>` (all)
    #[arg(long, value_name = "CHANNEL")]
    channel: String,
    /// nats-server URL(s), comma-separated, for STAN and JetStream; credentials may be in the URL
    #[arg(
        long = "nats_server",
        visible_alias = "ns",
        value_name = "URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_server: String,
    /// A `.creds` file to authenticate to nats-server with
    #[arg(long = "credentials", visible_alias = "creds", value_name = "FILE")]
    credentials: Option<std::path::PathBuf>,
    /// The streaming server's cluster ID
    #[arg(
        long = "cluster_id",
        visible_alias = "cid",
        value_name = "ID",
        default_value = "test-cluster"
    )]
    cluster_id: String,
    /// The streaming server's monitoring endpoint (its -m port)
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8222")]
    monitor: String,
    /// The JetStream stream; created with subjects `<prefix>.>` when missing
    #[arg(long, value_name = "NAME", default_value = "STAN")]
    stream: String,
    /// Prefix of the subjects: channel `orders` goes to `<prefix>.orders`
    #[arg(long = "subject_prefix", value_name = "PREFIX", default_value = "stan")]
    subject_prefix: String,
    /// Keep mirroring new messages until stopped
    #[arg(long)]
    follow: bool,
    /// With --follow and a pattern: how often to look for new channels
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    poll: Duration,
}

/// Runs the export with `args` (after the subcommand's name): the summary
/// goes to stdout, progress and errors to stderr. Exits 1 when a channel
/// failed or the export could not start.
pub fn run(args: Vec<std::ffi::OsString>) -> ExitCode {
    let args = match ExportArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stanchion export-jetstream: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(export(args)) {
        Ok(summary) => {
            print!("{summary}");
            if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("stanchion export-jetstream: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<export::Summary> {
    let stop = CancellationToken::new();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let on_signal = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping: settling what is in flight");
        on_signal.cancel();
    });
    let config = Config {
        nats_server: args.nats_server.clone(),
        credentials: args.credentials.clone(),
        connection_name: Some("stanchion-export-jetstream".into()),
        ..Config::default()
    };
    let nats = tokio::select! {
        nats = nats_connect::connect(&config, Arc::new(Stats::default())) => nats?,
        () = stop.cancelled() => anyhow::bail!("stopped before nats-server was reachable"),
    };
    let opts = ExportOptions {
        cluster_id: args.cluster_id,
        channels: args.channel,
        monitor: args.monitor,
        stream: args.stream,
        subject_prefix: args.subject_prefix,
        follow: args.follow,
        poll: args.poll,
    };
    let meter = Arc::new(Meter::default());
    let shown = CancellationToken::new();
    let progress = tokio::spawn(export::progress::report(
        meter.clone(),
        opts.follow,
        shown.clone(),
    ));
    let result = export::run(nats.clone(), &opts, meter, stop).await;
    shown.cancel();
    let _ = progress.await;
    let _ = nats.flush().await;
    Ok(result?)
}
