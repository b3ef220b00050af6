//! The command line as NSS users type it.

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let argv = std::iter::once("stanchion")
        .chain(args.iter().copied())
        .map(OsString::from);
    let normalized = super::super::flags::normalize(argv)?;
    Cli::try_parse_from_normalized(normalized.args).map_err(|e| match e {
        ConfigError::Args(e) => e,
        other => panic!("{other}"),
    })
}

#[test]
fn clap_definition_is_consistent() {
    command().debug_assert();
    for spec in super::super::flags::FLAGS {
        assert!(
            Cli::command()
                .get_arguments()
                .any(|a| a.get_long() == Some(spec.long)),
            "{}",
            spec.long
        );
    }
}

#[test]
fn go_style_flags_parse() {
    for args in [
        &["-cid", "a"][..],
        &["--cid", "a"],
        &["-cid=a"],
        &["--cid=a"],
        &["-cluster_id", "a"],
        &["--cluster_id=a"],
        &["-cid", "b", "-cid", "a"],
    ] {
        assert_eq!(
            parse(args).unwrap().cluster_id.as_deref(),
            Some("a"),
            "{args:?}"
        );
    }
    let cli = parse(&["-SD", "-SV=false", "-file_sync=f", "-replace_durable=1"]).unwrap();
    assert_eq!(cli.stan_debug, Some(true));
    assert_eq!(cli.stan_trace, Some(false));
    assert_eq!(cli.file_sync, Some(false));
    assert_eq!(cli.replace_durable, Some(true));
    let cli = parse(&["-st", "MEMORY", "-mb", "1GB", "-hbi", "1m30s"]).unwrap();
    assert_eq!(cli.store, Some(StoreKind::Memory));
    assert_eq!(cli.max_bytes, Some(1 << 30));
    assert_eq!(cli.hb_interval, Some(Duration::from_secs(90)));
    assert_eq!(parse(&[]).unwrap().cluster_id, None);
}

#[test]
fn sdv_sets_both_and_wins_over_explicit_flags_as_in_nss() {
    let layer = |args: &[&str]| {
        let dict = parse(args).unwrap().layer().0;
        (
            dict.get("stan_debug").cloned(),
            dict.get("stan_trace").cloned(),
        )
    };
    assert_eq!(layer(&["-SDV"]), (Some(true.into()), Some(true.into())));
    assert_eq!(
        layer(&["-SDV=false"]),
        (Some(false.into()), Some(false.into()))
    );
    // NSS's fs.Visit applies -SDV last: trace stays on.
    assert_eq!(
        layer(&["-SDV", "-SV=false"]),
        (Some(true.into()), Some(true.into()))
    );
    assert_eq!(
        layer(&["-SD=false", "-SDV"]),
        (Some(true.into()), Some(true.into()))
    );
    assert_eq!(
        layer(&["-SDV=false", "-SD"]),
        (Some(false.into()), Some(false.into()))
    );
    assert_eq!(layer(&["-SV"]), (None, Some(true.into())));
    assert_eq!(layer(&[]), (None, None));
}

#[test]
fn debug_hides_credentials() {
    let cli = parse(&[
        "-ns",
        "nats://u:hunter2@h:4222",
        "--pass",
        "hunter3",
        "-auth=hunter4",
        "--user",
        "alice",
    ])
    .unwrap();
    assert_eq!(cli.pass.as_ref().map(Secret::expose), Some("hunter3"));
    assert_eq!(cli.auth.as_ref().map(Secret::expose), Some("hunter4"));
    let shown = format!("{cli:?}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("nats://***@h:4222") && shown.contains("alice"),
        "{shown}"
    );
    let layer = cli.layer().0;
    assert_eq!(
        layer["pass"].as_str(),
        Some("hunter3"),
        "the layer has the text"
    );
}

#[test]
fn bad_flags_are_rejected_naming_the_flag() {
    for (args, needle) in [
        (&["-hbi", "5x"][..], "--hb_interval"),
        (&["-mb", "5xb"], "--max_bytes"),
        (&["-st", "sql"], "--store"),
        (&["-SD=maybe"], "--stan_debug"),
        (&["-mc", "-1"], "--max_channels"),
        (&["-hbf", "many"], "--hb_fail_count"),
        (&["-zz", "1h"], "flag provided but not defined: -zz"),
        (&["-SD", "false"], "false"),
        (&["-cid"], "--cluster_id"),
    ] {
        let err = parse(args).unwrap_err().to_string();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn help_and_version_list_nss_spellings() {
    let err = parse(&["-help"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    let help = err.to_string();
    for spelling in [
        "--cid",
        "--ns",
        "--st",
        "--hbi",
        "--hbt",
        "--hbf",
        "--mc",
        "--msu",
        "--mm",
        "--mb",
        "--SD",
        "--SV",
        "--SDV",
        "--sc",
        "--stan_config",
        "--config",
        "--http_port",
        "-m",
        "--user",
        "--tls_client_cert",
        "STANCHION_HTTP_PORT",
        "STANCHION_TLS_CLIENT_CACERT",
        "STANCHION_LOG_FORMAT",
        "-file_compact_enabled",
        "-routes",
        "--file_sync",
        "--replace_durable",
        "--io_batch_size",
        "--cache_capacity",
        "--discover_prefix",
        "-cid mycluster",
        "STANCHION_CLUSTER_ID",
    ] {
        assert!(help.contains(spelling), "{spelling} missing from:\n{help}");
    }
    let err = parse(&["-version"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
    assert!(err.to_string().contains(env!("CARGO_PKG_VERSION")));
}
