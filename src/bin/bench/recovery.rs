//! Recovery scenario: restart time, RSS and catch-up rate of a large store.
//!
//! The benchmark runs the stanchion process itself (spawn, SIGKILL,
//! SIGTERM, respawn) on a fresh `--dir`, against a running nats-server:
//! 1. fill: `--messages` over `--channels` channels through the real
//!    server; one of them (`recovery.big`, `--big` messages) is published
//!    with one live subscriber receiving: the live delivery rate;
//! 2. `--durables` durable subscriptions (one client each, sharing a few
//!    NATS connections) at the head of the channels, each holding
//!    `--pending` unacknowledged messages;
//! 3. restart 1, a crash: SIGKILL while the durable clients stay connected
//!    (as they would: they talk to nats-server, not to stanchion); spawn to
//!    first answered ConnectRequest, RSS, and every pending message
//!    redelivered (flagged) to the same clients before new ones;
//! 4. restart 2, a stop: the durable clients close (their durables go
//!    offline with their pending messages), SIGTERM, respawn, new messages
//!    published, then the same client IDs and durable names come back with
//!    room in their window: pending (flagged) must come before new ones;
//! 5. catch-up: MaxInFlight respected from `First` without acks, then a
//!    subscriber from `First` reads all of `recovery.big` with an ack per
//!    message, RSS sampled; its rate is compared with the live rate
//!    (measured again after the catch-up, the better of the two counting).
//!
//! Exits nonzero when a goal is missed; every figure is printed either way.

mod harness;
mod traffic;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use stanchion::client::StartAt;

use harness::{check_order, close_all, dir_size, nats_conns, open_all, redelivered_set};
use harness::{wait_all, Durable, Goals, Policy, Restart, Server};
use traffic::{
    catch_up, fill_channels, last_of, layout, live_rate, max_inflight_check, publish_round, Chan,
    Live,
};

/// Flags of this scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The nats-server and cluster ID of the server under test.
    #[command(flatten)]
    target: crate::Target,
    /// The stanchion binary to run.
    #[arg(long, default_value = "target/release/stanchion")]
    stanchion: PathBuf,
    /// Store directory; must not exist yet (or be empty).
    #[arg(long)]
    dir: PathBuf,
    /// Where stanchion's logs go (one file per run); default: next to --dir.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Channels, the big one included.
    #[arg(long, default_value_t = 100)]
    channels: usize,
    /// Messages over all channels.
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Of those, messages of the catch-up channel `recovery.big`.
    #[arg(long, default_value_t = 5_000_000)]
    big: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Concurrent publishers filling the other channels.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// PubAcks in flight per publisher.
    #[arg(long, default_value_t = 16_384)]
    max_pub_acks: usize,
    /// Durable subscriptions (one client each), spread over the channels.
    #[arg(long, default_value_t = 1000)]
    durables: usize,
    /// Unacknowledged messages each durable holds at a restart (its MaxInFlight).
    #[arg(long, default_value_t = 100)]
    pending: i32,
    /// AckWait of the durables, seconds (long: no redelivery but the restarts').
    #[arg(long, default_value_t = 600)]
    ack_wait: u64,
    /// NATS connections the durable clients share.
    #[arg(long, default_value_t = 16)]
    nats_conns: usize,
    /// MaxInFlight of the live and the catch-up subscriber (stan.go's default).
    #[arg(long, default_value_t = 1024)]
    sub_max_inflight: i32,
    /// Goal: seconds from spawn to the first answered ConnectRequest.
    #[arg(long, default_value_t = 2.0)]
    goal_discover_secs: f64,
    /// Goal: RSS after a restart, MB.
    #[arg(long, default_value_t = 64.0)]
    goal_rss_mb: f64,
    /// Messages of a second live-rate run after the catch-up (0: none).
    #[arg(long, default_value_t = 1_000_000)]
    live_after: u64,
    /// Goal: catch-up rate as a fraction of the live rate.
    #[arg(long, default_value_t = 0.8)]
    goal_catchup_ratio: f64,
    /// Goal: RSS growth allowed over the last 80 % of the catch-up, MB
    /// ("bounded": not growing with the messages read).
    #[arg(long, default_value_t = 8.0)]
    goal_catchup_growth_mb: f64,
    /// Pause this many seconds at each settled point (after each restart's
    /// redeliveries, after the catch-up) to inspect the live process.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// Extra stanchion flags (after `--`), e.g. `-mm 0 -mb 0`.
    #[arg(last = true)]
    stanchion_args: Vec<String>,
}

/// Name of the catch-up channel.
const BIG: &str = "recovery.big";

/// Runs the scenario.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.channels < 2 || args.big >= args.messages || args.pending <= 0 {
        bail!("need --channels >= 2, --big < --messages and --pending > 0");
    }
    if args.dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty: the scenario needs a fresh store",
            args.dir.display()
        );
    }
    let chans = layout(&args);
    if chans.iter().any(|c| c.last < args.pending as u64) {
        bail!("every channel needs at least --pending messages");
    }
    let mut argv: Vec<String> = vec!["--nats_server".into(), args.target.url.clone()];
    argv.extend(["--cluster_id".into(), args.target.cluster_id.clone()]);
    argv.extend(["--dir".into(), args.dir.display().to_string()]);
    argv.extend(args.stanchion_args.iter().cloned());
    let log_dir = match &args.log_dir {
        Some(d) => d.clone(),
        None => args
            .dir
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let server = Server::new(
        args.stanchion.clone(),
        argv,
        log_dir,
        &args.target.url,
        &args.target.cluster_id,
    )
    .await?;
    let mut r = Run {
        pending: args.pending as u64,
        payload: Bytes::from(vec![b'x'; args.size]),
        args,
        server,
        chans,
        goals: Goals::default(),
    };
    let live = r.fill().await?;
    let ncs = nats_conns(&r.args.target.url, r.args.nats_conns).await?;
    let mut durs = r.open_durables(&ncs).await?;
    r.restart_crash(&mut durs).await?;
    r.restart_stop(&mut durs, &ncs).await?;
    close_all(&mut durs).await?;
    drop(ncs);
    r.catch_up(live).await?;
    println!(
        "store {:.0} MB at the end",
        dir_size(&r.args.dir) as f64 / 1e6
    );
    r.server.stop(false).await?;
    r.goals.finish()
}

/// The scenario's state between phases.
struct Run {
    args: Args,
    server: Server,
    chans: Vec<Chan>,
    payload: Bytes,
    /// Unacknowledged messages per durable at a restart.
    pending: u64,
    goals: Goals,
}

impl Run {
    /// Phase 1: fills the store; returns the live delivery rate.
    async fn fill(&mut self) -> anyhow::Result<Live> {
        let args = &self.args;
        println!(
            "== fill: {} msgs of {} B over {} channels ({BIG}: {})",
            args.messages,
            args.size,
            self.chans.len(),
            args.big
        );
        self.server.start("fill").await?;
        println!(
            "stanchion up in {:.0?} (empty store)",
            self.server.wait_discover().await?
        );
        let small: Vec<Chan> = self
            .chans
            .iter()
            .filter(|c| c.name != BIG)
            .cloned()
            .collect();
        let start = Instant::now();
        fill_channels(args, &small, &self.payload).await?;
        let t = start.elapsed();
        let n: u64 = small.iter().map(|c| c.last).sum();
        println!(
            "filled {} channels, {n} msgs, {} publishers x {} PubAcks in flight: {t:.1?}, {:.0} msgs/s",
            small.len(), args.publishers, args.max_pub_acks, n as f64 / t.as_secs_f64()
        );
        let live = live_rate(args, &self.payload, args.big).await?;
        println!(
            "filled {BIG}, {} msgs, 1 publisher + 1 live subscriber (MaxInFlight {}): published {:.0} msgs/s, \
             live delivery {:.0} msgs/s end to end, {:.1?}",
            args.big, args.sub_max_inflight, live.publish_rate, live.rate, live.elapsed
        );
        println!(
            "fill done in {:.1?}; store {:.0} MB; stanchion RSS {:.1} MB (peak {:.1} MB)",
            start.elapsed(),
            dir_size(&args.dir) as f64 / 1e6,
            self.server.rss()?,
            self.server.hwm()?
        );
        Ok(live)
    }

    /// Phase 2: durables at the head of their channels, each with a full
    /// window of unacknowledged messages.
    async fn open_durables(&mut self, ncs: &[async_nats::Client]) -> anyhow::Result<Vec<Durable>> {
        let n = self.chans.len();
        let mut durs: Vec<Durable> = (0..self.args.durables)
            .map(|i| {
                let channel = self.chans[i % n].name.clone();
                Durable::new(format!("recovery-dur-{i}"), channel, format!("dur-{i}"))
            })
            .collect();
        let t = Instant::now();
        let (chans, pending) = (&self.chans, self.pending);
        let start = |d: &Durable| StartAt::Sequence(last_of(chans, &d.channel) + 1 - pending);
        open_all(
            &mut durs,
            ncs,
            &self.args.target.cluster_id,
            start,
            self.args.pending,
            self.ack_wait(),
        )
        .await?;
        wait_all(
            &durs,
            Duration::from_secs(120),
            "initial deliveries",
            |_, t| t.unacked.len() as u64 == pending,
        )
        .await?;
        println!(
            "{} durables (one client each over {} NATS connections) hold {pending} unacked msgs each ({} in all): {:.1?}",
            durs.len(), ncs.len(), durs.len() as u64 * pending, t.elapsed()
        );
        // Pending records are written lazily (sled writes in the background
        // every 500 ms): a crash right after a delivery may forget it, which
        // then comes again as a first delivery; that is not what this measures.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(durs)
    }

    /// Phase 3: SIGKILL with the durable clients connected; they get their
    /// pending messages back on the same inboxes.
    async fn restart_crash(&mut self, durs: &mut [Durable]) -> anyhow::Result<()> {
        println!(
            "== restart 1: SIGKILL while the {} durable clients stay connected",
            durs.len()
        );
        let expected: Vec<BTreeSet<u64>> = durs.iter().map(|d| d.track().unacked.clone()).collect();
        for d in durs.iter() {
            d.track().log.clear();
        }
        self.server.stop(true).await?;
        self.server.start("restart1").await?;
        let restart = self.server.measure_restart().await?;
        wait_all(
            durs,
            Duration::from_secs(60),
            "restart 1 redelivery",
            |i, t| redelivered_set(t).is_superset(&expected[i]),
        )
        .await?;
        println!(
            "all {} pending msgs redelivered {:.0?} after spawn",
            expected.iter().map(BTreeSet::len).sum::<usize>(),
            self.server.spawned.elapsed()
        );
        // New messages, taken once the redeliveries are acked.
        let heads: Vec<u64> = durs
            .iter()
            .map(|d| last_of(&self.chans, &d.channel))
            .collect();
        publish_round(
            &self.args,
            &mut self.chans,
            self.pending,
            &self.payload,
            "restart1-pub",
        )
        .await?;
        for d in durs.iter() {
            d.set_policy(Policy::AckRedelivered);
        }
        let pending = self.pending;
        wait_all(
            durs,
            Duration::from_secs(60),
            "restart 1 new deliveries",
            |i, t| t.unacked.len() as u64 == pending && t.unacked.iter().all(|s| *s > heads[i]),
        )
        .await?;
        self.settle("restart 1 (SIGKILL)", &restart, durs, &expected)
            .await
    }

    /// Phase 4: the clients close, SIGTERM, then they come back (same client
    /// IDs and durable names) with room for new messages in their window.
    async fn restart_stop(
        &mut self,
        durs: &mut [Durable],
        ncs: &[async_nats::Client],
    ) -> anyhow::Result<()> {
        println!(
            "== restart 2: durable clients close, SIGTERM, same client IDs and durables come back"
        );
        let expected: Vec<BTreeSet<u64>> = durs.iter().map(|d| d.track().unacked.clone()).collect();
        close_all(durs).await?;
        let stopped = self.server.stop(false).await?;
        println!("stanchion stopped on SIGTERM in {stopped:.0?}");
        self.server.start("restart2").await?;
        let restart = self.server.measure_restart().await?;
        let heads: Vec<u64> = durs
            .iter()
            .map(|d| last_of(&self.chans, &d.channel))
            .collect();
        let pending = self.pending;
        publish_round(
            &self.args,
            &mut self.chans,
            2 * pending,
            &self.payload,
            "restart2-pub",
        )
        .await?;
        let t = Instant::now();
        let window = 2 * self.args.pending;
        open_all(
            durs,
            ncs,
            &self.args.target.cluster_id,
            |_| StartAt::NewOnly,
            window,
            self.ack_wait(),
        )
        .await?;
        wait_all(
            durs,
            Duration::from_secs(60),
            "restart 2 redelivery",
            |i, t| {
                let new = t.log.iter().filter(|(s, r)| !r && *s > heads[i]).count();
                redelivered_set(t).is_superset(&expected[i]) && new as u64 == pending
            },
        )
        .await?;
        println!(
            "{} durables resubscribed (MaxInFlight {window}), pending redelivered and window refilled in {:.1?}",
            durs.len(),
            t.elapsed()
        );
        for d in durs.iter() {
            d.set_policy(Policy::AckAll);
        }
        let lasts: Vec<u64> = durs
            .iter()
            .map(|d| last_of(&self.chans, &d.channel))
            .collect();
        wait_all(durs, Duration::from_secs(60), "restart 2 drain", |i, t| {
            t.unacked.is_empty() && t.log.iter().map(|(s, _)| *s).max() == Some(lasts[i])
        })
        .await?;
        self.settle("restart 2 (SIGTERM)", &restart, durs, &expected)
            .await
    }

    /// After a restart's redeliveries: RSS once settled, the order check, goals.
    async fn settle(
        &mut self,
        label: &str,
        restart: &Restart,
        durs: &[Durable],
        expected: &[BTreeSet<u64>],
    ) -> anyhow::Result<()> {
        let order = check_order(durs, expected);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let settled = self.server.rss()?;
        println!(
            "pending before new: {order:?}; RSS once settled {settled:.1} MB ({}), peak (VmHWM) {:.1} MB",
            self.server.rss_parts(),
            self.server.hwm()?
        );
        self.hold().await;
        let args = &self.args;
        let secs = restart.discover.as_secs_f64();
        self.goals.check(
            &format!(
                "{label}: discover answered within {} s",
                args.goal_discover_secs
            ),
            secs <= args.goal_discover_secs,
            format!("{secs:.3} s"),
        );
        // The figure is RSS when the restarted server answers; once
        // the redelivery burst is acked is a stricter reading, checked too.
        self.goals.check(
            &format!(
                "{label}: RSS < {} MB when discover is answered",
                args.goal_rss_mb
            ),
            restart.rss_after < args.goal_rss_mb,
            format!("{:.1} MB", restart.rss_after),
        );
        self.goals.check(
            &format!(
                "{label}: RSS < {} MB once redelivery settled",
                args.goal_rss_mb
            ),
            settled < args.goal_rss_mb,
            format!("{settled:.1} MB settled"),
        );
        self.goals.check(
            &format!("{label}: every pending msg redelivered (flagged) before new ones"),
            order.ok(),
            format!("{order:?}"),
        );
        Ok(())
    }

    /// Phase 5: MaxInFlight without acks, then the catch-up from First.
    async fn catch_up(&mut self, live: Live) -> anyhow::Result<()> {
        let args = &self.args;
        let last = last_of(&self.chans, BIG);
        println!(
            "== catch-up: a subscriber from First over {BIG} ({last} msgs), MaxInFlight {}",
            args.sub_max_inflight
        );
        let held = max_inflight_check(args).await?;
        self.goals.check(
            "catch-up: MaxInFlight respected (no acks: exactly MaxInFlight delivered)",
            held == u64::try_from(args.sub_max_inflight)?,
            format!(
                "{held} delivered in 1 s without acks, MaxInFlight {}",
                args.sub_max_inflight
            ),
        );
        let c = catch_up(args, &self.server, last).await?;
        let pct = 100.0 * c.rate / live.rate;
        println!(
            "catch-up: {last} msgs in {:.1?}: {:.0} msgs/s = {pct:.1} % of live ({:.0} msgs/s); \
             RSS before {:.1} MB, at 20 % {:.1} MB, max {:.1} MB, end {:.1} MB",
            c.elapsed, c.rate, live.rate, c.rss_before, c.rss_at_20, c.rss_max, c.rss_end
        );
        println!("catch-up RSS samples (msgs received: MB): {}", c.samples);
        println!("RSS after the catch-up: {}", self.server.rss_parts());
        self.hold().await;
        // The machine's load drifts: live delivery is measured again right
        // after the catch-up, and the better of the two live rates counts.
        let mut best = live.rate;
        if args.live_after > 0 {
            let after = live_rate(args, &self.payload, args.live_after).await?;
            println!(
                "live delivery again after the catch-up, {} msgs on {BIG}: published {:.0} msgs/s, live {:.0} msgs/s",
                args.live_after, after.publish_rate, after.rate
            );
            best = best.max(after.rate);
            let big = self.chans.iter_mut().find(|c| c.name == BIG);
            if let Some(c) = big {
                c.last += args.live_after;
            }
        }
        let pct = 100.0 * c.rate / best;
        self.goals.check(
            &format!(
                "catch-up rate >= {:.0} % of live (the better of the two live runs)",
                100.0 * args.goal_catchup_ratio
            ),
            c.rate >= args.goal_catchup_ratio * best,
            format!("{:.0} vs {best:.0} msgs/s ({pct:.1} %)", c.rate),
        );
        let growth = c.rss_max - c.rss_at_20;
        self.goals.check(
            &format!(
                "catch-up RSS bounded (growth over the last 80 % <= {} MB)",
                args.goal_catchup_growth_mb
            ),
            growth <= args.goal_catchup_growth_mb,
            format!(
                "{:.1} MB at 20 %, max {:.1} MB (+{growth:.1} MB)",
                c.rss_at_20, c.rss_max
            ),
        );
        Ok(())
    }

    async fn hold(&self) {
        if self.args.hold_secs > 0 {
            println!(
                "holding {} s (stanchion pid {})",
                self.args.hold_secs, self.server.pid
            );
            tokio::time::sleep(Duration::from_secs(self.args.hold_secs)).await;
        }
    }

    fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.args.ack_wait)
    }
}
