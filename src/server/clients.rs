//! The registry of connected STAN clients, by client ID and by connection ID.
//!
//! Shared by the request dispatcher (connect, close, publish validation,
//! pings) and, later, heartbeats and monitoring. A `std::sync::Mutex`
//! guards it; it is never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::store::ClientInfo;

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, ClientInfo>,
    /// Connection ID → client ID, for publish validation and pings.
    by_conn: HashMap<Bytes, String>,
    /// Consecutive missed heartbeats of clients that missed at least one.
    hb_failures: HashMap<String, u32>,
}

/// Registered clients. One per server; cheap operations only.
#[derive(Default)]
pub struct Clients {
    inner: Mutex<Inner>,
    /// How many clients are currently failing heartbeats: lets the delivery
    /// path skip the lock in the usual case where none is.
    failing: AtomicUsize,
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
        if inner.hb_failures.remove(id).is_some() {
            self.failing.fetch_sub(1, Ordering::Relaxed);
        }
        if inner
            .by_conn
            .get(&info.conn_id)
            .is_some_and(|owner| owner == id)
        {
            inner.by_conn.remove(&info.conn_id);
        }
        Some(info)
    }

    /// Every registered client's ID and heartbeat inbox, for the monitor.
    pub fn summaries(&self) -> Vec<(String, String)> {
        self.lock()
            .by_id
            .values()
            .map(|c| (c.id.clone(), c.hb_inbox.clone()))
            .collect()
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

    /// The client ID and heartbeat inbox of every client, for a heartbeat round.
    pub fn heartbeat_targets(&self) -> Vec<(String, String)> {
        let inner = self.lock();
        inner
            .by_id
            .values()
            .map(|c| (c.id.clone(), c.hb_inbox.clone()))
            .collect()
    }

    /// Records an answered heartbeat (or a ping): the client is fully alive.
    /// With `hb_inbox`, only if that is still the registered instance's inbox
    /// (an answer from a replaced instance says nothing about the new one).
    /// Returns `true` if it was failing before.
    pub fn heartbeat_ok(&self, id: &str, hb_inbox: Option<&str>) -> bool {
        let mut inner = self.lock();
        if !Self::is_instance(&inner, id, hb_inbox) {
            return false;
        }
        let was_failing = inner.hb_failures.remove(id).is_some();
        if was_failing {
            self.failing.fetch_sub(1, Ordering::Relaxed);
        }
        was_failing
    }

    /// Records a missed heartbeat of the instance with `hb_inbox`; returns
    /// the consecutive misses so far, or `None` if that instance is no
    /// longer registered (closed, or replaced under the same client ID).
    pub fn heartbeat_missed(&self, id: &str, hb_inbox: &str) -> Option<u32> {
        let mut inner = self.lock();
        if !Self::is_instance(&inner, id, Some(hb_inbox)) {
            return None;
        }
        let count = inner.hb_failures.entry(id.to_string()).or_insert(0);
        *count += 1;
        let count = *count;
        if count == 1 {
            self.failing.fetch_add(1, Ordering::Relaxed);
        }
        Some(count)
    }

    /// Whether the client registered as `id` is the instance with `hb_inbox`.
    pub fn is_registered_instance(&self, id: &str, hb_inbox: &str) -> bool {
        Self::is_instance(&self.lock(), id, Some(hb_inbox))
    }

    fn is_instance(inner: &Inner, id: &str, hb_inbox: Option<&str>) -> bool {
        inner
            .by_id
            .get(id)
            .is_some_and(|c| hb_inbox.is_none_or(|inbox| c.hb_inbox == inbox))
    }

    /// Whether a client has missed its latest heartbeat(s): its plain
    /// subscriptions skip redelivery and queue groups pass it over.
    pub fn is_failing(&self, id: &str) -> bool {
        self.failing.load(Ordering::Relaxed) > 0 && self.lock().hb_failures.contains_key(id)
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

    #[test]
    fn heartbeat_failures_count_and_reset() {
        let clients = Clients::default();
        assert!(clients.register(client("a", b"conn-a")));
        assert!(!clients.is_failing("a"));
        assert_eq!(clients.heartbeat_missed("a", ""), Some(1));
        assert_eq!(clients.heartbeat_missed("a", ""), Some(2));
        assert!(clients.is_failing("a"));
        assert!(clients.heartbeat_ok("a", Some("")), "was failing");
        assert!(!clients.is_failing("a"));
        assert!(!clients.heartbeat_ok("a", Some("")));
        assert_eq!(clients.heartbeat_missed("a", ""), Some(1));
        clients.remove("a");
        assert!(!clients.is_failing("a"));
        assert_eq!(
            clients.heartbeat_missed("a", ""),
            None,
            "gone clients are not counted"
        );
        assert_eq!(clients.failing.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn heartbeats_of_a_replaced_instance_do_not_count() {
        let clients = Clients::default();
        let mut old = client("a", b"conn-1");
        old.hb_inbox = "hb-1".into();
        assert!(clients.register(old));
        clients.remove("a");
        let mut new = client("a", b"conn-2");
        new.hb_inbox = "hb-2".into();
        assert!(clients.register(new));
        assert_eq!(clients.heartbeat_missed("a", "hb-1"), None);
        assert!(!clients.is_failing("a"));
        assert_eq!(clients.heartbeat_missed("a", "hb-2"), Some(1));
        assert!(
            !clients.heartbeat_ok("a", Some("hb-1")),
            "an old answer does not clear it"
        );
        assert!(clients.is_failing("a"));
        assert!(clients.heartbeat_ok("a", None), "a ping (by connID) does");
        assert!(clients.is_registered_instance("a", "hb-2"));
        assert!(!clients.is_registered_instance("a", "hb-1"));
    }
}
