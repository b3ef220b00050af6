//! Retention limits of a channel, applied by its owner: past `max_msgs`
//! or `max_bytes` the oldest messages go after each committed batch (the
//! newest is always kept); past `max_age` messages expire from a timer,
//! the newest too, a bounded number per pass so that a huge backlog never
//! holds up the channel's publishes for long. Both apply at start, before
//! anything is served. Segment files a removal emptied are deleted by the
//! next flush: a commit's, or one the channel asks for a second later. A pending message that was removed leaves its
//! subscription's pending set when its redelivery finds it gone.

use std::time::{Duration, Instant};

use super::channel::{now_ns, Channel};
use crate::store::retention::{self, SizeLimits};

/// Most messages one expiry pass removes; the next pass follows at once
/// (after the commands queued meanwhile) while more are expired.
const EXPIRE_PASS: u64 = 100_000;

/// How long after a removal a flush deletes the segment files it emptied
/// (a publish's commit syncs only segment files, so it never does). Short,
/// because a fast publisher fills a new 64 MB segment in about a second;
/// removals within it share the flush.
const RELEASE_DELAY: Duration = Duration::from_millis(100);

/// The longest an expiry pass waits to take more messages along.
const EXPIRE_COALESCE_MAX: Duration = Duration::from_secs(1);

/// When an expiry pass failed (logged), the next try comes after this, as in NSS.
const EXPIRE_RETRY: Duration = Duration::from_secs(5);

impl Channel {
    /// Drops the oldest messages past the channel's count and byte limits.
    pub(super) async fn enforce_limits(&mut self) {
        let limits = self.size_limits();
        // Checked here first: most commits stay within limits, and then
        // cost no trip to the blocking pool.
        if !limits.exceeded_by(self.state) {
            return;
        }
        let removed = self
            .on_store("removing old messages", move |s| {
                retention::enforce_size(s, limits)
            })
            .await;
        if let Ok(Some(through)) = removed {
            self.removed_through(through);
            if !self.limits_warned {
                self.limits_warned = true;
                tracing::warn!(
                    channel = %self.name,
                    max_msgs = self.limit.max_msgs,
                    max_bytes = self.limit.max_bytes,
                    "reached limits for channel; dropping old messages"
                );
            }
        }
    }

    /// Removes messages older than `max_age` (one bounded pass) and arms
    /// the next pass for when the oldest one left reaches that age.
    pub(super) async fn expire(&mut self) {
        self.next_expiry = None;
        let Some(max_age) = age_ns(self.limit.max_age) else {
            return;
        };
        if self.state.msgs == 0 {
            return;
        }
        let now = now_ns();
        let cutoff = now.saturating_sub(max_age);
        let pass = self
            .on_store("expiring messages", move |s| {
                retention::expire(s, cutoff, EXPIRE_PASS)
            })
            .await;
        let Ok(pass) = pass else {
            self.next_expiry = Some(Instant::now() + EXPIRE_RETRY);
            return;
        };
        if let Some(through) = pass.removed_through {
            self.removed_through(through);
            tracing::debug!(channel = %self.name, through, "expired messages");
        }
        if pass.oldest.is_some_and(|ts| ts <= cutoff) {
            // The pass stopped at its bound: go on after the queued commands.
            self.next_expiry = Some(Instant::now());
        } else {
            self.arm_expiry(pass.oldest);
        }
    }

    /// Expires at start everything already past `max_age`, before the
    /// channel serves anyone.
    pub(super) async fn expire_all(&mut self) {
        loop {
            self.expire().await;
            match self.next_expiry {
                Some(at) if at <= Instant::now() && self.state.msgs > 0 => {}
                _ => return,
            }
        }
    }

    /// Arms the expiry timer for the oldest stored message's timestamp
    /// (ns), unless one is armed already or no age limit applies.
    pub(super) fn arm_expiry(&mut self, oldest: Option<i64>) {
        let (Some(max_age), Some(oldest)) = (age_ns(self.limit.max_age), oldest) else {
            return;
        };
        if self.next_expiry.is_some() {
            return;
        }
        let wait = oldest.saturating_add(max_age).saturating_sub(now_ns());
        let wait = Duration::from_nanos(u64::try_from(wait).unwrap_or(0));
        // Under a steady stream every batch would be due on its own: one
        // pass per 1 % of the age (at most a second) takes them together.
        // Messages may then outlive max_age by that much, never less.
        let coalesce = (self.limit.max_age / 100).min(EXPIRE_COALESCE_MAX);
        self.next_expiry = Some(Instant::now() + wait.max(coalesce));
    }

    /// Brings the owner's view in step with a removal through `through`:
    /// the counts, and the recent messages kept for live delivery.
    fn removed_through(&mut self, through: u64) {
        self.state = self.store.state();
        self.release_due
            .get_or_insert_with(|| Instant::now() + RELEASE_DELAY);
        while self.recent.front().is_some_and(|e| e.seq <= through) {
            if let Some(old) = self.recent.pop_front() {
                self.recent_bytes -= old.encoded.len();
            }
        }
    }

    /// Flushes the store: segment files emptied by removals are deleted
    /// only once those removals are durable.
    pub(super) async fn release_space(&mut self) {
        self.release_due = None;
        // A failure was logged by the committer; the next flush retries.
        let _ = self.ctx.committer.flush().await;
    }

    /// The channel's size as NSS's store of the same kind counts it.
    pub(super) fn counted_bytes(&self) -> u64 {
        self.size_limits().counted_bytes(self.state)
    }

    /// The channel's count and byte limits, with its store's per-message overhead.
    fn size_limits(&self) -> SizeLimits {
        SizeLimits {
            max_msgs: self.limit.max_msgs,
            max_bytes: self.limit.max_bytes,
            overhead: self.ctx.record_overhead,
        }
    }
}

/// An age limit in nanoseconds; `None` when there is none.
fn age_ns(max_age: Duration) -> Option<i64> {
    (!max_age.is_zero()).then(|| i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX))
}
