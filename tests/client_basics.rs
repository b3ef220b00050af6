//! The bundled STAN client against a real nats-server and a tiny fake STAN
//! server written here: checks what the client puts on the wire and how it
//! handles each kind of answer, before (and independently of) stanchion.

mod common;

use std::future::Future;
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use tokio::sync::mpsc;

use common::Nats;
use stanchion::client::{
    ClientError, Connection, Options, StartAt, SubscriptionOptions, PING_FAILURE,
};
use stanchion::protocol::{errors, pb, Subjects, DEFAULT_DISCOVER_PREFIX};

const CID: &str = "test-cluster";

/// Every test body runs under this bound.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test timed out")
}

fn subjects() -> Subjects {
    Subjects::new(DEFAULT_DISCOVER_PREFIX, CID)
}

/// Returns once the nats-server has processed everything `nats` sent before
/// (async-nats' `flush` only flushes the socket): a message to itself
/// travels through the same ordered stream as earlier SUBs.
async fn sync(nats: &async_nats::Client) {
    let inbox = nats.new_inbox();
    let mut echo = nats.subscribe(inbox.clone()).await.unwrap();
    nats.publish(inbox, Bytes::new()).await.unwrap();
    echo.next().await.expect("own message comes back");
}

/// A request the fake server received, decoded, with the raw NATS message.
struct Got<T> {
    req: T,
    msg: async_nats::Message,
}

/// Serves `subject` on the fake server's connection: each message is decoded
/// as `Req`, answered with `answer(&req)` when it has a reply subject and the
/// answer is `Some`, then handed to the test. The subscription is registered
/// at the nats-server before this returns.
async fn serve<Req, Resp, F>(
    fake: &async_nats::Client,
    subject: &str,
    mut answer: F,
) -> mpsc::Receiver<Got<Req>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + 'static,
    F: FnMut(&Req) -> Option<Resp> + Send + 'static,
{
    let mut sub = fake.subscribe(subject.to_string()).await.unwrap();
    sync(fake).await;
    let (tx, rx) = mpsc::channel(256);
    let fake = fake.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let req = Req::decode(msg.payload.clone()).expect("request decodes");
            if let (Some(reply), Some(resp)) = (msg.reply.clone(), answer(&req)) {
                fake.publish(reply, resp.encode_to_vec().into())
                    .await
                    .unwrap();
            }
            let _ = tx.try_send(Got { req, msg });
        }
    });
    rx
}

/// Answers ConnectRequests like the reference server (echoing ping settings).
async fn serve_connects(fake: &async_nats::Client) -> mpsc::Receiver<Got<pb::ConnectRequest>> {
    serve(fake, &subjects().discover, |req: &pb::ConnectRequest| {
        Some(subjects().connect_response(req.protocol, req.ping_interval, req.ping_max_out))
    })
    .await
}

/// A nats-server, the fake server's NATS client, and a client-side NATS client.
async fn setup() -> (Nats, async_nats::Client, async_nats::Client) {
    let nats = Nats::start();
    let fake = nats.client().await;
    let client = nats.client().await;
    (nats, fake, client)
}

/// Connects `opts` through a fake that answers connects; returns the request it saw.
async fn connect(
    fake: &async_nats::Client,
    client: async_nats::Client,
    opts: Options,
) -> (Connection, pb::ConnectRequest) {
    let mut connects = serve_connects(fake).await;
    let conn = Connection::connect(client, opts).await.expect("connect");
    let req = connects.recv().await.unwrap().req;
    (conn, req)
}

fn msg_proto(seq: u64, data: &'static [u8]) -> Bytes {
    pb::MsgProto {
        sequence: seq,
        subject: "foo".into(),
        data: Bytes::from_static(data),
        timestamp: 1_700_000_000_000_000_000,
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

#[tokio::test]
async fn connect_and_close_send_the_right_requests() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let mut closes = serve(&fake, &subjects().close, |_: &pb::CloseRequest| {
            Some(pb::CloseResponse::default())
        })
        .await;
        let (conn, req) = connect(&fake, client, Options::new(CID, "c1")).await;

        assert_eq!(req.client_id, "c1");
        assert!(
            req.heartbeat_inbox.starts_with("_INBOX."),
            "{}",
            req.heartbeat_inbox
        );
        assert_eq!(req.protocol, 1);
        assert_eq!(req.conn_id.len(), 22);
        assert_eq!(&req.conn_id[..], conn.conn_id());
        assert_eq!((req.ping_interval, req.ping_max_out), (5, 88));
        assert_eq!(conn.client_id(), "c1");

        conn.close().await.expect("close");
        let got = closes.recv().await.unwrap();
        assert_eq!(got.req.client_id, "c1");
        assert!(got.msg.reply.is_some(), "close is a request");
        assert!(conn.is_closed());
        conn.close().await.expect("second close is a no-op");
        assert!(matches!(
            conn.publish("foo", "x").await,
            Err(ClientError::ConnectionClosed)
        ));
        assert!(matches!(
            conn.subscribe("foo", SubscriptionOptions::default()).await,
            Err(ClientError::ConnectionClosed)
        ));
        assert!(
            conn.connection_lost().borrow().is_none(),
            "a close is not a loss"
        );
    })
    .await
}

#[tokio::test]
async fn connect_error_is_the_server_text() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let _connects = serve(&fake, &subjects().discover, |_: &pb::ConnectRequest| {
            Some(pb::ConnectResponse {
                error: errors::CLIENT_ID_REGISTERED.into(),
                ..Default::default()
            })
        })
        .await;
        let err = Connection::connect(client, Options::new(CID, "c1"))
            .await
            .unwrap_err();
        assert!(matches!(&err, ClientError::Server(t) if t == errors::CLIENT_ID_REGISTERED));
        assert_eq!(err.to_string(), errors::CLIENT_ID_REGISTERED);
    })
    .await
}

#[tokio::test]
async fn connect_times_out_without_a_server() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        // Nobody listens: "no responders" counts as a timeout.
        let err = Connection::connect(client.clone(), Options::new(CID, "c1"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::ConnectTimeout), "{err:?}");
        assert_eq!(
            err.to_string(),
            "stan: connect request timeout (possibly wrong cluster ID?)"
        );
        // Someone listens but never answers.
        let _silent = serve(&fake, &subjects().discover, |_: &pb::ConnectRequest| {
            None::<pb::ConnectResponse>
        })
        .await;
        let mut opts = Options::new(CID, "c1");
        opts.connect_wait = Duration::from_millis(200);
        let err = Connection::connect(client, opts).await.unwrap_err();
        assert!(matches!(err, ClientError::ConnectTimeout), "{err:?}");
    })
    .await
}

#[tokio::test]
async fn heartbeats_are_answered_with_empty_replies() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let (conn, req) = connect(&fake, client, Options::new(CID, "c1")).await;
        let hb = || {
            fake.send_request(
                req.heartbeat_inbox.clone(),
                async_nats::Request::new().timeout(Some(Duration::from_millis(500))),
            )
        };
        let reply = hb().await.expect("heartbeat answered");
        assert!(reply.payload.is_empty());

        conn.set_heartbeat_replies(false);
        let err = hb().await.unwrap_err();
        assert_eq!(err.kind(), RequestErrorKind::TimedOut);

        conn.set_heartbeat_replies(true);
        assert!(hb().await.expect("answered again").payload.is_empty());

        // Dropping every handle without close stops the replies (a crashed client).
        drop(conn);
        assert!(hb().await.is_err());
    })
    .await
}

#[tokio::test]
async fn publish_async_resolves_by_guid() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let mut pubs = fake
            .subscribe(format!("{}.>", subjects().publish))
            .await
            .unwrap();
        sync(&fake).await;
        let (conn, _) = connect(&fake, client, Options::new(CID, "c1")).await;

        let mut a = conn.publish_async("foo", "one").await.unwrap();
        let b = conn
            .publish_async("foo.bar", b"two".to_vec())
            .await
            .unwrap();
        assert_ne!(a.guid(), b.guid());

        let mut reply_subject = None;
        for (expect_channel, expect_data, guid) in [
            ("foo", &b"one"[..], a.guid()),
            ("foo.bar", &b"two"[..], b.guid()),
        ] {
            let msg = pubs.next().await.unwrap();
            assert_eq!(
                msg.subject.as_str(),
                format!("_STAN.pub.{CID}.{expect_channel}")
            );
            let reply = msg
                .reply
                .clone()
                .expect("PubMsg has the ack subject as reply");
            assert!(reply.starts_with("_STAN.acks."), "{reply}");
            // One ack subject per connection.
            assert_eq!(reply_subject.get_or_insert_with(|| reply.clone()), &reply);
            let pm = pb::PubMsg::decode(msg.payload).unwrap();
            assert_eq!(pm.client_id, "c1");
            assert_eq!(pm.guid, guid.as_str());
            assert_eq!(pm.guid.len(), 22);
            assert_eq!(pm.subject, expect_channel);
            assert_eq!(&pm.data[..], expect_data);
            assert_eq!(&pm.conn_id[..], conn.conn_id());
            assert!(pm.reply.is_empty() && pm.sha256.is_empty());
        }
        let ack_subject = reply_subject.unwrap();
        let send_ack = |guid: &str| {
            let ack = pb::PubAck {
                guid: guid.into(),
                error: String::new(),
            };
            fake.publish(ack_subject.clone(), ack.encode_to_vec().into())
        };
        // A stranger's guid is ignored; b's ack resolves b only.
        send_ack("NOT-OURS").await.unwrap();
        send_ack(b.guid().as_str()).await.unwrap();
        let (guid, res) = b.await;
        res.expect("b acked");
        // Acks are dispatched in arrival order, so a's (not yet sent) cannot have come.
        assert!((&mut a).now_or_never().is_none(), "a is still waiting");
        assert_ne!(guid, a.guid());
        send_ack(a.guid().as_str()).await.unwrap();
        let (guid, res) = a.await;
        res.expect("a acked");
        assert_eq!(guid.as_str().len(), 22);

        // publish() waits for its own ack.
        let publisher = {
            let conn = conn.clone();
            tokio::spawn(async move { conn.publish("foo", Bytes::from_static(b"three")).await })
        };
        let msg = pubs.next().await.unwrap();
        let pm = pb::PubMsg::decode(msg.payload).unwrap();
        send_ack(&pm.guid).await.unwrap();
        publisher.await.unwrap().expect("publish acked");
    })
    .await
}

#[tokio::test]
async fn pub_ack_errors_and_timeouts_surface() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let mut pubs = serve(
            &fake,
            &format!("{}.>", subjects().publish),
            |pm: &pb::PubMsg| {
                (pm.subject == "bad").then(|| pb::PubAck {
                    guid: pm.guid.clone(),
                    error: errors::INVALID_PUB_REQ.into(),
                })
            },
        )
        .await;
        let mut opts = Options::new(CID, "c1");
        opts.pub_ack_wait = Duration::from_millis(200);
        let (conn, _) = connect(&fake, client, opts).await;

        let err = conn.publish("bad", "x").await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Server(t) if t == errors::INVALID_PUB_REQ),
            "{err:?}"
        );

        // Never acked: times out after pub_ack_wait.
        let err = conn.publish("good", "x").await.unwrap_err();
        assert!(matches!(err, ClientError::PubAckTimeout), "{err:?}");
        assert_eq!(err.to_string(), "stan: publish ack timeout");
        assert_eq!(pubs.recv().await.unwrap().req.subject, "bad");
        assert_eq!(pubs.recv().await.unwrap().req.subject, "good");
    })
    .await
}

#[tokio::test]
async fn publish_async_waits_for_a_free_inflight_slot() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let mut pubs = fake
            .subscribe(format!("{}.>", subjects().publish))
            .await
            .unwrap();
        sync(&fake).await;
        let mut opts = Options::new(CID, "c1");
        opts.max_pub_acks_inflight = 2;
        let (conn, _) = connect(&fake, client, opts).await;

        let first = conn.publish_async("foo", "1").await.unwrap();
        let _second = conn.publish_async("foo", "2").await.unwrap();
        assert!(
            conn.publish_async("foo", "3").now_or_never().is_none(),
            "a third publish must wait while two acks are outstanding"
        );
        let msg = pubs.next().await.unwrap();
        let ack = pb::PubAck {
            guid: first.guid().as_str().into(),
            error: String::new(),
        };
        fake.publish(msg.reply.unwrap(), ack.encode_to_vec().into())
            .await
            .unwrap();
        first.await.1.unwrap();
        let third = conn
            .publish_async("foo", "3")
            .await
            .expect("slot freed by the ack");
        assert!((pubs.next().await.unwrap()).payload.len() > 1);
        drop(third);
    })
    .await
}

/// A fake subscription endpoint: answers SubscriptionRequests with `ack_inbox`
/// (subscribed by the fake) and returns what it saw plus the acks.
async fn serve_subscribe(
    fake: &async_nats::Client,
) -> (
    mpsc::Receiver<Got<pb::SubscriptionRequest>>,
    async_nats::Subscriber,
    String,
) {
    let ack_inbox = fake.new_inbox();
    let acks = fake.subscribe(ack_inbox.clone()).await.unwrap();
    sync(fake).await;
    let answer = ack_inbox.clone();
    let reqs = serve(
        fake,
        &subjects().subscribe,
        move |_: &pb::SubscriptionRequest| {
            Some(pb::SubscriptionResponse {
                ack_inbox: answer.clone(),
                error: String::new(),
            })
        },
    )
    .await;
    (reqs, acks, ack_inbox)
}

#[tokio::test]
async fn subscribe_sends_the_request_delivers_and_auto_acks() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let (mut reqs, mut acks, ack_inbox) = serve_subscribe(&fake).await;
        let (conn, _) = connect(&fake, client, Options::new(CID, "c1")).await;

        let opts = SubscriptionOptions {
            queue_group: Some("q".into()),
            durable_name: Some("dur".into()),
            max_in_flight: 10,
            ack_wait: Duration::from_millis(3_500),
            start: StartAt::Sequence(5),
            manual_acks: false,
        };
        let mut sub = conn.subscribe("foo", opts).await.expect("subscribe");
        let got = reqs.recv().await.unwrap();
        assert!(got.msg.reply.is_some(), "subscribe is a request");
        let req = got.req;
        assert_eq!(req.client_id, "c1");
        assert_eq!(req.subject, "foo");
        assert_eq!(req.q_group, "q");
        assert_eq!(req.durable_name, "dur");
        assert_eq!(req.max_in_flight, 10);
        assert_eq!(req.ack_wait_in_secs, 3);
        assert_eq!(
            req.start_position,
            i32::from(pb::StartPosition::SequenceStart)
        );
        assert_eq!(req.start_sequence, 5);
        assert!(req.inbox.starts_with("_INBOX."));
        assert_eq!(sub.inbox(), req.inbox);
        assert_eq!(sub.ack_inbox(), ack_inbox);
        assert_eq!(sub.channel(), "foo");

        fake.publish(req.inbox.clone(), msg_proto(5, b"hello"))
            .await
            .unwrap();
        let msg = sub.next().await.expect("delivered");
        assert_eq!(msg.sequence(), 5);
        assert_eq!(&msg.data()[..], b"hello");
        assert!(!msg.redelivered());
        assert_eq!(msg.channel(), "foo");

        let ack = acks.next().await.unwrap();
        assert!(ack.reply.is_none(), "acks are plain publishes");
        let ack = pb::Ack::decode(ack.payload).unwrap();
        assert_eq!((ack.subject.as_str(), ack.sequence), ("foo", 5));
        assert!(matches!(msg.ack().await, Err(ClientError::ManualAck)));

        // A MsgProto that does not decode is skipped, the next one delivered.
        fake.publish(req.inbox.clone(), Bytes::from_static(&[0xff, 0xff]))
            .await
            .unwrap();
        fake.publish(req.inbox.clone(), msg_proto(6, b"next"))
            .await
            .unwrap();
        assert_eq!(sub.next().await.unwrap().sequence(), 6);
    })
    .await
}

#[tokio::test]
async fn manual_acks_are_sent_only_when_asked() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let (mut reqs, mut acks, _) = serve_subscribe(&fake).await;
        let (conn, _) = connect(&fake, client, Options::new(CID, "c1")).await;
        let opts = SubscriptionOptions {
            manual_acks: true,
            start: StartAt::TimeDelta(Duration::from_secs(90)),
            ..Default::default()
        };
        let mut sub = conn.subscribe("foo", opts).await.unwrap();
        let req = reqs.recv().await.unwrap().req;
        assert_eq!(
            req.start_position,
            i32::from(pb::StartPosition::TimeDeltaStart)
        );
        assert_eq!(req.start_time_delta, 90_000_000_000);
        assert_eq!((req.max_in_flight, req.ack_wait_in_secs), (1024, 30));

        fake.publish(req.inbox.clone(), msg_proto(1, b"a"))
            .await
            .unwrap();
        fake.publish(req.inbox.clone(), msg_proto(2, b"b"))
            .await
            .unwrap();
        let m1 = sub.next().await.unwrap();
        let m2 = sub.next().await.unwrap();
        // Acking 2 then 1: had next() acked, 1 would have come first.
        m2.ack().await.unwrap();
        m1.ack().await.unwrap();
        let seqs: Vec<u64> = [acks.next().await.unwrap(), acks.next().await.unwrap()]
            .into_iter()
            .map(|m| pb::Ack::decode(m.payload).unwrap().sequence)
            .collect();
        assert_eq!(seqs, [2, 1]);
    })
    .await
}

#[tokio::test]
async fn subscribe_errors_and_timeout_cleanup() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let mut reqs = serve(
            &fake,
            &subjects().subscribe,
            |req: &pb::SubscriptionRequest| {
                (req.subject == "bad").then(|| pb::SubscriptionResponse {
                    ack_inbox: String::new(),
                    error: errors::INVALID_SUBJECT.into(),
                })
            },
        )
        .await;
        let mut cleanups = serve(
            &fake,
            &subjects().sub_close,
            |_: &pb::UnsubscribeRequest| None::<pb::SubscriptionResponse>,
        )
        .await;
        let mut opts = Options::new(CID, "c1");
        opts.connect_wait = Duration::from_millis(300);
        let (conn, _) = connect(&fake, client, opts).await;

        let err = conn
            .subscribe("bad", SubscriptionOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Server(t) if t == errors::INVALID_SUBJECT),
            "{err:?}"
        );
        reqs.recv().await.unwrap();

        // No answer: timeout, then an UnsubscribeRequest for the delivery inbox.
        let opts = SubscriptionOptions {
            durable_name: Some("d".into()),
            ..Default::default()
        };
        let err = conn.subscribe("silent", opts).await.unwrap_err();
        assert!(matches!(err, ClientError::SubscribeTimeout), "{err:?}");
        assert_eq!(err.to_string(), "stan: subscribe request timeout");
        let sent = reqs.recv().await.unwrap().req;
        let cleanup = cleanups.recv().await.unwrap().req;
        assert_eq!(cleanup.client_id, "c1");
        assert_eq!(cleanup.subject, "silent");
        assert_eq!(cleanup.inbox, sent.inbox);
        assert_eq!(cleanup.durable_name, "d");
    })
    .await
}

#[tokio::test]
async fn unsubscribe_and_close_send_the_ack_inbox() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let (_reqs, _acks, ack_inbox) = serve_subscribe(&fake).await;
        let mut unsubs = serve(
            &fake,
            &subjects().unsubscribe,
            |_: &pb::UnsubscribeRequest| Some(pb::SubscriptionResponse::default()),
        )
        .await;
        let mut closes = serve(
            &fake,
            &subjects().sub_close,
            |_: &pb::UnsubscribeRequest| {
                Some(pb::SubscriptionResponse {
                    ack_inbox: String::new(),
                    error: errors::INVALID_SUB.into(),
                })
            },
        )
        .await;
        let (conn, _) = connect(&fake, client, Options::new(CID, "c1")).await;

        let durable = SubscriptionOptions {
            durable_name: Some("dur".into()),
            ..Default::default()
        };
        let sub = conn.subscribe("foo", durable).await.unwrap();
        sub.unsubscribe().await.expect("unsubscribe");
        let got = unsubs.recv().await.unwrap();
        assert!(got.msg.reply.is_some());
        assert_eq!(got.req.client_id, "c1");
        assert_eq!(got.req.subject, "foo");
        assert_eq!(got.req.inbox, ack_inbox);
        assert_eq!(got.req.durable_name, "dur");

        let sub = conn
            .subscribe("bar", SubscriptionOptions::default())
            .await
            .unwrap();
        let err = sub.close().await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Server(t) if t == errors::INVALID_SUB),
            "{err:?}"
        );
        let got = closes.recv().await.unwrap();
        assert_eq!(got.req.subject, "bar");
        assert_eq!(got.req.inbox, ack_inbox);
        assert!(got.req.durable_name.is_empty());
    })
    .await
}

#[tokio::test]
async fn ping_reply_error_marks_the_connection_lost() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let mut count = 0;
        let mut pings = serve(&fake, &subjects().pings, move |_: &pb::Ping| {
            count += 1;
            Some(pb::PingResponse {
                error: if count < 3 {
                    String::new()
                } else {
                    errors::CLIENT_REPLACED.into()
                },
            })
        })
        .await;
        let (_reqs, _acks, _) = serve_subscribe(&fake).await;
        let mut opts = Options::new(CID, "c1");
        opts.ping_period_override = Some(Duration::from_millis(20));
        let (conn, _) = connect(&fake, client, opts).await;
        let mut sub = conn
            .subscribe("foo", SubscriptionOptions::default())
            .await
            .unwrap();
        let pending = conn.publish_async("foo", "x").await.unwrap();

        let mut lost = conn.connection_lost();
        let reason = lost.wait_for(|r| r.is_some()).await.unwrap().clone();
        assert_eq!(reason.as_deref(), Some(errors::CLIENT_REPLACED));

        let first = pings.recv().await.unwrap();
        assert_eq!(&first.req.conn_id[..], conn.conn_id());
        let inbox = first.msg.reply.expect("ping has a reply inbox");
        let second = pings.recv().await.unwrap();
        assert_eq!(second.msg.reply.as_ref(), Some(&inbox), "one ping inbox");

        let (_, res) = pending.await;
        assert!(
            matches!(&res, Err(ClientError::ConnectionLost(t)) if t == errors::CLIENT_REPLACED),
            "{res:?}"
        );
        assert!(conn.is_closed());
        assert!(matches!(
            conn.publish_async("foo", "y").await,
            Err(ClientError::ConnectionClosed)
        ));
        assert!(
            sub.next().await.is_none(),
            "subscriptions end with the connection"
        );
        conn.close()
            .await
            .expect("closing a lost connection is a no-op");
    })
    .await
}

#[tokio::test]
async fn unanswered_pings_lose_the_connection() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        // Nobody serves pings: the "no responders" statuses must not count as answers.
        let mut opts = Options::new(CID, "c1");
        opts.ping_max_out = 2;
        opts.ping_period_override = Some(Duration::from_millis(20));
        let (conn, req) = connect(&fake, client, opts).await;
        assert_eq!(req.ping_max_out, 2);
        let mut lost = conn.connection_lost();
        let reason = lost.wait_for(|r| r.is_some()).await.unwrap().clone();
        assert_eq!(reason.as_deref(), Some(PING_FAILURE));
    })
    .await
}

#[tokio::test]
async fn close_fails_pending_publishes_and_reports_server_errors() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let _closes = serve(&fake, &subjects().close, |_: &pb::CloseRequest| {
            Some(pb::CloseResponse {
                error: errors::UNKNOWN_CLIENT.into(),
            })
        })
        .await;
        let (_reqs, _acks, _) = serve_subscribe(&fake).await;
        let (conn, _) = connect(&fake, client, Options::new(CID, "c1")).await;
        let mut sub = conn
            .subscribe("foo", SubscriptionOptions::default())
            .await
            .unwrap();
        let pending = conn.publish_async("foo", "never acked").await.unwrap();

        let err = conn.close().await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Server(t) if t == errors::UNKNOWN_CLIENT),
            "{err:?}"
        );
        assert!(matches!(
            pending.await.1,
            Err(ClientError::ConnectionClosed)
        ));
        assert!(sub.next().await.is_none());
        assert!(matches!(
            sub.unsubscribe().await,
            Err(ClientError::ConnectionClosed)
        ));
    })
    .await
}

#[tokio::test]
async fn close_times_out_without_a_server() {
    bounded(async {
        let (_nats, fake, client) = setup().await;
        let mut opts = Options::new(CID, "c1");
        opts.connect_wait = Duration::from_millis(200);
        let (conn, _) = connect(&fake, client, opts).await;
        let err = conn.close().await.unwrap_err();
        assert!(matches!(err, ClientError::CloseTimeout), "{err:?}");
        assert_eq!(err.to_string(), "stan: close request timeout");
    })
    .await
}
