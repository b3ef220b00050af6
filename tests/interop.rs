//! Third-party client interop: the real node-nats-streaming 0.3.2,
//! asyncio-nats-streaming 0.4.0 and NATS C (cnats 3.4.1, Debian's
//! libnats-dev) clients against the real stanchion binary.
//!
//! Each test starts a fresh nats-server and stanchion (sled store in a temp
//! dir) through the shared harness, runs one scenario script from
//! `tests/interop/{node,python}/` as a child process, and checks its exit
//! status and the one JSON line it prints. Scenarios that need the server
//! restarted between two phases (`durable_restart*`) are driven from here:
//! phase 1, SIGKILL + restart of stanchion on the same store, phase 2.
//!
//! Setup: `bash tests/interop/setup.sh` (npm ci, the Python 3.9 `.venv`,
//! libnats-dev; the C scenario is compiled here with `cc`).
//! Without it these tests fail and say so; they never skip.
//! Run: `cargo test --test interop` (or `-- node::` / `-- python::` / `-- c::`).
//! Overrides: `STANCHION_INTEROP_NODE` (node binary, default `node` on PATH),
//! `STANCHION_INTEROP_PYTHON` (default `<repo>/.venv/bin/python`).

mod common;
#[path = "interop/json.rs"]
mod json;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Nats, Stanchion};
use json::Value;

/// The cluster ID stanchion serves by default (and the reference's default).
const CLUSTER_ID: &str = "test-cluster";
/// Whole-run bound each script enforces on itself (passed as INTEROP_TIMEOUT_MS).
const SCRIPT_SELF_TIMEOUT_MS: u64 = 25_000;
/// Our bound on one script run; the child is killed after it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(40);
/// Bound on a whole test (two phases plus a restart at most).
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between phase 1 and the SIGKILL when phase 1 ends without a close,
/// so its last acks have reached the store: nothing answers for them, and
/// sled flushes its log every 500 ms by default. (A clean close is answered
/// only once the client's acks are durable, so that run needs no pause.)
const BEFORE_KILL: Duration = Duration::from_millis(1000);

const SETUP_HINT: &str = "run `bash tests/interop/setup.sh` from the repository root first";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Which third-party client runs a scenario.
#[derive(Clone, Copy, Debug)]
enum Client {
    Node,
    Python,
    /// cnats 3.4.1 (Debian's libnats-dev), built with STAN support.
    C,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Node => "node",
            Client::Python => "python",
            Client::C => "c",
        }
    }

    /// The program and its leading arguments (the script), after checking the
    /// client is installed. Panics with the setup hint when it is not: a
    /// missing client is a failure, never a skip.
    fn program(self) -> (PathBuf, Vec<PathBuf>) {
        match self {
            Client::Node => {
                let dir = repo().join("tests/interop/node");
                let module = dir.join("node_modules/node-nats-streaming/package.json");
                assert!(
                    module.exists(),
                    "node-nats-streaming is not installed ({} missing): {SETUP_HINT}",
                    module.display()
                );
                let node = std::env::var_os("STANCHION_INTEROP_NODE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "node".into());
                (node, vec![dir.join("scenario.js")])
            }
            Client::Python => {
                let python = std::env::var_os("STANCHION_INTEROP_PYTHON")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| repo().join(".venv/bin/python"));
                assert!(
                    python.exists(),
                    "Python for the interop suite not found at {}: {SETUP_HINT}",
                    python.display()
                );
                let probe = std::process::Command::new(&python)
                    .args(["-c", "import stan.aio.client, nats.aio.client"])
                    .output()
                    .unwrap_or_else(|e| panic!("running {}: {e}: {SETUP_HINT}", python.display()));
                assert!(
                    probe.status.success(),
                    "asyncio-nats-streaming is not importable with {}: {}\n{SETUP_HINT}",
                    python.display(),
                    String::from_utf8_lossy(&probe.stderr)
                );
                (
                    python,
                    vec![repo().join("tests/interop/python/scenario.py")],
                )
            }
            Client::C => (c_binary().clone(), vec![]),
        }
    }
}

/// The C scenario, compiled once per test run against the system libnats
/// (`cc -DNATS_HAS_STREAMING ... -lnats`; Debian's pkg-config file does not
/// define NATS_HAS_STREAMING, without which nats.h hides the STAN API).
fn c_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = repo().join("tests/interop/c/scenario.c");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-c");
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join(format!("scenario-{}", std::process::id()));
        let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
        let out = std::process::Command::new(&cc)
            .args(["-O1", "-Wall", "-DNATS_HAS_STREAMING", "-o"])
            .arg(&bin)
            .arg(&src)
            .args(["-lnats", "-lpthread"])
            .output()
            .unwrap_or_else(|e| panic!("running {cc:?} to build the C scenario: {e}: {SETUP_HINT}"));
        assert!(
            out.status.success(),
            "building the C scenario against libnats failed (libnats-dev installed?): {SETUP_HINT}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// nats-server + stanchion on a fresh store, for one test.
struct Env {
    nats: Nats,
    stan: Stanchion,
    _dir: tempfile::TempDir,
}

impl Env {
    /// Checks that `client` is set up (fails fast with the setup hint), then
    /// starts nats-server and stanchion.
    async fn start(client: Client) -> Env {
        client.program();
        let nats = Nats::start();
        let dir = tempfile::tempdir().unwrap();
        let stan = Stanchion::start(&nats, &dir.path().join("data"), &[]).await;
        Env {
            nats,
            stan,
            _dir: dir,
        }
    }
}

/// Runs `scenario` (optionally one `phase` of it) with `client` against `nats_url`,
/// asserts it exited 0 with `"ok": true`, and returns its JSON result.
async fn run(client: Client, nats_url: &str, scenario: &str, phase: Option<&str>) -> Value {
    let (program, script) = client.program();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&script).args([nats_url, CLUSTER_ID, scenario]);
    if let Some(p) = phase {
        cmd.arg(p);
    }
    cmd.current_dir(
        script
            .first()
            .and_then(|s| s.parent())
            .unwrap_or(Path::new(".")),
    )
    .env("INTEROP_TIMEOUT_MS", SCRIPT_SELF_TIMEOUT_MS.to_string())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let what = format!(
        "{} {scenario}{}",
        client.name(),
        phase.map(|p| format!(" phase {p}")).unwrap_or_default()
    );
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: starting {}: {e}: {SETUP_HINT}", program.display()));
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: script did not finish within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: waiting for the script: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let result = json::parse(line);
    assert!(
        out.status.success(),
        "{what}: script failed ({}): {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status,
        result
            .as_ref()
            .ok()
            .and_then(|v| v.get("error").as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    let v = result.unwrap_or_else(|e| {
        panic!("{what}: last stdout line is not JSON ({e}): {line:?}\n{stderr}")
    });
    assert_eq!(
        v.get("ok").as_bool(),
        Some(true),
        "{what}: result not ok: {line}"
    );
    assert_eq!(
        v.get("client").as_str(),
        Some(client.name()),
        "{what}: wrong client in {line}"
    );
    assert_eq!(
        v.get("scenario").as_str(),
        Some(scenario),
        "{what}: wrong scenario in {line}"
    );
    v
}

/// Runs `fut` within TEST_TIMEOUT.
async fn bounded(fut: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, fut)
        .await
        .expect("interop test timed out");
}

fn seqs(v: &Value, key: &str) -> Vec<u64> {
    v.get(key)
        .as_u64_vec()
        .unwrap_or_else(|| panic!("no sequence list {key:?} in {v:?}"))
}

/// `[{seq, redelivered}, ...]` → (seqs, redelivered flags).
fn deliveries(v: &Value, key: &str) -> (Vec<u64>, Vec<bool>) {
    let items = v
        .get(key)
        .as_array()
        .unwrap_or_else(|| panic!("no delivery list {key:?} in {v:?}"));
    items
        .iter()
        .map(|d| {
            (
                d.get("seq").as_u64().expect("seq"),
                d.get("redelivered").as_bool().expect("redelivered"),
            )
        })
        .unzip()
}

// ------------------------------------------------------------- the checks

async fn check_connect_close(c: Client) {
    let env = Env::start(c).await;
    run(c, &env.nats.url(), "connect_close", None).await;
}

async fn check_publish(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "publish", None).await;
    assert_eq!(v.get("published").as_u64(), Some(10));
    assert_eq!(seqs(&v, "seqs"), (1..=10).collect::<Vec<_>>());
    let guids = v.get("guids").as_array().expect("guids");
    assert!(
        guids
            .iter()
            .all(|g| g.as_str().is_some_and(|s| !s.is_empty())),
        "empty guid in {guids:?}"
    );
}

async fn check_start(c: Client, scenario: &str, expected: &[u64]) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), scenario, None).await;
    assert_eq!(seqs(&v, "seqs"), expected, "{scenario}");
}

async fn check_queue(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "queue", None).await;
    let (q1, q2) = (seqs(&v, "q1"), seqs(&v, "q2"));
    assert!(
        !q1.is_empty() && !q2.is_empty(),
        "a member got nothing: q1 {q1:?} q2 {q2:?}"
    );
    let mut all: Vec<u64> = q1.iter().chain(&q2).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=10).collect::<Vec<_>>(), "q1 {q1:?} q2 {q2:?}");
}

/// Resumed durable: the unacked 3 first (redelivered), then 4 and 5. After
/// a client crash, 4 and 5 were sent to the crashed session's inbox (it was
/// still registered when they were published), so they come back flagged as
/// redeliveries, as with the reference server.
fn assert_resumed(v: &Value, after_crash: bool) {
    let (s, r) = deliveries(v, "resumed");
    assert_eq!(s, vec![3, 4, 5], "resumed durable sequences");
    let expected = if after_crash {
        vec![true, true, true]
    } else {
        vec![true, false, false]
    };
    assert_eq!(r, expected, "redelivered flags of the resumed durable");
}

async fn check_durable_reconnect(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "durable_reconnect", None).await;
    assert_eq!(seqs(&v, "first_session"), vec![1, 2, 3]);
    assert_resumed(&v, false);
}

async fn check_manual_ack_redelivery(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "manual_ack_redelivery", None).await;
    let (s, r) = deliveries(&v, "deliveries");
    assert_eq!(s, vec![1, 2, 3, 2]);
    assert_eq!(r, vec![false, false, false, true]);
    let delay = v.get("redelivery_delay_ms").as_f64().expect("delay");
    assert!(
        (700.0..=3000.0).contains(&delay),
        "redelivery after {delay} ms with AckWait 1 s"
    );
}

/// Phase 1 (durable, acks 1 and 2, leaves 3 unacked, then a clean close or,
/// with `_crash`, no close at all), SIGKILL + restart of stanchion on the
/// same store, phase 2 (another client publishes 4 and 5; the same client ID
/// resumes the durable).
async fn check_durable_restart(c: Client, scenario: &str) {
    let mut env = Env::start(c).await;
    let v1 = run(c, &env.nats.url(), scenario, Some("1")).await;
    assert_eq!(seqs(&v1, "first_session"), vec![1, 2, 3]);
    if scenario.ends_with("_crash") {
        tokio::time::sleep(BEFORE_KILL).await;
    }
    env.stan.restart_after_kill().await;
    let v2 = run(c, &env.nats.url(), scenario, Some("2")).await;
    assert_eq!(v2.get("published_after_restart").as_u64(), Some(2));
    assert_resumed(&v2, scenario.ends_with("_crash"));
}

async fn check_publish_error(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "publish_error", None).await;
    assert_eq!(
        v.get("error").as_str(),
        Some("stan: invalid publish request")
    );
    assert_eq!(v.get("guid_echoed").as_bool(), Some(true));
    assert_eq!(v.get("publish_after_error_ok").as_bool(), Some(true));
}

async fn check_max_inflight(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "max_inflight", None).await;
    let steps: Vec<Vec<u64>> = v
        .get("steps")
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s.as_u64_vec().expect("seqs"))
        .collect();
    assert_eq!(steps, vec![vec![1, 2], vec![1, 2, 3], vec![1, 2, 3, 4, 5]]);
}

async fn check_durable_unsubscribe(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "durable_unsubscribe", None).await;
    assert_eq!(seqs(&v, "first"), vec![1, 2, 3]);
    assert_eq!(
        seqs(&v, "again"),
        vec![1, 2, 3, 4],
        "an unsubscribed durable must start anew"
    );
}

async fn check_durable_queue(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "durable_queue", None).await;
    assert_eq!(seqs(&v, "first"), vec![1, 2, 3, 4], "members share 1..4");
    assert_eq!(seqs(&v, "resumed"), vec![5, 6], "the durable group resumes");
}

async fn check_pings(c: Client) {
    let env = Env::start(c).await;
    let v = run(c, &env.nats.url(), "pings", None).await;
    let out = v.get("max_outstanding").as_u64().expect("max_outstanding");
    assert!(out <= 1, "{out} PINGs outstanding");
}

// ------------------------------------------------------------- the tests

macro_rules! client_tests {
    ($module:ident, $client:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn connect_close() {
                bounded(check_connect_close($client)).await
            }

            #[tokio::test]
            async fn publish() {
                bounded(check_publish($client)).await
            }

            #[tokio::test]
            async fn start_new_only() {
                bounded(check_start($client, "start_new_only", &[6, 7])).await
            }

            #[tokio::test]
            async fn start_last_received() {
                bounded(check_start($client, "start_last_received", &[5, 6])).await
            }

            #[tokio::test]
            async fn start_time_delta() {
                bounded(check_start($client, "start_time_delta", &[3, 4, 5])).await
            }

            #[tokio::test]
            async fn start_sequence() {
                bounded(check_start($client, "start_sequence", &[3, 4, 5])).await
            }

            #[tokio::test]
            async fn start_first() {
                bounded(check_start($client, "start_first", &[1, 2, 3, 4, 5])).await
            }

            #[tokio::test]
            async fn queue() {
                bounded(check_queue($client)).await
            }

            #[tokio::test]
            async fn durable_reconnect() {
                bounded(check_durable_reconnect($client)).await
            }

            #[tokio::test]
            async fn manual_ack_redelivery() {
                bounded(check_manual_ack_redelivery($client)).await
            }

            #[tokio::test]
            async fn durable_restart() {
                bounded(check_durable_restart($client, "durable_restart")).await
            }

            #[tokio::test]
            async fn durable_restart_crash() {
                bounded(check_durable_restart($client, "durable_restart_crash")).await
            }

            #[tokio::test]
            async fn publish_error() {
                bounded(check_publish_error($client)).await
            }

            #[tokio::test]
            async fn max_inflight() {
                bounded(check_max_inflight($client)).await
            }

            #[tokio::test]
            async fn durable_unsubscribe() {
                bounded(check_durable_unsubscribe($client)).await
            }

            #[tokio::test]
            async fn durable_queue() {
                bounded(check_durable_queue($client)).await
            }

            #[tokio::test]
            async fn pings() {
                bounded(check_pings($client)).await
            }
        }
    };
}

client_tests!(node, Client::Node);
client_tests!(python, Client::Python);

/// The NATS C client (cnats 3.4.1, Debian's libnats-dev): a smaller set.
mod c {
    use super::*;

    #[tokio::test]
    async fn publish_redelivery() {
        bounded(async {
            let env = Env::start(Client::C).await;
            let v = run(Client::C, &env.nats.url(), "publish_redelivery", None).await;
            let (s, r) = deliveries(&v, "deliveries");
            assert_eq!(s, vec![1, 2, 3, 2]);
            assert_eq!(r, vec![false, false, false, true]);
        })
        .await
    }

    #[tokio::test]
    async fn publish_error() {
        bounded(async {
            let env = Env::start(Client::C).await;
            let v = run(Client::C, &env.nats.url(), "publish_error", None).await;
            assert_eq!(
                v.get("error").as_str(),
                Some("stan: invalid publish request")
            );
        })
        .await
    }
}

/// node-nats-streaming only: the connection-lost callback of a client whose
/// server-side record is gone, found through its own pings.
mod node_pings {
    use super::*;
    use prost::Message as _;

    #[tokio::test]
    async fn ping_of_a_forgotten_client_reports_connection_lost() {
        bounded(async {
            let env = Env::start(Client::Node).await;
            let url = env.nats.url();
            let script =
                tokio::spawn(async move { run(Client::Node, &url, "ping_lost", None).await });
            // Once the client is connected, the server forgets it.
            tokio::time::timeout(common::WAIT, async {
                while !env
                    .stan
                    .proc
                    .output()
                    .contains("client connected client=node-pinglost")
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("the node client connects");
            let nc = env.nats.client().await;
            let close = stanchion::protocol::pb::CloseRequest {
                client_id: "node-pinglost".into(),
            };
            let reply = nc
                .request("_STAN.close.test-cluster", close.encode_to_vec().into())
                .await
                .unwrap();
            assert!(reply.payload.is_empty(), "close accepted");
            let v = script.await.unwrap();
            assert_eq!(
                v.get("connection_lost").as_str(),
                Some(stanchion::protocol::errors::CLIENT_REPLACED)
            );
        })
        .await
    }
}
