//! Store failures, injected into a real engine (in process, over a memory
//! store wrapped to fail on demand) serving a real nats-server: a failed
//! fsync is reported and the channel keeps working; a failed read delays a
//! delivery but never skips or drops a message.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use stanchion::config::Config;
use stanchion::protocol::pb::MsgProto;
use stanchion::store::{
    ChannelState, ChannelStore, ClientInfo, MemoryStore, RecoveredSub, Result, ServerInfo, Store,
    StoreError, SubUpdate,
};

/// Failures still to inject.
#[derive(Default)]
struct Faults {
    flushes: AtomicUsize,
    reads: AtomicUsize,
}

impl Faults {
    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn injected() -> StoreError {
    StoreError::Sled(sled::Error::Io(std::io::Error::other("injected fault")))
}

struct FaultyStore {
    inner: MemoryStore,
    faults: Arc<Faults>,
}

struct FaultyChannel {
    inner: Arc<dyn ChannelStore>,
    faults: Arc<Faults>,
}

impl Store for FaultyStore {
    fn server_info(&self) -> Result<Option<ServerInfo>> {
        self.inner.server_info()
    }
    fn set_server_info(&self, info: &ServerInfo) -> Result<()> {
        self.inner.set_server_info(info)
    }
    fn clients(&self) -> Result<Vec<ClientInfo>> {
        self.inner.clients()
    }
    fn put_client(&self, client: &ClientInfo) -> Result<()> {
        self.inner.put_client(client)
    }
    fn delete_client(&self, id: &str) -> Result<()> {
        self.inner.delete_client(id)
    }
    fn channel_names(&self) -> Result<Vec<String>> {
        self.inner.channel_names()
    }
    fn open_channel(&self, name: &str) -> Result<Arc<dyn ChannelStore>> {
        Ok(Arc::new(FaultyChannel {
            inner: self.inner.open_channel(name)?,
            faults: self.faults.clone(),
        }))
    }
    fn delete_channel(&self, name: &str) -> Result<()> {
        self.inner.delete_channel(name)
    }
    fn flush(&self) -> Result<()> {
        if Faults::take(&self.faults.flushes) {
            return Err(injected());
        }
        self.inner.flush()
    }
}

impl ChannelStore for FaultyChannel {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn state(&self) -> ChannelState {
        self.inner.state()
    }
    fn commit(&self) -> Result<()> {
        if Faults::take(&self.faults.flushes) {
            return Err(injected());
        }
        self.inner.commit()
    }
    fn append(&self, msgs: &[MsgProto]) -> Result<()> {
        self.inner.append(msgs)
    }
    fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        self.inner.get(seq)
    }
    fn range(&self, from: u64, max: usize) -> Result<Vec<MsgProto>> {
        if Faults::take(&self.faults.reads) {
            return Err(injected());
        }
        self.inner.range(from, max)
    }
    fn first_seq_at_or_after(&self, timestamp: i64) -> Result<Option<u64>> {
        self.inner.first_seq_at_or_after(timestamp)
    }
    fn remove_through(&self, seq: u64) -> Result<()> {
        self.inner.remove_through(seq)
    }
    fn start_after(&self, last: u64) -> Result<()> {
        self.inner.start_after(last)
    }
    fn subs(&self) -> Result<Vec<RecoveredSub>> {
        self.inner.subs()
    }
    fn apply_subs(&self, updates: &[SubUpdate]) -> Result<()> {
        self.inner.apply_subs(updates)
    }
}

/// Runs the engine in this process over a faulty memory store.
async fn serve(nats: &Nats) -> (Arc<Faults>, tokio::sync::oneshot::Sender<()>) {
    let faults = Arc::new(Faults::default());
    let store = Arc::new(FaultyStore {
        inner: MemoryStore::new(),
        faults: faults.clone(),
    });
    let config = Config {
        nats_server: nats.url(),
        ..Config::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(stanchion::server::run_with_store(config, store, async {
        let _ = stopped.await;
    }));
    (faults, stop)
}

async fn connect(nats: &Nats, id: &str) -> stanchion::client::Connection {
    // The engine starts in the background: retry the connect until it answers.
    tokio::time::timeout(WAIT, async {
        loop {
            let mut opts = stanchion::client::Options::new("test-cluster", id);
            opts.connect_wait = Duration::from_millis(500);
            if let Ok(c) = stanchion::client::Connection::connect(nats.client().await, opts).await {
                return c;
            }
        }
    })
    .await
    .expect("engine answers connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_is_reported_and_the_channel_keeps_working() {
    let nats = Nats::start();
    let (faults, _stop) = serve(&nats).await;
    let c = connect(&nats, "c").await;
    c.publish("foo", "before").await.unwrap();
    faults.flushes.store(1, Ordering::SeqCst);
    let err = c.publish("foo", "unsure").await.unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    // The next publishes are stored and acknowledged, in sequence.
    c.publish("foo", "after")
        .await
        .expect("the channel is not wedged");
    let mut sub = c.subscribe("foo", first()).await.unwrap();
    let seqs = next_seqs(&mut sub, 3).await;
    assert_eq!(
        seqs,
        vec![1, 2, 3],
        "the unacknowledged one may survive (at-least-once)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_delays_delivery_but_skips_nothing() {
    let nats = Nats::start();
    let (faults, _stop) = serve(&nats).await;
    let c = connect(&nats, "c").await;
    // More than the in-memory cache holds, so the subscription reads the store.
    let body = "x".repeat(600);
    for _ in 0..1200 {
        c.publish("foo", body.clone()).await.unwrap();
    }
    faults.reads.store(2, Ordering::SeqCst);
    let mut sub = c.subscribe("foo", first()).await.unwrap();
    let seqs = next_seqs(&mut sub, 1200).await;
    assert_eq!(seqs, (1..=1200).collect::<Vec<_>>());
    assert_eq!(
        faults.reads.load(Ordering::SeqCst),
        0,
        "the faults were hit"
    );
}
