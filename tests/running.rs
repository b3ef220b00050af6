//! Running the binary as users migrating from NSS do: short Go-style flags,
//! store aliases, the memory store, and a graceful SIGTERM.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use stanchion::client::{Connection, Options, StartAt, SubscriptionOptions};

fn spawn(args: &[&str], dir: &std::path::Path) -> std::process::Child {
    let log = std::fs::File::create(dir.join("stanchion.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_stanchion"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_log(dir: &std::path::Path, needle: &str) {
    tokio::time::timeout(WAIT, async {
        loop {
            let text = std::fs::read_to_string(dir.join("stanchion.log")).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("log never said {needle:?}"));
}

#[tokio::test]
async fn nss_short_flags_file_alias_and_sigterm() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = nats.url();
    let mut child = spawn(
        &[
            "-ns",
            &url,
            "-cid",
            "other-cluster",
            "-st",
            "FILE",
            "-dir",
            data.to_str().unwrap(),
            "-SD",
        ],
        dir.path(),
    );
    wait_log(dir.path(), "stanchion is ready").await;
    let conn = Connection::connect(nats.client().await, Options::new("other-cluster", "c"))
        .await
        .unwrap();
    conn.publish("foo", "kept").await.unwrap();
    let mut sub = conn
        .subscribe(
            "foo",
            SubscriptionOptions {
                start: StartAt::First,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_msg(&mut sub).await.data().as_ref(), b"kept");
    conn.close().await.unwrap();
    assert!(
        std::fs::read_to_string(dir.path().join("stanchion.log"))
            .unwrap()
            .contains("DEBUG"),
        "-SD raises the log level"
    );

    // SIGTERM: a clean stop with exit code 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || child.wait().unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status.code(), Some(0));
    wait_log(dir.path(), "stanchion stopped").await;

    // The data is on disk: a restart with the long spellings finds it.
    let mut child = spawn(
        &[
            "--nats_server",
            &url,
            "--cluster_id",
            "other-cluster",
            "--store",
            "sled",
            "--dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    wait_log(dir.path(), "recovered channel").await;
    let conn = Connection::connect(nats.client().await, Options::new("other-cluster", "c2"))
        .await
        .unwrap();
    let mut sub = conn
        .subscribe(
            "foo",
            SubscriptionOptions {
                start: StartAt::First,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_msg(&mut sub).await.data().as_ref(), b"kept");
    conn.close().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn memory_store_serves_and_forgets_on_restart() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let url = nats.url();
    let mut child = spawn(&["--nats_server", &url, "--store", "memory"], dir.path());
    wait_log(dir.path(), "stanchion is ready").await;
    let conn = stan(&nats, "m").await;
    conn.publish("foo", "x").await.unwrap();
    let mut sub = conn
        .subscribe(
            "foo",
            SubscriptionOptions {
                start: StartAt::First,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(dir.path().join("stanchion.log")).unwrap();
    let mut child = spawn(&["--nats_server", &url, "-st", "memory"], dir.path());
    wait_log(dir.path(), "stanchion is ready").await;
    // The old client is unknown to a fresh memory store.
    let err = conn.publish("foo", "y").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        stanchion::protocol::errors::INVALID_PUB_REQ
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
