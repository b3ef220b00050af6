//! Unit tests of [`super`]: inheritance, lookups, validation, the startup
//! table and storez JSON, against NSS v0.23.2's output for the same limits.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn build(
    global: Limit,
    max_channels: u32,
    entries: &[(&str, ChannelOverrides)],
) -> Result<StoreLimits, LimitsError> {
    let map = entries.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    StoreLimits::build(global, max_channels, map)
}

fn msgs(n: u64) -> ChannelOverrides {
    ChannelOverrides {
        max_msgs: Some(n),
        ..Default::default()
    }
}

/// PROTOCOL.md 3.2's example (`max_bytes: 10MB` is 10 MiB).
fn example() -> StoreLimits {
    let global = Limit {
        max_msgs: 10_000,
        max_bytes: 10 * 1024 * 1024,
        max_age: HOUR,
        ..Limit::DEFAULT
    };
    let foo = ChannelOverrides {
        max_subs: Some(50),
        ..msgs(300)
    };
    let foo_bar = ChannelOverrides {
        max_age: Some(2 * HOUR),
        ..Default::default()
    };
    let temp = ChannelOverrides {
        max_inactivity: Some(HOUR),
        ..Default::default()
    };
    let entries = [
        ("foo", foo),
        ("baz", msgs(0)),
        ("foo.>", msgs(400)),
        ("foo.bar.>", foo_bar),
        ("temp.>", temp),
    ];
    build(global, 10, &entries).unwrap()
}

fn limit(max_msgs: u64, max_age: Duration, max_subs: u32, max_inactivity: Duration) -> Limit {
    Limit {
        max_msgs,
        max_bytes: 10 * 1024 * 1024,
        max_age,
        max_subs,
        max_inactivity,
    }
}

#[test]
fn example_inheritance() {
    let l = example();
    let got: BTreeMap<&str, Limit> = l.channels().map(|(k, v)| (k, *v)).collect();
    let zero = Duration::ZERO;
    let want = BTreeMap::from([
        ("baz", limit(0, HOUR, 1000, zero)),
        ("foo", limit(300, HOUR, 50, zero)),
        ("foo.>", limit(400, HOUR, 1000, zero)),
        ("foo.bar.>", limit(400, 2 * HOUR, 1000, zero)),
        ("temp.>", limit(10_000, HOUR, 1000, HOUR)),
    ]);
    assert_eq!(got, want);
}

#[test]
fn lookups() {
    let l = example();
    let pattern = |name: &str| l.matching_pattern(name);
    assert_eq!(pattern("foo"), Some("foo"));
    assert_eq!(pattern("foo.x"), Some("foo.>"));
    assert_eq!(pattern("foo.bar"), Some("foo.>"));
    assert_eq!(pattern("foo.bar.baz"), Some("foo.bar.>"));
    assert_eq!(pattern("foo.bar.baz.q"), Some("foo.bar.>"));
    assert_eq!(pattern("temp.a.b"), Some("temp.>"));
    for global in ["temp", "other", "baz.x", "fo"] {
        assert_eq!(pattern(global), None, "{global}");
        assert_eq!(l.for_channel(global), *l.global());
    }
    let foo_bar = l.for_channel("foo.bar.x");
    assert_eq!((foo_bar.max_msgs, foo_bar.max_age), (400, 2 * HOUR));
    assert_eq!(l.for_channel("foo").max_subs, 50);
}

#[test]
fn unlimited_is_per_limit() {
    let l = example();
    let baz = l.for_channel("baz");
    assert_eq!(baz.max_msgs, 0);
    assert_eq!(baz.max_bytes, 10 * 1024 * 1024);
    assert_eq!(baz.max_age, HOUR);
    assert_eq!(baz.max_subs, 1000);
}

#[test]
fn too_many_literals() {
    let none = ChannelOverrides::default();
    // Wildcard patterns do not count.
    let ok = [("a", none), ("b", none), (">", none), ("a.*", none)];
    assert!(build(Limit::DEFAULT, 2, &ok).is_ok());
    let over = [("a", none), ("b", none), ("c", none)];
    let err = build(Limit::DEFAULT, 2, &over).unwrap_err();
    assert_eq!(
        err.to_string(),
        "too many channels defined (3). The max channels limit is set to 2"
    );
    assert!(matches!(err, LimitsError::TooManyChannels { pattern, .. } if pattern == "c"));
    // max_channels 0 is unlimited.
    assert!(build(Limit::DEFAULT, 0, &over).is_ok());
}

#[test]
fn invalid_patterns() {
    for bad in [
        "foo..bar",
        "foo.>.bar",
        "fo*",
        "",
        ".a",
        "a.",
        "a/b",
        "*a",
        "a.>b",
        "a.b>",
    ] {
        let err = build(Limit::DEFAULT, 0, &[(bad, msgs(1))]).unwrap_err();
        assert_eq!(err, LimitsError::InvalidPattern(bad.to_owned()));
        assert_eq!(err.to_string(), format!("invalid channel name \"{bad}\""));
    }
    for good in [
        "foo",
        ">",
        "*",
        "*.*",
        "foo.*.bar",
        "foo.>",
        "*.>",
        "a b",
        "a-b_c",
    ] {
        assert!(is_valid_pattern(good), "{good}");
    }
}

#[test]
fn example_table() {
    // NSS v0.23.2 `Print()` for the same limits (`baz` placed first).
    let want = [
        "---------- Store Limits ----------",
        "Channels:                   10",
        "--------- Channels Limits --------",
        "  Subscriptions:          1000 *",
        "  Messages     :         10000",
        "  Bytes        :      10.00 MB",
        "  Age          :        1h0m0s",
        "  Inactivity   :     unlimited *",
        "-------- List of Channels ---------",
        "baz",
        " |-> Messages             unlimited",
        "foo",
        " |-> Subscriptions               50",
        " |-> Messages                   300",
        "foo.>",
        " |-> Messages                   400",
        " foo.bar.>",
        "  |-> Age                    2h0m0s",
        "temp.>",
        " |-> Inactivity              1h0m0s",
        "-----------------------------------",
    ];
    assert_eq!(example().table(), want);
}

#[test]
fn default_table() {
    let l = build(Limit::DEFAULT, DEFAULT_MAX_CHANNELS, &[]).unwrap();
    let want = [
        "---------- Store Limits ----------",
        "Channels:                  100 *",
        "--------- Channels Limits --------",
        "  Subscriptions:          1000 *",
        "  Messages     :       1000000 *",
        "  Bytes        :     976.56 MB *",
        "  Age          :     unlimited *",
        "  Inactivity   :     unlimited *",
        "----------------------------------",
    ];
    assert_eq!(l.table(), want);
}

/// Wildcards everywhere, checked against NSS v0.23.2: `foo.*` inherits
/// from `foo.>`, `foo.bar` from `foo.*`, `foo.bar.>` skips `foo.*`.
fn wildcards() -> StoreLimits {
    let o = ChannelOverrides::default;
    let entries = [
        (
            ">",
            ChannelOverrides {
                max_subs: Some(10),
                ..o()
            },
        ),
        ("*.>", msgs(5)),
        (
            "*.*",
            ChannelOverrides {
                max_bytes: Some(2048),
                ..o()
            },
        ),
        (
            "foo.*",
            ChannelOverrides {
                max_age: Some(Duration::from_millis(1500)),
                ..o()
            },
        ),
        (
            "foo.>",
            ChannelOverrides {
                max_inactivity: Some(Duration::from_millis(500)),
                ..o()
            },
        ),
        ("foo.bar.>", msgs(0)),
        (
            "foo.*.baz",
            ChannelOverrides {
                max_subs: Some(3),
                ..o()
            },
        ),
        (
            "foo.bar",
            ChannelOverrides {
                max_bytes: Some(1152),
                ..o()
            },
        ),
        ("*.bar", msgs(7)),
    ];
    build(Limit::DEFAULT, 0, &entries).unwrap()
}

#[test]
fn wildcard_chains() {
    let l = wildcards();
    let json = serde_json::to_string(&l).unwrap();
    // NSS's output, with Go's `\u003e` written as `>`.
    let want = concat!(
        r#"{"max_channels":0,"max_msgs":1000000,"max_bytes":1024000000,"max_age":0,"#,
        r#""max_subscriptions":1000,"max_inactivity":0,"channels":{"#,
        r#""*.*":{"max_msgs":5,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
        r#""*.>":{"max_msgs":5,"max_bytes":1024000000,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
        r#""*.bar":{"max_msgs":7,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
        r#"">":{"max_msgs":1000000,"max_bytes":1024000000,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
        r#""foo.*":{"max_msgs":5,"max_bytes":2048,"max_age":1500000000,"max_subscriptions":10,"max_inactivity":500000000},"#,
        r#""foo.*.baz":{"max_msgs":5,"max_bytes":2048,"max_age":0,"max_subscriptions":3,"max_inactivity":500000000},"#,
        r#""foo.>":{"max_msgs":5,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":500000000},"#,
        r#""foo.bar":{"max_msgs":5,"max_bytes":1152,"max_age":1500000000,"max_subscriptions":10,"max_inactivity":500000000},"#,
        r#""foo.bar.>":{"max_msgs":0,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":500000000}}}"#,
    );
    assert_eq!(json, want);
    let got = |name: &str| l.matching_pattern(name);
    assert_eq!(got("foo.bar"), Some("foo.bar"));
    assert_eq!(got("foo.x"), Some("foo.*"));
    assert_eq!(got("foo.bar.baz"), Some("foo.bar.>"));
    assert_eq!(got("foo.q.baz"), Some("foo.*.baz"));
    assert_eq!(got("a"), Some(">"));
    assert_eq!(got("a.b"), Some("*.*"));
    assert_eq!(got("a.bar"), Some("*.bar"));
    assert_eq!(got("foo"), Some(">"));
    let bar = l.for_channel("foo.bar");
    assert_eq!((bar.max_msgs, bar.max_bytes, bar.max_subs), (5, 1152, 10));
}

#[test]
fn wildcard_table() {
    let want = [
        "---------- Store Limits ----------",
        "Channels:            unlimited",
        "--------- Channels Limits --------",
        "  Subscriptions:          1000 *",
        "  Messages     :       1000000 *",
        "  Bytes        :     976.56 MB *",
        "  Age          :     unlimited *",
        "  Inactivity   :     unlimited *",
        "---------- List of Channels ----------",
        ">",
        " |-> Subscriptions               10",
        " *.>",
        "  |-> Messages                    5",
        "  *.*",
        "   |-> Bytes                2.00 KB",
        "   *.bar",
        "    |-> Messages                  7",
        "   foo.>",
        "    |-> Inactivity            500ms",
        "    foo.*",
        "     |-> Age                    1.5s",
        "   foo.*.baz",
        "    |-> Subscriptions             3",
        "      foo.bar",
        "       |-> Bytes               1.12 KB",
        "   foo.bar.>",
        "    |-> Messages          unlimited",
        "--------------------------------------",
    ];
    assert_eq!(wildcards().table(), want);
}

#[test]
fn storez_json() {
    let v = serde_json::to_value(example()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = [
        "channels",
        "max_age",
        "max_bytes",
        "max_channels",
        "max_inactivity",
        "max_msgs",
        "max_subscriptions",
    ];
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(v["max_age"], 3_600_000_000_000u64);
    assert_eq!(v["max_channels"], 10);
    // After inheritance, unlimited is 0 (NSS never reports its -1).
    assert_eq!(
        v["channels"]["baz"],
        serde_json::json!({
            "max_msgs": 0, "max_bytes": 10_485_760, "max_age": 3_600_000_000_000u64,
            "max_subscriptions": 1000, "max_inactivity": 0
        })
    );
    assert_eq!(v["channels"]["foo.bar.>"]["max_msgs"], 400);
    assert_eq!(v["channels"]["foo.bar.>"]["max_age"], 7_200_000_000_000u64);
    // Field order is Go's, `channels` omitted when empty.
    let empty = build(Limit::DEFAULT, 100, &[]).unwrap();
    assert_eq!(
        serde_json::to_string(&empty).unwrap(),
        r#"{"max_channels":100,"max_msgs":1000000,"max_bytes":1024000000,"max_age":0,"max_subscriptions":1000,"max_inactivity":0}"#
    );
}
