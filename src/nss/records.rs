//! The record framing every file of the reference server's file store uses:
//! a 4-byte little-endian file version (1), then records of a 4-byte header
//! (the payload size, or for typed files the type in the high byte and the
//! size in the low three), a CRC-32 (IEEE) of the payload, and the payload.
//! An all-zero header is padding: the file ends there.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::NssError;

/// The only file version the reference server writes.
const FILE_VERSION: u32 = 1;
/// Header bytes before each payload.
pub const HEADER_LEN: u64 = 8;

/// One record as read: its type (0 for untyped files), where it starts, its payload.
#[derive(Debug)]
pub struct Record {
    /// Record type (typed files), else 0.
    pub kind: u8,
    /// Offset of the record's header in the file.
    pub offset: u64,
    /// The payload, CRC-checked.
    pub payload: Vec<u8>,
}

/// How a record file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// At the end of the file, or at zero padding.
    Clean,
    /// A record cut short at `offset` (a process killed mid-write): the
    /// reference server drops it when told to truncate a bad EOF.
    Torn {
        /// Where the torn record starts.
        offset: u64,
    },
}

/// Reads records one after another from a file opened read-only.
pub struct RecordReader {
    path: PathBuf,
    input: std::io::BufReader<std::fs::File>,
    typed: bool,
    offset: u64,
    end: Option<End>,
}

impl RecordReader {
    /// Opens `path`, checking its file version. `Ok(None)` for an empty file.
    ///
    /// # Errors
    /// The file cannot be read, or holds another version.
    pub fn open(path: &Path, typed: bool) -> Result<Option<RecordReader>, NssError> {
        let file = std::fs::File::open(path).map_err(|e| NssError::io(path, e))?;
        let mut input = std::io::BufReader::with_capacity(1 << 20, file);
        let mut version = [0u8; 4];
        match read_full(&mut input, &mut version).map_err(|e| NssError::io(path, e))? {
            0 => return Ok(None),
            4 => {}
            _ => {
                return Err(NssError::at(
                    path,
                    0,
                    "file shorter than its version header",
                ))
            }
        }
        let v = u32::from_le_bytes(version);
        if v == 0 || v > FILE_VERSION {
            return Err(NssError::at(
                path,
                0,
                format!("unsupported file version {v} (supports 1)"),
            ));
        }
        Ok(Some(RecordReader {
            path: path.to_path_buf(),
            input,
            typed,
            offset: 4,
            end: None,
        }))
    }

    /// How the file ended, once [`RecordReader::next_record`] returned `None`.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// The next record, or `None` at the end (see [`RecordReader::end`]).
    ///
    /// # Errors
    /// A CRC mismatch, or a read failure, naming the file and offset.
    pub fn next_record(&mut self) -> Result<Option<Record>, NssError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let offset = self.offset;
        let mut header = [0u8; HEADER_LEN as usize];
        let got = read_full(&mut self.input, &mut header).map_err(|e| self.io(e))?;
        if got == 0 {
            self.end = Some(End::Clean);
            return Ok(None);
        }
        if got < header.len() {
            self.end = Some(End::Torn { offset });
            return Ok(None);
        }
        if header == [0; 8] {
            self.end = Some(End::Clean);
            return Ok(None);
        }
        let first = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let (kind, size) = if self.typed {
            ((first >> 24) as u8, first & 0xFF_FFFF)
        } else {
            (0, first)
        };
        let mut payload = vec![0u8; size as usize];
        let got = read_full(&mut self.input, &mut payload).map_err(|e| self.io(e))?;
        if got < payload.len() {
            self.end = Some(End::Torn { offset });
            return Ok(None);
        }
        let actual = crc32fast::hash(&payload);
        if actual != crc {
            return Err(NssError::at(
                &self.path,
                offset,
                format!("corrupted record: CRC-32 is 0x{actual:08x}, header says 0x{crc:08x}"),
            ));
        }
        self.offset = offset + HEADER_LEN + u64::from(size);
        Ok(Some(Record {
            kind,
            offset,
            payload,
        }))
    }

    fn io(&self, e: std::io::Error) -> NssError {
        NssError::at(&self.path, self.offset, e.to_string())
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads the one record at `offset` of a data file (random access), CRC-checked.
///
/// # Errors
/// A short read or a CRC mismatch, naming the file and offset.
pub fn read_at(file: &std::fs::File, path: &Path, offset: u64) -> Result<Vec<u8>, NssError> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut header, offset)
        .map_err(|e| NssError::at(path, offset, format!("reading record header: {e}")))?;
    let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut payload = vec![0u8; size as usize];
    file.read_exact_at(&mut payload, offset + HEADER_LEN)
        .map_err(|e| NssError::at(path, offset, format!("reading {size}-byte record: {e}")))?;
    let actual = crc32fast::hash(&payload);
    if actual != crc {
        return Err(NssError::at(
            path,
            offset,
            format!("corrupted record: CRC-32 is 0x{actual:08x}, header says 0x{crc:08x}"),
        ));
    }
    Ok(payload)
}

/// Feeds every record of a typed file (`clients.dat`, `subs.dat`) to
/// `each`, in order. A missing or empty file has none; a torn last record is
/// dropped with a note.
///
/// # Errors
/// What `open`, `next_record` or `each` returns.
pub fn for_each_typed(
    path: &Path,
    notes: &mut Vec<String>,
    mut each: impl FnMut(Record) -> Result<(), NssError>,
) -> Result<(), NssError> {
    if !path.is_file() {
        return Ok(());
    }
    let Some(mut records) = RecordReader::open(path, true)? else {
        return Ok(());
    };
    while let Some(rec) = records.next_record()? {
        each(rec)?;
    }
    if let Some(End::Torn { offset }) = records.end() {
        notes.push(format!(
            "{}: record at offset {offset} is cut short (written when the server was killed); dropped",
            path.display()
        ));
    }
    Ok(())
}
