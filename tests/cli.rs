//! The `stanchion` binary's command line as a user meets it: help, version
//! and configuration errors, with their exit codes. None of these start the
//! server, so no nats-server is needed.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

/// How long a run that never starts the server may take.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Runs stanchion to its exit, which must come within [`EXIT_WITHIN`]:
/// an argument list that became valid would start the server and retry
/// its NATS URL forever (`-ns` points at a closed port, `-dir` nowhere
/// that is used, in case).
fn stanchion(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.args(args)
        .env_remove("STANCHION_CONFIG")
        .env("STANCHION_NATS_SERVER", "nats://127.0.0.1:1")
        .env("STANCHION_STORE", "memory");
    for (key, value) in env {
        cmd.env(key, value);
    }
    common::exit::run_to_exit(cmd, EXIT_WITHIN)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_nss_spellings_and_exits_0() {
    for flag in ["--help", "-help", "-h", "help"] {
        let out = stanchion(&[flag], &[]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let help = text(&out.stdout);
        for spelling in [
            "--cluster_id",
            "--cid",
            "--SDV",
            "--stan_config",
            "-cid mycluster",
        ] {
            assert!(help.contains(spelling), "{spelling} missing:\n{help}");
        }
    }
}

#[test]
fn help_lists_every_option_with_its_environment_variable() {
    let help = text(&stanchion(&["--help"], &[]).stdout);
    let options = serde_json::to_value(stanchion::config::Config::default()).unwrap();
    let options = options.as_object().unwrap();
    assert!(options.len() > 30, "{options:?}");
    for key in options.keys() {
        let env = format!("[env: STANCHION_{}]", key.to_ascii_uppercase());
        let line = help
            .lines()
            .find(|l| l.contains(&format!("--{key}")))
            .unwrap_or_else(|| panic!("--{key} missing:\n{help}"));
        assert!(
            help.contains(&env),
            "{env} missing for --{key} ({line}):\n{help}"
        );
    }
    // The reference server's flags that are accepted and ignored are listed too.
    for flag in [
        "-file_compact_enabled",
        "-routes",
        "-sql_driver",
        "-cluster_peers",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
}

#[test]
fn version_exits_0() {
    for flag in ["--version", "-version", "-v", "version", "VERSION"] {
        let out = stanchion(&[flag], &[]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(text(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
}

/// Arguments, environment, and a text stderr must contain.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn configuration_errors_exit_2_naming_the_setting() {
    let cases: &[Case] = &[
        (&["-zz", "1h"], &[], "flag provided but not defined: -zz"),
        (&["-hbi", "5x"], &[], "--hb_interval"),
        (&["-cid", "a.b"], &[], "invalid cluster_id"),
        (
            &["--store", "memory", "--ft_group", "g"],
            &[],
            "ft: only the file (sled) store can be shared by an FT group",
        ),
        (&["--ft_group", "g.*"], &[], "ft_group"),
        (&[], &[("STANCHION_FT_GROUP", "a b")], "ft_group"),
        (
            &[],
            &[("STANCHION_PARTITIONING", "true")],
            "stan: no configured channel",
        ),
        (
            &["-clustered", "-st", "file"],
            &[],
            "cluster_node_id is required in clustered mode",
        ),
        (
            &[
                "-clustered",
                "-cluster_node_id",
                "a",
                "-cluster_raft_heartbeat_timeout",
                "5ms",
                "-st",
                "file",
            ],
            &[],
            "raft heartbeat and election timeouts must be at least 10ms",
        ),
        (
            &[
                "-clustered",
                "-cluster_node_id",
                "a",
                "-cluster_peers",
                "b,c,b",
                "-st",
                "file",
            ],
            &[],
            "duplicate node ID \"b\" in cluster_peers",
        ),
        (
            &[
                "-clustered",
                "-cluster_node_id",
                "a",
                "-cluster_peers",
                "b.x",
                "-st",
                "file",
            ],
            &[],
            "must be one subject token",
        ),
        (
            &["--clustered", "--store", "memory"],
            &[],
            "stan: clustering mode not supported with MEMORY store type",
        ),
        (
            &["--clustered", "--ft_group", "g", "-st", "file"],
            &[],
            "ft_group) and clustering cannot be combined",
        ),
        (
            &[],
            &[("STANCHION_FILE_SYNC", "yes")],
            "STANCHION_FILE_SYNC",
        ),
        (&[], &[("STANCHION_HB_FAIL_COUNT", "x")], "HB_FAIL_COUNT"),
        (
            &["-sc", "/nonexistent/stan.toml"],
            &[],
            "/nonexistent/stan.toml",
        ),
    ];
    for (args, env, needle) in cases {
        let out = stanchion(args, env);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{args:?} {env:?}: {err}");
    }
}
