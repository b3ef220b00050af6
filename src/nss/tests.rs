//! The reader on copies of a fixture store, damaged on purpose.

use std::path::{Path, PathBuf};

use super::msgs::{read_slice, slices};
use super::Source;

fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nss-stores/basic/store");
    let tmp = tempfile::tempdir().unwrap();
    let to = tmp.path().join("store");
    copy_dir(&from, &to);
    (tmp, to)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn seqs(dir: &Path) -> Vec<u64> {
    slices(dir)
        .unwrap()
        .iter()
        .flat_map(|s| read_slice(s).unwrap().msgs)
        .map(|m| m.sequence)
        .collect()
}

#[test]
fn a_missing_or_damaged_index_is_rebuilt_from_the_data_file() {
    let (_tmp, store) = fixture_copy();
    let ch = store.join("metrics.cpu");
    let want: Vec<u64> = (1..=130).collect();
    assert_eq!(seqs(&ch), want);
    std::fs::remove_file(ch.join("msgs.2.idx")).unwrap();
    // A flipped byte in an index entry fails its CRC.
    let idx = ch.join("msgs.3.idx");
    let mut bytes = std::fs::read(&idx).unwrap();
    bytes[4 + 32 + 3] ^= 0xff;
    std::fs::write(&idx, bytes).unwrap();
    assert_eq!(seqs(&ch), want);
    let s = &slices(&ch).unwrap()[2];
    let note = &read_slice(s).unwrap().notes[0];
    assert!(
        note.contains("msgs.3.idx") && note.contains("CRC"),
        "{note}"
    );
}

#[test]
fn a_torn_last_record_is_dropped_and_reported() {
    let (_tmp, store) = fixture_copy();
    let ch = store.join("payments");
    std::fs::remove_file(ch.join("msgs.1.idx")).unwrap();
    let dat = ch.join("msgs.1.dat");
    let len = std::fs::metadata(&dat).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dat)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let read = read_slice(&slices(&ch).unwrap()[0]).unwrap();
    assert_eq!(read.msgs.len(), 8);
    assert!(read.notes[0].contains("cut short"), "{:?}", read.notes);
}

#[test]
fn a_corrupted_record_is_an_error_naming_file_and_offset() {
    let (_tmp, store) = fixture_copy();
    let ch = store.join("payments");
    std::fs::remove_file(ch.join("msgs.1.idx")).unwrap();
    let dat = ch.join("msgs.1.dat");
    let mut bytes = std::fs::read(&dat).unwrap();
    // The payload of the first record starts after the version and header.
    bytes[4 + 8 + 2] ^= 0xff;
    std::fs::write(&dat, bytes).unwrap();
    let err = read_slice(&slices(&ch).unwrap()[0]).unwrap_err();
    assert_eq!(err.path, dat);
    assert_eq!(err.offset, Some(4));
    assert!(
        err.to_string().contains("at offset 4: corrupted record"),
        "{err}"
    );
}

#[test]
fn a_directory_without_server_dat_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Source::open(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("server.dat"), "{err}");
}
