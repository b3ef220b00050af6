//! The clustering building blocks together: three openraft nodes, each with
//! its own NATS connection, sled log and store, elect a leader over a real
//! nats-server, replicate store writes to every node's store, and elect a
//! new leader that goes on replicating when the first one stops.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use prost::Message as _;
use stanchion::cluster::network::{serve, Fetcher, NatsNetwork};
use stanchion::cluster::{node_id, ClusterNode, LogStore, Op, Raft, StateMachine};
use stanchion::protocol::pb::MsgProto;
use stanchion::store::{MemoryStore, Store};
use tokio_util::task::AbortOnDropHandle;

const CLUSTER: &str = "test-cluster";

struct Node {
    name: &'static str,
    raft: Raft,
    store: Arc<dyn Store>,
    _server: AbortOnDropHandle<()>,
    _dir: tempfile::TempDir,
}

fn raft_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        snapshot_max_chunk_size: 256 * 1024,
        ..Default::default()
    };
    Arc::new(config.validate().unwrap())
}

async fn node(nats: &Nats, name: &'static str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let log = LogStore::open(dir.path()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let nc = nats.client().await;
    let sm = StateMachine::open(store.clone(), log.db().clone())
        .unwrap()
        .fetching(Fetcher::new(nc.clone(), CLUSTER, node_id(name)));
    let network = NatsNetwork::new(nc.clone(), CLUSTER);
    let raft = Raft::new(node_id(name), raft_config(), network, log, sm)
        .await
        .unwrap();
    let server = serve(raft.clone(), store.clone(), nc, CLUSTER, name)
        .await
        .unwrap();
    Node {
        name,
        raft,
        store,
        _server: server,
        _dir: dir,
    }
}

/// Starts a cluster of `nodes` from the first one.
async fn initialize(nodes: &[Node]) {
    let members: BTreeMap<u64, ClusterNode> = nodes
        .iter()
        .map(|n| {
            (
                node_id(n.name),
                ClusterNode {
                    name: n.name.into(),
                },
            )
        })
        .collect();
    nodes[0].raft.initialize(members).await.unwrap();
}

fn batch(channel: &str, seqs: std::ops::RangeInclusive<u64>) -> Op {
    Op::Append {
        channel: channel.into(),
        msgs: seqs
            .map(|seq| {
                let m = MsgProto {
                    sequence: seq,
                    subject: channel.into(),
                    data: Bytes::from(format!("{channel}-{seq}")),
                    timestamp: 1,
                    ..Default::default()
                };
                Bytes::from(m.encode_to_vec())
            })
            .collect(),
    }
}

async fn leader_among(nodes: &[&Node], limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        for n in nodes {
            let m = n.raft.metrics().borrow().clone();
            if m.current_leader == Some(m.id) {
                return m.id;
            }
        }
        assert!(Instant::now() < deadline, "no leader within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `node` has applied `index`, then reads its channel.
async fn stored(node: &Node, channel: &str, index: u64) -> Vec<Bytes> {
    node.raft
        .wait(Some(WAIT))
        .applied_index_at_least(Some(index), "applied")
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", node.name));
    let c = node.store.open_channel(channel).unwrap();
    c.range(1, 1000)
        .unwrap()
        .into_iter()
        .map(|m| m.data)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_fail_over_over_nats() {
    let nats = Nats::start();
    let nodes = vec![
        node(&nats, "a").await,
        node(&nats, "b").await,
        node(&nats, "c").await,
    ];
    initialize(&nodes).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let first = leader_among(&all, WAIT).await;
    let leader = nodes.iter().find(|n| node_id(n.name) == first).unwrap();

    let applied = leader
        .raft
        .client_write(batch("orders", 1..=100))
        .await
        .unwrap();
    let index = applied.data.index;
    let expected: Vec<Bytes> = (1..=100)
        .map(|s| Bytes::from(format!("orders-{s}")))
        .collect();
    for n in &nodes {
        assert_eq!(
            stored(n, "orders", index).await,
            expected,
            "node {}",
            n.name
        );
    }

    // The leader stops; the other two elect one of them and go on.
    leader.raft.shutdown().await.unwrap();
    let stopped = Instant::now();
    let rest: Vec<&Node> = nodes.iter().filter(|n| node_id(n.name) != first).collect();
    let second = leader_among(&rest, WAIT).await;
    let elected = stopped.elapsed();
    eprintln!("new leader {elected:?} after the old one stopped");
    assert_ne!(second, first);
    let new_leader = rest.iter().find(|n| node_id(n.name) == second).unwrap();
    let applied = new_leader
        .raft
        .client_write(batch("orders", 101..=150))
        .await
        .unwrap();
    let expected: Vec<Bytes> = (1..=150)
        .map(|s| Bytes::from(format!("orders-{s}")))
        .collect();
    for n in &rest {
        assert_eq!(
            stored(n, "orders", applied.data.index).await,
            expected,
            "node {}",
            n.name
        );
    }
    for n in &rest {
        n.raft.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_larger_than_one_nats_message_together_still_replicate() {
    // 40 batches of 64 KB: more than nats-server's 1 MB max_payload in one
    // AppendEntries, so the network has openraft send fewer at a time.
    let nats = Nats::start();
    let nodes = vec![node(&nats, "x").await, node(&nats, "y").await];
    initialize(&nodes).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let leader_id = leader_among(&all, WAIT).await;
    let leader = nodes.iter().find(|n| node_id(n.name) == leader_id).unwrap();
    let follower = nodes.iter().find(|n| node_id(n.name) != leader_id).unwrap();
    // One channel each: proposed together, their order is not fixed.
    let big = |i: u64| Op::Append {
        channel: format!("big.{i}"),
        msgs: vec![Bytes::from(
            MsgProto {
                sequence: 1,
                subject: format!("big.{i}"),
                data: Bytes::from(vec![b'x'; 64 * 1024]),
                ..Default::default()
            }
            .encode_to_vec(),
        )],
    };
    let writes = (1..=40).map(|i| {
        let raft = leader.raft.clone();
        async move { raft.client_write(big(i)).await.unwrap().data.index }
    });
    // Proposed together, so they queue up for one replication round.
    let last = futures::future::join_all(writes)
        .await
        .into_iter()
        .max()
        .unwrap();
    stored(follower, "big.1", last).await;
    for i in 1..=40 {
        let got = stored(follower, &format!("big.{i}"), last).await;
        assert_eq!(got.len(), 1, "big.{i}");
        assert_eq!(got[0].len(), 64 * 1024);
    }
    for n in &nodes {
        n.raft.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_after_the_log_was_compacted_gets_the_store_from_a_snapshot() {
    let nats = Nats::start();
    let first = node(&nats, "p").await;
    let members: BTreeMap<u64, ClusterNode> =
        [(node_id("p"), ClusterNode { name: "p".into() })].into();
    first.raft.initialize(members).await.unwrap();
    leader_among(&[&first], WAIT).await;
    first
        .raft
        .client_write(batch("kept", 1..=50))
        .await
        .unwrap();
    let last = first
        .raft
        .client_write(batch("kept", 51..=80))
        .await
        .unwrap();

    // Snapshot and drop every log entry it covers.
    first.raft.trigger().snapshot().await.unwrap();
    first
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= last.data.index),
            "snapshot",
        )
        .await
        .unwrap();
    first
        .raft
        .trigger()
        .purge_log(last.data.index)
        .await
        .unwrap();
    first
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= last.data.index),
            "purged",
        )
        .await
        .unwrap();

    // The newcomer can only get the messages from the snapshot.
    let late = node(&nats, "q").await;
    first
        .raft
        .add_learner(node_id("q"), ClusterNode { name: "q".into() }, true)
        .await
        .unwrap();
    let expected: Vec<Bytes> = (1..=80).map(|s| Bytes::from(format!("kept-{s}"))).collect();
    assert_eq!(stored(&late, "kept", last.data.index).await, expected);
    let installed = late.raft.metrics().borrow().snapshot;
    assert!(
        installed.is_some_and(|s| s.index >= last.data.index),
        "installed from a snapshot: {installed:?}"
    );
    // And it follows what comes after.
    let more = first
        .raft
        .client_write(batch("kept", 81..=90))
        .await
        .unwrap();
    assert_eq!(stored(&late, "kept", more.data.index).await.len(), 90);
    first.raft.shutdown().await.unwrap();
    late.raft.shutdown().await.unwrap();
}
