//! Subscriptions: the SubscriptionRequest, delivery of MsgProtos from the
//! delivery inbox, acks to the server's ack inbox, unsubscribe and close.
//!
//! Owns one delivery inbox per subscription (its NATS subscriber). May call
//! the connection's request helper and shared NATS client.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::{Client, Subject};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message as _;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::{wire, ClientError, Connection};
use crate::protocol::pb;

/// Where a new subscription starts in its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// Only messages published after the subscription is created.
    #[default]
    NewOnly,
    /// The last stored message, then new ones.
    LastReceived,
    /// Messages stored at most this long before the request.
    TimeDelta(Duration),
    /// Messages stored at or after this time (sent as a delta from now, like stan.go).
    Time(SystemTime),
    /// From this sequence on.
    Sequence(u64),
    /// Every stored message.
    First,
}

/// Settings of one subscription. Defaults are stan.go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Queue group: members share the channel's messages.
    pub queue_group: Option<String>,
    /// Durable name: the server keeps the position across reconnects.
    pub durable_name: Option<String>,
    /// Unacknowledged messages the server sends at most (1024). Sent as is
    /// (not validated here), so tests can check the server's validation.
    pub max_in_flight: i32,
    /// How long the server waits for an ack before redelivering (30 s);
    /// sent as whole seconds, so anything under 1 s becomes 0 and is refused.
    pub ack_wait: Duration,
    /// Where the subscription starts.
    pub start: StartAt,
    /// If false, [`Subscription::next`] acks each message as it returns it;
    /// if true, the application calls [`Message::ack`].
    pub manual_acks: bool,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        SubscriptionOptions {
            queue_group: None,
            durable_name: None,
            max_in_flight: 1024,
            ack_wait: Duration::from_secs(30),
            start: StartAt::NewOnly,
            manual_acks: false,
        }
    }
}

impl SubscriptionOptions {
    /// The SubscriptionRequest these options make (clientID, channel and inbox aside).
    fn request(&self, client_id: &str, channel: &str, inbox: &str) -> pb::SubscriptionRequest {
        let mut req = pb::SubscriptionRequest {
            client_id: client_id.to_owned(),
            subject: channel.to_owned(),
            q_group: self.queue_group.clone().unwrap_or_default(),
            inbox: inbox.to_owned(),
            max_in_flight: self.max_in_flight,
            ack_wait_in_secs: i32::try_from(self.ack_wait.as_secs()).unwrap_or(i32::MAX),
            durable_name: self.durable_name.clone().unwrap_or_default(),
            ..Default::default()
        };
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let position = match self.start {
            StartAt::NewOnly => pb::StartPosition::NewOnly,
            StartAt::LastReceived => pb::StartPosition::LastReceived,
            StartAt::TimeDelta(delta) => {
                req.start_time_delta = nanos(delta);
                pb::StartPosition::TimeDeltaStart
            }
            StartAt::Time(at) => {
                req.start_time_delta = match SystemTime::now().duration_since(at) {
                    Ok(ago) => nanos(ago),
                    Err(ahead) => nanos(ahead.duration()).saturating_neg(),
                };
                pb::StartPosition::TimeDeltaStart
            }
            StartAt::Sequence(seq) => {
                req.start_sequence = seq;
                pb::StartPosition::SequenceStart
            }
            StartAt::First => pb::StartPosition::First,
        };
        req.start_position = position.into();
        req
    }
}

/// What a subscription's messages need to ack themselves.
struct AckTarget {
    nats: Client,
    /// The server's ack inbox for this subscription.
    ack_inbox: Subject,
    manual_acks: bool,
    /// Cleared by unsubscribe/close: acks after that are refused.
    active: AtomicBool,
    /// The connection's token: acks after close are refused.
    cancel: CancellationToken,
}

impl AckTarget {
    async fn ack(&self, proto: &pb::MsgProto) -> Result<(), ClientError> {
        if !self.active.load(Ordering::Relaxed) {
            return Err(ClientError::BadSubscription);
        }
        if self.cancel.is_cancelled() {
            return Err(ClientError::ConnectionClosed);
        }
        let payload = wire::encode_ack(&proto.subject, proto.sequence);
        self.nats
            .publish(self.ack_inbox.clone(), payload)
            .await
            .map_err(ClientError::nats)
    }
}

/// One delivered message.
pub struct Message {
    /// The MsgProto as the server sent it.
    pub proto: pb::MsgProto,
    target: Arc<AckTarget>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("proto", &self.proto)
            .finish()
    }
}

impl Message {
    /// Acks the message: `Ack{subject: channel, sequence}` to the ack inbox.
    ///
    /// # Errors
    /// [`ClientError::ManualAck`] on an auto-ack subscription,
    /// [`ClientError::BadSubscription`] after unsubscribe/close,
    /// [`ClientError::ConnectionClosed`] after the connection closed.
    pub async fn ack(&self) -> Result<(), ClientError> {
        if !self.target.manual_acks {
            return Err(ClientError::ManualAck);
        }
        self.target.ack(&self.proto).await
    }

    /// The message's sequence in its channel.
    pub fn sequence(&self) -> u64 {
        self.proto.sequence
    }

    /// The payload.
    pub fn data(&self) -> &Bytes {
        &self.proto.data
    }

    /// Whether this is a redelivery (the previous delivery was not acked in time).
    pub fn redelivered(&self) -> bool {
        self.proto.redelivered
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.proto.subject
    }

    /// When the server stored the message, in Unix nanoseconds.
    pub fn timestamp(&self) -> i64 {
        self.proto.timestamp
    }
}

/// A live subscription. Messages are read with [`Subscription::next`].
///
/// Dropping it stops delivery locally but leaves the subscription on the
/// server (like a crashed client); [`Subscription::unsubscribe`] or
/// [`Subscription::close`] end it there too.
pub struct Subscription {
    /// Keeps the connection's tasks alive while the subscription lives.
    conn: Connection,
    channel: String,
    durable_name: String,
    /// The delivery inbox.
    inbox: String,
    sub: async_nats::Subscriber,
    target: Arc<AckTarget>,
    /// Resolves when the connection closes; allocated once.
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .field("inbox", &self.inbox)
            .field("ack_inbox", &self.ack_inbox())
            .finish()
    }
}

impl Connection {
    /// Subscribes to `channel`: subscribes a fresh delivery inbox, then
    /// sends the SubscriptionRequest and waits `connect_wait` for the ack inbox.
    ///
    /// On timeout the server may still have created the subscription, so an
    /// UnsubscribeRequest for the delivery inbox is sent to the subscription
    /// close subject as cleanup (as stan.go does).
    ///
    /// # Errors
    /// [`ClientError::SubscribeTimeout`], [`ClientError::Server`] with the
    /// server's refusal, [`ClientError::ConnectionClosed`].
    pub async fn subscribe(
        &self,
        channel: &str,
        opts: SubscriptionOptions,
    ) -> Result<Subscription, ClientError> {
        let inner = &*self.inner;
        if inner.is_closed() {
            return Err(ClientError::ConnectionClosed);
        }
        let inbox = inner.nats.new_inbox();
        let sub = inner
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(ClientError::nats)?;
        let req = opts.request(&inner.client_id, channel, &inbox);
        let reply = inner
            .request(
                inner.subjects.sub_requests.clone(),
                req.encode_to_vec(),
                ClientError::SubscribeTimeout,
            )
            .await;
        let reply = match reply {
            Err(ClientError::SubscribeTimeout) => {
                drop(sub);
                self.cleanup_timed_out_subscription(req).await;
                return Err(ClientError::SubscribeTimeout);
            }
            other => other?,
        };
        let resp = pb::SubscriptionResponse::decode(reply.payload)?;
        if !resp.error.is_empty() {
            return Err(ClientError::Server(resp.error));
        }
        let target = Arc::new(AckTarget {
            nats: inner.nats.clone(),
            ack_inbox: resp.ack_inbox.into(),
            manual_acks: opts.manual_acks,
            active: AtomicBool::new(true),
            cancel: inner.cancel.clone(),
        });
        Ok(Subscription {
            conn: self.clone(),
            channel: req.subject,
            durable_name: req.durable_name,
            inbox,
            sub,
            target,
            ended: Box::pin(inner.cancel.clone().cancelled_owned()),
        })
    }

    /// Tells the server to drop a subscription whose request timed out.
    async fn cleanup_timed_out_subscription(&self, req: pb::SubscriptionRequest) {
        let inner = &*self.inner;
        let subject = match &inner.subjects.sub_close_requests {
            Some(subject) => subject.clone(),
            None => inner.subjects.unsub_requests.clone(),
        };
        let unsub = pb::UnsubscribeRequest {
            client_id: req.client_id,
            subject: req.subject,
            inbox: req.inbox,
            durable_name: req.durable_name,
        };
        let sent = inner
            .nats
            .publish(subject, unsub.encode_to_vec().into())
            .await;
        if let Err(err) = sent {
            tracing::debug!(%err, "stan client: subscription cleanup not sent");
        }
    }
}

impl Subscription {
    /// The next message, or `None` once the connection is closed (or the
    /// NATS subscription ended). Messages that do not decode are skipped.
    /// In auto-ack mode the message is acked before it is returned.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            let msg = tokio::select! {
                biased;
                _ = &mut self.ended => return None,
                msg = self.sub.next() => msg?,
            };
            if msg.status.is_some() {
                continue;
            }
            let proto = match pb::MsgProto::decode(msg.payload) {
                Ok(proto) => proto,
                Err(err) => {
                    tracing::debug!(%err, inbox = %self.inbox, "stan client: undecodable MsgProto skipped");
                    continue;
                }
            };
            let message = Message {
                proto,
                target: self.target.clone(),
            };
            if !self.target.manual_acks {
                if let Err(err) = self.target.ack(&message.proto).await {
                    tracing::debug!(%err, "stan client: auto-ack failed");
                }
            }
            return Some(message);
        }
    }

    /// Removes the subscription on the server (a durable forgets its
    /// position): UnsubscribeRequest with the ack inbox to `unsubRequests`.
    ///
    /// # Errors
    /// [`ClientError::UnsubscribeTimeout`], [`ClientError::Server`],
    /// [`ClientError::ConnectionClosed`].
    pub async fn unsubscribe(self) -> Result<(), ClientError> {
        self.remove(false).await
    }

    /// Closes the subscription on the server (a durable keeps its position):
    /// UnsubscribeRequest with the ack inbox to `subCloseRequests`.
    ///
    /// # Errors
    /// [`ClientError::CloseTimeout`], [`ClientError::Server`],
    /// [`ClientError::NotSupported`] if the server has no subscription close,
    /// [`ClientError::ConnectionClosed`].
    pub async fn close(self) -> Result<(), ClientError> {
        self.remove(true).await
    }

    async fn remove(self, close: bool) -> Result<(), ClientError> {
        let Subscription {
            conn,
            channel,
            durable_name,
            mut sub,
            target,
            ..
        } = self;
        target.active.store(false, Ordering::Relaxed);
        // Stop delivery first, as stan.go does.
        if let Err(err) = sub.unsubscribe().await {
            tracing::debug!(%err, "stan client: delivery inbox unsubscribe failed");
        }
        drop(sub);
        let inner = &*conn.inner;
        if inner.is_closed() {
            return Err(ClientError::ConnectionClosed);
        }
        let (subject, on_timeout) = if close {
            match &inner.subjects.sub_close_requests {
                Some(subject) => (subject.clone(), ClientError::CloseTimeout),
                None => return Err(ClientError::NotSupported),
            }
        } else {
            (
                inner.subjects.unsub_requests.clone(),
                ClientError::UnsubscribeTimeout,
            )
        };
        let req = pb::UnsubscribeRequest {
            client_id: inner.client_id.clone(),
            subject: channel,
            inbox: target.ack_inbox.to_string(),
            durable_name,
        };
        let reply = inner
            .request(subject, req.encode_to_vec(), on_timeout)
            .await?;
        let resp = pb::SubscriptionResponse::decode(reply.payload)?;
        if resp.error.is_empty() {
            Ok(())
        } else {
            Err(ClientError::Server(resp.error))
        }
    }

    /// The server's ack inbox of this subscription.
    pub fn ack_inbox(&self) -> &str {
        &self.target.ack_inbox
    }

    /// The delivery inbox this client subscribed.
    pub fn inbox(&self) -> &str {
        &self.inbox
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The connection this subscription belongs to.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fields() {
        let opts = SubscriptionOptions {
            queue_group: Some("q".into()),
            durable_name: Some("d".into()),
            max_in_flight: 7,
            ack_wait: Duration::from_millis(2_900),
            start: StartAt::Sequence(5),
            manual_acks: true,
        };
        let req = opts.request("c1", "foo", "_INBOX.x");
        assert_eq!(req.client_id, "c1");
        assert_eq!(req.subject, "foo");
        assert_eq!(req.q_group, "q");
        assert_eq!(req.inbox, "_INBOX.x");
        assert_eq!(req.max_in_flight, 7);
        assert_eq!(req.ack_wait_in_secs, 2);
        assert_eq!(req.durable_name, "d");
        assert_eq!(
            req.start_position,
            i32::from(pb::StartPosition::SequenceStart)
        );
        assert_eq!(req.start_sequence, 5);
        assert_eq!(req.start_time_delta, 0);
    }

    #[test]
    fn start_positions() {
        let req = |start| {
            SubscriptionOptions {
                start,
                ..Default::default()
            }
            .request("c", "ch", "i")
        };
        let r = req(StartAt::TimeDelta(Duration::from_millis(1500)));
        assert_eq!(
            r.start_position,
            i32::from(pb::StartPosition::TimeDeltaStart)
        );
        assert_eq!(r.start_time_delta, 1_500_000_000);
        let r = req(StartAt::Time(SystemTime::now() - Duration::from_secs(60)));
        assert!((60_000_000_000..61_000_000_000).contains(&r.start_time_delta));
        assert_eq!(
            req(StartAt::First).start_position,
            i32::from(pb::StartPosition::First)
        );
        assert_eq!(
            req(StartAt::LastReceived).start_position,
            i32::from(pb::StartPosition::LastReceived)
        );
        let r = req(StartAt::NewOnly);
        assert_eq!(r.start_position, 0);
        assert_eq!(r.max_in_flight, 1024);
        assert_eq!(r.ack_wait_in_secs, 30);
        assert!(r.q_group.is_empty() && r.durable_name.is_empty());
        // Sub-second ack waits go out as 0, for the server to refuse.
        let r = SubscriptionOptions {
            ack_wait: Duration::from_millis(900),
            ..Default::default()
        }
        .request("c", "ch", "i");
        assert_eq!(r.ack_wait_in_secs, 0);
    }
}
