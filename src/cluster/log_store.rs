//! The Raft log and vote, in sled: one tree of entries keyed by their
//! index (big-endian, so sled's order is the log's), one of metadata.
//!
//! Writes that openraft must see durable (the vote, appended entries) are
//! flushed before they are reported done.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};

use super::{decode, encode, Committed, NodeId, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// The log and vote of one node.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    committed: Arc<Committed>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`.
    ///
    /// # Errors
    /// sled's, naming nothing: the caller names the directory.
    pub fn open(dir: &Path) -> Result<LogStore, sled::Error> {
        let db = sled::Config::new().path(dir).open()?;
        LogStore::on(db)
    }

    /// The log in an already open sled database (its trees `raft_log` and
    /// `raft_meta`), which the state machine shares.
    ///
    /// # Errors
    /// sled's.
    pub fn on(db: sled::Db) -> Result<LogStore, sled::Error> {
        let store = LogStore {
            log: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
            db,
            committed: Arc::default(),
        };
        if let Ok(Some(Some(c))) = store.get_meta::<Option<LogId<NodeId>>>(COMMITTED, read_logs) {
            store.committed.set(Some(c.index));
        }
        Ok(store)
    }

    /// The commit index as last saved, for monitoring.
    pub fn committed(&self) -> Arc<Committed> {
        self.committed.clone()
    }

    /// Whether this log never held anything: no vote, no entry, nothing
    /// purged. A node with a fresh log has never been part of a cluster.
    ///
    /// # Errors
    /// sled's.
    pub fn is_fresh(&self) -> Result<bool, sled::Error> {
        Ok(self.log.is_empty() && self.meta.is_empty())
    }

    /// The sled database, for the state machine's records.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        err: fn(&dyn std::fmt::Display) -> StorageIOError<NodeId>,
    ) -> StorageResult<Option<T>> {
        let Some(raw) = self.meta.get(key).map_err(|e| err(&e))? else {
            return Ok(None);
        };
        decode(&raw).map(Some).map_err(|e| err(&e).into())
    }

    async fn put_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        err: fn(&dyn std::fmt::Display) -> StorageIOError<NodeId>,
    ) -> StorageResult<()> {
        let raw = encode(value).map_err(|e| err(&e))?;
        self.meta.insert(key, raw).map_err(|e| err(&e))?;
        self.db.flush_async().await.map_err(|e| err(&e))?;
        Ok(())
    }

    fn last_entry_id(&self) -> StorageResult<Option<LogId<NodeId>>> {
        let Some((_, raw)) = self.log.last().map_err(|e| read_logs(&e))? else {
            return Ok(None);
        };
        let entry: Entry<TypeConfig> = decode(&raw).map_err(|e| read_logs(&e))?;
        Ok(Some(entry.log_id))
    }
}

fn read_logs(e: &dyn std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::read_logs(openraft::AnyError::error(e.to_string()))
}

fn write_logs(e: &dyn std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::write_logs(openraft::AnyError::error(e.to_string()))
}

fn read_vote(e: &dyn std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::read_vote(openraft::AnyError::error(e.to_string()))
}

fn write_vote(e: &dyn std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::write_vote(openraft::AnyError::error(e.to_string()))
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(i) => key(*i),
            Bound::Excluded(i) => key(i.saturating_add(1)),
            Bound::Unbounded => key(0),
        };
        let mut out = Vec::new();
        for item in self.log.range(start..) {
            let (k, raw) = item.map_err(|e| read_logs(&e))?;
            let index = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0xff; 8]));
            if !range.contains(&index) {
                break;
            }
            out.push(decode(&raw).map_err(|e| read_logs(&e))?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta(LAST_PURGED, read_logs)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.put_meta(VOTE, vote, write_vote).await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        self.get_meta(VOTE, read_vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        // Not flushed: losing it only means applying from the saved applied
        // point up to what the cluster says is committed.
        let raw = encode(&committed).map_err(|e| write_logs(&e))?;
        self.meta
            .insert(COMMITTED, raw)
            .map_err(|e| write_logs(&e))?;
        self.committed.set(committed.map(|c| c.index));
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self
            .get_meta::<Option<LogId<NodeId>>>(COMMITTED, read_logs)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let raw = encode(&entry).map_err(|e| write_logs(&e))?;
            batch.insert(&key(entry.log_id.index), raw);
        }
        self.log.apply_batch(batch).map_err(|e| write_logs(&e))?;
        let flushed = self.db.flush_async().await;
        callback.log_io_completed(flushed.map(drop).map_err(std::io::Error::other));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(key(log_id.index)..) {
            let (k, _) = item.map_err(|e| write_logs(&e))?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(|e| write_logs(&e))?;
        self.db.flush_async().await.map_err(|e| write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // The purge point first: a crash in between leaves entries that are
        // known to be purged, never a gap the log does not know about.
        self.put_meta(LAST_PURGED, &log_id, write_logs).await?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=key(log_id.index)) {
            let (k, _) = item.map_err(|e| write_logs(&e))?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(|e| write_logs(&e))?;
        Ok(())
    }
}
