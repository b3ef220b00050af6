//! Subscription requests in the dispatcher: the reference server's checks
//! in its order, then routing to the channel owner (which creates,
//! resumes, unsubscribes or closes).

use async_nats::Message;
use prost::Message as _;

use super::partitioned::Parked;
use super::{encode, Dispatcher};
use crate::protocol::pb::{
    StartPosition, SubscriptionRequest, SubscriptionResponse, UnsubscribeRequest,
};
use crate::protocol::{errors, is_valid_channel};
use crate::server::channel::ChannelCmd;

impl Dispatcher {
    pub(super) async fn on_subscribe(&mut self, m: Message) {
        let req = match SubscriptionRequest::decode(m.payload.clone()) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable subscription request");
                return self.refuse_subscription(m, errors::INVALID_SUB_REQ).await;
            }
        };
        if let Err(error) = self.validate_subscription(&req) {
            return self.refuse_subscription(m, error).await;
        }
        // Partitioned: another server's channel is left to it.
        if !self.owns(&req.subject) {
            return;
        }
        if !self.clients.contains(&req.client_id) {
            if self.waits_on_probe(&req.client_id) {
                let client_id = req.client_id.clone();
                return self.park(&client_id, Parked::Subscribe(m));
            }
            tracing::debug!(client = %req.client_id, channel = %req.subject, "subscription refused: unknown client");
            return self.refuse_subscription(m, errors::UNKNOWN_CLIENT).await;
        }
        match self.channel(&req.subject).await {
            Ok(handle) => {
                let _ = handle
                    .tx
                    .send(ChannelCmd::Subscribe {
                        req: Box::new(req),
                        reply: m.reply,
                    })
                    .await;
            }
            Err(error) => self.refuse_subscription(m, &error).await,
        }
    }

    async fn refuse_subscription(&self, m: Message, error: &str) {
        let resp = SubscriptionResponse {
            error: error.to_string(),
            ..Default::default()
        };
        self.reply(m.reply, encode(&resp)).await;
    }

    /// The reference server's checks, in its order, up to the client's
    /// registration (checked by the caller, after partition ownership).
    fn validate_subscription(&self, req: &SubscriptionRequest) -> Result<(), &'static str> {
        let error = if req.client_id.is_empty() {
            errors::MISSING_CLIENT
        } else if req.ack_wait_in_secs <= 0 {
            errors::INVALID_ACK_WAIT
        } else if req.max_in_flight <= 0 {
            errors::INVALID_MAX_INFLIGHT
        } else if StartPosition::try_from(req.start_position).is_err() {
            errors::INVALID_START
        } else if !is_valid_channel(&req.subject) {
            errors::INVALID_SUBJECT
        } else {
            return Ok(());
        };
        tracing::debug!(client = %req.client_id, channel = %req.subject, error, "subscription refused");
        Err(error)
    }

    pub(super) async fn on_unsubscribe(&mut self, m: Message, close: bool) {
        let req = match UnsubscribeRequest::decode(m.payload.clone()) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable unsubscribe request");
                let resp = SubscriptionResponse {
                    error: errors::INVALID_UNSUB_REQ.into(),
                    ..Default::default()
                };
                return self.reply(m.reply, encode(&resp)).await;
            }
        };
        // Partitioned: another server's channel is left to it.
        if !self.owns(&req.subject) {
            return;
        }
        match self.channels.get(&req.subject) {
            Some(handle) => {
                let _ = handle
                    .tx
                    .send(ChannelCmd::Unsubscribe {
                        req: Box::new(req),
                        close,
                        reply: m.reply,
                    })
                    .await;
            }
            None => {
                // The reference answers an unknown channel as an unknown subscription.
                let resp = SubscriptionResponse {
                    error: errors::INVALID_SUB.into(),
                    ..Default::default()
                };
                self.reply(m.reply, encode(&resp)).await;
            }
        }
    }
}
