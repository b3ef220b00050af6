//! nats-server URLs: cutting each URL around its user info, taking the
//! credentials out of it, and [`redact`], which hides them for log lines.
//!
//! NATS URLs have no path, query or fragment, so the user info runs up to
//! the last `@` of the whole entry: a password may hold `#`, `/`, `?`,
//! `@` and `:` unescaped. (Go's `url.Parse`, which NSS uses, would instead
//! end the authority at the first `/`, `?` or `#` and so take part of such
//! a password for the host; stanchion does not follow it there.) A `,`
//! still separates URLs, so a password holding one must write it `%2C`.
//!
//! Pure text handling: no I/O, and the only async-nats item used is
//! [`ServerAddr`], which the address without credentials is parsed into.
//! Nothing here logs, and no error text quotes a URL that held an `@`
//! except in its redacted form.

use std::fmt;

use async_nats::ServerAddr;

use super::JoinError;

/// `urls` (comma-separated, as in `nats_server`) with the credentials of
/// each URL replaced by `***`: `nats://u:p@host:4222` becomes
/// `nats://***@host:4222`, so a log shows that credentials are in use but
/// not which. Everything between the scheme (if any) and an entry's last
/// `@` is replaced, whatever it holds; entries without `@` are kept as
/// written. Entries are trimmed and joined with `,`.
pub fn redact(urls: &str) -> String {
    crate::config::redact_urls(urls)
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
    /// What stands between the scheme and the URL's last `@`, if it has one.
    userinfo: Option<&'a str>,
    /// Host and port (and anything after them): all after the last `@`.
    rest: &'a str,
}

/// Cuts `url` into scheme, user info and the rest. The scheme is a leading
/// `letter *(letter / digit / + / - / .)` followed by `://`, so a `://`
/// inside a password of a URL without scheme is not taken for one. The
/// user info ends at the last `@` of the whole URL (NATS URLs have no
/// path, so an `@` cannot belong to anything after the host).
fn split_userinfo(url: &str) -> UrlParts<'_> {
    let scheme_len = url.find("://").filter(|&i| is_scheme(&url[..i]));
    let (scheme, after) = match scheme_len {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    match after.rfind('@') {
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

/// Whether `s` is a URL scheme (RFC 3986: a letter, then letters, digits,
/// `+`, `-` or `.`).
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The address (without credentials) and the credentials of one URL.
/// The user ends at the user info's first `:` (the password may hold more);
/// user info without `:` is a token. Percent-escapes in the user info are
/// decoded; empty user info (`@host`) means none.
///
/// # Errors
/// [`JoinError::Invalid`] when async-nats rejects the address; the text
/// shows the URL redacted.
pub(super) fn parse_url(url: &str) -> Result<(ServerAddr, Option<UrlAuth>), JoinError> {
    let parts = split_userinfo(url);
    let bare = format!("{}{}", parts.scheme, parts.rest);
    let addr = bare.parse::<ServerAddr>().map_err(|e| {
        // async-nats's text names at most the scheme, never the user info.
        JoinError::Invalid(format!("invalid NATS URL {:?}: {e}", redact(url)))
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
        // NATS URLs have no path: the last `@` ends the user info wherever it is.
        assert_eq!(auth_of("nats://host:4222/x@y"), user_pass("host", "4222/x"));
        assert_eq!(addr_of("nats://host:4222/x@y"), "nats://y");
    }

    #[test]
    fn passwords_may_hold_url_delimiters() {
        for pass in [
            "s3#cret",
            "12#34",
            "a/b",
            "/",
            "a?b",
            "?x=1",
            "p@ss",
            "p:w",
            "a:b@c#d/e?f",
            "#",
            "@",
        ] {
            let url = format!("nats://alice:{pass}@127.0.0.1:4999");
            let (addr, auth) = parse_url(&url).unwrap();
            assert_eq!(auth, user_pass("alice", pass), "{url}");
            assert_eq!(addr.host(), "127.0.0.1", "{url}");
            assert_eq!(addr.port(), 4999, "{url}");
            assert_eq!(redact(&url), "nats://***@127.0.0.1:4999", "{url}");
            // Without a scheme and without a port too.
            let bare = format!("alice:{pass}@host");
            assert_eq!(auth_of(&bare), user_pass("alice", pass), "{bare}");
            let addr = parse_url(&bare).unwrap().0;
            assert_eq!((addr.host(), addr.port()), ("host", 4222), "{bare}");
            assert_eq!(redact(&bare), "***@host", "{bare}");
        }
        // The review's case: not host `alice`, port 12.
        let (addr, _) = parse_url("nats://alice:12#34@host:4222").unwrap();
        assert_eq!((addr.host(), addr.port()), ("host", 4222));
        // A `://` in the password of a URL without scheme is no scheme.
        assert_eq!(auth_of("alice:p://w@host"), user_pass("alice", "p://w"));
        assert_eq!(redact("alice:p://w@host"), "***@host");
        assert_eq!(
            auth_of("nats://alice:p://w@host"),
            user_pass("alice", "p://w")
        );
        assert_eq!(redact("nats://alice:p://w@host"), "nats://***@host");
    }

    #[test]
    fn tokens_may_hold_url_delimiters() {
        for token in ["t#k", "t/k", "t?k", "t@k", "#/?@", "//t"] {
            let url = format!("tls://{token}@127.0.0.1:4443");
            let (addr, auth) = parse_url(&url).unwrap();
            assert_eq!(auth, Some(UrlAuth::Token(token.into())), "{url}");
            assert_eq!((addr.host(), addr.port()), ("127.0.0.1", 4443), "{url}");
            assert_eq!(redact(&url), "tls://***@127.0.0.1:4443", "{url}");
        }
        // A raw `:` makes user and password, as in Go; `%3A` keeps a token.
        assert_eq!(auth_of("nats://to:ken@host"), user_pass("to", "ken"));
        assert_eq!(
            auth_of("nats://to%3Aken@host"),
            Some(UrlAuth::Token("to:ken".into()))
        );
        assert_eq!(redact("nats://to:ken@host"), "nats://***@host");
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
        // Delimiters in passwords and tokens, in a list.
        assert_eq!(
            redact(
                "nats://alice:s3#cret@127.0.0.1:4999, nats://bob:a/b?c@h2:4222,\
                 tls://t#k/n?@h3, carol:p:w@h4, nats://@h5, nats://h6:4222"
            ),
            "nats://***@127.0.0.1:4999,nats://***@h2:4222,tls://***@h3,***@h4,\
             nats://***@h5,nats://h6:4222"
        );
        let secrets = "nats://alice:s3#cret@h1,nats://bob:a/b?c@h2,nats://t0k#n@h3";
        let shown = redact(secrets);
        for secret in ["alice", "s3#cret", "cret", "bob", "a/b?c", "t0k#n", "k#n"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn invalid_urls_are_reported_without_their_credentials() {
        let Err(e) = parse_url("ftp://alice:hunter2@host") else {
            panic!("ftp:// accepted");
        };
        let text = e.to_string();
        assert!(text.contains("\"ftp://***@host\""), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("alice"), "{text}");

        // Delimiters in the password: the host and port are still right,
        // so a bad port is the port's fault, and the text stays redacted.
        for url in [
            "nats://alice:s3#cret@host:x",
            "nats://alice:a/b?c@host:99999",
            "alice:12#34@host:port",
            "bogus://t0k#n@host",
        ] {
            let Err(e) = parse_url(url) else {
                panic!("{url} accepted");
            };
            let text = e.to_string();
            assert!(text.contains(&format!("{:?}", redact(url))), "{text}");
            for secret in ["alice", "s3#cret", "cret", "a/b?c", "12#34", "t0k#n"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        // A URL without `@` is quoted as written.
        let Err(e) = parse_url("ftp://host") else {
            panic!("ftp:// accepted");
        };
        assert!(e.to_string().contains("\"ftp://host\""), "{e}");
    }
}
