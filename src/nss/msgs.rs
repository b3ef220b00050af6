//! A channel's message log in the reference server's file store: slices
//! `msgs.N.dat` (records of MsgProto) with their `msgs.N.idx` (32-byte
//! entries: sequence u64, offset u64, timestamp i64, size u32, CRC-32 of
//! the first 28 bytes), all little-endian. As NSS does, the index is
//! trusted when it reads cleanly and its last entry matches the data file;
//! otherwise the slice is read from its data file.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message as _;

use super::records::{read_at, End, RecordReader};
use super::NssError;
use crate::protocol::pb::MsgProto;

/// Bytes of one index entry.
const INDEX_ENTRY: usize = 32;

/// One slice of a channel's log.
#[derive(Debug, Clone)]
pub struct Slice {
    /// The slice number, from the file name.
    pub number: u64,
    /// The data file.
    pub dat: PathBuf,
    /// The index file, when there is one.
    pub idx: Option<PathBuf>,
    /// Size of the data file.
    pub dat_len: u64,
}

/// The slices of a channel directory, in slice order (numerically: the
/// files of a trimmed channel may start at `msgs.10`).
///
/// # Errors
/// A directory that cannot be listed, or a `msgs.*.dat` file whose number
/// does not parse (NSS refuses those too).
pub fn slices(dir: &Path) -> Result<Vec<Slice>, NssError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| NssError::io(dir, e))? {
        let entry = entry.map_err(|e| NssError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name
            .strip_prefix("msgs.")
            .and_then(|n| n.strip_suffix(".dat"))
        else {
            continue;
        };
        let path = entry.path();
        let number: u64 = number
            .parse()
            .map_err(|_| NssError::at(&path, 0, "message log has an invalid name"))?;
        let meta = entry.metadata().map_err(|e| NssError::io(&path, e))?;
        if !meta.is_file() {
            continue;
        }
        let idx = dir.join(format!("msgs.{number}.idx"));
        out.push(Slice {
            number,
            dat: path,
            idx: idx.is_file().then_some(idx),
            dat_len: meta.len(),
        });
    }
    out.sort_by_key(|s| s.number);
    Ok(out)
}

/// The messages of one slice, and what was set aside while reading it.
#[derive(Debug, Default)]
pub struct SliceRead {
    /// The slice's messages, in file order.
    pub msgs: Vec<MsgProto>,
    /// Things read around (an unusable index, a torn last record).
    pub notes: Vec<String>,
}

/// Reads one slice.
///
/// # Errors
/// A corrupted record (CRC), a record that is not a message, or an index
/// entry that points at another sequence, naming the file and offset.
pub fn read_slice(slice: &Slice) -> Result<SliceRead, NssError> {
    let mut read = SliceRead::default();
    if let Some(idx) = &slice.idx {
        match usable_index(slice, idx) {
            Ok(Some(entries)) => {
                read.msgs = read_indexed(slice, &entries)?;
                return Ok(read);
            }
            Ok(None) => {}
            Err(why) => read.notes.push(format!(
                "{}: {why}; read from {} instead, as NSS does",
                idx.display(),
                slice.dat.display()
            )),
        }
    }
    let Some(mut records) = RecordReader::open(&slice.dat, false)? else {
        return Ok(read);
    };
    while let Some(rec) = records.next_record()? {
        let msg = decode(&slice.dat, rec.offset, rec.payload)?;
        read.msgs.push(msg);
    }
    if let Some(End::Torn { offset }) = records.end() {
        read.notes.push(format!(
            "{}: record at offset {offset} is cut short (written when the server was killed); \
             dropped, as NSS does when it truncates a bad EOF",
            slice.dat.display()
        ));
    }
    Ok(read)
}

/// One index entry.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    seq: u64,
    offset: u64,
    size: u32,
}

/// The index entries when the index can be trusted; `Ok(None)` when it
/// holds none; `Err(why)` when it must not be used.
fn usable_index(slice: &Slice, idx: &Path) -> Result<Option<Vec<IndexEntry>>, String> {
    let bytes = std::fs::read(idx).map_err(|e| format!("unreadable ({e})"))?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() < 4 || u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) != 1 {
        return Err("unsupported file version".to_string());
    }
    let mut entries = Vec::with_capacity((bytes.len() - 4) / INDEX_ENTRY);
    for (i, e) in bytes[4..].chunks(INDEX_ENTRY).enumerate() {
        let offset = 4 + i * INDEX_ENTRY;
        if e.len() < INDEX_ENTRY {
            return Err(format!("entry at offset {offset} is cut short"));
        }
        if e.iter().all(|b| *b == 0) {
            break;
        }
        let crc = u32::from_le_bytes([e[28], e[29], e[30], e[31]]);
        if crc32fast::hash(&e[..28]) != crc {
            return Err(format!("entry at offset {offset} fails its CRC"));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&e[at..at + 8]);
            u64::from_le_bytes(b)
        };
        entries.push(IndexEntry {
            seq: u64_at(0),
            offset: u64_at(8),
            size: u32::from_le_bytes([e[24], e[25], e[26], e[27]]),
        });
    }
    let Some(last) = entries.last().copied() else {
        return Ok(None);
    };
    let file =
        std::fs::File::open(&slice.dat).map_err(|e| format!("data file unreadable ({e})"))?;
    let payload = read_at(&file, &slice.dat, last.offset)
        .map_err(|e| format!("its last entry does not match the data file ({e})"))?;
    if payload.len() != last.size as usize {
        return Err(format!(
            "its last entry says {} bytes, the data file holds {}",
            last.size,
            payload.len()
        ));
    }
    match MsgProto::decode(&payload[..]) {
        Ok(m) if m.sequence == last.seq => Ok(Some(entries)),
        Ok(m) => Err(format!(
            "its last entry is sequence {}, the data file holds {}",
            last.seq, m.sequence
        )),
        Err(e) => Err(format!(
            "its last entry points at an undecodable record ({e})"
        )),
    }
}

/// Reads each message the index names, where it names it.
fn read_indexed(slice: &Slice, entries: &[IndexEntry]) -> Result<Vec<MsgProto>, NssError> {
    let file = std::fs::File::open(&slice.dat).map_err(|e| NssError::io(&slice.dat, e))?;
    let mut msgs = Vec::with_capacity(entries.len());
    for e in entries {
        let payload = read_at(&file, &slice.dat, e.offset)?;
        let msg = decode(&slice.dat, e.offset, payload)?;
        if msg.sequence != e.seq {
            return Err(NssError::at(
                &slice.dat,
                e.offset,
                format!(
                    "index names sequence {}, the record holds {}",
                    e.seq, msg.sequence
                ),
            ));
        }
        msgs.push(msg);
    }
    Ok(msgs)
}

fn decode(path: &Path, offset: u64, payload: Vec<u8>) -> Result<MsgProto, NssError> {
    MsgProto::decode(Bytes::from(payload))
        .map_err(|e| NssError::at(path, offset, format!("record is not a message: {e}")))
}
