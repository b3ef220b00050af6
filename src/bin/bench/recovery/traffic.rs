//! The traffic of the recovery scenario: filling the channels, the live
//! delivery rate, the MaxInFlight check and the catch-up from `First`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use stanchion::client::{Connection, StartAt, SubscriptionOptions};

use super::harness::{publish, status_mb, Server};
use super::{Args, BIG};

/// One channel and its last sequence (the store is fresh: first is 1).
#[derive(Clone, Debug)]
pub(super) struct Chan {
    pub(super) name: String,
    pub(super) last: u64,
}

/// `recovery.big` first, then `recovery.c<i>` sharing the other messages.
pub(super) fn layout(args: &Args) -> Vec<Chan> {
    let others = (args.channels - 1) as u64;
    let rest = args.messages - args.big;
    let mut chans = vec![Chan {
        name: BIG.into(),
        last: args.big,
    }];
    for i in 0..others {
        let extra = u64::from(i < rest % others);
        chans.push(Chan {
            name: format!("recovery.c{i}"),
            last: rest / others + extra,
        });
    }
    chans
}

/// The last sequence of channel `name`.
pub(super) fn last_of(chans: &[Chan], name: &str) -> u64 {
    chans.iter().find(|c| c.name == name).map_or(0, |c| c.last)
}

pub(super) async fn stan(args: &Args, client_id: &str) -> anyhow::Result<Connection> {
    let id = format!("{client_id}-{}", nuid::next());
    let wait = Duration::from_secs(30);
    crate::stan_connect(
        &args.target.url,
        &args.target.cluster_id,
        id,
        args.max_pub_acks,
        wait,
    )
    .await
}

/// Fills `chans` with `--publishers` publishers taking channels in turn.
pub(super) async fn fill_channels(
    args: &Args,
    chans: &[Chan],
    payload: &Bytes,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let chans = Arc::new(chans.to_vec());
    let mut tasks = Vec::new();
    for i in 0..args.publishers.max(1) {
        let conn = stan(args, &format!("recovery-fill-{i}")).await?;
        let (next, chans, payload) = (next.clone(), chans.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = chans.get(k) else { break };
                publish(&conn, &c.name, c.last, &payload).await?;
            }
            let _ = conn.close().await;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Publishes `n` more messages to every channel, updating their last sequences.
pub(super) async fn publish_round(
    args: &Args,
    chans: &mut [Chan],
    n: u64,
    payload: &Bytes,
    id: &str,
) -> anyhow::Result<()> {
    let conn = stan(args, id).await?;
    for c in chans.iter_mut() {
        publish(&conn, &c.name, n, payload).await?;
        c.last += n;
    }
    let _ = conn.close().await;
    Ok(())
}

pub(super) struct Live {
    pub(super) publish_rate: f64,
    pub(super) rate: f64,
    pub(super) elapsed: Duration,
}

/// Publishes `total` messages to the big channel with one live subscriber
/// receiving them: the live delivery rate.
pub(super) async fn live_rate(args: &Args, payload: &Bytes, total: u64) -> anyhow::Result<Live> {
    let sub_conn = stan(args, "recovery-live-sub").await?;
    let opts = SubscriptionOptions {
        max_in_flight: args.sub_max_inflight,
        start: StartAt::NewOnly,
        ..Default::default()
    };
    let mut sub = sub_conn.subscribe(BIG, opts).await?;
    let pub_conn = stan(args, "recovery-live-pub").await?;
    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut got = 0u64;
        while let Some(m) = sub.next().await {
            if m.redelivered() {
                continue;
            }
            got += 1;
            if got == total {
                break;
            }
        }
        (got, start.elapsed())
    });
    publish(&pub_conn, BIG, total, payload).await?;
    let pub_elapsed = start.elapsed();
    let (got, elapsed) = tokio::time::timeout(Duration::from_secs(600), receiver)
        .await
        .context("live subscriber timed out")??;
    if got != total {
        bail!("live subscriber received {got} of {total}");
    }
    let _ = pub_conn.close().await;
    let _ = sub_conn.close().await;
    Ok(Live {
        publish_rate: total as f64 / pub_elapsed.as_secs_f64(),
        rate: total as f64 / elapsed.as_secs_f64(),
        elapsed,
    })
}

/// A subscriber from First that never acks: how many it gets in 1 s.
pub(super) async fn max_inflight_check(args: &Args) -> anyhow::Result<u64> {
    let conn = stan(args, "recovery-mif").await?;
    let opts = SubscriptionOptions {
        max_in_flight: args.sub_max_inflight,
        start: StartAt::First,
        manual_acks: true,
        ..Default::default()
    };
    let mut sub = conn.subscribe(BIG, opts).await?;
    let mut got = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, sub.next()).await {
        got += 1;
    }
    sub.unsubscribe().await?;
    let _ = conn.close().await;
    Ok(got)
}

pub(super) struct CatchUp {
    pub(super) elapsed: Duration,
    pub(super) rate: f64,
    pub(super) rss_before: f64,
    pub(super) rss_at_20: f64,
    pub(super) rss_max: f64,
    pub(super) rss_end: f64,
    pub(super) samples: String,
}

/// A subscriber from First reads the whole big channel, acking each message.
pub(super) async fn catch_up(args: &Args, server: &Server, last: u64) -> anyhow::Result<CatchUp> {
    let conn = stan(args, "recovery-catchup").await?;
    let rss_before = server.rss()?;
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pid = server.pid;
    let sampler = {
        let (got, stop) = (got.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mb) = status_mb(pid, "VmRSS") {
                    samples.push((got.load(Ordering::Relaxed), mb));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            samples
        })
    };
    let opts = SubscriptionOptions {
        max_in_flight: args.sub_max_inflight,
        start: StartAt::First,
        ..Default::default()
    };
    let start = Instant::now();
    let mut sub = conn.subscribe(BIG, opts).await?;
    let mut expect = 1u64;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .context("catch-up stalled for 30 s")?
            .context("catch-up subscription ended")?;
        if m.sequence() != expect {
            bail!(
                "catch-up got sequence {} where {expect} was due",
                m.sequence()
            );
        }
        got.fetch_add(1, Ordering::Relaxed);
        if expect == last {
            break;
        }
        expect += 1;
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await?;
    let rss_end = server.rss()?;
    let _ = sub.unsubscribe().await;
    let _ = conn.close().await;
    let at_20 = samples
        .iter()
        .find(|(n, _)| *n * 5 >= last)
        .map_or(rss_end, |s| s.1);
    let max = samples
        .iter()
        .filter(|(n, _)| *n * 5 >= last)
        .map(|s| s.1)
        .fold(rss_end, f64::max);
    let step = (samples.len() / 10).max(1);
    let shown: Vec<String> = samples
        .iter()
        .step_by(step)
        .map(|(n, mb)| format!("{n}: {mb:.1}"))
        .collect();
    Ok(CatchUp {
        elapsed,
        rate: last as f64 / elapsed.as_secs_f64(),
        rss_before,
        rss_at_20: at_20,
        rss_max: max,
        rss_end,
        samples: shown.join(", "),
    })
}
