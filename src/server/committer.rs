//! Group commit: many channels ask for a durable flush, one fsync answers
//! them all. While a flush runs, new requests queue and share the next one.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::store::Store;

/// How many flush requests may wait; senders wait (backpressure) when full.
const FLUSH_QUEUE: usize = 4096;

type Waiter = oneshot::Sender<Result<(), String>>;

/// A handle to the committer task. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    /// `None` when fsync is off: flushes then return at once and sled's
    /// background flush makes writes durable within its interval.
    tx: Option<mpsc::Sender<Waiter>>,
}

impl Committer {
    /// Starts the committer for `store`; with `sync` off it never fsyncs.
    /// It stops once every handle is dropped, after answering what was queued.
    pub fn start(store: Arc<dyn Store>, sync: bool, tasks: &TaskTracker) -> Committer {
        if !sync {
            return Committer { tx: None };
        }
        let (tx, rx) = mpsc::channel(FLUSH_QUEUE);
        tasks.spawn(run(store, rx));
        Committer { tx: Some(tx) }
    }

    /// Waits until every store write made before this call is durable.
    ///
    /// # Errors
    /// The store's flush error text, or a note that the committer stopped.
    pub async fn flush(&self) -> Result<(), String> {
        let Some(tx) = &self.tx else { return Ok(()) };
        let (done, wait) = oneshot::channel();
        tx.send(done)
            .await
            .map_err(|_| "store committer stopped".to_string())?;
        wait.await
            .map_err(|_| "store committer stopped".to_string())?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Waiter>) {
    let mut waiters = Vec::new();
    loop {
        if rx.recv_many(&mut waiters, FLUSH_QUEUE).await == 0 {
            break;
        }
        let store = store.clone();
        let result = super::blocking(move || store.flush()).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "store flush failed");
        }
        for w in waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }
}
