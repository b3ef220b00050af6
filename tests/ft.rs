//! Fault-tolerance groups (`--ft_group`): two stanchion processes on one
//! store directory, one active and one standing by; the standby takes the
//! store over when the active one dies, and the STAN clients carry on.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http::{get, wait_for_status};
use common::*;
use futures::StreamExt;

const GROUP: &str = "grp";

/// The FT subject of [`GROUP`] for the tests' cluster ID.
const FT_SUBJECT: &str = "_STAN.ft.test-cluster.grp";

/// Seconds from Go's zero time (year 1) to the Unix epoch.
const GO_EPOCH_OFFSET: i64 = 62_135_596_800;

/// A member of the group on `dir`, monitoring on `port`.
fn member(nats: &Nats, dir: &Path, port: u16) -> Proc {
    Proc::stanchion(&[
        "--nats_server",
        &nats.url(),
        "--dir",
        dir.to_str().unwrap(),
        "--ft_group",
        GROUP,
        "-m",
        &port.to_string(),
    ])
}

/// Starts a member and waits until it serves (the first of a group does).
async fn active_member(nats: &Nats, dir: &Path, port: u16) -> Proc {
    let p = member(nats, dir, port);
    p.wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    p
}

/// Starts a member and waits until it stands by.
async fn standby_member(nats: &Nats, dir: &Path, port: u16) -> Proc {
    let p = member(nats, dir, port);
    p.wait_for_output("Starting in standby mode").await;
    wait_for_status(port, "/streaming/serverz", 200, WAIT).await;
    p
}

fn state(port: u16) -> String {
    get(port, "/streaming/serverz").json()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An FT heartbeat as NSS encodes `spb.CtrlMsg` (encoded here by hand, so
/// the test checks the wire format rather than reusing stanchion's code).
fn heartbeat(server_id: &str, activated: SystemTime) -> Vec<u8> {
    let since = activated.duration_since(UNIX_EPOCH).unwrap();
    let mut time = vec![1u8];
    time.extend_from_slice(&(since.as_secs() as i64 + GO_EPOCH_OFFSET).to_be_bytes());
    time.extend_from_slice(&(since.subsec_nanos() as i32).to_be_bytes());
    time.extend_from_slice(&(-1i16).to_be_bytes());
    let mut out = vec![0x08, 3, 0x12, server_id.len() as u8];
    out.extend_from_slice(server_id.as_bytes());
    out.extend_from_slice(&[0x1a, time.len() as u8]);
    out.extend_from_slice(&time);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_active_dies_and_clients_carry_on() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = active_member(&nats, dir.path(), port_a).await;
    assert_eq!(get(port_a, "/streaming/isFTActive").status, 200);
    assert_eq!(state(port_a), "FT_ACTIVE");
    let b = standby_member(&nats, dir.path(), port_b).await;
    assert_eq!(get(port_b, "/streaming/isFTActive").status, 204);
    assert_eq!(state(port_b), "FT_STANDBY");
    let ready = get(port_b, "/readyz");
    assert_eq!(ready.status, 503, "a standby is not ready: {}", ready.body);
    assert!(ready.body.contains("standby"), "{}", ready.body);

    // Heartbeats keep the standby waiting: over several missed-heartbeat
    // intervals it never becomes active (absence is observed over time).
    let watch_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch_until {
        assert_eq!(get(port_b, "/streaming/isFTActive").status, 204);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!b.output().contains("Server is active"), "{}", b.output());

    let mut opts = stanchion::client::Options::new("test-cluster", "carrier");
    opts.pub_ack_wait = Duration::from_secs(1);
    let conn = stanchion::client::Connection::connect(nats.client().await, opts)
        .await
        .expect("STAN connect");
    let subscription = stanchion::client::SubscriptionOptions {
        ack_wait: Duration::from_secs(2),
        ..first()
    };
    let mut sub = conn.subscribe("orders", subscription).await.unwrap();
    publish_n(&conn, "orders", "m", 50).await;
    assert_eq!(next_seqs(&mut sub, 50).await, (1..=50).collect::<Vec<_>>());

    a.kill();
    let killed = Instant::now();
    // The client keeps its connection and goes on publishing: a publish
    // that found no server times out and is sent again.
    let mut acked = Vec::new();
    let mut first_ack_after_kill = None;
    for i in 51..=100 {
        let payload = format!("m-{i}");
        loop {
            assert!(killed.elapsed() < Duration::from_secs(30), "no takeover");
            match conn.publish("orders", payload.clone()).await {
                Ok(()) => break,
                Err(stanchion::client::ClientError::PubAckTimeout) => continue,
                Err(e) => panic!("publish {i}: {e}"),
            }
        }
        first_ack_after_kill.get_or_insert_with(|| killed.elapsed());
        acked.push(payload);
    }
    let takeover = first_ack_after_kill.unwrap();
    eprintln!("first publish acknowledged {takeover:?} after the kill (PubAck wait 1 s)");
    assert!(
        takeover < Duration::from_secs(10),
        "takeover took {takeover:?}"
    );
    assert_eq!(get(port_b, "/streaming/isFTActive").status, 200);
    assert_eq!(state(port_b), "FT_ACTIVE");
    assert_eq!(get(port_b, "/readyz").status, 200);

    // The subscription carries on: every acknowledged message arrives. The
    // standby recovers the store as a restart after a kill does, so it may
    // resend from the last position the dead server had written; from
    // there, first deliveries come in sequence order (messages flagged as
    // redelivered aside).
    let resent = receive_every_acked(&mut sub, &acked, 50).await;
    eprintln!("{resent} messages delivered again after the takeover");
    let serverz = get(port_b, "/streaming/serverz").json();
    assert!(serverz["total_msgs"].as_u64().unwrap() >= 100, "{serverz}");
    assert!(b.output().contains("Server is active"));
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_active_hands_over_and_a_stopped_standby_leaves_quietly() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b, port_c) = (free_port(), free_port(), free_port());
    let mut a = active_member(&nats, dir.path(), port_a).await;
    let conn = stan(&nats, "keeper").await;
    publish_n(&conn, "kept", "k", 10).await;

    let mut b = standby_member(&nats, dir.path(), port_b).await;
    let status = b.terminate(Duration::from_secs(5)).expect("standby exits");
    assert!(status.success(), "standby exit: {status:?}\n{}", b.output());
    assert!(
        b.output().contains("stopped while in standby"),
        "{}",
        b.output()
    );
    assert_eq!(get(port_a, "/streaming/isFTActive").status, 200);

    let c = standby_member(&nats, dir.path(), port_c).await;
    let status = a.terminate(Duration::from_secs(10)).expect("active exits");
    assert!(status.success(), "active exit: {status:?}\n{}", a.output());
    c.wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    assert_eq!(get(port_c, "/streaming/isFTActive").status, 200);
    let mut sub = conn.subscribe("kept", first()).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 10).await, (1..=10).collect::<Vec<_>>());
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_nss_control_messages_and_an_earlier_active_stops_this_one() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let client = nats.client().await;
    let mut beats = client.subscribe(FT_SUBJECT).await.unwrap();
    client.flush().await.unwrap();
    let started = SystemTime::now();
    let mut a = active_member(&nats, dir.path(), port).await;
    let server_id = get(port, "/streaming/serverz").json()["server_id"]
        .as_str()
        .unwrap()
        .to_string();

    let hb = tokio::time::timeout(WAIT, beats.next())
        .await
        .expect("a heartbeat")
        .unwrap();
    let expected_prefix = {
        let mut p = vec![0x08, 3, 0x12, server_id.len() as u8];
        p.extend_from_slice(server_id.as_bytes());
        p.extend_from_slice(&[0x1a, 15, 1]);
        p
    };
    assert!(
        hb.payload.starts_with(&expected_prefix),
        "CtrlMsg{{FTHeartbeat, server ID, Go time v1}}: {:?}",
        hb.payload
    );
    let time = &hb.payload[expected_prefix.len()..];
    let secs = i64::from_be_bytes(time[..8].try_into().unwrap()) - GO_EPOCH_OFFSET;
    let started_secs = started.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(
        (started_secs..=started_secs + 30).contains(&secs),
        "activation {secs}, started {started_secs}"
    );

    // A member that says it activated later is only reported.
    let later = heartbeat("LATECOMER", SystemTime::now() + Duration::from_secs(60));
    client.publish(FT_SUBJECT, later.into()).await.unwrap();
    a.wait_for_output("ft: serverID \"LATECOMER\" claims to be active")
        .await;
    assert!(
        a.try_wait().is_none(),
        "a later claim does not stop the server"
    );
    assert_eq!(get(port, "/streaming/isFTActive").status, 200);

    // One that activated before this server did wins: this one stops with
    // an error rather than share the store.
    let earlier = heartbeat("PIONEER", started - Duration::from_secs(60));
    client.publish(FT_SUBJECT, earlier.into()).await.unwrap();
    let status = a.wait_exit().await;
    assert!(!status.success(), "{status:?}");
    assert!(
        a.output()
            .contains("ft: serverID \"PIONEER\" claims to be active, aborting"),
        "{}",
        a.output()
    );
}
