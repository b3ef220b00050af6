//! Client liveness through heartbeats only (PROTOCOL.md 1.5): heartbeat
//! expiry, clients failing heartbeats, client pings, duplicate client IDs,
//! crashed clients, nats-server restarts and the start-up probe, against a
//! real nats-server and a real stanchion with short intervals.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use prost::Message as _;
use stanchion::client::{Connection, Options, StartAt, SubscriptionOptions};
use stanchion::protocol::errors;
use stanchion::protocol::pb::{
    ConnectRequest, ConnectResponse, Ping, PingResponse, PubAck, PubMsg,
};

/// Heartbeats every 100 ms, 100 ms to answer, closed after more than 2 misses.
const FAST_HB: &[&str] = &["-hbi", "100ms", "-hbt", "100ms", "-hbf", "2"];

async fn setup(args: &[&str]) -> (Nats, Stanchion, tempfile::TempDir) {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let stan = Stanchion::start(&nats, &dir.path().join("data"), args).await;
    (nats, stan, dir)
}

async fn raw_request<R: prost::Message + Default>(
    nc: &async_nats::Client,
    subject: &str,
    msg: impl prost::Message,
) -> R {
    let reply = tokio::time::timeout(
        WAIT,
        nc.request(subject.to_string(), Bytes::from(msg.encode_to_vec())),
    )
    .await
    .expect("request timed out")
    .expect("request failed");
    R::decode(reply.payload).unwrap()
}

#[tokio::test]
async fn a_client_that_stops_answering_heartbeats_is_closed() {
    let (nats, stan_proc, _dir) = setup(FAST_HB).await;
    let hung = stan(&nats, "hung").await;
    let durable = SubscriptionOptions {
        durable_name: Some("d".into()),
        start: StartAt::First,
        manual_acks: true,
        ..Default::default()
    };
    let p = stan(&nats, "p").await;
    p.publish("foo", "1").await.unwrap();
    let mut sub = hung.subscribe("foo", durable.clone()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 1); // left unacked
    let _plain = hung
        .subscribe("foo", SubscriptionOptions::default())
        .await
        .unwrap();
    // Alive while it answers: several intervals pass without a close.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!stan_proc.proc.output().contains("timed out on heartbeats"));

    hung.set_heartbeat_replies(false);
    stan_proc
        .proc
        .wait_for_output("client timed out on heartbeats; closing it client=hung")
        .await;
    stan_proc
        .proc
        .wait_for_output("closing client: timed out on heartbeats client=hung")
        .await;
    // Its connection ID is no longer valid.
    let err = hung.publish("foo", "x").await.unwrap_err();
    assert_eq!(err.to_string(), errors::INVALID_PUB_REQ);
    // The durable was kept offline: a new session resumes it, unacked first.
    let again = stan(&nats, "hung").await;
    let mut sub = again.subscribe("foo", durable).await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!((m.sequence(), m.redelivered()), (1, true));
    again.close().await.unwrap();
    p.close().await.unwrap();
}

#[tokio::test]
async fn a_failing_client_gets_no_redeliveries_and_no_queue_messages_until_it_answers() {
    // Many misses allowed: the client fails heartbeats for a while without being closed.
    let (nats, stan_proc, _dir) = setup(&["-hbi", "200ms", "-hbt", "500ms", "-hbf", "1000"]).await;
    let p = stan(&nats, "p").await;
    // Its pings would also count as signs of life: make them rare.
    let mut opts = Options::new("test-cluster", "slow");
    opts.ping_interval = 60;
    let slow = Connection::connect(nats.client().await, opts)
        .await
        .unwrap();
    let fine = stan(&nats, "fine").await;
    let manual = SubscriptionOptions {
        start: StartAt::First,
        manual_acks: true,
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    };
    p.publish("plain", "x").await.unwrap();
    let mut plain = slow.subscribe("plain", manual.clone()).await.unwrap();
    assert_eq!(next_msg(&mut plain).await.sequence(), 1); // not acked
    let queue = |c: &Connection| {
        let o = SubscriptionOptions {
            queue_group: Some("q".into()),
            ..Default::default()
        };
        let c = c.clone();
        async move { c.subscribe("work", o).await.unwrap() }
    };
    let mut q_slow = queue(&slow).await;
    let mut q_fine = queue(&fine).await;

    slow.set_heartbeat_replies(false);
    stan_proc
        .proc
        .wait_for_output("client missed a heartbeat")
        .await;
    // While failing: its plain subscription is not redelivered to (AckWait is 1 s)...
    assert_quiet(&mut plain, Duration::from_millis(1800)).await;
    // ...and queue messages all go to the live member.
    for i in 0..4 {
        p.publish("work", format!("w{i}")).await.unwrap();
    }
    assert_eq!(next_seqs(&mut q_fine, 4).await, vec![1, 2, 3, 4]);
    assert_quiet(&mut q_slow, Duration::from_millis(200)).await;

    // Answering again brings it fully back: the held redelivery arrives.
    slow.set_heartbeat_replies(true);
    stan_proc
        .proc
        .wait_for_output("client answers heartbeats again")
        .await;
    let m = next_msg(&mut plain).await;
    assert_eq!((m.sequence(), m.redelivered()), (1, true));
    m.ack().await.unwrap();
    for c in [p, slow, fine] {
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn pings_of_a_forgotten_client_report_it_replaced() {
    let (nats, _stan, _dir) = setup(&[]).await;
    let mut opts = Options::new("test-cluster", "pinger");
    opts.ping_period_override = Some(Duration::from_millis(100));
    let conn = Connection::connect(nats.client().await, opts)
        .await
        .unwrap();
    let mut lost = conn.connection_lost();
    // Pings are answered while the client is registered.
    assert_quiet_lost(&mut lost, Duration::from_millis(500)).await;
    // The server forgets it (a CloseRequest from elsewhere): its next ping says so.
    let nc = nats.client().await;
    let closed: stanchion::protocol::pb::CloseResponse = raw_request(
        &nc,
        "_STAN.close.test-cluster",
        stanchion::protocol::pb::CloseRequest {
            client_id: "pinger".into(),
        },
    )
    .await;
    assert_eq!(closed.error, "");
    tokio::time::timeout(WAIT, lost.wait_for(|l| l.is_some()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lost.borrow().as_deref(), Some(errors::CLIENT_REPLACED));
    // An empty ping is ignored: no answer at all.
    let empty = tokio::time::timeout(
        Duration::from_millis(300),
        nc.request("_STAN.discover.test-cluster.pings", Bytes::new()),
    )
    .await;
    assert!(
        !matches!(empty, Ok(Ok(_))),
        "empty ping answered: {empty:?}"
    );
}

async fn assert_quiet_lost(
    lost: &mut tokio::sync::watch::Receiver<Option<String>>,
    window: Duration,
) {
    if tokio::time::timeout(window, lost.wait_for(|l| l.is_some()))
        .await
        .is_ok()
    {
        panic!("connection reported lost: {:?}", lost.borrow());
    }
}

#[tokio::test]
async fn duplicate_client_ids_probe_the_old_client() {
    let (nats, stan_proc, _dir) = setup(&[]).await;
    let old = stan(&nats, "dup").await;
    // The old client answers its heartbeats: the newcomer is refused.
    let nc = nats.client().await;
    let mut opts = Options::new("test-cluster", "dup");
    opts.connect_wait = Duration::from_secs(5);
    let refused = Connection::connect(nc.clone(), opts.clone())
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(refused.as_deref(), Some(errors::CLIENT_ID_REGISTERED));
    old.publish("foo", "still mine").await.unwrap();

    // Old client hung: it is closed and the newcomer accepted.
    old.set_heartbeat_replies(false);
    let started = std::time::Instant::now();
    let new = Connection::connect(nc.clone(), opts.clone())
        .await
        .expect("replaces the hung client");
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "the probe waits 500 ms"
    );
    stan_proc
        .proc
        .wait_for_output("replacing a client that does not answer heartbeats client=dup")
        .await;
    // The old connection ID is invalid for publish and ping.
    assert_eq!(
        old.publish("foo", "x").await.unwrap_err().to_string(),
        errors::INVALID_PUB_REQ
    );
    let ping: PingResponse = raw_request(
        &nc,
        "_STAN.discover.test-cluster.pings",
        Ping {
            conn_id: Bytes::copy_from_slice(old.conn_id()),
        },
    )
    .await;
    assert_eq!(ping.error, errors::CLIENT_REPLACED);
    new.publish("foo", "y").await.unwrap();

    // While a probe is in flight, more connects for the ID are refused at once.
    new.set_heartbeat_replies(false);
    let hb = |n: usize| ConnectRequest {
        client_id: "dup".into(),
        heartbeat_inbox: format!("_INBOX.dup-hb-{n}"),
        protocol: 1,
        conn_id: Bytes::from(format!("dup-conn-{n}")),
        ping_interval: 5,
        ping_max_out: 3,
    };
    let first = nc.request(
        "_STAN.discover.test-cluster",
        Bytes::from(hb(1).encode_to_vec()),
    );
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let r: ConnectResponse = raw_request(&nc, "_STAN.discover.test-cluster", hb(2)).await;
        (r, started.elapsed())
    };
    let (first, (second, second_took)) = tokio::join!(first, second);
    assert_eq!(second.error, errors::CLIENT_ID_REGISTERED);
    assert!(
        second_took < Duration::from_millis(300),
        "refused without a probe of its own"
    );
    let first = ConnectResponse::decode(first.unwrap().payload).unwrap();
    assert_eq!(
        first.error, "",
        "the probed connect replaces the hung client"
    );
}

#[tokio::test]
async fn a_crashed_client_is_dropped_and_its_durable_resumed_by_a_new_process() {
    let (nats, stan_proc, _dir) = setup(FAST_HB).await;
    let p = stan(&nats, "p").await;
    publish_n(&p, "foo", "m", 3).await;
    let durable = SubscriptionOptions {
        durable_name: Some("d".into()),
        start: StartAt::First,
        manual_acks: true,
        ..Default::default()
    };
    // The "process": its own NATS connection, gone without a Close.
    {
        let crashed = stan(&nats, "worker").await;
        let mut sub = crashed.subscribe("foo", durable.clone()).await.unwrap();
        for seq in 1..=3 {
            let m = next_msg(&mut sub).await;
            if seq == 1 {
                m.ack().await.unwrap();
            }
        }
        p.publish("sync", "x").await.unwrap();
        crashed.nats().clone().drain().await.ok();
    }
    stan_proc
        .proc
        .wait_for_output("closing client: timed out on heartbeats client=worker")
        .await;
    let worker = stan(&nats, "worker").await;
    let mut sub = worker.subscribe("foo", durable).await.unwrap();
    let m2 = next_msg(&mut sub).await;
    let m3 = next_msg(&mut sub).await;
    assert_eq!(
        (
            m2.sequence(),
            m2.redelivered(),
            m3.sequence(),
            m3.redelivered()
        ),
        (2, true, 3, true)
    );
    p.publish("foo", "m-4").await.unwrap();
    let m4 = next_msg(&mut sub).await;
    assert_eq!((m4.sequence(), m4.redelivered()), (4, false));
    worker.close().await.unwrap();
    p.close().await.unwrap();
}

#[tokio::test]
async fn another_server_with_the_same_cluster_id_refuses_to_start() {
    let (nats, _first, dir) = setup(&[]).await;
    let second_dir = dir.path().join("second");
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_stanchion"))
            .args(["-ns", &nats.url(), "--dir", second_dir.to_str().unwrap()])
            .output(),
    )
    .await
    .expect("the second server exits by itself")
    .unwrap();
    assert!(!out.status.success());
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("discovered another streaming server with cluster ID \"test-cluster\""),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_restart_keeps_state_and_clients() {
    let mut nats = Nats::start();
    let port = nats.port;
    let dir = tempfile::tempdir().unwrap();
    // Short heartbeats with few misses: an outage longer than that must not drop clients.
    let stan_proc = Stanchion::start(
        &nats,
        &dir.path().join("data"),
        &["-hbi", "200ms", "-hbt", "200ms", "-hbf", "1"],
    )
    .await;
    // A short PubAck wait: a publish lost in the outage is retried soon.
    let mut opts = Options::new("test-cluster", "p");
    opts.pub_ack_wait = Duration::from_secs(1);
    let p = Connection::connect(nats.client().await, opts)
        .await
        .unwrap();
    let c = stan(&nats, "c").await;
    let mut sub = c.subscribe("foo", first()).await.unwrap();
    publish_n(&p, "foo", "before", 3).await;
    assert_eq!(next_seqs(&mut sub, 3).await, vec![1, 2, 3]);

    nats.proc.kill();
    stan_proc
        .proc
        .wait_for_output("disconnected from nats-server")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // an outage of several heartbeat intervals
    let nats = Nats::start_on(port);
    stan_proc
        .proc
        .wait_for_output("connected to nats-server")
        .await;

    // The same client connections (reconnected by async-nats) keep working.
    tokio::time::timeout(WAIT, async {
        loop {
            match p.publish("foo", "after-1").await {
                Ok(()) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("publishing resumes after nats-server restarts");
    // Publishes retried after a lost PubAck may be stored twice (at-least-once): read past them.
    let after = next_msg(&mut sub).await;
    assert_eq!(after.data().as_ref(), b"after-1");
    assert!(after.sequence() >= 4);
    let p2 = stan(&nats, "p2").await;
    p2.publish("foo", "after-2").await.unwrap();
    let mut last = after.sequence();
    loop {
        let m = next_msg(&mut sub).await;
        assert_eq!(m.sequence(), last + 1, "no gap in deliveries");
        last = m.sequence();
        if m.data().as_ref() == b"after-2" {
            break;
        }
    }
    p2.close().await.unwrap();
    assert!(
        !stan_proc.proc.output().contains("timed out on heartbeats"),
        "no client was dropped"
    );
    // Nothing acknowledged was lost: a new reader sees 1..=3 and the new message.
    let r = stan(&nats, "r").await;
    let mut all = r.subscribe("foo", first()).await.unwrap();
    let seqs = next_seqs(&mut all, usize::try_from(last).unwrap()).await;
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    for conn in [p, c, r] {
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn startup_waits_for_nats_server() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (url, data) = (format!("nats://127.0.0.1:{port}"), dir.path().join("data"));
    let mut server = Proc::stanchion(&["-ns", &url, "--dir", data.to_str().unwrap()]);
    server
        .wait_for_output("nats-server not reachable yet; retrying")
        .await;
    assert!(server.try_wait().is_none(), "still running, waiting");
    let nats = Nats::start_on(port);
    server
        .wait_for_output_within("stanchion is ready", std::time::Duration::from_secs(20))
        .await;
    let c = stan(&nats, "late").await;
    c.publish("foo", "x").await.unwrap();
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_thousand_clients_with_one_second_heartbeats_all_stay_connected() {
    let (nats, stan_proc, _dir) = setup(&["-hbi", "1s", "-hbt", "1s", "-hbf", "0"]).await;
    // STAN connections share a few NATS connections, as many processes would share a server.
    let mut ncs = Vec::new();
    for _ in 0..4 {
        ncs.push(nats.client().await);
    }
    let mut conns = Vec::new();
    for i in 0..1000 {
        let mut opts = Options::new("test-cluster", format!("idle-{i}"));
        opts.connect_wait = Duration::from_secs(5);
        conns.push(
            Connection::connect(ncs[i % ncs.len()].clone(), opts)
                .await
                .unwrap(),
        );
    }
    // Three heartbeat rounds with no tolerance for a miss: nobody is dropped.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!stan_proc.proc.output().contains("timed out on heartbeats"));
    assert!(!stan_proc.proc.output().contains("missed a heartbeat"));
    // And the server still answers promptly.
    let started = std::time::Instant::now();
    let raw = nats.client().await;
    let ack: PubAck = raw_request(
        &raw,
        "_STAN.pub.test-cluster.foo",
        PubMsg {
            client_id: "idle-7".into(),
            guid: "g".into(),
            subject: "foo".into(),
            conn_id: Bytes::copy_from_slice(conns[7].conn_id()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ack.error, "");
    assert!(started.elapsed() < Duration::from_secs(1));
}
