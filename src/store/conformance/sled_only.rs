//! Tests of what only the sled store has: corrupt records on disk (errors,
//! never panics), handles of deleted channels, leftover trees, and opening a
//! big channel without reading its messages.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{msg, open_sled, open_sled_with, retry_locked, size, sled_options, sub};
use crate::protocol::pb::MsgProto;
use crate::store::sled_channel::Limits;
use crate::store::{ChannelState, SledStore, Store, StoreError, SubUpdate};

/// Garbage that prost refuses (wire type 7 does not exist).
const GARBAGE: &[u8] = b"\xff\xff\xff";

/// Writes a raw entry into the store's sled database, with the store closed.
fn poke(dir: &Path, tree: &str, key: &[u8], value: &[u8]) {
    let db = retry_locked(|| sled::open(dir));
    db.open_tree(tree).unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

/// Opens the store, retrying only while sled's file lock is still held
/// (an I/O error), and returns any other outcome.
fn try_open(dir: &Path) -> crate::store::Result<SledStore> {
    retry_locked(|| match SledStore::open(sled_options(dir)) {
        Err(StoreError::Sled(sled::Error::Io(e))) => Err(e),
        other => Ok(other),
    })
}

/// Asserts a `Corrupt` error.
fn assert_corrupt<T>(res: crate::store::Result<T>) {
    match res {
        Err(StoreError::Corrupt { .. }) => {}
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("expected Corrupt, got success"),
    }
}

/// A store in `dir` with channel "c" (ID 1) holding messages 1..=3 (one
/// record each) and sub 1 (in the subscription log, not compacted).
fn seed(dir: &Path) {
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    for (seq, data) in [(1, "a"), (2, "b"), (3, "c")] {
        ch.append(&[msg(seq, i64::try_from(seq).unwrap(), data)])
            .unwrap();
    }
    ch.apply_subs(&[SubUpdate::Put(sub(1, 3))]).unwrap();
    store.flush().unwrap();
}

/// The key of sub 1's snapshot in the subscription tree.
const SUB_1_SNAPSHOT: &[u8] = b"S\0\0\0\0\0\0\0\x01";
/// The key of the first subscription log slot (batch 256, 512, ...).
const LOG_SLOT_0: &[u8] = b"L\0\0\0\0";

#[test]
fn corrupt_records_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir);
    poke(dir, "clients", b"bad", GARBAGE);
    poke(dir, "meta", b"server_info", GARBAGE);
    poke(dir, "chan.1.msgs", &2u64.to_be_bytes(), b"\0\0\0");
    poke(dir, "chan.1.subs", SUB_1_SNAPSHOT, GARBAGE);
    let store = open_sled(dir);
    assert_corrupt(store.clients());
    assert_corrupt(store.server_info());
    let ch = store.open_channel("c").unwrap();
    assert_corrupt(ch.get(2));
    assert_corrupt(ch.range(0, 10));
    assert_corrupt(ch.subs());
    assert_eq!(ch.get(3).unwrap().map(|m| m.sequence), Some(3));
    drop((ch, store));

    // A sound snapshot (no record, pending 5), but a truncated batch 256
    // (live: its counter is above the compacted one, 0).
    poke(dir, "chan.1.subs", SUB_1_SNAPSHOT, b"\0\x01\x05");
    poke(
        dir,
        "chan.1.subs",
        LOG_SLOT_0,
        b"\0\0\0\0\0\0\x01\0\x03\x01",
    );
    let store = open_sled(dir);
    assert_corrupt(store.open_channel("c").unwrap().subs());
    drop(store);

    // A key the subscription layout does not know.
    poke(dir, "chan.1.subs", LOG_SLOT_0, b"\0\0\0\0\0\0\0\0");
    poke(dir, "chan.1.subs", &1u64.to_be_bytes(), b"");
    let store = open_sled(dir);
    assert_corrupt(store.open_channel("c").unwrap().subs());
    drop(store);

    // A first message whose value is shorter than its header.
    poke(dir, "chan.1.msgs", &1u64.to_be_bytes(), b"\0");
    let store = open_sled(dir);
    assert_corrupt(store.open_channel("c"));
    drop(store);

    // A malformed channel entry or format version fails the open itself.
    poke(dir, "channels", b"c", b"\0\0");
    assert_corrupt(try_open(dir));
    let other = tempfile::tempdir().unwrap();
    poke(
        other.path(),
        "meta",
        b"format_version",
        &99u32.to_be_bytes(),
    );
    assert_corrupt(try_open(other.path()));
}

#[test]
fn deleted_channel_handles_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sled(dir.path());
    let old = store.open_channel("c").unwrap();
    old.append(&[msg(1, 1, "a")]).unwrap();
    store.delete_channel("c").unwrap();
    assert!(old.append(&[msg(2, 2, "b")]).is_err());
    assert!(old.get(1).is_err());
    assert!(old.subs().is_err());
    // The new channel of the same name is unaffected by the stale handle.
    let new = store.open_channel("c").unwrap();
    assert_eq!(new.state(), ChannelState::default());
    new.append(&[msg(1, 5, "z")]).unwrap();
    assert_eq!(new.get(1).unwrap().map(|m| m.timestamp), Some(5));
}

#[test]
fn orphan_trees_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    // As if a deletion crashed after removing the name: trees of ID 9 linger.
    poke(dir.path(), "chan.9.msgs", &1u64.to_be_bytes(), b"x");
    drop(open_sled(dir.path()));
    let db = retry_locked(|| sled::open(dir.path()));
    let names: Vec<_> = db.tree_names().into_iter().map(|n| n.to_vec()).collect();
    assert!(!names.contains(&b"chan.9.msgs".to_vec()));
    assert!(names.contains(&b"chan.1.msgs".to_vec()));
}

/// A small message of the big channel; three share each timestamp.
fn big_msg(seq: u64) -> MsgProto {
    msg(seq, i64::try_from(seq / 3).unwrap(), "0123456789")
}

#[test]
fn big_channel_reopens_fast() {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open_sled_with(dir.path(), Limits::default());
    let ch = store.open_channel("big").unwrap();
    let mut bytes = 0;
    for start in (1..=N).step_by(5_000) {
        let batch: Vec<_> = (start..start + 5_000).map(big_msg).collect();
        bytes += size(&batch);
        ch.append(&batch).unwrap();
    }
    ch.remove_through(10).unwrap();
    bytes -= size(&(1..=10).map(big_msg).collect::<Vec<_>>());
    let want = ChannelState {
        first: 11,
        last: N,
        msgs: N - 10,
        bytes,
    };
    assert_eq!(ch.state(), want);
    store.flush().unwrap();
    drop((ch, store));

    let started = Instant::now();
    let store = open_sled_with(dir.path(), Limits::default());
    let store_opened = Instant::now();
    let ch = store.open_channel("big").unwrap();
    let channel_open = store_opened.elapsed();
    let total = started.elapsed();
    assert_eq!(ch.state(), want);
    // Opening the channel reads two records; the rest is sled's own recovery.
    assert!(
        channel_open < Duration::from_millis(100),
        "{channel_open:?}"
    );
    assert!(total < Duration::from_secs(1), "reopen took {total:?}");
    assert_eq!(ch.first_seq_at_or_after(20_000).unwrap(), Some(60_000));
    assert_eq!(ch.first_seq_at_or_after(0).unwrap(), Some(11));
    assert_eq!(ch.first_seq_at_or_after(i64::MAX).unwrap(), None);
}
