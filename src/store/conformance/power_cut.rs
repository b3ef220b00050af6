//! A segment file layer that can cut the power, as LazyFS does for
//! databases: every write stays in memory until a sync covers it, reads see
//! it meanwhile, and a crash keeps only part of what no sync covered (each
//! pending write whole, torn to a prefix, or lost, at random), then aborts
//! the process. Removals and file creation reach the disk at once, and
//! sled's own files are not interposed: the segment files are the commit
//! point, the index is rebuilt from them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use rand::Rng;

use crate::store::segment_io::{open_file, OsIo, SegmentFile, SegmentIo};

/// The layer; one per store.
pub(super) struct PowerCut {
    /// File operations (writes, syncs, truncations) left before the crash.
    fuse: AtomicU64,
    /// Every file opened, to apply part of its pending writes at the crash.
    files: Mutex<Vec<Weak<LazyFile>>>,
}

/// A file whose writes wait in memory for a sync.
struct LazyFile {
    /// The real file.
    file: File,
    /// Writes no sync has covered yet, in order: (offset, bytes).
    pending: Mutex<Vec<(u64, Vec<u8>)>>,
    /// The layer, for its fuse.
    cut: Arc<PowerCut>,
}

impl PowerCut {
    /// A layer that crashes at its `ops`-th file operation.
    pub(super) fn new(ops: u64) -> Arc<Self> {
        Arc::new(Self {
            fuse: AtomicU64::new(ops),
            files: Mutex::new(Vec::new()),
        })
    }

    /// Counts one operation; at the last one, crashes.
    fn tick(&self) {
        if self.fuse.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.crash();
        }
    }

    /// Keeps part of every unsynced write, at random, and aborts: what a
    /// machine finds on its disk after a power cut.
    pub(super) fn crash(&self) -> ! {
        let mut rng = rand::rng();
        let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        for file in files.iter().filter_map(Weak::upgrade) {
            let pending = file.pending();
            for (offset, bytes) in pending.iter() {
                let kept = match rng.random_range(0..3) {
                    0 => bytes.len(),
                    1 => rng.random_range(0..bytes.len().max(1)),
                    _ => 0,
                };
                if kept > 0 {
                    let _ = FileExt::write_all_at(&file.file, &bytes[..kept], *offset);
                }
            }
        }
        std::process::abort()
    }
}

impl SegmentIo for Arc<PowerCut> {
    fn open(&self, path: &Path, create: bool) -> io::Result<Option<Arc<dyn SegmentFile>>> {
        let Some(file) = open_file(path, create)? else {
            return Ok(None);
        };
        let file = Arc::new(LazyFile {
            file,
            pending: Mutex::new(Vec::new()),
            cut: self.clone(),
        });
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        files.retain(|f| f.strong_count() > 0);
        files.push(Arc::downgrade(&file));
        Ok(Some(file))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsIo.remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        OsIo.remove_dir_all(path)
    }
}

impl LazyFile {
    /// The pending writes.
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Vec<u8>)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SegmentFile for LazyFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.cut.tick();
        self.pending().push((offset, buf.to_vec()));
        Ok(())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        if self.len()? < end {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // The disk's bytes, then the pending writes over them, in order.
        let on_disk = self.file.metadata()?.len();
        let from_disk = on_disk.saturating_sub(offset).min(buf.len() as u64) as usize;
        buf.fill(0);
        FileExt::read_exact_at(&self.file, &mut buf[..from_disk], offset)?;
        for (at, bytes) in self.pending().iter() {
            let (lo, hi) = ((*at).max(offset), (*at + bytes.len() as u64).min(end));
            if lo < hi {
                let dst = (lo - offset) as usize..(hi - offset) as usize;
                let src = (lo - at) as usize..(hi - at) as usize;
                buf[dst].copy_from_slice(&bytes[src]);
            }
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let on_disk = self.file.metadata()?.len();
        let pending = self.pending();
        let written = pending.iter().map(|(at, b)| at + b.len() as u64).max();
        Ok(written.map_or(on_disk, |w| w.max(on_disk)))
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.cut.tick();
        let mut pending = self.pending();
        for (at, bytes) in pending.iter_mut() {
            bytes.truncate(len.saturating_sub(*at) as usize);
        }
        pending.retain(|(_, b)| !b.is_empty());
        self.file.set_len(len)?;
        self.file.sync_all()
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        if self.file.metadata()?.len() < len {
            self.file.set_len(len)?;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.cut.tick();
        let mut pending = self.pending();
        for (at, bytes) in pending.drain(..) {
            FileExt::write_all_at(&self.file, &bytes, at)?;
        }
        self.file.sync_data()
    }
}
