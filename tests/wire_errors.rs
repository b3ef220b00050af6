//! Requests replayed from the reference server's error capture (wire 08),
//! sent over raw NATS to a real stanchion: every answer must carry the
//! reference's exact error text, and bad input of every kind must leave
//! the server serving everyone else.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Nats, Stanchion};
use prost::Message;
use stanchion::protocol::errors;
use stanchion::protocol::pb::*;

const T: Duration = Duration::from_secs(5);

struct Raw {
    nc: async_nats::Client,
}

impl Raw {
    async fn request<R: Message + Default>(&self, subject: &str, payload: Vec<u8>) -> R {
        let reply = tokio::time::timeout(
            T,
            self.nc.request(subject.to_string(), Bytes::from(payload)),
        )
        .await
        .expect("request timed out")
        .expect("request failed");
        R::decode(reply.payload).expect("reply decodes")
    }

    async fn connect(&self, client_id: &str, hb_inbox: &str, conn_id: &[u8]) -> ConnectResponse {
        let req = ConnectRequest {
            client_id: client_id.into(),
            heartbeat_inbox: hb_inbox.into(),
            protocol: 1,
            conn_id: Bytes::copy_from_slice(conn_id),
            ping_interval: 5,
            ping_max_out: 3,
        };
        self.request("_STAN.discover.test-cluster", req.encode_to_vec())
            .await
    }

    async fn subscribe(&self, req: SubscriptionRequest) -> SubscriptionResponse {
        self.request("_STAN.sub.test-cluster", req.encode_to_vec())
            .await
    }
}

fn sub_req(client: &str, subject: &str) -> SubscriptionRequest {
    SubscriptionRequest {
        client_id: client.into(),
        subject: subject.into(),
        inbox: "_INBOX.test.deliver".into(),
        max_in_flight: 1024,
        ack_wait_in_secs: 30,
        start_position: StartPosition::First as i32,
        ..Default::default()
    }
}

async fn setup() -> (Nats, Stanchion, tempfile::TempDir, Raw) {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let stan = Stanchion::start(&nats, &dir.path().join("data"), &[]).await;
    let nc = nats.client().await;
    (nats, stan, dir, Raw { nc })
}

#[tokio::test]
async fn connect_close_and_their_errors_match_the_reference() {
    let (_nats, _stan, _dir, raw) = setup().await;
    let bad = raw.connect("bad id!", "_INBOX.hb1", b"c0").await;
    assert_eq!(bad.error, errors::INVALID_CLIENT_ID);
    assert!(bad.pub_prefix.is_empty());

    let missing_hb: ConnectResponse = raw
        .request(
            "_STAN.discover.test-cluster",
            ConnectRequest {
                client_id: "x".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .await;
    assert_eq!(missing_hb.error, errors::INVALID_CONN_REQ);
    let garbage: ConnectResponse = raw
        .request("_STAN.discover.test-cluster", vec![0xff, 0xff, 0xff])
        .await;
    assert_eq!(garbage.error, errors::INVALID_CONN_REQ);

    // e1 answers its heartbeats, so a second connect as e1 is refused.
    let mut hb = raw.nc.subscribe("_INBOX.hb-e1").await.unwrap();
    let answerer = raw.nc.clone();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(m) = hb.next().await {
            if let Some(reply) = m.reply {
                let _ = answerer.publish(reply, Bytes::new()).await;
            }
        }
    });
    raw.nc.flush().await.unwrap();
    let ok = raw.connect("e1", "_INBOX.hb-e1", b"conn-e1").await;
    assert_eq!(ok.error, "");
    assert_eq!(ok.pub_prefix, "_STAN.pub.test-cluster");
    assert_eq!(ok.sub_requests, "_STAN.sub.test-cluster");
    assert_eq!(ok.unsub_requests, "_STAN.unsub.test-cluster");
    assert_eq!(ok.close_requests, "_STAN.close.test-cluster");
    assert_eq!(ok.sub_close_requests, "_STAN.subclose.test-cluster");
    assert_eq!(ok.ping_requests, "_STAN.discover.test-cluster.pings");
    assert_eq!((ok.ping_interval, ok.ping_max_out, ok.protocol), (5, 3, 1));

    let dup = raw.connect("e1", "_INBOX.hb-e1b", b"conn-e1b").await;
    assert_eq!(dup.error, errors::CLIENT_ID_REGISTERED);

    let unknown: CloseResponse = raw
        .request(
            "_STAN.close.test-cluster",
            CloseRequest {
                client_id: "nobody".into(),
            }
            .encode_to_vec(),
        )
        .await;
    assert_eq!(unknown.error, errors::UNKNOWN_CLIENT);

    // An OK close answers with zero bytes, and frees the client ID.
    let reply = tokio::time::timeout(
        T,
        raw.nc.request(
            "_STAN.close.test-cluster",
            Bytes::from(
                CloseRequest {
                    client_id: "e1".into(),
                }
                .encode_to_vec(),
            ),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(reply.payload.is_empty(), "OK CloseResponse is zero bytes");
    assert_eq!(
        raw.connect("e1", "_INBOX.hb-e1c", b"conn-e1c").await.error,
        ""
    );
}

#[tokio::test]
async fn subscription_validation_order_and_texts() {
    let (_nats, _stan, _dir, raw) = setup().await;
    assert_eq!(raw.connect("e1", "_INBOX.hb", b"conn").await.error, "");

    let garbage: SubscriptionResponse = raw
        .request("_STAN.sub.test-cluster", vec![0x0a, 0xff])
        .await;
    assert_eq!(garbage.error, errors::INVALID_SUB_REQ);
    // Every field wrong: the first check in the reference's order wins.
    let mut all_bad = sub_req("", "foo.*");
    all_bad.ack_wait_in_secs = 0;
    all_bad.max_in_flight = 0;
    all_bad.start_position = 9;
    assert_eq!(
        raw.subscribe(all_bad.clone()).await.error,
        errors::MISSING_CLIENT
    );
    all_bad.client_id = "nobody".into();
    assert_eq!(
        raw.subscribe(all_bad.clone()).await.error,
        errors::INVALID_ACK_WAIT
    );
    all_bad.ack_wait_in_secs = 30;
    assert_eq!(
        raw.subscribe(all_bad.clone()).await.error,
        errors::INVALID_MAX_INFLIGHT
    );
    all_bad.max_in_flight = 1;
    assert_eq!(
        raw.subscribe(all_bad.clone()).await.error,
        errors::INVALID_START
    );
    all_bad.start_position = 4;
    assert_eq!(
        raw.subscribe(all_bad.clone()).await.error,
        errors::INVALID_SUBJECT
    );
    all_bad.subject = "foo".into();
    assert_eq!(
        raw.subscribe(all_bad.clone()).await.error,
        errors::UNKNOWN_CLIENT
    );
    all_bad.client_id = "e1".into();
    let ok = raw.subscribe(all_bad).await;
    assert_eq!(ok.error, "");
    assert!(ok.ack_inbox.starts_with("_INBOX."), "{}", ok.ack_inbox);

    let mut dq = sub_req("e1", "foo");
    dq.q_group = "q".into();
    dq.durable_name = "a:b".into();
    assert_eq!(raw.subscribe(dq).await.error, errors::INVALID_DURABLE_NAME);

    let mut dur = sub_req("e1", "foo");
    dur.durable_name = "d".into();
    assert_eq!(raw.subscribe(dur.clone()).await.error, "");
    dur.inbox = "_INBOX.test.other".into();
    assert_eq!(raw.subscribe(dur).await.error, errors::DUP_DURABLE);

    for (subject, close) in [
        ("_STAN.unsub.test-cluster", false),
        ("_STAN.subclose.test-cluster", true),
    ] {
        let unknown_inbox = UnsubscribeRequest {
            client_id: "e1".into(),
            subject: "foo".into(),
            inbox: "_INBOX.nope".into(),
            ..Default::default()
        };
        let r: SubscriptionResponse = raw.request(subject, unknown_inbox.encode_to_vec()).await;
        assert_eq!(r.error, errors::INVALID_SUB, "close={close}");
        let unknown_channel = UnsubscribeRequest {
            client_id: "e1".into(),
            subject: "nochannel".into(),
            inbox: "_INBOX.nope".into(),
            ..Default::default()
        };
        let r: SubscriptionResponse = raw.request(subject, unknown_channel.encode_to_vec()).await;
        assert_eq!(r.error, errors::INVALID_SUB);
        let r: SubscriptionResponse = raw.request(subject, vec![0xff]).await;
        assert_eq!(r.error, errors::INVALID_UNSUB_REQ);
    }
}

#[tokio::test]
async fn publish_errors_carry_the_guid_and_reference_text() {
    let (_nats, _stan, _dir, raw) = setup().await;
    assert_eq!(raw.connect("e1", "_INBOX.hb", b"conn-e1").await.error, "");
    let raw = &raw;
    let publish = |msg: PubMsg| async move {
        // The server takes the channel from PubMsg.subject, not the NATS subject.
        raw.request::<PubAck>("_STAN.pub.test-cluster.any", msg.encode_to_vec())
            .await
    };
    let base = PubMsg {
        client_id: "e1".into(),
        guid: "g1".into(),
        subject: "foo".into(),
        data: Bytes::from_static(b"ok"),
        conn_id: Bytes::from_static(b"conn-e1"),
        ..Default::default()
    };
    let ok = publish(base.clone()).await;
    assert_eq!((ok.guid.as_str(), ok.error.as_str()), ("g1", ""));

    for (what, msg) in [
        (
            "wildcard channel",
            PubMsg {
                subject: "foo.*".into(),
                guid: "g2".into(),
                ..base.clone()
            },
        ),
        (
            "empty token",
            PubMsg {
                subject: "foo..bar".into(),
                guid: "g3".into(),
                ..base.clone()
            },
        ),
        (
            "slash, refused as NSS 0.25 refuses it",
            PubMsg {
                subject: "foo/bar".into(),
                guid: "g3s".into(),
                ..base.clone()
            },
        ),
        (
            "trailing dot",
            PubMsg {
                subject: "foo.".into(),
                guid: "g3t".into(),
                ..base.clone()
            },
        ),
        (
            "unknown connID",
            PubMsg {
                conn_id: Bytes::from_static(b"nope"),
                guid: "g4".into(),
                ..base.clone()
            },
        ),
        (
            "unknown clientID",
            PubMsg {
                client_id: "nobody".into(),
                conn_id: Bytes::new(),
                guid: "g5".into(),
                ..base.clone()
            },
        ),
    ] {
        let guid = msg.guid.clone();
        let ack = publish(msg).await;
        assert_eq!(ack.error, errors::INVALID_PUB_REQ, "{what}");
        assert_eq!(ack.guid, guid, "{what}");
    }
    let no_guid = publish(PubMsg {
        guid: String::new(),
        ..base.clone()
    })
    .await;
    assert_eq!(no_guid.error, errors::INVALID_PUB_REQ);

    let garbage: PubAck = raw
        .request("_STAN.pub.test-cluster.foo", vec![0xff, 0x01])
        .await;
    assert_eq!(garbage.error, errors::INVALID_PUB_REQ);

    // Channel names differing only in case are refused with the reference's text.
    let upper = publish(PubMsg {
        subject: "FOO".into(),
        guid: "g6".into(),
        ..base.clone()
    })
    .await;
    assert_eq!(upper.error, errors::channel_case_collision("FOO", "foo"));
}

#[tokio::test]
async fn pings_answer_known_connections_with_zero_bytes() {
    let (_nats, _stan, _dir, raw) = setup().await;
    assert_eq!(raw.connect("e1", "_INBOX.hb", b"conn-e1").await.error, "");
    let ok = tokio::time::timeout(
        T,
        raw.nc.request(
            "_STAN.discover.test-cluster.pings",
            Bytes::from(
                Ping {
                    conn_id: Bytes::from_static(b"conn-e1"),
                }
                .encode_to_vec(),
            ),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(ok.payload.is_empty());
    let unknown: PingResponse = raw
        .request(
            "_STAN.discover.test-cluster.pings",
            Ping {
                conn_id: Bytes::from_static(b"other"),
            }
            .encode_to_vec(),
        )
        .await;
    assert_eq!(unknown.error, errors::CLIENT_REPLACED);
}

/// Garbage, empty payloads and wrong message types on every subject
/// stanchion listens on; afterwards a normal client still gets full service.
#[tokio::test]
async fn bad_input_on_every_subject_leaves_service_intact() {
    let (_nats, stan, _dir, raw) = setup().await;
    assert_eq!(
        raw.connect("good", "_INBOX.hb-good", b"conn-good")
            .await
            .error,
        ""
    );
    let sub = raw.subscribe(sub_req("good", "foo")).await;
    assert_eq!(sub.error, "");
    let ack_inbox = sub.ack_inbox.clone();
    let ack_prefix = ack_inbox.rsplit_once('.').unwrap().0.to_string();

    let wrong_type = CloseResponse {
        error: "x".repeat(50),
    }
    .encode_to_vec();
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 7],
        vec![0x0a, 0x80],
        wrong_type,
        vec![0u8; 4096],
    ];
    let subjects = [
        "_STAN.discover.test-cluster".to_string(),
        "_STAN.discover.test-cluster.pings".to_string(),
        "_STAN.pub.test-cluster.foo".to_string(),
        "_STAN.sub.test-cluster".to_string(),
        "_STAN.unsub.test-cluster".to_string(),
        "_STAN.subclose.test-cluster".to_string(),
        "_STAN.close.test-cluster".to_string(),
        format!("{ack_prefix}.unknown"),
        ack_inbox.clone(),
    ];
    let mut replies = raw.nc.subscribe("_INBOX.bad.>").await.unwrap();
    let mut expected = std::collections::HashMap::new();
    for (i, subject) in subjects.iter().enumerate() {
        for (j, body) in bodies.iter().enumerate() {
            raw.nc
                .publish(subject.clone(), Bytes::from(body.clone()))
                .await
                .unwrap();
            let reply = format!("_INBOX.bad.{i}.{j}");
            raw.nc
                .publish_with_reply(subject.clone(), reply.clone(), Bytes::from(body.clone()))
                .await
                .unwrap();
            // Acks never get replies; an empty ping is ignored, as the reference does.
            let answered = i < 7 && !(i == 1 && body.is_empty());
            if answered {
                expected.insert(reply, i);
            }
        }
    }
    // Each request with a reply subject gets the reference's error text.
    use futures::StreamExt;
    tokio::time::timeout(T, async {
        while !expected.is_empty() {
            let m = replies.next().await.unwrap();
            let Some(i) = expected.remove(m.subject.as_str()) else {
                continue;
            };
            let error = match i {
                0 => ConnectResponse::decode(m.payload).unwrap().error,
                1 => PingResponse::decode(m.payload).unwrap().error,
                2 => PubAck::decode(m.payload).unwrap().error,
                3..=5 => SubscriptionResponse::decode(m.payload).unwrap().error,
                _ => CloseResponse::decode(m.payload).unwrap().error,
            };
            assert!(
                error.starts_with("stan: ") || error == errors::CLIENT_REPLACED,
                "reply to {} on {}: {error:?}",
                m.subject,
                subjects[i]
            );
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no reply to {expected:?}"));
    raw.nc.flush().await.unwrap();

    // Service continues: publish and receive on the existing subscription.
    let mut deliveries = raw.nc.subscribe("_INBOX.test.deliver").await.unwrap();
    raw.nc.flush().await.unwrap();
    let ack: PubAck = raw
        .request(
            "_STAN.pub.test-cluster.foo",
            PubMsg {
                client_id: "good".into(),
                guid: "after".into(),
                subject: "foo".into(),
                data: Bytes::from_static(b"still here"),
                conn_id: Bytes::from_static(b"conn-good"),
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .await;
    assert_eq!((ack.guid.as_str(), ack.error.as_str()), ("after", ""));
    let got = tokio::time::timeout(T, async {
        loop {
            let m = deliveries.next().await.unwrap();
            let msg = MsgProto::decode(m.payload).unwrap();
            if msg.data.as_ref() == b"still here" {
                return msg;
            }
        }
    })
    .await
    .expect("delivery after bad input");
    assert_eq!(got.subject, "foo");
    assert_eq!(
        raw.connect("newcomer", "_INBOX.hb-new", b"conn-new")
            .await
            .error,
        ""
    );
    let mut s = stan;
    assert!(
        s.proc.try_wait().is_none(),
        "stanchion must still be running"
    );
}
