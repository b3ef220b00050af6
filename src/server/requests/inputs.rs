//! The NATS subscriptions the dispatcher reads its requests from.

use std::sync::Arc;

use async_nats::Subscriber;

use super::Dispatcher;
use crate::server::ServerError;
use crate::store::{ChannelStore, RecoveredSub};

/// The NATS subscriptions the server serves.
pub(super) struct Inputs {
    pub(super) discover: Subscriber,
    pub(super) pings: Subscriber,
    /// `<publish>.>`, or the first owned channel's when partitioned.
    pub(super) publish: Subscriber,
    /// The other owned channels' publish subjects when partitioned.
    pub(super) more_publish: futures::stream::SelectAll<Subscriber>,
    /// Acks under this server's prefix, plus the ack inboxes of imported
    /// subscriptions that the reference server handed out.
    pub(super) acks: futures::stream::SelectAll<Subscriber>,
    pub(super) subscribe: Subscriber,
    pub(super) unsubscribe: Subscriber,
    pub(super) sub_close: Subscriber,
    pub(super) close: Subscriber,
}

/// The ack inboxes of online subscriptions that are not under this server's
/// prefix: those an imported store kept from the reference server, which
/// gives each subscription an inbox of its own. Their clients go on acking
/// there.
pub(super) fn foreign_ack_inboxes(
    channels: &[(Arc<dyn ChannelStore>, Vec<RecoveredSub>)],
    ack_prefix: &str,
) -> Vec<String> {
    let own = format!("{ack_prefix}.");
    let mut inboxes: Vec<String> = channels
        .iter()
        .flat_map(|(_, subs)| subs)
        .filter(|s| !s.state.is_closed && !s.state.ack_inbox.is_empty())
        .filter(|s| !s.state.ack_inbox.starts_with(&own))
        .map(|s| s.state.ack_inbox.clone())
        .collect();
    inboxes.sort();
    inboxes.dedup();
    inboxes
}

impl Dispatcher {
    /// Subscribes every STAN subject this server serves.
    pub(super) async fn subscribe_all(
        &self,
        ack_prefix: &str,
        foreign: &[String],
    ) -> Result<Inputs, ServerError> {
        let sub = |subject: String| {
            let nats = self.nats.clone();
            async move {
                nats.subscribe(subject.clone())
                    .await
                    .map_err(|e| ServerError::Nats(format!("subscribe {subject}: {e}")))
            }
        };
        let s = &self.subjects;
        // Partitioned: the owned channels only (patterns work as subjects).
        let mut publish = Vec::new();
        if self.config.partitioning {
            for (pattern, _) in self.ctx.limits.channels() {
                publish.push(sub(format!("{}.{pattern}", s.publish)).await?);
            }
        }
        let first_publish = match publish.is_empty() {
            true => sub(format!("{}.>", s.publish)).await?,
            false => publish.remove(0),
        };
        Ok(Inputs {
            discover: sub(s.discover.clone()).await?,
            pings: sub(s.pings.clone()).await?,
            publish: first_publish,
            more_publish: futures::stream::select_all(publish),
            acks: {
                let mut acks = vec![sub(format!("{ack_prefix}.*")).await?];
                for inbox in foreign {
                    acks.push(sub(inbox.clone()).await?);
                }
                futures::stream::select_all(acks)
            },
            subscribe: sub(s.subscribe.clone()).await?,
            unsubscribe: sub(s.unsubscribe.clone()).await?,
            sub_close: sub(s.sub_close.clone()).await?,
            close: sub(s.close.clone()).await?,
        })
    }
}
