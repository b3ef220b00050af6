//! Values NSS rejects: wrong types, bad durations, negative limits, bad
//! channel patterns, and syntax errors passed through.

use super::*;
use crate::config::nss_file::checks::is_channel_pattern;

#[test]
fn wrong_types_name_file_line_and_key() {
    let e = err("streaming {\n  store_limits {\n    max_msgs: \"many\"\n  }\n}\n");
    assert_eq!(
        e,
        "stan.conf:3: parameter \"max_msgs\" value is expected to be int64, got string"
    );
    assert_eq!(
        err("\n\nsd: 1"),
        "stan.conf:3: parameter \"sd\" value is expected to be bool, got int64"
    );
    assert_eq!(
        err("id: [a]"),
        "stan.conf:1: parameter \"id\" value is expected to be string, got slice"
    );
    assert_eq!(
        err("ns: [\"a\",\n 2]"),
        "stan.conf:2: parameter \"ns\" value is expected to be string, got int64"
    );
    assert_eq!(
        err("tls: yes"),
        "stan.conf:1: expected TLS to be a map/struct, got true"
    );
    assert_eq!(
        err("hbf: 1.5"),
        "stan.conf:1: parameter \"hbf\" value is expected to be int64, got float64"
    );
    assert!(err("file { compact_frag: x }")
        .contains("parameter \"compact_frag\" value is expected to be int64"));
    assert!(err("cluster { peers: \"a\" }").contains("expected to be slice, got string"));
    assert!(err("sql { no_caching: 1 }").contains("expected to be bool, got int64"));
    assert!(err("partitioning: \"yes\"").contains("expected to be bool, got string"));
}

#[test]
fn durations_and_limits_are_checked() {
    assert_eq!(
        err("hb_interval: \"10x\""),
        "stan.conf:1: parameter \"hb_interval\": time: unknown unit \"x\" in duration \"10x\""
    );
    assert!(err("hb_timeout: 10").contains("expected to be string, got int64"));
    assert!(err("store_limits { max_age: \"1d\" }")
        .starts_with("stan.conf:1: parameter \"max_age\": time: unknown unit"));
    assert_eq!(
        err("store_limits {\n mc: -1 }"),
        "stan.conf:2: max channels limit cannot be negative (-1)"
    );
    assert!(err("limits { max_msgs: -5 }").contains("max messages limit cannot be negative (-5)"));
    assert!(err("limits { max_age: \"-1h\" }").contains("negative duration"));
    // Per channel, negatives are NSS's "unlimited" and stay as written.
    let file = ok("limits { channels { a: { max_msgs: -1, max_age: \"-1s\" } } }");
    let a = dict(&dict(get(&file, "channels"), "channels")["a"], "a").clone();
    assert_eq!(a["max_msgs"].to_i128(), Some(-1));
    assert_eq!(a["max_age"].as_str(), Some("-1s"));
    // The reference's ignored durations may be negative.
    assert!(ok("file { auto_sync: \"-1s\" }").values.is_empty());
    assert!(err("file { auto_sync: \"soon\" }").contains("parameter \"auto_sync\""));
}

#[test]
fn channel_patterns() {
    for good in ["foo", "foo.bar", "foo.*", "*.bar", "foo.>", ">", "a.*.c"] {
        assert!(is_channel_pattern(good), "{good}");
    }
    for bad in [
        "",
        ".foo",
        "foo.",
        "foo..bar",
        "foo.>.bar",
        "fo*",
        "a/b",
        "f>",
    ] {
        assert!(!is_channel_pattern(bad), "{bad}");
    }
    assert_eq!(
        err("limits {\n channels {\n  \"foo..bar\": { max_msgs: 1 }\n }\n}"),
        "stan.conf:3: invalid channel name \"foo..bar\""
    );
    assert!(err("limits { channels { foo: 1 } }")
        .contains("expected channel limits to be a map/struct, got 1"));
    assert!(
        err("limits { channels: [] }").contains("expected per channel limits to be a map/struct")
    );
    // Two aliases of `channels` add up.
    let file = ok("limits { channels { a: {mm: 1} }, per_channel { b: {mm: 2} } }");
    assert_eq!(dict(get(&file, "channels"), "channels").len(), 2);
}

#[test]
fn syntax_errors_pass_through_with_file_and_line() {
    assert_eq!(
        err("a: 1\nb: [1,,2]\n"),
        "stan.conf:2: Unexpected array value terminator ','."
    );
}

#[test]
fn stanchion_checks_name_file_line_and_key() {
    assert_eq!(
        err("streaming {\n  store: \"bogus\"\n}"),
        "stan.conf:2: parameter \"store\": unknown store type \"bogus\": \
         expected sled, file (an alias of sled) or memory"
    );
    assert_eq!(
        err("\nlog_format: xml"),
        "stan.conf:2: parameter \"log_format\": unknown log format \"xml\": expected text or json"
    );
    assert!(err("st: 1").contains("parameter \"st\" value is expected to be string"));
    let u32_max = u32::MAX;
    for (text, key, value, range) in [
        ("hbf: -1", "hbf", "-1", format!("0 to {u32_max}")),
        (
            "hb_fail_count: 4294967296",
            "hb_fail_count",
            "4294967296",
            format!("0 to {u32_max}"),
        ),
        (
            "store_limits { mc: 4294967296 }",
            "mc",
            "4294967296",
            format!("0 to {u32_max}"),
        ),
        (
            "limits { max_subs: 4294967296 }",
            "max_subs",
            "4294967296",
            format!("0 to {u32_max}"),
        ),
        (
            "http_port: 999999",
            "http_port",
            "999999",
            "-1 to 65535".into(),
        ),
        (
            "monitor_port: -2",
            "monitor_port",
            "-2",
            "-1 to 65535".into(),
        ),
        ("http: 70000", "http", "70000", "-1 to 65535".into()),
        ("http: \"h:70000\"", "http", "70000", "-1 to 65535".into()),
    ] {
        assert_eq!(
            err(&format!("\n{text}")),
            format!(
                "stan.conf:2: parameter \"{key}\" value {value} is out of range: expected {range}"
            ),
        );
    }
    // The edges are accepted, and NSS's own texts stay first.
    let file = ok("hbf: 4294967295\nhttp_port: -1\nlimits { mc: 4294967295, msu: 0 }");
    assert_eq!(num(&file, "hb_fail_count"), i64::from(u32::MAX));
    assert_eq!(num(&file, "http_port"), -1);
    assert_eq!(num(&ok("http: 65535"), "http_port"), 65535);
    assert!(err("limits { mc: -1 }").contains("max channels limit cannot be negative (-1)"));
    assert!(err("limits { msu: -1 }").contains("max subscriptions limit cannot be negative"));
    // Per channel, limits are as written (and not used yet).
    ok("limits { channels { a: { max_subs: 4294967296 } } }");
}
