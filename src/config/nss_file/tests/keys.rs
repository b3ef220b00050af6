//! Names and aliases, the streaming block against the top level,
//! monitoring keys, ignored keys, variables and includes.

use super::*;

#[test]
fn without_a_streaming_block_the_top_level_is_read() {
    let file = ok(
        "cid: top\nmaxmsgs_not_here: 1\nport: 4222\nhttp_port: 8222\n\
                   limits { MaxMsgs: 5, mb: 1kb, MM: 6 }\n",
    );
    assert_eq!(text(&file, "cluster_id"), "top");
    assert_eq!(num(&file, "http_port"), 8222);
    assert_eq!(num(&file, "max_msgs"), 6, "the later alias wins");
    assert_eq!(num(&file, "max_bytes"), 1024);
    assert_eq!(
        ignored(&file),
        [("maxmsgs_not_here", 2, UNKNOWN), ("port", 3, UNKNOWN)]
    );
}

#[test]
fn a_streaming_block_hides_top_level_streaming_keys() {
    let file = ok("cluster_id: outside\nhttp_port: 8222\nmonitor_port: 8223\n\
                   streaming { cluster_id: inside }\n");
    assert_eq!(text(&file, "cluster_id"), "inside");
    assert_eq!(num(&file, "http_port"), 8223);
    assert_eq!(ignored(&file), [("cluster_id", 1, NATS_SERVER_PART)]);
    assert!(err("streaming: 5")
        .starts_with("stan.conf:1: expected streaming section to be a map/struct, got 5"));
}

#[test]
fn monitoring_keys() {
    let file = ok("http: 8222\nstreaming { http_host: \"10.0.0.1\" }");
    assert_eq!(num(&file, "http_port"), 8222);
    assert_eq!(text(&file, "http_host"), "10.0.0.1");
    let file = ok("http: localhost:9000\nhttps_port: 8443\nstreaming {}");
    assert_eq!(text(&file, "http_host"), "localhost");
    assert_eq!(num(&file, "http_port"), 9000);
    assert_eq!(ignored(&file), [("https_port", 2, NO_HTTPS)]);
    let file = ok("http: \"[::1]:9001\"");
    assert_eq!(text(&file, "http_host"), "::1");
    assert_eq!(num(&file, "http_port"), 9001);
    // Inside the block, the block wins.
    let file = ok("http_port: 1\nstreaming { http_port: 2 }");
    assert_eq!(num(&file, "http_port"), 2);
    assert_eq!(
        err("http: \"nohost\""),
        "stan.conf:1: could not parse address string \"nohost\""
    );
    assert_eq!(
        err("\nhttp: \"h:x\""),
        "stan.conf:2: could not parse port \"x\""
    );
    assert!(err("http_port: \"80\"").contains("expected to be int64, got string"));
}

#[test]
fn aliases_and_case() {
    let file = ok("Streaming {\n  CID: a\n  Store_Type: memory\n  DataStore: /d\n  SD: on\n  SV: off\n\
                   NATS_SERVER_URL: [\"nats://a:1\", \"nats://b:2\"]\n  USER: u\n  Pass: p\n  Token: t\n\
                   HBI: \"1s\"\n  server_to_client_hb_timeout: \"2s\"\n  HBF: 3\n  Replace_Durables: true\n\
                   TLS { Client_CACert: ca, Server_Hostname: h, Skip_Verify: true }\n\
                   StoreLimits { MC: 1, MSU: 2, MaxCount: 3, MaxBytes: 4, MA: \"5s\", MI: \"6s\"\n\
                   Per_Channel_Limits { \"x.>\": { MaxSubscriptions: 7 } } }\n\
                   File_Options { Do_Sync: true }\n}\n");
    assert_eq!(text(&file, "cluster_id"), "a");
    assert_eq!(text(&file, "store"), "memory");
    assert_eq!(text(&file, "dir"), "/d");
    assert!(flag(&file, "stan_debug"));
    assert!(!flag(&file, "stan_trace"));
    assert_eq!(text(&file, "nats_server"), "nats://a:1,nats://b:2");
    assert_eq!(text(&file, "user"), "u");
    assert_eq!(text(&file, "pass"), "p");
    assert_eq!(text(&file, "auth"), "t");
    assert_eq!(text(&file, "hb_interval"), "1s");
    assert_eq!(text(&file, "hb_timeout"), "2s");
    assert_eq!(num(&file, "hb_fail_count"), 3);
    assert!(flag(&file, "replace_durable"));
    assert_eq!(text(&file, "tls_client_cacert"), "ca");
    assert_eq!(text(&file, "tls_server_name"), "h");
    assert!(flag(&file, "tls_insecure"));
    assert_eq!(num(&file, "max_channels"), 1);
    assert_eq!(num(&file, "max_subs"), 2);
    assert_eq!(num(&file, "max_msgs"), 3);
    assert_eq!(num(&file, "max_bytes"), 4);
    assert_eq!(text(&file, "max_age"), "5s");
    assert_eq!(text(&file, "max_inactivity"), "6s");
    let channels = dict(get(&file, "channels"), "channels");
    assert_eq!(dict(&channels["x.>"], "x.>")["max_subs"].to_i128(), Some(7));
    assert!(flag(&file, "file_sync"));
    assert!(file.ignored.is_empty(), "{:?}", file.ignored);
}

#[test]
fn stanchion_keys() {
    let file = ok(
        "cache_capacity: 64MB\nio_batch_size: 512\nlog_format: json\nconnection_name: \"stan-1\"\n",
    );
    assert_eq!(num(&file, "cache_capacity"), 64 * 1024 * 1024);
    assert_eq!(num(&file, "io_batch_size"), 512);
    assert_eq!(text(&file, "log_format"), "json");
    assert_eq!(text(&file, "connection_name"), "stan-1");
    assert_eq!(
        num(&ok("cache_capacity: \"1g\""), "cache_capacity"),
        1_000_000_000
    );
    assert!(err("cache_capacity: \"lots\"").starts_with("stan.conf:1: invalid size"));
    assert!(err("io_batch_size: -1").contains("cannot be negative"));
}

#[test]
fn ignored_keys() {
    let file = ok("streaming {\n  bogus: 1\n  file_options { compact: true, sync: true, zzz: 1 }\n  \
                   store_limits { max_zzz: 1, channels { a: { mc: 1 } } }\n  tls { cert_file: x }\n}\n");
    assert_eq!(
        ignored(&file),
        [
            ("streaming.bogus", 2, UNKNOWN),
            ("streaming.file_options.compact", 3, FILE_TUNING),
            ("streaming.file_options.zzz", 3, UNKNOWN),
            ("streaming.store_limits.max_zzz", 4, UNKNOWN),
            ("streaming.store_limits.channels.a.mc", 4, UNKNOWN),
            ("streaming.tls.cert_file", 5, UNKNOWN),
        ]
    );
    assert!(flag(&file, "file_sync"));
}

#[test]
#[allow(clippy::result_large_err)] // `Jail`'s closure returns figment's error
fn variables_are_resolved_and_their_keys_not_called_unknown() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("STANCHION_NSS_FILE_TEST_DIR", "/from/env");
        let file = ok(
            "PW: \"s3cret\"\nstreaming {\n  password: $PW\n  dir: $STANCHION_NSS_FILE_TEST_DIR\n  \
                       lim: 5\n  store_limits { max_msgs: $lim }\n}\n",
        );
        assert_eq!(text(&file, "pass"), "s3cret");
        assert_eq!(text(&file, "dir"), "/from/env");
        assert_eq!(num(&file, "max_msgs"), 5);
        assert_eq!(
            ignored(&file),
            [
                ("PW", 1, ONLY_VARIABLE),
                ("streaming.lim", 5, ONLY_VARIABLE)
            ]
        );
        Ok(())
    });
    let e = err("streaming {\n  id: $STANCHION_NSS_FILE_TEST_UNSET\n}");
    assert_eq!(
        e,
        "stan.conf:2: variable reference for 'STANCHION_NSS_FILE_TEST_UNSET' can not be found"
    );
}

#[test]
fn read_follows_includes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let main = dir.path().join("stan.conf");
    std::fs::write(&main, "streaming {\n  id: inc\n  include limits.conf\n}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("limits.conf"),
        "store_limits { max_msgs: 9 }\nwhat: 1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let file = read(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text(&file, "cluster_id"), "inc");
    assert_eq!(num(&file, "max_msgs"), 9);
    assert_eq!(file.ignored.len(), 1);
    assert_eq!(file.ignored[0].file, dir.path().join("limits.conf"));
    assert_eq!(file.ignored[0].line, 2);

    std::fs::write(
        dir.path().join("limits.conf"),
        "store_limits { max_msgs: x }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let e = read(&main).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:1: parameter \"max_msgs\"",
            dir.path().join("limits.conf").display()
        )),
        "{e}"
    );

    let e = read(&dir.path().join("missing.conf"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.conf: error opening config file"), "{e}");
}

#[test]
fn every_setting_remembers_its_file_and_line() {
    let file = ok(
        "http: \"h:1\"\nstreaming {\n  id: a\n  hb_interval: \"0s\"\n  \
                   store_limits {\n    max_msgs: 1\n  }\n  tls { client_cert: c }\n  id: b\n}\n",
    );
    let at = |key: &str| {
        let origin = file
            .origins
            .get(key)
            .unwrap_or_else(|| panic!("no origin for {key}: {:?}", file.origins));
        assert_eq!(origin.file, Path::new("stan.conf"));
        origin.to_string()
    };
    assert_eq!(at("http_host"), "stan.conf:1");
    assert_eq!(at("http_port"), "stan.conf:1");
    assert_eq!(at("cluster_id"), "stan.conf:9", "the key that wins");
    assert_eq!(at("hb_interval"), "stan.conf:4");
    assert_eq!(at("max_msgs"), "stan.conf:6");
    assert_eq!(at("tls_client_cert"), "stan.conf:8");
    let mut keys: Vec<_> = file.values.keys().collect();
    keys.sort();
    assert!(keys.into_iter().eq(file.origins.keys()));
}

#[test]
fn origins_in_an_included_file_name_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let main = dir.path().join("stan.conf");
    std::fs::write(&main, "streaming {\n  include more.conf\n}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("more.conf"), "\n\nhbi: \"0s\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let file = read(&main).unwrap_or_else(|e| panic!("{e}"));
    let origin = &file.origins["hb_interval"];
    assert_eq!(origin.file, dir.path().join("more.conf"));
    assert_eq!(origin.line, 3);
}

#[test]
fn debug_hides_credentials() {
    let file = ok(
        "streaming {\n  ns: \"nats://u:hunter2@h:4222,nats://h2\"\n  token: hunter3\n  \
                   password: hunter4\n  user: alice\n}\n",
    );
    assert_eq!(text(&file, "auth"), "hunter3");
    let shown = format!("{file:?}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    for kept in ["nats://***@h:4222,nats://h2", "alice", "stan.conf"] {
        assert!(shown.contains(kept), "{kept}: {shown}");
    }
}
