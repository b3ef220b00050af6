//! Copying one channel into the stream: a STAN subscription from the first
//! sequence the stream does not hold yet, each message published to
//! JetStream with its identity in headers, and acknowledged to STAN once
//! JetStream has stored it.
//!
//! Where to resume is read back from the stream itself (the
//! `Stan-Sequence` header of the subject's last message), so nothing is
//! kept on the side, and each message carries a `Nats-Msg-Id` unique to
//! its subject and sequence, so a message published twice around a crash
//! is stored once.

use std::collections::VecDeque;
use std::time::Duration;

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::progress::Meter;
use super::source::{ChannelRange, Monitor};
use super::{ChannelReport, ExportError};
use crate::client::{Connection, Message, StartAt, SubscriptionOptions};

/// The channel a message came from.
pub const CHANNEL_HEADER: &str = "Stan-Channel";
/// The message's STAN sequence.
pub const SEQUENCE_HEADER: &str = "Stan-Sequence";
/// The message's STAN timestamp, nanoseconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "Stan-Timestamp";
/// The reply subject the message was published with, when it had one.
pub const REPLY_HEADER: &str = "Stan-Reply";
/// JetStream's deduplication ID.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Messages in flight per channel: unacknowledged STAN deliveries, and
/// JetStream publishes awaiting their ack.
const WINDOW: usize = 1024;
/// How long STAN waits for an ack before redelivering; long, because the
/// ack waits for JetStream.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// Without new messages for this long, a one-shot copy asks the server
/// whether the rest was removed by the channel's limits.
const IDLE_CHECK: Duration = Duration::from_secs(3);
/// The wait for a delivery while acks are outstanding: they wake the loop.
const BUSY: Duration = Duration::from_secs(3600);

/// A JetStream publish awaiting its ack; boxed so it can be polled in place.
type Acking = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// What woke a copy.
enum Event {
    /// JetStream acked the oldest publish.
    Acked(Result<PublishAck, PublishError>),
    /// A delivery, the end of the subscription, or `None` after a quiet spell.
    Delivered(Option<Option<Message>>),
}

/// What a copy needs, shared by every channel's.
pub(super) struct Copier<'a> {
    pub stan: &'a Connection,
    pub js: &'a async_nats::jetstream::Context,
    pub stream: &'a Stream,
    pub monitor: &'a Monitor,
    pub meter: &'a Meter,
    pub stop: &'a CancellationToken,
    pub follow: bool,
}

/// The last sequence of `subject` the stream holds (0 when none).
///
/// # Errors
/// The stream cannot be read, or its last message there was not written by
/// an export (no sequence header).
pub(super) async fn exported_through(stream: &Stream, subject: &str) -> Result<u64, ExportError> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => m
            .headers
            .get(SEQUENCE_HEADER)
            .and_then(|v| v.as_str().parse().ok())
            .ok_or_else(|| {
                ExportError::JetStream(format!(
                    "the last message on {subject} (stream sequence {}) has no {SEQUENCE_HEADER} \
                     header: the subject holds messages that were not exported from STAN",
                    m.sequence
                ))
            }),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(ExportError::JetStream(format!(
            "reading the last message on {subject}: {e}"
        ))),
    }
}

/// The headers that carry a STAN message's identity into JetStream.
pub(super) fn headers(
    channel: &str,
    subject: &str,
    msg: &crate::protocol::pb::MsgProto,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        MSG_ID_HEADER,
        format!("{subject}:{}", msg.sequence).as_str(),
    );
    h.insert(CHANNEL_HEADER, channel);
    h.insert(SEQUENCE_HEADER, msg.sequence.to_string().as_str());
    h.insert(TIMESTAMP_HEADER, msg.timestamp.to_string().as_str());
    if !msg.reply.is_empty() {
        h.insert(REPLY_HEADER, msg.reply.as_str());
    }
    h
}

impl Copier<'_> {
    /// Copies `channel` into `subject`: through the channel's last sequence
    /// as `range` gave it, or, following, until stopped.
    ///
    /// # Errors
    /// A STAN subscription refused or lost, a JetStream publish that fails.
    pub(super) async fn channel(
        &self,
        channel: &str,
        subject: &str,
        range: ChannelRange,
    ) -> Result<ChannelReport, ExportError> {
        let done = exported_through(self.stream, subject).await?;
        let mut report = ChannelReport {
            channel: channel.to_string(),
            subject: subject.to_string(),
            already: done,
            ..ChannelReport::default()
        };
        let target = range.last_seq;
        if !self.follow {
            if done >= target {
                return Ok(report);
            }
            self.meter.add_total(target - done);
        }
        // Below the first stored message, the server starts at the first.
        let start = (done + 1).max(range.first_seq);
        let opts = SubscriptionOptions {
            start: StartAt::Sequence(start),
            manual_acks: true,
            max_in_flight: i32::try_from(WINDOW).unwrap_or(i32::MAX),
            ack_wait: ACK_WAIT,
            ..SubscriptionOptions::default()
        };
        let mut sub = self
            .stan
            .subscribe(channel, opts)
            .await
            .map_err(|e| ExportError::Stan(format!("subscribing to {channel:?}: {e}")))?;
        let mut next = done + 1;
        let mut pending: VecDeque<(Message, Acking)> = VecDeque::new();
        let result = loop {
            if !self.follow && next > target && pending.is_empty() {
                break Ok(());
            }
            if self.stop.is_cancelled() || pending.len() >= WINDOW {
                let Some((msg, ack)) = pending.pop_front() else {
                    break Ok(());
                };
                if let Err(e) = self.settle(msg, ack.await, &mut report).await {
                    break Err(e);
                }
                continue;
            }
            let idle = if pending.is_empty() { IDLE_CHECK } else { BUSY };
            let event = {
                let oldest = pending.front_mut().map(|(_, ack)| ack);
                tokio::select! {
                    biased;
                    () = self.stop.cancelled() => continue,
                    r = async {
                        match oldest {
                            Some(ack) => ack.as_mut().await,
                            None => std::future::pending().await,
                        }
                    } => Event::Acked(r),
                    m = tokio::time::timeout(idle, sub.next()) => Event::Delivered(m.ok()),
                }
            };
            let msg = match event {
                Event::Acked(r) => {
                    if let Some((msg, _)) = pending.pop_front() {
                        if let Err(e) = self.settle(msg, r, &mut report).await {
                            break Err(e);
                        }
                    }
                    continue;
                }
                Event::Delivered(Some(Some(m))) => m,
                Event::Delivered(Some(None)) => {
                    break Err(ExportError::Stan(format!(
                        "the subscription to {channel:?} ended (connection to the streaming server lost)"
                    )))
                }
                Event::Delivered(None) => {
                    if !self.follow && pending.is_empty() && self.rest_removed(channel, next).await? {
                        report.removed += target.saturating_sub(next - 1);
                        next = target + 1;
                    }
                    continue;
                }
            };
            let seq = msg.sequence();
            if seq < next {
                // A redelivery of a message already published.
                let _ = msg.ack().await;
                continue;
            }
            // Sequences the channel's limits removed before they were read.
            report.removed += seq - next;
            next = seq + 1;
            let h = headers(channel, subject, &msg.proto);
            let data = Bytes::clone(msg.data());
            match self
                .js
                .publish_with_headers(subject.to_string(), h, data)
                .await
            {
                Ok(ack) => pending.push_back((msg, ack.into_future())),
                Err(e) => break Err(publish_error(subject, seq, &e.kind(), &e)),
            }
        };
        // What was published is settled even when stopping on an error, so
        // that the report counts what the stream holds.
        let mut settled = Ok(());
        while let Some((msg, ack)) = pending.pop_front() {
            let r = self.settle(msg, ack.await, &mut report).await;
            settled = settled.and(r);
        }
        let _ = sub.close().await;
        result.and(settled).map(|()| report)
    }

    /// Counts a JetStream ack and acknowledges its STAN message.
    async fn settle(
        &self,
        msg: Message,
        ack: Result<PublishAck, PublishError>,
        report: &mut ChannelReport,
    ) -> Result<(), ExportError> {
        let seq = msg.sequence();
        let ack = ack.map_err(|e| publish_error(&report.subject, seq, &e.kind(), &e))?;
        if ack.duplicate {
            report.duplicates += 1;
            self.meter.duplicate();
        } else {
            report.exported += 1;
            report.bytes += u64::try_from(msg.data().len()).unwrap_or(u64::MAX);
            self.meter.exported();
        }
        report.last_seq = seq;
        let _ = msg.ack().await;
        Ok(())
    }

    /// Whether every message from `next` on was removed by the channel's
    /// limits while it was being copied (nothing more will arrive).
    async fn rest_removed(&self, channel: &str, next: u64) -> Result<bool, ExportError> {
        let monitor = self.monitor.clone();
        let name = channel.to_string();
        let range = tokio::task::spawn_blocking(move || monitor.channel(&name))
            .await
            .map_err(|e| ExportError::Monitor(e.to_string()))?
            .map_err(ExportError::Monitor)?;
        Ok(match range {
            None => true,
            Some(r) => r.first_seq == 0 || r.first_seq > next,
        })
    }
}

/// A failed publish, with a hint where JetStream's answer has one.
fn publish_error(
    subject: &str,
    seq: u64,
    kind: &PublishErrorKind,
    e: &dyn std::fmt::Display,
) -> ExportError {
    let hint = match kind {
        PublishErrorKind::StreamNotFound => " (no stream takes this subject)",
        PublishErrorKind::TimedOut => " (JetStream did not answer in time)",
        _ => "",
    };
    ExportError::JetStream(format!("publishing sequence {seq} to {subject}: {e}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_channel_sequence_timestamp_reply_and_a_unique_id() {
        let msg = crate::protocol::pb::MsgProto {
            sequence: 42,
            timestamp: 1_700_000_000_123_456_789,
            reply: "reply.to".into(),
            ..Default::default()
        };
        let h = headers("orders.eu", "stan.orders.eu", &msg);
        let get = |k| h.get(k).map(|v| v.as_str().to_string());
        assert_eq!(get(MSG_ID_HEADER).as_deref(), Some("stan.orders.eu:42"));
        assert_eq!(get(CHANNEL_HEADER).as_deref(), Some("orders.eu"));
        assert_eq!(get(SEQUENCE_HEADER).as_deref(), Some("42"));
        assert_eq!(
            get(TIMESTAMP_HEADER).as_deref(),
            Some("1700000000123456789")
        );
        assert_eq!(get(REPLY_HEADER).as_deref(), Some("reply.to"));
        let plain = headers("c", "s.c", &crate::protocol::pb::MsgProto::default());
        assert!(plain.get(REPLY_HEADER).is_none());
    }
}
