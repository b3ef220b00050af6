//! Loading the configuration: every layer, precedence, and the errors a
//! user sees. `figment::Jail` closures return figment's (large) error type
//! by design.
#![allow(clippy::result_large_err)]

mod encryption;
mod file_errors;
mod secrets_and_quirks;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use figment::Jail;

/// `Config::load` with a program name prepended, errors as strings so
/// they fit `Jail`'s closure.
fn load(args: &[&str]) -> Result<Config, ConfigError> {
    let argv = std::iter::once("stanchion")
        .chain(args.iter().copied())
        .map(OsString::from);
    Config::load(argv)
}

fn ok(args: &[&str]) -> figment::error::Result<Config> {
    load(args).map_err(|e| figment::Error::from(e.to_string()))
}

fn err(args: &[&str]) -> String {
    load(args).expect_err("expected an error").to_string()
}

#[test]
fn defaults_round_trip_through_figment() {
    Jail::expect_with(|_| {
        assert_eq!(ok(&[])?, Config::default());
        Config::default().validate().unwrap();
        Ok(())
    });
}

#[test]
fn file_layer_reads_every_kind_of_value() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "stan.toml",
            r#"
            nats_server = "nats://a:4222,nats://b:4222"
            cluster_id = 123
            store = "FILE"
            dir = "/var/stan"
            file_sync = false
            cache_capacity = "1GB"
            max_bytes = 2048
            hb_interval = "1m30s"
            hb_timeout = "1.5s"
            hb_fail_count = 3
            unknown_key = "ignored, as NSS does"
            "#,
        )?;
        let config = ok(&["-sc", "stan.toml"])?;
        assert_eq!(config.nats_server, "nats://a:4222,nats://b:4222");
        assert_eq!(config.cluster_id, "123");
        assert_eq!(config.store, StoreKind::Sled);
        assert_eq!(config.dir, PathBuf::from("/var/stan"));
        assert!(!config.file_sync);
        assert_eq!(config.cache_capacity, 1 << 30);
        assert_eq!(config.max_bytes, 2048);
        assert_eq!(config.hb_interval, Duration::from_secs(90));
        assert_eq!(config.hb_timeout, Duration::from_millis(1500));
        assert_eq!(config.hb_fail_count, 3);
        assert_eq!(config.max_msgs, Config::default().max_msgs);
        Ok(())
    });
}

#[test]
fn streaming_table_is_used_when_present() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "nss.toml",
            "cluster_id = \"outer\"\n[streaming]\ncluster_id = \"inner\"\nstore = \"memory\"\n",
        )?;
        let config = ok(&["--config=nss.toml"])?;
        assert_eq!(config.cluster_id, "inner");
        assert_eq!(config.store, StoreKind::Memory);
        Ok(())
    });
}

#[test]
fn config_file_from_env_and_flag_precedence() {
    Jail::expect_with(|jail| {
        jail.create_file("env.toml", "cluster_id = \"from-env-file\"")?;
        jail.create_file("flag.toml", "cluster_id = \"from-flag-file\"")?;
        jail.set_env("STANCHION_CONFIG", "env.toml");
        assert_eq!(ok(&[])?.cluster_id, "from-env-file");
        assert_eq!(
            ok(&["--stan_config", "flag.toml"])?.cluster_id,
            "from-flag-file"
        );
        Ok(())
    });
}

#[test]
fn missing_config_file_is_an_error() {
    Jail::expect_with(|_| {
        let e = load(&["-sc", "nope.toml"]).unwrap_err();
        assert!(matches!(e, ConfigError::ConfigFile { .. }), "{e}");
        assert!(e.to_string().contains("nope.toml"), "{e}");
        Ok(())
    });
}

#[test]
fn env_layer_reads_typed_values() {
    Jail::expect_with(|jail| {
        jail.set_env("STANCHION_CLUSTER_ID", "123");
        jail.set_env("STANCHION_NATS_SERVER", "nats://h:1");
        jail.set_env("STANCHION_DIR", "1.50");
        jail.set_env("STANCHION_HB_INTERVAL", "500ms");
        jail.set_env("STANCHION_HB_TIMEOUT", "1h2m3s");
        jail.set_env("STANCHION_FILE_SYNC", "false");
        jail.set_env("STANCHION_STORE", "MEMORY");
        jail.set_env("STANCHION_MAX_BYTES", "64MB");
        jail.set_env("STANCHION_CACHE_CAPACITY", "1000");
        jail.set_env("STANCHION_MAX_CHANNELS", "7");
        jail.set_env("STANCHION_REPLACE_DURABLE", "true");
        let config = ok(&[])?;
        assert_eq!(config.cluster_id, "123");
        assert_eq!(config.nats_server, "nats://h:1");
        assert_eq!(config.dir, PathBuf::from("1.50"));
        assert_eq!(config.hb_interval, Duration::from_millis(500));
        assert_eq!(config.hb_timeout, Duration::from_secs(3723));
        assert!(!config.file_sync);
        assert_eq!(config.store, StoreKind::Memory);
        assert_eq!(config.max_bytes, 64 << 20);
        assert_eq!(config.cache_capacity, 1000);
        assert_eq!(config.max_channels, 7);
        assert!(config.replace_durable);
        Ok(())
    });
}

#[test]
fn env_string_fields_keep_their_exact_text() {
    Jail::expect_with(|jail| {
        jail.set_env("STANCHION_CLUSTER_ID", "007");
        assert_eq!(ok(&[])?.cluster_id, "007");
        jail.set_env("STANCHION_CLUSTER_ID", "true");
        assert_eq!(ok(&[])?.cluster_id, "true");
        Ok(())
    });
}

#[test]
fn store_aliases_in_every_layer() {
    Jail::expect_with(|jail| {
        for (text, kind) in [
            ("sled", StoreKind::Sled),
            ("SLED", StoreKind::Sled),
            ("file", StoreKind::Sled),
            ("FILE", StoreKind::Sled),
            ("memory", StoreKind::Memory),
            ("MEMORY", StoreKind::Memory),
            ("Memory", StoreKind::Memory),
        ] {
            assert_eq!(ok(&["-st", text])?.store, kind, "flag {text}");
            jail.set_env("STANCHION_STORE", text);
            assert_eq!(ok(&[])?.store, kind, "env {text}");
            jail.create_file("s.toml", &format!("store = {text:?}"))?;
            jail.set_env("STANCHION_STORE", "");
            assert!(err(&[]).contains("STORE"));
            std::env::remove_var("STANCHION_STORE");
            assert_eq!(ok(&["-sc", "s.toml"])?.store, kind, "file {text}");
        }
        Ok(())
    });
}

#[test]
fn precedence_is_file_then_env_then_flags() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "p.toml",
            "cluster_id = \"file\"\nhb_interval = \"1s\"\nmax_msgs = 1\nstan_debug = true\n",
        )?;
        jail.set_env("STANCHION_CONFIG", "p.toml");
        let config = ok(&[])?;
        assert_eq!(
            (
                config.cluster_id.as_str(),
                config.hb_interval,
                config.max_msgs
            ),
            ("file", Duration::from_secs(1), 1)
        );
        jail.set_env("STANCHION_CLUSTER_ID", "env");
        jail.set_env("STANCHION_HB_INTERVAL", "2s");
        let config = ok(&[])?;
        assert_eq!(
            (
                config.cluster_id.as_str(),
                config.hb_interval,
                config.max_msgs
            ),
            ("env", Duration::from_secs(2), 1)
        );
        let config = ok(&["-cid", "flag", "-SD=false"])?;
        assert_eq!(
            (
                config.cluster_id.as_str(),
                config.hb_interval,
                config.max_msgs
            ),
            ("flag", Duration::from_secs(2), 1)
        );
        assert!(!config.stan_debug);
        Ok(())
    });
}

#[test]
fn a_flag_overrides_an_invalid_env_value() {
    Jail::expect_with(|jail| {
        jail.set_env("STANCHION_HB_INTERVAL", "bogus");
        assert!(err(&[]).contains("HB_INTERVAL"));
        assert_eq!(ok(&["-hbi", "5s"])?.hb_interval, Duration::from_secs(5));
        Ok(())
    });
}

#[test]
fn flags_in_all_go_spellings() {
    Jail::expect_with(|_| {
        let expected = Config {
            nats_server: "nats://x:1".into(),
            cluster_id: "c".into(),
            discover_prefix: "_D.x".into(),
            store: StoreKind::Memory,
            dir: "d".into(),
            file_sync: false,
            cache_capacity: 2_000_000,
            hb_interval: Duration::from_millis(1500),
            hb_timeout: Duration::from_micros(100),
            hb_fail_count: 4,
            max_channels: 5,
            max_subs: 6,
            max_msgs: 7,
            max_bytes: 8 << 10,
            replace_durable: true,
            io_batch_size: 9,
            stan_debug: true,
            stan_trace: true,
            ..Config::default()
        };
        let one_dash = [
            "-ns",
            "nats://x:1",
            "-cid",
            "c",
            "-discover_prefix",
            "_D.x",
            "-st",
            "MEMORY",
            "-dir",
            "d",
            "-file_sync=false",
            "-cache_capacity",
            "2m",
            "-hbi",
            "1.5s",
            "-hbt",
            "100us",
            "-hbf",
            "4",
            "-mc",
            "5",
            "-msu",
            "6",
            "-mm",
            "7",
            "-mb",
            "8KB",
            "-replace_durable",
            "-io_batch_size",
            "9",
            "-SDV",
        ];
        let two_dashes_equals = [
            "--nats_server=nats://x:1",
            "--cluster_id=c",
            "--discover_prefix=_D.x",
            "--store=memory",
            "--dir=d",
            "--file_sync=0",
            "--cache_capacity=2M",
            "--hb_interval=1500ms",
            "--hb_timeout=0.1ms",
            "--hb_fail_count=4",
            "--max_channels=5",
            "--max_subs=6",
            "--max_msgs=7",
            "--max_bytes=8kb",
            "--replace_durable=true",
            "--io_batch_size=9",
            "--SD",
            "--SV=t",
        ];
        assert_eq!(ok(&one_dash)?, expected);
        assert_eq!(ok(&two_dashes_equals)?, expected);
        Ok(())
    });
}

#[test]
fn bad_values_name_the_key_and_source() {
    Jail::expect_with(|jail| {
        jail.set_env("STANCHION_HB_FAIL_COUNT", "many");
        let e = err(&[]);
        assert!(
            e.contains("HB_FAIL_COUNT") && e.contains("STANCHION_"),
            "{e}"
        );
        std::env::remove_var("STANCHION_HB_FAIL_COUNT");

        jail.set_env("STANCHION_MAX_BYTES", "12zz");
        let e = err(&[]);
        assert!(
            e.contains("MAX_BYTES") && e.contains("unknown suffix"),
            "{e}"
        );
        std::env::remove_var("STANCHION_MAX_BYTES");

        jail.create_file("bad.toml", "[streaming]\nhb_interval = \"5x\"\n")?;
        let e = err(&["-sc", "bad.toml"]);
        assert!(e.contains("hb_interval") && e.contains("bad.toml"), "{e}");
        assert!(e.contains(r#"unknown unit "x""#), "{e}");

        jail.create_file("bad2.toml", "store = \"sql\"\n")?;
        let e = err(&["-sc", "bad2.toml"]);
        assert!(
            e.contains("store") && e.contains("unknown store type"),
            "{e}"
        );

        jail.create_file("bad3.toml", "max_msgs = -1\n")?;
        assert!(err(&["-sc", "bad3.toml"]).contains("max_msgs"));

        for (flag, key) in [
            ("-mm", "max_msgs"),
            ("-mc", "max_channels"),
            ("-msu", "max_subs"),
        ] {
            let e = err(&[flag, "-5"]);
            assert!(e.contains(key) && e.contains("-5 is negative"), "{e}");
        }
        let e = err(&["-ma", "-1h"]);
        assert!(e.contains("max_age") && e.contains("negative"), "{e}");

        let e = err(&["-hbi", "30"]);
        assert!(
            e.contains("--hb_interval") && e.contains("missing unit"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn validation_names_the_setting() {
    Jail::expect_with(|_| {
        for (args, key) in [
            (&["-cid", ""][..], "cluster_id"),
            (&["-cid", "a.b"], "cluster_id"),
            (&["-cid", "a b"], "cluster_id"),
            (&["-ns", ""], "nats_server"),
            (&["-ns", "nats://a:1,"], "nats_server"),
            (&["-discover_prefix", "_STAN.>"], "discover_prefix"),
            (&["-dir", ""], "dir"),
            (&["-hbi", "0"], "hb_interval"),
            (&["-hbt", "0s"], "hb_timeout"),
            (&["-io_batch_size", "0"], "io_batch_size"),
        ] {
            match load(args) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        // The memory store needs no directory.
        ok(&["-st", "memory", "-dir", ""])?;
        Ok(())
    });
}

#[test]
fn help_and_version_are_args_errors() {
    Jail::expect_with(|_| {
        for (flag, kind) in [
            ("--help", clap::error::ErrorKind::DisplayHelp),
            ("-h", clap::error::ErrorKind::DisplayHelp),
            ("-version", clap::error::ErrorKind::DisplayVersion),
        ] {
            match load(&[flag]) {
                Err(ConfigError::Args(e)) => assert_eq!(e.kind(), kind),
                other => panic!("{flag}: {other:?}"),
            }
        }
        Ok(())
    });
}

#[test]
fn age_and_inactivity_limits_are_read_from_the_file_without_warnings() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "stan.conf",
            "streaming {\n  store_limits {\n    max_msgs: 5\n    max_age: \"1h\"\n    max_inactivity: \"2h\"\n    channels { \"foo.>\": { max_msgs: 7, max_age: \"1m\" } }\n  }\n}\n",
        )?;
        let argv = ["stanchion", "-sc", "stan.conf"].map(OsString::from);
        let loaded = Config::load_reporting(argv).map_err(|e| e.to_string())?;
        assert_eq!(loaded.config.max_msgs, 5);
        assert_eq!(loaded.config.max_age, Duration::from_secs(3600));
        assert_eq!(loaded.config.max_inactivity, Duration::from_secs(7200));
        let limits = loaded.config.store_limits().unwrap();
        assert_eq!(limits.for_channel("foo.bar").max_msgs, 7);
        assert_eq!(
            limits.for_channel("foo.bar").max_age,
            Duration::from_secs(60)
        );
        assert_eq!(
            limits.for_channel("foo.bar").max_inactivity,
            Duration::from_secs(7200)
        );
        assert_eq!(limits.for_channel("other").max_msgs, 5);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        Ok(())
    });
}

#[test]
fn invalid_per_channel_patterns_are_refused_naming_them() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bad.conf",
            "streaming { store_limits { channels { \"foo..bar\": { max_msgs: 1 } } } }\n",
        )?;
        let e = err(&["-sc", "bad.conf"]);
        assert!(e.contains("foo..bar") && e.contains("bad.conf:1"), "{e}");
        jail.create_file(
            "many.conf",
            "streaming { store_limits { max_channels: 1, channels { a: {}, b: {} } } }\n",
        )?;
        let e = err(&["-sc", "many.conf"]);
        assert!(e.contains("too many channels defined (2)"), "{e}");
        Ok(())
    });
}

#[test]
fn cluster_settings_come_from_every_layer() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "nss.conf",
            "streaming { store: file, cluster { node_id: a, bootstrap: true, sync: true, \
             raft_election_timeout: \"3s\", trailing_logs: 50 } }",
        )?;
        jail.set_env("STANCHION_CLUSTER_RAFT_LOGGING", "T");
        let config = ok(&[
            "-sc",
            "nss.conf",
            "--cluster_raft_heartbeat_timeout",
            "750ms",
        ])?;
        assert!(config.clustered);
        assert!(config.cluster_bootstrap);
        assert!(config.cluster_sync);
        assert!(config.cluster_raft_logging);
        assert_eq!(config.cluster_trailing_logs, 50);
        assert_eq!(config.cluster_raft_election_timeout, Duration::from_secs(3));
        assert_eq!(config.raft_election_timer(), Duration::from_millis(750));
        assert_eq!(config.cluster_start(), ClusterStart::Seed);

        let peers = ok(&[
            "-clustered",
            "-cluster_node_id",
            "a",
            "-cluster_peers",
            "a,b",
        ])?;
        assert_eq!(peers.cluster_start(), ClusterStart::Peers);
        assert!(!peers.cluster_sync, "NSS's default");
        let alone = ok(&["-clustered", "-cluster_node_id", "a", "-cluster_peers", "a"])?;
        assert_eq!(alone.cluster_start(), ClusterStart::Join);
        Ok(())
    });
}
