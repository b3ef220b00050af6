//! An NSS deployment switched to stanchion unchanged: the `stan` Helm
//! chart's container command line and its rendered config file (NATS
//! config syntax, a `streaming { }` block, the embedded nats-server's part
//! with `http: 8222`), reference flags stanchion ignores, config errors,
//! and the logs an operator reads (text and JSON).

mod common;

use std::process::Command;
use std::time::Duration;

use common::http::{get, wait_for_status};
use common::*;
use stanchion::client::{Connection, Options};

/// The chart's `stan.conf`, rendered for a file store with limits and
/// file options (Helm's `toPrettyJson` output), then its embedded NATS part.
fn chart_config(nats_url: &str, store: &str, http_port: u16) -> String {
    format!(
        r#"#########################
# NATS Streaming Config #
#########################
streaming {{
  ns: {nats_url}
  id: stan
  sd: true

  ###############################
  #  Store Config               #
  ###############################
  store: "file"
  dir: {store}
  file_options: {{
    "buffer_size": 33554432,
    "sync_on_flush": false,
    "slice_max_bytes": 536870912,
    "parallel_recovery": 64
  }}
  store_limits: {{
    max_channels: 10
    max_msgs: 1000
    max_bytes: 10MB
    max_subs: 5
  }}
}}

###############################################
#                                             #
#            Embedded NATS Config             #
#                                             #
###############################################

# PID file shared with configuration reloader.
pid_file: "/var/run/stan/stan.pid"

###############
#             #
# Monitoring  #
#             #
###############
http: {http_port}
server_name: $POD_NAME
"#
    )
}

#[tokio::test]
async fn the_helm_charts_command_line_and_config_file_start_and_serve() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_port();
    let conf = dir.path().join("stan.conf");
    std::fs::write(
        &conf,
        chart_config(&nats.url(), store.to_str().unwrap(), port),
    )
    .unwrap();
    let ignored = [
        "--file_slice_archive_script",
        "-p",
        "--file_compact_enabled",
        "--sql_driver",
        "--syslog_name",
        "--routes",
        "--cluster",
        "-tls",
        "--cluster_log_snapshots",
        "-DV",
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.args(["-sc", conf.to_str().unwrap()])
        // The chart's args, then one reference flag of each kind.
        .args(["--file_slice_archive_script", "/etc/stan-config/backup.sh"])
        .args([
            "-p",
            "4222",
            "--file_compact_enabled=false",
            "--sql_driver",
            "postgres",
        ])
        .args([
            "--syslog_name",
            "stan",
            "--routes",
            "nats://a:6222",
            "--cluster",
        ])
        .args([
            "nats://0.0.0.0:6222",
            "-tls=false",
            "--cluster_log_snapshots",
            "2",
            "-DV",
        ])
        .env("POD_NAME", "stan-0")
        .env("RUST_LOG", "info");
    let server = Proc::spawn("stanchion", cmd);
    server.wait_for_output("stanchion is ready").await;
    let log = server.output();
    for flag in ignored {
        let lines = log
            .lines()
            .filter(|l| l.contains(&format!("ignoring flag {flag}:")))
            .count();
        assert_eq!(lines, 1, "one warning for {flag}:\n{log}");
    }
    for key in ["buffer_size", "pid_file", "server_name"] {
        assert!(
            log.lines()
                .any(|l| l.contains("ignoring config key") && l.contains(key)),
            "{key} not reported:\n{log}"
        );
    }
    assert!(log.contains("DEBUG"), "sd: true raises the log level");

    // Monitoring where the chart's readiness probe looks.
    let serverz = wait_for_status(port, "/streaming/serverz", 200, WAIT)
        .await
        .json();
    assert_eq!(serverz["cluster_id"], "stan");
    let limits = get(port, "/streaming/storez").json()["limits"].clone();
    assert_eq!(limits["max_channels"], 10);
    assert_eq!(limits["max_msgs"], 1000);
    assert_eq!(limits["max_bytes"], 10 << 20);
    assert_eq!(limits["max_subscriptions"], 5);

    let conn = Connection::connect(nats.client().await, Options::new("stan", "chart-client"))
        .await
        .unwrap();
    conn.publish("orders", "o-1").await.unwrap();
    let mut sub = conn.subscribe("orders", first()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.data().as_ref(), b"o-1");
    assert!(
        store.join("msgs").exists(),
        "the store lives in the file's dir"
    );
}

/// How long a run that should fail at startup may take.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Runs `cmd` to its exit, which must come within [`EXIT_WITHIN`]: a
/// configuration that became valid would open the store and retry its
/// NATS URL forever. Returns the exit code and stderr.
fn run_bounded(cmd: Command) -> (Option<i32>, String) {
    let out = common::exit::run_to_exit(cmd, EXIT_WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

/// Runs the binary to completion with a config file of `text`.
fn run_with_config(dir: &std::path::Path, text: &str) -> (Option<i32>, String) {
    let conf = dir.join("stan.conf");
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.args(["-sc", conf.to_str().unwrap()])
        .args(["-ns", "nats://127.0.0.1:1"])
        .env_remove("STANCHION_CONFIG");
    run_bounded(cmd)
}

#[test]
fn config_file_errors_name_file_line_and_key_before_the_store_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("never");
    let store = store.to_str().unwrap();
    let conf = dir.path().join("stan.conf");
    let conf = conf.to_str().unwrap();
    let cases = [
        (
            format!("streaming {{\n  dir: {store}\n  store_limits {{\n    max_msgs: \"many\"\n  }}\n}}\n"),
            vec![format!("{conf}:4"), "max_msgs".to_string(), "int64".to_string()],
        ),
        (
            format!("streaming {{\n  dir: {store}\n  hb_interval: \"10x\"\n}}\n"),
            vec![format!("{conf}:3"), "hb_interval".to_string()],
        ),
        (
            format!("streaming {{\n  dir: {store}\n  id: \"unterminated\n}}\n"),
            vec![
                conf.to_string(),
                format!("{conf}:3: Unexpected EOF: unterminated quoted string."),
            ],
        ),
        (
            format!("streaming {{\n  dir: {store}\n  ns: $NOT_DEFINED_ANYWHERE_42\n}}\n"),
            vec![format!("{conf}:3"), "NOT_DEFINED_ANYWHERE_42".to_string()],
        ),
        (
            format!("streaming {{\n  dir: {store}\n  store_limits {{ max_channels: -1 }}\n}}\n"),
            vec![
                conf.to_string(),
                "negative".to_string(),
                format!("{conf}:3: max channels limit cannot be negative (-1)"),
            ],
        ),
        // Stanchion's own checks after NSS's: store type names, the
        // ranges of the settings' types.
        (
            format!("streaming {{\n  dir: {store}\n  store: \"bogus\"\n}}\n"),
            vec![format!("{conf}:3: parameter \"store\": unknown store type \"bogus\"")],
        ),
        (
            format!("streaming {{\n  dir: {store}\n\n  hb_fail_count: -1\n}}\n"),
            vec![format!("{conf}:4: parameter \"hb_fail_count\" value -1 is out of range")],
        ),
        (
            format!("http_port: 999999\nstreaming {{\n  dir: {store}\n}}\n"),
            vec![format!("{conf}:1: parameter \"http_port\" value 999999 is out of range")],
        ),
        // Rules only validation knows, located in the file.
        (
            format!("streaming {{\n  dir: {store}\n  hb_interval: \"0s\"\n}}\n"),
            vec![format!("invalid hb_interval ({conf}:3): must be greater than zero")],
        ),
        (
            format!("streaming {{\n  dir: {store}\n  id: \"a.b\"\n}}\n"),
            vec![format!("invalid cluster_id ({conf}:3): \"a.b\" must be a valid client ID")],
        ),
        (
            format!("streaming {{\n  dir: {store}\n  io_batch_size: 0\n}}\n"),
            vec![format!("invalid io_batch_size ({conf}:3): must be at least 1")],
        ),
    ];
    for (text, needles) in cases {
        let (code, err) = run_with_config(dir.path(), &text);
        assert_eq!(code, Some(2), "{text}\n{err}");
        for needle in &needles {
            assert!(err.contains(needle.as_str()), "{needle:?} missing: {err}");
        }
        assert!(
            !std::path::Path::new(store).exists(),
            "store touched: {err}"
        );
    }
}

#[test]
fn a_bad_value_names_the_key_the_value_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("stan.conf");
    std::fs::write(&conf, "streaming { store: \"sql\" }\n").unwrap();
    let never = dir.path().join("never");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
        cmd.args(args)
            .args(["-ns", "nats://127.0.0.1:1", "-dir", never.to_str().unwrap()])
            .env_remove("STANCHION_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_bounded(cmd)
    };
    let (code, err) = run(&["-sc", conf.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("store") && err.contains("sql") && err.contains("stan.conf"),
        "{err}"
    );
    let (code, err) = run(&[], &[("STANCHION_MAX_MSGS", "lots")]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("MAX_MSGS") && err.contains("lots") && err.contains("environment"),
        "{err}"
    );
    let (code, err) = run(&["--max_msgs", "lots"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--max_msgs") && err.contains("lots"), "{err}");
    let (code, err) = run(&["--log_format", "xml"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("xml"), "{err}");
    let (code, err) = run(&[], &[("STANCHION_FILE_SYNC", "yes")]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("\"STANCHION_FILE_SYNC\"") && err.contains("\"yes\""),
        "{err}"
    );
    assert!(!never.exists(), "store touched");
}

#[tokio::test]
async fn json_logs_name_clients_and_hide_nothing_an_operator_needs() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.args(["-ns", &nats.url(), "--dir", data.to_str().unwrap(), "-m"])
        .arg(port.to_string())
        .env("STANCHION_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut server = Proc::spawn("stanchion", cmd);
    server.wait_for_output("stanchion is ready").await;
    let conn = stan(&nats, "json-client").await;
    conn.close().await.unwrap();
    server.wait_for_output("client closed").await;
    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let lines: Vec<serde_json::Value> = server
        .output()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let start = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("starting stanchion")
        })
        .expect("a startup line");
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start["cluster_id"], "test-cluster");
    assert_eq!(start["store"], "sled");
    assert_eq!(start["dir"], data.to_str().unwrap());
    assert_eq!(start["monitoring"], format!("http://0.0.0.0:{port}"));
    assert_eq!(start["nats_server"], nats.url());
    assert!(lines
        .iter()
        .any(|l| l["message"] == "store limits (0 = unlimited)" && l["max_msgs"] == 1_000_000));
    for message in ["client connected", "client closed"] {
        let line = lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line"));
        assert_eq!(line["client"], "json-client", "{line}");
        assert_eq!(line["level"], "INFO");
    }
}
