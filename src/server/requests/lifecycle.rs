//! Client lifecycle in the dispatcher: connect (with the duplicate client
//! ID probe), pings, close, and closing clients that stopped answering
//! heartbeats. Client records are written through the client log, in
//! decision order.

use async_nats::{Message, Subject};
use prost::Message as _;
use tokio::sync::oneshot;

use super::{encode, Dispatcher};
use crate::protocol::pb::{
    CloseRequest, CloseResponse, ConnectRequest, ConnectResponse, Ping, PingResponse,
};
use crate::protocol::{errors, is_valid_client_id};
use crate::server::channel::ChannelCmd;
use crate::server::client_log::ClientOp;
use crate::server::liveness::{self, Liveness, DUP_PROBE_TIMEOUT};
use crate::store::ClientInfo;

/// The outcome of probing the old holder of a client ID a new connect wants.
pub(super) struct DupProbe {
    req: ConnectRequest,
    reply: Option<Subject>,
    old_alive: bool,
}

impl DupProbe {
    /// The client ID the probe is about.
    pub(super) fn client_id(&self) -> &str {
        &self.req.client_id
    }
}

impl Dispatcher {
    pub(super) async fn on_connect(&mut self, m: Message) {
        let req = match ConnectRequest::decode(m.payload.clone()) {
            Ok(req) if !req.heartbeat_inbox.is_empty() => req,
            other => {
                tracing::warn!(subject = %m.subject, error = ?other.err(), "invalid connect request");
                let resp = ConnectResponse {
                    error: errors::INVALID_CONN_REQ.into(),
                    ..Default::default()
                };
                return self.reply(m.reply, encode(&resp)).await;
            }
        };
        if !is_valid_client_id(&req.client_id) {
            tracing::debug!(client = %req.client_id, "connect with invalid client ID");
            let resp = ConnectResponse {
                error: errors::INVALID_CLIENT_ID.into(),
                ..Default::default()
            };
            return self.reply(m.reply, encode(&resp)).await;
        }
        if self.probing.contains(&req.client_id) {
            tracing::info!(client = %req.client_id, "connect refused: a probe of the client ID is in flight");
            return self.refuse_duplicate(m.reply).await;
        }
        if let Some(old) = self.clients.get(&req.client_id) {
            // Is the old holder of the ID alive? Ask it, without blocking the dispatcher.
            self.probing.insert(req.client_id.clone());
            let (nats, tx) = (self.nats.clone(), self.probe_tx.clone());
            let reply = m.reply;
            self.tasks.spawn(async move {
                let old_alive = liveness::probe(&nats, &old.hb_inbox, DUP_PROBE_TIMEOUT).await;
                let _ = tx
                    .send(DupProbe {
                        req,
                        reply,
                        old_alive,
                    })
                    .await;
            });
            return;
        }
        self.register(req, m.reply).await;
    }

    async fn refuse_duplicate(&self, reply: Option<Subject>) {
        let resp = ConnectResponse {
            error: errors::CLIENT_ID_REGISTERED.into(),
            ..Default::default()
        };
        self.reply(reply, encode(&resp)).await;
    }

    /// Settles a connect that waited on a duplicate client ID probe: a live
    /// old client keeps its ID; a silent one is closed and replaced.
    pub(super) async fn on_dup_probe(&mut self, probe: DupProbe) {
        let DupProbe {
            req,
            reply,
            old_alive,
        } = probe;
        self.probing.remove(&req.client_id);
        if old_alive {
            tracing::info!(client = %req.client_id, "connect refused: client ID already registered and alive");
            return self.refuse_duplicate(reply).await;
        }
        if self.clients.contains(&req.client_id) {
            tracing::info!(client = %req.client_id, "replacing a client that does not answer heartbeats");
            // Its record's delete is queued before the new record's put.
            self.forget_client(req.client_id.clone(), None).await;
        }
        self.register(req, reply).await;
    }

    /// Registers a client now; answers its connect once it is stored.
    async fn register(&mut self, req: ConnectRequest, reply: Option<Subject>) {
        let info = ClientInfo {
            id: req.client_id.clone(),
            hb_inbox: req.heartbeat_inbox.clone(),
            conn_id: req.conn_id.clone(),
            protocol: req.protocol,
            ping_interval: req.ping_interval,
            ping_max_out: req.ping_max_out,
        };
        if !self.clients.register(info.clone()) {
            // Callers checked that the ID is free, and only this task registers.
            tracing::warn!(client = %req.client_id, "client ID taken during connect");
            return;
        }
        tracing::info!(client = %req.client_id, "client connected");
        let resp =
            self.subjects
                .connect_response(req.protocol, req.ping_interval, req.ping_max_out);
        let stored = self.client_log.submit(ClientOp::Put(info)).await;
        let nats = self.nats.clone();
        self.tasks.spawn(async move {
            let _ = stored.await;
            if let Some(reply) = reply {
                let _ = nats.publish(reply, encode(&resp)).await;
            }
        });
    }

    pub(super) async fn on_ping(&mut self, m: Message) {
        if m.payload.is_empty() {
            return;
        }
        let known = Ping::decode(m.payload.clone())
            .ok()
            .and_then(|p| self.clients.by_conn(&p.conn_id));
        let resp = match known {
            Some(id) => {
                if self.clients.heartbeat_ok(&id, None) {
                    tracing::info!(client = %id, "client pings again after missing heartbeats");
                    self.wake_channels().await;
                }
                PingResponse::default()
            }
            None => PingResponse {
                error: errors::CLIENT_REPLACED.into(),
            },
        };
        self.reply(m.reply, encode(&resp)).await;
    }

    pub(super) async fn on_close(&mut self, m: Message) {
        let req = match CloseRequest::decode(m.payload.clone()) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable close request");
                let resp = CloseResponse {
                    error: errors::INVALID_CLOSE_REQ.into(),
                };
                return self.reply(m.reply, encode(&resp)).await;
            }
        };
        if !self.clients.contains(&req.client_id) {
            let resp = CloseResponse {
                error: errors::UNKNOWN_CLIENT.into(),
            };
            return self.reply(m.reply, encode(&resp)).await;
        }
        tracing::info!(client = %req.client_id, "client closed");
        self.forget_client(req.client_id, m.reply).await;
    }

    /// Closes a client as if it had sent Close, removes it from the store,
    /// and answers `reply` (if any) with an OK CloseResponse when done.
    ///
    /// The answer waits for one more flush after the channels are done: the
    /// client's removal may be flushed before they wrote its subscriptions'
    /// final state (the acks it sent before closing, its durables going
    /// offline), and a closed client must find that state after a crash.
    async fn forget_client(&mut self, id: String, reply: Option<Subject>) {
        let done = self.close_client(&id).await;
        let stored = self.client_log.submit(ClientOp::Delete(id)).await;
        let nats = self.nats.clone();
        let committer = self.ctx.committer.clone();
        self.tasks.spawn(async move {
            for d in done {
                let _ = d.await;
            }
            let _ = stored.await;
            if let Err(e) = committer.flush().await {
                tracing::error!(error = %e, "flushing a closed client's subscriptions failed");
            }
            if let Some(reply) = reply {
                let _ = nats.publish(reply, encode(&CloseResponse::default())).await;
            }
        });
    }

    /// Handles what the heartbeat checks found.
    pub(super) async fn on_liveness(&mut self, report: Liveness) {
        match report {
            Liveness::Dead { id, hb_inbox } => {
                // Only the instance that stopped answering; not a replacement.
                if self.clients.is_registered_instance(&id, &hb_inbox) {
                    tracing::info!(client = %id, "closing client: timed out on heartbeats");
                    self.stats
                        .hb_closed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.forget_client(id, None).await;
                }
            }
            Liveness::Recovered => self.wake_channels().await,
        }
    }

    /// Unregisters a client and tells every channel it is gone; the
    /// receivers complete once each channel has closed its subscriptions.
    async fn close_client(&self, client_id: &str) -> Vec<oneshot::Receiver<()>> {
        self.clients.remove(client_id);
        let mut done = Vec::with_capacity(self.channels.len());
        for handle in self.channels.values() {
            let (tx, rx) = oneshot::channel();
            let cmd = ChannelCmd::ClientClosed {
                client_id: client_id.to_string(),
                done: tx,
            };
            if handle.tx.send(cmd).await.is_ok() {
                done.push(rx);
            }
        }
        done
    }
}
