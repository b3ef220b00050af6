//! A clustered node: Raft over NATS replicates every store write, and the
//! engine runs only while this node leads, on a store that writes through
//! Raft. A node that becomes leader starts the engine on its replicated
//! store as a restart would: clients, subscriptions and unacknowledged
//! messages are recovered, heartbeats and redelivery re-armed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::view::{Phase, Query, Role, ServerView};
use super::{connect_nats, finish, load_server_info, requests, subjects_of, ServerError};
use crate::cluster::network::{self, Fetcher, NatsNetwork};
use crate::cluster::{join, membership};
use crate::cluster::{
    node_id, ClusterNode, LogStore, Raft, RaftStatus, ReplicatedStore, StateMachine,
};
use crate::config::{ClusterStart, Config};
use crate::store::Store;

/// Raft timing from the configuration. openraft lets a follower stand for
/// election after its leader's lease (1.5 timers) and one randomized timer
/// (1 to 1.5) of silence: 1.5 to 1.8 s with the default 600 ms, where
/// NSS's defaults take 4 to 6 s. The leader sends heartbeats four times per
/// timer. A snapshot every 8,192 entries
/// (hashicorp/raft's threshold, as NSS has it) keeps `cluster_trailing_logs`
/// entries behind it.
fn raft_config(config: &Config) -> Result<Arc<openraft::Config>, ServerError> {
    let timer = u64::try_from(config.raft_election_timer().as_millis()).unwrap_or(u64::MAX / 2);
    let raft = openraft::Config {
        cluster_name: config.cluster_id.clone(),
        heartbeat_interval: (timer / 4).max(1),
        election_timeout_min: timer,
        election_timeout_max: timer + (timer / 2).max(1),
        // Chunks stay well under nats-server's default 1 MB max_payload.
        snapshot_max_chunk_size: 256 * 1024,
        // Installing a snapshot fetches the messages the node lacks, which
        // can take minutes with millions of them: the last chunk's request
        // waits for that.
        install_snapshot_timeout: 10 * 60 * 1000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(8192),
        max_in_snapshot_log_to_keep: config.cluster_trailing_logs,
        ..Default::default()
    };
    raft.validate()
        .map(Arc::new)
        .map_err(|e| ServerError::Cluster(e.to_string()))
}

fn role_of(state: openraft::ServerState) -> Role {
    match state {
        openraft::ServerState::Leader => Role::Leader,
        openraft::ServerState::Candidate => Role::Candidate,
        _ => Role::Follower,
    }
}

/// Runs the node until `signal`.
pub(super) async fn run(
    config: Config,
    open: impl FnOnce() -> Result<Arc<dyn Store>, ServerError> + Send + 'static,
    view: ServerView,
    queries: &mut mpsc::Receiver<Query>,
    signal: CancellationToken,
) -> Result<(), ServerError> {
    let Some(raft_nats) = connect_nats(&config, &view, &signal).await? else {
        return Ok(());
    };
    let name = config.cluster_node_id.clone().unwrap_or_default();
    let dir = config.raft_dir();
    let log = {
        let at = dir.clone();
        tokio::task::spawn_blocking(move || LogStore::open(&at))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?
            .map_err(|e| ServerError::Cluster(format!("raft log in {}: {e}", dir.display())))?
            .syncing(config.cluster_sync)
    };
    let fresh = log.is_fresh();
    let local = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_local(open, &config, fresh))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))??
    };
    view.set_local_store(local.store.clone());
    let local_store = local.store.clone();
    let sm = StateMachine::open(local_store.clone(), log.db().clone())
        .map_err(|e| ServerError::Cluster(format!("raft state in {}: {e}", dir.display())))?
        .syncing(config.cluster_sync)
        .fetching(Fetcher::new(
            raft_nats.clone(),
            &config.cluster_id,
            node_id(&name),
        ));
    let network = NatsNetwork::new(raft_nats.clone(), &config.cluster_id);
    let committed = log.committed();
    let raft = Raft::new(node_id(&name), raft_config(&config)?, network, log, sm)
        .await
        .map_err(|e| ServerError::Cluster(e.to_string()))?;
    view.set_raft_status(Arc::new(RaftStatus::watch(raft.clone(), committed)));
    let _rpc = network::serve(
        raft.clone(),
        local_store.clone(),
        raft_nats.clone(),
        &config.cluster_id,
        &name,
    )
    .await
    .map_err(|e| ServerError::Nats(format!("raft subscription: {e}")))?;
    let _joins = join::serve_joins(raft.clone(), raft_nats.clone(), &config.cluster_id)
        .await
        .map_err(|e| ServerError::Nats(format!("raft join subscription: {e}")))?;
    let _node_requests = if config.cluster_allow_add_remove_node {
        let stop = signal.clone();
        let served = membership::serve(
            raft.clone(),
            raft_nats.clone(),
            &config.cluster_id,
            name.clone(),
            stop,
        );
        Some(
            served
                .await
                .map_err(|e| ServerError::Nats(format!("raft node subscription: {e}")))?,
        )
    } else {
        None
    };
    // Two seeds would make two clusters: NSS stops both, and so does this.
    let (_seeds, mut other_seed) = if config.cluster_bootstrap {
        let (task, found) =
            join::detect_other_seeds(raft_nats.clone(), &config.cluster_id, view.server_id())
                .await
                .map_err(|e| ServerError::Nats(format!("raft bootstrap subscription: {e}")))?;
        (Some(task), Some(found))
    } else {
        (None, None)
    };
    let result = async {
        enter_cluster(&raft, &config, &raft_nats, local.seeds, &signal).await?;
        // A node that joined votes once the leader sees it caught up.
        let _promotion = (config.cluster_start() == ClusterStart::Join).then(|| {
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(join::until_voter(
                raft.clone(),
                raft_nats.clone(),
                config.cluster_id.clone(),
                name.clone(),
                signal.clone(),
            )))
        });
        tracing::info!(node = %name, start = ?config.cluster_start(), raft_log = %dir.display(), "clustered node started");
        let serving = lead_when_elected(&config, &raft, &local_store, &view, queries, &signal);
        match other_seed.as_mut() {
            Some(found) => tokio::select! {
                r = serving => r,
                Ok(other) = found => Err(ServerError::Cluster(format!(
                    "Server {other} was also started with -cluster_bootstrap"
                ))),
            },
            None => serving.await,
        }
    }
    .await;
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    tracing::info!("stanchion stopped");
    result
}

/// The node's own store, and whether it seeds a new cluster.
struct Local {
    store: Arc<dyn Store>,
    /// The store holds state a new cluster starts from (a seed's).
    seeds: bool,
}

/// Opens the node's store. A store with state beside a Raft log that never
/// held anything is not the cluster's: a seed (`cluster_bootstrap`) starts
/// the cluster from it, which is how a standalone store becomes a
/// cluster's; any other node sets it aside in the store directory, where
/// it is kept, and gets the cluster's state from its leader. Blocking.
fn open_local(
    open: impl FnOnce() -> Result<Arc<dyn Store>, ServerError>,
    config: &Config,
    fresh_log: bool,
) -> Result<Local, ServerError> {
    let store = open()?;
    if !fresh_log || !has_state(&*store)? {
        return Ok(Local {
            store,
            seeds: false,
        });
    }
    if config.cluster_start() == ClusterStart::Seed {
        tracing::info!(dir = %config.dir.display(), "starting the cluster from the existing store");
        return Ok(Local { store, seeds: true });
    }
    drop(store);
    let kept = set_aside(config)?;
    tracing::warn!(
        dir = %config.dir.display(),
        raft_log = %config.raft_dir().display(),
        kept = %kept.display(),
        "the store has state but the raft log is empty: the store was set aside and this node \
         takes the cluster's state from its leader"
    );
    Ok(Local {
        store: super::open_store(config)?,
        seeds: false,
    })
}

fn has_state(store: &dyn Store) -> Result<bool, ServerError> {
    Ok(store.server_info()?.is_some()
        || !store.clients()?.is_empty()
        || !store.channel_names()?.is_empty())
}

/// Moves the store's files (not the Raft log, if it lives in the store
/// directory) into `<dir>/set-aside-<unix time>/`.
fn set_aside(config: &Config) -> Result<std::path::PathBuf, ServerError> {
    let io = |e: std::io::Error| {
        ServerError::Cluster(format!(
            "setting the store in {} aside: {e}",
            config.dir.display()
        ))
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let kept = config.dir.join(format!("set-aside-{stamp}"));
    std::fs::create_dir_all(&kept).map_err(io)?;
    let raft = std::fs::canonicalize(config.raft_dir()).ok();
    for entry in std::fs::read_dir(&config.dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("set-aside-") || std::fs::canonicalize(&path).ok() == raft {
            continue;
        }
        std::fs::rename(&path, kept.join(name)).map_err(io)?;
    }
    Ok(kept)
}

/// Makes this node part of its cluster the first time it starts: from the
/// full list of nodes, as a seed, or by asking the leader to add it.
async fn enter_cluster(
    raft: &Raft,
    config: &Config,
    nats: &async_nats::Client,
    seeds: bool,
    signal: &CancellationToken,
) -> Result<(), ServerError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| ServerError::Cluster(e.to_string()))?;
    if initialized {
        return Ok(());
    }
    let me = config.cluster_node_id.clone().unwrap_or_default();
    let names = match config.cluster_start() {
        ClusterStart::Peers => config.cluster_nodes(),
        ClusterStart::Seed => vec![me.clone()],
        ClusterStart::Join => {
            tracing::info!(node = %me, "asking the cluster's leader to add this node");
            return join::join(nats, &config.cluster_id, &me, signal)
                .await
                .map_err(ServerError::Cluster);
        }
    };
    let members: BTreeMap<u64, ClusterNode> = names
        .into_iter()
        .map(|name| (node_id(&name), ClusterNode { name }))
        .collect();
    match raft.initialize(members).await {
        Ok(()) => {}
        Err(openraft::error::RaftError::APIError(e)) => {
            tracing::debug!(error = %e, "cluster already initialized");
        }
        Err(e) => return Err(ServerError::Cluster(format!("bootstrap: {e}"))),
    }
    if seeds {
        seed_snapshot(raft).await?;
    }
    Ok(())
}

/// A seed's store is not in the log: a snapshot of it, with the log behind
/// it purged, is what the nodes that join get first.
async fn seed_snapshot(raft: &Raft) -> Result<(), ServerError> {
    let cluster = |e: &dyn std::fmt::Display| ServerError::Cluster(format!("seed snapshot: {e}"));
    let mut metrics = raft.metrics();
    // Leading, with everything in the log (the leader's first entry) applied.
    let applied = loop {
        let m = metrics.borrow_and_update().clone();
        match m.last_applied {
            Some(applied) if m.state.is_leader() && Some(applied.index) == m.last_log_index => {
                break applied;
            }
            _ => metrics.changed().await.map_err(|e| cluster(&e))?,
        }
    };
    raft.trigger().snapshot().await.map_err(|e| cluster(&e))?;
    loop {
        let m = metrics.borrow_and_update().clone();
        if m.snapshot.is_some_and(|s| s.index >= applied.index) {
            break;
        }
        metrics.changed().await.map_err(|e| cluster(&e))?;
    }
    raft.trigger()
        .purge_log(applied.index)
        .await
        .map_err(|e| cluster(&e))?;
    tracing::info!(
        index = applied.index,
        "seed store snapshotted for the nodes that join"
    );
    Ok(())
}

/// Follows until elected, serves clients while leading, and follows again
/// when leadership goes; until `signal`.
async fn lead_when_elected(
    config: &Config,
    raft: &Raft,
    local: &Arc<dyn Store>,
    view: &ServerView,
    queries: &mut mpsc::Receiver<Query>,
    signal: &CancellationToken,
) -> Result<(), ServerError> {
    let mut metrics = raft.metrics();
    loop {
        loop {
            let (state, leads) = {
                let m = metrics.borrow_and_update();
                (m.state, m.state == openraft::ServerState::Leader)
            };
            view.set_role(role_of(state));
            if leads {
                break;
            }
            tokio::select! {
                () = signal.cancelled() => return Ok(()),
                changed = metrics.changed() => {
                    if changed.is_err() {
                        return Err(ServerError::Cluster("raft stopped".into()));
                    }
                }
            }
        }
        tracing::info!("elected leader: serving clients");
        serve_term(config, raft, local, view, queries, signal).await?;
        if signal.is_cancelled() {
            return Ok(());
        }
        tracing::info!("no longer leader: stopped serving clients");
        view.set_phase(Phase::Starting);
        // Metrics can still say Leader for a moment after the engine has
        // stepped down: look again once they change (or after one timer).
        tokio::select! {
            () = signal.cancelled() => return Ok(()),
            _ = tokio::time::timeout(config.raft_election_timer(), metrics.changed()) => {}
        }
    }
}

/// Serves clients for one term of leadership: until `signal` or until the
/// node stops leading.
async fn serve_term(
    config: &Config,
    raft: &Raft,
    local: &Arc<dyn Store>,
    view: &ServerView,
    queries: &mut mpsc::Receiver<Query>,
    signal: &CancellationToken,
) -> Result<(), ServerError> {
    // Everything committed before this term is applied here first.
    if let Err(e) = raft.ensure_linearizable().await {
        tracing::warn!(error = %e, "leadership lost before serving");
        return Ok(());
    }
    let held = view.raft_status().map(|s| s.held()).unwrap_or_default();
    let store: Arc<dyn Store> = Arc::new(ReplicatedStore::new(
        local.clone(),
        raft.clone(),
        config.cluster_sync,
        held,
    ));
    let info = {
        let (config, store) = (config.clone(), store.clone());
        tokio::task::spawn_blocking(move || load_server_info(&*store, &config))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?
    };
    let info = match info {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(error = %e, "server info not replicated; waiting for the next term");
            return Ok(());
        }
    };
    // Its own connection: draining it at the end of the term leaves Raft's alone.
    let Some(nats) = connect_nats(config, view, signal).await? else {
        return Ok(());
    };
    let term = signal.child_token();
    let _lost = {
        let (term, mut metrics) = (term.clone(), raft.metrics());
        let view = view.clone();
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            loop {
                let state = metrics.borrow_and_update().state;
                view.set_role(role_of(state));
                if state != openraft::ServerState::Leader {
                    term.cancel();
                    return;
                }
                if metrics.changed().await.is_err() {
                    term.cancel();
                    return;
                }
            }
        }))
    };
    let tasks = TaskTracker::new();
    let result = requests::serve(
        requests::Setup {
            config: config.clone(),
            store: store.clone(),
            nats: nats.clone(),
            subjects: subjects_of(&info),
            ack_prefix: info.ack_prefix,
            tasks: tasks.clone(),
            view: view.clone(),
        },
        queries,
        term,
    )
    .await;
    finish(tasks, store, nats).await?;
    // Losing the lead ends the term with store errors: not a failure.
    match result {
        Err(ServerError::Store(e)) if !signal.is_cancelled() => {
            tracing::warn!(error = %e, "term ended");
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        }
        other => other,
    }
}
