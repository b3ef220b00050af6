//! Graceful shutdown as an operator sees it: SIGTERM under async publish
//! load exits 0 within 10 s, readiness turns 503 first, a request sent
//! right after the signal gets no reply, and after a restart every
//! acknowledged message is there, once, in order.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{try_get, wait_for_status};
use common::*;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use prost::Message as _;
use stanchion::protocol::pb::{ConnectRequest, StartPosition, SubscriptionRequest};

/// Publishers and the messages each keeps in flight.
const PUBLISHERS: usize = 4;
const WINDOW: usize = 128;

/// Publishes `"p<k>-<i>"` until the connection fails, recording what was acked.
async fn publish_until_refused(
    conn: Arc<stanchion::client::Connection>,
    k: usize,
    acked: Arc<Mutex<HashSet<String>>>,
) {
    let mut in_flight = FuturesUnordered::new();
    for i in 0.. {
        let data = format!("p{k}-{i}");
        match conn.publish_async("load", data.clone()).await {
            Ok(ack) => in_flight.push(async move { ack.await.1.map(|()| data) }),
            Err(_) => break,
        }
        if in_flight.len() >= WINDOW {
            match in_flight.next().await {
                Some(Ok(data)) => {
                    acked.lock().unwrap().insert(data);
                }
                _ => break,
            }
        }
    }
    while let Some(result) = in_flight.next().await {
        if let Ok(data) = result {
            acked.lock().unwrap().insert(data);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_publish_load_loses_nothing_acknowledged() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let p = port.to_string();
    let mut server = Stanchion::start(&nats, &data, &["-m", &p]).await;
    wait_for_status(port, "/readyz", 200, WAIT).await;

    let conn = Arc::new(stan(&nats, "loader").await);
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|k| tokio::spawn(publish_until_refused(conn.clone(), k, acked.clone())))
        .collect();
    let loaded = tokio::time::timeout(WAIT, async {
        while acked.lock().unwrap().len() < 2000 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(loaded.is_ok(), "publishers did not get going");

    // Watch readiness from another thread through the whole shutdown.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(try_get(port, "/readyz").map(|r| r.status));
                std::thread::sleep(Duration::from_millis(1));
            }
            seen
        })
    };

    let raw = nats.client().await;
    let sub_req = SubscriptionRequest {
        client_id: "loader".into(),
        subject: "after-signal".into(),
        inbox: raw.new_inbox(),
        max_in_flight: 10,
        ack_wait_in_secs: 30,
        start_position: StartPosition::First as i32,
        ..Default::default()
    };
    let connect_req = ConnectRequest {
        client_id: "latecomer".into(),
        heartbeat_inbox: raw.new_inbox(),
        ..Default::default()
    };
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.proc.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Requests sent right after the signal get no reply.
    let (sub_reply, connect_reply) = tokio::join!(
        tokio::time::timeout(
            Duration::from_secs(2),
            raw.request(
                "_STAN.sub.test-cluster",
                Bytes::from(sub_req.encode_to_vec())
            )
        ),
        tokio::time::timeout(
            Duration::from_secs(2),
            raw.request(
                "_STAN.discover.test-cluster",
                Bytes::from(connect_req.encode_to_vec())
            )
        ),
    );
    assert!(
        !matches!(sub_reply, Ok(Ok(_))),
        "a subscription sent after SIGTERM was answered"
    );
    assert!(
        !matches!(connect_reply, Ok(Ok(_))),
        "a connect sent after SIGTERM was answered"
    );

    let status = tokio::task::spawn_blocking(move || {
        let status = server.proc.terminate(Duration::from_secs(10));
        (status, server)
    })
    .await
    .unwrap();
    let (status, server) = status;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit status");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "took {:?}",
        signalled.elapsed()
    );
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let answers: Vec<u16> = seen.iter().flatten().copied().collect();
    let first_503 = answers.iter().position(|s| *s == 503);
    assert!(
        first_503.is_some(),
        "readiness never said 503 before the exit: {answers:?}"
    );
    assert!(
        answers[first_503.unwrap()..].iter().all(|s| *s == 503),
        "ready again after 503: {answers:?}"
    );
    // A round trip on the publishers' connection: every PubAck stanchion
    // sent before it exited has arrived. Acks not yet counted only make the
    // check below weaker, never wrong; the rest never come.
    conn.nats().flush().await.unwrap();
    for p in publishers {
        p.abort();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 2000);

    // Restart: every acknowledged message is stored, once, in sequence.
    drop(server);
    let _server = Stanchion::start(&nats, &data, &["-m", &p]).await;
    let reader = stan(&nats, "reader").await;
    let channel = common::http::get(port, "/streaming/channelsz?channel=load").json();
    let last = channel["last_seq"].as_u64().unwrap();
    let mut sub = reader.subscribe("load", first()).await.unwrap();
    let mut stored = HashSet::new();
    for seq in 1..=last {
        let m = next_msg(&mut sub).await;
        assert_eq!(m.sequence(), seq);
        let text = String::from_utf8(m.data().to_vec()).unwrap();
        assert!(stored.insert(text), "stored twice");
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // The subscription sent after the signal created nothing.
    let ch = common::http::get(port, "/streaming/channelsz").json();
    assert_eq!(ch["names"], serde_json::json!(["load"]));
}
