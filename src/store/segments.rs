//! The segment files of the sled store: append-only files that hold the
//! bytes of message records, so that sled keeps only a small index entry per
//! record (sled 0.34 keeps every value it writes in memory).
//!
//! Layout: `<dir>/msgs/<channel id>/<first sequence, 20 digits>.seg`. This
//! room owns the files: positioned reads and writes, a bounded cache of
//! open handles, the set of files written since the last sync (to
//! fdatasync them) and the files to unlink once the index that stopped
//! naming them is durable. It knows nothing of records or sled;
//! [`super::sled_channel`] decides what goes where. File I/O goes through
//! [`SegmentIo`], so that tests can cut the power.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::segment_io::{SegmentFile, SegmentIo};
use super::Result;

/// An open segment file.
type Handle = Arc<dyn SegmentFile>;

/// Most segment files kept open per store; the least recently used is
/// closed beyond (files written since the last flush stay open until then).
const MAX_OPEN_FILES: usize = 64;

/// Extension of segment file names.
const SEGMENT_EXT: &str = "seg";

/// A segment: (channel ID, first sequence of the segment).
pub(super) type SegmentId = (u64, u64);

/// The segment files of one store.
pub(super) struct SegmentFiles {
    /// `<dir>/msgs`: one directory per channel ID.
    root: PathBuf,
    /// How files are opened and removed.
    fs: Arc<dyn SegmentIo>,
    /// Open handles and pending work. Held for map updates and `open(2)`,
    /// never across a read, a write or an fsync.
    state: Mutex<FilesState>,
    /// Serializes flushes: the segments doomed before one are unlinked
    /// only after its index flush.
    flushing: Mutex<()>,
}

/// Open handles and pending work of [`SegmentFiles`].
#[derive(Default)]
struct FilesState {
    /// Open handles by segment, with the tick of their last use.
    open: HashMap<SegmentId, (Handle, u64)>,
    /// Use counter for the LRU.
    tick: u64,
    /// Files written since they were last synced, with the number of
    /// their last write; held open until synced.
    dirty: HashMap<SegmentId, (Handle, u64)>,
    /// Directories that gained a file since they were last synced, with
    /// the number of that change.
    dirty_dirs: HashMap<PathBuf, u64>,
    /// Numbers writes and directory changes, so that a sync clears only
    /// the marks of what it covered.
    changes: u64,
    /// Segments no index entry names any more, to unlink after the next
    /// index flush (unlinking sooner could lose data the index still names
    /// after a crash).
    doomed: Vec<SegmentId>,
}

impl FilesState {
    /// Numbers a new write or directory change.
    fn next_change(&mut self) -> u64 {
        self.changes += 1;
        self.changes
    }
}

/// Converts an I/O result into the store's.
fn io<T>(res: std::io::Result<T>) -> Result<T> {
    res.map_err(|e| sled::Error::Io(e).into())
}

/// Work taken by [`SegmentFiles::begin_flush`], finished in two steps.
pub(super) struct PendingFlush<'a> {
    /// Held for the whole flush.
    _flushing: MutexGuard<'a, ()>,
    /// Segments to unlink once the index is durable.
    doomed: Vec<SegmentId>,
}

impl SegmentFiles {
    /// The segment files under `root` (created on first write), reached
    /// through `fs`.
    pub(super) fn new(root: PathBuf, fs: Arc<dyn SegmentIo>) -> Self {
        Self {
            root,
            fs,
            state: Mutex::new(FilesState::default()),
            flushing: Mutex::new(()),
        }
    }

    /// Locks the state; every change is a single map update, so a panicked
    /// holder leaves it consistent and poison is ignored.
    fn state(&self) -> MutexGuard<'_, FilesState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A channel's directory.
    fn channel_dir(&self, channel: u64) -> PathBuf {
        self.root.join(channel.to_string())
    }

    /// A segment's path.
    fn path(&self, (channel, first): SegmentId) -> PathBuf {
        self.channel_dir(channel)
            .join(format!("{first:020}.{SEGMENT_EXT}"))
    }

    /// The open handle of a segment, opening (and with `create`, creating)
    /// the file if needed. `Ok(None)` if it does not exist and `create` is
    /// false.
    fn handle(&self, seg: SegmentId, create: bool) -> Result<Option<Handle>> {
        let mut st = self.state();
        st.tick += 1;
        let tick = st.tick;
        if let Some((file, used)) = st.open.get_mut(&seg) {
            *used = tick;
            return Ok(Some(file.clone()));
        }
        // A file closed by the LRU but not yet synced is still open here.
        let file = if let Some((file, _)) = st.dirty.get(&seg) {
            file.clone()
        } else {
            let path = self.path(seg);
            match io(self.fs.open(&path, false))? {
                Some(file) => file,
                None if !create => return Ok(None),
                None => {
                    let dir = self.channel_dir(seg.0);
                    let change = st.next_change();
                    if !dir.exists() {
                        io(fs::create_dir_all(&dir))?;
                        st.dirty_dirs.insert(self.root.clone(), change);
                    }
                    st.dirty_dirs.insert(dir, change);
                    io(self.fs.open(&path, true))?
                        .ok_or_else(|| sled::Error::Io(ErrorKind::NotFound.into()))?
                }
            }
        };
        if st.open.len() >= MAX_OPEN_FILES {
            let oldest = st.open.iter().min_by_key(|(_, (_, used))| *used);
            if let Some(&key) = oldest.map(|(k, _)| k) {
                st.open.remove(&key);
            }
        }
        st.open.insert(seg, (file.clone(), tick));
        Ok(Some(file))
    }

    /// Writes `bytes` at `offset` of a segment (creating it), and marks it
    /// for the next sync.
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the file cannot be created or written.
    pub(super) fn write_at(&self, seg: SegmentId, offset: u64, bytes: &[u8]) -> Result<()> {
        let file = self
            .handle(seg, true)?
            .ok_or_else(|| sled::Error::Io(ErrorKind::NotFound.into()))?;
        io(file.write_all_at(bytes, offset))?;
        // Marked after the write: a sync that sees the mark syncs it.
        let mut st = self.state();
        let change = st.next_change();
        st.dirty.insert(seg, (file, change));
        Ok(())
    }

    /// Allocates a segment's blocks up to `len` bytes (see
    /// [`SegmentFile::allocate`]).
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the file cannot be opened or allocated.
    pub(super) fn reserve(&self, seg: SegmentId, len: u64) -> Result<()> {
        match self.handle(seg, false)? {
            Some(file) => io(file.allocate(len)),
            None => Ok(()),
        }
    }

    /// Reads `len` bytes at `offset` of a segment; `Ok(None)` if the file is
    /// gone (its records were removed meanwhile).
    ///
    /// # Errors
    ///
    /// `Sled(Io)` on a read failure, including a file shorter than asked.
    pub(super) fn read_at(
        &self,
        seg: SegmentId,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>> {
        let Some(file) = self.handle(seg, false)? else {
            return Ok(None);
        };
        let mut buf = vec![0; len];
        io(file.read_exact_at(&mut buf, offset))?;
        Ok(Some(buf))
    }

    /// The length of a segment file, or `None` if it does not exist.
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the file cannot be opened or examined.
    pub(super) fn len(&self, seg: SegmentId) -> Result<Option<u64>> {
        match self.handle(seg, false)? {
            Some(file) => Ok(Some(io(file.len())?)),
            None => Ok(None),
        }
    }

    /// Truncates a segment file to `len` bytes (recovery; not deferred).
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the file cannot be truncated.
    pub(super) fn truncate(&self, seg: SegmentId, len: u64) -> Result<()> {
        if let Some(file) = self.handle(seg, false)? {
            io(file.truncate(len))?;
        }
        Ok(())
    }

    /// The first sequences of a channel's segment files, ascending.
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the directory cannot be listed.
    pub(super) fn list(&self, channel: u64) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(self.channel_dir(channel)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
            Err(e) => return io(Err(e)),
        };
        for entry in entries {
            let name = io(entry)?.file_name();
            let first = name
                .to_str()
                .and_then(|n| n.strip_suffix(SEGMENT_EXT))
                .and_then(|n| n.strip_suffix('.'))
                .and_then(|n| n.parse().ok());
            if let Some(first) = first {
                out.push(first);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Deletes a segment file now (recovery: it holds no indexed record).
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the file exists but cannot be removed.
    pub(super) fn delete_now(&self, seg: SegmentId) -> Result<()> {
        self.forget(seg);
        io(self.fs.remove_file(&self.path(seg)))
    }

    /// Schedules a segment file for deletion after the next index flush.
    pub(super) fn doom(&self, seg: SegmentId) {
        self.state().doomed.push(seg);
    }

    /// Closes a segment's handle and drops its pending fsync.
    fn forget(&self, seg: SegmentId) {
        let mut st = self.state();
        st.open.remove(&seg);
        st.dirty.remove(&seg);
    }

    /// Removes a channel's directory and forgets its handles.
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the directory exists but cannot be removed.
    pub(super) fn remove_channel(&self, channel: u64) -> Result<()> {
        {
            let mut st = self.state();
            st.open.retain(|seg, _| seg.0 != channel);
            st.dirty.retain(|seg, _| seg.0 != channel);
            st.doomed.retain(|seg| seg.0 != channel);
        }
        io(self.fs.remove_dir_all(&self.channel_dir(channel)))
    }

    /// Removes the directories of channels not in `live` (left by a
    /// deletion cut short by a crash).
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if the root cannot be listed or a directory removed.
    pub(super) fn remove_orphans(&self, live: &HashSet<u64>) -> Result<()> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return io(Err(e)),
        };
        for entry in entries {
            let name = io(entry)?.file_name();
            let id = name.to_str().and_then(|n| n.parse::<u64>().ok());
            if let Some(id) = id.filter(|id| !live.contains(id)) {
                self.remove_channel(id)?;
            }
        }
        Ok(())
    }

    /// Makes every write so far to one channel's files durable: fdatasyncs
    /// each of them written since it was last synced, and the directories
    /// that gained one. This is the commit point of the channel's appends;
    /// the index follows lazily (see [`super::sled_channel`]). Channels sync
    /// independently: a busy channel's sync does not hold up another's.
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if a sync fails (the files stay marked).
    pub(super) fn sync_channel(&self, channel: u64) -> Result<()> {
        let dir = self.channel_dir(channel);
        self.sync_where(|seg| seg.0 == channel, |d| *d == dir || *d == self.root)
    }

    /// Syncs every file and directory marked when it starts whose ID or
    /// path passes the filters. Each caller syncs what it saw marked
    /// itself, so none returns before its writes are durable, however
    /// syncs overlap; a mark is cleared only if no write came after it.
    fn sync_where(
        &self,
        files: impl Fn(&SegmentId) -> bool,
        dirs: impl Fn(&PathBuf) -> bool,
    ) -> Result<()> {
        let (to_sync, dirs): (Vec<_>, Vec<_>) = {
            let st = self.state();
            let to_sync = st.dirty.iter().filter(|(seg, _)| files(seg));
            let marked = st.dirty_dirs.iter().filter(|(dir, _)| dirs(dir));
            (
                to_sync.map(|(seg, (f, n))| (*seg, f.clone(), *n)).collect(),
                marked.map(|(dir, n)| (dir.clone(), *n)).collect(),
            )
        };
        for (_, file, _) in &to_sync {
            io(file.sync_data())?;
        }
        for (dir, _) in &dirs {
            match File::open(dir).and_then(|d| d.sync_all()) {
                Err(e) if e.kind() != ErrorKind::NotFound => return io(Err(e)),
                _ => {}
            }
        }
        let mut st = self.state();
        for (seg, _, n) in to_sync {
            if st.dirty.get(&seg).is_some_and(|(_, now)| *now == n) {
                st.dirty.remove(&seg);
            }
        }
        for (dir, n) in dirs {
            if st.dirty_dirs.get(&dir) == Some(&n) {
                st.dirty_dirs.remove(&dir);
            }
        }
        Ok(())
    }

    /// First half of a flush: syncs every marked file and directory,
    /// keeping the flush lock and taking the doomed segments. The caller
    /// then makes the index durable and calls [`Self::finish_flush`].
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if a sync fails (the files stay marked).
    pub(super) fn begin_flush(&self) -> Result<PendingFlush<'_>> {
        let flushing = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        let doomed = std::mem::take(&mut self.state().doomed);
        if let Err(e) = self.sync_where(|_| true, |_| true) {
            self.state().doomed.extend(doomed);
            return Err(e);
        }
        Ok(PendingFlush {
            _flushing: flushing,
            doomed,
        })
    }

    /// Second half of a flush, once the index is durable: unlinks the
    /// segments no durable index entry names any more.
    ///
    /// # Errors
    ///
    /// `Sled(Io)` if a file exists but cannot be removed.
    pub(super) fn finish_flush(&self, pending: PendingFlush<'_>) -> Result<()> {
        for &seg in &pending.doomed {
            self.delete_now(seg)?;
        }
        Ok(())
    }

    /// Puts back the segments of a flush whose index flush failed.
    pub(super) fn abort_flush(&self, pending: PendingFlush<'_>) {
        self.state().doomed.extend(pending.doomed);
    }
}
