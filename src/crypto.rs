//! Message payload encryption, in the reference server's format so that its
//! encrypted stores can be read and stanchion's own are built the same way.
//!
//! An encrypted payload is one byte naming the cipher (1 AES-256-GCM,
//! 2 ChaCha20-Poly1305), a 12-byte nonce, then the ciphertext with its tag.
//! Each channel has its own key, derived from the master key and the
//! channel's name. Empty payloads are stored as they are, and a payload that
//! does not start with a cipher code is plaintext (written before
//! encryption was turned on).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use chacha20poly1305::ChaCha20Poly1305;
use sha2::{Digest, Sha256};

/// The variable that holds the key; when set it wins over the flag, as in NSS.
pub const KEY_ENV: &str = "NATS_STREAMING_ENCRYPTION_KEY";

/// Bytes of the nonce that follows the cipher code.
const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag at the end of the ciphertext.
const TAG_LEN: usize = 16;

/// A payload cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-256-GCM (code 1).
    Aes,
    /// ChaCha20-Poly1305 (code 2).
    ChaCha,
}

impl Cipher {
    /// NSS's choice when none is configured: AES where the CPU accelerates
    /// it (x86), ChaCha20-Poly1305 elsewhere.
    pub fn platform_default() -> Cipher {
        if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
            Cipher::Aes
        } else {
            Cipher::ChaCha
        }
    }

    /// Parses NSS's names (`AES`, `CHACHA`, any case); empty means the
    /// platform default.
    ///
    /// # Errors
    /// NSS's text for an unknown cipher.
    pub fn parse(name: &str) -> Result<Cipher, CryptoError> {
        match name.trim().to_ascii_uppercase().as_str() {
            "" => Ok(Cipher::platform_default()),
            "AES" => Ok(Cipher::Aes),
            "CHACHA" | "CHACHAPOLY" | "CHACHA20" | "CHACHA20-POLY1305" => Ok(Cipher::ChaCha),
            _ => Err(CryptoError::UnknownCipher(name.to_string())),
        }
    }

    /// The byte that starts a payload encrypted with this cipher.
    pub fn code(self) -> u8 {
        match self {
            Cipher::Aes => 1,
            Cipher::ChaCha => 2,
        }
    }

    /// The name NSS uses.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes => "AES",
            Cipher::ChaCha => "CHACHA",
        }
    }

    fn from_code(code: u8) -> Option<Cipher> {
        match code {
            1 => Some(Cipher::Aes),
            2 => Some(Cipher::ChaCha),
            _ => None,
        }
    }
}

/// Encryption failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A cipher name that is neither AES nor CHACHA.
    #[error("encryption cipher not supported: {0:?} (use AES or CHACHA)")]
    UnknownCipher(String),
    /// Encryption is on but no key was given.
    #[error("encryption key required (--encryption_key or {KEY_ENV})")]
    KeyRequired,
    /// A payload that names a cipher but is too short to hold a nonce and tag.
    #[error("encrypted payload too short ({0} bytes)")]
    Truncated(usize),
    /// Authentication failed: the wrong key, or damaged bytes.
    #[error("payload does not decrypt with this key (wrong key or damaged data)")]
    WrongKey,
}

/// The key as configured: the variable wins over the flag, as in NSS.
pub fn configured_key(flag: Option<&str>) -> Option<Vec<u8>> {
    std::env::var(KEY_ENV)
        .ok()
        .filter(|k| !k.is_empty())
        .map(String::into_bytes)
        .or_else(|| {
            flag.filter(|k| !k.is_empty())
                .map(|k| k.as_bytes().to_vec())
        })
}

/// The SHA-256 of the configured key, from which every channel key comes.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Hashes the key as given.
    pub fn new(key: &[u8]) -> MasterKey {
        MasterKey(Sha256::digest(key).into())
    }

    /// The cipher of one channel, encrypting with `cipher`.
    ///
    /// The channel key is SHA-256 over `len(h) + 1 + len(channel)` zero
    /// bytes followed by `h`, `.` and the channel name: NSS builds its key
    /// buffer that way (it appends to a slice made with that length), and
    /// without the zeros nothing it wrote decrypts.
    pub fn channel(&self, channel: &str, cipher: Cipher) -> ChannelCipher {
        let mut h = Sha256::new();
        h.update(vec![0u8; self.0.len() + 1 + channel.len()]);
        h.update(self.0);
        h.update(b".");
        h.update(channel.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        ChannelCipher {
            aes: Aes256Gcm::new(&key.into()),
            chacha: ChaCha20Poly1305::new(&key.into()),
            cipher,
            prefix: rand_prefix(),
        }
    }
}

/// A random nonce prefix: with the message sequence after it, nonces never
/// repeat under one key, even when a crash makes a sequence be used again.
fn rand_prefix() -> [u8; 4] {
    use aes_gcm::aead::rand_core::RngCore;
    let mut p = [0; 4];
    aes_gcm::aead::OsRng.fill_bytes(&mut p);
    p
}

/// One channel's keys: decrypts either cipher, encrypts with the chosen one.
pub struct ChannelCipher {
    aes: Aes256Gcm,
    chacha: ChaCha20Poly1305,
    cipher: Cipher,
    prefix: [u8; 4],
}

impl ChannelCipher {
    /// Encrypts a payload stored under sequence `seq`; empty stays empty.
    pub fn encrypt(&self, seq: u64, data: &[u8]) -> Vec<u8> {
        if data.is_empty() {
            return Vec::new();
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..4].copy_from_slice(&self.prefix);
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        let n = Nonce::from_slice(&nonce);
        let sealed = match self.cipher {
            Cipher::Aes => self.aes.encrypt(n, data),
            Cipher::ChaCha => self.chacha.encrypt(n, data),
        }
        // Both ciphers fail only on inputs of 64 GiB and more.
        .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(self.cipher.code());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext of a stored payload: decrypted when it starts with a
    /// cipher code, as it is otherwise (empty, or written unencrypted).
    ///
    /// # Errors
    /// A payload too short for its nonce and tag, or one that does not
    /// authenticate under this key.
    pub fn decrypt(&self, data: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        let Some(cipher) = data.first().copied().and_then(Cipher::from_code) else {
            return Ok(None);
        };
        if data.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Truncated(data.len()));
        }
        let nonce = Nonce::from_slice(&data[1..=NONCE_LEN]);
        let body = &data[1 + NONCE_LEN..];
        match cipher {
            Cipher::Aes => self.aes.decrypt(nonce, body),
            Cipher::ChaCha => self.chacha.decrypt(nonce, body),
        }
        .map(Some)
        .map_err(|_| CryptoError::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ciphers_round_trip_and_empty_stays_empty() {
        let key = MasterKey::new(b"secret");
        for cipher in [Cipher::Aes, Cipher::ChaCha] {
            let c = key.channel("orders", cipher);
            let sealed = c.encrypt(7, b"hello");
            assert_eq!(sealed[0], cipher.code());
            assert_eq!(sealed.len(), 1 + NONCE_LEN + 5 + TAG_LEN);
            assert_eq!(c.decrypt(&sealed).unwrap().unwrap(), b"hello");
            assert!(c.encrypt(8, b"").is_empty());
            assert_eq!(c.decrypt(b"").unwrap(), None);
        }
    }

    #[test]
    fn another_key_or_channel_is_refused_and_plaintext_passes() {
        let c = MasterKey::new(b"secret").channel("orders", Cipher::Aes);
        let sealed = c.encrypt(1, b"hello");
        let other_key = MasterKey::new(b"other").channel("orders", Cipher::Aes);
        assert_eq!(other_key.decrypt(&sealed), Err(CryptoError::WrongKey));
        let other_channel = MasterKey::new(b"secret").channel("payments", Cipher::Aes);
        assert_eq!(other_channel.decrypt(&sealed), Err(CryptoError::WrongKey));
        assert_eq!(c.decrypt(b"plain text").unwrap(), None);
        assert_eq!(c.decrypt(&[1, 2, 3]), Err(CryptoError::Truncated(3)));
    }

    #[test]
    fn cipher_names_parse_as_nss_spells_them() {
        assert_eq!(Cipher::parse("aes").unwrap(), Cipher::Aes);
        assert_eq!(Cipher::parse("CHACHA").unwrap(), Cipher::ChaCha);
        assert_eq!(Cipher::parse("").unwrap(), Cipher::platform_default());
        assert!(Cipher::parse("rot13").is_err());
    }
}
