//! stanchion-bench: throughput of a STAN server, in the spirit of NSS's
//! stan-bench, driven by stanchion's own Rust client.
//!
//! Every run also measures an "echo ceiling" on the same nats-server with
//! the same publisher code: a responder process that answers connects and
//! PubMsgs at once, storing nothing. The ratio of the two is the figure
//! that matters; absolute numbers depend on the machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;
use prost::Message as _;
use stanchion::client::{Connection, Options, StartAt, SubscriptionOptions};
use stanchion::protocol::pb::{ConnectRequest, ConnectResponse, PubAck, PubMsg};

mod disk;
mod latency;
mod recovery;

/// What the echo responder prints once it listens.
const ECHO_READY: &str = "echo responder ready";

/// Where the server under test is reached: every scenario's first flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// NATS server URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub url: String,
    /// Cluster ID of the server under test.
    #[arg(long, default_value = "test-cluster")]
    pub cluster_id: String,
}

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmark a STAN server against an echo ceiling on the same nats-server")]
struct Args {
    /// A long-running scenario instead of the throughput run.
    #[command(subcommand)]
    scenario: Option<Scenario>,
    /// The nats-server and cluster ID of the server under test.
    #[command(flatten)]
    target: Target,
    /// Number of publishers (each its own STAN connection).
    #[arg(long, default_value_t = 1)]
    np: usize,
    /// Number of subscribers.
    #[arg(long, default_value_t = 0)]
    ns: usize,
    /// Subscribers join one queue group.
    #[arg(long)]
    qgroup: bool,
    /// Total messages to publish.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    count: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Publish synchronously (wait for each PubAck).
    #[arg(long)]
    sync: bool,
    /// Unacknowledged publishes per publisher (async mode).
    #[arg(long, default_value_t = 16_384)]
    max_inflight: usize,
    /// Skip the echo ceiling measurement.
    #[arg(long)]
    no_echo: bool,
    /// Channel to publish on (a unique suffix is added).
    #[arg(long, default_value = "bench")]
    channel: String,
    /// Idle-clients scenario: connect this many STAN clients that only
    /// answer heartbeats, and report the server's CPU and RSS.
    #[arg(long)]
    idle_clients: Option<usize>,
    /// PID of the server process (for CPU and RSS figures).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds over which idle CPU is measured.
    #[arg(long, default_value_t = 60)]
    window: u64,
    /// Internal: run as the echo responder for this cluster ID.
    #[arg(long, hide = true)]
    echo_responder: Option<String>,
}

/// Scenarios with their own flags.
#[derive(clap::Subcommand, Debug, Clone)]
enum Scenario {
    /// Store directory size over time under retention limits.
    Disk(Box<disk::Args>),
    /// Restart time, RSS and catch-up rate of a large store.
    Recovery(Box<recovery::Args>),
    /// Publish → PubAck and publish → delivery latency at a steady rate.
    Latency(Box<latency::Args>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.scenario.clone() {
        Some(Scenario::Disk(a)) => return disk::run(*a).await,
        Some(Scenario::Recovery(a)) => return recovery::run(*a).await,
        Some(Scenario::Latency(a)) => return latency::run(*a).await,
        None => {}
    }
    if let Some(cluster_id) = &args.echo_responder {
        return echo_responder(&args.target.url, cluster_id).await;
    }
    if let Some(n) = args.idle_clients {
        return idle_clients(&args, n).await;
    }
    if let Some(pid) = args.server_pid {
        println!("server RSS before: {:.1} MB", rss_mb(pid)?);
        let result = run_scenario(&args, &args.target.cluster_id, "stanchion").await;
        println!("server RSS after: {:.1} MB", rss_mb(pid)?);
        return result.map(|_| ());
    }
    let ceiling = if args.no_echo {
        None
    } else {
        let echo_cid = format!("echo-{}", nuid::next());
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["--url", &args.target.url, "--echo-responder", &echo_cid])
            .kill_on_drop(true)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the echo responder")?;
        // Wait until the responder has subscribed.
        let stdout = child.stdout.take().context("echo responder stdout")?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
            Ok(Ok(Some(line))) if line == ECHO_READY => {}
            other => bail!("echo responder did not start: {other:?}"),
        }
        let result = run_scenario(&args, &echo_cid, "echo ceiling").await;
        let _ = child.kill().await;
        Some(result?)
    };
    let server = run_scenario(&args, &args.target.cluster_id, "stanchion").await?;
    if let Some(ceiling) = ceiling {
        println!(
            "ratio: publish {:.1}% of the echo ceiling{}",
            100.0 * server.publish_rate / ceiling.publish_rate,
            if args.ns > 0 {
                " (with subscribers receiving; subscribers are not part of the echo)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Throughput of one scenario.
struct Outcome {
    publish_rate: f64,
}

async fn run_scenario(args: &Args, cluster_id: &str, label: &str) -> anyhow::Result<Outcome> {
    let channel = format!("{}.{}", args.channel, nuid::next());
    let payload = Bytes::from(vec![b'x'; args.size]);
    let per_pub = args.count / args.np as u64;
    let total = per_pub * args.np as u64;

    // Subscribers (only against the real server: the echo stores nothing).
    let received = Arc::new(AtomicU64::new(0));
    let mut sub_tasks = Vec::new();
    let is_echo = cluster_id != args.target.cluster_id;
    if !is_echo {
        for i in 0..args.ns {
            let conn =
                connect(args, cluster_id, &format!("bench-sub-{i}-{}", nuid::next())).await?;
            let opts = SubscriptionOptions {
                queue_group: args.qgroup.then(|| "bench".to_string()),
                max_in_flight: 16_384,
                start: StartAt::NewOnly,
                ..Default::default()
            };
            let mut sub = conn.subscribe(&channel, opts).await?;
            let expected = if args.qgroup { None } else { Some(total) };
            let received = received.clone();
            sub_tasks.push(tokio::spawn(async move {
                let mut mine = 0u64;
                let start = Instant::now();
                while let Some(_m) = sub.next().await {
                    mine += 1;
                    let all = received.fetch_add(1, Ordering::Relaxed) + 1;
                    if expected == Some(mine) || (expected.is_none() && all >= total) {
                        break;
                    }
                }
                let _ = conn.close().await;
                (mine, start.elapsed())
            }));
        }
    }

    let mut publishers = Vec::new();
    for i in 0..args.np {
        publishers
            .push(connect(args, cluster_id, &format!("bench-pub-{i}-{}", nuid::next())).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for conn in publishers {
        let (channel, payload, sync) = (channel.clone(), payload.clone(), args.sync);
        tasks.push(tokio::spawn(async move {
            let mut acks = futures::stream::FuturesUnordered::new();
            for _ in 0..per_pub {
                if sync {
                    conn.publish(&channel, payload.clone()).await?;
                } else {
                    acks.push(conn.publish_async(&channel, payload.clone()).await?);
                    // Reap finished acks so the set stays small.
                    while let Some(Some((_, r))) = futures::FutureExt::now_or_never(acks.next()) {
                        r?;
                    }
                }
            }
            while let Some((_, r)) = acks.next().await {
                r?;
            }
            let _ = conn.close().await;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let pub_elapsed = start.elapsed();
    let publish_rate = total as f64 / pub_elapsed.as_secs_f64();
    println!(
        "{label}: {} publisher(s), {total} msgs of {} B, {}: {:.0} msgs/s ({:.1} MB/s), {:.2?}",
        args.np,
        args.size,
        if args.sync { "sync" } else { "async" },
        publish_rate,
        publish_rate * args.size as f64 / 1e6,
        pub_elapsed
    );
    if !sub_tasks.is_empty() {
        let mut got = 0;
        for t in sub_tasks {
            let (mine, _) = tokio::time::timeout(Duration::from_secs(300), t)
                .await
                .context("subscribers timed out")??;
            got += mine;
        }
        let elapsed = start.elapsed();
        if got < total {
            bail!("subscribers received {got} of {total}");
        }
        println!(
            "{label}: {} subscriber(s){}: {got} msgs received, end to end {:.0} msgs/s, {:.2?}",
            args.ns,
            if args.qgroup { " in a queue group" } else { "" },
            got as f64 / elapsed.as_secs_f64(),
            elapsed
        );
    }
    Ok(Outcome { publish_rate })
}

async fn connect(args: &Args, cluster_id: &str, client_id: &str) -> anyhow::Result<Connection> {
    let wait = Duration::from_secs(10);
    stan_connect(
        &args.target.url,
        cluster_id,
        client_id,
        args.max_inflight,
        wait,
    )
    .await
}

/// A STAN connection on a NATS connection of its own, whose subscriptions
/// buffer bursts, allowing `max_inflight` publishes without a PubAck;
/// `connect_wait` bounds the connect request. Every scenario connects so.
pub(crate) async fn stan_connect(
    url: &str,
    cluster_id: &str,
    client_id: impl Into<String>,
    max_inflight: usize,
    connect_wait: Duration,
) -> anyhow::Result<Connection> {
    let nats = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(url)
        .await
        .context("connecting to NATS")?;
    let mut opts = Options::new(cluster_id, client_id);
    opts.max_pub_acks_inflight = max_inflight;
    opts.connect_wait = connect_wait;
    Ok(Connection::connect(nats, opts).await?)
}

/// Answers ConnectRequests and PubMsgs at once: the ceiling any STAN server
/// on this nats-server could reach with this publisher.
async fn echo_responder(url: &str, cluster_id: &str) -> anyhow::Result<()> {
    let nats = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(url)
        .await?;
    let subjects = stanchion::protocol::Subjects::new(
        stanchion::protocol::DEFAULT_DISCOVER_PREFIX,
        cluster_id,
    );
    let mut discover = nats.subscribe(subjects.discover.clone()).await?;
    let mut close = nats.subscribe(subjects.close.clone()).await?;
    let mut pubs = nats.subscribe(format!("{}.>", subjects.publish)).await?;
    nats.flush().await?;
    println!("{ECHO_READY}");
    loop {
        tokio::select! {
            Some(m) = pubs.next() => {
                let guid = PubMsg::decode(m.payload).map(|p| p.guid).unwrap_or_default();
                if let Some(reply) = m.reply {
                    nats.publish(reply, Bytes::from(PubAck { guid, error: String::new() }.encode_to_vec())).await?;
                }
            }
            Some(m) = discover.next() => {
                let req = ConnectRequest::decode(m.payload).unwrap_or_default();
                let resp: ConnectResponse = subjects.connect_response(req.protocol, req.ping_interval, req.ping_max_out);
                if let Some(reply) = m.reply {
                    nats.publish(reply, Bytes::from(resp.encode_to_vec())).await?;
                }
            }
            Some(m) = close.next() => {
                if let Some(reply) = m.reply {
                    nats.publish(reply, Bytes::new()).await?;
                }
            }
            else => return Ok(()),
        }
    }
}

/// Connects `n` idle STAN clients (they only answer heartbeats) and reports
/// the server's CPU use over `--window` seconds and its RSS growth.
async fn idle_clients(args: &Args, n: usize) -> anyhow::Result<()> {
    let pid = args
        .server_pid
        .context("--idle-clients needs --server-pid")?;
    let rss_before = rss_mb(pid)?;
    // Clients share NATS connections, as processes share a nats-server.
    let mut ncs = Vec::new();
    for _ in 0..16 {
        ncs.push(
            async_nats::ConnectOptions::new()
                .subscription_capacity(1 << 16)
                .connect(&args.target.url)
                .await?,
        );
    }
    let mut conns = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let mut opts = Options::new(
            &args.target.cluster_id,
            format!("idle-{i}-{}", nuid::next()),
        );
        opts.connect_wait = Duration::from_secs(30);
        // Client pings are a separate load; idle here means heartbeats only.
        opts.ping_interval = 3600;
        conns.push(Connection::connect(ncs[i % ncs.len()].clone(), opts).await?);
    }
    println!("connected {n} idle clients in {:.2?}", start.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_start = cpu_seconds(pid)?;
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.window)).await;
    let cpu = cpu_seconds(pid)? - cpu_start;
    let rss_after = rss_mb(pid)?;
    println!(
        "{n} idle clients: server CPU {:.2}% of one core over {:.0?}; RSS {:.1} MB -> {:.1} MB (+{:.1} MB)",
        100.0 * cpu / wall.elapsed().as_secs_f64(),
        wall.elapsed(),
        rss_before,
        rss_after,
        rss_after - rss_before
    );
    for c in conns {
        let _ = c.close().await;
    }
    Ok(())
}

/// Resident set size of a process, in MB.
fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    status_mb(pid, "VmRSS")
}

/// A size field (`VmRSS`, `VmHWM`, `RssAnon`...) of `/proc/PID/status`, in MB.
pub(crate) fn status_mb(pid: u32, key: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .with_context(|| format!("{key} of {pid}"))?
        .parse()?;
    Ok(kb / 1024.0)
}

/// User + system CPU time of a process, in seconds (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}
