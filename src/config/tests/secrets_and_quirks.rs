//! Credentials never reach `Debug` output, and the NSS quirks of the
//! command line and the environment: `-SDV` wins, Go's bool spellings in
//! env.

use super::*;

#[test]
fn debug_of_config_loaded_and_nss_file_hides_every_credential() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "stan.conf",
            "streaming {\n  ns: \"nats://u:hunter2@h:4222\"\n  token: hunter3\n  user: alice\n}\n",
        )?;
        let args = ["stanchion", "-sc", "stan.conf", "--pass", "hunter2"].map(OsString::from);
        let loaded =
            Config::load_reporting(args).map_err(|e| figment::Error::from(e.to_string()))?;
        assert_eq!(loaded.config.nats_server, "nats://u:hunter2@h:4222");
        assert_eq!(
            loaded.config.pass.as_ref().map(Secret::expose),
            Some("hunter2")
        );
        assert_eq!(
            loaded.config.auth.as_ref().map(Secret::expose),
            Some("hunter3")
        );
        let file = nss_file::read(std::path::Path::new("stan.conf"))
            .map_err(|e| figment::Error::from(e.to_string()))?;
        for shown in [
            format!("{:?}", loaded.config),
            format!("{:#?}", loaded.config),
            format!("{loaded:?}"),
            format!("{file:?}"),
        ] {
            for secret in ["hunter2", "hunter3"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("nats://***@h:4222"), "{shown}");
            assert!(shown.contains("alice"), "{shown}");
        }
        let config = format!("{:?}", loaded.config);
        assert!(config.contains("pass: Some(***)") && config.contains("auth: Some(***)"));
        Ok(())
    });
}

#[test]
fn sdv_wins_over_sd_and_sv_as_in_nss() {
    Jail::expect_with(|_| {
        let config = ok(&["-SDV", "-SV=false"])?;
        assert!(config.stan_debug && config.stan_trace);
        let config = ok(&["-SD", "-SDV=false"])?;
        assert!(!config.stan_debug && !config.stan_trace);
        Ok(())
    });
}

#[test]
fn env_bools_take_go_spellings() {
    Jail::expect_with(|jail| {
        let keys = [
            "FILE_SYNC",
            "REPLACE_DURABLE",
            "STAN_DEBUG",
            "STAN_TRACE",
            "SECURE",
            "TLS_INSECURE",
        ];
        let read = |config: &Config| {
            [
                config.file_sync,
                config.replace_durable,
                config.stan_debug,
                config.stan_trace,
                config.secure,
                config.tls_insecure,
            ]
        };
        for (text, want) in [
            ("1", true),
            ("t", true),
            ("T", true),
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("0", false),
            ("f", false),
            ("F", false),
            ("false", false),
            ("FALSE", false),
            ("False", false),
        ] {
            for key in keys {
                jail.set_env(format!("STANCHION_{key}"), text);
            }
            assert_eq!(read(&ok(&[])?), [want; 6], "{text}");
        }
        for key in keys {
            std::env::remove_var(format!("STANCHION_{key}"));
        }
        for bad in ["yes", "2", "", "tRUE"] {
            jail.set_env("STANCHION_FILE_SYNC", bad);
            let e = err(&[]);
            assert_eq!(
                e,
                format!(
                    "invalid type: found string {bad:?}, expected a boolean for key \
                     \"STANCHION_FILE_SYNC\" in environment variable(s)"
                ),
            );
            // Like any bad env value, it only matters if no flag wins.
            assert!(!ok(&["-file_sync=F"])?.file_sync);
        }
        Ok(())
    });
}
