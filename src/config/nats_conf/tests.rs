//! Tests of the config syntax, through [`parse_str`] and
//! [`parse_file`] as callers use them: the helpers here, the cases in one
//! file per submodule (`grammar`, `scalar`, `resolve`).

mod grammar;
mod resolve;
mod scalar;

use super::*;

fn parse(text: &str) -> Result<Map, ConfError> {
    parse_str(text, Path::new("test.conf"))
}

fn ok(text: &str) -> Map {
    match parse(text) {
        Ok(map) => map,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(map) => panic!("{text:?} parsed: {map:?}"),
        Err(e) => e.to_string(),
    }
}

fn kind<'a>(map: &'a Map, key: &str) -> &'a Kind {
    match map.get(key) {
        Some(v) => &v.kind,
        None => panic!("no {key} in {map:?}"),
    }
}

fn s(text: &str) -> Kind {
    Kind::String(text.to_string())
}

fn sub<'a>(map: &'a Map, key: &str) -> &'a Map {
    match kind(map, key) {
        Kind::Map(m) => m,
        other => panic!("{key} is {other:?}"),
    }
}

fn items<'a>(map: &'a Map, key: &str) -> Vec<&'a Kind> {
    match kind(map, key) {
        Kind::Array(items) => items.iter().map(|v| &v.kind).collect(),
        other => panic!("{key} is {other:?}"),
    }
}
