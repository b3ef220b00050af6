//! `stanchion export-jetstream` against a real nats-server in JetStream
//! mode and real stanchion: every message of the matching channels arrives
//! once, in order, with its sequence and timestamp headers, read through
//! async-nats's JetStream consumer; a second run adds nothing; a killed run
//! resumes without gaps or duplicates; `--follow` mirrors new messages and
//! new channels until stopped.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use common::exit::run_to_exit;
use common::*;
use futures::StreamExt;
use stanchion::export::{CHANNEL_HEADER, MSG_ID_HEADER, SEQUENCE_HEADER, TIMESTAMP_HEADER};

/// A message as the stream holds it.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    subject: String,
    channel: String,
    seq: u64,
    timestamp: i64,
    msg_id: String,
    data: Vec<u8>,
}

/// A STAN message as the server serves it.
#[derive(Debug, Clone, PartialEq)]
struct Original {
    seq: u64,
    timestamp: i64,
    data: Vec<u8>,
}

/// The export command, against `nats` and stanchion's monitoring `port`.
fn export_cmd(nats: &Nats, monitor: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.arg("export-jetstream")
        .args(["--nats_server", &nats.url()])
        .args(["--monitor", &format!("http://127.0.0.1:{monitor}")])
        .args(args)
        .env("RUST_LOG", "info");
    cmd
}

/// Runs an export to its end: exit status success, and its summary.
fn export(nats: &Nats, monitor: u16, args: &[&str]) -> String {
    let out = run_to_exit(export_cmd(nats, monitor, args), Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "export failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs an export expected to fail: its stderr.
fn export_fails(nats: &Nats, monitor: u16, args: &[&str]) -> String {
    let out = run_to_exit(export_cmd(nats, monitor, args), Duration::from_secs(60));
    assert!(!out.status.success(), "export succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Starts stanchion with monitoring on a free port.
async fn stanchion_with_monitor(nats: &Nats, dir: &Path) -> (Stanchion, u16) {
    let port = free_port();
    let s = Stanchion::start(nats, dir, &["-m", &port.to_string()]).await;
    (s, port)
}

/// Publishes `n` messages to `channel`, pipelined, and waits for every PubAck.
async fn publish(conn: &stanchion::client::Connection, channel: &str, n: usize) {
    let mut acks = Vec::with_capacity(n);
    for i in 1..=n {
        let data = format!("{channel} message {i} {}", "p".repeat(i % 40));
        acks.push(conn.publish_async(channel, data).await.expect("publish"));
    }
    for ack in acks {
        ack.await.1.expect("pub ack");
    }
}

/// Every stored message of `channel`, as STAN serves it.
async fn originals(conn: &stanchion::client::Connection, channel: &str, n: usize) -> Vec<Original> {
    let mut sub = conn.subscribe(channel, first()).await.expect("subscribe");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let m = next_msg(&mut sub).await;
        out.push(Original {
            seq: m.sequence(),
            timestamp: m.timestamp(),
            data: m.data().to_vec(),
        });
    }
    sub.close().await.expect("close subscription");
    out
}

/// Every message of the stream, in stream order, read through a JetStream
/// pull consumer; then checks that nothing more comes.
async fn read_stream(nats: &Nats, name: &str) -> Vec<Stored> {
    let js = jetstream::new(nats.client().await);
    let mut stream = js.get_stream(name).await.expect("stream");
    let total = stream.info().await.expect("info").state.messages;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("fetch");
        let before = out.len();
        while let Some(m) = batch.next().await {
            let m = m.expect("message");
            let h = m.headers.clone().expect("headers");
            let get = |k: &str| h.get(k).expect(k).as_str().to_string();
            out.push(Stored {
                subject: m.subject.to_string(),
                channel: get(CHANNEL_HEADER),
                seq: get(SEQUENCE_HEADER).parse().unwrap(),
                timestamp: get(TIMESTAMP_HEADER).parse().unwrap(),
                msg_id: get(MSG_ID_HEADER),
                data: m.payload.to_vec(),
            });
        }
        assert!(
            out.len() > before,
            "the consumer stopped at {} of {total}",
            out.len()
        );
    }
    let mut more = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .expect("fetch");
    assert!(
        more.next().await.is_none(),
        "more messages than the stream holds"
    );
    out
}

/// Checks that `stored` holds exactly `originals` for `channel`, once each,
/// in order, on its subject.
fn assert_exported(stored: &[Stored], channel: &str, originals: &[Original]) {
    let subject = format!("stan.{channel}");
    let got: Vec<_> = stored.iter().filter(|s| s.channel == channel).collect();
    assert_eq!(got.len(), originals.len(), "{channel}: count");
    for (s, o) in got.iter().zip(originals) {
        assert_eq!(s.subject, subject);
        assert_eq!(
            (s.seq, s.timestamp, &s.data),
            (o.seq, o.timestamp, &o.data),
            "{channel}"
        );
        assert_eq!(s.msg_id, format!("{subject}:{}", o.seq));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_channels_arrive_once_in_order_with_headers_and_a_second_run_adds_nothing() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let nats = Nats::start_jetstream();
        let data = tempfile::tempdir().unwrap();
        let (_server, monitor) = stanchion_with_monitor(&nats, data.path()).await;
        let conn = stan(&nats, "producer").await;
        publish(&conn, "orders.eu", 300).await;
        publish(&conn, "orders.us", 200).await;
        publish(&conn, "audit", 10).await;

        let args = ["--channel", "orders.*"];
        let summary = export(&nats, monitor, &args);
        assert!(summary.contains("channels:   2"), "{summary}");
        assert!(summary.contains("messages:   500"), "{summary}");
        let stored = read_stream(&nats, "STAN").await;
        assert_eq!(stored.len(), 500);
        assert_exported(
            &stored,
            "orders.eu",
            &originals(&conn, "orders.eu", 300).await,
        );
        assert_exported(
            &stored,
            "orders.us",
            &originals(&conn, "orders.us", 200).await,
        );

        let summary = export(&nats, monitor, &args);
        assert!(summary.contains("messages:   0"), "{summary}");
        assert!(
            summary.contains("orders.eu -> stan.orders.eu: 0 new, through sequence 300"),
            "{summary}"
        );
        assert_eq!(read_stream(&nats, "STAN").await, stored);

        // New messages are added after the old ones; a literal name works too.
        publish(&conn, "orders.eu", 50).await;
        let summary = export(&nats, monitor, &["--channel", "orders.eu"]);
        assert!(summary.contains("messages:   50"), "{summary}");
        let stored = read_stream(&nats, "STAN").await;
        assert_exported(
            &stored,
            "orders.eu",
            &originals(&conn, "orders.eu", 350).await,
        );
        assert_eq!(stored.len(), 550);

        // Another prefix and stream; the audit channel was never exported.
        let summary = export(
            &nats,
            monitor,
            &[
                "--channel",
                ">",
                "--stream",
                "ALL",
                "--subject_prefix",
                "legacy",
            ],
        );
        assert!(summary.contains("channels:   3"), "{summary}");
        let all = read_stream(&nats, "ALL").await;
        assert_eq!(all.len(), 560);
        assert_eq!(
            all.iter().filter(|s| s.subject == "legacy.audit").count(),
            10
        );

        let e = export_fails(&nats, monitor, &["--channel", "nope"]);
        assert!(e.contains("channel \"nope\" not found"), "{e}");
        let e = export_fails(&nats, monitor, &["--channel", "audit", "--stream", "ALL"]);
        assert!(e.contains("stream \"ALL\" takes [\"legacy.>\"]"), "{e}");
        let e = export_fails(&nats, free_port(), &["--channel", "audit"]);
        assert!(e.contains("monitoring endpoint: http://127.0.0.1:"), "{e}");
        conn.close().await.expect("close");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_export_resumes_without_gaps_or_duplicates() {
    tokio::time::timeout(Duration::from_secs(240), async {
        const N: usize = 30_000;
        let nats = Nats::start_jetstream();
        let data = tempfile::tempdir().unwrap();
        let (_server, monitor) = stanchion_with_monitor(&nats, data.path()).await;
        let conn = stan(&nats, "producer").await;
        publish(&conn, "bulk", N).await;

        let mut first = Proc::spawn("export", export_cmd(&nats, monitor, &["--channel", "bulk"]));
        let js = jetstream::new(nats.client().await);
        let stored_before_kill = loop {
            if let Ok(mut s) = js.get_stream("STAN").await {
                let n = s.info().await.map(|i| i.state.messages).unwrap_or(0);
                if n >= 1_000 {
                    first.kill();
                    break n;
                }
            }
            assert!(
                first.try_wait().is_none(),
                "export ended before it was killed:\n{}",
                first.output()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let after_kill = js
            .get_stream("STAN")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
        assert!(
            after_kill < N as u64,
            "the first run finished before the kill"
        );

        let summary = export(&nats, monitor, &["--channel", "bulk"]);
        let stored = read_stream(&nats, "STAN").await;
        let seqs: Vec<u64> = stored.iter().map(|s| s.seq).collect();
        assert_eq!(
            seqs,
            (1..=N as u64).collect::<Vec<_>>(),
            "gaps or duplicates"
        );
        assert!(stored_before_kill >= 1_000);
        assert!(
            summary.contains(&format!("through sequence {N}")),
            "{summary}"
        );
        conn.close().await.expect("close");
    })
    .await
    .expect("test timed out");
}

/// Waits until the stream holds as many messages as `want` counts, then reads it.
async fn wait_for_subjects(nats: &Nats, want: &BTreeMap<&str, usize>) -> Vec<Stored> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let js = jetstream::new(nats.client().await);
    loop {
        if let Ok(mut s) = js.get_stream("STAN").await {
            let total = s.info().await.map(|i| i.state.messages).unwrap_or(0);
            if total >= want.values().sum::<usize>() as u64 {
                return read_stream(nats, "STAN").await;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never mirrored {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_mirrors_new_messages_and_new_channels_until_stopped() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let nats = Nats::start_jetstream();
        let data = tempfile::tempdir().unwrap();
        let (_server, monitor) = stanchion_with_monitor(&nats, data.path()).await;
        let conn = stan(&nats, "producer").await;
        publish(&conn, "live.a", 5).await;

        let args = ["--channel", "live.>", "--follow", "--poll", "200ms"];
        let mut follower = Proc::spawn("export", export_cmd(&nats, monitor, &args));
        let stored = wait_for_subjects(&nats, &BTreeMap::from([("live.a", 5)])).await;
        assert_exported(&stored, "live.a", &originals(&conn, "live.a", 5).await);

        publish(&conn, "live.a", 20).await;
        publish(&conn, "live.b.x", 7).await;
        publish(&conn, "other", 3).await;
        let want = BTreeMap::from([("live.a", 25), ("live.b.x", 7)]);
        let stored = wait_for_subjects(&nats, &want).await;
        assert_exported(&stored, "live.a", &originals(&conn, "live.a", 25).await);
        assert_exported(&stored, "live.b.x", &originals(&conn, "live.b.x", 7).await);
        assert!(stored.iter().all(|s| s.channel != "other"));

        let status = follower
            .terminate(Duration::from_secs(10))
            .expect("export exits on SIGTERM");
        let out = follower.output();
        assert!(status.success(), "{out}");
        assert!(out.contains("live.a -> stan.live.a: 25 new"), "{out}");
        assert!(out.contains("live.b.x -> stan.live.b.x: 7 new"), "{out}");
        conn.close().await.expect("close");
    })
    .await
    .expect("test timed out");
}
