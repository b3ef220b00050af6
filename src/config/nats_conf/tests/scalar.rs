//! Scalars: strings, block strings, booleans, numbers, size suffixes and
//! datetimes.

use super::*;

#[test]
fn strings() {
    let map = ok(concat!(
        "dq: \"a \\\"b\\\" \\\\ \\t\\n\\r \\x41\\x7c # not a comment\"\n",
        "sq: 'raw \\n \"x\"'\n",
        "url: nats://host:4222\n",
        "ip: 127.0.0.1:4233\n",
        "path: /data/stan\n",
        "name: alice\n",
        "dur: 10s\n",
        "q: bar'\n",
        "empty: \"\"\n",
        "multi: \"one\ntwo\"\n",
        "utf: \"h\\xc3\\xa9 é\"\n",
        "esc: a\\tb\n",
    ));
    assert_eq!(kind(&map, "dq"), &s("a \"b\" \\ \t\n\r A| # not a comment"));
    assert_eq!(kind(&map, "sq"), &s("raw \\n \"x\""));
    assert_eq!(kind(&map, "url"), &s("nats://host:4222"));
    assert_eq!(kind(&map, "ip"), &s("127.0.0.1:4233"));
    assert_eq!(kind(&map, "path"), &s("/data/stan"));
    assert_eq!(kind(&map, "name"), &s("alice"));
    assert_eq!(kind(&map, "dur"), &s("10s"));
    assert_eq!(kind(&map, "q"), &s("bar"));
    assert_eq!(kind(&map, "empty"), &s(""));
    assert_eq!(kind(&map, "multi"), &s("one\ntwo"));
    assert_eq!(kind(&map, "utf"), &s("hé é"));
    assert_eq!(kind(&map, "esc"), &s("a\tb"));
    assert_eq!(map.get("multi").map(|v| v.line), Some(10));
    assert_eq!(map.entry("utf").map(|e| e.line), Some(12));
}

#[test]
fn block_strings() {
    let map = ok("numbers (\n  12(34)56\n  (\n    7890\n  )\n)\nafter: 1\n");
    assert_eq!(
        kind(&map, "numbers"),
        &s("\n  12(34)56\n  (\n    7890\n  )\n")
    );
    assert_eq!(kind(&map, "after"), &Kind::Integer(1));
    assert_eq!(kind(&ok("b (\nx\n)"), "b"), &s("\nx\n"));
    assert!(err("b (\nx\n  )\n").contains("Unexpected EOF processing block."));
}

#[test]
fn booleans() {
    for (text, want) in [
        ("true", true),
        ("TRUE", true),
        ("yes", true),
        ("On", true),
        ("false", false),
        ("No", false),
        ("OFF", false),
    ] {
        assert_eq!(
            kind(&ok(&format!("a: {text}")), "a"),
            &Kind::Bool(want),
            "{text}"
        );
    }
    assert_eq!(kind(&ok("a: \"true\""), "a"), &s("true"));
    assert_eq!(kind(&ok("a: truely"), "a"), &s("truely"));
}

#[test]
fn numbers() {
    let map = ok("a: 123\nb: -45\nc: 2.5\nd: -0.5\ne: 007\nf: 9223372036854775807\n");
    assert_eq!(kind(&map, "a"), &Kind::Integer(123));
    assert_eq!(kind(&map, "b"), &Kind::Integer(-45));
    assert_eq!(kind(&map, "c"), &Kind::Float(2.5));
    assert_eq!(kind(&map, "d"), &Kind::Float(-0.5));
    assert_eq!(kind(&map, "e"), &Kind::Integer(7));
    assert_eq!(kind(&map, "f"), &Kind::Integer(i64::MAX));
    assert!(err("a: 9223372036854775808").contains("out of the range"));
    // A value may be a secret: errors never quote it.
    for (text, value) in [
        ("token: 99999999999999999999", "99999999999999999999"),
        ("token: -99999999999999999999", "99999999999999999999"),
        ("token: 99999999999999EB", "99999999999999"),
        ("token: 2016-13-04T18:53:41Z", "2016"),
    ] {
        let e = err(text);
        assert!(!e.contains(value), "{e}");
        assert!(e.starts_with("test.conf:1: "), "{e}");
    }
    assert!(err("a: .5").contains("Floats must start with a digit"));
    assert!(err("a: 1.").contains("Floats must have a digit after the '.'"));
    assert!(err("a: 1.5h").contains("but got 'h' instead"));
    assert!(err("a: -x").contains("Expected a digit but got 'x'."));
    assert!(err("a: 12-3").contains("All ISO8601 dates must be in full Zulu form."));
}

#[test]
fn size_suffixes() {
    const K: i64 = 1000;
    const KI: i64 = 1024;
    for (text, want) in [
        ("1k", K),
        ("1K", K),
        ("1kb", KI),
        ("1KB", KI),
        ("1Ki", KI),
        ("1kib", KI),
        ("10m", 10 * K * K),
        ("10MB", 10 * KI * KI),
        ("10mib", 10 * KI * KI),
        ("2g", 2 * K * K * K),
        ("2GB", 2 * KI * KI * KI),
        ("2Gb", 2 * KI * KI * KI),
        ("3t", 3 * K.pow(4)),
        ("3tb", 3 * KI.pow(4)),
        ("1p", K.pow(5)),
        ("1pb", KI.pow(5)),
        ("1e", K.pow(6)),
        ("1EB", KI.pow(6)),
        ("-1GB", -KI.pow(3)),
        ("-2k", -2 * K),
    ] {
        assert_eq!(
            kind(&ok(&format!("a: {text}")), "a"),
            &Kind::Integer(want),
            "{text}"
        );
    }
    // The reference drops the key silently on these; we say why.
    assert!(err("a: 1kbi").contains("Unknown size suffix 'kbi'"));
    assert!(err("a: 9EB").contains("out of the range"));
    // A quoted size is a string; `10s` is not a size.
    assert_eq!(kind(&ok("a: \"10MB\""), "a"), &s("10MB"));
    // A suffix with more after it is text, as in current nats-server.
    assert_eq!(kind(&ok("a: 10ms"), "a"), &s("10ms"));
    assert_eq!(kind(&ok("a: 3Gyz"), "a"), &s("3Gyz"));
    assert_eq!(kind(&ok("a: -1kx"), "a"), &s("-1kx"));
    assert!(err("a: 1k5").contains("but got '5' instead"));
}

#[test]
fn datetimes() {
    let map = ok("a: 2016-05-04T18:53:41Z\n");
    assert_eq!(
        kind(&map, "a"),
        &Kind::Datetime("2016-05-04T18:53:41Z".into())
    );
    assert_eq!(kind(&map, "a").type_name(), "struct");
    assert!(err("a: 2016-05-04").contains("Expected 'T' in ISO8601 datetime"));
    assert!(err("a: 2016-13-04T18:53:41Z").contains("expected Zulu formatted DateTime"));
    assert!(err("a: 2015-02-29T00:00:00Z").contains("expected Zulu formatted DateTime"));
    assert!(ok("a: 2016-02-29T23:59:59Z").get("a").is_some());
}
