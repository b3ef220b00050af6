//! Partitioning (`partitioning: true`): two servers with one cluster ID,
//! each serving the channels of its `store_limits.channels`; clients use
//! channels of both without knowing there are two; a server whose
//! channels overlap another's refuses to start, and one that finds an
//! overlap later (their nats-servers joined one NATS cluster) stops.

mod common;

use std::path::Path;
use std::time::Duration;

use common::http::{get, wait_for_status};
use common::*;
use futures::StreamExt;
use prost::Message as _;
use serde_json::json;
use stanchion::client::{ClientError, Connection, Options};
use stanchion::protocol::pb::{ConnectRequest, ConnectResponse, PubAck, PubMsg};

/// A config file serving `channels` (patterns), with monitoring on `port`.
fn partition_config(dir: &Path, name: &str, channels: &[&str], port: u16) -> String {
    let entries: String = channels
        .iter()
        .map(|c| format!("      \"{c}\": {{}}\n"))
        .collect();
    let text = format!(
        "http: {port}\nstreaming {{\n  partitioning: true\n  store_limits {{\n    channels {{\n{entries}    }}\n  }}\n}}\n"
    );
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn partition(nats: &Nats, dir: &Path, name: &str, channels: &[&str], port: u16) -> Proc {
    let conf = partition_config(dir, name, channels, port);
    let store = dir.join(name);
    Proc::stanchion(&[
        "--nats_server",
        &nats.url(),
        "--dir",
        store.to_str().unwrap(),
        "-sc",
        &conf,
    ])
}

async fn started(p: Proc) -> Proc {
    p.wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    p
}

async fn connect(nats: &Nats, id: &str) -> Connection {
    let mut opts = Options::new("test-cluster", id);
    opts.connect_wait = Duration::from_secs(5);
    opts.pub_ack_wait = Duration::from_secs(1);
    Connection::connect(nats.client().await, opts)
        .await
        .expect("STAN connect")
}

fn channel_names(port: u16) -> serde_json::Value {
    get(port, "/streaming/channelsz").json()["names"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_use_the_channels_of_both_servers_and_each_stores_only_its_own() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let _a = started(partition(
        &nats,
        dir.path(),
        "a",
        &["orders.*", "audit"],
        port_a,
    ))
    .await;
    let _b = started(partition(&nats, dir.path(), "b", &["users.>"], port_b)).await;
    wait_for_status(port_b, "/streaming/serverz", 200, WAIT).await;

    let conn = connect(&nats, "shopper").await;
    let mut orders = conn.subscribe("orders.eu", first()).await.unwrap();
    let mut users = conn.subscribe("users.eu.new", first()).await.unwrap();
    publish_n(&conn, "orders.eu", "o", 5).await;
    publish_n(&conn, "users.eu.new", "u", 3).await;
    publish_n(&conn, "audit", "a", 2).await;
    assert_eq!(next_seqs(&mut orders, 5).await, vec![1, 2, 3, 4, 5]);
    assert_eq!(next_seqs(&mut users, 3).await, vec![1, 2, 3]);
    let mut audit = conn.subscribe("audit", first()).await.unwrap();
    assert_eq!(next_msg(&mut audit).await.data().as_ref(), b"a-1");

    assert_eq!(channel_names(port_a), json!(["audit", "orders.eu"]));
    assert_eq!(channel_names(port_b), json!(["users.eu.new"]));
    // Both servers registered the client: either can serve it.
    for port in [port_a, port_b] {
        let clients = get(port, "/streaming/clientsz").json();
        assert_eq!(clients["total"], json!(1), "{clients}");
    }

    // A channel no server owns: nobody answers, the publish times out.
    match conn.publish("nobody.owns.this", "x").await {
        Err(ClientError::PubAckTimeout) => {}
        other => panic!("expected a PubAck timeout, got {other:?}"),
    }
    conn.close().await.unwrap();
}

/// Sends a ConnectRequest for `client_id` and, without waiting for its
/// answer, a publish to each of `channels`; returns the PubAcks' errors
/// and the number of servers that accepted the connect.
async fn connect_and_publish_at_once(
    nc: &async_nats::Client,
    client_id: &str,
    channels: &[&str],
) -> (Vec<String>, usize) {
    let conn_id = bytes::Bytes::from(nuid::next().to_string());
    let connects = nc.new_inbox();
    let acks = nc.new_inbox();
    let mut connect_replies = nc.subscribe(connects.clone()).await.unwrap();
    let mut ack_replies = nc.subscribe(acks.clone()).await.unwrap();
    let req = ConnectRequest {
        client_id: client_id.into(),
        // Nobody listens: a later connect under this ID finds it dead.
        heartbeat_inbox: nc.new_inbox(),
        protocol: 1,
        conn_id: conn_id.clone(),
        ping_interval: 5,
        ping_max_out: 3,
    };
    nc.publish_with_reply(
        "_STAN.discover.test-cluster",
        connects,
        req.encode_to_vec().into(),
    )
    .await
    .unwrap();
    for channel in channels {
        let msg = PubMsg {
            client_id: client_id.into(),
            guid: format!("{client_id}-{channel}-{}", nuid::next()),
            subject: channel.to_string(),
            data: bytes::Bytes::from_static(b"x"),
            conn_id: conn_id.clone(),
            ..Default::default()
        };
        let subject = format!("_STAN.pub.test-cluster.{channel}");
        nc.publish_with_reply(subject, acks.clone(), msg.encode_to_vec().into())
            .await
            .unwrap();
    }
    let mut errors = Vec::new();
    for _ in channels {
        let ack = tokio::time::timeout(WAIT, ack_replies.next())
            .await
            .unwrap()
            .unwrap();
        errors.push(PubAck::decode(ack.payload).unwrap().error);
    }
    let mut accepted = 0;
    for _ in 0..2 {
        let r = tokio::time::timeout(WAIT, connect_replies.next())
            .await
            .unwrap()
            .unwrap();
        if ConnectResponse::decode(r.payload).unwrap().error.is_empty() {
            accepted += 1;
        }
    }
    (errors, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_sent_right_behind_its_connect_is_taken_by_either_server() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let _a = started(partition(&nats, dir.path(), "a", &["left"], port_a)).await;
    let _b = started(partition(&nats, dir.path(), "b", &["right"], port_b)).await;
    // The publishes go out behind the connect without waiting for its
    // answer, so each server has both queued at once: the connect must be
    // taken first, whatever the dispatcher would pick.
    let nc = nats.client().await;
    let rounds = 30;
    for i in 0..rounds {
        let (errors, accepted) =
            connect_and_publish_at_once(&nc, &format!("quick-{i}"), &["left", "right"]).await;
        assert_eq!(errors, ["", ""], "round {i}");
        assert_eq!(accepted, 2, "both servers accept the connect");
    }
    // The same IDs again, each replacing a client that no longer answers
    // its heartbeats: the publishes wait while each server probes it.
    for i in 0..rounds {
        let (errors, accepted) =
            connect_and_publish_at_once(&nc, &format!("quick-{i}"), &["left", "right"]).await;
        assert_eq!(errors, ["", ""], "replacing round {i}");
        assert_eq!(accepted, 2, "both servers replace the dead client");
    }
    for port in [port_a, port_b] {
        let z = get(port, "/streaming/serverz").json();
        assert_eq!(z["total_msgs"], json!(2 * rounds), "{z}");
        assert_eq!(
            get(port, "/streaming/clientsz").json()["total"],
            json!(rounds)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_channels_overlap_another_servers_refuses_to_start() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let port_a = free_port();
    let a = started(partition(
        &nats,
        dir.path(),
        "a",
        &["orders.*", "audit"],
        port_a,
    ))
    .await;
    let a_id = get(port_a, "/streaming/serverz").json()["server_id"]
        .as_str()
        .unwrap()
        .to_string();

    for (name, channels, clash) in [
        ("b", &["users", "orders.eu"][..], "orders.eu"),
        // Neither pattern contains the other, but `orders.new` is both.
        ("c", &["*.new"][..], "*.new"),
    ] {
        let mut b = partition(&nats, dir.path(), name, channels, free_port());
        let status = b.wait_exit().await;
        assert!(!status.success(), "{status:?}");
        let expected =
            format!("channel \"{clash}\" causes conflict with channels on server \"{a_id}\"");
        assert!(b.output().contains(&expected), "{}", b.output());
        assert!(!b.output().contains("stanchion is ready"));
    }
    // The server that was there first goes on serving.
    let conn = stan(&nats, "still").await;
    conn.publish("audit", "ok").await.unwrap();
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_overlap_stop_once_their_nats_servers_join_one_cluster() {
    // Two nats-servers whose routes go through proxies, cut at first: two
    // separate NATS clusters, where each partition may own "orders.*".
    let (route_a, route_b) = (free_port(), free_port());
    let a_to_b = common::proxy::Proxy::start(route_b).await;
    let b_to_a = common::proxy::Proxy::start(route_a).await;
    a_to_b.set_cut(true);
    b_to_a.set_cut(true);
    let nats_a = Nats::start_routed(None, route_a, &[a_to_b.port]);
    let nats_b = Nats::start_routed(None, route_b, &[b_to_a.port]);
    let dir = tempfile::tempdir().unwrap();
    let mut a = started(partition(
        &nats_a,
        dir.path(),
        "a",
        &["orders.*"],
        free_port(),
    ))
    .await;
    let mut b = started(partition(
        &nats_b,
        dir.path(),
        "b",
        &["orders.eu"],
        free_port(),
    ))
    .await;
    // Elsewhere on a's NATS cluster, a server with other channels is fine.
    let c = started(partition(&nats_a, dir.path(), "c", &["users"], free_port())).await;

    // The routes come up: a and b now share a cluster ID and a channel.
    a_to_b.set_cut(false);
    b_to_a.set_cut(false);
    let limit = Duration::from_secs(20);
    let deadline = std::time::Instant::now() + limit;
    // The first to check gets the other's answer and stops; the other
    // stops too if its own check reached the first before it went. Either
    // way, at most one of them serves "orders.eu".
    let stopped = loop {
        if let Some(status) = a.try_wait() {
            break (status, &a);
        }
        if let Some(status) = b.try_wait() {
            break (status, &b);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}\n{}\n{}",
            a.output(),
            b.output(),
            nats_a.proc.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (status, p) = stopped;
    assert!(!status.success(), "{status:?}: {}", p.output());
    assert!(
        p.output()
            .contains("causes conflict with channels on server"),
        "{}",
        p.output()
    );
    // c, whose channel nobody else owns, goes on serving it.
    let conn = connect(&nats_a, "still").await;
    conn.publish("users", "ok").await.unwrap();
    conn.close().await.unwrap();
    drop(c);
}
