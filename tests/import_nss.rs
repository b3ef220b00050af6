//! `stanchion import-nss` against real stores of the reference server
//! (`tests/fixtures/nss-stores`, each with a manifest of what NSS served
//! from it): the import leaves the source as it was, and stanchion started
//! on the result with the manifest's limits serves every channel's
//! messages as NSS did, and resumes offline durables with their unacked
//! messages first.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::exit::run_to_exit;
use common::*;
use serde_json::Value;
use stanchion::client::{Connection, Options, StartAt, SubscriptionOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nss-stores")
        .join(name)
}

fn import(from: &Path, dir: &Path, key: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.arg("import-nss")
        .arg("--from")
        .arg(from)
        .arg("--dir")
        .arg(dir);
    cmd.env_remove("NATS_STREAMING_ENCRYPTION_KEY");
    if let Some(k) = key {
        cmd.arg("--encryption_key").arg(k);
    }
    run_to_exit(cmd, Duration::from_secs(60))
}

async fn connect(nats: &Nats, cluster: &str, id: &str) -> Connection {
    let mut opts = Options::new(cluster, id);
    opts.connect_wait = Duration::from_secs(5);
    Connection::connect(nats.client().await, opts)
        .await
        .expect("STAN connect")
}

/// The durable `s` of the manifest, resumed by its client: its unacked
/// messages first, then `last_sent + 1` through the channel's last, then
/// nothing more.
async fn assert_durable_resumes(nats: &Nats, manifest: &Value, s: &Value, what: &str) {
    let cluster = manifest["cluster_id"].as_str().unwrap();
    let channel = s["channel"].as_str().unwrap();
    let conn = connect(nats, cluster, s["client_id"].as_str().unwrap()).await;
    let mut sub = conn
        .subscribe(
            channel,
            SubscriptionOptions {
                durable_name: Some(s["durable_name"].as_str().unwrap().to_string()),
                max_in_flight: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut pending: Vec<u64> = s["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    pending.sort_unstable();
    let mut got = next_seqs(&mut sub, pending.len()).await;
    got.sort_unstable();
    assert_eq!(got, pending, "{what} on {channel}: pending first");
    let last_sent = s["last_sent"].as_u64().unwrap();
    let last = manifest["channels"][channel]["last_seq"].as_u64().unwrap();
    let new: Vec<u64> = ((last_sent + 1)..=last).collect();
    assert_eq!(
        next_seqs(&mut sub, new.len()).await,
        new,
        "{what} on {channel}"
    );
    assert_quiet(&mut sub, Duration::from_millis(100)).await;
    sub.close().await.unwrap();
    conn.close().await.unwrap();
}

async fn check_fixture(name: &str) {
    let dir = fixture(name);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let source = dir.join("store");
    let before = files_under(&source);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = import(&source, &data, manifest["encryption_key"].as_str());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: import failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clients = manifest["clients"].as_array().unwrap().len();
    assert!(
        stdout.contains(&format!("clients:        {clients}\n")),
        "{stdout}"
    );
    assert_eq!(files_under(&source), before, "{name}: the source changed");

    // A second import into the same directory is refused.
    let again = import(&source, &data, manifest["encryption_key"].as_str());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    let cluster = manifest["cluster_id"].as_str().unwrap();
    let mut args = vec!["--cluster_id", cluster];
    let flags: Vec<String> = manifest["server_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    args.extend(flags.iter().map(String::as_str));
    let nats = Nats::start();
    let _server = Stanchion::start(&nats, &data, &args).await;

    // Every channel serves exactly what NSS served.
    let reader = connect(&nats, cluster, "import-check-reader").await;
    for (channel, want) in manifest["channels"].as_object().unwrap() {
        let msgs = want["messages"].as_array().unwrap();
        let mut sub = reader
            .subscribe(
                channel,
                SubscriptionOptions {
                    start: StartAt::First,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for m in msgs {
            let got = next_msg(&mut sub).await;
            let p = &got.proto;
            assert_eq!(
                p.sequence,
                m["sequence"].as_u64().unwrap(),
                "{name}/{channel}"
            );
            assert_eq!(
                p.timestamp,
                m["timestamp"].as_i64().unwrap(),
                "{name}/{channel}"
            );
            let data = base64::engine::general_purpose::STANDARD
                .decode(m["data"].as_str().unwrap())
                .unwrap();
            assert_eq!(
                &p.data[..],
                &data[..],
                "{name}/{channel} seq {}",
                p.sequence
            );
            assert_eq!(
                p.reply,
                m["reply"].as_str().unwrap_or(""),
                "{name}/{channel}"
            );
        }
        assert_quiet(&mut sub, Duration::from_millis(100)).await;
    }

    // Offline durables resume with their unacked messages first.
    for s in manifest["subscriptions"].as_array().unwrap() {
        if s["kind"] == "durable" && s["is_offline"] == true {
            assert_durable_resumes(&nats, &manifest, s, &format!("{name}: offline durable")).await;
        }
    }

    // Registered clients stay registered: their ID is refused while their
    // old heartbeat inbox answers; closed clients' IDs are free.
    let nc = nats.client().await;
    for c in manifest["clients"].as_array().unwrap() {
        let mut hb = nc
            .subscribe(c["hb_inbox"].as_str().unwrap().to_string())
            .await
            .unwrap();
        nc.flush().await.unwrap();
        let answer = nc.clone();
        let responder = tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(m) = hb.next().await {
                if let Some(r) = m.reply {
                    let _ = answer.publish(r, "".into()).await;
                }
            }
        });
        let mut opts = Options::new(cluster, c["id"].as_str().unwrap());
        opts.connect_wait = Duration::from_secs(5);
        let dup = Connection::connect(nats.client().await, opts).await;
        assert!(
            dup.is_err(),
            "{name}: registered client {} was replaced",
            c["id"]
        );
        responder.abort();
    }
    for c in manifest["closed_clients"].as_array().unwrap() {
        connect(&nats, cluster, c["id"].as_str().unwrap()).await;
    }

    // A durable queue group resumed by its members (new connections with
    // the same client IDs) gets the group's unacked messages, then the rest.
    for g in manifest["queue_groups"].as_array().unwrap() {
        let channel = g["channel"].as_str().unwrap();
        let mut members = Vec::new();
        for id in g["members"].as_array().unwrap() {
            let conn = connect(&nats, cluster, id.as_str().unwrap()).await;
            members.push(conn);
        }
        let mut subs = Vec::new();
        for conn in &members {
            let opts = SubscriptionOptions {
                queue_group: Some(g["queue_group"].as_str().unwrap().to_string()),
                durable_name: Some(g["durable_name"].as_str().unwrap().to_string()),
                ..Default::default()
            };
            subs.push(conn.subscribe(channel, opts).await.unwrap());
        }
        let last = manifest["channels"][channel]["last_seq"].as_u64().unwrap();
        let mut want: Vec<u64> = g["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        want.extend((g["last_sent"].as_u64().unwrap() + 1)..=last);
        want.sort_unstable();
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while got.len() < want.len() && tokio::time::Instant::now() < deadline {
            for sub in &mut subs {
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(50), sub.next()).await
                {
                    got.push(m.sequence());
                }
            }
        }
        got.sort_unstable();
        assert_eq!(got, want, "{name}/{channel}: the queue group's messages");
        drop(subs);
        for conn in members {
            conn.close().await.unwrap();
        }
    }

    // A registered client that comes back after its old process died (its
    // heartbeat inbox no longer answers) replaces itself, and its online
    // durables resume as offline ones do: unacked messages first.
    for s in manifest["subscriptions"].as_array().unwrap() {
        if s["kind"] == "durable" && s["is_offline"] == false {
            assert_durable_resumes(&nats, &manifest, s, &format!("{name}: online durable")).await;
        }
    }

    // A publish continues each channel's sequence, and the plain
    // subscriptions of registered clients still deliver to their inbox.
    for (channel, want) in manifest["channels"].as_object().unwrap() {
        let mut inboxes = Vec::new();
        for s in manifest["subscriptions"].as_array().unwrap() {
            if s["kind"] == "plain" && s["carry_over"] == true && s["channel"] == channel.as_str() {
                inboxes.push(
                    nc.subscribe(s["inbox"].as_str().unwrap().to_string())
                        .await
                        .unwrap(),
                );
            }
        }
        nc.flush().await.unwrap();
        let mut sub = reader
            .subscribe(channel, SubscriptionOptions::default())
            .await
            .unwrap();
        reader.publish(channel, "after the import").await.unwrap();
        let got = next_msg(&mut sub).await;
        let next = want["last_seq"].as_u64().unwrap() + 1;
        assert_eq!(got.sequence(), next, "{name}/{channel}");
        for inbox in &mut inboxes {
            use futures::StreamExt;
            use prost::Message as _;
            let m = tokio::time::timeout(WAIT, inbox.next())
                .await
                .expect("a plain subscription's inbox got nothing")
                .unwrap();
            let proto = stanchion::protocol::pb::MsgProto::decode(m.payload).unwrap();
            assert_eq!(proto.sequence, next, "{name}/{channel}: plain subscription");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_nss_stopped_is_served_as_nss_served_it() {
    tokio::time::timeout(Duration::from_secs(120), check_fixture("basic"))
        .await
        .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_nss_was_killed_on_is_served_as_nss_served_it() {
    tokio::time::timeout(Duration::from_secs(120), check_fixture("crashed"))
        .await
        .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_of_many_and_removed_slices_is_served_as_nss_served_it() {
    tokio::time::timeout(Duration::from_secs(120), check_fixture("sliced"))
        .await
        .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_store_is_read_with_its_key() {
    tokio::time::timeout(Duration::from_secs(120), check_fixture("encrypted"))
        .await
        .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = import(
        &fixture("encrypted").join("store"),
        &tmp.path().join("data"),
        Some("not-the-key"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("msgs.1.dat") && err.contains("wrong key"),
        "{err}"
    );
}
