//! Joining nats-server: turns the configuration's URLs, credentials and TLS
//! settings into async-nats connect options, and connects, retrying while
//! nats-server is unreachable but giving up at once on a refusal that
//! retrying cannot fix (wrong credentials, a certificate that does not
//! verify, an unreadable key file).
//!
//! Owns every credential stanchion holds for nats-server; nothing here logs
//! one. Log lines show URLs through [`redact`]. Calls only async-nats (and
//! its rustls) and reads the files the configuration names.
//!
//! Matches NSS (`createNatsClientConn` and nats.go's `connectProto`):
//! credentials in a URL (`user:pass@` or `token@`) take precedence over
//! `user`/`pass`/`auth`/`nkey_seed_file`; a `.creds` JWT is sent in every
//! case; an NKey seed with a `.creds` file is an error; any TLS setting
//! makes TLS required.
//!
//! Here: the public entry points ([`connect`], [`redact`]), the error type,
//! the connection plan, the retry loop and async-nats's events.
//! Submodules: `url` (URLs, their credentials and redaction), `auth`
//! (credentials from the URL or the configuration, NKey seed and `.creds`
//! files) and `tls` (the rustls configuration and certificate verifiers).

mod auth;
mod tls;
mod url;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::rustls;
use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};

use self::auth::apply_auth;
use self::tls::{tls_config, tls_hint};
pub use self::url::redact;
use self::url::{parse_url, UrlAuth};
use super::view::Stats;
use super::{ServerError, SUBSCRIPTION_CAPACITY};
use crate::config::Config;

/// First wait between startup attempts while nats-server is unreachable.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Longest wait between startup attempts; reconnects after the first
/// connection use async-nats's own backoff, which is capped at 4 s.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The text nats-server (and so NSS's `Failed to start:` line) uses for
/// refused credentials; [`connect`]'s error reads `nats: Authorization Violation`.
const AUTHORIZATION_VIOLATION: &str = "Authorization Violation";

/// Why stanchion cannot join nats-server; each is final (no retry helps).
#[derive(Debug, thiserror::Error)]
enum JoinError {
    /// nats-server refused the credentials.
    #[error("{}", AUTHORIZATION_VIOLATION)]
    AuthorizationViolation,
    /// nats-server refused the connection for another authentication reason
    /// (an expired JWT, say); the text is the server's.
    #[error("{0}")]
    Refused(String),
    /// A file the configuration names cannot be read or holds no usable key.
    #[error("cannot use the {what} {path:?}: {reason}")]
    File {
        /// Which setting's file (for example "NKey seed file").
        what: &'static str,
        /// The file, as configured.
        path: PathBuf,
        /// Why, without the file's contents.
        reason: String,
    },
    /// TLS could not be set up, or nats-server's certificate (or ours) was
    /// refused during the handshake.
    #[error("TLS with nats-server failed: {0}")]
    Tls(String),
    /// The URL list or the credentials in it are unusable; the text shows
    /// URLs redacted.
    #[error("{0}")]
    Invalid(String),
}

impl From<JoinError> for ServerError {
    fn from(e: JoinError) -> Self {
        ServerError::Nats(e.to_string())
    }
}

/// Connects to nats-server with the configured URLs, credentials and TLS,
/// retrying with a log line (capped backoff) while it is unreachable. Once
/// connected, async-nats reconnects forever by itself.
///
/// # Errors
/// `nats: Authorization Violation` when nats-server refuses the
/// credentials; an error naming the file when a seed, `.creds`, certificate
/// or key file cannot be used; a TLS error when the handshake is refused
/// (a certificate that does not verify, a missing client certificate); an
/// invalid URL list. None of these is retried.
pub async fn connect(
    config: &Config,
    stats: Arc<Stats>,
) -> Result<async_nats::Client, ServerError> {
    let mut plan = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Plan::new(&config))
            .await
            .map_err(|e| ServerError::Internal(format!("preparing the NATS connection: {e}")))??
    };
    let cut_off = Arc::new(AtomicBool::new(false));
    plan.options = plan.options.event_callback(move |event| {
        let (stats, cut_off) = (stats.clone(), cut_off.clone());
        async move { on_event(event, &stats, &cut_off) }
    });
    tracing::info!(url = %plan.shown, "connecting to nats-server");
    let mut delay = FIRST_RETRY;
    loop {
        match plan.options.clone().connect(plan.addrs.clone()).await {
            Ok(client) => return Ok(client),
            Err(e) => match classify(&e) {
                Some(fatal) => return Err(fatal.into()),
                None => {
                    tracing::warn!(url = %plan.shown, error = %e, retry_in = ?delay, "nats-server not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY);
                }
            },
        }
    }
}

/// Everything needed for each connection attempt, prepared once (the files
/// are read here, off the async workers).
struct Plan {
    /// The servers, with their credentials removed (async-nats never sends
    /// the credentials of a pre-parsed [`ServerAddr`], and its debug logs
    /// print addresses whole).
    addrs: Vec<ServerAddr>,
    /// The URL list as log lines show it.
    shown: String,
    /// Credentials, TLS, name, capacity and event logging.
    options: ConnectOptions,
}

impl Plan {
    fn new(config: &Config) -> Result<Plan, JoinError> {
        let shown = redact(&config.nats_server);
        let mut addrs = Vec::new();
        let mut url_auth: Option<UrlAuth> = None;
        for entry in config.nats_server.split(',') {
            let (addr, auth) = parse_url(entry.trim())?;
            addrs.push(addr);
            match (&url_auth, auth) {
                (_, None) => {}
                (None, Some(auth)) => url_auth = Some(auth),
                (Some(seen), Some(auth)) if *seen == auth => {}
                (Some(_), Some(_)) => {
                    return Err(JoinError::Invalid(format!(
                        "the URLs in nats_server ({shown}) carry different credentials; \
                         stanchion can use only one set for all of them"
                    )))
                }
            }
        }

        let mut options = ConnectOptions::new()
            .name(config.connection_name())
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .max_reconnects(None);
        options = apply_auth(options, config, url_auth)?;
        if let Some(tls) = tls_config(config)? {
            options = options.require_tls(true).tls_client_config(tls);
        }
        Ok(Plan {
            addrs,
            shown,
            options,
        })
    }
}

/// Logs what async-nats reports about the connection, and counts
/// reconnects (a connect after a disconnect) and slow-consumer events.
fn on_event(event: async_nats::Event, stats: &Stats, cut_off: &AtomicBool) {
    match event {
        async_nats::Event::Disconnected => {
            cut_off.store(true, Ordering::Relaxed);
            tracing::warn!("disconnected from nats-server; reconnecting")
        }
        async_nats::Event::Connected => {
            if cut_off.swap(false, Ordering::Relaxed) {
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!("connected to nats-server")
        }
        async_nats::Event::SlowConsumer(sid) => {
            stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                sid,
                "internal subscription overflowed: messages were dropped"
            )
        }
        async_nats::Event::ServerError(e) => tracing::warn!(error = %e, "nats-server error"),
        async_nats::Event::ClientError(e) => {
            tracing::warn!(error = %e, "nats-server connection error")
        }
        other => tracing::info!(event = %other, "nats event"),
    }
}

/// Whether a failed attempt is final, and why; `None` means retry
/// (nats-server unreachable, a timeout, a dropped connection).
fn classify(e: &async_nats::ConnectError) -> Option<JoinError> {
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation => return Some(JoinError::AuthorizationViolation),
        ConnectErrorKind::Authentication => {
            return Some(JoinError::Refused(format!("cannot authenticate: {e}")))
        }
        ConnectErrorKind::Tls => return Some(JoinError::Tls(e.to_string())),
        _ => {}
    }
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        // io::Error::source skips the error it wraps: look inside too.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return Some(JoinError::Tls(tls_hint(tls)));
            }
            if let Some(async_nats::ServerError::Other(text)) =
                candidate.downcast_ref::<async_nats::ServerError>()
            {
                // "Authentication Timeout" is a slow handshake: retried.
                let lower = text.to_lowercase();
                if (lower.contains("authoriz") || lower.contains("authenticat"))
                    && !lower.contains("timeout")
                {
                    return Some(JoinError::Refused(text.clone()));
                }
            }
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn config(urls: &str) -> Config {
        Config {
            nats_server: urls.into(),
            ..Config::default()
        }
    }

    #[test]
    fn urls_must_agree_on_their_credentials() {
        assert!(Plan::new(&config("nats://a:b@h1,nats://a:b@h2,nats://h3")).is_ok());
        let Err(e) = Plan::new(&config("nats://a:b@h1,nats://a:c@h2")) else {
            panic!("different credentials accepted");
        };
        let text = e.to_string();
        assert!(text.contains("different credentials"), "{text}");
        assert!(text.contains("nats://***@h1,nats://***@h2"), "{text}");
    }

    #[test]
    fn url_errors_show_the_urls_redacted() {
        // The review's case: `#` in the password once cut the host short.
        let plan = Plan::new(&config("nats://alice:12#34@host:4222")).unwrap();
        assert_eq!(plan.addrs[0].host(), "host");
        assert_eq!(plan.addrs[0].port(), 4222);
        assert_eq!(plan.shown, "nats://***@host:4222");

        let Err(e) = Plan::new(&config("nats://h1, nats://alice:s3#cret@host:x")) else {
            panic!("bad port accepted");
        };
        let text = e.to_string();
        assert!(text.contains("\"nats://***@host:x\""), "{text}");
        assert!(!text.contains("alice") && !text.contains("cret"), "{text}");

        let Err(e) = Plan::new(&config("nats://a:p/1@h1,nats://a:p?2@h2")) else {
            panic!("different credentials accepted");
        };
        let text = e.to_string();
        assert!(text.contains("nats://***@h1,nats://***@h2"), "{text}");
        assert!(!text.contains("p/1") && !text.contains("p?2"), "{text}");
    }

    #[test]
    fn unreadable_files_are_named() {
        let mut c = config("nats://h");
        c.nkey_seed_file = Some("/nonexistent/seed.nk".into());
        let text = Plan::new(&c).err().unwrap().to_string();
        assert!(
            text.contains("NKey seed file \"/nonexistent/seed.nk\""),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a key\n").unwrap();
        let mut c = config("nats://h");
        c.nkey_seed_file = Some(junk.clone());
        let text = Plan::new(&c).err().unwrap().to_string();
        assert!(text.contains("holds no valid NKey seed"), "{text}");

        let mut c = config("nats://h");
        c.credentials = Some(junk.clone());
        let text = Plan::new(&c).err().unwrap().to_string();
        assert!(text.contains("credentials file"), "{text}");

        let mut c = config("nats://h");
        c.tls_client_cacert = Some(junk.clone());
        let text = Plan::new(&c).err().unwrap().to_string();
        assert!(text.contains("TLS CA file"), "{text}");
        assert!(text.contains("no PEM certificate"), "{text}");
    }

    #[test]
    fn refused_credentials_read_as_nss_does() {
        let e: ServerError = JoinError::AuthorizationViolation.into();
        assert_eq!(e.to_string(), "nats: Authorization Violation");
    }
}
