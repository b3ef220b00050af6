//! The conformance suite over an encrypted sled store (tiny record
//! limits): the wrapper must not change what the store traits promise.
//! All tests but those that check byte counts, which there are of the
//! encrypted payloads (as NSS counts them).

use std::sync::Arc;

use super::{open_sled, Factory};
use crate::crypto::{Cipher, MasterKey};
use crate::store::{EncryptedStore, Store};

/// Runs a test against an encrypted sled store in a fresh directory.
fn with_encrypted_sled(test: fn(Factory)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    test(&|| {
        let sled = Arc::new(open_sled(&path)) as Arc<dyn Store>;
        let key = MasterKey::new(b"conformance");
        Arc::new(EncryptedStore::open(sled, key, Cipher::ChaCha).unwrap()) as Arc<dyn Store>
    });
}

macro_rules! encrypted_conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod encrypted_sled_store {
            $( #[test] fn $name() { super::with_encrypted_sled(super::super::$name) } )*
        }
    };
}

encrypted_conformance_tests!(
    server_info_round_trip,
    clients_put_replace_delete,
    open_channel_shares_data_and_lists_names,
    append_out_of_order_is_refused,
    get_and_range_edges,
    first_seq_at_or_after_edges,
    subs_with_pending,
    delete_channel_removes_everything,
    everything_survives_reopen,
);
