//! What the recovery scenario drives: the stanchion process (spawn,
//! SIGKILL, SIGTERM, the discover probe, RSS from /proc), the durable
//! subscribers (one STAN client per durable, sharing a few NATS
//! connections, manual acks under a policy the scenario switches, a log of
//! every delivery to check that pending messages come back before new
//! ones), and the list of goals met or missed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use stanchion::client::{
    ClientError, Connection, Message, Options, StartAt, Subscription, SubscriptionOptions,
};
use tokio::sync::watch;

/// Which deliveries a durable acknowledges; held ones stay pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Ack nothing.
    Hold,
    /// Ack redeliveries only; first deliveries stay pending.
    AckRedelivered,
    /// Ack everything (held messages too).
    AckAll,
}

impl Policy {
    fn acks(self, redelivered: bool) -> bool {
        match self {
            Policy::Hold => false,
            Policy::AckRedelivered => redelivered,
            Policy::AckAll => true,
        }
    }
}

/// What one durable has seen.
#[derive(Debug, Default)]
pub struct Track {
    /// Received and not acknowledged: the server's pending set once it settles.
    pub unacked: BTreeSet<u64>,
    /// Every delivery since the last [`Track::log`] reset: (sequence, redelivered).
    pub log: Vec<(u64, bool)>,
}

/// One durable subscription and its client.
pub struct Durable {
    pub client_id: String,
    pub channel: String,
    pub name: String,
    pub track: Arc<Mutex<Track>>,
    policy: watch::Sender<Policy>,
    conn: Option<Connection>,
}

impl Durable {
    pub fn new(client_id: String, channel: String, name: String) -> Durable {
        Durable {
            client_id,
            channel,
            name,
            track: Arc::default(),
            policy: watch::Sender::new(Policy::Hold),
            conn: None,
        }
    }

    pub fn track(&self) -> MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_policy(&self, p: Policy) {
        self.policy.send_replace(p);
    }

    /// Connects (same client ID every time) and subscribes the durable with
    /// manual acks; deliveries are logged into a fresh track.
    pub async fn open(
        &mut self,
        nats: async_nats::Client,
        cluster_id: &str,
        start: StartAt,
        max_in_flight: i32,
        ack_wait: Duration,
    ) -> anyhow::Result<()> {
        let mut opts = Options::new(cluster_id, self.client_id.clone());
        opts.connect_wait = Duration::from_secs(30);
        let conn = Connection::connect(nats, opts)
            .await
            .with_context(|| format!("connecting {}", self.client_id))?;
        self.track = Arc::default();
        self.policy.send_replace(Policy::Hold);
        let sub = conn
            .subscribe(
                &self.channel,
                SubscriptionOptions {
                    durable_name: Some(self.name.clone()),
                    max_in_flight,
                    ack_wait,
                    start,
                    manual_acks: true,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("subscribing durable {} on {}", self.name, self.channel))?;
        tokio::spawn(consume(sub, self.track.clone(), self.policy.subscribe()));
        self.conn = Some(conn);
        Ok(())
    }

    /// Closes the client (its durable stays, offline, with its pending messages).
    pub async fn close(&mut self) -> anyhow::Result<()> {
        if let Some(conn) = self.conn.take() {
            conn.close()
                .await
                .with_context(|| format!("closing {}", self.client_id))?;
        }
        Ok(())
    }
}

/// Reads deliveries, logs them, and acks what the policy says.
async fn consume(
    mut sub: Subscription,
    track: Arc<Mutex<Track>>,
    mut policy: watch::Receiver<Policy>,
) {
    let mut held: BTreeMap<u64, Message> = BTreeMap::new();
    loop {
        tokio::select! {
            m = sub.next() => {
                let Some(m) = m else { return };
                let (seq, redelivered) = (m.sequence(), m.redelivered());
                {
                    let mut t = track.lock().unwrap_or_else(PoisonError::into_inner);
                    t.log.push((seq, redelivered));
                    t.unacked.insert(seq);
                }
                if policy.borrow().acks(redelivered) {
                    if m.ack().await.is_ok() {
                        track.lock().unwrap_or_else(PoisonError::into_inner).unacked.remove(&seq);
                    }
                    held.remove(&seq);
                } else {
                    held.insert(seq, m);
                }
            }
            changed = policy.changed() => {
                if changed.is_err() {
                    return;
                }
                let p = *policy.borrow_and_update();
                let due: Vec<u64> = held
                    .iter()
                    .filter(|(_, m)| p.acks(m.redelivered()))
                    .map(|(s, _)| *s)
                    .collect();
                for seq in due {
                    if let Some(m) = held.remove(&seq) {
                        if m.ack().await.is_ok() {
                            track.lock().unwrap_or_else(PoisonError::into_inner).unacked.remove(&seq);
                        }
                    }
                }
            }
        }
    }
}

/// Opens every durable, 32 at a time, over `ncs` round-robin.
pub async fn open_all(
    durables: &mut [Durable],
    ncs: &[async_nats::Client],
    cluster_id: &str,
    start: impl Fn(&Durable) -> StartAt,
    max_in_flight: i32,
    ack_wait: Duration,
) -> anyhow::Result<()> {
    let jobs = durables.iter_mut().enumerate().map(|(i, d)| {
        let nats = ncs[i % ncs.len()].clone();
        let start = start(d);
        async move {
            d.open(nats, cluster_id, start, max_in_flight, ack_wait)
                .await
        }
    });
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(jobs)
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Closes every durable's client, 32 at a time.
pub async fn close_all(durables: &mut [Durable]) -> anyhow::Result<()> {
    let jobs = durables.iter_mut().map(|d| d.close());
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(jobs)
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Waits until `done` holds for every durable; how long it took, or an
/// error naming the first durable that did not get there.
pub async fn wait_all(
    durables: &[Durable],
    timeout: Duration,
    what: &str,
    done: impl Fn(usize, &Track) -> bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let lagging = durables
            .iter()
            .enumerate()
            .find(|(i, d)| !done(*i, &d.track()));
        let Some((i, d)) = lagging else {
            return Ok(start.elapsed());
        };
        if start.elapsed() > timeout {
            let t = d.track();
            bail!(
                "{what}: durable {} ({} on {}) not there after {timeout:?}: {} deliveries logged, {} unacked",
                i,
                d.name,
                d.channel,
                t.log.len(),
                t.unacked.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The result of the "pending before new" check over all durables.
#[derive(Debug, Default)]
pub struct OrderCheck {
    /// Pending messages expected back, over all durables.
    pub expected: usize,
    /// Of those, redelivered (with the flag).
    pub redelivered: usize,
    /// Expected pending messages that came back without the flag.
    pub unflagged: usize,
    /// First deliveries (new messages) seen before the last expected redelivery.
    pub new_before_pending: usize,
    /// Durables with at least one problem.
    pub bad_durables: usize,
}

impl OrderCheck {
    pub fn ok(&self) -> bool {
        self.expected > 0
            && self.redelivered == self.expected
            && self.unflagged == 0
            && self.new_before_pending == 0
    }
}

/// Checks each durable's log against the pending set it had before the
/// restart: every one redelivered with the flag, and no first delivery
/// before the last of them.
pub fn check_order(durables: &[Durable], expected: &[BTreeSet<u64>]) -> OrderCheck {
    let mut c = OrderCheck::default();
    for (d, want) in durables.iter().zip(expected) {
        let t = d.track();
        c.expected += want.len();
        let mut seen = BTreeSet::new();
        let mut unflagged = 0;
        let mut last_pending_at = None;
        for (i, (seq, redelivered)) in t.log.iter().enumerate() {
            if want.contains(seq) {
                if *redelivered {
                    seen.insert(*seq);
                } else {
                    unflagged += 1;
                }
                last_pending_at = Some(i);
            }
        }
        let new_before = match last_pending_at {
            Some(end) => t.log[..end]
                .iter()
                .filter(|(s, r)| !r && !want.contains(s))
                .count(),
            None => 0,
        };
        c.redelivered += seen.len();
        c.unflagged += unflagged;
        c.new_before_pending += new_before;
        if seen.len() != want.len() || unflagged > 0 || new_before > 0 {
            c.bad_durables += 1;
        }
    }
    c
}

/// Sequences a durable got back with the redelivered flag.
pub(super) fn redelivered_set(t: &Track) -> BTreeSet<u64> {
    t.log.iter().filter(|(_, r)| *r).map(|(s, _)| *s).collect()
}

/// `n` NATS connections for clients to share.
pub(super) async fn nats_conns(url: &str, n: usize) -> anyhow::Result<Vec<async_nats::Client>> {
    let mut v = Vec::new();
    for _ in 0..n.max(1) {
        v.push(
            async_nats::ConnectOptions::new()
                .subscription_capacity(1 << 16)
                .connect(url)
                .await?,
        );
    }
    Ok(v)
}

/// Publishes `n` messages with PubAcks in flight (up to the connection's limit).
pub(super) async fn publish(
    conn: &Connection,
    channel: &str,
    n: u64,
    payload: &Bytes,
) -> anyhow::Result<()> {
    let mut acks = futures::stream::FuturesUnordered::new();
    for _ in 0..n {
        acks.push(conn.publish_async(channel, payload.clone()).await?);
        while let Some(Some((_, r))) = acks.next().now_or_never() {
            r?;
        }
    }
    while let Some((_, r)) = acks.next().await {
        r?;
    }
    Ok(())
}

pub(super) use crate::status_mb;

/// Bytes of all files under `dir`.
pub(super) fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What a restart measured.
pub(super) struct Restart {
    pub discover: Duration,
    pub rss_after: f64,
}

/// The stanchion process under test.
pub(super) struct Server {
    bin: PathBuf,
    argv: Vec<String>,
    log_dir: PathBuf,
    cluster_id: String,
    /// Connection used to poll the discover subject.
    probe: async_nats::Client,
    child: Option<tokio::process::Child>,
    pub pid: u32,
    pub spawned: Instant,
    spawned_wall: SystemTime,
    log: PathBuf,
}

impl Server {
    /// Runs `bin argv`, logging into `log_dir/stanchion-<label>.log`.
    pub async fn new(
        bin: PathBuf,
        argv: Vec<String>,
        log_dir: PathBuf,
        url: &str,
        cluster_id: &str,
    ) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&log_dir)?;
        println!("stanchion command: {} {}", bin.display(), argv.join(" "));
        Ok(Server {
            bin,
            argv,
            log_dir,
            cluster_id: cluster_id.to_string(),
            probe: async_nats::connect(url)
                .await
                .context("connecting to NATS")?,
            child: None,
            pid: 0,
            spawned: Instant::now(),
            spawned_wall: SystemTime::now(),
            log: PathBuf::new(),
        })
    }

    pub async fn start(&mut self, label: &str) -> anyhow::Result<()> {
        self.log = self.log_dir.join(format!("stanchion-{label}.log"));
        let file = std::fs::File::create(&self.log)?;
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(&self.argv)
            .stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        self.spawned_wall = SystemTime::now();
        self.spawned = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.pid = child.id().context("stanchion pid")?;
        self.child = Some(child);
        Ok(())
    }

    /// Time from spawn to the first ConnectRequest answered (polled with
    /// fresh client IDs; "no responders" comes back at once).
    pub async fn wait_discover(&mut self) -> anyhow::Result<Duration> {
        loop {
            let mut opts =
                Options::new(&self.cluster_id, format!("recovery-probe-{}", nuid::next()));
            opts.connect_wait = Duration::from_millis(1000);
            let tried = Instant::now();
            match Connection::connect(self.probe.clone(), opts).await {
                Ok(conn) => {
                    let t = self.spawned.elapsed();
                    let _ = conn.close().await;
                    return Ok(t);
                }
                Err(ClientError::ConnectTimeout) => {}
                Err(e) => bail!("probing the discover subject: {e}"),
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "stanchion exited ({status}) before answering; see {}",
                    self.log.display()
                );
            }
            if self.spawned.elapsed() > Duration::from_secs(120) {
                bail!(
                    "stanchion did not answer its discover subject within 120 s; see {}",
                    self.log.display()
                );
            }
            if tried.elapsed() < Duration::from_millis(5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// Discover time and RSS right after; prints them with the log's milestones.
    pub async fn measure_restart(&mut self) -> anyhow::Result<Restart> {
        let discover = self.wait_discover().await?;
        let rss_after = self.rss()?;
        println!(
            "spawn -> first answered ConnectRequest: {:.0?}; RSS then {rss_after:.1} MB",
            discover
        );
        println!("log ({}): {}", self.log.display(), self.milestones());
        Ok(Restart {
            discover,
            rss_after,
        })
    }

    /// Offsets from spawn of the log lines that mark the start: the store
    /// is open when the NATS connection starts, channels are recovered
    /// after it, then the server is ready.
    fn milestones(&self) -> String {
        let Ok(text) = std::fs::read_to_string(&self.log) else {
            return "unreadable".into();
        };
        let spawned = chrono::DateTime::<chrono::Utc>::from(self.spawned_wall);
        let at = |line: &str| {
            let ts = line.split_whitespace().next()?;
            let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
            Some((t.with_timezone(&chrono::Utc) - spawned).num_milliseconds())
        };
        let find = |pat: &str| {
            text.lines()
                .filter(|l| l.contains(pat))
                .filter_map(at)
                .collect::<Vec<_>>()
        };
        let ms = |v: Option<&i64>| v.map_or("?".into(), |v| format!("+{v} ms"));
        let first = text.lines().next().and_then(at);
        let nats = find("connecting to nats-server");
        let recovered = find("recovered channel");
        let ready = find("stanchion is ready");
        format!(
            "first line {}, store open (connecting to nats-server) {}, {} \"recovered channel\" lines {}..{}, \"stanchion is ready\" {}",
            ms(first.as_ref()),
            ms(nats.first()),
            recovered.len(),
            ms(recovered.first()),
            ms(recovered.last()),
            ms(ready.first()),
        )
    }

    pub fn rss(&self) -> anyhow::Result<f64> {
        status_mb(self.pid, "VmRSS")
    }

    /// RSS split as /proc reports it: anonymous (heap) and file-backed.
    pub fn rss_parts(&self) -> String {
        let part = |k| status_mb(self.pid, k).map_or("?".into(), |v| format!("{v:.1}"));
        format!("anon {} MB, file {} MB", part("RssAnon"), part("RssFile"))
    }

    pub fn hwm(&self) -> anyhow::Result<f64> {
        status_mb(self.pid, "VmHWM")
    }

    /// SIGKILL (`kill`) or SIGTERM; how long the process took to exit.
    pub async fn stop(&mut self, kill: bool) -> anyhow::Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let t = Instant::now();
        if kill {
            child.start_kill()?;
        } else {
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status()?;
            if !sent.success() {
                bail!("kill -TERM {} failed", self.pid);
            }
        }
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .context("stanchion did not exit within 30 s")??;
        if !kill && !status.success() {
            bail!(
                "stanchion exited with {status} on SIGTERM; see {}",
                self.log.display()
            );
        }
        Ok(t.elapsed())
    }
}

/// Goals met or missed, printed at the end.
#[derive(Default)]
pub(super) struct Goals(Vec<(String, bool, String)>);

impl Goals {
    pub fn check(&mut self, goal: &str, ok: bool, detail: String) {
        self.0.push((goal.to_string(), ok, detail));
    }

    /// Prints every goal; an error if one was missed.
    pub fn finish(self) -> anyhow::Result<()> {
        println!("== goals");
        let mut missed = 0;
        for (goal, ok, detail) in &self.0 {
            println!("{} {goal}: {detail}", if *ok { "MET   " } else { "MISSED" });
            missed += usize::from(!ok);
        }
        if missed > 0 {
            bail!("{missed} goal(s) missed");
        }
        println!("all goals met");
        Ok(())
    }
}
