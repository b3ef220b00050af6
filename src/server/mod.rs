//! The engine: joins nats-server, recovers state from the store, listens
//! on the STAN subjects and routes every request to its owner.
//!
//! Wiring only; each concern lives in its own room: `requests` (decode,
//! validate, route), `channel` + `delivery` + `subscribe` (one owner task
//! per channel), `clients` (registry), `committer` (group commit).

mod channel;
mod client_log;
mod clients;
mod clustered;
mod committer;
mod ctrl;
mod delivery;
pub mod ft;
mod idle;
mod limits;
mod liveness;
pub mod nats_connect;
mod partitions;
mod requests;
mod stats;
pub(crate) use requests::record_overhead;
mod subs;
mod subscribe;
pub mod view;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, StoreKind};
use crate::protocol::Subjects;
use crate::store::{
    refuse_if_encrypted, EncryptedStore, MemoryStore, ServerInfo, SledOptions, SledStore, Store,
    StoreError,
};

pub use clients::Clients;

/// Set by the signal handler itself (an atomic store is async-signal-safe),
/// before any task is woken: the dispatcher checks it before taking each
/// request, so a request that arrives together with SIGTERM loses the race.
static SIGNALLED: std::sync::LazyLock<Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The flag a process's SIGTERM/SIGINT handler sets (see `main`): once set,
/// no new request is taken, and readiness reports shutting down.
pub fn signal_flag() -> Arc<AtomicBool> {
    SIGNALLED.clone()
}

/// Whether a stop signal was received by this process.
pub(crate) fn signalled() -> bool {
    SIGNALLED.load(Ordering::Acquire)
}

/// How long shutdown may take once the engine stops taking requests: the
/// 10 s an operator is promised, less room for the runtime to stop.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(8);

/// Of [`SHUTDOWN_BUDGET`], what is kept for the final store and NATS flushes.
const FLUSH_RESERVE: Duration = Duration::from_secs(2);

/// How long a closing NATS connection is given to say goodbye.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Version of the records stanchion writes; checked at start.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Capacity of each internal NATS subscription. async-nats drops messages
/// past it (SlowConsumer), so it is large and the dispatcher drains fast.
const SUBSCRIPTION_CAPACITY: usize = 1 << 20;

/// Why the server stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// NATS refused or lost something the server cannot do without.
    #[error("nats: {0}")]
    Nats(String),
    /// The store was written with another cluster ID or format.
    #[error("store in use by cluster ID {found:?}, not {expected:?}")]
    ClusterMismatch {
        /// The cluster ID in the store.
        found: String,
        /// The configured cluster ID.
        expected: String,
    },
    /// Encryption at rest is misconfigured (no key, an unknown cipher).
    #[error("encryption: {0}")]
    Encryption(#[from] crate::crypto::CryptoError),
    /// Another streaming server already serves this cluster ID.
    #[error("discovered another streaming server with cluster ID {0:?}")]
    AlreadyRunning(String),
    /// The monitoring HTTP server could not start.
    #[error("{0}")]
    Monitor(String),
    /// Another partitioned server owns one of this server's channels.
    #[error("{0}")]
    Partitioning(String),
    /// The Raft group could not be started or failed.
    #[error("cluster: {0}")]
    Cluster(String),
    /// Another member of the FT group was active first: this one stopped.
    #[error("{0}")]
    FtConflict(String),
    /// A background task panicked or failed.
    #[error("internal: {0}")]
    Internal(String),
}

/// Runs a store call on the blocking pool, never on an async worker; the
/// store's error (or a panicked task) comes back as text.
pub(crate) async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> crate::store::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(op).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("store task failed: {e}")),
    }
}

/// Opens the configured store.
///
/// # Errors
/// When the sled directory cannot be created or opened.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServerError> {
    let store: Arc<dyn Store> = match config.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Sled => Arc::new(SledStore::open(SledOptions {
            dir: config.dir.clone(),
            cache_capacity: config.cache_capacity,
        })?),
    };
    // Name the directory: the operator has to find which store it was.
    let in_dir = |e: StoreError| match e {
        StoreError::Encryption(why) if config.store == StoreKind::Sled => {
            StoreError::Encryption(format!("{} (store in {})", why, config.dir.display()))
        }
        e => e,
    };
    Ok(match config.encryption()? {
        Some((key, cipher)) => {
            tracing::info!(
                cipher = cipher.name(),
                "message payloads are encrypted at rest"
            );
            Arc::new(EncryptedStore::open(store, key, cipher).map_err(in_dir)?)
        }
        None => {
            refuse_if_encrypted(store.as_ref()).map_err(in_dir)?;
            store
        }
    })
}

/// Runs the server until `shutdown` completes, then stops taking requests,
/// lets every channel finish what it received, flushes the store and NATS.
///
/// # Errors
/// Store failures at start, a cluster ID mismatch, another server with the
/// same cluster ID, a monitoring port that cannot be bound, or NATS
/// failures the server cannot recover from.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let opener = config.clone();
    run_engine(config, move || open_store(&opener), shutdown).await
}

/// Like [`run`], on a store the caller opened (`config.store` and `dir` are
/// then unused): lets tests run the engine over an instrumented store.
///
/// # Errors
/// As [`run`].
pub async fn run_with_store(
    config: Config,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_engine(config, move || Ok(store), shutdown).await
}

/// Starts monitoring, opens the store with `open` (on the blocking pool),
/// joins NATS and serves until `shutdown`.
async fn run_engine(
    config: Config,
    open: impl FnOnce() -> Result<Arc<dyn Store>, ServerError> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Validated with the configuration; checked again for callers that did not.
    let limits = config
        .store_limits()
        .map_err(|e| ServerError::Internal(format!("invalid store limits: {e}")))?;
    let (view, mut queries) =
        view::ServerView::new(&config, limits, Arc::new(view::Stats::default()));
    // The signal is seen here first: readiness turns 503, then the
    // dispatcher stops taking requests.
    let signal = CancellationToken::new();
    // Ends with this function, whichever way it returns.
    let _watcher = {
        let (signal, view) = (signal.clone(), view.clone());
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            shutdown.await;
            view.set_phase(view::Phase::ShuttingDown);
            signal.cancel();
        }))
    };
    // Monitoring outlives the engine: it stops when this function returns.
    let monitor_stop = CancellationToken::new();
    let _monitor_guard = monitor_stop.clone().drop_guard();
    let monitor = crate::monitor::start(&config, view.clone(), monitor_stop)
        .await
        .map_err(|e| ServerError::Monitor(e.to_string()))?;
    log_startup(&config, monitor.as_ref().map(|m| m.addr));
    for line in view.limits().table() {
        tracing::info!("{line}");
    }
    if config.clustered {
        return clustered::run(config, open, view, &mut queries, signal).await;
    }
    // In an FT group nothing of the store is touched before its lock is
    // held: NATS first (the heartbeats), then the lock, then the store.
    let mut nats = None;
    let mut active = None;
    if let Some(group) = config.ft_group() {
        let Some(client) = connect_nats(&config, &view, &signal).await? else {
            return Ok(());
        };
        let dir = config.dir.clone();
        match ft::stand_by(&client, &config.cluster_id, group, dir, &view, &signal).await? {
            Some(a) => active = Some(a),
            None => {
                tracing::info!("stopped while in standby");
                return Ok(());
            }
        }
        nats = Some(client);
    }
    // A long recovery still stops at once on a signal (the blocking open
    // is left to finish on its own).
    let store = tokio::select! {
        store = tokio::task::spawn_blocking(open) => {
            store.map_err(|e| ServerError::Internal(e.to_string()))??
        }
        () = signal.cancelled() => {
            tracing::info!("stopped while opening the store");
            return step_down(active).await;
        }
    };
    let info = {
        let (config, store) = (config.clone(), store.clone());
        tokio::task::spawn_blocking(move || load_server_info(&*store, &config))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))??
    };
    let subjects = subjects_of(&info);
    let nats = match nats {
        Some(nats) => nats,
        None => match connect_nats(&config, &view, &signal).await? {
            Some(nats) => nats,
            None => return Ok(()),
        },
    };
    let tasks = TaskTracker::new();
    let result = requests::serve(
        requests::Setup {
            config,
            store: store.clone(),
            nats: nats.clone(),
            subjects,
            ack_prefix: info.ack_prefix,
            tasks: tasks.clone(),
            view,
        },
        &mut queries,
        signal,
    )
    .await;
    // Heartbeats stop first; the lock goes only once the store is flushed.
    let lock = match active {
        Some(active) => Some(active.step_down().await),
        None => None,
    };
    finish(tasks, store, nats).await?;
    tracing::info!("stanchion stopped");
    match lock {
        Some(Err(conflict)) => Err(conflict),
        _ => result,
    }
}

/// Connects to nats-server and records the connection in the view;
/// `Ok(None)` when `signal` fires first.
async fn connect_nats(
    config: &Config,
    view: &view::ServerView,
    signal: &CancellationToken,
) -> Result<Option<async_nats::Client>, ServerError> {
    tokio::select! {
        nats = nats_connect::connect(config, view.stats_arc()) => {
            let nats = nats?;
            view.set_nats(nats.clone());
            Ok(Some(nats))
        }
        () = signal.cancelled() => {
            tracing::info!("stopped before nats-server was reachable");
            Ok(None)
        }
    }
}

/// Ends an FT activation that did not get to serve.
async fn step_down(active: Option<ft::Active>) -> Result<(), ServerError> {
    match active {
        Some(active) => active.step_down().await.map(drop),
        None => Ok(()),
    }
}

/// The end of a shutdown, within [`SHUTDOWN_BUDGET`]: channels finish what
/// they received (each publish is then stored and acknowledged, or never
/// acknowledged), the store is flushed, NATS is flushed and closed.
async fn finish(
    tasks: TaskTracker,
    store: Arc<dyn Store>,
    nats: async_nats::Client,
) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
    tasks.close();
    // With nats-server gone replies cannot leave, so the wait is bounded.
    if tokio::time::timeout_at(deadline - FLUSH_RESERVE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("queued work did not finish in time; flushing the store anyway");
    }
    // Acknowledged messages were flushed before their ack: this flush is
    // for the rest (subscription positions, unacknowledged writes).
    let flush = tokio::task::spawn_blocking(move || store.flush());
    match tokio::time::timeout_at(deadline - FLUSH_RESERVE / 2, flush).await {
        Ok(flushed) => flushed.map_err(|e| ServerError::Internal(e.to_string()))??,
        Err(_) => tracing::warn!("the final store flush did not finish in time"),
    }
    if !liveness::nats_connected(&nats) {
        tracing::warn!("nats-server unreachable at shutdown: unsent replies are dropped");
        return Ok(());
    }
    match tokio::time::timeout_at(deadline, nats.flush()).await {
        Ok(Ok(())) => {
            // Everything is out: close the connection, subscriptions first,
            // so nats-server sees a goodbye rather than a dropped socket.
            if nats.drain().await.is_ok() {
                let closed = async {
                    while liveness::nats_connected(&nats) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "final NATS flush failed"),
        Err(_) => tracing::warn!("final NATS flush timed out"),
    }
    Ok(())
}

/// The startup line: what this server is and where it keeps and shows things.
fn log_startup(config: &Config, monitor: Option<std::net::SocketAddr>) {
    let dir = match config.store {
        StoreKind::Sled => config.dir.display().to_string(),
        StoreKind::Memory => "-".to_string(),
    };
    let monitoring = monitor.map_or_else(|| "off".to_string(), |a| format!("http://{a}"));
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        cluster_id = %config.cluster_id,
        nats_server = %nats_connect::redact(&config.nats_server),
        store = %config.store,
        dir = %dir,
        monitoring = %monitoring,
        "starting stanchion {}",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!(
        max_channels = config.max_channels,
        max_subs = config.max_subs,
        max_msgs = config.max_msgs,
        max_bytes = config.max_bytes,
        "store limits (0 = unlimited)"
    );
}

/// The subjects a store's server info fixes.
fn subjects_of(info: &ServerInfo) -> Subjects {
    Subjects {
        cluster_id: info.cluster_id.clone(),
        pings: format!("{}.pings", info.discovery),
        discover: info.discovery.clone(),
        publish: info.publish.clone(),
        subscribe: info.subscribe.clone(),
        unsubscribe: info.unsubscribe.clone(),
        sub_close: info.sub_close.clone(),
        close: info.close.clone(),
    }
}

/// Reads the persisted server info, or creates it on first start.
fn load_server_info(store: &dyn Store, config: &Config) -> Result<ServerInfo, ServerError> {
    if let Some(info) = store.server_info()? {
        if info.cluster_id != config.cluster_id {
            return Err(ServerError::ClusterMismatch {
                found: info.cluster_id,
                expected: config.cluster_id.clone(),
            });
        }
        return Ok(info);
    }
    let s = Subjects::new(&config.discover_prefix, &config.cluster_id);
    let info = ServerInfo {
        cluster_id: s.cluster_id,
        discovery: s.discover,
        publish: s.publish,
        subscribe: s.subscribe,
        unsubscribe: s.unsubscribe,
        close: s.close,
        sub_close: s.sub_close,
        format_version: FORMAT_VERSION,
        ack_prefix: format!("_INBOX.{}", nuid::next()),
        // Set by an `EncryptedStore` when payloads are encrypted.
        key_check: Default::default(),
    };
    store.set_server_info(&info)?;
    store.flush()?;
    Ok(info)
}
