//! The Raft log and vote of one node: entries in segment files
//! ([`super::log_file`]) under the Raft directory's `log/`, the vote and
//! the purge point in a small metadata file beside them.
//!
//! As with NSS, an appended entry is written (into the page cache, so a
//! killed process loses nothing) but fdatasynced only with `cluster_sync`:
//! without it, an entry is durable by being on a majority of nodes. The
//! vote is always synced, since a node that forgot it could vote twice in
//! one term. Recent entries stay in memory too, so the leader replicates
//! and each node applies them without reading or decoding them again.
//!
//! The Raft directory's sled database is kept for the state machine's
//! records; a log that earlier versions kept in it is moved into the
//! segment files when the node starts.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    CommittedLeaderId, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError,
    Vote,
};

use super::log_file::{LogFiles, RecordId};
use super::{decode, encode, Committed, NodeId, TypeConfig};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// At most this many recent entries, and [`CACHE_BYTES`] of them, stay in
/// memory.
const CACHE_ENTRIES: usize = 1024;
const CACHE_BYTES: usize = 16 * 1024 * 1024;
const META: &str = "meta";

/// What the log keeps beside its entries.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Meta {
    vote: Option<Vote<NodeId>>,
    /// Saved with the other fields, not on its own: losing it only means
    /// applying from the saved applied point up to what the cluster says
    /// is committed.
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

/// Recent entries, contiguous up to the last one appended.
#[derive(Default)]
struct Cache {
    entries: VecDeque<(Entry<TypeConfig>, usize)>,
    bytes: usize,
}

impl Cache {
    fn get(&self, index: u64) -> Option<&Entry<TypeConfig>> {
        let first = self.entries.front()?.0.log_id.index;
        let at = usize::try_from(index.checked_sub(first)?).ok()?;
        self.entries.get(at).map(|(e, _)| e)
    }

    fn push(&mut self, entry: Entry<TypeConfig>, size: usize) {
        self.entries.push_back((entry, size));
        self.bytes += size;
        while self.entries.len() > CACHE_ENTRIES || self.bytes > CACHE_BYTES {
            let Some((_, size)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= size;
        }
    }

    /// Drops the entries from `index` on.
    fn drop_from(&mut self, index: u64) {
        while self
            .entries
            .back()
            .is_some_and(|(e, _)| e.log_id.index >= index)
        {
            let (_, size) = self.entries.pop_back().expect("checked");
            self.bytes -= size;
        }
    }

    /// Drops the entries through `index`.
    fn drop_through(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(e, _)| e.log_id.index <= index)
        {
            let (_, size) = self.entries.pop_front().expect("checked");
            self.bytes -= size;
        }
    }
}

struct Inner {
    files: LogFiles,
    cache: Cache,
    meta: Meta,
}

/// The log and vote of one node.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    dir: PathBuf,
    db: sled::Db,
    committed: Arc<Committed>,
    /// fdatasync every append (`cluster_sync`).
    sync: bool,
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The state machine's database.
    #[error("{0}")]
    Db(#[from] sled::Error),
    /// The segment or metadata files.
    #[error("{0}")]
    Files(#[from] std::io::Error),
    /// A metadata file or legacy entry that does not decode.
    #[error("{0}")]
    Decode(String),
}

impl LogStore {
    /// Opens (or creates) the log in `dir`: segments in `dir/log`, the
    /// state machine's sled database in `dir`. Appends are not synced
    /// unless [`LogStore::syncing`] says so.
    ///
    /// # Errors
    /// The file system's or sled's, naming nothing: the caller names the
    /// directory.
    pub fn open(dir: &Path) -> Result<LogStore, OpenError> {
        let db = sled::Config::new().path(dir).open()?;
        let log_dir = dir.join("log");
        let meta = read_meta(&log_dir)?;
        let (files, cuts) = LogFiles::open(&log_dir, meta.last_purged.map(|l| l.index))?;
        for cut in cuts {
            tracing::error!(
                file = %cut.file.display(),
                offset = cut.offset,
                why = %cut.why,
                "raft log damaged: cut from here on (the leader sends the entries again)"
            );
        }
        let committed = Arc::new(Committed::default());
        committed.set(meta.committed.map(|c| c.index));
        let store = LogStore {
            inner: Arc::new(Mutex::new(Inner {
                files,
                cache: Cache::default(),
                meta,
            })),
            dir: log_dir,
            db,
            committed,
            sync: false,
        };
        store.move_from_sled()?;
        Ok(store)
    }

    /// fdatasyncs every append (`cluster_sync`).
    #[must_use]
    pub fn syncing(mut self, sync: bool) -> LogStore {
        self.sync = sync;
        self
    }

    /// The commit index as last saved, for monitoring.
    pub fn committed(&self) -> Arc<Committed> {
        self.committed.clone()
    }

    /// Whether this log never held anything: no vote, no entry, nothing
    /// purged. A node with a fresh log has never been part of a cluster.
    pub fn is_fresh(&self) -> bool {
        let inner = self.lock();
        inner.files.bounds().is_none()
            && inner.meta.vote.is_none()
            && inner.meta.last_purged.is_none()
    }

    /// The sled database, for the state machine's records.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves a log kept in sled (trees `raft_log` and `raft_meta`, as
    /// earlier versions kept it) into the segment files, once.
    fn move_from_sled(&self) -> Result<(), OpenError> {
        // Opening a tree creates it, so look before opening.
        let names = self.db.tree_names();
        if !names
            .iter()
            .any(|n| &**n == b"raft_log" || &**n == b"raft_meta")
        {
            return Ok(());
        }
        let (log, meta) = (
            self.db.open_tree("raft_log")?,
            self.db.open_tree("raft_meta")?,
        );
        let legacy = |key: &[u8]| -> Result<Option<sled::IVec>, OpenError> { Ok(meta.get(key)?) };
        let mut inner = self.lock();
        if let Some(raw) = legacy(b"vote")? {
            inner.meta.vote = Some(decode(&raw).map_err(|e| OpenError::Decode(e.to_string()))?);
        }
        if let Some(raw) = legacy(b"committed")? {
            inner.meta.committed = decode(&raw).map_err(|e| OpenError::Decode(e.to_string()))?;
        }
        if let Some(raw) = legacy(b"last_purged")? {
            inner.meta.last_purged =
                Some(decode(&raw).map_err(|e| OpenError::Decode(e.to_string()))?);
        }
        let mut records = Vec::new();
        for item in &log {
            let (_, raw) = item?;
            let entry: Entry<TypeConfig> =
                decode(&raw).map_err(|e| OpenError::Decode(e.to_string()))?;
            records.push((record_id(&entry.log_id), raw.to_vec()));
        }
        let moved = records.len();
        inner.files.append(&records)?;
        inner.files.syncer()()?;
        write_meta(&self.dir, &inner.meta)?;
        drop(inner);
        self.db.drop_tree("raft_log")?;
        self.db.drop_tree("raft_meta")?;
        self.db.flush()?;
        tracing::info!(entries = moved, dir = %self.dir.display(), "raft log moved from sled into segment files");
        Ok(())
    }

    /// Writes the metadata durably, off the async runtime.
    async fn save_meta(
        &self,
        change: impl FnOnce(&mut Meta),
        err: fn(&dyn std::fmt::Display) -> StorageIOError<NodeId>,
    ) -> StorageResult<()> {
        let meta = {
            let mut inner = self.lock();
            change(&mut inner.meta);
            inner.meta.clone()
        };
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_meta(&dir, &meta))
            .await
            .map_err(|e| err(&e))?
            .map_err(|e| err(&e))?;
        Ok(())
    }
}

fn record_id(log_id: &LogId<NodeId>) -> RecordId {
    RecordId {
        index: log_id.index,
        term: log_id.leader_id.term,
        leader: log_id.leader_id.node_id,
    }
}

fn log_id(id: RecordId) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(id.term, id.leader), id.index)
}

fn read_meta(dir: &Path) -> Result<Meta, OpenError> {
    match std::fs::read(dir.join(META)) {
        Ok(raw) => decode(&raw)
            .map_err(|e| OpenError::Decode(format!("{}: {e}", dir.join(META).display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Meta::default()),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the metadata file: written aside, synced, renamed over, and
/// the rename synced.
fn write_meta(dir: &Path, meta: &Meta) -> std::io::Result<()> {
    let raw = encode(meta).map_err(std::io::Error::other)?;
    let aside = dir.join("meta.new");
    {
        let file = std::fs::File::create(&aside)?;
        std::io::Write::write_all(&mut &file, &raw)?;
        file.sync_all()?;
    }
    std::fs::rename(&aside, dir.join(META))?;
    std::fs::File::open(dir)?.sync_all()
}

fn read_logs(e: &dyn std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::read_logs(openraft::AnyError::error(e.to_string()))
}

fn write_logs(e: &dyn std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::write_logs(openraft::AnyError::error(e.to_string()))
}

fn write_vote(e: &dyn std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::write_vote(openraft::AnyError::error(e.to_string()))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let inner = self.lock();
        let Some((first, last)) = inner.files.bounds() else {
            return Ok(Vec::new());
        };
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(first.index);
        let end = match range.end_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        }
        .min(last.index);
        let mut out =
            Vec::with_capacity(usize::try_from(end.saturating_sub(start) + 1).unwrap_or(0));
        for index in start..=end {
            if !range.contains(&index) {
                break;
            }
            if let Some(entry) = inner.cache.get(index) {
                out.push(entry.clone());
                continue;
            }
            let Some(raw) = inner.files.read(index).map_err(|e| read_logs(&e))? else {
                break;
            };
            out.push(decode(&raw).map_err(|e| read_logs(&e))?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let inner = self.lock();
        let last_purged = inner.meta.last_purged;
        let last = inner
            .files
            .bounds()
            .map(|(_, last)| log_id(last))
            .or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let vote = *vote;
        self.save_meta(|m| m.vote = Some(vote), write_vote).await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self.lock().meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        self.lock().meta.committed = committed;
        self.committed.set(committed.map(|c| c.index));
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self.lock().meta.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let mut records = Vec::with_capacity(entries.len());
        for entry in &entries {
            let raw = encode(entry).map_err(|e| write_logs(&e))?;
            records.push((record_id(&entry.log_id), raw));
        }
        let syncer = {
            let mut inner = self.lock();
            inner.files.append(&records).map_err(|e| write_logs(&e))?;
            for (entry, (_, raw)) in entries.into_iter().zip(&records) {
                inner.cache.push(entry, raw.len());
            }
            self.sync.then(|| inner.files.syncer())
        };
        let flushed = match syncer {
            Some(sync) => tokio::task::spawn_blocking(sync)
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        };
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let mut inner = self.lock();
        inner.cache.drop_from(log_id.index);
        inner
            .files
            .truncate(log_id.index)
            .map_err(|e| write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // The purge point first: a crash in between leaves entries that are
        // known to be purged, never a gap the log does not know about.
        self.save_meta(|m| m.last_purged = Some(log_id), write_logs)
            .await?;
        let mut inner = self.lock();
        inner.cache.drop_through(log_id.index);
        inner
            .files
            .purge(log_id.index)
            .map_err(|e| write_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Op;
    use openraft::EntryPayload;

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 9), index),
            payload: EntryPayload::Normal(Op::DeleteClient(format!("client {index}"))),
        }
    }

    #[test]
    fn a_log_kept_in_sled_moves_into_segment_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let (log, meta) = (
                db.open_tree("raft_log").unwrap(),
                db.open_tree("raft_meta").unwrap(),
            );
            for i in 4..=6u64 {
                log.insert(i.to_be_bytes(), encode(&entry(i)).unwrap())
                    .unwrap();
            }
            let vote = Vote::<NodeId>::new_committed(3, 9);
            meta.insert(b"vote", encode(&vote).unwrap()).unwrap();
            meta.insert(b"last_purged", encode(&entry(3).log_id).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for _ in 0..2 {
            let mut store = LogStore::open(dir.path()).unwrap();
            assert!(!store.is_fresh());
            rt.block_on(async {
                let state = store.get_log_state().await.unwrap();
                assert_eq!(state.last_purged_log_id, Some(entry(3).log_id));
                assert_eq!(state.last_log_id, Some(entry(6).log_id));
                assert_eq!(
                    store.read_vote().await.unwrap(),
                    Some(Vote::new_committed(3, 9))
                );
                let got = store.try_get_log_entries(4..=6).await.unwrap();
                assert_eq!(got, vec![entry(4), entry(5), entry(6)]);
            });
            assert!(!store.db().tree_names().iter().any(|n| &**n == b"raft_log"));
        }
    }
}
