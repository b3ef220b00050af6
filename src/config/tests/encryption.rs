//! Encryption at rest as NSS configures it: a key turns it on, the
//! variable wins over the flag, and a missing key or unknown cipher is a
//! startup error naming the setting.

use super::*;
use crate::crypto::{Cipher, MasterKey, KEY_ENV};

/// The channel key the configuration leads to, to compare keys by effect.
fn sealed_by(config: &Config) -> Option<(Vec<u8>, Cipher)> {
    let (key, cipher) = config.encryption().unwrap()?;
    let sealed = key.channel("c", cipher).encrypt(1, b"x");
    Some((sealed, cipher))
}

fn opens(sealed: &[u8], key: &[u8]) -> bool {
    MasterKey::new(key)
        .channel("c", Cipher::Aes)
        .decrypt(sealed)
        .is_ok()
}

#[test]
fn off_by_default_and_on_with_a_key_or_the_flag_and_the_variable() {
    Jail::expect_with(|jail| {
        assert!(ok(&[])?.encryption().unwrap().is_none());
        // The variable alone does not turn encryption on, as in NSS.
        jail.set_env(KEY_ENV, "from-env");
        assert!(ok(&[])?.encryption().unwrap().is_none());

        let (sealed, cipher) = sealed_by(&ok(&["-encrypt"])?).unwrap();
        assert_eq!(cipher, Cipher::platform_default());
        assert!(opens(&sealed, b"from-env") || cipher != Cipher::Aes);

        // A key turns it on; the variable still wins over it.
        let config = ok(&["-encryption_key", "from-flag", "-encryption_cipher", "aes"])?;
        assert!(!config.encrypt);
        let (sealed, cipher) = sealed_by(&config).unwrap();
        assert_eq!(cipher, Cipher::Aes);
        assert!(opens(&sealed, b"from-env"));
        assert!(!opens(&sealed, b"from-flag"));
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("STANCHION_ENCRYPT", "T");
        jail.set_env("STANCHION_ENCRYPTION_KEY", "env-flag");
        jail.set_env("STANCHION_ENCRYPTION_CIPHER", "CHACHA");
        let config = ok(&[])?;
        assert!(config.encrypt);
        let (sealed, cipher) = sealed_by(&config).unwrap();
        assert_eq!(cipher, Cipher::ChaCha);
        let chacha = MasterKey::new(b"env-flag").channel("c", Cipher::ChaCha);
        assert_eq!(chacha.decrypt(&sealed).unwrap().unwrap(), b"x");
        assert!(!format!("{config:?}").contains("env-flag"));
        Ok(())
    });
}

#[test]
fn a_missing_key_or_unknown_cipher_names_the_setting() {
    Jail::expect_with(|_| {
        let e = err(&["-encrypt"]);
        assert!(e.contains("encryption_key"), "{e}");
        assert!(e.contains("encryption key required"), "{e}");
        let e = err(&["-encryption_key=k", "-encryption_cipher=rot13"]);
        assert!(e.contains("encryption_cipher"), "{e}");
        assert!(e.contains("rot13"), "{e}");
        Ok(())
    });
}

#[test]
fn an_nss_config_file_sets_every_encryption_key() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "stan.conf",
            "streaming {\n  encrypt: true\n  encryption_cipher: \"CHACHA\"\n  encryption_key: \"file-key\"\n}\n",
        )?;
        let config = ok(&["-sc", "stan.conf"])?;
        assert!(config.encrypt);
        assert_eq!(config.encryption_cipher, "CHACHA");
        assert_eq!(
            config.encryption_key.as_ref().map(Secret::expose),
            Some("file-key")
        );
        jail.create_file("bad.conf", "streaming {\n  encryption_cipher: \"DES\"\n}\n")?;
        let e = err(&["-sc", "bad.conf"]);
        assert!(e.contains("DES"), "{e}");
        Ok(())
    });
}
