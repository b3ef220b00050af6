//! The dispatcher's part in partitioning: requests for channels another
//! server owns are left to it, and a client's requests that arrive before
//! its connect is settled here wait for it.
//!
//! Every partitioned server answers every connect; the client goes on as
//! soon as the first answer arrives, so a publish or subscription can reach
//! this server while its own copy of the connect is still queued (taken
//! first here) or waiting on a duplicate-ID probe (parked until it settles).

use async_nats::Message;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::lifecycle::DupProbe;
use super::{Dispatcher, Inputs};

/// A request parked behind its client's connect.
pub(super) enum Parked {
    Publish(Message),
    Subscribe(Message),
}

impl Dispatcher {
    /// Whether this server serves `channel`: always, unless partitioned.
    pub(super) fn owns(&self, channel: &str) -> bool {
        !self.config.partitioning || self.ctx.limits.matching_pattern(channel).is_some()
    }

    /// Partitioning: handles the connects already received, so that a
    /// request which overtook its client's connect in the dispatcher finds
    /// the client registered. `false` when a stop signal arrived.
    pub(super) async fn connects_first(
        &mut self,
        inputs: &mut Inputs,
        signal: &CancellationToken,
    ) -> bool {
        if !self.config.partitioning {
            return true;
        }
        while let Some(Some(m)) = inputs.discover.next().now_or_never() {
            if !self.closes_first(inputs, signal).await {
                return false;
            }
            self.on_connect(m).await;
        }
        true
    }

    /// Partitioning: whether a request of the unregistered `client_id`
    /// should be parked, its connect waiting on a probe here.
    pub(super) fn waits_on_probe(&self, client_id: &str) -> bool {
        self.config.partitioning && self.probing.contains(client_id)
    }

    /// Parks a request until the probe of `client_id` settles.
    pub(super) fn park(&mut self, client_id: &str, request: Parked) {
        self.parked
            .entry(client_id.to_string())
            .or_default()
            .push(request);
    }

    /// Settles a duplicate-ID probe, then takes up the requests parked
    /// behind it, in arrival order.
    pub(super) async fn settle_probe(&mut self, probe: DupProbe) {
        let client_id = probe.client_id().to_string();
        self.on_dup_probe(probe).await;
        for request in self.parked.remove(&client_id).unwrap_or_default() {
            match request {
                Parked::Publish(m) => self.on_publish(m).await,
                Parked::Subscribe(m) => self.on_subscribe(m).await,
            }
        }
    }
}
