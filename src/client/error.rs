//! The client's error kind, with stan.go's client-side texts so that logs and
//! test expectations read the same as with the reference Go client.

/// stan.go's text when pings went unanswered past `ping_max_out`.
pub const PING_FAILURE: &str = "stan: connection lost due to PING failure";

/// Why a client operation failed.
///
/// Errors the server sent (ConnectResponse, PubAck, SubscriptionResponse,
/// CloseResponse errors, or a PingResponse saying the client was replaced) are
/// carried verbatim so callers and tests can compare them with the reference
/// server's texts in [`crate::protocol::errors`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with this error text (verbatim).
    #[error("{0}")]
    Server(String),
    /// Nobody answered the ConnectRequest within `connect_wait` (or nobody
    /// listens on the discovery subject).
    #[error("stan: connect request timeout (possibly wrong cluster ID?)")]
    ConnectTimeout,
    /// A connection close or subscription close request got no answer in time.
    #[error("stan: close request timeout")]
    CloseTimeout,
    /// A subscription request got no answer in time.
    #[error("stan: subscribe request timeout")]
    SubscribeTimeout,
    /// An unsubscribe request got no answer in time.
    #[error("stan: unsubscribe request timeout")]
    UnsubscribeTimeout,
    /// No PubAck arrived within `pub_ack_wait`.
    #[error("stan: publish ack timeout")]
    PubAckTimeout,
    /// The connection was closed (by [`super::Connection::close`] or because
    /// every handle was dropped) before or while the operation ran.
    #[error("stan: connection closed")]
    ConnectionClosed,
    /// The connection was declared lost: either pings went unanswered past
    /// `ping_max_out` ([`PING_FAILURE`]) or a ping reply carried this error
    /// (the server's "client has been replaced or is no longer registered").
    #[error("{0}")]
    ConnectionLost(String),
    /// The subscription was already unsubscribed or closed.
    #[error("stan: invalid subscription")]
    BadSubscription,
    /// [`super::Message::ack`] was called on an auto-ack subscription.
    #[error("stan: cannot manually ack in auto-ack mode")]
    ManualAck,
    /// The server did not hand out the subject this operation needs
    /// (a very old server without subscription close).
    #[error("stan: not supported by server")]
    NotSupported,
    /// The underlying NATS client failed (subscribe, publish, request).
    #[error("nats: {0}")]
    Nats(#[source] async_nats::Error),
    /// A server response did not decode as the expected protobuf message.
    #[error("stan: malformed response: {0}")]
    Decode(#[from] prost::DecodeError),
}

impl ClientError {
    /// Wraps an async-nats error.
    pub(crate) fn nats(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        ClientError::Nats(Box::new(err))
    }
}
