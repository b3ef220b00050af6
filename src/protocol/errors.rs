//! Error texts STAN clients see, verbatim from the reference server.
//! Clients may compare these strings, so they never change.

/// A channel name that is empty, has empty tokens, wildcards or `/`.
pub const INVALID_SUBJECT: &str = "stan: invalid subject";
/// A start position outside the known enum values.
pub const INVALID_START: &str = "stan: invalid start position";
/// An unsubscribe/close for a subscription the server does not know.
pub const INVALID_SUB: &str = "stan: invalid subscription";
/// A connect with a client ID that a live client already uses.
pub const CLIENT_ID_REGISTERED: &str = "stan: clientID already registered";
/// A subscription request without a client ID.
pub const MISSING_CLIENT: &str = "stan: clientID missing";
/// A client ID outside `^[a-zA-Z0-9_-]+$`.
pub const INVALID_CLIENT_ID: &str =
    "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed";
/// AckWait below one second.
pub const INVALID_ACK_WAIT: &str = "stan: invalid ack wait time, should be >= 1s";
/// MaxInFlight below one.
pub const INVALID_MAX_INFLIGHT: &str = "stan: invalid MaxInflight, should be >= 1";
/// A connect request that does not decode or has no heartbeat inbox.
pub const INVALID_CONN_REQ: &str = "stan: invalid connection request";
/// Any publish that is rejected before storage.
pub const INVALID_PUB_REQ: &str = "stan: invalid publish request";
/// A subscription request that does not decode.
pub const INVALID_SUB_REQ: &str = "stan: invalid subscription request";
/// An unsubscribe or subscription-close request that does not decode.
pub const INVALID_UNSUB_REQ: &str = "stan: invalid unsubscribe request";
/// A close request that does not decode.
pub const INVALID_CLOSE_REQ: &str = "stan: invalid close request";
/// A second live subscription with the same durable identity.
pub const DUP_DURABLE: &str = "stan: duplicate durable registration";
/// A durable queue subscription whose durable name contains `:`.
pub const INVALID_DURABLE_NAME: &str =
    "stan: durable name of a durable queue subscriber can't contain the character ':'";
/// A request naming a client ID that is not registered.
pub const UNKNOWN_CLIENT: &str = "stan: unknown clientID";
/// A request naming a channel that does not exist.
pub const UNKNOWN_CHANNEL: &str = "stan: unknown channel";
/// The answer to a ping whose connection ID is not (or no longer) registered.
pub const CLIENT_REPLACED: &str = "client has been replaced or is no longer registered";
/// The store refused a new channel (max_channels reached).
pub const TOO_MANY_CHANNELS: &str = "too many channels";
/// The store refused a new subscription (max_subs reached).
pub const TOO_MANY_SUBS: &str = "too many subscriptions per channel";

/// The reference server's text for a channel whose name differs from an existing one only in case.
/// (The misspelling "alreay" is the reference's own and is kept on purpose.)
pub fn channel_case_collision(new: &str, existing: &str) -> String {
    format!(
        "rejecting channel {new:?} because channel {existing:?} alreay exists (different cases not allowed)"
    )
}
