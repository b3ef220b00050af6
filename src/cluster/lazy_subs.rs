//! A clustered leader's sent and acknowledged positions, held back and
//! replicated in one entry per channel a second (or once enough gather),
//! as NSS does: every delivery and every ack otherwise costs a Raft round.
//! Losing them (the leader dies first) only means redelivery; the
//! subscription records themselves are replicated before a client hears
//! of them.
//!
//! Within the batch, later changes replace earlier ones of the same
//! record (a message sent then acknowledged is one removal), and the
//! batch reaches the log ahead of the channel's next subscription write.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::store::{Result, SubState, SubUpdate};

/// How long changes wait at most before they are replicated (NSS's lazy
/// replication interval).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A channel's batch is replicated at once when it holds this many
/// changes, which keeps each entry far below nats-server's max_payload.
pub const MAX_HELD: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Changes held for one channel, folded: the last of each record wins.
#[derive(Default)]
struct Held {
    puts: BTreeMap<u64, SubState>,
    /// `(sub, seq)` → true for "sent, pending", false for "acknowledged".
    pending: BTreeMap<(u64, u64), bool>,
}

impl Held {
    fn len(&self) -> usize {
        self.puts.len() + self.pending.len()
    }

    /// The held changes as updates. They touch distinct records, so their
    /// order among themselves does not matter.
    fn take(&mut self, count: &AtomicUsize) -> Vec<SubUpdate> {
        count.fetch_sub(self.len(), Ordering::Relaxed);
        let held = std::mem::take(self);
        let puts = held.puts.into_values().map(SubUpdate::Put);
        let pending = held.pending.into_iter().map(|((sub, seq), sent)| {
            if sent {
                SubUpdate::AddPending { sub, seq }
            } else {
                SubUpdate::RemovePending { sub, seq }
            }
        });
        puts.chain(pending).collect()
    }
}

/// One channel's held changes.
#[derive(Default)]
pub struct ChannelHeld {
    /// Held from taking the changes until they are proposed, so a
    /// channel's subscription writes reach the log in the order made.
    order: Mutex<()>,
    held: Mutex<Held>,
    /// Changes held by every channel of the term, for `/metrics`.
    count: Arc<AtomicUsize>,
}

impl ChannelHeld {
    /// Holds `updates` back; returns how many changes are held now, or
    /// `None` (holding nothing) when they include a delete, which must
    /// not wait: a later change of that subscription would revive it.
    pub fn hold(&self, updates: &[SubUpdate]) -> Option<usize> {
        if updates.iter().any(|u| matches!(u, SubUpdate::Delete(_))) {
            return None;
        }
        let mut held = lock(&self.held);
        let before = held.len();
        for u in updates {
            match u {
                SubUpdate::Put(state) => {
                    held.puts.insert(state.id, state.clone());
                }
                SubUpdate::AddPending { sub, seq } => {
                    held.pending.insert((*sub, *seq), true);
                }
                SubUpdate::RemovePending { sub, seq } => {
                    held.pending.insert((*sub, *seq), false);
                }
                SubUpdate::Delete(_) => unreachable!("checked above"),
            }
        }
        self.count.fetch_add(held.len() - before, Ordering::Relaxed);
        Some(held.len())
    }

    /// Proposes the held changes followed by `then`, as one write, through
    /// `propose` (which is skipped when there is nothing to write).
    ///
    /// # Errors
    /// `propose`'s; the changes it was given are then lost (redelivery).
    pub fn write_through(
        &self,
        then: &[SubUpdate],
        propose: impl FnOnce(Vec<SubUpdate>) -> Result<()>,
    ) -> Result<()> {
        let _order = lock(&self.order);
        let mut updates = lock(&self.held).take(&self.count);
        updates.extend_from_slice(then);
        if updates.is_empty() {
            return Ok(());
        }
        propose(updates)
    }

    /// Drops the held changes (their channel is being deleted), keeping
    /// later writes waiting until `then` has run.
    pub fn discard_then<T>(&self, then: impl FnOnce() -> T) -> T {
        let _order = lock(&self.order);
        lock(&self.held).take(&self.count);
        then()
    }
}

/// The held changes of every channel of one leader's term.
#[derive(Default)]
pub struct LazySubs {
    channels: Mutex<HashMap<String, Arc<ChannelHeld>>>,
    count: Arc<AtomicUsize>,
}

impl LazySubs {
    /// Held changes counted in `count` (which `/metrics` reads).
    pub fn counting(count: Arc<AtomicUsize>) -> LazySubs {
        LazySubs {
            channels: Mutex::default(),
            count,
        }
    }

    /// The held changes of `channel`.
    pub fn channel(&self, channel: &str) -> Arc<ChannelHeld> {
        lock(&self.channels)
            .entry(channel.to_string())
            .or_insert_with(|| {
                Arc::new(ChannelHeld {
                    count: self.count.clone(),
                    ..ChannelHeld::default()
                })
            })
            .clone()
    }

    /// Every channel with its held changes, to write them all.
    pub fn all(&self) -> Vec<(String, Arc<ChannelHeld>)> {
        lock(&self.channels)
            .iter()
            .map(|(name, held)| (name.clone(), held.clone()))
            .collect()
    }

    /// Forgets `channel` (deleted), once its held changes are dropped.
    pub fn remove<T>(&self, channel: &str, then: impl FnOnce() -> T) -> T {
        let held = lock(&self.channels).remove(channel);
        match held {
            Some(held) => held.discard_then(then),
            None => then(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: u64, last_sent: u64) -> SubState {
        SubState {
            id,
            last_sent,
            ..Default::default()
        }
    }

    fn written(held: &ChannelHeld, then: &[SubUpdate]) -> Vec<SubUpdate> {
        let mut out = Vec::new();
        held.write_through(then, |u| {
            out = u;
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn later_changes_of_a_record_replace_earlier_ones() {
        let held = ChannelHeld::default();
        let n = held.hold(&[
            SubUpdate::Put(sub(1, 5)),
            SubUpdate::AddPending { sub: 1, seq: 5 },
            SubUpdate::AddPending { sub: 1, seq: 6 },
        ]);
        assert_eq!(n, Some(3));
        let n = held.hold(&[
            SubUpdate::Put(sub(1, 7)),
            SubUpdate::RemovePending { sub: 1, seq: 5 },
        ]);
        assert_eq!(n, Some(3));
        assert_eq!(
            written(&held, &[]),
            vec![
                SubUpdate::Put(sub(1, 7)),
                SubUpdate::RemovePending { sub: 1, seq: 5 },
                SubUpdate::AddPending { sub: 1, seq: 6 },
            ]
        );
        assert_eq!(written(&held, &[]), vec![], "the batch was taken");
    }

    #[test]
    fn a_delete_is_not_held_and_a_write_through_follows_the_held_changes() {
        let held = ChannelHeld::default();
        held.hold(&[SubUpdate::AddPending { sub: 2, seq: 9 }]);
        assert_eq!(held.hold(&[SubUpdate::Delete(2)]), None);
        assert_eq!(
            written(&held, &[SubUpdate::Delete(2)]),
            vec![
                SubUpdate::AddPending { sub: 2, seq: 9 },
                SubUpdate::Delete(2)
            ]
        );
    }

    #[test]
    fn nothing_is_proposed_when_nothing_is_held() {
        let held = ChannelHeld::default();
        let mut called = false;
        held.write_through(&[], |_| {
            called = true;
            Ok(())
        })
        .unwrap();
        assert!(!called);
    }

    #[test]
    fn a_removed_channel_drops_its_changes() {
        let count = Arc::new(AtomicUsize::new(0));
        let lazy = LazySubs::counting(count.clone());
        lazy.channel("a")
            .hold(&[SubUpdate::AddPending { sub: 1, seq: 1 }]);
        lazy.channel("b").hold(&[
            SubUpdate::AddPending { sub: 1, seq: 1 },
            SubUpdate::RemovePending { sub: 1, seq: 1 },
            SubUpdate::AddPending { sub: 1, seq: 2 },
        ]);
        assert_eq!(count.load(Ordering::Relaxed), 3);
        assert_eq!(lazy.remove("a", || 7), 7);
        assert_eq!(count.load(Ordering::Relaxed), 2);
        assert_eq!(written(&lazy.channel("b"), &[]).len(), 2);
        assert_eq!(count.load(Ordering::Relaxed), 0);
        lazy.remove("b", || ());
        assert!(lazy.all().is_empty());
        assert_eq!(written(&lazy.channel("a"), &[]), vec![]);
    }
}
