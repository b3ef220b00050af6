//! The state machine: applies committed entries to the node's stanchion
//! store, and records how far it got in the Raft database.
//!
//! The store is written first and flushed, then the applied point: a crash
//! in between applies some entries again, which [`Op`]s allow. With
//! `cluster_sync` that happens after every batch of entries; without it,
//! at most every [`LAZY_FLUSH`]: entries are durable in the Raft log of a
//! majority before they are applied, and a node that restarts applies the
//! ones after its saved point again. Snapshots are the store's image
//! without its messages ([`super::snapshot`]), taken under the same lock as
//! applying, so a snapshot is the state at exactly its index; installing
//! one fetches the messages this node lacks from the others.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};

use super::network::Fetcher;
use super::op::Applier;
use super::snapshot::{install, take, Image, MessageSource};
use super::{decode, encode, Applied, ClusterNode, NodeId, TypeConfig};
use crate::store::Store;

const APPLIED: &[u8] = b"applied";
/// How often a node without `cluster_sync` flushes its store and saves
/// its applied point.
const LAZY_FLUSH: std::time::Duration = std::time::Duration::from_millis(500);
const SNAPSHOT: &[u8] = b"snapshot";

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// The applied point: the last entry applied and the membership in force.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct AppliedPoint {
    last: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ClusterNode>,
}

/// A snapshot as kept in the Raft database: its meta and the dump.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, ClusterNode>,
    data: Vec<u8>,
}

struct Inner {
    applier: Applier,
    point: AppliedPoint,
    /// Flush after every batch (`cluster_sync`), else every [`LAZY_FLUSH`].
    sync: bool,
    flushed_at: std::time::Instant,
    /// Where an installed snapshot's messages come from.
    fetcher: Option<Fetcher>,
}

impl Inner {
    /// Flushes the store, then saves the applied point, when it is time.
    /// Returns whether it did (the Raft database then needs a flush).
    fn checkpoint(&mut self, records: &sled::Tree, force: bool) -> StorageResult<bool> {
        if !(force || self.sync || self.flushed_at.elapsed() >= LAZY_FLUSH) {
            return Ok(false);
        }
        // The store's writes are durable before the point that says so.
        self.applier.store().flush().map_err(sm_err)?;
        save_point(records, &self.point)?;
        self.flushed_at = std::time::Instant::now();
        Ok(true)
    }
}

/// The state machine of one node, over its store.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
    /// The Raft database's `raft_sm` tree.
    records: sled::Tree,
    db: sled::Db,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(openraft::AnyError::error(e.to_string())).into()
}

fn read_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(openraft::AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// The state machine over `store`, recording its progress in `db`
    /// (the Raft log's database).
    ///
    /// # Errors
    /// When the recorded applied point cannot be read.
    pub fn open(store: Arc<dyn Store>, db: sled::Db) -> StorageResult<StateMachine> {
        let records = db.open_tree("raft_sm").map_err(read_err)?;
        let point = match records.get(APPLIED).map_err(read_err)? {
            Some(raw) => decode(&raw).map_err(read_err)?,
            None => AppliedPoint::default(),
        };
        Ok(StateMachine {
            inner: Arc::new(Mutex::new(Inner {
                applier: Applier::new(store),
                point,
                sync: true,
                flushed_at: std::time::Instant::now(),
                fetcher: None,
            })),
            records,
            db,
        })
    }

    /// Flushes after every batch of entries (`sync`, the default), or
    /// lazily (see the module's doc).
    #[must_use]
    pub fn syncing(self, sync: bool) -> StateMachine {
        self.lock().sync = sync;
        self
    }

    /// Installs snapshots with messages fetched by `fetcher`; without one,
    /// only snapshots of channels without messages install.
    #[must_use]
    pub fn fetching(self, fetcher: Fetcher) -> StateMachine {
        self.lock().fetcher = Some(fetcher);
        self
    }

    /// The last entry applied, for monitoring.
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.lock().point.last
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the blocking pool with the state machine locked; `f`
    /// says whether the Raft database needs a flush after it.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner, &sled::Tree) -> StorageResult<(T, bool)> + Send + 'static,
    ) -> StorageResult<T> {
        let (inner, records) = (self.inner.clone(), self.records.clone());
        let (out, flush) = tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard, &records)
        })
        .await
        .map_err(sm_err)??;
        if flush {
            self.db.flush_async().await.map_err(sm_err)?;
        }
        Ok(out)
    }
}

fn save_point(records: &sled::Tree, point: &AppliedPoint) -> StorageResult<()> {
    records
        .insert(APPLIED, encode(point).map_err(sm_err)?)
        .map_err(sm_err)?;
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let stored = self
            .blocking(|inner, records| {
                // The log behind a snapshot may go: the point must be saved.
                inner.checkpoint(records, true)?;
                let data = encode(&take(inner.applier.store().as_ref()).map_err(read_err)?)
                    .map_err(read_err)?;
                let last = inner.point.last;
                let meta = SnapshotMeta {
                    last_log_id: last,
                    last_membership: inner.point.membership.clone(),
                    snapshot_id: last.map_or_else(
                        || "0".to_string(),
                        |l| format!("{}-{}", l.leader_id, l.index),
                    ),
                };
                let stored = StoredSnapshot { meta, data };
                records
                    .insert(SNAPSHOT, encode(&stored).map_err(sm_err)?)
                    .map_err(sm_err)?;
                Ok((stored, true))
            })
            .await?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, ClusterNode>)> {
        let inner = self.lock();
        Ok((inner.point.last, inner.point.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        self.blocking(move |inner, records| {
            let mut out = Vec::with_capacity(entries.len());
            for entry in entries {
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(op) => inner.applier.apply(&op).map_err(|e| {
                        StorageError::from(StorageIOError::apply(
                            entry.log_id,
                            openraft::AnyError::error(e.to_string()),
                        ))
                    })?,
                    EntryPayload::Membership(m) => {
                        inner.point.membership = StoredMembership::new(Some(entry.log_id), m);
                    }
                }
                inner.point.last = Some(entry.log_id);
                out.push(Applied {
                    index: entry.log_id.index,
                });
            }
            let flushed = inner.checkpoint(records, false)?;
            Ok((out, flushed))
        })
        .await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let meta = meta.clone();
        let data = snapshot.into_inner();
        self.blocking(move |inner, records| {
            let image: Image = decode(&data).map_err(read_err)?;
            let source: Box<dyn MessageSource> = match &inner.fetcher {
                Some(f) => Box::new(f.source(&meta)),
                None => Box::new(NoSource),
            };
            install(inner.applier.store().as_ref(), &image, &*source).map_err(sm_err)?;
            inner.applier = Applier::new(inner.applier.store().clone());
            inner.flushed_at = std::time::Instant::now();
            inner.point = AppliedPoint {
                last: meta.last_log_id,
                membership: meta.last_membership.clone(),
            };
            save_point(records, &inner.point)?;
            let stored = StoredSnapshot { meta, data };
            records
                .insert(SNAPSHOT, encode(&stored).map_err(sm_err)?)
                .map_err(sm_err)?;
            Ok(((), true))
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let Some(raw) = self.records.get(SNAPSHOT).map_err(read_err)? else {
            return Ok(None);
        };
        let stored: StoredSnapshot = decode(&raw).map_err(read_err)?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

/// The source of a state machine without a [`Fetcher`].
struct NoSource;

impl MessageSource for NoSource {
    fn fetch(&self, _: &str, _: u64, _: u64) -> Result<Vec<crate::protocol::pb::MsgProto>, String> {
        Err("this node fetches no messages".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::LogStore;
    use crate::store::MemoryStore;

    /// A log store and state machine on a fresh temp directory and memory
    /// store, kept alive by the returned guard.
    struct Fresh;

    impl openraft::testing::StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir>
        for Fresh
    {
        async fn build(&self) -> StorageResult<(tempfile::TempDir, LogStore, StateMachine)> {
            let dir = tempfile::tempdir().map_err(sm_err)?;
            let log = LogStore::open(dir.path()).map_err(sm_err)?;
            let sm = StateMachine::open(Arc::new(MemoryStore::new()), log.db().clone())?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn passes_openraft_storage_suite() {
        openraft::testing::Suite::test_all(Fresh).unwrap();
    }
}
