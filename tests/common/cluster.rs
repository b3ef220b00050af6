//! Helpers for tests of clustered nodes: each node a stanchion process with
//! its own store and monitoring port, on one nats-server.

use std::path::Path;
use std::time::{Duration, Instant};

use stanchion::client::{ClientError, Connection, Options};

use super::http::try_get;
use super::{Nats, Proc};

/// A clustered node `name` with its store in `dir/name`, monitoring on
/// `port`, and `extra` flags (its peers, bootstrap, ...).
pub fn node(nats: &Nats, dir: &Path, name: &str, port: u16, extra: &[&str]) -> Proc {
    node_at(&nats.url(), dir, name, port, extra)
}

/// [`node`] joined to the nats-server at `url`.
pub fn node_at(url: &str, dir: &Path, name: &str, port: u16, extra: &[&str]) -> Proc {
    let owned = [
        "--nats_server".to_string(),
        url.to_string(),
        "--dir".to_string(),
        dir.join(name).to_str().unwrap().to_string(),
        "--clustered".to_string(),
        "--cluster_node_id".to_string(),
        name.to_string(),
        "-m".to_string(),
        port.to_string(),
    ];
    let args: Vec<&str> = owned
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect();
    Proc::stanchion(&args)
}

/// `/streaming/serverz` of the node on `port`, if it answers.
pub fn serverz(port: u16) -> Option<serde_json::Value> {
    try_get(port, "/streaming/serverz")
        .filter(|r| r.status == 200)
        .map(|r| r.json())
}

/// [`serverz`] off the async workers.
pub async fn serverz_async(port: u16) -> Option<serde_json::Value> {
    tokio::task::spawn_blocking(move || serverz(port))
        .await
        .unwrap()
}

/// The index (into `ports`) of the live node that reports itself leader.
pub async fn leader(ports: &[u16], alive: &[bool], limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        for (i, port) in ports.iter().enumerate() {
            if !alive[i] {
                continue;
            }
            if serverz_async(*port)
                .await
                .is_some_and(|z| z["role"] == "Leader")
            {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the node on `port` reports `role` and at least `msgs`
/// messages.
pub async fn caught_up(port: u16, role: &str, msgs: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = None;
    loop {
        if let Some(z) = serverz_async(port).await {
            if z["role"] == role && z["total_msgs"].as_u64() >= Some(msgs) {
                return;
            }
            last = Some(z);
        }
        assert!(
            Instant::now() < deadline,
            "node on {port} is not a {role} with {msgs} messages: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes until some server acknowledges, for up to 60 s from `since`.
pub async fn publish_retrying(conn: &Connection, channel: &str, payload: String, since: Instant) {
    loop {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "no server took {payload}"
        );
        match conn.publish(channel, payload.clone()).await {
            Ok(()) => return,
            Err(ClientError::PubAckTimeout) => continue,
            Err(ClientError::Server(e)) => {
                // A leader losing its lead refuses what it cannot replicate.
                eprintln!("publish {payload} refused: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("publish {payload}: {e}"),
        }
    }
}

/// A STAN client that waits out elections: 10 s to connect, and a 500 ms
/// PubAck wait so that a publish to a dead leader is retried soon.
pub async fn stan_client(nats: &Nats, id: &str) -> Connection {
    let mut opts = Options::new("test-cluster", id);
    opts.connect_wait = Duration::from_secs(10);
    opts.pub_ack_wait = Duration::from_millis(500);
    Connection::connect(nats.client().await, opts)
        .await
        .unwrap()
}
