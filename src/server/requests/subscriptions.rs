//! Subscription requests in the dispatcher: the reference server's checks
//! in its order, then routing to the channel owner (which creates,
//! resumes, unsubscribes or closes).

use async_nats::Message;
use prost::Message as _;

use super::{encode, Dispatcher};
use crate::protocol::pb::{
    StartPosition, SubscriptionRequest, SubscriptionResponse, UnsubscribeRequest,
};
use crate::protocol::{errors, is_valid_channel};
use crate::server::channel::ChannelCmd;

impl Dispatcher {
    pub(super) async fn on_subscribe(&mut self, m: Message) {
        let checked = match SubscriptionRequest::decode(m.payload.clone()) {
            Err(e) => {
                tracing::warn!(error = %e, "undecodable subscription request");
                Err(errors::INVALID_SUB_REQ.to_string())
            }
            Ok(req) => self.validate_subscription(&req).map(|()| req),
        };
        let req = match checked {
            Ok(req) => req,
            Err(error) => {
                let resp = SubscriptionResponse {
                    error,
                    ..Default::default()
                };
                return self.reply(m.reply, encode(&resp)).await;
            }
        };
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
            Err(error) => {
                let resp = SubscriptionResponse {
                    error,
                    ..Default::default()
                };
                self.reply(m.reply, encode(&resp)).await;
            }
        }
    }

    /// The reference server's checks, in its order.
    fn validate_subscription(&self, req: &SubscriptionRequest) -> Result<(), String> {
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
        } else if !self.clients.contains(&req.client_id) {
            errors::UNKNOWN_CLIENT
        } else {
            return Ok(());
        };
        tracing::debug!(client = %req.client_id, channel = %req.subject, error, "subscription refused");
        Err(error.to_string())
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
