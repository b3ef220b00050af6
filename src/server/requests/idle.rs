//! Deleting channels idle for `max_inactivity`. The dispatcher owns the
//! channel map, so it decides: it asks the channel's owner to retire (the
//! owner agrees only if still idle) and waits for the answer, so that no
//! request of its own reaches the channel meanwhile; then it deletes the
//! channel from the store and frees its name.

use std::time::Duration;

use tokio::sync::oneshot;

use super::Dispatcher;
use crate::server::channel::ChannelCmd;

/// How long the dispatcher waits for an idle channel's owner to answer; an
/// idle channel has nothing queued, so it answers at once.
const RETIRE_WAIT: Duration = Duration::from_secs(5);

impl Dispatcher {
    /// A channel reports it has been idle for `max_inactivity`.
    pub(super) async fn on_idle_channel(&mut self, name: String) {
        let Some(handle) = self.channels.get(&name) else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        if handle
            .tx
            .send(ChannelCmd::Retire { reply: tx })
            .await
            .is_err()
        {
            return;
        }
        match tokio::time::timeout(RETIRE_WAIT, rx).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return,
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(channel = %name, "idle channel did not answer; not deleted");
                return;
            }
        }
        self.channels.remove(&name);
        self.lower_names.remove(&name.to_lowercase());
        let store = self.store.clone();
        let owned = name.clone();
        match crate::server::blocking(move || store.delete_channel(&owned)).await {
            Ok(()) => {
                let limit = self.ctx.limits.for_channel(&name);
                tracing::info!(
                    channel = %name,
                    max_inactivity = ?limit.max_inactivity,
                    "channel deleted: no subscription and no new message for max_inactivity"
                );
            }
            Err(e) => tracing::error!(channel = %name, error = %e, "deleting idle channel failed"),
        }
    }
}
