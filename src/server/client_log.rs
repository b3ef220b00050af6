//! Client records in the store, written in the order the dispatcher
//! decides them. A close followed by a reconnect with the same client ID
//! must leave the new record stored, so every put and delete goes through
//! one queue and one task; each batch ends with one durable flush.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::committer::Committer;
use crate::store::{ClientInfo, Store};

/// Client record changes waiting to be written; the dispatcher waits when full.
const QUEUE: usize = 4096;

/// One change to the stored clients.
pub enum ClientOp {
    /// Store (or replace) a client's record.
    Put(ClientInfo),
    /// Remove a client's record.
    Delete(String),
}

/// A handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct ClientLog {
    tx: mpsc::Sender<(ClientOp, oneshot::Sender<()>)>,
}

impl ClientLog {
    /// Starts the writer; it stops once every handle is dropped.
    pub fn start(store: Arc<dyn Store>, committer: Committer, tasks: &TaskTracker) -> ClientLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        tasks.spawn(run(store, committer, rx));
        ClientLog { tx }
    }

    /// Queues a change behind every earlier one; the receiver completes once
    /// it is durable (or has failed, which is logged).
    pub async fn submit(&self, op: ClientOp) -> oneshot::Receiver<()> {
        let (done, wait) = oneshot::channel();
        if self.tx.send((op, done)).await.is_err() {
            tracing::error!("client record writer stopped");
        }
        wait
    }
}

async fn run(
    store: Arc<dyn Store>,
    committer: Committer,
    mut rx: mpsc::Receiver<(ClientOp, oneshot::Sender<()>)>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, QUEUE).await > 0 {
        let (ops, dones): (Vec<ClientOp>, Vec<_>) = batch.drain(..).unzip();
        let store = store.clone();
        let mut result = super::blocking(move || {
            for op in &ops {
                match op {
                    ClientOp::Put(info) => store.put_client(info)?,
                    ClientOp::Delete(id) => store.delete_client(id)?,
                }
            }
            Ok(())
        })
        .await;
        if result.is_ok() {
            result = committer.flush().await;
        }
        if let Err(e) = result {
            tracing::error!(error = %e, "writing client records failed");
        }
        for done in dones {
            let _ = done.send(());
        }
    }
}
