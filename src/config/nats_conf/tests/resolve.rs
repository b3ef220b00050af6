//! Resolution: `$VAR`s from earlier keys and the environment, and
//! `include`s.

use super::*;

#[test]
fn variables() {
    let map = ok("port: 4222\nname = \"n\"\nm {\n  inner: $name\n  port: 1\n  p: $port\n  deep { q: $port }\n}\nuse: $port\nhash: $2a$11$abc\n");
    let m = sub(&map, "m");
    assert_eq!(kind(m, "inner"), &s("n"));
    assert_eq!(kind(m, "p"), &Kind::Integer(1), "nearest scope first");
    assert_eq!(kind(sub(m, "deep"), "q"), &Kind::Integer(1));
    assert_eq!(kind(&map, "use"), &Kind::Integer(4222));
    assert_eq!(kind(&map, "hash"), &s("$2a$11$abc"));
    assert_eq!(map.get("use").map(|v| v.line), Some(9));
    // The reference keeps variables' keys; we mark them.
    assert!(map.entry("port").is_some_and(|e| e.used_as_variable));
    assert!(!map.entry("use").is_some_and(|e| e.used_as_variable));
    let e = err("a: 1\nb: $nope_stanchion_undefined\n");
    assert_eq!(
        e,
        "test.conf:2: variable reference for 'nope_stanchion_undefined' can not be found"
    );
    // Only keys set before the reference count.
    assert!(err("a: $b\nb: 1\n").contains("'b' can not be found"));
}

#[test]
#[allow(clippy::result_large_err)] // `Jail`'s closure returns figment's error
fn variables_from_the_environment() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("STANCHION_NATS_CONF_TEST_PORT", "4333");
        jail.set_env("STANCHION_NATS_CONF_TEST_SIZE", "2kb");
        jail.set_env("STANCHION_NATS_CONF_TEST_TEXT", "hello");
        jail.set_env("STANCHION_NATS_CONF_TEST_BAD", "a b");
        let map = ok(
            "port: $STANCHION_NATS_CONF_TEST_PORT\nsize: $STANCHION_NATS_CONF_TEST_SIZE\n\
                      m { t: $STANCHION_NATS_CONF_TEST_TEXT }\n",
        );
        assert_eq!(kind(&map, "port"), &Kind::Integer(4333));
        assert_eq!(kind(&map, "size"), &Kind::Integer(2048));
        assert_eq!(kind(sub(&map, "m"), "t"), &s("hello"));
        assert_eq!(sub(&map, "m").get("t").map(|v| v.line), Some(3));
        jail.set_env(
            "STANCHION_NATS_CONF_TEST_LOOP",
            "$STANCHION_NATS_CONF_TEST_LOOP",
        );
        let e = err("x: $STANCHION_NATS_CONF_TEST_LOOP");
        assert!(
            e.contains("variable reference cycle for 'STANCHION_NATS_CONF_TEST_LOOP'"),
            "{e}"
        );
        let e = err("\nx: $STANCHION_NATS_CONF_TEST_BAD");
        assert!(e.starts_with("test.conf:2: variable reference for 'STANCHION_NATS_CONF_TEST_BAD' could not be parsed"), "{e}");
        assert!(!e.contains("'b'"), "no part of the value: {e}");
        Ok(())
    });
}

#[test]
fn includes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    std::fs::create_dir(dir.path().join("sub")).unwrap_or_else(|e| panic!("{e}"));
    write(
        "main.conf",
        "a: 1\ninclude sub/limits.conf\nm { include 'sub/inner.conf' }\nb: 2\n",
    );
    write(
        "sub/limits.conf",
        "# included\nmax_msgs: 10\nb: 99\ninclude \"more.conf\"\n",
    );
    write("sub/more.conf", "deeper: yes\n");
    write("sub/inner.conf", "x: 5\n");
    let main = dir.path().join("main.conf");
    let map = parse_file(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kind(&map, "max_msgs"), &Kind::Integer(10));
    assert_eq!(kind(&map, "deeper"), &Kind::Bool(true));
    assert_eq!(
        kind(&map, "b"),
        &Kind::Integer(2),
        "later keys override included ones"
    );
    assert_eq!(kind(sub(&map, "m"), "x"), &Kind::Integer(5));
    let from = map.get("max_msgs").map(|v| (v.file.to_path_buf(), v.line));
    assert_eq!(from, Some((dir.path().join("sub/limits.conf"), 2)));

    write("broken.conf", "include missing.conf\n");
    let e = parse_file(&dir.path().join("broken.conf"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("broken.conf:1: error parsing include file 'missing.conf'"),
        "{e}"
    );
    assert!(e.contains("missing.conf: error opening config file"), "{e}");

    write("bad_inner.conf", "x: 1\n\ninclude bad.conf\n");
    write("bad.conf", "ok: 1\narr: [\n");
    let e = parse_file(&dir.path().join("bad_inner.conf"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad_inner.conf:3: error parsing include file 'bad.conf'"),
        "{e}"
    );
    assert!(
        e.contains("bad.conf:2: Unexpected EOF processing array."),
        "{e}"
    );

    write("cycle.conf", "include cycle.conf\n");
    let e = parse_file(&dir.path().join("cycle.conf"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("an include cycle?"), "{e}");

    assert!(err("include\n").contains("Expected include value but found new line"));
    assert!(err("include [x]").contains("found start of an array"));
    assert!(err("include ;").contains("Expected include value but found none"));
    // `include:` is an ordinary key.
    assert_eq!(kind(&ok("include: x"), "include"), &s("x"));
}

#[test]
#[allow(clippy::result_large_err)] // `Jail`'s closure returns figment's error
fn environment_values_never_appear_in_errors() {
    figment::Jail::expect_with(|jail| {
        for (value, secret) in [
            ("12345678901234567890", "12345678901234567890"),
            ("\"s3cr3t-unterminated", "s3cr3t"),
            ("[s3cr3t,,]", "s3cr3t"),
            ("s3cr3t zz", "zz"),
            ("1.5s3cr3t", "s3cr3t"),
            ("2016-13-04T18:53:41Z", "2016"),
            ("\"\\q\"", "'q'"),
        ] {
            jail.set_env("STANCHION_NATS_CONF_TEST_TOKEN", value);
            let e = err("token: $STANCHION_NATS_CONF_TEST_TOKEN");
            assert!(
                e.starts_with("test.conf:1: variable reference for 'STANCHION_NATS_CONF_TEST_TOKEN' could not be parsed: its value is not valid config text"),
                "{value}: {e}"
            );
            assert!(!e.contains(secret), "{value}: {e}");
        }
        Ok(())
    });
}
