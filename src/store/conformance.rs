//! The store conformance suite: every `Store`/`ChannelStore` method, its
//! edge cases and its recovery after reopening, run against both stores.
//!
//! Each test takes a factory that opens the store under test. For sled it
//! reopens the same directory (callers drop every handle first); for memory
//! it hands out the same instance, so "reopen" checks hold trivially there.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

use super::msg_record::RecordLimits;
use super::sled_channel::Limits;
use super::sub_log::CompactLimits;
use super::{
    ChannelState, ClientInfo, MemoryStore, RecoveredSub, ServerInfo, SledOptions, SledStore, Store,
    StoreError, SubState, SubUpdate,
};
use crate::protocol::pb::MsgProto;

mod encrypted;
mod model;
mod power_cut;
mod retention;
mod sled_commit;
mod sled_only;
mod sled_records;
mod sled_segments;

/// Opens the store under test (again).
pub(super) type Factory<'a> = &'a dyn Fn() -> Arc<dyn Store>;

/// Runs a test against one shared memory store.
pub(super) fn with_memory(test: fn(Factory)) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    test(&|| store.clone());
}

/// Runs a test against a sled store in a fresh temporary directory, with
/// tiny record limits.
pub(super) fn with_sled(test: fn(Factory)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    test(&|| Arc::new(open_sled(&path)) as Arc<dyn Store>);
}

/// Runs a test against a sled store with the production record limits.
pub(super) fn with_sled_default_limits(test: fn(Factory)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    test(&|| Arc::new(open_sled_with(&path, Limits::default())) as Arc<dyn Store>);
}

/// Opens a sled store with a small cache and tiny record limits, so that
/// every test crosses record boundaries and subscription compactions.
fn open_sled(dir: &std::path::Path) -> SledStore {
    open_sled_with(dir, tiny_limits())
}

/// Opens a sled store with a small cache and the given record limits.
fn open_sled_with(dir: &std::path::Path, limits: Limits) -> SledStore {
    retry_locked(|| SledStore::open_with(sled_options(dir), limits))
}

/// Records of at most three messages (or 200 bytes), segment files of
/// about 1 KB, and a compaction of the subscription log every three
/// batches (or 300 bytes).
fn tiny_limits() -> Limits {
    Limits {
        records: RecordLimits {
            msgs: 3,
            bytes: 200,
        },
        compact: CompactLimits {
            batches: 3,
            bytes: 300,
        },
        segment_bytes: 1024,
    }
}

/// Options for a test store in `dir`.
fn sled_options(dir: &std::path::Path) -> SledOptions {
    SledOptions {
        dir: dir.to_owned(),
        cache_capacity: 8 << 20,
    }
}

/// Retries an open while it fails: after a sled `Db` is dropped, sled's
/// deferred reclamation can hold the directory's file lock a little longer,
/// so an immediate reopen in the same process may fail with `WouldBlock`.
fn retry_locked<T, E: std::fmt::Debug>(open: impl Fn() -> Result<T, E>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match open() {
            Ok(v) => return v,
            Err(e) if std::time::Instant::now() > deadline => panic!("open failed: {e:?}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// Flushes and drops `store` (the caller holds no other handle), then reopens.
fn reopen(open: Factory, store: Arc<dyn Store>) -> Arc<dyn Store> {
    store.flush().unwrap();
    drop(store);
    open()
}

/// A message as the server would append it.
pub(super) fn msg(seq: u64, timestamp: i64, data: &str) -> MsgProto {
    MsgProto {
        sequence: seq,
        subject: "orders".into(),
        reply: String::new(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        timestamp,
        redelivered: false,
        redelivery_count: 0,
        crc32: 7,
    }
}

/// Messages `from..=to` with timestamp = 10 * sequence.
fn msgs(from: u64, to: u64) -> Vec<MsgProto> {
    (from..=to)
        .map(|s| msg(s, i64::try_from(s).unwrap() * 10, &format!("m{s}")))
        .collect()
}

/// Encoded size of messages, as `ChannelState::bytes` counts it.
fn size(msgs: &[MsgProto]) -> u64 {
    msgs.iter()
        .map(|m| u64::try_from(m.encoded_len()).unwrap())
        .sum()
}

/// Sequences of a list of messages.
fn seqs(msgs: &[MsgProto]) -> Vec<u64> {
    msgs.iter().map(|m| m.sequence).collect()
}

/// A subscription record.
pub(super) fn sub(id: u64, last_sent: u64) -> SubState {
    SubState {
        id,
        client_id: format!("c{id}"),
        inbox: format!("_INBOX.{id}"),
        ack_inbox: format!("_INBOX.ack.{id}"),
        max_in_flight: 16,
        ack_wait_in_secs: 30,
        last_sent,
        ..SubState::default()
    }
}

/// A client record.
fn client(id: &str, hb: &str) -> ClientInfo {
    ClientInfo {
        id: id.into(),
        hb_inbox: hb.into(),
        conn_id: Bytes::from_static(b"conn"),
        protocol: 1,
        ping_interval: 5,
        ping_max_out: 3,
    }
}

/// Names sorted, since stores list them in no particular order.
fn sorted_names(store: &dyn Store) -> Vec<String> {
    let mut names = store.channel_names().unwrap();
    names.sort();
    names
}

fn server_info_round_trip(open: Factory) {
    let store = open();
    assert_eq!(store.server_info().unwrap(), None);
    let mut info = ServerInfo {
        cluster_id: "test-cluster".into(),
        discovery: "_STAN.discover.test-cluster".into(),
        publish: "_STAN.pub.x".into(),
        format_version: 1,
        ..ServerInfo::default()
    };
    store.set_server_info(&info).unwrap();
    assert_eq!(store.server_info().unwrap().as_ref(), Some(&info));
    info.close = "_STAN.close.x".into();
    store.set_server_info(&info).unwrap();
    let store = reopen(open, store);
    assert_eq!(store.server_info().unwrap(), Some(info));
}

fn clients_put_replace_delete(open: Factory) {
    let store = open();
    assert!(store.clients().unwrap().is_empty());
    store.put_client(&client("a", "hb.a")).unwrap();
    store.put_client(&client("b", "hb.b")).unwrap();
    store.put_client(&client("a", "hb.a2")).unwrap();
    store.delete_client("nobody").unwrap();
    let mut got = store.clients().unwrap();
    got.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(got, vec![client("a", "hb.a2"), client("b", "hb.b")]);
    store.delete_client("b").unwrap();
    let store = reopen(open, store);
    assert_eq!(store.clients().unwrap(), vec![client("a", "hb.a2")]);
}

fn open_channel_shares_data_and_lists_names(open: Factory) {
    let store = open();
    assert!(store.channel_names().unwrap().is_empty());
    let a1 = store.open_channel("a").unwrap();
    let a2 = store.open_channel("a").unwrap();
    let b = store.open_channel("b.with.dots").unwrap();
    assert_eq!(a1.name(), "a");
    assert_eq!(b.name(), "b.with.dots");
    assert_eq!(a1.state(), ChannelState::default());
    a1.append(&msgs(1, 3)).unwrap();
    assert_eq!(a2.state().last, 3);
    a2.append(&msgs(4, 4)).unwrap();
    assert_eq!(a1.state().msgs, 4);
    // Sequences are per channel.
    b.append(&msgs(1, 1)).unwrap();
    assert_eq!(b.state().msgs, 1);
    assert_eq!(sorted_names(&*store), ["a", "b.with.dots"]);
    drop((a1, a2, b));
    let store = reopen(open, store);
    assert_eq!(sorted_names(&*store), ["a", "b.with.dots"]);
    assert_eq!(store.open_channel("a").unwrap().state().last, 4);
}

fn append_counts_msgs_and_bytes(open: Factory) {
    let store = open();
    let ch = store.open_channel("c").unwrap();
    ch.append(&[]).unwrap();
    assert_eq!(ch.state(), ChannelState::default());
    let batch = msgs(1, 3);
    ch.append(&batch).unwrap();
    let want = ChannelState {
        first: 1,
        last: 3,
        msgs: 3,
        bytes: size(&batch),
    };
    assert_eq!(ch.state(), want);
    // Delivery flags are not stored, nor counted.
    let mut flagged = msg(4, 40, "again");
    flagged.redelivered = true;
    flagged.redelivery_count = 3;
    ch.append(std::slice::from_ref(&flagged)).unwrap();
    let plain = msg(4, 40, "again");
    assert_eq!(ch.get(4).unwrap(), Some(plain.clone()));
    assert_eq!(ch.state().bytes, want.bytes + size(&[plain]));
    // An empty data payload still counts its envelope.
    ch.append(&[msg(5, 50, "")]).unwrap();
    assert_eq!(ch.state().msgs, 5);
}

fn append_out_of_order_is_refused(open: Factory) {
    let store = open();
    let ch = store.open_channel("c").unwrap();
    let err = ch.append(&msgs(2, 3)).unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfOrder { last: 0, got: 2, ref channel } if channel == "c")
    );
    assert_eq!(ch.state(), ChannelState::default());
    ch.append(&msgs(1, 3)).unwrap();
    let before = ch.state();
    for bad in [msgs(5, 6), msgs(3, 4), msgs(1, 1)] {
        let err = ch.append(&bad).unwrap_err();
        assert!(
            matches!(err, StoreError::OutOfOrder { last: 3, .. }),
            "{err}"
        );
    }
    // A gap inside a batch refuses the whole batch.
    let mut gap = msgs(4, 5);
    gap.push(msg(7, 70, "x"));
    assert!(matches!(
        ch.append(&gap).unwrap_err(),
        StoreError::OutOfOrder { got: 7, .. }
    ));
    assert_eq!(ch.state(), before);
    assert_eq!(ch.get(4).unwrap(), None);
    ch.append(&msgs(4, 4)).unwrap();
}

fn get_and_range_edges(open: Factory) {
    let store = open();
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.get(1).unwrap(), None);
    assert!(ch.range(0, 10).unwrap().is_empty());
    let all = msgs(1, 300);
    ch.append(&all[..100]).unwrap();
    ch.append(&all[100..]).unwrap();
    assert_eq!(ch.get(0).unwrap(), None);
    assert_eq!(ch.get(1).unwrap().as_ref(), Some(&all[0]));
    assert_eq!(ch.get(300).unwrap().as_ref(), Some(&all[299]));
    assert_eq!(ch.get(301).unwrap(), None);
    assert_eq!(ch.range(0, 1000).unwrap(), all);
    assert_eq!(seqs(&ch.range(255, 3).unwrap()), [255, 256, 257]);
    assert_eq!(seqs(&ch.range(299, 10).unwrap()), [299, 300]);
    assert!(ch.range(301, 10).unwrap().is_empty());
    assert!(ch.range(1, 0).unwrap().is_empty());
    ch.remove_through(10).unwrap();
    assert_eq!(ch.get(10).unwrap(), None);
    assert_eq!(seqs(&ch.range(0, 2).unwrap()), [11, 12]);
    assert_eq!(seqs(&ch.range(5, 2).unwrap()), [11, 12]);
}

fn first_seq_at_or_after_edges(open: Factory) {
    let store = open();
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.first_seq_at_or_after(0).unwrap(), None);
    let stamps = [10, 20, 20, 20, 30, 40, 40];
    let batch: Vec<_> = (1..).zip(stamps).map(|(s, t)| msg(s, t, "x")).collect();
    ch.append(&batch).unwrap();
    let cases = [
        (i64::MIN, Some(1)),
        (5, Some(1)),
        (10, Some(1)),
        (11, Some(2)),
        (20, Some(2)),
        (21, Some(5)),
        (30, Some(5)),
        (40, Some(6)),
        (41, None),
        (i64::MAX, None),
    ];
    for (ts, want) in cases {
        assert_eq!(ch.first_seq_at_or_after(ts).unwrap(), want, "ts {ts}");
    }
    ch.remove_through(2).unwrap();
    assert_eq!(ch.first_seq_at_or_after(5).unwrap(), Some(3));
    assert_eq!(ch.first_seq_at_or_after(20).unwrap(), Some(3));
    ch.remove_through(7).unwrap();
    assert_eq!(ch.first_seq_at_or_after(5).unwrap(), None);
}

fn remove_through_front_and_all(open: Factory) {
    let store = open();
    let ch = store.open_channel("c").unwrap();
    ch.remove_through(5).unwrap();
    assert_eq!(ch.state(), ChannelState::default());
    let all = msgs(1, 10);
    ch.append(&all).unwrap();
    ch.remove_through(0).unwrap();
    assert_eq!(ch.state().msgs, 10);
    ch.remove_through(4).unwrap();
    let want = ChannelState {
        first: 5,
        last: 10,
        msgs: 6,
        bytes: size(&all[4..]),
    };
    assert_eq!(ch.state(), want);
    ch.remove_through(3).unwrap();
    assert_eq!(ch.state(), want);
    assert_eq!(ch.get(4).unwrap(), None);
    ch.remove_through(9).unwrap();
    assert_eq!(ch.range(0, 100).unwrap(), &all[9..]);
    assert_eq!(ch.state().bytes, size(&all[9..]));
    // Emptying the log keeps `last`, even across a restart.
    ch.remove_through(100).unwrap();
    let empty = ChannelState {
        first: 0,
        last: 10,
        msgs: 0,
        bytes: 0,
    };
    assert_eq!(ch.state(), empty);
    assert!(ch.append(&msgs(1, 1)).is_err());
    drop(ch);
    let store = reopen(open, store);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.state(), empty);
    ch.append(&msgs(11, 12)).unwrap();
    assert_eq!(
        ch.state(),
        ChannelState {
            first: 11,
            last: 12,
            msgs: 2,
            bytes: size(&msgs(11, 12)),
        }
    );
    drop(ch);
    let store = reopen(open, store);
    assert_eq!(store.open_channel("c").unwrap().state().first, 11);
}

fn start_after_continues_an_empty_log(open: Factory) {
    let store = open();
    let ch = store.open_channel("c").unwrap();
    ch.start_after(30).unwrap();
    let after = ChannelState {
        first: 0,
        last: 30,
        msgs: 0,
        bytes: 0,
    };
    assert_eq!(ch.state(), after);
    assert!(ch.append(&msgs(1, 1)).is_err());
    drop(ch);
    // The empty log keeps its place across a restart.
    let store = reopen(open, store);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.state(), after);
    ch.append(&msgs(31, 35)).unwrap();
    // Refused once the log holds messages, and never backwards.
    assert!(ch.start_after(40).is_err());
    let other = store.open_channel("d").unwrap();
    other.start_after(5).unwrap();
    assert!(other.start_after(4).is_err());
    drop((ch, other));
    let store = reopen(open, store);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(
        ch.state(),
        ChannelState {
            first: 31,
            last: 35,
            msgs: 5,
            bytes: size(&msgs(31, 35)),
        }
    );
    assert_eq!(ch.range(0, 100).unwrap(), msgs(31, 35));
}

fn subs_with_pending(open: Factory) {
    let store = open();
    let ch = store.open_channel("c").unwrap();
    assert!(ch.subs().unwrap().is_empty());
    let add = |sub, seq| SubUpdate::AddPending { sub, seq };
    let rm = |sub, seq| SubUpdate::RemovePending { sub, seq };
    ch.apply_subs(&[]).unwrap();
    ch.apply_subs(&[
        SubUpdate::Put(sub(1, 0)),
        SubUpdate::Put(sub(300, 0)),
        add(1, 9),
        add(1, 2),
        add(1, 256),
        add(300, 4),
        rm(300, 4),
        add(300, 5),
        rm(1, 77),
    ])
    .unwrap();
    // Replacing a record keeps its pending set.
    ch.apply_subs(&[SubUpdate::Put(sub(1, 256)), rm(1, 9)])
        .unwrap();
    let want = vec![
        RecoveredSub {
            state: sub(1, 256),
            pending: vec![2, 256],
        },
        RecoveredSub {
            state: sub(300, 0),
            pending: vec![5],
        },
    ];
    assert_eq!(ch.subs().unwrap(), want);
    // Delete drops the pending set, including entries added in the same batch;
    // a Put after a Delete in one batch starts with no pending.
    ch.apply_subs(&[
        add(300, 6),
        SubUpdate::Delete(300),
        SubUpdate::Put(sub(300, 9)),
        add(300, 9),
        SubUpdate::Delete(42),
    ])
    .unwrap();
    let want = vec![
        want[0].clone(),
        RecoveredSub {
            state: sub(300, 9),
            pending: vec![9],
        },
    ];
    assert_eq!(ch.subs().unwrap(), want);
    drop(ch);
    let store = reopen(open, store);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.subs().unwrap(), want);
    ch.apply_subs(&[SubUpdate::Delete(1), SubUpdate::Delete(300)])
        .unwrap();
    assert!(ch.subs().unwrap().is_empty());
}

fn delete_channel_removes_everything(open: Factory) {
    let store = open();
    store.delete_channel("never-existed").unwrap();
    let ch = store.open_channel("c").unwrap();
    ch.append(&msgs(1, 5)).unwrap();
    ch.apply_subs(&[
        SubUpdate::Put(sub(1, 5)),
        SubUpdate::AddPending { sub: 1, seq: 5 },
    ])
    .unwrap();
    store
        .open_channel("keep")
        .unwrap()
        .append(&msgs(1, 2))
        .unwrap();
    drop(ch);
    store.delete_channel("c").unwrap();
    assert_eq!(sorted_names(&*store), ["keep"]);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.state(), ChannelState::default());
    assert!(ch.subs().unwrap().is_empty());
    assert_eq!(ch.get(1).unwrap(), None);
    ch.append(&msgs(1, 1)).unwrap();
    drop(ch);
    store.delete_channel("c").unwrap();
    let store = reopen(open, store);
    assert_eq!(sorted_names(&*store), ["keep"]);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.state(), ChannelState::default());
    assert_eq!(store.open_channel("keep").unwrap().state().msgs, 2);
}

fn everything_survives_reopen(open: Factory) {
    let store = open();
    let info = ServerInfo {
        cluster_id: "c".into(),
        ..ServerInfo::default()
    };
    store.set_server_info(&info).unwrap();
    store.put_client(&client("x", "hb")).unwrap();
    let mut states = Vec::new();
    for (i, name) in (0u64..).zip(["one", "two", "three"]) {
        let ch = store.open_channel(name).unwrap();
        let n = 50 * (i + 1);
        ch.append(&msgs(1, n)).unwrap();
        ch.remove_through(i * 7).unwrap();
        ch.apply_subs(&[
            SubUpdate::Put(sub(i, n)),
            SubUpdate::AddPending { sub: i, seq: n },
        ])
        .unwrap();
        states.push((
            name,
            ch.state(),
            ch.subs().unwrap(),
            ch.range(0, 1000).unwrap(),
        ));
    }
    let store = reopen(open, store);
    assert_eq!(store.server_info().unwrap(), Some(info));
    assert_eq!(store.clients().unwrap(), vec![client("x", "hb")]);
    assert_eq!(sorted_names(&*store), ["one", "three", "two"]);
    for (name, state, subs, log) in states {
        let ch = store.open_channel(name).unwrap();
        assert_eq!(ch.state(), state, "{name}");
        assert_eq!(ch.subs().unwrap(), subs, "{name}");
        assert_eq!(ch.range(0, 1000).unwrap(), log, "{name}");
    }
}

/// Generates one `#[test]` per store for each conformance test.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $( #[test] fn $name() { super::with_memory(super::$name) } )*
        }
        mod sled_store {
            $( #[test] fn $name() { super::with_sled(super::$name) } )*
        }
        mod sled_store_default_limits {
            $( #[test] fn $name() { super::with_sled_default_limits(super::$name) } )*
        }
    };
}

conformance_tests!(
    server_info_round_trip,
    clients_put_replace_delete,
    open_channel_shares_data_and_lists_names,
    append_counts_msgs_and_bytes,
    append_out_of_order_is_refused,
    get_and_range_edges,
    first_seq_at_or_after_edges,
    remove_through_front_and_all,
    start_after_continues_an_empty_log,
    subs_with_pending,
    delete_channel_removes_everything,
    everything_survives_reopen,
);
