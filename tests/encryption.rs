//! Encryption at rest with the real binary on a real nats-server: payloads
//! cannot be found in the store's files, a restart with the key serves
//! them, and a wrong key, a missing key, or a store of the other kind is
//! refused at startup with a clear error. `import-nss --encrypt` builds an
//! encrypted store from NSS's encrypted fixture.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::exit::run_to_exit;
use common::*;

/// Text in every payload, searched for in the store's files.
const MARKER: &[u8] = b"confidential-order";
const KEY: &str = "stanchion-test-key";
const MSGS: usize = 200;

/// Whether any file under `dir` contains `needle`.
fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir)
        .values()
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

/// The stanchion command on `dir` with `args`, the key variable set to
/// `env_key` (or removed).
fn command(nats: &Nats, dir: &Path, args: &[&str], env_key: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.args(["--nats_server", &nats.url(), "--dir", dir.to_str().unwrap()])
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("STANCHION_ENCRYPTION_KEY")
        .env_remove("STANCHION_ENCRYPT");
    match env_key {
        Some(k) => cmd.env(stanchion::crypto::KEY_ENV, k),
        None => cmd.env_remove(stanchion::crypto::KEY_ENV),
    };
    cmd
}

/// Starts stanchion and waits until it serves.
async fn serve(nats: &Nats, dir: &Path, args: &[&str], env_key: Option<&str>) -> Proc {
    let proc = Proc::spawn("stanchion", command(nats, dir, args, env_key));
    proc.wait_for_output_within("stanchion is ready", Duration::from_secs(20))
        .await;
    proc
}

/// Starts stanchion expecting it to refuse the store: its exit status and
/// everything it printed.
fn refused(nats: &Nats, dir: &Path, args: &[&str], env_key: Option<&str>) -> String {
    let out = run_to_exit(command(nats, dir, args, env_key), Duration::from_secs(20));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "started:\n{text}");
    assert!(!text.contains("stanchion is ready"), "{text}");
    text
}

fn payload(i: usize) -> String {
    format!(
        "{}-{i:04} {}",
        String::from_utf8_lossy(MARKER),
        "x".repeat(i % 50)
    )
}

/// Publishes the test payloads, then stops the server with SIGTERM.
async fn publish_and_stop(nats: &Nats, mut server: Proc) {
    let conn = stan(nats, "writer").await;
    for i in 1..=MSGS {
        conn.publish("orders", payload(i)).await.expect("publish");
    }
    conn.close().await.expect("close");
    let status = server.terminate(Duration::from_secs(10)).expect("exit");
    assert!(status.success(), "{}", server.output());
}

/// Every stored message of `orders` has its payload back.
async fn assert_served(nats: &Nats) {
    let conn = stan(nats, "reader").await;
    let mut sub = conn.subscribe("orders", first()).await.expect("subscribe");
    for i in 1..=MSGS {
        let m = next_msg(&mut sub).await;
        assert_eq!(m.sequence(), i as u64);
        assert_eq!(m.data(), payload(i).as_bytes(), "sequence {i}");
    }
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_are_unreadable_on_disk_and_served_after_a_restart_with_the_key() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let nats = Nats::start();
        for cipher in ["AES", "CHACHA"] {
            let data = tempfile::tempdir().unwrap();
            let dir = data.path();
            let on = ["--encrypt", "--encryption_cipher", cipher];
            let server = serve(&nats, dir, &on, Some(KEY)).await;
            assert!(
                server.output().contains("encrypted at rest"),
                "{}",
                server.output()
            );
            publish_and_stop(&nats, server).await;
            assert!(
                !dir_contains(dir, MARKER),
                "{cipher}: a payload is readable on disk"
            );

            // The variable wins over the flag, as in NSS.
            let args = [
                "--encryption_key",
                "not-the-key",
                "--encryption_cipher",
                cipher,
            ];
            let mut server = serve(&nats, dir, &args, Some(KEY)).await;
            assert_served(&nats).await;
            server.terminate(Duration::from_secs(10)).expect("exit");

            let text = refused(&nats, dir, &["--encryption_key", "wrong-key"], None);
            assert!(text.contains("encryption key is not the one"), "{text}");
            let text = refused(&nats, dir, &[], None);
            assert!(text.contains("store is encrypted"), "{text}");
            let text = refused(&nats, dir, &["--encrypt"], None);
            assert!(text.contains("encryption key required"), "{text}");

            // The key alone, from the flag, turns encryption on.
            let mut server = serve(&nats, dir, &["--encryption_key", KEY], None).await;
            assert_served(&nats).await;
            server.terminate(Duration::from_secs(10)).expect("exit");
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_without_encryption_is_refused_with_a_key() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let nats = Nats::start();
        let data = tempfile::tempdir().unwrap();
        let dir = data.path();
        let server = serve(&nats, dir, &[], None).await;
        publish_and_stop(&nats, server).await;
        // The search finds payloads where they are in the clear.
        assert!(dir_contains(dir, MARKER));
        let text = refused(&nats, dir, &["--encrypt"], Some(KEY));
        assert!(text.contains("written without encryption"), "{text}");
        let mut server = serve(&nats, dir, &[], None).await;
        assert_served(&nats).await;
        server.terminate(Duration::from_secs(10)).expect("exit");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_nss_encrypt_writes_an_encrypted_store_that_serves_with_the_key() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nss-stores/encrypted");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture.join("manifest.json")).unwrap()).unwrap();
        let key = manifest["encryption_key"].as_str().unwrap();
        let cluster = manifest["cluster_id"].as_str().unwrap();
        let data = tempfile::tempdir().unwrap();
        let dest = data.path().join("store");
        let mut import = Command::new(env!("CARGO_BIN_EXE_stanchion"));
        import
            .arg("import-nss")
            .arg("--from")
            .arg(fixture.join("store"))
            .arg("--dir")
            .arg(&dest)
            .args(["--encrypt", "--encryption_cipher", "CHACHA"])
            .env(stanchion::crypto::KEY_ENV, key);
        let out = run_to_exit(import, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // A payload of the fixture, long enough not to occur by chance.
        let (channel, first) = manifest["channels"]
            .as_object()
            .unwrap()
            .iter()
            .find_map(|(name, ch)| {
                ch["messages"].as_array().unwrap().iter().find_map(|m| {
                    use base64::Engine as _;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(m["data"].as_str().unwrap())
                        .unwrap();
                    (data.starts_with(b"order-"))
                        .then(|| (name.clone(), (m["sequence"].as_u64().unwrap(), data)))
                })
            })
            .unwrap();
        assert!(
            !dir_contains(&dest, &first.1[..12]),
            "a payload is readable on disk"
        );

        let nats = Nats::start();
        let text = refused(&nats, &dest, &["--cluster_id", cluster], None);
        assert!(text.contains("store is encrypted"), "{text}");
        let args = ["--cluster_id", cluster, "--encrypt", "-mm", "0"];
        let mut server = serve(&nats, &dest, &args, Some(key)).await;
        let nc = nats.client().await;
        let mut opts = stanchion::client::Options::new(cluster, "reader");
        opts.connect_wait = Duration::from_secs(5);
        let conn = stanchion::client::Connection::connect(nc, opts)
            .await
            .expect("connect");
        let mut sub = conn
            .subscribe(
                &channel,
                stanchion::client::SubscriptionOptions {
                    start: stanchion::client::StartAt::Sequence(first.0),
                    ..Default::default()
                },
            )
            .await
            .expect("subscribe");
        let m = next_msg(&mut sub).await;
        assert_eq!((m.sequence(), &m.data()[..]), (first.0, &first.1[..]));
        conn.close().await.expect("close");
        server.terminate(Duration::from_secs(10)).expect("exit");
    })
    .await
    .expect("test timed out");
}
