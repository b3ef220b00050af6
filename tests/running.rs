//! Running the binary as users migrating from NSS do: short Go-style flags,
//! store aliases, the memory store, and a graceful SIGTERM.

mod common;

use common::*;
use stanchion::client::{Connection, Options};

#[tokio::test]
async fn nss_short_flags_file_alias_and_sigterm() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (url, data) = (nats.url(), data.to_str().unwrap().to_string());
    let mut server = Proc::stanchion(&[
        "-ns",
        &url,
        "-cid",
        "other-cluster",
        "-st",
        "FILE",
        "-dir",
        &data,
        "-SD",
    ]);
    server.wait_for_output("stanchion is ready").await;
    let conn = Connection::connect(nats.client().await, Options::new("other-cluster", "c"))
        .await
        .unwrap();
    conn.publish("foo", "kept").await.unwrap();
    let mut sub = conn.subscribe("foo", first()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.data().as_ref(), b"kept");
    conn.close().await.unwrap();
    assert!(
        server.output().contains("DEBUG"),
        "-SD raises the log level"
    );

    // SIGTERM: a clean stop with exit code 0.
    let status = server.terminate(WAIT).expect("stops on SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(server.output().contains("stanchion stopped"));

    // The data is on disk: a restart with the long spellings finds it.
    let server = Proc::stanchion(&[
        "--nats_server",
        &url,
        "--cluster_id",
        "other-cluster",
        "--store",
        "sled",
        "--dir",
        &data,
    ]);
    server.wait_for_output("recovered channel").await;
    let conn = Connection::connect(nats.client().await, Options::new("other-cluster", "c2"))
        .await
        .unwrap();
    let mut sub = conn.subscribe("foo", first()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.data().as_ref(), b"kept");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn memory_store_serves_and_forgets_on_restart() {
    let nats = Nats::start();
    let url = nats.url();
    let mut server = Proc::stanchion(&["--nats_server", &url, "--store", "memory"]);
    server.wait_for_output("stanchion is ready").await;
    let conn = stan(&nats, "m").await;
    conn.publish("foo", "x").await.unwrap();
    let mut sub = conn.subscribe("foo", first()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.sequence(), 1);
    server.kill();
    let server = Proc::stanchion(&["--nats_server", &url, "-st", "memory"]);
    server.wait_for_output("stanchion is ready").await;
    // The old client is unknown to a fresh memory store.
    let err = conn.publish("foo", "y").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        stanchion::protocol::errors::INVALID_PUB_REQ
    );
}
