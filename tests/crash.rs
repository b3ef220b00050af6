//! Crash safety of the sled store: stanchion is killed with SIGKILL (under
//! publish load, or with unacked deliveries) and restarted on the same dir.
//! Every acknowledged publish must be there, in order, once, with its
//! original sequence and timestamp; clients, channels and durables resume.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use stanchion::client::{Connection, Options, StartAt, SubscriptionOptions};

async fn publisher(nats: &Nats, id: &str) -> Connection {
    let mut opts = Options::new("test-cluster", id);
    opts.pub_ack_wait = Duration::from_secs(2);
    opts.max_pub_acks_inflight = 256;
    Connection::connect(nats.client().await, opts)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_publish_survives_sigkill_under_load() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let mut stan_proc = Stanchion::start(&nats, &dir.path().join("data"), &[]).await;

    // A live subscriber records what it saw before the crash.
    let watcher = stan(&nats, "watcher").await;
    let mut live = watcher.subscribe("load", first()).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_w = seen.clone();
    let watch = tokio::spawn(async move {
        while let Some(m) = live.next().await {
            seen_w
                .lock()
                .unwrap()
                .push((m.sequence(), m.timestamp(), m.data().clone()));
        }
    });

    let p = publisher(&nats, "loader").await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (acked_w, p_w) = (acked.clone(), p.clone());
    let load = tokio::spawn(async move {
        let mut inflight = futures::stream::FuturesUnordered::new();
        for i in 0..1_000_000u64 {
            let body = format!("m-{i}");
            match p_w.publish_async("load", body.clone()).await {
                Ok(f) => inflight.push(async move { (body, f.await.1) }),
                Err(_) => break,
            }
            while let Some(Some((body, r))) =
                futures::FutureExt::now_or_never(futures::StreamExt::next(&mut inflight))
            {
                if r.is_ok() {
                    acked_w.lock().unwrap().push(body);
                }
            }
        }
        while let Some((body, r)) = futures::StreamExt::next(&mut inflight).await {
            if r.is_ok() {
                acked_w.lock().unwrap().push(body);
            }
        }
    });

    // Kill once a good number of publishes are acknowledged, load still running.
    tokio::time::timeout(WAIT, async {
        while acked.lock().unwrap().len() < 3000 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("publishes were acknowledged");
    stan_proc.proc.kill();
    let at_kill = acked.lock().unwrap().len();
    // Publishes in flight at the kill time out; then the publisher is done.
    load.abort();
    let _ = load.await;
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= at_kill);
    watch.abort();
    let seen: Vec<_> = seen.lock().unwrap().clone();

    stan_proc.restart_after_kill().await;

    // Read the whole log back.
    let reader = stan(&nats, "reader").await;
    let mut all = reader
        .subscribe(
            "load",
            SubscriptionOptions {
                start: StartAt::First,
                max_in_flight: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let acked_set: HashSet<&str> = acked.iter().map(String::as_str).collect();
    let mut log = Vec::new();
    let mut found = HashSet::new();
    // Messages delivered before the crash were stored, acked or not: read past them too.
    let max_seen = seen.iter().map(|(seq, _, _)| *seq).max().unwrap_or(0);
    while found.len() < acked_set.len() || (log.len() as u64) < max_seen {
        let m = next_msg(&mut all).await;
        let body = String::from_utf8(m.data().to_vec()).unwrap();
        if acked_set.contains(body.as_str()) {
            assert!(found.insert(body.clone()), "{body} stored twice");
        }
        log.push((m.sequence(), m.timestamp(), m.data().clone()));
    }
    for (i, (seq, ts, _)) in log.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "sequences are contiguous from 1");
        if i > 0 {
            assert!(*ts >= log[i - 1].1, "timestamps never decrease");
        }
    }
    // Acked publishes of one publisher are stored in publish order.
    let order: Vec<u64> = log
        .iter()
        .map(|(_, _, d)| std::str::from_utf8(d).unwrap()[2..].parse::<u64>().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "publish order kept");
    // What the live subscriber saw keeps its sequence and timestamp.
    for (seq, ts, data) in &seen {
        let (s, t, d) = &log[usize::try_from(*seq).unwrap() - 1];
        assert_eq!((s, t, d), (seq, ts, data));
    }

    // The publisher's registration survived: it publishes again with the same connection ID.
    p.publish("load", "after-restart")
        .await
        .expect("client restored");
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durables_resume_after_restart_with_unacked_messages_first() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Stanchion::start(&nats, &dir.path().join("data"), &[]).await;
    let p = stan(&nats, "p").await;
    publish_n(&p, "foo", "m", 3).await;
    let durable = |name: &str| SubscriptionOptions {
        durable_name: Some(name.into()),
        start: StartAt::First,
        manual_acks: true,
        ..Default::default()
    };
    // An online durable (its client stays connected through the restart)...
    let online = stan(&nats, "online").await;
    let mut s_online = online.subscribe("foo", durable("d1")).await.unwrap();
    // ...and an offline one (its client closed before the crash).
    let offline = stan(&nats, "offline").await;
    let mut s_offline = offline.subscribe("foo", durable("d2")).await.unwrap();
    for s in [&mut s_online, &mut s_offline] {
        for seq in 1..=3 {
            let m = next_msg(s).await;
            assert_eq!(m.sequence(), seq);
            if seq != 2 {
                m.ack().await.unwrap();
            }
        }
    }
    // Acks are written lazily, but a close is answered only once every ack
    // that reached the server before it is durable: the online client's
    // acks are flushed to nats-server first, so they precede the close.
    online.nats().flush().await.unwrap();
    offline.close().await.unwrap();
    drop(s_offline);

    server.restart_after_kill().await;

    // The online durable gets its unacked message redelivered first, then new ones.
    let m = next_msg(&mut s_online).await;
    assert_eq!((m.sequence(), m.redelivered()), (2, true));
    m.ack().await.unwrap();
    p.publish("foo", "new").await.unwrap();
    let m = next_msg(&mut s_online).await;
    assert_eq!((m.sequence(), m.redelivered()), (4, false));
    m.ack().await.unwrap();

    // The offline durable resumes from a new connection: 2 first, then 4.
    let offline = stan(&nats, "offline").await;
    let mut s = offline.subscribe("foo", durable("d2")).await.unwrap();
    let m = next_msg(&mut s).await;
    assert_eq!((m.sequence(), m.redelivered()), (2, true));
    m.ack().await.unwrap();
    let m = next_msg(&mut s).await;
    assert_eq!((m.sequence(), m.redelivered()), (4, false));
    offline.close().await.unwrap();
    online.close().await.unwrap();
    p.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_then_immediate_reconnect_keeps_the_new_client_stored() {
    use bytes::Bytes;
    use prost::Message as _;
    use stanchion::protocol::pb::{CloseRequest, ConnectRequest, ConnectResponse};

    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Stanchion::start(&nats, &dir.path().join("data"), &[]).await;
    let nc = nats.client().await;
    let connect = |conn: &'static str| ConnectRequest {
        client_id: "again".into(),
        heartbeat_inbox: format!("_INBOX.hb-{conn}"),
        protocol: 1,
        conn_id: Bytes::from_static(conn.as_bytes()),
        ping_interval: 5,
        ping_max_out: 3,
    };
    let first = nc
        .request(
            "_STAN.discover.test-cluster",
            connect("c1").encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(ConnectResponse::decode(first.payload).unwrap().error, "");
    // Close without waiting for its answer, then connect again at once: the
    // close's store delete must not land after the new record.
    let close = CloseRequest {
        client_id: "again".into(),
    };
    nc.publish("_STAN.close.test-cluster", close.encode_to_vec().into())
        .await
        .unwrap();
    let second = nc
        .request(
            "_STAN.discover.test-cluster",
            connect("c2").encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(ConnectResponse::decode(second.payload).unwrap().error, "");

    server.restart_after_kill().await;
    // The second instance is still registered: its connID may publish.
    let msg = stanchion::protocol::pb::PubMsg {
        client_id: "again".into(),
        guid: "g".into(),
        subject: "foo".into(),
        conn_id: Bytes::from_static(b"c2"),
        ..Default::default()
    };
    let reply = tokio::time::timeout(
        WAIT,
        nc.request("_STAN.pub.test-cluster.foo", msg.encode_to_vec().into()),
    )
    .await
    .unwrap()
    .unwrap();
    let ack = stanchion::protocol::pb::PubAck::decode(reply.payload).unwrap();
    assert_eq!(ack.error, "", "the reconnected client survived the restart");
}
