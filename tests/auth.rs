//! Joining a secured nats-server: every authentication method NSS offers
//! (URL credentials, user/password flags and env, token, NKey, `.creds`
//! JWT) and TLS (client certificates, `-secure`, which verifies the
//! certificate as NSS's code does, `tls_insecure`, a server name), each
//! proved by a STAN client publishing and receiving through stanchion.
//! Wrong credentials and unverifiable certificates end stanchion quickly
//! with exit code 1; no secret ever reaches its output, even at trace level.

mod common;

use std::time::Duration;

use common::secure::*;
use common::*;

/// How long a refused stanchion may take to exit.
const REFUSAL: Duration = Duration::from_secs(10);

/// How long stanchion may take to become ready.
const READY: Duration = Duration::from_secs(20);

/// nats-server requiring a user and password.
fn user_pass_server(user: &str, pass: &str) -> SecureNats {
    SecureNats::start(&format!(
        "authorization {{\n  user: {user:?}\n  password: {pass:?}\n}}"
    ))
}

/// nats-server requiring a token.
fn token_server(token: &str) -> SecureNats {
    SecureNats::start(&format!("authorization {{\n  token: {token:?}\n}}"))
}

/// nats-server accepting the NKey user `public`.
fn nkey_server(public: &str) -> SecureNats {
    SecureNats::start(&format!(
        "authorization {{\n  users = [\n    {{ nkey: {public:?} }}\n  ]\n}}"
    ))
}

/// Waits for readiness, then checks that a STAN client gets through.
async fn assert_serves(server: &Proc, nc: async_nats::Client, client_id: &str) {
    server
        .wait_for_output_within("stanchion is ready", READY)
        .await;
    roundtrip(nc, client_id).await;
}

/// Asserts that stanchion exits with code 1 within [`REFUSAL`], its output
/// containing `needle`, and returns the output.
async fn assert_refused(server: &mut Proc, needle: &str) -> String {
    let status = wait_exit(server, REFUSAL).await;
    let output = server.output();
    assert_eq!(status.code(), Some(1), "exit status {status:?}:\n{output}");
    assert!(output.contains(needle), "no {needle:?} in:\n{output}");
    assert!(output.contains("Failed to start"), "{output}");
    output
}

#[tokio::test]
async fn user_and_password_in_the_url_also_while_waiting_for_nats_server() {
    bounded(async {
        let (user, pass) = ("alice", "pw-in-the-url-71");
        // stanchion first: it retries, showing the URL redacted.
        let port = free_port();
        let url = format!("nats://{user}:{pass}@127.0.0.1:{port}");
        let server = stanchion(&["--nats_server", &url], &[]);
        server
            .wait_for_output("nats-server not reachable yet; retrying")
            .await;
        let conf = format!("authorization {{\n  user: {user:?}\n  password: {pass:?}\n}}");
        let mut nats = SecureNats::start_in(tempfile::tempdir().unwrap(), port, &conf);
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()),
        )
        .await;
        assert_serves(&server, nc, "url-user").await;

        // The URL's credentials are used on reconnects too.
        nats.proc.kill();
        server
            .wait_for_output("disconnected from nats-server; reconnecting")
            .await;
        let nats = SecureNats::start_in(tempfile::tempdir().unwrap(), port, &conf);
        tokio::time::timeout(READY, async {
            while server.output().matches("connected to nats-server").count() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("stanchion reconnects");
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()),
        )
        .await;
        roundtrip(nc, "url-user-again").await;
        let output = server.output();
        assert_no_secrets(&output, &[pass]);
        assert!(
            output.contains(&format!("nats://***@127.0.0.1:{port}")),
            "{output}"
        );
    })
    .await;
}

#[tokio::test]
async fn url_delimiters_in_the_password() {
    bounded(async {
        // Once taken for the end of the host, so logged whole on every retry.
        let (user, pass) = ("frank", "s3#c/r?e:t@x");
        let nats = user_pass_server(user, pass);
        let url = format!("nats://{user}:{pass}@127.0.0.1:{}", nats.port);
        let server = stanchion(&["--nats_server", &url], &[]);
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()),
        )
        .await;
        assert_serves(&server, nc, "url-delimiters").await;
        let output = server.output();
        assert_no_secrets(&output, &[pass, "s3#c", "r?e:t"]);
        assert!(
            output.contains(&format!("nats://***@127.0.0.1:{}", nats.port)),
            "{output}"
        );
    })
    .await;
}

#[tokio::test]
async fn user_and_password_flags() {
    bounded(async {
        let (user, pass) = ("bob", "pw-from-flags-29");
        let nats = user_pass_server(user, pass);
        let server = stanchion(
            &["--nats_server", &nats.url(), "--user", user, "--pass", pass],
            &[],
        );
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()),
        )
        .await;
        assert_serves(&server, nc, "flag-user").await;
        let output = server.output();
        assert_no_secrets(&output, &[pass]);
        assert!(output.contains(&nats.url()), "{output}");
    })
    .await;
}

#[tokio::test]
async fn user_and_password_from_the_environment() {
    bounded(async {
        let (user, pass) = ("carol", "pw-from-env-83");
        let nats = user_pass_server(user, pass);
        let server = stanchion(
            &["--nats_server", &nats.url()],
            &[("STANCHION_USER", user), ("STANCHION_PASS", pass)],
        );
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()),
        )
        .await;
        assert_serves(&server, nc, "env-user").await;
        assert_no_secrets(&server.output(), &[pass]);
    })
    .await;
}

#[tokio::test]
async fn token_flag_and_token_in_the_url() {
    bounded(async {
        let token = "t0ken-secret-4711";
        let nats = token_server(token);
        let by_flag = stanchion(&["--nats_server", &nats.url(), "--auth", token], &[]);
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_token(token.into()),
        )
        .await;
        assert_serves(&by_flag, nc, "token-flag").await;
        assert_no_secrets(&by_flag.output(), &[token]);
        drop(by_flag);

        let url = format!("nats://{token}@127.0.0.1:{}", nats.port);
        let by_url = stanchion(&["--nats_server", &url], &[]);
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_token(token.into()),
        )
        .await;
        assert_serves(&by_url, nc, "token-url").await;
        let output = by_url.output();
        assert_no_secrets(&output, &[token]);
        assert!(
            output.contains(&format!("nats://***@127.0.0.1:{}", nats.port)),
            "{output}"
        );
    })
    .await;
}

#[tokio::test]
async fn nkey_seed_file() {
    bounded(async {
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let nats = nkey_server(&user.public_key());
        let seed_file = write(nats.dir.path(), "user.nk", &format!("{seed}\n"));
        let server = stanchion(
            &[
                "--nats_server",
                &nats.url(),
                "--nkey_seed_file",
                s(&seed_file),
            ],
            &[],
        );
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_nkey(seed.clone()),
        )
        .await;
        assert_serves(&server, nc, "nkey").await;
        assert_no_secrets(&server.output(), &[&seed]);
    })
    .await;
}

#[tokio::test]
async fn creds_file_in_operator_mode() {
    bounded(async {
        let chain = JwtChain::new();
        let nats = SecureNats::start(&chain.server_conf());
        let creds = write(nats.dir.path(), "user.creds", &chain.creds());
        let server = stanchion(
            &["--nats_server", &nats.url(), "--credentials", s(&creds)],
            &[],
        );
        let nc = client(
            &nats.url(),
            async_nats::ConnectOptions::with_credentials(&chain.creds()).unwrap(),
        )
        .await;
        assert_serves(&server, nc, "creds").await;
        assert_no_secrets(&server.output(), &[&chain.user_seed, &chain.user_jwt]);

        // A user of an account the server does not know is refused.
        let stranger = user_jwt(&nkeys::KeyPair::new_account(), &nkeys::KeyPair::new_user());
        let other = write(nats.dir.path(), "stranger.creds", &creds_for(&stranger));
        let mut refused = stanchion(
            &["--nats_server", &nats.url(), "--credentials", s(&other)],
            &[],
        );
        let output = assert_refused(&mut refused, "nats: Authorization Violation").await;
        assert_no_secrets(&output, &[&stranger]);
    })
    .await;
}

/// A `.creds` file for `jwt` with a fresh seed (which does not match it).
fn creds_for(jwt: &str) -> String {
    creds(jwt, &nkeys::KeyPair::new_user().seed().unwrap())
}

#[tokio::test]
async fn wrong_password_exits_with_authorization_violation() {
    bounded(async {
        let nats = user_pass_server("dave", "right-pw-12");
        let mut server = stanchion(
            &[
                "--nats_server",
                &nats.url(),
                "--user",
                "dave",
                "--pass",
                "wrong-pw-34",
            ],
            &[],
        );
        let output = assert_refused(&mut server, "nats: Authorization Violation").await;
        assert_no_secrets(&output, &["wrong-pw-34"]);

        // The same through the URL.
        let url = format!("nats://dave:wrong-pw-56@127.0.0.1:{}", nats.port);
        let mut server = stanchion(&["--nats_server", &url], &[]);
        let output = assert_refused(&mut server, "nats: Authorization Violation").await;
        assert_no_secrets(&output, &["wrong-pw-56"]);
    })
    .await;
}

#[tokio::test]
async fn wrong_token_exits_with_authorization_violation() {
    bounded(async {
        let nats = token_server("right-token-78");
        let mut server = stanchion(
            &["--nats_server", &nats.url(), "--auth", "wrong-token-90"],
            &[],
        );
        let output = assert_refused(&mut server, "nats: Authorization Violation").await;
        assert_no_secrets(&output, &["wrong-token-90"]);
    })
    .await;
}

#[tokio::test]
async fn unknown_nkey_exits_with_authorization_violation() {
    bounded(async {
        let nats = nkey_server(&nkeys::KeyPair::new_user().public_key());
        let stranger = nkeys::KeyPair::new_user().seed().unwrap();
        let seed_file = write(nats.dir.path(), "stranger.nk", &stranger);
        let mut server = stanchion(
            &[
                "--nats_server",
                &nats.url(),
                "--nkey_seed_file",
                s(&seed_file),
            ],
            &[],
        );
        let output = assert_refused(&mut server, "nats: Authorization Violation").await;
        assert_no_secrets(&output, &[&stranger]);
    })
    .await;
}

#[tokio::test]
async fn unreadable_key_files_are_named() {
    bounded(async {
        // Files are read before connecting: no nats-server is needed.
        let url = format!("nats://127.0.0.1:{}", free_port());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let junk = write(dir.path(), "junk.txt", "not a key\n");
        for (flag, file, what) in [
            ("--nkey_seed_file", &missing, "NKey seed file"),
            ("--nkey_seed_file", &junk, "NKey seed file"),
            ("--credentials", &missing, "credentials file"),
            ("--credentials", &junk, "credentials file"),
            ("--tls_client_cacert", &missing, "TLS CA file"),
            ("--tls_client_cacert", &junk, "TLS CA file"),
        ] {
            let mut server = stanchion(&["--nats_server", &url, flag, s(file)], &[]);
            let needle = format!("{what} {:?}", s(file));
            assert_refused(&mut server, &needle).await;
        }
    })
    .await;
}

#[tokio::test]
async fn tls_with_client_certificates() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls_files(dir.path(), &["127.0.0.1", "localhost"]);
        let nats = SecureNats::start_in(dir, free_port(), &tls.server_block(true));
        // NSS command lines carry -tls=false (an embedded-server flag).
        let server = stanchion(
            &[
                "-ns",
                &nats.url(),
                "-tls=false",
                "-tls_client_cert",
                s(&tls.client_cert),
                "-tls_client_key",
                s(&tls.client_key),
                "-tls_client_cacert",
                s(&tls.ca),
            ],
            &[],
        );
        let nc = client(&nats.url(), tls.client_options()).await;
        assert_serves(&server, nc, "tls-certs").await;
        let key = std::fs::read_to_string(&tls.client_key).unwrap();
        let key_body = key.lines().nth(1).unwrap();
        assert_no_secrets(&server.output(), &[key_body]);
        assert!(
            server.output().contains("ignoring flag -tls"),
            "{}",
            server.output()
        );
    })
    .await;
}

/// A nats-server with TLS (no client certificates) whose CA only the test
/// knows.
fn tls_server_unknown_ca() -> (SecureNats, TlsFiles) {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_files(dir.path(), &["127.0.0.1"]);
    let nats = SecureNats::start_in(dir, free_port(), &tls.server_block(false));
    (nats, tls)
}

/// A test client of `nats` that trusts the test CA.
async fn trusting_client(nats: &SecureNats, tls: &TlsFiles) -> async_nats::Client {
    client(
        &nats.url(),
        async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(tls.ca.clone()),
    )
    .await
}

#[tokio::test]
async fn secure_flag_verifies_the_server_certificate() {
    bounded(async {
        // NSS's help says "without verification", but its code verifies:
        // nats.Secure() with no config checks against the system's CAs.
        let (nats, tls) = tls_server_unknown_ca();
        let mut refused = stanchion(&["-ns", &nats.url(), "-secure"], &[]);
        let output = assert_refused(&mut refused, "TLS with nats-server failed").await;
        assert!(output.contains("UnknownIssuer"), "{output}");
        assert!(output.contains("tls_client_cacert"), "{output}");

        // With the CA that signed it, -secure connects.
        let server = stanchion(
            &[
                "-ns",
                &nats.url(),
                "-secure",
                "-tls_client_cacert",
                s(&tls.ca),
            ],
            &[],
        );
        assert_serves(&server, trusting_client(&nats, &tls).await, "secure-ca").await;
    })
    .await;
}

#[tokio::test]
async fn tls_insecure_skips_verification() {
    bounded(async {
        let (nats, tls) = tls_server_unknown_ca();
        let by_flag = stanchion(&["-ns", &nats.url(), "--tls_insecure"], &[]);
        let nc = trusting_client(&nats, &tls).await;
        assert_serves(&by_flag, nc, "insecure-flag").await;
        drop(by_flag);

        // The config file's `tls { insecure: true }`, with `secure` too.
        let stan_conf = write(
            nats.dir.path(),
            "stan.conf",
            &format!(
                "streaming {{\n  ns: {:?}\n  secure: true\n  \
                 tls {{\n    insecure: true\n  }}\n}}\n",
                nats.url()
            ),
        );
        let by_file = stanchion(&["-sc", s(&stan_conf)], &[]);
        let nc = trusting_client(&nats, &tls).await;
        assert_serves(&by_file, nc, "insecure-file").await;
    })
    .await;
}

#[tokio::test]
async fn an_unverifiable_server_certificate_is_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls_files(dir.path(), &["127.0.0.1"]);
        let nats = SecureNats::start_in(dir, free_port(), &tls.server_block(true));
        // A client certificate but no CA: the system's CAs do not know ours.
        let mut server = stanchion(
            &[
                "-ns",
                &nats.url(),
                "-tls_client_cert",
                s(&tls.client_cert),
                "-tls_client_key",
                s(&tls.client_key),
            ],
            &[],
        );
        let output = assert_refused(&mut server, "TLS with nats-server failed").await;
        assert!(output.contains("UnknownIssuer"), "{output}");
    })
    .await;
}

#[tokio::test]
async fn a_missing_client_certificate_is_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls_files(dir.path(), &["127.0.0.1"]);
        let nats = SecureNats::start_in(dir, free_port(), &tls.server_block(true));
        let mut server = stanchion(&["-ns", &nats.url(), "-tls_client_cacert", s(&tls.ca)], &[]);
        assert_refused(&mut server, "TLS with nats-server failed").await;
    })
    .await;
}

#[tokio::test]
async fn tls_server_name_replaces_the_url_host() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls_files(dir.path(), &["nats.internal"]);
        let nats = SecureNats::start_in(dir, free_port(), &tls.server_block(false));
        let (url, ca) = (nats.url(), s(&tls.ca).to_string());
        // The certificate does not name 127.0.0.1.
        let mut wrong = stanchion(&["-ns", &url, "--tls_client_cacert", &ca], &[]);
        let output = assert_refused(&mut wrong, "TLS with nats-server failed").await;
        assert!(output.contains("not valid for name"), "{output}");

        let server = stanchion(
            &[
                "-ns",
                &url,
                "--tls_client_cacert",
                &ca,
                "--tls_server_name",
                "nats.internal",
            ],
            &[],
        );
        // The test client cannot rename: it trusts nothing but checks nothing either.
        let nc = client(&url, insecure_client()).await;
        assert_serves(&server, nc, "server-name").await;
    })
    .await;
}

/// A test client that requires TLS but accepts any certificate (for a
/// server whose certificate does not name 127.0.0.1).
fn insecure_client() -> async_nats::ConnectOptions {
    use async_nats::rustls;
    #[derive(Debug)]
    struct AnyCert(std::sync::Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let builder = rustls::ClientConfig::builder();
    let provider = builder.crypto_provider().clone();
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    async_nats::ConnectOptions::new()
        .require_tls(true)
        .tls_client_config(config)
}

#[tokio::test]
async fn config_file_tls_block_and_credentials() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls_files(dir.path(), &["127.0.0.1"]);
        let (user, pass) = ("erin", "pw-from-file-66");
        let conf = format!(
            "{}\nauthorization {{\n  user: {user:?}\n  password: {pass:?}\n}}",
            tls.server_block(true)
        );
        let nats = SecureNats::start_in(dir, free_port(), &conf);
        let stan_conf = write(
            nats.dir.path(),
            "stan.conf",
            &format!(
                "streaming {{\n  ns: {:?}\n  username: {user:?}\n  password: \"stale-pw-00\"\n  \
                 tls {{\n    client_cert: {:?}\n    client_key: {:?}\n    client_ca: {:?}\n  }}\n}}\n",
                nats.url(),
                s(&tls.client_cert),
                s(&tls.client_key),
                s(&tls.ca)
            ),
        );
        // The command line's password wins over the file's, as in NSS.
        let server = stanchion(&["-sc", s(&stan_conf), "--pass", pass], &[]);
        let nc = client(
            &nats.url(),
            tls.client_options().user_and_password(user.into(), pass.into()),
        )
        .await;
        assert_serves(&server, nc, "config-file").await;
        assert_no_secrets(&server.output(), &[pass, "stale-pw-00"]);
    })
    .await;
}
