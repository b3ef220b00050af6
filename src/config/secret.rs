//! Keeping credentials out of log lines: [`Secret`], a password or token
//! whose `Debug` and `Display` print `***`, and the redaction of URL
//! credentials and of the credential keys of a figment [`Dict`], for the
//! `Debug` output of [`super::Config`], [`super::nss_file::NssFile`] and
//! the parsed command line.
//!
//! A leaf: no I/O, no other room.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use figment::value::{Dict, Value};
use serde::{Deserialize, Deserializer, Serialize};

/// What stands in for a hidden credential.
const HIDDEN: &str = "***";

/// Canonical keys whose values are credentials, hidden whole.
const SECRET_KEYS: &[&str] = &["pass", "auth", "encryption_key"];

/// The canonical key whose value is a URL list that may carry credentials.
const URL_KEY: &str = "nats_server";

/// A credential: use [`Secret::expose`] where the real text is needed.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The credential itself, for the NATS connect options only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

/// Any text is a credential; so that clap can parse `--pass` into one.
impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::text::string_like(d).map(Secret)
    }
}

/// `urls` (comma-separated) with whatever stands between each entry's
/// `://` (or its start) and its last `@` replaced by `***`: the user
/// info, which may be `user:password` or a token. Entries without an `@`
/// are kept as they are.
pub fn redact_urls(urls: &str) -> String {
    urls.split(',')
        .map(|entry| {
            let entry = entry.trim();
            let Some(at) = entry.rfind('@') else {
                return entry.to_string();
            };
            // A scheme is a leading letter, letters, digits, `+ - .`, then
            // `://`: a `://` inside a password is not taken for one.
            let start = entry[..at]
                .find("://")
                .filter(|&i| is_scheme(&entry[..i]))
                .map_or(0, |i| i + 3);
            format!("{}{HIDDEN}{}", &entry[..start], &entry[at..])
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `s` is a URL scheme (RFC 3986).
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A figment [`Dict`] of canonical settings, shown with its credentials
/// hidden: `pass` and `auth` as `***`, and `nats_server` through
/// [`redact_urls`].
pub(super) struct RedactedDict<'a>(pub &'a Dict);

impl fmt::Debug for RedactedDict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.0 {
            if SECRET_KEYS.contains(&key.as_str()) {
                map.entry(key, &format_args!("{HIDDEN}"));
            } else if key == URL_KEY {
                match value {
                    Value::String(_, urls) => map.entry(key, &redact_urls(urls)),
                    _ => map.entry(key, &format_args!("{HIDDEN}")),
                };
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_text() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{:?}", Some(s)).contains("hunter2"));
        let parsed: Secret = "hunter2".parse().unwrap_or_else(|e| match e {});
        assert_eq!(parsed.expose(), "hunter2");
    }

    #[test]
    fn url_credentials_are_hidden_in_every_entry() {
        assert_eq!(
            redact_urls("nats://a:pw1@h1:4222,nats://tok@h2:4223, nats://h3:4224"),
            "nats://***@h1:4222,nats://***@h2:4223,nats://h3:4224"
        );
        assert_eq!(redact_urls("u:p%40ss@h"), "***@h");
        assert_eq!(redact_urls("nats://b:p@ss@h"), "nats://***@h");
        assert_eq!(redact_urls("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact_urls(""), "");
        // A `://` inside the password of a URL without a scheme is not one.
        assert_eq!(redact_urls("alice:p://w@host:4222"), "***@host:4222");
    }

    #[test]
    fn a_dict_hides_its_credentials() {
        let mut dict = Dict::new();
        dict.insert("pass".into(), "hunter2".into());
        dict.insert("auth".into(), "hunter3".into());
        dict.insert("nats_server".into(), "nats://u:hunter4@h".into());
        dict.insert("cluster_id".into(), "shown".into());
        let shown = format!("{:?}", RedactedDict(&dict));
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("shown") && shown.contains("nats://***@h"),
            "{shown}"
        );
    }
}
