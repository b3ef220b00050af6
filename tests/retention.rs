//! Age and inactivity limits (`-ma`, `-mi`) on both stores, as NSS applies
//! them: expiry removes the newest message too and keeps the sequence
//! going; an expired pending message is never redelivered and leaves the
//! pending set at its AckWait; an idle channel is deleted and its name
//! starts again from sequence 1. Time passing is the behaviour under test
//! here: waits poll the monitor for the outcome, bounded by `WAIT`.

mod common;

use std::time::{Duration, Instant};

use common::http::try_get;
use common::*;
use stanchion::client::SubscriptionOptions;

/// The stores every test runs on.
const STORES: [&str; 2] = ["file", "memory"];

/// A stanchion with monitoring on a free port.
struct Monitored {
    server: Stanchion,
    port: u16,
}

/// A fresh nats-server, and stanchion on the store `store` (in a fresh
/// directory) with the limit flags `limits`.
struct Fresh {
    s: Monitored,
    nats: Nats,
    _dir: tempfile::TempDir,
}

async fn fresh(store: &str, limits: &[&str]) -> Fresh {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["-st", store];
    args.extend_from_slice(limits);
    Fresh {
        s: start(&nats, &dir.path().join("data"), &args).await,
        nats,
        _dir: dir,
    }
}

async fn start(nats: &Nats, data: &std::path::Path, args: &[&str]) -> Monitored {
    let port = free_port();
    let port_arg = port.to_string();
    let mut all = vec!["-m", &port_arg];
    all.extend_from_slice(args);
    Monitored {
        server: Stanchion::start(nats, data, &all).await,
        port,
    }
}

/// The channel's monitor entry (with its subscriptions), `None` once unknown.
async fn channelz(port: u16, name: &str) -> Option<serde_json::Value> {
    let path = format!("/streaming/channelsz?channel={name}&subs=1");
    let got = tokio::task::spawn_blocking(move || try_get(port, &path))
        .await
        .unwrap()
        .expect("monitor answers");
    match got.status {
        200 => Some(got.json()),
        404 => None,
        other => panic!("channelsz answered {other}: {}", got.body),
    }
}

/// Polls the channel's monitor entry until `done` holds for it; returns it.
async fn wait_channel(
    port: u16,
    name: &str,
    what: &str,
    done: impl Fn(&Option<serde_json::Value>) -> bool,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = channelz(port, name).await;
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{what}: still {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn msgs(c: &Option<serde_json::Value>) -> u64 {
    c.as_ref().map_or(u64::MAX, |c| c["msgs"].as_u64().unwrap())
}

fn pending(c: &Option<serde_json::Value>) -> u64 {
    c.as_ref().map_or(u64::MAX, |c| {
        c["subscriptions"][0]["pending_count"].as_u64().unwrap()
    })
}

#[tokio::test]
async fn max_age_expires_every_old_message_the_newest_too() {
    for store in STORES {
        let Fresh { s, nats, _dir } = fresh(store, &["-ma", "2s"]).await;
        let c = stan(&nats, "c").await;
        let before = Instant::now();
        publish_n(&c, "foo", "m", 3).await;
        let now = channelz(s.port, "foo").await;
        assert_eq!(msgs(&now), 3, "{store}: {now:?}");

        let gone = wait_channel(s.port, "foo", "expiry", |c| msgs(c) == 0).await;
        assert!(
            before.elapsed() >= Duration::from_secs(2),
            "{store}: expired early"
        );
        let gone = gone.unwrap();
        // As NSS reports an emptied channel: first is the next sequence.
        assert_eq!(gone["first_seq"], 4, "{store}: {gone}");
        assert_eq!(gone["last_seq"], 3, "{store}: {gone}");
        assert_eq!(gone["bytes"], 0, "{store}: {gone}");

        // The sequence goes on, and only the new message is there.
        c.publish("foo", "fresh").await.unwrap();
        let mut sub = c.subscribe("foo", first()).await.unwrap();
        let m = next_msg(&mut sub).await;
        assert_eq!((m.sequence(), &m.data()[..]), (4, &b"fresh"[..]), "{store}");
        assert_quiet(&mut sub, Duration::from_millis(200)).await;
        c.close().await.unwrap();
        drop(s.server);
    }
}

#[tokio::test]
async fn an_expired_pending_message_is_not_redelivered_and_leaves_pending_at_ack_wait() {
    for store in STORES {
        let Fresh { s, nats, _dir } = fresh(store, &["-ma", "1s"]).await;
        let c = stan(&nats, "c").await;
        let opts = SubscriptionOptions {
            manual_acks: true,
            ack_wait: Duration::from_secs(4),
            max_in_flight: 1,
            ..first()
        };
        let mut sub = c.subscribe("foo", opts).await.unwrap();
        c.publish("foo", "m1").await.unwrap();
        assert_eq!(next_msg(&mut sub).await.sequence(), 1);
        // Expired: gone from the channel, still pending until AckWait.
        let expired = wait_channel(s.port, "foo", "expiry", |c| msgs(c) == 0).await;
        assert_eq!(pending(&expired), 1, "{store}: {expired:?}");
        wait_channel(s.port, "foo", "pending cleared", |c| pending(c) == 0).await;
        // Its AckWait passed without a redelivery...
        assert_quiet(&mut sub, Duration::from_millis(300)).await;
        // ...and the MaxInFlight slot it held is free again.
        c.publish("foo", "m2").await.unwrap();
        let m = next_msg(&mut sub).await;
        assert_eq!((m.sequence(), m.redelivered()), (2, false), "{store}");
        m.ack().await.unwrap();
        c.close().await.unwrap();
        drop(s.server);
    }
}

#[tokio::test]
async fn max_age_applies_at_startup_before_clients_are_served() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first_run = Stanchion::start(&nats, &data, &[]).await;
    let c = stan(&nats, "c").await;
    publish_n(&c, "old", "m", 5).await;
    let published = Instant::now();
    c.close().await.unwrap();
    assert_eq!(
        first_run.proc.terminate(WAIT).and_then(|s| s.code()),
        Some(0)
    );
    drop(first_run);
    // The messages must be older than the limit the next run sets.
    tokio::time::sleep_until((published + Duration::from_millis(1200)).into()).await;

    let s = start(&nats, &data, &["-ma", "1s"]).await;
    let at_start = channelz(s.port, "old").await.expect("channel kept");
    assert_eq!(at_start["msgs"], 0, "{at_start}");
    assert_eq!(at_start["first_seq"], 6, "{at_start}");
    let c = stan(&nats, "c2").await;
    c.publish("old", "new").await.unwrap();
    let mut sub = c.subscribe("old", first()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 6);
    c.close().await.unwrap();
}

#[tokio::test]
async fn max_inactivity_deletes_an_idle_channel_and_frees_its_name() {
    for store in STORES {
        let Fresh { s, nats, _dir } = fresh(store, &["-mi", "1s"]).await;
        let c = stan(&nats, "c").await;
        // "busy" is older than "idle" but has an online subscription.
        c.publish("busy", "b").await.unwrap();
        let busy_sub = c.subscribe("busy", first()).await.unwrap();
        let created = Instant::now();
        publish_n(&c, "idle", "old", 2).await;

        wait_channel(s.port, "idle", "idle channel deletion", Option::is_none).await;
        assert!(
            created.elapsed() >= Duration::from_secs(1),
            "{store}: deleted early"
        );
        assert!(
            s.server.proc.output().contains("channel deleted"),
            "{store}: no deletion logged"
        );
        assert!(
            channelz(s.port, "busy").await.is_some(),
            "{store}: busy deleted"
        );

        // The name is free: a new channel, from sequence 1.
        c.publish("idle", "new").await.unwrap();
        let mut sub = c.subscribe("idle", first()).await.unwrap();
        let m = next_msg(&mut sub).await;
        assert_eq!((m.sequence(), &m.data()[..]), (1, &b"new"[..]), "{store}");
        assert_quiet(&mut sub, Duration::from_millis(200)).await;

        // Once its last subscription is gone, "busy" goes too.
        busy_sub.unsubscribe().await.unwrap();
        wait_channel(s.port, "busy", "busy channel deletion", Option::is_none).await;
        c.close().await.unwrap();
        drop(s.server);
    }
}
