//! Random-operations model test: the same seeded random operations go to a
//! sled store and to a `MemoryStore` (the model): appends, limit changes,
//! expiry passes, removals, channel deletions, subscription updates, acks
//! and random restarts of the sled store. The two must agree on everything
//! after every step.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{client, msg, open_sled, retry_locked, sub};
use crate::store::retention::{self, SizeLimits};
use crate::store::{MemoryStore, ServerInfo, SledStore, Store, SubUpdate};

/// Channel names the operations pick from (one with dots, as NATS allows).
const CHANNELS: [&str; 3] = ["a", "b", "c.d"];
/// Operations per seed.
const STEPS: usize = 400;

/// The sled store under test and the model, driven in lockstep.
struct Pair {
    /// The sled store's directory (kept alive for restarts).
    dir: tempfile::TempDir,
    /// The store under test; `None` only while restarting.
    sled: Option<SledStore>,
    /// The model.
    model: MemoryStore,
    /// Per channel, the next timestamp (non-decreasing, often repeated).
    clock: HashMap<&'static str, i64>,
    /// Restarts done, to check the test exercised recovery.
    restarts: usize,
    /// Limit changes and expiry passes that removed messages.
    trims: usize,
}

impl Pair {
    /// The sled store.
    fn sled(&self) -> &SledStore {
        self.sled.as_ref().unwrap()
    }

    /// Runs the same operation on both stores and asserts the same outcome
    /// (success, or the same error kind).
    fn both<T: std::fmt::Debug + PartialEq>(
        &self,
        what: &str,
        op: impl Fn(&dyn Store) -> crate::store::Result<T>,
    ) {
        let got = op(self.sled());
        let want = op(&self.model);
        match (&got, &want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w, "{what}"),
            (Err(g), Err(w)) => assert_eq!(g.to_string(), w.to_string(), "{what}"),
            _ => panic!("{what}: sled {got:?} vs model {want:?}"),
        }
    }

    /// Drops the sled store and opens it again on the same directory.
    fn restart(&mut self, flush: bool) {
        if flush {
            self.sled().flush().unwrap();
        }
        self.sled = None;
        self.sled = Some(open_sled(self.dir.path()));
        self.restarts += 1;
    }

    /// Counts a retention step that removed messages from `name`.
    fn count_trim(&mut self, name: &str, before: crate::store::ChannelState) {
        if self.model.open_channel(name).unwrap().state().msgs < before.msgs {
            self.trims += 1;
        }
    }

    /// Applies one random operation to both stores.
    fn step(&mut self, rng: &mut StdRng) {
        let name = CHANNELS[rng.random_range(0..CHANNELS.len())];
        // Open in both first: opening creates the channel.
        self.both("open", |s| Ok(s.open_channel(name)?.state()));
        let model_state = self.model.open_channel(name).unwrap().state();
        match rng.random_range(0..100) {
            0..=29 => {
                let n = rng.random_range(1..20);
                let clock = self.clock.entry(name).or_insert(1_000);
                let batch: Vec<_> = (model_state.last + 1..=model_state.last + n)
                    .map(|seq| {
                        *clock += rng.random_range(0..3);
                        let len = rng.random_range(0..40);
                        msg(seq, *clock, &"x".repeat(len))
                    })
                    .collect();
                self.both("append", |s| s.open_channel(name)?.append(&batch));
            }
            30..=32 => {
                let seq = match rng.random_range(0..3) {
                    0 => model_state.last,
                    1 => model_state.last + 2,
                    _ => model_state.last.saturating_sub(1),
                };
                let batch = [msg(seq, 0, "bad")];
                self.both("bad append", |s| s.open_channel(name)?.append(&batch));
            }
            33..=35 => {
                // A limit changed: count and byte limits trim the oldest.
                let limits = SizeLimits {
                    max_msgs: rng.random_range(0..8),
                    max_bytes: rng.random_range(0..400),
                    overhead: rng.random_range(0..2) * 40,
                };
                self.both("size limits", |s| {
                    retention::enforce_size(&*s.open_channel(name)?, limits)
                });
                self.count_trim(name, model_state);
            }
            36..=38 => {
                // An expiry pass, bounded, around the channel's timestamps.
                let clock = *self.clock.get(name).unwrap_or(&1_000);
                let cutoff = rng.random_range(990..=clock + 2);
                let max = rng.random_range(0..6);
                self.both("expire", |s| {
                    retention::expire(&*s.open_channel(name)?, cutoff, max)
                });
                self.count_trim(name, model_state);
            }
            39..=42 => {
                // Mostly keep at least one message, as the server does; now
                // and then empty the log to exercise the persisted `last`.
                let through = if rng.random_ratio(1, 8) {
                    model_state.last + rng.random_range(0..3)
                } else {
                    let lo = model_state.first.saturating_sub(2);
                    rng.random_range(lo..=model_state.last.saturating_sub(1).max(lo))
                };
                self.both("remove", |s| s.open_channel(name)?.remove_through(through));
            }
            43..=67 => {
                let updates: Vec<_> = (0..rng.random_range(1..8))
                    .map(|_| random_update(rng, model_state.last))
                    .collect();
                self.both("apply_subs", |s| s.open_channel(name)?.apply_subs(&updates));
            }
            68..=75 => {
                let id = format!("client{}", rng.random_range(0..5));
                let c = client(&id, &format!("hb.{}", rng.random_range(0..100)));
                self.both("put client", |s| s.put_client(&c));
            }
            76..=80 => {
                let id = format!("client{}", rng.random_range(0..5));
                self.both("delete client", |s| s.delete_client(&id));
            }
            81..=83 => {
                let info = ServerInfo {
                    cluster_id: format!("cluster{}", rng.random_range(0..100)),
                    ..ServerInfo::default()
                };
                self.both("server info", |s| s.set_server_info(&info));
            }
            84..=85 => self.both("delete channel", |s| s.delete_channel(name)),
            86..=89 => self.both("flush", |s| s.flush()),
            _ => self.restart(rng.random_bool(0.7)),
        }
    }

    /// Asserts that the two stores agree on everything readable.
    fn check(&self, rng: &mut StdRng) {
        let names = |s: &dyn Store| {
            let mut names = s.channel_names()?;
            names.sort();
            Ok(names)
        };
        self.both("names", names);
        self.both("server info", |s| s.server_info());
        self.both("clients", |s| {
            let mut clients = s.clients()?;
            clients.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(clients)
        });
        for name in names(&self.model).unwrap() {
            let model: Arc<_> = self.model.open_channel(&name).unwrap();
            let state = model.state();
            self.both("state", |s| Ok(s.open_channel(&name)?.state()));
            self.both("log", |s| s.open_channel(&name)?.range(0, usize::MAX));
            self.both("subs", |s| s.open_channel(&name)?.subs());
            let from = rng.random_range(0..=state.last + 2);
            let max = rng.random_range(0..10);
            self.both("range", |s| s.open_channel(&name)?.range(from, max));
            for seq in [
                state.first.saturating_sub(1),
                state.first,
                state.last,
                state.last + 1,
            ] {
                self.both("get", |s| s.open_channel(&name)?.get(seq));
            }
            let ts = rng.random_range(990..1_000 + 3 * i64::try_from(state.last).unwrap() + 10);
            self.both("first_seq_at_or_after", |s| {
                s.open_channel(&name)?.first_seq_at_or_after(ts)
            });
        }
    }
}

/// A random subscription change, on a few sub IDs and recent sequences.
fn random_update(rng: &mut StdRng, last: u64) -> SubUpdate {
    let id = rng.random_range(1..5);
    let seq = rng.random_range(1..=last.max(1));
    match rng.random_range(0..10) {
        0..=1 => SubUpdate::Put(sub(id, seq)),
        2 => SubUpdate::Delete(id),
        3..=6 => SubUpdate::AddPending { sub: id, seq },
        _ => SubUpdate::RemovePending { sub: id, seq },
    }
}

/// Runs the model test for one seed.
fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let sled = open_sled(dir.path());
    let mut pair = Pair {
        dir,
        sled: Some(sled),
        model: MemoryStore::new(),
        clock: HashMap::new(),
        restarts: 0,
        trims: 0,
    };
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..STEPS {
        pair.step(&mut rng);
        pair.check(&mut rng);
    }
    // A final restart must lose nothing.
    pair.restart(true);
    pair.check(&mut rng);
    assert!(pair.restarts > 10, "only {} restarts", pair.restarts);
    assert!(
        pair.trims > 10,
        "only {} retention steps removed messages",
        pair.trims
    );
    let stored: u64 = CHANNELS
        .iter()
        .map(|name| pair.model.open_channel(name).unwrap().state().last)
        .sum();
    assert!(stored > 100, "only {stored} messages appended");
    // The tiny record limits were crossed: some channel folded its
    // subscription log into snapshots, and appends were cut into records.
    pair.sled = None;
    let db = retry_locked(|| sled::open(pair.dir.path()));
    let mut folded = 0;
    let mut cut_appends = false;
    for name in db.tree_names() {
        let tree = db.open_tree(&name).unwrap();
        if name.ends_with(b".subs") {
            if let Some(v) = tree.get(b"C").unwrap() {
                folded += u64::from_be_bytes(v[..].try_into().unwrap());
            }
        } else if name.ends_with(b".msgs") {
            cut_appends |= tree
                .iter()
                .keys()
                .filter(|k| k.as_ref().unwrap().len() == 8)
                .count()
                > 2;
        }
    }
    assert!(folded > 10, "only {folded} batches folded");
    assert!(cut_appends);
}

#[test]
fn sled_agrees_with_model_seed_1() {
    run(1);
}

#[test]
fn sled_agrees_with_model_seed_2() {
    run(20_240_611);
}
