//! Errors from a config file name the file, the line and the key: the
//! NSS file's own checks, and the rules only [`Config::validate`] knows,
//! located through the file's origins when the file's value is the one
//! that won.

use super::*;

/// The error `Config::load` gives for `-sc stan.conf` holding `text`.
fn file_err(jail: &mut Jail, text: &str) -> figment::error::Result<String> {
    jail.create_file("stan.conf", text)?;
    Ok(err(&["-sc", "stan.conf"]))
}

#[test]
fn checks_after_mapping_name_file_line_and_key() {
    Jail::expect_with(|jail| {
        for (text, want) in [
            (
                "streaming {\n  store: \"bogus\"\n}\n",
                "stan.conf:2: parameter \"store\": unknown store type \"bogus\": \
                 expected sled, file (an alias of sled) or memory",
            ),
            (
                "streaming {\n\n  log_format: xml\n}\n",
                "stan.conf:3: parameter \"log_format\": unknown log format \"xml\": \
                 expected text or json",
            ),
            (
                "streaming {\n  hb_fail_count: -1\n}\n",
                "stan.conf:2: parameter \"hb_fail_count\" value -1 is out of range: \
                 expected 0 to 4294967295",
            ),
            (
                "streaming {\n  store_limits {\n    max_channels: 4294967296\n  }\n}\n",
                "stan.conf:3: parameter \"max_channels\" value 4294967296 is out of range: \
                 expected 0 to 4294967295",
            ),
            (
                "streaming {\n  store_limits { max_subs: 5000000000 }\n}\n",
                "stan.conf:2: parameter \"max_subs\" value 5000000000 is out of range: \
                 expected 0 to 4294967295",
            ),
            (
                "http_port: 999999\nstreaming {}\n",
                "stan.conf:1: parameter \"http_port\" value 999999 is out of range: \
                 expected -1 to 65535",
            ),
            (
                "streaming {\n  io_batch_size: -3\n}\n",
                "stan.conf:2: io batch size cannot be negative (-3)",
            ),
        ] {
            assert_eq!(file_err(jail, text)?, want, "{text}");
        }
        Ok(())
    });
}

#[test]
fn validation_errors_name_the_file_and_line_of_the_value() {
    Jail::expect_with(|jail| {
        for (text, want) in [
            (
                "streaming {\n  dir: /tmp/x\n  hb_interval: \"0s\"\n}\n",
                "invalid hb_interval (stan.conf:3): must be greater than zero",
            ),
            (
                "streaming {\n  hbt: \"0s\"\n}\n",
                "invalid hb_timeout (stan.conf:2): must be greater than zero",
            ),
            (
                "streaming {\n  id: \"a.b\"\n}\n",
                "invalid cluster_id (stan.conf:2): \"a.b\" must be a valid client ID \
                 (only letters, digits, '_' and '-')",
            ),
            (
                "\n\nio_batch_size: 0\n",
                "invalid io_batch_size (stan.conf:3): must be at least 1",
            ),
            (
                "streaming {\n  discover_prefix: \"_STAN.>\"\n}\n",
                "invalid discover_prefix (stan.conf:2): \"_STAN.>\" must be a subject \
                 without wildcards or empty tokens",
            ),
            (
                "streaming {\n  ns: \"nats://a:1,\"\n}\n",
                "invalid nats_server (stan.conf:2): must list one or more URLs, \
                 comma-separated, none empty",
            ),
            (
                "streaming {\n  tls {\n    client_cert: c.pem\n  }\n}\n",
                "invalid tls_client_cert (stan.conf:3): a client certificate and its key \
                 (tls_client_key) go together",
            ),
            (
                "streaming {\n  tls {\n    client_key: k.pem\n  }\n}\n",
                "invalid tls_client_key (stan.conf:3): a client key and its certificate \
                 (tls_client_cert) go together",
            ),
        ] {
            assert_eq!(file_err(jail, text)?, want, "{text}");
        }
        Ok(())
    });
}

#[test]
fn a_value_from_env_or_flags_is_not_blamed_on_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("stan.conf", "streaming {\n  hb_interval: \"1s\"\n}\n")?;
        jail.set_env("STANCHION_HB_INTERVAL", "0s");
        assert_eq!(
            err(&["-sc", "stan.conf"]),
            "invalid hb_interval: must be greater than zero"
        );
        std::env::remove_var("STANCHION_HB_INTERVAL");
        assert_eq!(
            err(&["-sc", "stan.conf", "-hbi", "0s"]),
            "invalid hb_interval: must be greater than zero"
        );
        // And the file's bad value is overridden by a good one.
        jail.create_file("stan.conf", "streaming {\n  hb_interval: \"0s\"\n}\n")?;
        assert_eq!(
            ok(&["-sc", "stan.conf", "-hbi", "2s"])?.hb_interval,
            Duration::from_secs(2)
        );
        // A default is nobody's file either.
        assert_eq!(
            err(&["-sc", "stan.conf", "-st", "memory", "-cid", "x y"]),
            "invalid cluster_id: \"x y\" must be a valid client ID (only letters, digits, \
             '_' and '-')"
        );
        Ok(())
    });
}

#[test]
fn an_included_file_and_a_toml_file_are_named() {
    Jail::expect_with(|jail| {
        jail.create_file("stan.conf", "streaming {\n  include inc.conf\n}\n")?;
        jail.create_file("inc.conf", "# limits\nio_batch_size: 0\n")?;
        assert_eq!(
            err(&["-sc", "stan.conf"]),
            "invalid io_batch_size (./inc.conf:2): must be at least 1"
        );
        jail.create_file("stan.toml", "hb_interval = \"0s\"\n")?;
        let e = err(&["-sc", "stan.toml"]);
        assert!(
            e.starts_with("invalid hb_interval (") && e.contains("stan.toml): must be greater"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn the_monitoring_file_beside_sc_is_checked_and_named() {
    Jail::expect_with(|jail| {
        jail.create_file("stan.conf", "streaming { id: a }\n")?;
        jail.create_file("nats.conf", "port: 4222\n\nhttp: \"h:70000\"\n")?;
        assert_eq!(
            err(&["-sc", "stan.conf", "-c", "nats.conf"]),
            "nats.conf:3: parameter \"http\" value 70000 is out of range: expected -1 to 65535"
        );
        Ok(())
    });
}
