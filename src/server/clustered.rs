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
use crate::cluster::network::{self, NatsNetwork};
use crate::cluster::{node_id, ClusterNode, LogStore, Raft, ReplicatedStore, StateMachine};
use crate::config::Config;
use crate::store::Store;

/// Raft timing: a leader is suspected after 1 to 1.5 s without heartbeats.
fn raft_config(config: &Config) -> Result<Arc<openraft::Config>, ServerError> {
    let raft = openraft::Config {
        cluster_name: config.cluster_id.clone(),
        heartbeat_interval: 250,
        election_timeout_min: 1000,
        election_timeout_max: 1500,
        // Chunks stay well under nats-server's default 1 MB max_payload.
        snapshot_max_chunk_size: 256 * 1024,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(100_000),
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
    let local = tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))??;
    view.set_local_store(local.clone());
    let name = config.cluster_node_id.clone().unwrap_or_default();
    let dir = config.raft_dir();
    let log = {
        let at = dir.clone();
        tokio::task::spawn_blocking(move || LogStore::open(&at))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?
            .map_err(|e| ServerError::Cluster(format!("raft log in {}: {e}", dir.display())))?
    };
    let sm = StateMachine::open(local.clone(), log.db().clone())
        .map_err(|e| ServerError::Cluster(format!("raft state in {}: {e}", dir.display())))?;
    let network = NatsNetwork::new(raft_nats.clone(), &config.cluster_id);
    let raft = Raft::new(node_id(&name), raft_config(&config)?, network, log, sm)
        .await
        .map_err(|e| ServerError::Cluster(e.to_string()))?;
    let _rpc = network::serve(raft.clone(), raft_nats.clone(), &config.cluster_id, &name)
        .await
        .map_err(|e| ServerError::Nats(format!("raft subscription: {e}")))?;
    bootstrap(&raft, &config).await?;
    tracing::info!(node = %name, nodes = ?config.cluster_nodes(), raft_log = %dir.display(), "clustered node started");
    let result = lead_when_elected(&config, &raft, &local, &view, queries, &signal).await;
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    tracing::info!("stanchion stopped");
    result
}

/// A node that never joined a cluster starts one from the full list of
/// nodes; every node does so with the same list, and openraft lets the
/// first election settle it.
async fn bootstrap(raft: &Raft, config: &Config) -> Result<(), ServerError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| ServerError::Cluster(e.to_string()))?;
    if initialized {
        return Ok(());
    }
    let members: BTreeMap<u64, ClusterNode> = config
        .cluster_nodes()
        .into_iter()
        .map(|name| (node_id(&name), ClusterNode { name }))
        .collect();
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        Err(openraft::error::RaftError::APIError(e)) => {
            tracing::debug!(error = %e, "cluster already initialized");
            Ok(())
        }
        Err(e) => Err(ServerError::Cluster(format!("bootstrap: {e}"))),
    }
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
    let store: Arc<dyn Store> = Arc::new(ReplicatedStore::new(local.clone(), raft.clone()));
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
