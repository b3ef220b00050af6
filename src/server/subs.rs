//! A channel's subscriptions: their in-memory state (pending acks, window,
//! queue groups) and the pure decisions about them (where a new one starts,
//! which queue member gets a message). Owned by the channel actor.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_nats::Subject;

use crate::protocol::pb::StartPosition;
use crate::store::{ChannelState, SubState};

/// One unacknowledged delivery.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// When the message is redelivered if still unacked.
    pub deadline: Instant,
    /// How many times it was redelivered (not persisted, as in NSS).
    pub redeliveries: u32,
}

/// A subscription as the channel actor keeps it.
#[derive(Debug)]
pub struct Sub {
    /// The persisted record. For queue members `last_sent` mirrors the group's.
    pub state: SubState,
    /// Parsed delivery inbox.
    pub inbox: Subject,
    /// Sent but unacknowledged sequences.
    pub pending: BTreeMap<u64, Pending>,
    /// AckWait as a duration.
    pub ack_wait: Duration,
    /// The queue group key this sub belongs to, if any.
    pub group: Option<String>,
}

impl Sub {
    /// Builds the in-memory state around a persisted record.
    pub fn new(state: SubState, group: Option<String>) -> Sub {
        let ack_wait =
            Duration::from_secs(u64::try_from(state.ack_wait_in_secs.max(1)).unwrap_or(1));
        Sub {
            inbox: Subject::from(state.inbox.as_str()),
            state,
            pending: BTreeMap::new(),
            ack_wait,
            group,
        }
    }

    /// Offline durables (and shadow durable queue groups) keep their state but get nothing.
    pub fn is_offline(&self) -> bool {
        self.state.is_closed
    }

    /// Whether MaxInFlight allows another new message.
    pub fn has_room(&self) -> bool {
        !self.is_offline()
            && self.pending.len() < usize::try_from(self.state.max_in_flight).unwrap_or(0)
    }
}

/// The shared state of a queue group: members take turns.
#[derive(Debug, Default)]
pub struct QueueGroup {
    /// Last sequence handed to any member.
    pub last_sent: u64,
    /// Member sub IDs (online members; a durable group's shadow is not a member).
    pub members: Vec<u64>,
    /// Rotation cursor for fair distribution.
    pub cursor: usize,
    /// The offline sub holding a durable group's state while it has no members.
    pub shadow: Option<u64>,
}

impl QueueGroup {
    /// The member that should get the next message: the one with the fewest
    /// outstanding acks among those with room, starting from the rotation
    /// cursor so equal members alternate. Members whose client is failing
    /// heartbeats (`failing`) are passed over.
    pub fn pick(
        &mut self,
        subs: &HashMap<u64, Sub>,
        failing: impl Fn(&str) -> bool,
    ) -> Option<u64> {
        let n = self.members.len();
        let mut best: Option<(usize, usize)> = None; // (pending, index)
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let Some(sub) = subs.get(&self.members[i]) else {
                continue;
            };
            if !sub.has_room() || failing(&sub.state.client_id) {
                continue;
            }
            if best.is_none_or(|(p, _)| sub.pending.len() < p) {
                best = Some((sub.pending.len(), i));
            }
        }
        let (_, i) = best?;
        self.cursor = (i + 1) % n;
        Some(self.members[i])
    }

    /// The live member (not `except`, client not failing) with the fewest
    /// outstanding acks, ignoring MaxInFlight: where a redelivery goes when
    /// its member's client stopped answering.
    pub fn live_member(
        &self,
        subs: &HashMap<u64, Sub>,
        except: u64,
        failing: impl Fn(&str) -> bool,
    ) -> Option<u64> {
        self.members
            .iter()
            .filter(|m| **m != except)
            .filter_map(|m| subs.get(m))
            .filter(|s| !s.is_offline() && !failing(&s.state.client_id))
            .min_by_key(|s| s.pending.len())
            .map(|s| s.state.id)
    }
}

/// The key of a plain durable: unique per client, channel and durable name.
pub fn durable_key(client_id: &str, channel: &str, durable: &str) -> String {
    format!("{client_id}-{channel}-{durable}")
}

/// The stored group name of a queue subscription; durable groups are `durable:group`.
pub fn group_key(durable: &str, group: &str) -> String {
    if durable.is_empty() {
        group.to_string()
    } else {
        format!("{durable}:{group}")
    }
}

/// The `last_sent` a new subscription starts from (its first delivery is `last_sent + 1`),
/// as NSS resolves start positions. `first_at_or_after` looks up the first
/// sequence whose timestamp is at or after a time.
pub fn start_last_sent(
    position: StartPosition,
    start_sequence: u64,
    start_time_delta_ns: i64,
    now_ns: i64,
    channel: ChannelState,
    first_at_or_after: impl FnOnce(i64) -> Option<u64>,
) -> u64 {
    let empty = channel.msgs == 0;
    let new_only = channel.last;
    match position {
        StartPosition::NewOnly => new_only,
        StartPosition::LastReceived => {
            if empty {
                new_only
            } else {
                channel.last - 1
            }
        }
        StartPosition::TimeDeltaStart => {
            if empty {
                return new_only;
            }
            let start = now_ns.saturating_sub(start_time_delta_ns);
            match first_at_or_after(start) {
                Some(seq) => seq - 1,
                None => new_only,
            }
        }
        StartPosition::SequenceStart => {
            if empty || start_sequence > channel.last {
                new_only
            } else if start_sequence < channel.first {
                channel.first - 1
            } else {
                start_sequence.max(1) - 1
            }
        }
        StartPosition::First => {
            if empty {
                new_only
            } else {
                channel.first - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(first: u64, last: u64) -> ChannelState {
        let msgs = if last >= first && first > 0 {
            last - first + 1
        } else {
            0
        };
        ChannelState {
            first,
            last,
            msgs,
            bytes: 0,
        }
    }

    fn start(pos: StartPosition, seq: u64, c: ChannelState) -> u64 {
        start_last_sent(pos, seq, 0, 0, c, |_| None)
    }

    #[test]
    fn start_positions_on_a_channel_with_messages_5_to_10() {
        let c = chan(5, 10);
        assert_eq!(start(StartPosition::NewOnly, 0, c), 10);
        assert_eq!(start(StartPosition::LastReceived, 0, c), 9);
        assert_eq!(start(StartPosition::First, 0, c), 4);
        assert_eq!(start(StartPosition::SequenceStart, 7, c), 6);
        assert_eq!(
            start(StartPosition::SequenceStart, 2, c),
            4,
            "below first starts at first"
        );
        assert_eq!(
            start(StartPosition::SequenceStart, 11, c),
            10,
            "above last is new-only"
        );
        assert_eq!(start(StartPosition::SequenceStart, 0, c), 4);
    }

    #[test]
    fn start_positions_on_an_empty_channel_are_new_only() {
        let c = ChannelState::default();
        for pos in [
            StartPosition::NewOnly,
            StartPosition::LastReceived,
            StartPosition::First,
            StartPosition::SequenceStart,
            StartPosition::TimeDeltaStart,
        ] {
            assert_eq!(start(pos, 3, c), 0, "{pos:?}");
        }
    }

    #[test]
    fn time_delta_start_uses_the_lookup() {
        let c = chan(1, 10);
        let got = start_last_sent(StartPosition::TimeDeltaStart, 0, 300, 1000, c, |t| {
            assert_eq!(t, 700);
            Some(6)
        });
        assert_eq!(got, 5);
        let all_older = start_last_sent(StartPosition::TimeDeltaStart, 0, 1, 1000, c, |_| None);
        assert_eq!(all_older, 10);
    }

    #[test]
    fn queue_pick_alternates_and_skips_full_members() {
        let mut subs = HashMap::new();
        for id in [1, 2] {
            let state = SubState {
                id,
                max_in_flight: 1,
                ack_wait_in_secs: 30,
                ..Default::default()
            };
            subs.insert(id, Sub::new(state, Some("q".into())));
        }
        let mut g = QueueGroup {
            members: vec![1, 2],
            ..Default::default()
        };
        let none = |_: &str| false;
        assert_eq!(g.pick(&subs, none), Some(1));
        assert_eq!(g.pick(&subs, none), Some(2));
        assert_eq!(g.pick(&subs, none), Some(1));
        let p = Pending {
            deadline: Instant::now(),
            redeliveries: 0,
        };
        subs.get_mut(&1).unwrap().pending.insert(1, p);
        assert_eq!(g.pick(&subs, none), Some(2));
        subs.get_mut(&2).unwrap().pending.insert(2, p);
        assert_eq!(g.pick(&subs, none), None, "all members stalled");
        assert_eq!(
            g.live_member(&subs, 1, none),
            Some(2),
            "redelivery ignores the window"
        );
    }

    #[test]
    fn queue_pick_passes_over_members_failing_heartbeats() {
        let mut subs = HashMap::new();
        for (id, client) in [(1, "hung"), (2, "ok")] {
            let state = SubState {
                id,
                client_id: client.into(),
                max_in_flight: 10,
                ack_wait_in_secs: 30,
                ..Default::default()
            };
            subs.insert(id, Sub::new(state, Some("q".into())));
        }
        let mut g = QueueGroup {
            members: vec![1, 2],
            ..Default::default()
        };
        let failing = |c: &str| c == "hung";
        for _ in 0..3 {
            assert_eq!(g.pick(&subs, failing), Some(2));
        }
        assert_eq!(g.live_member(&subs, 2, failing), None);
        assert_eq!(g.live_member(&subs, 1, failing), Some(2));
    }
}
