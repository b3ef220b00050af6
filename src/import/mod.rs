//! `stanchion import-nss`: turns a data directory of the reference server's
//! file store into a stanchion store, so that a deployment switches over
//! with its unread messages, durable positions and registered clients.
//!
//! The source is only read. Each channel is copied whole (every message
//! still on disk, with its sequence, timestamp, data and reply subject);
//! NSS trims by its limits each time it starts, and stanchion started with
//! the same limits trims the same way. Subscriptions follow NSS's restart
//! rules ([`crate::nss::subs::survivors`]). The server info goes in last:
//! a store without it is an import that did not finish. With `encrypt`,
//! the new store's payloads are encrypted as the server would encrypt them.

mod progress;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crypto::{ChannelCipher, Cipher, MasterKey};
use crate::nss::{msgs, subs, NssError, Source};
use crate::protocol::pb::MsgProto;
use crate::store::{
    ChannelStore, EncryptedStore, ServerInfo, SledOptions, SledStore, Store, StoreError, SubUpdate,
};

pub use progress::{Progress, Quiet};

/// Messages appended per store write.
const BATCH: usize = 1024;

/// What to import, and where.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The NSS data directory (`-dir` of the reference server).
    pub from: PathBuf,
    /// The stanchion store to create.
    pub dir: PathBuf,
    /// The key the source was encrypted with, if it was.
    pub key: Option<Vec<u8>>,
    /// Encrypt the new store's payloads with [`ImportOptions::key`] and
    /// this cipher, so that it is served with the same `--encrypt` flags.
    pub encrypt: Option<Cipher>,
    /// sled's page cache size for the new store.
    pub cache_capacity: u64,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source store is damaged or unreadable.
    #[error("reading the NSS store: {0}")]
    Source(#[from] NssError),
    /// The destination store failed.
    #[error("writing the stanchion store: {0}")]
    Store(#[from] StoreError),
    /// The import was refused before anything was written.
    #[error("{0}")]
    Refused(String),
    /// A message did not decrypt.
    #[error("channel {channel:?}, message {seq} in {}: {why}", file.display())]
    Decrypt {
        /// The channel.
        channel: String,
        /// The message's sequence.
        seq: u64,
        /// The slice file holding it.
        file: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// Sequences that do not follow each other.
    #[error("channel {channel:?}: message {got} in {} does not follow {last}", file.display())]
    Gap {
        /// The channel.
        channel: String,
        /// The last sequence imported.
        last: u64,
        /// The sequence found next.
        got: u64,
        /// The slice file holding it.
        file: PathBuf,
    },
}

/// Counts of what was imported, and what was not and why.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// The cluster ID of the source.
    pub cluster_id: String,
    /// Channels imported.
    pub channels: u64,
    /// Messages imported.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Durable subscriptions (online and offline).
    pub durables: u64,
    /// Members of durable queue groups, and groups kept by their shadow.
    pub queue_members: u64,
    /// Durable queue groups that had no member left (kept offline).
    pub queue_shadows: u64,
    /// Non-durable subscriptions of registered clients.
    pub plain: u64,
    /// Unacknowledged messages carried with the subscriptions.
    pub pending: u64,
    /// Registered clients.
    pub clients: u64,
    /// Things not imported or read around, each with its reason.
    pub skipped: Vec<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "imported cluster {:?}:", self.cluster_id)?;
        writeln!(f, "  channels:       {}", self.channels)?;
        writeln!(f, "  messages:       {}", self.messages)?;
        writeln!(f, "  bytes:          {}", self.bytes)?;
        writeln!(
            f,
            "  subscriptions:  {} ({} durable, {} durable queue members, {} queue groups with no member, {} plain)",
            self.durables + self.queue_members + self.queue_shadows + self.plain,
            self.durables,
            self.queue_members,
            self.queue_shadows,
            self.plain
        )?;
        writeln!(f, "  unacked msgs:   {}", self.pending)?;
        writeln!(f, "  clients:        {}", self.clients)?;
        writeln!(f, "  skipped:        {}", self.skipped.len())?;
        for s in &self.skipped {
            writeln!(f, "    - {s}")?;
        }
        Ok(())
    }
}

/// Runs an import, reporting to `progress`.
///
/// # Errors
/// A destination that holds data or lies inside the source, a damaged
/// source (naming file and offset), a message that does not decrypt, or a
/// store failure.
pub fn run(opts: &ImportOptions, progress: &mut dyn Progress) -> Result<Summary, ImportError> {
    refuse_overlap(&opts.from, &opts.dir)?;
    refuse_non_empty(&opts.dir)?;
    let key = opts.key.as_deref().map(MasterKey::new);
    if opts.encrypt.is_some() && key.is_none() {
        return Err(ImportError::Refused(
            "--encrypt needs a key (--encryption_key or NATS_STREAMING_ENCRYPTION_KEY)".into(),
        ));
    }
    let source = Source::open(&opts.from)?;
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(SledOptions {
        dir: opts.dir.clone(),
        cache_capacity: opts.cache_capacity,
    })?);
    let store: Arc<dyn Store> = match (&key, opts.encrypt) {
        (Some(key), Some(cipher)) => Arc::new(EncryptedStore::open(sled, key.clone(), cipher)?),
        _ => sled,
    };
    let mut summary = Summary {
        cluster_id: source.info.cluster_id.clone(),
        skipped: source.notes.clone(),
        ..Summary::default()
    };
    let mut plans = Vec::with_capacity(source.channels.len());
    for name in &source.channels {
        let slices = msgs::slices(&source.channel_dir(name))?;
        plans.push((name.clone(), slices));
    }
    let total: u64 = plans
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| s.dat_len))
        .sum();
    progress.start(total, plans.len());
    let registered = source.client_ids();
    for (name, slices) in plans {
        let cipher = key
            .as_ref()
            .map(|k| k.channel(&name, Cipher::platform_default()));
        let ch = store.open_channel(&name)?;
        copy_messages(&*ch, &slices, cipher.as_ref(), &mut summary, progress)?;
        let mut notes = Vec::new();
        let stored = subs::replay(&source.channel_dir(&name).join("subs.dat"), &mut notes)?;
        let kept = subs::survivors(&name, stored, &registered, &mut notes);
        summary.skipped.extend(notes);
        copy_subs(&*ch, kept, &mut summary)?;
        summary.channels += 1;
        progress.channel_done(&name, ch.state().msgs);
    }
    for client in source.clients.values() {
        store.put_client(client)?;
        summary.clients += 1;
    }
    let info = &source.info;
    store.set_server_info(&ServerInfo {
        cluster_id: info.cluster_id.clone(),
        discovery: info.discovery.clone(),
        publish: info.publish.clone(),
        subscribe: info.subscribe.clone(),
        unsubscribe: info.unsubscribe.clone(),
        close: info.close.clone(),
        sub_close: info.sub_close.clone(),
        format_version: crate::server::FORMAT_VERSION,
        ack_prefix: format!("_INBOX.{}", nuid::next()),
        // Set by an `EncryptedStore` when payloads are encrypted.
        key_check: Default::default(),
    })?;
    store.flush()?;
    progress.finish();
    Ok(summary)
}

/// Appends every message of the slices, in order, decrypting when asked.
fn copy_messages(
    ch: &dyn ChannelStore,
    slices: &[msgs::Slice],
    cipher: Option<&ChannelCipher>,
    summary: &mut Summary,
    progress: &mut dyn Progress,
) -> Result<(), ImportError> {
    for slice in slices {
        let read = msgs::read_slice(slice)?;
        summary.skipped.extend(read.notes);
        let mut batch: Vec<MsgProto> = Vec::with_capacity(BATCH);
        for mut msg in read.msgs {
            let last = ch.state().last + batch.len() as u64;
            if msg.sequence <= last && last > 0 {
                summary.skipped.push(format!(
                    "{}: message {} again after {last}: the later copy is dropped",
                    slice.dat.display(),
                    msg.sequence
                ));
                continue;
            }
            if last == 0 && batch.is_empty() && msg.sequence > 1 {
                // Its first messages were removed by NSS's limits.
                ch.start_after(msg.sequence - 1)?;
            } else if msg.sequence != last + 1 {
                return Err(ImportError::Gap {
                    channel: ch.name().to_string(),
                    last,
                    got: msg.sequence,
                    file: slice.dat.clone(),
                });
            }
            if let Some(c) = cipher {
                match c.decrypt(&msg.data) {
                    Ok(Some(plain)) => msg.data = plain.into(),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(ImportError::Decrypt {
                            channel: ch.name().to_string(),
                            seq: msg.sequence,
                            file: slice.dat.clone(),
                            why: e.to_string(),
                        })
                    }
                }
            }
            summary.messages += 1;
            summary.bytes += msg.data.len() as u64;
            batch.push(msg);
            if batch.len() == BATCH {
                ch.append(&batch)?;
                batch.clear();
            }
        }
        ch.append(&batch)?;
        progress.advance(slice.dat_len);
    }
    ch.commit()?;
    Ok(())
}

/// Writes the surviving subscriptions with their unacked messages.
fn copy_subs(
    ch: &dyn ChannelStore,
    kept: Vec<subs::StoredSub>,
    summary: &mut Summary,
) -> Result<(), ImportError> {
    let mut updates = Vec::new();
    for sub in kept {
        match subs::kind(&sub.state) {
            subs::Kind::Durable => summary.durables += 1,
            subs::Kind::QueueMember => summary.queue_members += 1,
            subs::Kind::QueueShadow => summary.queue_shadows += 1,
            subs::Kind::Plain => summary.plain += 1,
        }
        summary.pending += sub.pending.len() as u64;
        let id = sub.state.id;
        updates.push(SubUpdate::Put(sub.state));
        updates.extend(
            sub.pending
                .into_iter()
                .map(|seq| SubUpdate::AddPending { sub: id, seq }),
        );
    }
    ch.apply_subs(&updates)?;
    Ok(())
}

/// Refuses a destination that is the source or lies inside it: the source
/// is never written.
fn refuse_overlap(from: &Path, dir: &Path) -> Result<(), ImportError> {
    let from = from
        .canonicalize()
        .map_err(|e| ImportError::Refused(format!("--from {}: {e}", from.display())))?;
    let target = resolved(dir);
    if target.starts_with(&from) {
        return Err(ImportError::Refused(format!(
            "--dir {} is inside the NSS store {}: the source is never written to",
            dir.display(),
            from.display()
        )));
    }
    Ok(())
}

/// `path` with its existing part resolved (symlinks, `..`).
fn resolved(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut head = path.to_path_buf();
    loop {
        if let Ok(real) = head.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(real, |p, c: &std::ffi::OsString| p.join(c));
        }
        match (head.file_name().map(|n| n.to_owned()), head.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                head = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Refuses a destination that holds anything: an import starts a store,
/// it never merges into one.
fn refuse_non_empty(dir: &Path) -> Result<(), ImportError> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(ImportError::Refused(format!(
            "{} is not empty: import into a new or empty directory (it never merges into an existing store)",
            dir.display()
        ))),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImportError::Refused(format!("--dir {}: {e}", dir.display()))),
    }
}
