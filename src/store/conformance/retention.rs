//! Retention decisions (`store::retention`) on both stores: count and byte
//! limits keep the newest message, age expiry removes it too, and one
//! expiry pass removes at most what it is allowed.

use super::{msgs, reopen, size, with_memory, with_sled, Factory};
use crate::store::retention::{enforce_size, expire, over_size, Expiry, SizeLimits};
use crate::store::ChannelState;

/// Messages 1..=10 (timestamp 10 × sequence) on channel "r".
fn filled(open: Factory) -> std::sync::Arc<dyn crate::store::Store> {
    let store = open();
    store
        .open_channel("r")
        .unwrap()
        .append(&msgs(1, 10))
        .unwrap();
    store
}

fn expiry_removes_old_messages_the_newest_too(open: Factory) {
    let store = filled(open);
    let ch = store.open_channel("r").unwrap();
    let pass = expire(&*ch, 50, 100).unwrap();
    assert_eq!(
        pass,
        Expiry {
            removed_through: Some(5),
            oldest: Some(60)
        }
    );
    assert_eq!(expire(&*ch, 55, 100).unwrap().removed_through, None);
    let pass = expire(&*ch, 1_000, 100).unwrap();
    assert_eq!(
        pass,
        Expiry {
            removed_through: Some(10),
            oldest: None
        }
    );
    let emptied = ChannelState {
        first: 0,
        last: 10,
        msgs: 0,
        bytes: 0,
    };
    assert_eq!(ch.state(), emptied);
    drop(ch);
    let store = reopen(open, store);
    assert_eq!(store.open_channel("r").unwrap().state(), emptied);
}

fn one_expiry_pass_is_bounded(open: Factory) {
    let store = filled(open);
    let ch = store.open_channel("r").unwrap();
    let pass = expire(&*ch, 1_000, 3).unwrap();
    // More is expired: the oldest left is still before the cutoff.
    assert_eq!(
        pass,
        Expiry {
            removed_through: Some(3),
            oldest: Some(40)
        }
    );
    assert_eq!(ch.state().first, 4);
    assert_eq!(expire(&*ch, 1_000, 0).unwrap().removed_through, None);
}

fn size_limits_drop_the_oldest_never_the_newest(open: Factory) {
    let store = filled(open);
    let ch = store.open_channel("r").unwrap();
    let by_count = SizeLimits {
        max_msgs: 3,
        ..SizeLimits::default()
    };
    assert_eq!(enforce_size(&*ch, by_count).unwrap(), Some(7));
    assert_eq!(over_size(&*ch, by_count).unwrap(), None);
    // A byte limit below one message still keeps the newest.
    let tiny = SizeLimits {
        max_bytes: 1,
        overhead: 40,
        ..SizeLimits::default()
    };
    assert_eq!(enforce_size(&*ch, tiny).unwrap(), Some(9));
    let st = ch.state();
    assert_eq!((st.first, st.msgs, st.bytes), (10, 1, size(&msgs(10, 10))));
    assert_eq!(over_size(&*ch, tiny).unwrap(), None);
    // The overhead counts: two messages fit without it, not with it.
    ch.append(&msgs(11, 11)).unwrap();
    let two = size(&msgs(10, 11));
    let exact = SizeLimits {
        max_bytes: two,
        ..SizeLimits::default()
    };
    assert_eq!(over_size(&*ch, exact).unwrap(), None);
    let with_overhead = SizeLimits {
        overhead: 40,
        ..exact
    };
    assert_eq!(over_size(&*ch, with_overhead).unwrap(), Some(10));
}

#[test]
fn memory_expiry_removes_old_messages_the_newest_too() {
    with_memory(expiry_removes_old_messages_the_newest_too);
}

#[test]
fn sled_expiry_removes_old_messages_the_newest_too() {
    with_sled(expiry_removes_old_messages_the_newest_too);
}

#[test]
fn memory_one_expiry_pass_is_bounded() {
    with_memory(one_expiry_pass_is_bounded);
}

#[test]
fn sled_one_expiry_pass_is_bounded() {
    with_sled(one_expiry_pass_is_bounded);
}

#[test]
fn memory_size_limits_drop_the_oldest_never_the_newest() {
    with_memory(size_limits_drop_the_oldest_never_the_newest);
}

#[test]
fn sled_size_limits_drop_the_oldest_never_the_newest() {
    with_sled(size_limits_drop_the_oldest_never_the_newest);
}
