//! Subscription semantics as a STAN client sees them, through stanchion's
//! Rust client against a real nats-server and a real stanchion: start
//! positions, MaxInFlight, AckWait redelivery, durables, queue groups,
//! unsubscribe vs close (PROTOCOL.md 2.4 - 2.7).

mod common;

use std::time::Duration;

use common::*;
use stanchion::client::{StartAt, SubscriptionOptions};

async fn setup() -> (Nats, Stanchion, tempfile::TempDir) {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let stan = Stanchion::start(&nats, &dir.path().join("data"), &[]).await;
    (nats, stan, dir)
}

fn opts(start: StartAt) -> SubscriptionOptions {
    SubscriptionOptions {
        start,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_start_position_starts_where_nss_does() {
    let (nats, _stan, _dir) = setup().await;
    let c = stan(&nats, "c").await;
    publish_n(&c, "foo", "m", 5).await;

    let mut first = c.subscribe("foo", opts(StartAt::First)).await.unwrap();
    assert_eq!(next_seqs(&mut first, 5).await, vec![1, 2, 3, 4, 5]);
    let mut last = c
        .subscribe("foo", opts(StartAt::LastReceived))
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut last, 1).await, vec![5]);
    let mut seq3 = c
        .subscribe("foo", opts(StartAt::Sequence(3)))
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut seq3, 3).await, vec![3, 4, 5]);
    let mut seq_past = c
        .subscribe("foo", opts(StartAt::Sequence(99)))
        .await
        .unwrap();
    let mut new_only = c.subscribe("foo", opts(StartAt::NewOnly)).await.unwrap();
    let mut delta_all = c
        .subscribe("foo", opts(StartAt::TimeDelta(Duration::from_secs(3600))))
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut delta_all, 5).await, vec![1, 2, 3, 4, 5]);

    // A time delta between two publishes starts after the first group.
    let gap_start = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    publish_n(&c, "foo", "late", 2).await;
    let since = gap_start.elapsed() - Duration::from_millis(600);
    let mut delta_recent = c
        .subscribe("foo", opts(StartAt::TimeDelta(since)))
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut delta_recent, 2).await, vec![6, 7]);

    // New-only and past-the-end subscriptions see just the new messages.
    assert_eq!(next_seqs(&mut new_only, 2).await, vec![6, 7]);
    assert_eq!(next_seqs(&mut seq_past, 2).await, vec![6, 7]);
    assert_eq!(next_seqs(&mut first, 2).await, vec![6, 7]);
    assert_eq!(next_seqs(&mut last, 2).await, vec![6, 7]);

    // Every start position on an empty channel is new-only.
    let mut empty = c.subscribe("empty", opts(StartAt::First)).await.unwrap();
    c.publish("empty", "x").await.unwrap();
    assert_eq!(next_seqs(&mut empty, 1).await, vec![1]);
    c.close().await.unwrap();
}

#[tokio::test]
async fn max_in_flight_windows_and_ack_wait_redelivers_with_count() {
    let (nats, _stan, _dir) = setup().await;
    let c = stan(&nats, "c").await;
    publish_n(&c, "foo", "m", 4).await;
    let o = SubscriptionOptions {
        start: StartAt::First,
        manual_acks: true,
        max_in_flight: 2,
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    };
    let mut sub = c.subscribe("foo", o).await.unwrap();
    let m1 = next_msg(&mut sub).await;
    let m2 = next_msg(&mut sub).await;
    assert_eq!((m1.sequence(), m2.sequence()), (1, 2));
    assert!(!m1.redelivered());
    // The window is full: nothing more until an ack.
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    m1.ack().await.unwrap();
    let m3 = next_msg(&mut sub).await;
    assert_eq!(m3.sequence(), 3);
    m3.ack().await.unwrap();
    let m4 = next_msg(&mut sub).await;
    assert_eq!(m4.sequence(), 4);
    m4.ack().await.unwrap();
    // 2 was never acked: it comes back after AckWait, flagged, with its count.
    let r1 = next_msg(&mut sub).await;
    assert_eq!(r1.sequence(), 2);
    assert!(r1.redelivered());
    assert_eq!(r1.proto.redelivery_count, 1);
    assert_eq!(
        r1.timestamp(),
        m2.timestamp(),
        "a redelivery keeps the stored timestamp"
    );
    let r2 = next_msg(&mut sub).await;
    assert_eq!((r2.sequence(), r2.proto.redelivery_count), (2, 2));
    r2.ack().await.unwrap();
    assert_quiet(&mut sub, Duration::from_millis(1500)).await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn closed_durable_resumes_with_unacked_first_and_unsubscribed_one_is_gone() {
    let (nats, _stan, _dir) = setup().await;
    let p = stan(&nats, "p").await;
    publish_n(&p, "foo", "m", 3).await;
    let durable = SubscriptionOptions {
        durable_name: Some("dur".into()),
        start: StartAt::First,
        manual_acks: true,
        ..Default::default()
    };
    let c = stan(&nats, "c").await;
    let mut sub = c.subscribe("foo", durable.clone()).await.unwrap();
    for expect in 1..=3 {
        let m = next_msg(&mut sub).await;
        assert_eq!(m.sequence(), expect);
        if expect != 2 {
            m.ack().await.unwrap();
        }
    }
    // Connection close keeps the durable offline.
    c.close().await.unwrap();
    publish_n(&p, "foo", "n", 2).await;

    let c = stan(&nats, "c").await;
    // A different start position is ignored on resume.
    let resumed = SubscriptionOptions {
        start: StartAt::NewOnly,
        ..durable.clone()
    };
    let mut sub = c.subscribe("foo", resumed).await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!(m.sequence(), 2, "the unacked message comes first");
    assert!(m.redelivered());
    m.ack().await.unwrap();
    for expect in [4, 5] {
        let m = next_msg(&mut sub).await;
        assert_eq!((m.sequence(), m.redelivered()), (expect, false));
        m.ack().await.unwrap();
    }

    // Subscription close also keeps it; a second live one is refused meanwhile.
    let Err(dup) = c.subscribe("foo", durable.clone()).await else {
        panic!("a duplicate durable was accepted");
    };
    assert_eq!(dup.to_string(), stanchion::protocol::errors::DUP_DURABLE);
    sub.close().await.unwrap();
    publish_n(&p, "foo", "o", 1).await;
    let mut sub = c.subscribe("foo", durable.clone()).await.unwrap();
    let m = next_msg(&mut sub).await;
    assert_eq!(m.sequence(), 6);
    m.ack().await.unwrap();

    // Unsubscribe removes it: the name starts over with the new start position.
    sub.unsubscribe().await.unwrap();
    let mut fresh = c.subscribe("foo", durable).await.unwrap();
    assert_eq!(next_msg(&mut fresh).await.sequence(), 1);
    c.close().await.unwrap();
    p.close().await.unwrap();
}

#[tokio::test]
async fn connection_close_removes_plain_subscriptions() {
    let (nats, _stan, _dir) = setup().await;
    let p = stan(&nats, "p").await;
    let c = stan(&nats, "c").await;
    let plain = c.subscribe("foo", opts(StartAt::First)).await.unwrap();
    let ack_inbox = plain.ack_inbox().to_string();
    c.close().await.unwrap();
    // The subscription is gone: unsubscribing it by its ack inbox is refused.
    let raw = nats.client().await;
    let req = stanchion::protocol::pb::UnsubscribeRequest {
        client_id: "c".into(),
        subject: "foo".into(),
        inbox: ack_inbox,
        ..Default::default()
    };
    let reply = tokio::time::timeout(
        WAIT,
        raw.request(
            "_STAN.unsub.test-cluster",
            prost::Message::encode_to_vec(&req).into(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let resp: stanchion::protocol::pb::SubscriptionResponse =
        prost::Message::decode(reply.payload).unwrap();
    assert_eq!(resp.error, stanchion::protocol::errors::INVALID_SUB);
    // The ID is free again, and publishing still works.
    let c = stan(&nats, "c").await;
    p.publish("foo", "x").await.unwrap();
    c.close().await.unwrap();
    p.close().await.unwrap();
}

#[tokio::test]
async fn queue_members_share_and_a_leaving_members_unacked_go_to_the_others() {
    let (nats, _stan, _dir) = setup().await;
    let p = stan(&nats, "p").await;
    let q = |start| SubscriptionOptions {
        queue_group: Some("q".into()),
        start,
        manual_acks: true,
        ack_wait: Duration::from_secs(30),
        ..Default::default()
    };
    let c1 = stan(&nats, "c1").await;
    let c2 = stan(&nats, "c2").await;
    let mut s1 = c1.subscribe("bar", q(StartAt::NewOnly)).await.unwrap();
    // A later member's start position is ignored: it joins at the group's position.
    let mut s2 = c2.subscribe("bar", q(StartAt::First)).await.unwrap();
    publish_n(&p, "bar", "m", 4).await;
    let mut got1 = Vec::new();
    let mut got2 = Vec::new();
    for _ in 0..2 {
        let m = next_msg(&mut s1).await;
        got1.push(m.sequence());
        let m = next_msg(&mut s2).await;
        got2.push(m.sequence());
        m.ack().await.unwrap();
    }
    let mut all: Vec<u64> = got1.iter().chain(&got2).copied().collect();
    all.sort_unstable();
    assert_eq!(all, vec![1, 2, 3, 4], "each message to exactly one member");
    // Member 1 leaves without acking: its messages go to member 2, redelivered.
    s1.close().await.unwrap();
    let mut redelivered = Vec::new();
    for _ in 0..2 {
        let m = next_msg(&mut s2).await;
        assert!(m.redelivered(), "seq {}", m.sequence());
        redelivered.push(m.sequence());
        m.ack().await.unwrap();
    }
    redelivered.sort_unstable();
    assert_eq!(redelivered, got1);
    // The group carries on with its remaining member.
    p.publish("bar", "after").await.unwrap();
    assert_eq!(next_msg(&mut s2).await.sequence(), 5);
    for c in [c1, c2, p] {
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn durable_queue_group_survives_its_last_member_closing() {
    let (nats, _stan, _dir) = setup().await;
    let p = stan(&nats, "p").await;
    let dq = SubscriptionOptions {
        queue_group: Some("workers".into()),
        durable_name: Some("dq".into()),
        start: StartAt::First,
        manual_acks: true,
        ..Default::default()
    };
    publish_n(&p, "jobs", "j", 3).await;
    let c1 = stan(&nats, "c1").await;
    let mut s = c1.subscribe("jobs", dq.clone()).await.unwrap();
    let m1 = next_msg(&mut s).await;
    m1.ack().await.unwrap();
    let _m2 = next_msg(&mut s).await; // left unacked
    let m3 = next_msg(&mut s).await;
    m3.ack().await.unwrap();
    c1.close().await.unwrap();
    publish_n(&p, "jobs", "k", 1).await;

    // A new member (another client) resumes the group: unacked 2 first, then 4.
    let c2 = stan(&nats, "c2").await;
    let mut s = c2.subscribe("jobs", dq.clone()).await.unwrap();
    let m = next_msg(&mut s).await;
    assert_eq!((m.sequence(), m.redelivered()), (2, true));
    m.ack().await.unwrap();
    let m = next_msg(&mut s).await;
    assert_eq!(m.sequence(), 4);
    m.ack().await.unwrap();

    // The last member unsubscribing deletes the group.
    s.unsubscribe().await.unwrap();
    let mut fresh = c2.subscribe("jobs", dq).await.unwrap();
    assert_eq!(next_msg(&mut fresh).await.sequence(), 1);
    c2.close().await.unwrap();
    p.close().await.unwrap();
}

#[tokio::test]
async fn subscription_response_precedes_the_first_delivery() {
    use futures::StreamExt;
    use prost::Message;
    use stanchion::protocol::pb::*;
    let (nats, _stan, _dir) = setup().await;
    let p = stan(&nats, "p").await;
    publish_n(&p, "foo", "m", 3).await;
    let raw = nats.client().await;
    // One wildcard subscription sees the reply and the deliveries in arrival order.
    let mut all = raw.subscribe("_INBOX.order.>").await.unwrap();
    raw.flush().await.unwrap();
    let req = SubscriptionRequest {
        client_id: "p".into(),
        subject: "foo".into(),
        inbox: "_INBOX.order.deliver".into(),
        max_in_flight: 10,
        ack_wait_in_secs: 30,
        start_position: StartPosition::First as i32,
        ..Default::default()
    };
    raw.publish_with_reply(
        "_STAN.sub.test-cluster",
        "_INBOX.order.reply",
        req.encode_to_vec().into(),
    )
    .await
    .unwrap();
    let first = tokio::time::timeout(WAIT, all.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.subject.as_str(), "_INBOX.order.reply");
    let resp = SubscriptionResponse::decode(first.payload).unwrap();
    assert!(resp.error.is_empty() && resp.ack_inbox.starts_with("_INBOX."));
    for seq in 1..=3 {
        let m = tokio::time::timeout(WAIT, all.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.subject.as_str(), "_INBOX.order.deliver");
        assert_eq!(MsgProto::decode(m.payload).unwrap().sequence, seq);
    }
    p.close().await.unwrap();
}
