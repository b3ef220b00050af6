//! Group commit: many channels ask for durability, one sync answers them
//! all. While a sync runs, new requests queue and share the next one.
//! Subscriptions, clients and removals ask for a full flush, which also
//! flushes sled. Publishes commit in place instead ([`Committer::commit_now`]:
//! the fdatasync of the channel's segment files, on the blocking thread
//! that wrote them). That saves two wake-ups per batch, and a busy channel's
//! sync never holds up another channel's commit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::view::{Stats, FLUSH_BUCKETS};
use crate::store::{ChannelStore, Store};

/// How many flush requests may wait; senders wait (backpressure) when full.
const FLUSH_QUEUE: usize = 4096;

/// Where a flush request is answered.
type Waiter = oneshot::Sender<Result<(), String>>;

/// With fsync off, how often the store is flushed in the background: what a
/// machine crash can lose (a crash of stanchion alone loses nothing).
const AUTO_SYNC: std::time::Duration = std::time::Duration::from_secs(1);

/// A handle to the committer task. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    /// Where flush requests go.
    tx: mpsc::Sender<Waiter>,
    /// Where commit times are counted.
    stats: Arc<Stats>,
    /// fsync before acknowledging; when off, `flush` returns at once and the
    /// store is flushed every [`AUTO_SYNC`] instead.
    sync: bool,
}

impl Committer {
    /// Starts the committer for `store`; with `sync` off it flushes on a timer.
    /// It stops once every handle is dropped, after answering what was queued.
    pub fn start(
        store: Arc<dyn Store>,
        sync: bool,
        stats: Arc<Stats>,
        tasks: &TaskTracker,
    ) -> Committer {
        let (tx, rx) = mpsc::channel(FLUSH_QUEUE);
        if sync {
            tasks.spawn(run(store, stats.clone(), rx));
        } else {
            tasks.spawn(auto_sync(store, stats.clone(), rx));
        }
        Committer { tx, stats, sync }
    }

    /// Makes every message appended to `channel` so far durable, on the
    /// calling thread (a blocking one: this waits for the disk); at once
    /// when fsync is off.
    ///
    /// # Errors
    /// The store's error text.
    pub fn commit_now(&self, channel: &dyn ChannelStore) -> Result<(), String> {
        if !self.sync {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let result = channel.commit().map_err(|e| e.to_string());
        self.stats
            .flush_seconds
            .observe(&FLUSH_BUCKETS, started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::error!(error = %e, "store commit failed");
        }
        result
    }

    /// Waits until every store write made before this call is durable
    /// (at once when fsync is off).
    ///
    /// # Errors
    /// The store's flush error text, or a note that the committer stopped.
    pub async fn flush(&self) -> Result<(), String> {
        if !self.sync {
            return Ok(());
        }
        let tx = &self.tx;
        let (done, wait) = oneshot::channel();
        tx.send(done)
            .await
            .map_err(|_| "store committer stopped".to_string())?;
        wait.await
            .map_err(|_| "store committer stopped".to_string())?
    }
}

/// Flushes the store on the blocking pool, timing it for the monitor.
async fn timed_flush(store: &Arc<dyn Store>, stats: &Stats) -> Result<(), String> {
    let store = store.clone();
    let started = std::time::Instant::now();
    let result = super::blocking(move || store.flush()).await;
    stats
        .flush_seconds
        .observe(&FLUSH_BUCKETS, started.elapsed().as_secs_f64());
    result
}

async fn run(store: Arc<dyn Store>, stats: Arc<Stats>, mut rx: mpsc::Receiver<Waiter>) {
    let mut waiters = Vec::new();
    loop {
        if rx.recv_many(&mut waiters, FLUSH_QUEUE).await == 0 {
            break;
        }
        let result = timed_flush(&store, &stats).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "store flush failed");
        }
        for w in waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }
}

/// With fsync off: flush the store every [`AUTO_SYNC`] until every handle is gone.
async fn auto_sync(store: Arc<dyn Store>, stats: Arc<Stats>, mut rx: mpsc::Receiver<Waiter>) {
    let mut tick = tokio::time::interval(AUTO_SYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            msg = rx.recv() => match msg {
                // Nobody sends with fsync off; a closed channel means stop.
                Some(_) => continue,
                None => return,
            },
        }
        if let Err(e) = timed_flush(&store, &stats).await {
            tracing::error!(error = %e, "background store flush failed");
        }
    }
}
