//! Channel retention limits (`-mm`, `-mb`): the oldest messages go, the
//! newest is always kept, and a removed pending message counts as acked.

mod common;

use std::time::Duration;

use common::*;
use stanchion::client::SubscriptionOptions;

#[tokio::test]
async fn max_msgs_keeps_the_newest_messages() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let stan_proc = Stanchion::start(&nats, &dir.path().join("data"), &["-mm", "3"]).await;
    let c = stan(&nats, "c").await;
    // A subscriber leaves message 1 unacked; it will be dropped by the limit.
    let manual = SubscriptionOptions {
        manual_acks: true,
        ack_wait: Duration::from_secs(1),
        ..first()
    };
    let mut holder = c.subscribe("foo", manual).await.unwrap();
    publish_n(&c, "foo", "m", 5).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let m = next_msg(&mut holder).await;
        if m.sequence() != 1 {
            m.ack().await.unwrap();
        }
        got.push(m.sequence());
    }
    assert_eq!(got, vec![1, 2, 3, 4, 5]);
    let mut sub = c.subscribe("foo", first()).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 3).await, vec![3, 4, 5]);
    // Message 1 is gone: its redelivery is dropped, as an implicit ack.
    assert_quiet(&mut holder, Duration::from_millis(2500)).await;
    assert!(stan_proc
        .proc
        .output()
        .contains("reached limits for channel"));
    c.close().await.unwrap();
}

#[tokio::test]
async fn max_bytes_drops_oldest_but_never_the_last_message() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let _stan = Stanchion::start(&nats, &dir.path().join("data"), &["-mb", "300"]).await;
    let c = stan(&nats, "c").await;
    let body = "x".repeat(80); // about 100 bytes stored per message
    for _ in 0..6 {
        c.publish("foo", body.clone()).await.unwrap();
    }
    let mut sub = c.subscribe("foo", first()).await.unwrap();
    let first_kept = next_msg(&mut sub).await.sequence();
    assert!((3..=5).contains(&first_kept), "kept from {first_kept}");
    let rest = next_seqs(&mut sub, usize::try_from(6 - first_kept).unwrap()).await;
    assert_eq!(rest.last(), Some(&6));
    // One message larger than the limit is still kept.
    c.publish("big", "y".repeat(1000)).await.unwrap();
    let mut big = c.subscribe("big", first()).await.unwrap();
    assert_eq!(next_msg(&mut big).await.sequence(), 1);
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_limit_lowered_between_runs_applies_at_startup() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Stanchion::start(&nats, &data, &["-mm", "10"]).await;
    let c = stan(&nats, "c").await;
    publish_n(&c, "foo", "m", 25).await;
    c.close().await.unwrap();
    assert_eq!(server.proc.terminate(WAIT).and_then(|s| s.code()), Some(0));
    drop(server);

    let _server = Stanchion::start(&nats, &data, &["-mm", "5"]).await;
    let c = stan(&nats, "c2").await;
    let mut sub = c.subscribe("foo", first()).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 5).await, vec![21, 22, 23, 24, 25]);
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn per_channel_limits_from_the_config_file_with_nss_inheritance() {
    for store in ["file", "memory"] {
        let nats = Nats::start();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("stan.conf");
        std::fs::write(
            &conf,
            "streaming {\n  store_limits {\n    max_msgs: 10\n    channels {\n      \"foo.>\": { max_msgs: 3 }\n      \"foo.bar.>\": { max_bytes: 10MB }\n      \"baz\": { max_msgs: 0 }\n    }\n  }\n}\n",
        )
        .unwrap();
        let port = free_port().to_string();
        let args = ["-sc", conf.to_str().unwrap(), "-st", store, "-m", &port];
        let server = Stanchion::start(&nats, &dir.path().join("data"), &args).await;
        let c = stan(&nats, "c").await;
        for channel in ["foo.a", "foo.bar.b", "baz", "other"] {
            publish_n(&c, channel, "m", 12).await;
        }
        // foo.a and foo.bar.b (inheriting 3 from foo.>) keep 3; baz is
        // unlimited for max_msgs; other has the global 10.
        for (channel, first_kept) in [("foo.a", 10), ("foo.bar.b", 10), ("baz", 1), ("other", 3)] {
            let mut sub = c.subscribe(channel, first()).await.unwrap();
            assert_eq!(
                next_msg(&mut sub).await.sequence(),
                first_kept,
                "{channel} ({store})"
            );
        }
        let port: u16 = port.parse().unwrap();
        let limits = common::http::get(port, "/streaming/storez").json()["limits"].clone();
        assert_eq!(limits["max_msgs"], 10, "{limits}");
        assert_eq!(limits["channels"]["foo.>"]["max_msgs"], 3, "{limits}");
        assert_eq!(limits["channels"]["foo.bar.>"]["max_msgs"], 3, "{limits}");
        assert_eq!(
            limits["channels"]["foo.bar.>"]["max_bytes"],
            10 << 20,
            "{limits}"
        );
        assert_eq!(limits["channels"]["baz"]["max_msgs"], 0, "{limits}");
        assert_eq!(
            limits["channels"]["baz"]["max_bytes"], 1_024_000_000,
            "{limits}"
        );
        assert!(
            server.proc.output().contains("foo.bar.>"),
            "the limits table is logged"
        );
        c.close().await.unwrap();
    }
}
