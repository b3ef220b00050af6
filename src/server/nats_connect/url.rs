//! nats-server URLs: cutting each URL around its user info (as Go's
//! `url.Parse` does), taking the credentials out of it, and [`redact`],
//! which hides them for log lines.
//!
//! Pure text handling: no I/O, and the only async-nats item used is
//! [`ServerAddr`], which the address without credentials is parsed into.
//! Nothing here logs.

use std::fmt;

use async_nats::ServerAddr;

use super::JoinError;

/// What [`redact`] puts in place of a URL's credentials.
const REDACTED: &str = "***";

/// `urls` (comma-separated, as in `nats_server`) with the credentials of
/// each URL replaced by `***`: `nats://u:p@host:4222` becomes
/// `nats://***@host:4222`, so a log shows that credentials are in use but
/// not which. URLs without credentials are kept as written; entries are
/// trimmed and joined with `,`.
pub fn redact(urls: &str) -> String {
    urls.split(',')
        .map(|entry| {
            let parts = split_userinfo(entry.trim());
            match parts.userinfo {
                Some(_) => format!("{}{REDACTED}@{}", parts.scheme, parts.rest),
                None => entry.trim().to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Credentials carried in a URL's user info.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum UrlAuth {
    /// `user:pass@`.
    UserPass {
        /// The user name.
        user: String,
        /// The password.
        pass: String,
    },
    /// `token@` (user info without a `:`).
    Token(String),
}

impl fmt::Debug for UrlAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlAuth::UserPass { user, .. } => write!(f, "UserPass({user:?}, ***)"),
            UrlAuth::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// One URL cut around its user info.
struct UrlParts<'a> {
    /// `nats://` (or empty when the URL has no scheme).
    scheme: &'a str,
    /// What stands before the last `@` of the authority, if there is one.
    userinfo: Option<&'a str>,
    /// Host, port and anything after them.
    rest: &'a str,
}

/// Cuts `url` as Go's `url.Parse` does: the authority ends at the first
/// `/`, `?` or `#`, and the user info ends at its last `@`.
fn split_userinfo(url: &str) -> UrlParts<'_> {
    let (scheme, after) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    match after[..authority_end].rfind('@') {
        Some(at) => UrlParts {
            scheme,
            userinfo: Some(&after[..at]),
            rest: &after[at + 1..],
        },
        None => UrlParts {
            scheme,
            userinfo: None,
            rest: after,
        },
    }
}

/// The address (without credentials) and the credentials of one URL.
/// Percent-escapes in the user info are decoded; empty user info (`@host`)
/// means none.
pub(super) fn parse_url(url: &str) -> Result<(ServerAddr, Option<UrlAuth>), JoinError> {
    let parts = split_userinfo(url);
    let bare = format!("{}{}", parts.scheme, parts.rest);
    let addr = bare.parse::<ServerAddr>().map_err(|e| {
        // The error names no part of the URL; `bare` has no credentials.
        JoinError::Invalid(format!("invalid NATS URL {bare:?}: {e}"))
    })?;
    let auth =
        parts
            .userinfo
            .filter(|info| !info.is_empty())
            .map(|info| match info.split_once(':') {
                Some((user, pass)) => UrlAuth::UserPass {
                    user: percent_decode(user),
                    pass: percent_decode(pass),
                },
                None => UrlAuth::Token(percent_decode(info)),
            });
    Ok((addr, auth))
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits are at most 255.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_of(url: &str) -> Option<UrlAuth> {
        parse_url(url).unwrap().1
    }

    fn addr_of(url: &str) -> String {
        parse_url(url).unwrap().0.into_inner().to_string()
    }

    fn user_pass(user: &str, pass: &str) -> Option<UrlAuth> {
        Some(UrlAuth::UserPass {
            user: user.into(),
            pass: pass.into(),
        })
    }

    #[test]
    fn user_and_password_are_taken_out_of_the_url() {
        assert_eq!(
            auth_of("nats://alice:s3cret@host:4222"),
            user_pass("alice", "s3cret")
        );
        assert_eq!(addr_of("nats://alice:s3cret@host:4222"), "nats://host:4222");
        // No scheme: async-nats assumes nats://.
        assert_eq!(
            auth_of("alice:s3cret@host:4222"),
            user_pass("alice", "s3cret")
        );
        assert_eq!(addr_of("alice:s3cret@host:4222"), "nats://host:4222");
        // An empty password is still user/password, as in Go.
        assert_eq!(auth_of("nats://alice:@host"), user_pass("alice", ""));
    }

    #[test]
    fn user_info_without_a_colon_is_a_token() {
        assert_eq!(
            auth_of("nats://t0k3n@127.0.0.1:4222"),
            Some(UrlAuth::Token("t0k3n".into()))
        );
        assert_eq!(
            addr_of("tls://t0k3n@127.0.0.1:4222"),
            "tls://127.0.0.1:4222"
        );
        assert_eq!(auth_of("nats://@host:4222"), None);
        assert_eq!(auth_of("nats://host:4222"), None);
        assert_eq!(addr_of("nats://host:4222"), "nats://host:4222");
    }

    #[test]
    fn percent_escapes_are_decoded_and_the_last_at_ends_the_user_info() {
        assert_eq!(
            auth_of("nats://al%40ice:p%3Aa%2Fss%25@host:4222"),
            user_pass("al@ice", "p:a/ss%")
        );
        assert_eq!(auth_of("nats://bob:p@ss@host"), user_pass("bob", "p@ss"));
        assert_eq!(addr_of("nats://bob:p@ss@host"), "nats://host");
        assert_eq!(parse_url("nats://bob:p@ss@host").unwrap().0.port(), 4222);
        assert_eq!(auth_of("nats://bob:100%@host"), user_pass("bob", "100%"));
        assert_eq!(auth_of("nats://bob:%zz%4@host"), user_pass("bob", "%zz%4"));
        // An `@` after the authority is not user info.
        assert_eq!(auth_of("nats://host:4222/x@y"), None);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(auth_of("nats://u:p@[::1]:4222"), user_pass("u", "p"));
        assert_eq!(addr_of("nats://u:p@[::1]:4222"), "nats://[::1]:4222");
        assert_eq!(parse_url("nats://u:p@[::1]:4222").unwrap().0.host(), "::1");
        assert_eq!(redact("nats://u:p@[::1]:4222"), "nats://***@[::1]:4222");
    }

    #[test]
    fn redact_hides_every_credential_of_a_list() {
        assert_eq!(
            redact("nats://a:pw1@h1:4222, nats://tok@h2:4223 ,nats://h3:4224"),
            "nats://***@h1:4222,nats://***@h2:4223,nats://h3:4224"
        );
        assert_eq!(redact("u:p%40ss@h"), "***@h");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact("nats://b:p@ss@h"), "nats://***@h");
        // Even a URL async-nats would reject is redacted.
        assert_eq!(redact("bogus://u:p@h:x"), "bogus://***@h:x");
        assert!(!redact("nats://alice:hunter2@h").contains("hunter2"));
    }

    #[test]
    fn invalid_urls_are_reported_without_their_credentials() {
        let Err(e) = parse_url("ftp://alice:hunter2@host") else {
            panic!("ftp:// accepted");
        };
        let text = e.to_string();
        assert!(text.contains("ftp://host"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
