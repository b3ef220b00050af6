//! Tests of the NSS key mapping, through [`from_str`] and [`read`] as the
//! loader uses them: the helpers here, the cases by topic (`reference`:
//! the reference's own examples; `keys`: names, aliases, blocks and ignored
//! keys; `checks`: type and value errors).

mod checks;
mod keys;
mod reference;

use figment::value::{Dict, Value as FigValue};

use super::*;

fn parse(text: &str) -> Result<NssFile> {
    from_str(text, Path::new("stan.conf"))
}

fn ok(text: &str) -> NssFile {
    parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(file) => panic!("accepted: {file:?}\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn get<'a>(file: &'a NssFile, key: &str) -> &'a FigValue {
    file.values
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", file.values))
}

fn text(file: &NssFile, key: &str) -> String {
    get(file, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key} not a string"))
        .to_string()
}

fn num(file: &NssFile, key: &str) -> i64 {
    let value = get(file, key);
    value
        .to_i128()
        .or_else(|| value.to_u128().and_then(|n| i128::try_from(n).ok()))
        .and_then(|n| i64::try_from(n).ok())
        .unwrap_or_else(|| panic!("{key} not an integer"))
}

fn flag(file: &NssFile, key: &str) -> bool {
    get(file, key)
        .to_bool()
        .unwrap_or_else(|| panic!("{key} not a bool"))
}

fn dict<'a>(value: &'a FigValue, what: &str) -> &'a Dict {
    value
        .as_dict()
        .unwrap_or_else(|| panic!("{what} not a dict: {value:?}"))
}

fn ignored(file: &NssFile) -> Vec<(&str, usize, &'static str)> {
    file.ignored
        .iter()
        .map(|i| (i.key.as_str(), i.line, i.why))
        .collect()
}
