//! Latency scenario: one publisher at a steady rate and one subscriber on
//! one channel; HDR histograms of publish → PubAck and publish → delivery.
//!
//! Each payload starts with the time it was published (nanoseconds since
//! the run started, little-endian), so the subscriber, in the same
//! process, measures delivery without any lookup. The publisher keeps its
//! schedule from the start time: a late message is sent at once and its
//! latency counts from when it was due (no coordinated omission).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use hdrhistogram::Histogram;
use stanchion::client::{Connection, StartAt, SubscriptionOptions};
use tokio::sync::Mutex;

/// Flags of this scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The nats-server and cluster ID of the server under test.
    #[command(flatten)]
    target: crate::Target,
    /// Messages per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds of publishing measured (after the warm-up).
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// Seconds of publishing before the measurement starts.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Message size in bytes (at least 8: the timestamp).
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Channel to publish on (a unique suffix is added).
    #[arg(long, default_value = "latency")]
    channel: String,
    /// A label for the report (e.g. the server's name).
    #[arg(long, default_value = "server")]
    label: String,
}

/// Latencies in microseconds, from 1 µs to 60 s, 3 significant digits.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

async fn connect(args: &Args, client_id: &str) -> anyhow::Result<Connection> {
    let wait = Duration::from_secs(10);
    crate::stan_connect(
        &args.target.url,
        &args.target.cluster_id,
        client_id,
        1 << 16,
        wait,
    )
    .await
}

/// Runs the scenario and prints the percentiles.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.size < 8 || args.rate == 0 {
        bail!("--size must be at least 8 and --rate above 0");
    }
    let channel = format!("{}.{}", args.channel, nuid::next());
    let publisher = connect(&args, &format!("lat-pub-{}", nuid::next())).await?;
    let subscriber = connect(&args, &format!("lat-sub-{}", nuid::next())).await?;
    let opts = SubscriptionOptions {
        max_in_flight: 16_384,
        start: StartAt::NewOnly,
        ..Default::default()
    };
    let mut sub = subscriber.subscribe(&channel, opts).await?;
    let total = args.rate * (args.warmup + args.secs);
    let first_measured = args.rate * args.warmup;
    let origin = Instant::now();
    let delivery = Arc::new(Mutex::new(histogram()?));
    let receiver = {
        let delivery = delivery.clone();
        tokio::spawn(async move {
            let mut seen = 0u64;
            while let Some(m) = sub.next().await {
                let now = origin.elapsed().as_nanos() as u64;
                let data = m.data();
                let sent = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
                if m.sequence() > first_measured {
                    let us = now.saturating_sub(sent) / 1_000;
                    delivery.lock().await.saturating_record(us.max(1));
                }
                seen += 1;
                if seen == total {
                    break;
                }
            }
            seen
        })
    };

    let mut acked = histogram()?;
    let mut pending = futures::stream::FuturesUnordered::new();
    let interval_ns = 1_000_000_000 / args.rate;
    let padding = vec![b'x'; args.size - 8];
    for i in 0..total {
        let due = Duration::from_nanos(i * interval_ns);
        if let Some(wait) = due.checked_sub(origin.elapsed()) {
            // Reap acks while waiting for the next slot.
            let reaped = tokio::time::timeout(wait, async {
                loop {
                    match pending.next().await {
                        Some((sent, r)) => record_ack(&mut acked, origin, sent, r, first_measured)?,
                        None => std::future::pending::<()>().await,
                    }
                }
                #[allow(unreachable_code)]
                anyhow::Ok(())
            })
            .await;
            if let Ok(Err(e)) = reaped {
                return Err(e);
            }
        }
        let sent_ns = due.as_nanos() as u64;
        let mut payload = BytesMut::with_capacity(args.size);
        payload.put_u64_le(sent_ns);
        payload.put_slice(&padding);
        let ack = publisher.publish_async(&channel, payload.freeze()).await?;
        pending.push(async move { ((i + 1, sent_ns), ack.await.1) });
    }
    while let Some((sent, r)) = pending.next().await {
        record_ack(&mut acked, origin, sent, r, first_measured)?;
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), receiver)
        .await
        .context("the subscriber did not get every message")??;
    if seen != total {
        bail!("the subscriber got {seen} of {total} messages");
    }
    let delivery = delivery.lock().await;
    println!(
        "{}: {} msgs/s for {} s (+{} s warm-up), {} B messages, 1 publisher, 1 subscriber",
        args.label, args.rate, args.secs, args.warmup, args.size
    );
    report(&args.label, "publish -> PubAck", &acked);
    report(&args.label, "publish -> delivery", &delivery);
    let _ = publisher.close().await;
    let _ = subscriber.close().await;
    Ok(())
}

/// Records one PubAck's latency (measured messages only).
fn record_ack(
    h: &mut Histogram<u64>,
    origin: Instant,
    (n, sent_ns): (u64, u64),
    result: Result<(), stanchion::client::ClientError>,
    first_measured: u64,
) -> anyhow::Result<()> {
    result?;
    if n > first_measured {
        let now = origin.elapsed().as_nanos() as u64;
        h.saturating_record((now.saturating_sub(sent_ns) / 1_000).max(1));
    }
    Ok(())
}

fn report(label: &str, what: &str, h: &Histogram<u64>) {
    println!(
        "{label}: {what}: n={} p50={} µs p99={} µs p99.9={} µs max={} µs",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}
