//! NSS's checks on one value: its type (with NSS's error text), Go
//! durations, `host:port` addresses and channel patterns, and the errors
//! that name the file, line and key.
//!
//! A leaf: reads one [`Entry`], writes nothing.

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
