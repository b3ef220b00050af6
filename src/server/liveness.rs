//! Client liveness, judged only through heartbeats: stanchion never sees
//! a client's NATS connection. Every `hb_interval` each client gets an
//! empty request on its heartbeat inbox, spread evenly over the interval
//! with bounded concurrency; a client that misses more than
//! `hb_fail_count` in a row is reported to the dispatcher, which closes it.
//! Heartbeats pause while stanchion itself is disconnected from NATS, so an
//! outage of nats-server does not drop every client.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::clients::Clients;
use super::view::Stats;

/// Heartbeats in flight at once; more wait for a slot (they are spread
/// over the interval, so this is only reached with slow clients).
const MAX_IN_FLIGHT: usize = 512;

/// How long the duplicate client ID probe waits for the old client (NSS's value).
pub const DUP_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// What the liveness checks report to the dispatcher.
#[derive(Debug)]
pub enum Liveness {
    /// The client missed more than `hb_fail_count` heartbeats in a row.
    Dead {
        /// The client ID.
        id: String,
        /// The heartbeat inbox of the instance that stopped answering.
        hb_inbox: String,
    },
    /// A client answered again after missing heartbeats.
    Recovered,
}

/// Heartbeat settings.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatConfig {
    /// Time between heartbeats to a client.
    pub interval: Duration,
    /// How long a client has to answer.
    pub timeout: Duration,
    /// Misses tolerated; one more closes the client.
    pub fail_count: u32,
}

/// Whether stanchion's own NATS connection is up.
pub fn nats_connected(nats: &async_nats::Client) -> bool {
    nats.connection_state() == State::Connected
}

/// Sends one empty request to a heartbeat inbox; `true` if answered in time.
/// No responders (the inbox is not subscribed) counts as not answered.
pub async fn probe(nats: &async_nats::Client, inbox: &str, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, nats.request(inbox.to_string(), Bytes::new())).await,
        Ok(Ok(_))
    )
}

/// Runs heartbeat rounds until `stop`.
pub async fn run(
    nats: async_nats::Client,
    clients: Arc<Clients>,
    config: HeartbeatConfig,
    report: mpsc::Sender<Liveness>,
    stop: CancellationToken,
    tasks: TaskTracker,
    stats: Arc<Stats>,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut round = Instant::now() + config.interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(round) => {}
            () = stop.cancelled() => return,
        }
        let targets = clients.heartbeat_targets();
        let start = Instant::now();
        // Clients are spread over the interval in slices, not one by one:
        // waking once per slice keeps an idle server's CPU low.
        let slices = slice_count(config.interval, targets.len());
        let per_slice = targets.len().div_ceil(slices).max(1);
        for (k, slice) in targets.chunks(per_slice).enumerate() {
            let at = start
                + config.interval / u32::try_from(slices).unwrap_or(u32::MAX)
                    * u32::try_from(k).unwrap_or(u32::MAX);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = stop.cancelled() => return,
            }
            if !nats_connected(&nats) {
                continue;
            }
            for (id, inbox) in slice.iter().cloned() {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (nats, clients, report) = (nats.clone(), clients.clone(), report.clone());
                let stats = stats.clone();
                tasks.spawn(async move {
                    let answered = probe(&nats, &inbox, config.timeout).await;
                    drop(slot);
                    let probed = Probed {
                        id,
                        hb_inbox: inbox,
                        answered,
                    };
                    check(&nats, &clients, &report, &stats, config, probed).await;
                });
            }
        }
        round = start + config.interval;
    }
}

/// Shortest time between two slices of a heartbeat round.
const MIN_SLICE: Duration = Duration::from_millis(100);

/// Into how many slices a round of `clients` heartbeats over `interval` is cut.
fn slice_count(interval: Duration, clients: usize) -> usize {
    let by_time =
        usize::try_from(interval.as_millis() / MIN_SLICE.as_millis()).unwrap_or(usize::MAX);
    by_time.clamp(1, clients.max(1))
}

/// The outcome of one heartbeat.
struct Probed {
    id: String,
    hb_inbox: String,
    answered: bool,
}

async fn check(
    nats: &async_nats::Client,
    clients: &Clients,
    report: &mpsc::Sender<Liveness>,
    stats: &Stats,
    config: HeartbeatConfig,
    probed: Probed,
) {
    let Probed {
        id,
        hb_inbox,
        answered,
    } = probed;
    if answered {
        if clients.heartbeat_ok(&id, Some(&hb_inbox)) {
            tracing::info!(client = %id, "client answers heartbeats again");
            let _ = report.send(Liveness::Recovered).await;
        }
        return;
    }
    // A miss caused by our own disconnection says nothing about the client.
    if !nats_connected(nats) {
        return;
    }
    let Some(misses) = clients.heartbeat_missed(&id, &hb_inbox) else {
        return;
    };
    stats
        .hb_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if misses == 1 {
        tracing::info!(client = %id, "client missed a heartbeat");
    } else {
        tracing::debug!(client = %id, misses, "client missed another heartbeat");
    }
    if misses > config.fail_count {
        tracing::info!(client = %id, misses, "client timed out on heartbeats; closing it");
        let _ = report.send(Liveness::Dead { id, hb_inbox }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_cut_into_slices_at_least_100ms_apart() {
        assert_eq!(slice_count(Duration::from_secs(30), 10_000), 300);
        assert_eq!(slice_count(Duration::from_secs(1), 1_000), 10);
        assert_eq!(
            slice_count(Duration::from_secs(30), 7),
            7,
            "one client a slice when few"
        );
        assert_eq!(slice_count(Duration::from_millis(50), 100), 1);
        assert_eq!(slice_count(Duration::from_secs(1), 0), 1);
    }
}
