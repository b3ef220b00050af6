//! Outstanding publishes: the table of PubAck waiters keyed by guid, the
//! in-flight limit, the PubAck dispatcher task and the ack-timeout sweeper.
//!
//! Owns the waiter table (one `std::sync::Mutex`, never held across `.await`).
//! Publishers insert, the dispatcher and the sweeper remove; whoever removes a
//! waiter resolves it, so every publish is resolved exactly once. Called by
//! `connection.rs`; calls nothing but tokio and the wire decoder.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::wire;
use super::ClientError;

/// Length of a NUID, the form of every guid this client generates.
const GUID_LEN: usize = nuid::TOTAL_LEN;

/// How many PubAcks the dispatcher resolves under one lock of the table.
const ACK_BATCH: usize = 256;

/// The guid of one publish: a NUID, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid([u8; GUID_LEN]);

impl Guid {
    /// A fresh, globally unique guid.
    pub(crate) fn next() -> Guid {
        Guid(nuid::next().into_bytes())
    }

    /// The guid as sent in `PubMsg.guid` and echoed in `PubAck.guid`.
    pub fn as_str(&self) -> &str {
        // A NUID is base-62 ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The guid's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guid({})", self.as_str())
    }
}

/// Resolves when the PubAck of one [`super::Connection::publish_async`] arrives,
/// with the publish's guid and `Ok(())`, the server's error
/// ([`ClientError::Server`]), [`ClientError::PubAckTimeout`] after
/// `pub_ack_wait`, or the reason the connection ended.
///
/// Dropping it does not cancel the publish; its in-flight slot is freed when
/// the ack arrives or times out.
#[must_use = "the PubAck result is only seen by awaiting this future"]
pub struct PubAckFuture {
    guid: Guid,
    rx: oneshot::Receiver<Result<(), ClientError>>,
}

impl PubAckFuture {
    /// The guid of the publish this future waits for.
    pub fn guid(&self) -> Guid {
        self.guid
    }
}

impl Future for PubAckFuture {
    type Output = (Guid, Result<(), ClientError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let guid = self.guid;
        self.rx.poll_unpin(cx).map(|res| {
            // A dropped sender means the table was torn down without an answer.
            (guid, res.unwrap_or(Err(ClientError::ConnectionClosed)))
        })
    }
}

/// Why the table stopped accepting publishes.
#[derive(Clone, Debug)]
pub(crate) enum Ended {
    /// Closed by the application (or every handle dropped).
    Closed,
    /// Declared lost, with the text every waiter gets.
    Lost(String),
}

impl Ended {
    pub(crate) fn error(&self) -> ClientError {
        match self {
            Ended::Closed => ClientError::ConnectionClosed,
            Ended::Lost(text) => ClientError::ConnectionLost(text.clone()),
        }
    }
}

/// One publish awaiting its PubAck.
struct Waiter {
    tx: oneshot::Sender<Result<(), ClientError>>,
    /// The in-flight slot, given back when the waiter is removed.
    _slot: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Table {
    /// Set once; afterwards nothing is inserted and every waiter was failed.
    ended: Option<Ended>,
    waiters: HashMap<Guid, Waiter>,
    /// Deadlines in publish order. `pub_ack_wait` is fixed, so this is sorted;
    /// entries whose guid was already acked are skipped lazily.
    deadlines: VecDeque<(Instant, Guid)>,
}

impl Table {
    /// Drops leading deadline entries of already-resolved publishes.
    fn trim(&mut self) {
        while let Some((_, guid)) = self.deadlines.front() {
            if self.waiters.contains_key(guid) {
                break;
            }
            self.deadlines.pop_front();
        }
    }
}

/// The PubAck waiter table of one connection.
pub(crate) struct PubAcks {
    /// Never held across `.await`.
    table: Mutex<Table>,
    /// Bounds outstanding publishes to `max_pub_acks_inflight`; publishers
    /// wait here when it is exhausted. Closed when the connection ends.
    slots: Arc<Semaphore>,
    /// Wakes the sweeper when a deadline is queued into an empty queue.
    armed: Notify,
    /// `pub_ack_wait`.
    wait: Duration,
}

impl PubAcks {
    pub(crate) fn new(max_inflight: usize, wait: Duration) -> PubAcks {
        PubAcks {
            table: Mutex::default(),
            slots: Arc::new(Semaphore::new(
                max_inflight.clamp(1, Semaphore::MAX_PERMITS),
            )),
            armed: Notify::new(),
            wait,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for an in-flight slot, then registers a waiter for a new guid.
    /// The caller publishes afterwards, so the ack cannot beat the waiter.
    pub(crate) async fn register(&self) -> Result<PubAckFuture, ClientError> {
        let slot = match self.slots.clone().acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => return Err(self.ended_error()),
        };
        let guid = Guid::next();
        let (tx, rx) = oneshot::channel();
        let mut table = self.lock();
        if let Some(ended) = &table.ended {
            return Err(ended.error());
        }
        let was_idle = table.deadlines.is_empty();
        table
            .deadlines
            .push_back((Instant::now() + self.wait, guid));
        table.waiters.insert(guid, Waiter { tx, _slot: slot });
        drop(table);
        if was_idle {
            self.armed.notify_one();
        }
        Ok(PubAckFuture { guid, rx })
    }

    /// Forgets a waiter whose PubMsg could not be sent.
    pub(crate) fn forget(&self, guid: Guid) {
        let removed = self.lock().waiters.remove(&guid);
        drop(removed);
    }

    fn ended_error(&self) -> ClientError {
        self.lock()
            .ended
            .as_ref()
            .map_or(ClientError::ConnectionClosed, Ended::error)
    }

    /// Stops accepting publishes and fails every outstanding one with `why`.
    pub(crate) fn end(&self, why: Ended) {
        let waiters = {
            let mut table = self.lock();
            if table.ended.is_some() {
                return;
            }
            table.ended = Some(why.clone());
            table.deadlines.clear();
            std::mem::take(&mut table.waiters)
        };
        self.slots.close();
        for (_, waiter) in waiters {
            let _ = waiter.tx.send(Err(why.error()));
        }
    }

    /// Resolves the waiters of a batch of PubAck payloads under one lock.
    fn resolve(
        &self,
        acks: &[async_nats::Message],
        done: &mut Vec<(Waiter, Result<(), ClientError>)>,
    ) {
        let mut table = self.lock();
        for msg in acks {
            let Some(ack) = wire::decode_pub_ack(&msg.payload) else {
                tracing::debug!(
                    len = msg.payload.len(),
                    "stan client: undecodable PubAck ignored"
                );
                continue;
            };
            let Ok(key) = <[u8; GUID_LEN]>::try_from(ack.guid) else {
                continue;
            };
            if let Some(waiter) = table.waiters.remove(&Guid(key)) {
                let result = if ack.error.is_empty() {
                    Ok(())
                } else {
                    Err(ClientError::Server(
                        String::from_utf8_lossy(ack.error).into_owned(),
                    ))
                };
                done.push((waiter, result));
            }
        }
        table.trim();
    }

    /// Removes the waiters whose deadline passed, and returns the next deadline.
    fn expire(&self, now: Instant, expired: &mut Vec<Waiter>) -> Option<Instant> {
        let mut table = self.lock();
        table.trim();
        while let Some(&(deadline, guid)) = table.deadlines.front() {
            if deadline > now {
                return Some(deadline);
            }
            table.deadlines.pop_front();
            if let Some(waiter) = table.waiters.remove(&guid) {
                expired.push(waiter);
            }
            table.trim();
        }
        None
    }
}

/// Reads PubAcks from the connection's ack subject and resolves their
/// waiters, in batches, until the connection ends.
pub(crate) async fn dispatch_acks(
    acks: Arc<PubAcks>,
    mut sub: async_nats::Subscriber,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(ACK_BATCH);
    let mut done = Vec::with_capacity(ACK_BATCH);
    loop {
        let first = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            msg = sub.next() => match msg {
                Some(msg) => msg,
                None => return,
            },
        };
        batch.push(first);
        // Take whatever else is already buffered, without waiting.
        while batch.len() < ACK_BATCH {
            match sub.next().now_or_never() {
                Some(Some(msg)) => batch.push(msg),
                _ => break,
            }
        }
        acks.resolve(&batch, &mut done);
        batch.clear();
        // Resolve outside the lock; dropping each waiter frees its slot.
        for (waiter, result) in done.drain(..) {
            let _ = waiter.tx.send(result);
        }
    }
}

/// Fails publishes whose PubAck did not arrive within `pub_ack_wait`.
pub(crate) async fn sweep_timeouts(acks: Arc<PubAcks>, cancel: CancellationToken) {
    let mut expired = Vec::new();
    loop {
        let next = acks.expire(Instant::now(), &mut expired);
        for waiter in expired.drain(..) {
            let _ = waiter.tx.send(Err(ClientError::PubAckTimeout));
        }
        match next {
            Some(deadline) => tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => {}
            },
            None => tokio::select! {
                _ = cancel.cancelled() => return,
                _ = acks.armed.notified() => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_bound_inflight_and_timeouts_free_them() {
        let acks = Arc::new(PubAcks::new(2, Duration::from_secs(30)));
        let cancel = CancellationToken::new();
        let sweeper = tokio::spawn(sweep_timeouts(acks.clone(), cancel.clone()));
        let a = acks.register().await.unwrap();
        let _b = acks.register().await.unwrap();
        assert!(
            acks.register().now_or_never().is_none(),
            "third must wait for a slot"
        );
        let (guid, res) = a.await;
        assert!(
            matches!(res, Err(ClientError::PubAckTimeout)),
            "{guid}: {res:?}"
        );
        // Both timed out together, so two slots are free again.
        let c = acks.register().await.unwrap();
        let _d = acks.register().await.unwrap();
        acks.end(Ended::Lost("gone".into()));
        assert!(matches!(c.await.1, Err(ClientError::ConnectionLost(t)) if t == "gone"));
        assert!(matches!(
            acks.register().await,
            Err(ClientError::ConnectionLost(_))
        ));
        cancel.cancel();
        sweeper.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn later_deadlines_follow_earlier_ones() {
        let acks = Arc::new(PubAcks::new(16, Duration::from_secs(10)));
        let cancel = CancellationToken::new();
        let sweeper = tokio::spawn(sweep_timeouts(acks.clone(), cancel.clone()));
        let first = acks.register().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let second = acks.register().await.unwrap();
        let start = Instant::now();
        assert!(first.await.1.is_err());
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        assert!(second.await.1.is_err());
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        cancel.cancel();
        sweeper.await.unwrap();
    }
}
