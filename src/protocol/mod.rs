//! The STAN wire protocol: generated messages, the subjects a server hands
//! out, name validation and the reference server's exact error texts.
//!
//! Pure: no I/O and no async. Both the server and the bundled client build on it.

pub mod errors;
mod subjects;
mod validate;

pub use subjects::Subjects;
pub use validate::{is_valid_channel, is_valid_client_id};

/// The client protocol messages (`pb` package), exactly as STAN clients encode them.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

/// The protocol version stanchion speaks: connection IDs and client pings.
pub const PROTOCOL_VERSION: i32 = 1;

/// The default prefix of the discovery subject, as the reference server uses.
pub const DEFAULT_DISCOVER_PREFIX: &str = "_STAN.discover";
