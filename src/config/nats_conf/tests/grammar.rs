//! The structure: separators, comments, maps, arrays, keys, syntax errors,
//! and no panic on any input.

use super::*;

#[test]
fn separators_between_key_and_value() {
    for text in [
        "a: 1",
        "a = 1",
        "a 1",
        "a:1",
        "a=1",
        "a\t1",
        "a  :  1",
        "'a': 1",
        "\"a\" = 1",
    ] {
        assert_eq!(kind(&ok(text), "a"), &Kind::Integer(1), "{text}");
    }
    // Without a separator the value may even be on the next line.
    assert_eq!(kind(&ok("a\n  1"), "a"), &Kind::Integer(1));
}

#[test]
fn separators_between_statements() {
    for text in [
        "a: 1\nb: 2\n",
        "a: 1, b: 2",
        "a: 1; b: 2;",
        "a: 1\r\nb: 2\r\n",
        "{ \"a\": 1, \"b\": 2 }",
        "{\n  \"a\": 1,\n  \"b\": 2\n}\n",
    ] {
        let map = ok(text);
        assert_eq!(kind(&map, "a"), &Kind::Integer(1), "{text}");
        assert_eq!(kind(&map, "b"), &Kind::Integer(2), "{text}");
    }
    let map = ok("m { a: 1, b: 2; c: 3\n d: 4 }");
    assert_eq!(sub(&map, "m").len(), 4);
}

#[test]
fn comments() {
    let map = ok(
        "# top\n// also\na: 1 # after\nb: x // after\nm {\n # in map\n c: 2 // end\n}\n\
                  l: [\n 1, # one\n 2 // two\n # alone\n 3\n]\n# last",
    );
    assert_eq!(kind(&map, "a"), &Kind::Integer(1));
    assert_eq!(kind(&map, "b"), &s("x"));
    assert_eq!(kind(sub(&map, "m"), "c"), &Kind::Integer(2));
    assert_eq!(
        items(&map, "l"),
        [&Kind::Integer(1), &Kind::Integer(2), &Kind::Integer(3)]
    );
    assert_eq!(map.len(), 4);
    // `#` inside a word is text.
    assert_eq!(kind(&ok("a: b#c"), "a"), &s("b#c"));
}

#[test]
fn arrays() {
    let map = ok(
        "a: [1, 2, 3]\nb: [x,y]\nc: [\n  \"p\"\n  'q'\n]\nd: []\ne: [[1, [2]], {k: v}]\nf: [1,]\n",
    );
    assert_eq!(
        items(&map, "a"),
        [&Kind::Integer(1), &Kind::Integer(2), &Kind::Integer(3)]
    );
    assert_eq!(items(&map, "b"), [&s("x"), &s("y")]);
    assert_eq!(items(&map, "c"), [&s("p"), &s("q")]);
    assert!(items(&map, "d").is_empty());
    assert_eq!(items(&map, "f"), [&Kind::Integer(1)]);
    let e = items(&map, "e");
    assert!(matches!(e[0], Kind::Array(inner) if inner.len() == 2));
    assert!(matches!(e[1], Kind::Map(m) if m.get("k").map(|v| &v.kind) == Some(&s("v"))));
    assert!(err("a: [1,,2]").contains("Unexpected array value terminator ','."));
    assert!(err("a: [1 2]").contains("Expected an array value terminator"));
    assert!(err("a: [1, 2").contains("Unexpected EOF processing array."));
}

#[test]
fn arrays_of_maps() {
    let map = ok("authorization {\n  users = [\n    {user: alice, password: foo}\n    {user: bob,   password: bar}\n  ]\n  timeout: 0.5\n}\n");
    let auth = sub(&map, "authorization");
    let users = items(auth, "users");
    assert_eq!(users.len(), 2);
    let Kind::Map(bob) = users[1] else {
        panic!("{users:?}")
    };
    assert_eq!(kind(bob, "user"), &s("bob"));
    assert_eq!(bob.entry("password").map(|e| e.line), Some(4));
    assert_eq!(kind(auth, "timeout"), &Kind::Float(0.5));
}

#[test]
fn nested_maps() {
    for text in [
        "a { b { c { d: 1 } } }",
        "a: { b = { c { d 1 } } }",
        "a {\n  b:{\n    c {\n      d: 1\n    }\n  }\n}\n",
    ] {
        let map = ok(text);
        let d = kind(sub(sub(sub(&map, "a"), "b"), "c"), "d");
        assert_eq!(d, &Kind::Integer(1), "{text}");
    }
    let map = ok("a {\n\n  b {\n    c: 1\n  }\n}");
    assert_eq!(map.entry("a").map(|e| e.line), Some(1));
    assert_eq!(sub(&map, "a").entry("b").map(|e| e.line), Some(3));
    assert_eq!(sub(sub(&map, "a"), "b").get("c").map(|v| v.line), Some(4));
    assert!(err("a { b: 1").contains("Unexpected EOF processing map."));
    assert!(err("a { b: 1 ]").contains("Expected a map value terminator"));
    let deep = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
    assert!(err(&deep).contains("nests deeper"));
}

#[test]
fn keys_keep_their_spelling_and_lookups_ignore_case() {
    let map = ok("Cluster_ID: a\n\"Quoted Key\": b\n'x.y-z': c\n");
    let keys: Vec<_> = map.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["Cluster_ID", "Quoted Key", "x.y-z"]);
    assert_eq!(kind(&map, "cluster_id"), &s("a"));
    assert_eq!(kind(&map, "QUOTED KEY"), &s("b"));
    // Setting a key again replaces it; the later spelling wins lookups.
    let map = ok("a: 1\nA: 2\na: 3\n");
    assert_eq!(map.len(), 2);
    assert_eq!(kind(&map, "a"), &Kind::Integer(3));
}

#[test]
fn syntax_errors_name_file_and_line() {
    assert_eq!(
        err("a: 1\nb: \"open\n\nc: 2\n"),
        "test.conf:2: Unexpected EOF: unterminated quoted string."
    );
    assert_eq!(
        err("a: 1\n\n  : x\n"),
        "test.conf:3: Unexpected key separator ':'."
    );
    assert_eq!(
        err("a: 1 2\n"),
        "test.conf:1: Expected a top-level value to end with a new line, comment or EOF, but got '2' instead."
    );
    assert_eq!(
        err("a: 1\nb:\nc: 2"),
        "test.conf:2: Expected value but found new line"
    );
    assert_eq!(
        err("a: 1\nlonely"),
        "test.conf:2: Expected a value for key \"lonely\" but got EOF."
    );
    assert!(err("m { a: }").contains("Expected a value for key \"a\" but got '}'."));
    assert!(err("a: \"\\q\"").contains("Invalid escape character 'q'"));
    assert!(err("a: \"\\x4\"").contains("Expected two hexadecimal digits after '\\x'"));
    assert!(err("a: \"\\xff\"").contains("not valid UTF-8"));
    assert!(err("a: ;").contains("Expected a value but got ';'."));
    assert!(err("'open: 1").contains("Unexpected EOF processing quoted key"));
}

#[test]
fn empty_and_blank_texts() {
    for text in ["", "\n\n", "# only a comment", "{}", "  \t\r\n"] {
        assert!(ok(text).is_empty(), "{text:?}");
    }
}

/// Never a panic, whatever the bytes: every prefix of a realistic file
/// (truncation mid-token) and random byte strings.
#[test]
fn any_input_is_ok_or_err() {
    use rand::{Rng, SeedableRng};
    let sample = concat!(
        "# sample\nstreaming {\n  id: \"c\", store: file; dir = '/d'\n  sd: yes\n",
        "  store_limits { max_bytes: 10MB, max_age: \"1h\"\n",
        "    channels { \"foo.>\": { max_msgs: -1 }, 'b': {mm: 1k} }\n  }\n",
        "  ns: [nats://a:4222, \"nats://b:4222\"]\n  peers: [1, 2.5, 127.0.0.1:1, x]\n",
        "  t: 2016-05-04T18:53:41Z\n  blk (\n  text\n)\n  v: $id // c\n",
        "  esc: \"\\x41\\t\\u\" \n  include nothing.conf\n}\n",
    );
    for end in 0..=sample.len() {
        if sample.is_char_boundary(end) {
            let _ = parse(&sample[..end]);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let alphabet: &[u8] = b"ab1.-:=;, \t\n\r{}[]()'\"\\#/$xkKbB0Z";
    for _ in 0..3000 {
        let len = rng.random_range(0..64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.random_bool(0.8) {
                    alphabet[rng.random_range(0..alphabet.len())]
                } else {
                    rng.random()
                }
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text);
    }
}
