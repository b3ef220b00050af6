//! Secured nats-servers for the authentication and TLS tests, and the
//! material they need, all made in the test: a CA with server and client
//! certificates (rcgen), NKey pairs, and an operator/account/user JWT chain
//! with its `.creds` file. Also a stanchion launcher that sets environment
//! variables and logs at trace, so tests can check that no secret is logged.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use nkeys::KeyPair;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};
use serde_json::json;

use super::{free_port, nats_server_bin, next_msg, wait_for_port, Proc, WAIT};

/// The cluster ID every auth test's stanchion serves.
pub const CLUSTER: &str = "test-cluster";

/// A nats-server started from a config file written by the test.
pub struct SecureNats {
    /// The running process.
    pub proc: Proc,
    /// Its client port (on 127.0.0.1).
    pub port: u16,
    /// Holds its config and any material written next to it.
    pub dir: tempfile::TempDir,
}

impl SecureNats {
    /// Starts nats-server on a free port with `conf` (the `listen` line is
    /// added) and waits until it accepts connections.
    pub fn start(conf: &str) -> SecureNats {
        Self::start_in(tempfile::tempdir().unwrap(), free_port(), conf)
    }

    /// Starts nats-server in `dir` on `port` with `conf`: lets material
    /// be written to `dir` first, and a server start after stanchion.
    pub fn start_in(dir: tempfile::TempDir, port: u16, conf: &str) -> SecureNats {
        let path = dir.path().join("nats-server.conf");
        std::fs::write(&path, format!("listen: 127.0.0.1:{port}\n{conf}\n")).unwrap();
        let mut cmd = Command::new(nats_server_bin());
        cmd.arg("-c").arg(&path);
        let proc = Proc::spawn("nats-server", cmd);
        wait_for_port(port, Duration::from_secs(10));
        SecureNats { proc, port, dir }
    }

    /// The URL without credentials.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Writes `contents` to `name` in `dir` and returns the path.
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// `path` as a `&str` (temp dirs are UTF-8 here).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Starts stanchion (memory store) with `args` and `envs`, logging
/// everything at trace (async-nats included) unless `STANCHION_TEST_LOG`
/// says otherwise.
pub fn stanchion(args: &[&str], envs: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stanchion"));
    cmd.args(["--store", "memory", "--cluster_id", CLUSTER])
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("STANCHION_TEST_LOG").unwrap_or_else(|_| "trace".into()),
        )
        .envs(envs.iter().copied());
    Proc::spawn("stanchion", cmd)
}

/// Waits up to `limit` for the process to exit, or panics with its output.
pub async fn wait_exit(proc: &mut Proc, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = proc.try_wait() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "stanchion still running after {limit:?}:\n{}",
            proc.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `output` contains none of `secrets`.
pub fn assert_no_secrets(output: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !output.contains(secret),
            "a secret ({}...) was logged:\n{output}",
            &secret[..secret.len().min(4)]
        );
    }
}

/// Connects a NATS client with `options`, bounded by [`WAIT`].
pub async fn client(url: &str, options: async_nats::ConnectOptions) -> async_nats::Client {
    tokio::time::timeout(WAIT, options.connect(url))
        .await
        .expect("timed out connecting the test client")
        .expect("test client connects to nats-server")
}

/// Proves stanchion serves on `nc`: a STAN client connects through it,
/// publishes one message and receives it.
pub async fn roundtrip(nc: async_nats::Client, client_id: &str) {
    let mut opts = stanchion::client::Options::new(CLUSTER, client_id);
    opts.connect_wait = Duration::from_secs(5);
    let conn = stanchion::client::Connection::connect(nc, opts)
        .await
        .expect("STAN connect through stanchion");
    conn.publish("auth.check", "through")
        .await
        .expect("publish");
    let mut sub = conn
        .subscribe("auth.check", super::first())
        .await
        .expect("subscribe");
    assert_eq!(next_msg(&mut sub).await.data().as_ref(), b"through");
    conn.close().await.expect("close");
}

/// Bounds a whole test: each wait inside is bounded too, this is the net.
pub async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("test took longer than 90 s");
}

// ---- TLS material ----

/// PEM files of a test CA, a server certificate and a client certificate.
pub struct TlsFiles {
    /// The CA certificate both sides trust.
    pub ca: PathBuf,
    /// nats-server's certificate, signed by the CA.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// stanchion's (and the test client's) certificate, signed by the CA.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

/// Writes a CA, a server certificate valid for `server_names` (DNS names or
/// IP addresses) and a client certificate into `dir`.
pub fn tls_files(dir: &Path, server_names: &[&str]) -> TlsFiles {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "stanchion test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();

    let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let names = server_names.iter().map(|n| n.to_string()).collect();
    let (server_cert, server_key) = leaf(names, "nats-server", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(vec![], "stanchion", ExtendedKeyUsagePurpose::ClientAuth);
    TlsFiles {
        ca: write(dir, "ca.pem", &ca.pem()),
        server_cert: write(dir, "server-cert.pem", &server_cert),
        server_key: write(dir, "server-key.pem", &server_key),
        client_cert: write(dir, "client-cert.pem", &client_cert),
        client_key: write(dir, "client-key.pem", &client_key),
    }
}

impl TlsFiles {
    /// nats-server's `tls {}` block; `verify` requires client certificates.
    pub fn server_block(&self, verify: bool) -> String {
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: {verify}\n  timeout: 2\n}}",
            s(&self.server_cert),
            s(&self.server_key),
            s(&self.ca)
        )
    }

    /// Test-client options trusting the CA and presenting the client certificate.
    pub fn client_options(&self) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(self.ca.clone())
            .add_client_certificate(self.client_cert.clone(), self.client_key.clone())
    }
}

// ---- JWTs ----

/// An operator, an account it signed and a user the account signed.
pub struct JwtChain {
    /// The operator's self-signed JWT (nats-server's `operator`).
    pub operator_jwt: String,
    /// The account's public key (the `resolver_preload` key).
    pub account_public: String,
    /// The account's JWT, signed by the operator.
    pub account_jwt: String,
    /// The user's JWT, signed by the account.
    pub user_jwt: String,
    /// The user's NKey seed.
    pub user_seed: String,
}

impl JwtChain {
    /// A fresh chain.
    pub fn new() -> JwtChain {
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        let user = KeyPair::new_user();
        let operator_jwt = encode_jwt(
            &operator,
            &operator.public_key(),
            "test-operator",
            json!({ "type": "operator", "version": 2 }),
        );
        let unlimited = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1
        });
        let account_jwt = encode_jwt(
            &operator,
            &account.public_key(),
            "test-account",
            json!({
                "limits": unlimited,
                "default_permissions": { "pub": {}, "sub": {} },
                "type": "account",
                "version": 2
            }),
        );
        JwtChain {
            operator_jwt,
            account_public: account.public_key(),
            account_jwt,
            user_jwt: user_jwt(&account, &user),
            user_seed: user.seed().unwrap(),
        }
    }

    /// nats-server's config for operator mode, with the account preloaded.
    pub fn server_conf(&self) -> String {
        format!(
            "operator: {:?}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {:?}\n}}",
            self.operator_jwt, self.account_public, self.account_jwt
        )
    }

    /// The user's `.creds` file, as `nsc` writes it.
    pub fn creds(&self) -> String {
        creds(&self.user_jwt, &self.user_seed)
    }
}

/// A user JWT for `user`, signed by `account`.
pub fn user_jwt(account: &KeyPair, user: &KeyPair) -> String {
    encode_jwt(
        account,
        &user.public_key(),
        "stanchion",
        json!({
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2
        }),
    )
}

/// A `.creds` file holding `jwt` and `seed`.
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// A JWT (`header.claims.signature`, base64url without padding) with the
/// claims NATS expects, signed by `issuer` over `header.claims`.
fn encode_jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = json!({ "typ": "JWT", "alg": "ed25519-nkey" });
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The Go library's jti is a hash of the claims; nats-server only needs
    // it to be unique, so random bytes do.
    let jti = data_encoding::BASE32_NOPAD.encode(&rand::random::<[u8; 32]>());
    let claims = json!({
        "jti": jti,
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}
