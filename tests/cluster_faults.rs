//! Random faults under load: three clustered nodes, each joined through a
//! TCP proxy the test controls to its own nats-server of a NATS cluster of
//! three (routes on loopback). A publisher and a durable subscriber run
//! throughout, on the one nats-server that is never killed. Each round
//! injects a fault (SIGKILL of the leader or of a follower, a node cut off
//! from NATS, a nats-server killed), heals everything and then checks that
//! every acknowledged message is stored exactly once, in order and without
//! gaps, and that every node holds the same messages. At the start, two
//! nodes of three are down: nothing is acknowledged then, and nothing
//! acknowledged earlier is lost.
//!
//! `FAULT_ROUNDS` sets the number of rounds (20 by default), `FAULT_SEED`
//! replays a run (each run prints its seed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{leader, node_at, serverz_async};
use common::proxy::Proxy;
use common::*;
use stanchion::client::{ClientError, Connection, Options, SubscriptionOptions};
use stanchion::store::{SledOptions, SledStore, Store};
use tokio::sync::watch;

const NAMES: [&str; 3] = ["a", "b", "c"];
const CHANNEL: &str = "faults";

/// A small deterministic generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    /// nats-server 0 is never killed: the clients are on it.
    nats: Vec<Option<Nats>>,
    nats_ports: Vec<u16>,
    route_ports: Vec<u16>,
    proxies: Vec<Proxy>,
    nodes: Vec<Option<Proc>>,
    mon_ports: Vec<u16>,
}

impl Cluster {
    async fn start() -> Cluster {
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nats = Vec::new();
        for i in 0..3 {
            let others: Vec<u16> = (0..3).filter(|j| *j != i).map(|j| route_ports[j]).collect();
            nats.push(Some(Nats::start_routed(None, route_ports[i], &others)));
        }
        let nats_ports: Vec<u16> = nats.iter().map(|n| n.as_ref().unwrap().port).collect();
        let mut proxies = Vec::new();
        for port in &nats_ports {
            proxies.push(Proxy::start(*port).await);
        }
        let mut c = Cluster {
            dir: tempfile::tempdir().unwrap(),
            nats,
            nats_ports,
            route_ports,
            proxies,
            nodes: vec![None, None, None],
            mon_ports: (0..3).map(|_| free_port()).collect(),
        };
        for i in 0..3 {
            c.start_node(i);
        }
        c
    }

    fn start_node(&mut self, i: usize) {
        let url = format!("nats://127.0.0.1:{}", self.proxies[i].port);
        self.nodes[i] = Some(node_at(
            &url,
            self.dir.path(),
            NAMES[i],
            self.mon_ports[i],
            &["--cluster_peers", "a,b,c"],
        ));
    }

    fn alive(&self) -> Vec<bool> {
        self.nodes.iter().map(Option::is_some).collect()
    }

    async fn leader(&self) -> usize {
        leader(&self.mon_ports, &self.alive(), Duration::from_secs(30)).await
    }

    /// Restarts what is down and heals every proxy.
    fn heal(&mut self) {
        for i in 0..3 {
            if self.nats[i].is_none() {
                let others: Vec<u16> = (0..3)
                    .filter(|j| *j != i)
                    .map(|j| self.route_ports[j])
                    .collect();
                self.nats[i] = Some(Nats::start_routed(
                    Some(self.nats_ports[i]),
                    self.route_ports[i],
                    &others,
                ));
            }
            self.proxies[i].set_cut(false);
        }
        for i in 0..3 {
            if self.nodes[i].is_none() {
                self.start_node(i);
            }
        }
    }

    /// Waits until every node holds the same number and size of messages
    /// as the leader, and at least `msgs`.
    async fn converged(&self, msgs: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut seen = Vec::new();
            for port in &self.mon_ports {
                seen.push(serverz_async(*port).await.map(|z| {
                    (
                        z["total_msgs"].as_u64().unwrap_or(0),
                        z["total_bytes"].as_u64().unwrap_or(0),
                        z["role"].as_str().unwrap_or_default().to_string(),
                    )
                }));
            }
            let counts: BTreeSet<(u64, u64)> =
                seen.iter().flatten().map(|(m, b, _)| (*m, *b)).collect();
            let leaders = seen.iter().flatten().filter(|s| s.2 == "Leader").count();
            if seen.iter().all(Option::is_some)
                && counts.len() == 1
                && leaders == 1
                && counts.iter().all(|(m, _)| *m >= msgs)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nodes did not converge on {msgs}+ messages: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What the publisher learned: payloads acknowledged, in order.
#[derive(Default)]
struct Published {
    acked: Vec<u64>,
    attempts: u64,
}

async fn client(url: &str, id: &str) -> Connection {
    let mut opts = Options::new("test-cluster", id);
    opts.connect_wait = Duration::from_secs(20);
    opts.pub_ack_wait = Duration::from_secs(1);
    Connection::connect(async_nats::connect(url).await.unwrap(), opts)
        .await
        .unwrap()
}

/// The next payload number: a new one at every attempt, since a retried
/// payload could be stored twice.
fn next_attempt(published: &Mutex<Published>) -> u64 {
    let mut p = published.lock().unwrap();
    p.attempts += 1;
    p.attempts
}

/// Publishes `p-N` while `run` is set; `idle` is set while it waits for
/// `run`, with no publish under way.
fn publisher(
    conn: Arc<Connection>,
    published: Arc<Mutex<Published>>,
    mut run: watch::Receiver<bool>,
    idle: watch::Sender<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if !*run.borrow() {
                idle.send_replace(true);
                if run.wait_for(|r| *r).await.is_err() {
                    return;
                }
                idle.send_replace(false);
            }
            let n = next_attempt(&published);
            match conn.publish(CHANNEL, format!("p-{n}")).await {
                Ok(()) => published.lock().unwrap().acked.push(n),
                Err(ClientError::PubAckTimeout | ClientError::Server(_)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(ClientError::ConnectionClosed) => return,
                Err(e) => panic!("publish p-{n}: {e}"),
            }
        }
    })
}

/// What the durable subscriber received.
#[derive(Default)]
struct Received {
    payloads: BTreeSet<u64>,
    /// Deliveries flagged redelivered, or of a sequence already seen.
    again: usize,
}

/// Receives (and so acknowledges) every message of `sub`, counting those
/// delivered again.
fn consume(
    mut sub: stanchion::client::Subscription,
    received: Arc<Mutex<Received>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        while let Some(m) = sub.next().await {
            let n: u64 = std::str::from_utf8(m.data())
                .unwrap()
                .trim_start_matches("p-")
                .parse()
                .unwrap();
            let mut r = received.lock().unwrap();
            // After a failover the new leader sends again from the last
            // sent position it has; never a new message behind a newer one.
            if m.redelivered() || m.sequence() <= last {
                r.again += 1;
            }
            last = last.max(m.sequence());
            r.payloads.insert(n);
        }
    })
}

/// Every stored message of the channel, read from the first: sequence and
/// payload number.
async fn stored(conn: &Connection, count: u64) -> Vec<(u64, u64)> {
    let mut sub = conn.subscribe(CHANNEL, first()).await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        let m = next_msg(&mut sub).await;
        let n = std::str::from_utf8(m.data())
            .unwrap()
            .trim_start_matches("p-")
            .parse()
            .unwrap();
        out.push((m.sequence(), n));
    }
    sub.unsubscribe().await.unwrap();
    out
}

/// The stored messages hold every acknowledged payload exactly once, in
/// the order acknowledged, at sequences 1, 2, 3, ... without a gap; a
/// payload stored but not acknowledged (its ack lost) is there at most once.
fn check(stored: &[(u64, u64)], acked: &[u64]) {
    for (i, (seq, _)) in stored.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "gap or reorder at {i}: {stored:?}");
    }
    let mut at: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, (_, n)) in stored.iter().enumerate() {
        assert!(at.insert(*n, i).is_none(), "p-{n} stored twice");
    }
    let mut last = None;
    for n in acked {
        let i = *at
            .get(n)
            .unwrap_or_else(|| panic!("acknowledged p-{n} is not stored"));
        assert!(last < Some(i), "p-{n} stored out of its ack order");
        last = Some(i);
    }
}

/// The channel's messages in a node's store, read once the node stopped.
fn node_messages(dir: &Path) -> Vec<(u64, bytes::Bytes)> {
    let store = SledStore::open(SledOptions {
        dir: dir.to_path_buf(),
        cache_capacity: 8 << 20,
    })
    .unwrap();
    let c = store.open_channel(CHANNEL).unwrap();
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = c.range(from, 1000).unwrap();
        let Some(last) = page.last().map(|m| m.sequence) else {
            return out;
        };
        out.extend(page.into_iter().map(|m| (m.sequence, m.data)));
        from = last + 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_under_load_lose_no_acknowledged_message() {
    let rounds: usize = std::env::var("FAULT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("FAULT_SEED={seed} FAULT_ROUNDS={rounds}");
    let mut rng = Rng(seed);
    let mut cluster = Cluster::start().await;
    let first_leader = cluster.leader().await;
    cluster.nodes[first_leader]
        .as_ref()
        .unwrap()
        .wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    let home = cluster.nats[0].as_ref().unwrap().url();
    let conn = Arc::new(client(&home, "publisher").await);
    let reader = client(&home, "reader").await;
    let consumer = client(&home, "consumer").await;

    // Two of three down: nothing is acknowledged.
    let published = Arc::new(Mutex::new(Published::default()));
    let (run, running) = watch::channel(true);
    let (idle_tx, mut idle) = watch::channel(false);
    let pubs = publisher(conn.clone(), published.clone(), running, idle_tx);
    let pause = |run: &watch::Sender<bool>| {
        run.send_replace(false);
    };
    acked_at_least(&published, 50).await;
    pause(&run);
    idle.wait_for(|i| *i).await.unwrap();
    let before = published.lock().unwrap().acked.len();
    for i in [(first_leader + 1) % 3, (first_leader + 2) % 3] {
        cluster.nodes[i].as_mut().unwrap().kill();
        cluster.nodes[i] = None;
    }
    for _ in 0..3 {
        let n = next_attempt(&published);
        match conn.publish(CHANNEL, format!("p-{n}")).await {
            Err(ClientError::PubAckTimeout | ClientError::Server(_)) => {}
            other => panic!("a publish with two nodes of three down: {other:?}"),
        }
    }
    cluster.heal();
    cluster.converged(before as u64).await;
    // The lonely publishes were never acknowledged; they may be stored or
    // not. Count what is stored to read it all back.
    let total = |c: &Cluster| {
        let port = c.mon_ports[0];
        async move {
            serverz_async(port).await.unwrap()["total_msgs"]
                .as_u64()
                .unwrap()
        }
    };
    let lonely = total(&cluster).await - before as u64;
    assert!(lonely <= 3);
    let durable = consumer
        .subscribe(
            CHANNEL,
            SubscriptionOptions {
                durable_name: Some("keeper".into()),
                ack_wait: Duration::from_secs(2),
                ..first()
            },
        )
        .await
        .unwrap();
    let received = Arc::new(Mutex::new(Received::default()));
    let consuming = consume(durable, received.clone());

    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..rounds {
        run.send_replace(true);
        let leader = cluster.leader().await;
        let fault = match rng.below(4) {
            0 => {
                cluster.nodes[leader].as_mut().unwrap().kill();
                cluster.nodes[leader] = None;
                "SIGKILL leader"
            }
            1 => {
                let f = (leader + 1 + rng.below(2) as usize) % 3;
                cluster.nodes[f].as_mut().unwrap().kill();
                cluster.nodes[f] = None;
                "SIGKILL follower"
            }
            2 => {
                cluster.proxies[rng.below(3) as usize].set_cut(true);
                "node cut off from NATS"
            }
            _ => {
                let s = 1 + rng.below(2) as usize;
                cluster.nats[s] = None;
                "nats-server killed"
            }
        };
        *faults.entry(fault).or_default() += 1;
        let acked_at_fault = published.lock().unwrap().acked.len();
        // Let the fault bite under load for a moment.
        let deadline = Instant::now() + Duration::from_millis(1500 + rng.below(1500));
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cluster.heal();
        // Publishing goes on once healed.
        let wanted = published.lock().unwrap().acked.len() + 20;
        acked_at_least(&published, wanted).await;
        pause(&run);
        idle.wait_for(|i| *i).await.unwrap();
        let (acked, settled) = {
            let p = published.lock().unwrap();
            (p.acked.clone(), p.attempts)
        };
        cluster.converged(acked.len() as u64).await;
        let count = total(&cluster).await;
        let stored = stored(&reader, count).await;
        check(&stored, &acked);
        eprintln!(
            "round {round}: {fault}; {} acked ({} since the fault), {count} stored, {settled} attempts",
            acked.len(),
            acked.len() - acked_at_fault
        );
    }
    run.send_replace(false);

    // The durable subscriber got every acknowledged message.
    let acked = published.lock().unwrap().acked.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = {
            let r = received.lock().unwrap();
            acked.iter().filter(|n| !r.payloads.contains(n)).count()
        };
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged messages never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consuming.abort();
    let again = received.lock().unwrap().again;
    eprintln!("faults: {faults:?}; {again} messages delivered again");
    pubs.abort();

    // Every node's store holds exactly the same messages.
    let count = total(&cluster).await;
    for node in cluster.nodes.iter_mut().flatten() {
        assert!(node.terminate(Duration::from_secs(20)).is_some());
    }
    let stores: Vec<_> = NAMES
        .iter()
        .map(|n| node_messages(&cluster.dir.path().join(n)))
        .collect();
    assert_eq!(stores[0].len() as u64, count);
    assert!(stores.iter().all(|s| *s == stores[0]), "stores differ");
}

/// Waits until `n` publishes were acknowledged (60 s at most).
async fn acked_at_least(published: &Mutex<Published>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while published.lock().unwrap().acked.len() < n {
        assert!(Instant::now() < deadline, "publishes stopped short of {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
