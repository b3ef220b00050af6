//! Encryption at rest: a [`Store`] wrapper that encrypts message payloads
//! on their way in and decrypts them on their way out, so that neither
//! store has to know about keys.
//!
//! Only the payload (`data`) is encrypted, as in the reference server;
//! subjects, reply inboxes and timestamps stay readable so that limits and
//! start positions work without the key. Each channel has its own key (see
//! [`crate::crypto`]). The store records a check value in its server info,
//! sealed with the key, so that starting with the wrong key, or with a key
//! on a store written without one (or the reverse), is refused at startup
//! instead of delivering garbage.

use std::sync::Arc;

use super::{
    ChannelState, ChannelStore, ClientInfo, RecoveredSub, Result, ServerInfo, Store, StoreError,
    SubUpdate,
};
use crate::crypto::{ChannelCipher, Cipher, MasterKey};
use crate::protocol::pb::MsgProto;

/// The channel name whose key seals the check value. No channel can have
/// it (channel names are never empty), so no payload shares its key.
const CHECK_CHANNEL: &str = "";
/// The plaintext of the check value.
const CHECK_TEXT: &[u8] = b"stanchion encryption key check";

/// A store whose message payloads are encrypted with one master key.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    key: MasterKey,
    cipher: Cipher,
}

impl EncryptedStore {
    /// Wraps `inner`, checking that it was written with this key, or is new.
    ///
    /// # Errors
    /// [`StoreError::Encryption`] when the store holds a check value the key
    /// does not open, or was written without encryption.
    pub fn open(inner: Arc<dyn Store>, key: MasterKey, cipher: Cipher) -> Result<Self> {
        if let Some(info) = inner.server_info()? {
            if info.key_check.is_empty() {
                return Err(StoreError::Encryption(
                    "the store was written without encryption; start without --encrypt and \
                     --encryption_key (or import it into a new, encrypted store)"
                        .into(),
                ));
            }
            let opened = key.channel(CHECK_CHANNEL, cipher).decrypt(&info.key_check);
            if !matches!(opened, Ok(Some(ref text)) if text == CHECK_TEXT) {
                return Err(StoreError::Encryption(
                    "the encryption key is not the one the store was written with".into(),
                ));
            }
        }
        Ok(Self { inner, key, cipher })
    }
}

/// Refuses a store written with encryption when no key is configured.
///
/// # Errors
/// [`StoreError::Encryption`] when the store's server info holds a check value.
pub fn refuse_if_encrypted(store: &dyn Store) -> Result<()> {
    match store.server_info()? {
        Some(info) if !info.key_check.is_empty() => Err(StoreError::Encryption(
            "the store is encrypted; start with --encrypt and its key \
             (--encryption_key or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        )),
        _ => Ok(()),
    }
}

impl Store for EncryptedStore {
    /// The info as it was set: the check value is this wrapper's own.
    fn server_info(&self) -> Result<Option<ServerInfo>> {
        Ok(self.inner.server_info()?.map(|info| ServerInfo {
            key_check: Default::default(),
            ..info
        }))
    }

    fn set_server_info(&self, info: &ServerInfo) -> Result<()> {
        let check = self.key.channel(CHECK_CHANNEL, self.cipher);
        self.inner.set_server_info(&ServerInfo {
            key_check: check.encrypt(0, CHECK_TEXT).into(),
            ..info.clone()
        })
    }

    fn clients(&self) -> Result<Vec<ClientInfo>> {
        self.inner.clients()
    }

    fn put_client(&self, client: &ClientInfo) -> Result<()> {
        self.inner.put_client(client)
    }

    fn delete_client(&self, id: &str) -> Result<()> {
        self.inner.delete_client(id)
    }

    fn channel_names(&self) -> Result<Vec<String>> {
        self.inner.channel_names()
    }

    fn open_channel(&self, name: &str) -> Result<Arc<dyn ChannelStore>> {
        Ok(Arc::new(EncryptedChannel {
            inner: self.inner.open_channel(name)?,
            cipher: self.key.channel(name, self.cipher),
        }))
    }

    fn delete_channel(&self, name: &str) -> Result<()> {
        self.inner.delete_channel(name)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

/// One channel of an [`EncryptedStore`].
struct EncryptedChannel {
    inner: Arc<dyn ChannelStore>,
    cipher: ChannelCipher,
}

impl EncryptedChannel {
    /// The message as stored, back to its plaintext payload. A non-empty
    /// payload must be encrypted: this store never writes plaintext.
    fn open(&self, mut msg: MsgProto) -> Result<MsgProto> {
        if msg.data.is_empty() {
            return Ok(msg);
        }
        let seq = msg.sequence;
        let damaged = |why: String| StoreError::Decrypt {
            channel: self.inner.name().to_owned(),
            seq,
            why,
        };
        match self.cipher.decrypt(&msg.data) {
            Ok(Some(plain)) => {
                msg.data = plain.into();
                Ok(msg)
            }
            Ok(None) => Err(damaged("payload is not encrypted".into())),
            Err(e) => Err(damaged(e.to_string())),
        }
    }
}

impl ChannelStore for EncryptedChannel {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn state(&self) -> ChannelState {
        self.inner.state()
    }

    fn append(&self, msgs: &[MsgProto]) -> Result<()> {
        let sealed: Vec<MsgProto> = msgs
            .iter()
            .map(|m| MsgProto {
                data: self.cipher.encrypt(m.sequence, &m.data).into(),
                ..m.clone()
            })
            .collect();
        self.inner.append(&sealed)
    }

    fn commit(&self) -> Result<()> {
        self.inner.commit()
    }

    fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        self.inner.get(seq)?.map(|m| self.open(m)).transpose()
    }

    fn range(&self, from: u64, max: usize) -> Result<Vec<MsgProto>> {
        self.inner
            .range(from, max)?
            .into_iter()
            .map(|m| self.open(m))
            .collect()
    }

    fn first_seq_at_or_after(&self, timestamp: i64) -> Result<Option<u64>> {
        self.inner.first_seq_at_or_after(timestamp)
    }

    fn remove_through(&self, seq: u64) -> Result<()> {
        self.inner.remove_through(seq)
    }

    fn start_after(&self, last: u64) -> Result<()> {
        self.inner.start_after(last)
    }

    fn subs(&self) -> Result<Vec<RecoveredSub>> {
        self.inner.subs()
    }

    fn apply_subs(&self, updates: &[SubUpdate]) -> Result<()> {
        self.inner.apply_subs(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn msg(seq: u64, data: &[u8]) -> MsgProto {
        MsgProto {
            sequence: seq,
            subject: "orders".into(),
            data: data.to_vec().into(),
            timestamp: 1_000 + i64::try_from(seq).unwrap(),
            ..Default::default()
        }
    }

    fn encrypted(inner: &Arc<dyn Store>, key: &[u8]) -> Result<EncryptedStore> {
        EncryptedStore::open(inner.clone(), MasterKey::new(key), Cipher::Aes)
    }

    #[test]
    fn payloads_are_sealed_below_and_plain_above() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = encrypted(&inner, b"secret").unwrap();
        let ch = store.open_channel("orders").unwrap();
        ch.append(&[msg(1, b"hello"), msg(2, b"")]).unwrap();
        let below = inner
            .open_channel("orders")
            .unwrap()
            .get(1)
            .unwrap()
            .unwrap();
        assert_eq!(below.data[0], Cipher::Aes.code());
        assert!(!below.data.windows(5).any(|w| w == b"hello"));
        assert_eq!(ch.get(1).unwrap().unwrap(), msg(1, b"hello"));
        assert_eq!(ch.range(1, 10).unwrap(), [msg(1, b"hello"), msg(2, b"")]);
        assert_eq!(ch.first_seq_at_or_after(1_002).unwrap(), Some(2));
    }

    #[test]
    fn the_check_value_refuses_another_key_and_a_plain_store() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = encrypted(&inner, b"secret").unwrap();
        store.set_server_info(&ServerInfo::default()).unwrap();
        assert!(encrypted(&inner, b"secret").is_ok());
        let wrong = encrypted(&inner, b"other").err().unwrap();
        assert!(wrong.to_string().contains("not the one"), "{wrong}");
        let plain = refuse_if_encrypted(inner.as_ref()).unwrap_err();
        assert!(plain.to_string().contains("store is encrypted"), "{plain}");

        let unencrypted: Arc<dyn Store> = Arc::new(MemoryStore::new());
        unencrypted.set_server_info(&ServerInfo::default()).unwrap();
        assert!(refuse_if_encrypted(unencrypted.as_ref()).is_ok());
        let e = encrypted(&unencrypted, b"secret").err().unwrap();
        assert!(e.to_string().contains("without encryption"), "{e}");
    }

    #[test]
    fn a_plaintext_or_damaged_payload_is_an_error_naming_channel_and_sequence() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        inner
            .open_channel("orders")
            .unwrap()
            .append(&[msg(1, b"plain")])
            .unwrap();
        let store = encrypted(&inner, b"secret").unwrap();
        let e = store.open_channel("orders").unwrap().get(1).unwrap_err();
        assert!(e.to_string().contains("\"orders\" sequence 1"), "{e}");

        let other = encrypted(&inner, b"other").unwrap();
        other
            .open_channel("orders")
            .unwrap()
            .append(&[msg(2, b"x")])
            .unwrap();
        let e = store
            .open_channel("orders")
            .unwrap()
            .range(2, 1)
            .unwrap_err();
        assert!(e.to_string().contains("wrong key"), "{e}");
    }
}
