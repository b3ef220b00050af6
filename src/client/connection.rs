//! One STAN connection: connect, publish, close, and the background tasks
//! that keep it alive (heartbeat replies, client pings).
//!
//! Owns the connection's shared state (`Inner`): server subjects, the closed
//! flag and the lost-connection watch. Outstanding publishes live in
//! `publish.rs`, subscriptions in `subscription.rs`. Every background task is
//! tracked and stops on the connection's cancellation token, which is
//! cancelled by `close`, by a lost connection, or when the last handle
//! (Connection or Subscription) is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use async_nats::{Client, StatusCode, Subject};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message as _;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use super::publish::{self, Ended, PubAckFuture, PubAcks};
use super::{wire, ClientError, Options, ACK_PREFIX, PING_FAILURE};
use crate::protocol::{pb, PROTOCOL_VERSION};

/// Publish subjects (`<pubPrefix>.<channel>`) remembered per connection, so a
/// publish to a known channel builds no string. Beyond this many channels,
/// subjects are built per publish.
const PUBLISH_SUBJECT_CACHE: usize = 4096;

/// The subjects the server handed out in its ConnectResponse.
pub(super) struct ServerSubjects {
    pub_prefix: String,
    pub(super) sub_requests: Subject,
    pub(super) unsub_requests: Subject,
    /// Empty for (very old) servers without subscription close.
    pub(super) sub_close_requests: Option<Subject>,
    close_requests: Subject,
}

/// State shared by every handle, subscription and task of one connection.
pub(super) struct Inner {
    pub(super) nats: Client,
    pub(super) client_id: String,
    conn_id: Bytes,
    pub(super) subjects: ServerSubjects,
    /// `_STAN.acks.<nuid>`: reply subject of every PubMsg.
    ack_subject: Subject,
    /// Timeout of subscribe/unsubscribe/close requests.
    connect_wait: Duration,
    acks: Arc<PubAcks>,
    /// Channel → publish subject. Never held across `.await`.
    publish_subjects: Mutex<HashMap<String, Subject>>,
    /// Set once by `close` or when the connection is lost; no new operations after.
    closed: AtomicBool,
    /// `Some(reason)` once the connection was declared lost.
    lost: watch::Sender<Option<String>>,
    /// Whether server heartbeats are answered (tests turn it off).
    heartbeat_replies: AtomicBool,
    /// Stops every background task and ends every subscription.
    pub(super) cancel: CancellationToken,
    tasks: TaskTracker,
}

/// A STAN connection. Cheap to clone; all clones share one connection.
///
/// Dropping every clone (and every [`super::Subscription`]) without calling
/// [`Connection::close`] stops the background tasks without telling the
/// server, like a crashed client: the server drops it after missed heartbeats.
#[derive(Clone)]
pub struct Connection {
    pub(super) inner: Arc<Inner>,
    /// Cancels the tasks when the last handle goes; tasks hold only `inner`.
    _handles: Arc<DropGuard>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client_id", &self.inner.client_id)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// Sends a request with `timeout`; a timeout or "no responders" becomes `on_timeout`.
async fn request(
    nats: &Client,
    subject: Subject,
    payload: Vec<u8>,
    timeout: Duration,
    on_timeout: ClientError,
) -> Result<async_nats::Message, ClientError> {
    let req = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(timeout));
    nats.send_request(subject, req)
        .await
        .map_err(|err| match err.kind() {
            RequestErrorKind::TimedOut | RequestErrorKind::NoResponders => on_timeout,
            _ => ClientError::nats(err),
        })
}

impl Connection {
    /// Opens a STAN connection over an existing NATS client.
    ///
    /// Subscribes the heartbeat and ping inboxes, sends the ConnectRequest
    /// (protocol 1, a fresh NUID as connection ID) and waits `connect_wait`
    /// for the ConnectResponse; then subscribes the PubAck subject and starts
    /// pinging if the server asked for it.
    ///
    /// # Errors
    /// [`ClientError::ConnectTimeout`] if no server answered,
    /// [`ClientError::Server`] with the server's text if it refused,
    /// [`ClientError::Nats`] / [`ClientError::Decode`] otherwise.
    pub async fn connect(nats: Client, opts: Options) -> Result<Connection, ClientError> {
        let hb_inbox = nats.new_inbox();
        let hb_sub = nats
            .subscribe(hb_inbox.clone())
            .await
            .map_err(ClientError::nats)?;
        let ping_inbox = Subject::from(nats.new_inbox());
        let ping_sub = nats
            .subscribe(ping_inbox.clone())
            .await
            .map_err(ClientError::nats)?;
        let conn_id = Bytes::copy_from_slice(nuid::next().as_str().as_bytes());

        let req = pb::ConnectRequest {
            client_id: opts.client_id.clone(),
            heartbeat_inbox: hb_inbox,
            protocol: PROTOCOL_VERSION,
            conn_id: conn_id.clone(),
            ping_interval: opts.ping_interval,
            ping_max_out: opts.ping_max_out,
        };
        let discover = Subject::from(format!("{}.{}", opts.discover_prefix, opts.cluster_id));
        let reply = request(
            &nats,
            discover,
            req.encode_to_vec(),
            opts.connect_wait,
            ClientError::ConnectTimeout,
        )
        .await?;
        let resp = pb::ConnectResponse::decode(reply.payload)?;
        if !resp.error.is_empty() {
            return Err(ClientError::Server(resp.error));
        }

        let ack_subject = Subject::from(format!("{ACK_PREFIX}.{}", nuid::next()));
        let ack_sub = nats
            .subscribe(ack_subject.clone())
            .await
            .map_err(ClientError::nats)?;

        let cancel = CancellationToken::new();
        let inner = Arc::new(Inner {
            nats,
            client_id: opts.client_id,
            conn_id,
            subjects: ServerSubjects {
                pub_prefix: resp.pub_prefix,
                sub_requests: resp.sub_requests.into(),
                unsub_requests: resp.unsub_requests.into(),
                sub_close_requests: (!resp.sub_close_requests.is_empty())
                    .then(|| resp.sub_close_requests.into()),
                close_requests: resp.close_requests.into(),
            },
            ack_subject,
            connect_wait: opts.connect_wait,
            acks: Arc::new(PubAcks::new(opts.max_pub_acks_inflight, opts.pub_ack_wait)),
            publish_subjects: Mutex::default(),
            closed: AtomicBool::new(false),
            lost: watch::Sender::new(None),
            heartbeat_replies: AtomicBool::new(true),
            cancel: cancel.clone(),
            tasks: TaskTracker::new(),
        });

        let tasks = &inner.tasks;
        tasks.spawn(answer_heartbeats(inner.clone(), hb_sub));
        tasks.spawn(publish::dispatch_acks(
            inner.acks.clone(),
            ack_sub,
            cancel.clone(),
        ));
        tasks.spawn(publish::sweep_timeouts(inner.acks.clone(), cancel.clone()));
        let period = opts.ping_period_override.or_else(|| {
            u64::try_from(resp.ping_interval)
                .ok()
                .filter(|&secs| secs > 0)
                .map(Duration::from_secs)
        });
        match period {
            Some(period) if resp.protocol >= 1 && resp.ping_interval != 0 => {
                let pinger = Pinger {
                    requests: resp.ping_requests.into(),
                    inbox: ping_inbox,
                    payload: pb::Ping {
                        conn_id: inner.conn_id.clone(),
                    }
                    .encode_to_vec()
                    .into(),
                    period,
                    max_out: resp.ping_max_out,
                };
                tasks.spawn(pinger.run(inner.clone(), ping_sub));
            }
            _ => drop(ping_sub),
        }
        Ok(Connection {
            inner,
            _handles: Arc::new(cancel.drop_guard()),
        })
    }

    /// Publishes `data` to `channel` and waits for the server's PubAck.
    ///
    /// # Errors
    /// [`ClientError::Server`] with the PubAck's error (the message was not
    /// stored), [`ClientError::PubAckTimeout`], or why the connection ended.
    pub async fn publish(&self, channel: &str, data: impl Into<Bytes>) -> Result<(), ClientError> {
        self.publish_async(channel, data).await?.await.1
    }

    /// Publishes `data` to `channel` without waiting for the PubAck: returns
    /// once the PubMsg is handed to the NATS client, with a future of the
    /// PubAck. Waits first while `max_pub_acks_inflight` publishes are
    /// unacknowledged.
    ///
    /// # Errors
    /// [`ClientError::ConnectionClosed`] (or `ConnectionLost`) if the
    /// connection ended, [`ClientError::Nats`] if the NATS client refused the
    /// message (e.g. larger than max_payload).
    pub async fn publish_async(
        &self,
        channel: &str,
        data: impl Into<Bytes>,
    ) -> Result<PubAckFuture, ClientError> {
        let inner = &*self.inner;
        if inner.is_closed() {
            return Err(ClientError::ConnectionClosed);
        }
        let data = data.into();
        let ack = inner.acks.register().await?;
        let guid = ack.guid();
        let payload = wire::encode_pub_msg(
            &inner.client_id,
            guid.as_bytes(),
            channel,
            &data,
            &inner.conn_id,
        );
        let subject = inner.publish_subject(channel);
        if let Err(err) = inner
            .nats
            .publish_with_reply(subject, inner.ack_subject.clone(), payload)
            .await
        {
            inner.acks.forget(guid);
            return Err(ClientError::nats(err));
        }
        Ok(ack)
    }

    /// Closes the connection: sends a CloseRequest{clientID} and waits
    /// `connect_wait` for the answer, then fails outstanding publishes with
    /// [`ClientError::ConnectionClosed`], ends every subscription and stops
    /// the background tasks (in every case). Closing again does nothing.
    ///
    /// # Errors
    /// [`ClientError::CloseTimeout`], or [`ClientError::Server`] with the
    /// server's CloseResponse error.
    pub async fn close(&self) -> Result<(), ClientError> {
        let inner = &*self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let req = pb::CloseRequest {
            client_id: inner.client_id.clone(),
        };
        let result = async {
            let reply = inner
                .request(
                    inner.subjects.close_requests.clone(),
                    req.encode_to_vec(),
                    ClientError::CloseTimeout,
                )
                .await?;
            let resp = pb::CloseResponse::decode(reply.payload)?;
            if resp.error.is_empty() {
                Ok(())
            } else {
                Err(ClientError::Server(resp.error))
            }
        }
        .await;
        inner.shutdown(Ended::Closed);
        inner.tasks.close();
        inner.tasks.wait().await;
        result
    }

    /// The client ID this connection registered.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The connection ID (a NUID, 22 ASCII bytes) sent in ConnectRequest,
    /// PubMsg and Ping; the server tells connection instances apart by it.
    pub fn conn_id(&self) -> &[u8] {
        &self.inner.conn_id
    }

    /// The NATS client underneath (shared, not owned: close does not close it).
    pub fn nats(&self) -> &Client {
        &self.inner.nats
    }

    /// Whether the connection was closed or lost.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Watches for the connection being declared lost: the value becomes
    /// `Some(reason)` when a ping reply says the client was replaced (the
    /// server's text) or pings went unanswered past `ping_max_out`
    /// ([`PING_FAILURE`]). A lost connection is closed; a normal close
    /// leaves it `None`.
    pub fn connection_lost(&self) -> watch::Receiver<Option<String>> {
        self.inner.lost.subscribe()
    }

    /// Turns answering server heartbeats on or off. Off simulates a hung
    /// client, so tests can watch the server expire or replace it.
    pub fn set_heartbeat_replies(&self, on: bool) {
        self.inner.heartbeat_replies.store(on, Ordering::Relaxed);
    }
}

impl Inner {
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A request with `connect_wait` as timeout.
    pub(super) async fn request(
        &self,
        subject: Subject,
        payload: Vec<u8>,
        on_timeout: ClientError,
    ) -> Result<async_nats::Message, ClientError> {
        request(&self.nats, subject, payload, self.connect_wait, on_timeout).await
    }

    /// `<pubPrefix>.<channel>`, from the cache when possible.
    fn publish_subject(&self, channel: &str) -> Subject {
        let lock = || {
            self.publish_subjects
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(subject) = lock().get(channel) {
            return subject.clone();
        }
        let subject = Subject::from(format!("{}.{channel}", self.subjects.pub_prefix));
        let mut cache = lock();
        if cache.len() < PUBLISH_SUBJECT_CACHE {
            cache.insert(channel.to_owned(), subject.clone());
        }
        subject
    }

    /// Fails outstanding publishes and stops every task and subscription.
    fn shutdown(&self, why: Ended) {
        self.acks.end(why);
        self.cancel.cancel();
    }

    /// Declares the connection lost with `reason` (unless already closed).
    fn lose(&self, reason: String) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(client_id = %self.client_id, %reason, "stan client: connection lost");
        self.lost.send_replace(Some(reason.clone()));
        self.shutdown(Ended::Lost(reason));
        self.tasks.close();
    }
}

/// Answers each server heartbeat (an empty request on the heartbeat inbox)
/// with an empty reply, unless replies are turned off.
async fn answer_heartbeats(inner: Arc<Inner>, mut sub: async_nats::Subscriber) {
    loop {
        let msg = tokio::select! {
            biased;
            _ = inner.cancel.cancelled() => return,
            msg = sub.next() => match msg {
                Some(msg) => msg,
                None => return,
            },
        };
        let Some(reply) = msg.reply else { continue };
        if !inner.heartbeat_replies.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(err) = inner.nats.publish(reply, Bytes::new()).await {
            tracing::debug!(%err, "stan client: heartbeat reply failed");
        }
    }
}

/// The client side of protocol-1 liveness: a Ping every `period`, and the
/// count of pings without a reply.
struct Pinger {
    /// The server's `pingRequests` subject.
    requests: Subject,
    /// Where PingResponses come back.
    inbox: Subject,
    /// The encoded `Ping{connID}`, the same for every ping.
    payload: Bytes,
    period: Duration,
    /// The server's echoed `pingMaxOut`.
    max_out: i32,
}

impl Pinger {
    async fn run(self, inner: Arc<Inner>, mut responses: async_nats::Subscriber) {
        let start = tokio::time::Instant::now() + self.period;
        let mut ticks = tokio::time::interval_at(start, self.period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut out = 0i32;
        loop {
            tokio::select! {
                biased;
                _ = inner.cancel.cancelled() => return,
                // Answers first: one that arrived with a tick still counts.
                msg = responses.next() => {
                    let Some(msg) = msg else { return };
                    // "No responders" (503) and other statuses are not answers.
                    if msg.status.is_some_and(|s| s != StatusCode::OK) {
                        continue;
                    }
                    if !msg.payload.is_empty() {
                        match pb::PingResponse::decode(msg.payload) {
                            Ok(resp) if !resp.error.is_empty() => {
                                inner.lose(resp.error);
                                return;
                            }
                            Ok(_) => {}
                            Err(err) => {
                                tracing::debug!(%err, "stan client: undecodable ping response");
                                continue;
                            }
                        }
                    }
                    out = 0;
                }
                _ = ticks.tick() => {
                    out = out.saturating_add(1);
                    if out > self.max_out {
                        inner.lose(PING_FAILURE.to_string());
                        return;
                    }
                    let sent = inner
                        .nats
                        .publish_with_reply(self.requests.clone(), self.inbox.clone(), self.payload.clone())
                        .await;
                    if let Err(err) = sent {
                        tracing::debug!(%err, "stan client: ping not sent");
                    }
                }
            }
        }
    }
}
