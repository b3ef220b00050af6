//! Reads a data directory of the reference server's file store
//! (nats-streaming-server v0.23.2, `-store file`), without changing it:
//! `server.dat`, `clients.dat`, and per channel directory its message
//! slices and `subs.dat`. Where NSS would repair a file at startup (a torn
//! last record, an index that does not match), this reads around the damage
//! the way NSS's repair would and reports it; anything else damaged is an
//! error that names the file and offset.

pub mod msgs;
mod records;
pub mod subs;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use prost::Message as _;

use crate::store::ClientInfo;
use records::RecordReader;

/// A source store that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {what}", path.display(), offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
pub struct NssError {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// Where in it, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl NssError {
    fn at(path: &Path, offset: u64, what: impl Into<String>) -> NssError {
        NssError {
            path: path.to_path_buf(),
            offset: Some(offset),
            what: what.into(),
        }
    }

    fn io(path: &Path, e: std::io::Error) -> NssError {
        NssError {
            path: path.to_path_buf(),
            offset: None,
            what: e.to_string(),
        }
    }
}

/// NSS's `ServerInfo`: the cluster ID and the subjects it handed out.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerInfo {
    /// The cluster ID.
    #[prost(string, tag = "1")]
    pub cluster_id: String,
    /// Subject of connect requests.
    #[prost(string, tag = "2")]
    pub discovery: String,
    /// Prefix of publish subjects.
    #[prost(string, tag = "3")]
    pub publish: String,
    /// Subject of subscription requests.
    #[prost(string, tag = "4")]
    pub subscribe: String,
    /// Subject of unsubscribe requests.
    #[prost(string, tag = "5")]
    pub unsubscribe: String,
    /// Subject of close requests.
    #[prost(string, tag = "6")]
    pub close: String,
    /// Subject of subscription close requests.
    #[prost(string, tag = "7")]
    pub sub_close: String,
}

/// `ClientDelete`.
#[derive(Clone, PartialEq, prost::Message)]
struct ClientDelete {
    #[prost(string, tag = "1")]
    id: String,
}

const ADD_CLIENT: u8 = 1;
const DELETE_CLIENT: u8 = 2;

/// An opened source: its server info and registered clients; channels are
/// read one at a time.
#[derive(Debug)]
pub struct Source {
    /// The source directory.
    pub dir: PathBuf,
    /// The server info of `server.dat`.
    pub info: ServerInfo,
    /// Registered clients, by ID.
    pub clients: BTreeMap<String, ClientInfo>,
    /// Channel names (the subdirectories), sorted.
    pub channels: Vec<String>,
    /// What was read around while opening.
    pub notes: Vec<String>,
}

impl Source {
    /// Opens `dir` and reads its server info and clients.
    ///
    /// # Errors
    /// No `server.dat` (not an NSS file store), or a damaged server or
    /// clients file.
    pub fn open(dir: &Path) -> Result<Source, NssError> {
        let server = dir.join("server.dat");
        if !server.is_file() {
            return Err(NssError {
                path: server,
                offset: None,
                what: "missing: not a data directory of nats-streaming-server's file store".into(),
            });
        }
        let info = read_server_info(&server)?;
        let mut notes = Vec::new();
        let clients = read_clients(&dir.join("clients.dat"), &mut notes)?;
        let mut channels = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| NssError::io(dir, e))? {
            let entry = entry.map_err(|e| NssError::io(dir, e))?;
            if entry
                .file_type()
                .map_err(|e| NssError::io(&entry.path(), e))?
                .is_dir()
            {
                match entry.file_name().into_string() {
                    Ok(name) => channels.push(name),
                    Err(name) => notes.push(format!(
                        "directory {name:?} skipped: its name is not UTF-8, so it is no channel"
                    )),
                }
            }
        }
        channels.sort();
        Ok(Source {
            dir: dir.to_path_buf(),
            info,
            clients,
            channels,
            notes,
        })
    }

    /// The IDs of the registered clients.
    pub fn client_ids(&self) -> HashSet<String> {
        self.clients.keys().cloned().collect()
    }

    /// A channel's directory.
    pub fn channel_dir(&self, channel: &str) -> PathBuf {
        self.dir.join(channel)
    }
}

fn read_server_info(path: &Path) -> Result<ServerInfo, NssError> {
    let mut records = RecordReader::open(path, false)?.ok_or_else(|| {
        NssError::at(path, 0, "empty: the server never started on this directory")
    })?;
    let Some(rec) = records.next_record()? else {
        return Err(NssError::at(path, 4, "holds no server record"));
    };
    ServerInfo::decode(&rec.payload[..])
        .map_err(|e| NssError::at(path, rec.offset, format!("undecodable server record: {e}")))
}

/// Replays `clients.dat`: adds register (the latest wins), deletes forget.
fn read_clients(
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, ClientInfo>, NssError> {
    let mut clients = BTreeMap::new();
    records::for_each_typed(path, notes, |rec| {
        let bad = |e: prost::DecodeError| {
            NssError::at(path, rec.offset, format!("undecodable record: {e}"))
        };
        match rec.kind {
            ADD_CLIENT => {
                let c = ClientInfo::decode(&rec.payload[..]).map_err(bad)?;
                clients.insert(c.id.clone(), c);
            }
            DELETE_CLIENT => {
                let d = ClientDelete::decode(&rec.payload[..]).map_err(bad)?;
                clients.remove(&d.id);
            }
            other => {
                return Err(NssError::at(
                    path,
                    rec.offset,
                    format!("invalid client record type {other}"),
                ))
            }
        }
        Ok(())
    })?;
    Ok(clients)
}

#[cfg(test)]
mod tests;
