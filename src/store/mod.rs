//! Persistence of channel logs, subscriptions, clients and server info.
//!
//! The [`Store`] trait is synchronous and object-safe: the server calls it
//! from blocking threads (never from async workers on hot paths). Two
//! implementations: [`SledStore`] (durable, default) and [`MemoryStore`]
//! (tests and ephemeral use). This room knows nothing of NATS or subjects.

mod codec;
mod encrypted;
mod memory;
mod msg_index;
mod msg_record;
pub mod retention;
mod segment_io;
mod segments;
mod sled_channel;
mod sled_store;
mod sub_log;
mod sub_record;

pub use encrypted::{refuse_if_encrypted, EncryptedStore};
pub use memory::MemoryStore;
pub use sled_store::{SledOptions, SledStore};

use std::sync::Arc;

use crate::protocol::pb::MsgProto;

/// Records stanchion persists (package `store` in `proto/store.proto`).
#[allow(missing_docs, clippy::all)]
pub mod records {
    include!(concat!(env!("OUT_DIR"), "/store.rs"));
}
pub use records::{ClientInfo, ServerInfo, SubState};

/// Fail-stop store failures. Expected outcomes (a missing message) are values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The underlying database failed (I/O, corruption detected by sled).
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A persisted record did not decode.
    #[error("store: corrupt record in {what}: {source}")]
    Corrupt {
        /// Which record kind failed to decode.
        what: &'static str,
        /// The decode failure.
        source: prost::DecodeError,
    },
    /// An append whose first sequence does not follow the channel's last.
    #[error("store: append of sequence {got} to channel {channel:?} whose last is {last}")]
    OutOfOrder {
        /// The channel appended to.
        channel: String,
        /// The channel's last sequence.
        last: u64,
        /// The first sequence of the refused append.
        got: u64,
    },
    /// The store's encryption does not match the configured one.
    #[error("store: {0}")]
    Encryption(String),
    /// A stored payload that does not decrypt.
    #[error("store: message {channel:?} sequence {seq} does not decrypt: {why}")]
    Decrypt {
        /// The channel of the message.
        channel: String,
        /// The message's sequence.
        seq: u64,
        /// Why it does not decrypt.
        why: String,
    },
    /// A clustered write that the Raft group did not commit (this node is
    /// no longer the leader, or no majority answers).
    #[error("store: not replicated: {0}")]
    Replication(String),
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Counts that describe a channel's log; cheap to read at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelState {
    /// Sequence of the oldest stored message (0 when the log is empty).
    pub first: u64,
    /// Sequence of the newest stored message (0 when nothing was ever stored).
    /// After messages are removed, `last` stays, so sequences are never reused.
    pub last: u64,
    /// Number of stored messages.
    pub msgs: u64,
    /// Total encoded size of the stored messages.
    pub bytes: u64,
}

/// A subscription as recovered at start: its state and unacknowledged sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredSub {
    /// The persisted subscription record.
    pub state: SubState,
    /// Sequences sent but not acknowledged, ascending.
    pub pending: Vec<u64>,
}

/// One change to a channel's subscriptions. The server batches them and
/// applies each batch with one call; they are made durable by the next flush.
#[derive(Debug, Clone, PartialEq)]
pub enum SubUpdate {
    /// Create or replace a subscription record.
    Put(SubState),
    /// Remove a subscription and all of its pending sequences.
    Delete(u64),
    /// A message was sent to a subscription and awaits its ack.
    AddPending {
        /// Subscription ID.
        sub: u64,
        /// Sequence sent.
        seq: u64,
    },
    /// A pending message was acknowledged (or handed to another member).
    RemovePending {
        /// Subscription ID.
        sub: u64,
        /// Sequence acknowledged.
        seq: u64,
    },
}

/// The whole persistent state of one server.
pub trait Store: Send + Sync + 'static {
    /// The server info saved at first start, if any.
    fn server_info(&self) -> Result<Option<ServerInfo>>;
    /// Saves the server info (subjects handed to clients).
    fn set_server_info(&self, info: &ServerInfo) -> Result<()>;
    /// Every registered client.
    fn clients(&self) -> Result<Vec<ClientInfo>>;
    /// Registers (or replaces) a client.
    fn put_client(&self, client: &ClientInfo) -> Result<()>;
    /// Forgets a client; unknown IDs are not an error.
    fn delete_client(&self, id: &str) -> Result<()>;
    /// Names of every stored channel, in no particular order.
    fn channel_names(&self) -> Result<Vec<String>>;
    /// Opens a channel's store, creating an empty one if needed.
    fn open_channel(&self, name: &str) -> Result<Arc<dyn ChannelStore>>;
    /// Deletes a channel with its messages and subscriptions.
    fn delete_channel(&self, name: &str) -> Result<()>;
    /// Makes every write so far durable (fsync); one call covers all channels.
    fn flush(&self) -> Result<()>;
}

/// One channel's message log and subscriptions.
pub trait ChannelStore: Send + Sync + 'static {
    /// The channel's name.
    fn name(&self) -> &str;
    /// Current counts; O(1).
    fn state(&self) -> ChannelState;
    /// Appends messages whose sequences continue the log (`last + 1`, `last + 2`, ...).
    /// One call is one store write: the server batches many publishes into it.
    fn append(&self, msgs: &[MsgProto]) -> Result<()>;
    /// Makes every message appended to this channel so far durable: the
    /// commit point of a publish. Its subscription changes and removals may
    /// still be pending (see `Store::flush`); other channels are not waited
    /// for.
    fn commit(&self) -> Result<()>;
    /// The message with this sequence, if stored.
    fn get(&self, seq: u64) -> Result<Option<MsgProto>>;
    /// Up to `max` stored messages with sequence >= `from`, ascending.
    fn range(&self, from: u64, max: usize) -> Result<Vec<MsgProto>>;
    /// The first stored sequence whose timestamp is >= `timestamp` (ns), if any.
    fn first_seq_at_or_after(&self, timestamp: i64) -> Result<Option<u64>>;
    /// Removes stored messages with sequence <= `seq` (retention limits).
    fn remove_through(&self, seq: u64) -> Result<()>;
    /// Makes an empty log continue after `last`: its next append is
    /// `last + 1`. For logs brought from another store whose first messages
    /// were removed there. Refused when the log holds messages or already
    /// went past `last`.
    fn start_after(&self, last: u64) -> Result<()>;
    /// Every stored subscription with its pending sequences.
    fn subs(&self) -> Result<Vec<RecoveredSub>>;
    /// Applies a batch of subscription changes in order.
    fn apply_subs(&self, updates: &[SubUpdate]) -> Result<()>;
    /// Like [`ChannelStore::apply_subs`], for changes that may reach the
    /// store a little later (sent and acknowledged positions: losing them
    /// only redelivers): a clustered leader batches them into one
    /// replicated write a second, as NSS does. Changes of one channel stay
    /// in order with its other writes. Without such batching, this is
    /// `apply_subs`.
    fn apply_subs_lazily(&self, updates: &[SubUpdate]) -> Result<()> {
        self.apply_subs(updates)
    }
}

#[cfg(test)]
mod conformance;
