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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::rustls;
use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::view::Stats;
use super::{ServerError, SUBSCRIPTION_CAPACITY};
use crate::config::Config;

/// First wait between startup attempts while nats-server is unreachable.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Longest wait between startup attempts; reconnects after the first
/// connection use async-nats's own backoff, which is capped at 4 s.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What [`redact`] puts in place of a URL's credentials.
const REDACTED: &str = "***";

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

/// Sets the credentials, as nats.go's `connectProto` picks them: those of
/// the URL if it has any, else user/password, token and NKey from the
/// configuration; the `.creds` JWT in every case.
fn apply_auth(
    mut options: ConnectOptions,
    config: &Config,
    url_auth: Option<UrlAuth>,
) -> Result<ConnectOptions, JoinError> {
    let has_nkey = match url_auth {
        Some(auth) => {
            if config.user.is_some()
                || config.pass.is_some()
                || config.auth.is_some()
                || config.nkey_seed_file.is_some()
            {
                tracing::warn!(
                    "nats_server carries credentials: user, pass, auth and nkey_seed_file are ignored (as in NSS)"
                );
            }
            options = match auth {
                UrlAuth::UserPass { user, pass } => options.user_and_password(user, pass),
                UrlAuth::Token(token) => options.token(token),
            };
            false
        }
        None => {
            if config.user.is_some() || config.pass.is_some() {
                options = options.user_and_password(
                    config.user.clone().unwrap_or_default(),
                    config
                        .pass
                        .as_ref()
                        .map(|p| p.expose().to_string())
                        .unwrap_or_default(),
                );
            }
            if let Some(token) = &config.auth {
                options = options.token(token.expose().to_string());
            }
            if let Some(path) = &config.nkey_seed_file {
                options = options.nkey(read_seed(path)?);
            }
            config.nkey_seed_file.is_some()
        }
    };
    if let Some(path) = &config.credentials {
        if has_nkey {
            return Err(JoinError::Invalid(
                "nkey_seed_file and credentials cannot be used together \
                 (nats: user callback defined with nkey)"
                    .into(),
            ));
        }
        let file_error = |reason: String| JoinError::File {
            what: "credentials file",
            path: path.clone(),
            reason,
        };
        let contents = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        // async-nats's parse errors describe the format, never the contents.
        options = options
            .credentials(&contents)
            .map_err(|e| file_error(e.to_string()))?;
    }
    Ok(options)
}

/// The NKey seed in `path`: the file's first line that is a valid seed, so
/// both a bare seed and a decorated one (as `nk` or `nsc` write) work.
fn read_seed(path: &Path) -> Result<String, JoinError> {
    let file_error = |reason: String| JoinError::File {
        what: "NKey seed file",
        path: path.to_path_buf(),
        reason,
    };
    let contents = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    contents
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with('S') && nkeys::KeyPair::from_seed(line).is_ok())
        .map(str::to_string)
        .ok_or_else(|| file_error("it holds no valid NKey seed".into()))
}

/// The rustls configuration for the settings, or `None` when none asks for
/// TLS (a `tls://` URL or a server requiring TLS then gets async-nats's
/// default: the system's CA certificates).
///
/// Verification is skipped with `tls_insecure`, and with `secure` unless a
/// CA file is given (NSS documents `-secure` as "without verification;
/// weaker than specifying certificates"). `tls_server_name` replaces the
/// URL's host as the name nats-server's certificate must carry (async-nats
/// offers no such option; the TLS SNI stays the URL's host).
fn tls_config(config: &Config) -> Result<Option<ClientConfig>, JoinError> {
    let wanted = config.secure
        || config.tls_insecure
        || config.tls_client_cacert.is_some()
        || config.tls_client_cert.is_some()
        || config.tls_client_key.is_some()
        || config.tls_server_name.is_some();
    if !wanted {
        return Ok(None);
    }
    let builder = ClientConfig::builder();
    let provider = builder.crypto_provider().clone();
    let skip_verification =
        config.tls_insecure || (config.secure && config.tls_client_cacert.is_none());
    let verifier: Arc<dyn ServerCertVerifier> = if skip_verification {
        if config.tls_server_name.is_some() {
            tracing::warn!(
                "tls_server_name has no effect: nats-server's certificate is not verified"
            );
        }
        Arc::new(NoVerification(provider))
    } else {
        let roots = match &config.tls_client_cacert {
            Some(path) => ca_file_roots(path)?,
            None => system_roots()?,
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| JoinError::Tls(e.to_string()))?;
        match &config.tls_server_name {
            Some(name) => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| JoinError::Invalid(format!("tls_server_name {name:?}: {e}")))?;
                Arc::new(ExpectName {
                    inner: webpki,
                    name,
                })
            }
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let tls = match (&config.tls_client_cert, &config.tls_client_key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert, "TLS client certificate")?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| JoinError::File {
                what: "TLS client key",
                path: key.clone(),
                reason: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| JoinError::Tls(format!("client certificate {cert:?}: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(JoinError::Invalid(
                "tls_client_cert and tls_client_key go together".into(),
            ))
        }
    };
    Ok(Some(tls))
}

/// The certificates in the PEM file `path`; at least one.
fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, JoinError> {
    let file_error = |reason: String| JoinError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// Trust anchors from the CA file `path`.
fn ca_file_roots(path: &Path) -> Result<RootCertStore, JoinError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, "TLS CA file")? {
        roots.add(cert).map_err(|e| JoinError::File {
            what: "TLS CA file",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The system's CA certificates, as async-nats uses them by default.
fn system_roots() -> Result<RootCertStore, JoinError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(JoinError::Tls(format!(
            "no system CA certificates found ({why}); set tls_client_cacert"
        )));
    }
    Ok(roots)
}

/// Accepts any certificate nats-server shows (`secure`, `tls_insecure`),
/// while still checking that the handshake is signed by its key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Full verification, against `name` instead of the URL's host
/// (`tls_server_name`).
#[derive(Debug)]
struct ExpectName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ExpectName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
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

/// A handshake error, with the setting most likely to fix it.
fn tls_hint(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => format!(
            "{e} (is tls_client_cacert the CA that signed nats-server's certificate, \
             and does the certificate name the URL's host or tls_server_name?)"
        ),
        rustls::Error::AlertReceived(_) => format!(
            "{e} (nats-server refused the handshake: does it require a client \
             certificate, tls_client_cert and tls_client_key?)"
        ),
        rustls::Error::InvalidMessage(_) => format!("{e} (does nats-server have TLS enabled?)"),
        _ => e.to_string(),
    }
}

/// Credentials carried in a URL's user info.
#[derive(Clone, PartialEq, Eq)]
enum UrlAuth {
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
fn parse_url(url: &str) -> Result<(ServerAddr, Option<UrlAuth>), JoinError> {
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

    fn config(urls: &str) -> Config {
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
    fn seeds_are_found_bare_or_decorated() {
        let dir = tempfile::tempdir().unwrap();
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().unwrap();
        let bare = dir.path().join("bare.nk");
        std::fs::write(&bare, format!("{seed}\n")).unwrap();
        assert_eq!(read_seed(&bare).unwrap(), seed);
        let decorated = dir.path().join("decorated.nk");
        std::fs::write(
            &decorated,
            format!("-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"),
        )
        .unwrap();
        assert_eq!(read_seed(&decorated).unwrap(), seed);
    }

    #[test]
    fn an_nkey_and_a_creds_file_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed.nk");
        std::fs::write(&seed, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
        let mut c = config("nats://h");
        c.nkey_seed_file = Some(seed);
        c.credentials = Some(dir.path().join("user.creds"));
        let text = Plan::new(&c).err().unwrap().to_string();
        assert!(text.contains("cannot be used together"), "{text}");
    }

    #[test]
    fn refused_credentials_read_as_nss_does() {
        let e: ServerError = JoinError::AuthorizationViolation.into();
        assert_eq!(e.to_string(), "nats: Authorization Violation");
    }
}
