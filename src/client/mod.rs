//! A small async STAN (NATS Streaming) client on top of async-nats.
//!
//! It speaks the protocol the way stan.go v0.10 does (PROTOCOL.md 1.5): a
//! ConnectRequest on `<discover_prefix>.<cluster_id>`, one PubAck subject per
//! connection, server heartbeats answered, client pings, subscriptions with
//! auto or manual acks. stanchion's integration tests and benchmark drive the
//! server through it, and it is usable on its own (there is no maintained
//! Rust STAN client).
//!
//! Owns: the client-side state of one STAN connection (outstanding PubAcks,
//! liveness) and of its subscriptions. May call: `crate::protocol` (messages,
//! defaults) and async-nats/tokio. Knows nothing of the server side.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stanchion::client::{Connection, Options, StartAt, SubscriptionOptions};
//! let nats = async_nats::connect("127.0.0.1:4222").await?;
//! let sc = Connection::connect(nats, Options::new("test-cluster", "me")).await?;
//! sc.publish("foo", "hello").await?;
//! let opts = SubscriptionOptions { start: StartAt::First, ..Default::default() };
//! let mut sub = sc.subscribe("foo", opts).await?;
//! let msg = sub.next().await.expect("a message");
//! assert_eq!(&msg.data()[..], b"hello");
//! sc.close().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

mod connection;
mod error;
mod publish;
mod subscription;
mod wire;

pub use connection::Connection;
pub use error::{ClientError, PING_FAILURE};
pub use publish::{Guid, PubAckFuture};
pub use subscription::{Message, StartAt, Subscription, SubscriptionOptions};

/// Prefix of the per-connection PubAck subject (`_STAN.acks.<nuid>`), as stan.go.
pub const ACK_PREFIX: &str = "_STAN.acks";

/// Settings of one STAN connection. Defaults are stan.go's.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster ID of the server to join; selects the discovery subject.
    pub cluster_id: String,
    /// This client's ID; the server allows one live connection per ID.
    pub client_id: String,
    /// Discovery subject prefix (`_STAN.discover`); the ConnectRequest goes
    /// to `<discover_prefix>.<cluster_id>`.
    pub discover_prefix: String,
    /// Timeout of every request: connect, subscribe, unsubscribe, close (2 s).
    pub connect_wait: Duration,
    /// How long a publish waits for its PubAck before failing with
    /// [`ClientError::PubAckTimeout`] (30 s).
    pub pub_ack_wait: Duration,
    /// Publishes awaiting a PubAck at most; `publish_async` waits for a free
    /// slot beyond that, which paces a fast publisher to the server (16384).
    pub max_pub_acks_inflight: usize,
    /// Seconds between client pings, sent in the ConnectRequest; the server
    /// echoes it and the client pings at the echoed interval (5).
    pub ping_interval: i32,
    /// Unanswered pings tolerated before the connection is declared lost (88).
    pub ping_max_out: i32,
    /// Pings at this period instead of the echoed `ping_interval` seconds,
    /// while still sending `ping_interval` on the wire. For tests, which
    /// cannot wait whole seconds per ping (stan.go has a test-only hook too).
    pub ping_period_override: Option<Duration>,
}

impl Options {
    /// Options to join `cluster_id` as `client_id`, with stan.go's defaults.
    pub fn new(cluster_id: impl Into<String>, client_id: impl Into<String>) -> Options {
        Options {
            cluster_id: cluster_id.into(),
            client_id: client_id.into(),
            discover_prefix: crate::protocol::DEFAULT_DISCOVER_PREFIX.to_string(),
            connect_wait: Duration::from_secs(2),
            pub_ack_wait: Duration::from_secs(30),
            max_pub_acks_inflight: 16_384,
            ping_interval: 5,
            ping_max_out: 88,
            ping_period_override: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles move into tasks: the benchmark and tests spawn publishers and
    /// subscribers on a multi-threaded runtime.
    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Connection>();
        send_sync::<Message>();
        send_sync::<ClientError>();
        send::<Subscription>();
        send::<PubAckFuture>();
    }

    #[test]
    fn defaults_are_stan_go_s() {
        let o = Options::new("c", "id");
        assert_eq!(o.discover_prefix, "_STAN.discover");
        assert_eq!(o.connect_wait, Duration::from_secs(2));
        assert_eq!(o.pub_ack_wait, Duration::from_secs(30));
        assert_eq!(o.max_pub_acks_inflight, 16_384);
        assert_eq!((o.ping_interval, o.ping_max_out), (5, 88));
        let s = SubscriptionOptions::default();
        assert_eq!(
            (s.max_in_flight, s.ack_wait),
            (1024, Duration::from_secs(30))
        );
        assert_eq!(s.start, StartAt::NewOnly);
        assert!(!s.manual_acks);
    }
}
