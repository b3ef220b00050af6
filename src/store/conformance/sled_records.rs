//! Tests of the sled store's record mechanics, checked on the raw trees as
//! well as through the traits: appends cut into records, removals that end
//! inside a record, and the subscription log's compaction and ring of
//! slots across restarts and changes of limits.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{msg, msgs, open_sled, open_sled_with, retry_locked, size, sub, tiny_limits};
use crate::store::sled_channel::Limits;
use crate::store::{ChannelState, MemoryStore, Store, SubUpdate};

/// Keys of one tree of the store in `dir` (closed), in order.
fn raw_keys(dir: &Path, tree: &str) -> Vec<Vec<u8>> {
    let db = retry_locked(|| sled::open(dir));
    let tree = db.open_tree(tree).unwrap();
    tree.iter().keys().map(|k| k.unwrap().to_vec()).collect()
}

/// The record keys (first sequences) of a raw message tree.
fn record_firsts(keys: &[Vec<u8>]) -> Vec<u64> {
    keys.iter()
        .filter(|k| k.len() == 8)
        .map(|k| u64::from_be_bytes(k[..].try_into().unwrap()))
        .collect()
}

#[test]
fn appends_are_cut_into_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    // Three messages per record at most, and a message too big for any
    // record (200 bytes) gets one of its own.
    ch.append(&msgs(1, 7)).unwrap();
    let big = msg(8, 80, &"x".repeat(300));
    let second = [big.clone(), msg(9, 90, "a"), msg(10, 100, "b")];
    ch.append(&second).unwrap();
    ch.append(&msgs(11, 11)).unwrap();
    let want = ChannelState {
        first: 1,
        last: 11,
        msgs: 11,
        bytes: size(&msgs(1, 7)) + size(&second) + size(&msgs(11, 11)),
    };
    assert_eq!(ch.state(), want);
    assert_eq!(ch.get(8).unwrap(), Some(big));
    drop(ch);
    drop(store);
    let keys = raw_keys(dir.path(), "chan.1.msgs");
    assert_eq!(record_firsts(&keys), [1, 4, 7, 8, 9, 11]);

    // The default limits keep a large append in one record.
    let store = open_sled_with(dir.path(), Limits::default());
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.state(), want);
    ch.append(&msgs(12, 1_011)).unwrap();
    assert_eq!(ch.range(500, 2).unwrap(), msgs(500, 501));
    drop(ch);
    drop(store);
    let keys = raw_keys(dir.path(), "chan.1.msgs");
    assert_eq!(record_firsts(&keys), [1, 4, 7, 8, 9, 11, 12]);
}

#[test]
fn removal_inside_a_record_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let all = msgs(1, 10);
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    ch.append(&all).unwrap(); // records 1, 4, 7, 10
    ch.remove_through(5).unwrap();
    let want = ChannelState {
        first: 6,
        last: 10,
        msgs: 5,
        bytes: size(&all[5..]),
    };
    let check = |ch: &dyn crate::store::ChannelStore| {
        assert_eq!(ch.state(), want);
        assert_eq!(ch.get(5).unwrap(), None);
        assert_eq!(ch.get(6).unwrap().as_ref(), Some(&all[5]));
        assert_eq!(ch.range(0, 100).unwrap(), &all[5..]);
        assert_eq!(ch.range(4, 1).unwrap(), &all[5..6]);
        assert_eq!(ch.first_seq_at_or_after(0).unwrap(), Some(6));
        assert_eq!(ch.first_seq_at_or_after(45).unwrap(), Some(6));
        assert_eq!(ch.first_seq_at_or_after(70).unwrap(), Some(7));
    };
    check(&*ch);
    drop(ch);
    drop(store);
    // Record 1 is gone; record 4 stays, its first two messages below the floor.
    let keys = raw_keys(dir.path(), "chan.1.msgs");
    assert_eq!(record_firsts(&keys), [4, 7, 10]);
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    check(&*ch);

    // Removing up to a record's last message drops it whole.
    ch.remove_through(6).unwrap();
    ch.remove_through(9).unwrap();
    let want = ChannelState {
        first: 10,
        last: 10,
        msgs: 1,
        bytes: size(&all[9..]),
    };
    assert_eq!(ch.state(), want);
    drop(ch);
    drop(store);
    assert_eq!(record_firsts(&raw_keys(dir.path(), "chan.1.msgs")), [10]);
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.state(), want);
    ch.append(&msgs(11, 12)).unwrap();
    assert_eq!(ch.state().bytes, size(&msgs(10, 12)));
    ch.remove_through(11).unwrap();
    drop(ch);
    drop(store);
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    let want = ChannelState {
        first: 12,
        last: 12,
        msgs: 1,
        bytes: size(&msgs(12, 12)),
    };
    assert_eq!(ch.state(), want);
    assert_eq!(ch.range(0, 10).unwrap(), msgs(12, 12));
}

#[test]
fn removal_of_many_records_goes_in_chunks() {
    // More records (three messages each) than one removal batch deletes.
    const N: u64 = 3 * 4_096 + 100;
    let dir = tempfile::tempdir().unwrap();
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    let all = msgs(1, N);
    ch.append(&all).unwrap();
    ch.remove_through(N - 5).unwrap();
    let want = ChannelState {
        first: N - 4,
        last: N,
        msgs: 5,
        bytes: size(&all[all.len() - 5..]),
    };
    assert_eq!(ch.state(), want);
    assert_eq!(ch.range(0, 10).unwrap(), &all[all.len() - 5..]);
    drop(ch);
    drop(store);
    let keys = raw_keys(dir.path(), "chan.1.msgs");
    // Records start at 1, 4, 7, ...: those ending at or after N - 4 stay.
    let kept: Vec<u64> = (1..=N).step_by(3).filter(|f| f + 2 >= N - 4).collect();
    assert_eq!(record_firsts(&keys), kept);
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.state(), want);
    ch.remove_through(N).unwrap();
    drop(ch);
    drop(store);
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    let empty = ChannelState {
        last: N,
        ..ChannelState::default()
    };
    assert_eq!(ch.state(), empty);
    drop(ch);
    drop(store);
    assert_eq!(raw_keys(dir.path(), "chan.1.msgs"), [vec![0]]);
}

/// A random subscription update on sub IDs 1..=6 and sequences 1..=60.
fn random_update(rng: &mut StdRng) -> SubUpdate {
    let id = rng.random_range(1..=6);
    let seq = rng.random_range(1..=60);
    match rng.random_range(0..20) {
        0..=2 => SubUpdate::Put(sub(id, seq)),
        3 => SubUpdate::Delete(id),
        4..=11 => SubUpdate::AddPending { sub: id, seq },
        _ => SubUpdate::RemovePending { sub: id, seq },
    }
}

/// The sub log's compacted-through counter and slot count, from the raw
/// tree of the store in `dir` (closed).
fn sub_log_shape(dir: &Path) -> (u64, usize) {
    let db = retry_locked(|| sled::open(dir));
    let tree = db.open_tree("chan.1.subs").unwrap();
    let compacted = tree
        .get(b"C")
        .unwrap()
        .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()));
    (compacted, tree.scan_prefix(b"L").count())
}

#[test]
fn sub_log_compacts_and_wraps_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let model = MemoryStore::new();
    let model_ch = model.open_channel("c").unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    // 700 batches wrap the 256-slot ring; the limits change between
    // restarts (a log longer than the new limit compacts at once).
    let phases = [
        (tiny_limits(), 120),
        (Limits::default(), 200),
        (tiny_limits(), 1),
        (Limits::default(), 300),
        (tiny_limits(), 79),
    ];
    let mut written = 0;
    for (limits, batches) in phases {
        let store = open_sled_with(dir.path(), limits);
        let ch = store.open_channel("c").unwrap();
        assert_eq!(ch.subs().unwrap(), model_ch.subs().unwrap());
        for _ in 0..batches {
            let updates: Vec<_> = (0..rng.random_range(1..12))
                .map(|_| random_update(&mut rng))
                .collect();
            ch.apply_subs(&updates).unwrap();
            model_ch.apply_subs(&updates).unwrap();
            written += 1;
            if rng.random_ratio(1, 10) {
                assert_eq!(ch.subs().unwrap(), model_ch.subs().unwrap());
            }
        }
        assert_eq!(ch.subs().unwrap(), model_ch.subs().unwrap());
        // Unflushed writes survive a clean close too (sled flushes on drop).
        if rng.random_bool(0.5) {
            store.flush().unwrap();
        }
        drop(ch);
        drop(store);
        let (compacted, slots) = sub_log_shape(dir.path());
        assert!(compacted <= written, "{compacted} > {written}");
        assert!(slots <= 256, "{slots} slots");
    }
    let (compacted, slots) = sub_log_shape(dir.path());
    assert_eq!(slots, 256, "the ring wrapped");
    assert!(compacted > 256, "compacted only through {compacted}");
    let store = open_sled(dir.path());
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.subs().unwrap(), model_ch.subs().unwrap());
}
