//! stanchion: a NATS Streaming (STAN) server that joins an existing
//! nats-server as an ordinary client.
#![warn(missing_docs)]

pub mod client;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod export;
pub mod import;
pub mod monitor;
pub mod nss;
pub mod protocol;
pub mod server;
pub mod store;
