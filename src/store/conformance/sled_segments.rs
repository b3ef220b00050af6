//! Tests of the sled store's segment files, checked on the files as well as
//! through the traits: records across segment boundaries, files deleted
//! once removed and flushed, and recovery from a torn tail or bytes past
//! the last record (as a crash leaves them).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::{msgs, open_sled, size};
use crate::store::{ChannelState, Store};

/// The segment files of channel 1 of the store in `dir`: (first sequence,
/// length), ascending.
fn segments(dir: &Path) -> Vec<(u64, u64)> {
    let chan = dir.join("msgs").join("1");
    let Ok(entries) = fs::read_dir(&chan) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let first = name.strip_suffix(".seg").unwrap().parse().unwrap();
            (first, e.metadata().unwrap().len())
        })
        .collect();
    out.sort_unstable();
    out
}

/// The path of channel 1's segment file starting at `first`.
fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join("msgs").join("1").join(format!("{first:020}.seg"))
}

/// Messages the seeded channel holds: 50 appends of three messages.
const N: u64 = 150;

/// A store in `dir` whose channel "c" (ID 1) holds 1..=N in appends of
/// three messages (one record each, about 90 bytes), flushed and closed.
fn seed(dir: &Path) {
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    for first in (1..=N).step_by(3) {
        ch.append(&msgs(first, first + 2)).unwrap();
    }
    store.flush().unwrap();
}

#[test]
fn records_cross_segment_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir);
    let segs = segments(dir);
    assert!(segs.len() > 3, "{segs:?}");
    assert_eq!(segs[0].0, 1);
    // Each segment starts at a record boundary and ends just past the
    // append that crossed 1 KB.
    for (first, len) in &segs {
        assert_eq!((first - 1) % 3, 0, "{segs:?}");
        assert!(*len < 1024 + 200, "{segs:?}");
    }
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    let all = msgs(1, N);
    assert_eq!(ch.range(0, 1000).unwrap(), all);
    for seg in &segs {
        assert_eq!(
            ch.get(seg.0).unwrap().as_ref(),
            Some(&all[usize::try_from(seg.0).unwrap() - 1])
        );
    }
    // One append spanning many records goes to one segment.
    ch.append(&msgs(N + 1, N + 40)).unwrap();
    assert_eq!(ch.range(N - 5, 100).unwrap(), msgs(N - 5, N + 40));
    assert_eq!(ch.state().bytes, size(&msgs(1, N + 40)));
}

#[test]
fn segment_files_go_after_removal_and_flush() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir);
    let segs = segments(dir);
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    // Remove into the third segment: the first two go, at the next flush.
    let through = segs[2].0 + 1;
    ch.remove_through(through).unwrap();
    assert_eq!(segments(dir), segs);
    store.flush().unwrap();
    assert_eq!(segments(dir), segs[2..]);
    assert_eq!(ch.range(0, 1000).unwrap(), msgs(through + 1, N));

    // Emptying the log removes every file; the next append starts one.
    ch.remove_through(N).unwrap();
    store.flush().unwrap();
    assert_eq!(segments(dir), []);
    ch.append(&msgs(N + 1, N + 2)).unwrap();
    assert_eq!(
        segments(dir).iter().map(|s| s.0).collect::<Vec<_>>(),
        [N + 1]
    );
    drop(ch);
    drop(store);
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.range(0, 100).unwrap(), msgs(N + 1, N + 2));

    // Deleting the channel removes its directory.
    store.delete_channel("c").unwrap();
    assert!(!dir.join("msgs").join("1").exists());
}

#[test]
fn torn_tail_drops_exactly_the_broken_records() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir);
    let segs = segments(dir);
    let (last_seg, last_len) = *segs.last().unwrap();
    // Cut the last segment one byte short: its last record (N-2..=N) is
    // torn, as when sled's background flush saved an index entry whose
    // bytes never reached the disk.
    let file = OpenOptions::new()
        .write(true)
        .open(segment_path(dir, last_seg))
        .unwrap();
    file.set_len(last_len - 1).unwrap();
    drop(file);
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    let want = ChannelState {
        first: 1,
        last: N - 3,
        msgs: N - 3,
        bytes: size(&msgs(1, N - 3)),
    };
    assert_eq!(ch.state(), want);
    assert_eq!(ch.range(N - 10, 100).unwrap(), msgs(N - 10, N - 3));
    assert_eq!(ch.get(N - 2).unwrap(), None);
    // The file was cut after record N-5..=N-3; appends continue from there.
    let cut = segments(dir);
    if last_seg == N - 2 {
        assert_eq!(cut, segs[..segs.len() - 1]);
    } else {
        assert_eq!(cut.last().unwrap().0, last_seg);
        assert!(cut.last().unwrap().1 < last_len - 1);
    }
    ch.append(&msgs(N - 2, N + 1)).unwrap();
    store.flush().unwrap();
    drop(ch);
    drop(store);

    // A flipped byte inside the newest record fails its CRC.
    let (last_seg, last_len) = *segments(dir).last().unwrap();
    let path = segment_path(dir, last_seg);
    let mut bytes = fs::read(&path).unwrap();
    let at = usize::try_from(last_len).unwrap() - 2;
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    // N-2..=N+1 was one append of two records (N-2..=N, N+1): only the
    // second goes.
    assert_eq!(ch.state().last, N);
    assert_eq!(ch.range(0, 1000).unwrap(), msgs(1, N));
    assert_eq!(ch.state().bytes, size(&msgs(1, N)));
}

#[test]
fn bytes_past_the_last_record_are_cut_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(dir);
    let segs = segments(dir);
    let (last_seg, last_len) = *segs.last().unwrap();
    // As if a crash came between a file write and its index insert: bytes
    // past the last record, and a whole segment no entry names.
    let path = segment_path(dir, last_seg);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"torn append");
    fs::write(&path, &bytes).unwrap();
    fs::write(segment_path(dir, N + 1), b"orphan").unwrap();
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(segments(dir), segs);
    assert_eq!(segments(dir).last(), Some(&(last_seg, last_len)));
    ch.append(&msgs(N + 1, N + 3)).unwrap();
    store.flush().unwrap();
    drop(ch);
    drop(store);
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.range(0, 1000).unwrap(), msgs(1, N + 3));
}

#[test]
fn flushed_data_is_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let store = open_sled(dir);
    let ch = store.open_channel("c").unwrap();
    let other = store.open_channel("d").unwrap();
    ch.append(&msgs(1, 10)).unwrap();
    other.append(&msgs(1, 2)).unwrap();
    store.flush().unwrap();
    // Every byte the index names is in the files (no truncation at open).
    let written = segments(dir);
    drop((ch, other));
    drop(store);
    let store = open_sled(dir);
    assert_eq!(segments(dir), written);
    let ch = store.open_channel("c").unwrap();
    assert_eq!(ch.range(0, 100).unwrap(), msgs(1, 10));
    let other = store.open_channel("d").unwrap();
    assert_eq!(other.range(0, 100).unwrap(), msgs(1, 2));
    // An orphan channel directory (a deletion cut short) goes at open.
    fs::create_dir_all(dir.join("msgs").join("9")).unwrap();
    drop((ch, other));
    drop(store);
    drop(open_sled(dir));
    assert!(!dir.join("msgs").join("9").exists());
}
