//! The Raft log's entries in append-only segment files.
//!
//! Each append is one positioned write of its records into the newest
//! segment. A write is in the page cache when it returns, so a process
//! that is killed loses nothing; only `cluster_sync` adds an fdatasync
//! per append, as NSS's `cluster_sync` does for its Raft log. A record is
//! framed as
//!
//! ```text
//! [payload length u32][CRC-32 of the rest u32][index u64][term u64][leader u64][payload]
//! ```
//!
//! (little-endian), so recovery finds every entry's log ID without
//! decoding the entries, and cuts a torn or damaged tail instead of
//! failing. Segments are named by the index of their first record; a purge
//! deletes the segments whose records are all purged.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A segment is closed and a new one started once it holds this much.
const SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
const HEADER: usize = 32;
const SUFFIX: &str = ".raftlog";

/// An entry's ID as the log keeps it: index, term, leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordId {
    pub index: u64,
    pub term: u64,
    pub leader: u64,
}

/// Where one record is.
#[derive(Debug, Clone, Copy)]
struct Loc {
    id: RecordId,
    /// The segment's first index (its name).
    segment: u64,
    offset: u64,
    len: u32,
}

struct Segment {
    first: u64,
    file: Arc<File>,
    len: u64,
}

/// The entries' records, in their files, with an index of where each is.
pub(crate) struct LogFiles {
    dir: PathBuf,
    segments: Vec<Segment>,
    locs: VecDeque<Loc>,
    /// A new segment's directory entry is not yet synced.
    dir_dirty: bool,
}

/// What recovery found wrong and cut, for the log.
#[derive(Debug)]
pub(crate) struct Cut {
    pub file: PathBuf,
    pub offset: u64,
    pub why: String,
}

impl LogFiles {
    /// Opens the segments in `dir` (creating it), keeping the records after
    /// `purged`. A damaged or torn record ends the log there: the rest of
    /// its segment and every later segment are cut, and returned as `Cut`s.
    ///
    /// # Errors
    /// The file system's.
    pub fn open(dir: &Path, purged: Option<u64>) -> io::Result<(LogFiles, Vec<Cut>)> {
        std::fs::create_dir_all(dir)?;
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let first = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(first) = first {
                names.push((first, path));
            }
        }
        names.sort_unstable();
        let mut log = LogFiles {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            locs: VecDeque::new(),
            dir_dirty: false,
        };
        let mut cuts = Vec::new();
        let mut ended = false;
        for (first, path) in names {
            if ended {
                std::fs::remove_file(&path)?;
                cuts.push(Cut {
                    file: path,
                    offset: 0,
                    why: "follows a damaged record".into(),
                });
                continue;
            }
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let (len, cut) = log.scan(first, &file, purged)?;
            if let Some(why) = cut {
                file.set_len(len)?;
                file.sync_all()?;
                cuts.push(Cut {
                    file: path,
                    offset: len,
                    why,
                });
                ended = true;
            }
            log.segments.push(Segment {
                first,
                file: Arc::new(file),
                len,
            });
        }
        Ok((log, cuts))
    }

    /// Reads the records of one segment into the index; returns where its
    /// good records end and why it ended early, if it did.
    fn scan(
        &mut self,
        segment: u64,
        file: &File,
        purged: Option<u64>,
    ) -> io::Result<(u64, Option<String>)> {
        let size = file.metadata()?.len();
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        io::Read::read_to_end(&mut &*file, &mut data)?;
        let mut at = 0usize;
        while at < data.len() {
            let Some(header) = data.get(at..at + HEADER) else {
                return Ok((at as u64, Some("torn record header".into())));
            };
            let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
            let id = RecordId {
                index: u64::from_le_bytes(header[8..16].try_into().expect("8 bytes")),
                term: u64::from_le_bytes(header[16..24].try_into().expect("8 bytes")),
                leader: u64::from_le_bytes(header[24..32].try_into().expect("8 bytes")),
            };
            let end = at + HEADER + len as usize;
            let Some(payload) = data.get(at + HEADER..end) else {
                return Ok((at as u64, Some("torn record".into())));
            };
            if checksum(&header[8..], payload) != crc {
                return Ok((at as u64, Some("checksum mismatch".into())));
            }
            if purged.is_none_or(|p| id.index > p) {
                if let Some(last) = self.locs.back() {
                    if id.index != last.id.index + 1 {
                        return Ok((
                            at as u64,
                            Some(format!(
                                "index {} does not follow {}",
                                id.index, last.id.index
                            )),
                        ));
                    }
                }
                self.locs.push_back(Loc {
                    id,
                    segment,
                    offset: at as u64,
                    len,
                });
            }
            at = end;
        }
        Ok((at as u64, None))
    }

    /// The first and last records kept.
    pub fn bounds(&self) -> Option<(RecordId, RecordId)> {
        Some((self.locs.front()?.id, self.locs.back()?.id))
    }

    /// Appends records (contiguous, following the last one) with one write.
    ///
    /// # Errors
    /// The file system's; then nothing of the batch is indexed.
    pub fn append(&mut self, records: &[(RecordId, Vec<u8>)]) -> io::Result<()> {
        let Some((first, _)) = records.first() else {
            return Ok(());
        };
        if let Some(last) = self.locs.back() {
            if first.index != last.id.index + 1 {
                return Err(io::Error::other(format!(
                    "raft log: entry {} appended after {}",
                    first.index, last.id.index
                )));
            }
        }
        if self.segments.last().is_none_or(|s| s.len >= SEGMENT_SIZE) {
            self.start_segment(first.index)?;
        }
        let segment = self.segments.last_mut().expect("a segment was started");
        let mut buf = Vec::with_capacity(records.iter().map(|(_, p)| HEADER + p.len()).sum());
        let mut locs = Vec::with_capacity(records.len());
        for (id, payload) in records {
            let len = u32::try_from(payload.len())
                .map_err(|_| io::Error::other("raft log: an entry over 4 GiB"))?;
            let mut header = [0u8; HEADER];
            header[0..4].copy_from_slice(&len.to_le_bytes());
            header[8..16].copy_from_slice(&id.index.to_le_bytes());
            header[16..24].copy_from_slice(&id.term.to_le_bytes());
            header[24..32].copy_from_slice(&id.leader.to_le_bytes());
            let crc = checksum(&header[8..], payload);
            header[4..8].copy_from_slice(&crc.to_le_bytes());
            locs.push(Loc {
                id: *id,
                segment: segment.first,
                offset: segment.len + buf.len() as u64,
                len,
            });
            buf.extend_from_slice(&header);
            buf.extend_from_slice(payload);
        }
        segment.file.write_all_at(&buf, segment.len)?;
        segment.len += buf.len() as u64;
        self.locs.extend(locs);
        Ok(())
    }

    fn start_segment(&mut self, first: u64) -> io::Result<()> {
        let path = self.dir.join(format!("{first:020}{SUFFIX}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        self.segments.push(Segment {
            first,
            file: Arc::new(file),
            len: 0,
        });
        self.dir_dirty = true;
        Ok(())
    }

    /// What makes every append so far durable: call the returned closure
    /// (off the async runtime) to fdatasync the newest segment, and the
    /// directory if a segment was started since the last call.
    pub fn syncer(&mut self) -> impl FnOnce() -> io::Result<()> + Send + 'static {
        let file = self.segments.last().map(|s| s.file.clone());
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        move || {
            if let Some(file) = file {
                file.sync_data()?;
            }
            if let Some(dir) = dir {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        }
    }

    /// The payload of the record at `index`, if the log has it.
    ///
    /// # Errors
    /// The file system's, or a record that no longer reads as written.
    pub fn read(&self, index: u64) -> io::Result<Option<Vec<u8>>> {
        let Some(loc) = self.loc(index) else {
            return Ok(None);
        };
        let segment = self.segment(loc.segment)?;
        let mut buf = vec![0u8; loc.len as usize];
        segment
            .file
            .read_exact_at(&mut buf, loc.offset + HEADER as u64)?;
        Ok(Some(buf))
    }

    fn loc(&self, index: u64) -> Option<&Loc> {
        let first = self.locs.front()?.id.index;
        self.locs
            .get(usize::try_from(index.checked_sub(first)?).ok()?)
    }

    fn segment(&self, first: u64) -> io::Result<&Segment> {
        self.segments
            .iter()
            .find(|s| s.first == first)
            .ok_or_else(|| io::Error::other(format!("raft log: segment {first} is gone")))
    }

    /// Removes the records from `index` on, and syncs the cut (a cut that
    /// a crash undid would bring back entries of an older term).
    ///
    /// # Errors
    /// The file system's.
    pub fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some(&loc) = self.loc(index) else {
            return Ok(());
        };
        while self.segments.last().is_some_and(|s| s.first > loc.segment) {
            let gone = self.segments.pop().expect("checked");
            std::fs::remove_file(self.dir.join(format!("{:020}{SUFFIX}", gone.first)))?;
        }
        let segment = self.segments.last_mut().expect("the record's segment");
        segment.file.set_len(loc.offset)?;
        segment.len = loc.offset;
        segment.file.sync_all()?;
        File::open(&self.dir)?.sync_all()?;
        let keep = usize::try_from(index - self.locs.front().expect("has loc").id.index)
            .expect("within the index");
        self.locs.truncate(keep);
        Ok(())
    }

    /// Forgets the records through `index` and deletes the segments that
    /// hold nothing else.
    ///
    /// # Errors
    /// The file system's.
    pub fn purge(&mut self, index: u64) -> io::Result<()> {
        while self.locs.front().is_some_and(|l| l.id.index <= index) {
            self.locs.pop_front();
        }
        // A segment ends where the next begins; the newest stays open.
        while self.segments.len() > 1 && self.segments[1].first <= index + 1 {
            let gone = self.segments.remove(0);
            std::fs::remove_file(self.dir.join(format!("{:020}{SUFFIX}", gone.first)))?;
        }
        Ok(())
    }
}

fn checksum(id: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(id);
    h.update(payload);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u64) -> RecordId {
        RecordId {
            index,
            term: 1,
            leader: 7,
        }
    }

    fn records(from: u64, to: u64) -> Vec<(RecordId, Vec<u8>)> {
        (from..=to)
            .map(|i| (id(i), format!("entry {i}").into_bytes()))
            .collect()
    }

    #[test]
    fn appended_records_read_back_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, cuts) = LogFiles::open(dir.path(), None).unwrap();
        assert!(cuts.is_empty());
        log.append(&records(1, 3)).unwrap();
        log.append(&records(4, 5)).unwrap();
        assert_eq!(log.read(4).unwrap().unwrap(), b"entry 4");
        drop(log);
        let (log, cuts) = LogFiles::open(dir.path(), None).unwrap();
        assert!(cuts.is_empty());
        assert_eq!(log.bounds(), Some((id(1), id(5))));
        assert_eq!(log.read(5).unwrap().unwrap(), b"entry 5");
        assert_eq!(log.read(6).unwrap(), None);
    }

    #[test]
    fn a_gap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), None).unwrap();
        log.append(&records(1, 2)).unwrap();
        assert!(log.append(&records(4, 4)).is_err());
        assert_eq!(log.bounds(), Some((id(1), id(2))));
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_go_on_after_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), None).unwrap();
        log.append(&records(1, 3)).unwrap();
        drop(log);
        let path = dir.path().join(format!("{:020}{SUFFIX}", 1));
        let len = std::fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        let (mut log, cuts) = LogFiles::open(dir.path(), None).unwrap();
        assert_eq!(cuts.len(), 1, "{cuts:?}");
        assert_eq!(cuts[0].why, "torn record");
        assert_eq!(log.bounds(), Some((id(1), id(2))));
        log.append(&records(3, 4)).unwrap();
        drop(log);
        let (log, cuts) = LogFiles::open(dir.path(), None).unwrap();
        assert!(cuts.is_empty());
        assert_eq!(log.read(4).unwrap().unwrap(), b"entry 4");
    }

    #[test]
    fn a_damaged_record_ends_the_log_there() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), None).unwrap();
        log.append(&records(1, 3)).unwrap();
        drop(log);
        let path = dir.path().join(format!("{:020}{SUFFIX}", 1));
        let mut data = std::fs::read(&path).unwrap();
        let second = HEADER + b"entry 1".len();
        data[second + HEADER] ^= 0xff;
        std::fs::write(&path, data).unwrap();
        let (log, cuts) = LogFiles::open(dir.path(), None).unwrap();
        assert_eq!(cuts[0].why, "checksum mismatch");
        assert_eq!(cuts[0].offset, second as u64);
        assert_eq!(log.bounds(), Some((id(1), id(1))));
    }

    #[test]
    fn truncate_removes_the_tail_and_later_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), None).unwrap();
        log.append(&records(1, 3)).unwrap();
        log.start_segment(4).unwrap();
        log.append(&records(4, 6)).unwrap();
        log.truncate(3).unwrap();
        assert_eq!(log.bounds(), Some((id(1), id(2))));
        assert!(!dir.path().join(format!("{:020}{SUFFIX}", 4)).exists());
        log.append(&records(3, 3)).unwrap();
        drop(log);
        let (log, cuts) = LogFiles::open(dir.path(), None).unwrap();
        assert!(cuts.is_empty());
        assert_eq!(log.bounds(), Some((id(1), id(3))));
    }

    #[test]
    fn purge_deletes_whole_segments_and_skips_purged_records_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), None).unwrap();
        log.append(&records(1, 3)).unwrap();
        log.start_segment(4).unwrap();
        log.append(&records(4, 6)).unwrap();
        log.purge(4).unwrap();
        assert!(!dir.path().join(format!("{:020}{SUFFIX}", 1)).exists());
        assert_eq!(log.bounds(), Some((id(5), id(6))));
        assert_eq!(log.read(4).unwrap(), None);
        drop(log);
        let (log, _) = LogFiles::open(dir.path(), Some(4)).unwrap();
        assert_eq!(log.bounds(), Some((id(5), id(6))));
        // Purging beyond the end keeps the newest segment for what follows.
        let (mut log, _) = LogFiles::open(dir.path(), None).unwrap();
        log.purge(10).unwrap();
        assert_eq!(log.bounds(), None);
        log.append(&records(11, 11)).unwrap();
        drop(log);
        let (log, _) = LogFiles::open(dir.path(), Some(10)).unwrap();
        assert_eq!(log.bounds(), Some((id(11), id(11))));
    }
}
