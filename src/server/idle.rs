//! `max_inactivity`: a channel with no online subscription and no new
//! message for that long is deleted, as NSS deletes it. The channel owner
//! watches its own activity and, once idle long enough, reports to the
//! dispatcher, which owns the channel map. The dispatcher then asks the
//! owner to retire; the owner agrees only if it is still idle (a publish
//! or subscription may have arrived meanwhile), and stops. Only then does
//! the dispatcher delete the store's channel and free the name, so a
//! later publish re-creates it from sequence 1.

use std::time::{Duration, Instant};

use super::channel::Channel;

/// When the dispatcher's report queue was full, the report is retried after this.
const REPORT_RETRY: Duration = Duration::from_secs(1);

impl Channel {
    /// Starts or stops the idle clock after the channel's subscriptions
    /// changed: it runs while no subscription is online (offline durables
    /// do not count, as in NSS).
    pub(super) fn refresh_idle(&mut self) {
        if self.limit.max_inactivity.is_zero() {
            return;
        }
        if self.subs.values().any(|s| !s.is_offline()) {
            self.idle_since = None;
            self.idle_check = None;
        } else if self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
            self.idle_check = Some(Instant::now() + self.limit.max_inactivity);
        }
    }

    /// A new message is activity: the idle clock starts over.
    pub(super) fn note_publish(&mut self) {
        if self.idle_since.is_some() {
            self.idle_since = Some(Instant::now());
        }
    }

    /// The idle check came due: report the channel to the dispatcher if it
    /// has been idle for `max_inactivity`, else look again when it will be.
    pub(super) fn check_idle(&mut self) {
        self.idle_check = None;
        let Some(since) = self.idle_since else {
            return;
        };
        let due = since + self.limit.max_inactivity;
        if Instant::now() < due {
            self.idle_check = Some(due);
            return;
        }
        // Never wait on the dispatcher: it may be waiting on a channel.
        if self.ctx.idle_tx.try_send(self.name.clone()).is_err() {
            self.idle_check = Some(Instant::now() + REPORT_RETRY);
        }
    }

    /// The dispatcher asks to retire the channel: true (and the owner
    /// stops) if it is still idle for `max_inactivity`.
    pub(super) fn agrees_to_retire(&mut self) -> bool {
        let idle = self
            .idle_since
            .is_some_and(|since| since.elapsed() >= self.limit.max_inactivity);
        if !idle {
            self.refresh_idle();
            if let Some(since) = self.idle_since {
                self.idle_check = Some(since + self.limit.max_inactivity);
            }
        }
        idle
    }
}
