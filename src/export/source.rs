//! Which channels to export, and how far each goes: read from the
//! streaming server's monitoring endpoint (`/streaming/channelsz`), which
//! stanchion and the reference server both serve, so channels can be
//! listed and matched against a pattern with NATS wildcards.

use serde::Deserialize;

/// A channel as the monitoring endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct ChannelRange {
    /// Sequence of the oldest stored message (0 when empty).
    pub first_seq: u64,
    /// Sequence of the newest message ever stored (0 when none).
    pub last_seq: u64,
}

/// Names per page when listing channels (NSS's largest default page).
const PAGE: usize = 1024;

/// The monitoring endpoint of the streaming server, e.g. `http://127.0.0.1:8222`.
#[derive(Debug, Clone)]
pub struct Monitor {
    base: String,
}

/// One page of `/streaming/channelsz`.
#[derive(Deserialize)]
struct Names {
    #[serde(default)]
    names: Vec<String>,
    total: usize,
}

impl Monitor {
    /// The endpoint at `base` (scheme, host and port).
    pub fn new(base: &str) -> Monitor {
        Monitor {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn get(&self, path: &str) -> Result<Option<String>, String> {
        let url = format!("{}{path}", self.base);
        match ureq::get(&url).call() {
            Ok(mut r) => r
                .body_mut()
                .read_to_string()
                .map(Some)
                .map_err(|e| format!("{url}: {e}")),
            Err(ureq::Error::StatusCode(404)) => Ok(None),
            Err(e) => Err(format!("{url}: {e}")),
        }
    }

    /// Every channel's name, page by page. Blocking.
    ///
    /// # Errors
    /// The endpoint cannot be reached or answers something else than channelsz.
    pub fn channel_names(&self) -> Result<Vec<String>, String> {
        let mut all = Vec::new();
        loop {
            let path = format!("/streaming/channelsz?offset={}&limit={PAGE}", all.len());
            let body = self
                .get(&path)?
                .ok_or_else(|| format!("{path}: not found"))?;
            let page: Names =
                serde_json::from_str(&body).map_err(|e| format!("{}{path}: {e}", self.base))?;
            let got = page.names.len();
            all.extend(page.names);
            if got == 0 || all.len() >= page.total {
                return Ok(all);
            }
        }
    }

    /// One channel's range, or `None` if it does not exist. Blocking.
    ///
    /// # Errors
    /// The endpoint cannot be reached or answers something else than channelz.
    pub fn channel(&self, name: &str) -> Result<Option<ChannelRange>, String> {
        let path = format!("/streaming/channelsz?channel={}", encode_query(name));
        match self.get(&path)? {
            None => Ok(None),
            Some(body) => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| format!("{}{path}: {e}", self.base)),
        }
    }
}

/// Percent-encodes what a channel name may hold that a query may not.
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether `channel` matches `pattern`, NATS's way: `*` is one token, a
/// final `>` one or more.
pub fn matches(pattern: &str, channel: &str) -> bool {
    let mut p = pattern.split('.');
    let mut c = channel.split('.');
    loop {
        match (p.next(), c.next()) {
            (Some(">"), Some(_)) => return p.next().is_none(),
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether a pattern has wildcards (and so needs the channel list).
pub fn is_pattern(pattern: &str) -> bool {
    pattern.split('.').any(|t| t == "*" || t == ">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_nats_subjects_do() {
        assert!(matches("orders", "orders"));
        assert!(!matches("orders", "orders.eu"));
        assert!(matches("orders.*", "orders.eu"));
        assert!(!matches("orders.*", "orders.eu.new"));
        assert!(!matches("orders.*", "orders"));
        assert!(matches("orders.>", "orders.eu.new"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches(">", "anything.at.all"));
        assert!(matches("*.eu.*", "orders.eu.new"));
        assert!(!matches("*.eu.*", "orders.us.new"));
        assert!(is_pattern("a.*") && is_pattern(">") && !is_pattern("a.b"));
    }

    #[test]
    fn channel_names_are_encoded_for_the_query() {
        assert_eq!(encode_query("orders.eu-1_x"), "orders.eu-1_x");
        assert_eq!(encode_query("a b&c"), "a%20b%26c");
    }
}
