//! How segment files are reached: the operating system in production, or
//! (in tests) a layer that loses every write no sync covered, as a power
//! cut does. [`super::segments`] does all its file I/O through this seam.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Opens and removes segment files.
pub(super) trait SegmentIo: Send + Sync {
    /// Opens a file for reading and writing, creating it if `create`;
    /// `Ok(None)` if it does not exist and `create` is false.
    fn open(&self, path: &Path, create: bool) -> io::Result<Option<Arc<dyn SegmentFile>>>;

    /// Removes a file (missing is not an error).
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything in it (missing is not an error).
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
}

/// One open segment file.
pub(super) trait SegmentFile: Send + Sync {
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Fills `buf` from `offset`; a file too short is an error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The file's length as reads see it.
    fn len(&self) -> io::Result<u64>;
    /// Cuts the file to `len` bytes and makes that durable.
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Allocates the file's blocks up to `len` bytes (the file grows to
    /// `len` if shorter; new bytes read as zeros), so that appends within
    /// them need no size change at each commit.
    fn allocate(&self, len: u64) -> io::Result<()>;
}

/// The operating system's files.
pub(super) struct OsIo;

/// Maps "not found" to success.
fn missing_ok(res: io::Result<()>) -> io::Result<()> {
    match res {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Opens a file for reading and writing, creating it if `create`;
/// `Ok(None)` if it does not exist and `create` is false. Every layer opens
/// its files so.
pub(super) fn open_file(path: &Path, create: bool) -> io::Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path);
    match opened {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == ErrorKind::NotFound && !create => Ok(None),
        Err(e) => Err(e),
    }
}

impl SegmentIo for OsIo {
    fn open(&self, path: &Path, create: bool) -> io::Result<Option<Arc<dyn SegmentFile>>> {
        Ok(open_file(path, create)?.map(|f| Arc::new(f) as Arc<dyn SegmentFile>))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        missing_ok(fs::remove_file(path))
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        missing_ok(fs::remove_dir_all(path))
    }
}

impl SegmentFile for File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.sync_all()
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn allocate(&self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: the descriptor is open for as long as `self` lives.
        match unsafe { libc::fallocate(self.as_raw_fd(), 0, 0, len) } {
            0 => Ok(()),
            _ => match io::Error::last_os_error() {
                // A file system without fallocate just grows as it is written.
                e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
                e => Err(e),
            },
        }
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    fn allocate(&self, _len: u64) -> io::Result<()> {
        Ok(())
    }
}
