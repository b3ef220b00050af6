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
