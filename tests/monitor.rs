//! NSS's monitoring endpoints on `-m`, checked field by field against a
//! state built through the protocol: two clients, two channels, a stalled
//! plain subscription, an offline durable, a durable queue group's shadow
//! and an online queue member. Plus the probes and the HTTP details
//! (JSONP, 404 texts, Go's JSON layout).

mod common;

use std::time::Duration;

use common::http::{get, wait_for_status};
use common::*;
use futures::StreamExt;
use prost::Message as _;
use serde_json::{json, Value};
use stanchion::client::{Message, StartAt, SubscriptionOptions};
use stanchion::protocol::pb::MsgProto;

/// NSS's file store counts each stored message's encoding plus this (record
/// header and index entry); stanchion's sled store reports as NSS's file store.
const FILE_RECORD_OVERHEAD: u64 = 40;

/// The encoded size of a delivered message, as NSS counts `out_bytes` (and,
/// plus [`FILE_RECORD_OVERHEAD`], a file store channel's `bytes`).
fn encoded_len(m: &Message) -> u64 {
    let proto = MsgProto {
        sequence: m.sequence(),
        subject: m.channel().to_string(),
        data: m.data().clone(),
        timestamp: m.timestamp(),
        ..Default::default()
    };
    u64::try_from(proto.encoded_len()).unwrap()
}

/// Keys of a JSON object in the order the body lists them.
fn key_order(body: &str, keys: &[&str]) -> Vec<usize> {
    keys.iter()
        .map(|k| {
            body.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing in {body}"))
        })
        .collect()
}

fn is_sorted(v: &[usize]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

/// What the monitor should report for one subscription.
fn subz(client: &str, inbox: &str, ack_inbox: &str, extra: Value) -> Value {
    let mut v = json!({
        "client_id": client,
        "inbox": inbox,
        "ack_inbox": ack_inbox,
        "is_durable": false,
        "is_offline": false,
        "max_inflight": 1024,
        "ack_wait": 30,
        "last_sent": 0,
        "pending_count": 0,
        "is_stalled": false,
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

#[tokio::test]
async fn every_endpoint_reports_the_state_built_through_the_protocol() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = port.to_string();
    let _stan = Stanchion::start(&nats, &dir.path().join("data"), &["-m", &p]).await;
    wait_for_status(port, "/readyz", 200, WAIT).await;
    assert_eq!(get(port, "/healthz").status, 200);

    // Every publish as it reaches stanchion, to check in_bytes.
    let raw = nats.client().await;
    let mut published = raw.subscribe("_STAN.pub.test-cluster.>").await.unwrap();
    raw.flush().await.unwrap();

    let a = stan(&nats, "mon-a").await;
    let b = stan(&nats, "mon-b").await;
    for (channel, data) in [
        ("foo", "one"),
        ("foo", "two-two"),
        ("foo", "three-three-three"),
        ("bar", "b1"),
        ("bar", "b-two"),
    ] {
        a.publish(channel, data).await.unwrap();
    }
    let mut in_bytes = 0;
    for _ in 0..5 {
        let m = tokio::time::timeout(WAIT, published.next())
            .await
            .unwrap()
            .unwrap();
        in_bytes += u64::try_from(m.payload.len()).unwrap();
    }

    // A: a plain subscription that stalls with 2 unacked messages.
    let mut stalled = a
        .subscribe(
            "foo",
            SubscriptionOptions {
                start: StartAt::First,
                max_in_flight: 2,
                manual_acks: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut delivered = vec![next_msg(&mut stalled).await, next_msg(&mut stalled).await];
    let (stalled_inbox, stalled_ack) =
        (stalled.inbox().to_string(), stalled.ack_inbox().to_string());

    // B: a durable that reads everything, then goes offline.
    let mut durable = b
        .subscribe(
            "foo",
            SubscriptionOptions {
                durable_name: Some("dur".into()),
                ..first()
            },
        )
        .await
        .unwrap();
    let mut foo_bytes = 0;
    for _ in 0..3 {
        let m = next_msg(&mut durable).await;
        foo_bytes += encoded_len(&m) + FILE_RECORD_OVERHEAD;
        delivered.push(m);
    }
    let (durable_inbox, durable_ack) =
        (durable.inbox().to_string(), durable.ack_inbox().to_string());
    durable.close().await.unwrap();

    // B: a durable queue group that reads everything, then goes offline (a shadow).
    let mut group = b
        .subscribe(
            "bar",
            SubscriptionOptions {
                durable_name: Some("qd".into()),
                queue_group: Some("q".into()),
                ..first()
            },
        )
        .await
        .unwrap();
    let mut bar_bytes = 0;
    for _ in 0..2 {
        let m = next_msg(&mut group).await;
        bar_bytes += encoded_len(&m) + FILE_RECORD_OVERHEAD;
        delivered.push(m);
    }
    let (group_inbox, group_ack) = (group.inbox().to_string(), group.ack_inbox().to_string());
    group.close().await.unwrap();

    // B: an online plain queue member with nothing to read.
    let member = b
        .subscribe(
            "bar",
            SubscriptionOptions {
                queue_group: Some("w".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (member_inbox, member_ack) = (member.inbox().to_string(), member.ack_inbox().to_string());

    let out_msgs = u64::try_from(delivered.len()).unwrap();
    let out_bytes: u64 = delivered.iter().map(encoded_len).sum();
    let stalled_z = subz(
        "mon-a",
        &stalled_inbox,
        &stalled_ack,
        json!({"max_inflight": 2, "last_sent": 2, "pending_count": 2, "is_stalled": true}),
    );
    let durable_z = subz(
        "mon-b",
        &durable_inbox,
        &durable_ack,
        json!({"durable_name": "dur", "is_durable": true, "is_offline": true, "last_sent": 3}),
    );
    let shadow_z = subz(
        "mon-b",
        &group_inbox,
        &group_ack,
        // NSS names a durable queue group by its queue name only.
        json!({"queue_name": "qd:q", "is_durable": true, "is_offline": true, "last_sent": 2}),
    );
    let member_z = subz(
        "mon-b",
        &member_inbox,
        &member_ack,
        json!({"queue_name": "w", "last_sent": 2}),
    );

    // /streaming/serverz
    let r = get(port, "/streaming/serverz");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.body
            .starts_with("{\n  \"cluster_id\": \"test-cluster\",\n"),
        "{}",
        r.body
    );
    assert!(is_sorted(&key_order(
        &r.body,
        &[
            "cluster_id",
            "server_id",
            "version",
            "go",
            "state",
            "now",
            "start_time",
            "uptime",
            "clients",
            "subscriptions",
            "channels",
            "total_msgs",
            "total_bytes",
            "in_msgs",
            "in_bytes",
            "out_msgs",
            "out_bytes",
        ]
    )));
    let s = r.json();
    assert_eq!(s["state"], "STANDALONE");
    assert_eq!(s["clients"], 2);
    assert_eq!(s["channels"], 2);
    assert_eq!(s["subscriptions"], 4);
    assert_eq!(s["total_msgs"], 5);
    assert_eq!(s["total_bytes"], foo_bytes + bar_bytes);
    assert_eq!(s["in_msgs"], 5);
    assert_eq!(s["in_bytes"], in_bytes);
    assert_eq!(s["out_msgs"], out_msgs);
    assert_eq!(s["out_bytes"], out_bytes);
    assert_eq!(s["server_id"].as_str().unwrap().len(), 22);
    assert!(s["uptime"].as_str().unwrap().ends_with('s'));
    for key in ["now", "start_time"] {
        let t = s[key].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with('Z'),
            "{key}: {t}"
        );
    }
    assert!(s["open_fds"].as_u64().unwrap() > 0);

    // /streaming/storez
    let st = get(port, "/streaming/storez").json();
    assert_eq!(st["type"], "FILE");
    assert_eq!(st["server_id"], s["server_id"]);
    assert_eq!(
        st["limits"],
        json!({"max_channels": 100, "max_msgs": 1_000_000, "max_bytes": 1_024_000_000,
               "max_age": 0, "max_subscriptions": 1000, "max_inactivity": 0})
    );
    assert_eq!(st["total_msgs"], 5);
    assert_eq!(st["total_bytes"], foo_bytes + bar_bytes);

    // /streaming/channelsz: names, paging, subs, one channel.
    let ch = get(port, "/streaming/channelsz").json();
    assert_eq!(ch["names"], json!(["bar", "foo"]));
    assert_eq!(
        (ch["offset"].clone(), ch["limit"].clone()),
        (json!(0), json!(1024))
    );
    assert_eq!(
        (ch["count"].clone(), ch["total"].clone()),
        (json!(2), json!(2))
    );
    assert!(ch.get("channels").is_none());
    let paged = get(port, "/streaming/channelsz?offset=1&limit=1").json();
    assert_eq!(paged["names"], json!(["foo"]));
    assert_eq!(
        (paged["count"].clone(), paged["total"].clone()),
        (json!(1), json!(2))
    );
    let past = get(port, "/streaming/channelsz?offset=5").json();
    assert!(past.get("names").is_none() && past["count"] == 0, "{past}");
    let foo = json!({"name": "foo", "msgs": 3, "bytes": foo_bytes, "first_seq": 1,
                     "last_seq": 3, "subs_count": 2,
                     "subscriptions": [stalled_z, durable_z]});
    let bar = json!({"name": "bar", "msgs": 2, "bytes": bar_bytes, "first_seq": 1,
                     "last_seq": 2, "subs_count": 2,
                     "subscriptions": [shadow_z, member_z]});
    let with_subs = get(port, "/streaming/channelsz?subs=1").json();
    assert_eq!(with_subs["channels"], json!([bar, foo]));
    assert!(with_subs.get("names").is_none());
    let mut foo_plain = foo.clone();
    foo_plain.as_object_mut().unwrap().remove("subscriptions");
    assert_eq!(
        get(port, "/streaming/channelsz?channel=foo").json(),
        foo_plain
    );
    assert_eq!(
        get(port, "/streaming/channelsz?channel=foo&subs=1").json(),
        foo
    );
    let missing = get(port, "/streaming/channelsz?channel=nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "Channel nope not found\n");

    // /streaming/clientsz: sorted, subs counted as NSS does (online ones only).
    let cl = get(port, "/streaming/clientsz").json();
    assert_eq!(
        (cl["count"].clone(), cl["total"].clone()),
        (json!(2), json!(2))
    );
    let ids: Vec<_> = cl["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].clone(), c["subs_count"].clone()))
        .collect();
    assert_eq!(
        ids,
        [(json!("mon-a"), json!(1)), (json!("mon-b"), json!(1))]
    );
    for c in cl["clients"].as_array().unwrap() {
        assert!(
            c["hb_inbox"].as_str().unwrap().starts_with("_INBOX."),
            "{c}"
        );
        assert!(c.get("subscriptions").is_none());
    }
    let one = get(port, "/streaming/clientsz?client=mon-a&subs=1").json();
    assert_eq!(one["id"], "mon-a");
    assert_eq!(one["subs_count"], 1);
    assert_eq!(one["subscriptions"], json!({"foo": [stalled_z]}));
    let all = get(port, "/streaming/clientsz?subs=1").json();
    assert_eq!(
        all["clients"][1]["subscriptions"],
        json!({"bar": [member_z]})
    );
    let paged = get(port, "/streaming/clientsz?offset=1&limit=1").json();
    assert_eq!(paged["clients"][0]["id"], "mon-b");
    assert_eq!(
        (paged["count"].clone(), paged["total"].clone()),
        (json!(1), json!(2))
    );
    let missing = get(port, "/streaming/clientsz?client=nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "Client nope not found\n");

    // JSONP, the FT probe, unknown paths.
    let jsonp = get(port, "/streaming/storez?callback=cb");
    assert_eq!(jsonp.header("content-type"), Some("application/javascript"));
    assert!(
        jsonp.body.starts_with("cb({\n") && jsonp.body.ends_with("})"),
        "{}",
        jsonp.body
    );
    let ft = get(port, "/streaming/isFTActive");
    assert_eq!((ft.status, ft.body.as_str()), (204, ""));
    let unknown = get(port, "/streaming/nothing");
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (404, "404 page not found\n")
    );
    assert_eq!(
        unknown.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "NSS sends no CORS header"
    );

    // After acking, the stalled subscription moves on and counters follow.
    for m in delivered.drain(..2) {
        m.ack().await.unwrap();
    }
    let third = next_msg(&mut stalled).await;
    assert_eq!(third.sequence(), 3);
    let s = get(port, "/streaming/serverz").json();
    assert_eq!(s["out_msgs"], out_msgs + 1);
    assert_eq!(s["out_bytes"], out_bytes + encoded_len(&third));
    drop(member);
}

#[tokio::test]
async fn memory_store_and_a_free_port_and_the_probes_through_shutdown() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = port.to_string();
    let mut s = Stanchion::start(
        &nats,
        &dir.path().join("data"),
        &["--store", "MEMORY", "--http_port", &p, "-a", "127.0.0.1"],
    )
    .await;
    s.proc
        .wait_for_output(&format!("monitoring on http://127.0.0.1:{port}"))
        .await;
    wait_for_status(port, "/readyz", 200, WAIT).await;
    let st = get(port, "/streaming/storez").json();
    assert_eq!(st["type"], "MEMORY");
    assert_eq!(st["total_msgs"], 0);
    let ch = get(port, "/streaming/channelsz").json();
    assert!(ch.get("names").is_none() && ch["total"] == 0, "{ch}");
    assert_eq!(
        get(port, "/streaming/clientsz").json()["clients"],
        json!([])
    );
    let status = s.proc.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(common::http::try_get(port, "/healthz").is_none());
}

#[tokio::test]
async fn readiness_is_503_until_nats_server_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let (nats_port, port) = (free_port(), free_port());
    let url = format!("nats://127.0.0.1:{nats_port}");
    let d = dir.path().join("data");
    let p = port.to_string();
    let _s = Proc::stanchion(&["-ns", &url, "--dir", d.to_str().unwrap(), "-m", &p]);
    // Up but not ready: no nats-server yet.
    wait_for_status(port, "/healthz", 200, WAIT).await;
    let r = get(port, "/readyz");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(get(port, "/streaming/serverz").status, 503);
    let _nats = Nats::start_on(nats_port);
    wait_for_status(port, "/readyz", 200, Duration::from_secs(20)).await;
    assert_eq!(get(port, "/streaming/serverz").status, 200);
}
