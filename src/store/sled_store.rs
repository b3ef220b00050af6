//! The durable store, in one sled `Db`.
//!
//! Trees: `meta` (format version, server info, next channel ID), `clients`
//! (client ID → encoded ClientInfo), `channels` (name → channel ID u64 BE),
//! and per channel `chan.<id>.msgs` (message index entries, see
//! [`super::sled_channel`]) and `chan.<id>.subs` (subscriptions, see
//! [`super::sub_log`]). The messages themselves are in segment files under
//! `<dir>/msgs/<id>/` (see [`super::segments`]). Tree and directory names
//! come from numeric IDs, which are never reused, so any name is allowed and
//! a deleted channel's leftovers can never leak into a new channel of the
//! same name.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prost::Message;
use sled::Tree;

use super::codec::{be_u64, corrupt, decode};
use super::segment_io::{OsIo, SegmentIo};
use super::segments::SegmentFiles;
use super::sled_channel::{channel_entry, parse_channel_entry, ChannelTrees, Limits, SledChannel};
use super::{ChannelStore, ClientInfo, Result, ServerInfo, Store};

/// Version of the on-disk layout described in this file's header; a store
/// written with another version is refused rather than misread.
/// Version 2: messages in multi-message records, subscriptions as
/// snapshots plus an update log. Version 3: the records' bytes in segment
/// files, sled holding an index entry per record. Version 4: each record
/// framed in its file (length, CRC, first sequence), the file being the
/// commit point and the index rebuilt from it after a crash. A version 3
/// store is read as is (its unframed records stay readable through the
/// index) and marked version 4, since an older stanchion would not rebuild
/// the index.
const FORMAT_VERSION: u32 = 4;
/// The older version this one upgrades in place.
const FORMAT_VERSION_UPGRADED: u32 = 3;
/// `meta` key of the layout version (u32 BE).
const META_FORMAT_VERSION: &[u8] = b"format_version";
/// `meta` key of the encoded ServerInfo.
const META_SERVER_INFO: &[u8] = b"server_info";
/// `meta` key of the next channel ID to hand out (u64 BE).
const META_NEXT_CHANNEL_ID: &[u8] = b"next_channel_id";
/// Prefix of every per-channel tree name.
const CHANNEL_TREE_PREFIX: &str = "chan.";
/// Directory (under the store's) of the segment files.
const SEGMENTS_DIR: &str = "msgs";
/// The kinds of per-channel trees (the last part of their names).
const TREE_KINDS: [&str; 2] = ["msgs", "subs"];

/// Where and how to open the sled store.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// Directory holding the database (created if missing).
    pub dir: PathBuf,
    /// sled's page cache size in bytes. sled counts on-disk sizes, so the
    /// process RSS can exceed it; keep it modest.
    pub cache_capacity: u64,
}

/// The durable store. A channel's `commit` fdatasyncs its segment files
/// written since their last sync: appends are durable then, their index
/// entries not yet. `flush` syncs every file and flushes sled
/// (subscriptions, clients, removals). Between flushes sled writes in the
/// background (its default `flush_every_ms`), so after a crash the index
/// may be behind the files or ahead of them; channel recovery accounts for
/// both.
pub struct SledStore {
    /// The database; kept for `flush` and for opening/dropping channel trees.
    db: sled::Db,
    /// Format version, server info, next channel ID.
    meta: Tree,
    /// Client ID → encoded ClientInfo.
    clients: Tree,
    /// Channel name → channel ID.
    channels: Tree,
    /// Open channels and the ID counter. The mutex serializes creating and
    /// deleting channels; it is held only for sled calls, never a flush.
    open: Mutex<OpenChannels>,
    /// Record and compaction limits handed to every channel.
    limits: Limits,
    /// Whether appends write index entries (see [`Hooks`]).
    index_appends: bool,
    /// The segment files of every channel.
    files: Arc<SegmentFiles>,
}

/// The seams through which tests crash a store.
pub(super) struct Hooks {
    /// How segment files are reached.
    pub(super) io: Arc<dyn SegmentIo>,
    /// Whether appends write their index entries; off, appends reach only
    /// the segment files, as if a crash lost every entry sled had not
    /// stored yet.
    pub(super) index_appends: bool,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            io: Arc::new(OsIo),
            index_appends: true,
        }
    }
}

/// The channels handed out so far, so that opening a name again returns the
/// same in-memory counts (two instances would diverge).
struct OpenChannels {
    /// Open channels by name.
    by_name: HashMap<String, Arc<SledChannel>>,
    /// The next channel ID; also persisted in `meta`.
    next_id: u64,
}

/// The name of one of a channel's trees.
fn tree_name(id: u64, kind: &str) -> String {
    format!("{CHANNEL_TREE_PREFIX}{id}.{kind}")
}

/// The channel ID a tree name belongs to, if it is a channel tree.
fn tree_channel_id(name: &[u8]) -> Option<u64> {
    let name = std::str::from_utf8(name).ok()?;
    let rest = name.strip_prefix(CHANNEL_TREE_PREFIX)?;
    rest.split('.').next()?.parse().ok()
}

impl SledStore {
    /// Opens (or creates) the store in `opts.dir`, checks its format version
    /// and drops trees left over by a channel deletion cut short by a crash.
    /// Channel logs are not read until a channel is opened.
    ///
    /// # Errors
    ///
    /// `Sled` if the database cannot be opened (missing permissions, already
    /// opened by another process); `Corrupt` if its records are malformed or
    /// its format version is unknown.
    pub fn open(opts: SledOptions) -> Result<Self> {
        Self::open_with(opts, Limits::default())
    }

    /// [`Self::open`] with record limits other than the defaults (tests use
    /// tiny ones so that every test crosses record and compaction limits).
    pub(super) fn open_with(opts: SledOptions, limits: Limits) -> Result<Self> {
        Self::open_hooked(opts, limits, Hooks::default())
    }

    /// [`Self::open_with`] with the seams tests use to crash it.
    pub(super) fn open_hooked(opts: SledOptions, limits: Limits, hooks: Hooks) -> Result<Self> {
        let db = sled::Config::new()
            .path(&opts.dir)
            .cache_capacity(opts.cache_capacity)
            .open()?;
        let meta = db.open_tree("meta")?;
        let clients = db.open_tree("clients")?;
        let channels = db.open_tree("channels")?;

        match meta.get(META_FORMAT_VERSION)? {
            None => {
                meta.insert(META_FORMAT_VERSION, &FORMAT_VERSION.to_be_bytes()[..])?;
            }
            Some(v) if v.as_ref() == FORMAT_VERSION.to_be_bytes() => {}
            Some(v) if v.as_ref() == FORMAT_VERSION_UPGRADED.to_be_bytes() => {
                meta.insert(META_FORMAT_VERSION, &FORMAT_VERSION.to_be_bytes()[..])?;
                db.flush()?;
            }
            Some(v) => {
                return Err(corrupt(
                    "meta",
                    format!("unsupported format version {:?}", v.as_ref()),
                ))
            }
        }

        let mut live = HashSet::new();
        let mut next_id = match meta.get(META_NEXT_CHANNEL_ID)? {
            Some(v) => be_u64("meta", &v)?,
            None => 1,
        };
        for entry in channels.iter() {
            let (_, value) = entry?;
            let id = parse_channel_entry(&value)?;
            live.insert(id);
            next_id = next_id.max(id.saturating_add(1));
        }
        for name in db.tree_names() {
            if tree_channel_id(&name).is_some_and(|id| !live.contains(&id)) {
                db.drop_tree(&name)?;
            }
        }
        let files = Arc::new(SegmentFiles::new(opts.dir.join(SEGMENTS_DIR), hooks.io));
        files.remove_orphans(&live)?;

        Ok(Self {
            db,
            meta,
            clients,
            channels,
            open: Mutex::new(OpenChannels {
                by_name: HashMap::new(),
                next_id,
            }),
            limits,
            index_appends: hooks.index_appends,
            files,
        })
    }

    /// Locks the open-channel map; it stays consistent even if a holder
    /// panicked (each change is one insert or remove), so poison is ignored.
    fn open_channels(&self) -> MutexGuard<'_, OpenChannels> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops a channel's trees.
    fn drop_trees(&self, id: u64) -> Result<()> {
        for kind in TREE_KINDS {
            self.db.drop_tree(tree_name(id, kind))?;
        }
        Ok(())
    }
}

impl Store for SledStore {
    fn server_info(&self) -> Result<Option<ServerInfo>> {
        match self.meta.get(META_SERVER_INFO)? {
            Some(v) => Ok(Some(decode("server info", &v)?)),
            None => Ok(None),
        }
    }

    fn set_server_info(&self, info: &ServerInfo) -> Result<()> {
        self.meta.insert(META_SERVER_INFO, info.encode_to_vec())?;
        Ok(())
    }

    fn clients(&self) -> Result<Vec<ClientInfo>> {
        self.clients
            .iter()
            .values()
            .map(|v| decode("client", &v?))
            .collect()
    }

    fn put_client(&self, client: &ClientInfo) -> Result<()> {
        self.clients
            .insert(client.id.as_bytes(), client.encode_to_vec())?;
        Ok(())
    }

    fn delete_client(&self, id: &str) -> Result<()> {
        self.clients.remove(id.as_bytes())?;
        Ok(())
    }

    fn channel_names(&self) -> Result<Vec<String>> {
        self.channels
            .iter()
            .keys()
            .map(|k| {
                String::from_utf8(k?.to_vec())
                    .map_err(|_| corrupt("channel entry", "name is not UTF-8"))
            })
            .collect()
    }

    fn open_channel(&self, name: &str) -> Result<Arc<dyn ChannelStore>> {
        let mut open = self.open_channels();
        if let Some(channel) = open.by_name.get(name) {
            return Ok(channel.clone());
        }
        let id = match self.channels.get(name.as_bytes())? {
            Some(v) => parse_channel_entry(&v)?,
            None => {
                let id = open.next_id;
                let next = id.saturating_add(1);
                // Counter first: a crash in between only skips an ID.
                self.meta
                    .insert(META_NEXT_CHANNEL_ID, &next.to_be_bytes()[..])?;
                self.channels
                    .insert(name.as_bytes(), &channel_entry(id)[..])?;
                open.next_id = next;
                id
            }
        };
        let trees = ChannelTrees {
            msgs: self.db.open_tree(tree_name(id, "msgs"))?,
            subs: self.db.open_tree(tree_name(id, "subs"))?,
        };
        let channel = Arc::new(SledChannel::open(
            name,
            id,
            trees,
            self.files.clone(),
            self.limits,
            self.index_appends,
        )?);
        open.by_name.insert(name.to_owned(), channel.clone());
        Ok(channel)
    }

    fn delete_channel(&self, name: &str) -> Result<()> {
        let mut open = self.open_channels();
        let id = match open.by_name.remove(name) {
            Some(channel) => {
                channel.retire();
                channel.id()
            }
            None => match self.channels.get(name.as_bytes())? {
                Some(v) => parse_channel_entry(&v)?,
                None => return Ok(()),
            },
        };
        // Name first: a crash before the trees are gone leaves orphans that
        // the next `open` drops, never a half-deleted channel.
        self.channels.remove(name.as_bytes())?;
        self.drop_trees(id)?;
        self.files.remove_channel(id)
    }

    fn flush(&self) -> Result<()> {
        // Data before the index that names it; files the index stopped
        // naming are unlinked only once that is durable.
        let pending = self.files.begin_flush()?;
        if let Err(e) = self.db.flush() {
            self.files.abort_flush(pending);
            return Err(e.into());
        }
        self.files.finish_flush(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names_round_trip() {
        assert_eq!(tree_channel_id(tree_name(42, "msgs").as_bytes()), Some(42));
        assert_eq!(tree_channel_id(b"meta"), None);
        assert_eq!(tree_channel_id(b"chan.x.msgs"), None);
    }
}
