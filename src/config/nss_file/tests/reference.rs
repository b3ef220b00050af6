//! The reference's own examples: the protocol documentation's config and
//! every key of nats-streaming-server's parse test.

use super::*;

#[test]
fn protocol_example() {
    let file = ok(r#"
streaming {
  cluster_id: my_cluster
  store: file
  dir: /data/stan
  hb_interval: "10s"
  store_limits {
    max_channels: 10
    max_msgs: 10000
    max_bytes: 10MB
    max_age: "1h"
    channels {
      "foo":       { max_msgs: 300, max_subs: 50 }
      "baz":       { max_msgs: 0 }            # 0 => unlimited for this limit only
      "foo.>":     { max_msgs: 400 }
      "foo.bar.>": { max_age: "2h" }          # inherits max_msgs 400 from foo.>
      "temp.>":    { max_inactivity: "1h" }
    }
  }
}
"#);
    assert_eq!(text(&file, "cluster_id"), "my_cluster");
    assert_eq!(text(&file, "store"), "file");
    assert_eq!(text(&file, "dir"), "/data/stan");
    assert_eq!(text(&file, "hb_interval"), "10s");
    assert_eq!(num(&file, "max_channels"), 10);
    assert_eq!(num(&file, "max_msgs"), 10000);
    assert_eq!(num(&file, "max_bytes"), 10 * 1024 * 1024);
    assert_eq!(text(&file, "max_age"), "1h");
    let channels = dict(get(&file, "channels"), "channels");
    let keys: Vec<_> = channels.keys().map(String::as_str).collect();
    assert_eq!(keys, ["baz", "foo", "foo.>", "foo.bar.>", "temp.>"]);
    let foo = dict(&channels["foo"], "foo");
    assert_eq!(foo["max_msgs"].to_i128(), Some(300));
    assert_eq!(foo["max_subs"].to_i128(), Some(50));
    assert_eq!(dict(&channels["baz"], "baz")["max_msgs"].to_i128(), Some(0));
    assert_eq!(
        dict(&channels["foo.>"], "foo.>")["max_msgs"].to_i128(),
        Some(400)
    );
    let foobar = dict(&channels["foo.bar.>"], "foo.bar.>");
    assert_eq!(foobar["max_age"].as_str(), Some("2h"));
    assert_eq!(foobar.len(), 1, "no inheritance here");
    let temp = dict(&channels["temp.>"], "temp.>");
    assert_eq!(temp["max_inactivity"].as_str(), Some("1h"));
    assert_eq!(file.values.len(), 9);
    assert!(file.ignored.is_empty(), "{:?}", file.ignored);
}

/// Every key of the reference's own parse test (test/configs/
/// test_parse.conf), written differently.
const EVERY_KEY: &str = r#"
# Shared file: nats-server's part first.
port: 4222
http: "0.0.0.0:8333"
STREAMING {
  ID = "nss-cluster"; discover_prefix = "_STAN.disc"
  store: FILE, dir: "/var/lib/stan"
  sd: true, sv: false
  ns: "nats://127.0.0.1:4222"
  secure: yes
  hb_interval: "3s", hb_timeout: "2s", hb_fail_count: 7
  ft_group: "grp"
  partitioning: false
  syslog_name: "stan-svc"
  encrypt: false
  encryption_cipher: "CHACHA"
  encryption_key: "secret"
  credentials: "/etc/stan/user.creds"
  username: "stan"
  password: "pw"
  token: "tkn"
  nkey_seed_file: "/etc/stan/seed.nk"
  store_limits: {
    max_channels: 21, max_msgs: 22, max_bytes: 23
    max_age: "24s", max_subs: 25, max_inactivity: "26s"
    channels: {
      "orders.*": { max_msgs: 31, max_bytes: 32, max_age: "33s", max_subs: 34, max_inactivity: "35s" }
      "audit":    { max_msgs: 0, max_bytes: 0 }
    }
  }
  tls: {
    client_cert: "/tls/cert.pem"
    client_key: "/tls/key.pem"
    client_ca: "/tls/ca.pem"
    server_name: "nats.example"
    insecure: false
  }
  file: {
    compact: false
    compact_frag: 11
    compact_interval: 12
    compact_min_size: 13
    buffer_size: 14
    crc: false
    crc_poly: 15
    sync: false
    cache: false
    slice_max_msgs: 16
    slice_max_bytes: 17
    slice_max_age: "18s"
    slice_archive_script: "/bin/archive"
    fds_limit: 19
    parallel_recovery: 2
    read_buffer_size: 20
    auto_sync: "1m"
  }
  cluster: {
    node_id: "n1", bootstrap: false, peers: ["n2", "n3"], log_path: "/raft"
    log_cache_size: 64, log_snapshots: 3, trailing_logs: 128, sync: false
    proceed_on_restore_failure: false, raft_logging: false
    raft_heartbeat_timeout: "2s", raft_election_timeout: "2s"
    raft_lease_timeout: "1s", raft_commit_timeout: "100ms"
    allow_add_remove_node: false, bolt_free_list_sync: false
    bolt_free_list_map: false, nodes_connections: false
  }
  sql: {
    driver: "postgres", source: "dbname=stan", no_caching: false
    max_open_conns: 9, bulk_insert_limit: 500
  }
}
"#;

#[test]
fn every_reference_key() {
    let file = ok(EVERY_KEY);
    for (key, want) in [
        ("cluster_id", "nss-cluster"),
        ("discover_prefix", "_STAN.disc"),
        ("store", "FILE"),
        ("dir", "/var/lib/stan"),
        ("nats_server", "nats://127.0.0.1:4222"),
        ("hb_interval", "3s"),
        ("hb_timeout", "2s"),
        ("credentials", "/etc/stan/user.creds"),
        ("user", "stan"),
        ("pass", "pw"),
        ("auth", "tkn"),
        ("nkey_seed_file", "/etc/stan/seed.nk"),
        ("max_age", "24s"),
        ("max_inactivity", "26s"),
        ("tls_client_cert", "/tls/cert.pem"),
        ("tls_client_key", "/tls/key.pem"),
        ("tls_client_cacert", "/tls/ca.pem"),
        ("tls_server_name", "nats.example"),
        ("encryption_cipher", "CHACHA"),
        ("encryption_key", "secret"),
        ("http_host", "0.0.0.0"),
        ("ft_group", "grp"),
    ] {
        assert_eq!(text(&file, key), want, "{key}");
    }
    for (key, want) in [
        ("hb_fail_count", 7),
        ("max_channels", 21),
        ("max_msgs", 22),
        ("max_bytes", 23),
        ("max_subs", 25),
        ("http_port", 8333),
    ] {
        assert_eq!(num(&file, key), want, "{key}");
    }
    for (key, want) in [
        ("stan_debug", true),
        ("stan_trace", false),
        ("secure", true),
        ("tls_insecure", false),
        ("file_sync", false),
        ("encrypt", false),
        ("partitioning", false),
        ("clustered", true),
    ] {
        assert_eq!(flag(&file, key), want, "{key}");
    }
    let channels = dict(get(&file, "channels"), "channels");
    let orders = dict(&channels["orders.*"], "orders.*");
    assert_eq!(orders["max_msgs"].to_i128(), Some(31));
    assert_eq!(orders["max_bytes"].to_i128(), Some(32));
    assert_eq!(orders["max_age"].as_str(), Some("33s"));
    assert_eq!(orders["max_subs"].to_i128(), Some(34));
    assert_eq!(orders["max_inactivity"].as_str(), Some("35s"));
    let audit = dict(&channels["audit"], "audit");
    assert_eq!(audit["max_msgs"].to_i128(), Some(0));
    assert_eq!(audit["max_bytes"].to_i128(), Some(0));
    assert_eq!(text(&file, "cluster_node_id"), "n1");
    assert_eq!(text(&file, "cluster_peers"), "n2,n3");
    assert_eq!(text(&file, "cluster_log_path"), "/raft");
    assert_eq!(file.values["cluster_bootstrap"].to_bool(), Some(false));
    assert_eq!(file.values["cluster_sync"].to_bool(), Some(false));
    assert_eq!(file.values["cluster_raft_logging"].to_bool(), Some(false));
    assert_eq!(
        file.values["cluster_allow_add_remove_node"].to_bool(),
        Some(false)
    );
    assert_eq!(file.values["cluster_trailing_logs"].to_i128(), Some(128));
    assert_eq!(text(&file, "cluster_raft_heartbeat_timeout"), "2s");
    assert_eq!(text(&file, "cluster_raft_election_timeout"), "2s");
    assert_eq!(file.values.len(), 47);

    // The cluster keys stanchion does not use, one by one.
    let all = ignored(&file);
    let (cluster, rest): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(key, _, _)| key.starts_with("STREAMING.cluster."));
    let keys: Vec<(&str, &str)> = cluster
        .iter()
        .map(|(key, _, why)| (key.trim_start_matches("STREAMING.cluster."), *why))
        .collect();
    assert_eq!(
        keys,
        [
            ("log_cache_size", RAFT_TUNING),
            ("log_snapshots", RAFT_TUNING),
            ("proceed_on_restore_failure", NO_CLUSTERING),
            ("raft_lease_timeout", RAFT_TUNING),
            ("raft_commit_timeout", RAFT_TUNING),
            ("bolt_free_list_sync", RAFT_TUNING),
            ("bolt_free_list_map", RAFT_TUNING),
            ("nodes_connections", RAFT_TUNING),
        ]
    );
    assert!(cluster.iter().all(|(_, line, _)| (57..=64).contains(line)));
    let tuning = |key: &'static str, line| (key, line, FILE_TUNING);
    assert_eq!(
        rest,
        [
            ("port", 3, NATS_SERVER_PART),
            ("STREAMING.syslog_name", 14, NO_SYSLOG),
            tuning("STREAMING.file.compact", 39),
            tuning("STREAMING.file.compact_frag", 40),
            tuning("STREAMING.file.compact_interval", 41),
            tuning("STREAMING.file.compact_min_size", 42),
            tuning("STREAMING.file.buffer_size", 43),
            tuning("STREAMING.file.crc", 44),
            tuning("STREAMING.file.crc_poly", 45),
            ("STREAMING.file.cache", 47, UNKNOWN),
            tuning("STREAMING.file.slice_max_msgs", 48),
            tuning("STREAMING.file.slice_max_bytes", 49),
            tuning("STREAMING.file.slice_max_age", 50),
            tuning("STREAMING.file.slice_archive_script", 51),
            tuning("STREAMING.file.fds_limit", 52),
            tuning("STREAMING.file.parallel_recovery", 53),
            tuning("STREAMING.file.read_buffer_size", 54),
            tuning("STREAMING.file.auto_sync", 55),
            ("STREAMING.sql", 66, NO_SQL),
        ]
    );
    assert!(file
        .ignored
        .iter()
        .all(|i| i.file == Path::new("stan.conf")));
}
