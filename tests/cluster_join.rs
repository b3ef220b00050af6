//! How nodes come into a cluster: a seed started with `cluster_bootstrap`
//! (here from a standalone store, which becomes the cluster's state) and
//! nodes without peers that ask its leader to add them; a second seed is
//! refused; a node whose Raft log is gone sets its store aside and takes
//! the cluster's state again; with `cluster_allow_add_remove_node`, nodes
//! are removed and added on request.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{caught_up, leader, node, publish_retrying, stan_client};
use common::*;
use stanchion::client::Connection;

/// The payloads of the first `n` messages of `channel`.
async fn payloads(conn: &Connection, channel: &str, n: usize) -> Vec<String> {
    let mut sub = conn.subscribe(channel, first()).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let m = next_msg(&mut sub).await;
        out.push(String::from_utf8(m.data().to_vec()).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_store_seeds_a_cluster_that_nodes_join() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    // A standalone server's store, with 20 messages.
    {
        let mut alone = Stanchion::start(&nats, &dir.path().join("a"), &[]).await;
        let conn = stan(&nats, "before").await;
        for i in 1..=20 {
            conn.publish("orders", format!("m-{i}")).await.unwrap();
        }
        conn.close().await.unwrap();
        assert!(alone.proc.terminate(WAIT).is_some_and(|s| s.success()));
    }
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut procs = vec![node(
        &nats,
        dir.path(),
        "a",
        ports[0],
        &["--cluster_bootstrap"],
    )];
    procs[0]
        .wait_for_output_within("starting the cluster from the existing store", WAIT)
        .await;
    procs[0]
        .wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    for (name, port) in ["b", "c"].into_iter().zip(&ports[1..]) {
        procs.push(node(&nats, dir.path(), name, *port, &[]));
    }
    for p in &ports[1..] {
        caught_up(*p, "Follower", 20, Duration::from_secs(30)).await;
    }
    let deadline = Instant::now() + WAIT;
    while procs[0].output().matches("node joined the cluster").count() < 2 {
        assert!(Instant::now() < deadline, "{}", procs[0].output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let conn = stan_client(&nats, "after").await;
    let want: Vec<String> = (1..=20).map(|i| format!("m-{i}")).collect();
    assert_eq!(payloads(&conn, "orders", 20).await, want);
    let start = Instant::now();
    for i in 21..=25 {
        publish_retrying(&conn, "orders", format!("m-{i}"), start).await;
    }
    for p in &ports[1..] {
        caught_up(*p, "Follower", 25, WAIT).await;
    }

    // The nodes that joined are voters: without the seed, they elect one
    // of themselves and go on.
    procs[0].kill();
    let alive = [false, true, true];
    let next = leader(&ports, &alive, Duration::from_secs(30)).await;
    assert_ne!(next, 0);
    publish_retrying(&conn, "orders", "m-26".into(), Instant::now()).await;
    caught_up(ports[next], "Leader", 26, WAIT).await;
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_seeds_of_one_cluster_both_stop() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = node(
        &nats,
        dir.path(),
        "a",
        free_port(),
        &["--cluster_bootstrap"],
    );
    a.wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    let mut b = node(
        &nats,
        dir.path(),
        "b",
        free_port(),
        &["--cluster_bootstrap"],
    );
    for p in [&mut a, &mut b] {
        let status = tokio::time::timeout(Duration::from_secs(15), p.wait_exit())
            .await
            .expect("a seed beside another seed kept running");
        assert!(!status.success());
        assert!(
            p.output()
                .contains("was also started with -cluster_bootstrap"),
            "{}",
            p.output()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_raft_log_is_gone_sets_its_store_aside_and_catches_up() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c"];
    let peers = ["--cluster_peers", "a,b,c"];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let mut procs: Vec<Proc> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| node(&nats, dir.path(), n, *p, &peers))
        .collect();
    let first = leader(&ports, &[true; 3], Duration::from_secs(30)).await;
    procs[first]
        .wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    let conn = stan_client(&nats, "writer").await;
    let start = Instant::now();
    for i in 1..=30 {
        publish_retrying(&conn, "orders", format!("m-{i}"), start).await;
    }
    let follower = (first + 1) % 3;
    caught_up(ports[follower], "Follower", 30, WAIT).await;
    assert!(procs[follower].terminate(WAIT).is_some());
    let store = dir.path().join(names[follower]);
    std::fs::remove_dir_all(store.join("raft")).unwrap();

    procs[follower] = node(&nats, dir.path(), names[follower], ports[follower], &peers);
    procs[follower]
        .wait_for_output_within("the store was set aside", Duration::from_secs(20))
        .await;
    caught_up(ports[follower], "Follower", 30, Duration::from_secs(30)).await;
    let kept: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("set-aside-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        std::fs::read_dir(store.join(&kept[0])).unwrap().count() > 0,
        "the old store's files are kept"
    );
    // It applies what comes next too.
    publish_retrying(&conn, "orders", "m-31".into(), Instant::now()).await;
    caught_up(ports[follower], "Follower", 31, WAIT).await;
    drop(conn);
}

/// Whether the leader on `port` replicates to `peer`.
fn replicates_to(port: u16, peer: &str) -> bool {
    let key = format!("stanchion_raft_replication_lag_entries{{peer=\"{peer}\"}}");
    common::http::get(port, "/metrics").body.contains(&key)
}

async fn until(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_removed_and_added_on_request() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c"];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let extra = [
        "--cluster_peers",
        "a,b,c",
        "--cluster_allow_add_remove_node",
    ];
    let mut procs: Vec<Proc> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| node(&nats, dir.path(), n, *p, &extra))
        .collect();
    let mut alive = vec![true; 3];
    let first = leader(&ports, &alive, Duration::from_secs(30)).await;
    let other = (first + 1) % 3;
    let (lport, oname) = (ports[first], names[other]);
    until("leader replicates to every node", || {
        replicates_to(lport, oname)
    })
    .await;
    let nc = nats.client().await;
    let ask = |verb: &str, name: &str| {
        let (nc, subject, name) = (
            nc.clone(),
            format!("_STAN.raft.test-cluster.node.{verb}"),
            name.to_string(),
        );
        async move {
            let m = tokio::time::timeout(WAIT, nc.request(subject, name.into()))
                .await
                .expect("node request answered in time")
                .expect("node request");
            String::from_utf8(m.payload.to_vec()).unwrap()
        }
    };

    assert_eq!(
        ask("add", "x.y").await,
        "-ERR adding node \"x.y\": invalid node ID"
    );
    assert_eq!(ask("remove", oname).await, "+OK");
    until("removed node no longer replicated to", || {
        !replicates_to(lport, oname)
    })
    .await;
    let conn = stan_client(&nats, "members").await;
    let start = Instant::now();
    for i in 1..=5 {
        publish_retrying(&conn, "ch", format!("m-{i}"), start).await;
    }
    assert_eq!(ask("add", oname).await, "+OK");
    caught_up(ports[other], "Follower", 5, WAIT).await;
    assert!(replicates_to(lport, oname));

    // A leader that removes itself steps down and stops, exit status 0.
    assert_eq!(ask("remove", names[first]).await, "+OK");
    let status = common::secure::wait_exit(&mut procs[first], WAIT).await;
    assert!(status.success(), "{status:?}: {}", procs[first].output());
    alive[first] = false;
    let second = leader(&ports, &alive, Duration::from_secs(30)).await;
    assert_ne!(second, first);
    publish_retrying(&conn, "ch", "m-6".into(), Instant::now()).await;
    assert_eq!(payloads(&conn, "ch", 6).await.last().unwrap(), "m-6");
    conn.close().await.unwrap();
}
