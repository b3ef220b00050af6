//! The registry of connected STAN clients, by client ID and by connection ID.
//!
//! Shared by the request dispatcher (connect, close, publish validation,
//! pings) and, later, heartbeats and monitoring. A `std::sync::Mutex`
//! guards it; it is never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;

use crate::store::ClientInfo;

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, ClientInfo>,
    /// Connection ID → client ID, for publish validation and pings.
    by_conn: HashMap<Bytes, String>,
}

/// Registered clients. One per server; cheap operations only.
#[derive(Default)]
pub struct Clients {
    inner: Mutex<Inner>,
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a client; `false` (and no change) if the ID is taken.
    pub fn register(&self, info: ClientInfo) -> bool {
        let mut inner = self.lock();
        if inner.by_id.contains_key(&info.id) {
            return false;
        }
        if !info.conn_id.is_empty() {
            inner.by_conn.insert(info.conn_id.clone(), info.id.clone());
        }
        inner.by_id.insert(info.id.clone(), info);
        true
    }

    /// Removes a client, returning its record if it was registered.
    pub fn remove(&self, id: &str) -> Option<ClientInfo> {
        let mut inner = self.lock();
        let info = inner.by_id.remove(id)?;
        if inner
            .by_conn
            .get(&info.conn_id)
            .is_some_and(|owner| owner == id)
        {
            inner.by_conn.remove(&info.conn_id);
        }
        Some(info)
    }

    /// Whether a client ID is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().by_id.contains_key(id)
    }

    /// Whether a publisher is valid: by connection ID when it sends one
    /// (so a replaced connection cannot publish), else by client ID.
    pub fn is_valid_publisher(&self, client_id: &str, conn_id: &[u8]) -> bool {
        let inner = self.lock();
        if conn_id.is_empty() {
            inner.by_id.contains_key(client_id)
        } else {
            inner.by_conn.contains_key(conn_id)
        }
    }

    /// The client owning a connection ID, if registered.
    pub fn by_conn(&self, conn_id: &[u8]) -> Option<String> {
        self.lock().by_conn.get(conn_id).cloned()
    }

    /// A client's record.
    pub fn get(&self, id: &str) -> Option<ClientInfo> {
        self.lock().by_id.get(id).cloned()
    }

    /// The IDs of every registered client.
    pub fn ids(&self) -> HashSet<String> {
        self.lock().by_id.keys().cloned().collect()
    }

    /// Number of registered clients.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str, conn: &'static [u8]) -> ClientInfo {
        ClientInfo {
            id: id.into(),
            conn_id: Bytes::from_static(conn),
            ..Default::default()
        }
    }

    #[test]
    fn register_is_exclusive_and_conn_ids_validate_publishers() {
        let clients = Clients::default();
        assert!(clients.register(client("a", b"conn-a")));
        assert!(!clients.register(client("a", b"conn-a2")), "ID in use");
        assert!(clients.is_valid_publisher("a", b"conn-a"));
        assert!(clients.is_valid_publisher("a", b""));
        assert!(!clients.is_valid_publisher("a", b"conn-a2"));
        assert!(!clients.is_valid_publisher("b", b""));
        assert_eq!(clients.by_conn(b"conn-a").as_deref(), Some("a"));
        assert!(clients.remove("a").is_some());
        assert!(!clients.is_valid_publisher("a", b"conn-a"));
        assert!(clients.by_conn(b"conn-a").is_none());
        assert!(clients.is_empty());
    }
}
