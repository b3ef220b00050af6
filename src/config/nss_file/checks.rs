//! NSS's checks on one value: its type (with NSS's error text), Go
//! durations, `host:port` addresses and channel patterns; stanchion's own
//! on top (integer ranges of the settings' types, store and log format
//! names); and the errors that name the file, line and key.
//!
//! A leaf: reads one [`Entry`], writes nothing.

use std::fmt::Display;
use std::str::FromStr;

use super::{NssFileError, Result};
use crate::config::duration::{self, DurationError};
use crate::config::nats_conf::{Entry, Kind, Map};

pub(super) fn wrong_type(e: &Entry, expected: &'static str) -> NssFileError {
    NssFileError::WrongType {
        file: e.value.file.to_path_buf(),
        line: e.line,
        key: e.key.clone(),
        expected,
        got: e.value.kind.type_name(),
    }
}

pub(super) fn invalid(e: &Entry, msg: String) -> NssFileError {
    NssFileError::Invalid {
        file: e.value.file.to_path_buf(),
        line: e.line,
        key: e.key.clone(),
        msg,
    }
}

pub(super) fn string(e: &Entry) -> Result<&str> {
    match &e.value.kind {
        Kind::String(s) => Ok(s),
        _ => Err(wrong_type(e, "string")),
    }
}

pub(super) fn boolean(e: &Entry) -> Result<bool> {
    match e.value.kind {
        Kind::Bool(b) => Ok(b),
        _ => Err(wrong_type(e, "bool")),
    }
}

pub(super) fn int(e: &Entry) -> Result<i64> {
    match e.value.kind {
        Kind::Integer(n) => Ok(n),
        _ => Err(wrong_type(e, "int64")),
    }
}

/// An integer within `lo..=hi`: the range of the setting it becomes (a
/// `u32` count, an `i32` port), which NSS's int64 may exceed.
pub(super) fn int_in(e: &Entry, lo: i64, hi: i64) -> Result<i64> {
    let n = int(e)?;
    in_range(e, n, lo, hi)
}

/// `n`, read from `e`, if within `lo..=hi`; else an error naming the key
/// and the range.
pub(super) fn in_range(e: &Entry, n: i64, lo: i64, hi: i64) -> Result<i64> {
    if (lo..=hi).contains(&n) {
        return Ok(n);
    }
    let msg = format!(
        "parameter {:?} value {n} is out of range: expected {lo} to {hi}",
        e.key
    );
    Err(invalid(e, msg))
}

/// The largest `u32`, as NSS's int64.
pub(super) fn u32_max() -> i64 {
    i64::from(u32::MAX)
}

/// The largest `usize`, as NSS's int64 (all of it on 64-bit targets).
pub(super) fn usize_max() -> i64 {
    i64::try_from(usize::MAX).unwrap_or(i64::MAX)
}

/// A string that parses as `T` (a store type, a log format), kept as
/// written; else an error naming the key and saying what `T` accepts.
pub(super) fn parses_as<T>(e: &Entry) -> Result<&str>
where
    T: FromStr,
    T::Err: Display,
{
    let text = string(e)?;
    match text.parse::<T>() {
        Ok(_) => Ok(text),
        Err(err) => Err(invalid(e, format!("parameter {:?}: {err}", e.key))),
    }
}

/// A map section, or NSS's `expected <what> to be a map/struct` error.
pub(super) fn section<'a>(e: &'a Entry, what: &str) -> Result<&'a Map> {
    match &e.value.kind {
        Kind::Map(map) => Ok(map),
        other => Err(invalid(
            e,
            format!("expected {what} to be a map/struct, got {other}"),
        )),
    }
}

/// A Go duration string, checked with Go's syntax. Stanchion's settings
/// take no negative durations; the reference's ignored ones may.
pub(super) fn go_duration(e: &Entry, negative_ok: bool) -> Result<&str> {
    let text = string(e)?;
    match duration::parse(text) {
        Ok(_) => Ok(text),
        Err(DurationError::Negative(_)) if negative_ok => Ok(text),
        Err(source) => Err(NssFileError::Duration {
            file: e.value.file.to_path_buf(),
            line: e.line,
            key: e.key.clone(),
            source,
        }),
    }
}

/// `host:port` or `[v6]:port`, as nats-server reads its `http` key.
pub(super) fn host_port(e: &Entry, listen: &str) -> Result<(String, i64)> {
    let bad = || invalid(e, format!("could not parse address string {listen:?}"));
    let (host, port) = match listen.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:").ok_or_else(bad)?,
        None => listen.rsplit_once(':').ok_or_else(bad)?,
    };
    if host.contains(':') && !listen.starts_with('[') {
        return Err(bad());
    }
    let port = port
        .parse::<i64>()
        .map_err(|_| invalid(e, format!("could not parse port {port:?}")))?;
    Ok((host.to_string(), port))
}

/// NSS's channel pattern rule: dot-separated non-empty tokens, no `/`, and
/// wildcards only as whole tokens (`>` only last).
pub(super) fn is_channel_pattern(name: &str) -> bool {
    let tokens: Vec<&str> = name.split('.').collect();
    !name.is_empty()
        && !name.contains('/')
        && tokens.iter().enumerate().all(|(n, token)| match *token {
            "" => false,
            ">" => n + 1 == tokens.len(),
            "*" => true,
            t => !t.contains(['*', '>']),
        })
}
