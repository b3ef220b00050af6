//! TLS with nats-server: the rustls client configuration for the TLS
//! settings (CA file or system roots, client certificate and key), the two
//! custom certificate verifiers (none for `tls_insecure`, and one that
//! checks `tls_server_name` instead of the URL's host), and the hint added
//! to a refused handshake.
//!
//! `secure` only makes TLS required; nats-server's certificate is still
//! verified. NSS's help text says `-secure` connects "without
//! verification; weaker than specifying certificates", but its code
//! (`server.go`, v0.23.2) calls nats.go's `nats.Secure()` with no TLS
//! config, and nats.go then uses an empty `tls.Config`, which verifies
//! against the system's CAs (or `-tls_client_cacert`). Only the config
//! file's `tls { insecure }` (or `skip_verify`) sets `InsecureSkipVerify`.
//! stanchion follows the code, not the help text.
//!
//! Reads the certificate and key files the configuration names, and the
//! system's CA certificates. Calls only async-nats's rustls and
//! `rustls-native-certs`.

use std::path::Path;
use std::sync::Arc;

use async_nats::rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::JoinError;
use crate::config::Config;

/// The rustls configuration for the settings, or `None` when none asks for
/// TLS (a `tls://` URL or a server requiring TLS then gets async-nats's
/// default: the system's CA certificates).
///
/// nats-server's certificate is verified against `tls_client_cacert`, or
/// the system's CAs without it, unless `tls_insecure` is set; `secure`
/// only asks for TLS and verifies like any other TLS setting (as NSS's
/// code does, whatever its help text says). `tls_server_name` replaces
/// the URL's host as the name nats-server's certificate must carry
/// (async-nats offers no such option; the TLS SNI stays the URL's host).
///
/// # Errors
/// An unreadable or empty certificate, CA or key file; a client
/// certificate without its key (or the reverse); no system CAs when no CA
/// file is given; an invalid `tls_server_name`.
pub(super) fn tls_config(config: &Config) -> Result<Option<ClientConfig>, JoinError> {
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
    let verifier: Arc<dyn ServerCertVerifier> = if config.tls_insecure {
        if config.tls_server_name.is_some() {
            tracing::warn!(
                "tls_server_name has no effect: tls_insecure is set, so nats-server's \
                 certificate is not verified"
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

/// Accepts any certificate nats-server shows (`tls_insecure`), while
/// still checking that the handshake is signed by its key.
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

/// A handshake error, with the setting most likely to fix it.
pub(super) fn tls_hint(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => format!(
            "{e} (nats-server's certificate is verified, with secure too: is \
             tls_client_cacert the CA that signed it (without it, the system's CAs \
             are used), and does it name the URL's host or tls_server_name? \
             tls_insecure skips the check)"
        ),
        rustls::Error::AlertReceived(_) => format!(
            "{e} (nats-server refused the handshake: does it require a client \
             certificate, tls_client_cert and tls_client_key?)"
        ),
        rustls::Error::InvalidMessage(_) => format!("{e} (does nats-server have TLS enabled?)"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;

    /// Whether the configuration built for `config` skips verification.
    fn skips_verification(config: &Config) -> bool {
        let tls = tls_config(config).unwrap().expect("TLS configured");
        format!("{tls:?}").contains("NoVerification")
    }

    #[test]
    fn secure_verifies_and_only_tls_insecure_skips() {
        let mut c = config("nats://h");
        assert!(tls_config(&c).unwrap().is_none());
        c.secure = true;
        assert!(
            !skips_verification(&c),
            "secure alone verifies (system CAs)"
        );
        c.tls_insecure = true;
        assert!(skips_verification(&c));
        let mut c = config("nats://h");
        c.tls_insecure = true;
        assert!(skips_verification(&c), "tls_insecure alone asks for TLS");
    }
}
