//! The subjects a server listens on and hands to clients in ConnectResponse.

use super::pb::ConnectResponse;

/// Every subject of one cluster ID. Fixed at first start and persisted, so a
/// recovered store keeps the subjects its clients already know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    /// The cluster ID these subjects belong to.
    pub cluster_id: String,
    /// `_STAN.discover.<cid>`: connect requests.
    pub discover: String,
    /// `_STAN.discover.<cid>.pings`: client pings.
    pub pings: String,
    /// `_STAN.pub.<cid>`: publishes arrive on `<publish>.<channel>`.
    pub publish: String,
    /// `_STAN.sub.<cid>`: subscription requests.
    pub subscribe: String,
    /// `_STAN.unsub.<cid>`: unsubscribe requests.
    pub unsubscribe: String,
    /// `_STAN.subclose.<cid>`: subscription close requests.
    pub sub_close: String,
    /// `_STAN.close.<cid>`: connection close requests.
    pub close: String,
}

impl Subjects {
    /// The reference server's default subjects for `cluster_id`.
    pub fn new(discover_prefix: &str, cluster_id: &str) -> Self {
        let discover = format!("{discover_prefix}.{cluster_id}");
        Self {
            cluster_id: cluster_id.to_string(),
            pings: format!("{discover}.pings"),
            discover,
            publish: format!("_STAN.pub.{cluster_id}"),
            subscribe: format!("_STAN.sub.{cluster_id}"),
            unsubscribe: format!("_STAN.unsub.{cluster_id}"),
            sub_close: format!("_STAN.subclose.{cluster_id}"),
            close: format!("_STAN.close.{cluster_id}"),
        }
    }

    /// The ConnectResponse for a successful connect. Ping fields are filled
    /// only for protocol-1 clients, echoing what the client asked for.
    pub fn connect_response(
        &self,
        protocol: i32,
        ping_interval: i32,
        ping_max_out: i32,
    ) -> ConnectResponse {
        let mut resp = ConnectResponse {
            pub_prefix: self.publish.clone(),
            sub_requests: self.subscribe.clone(),
            unsub_requests: self.unsubscribe.clone(),
            close_requests: self.close.clone(),
            sub_close_requests: self.sub_close.clone(),
            protocol: super::PROTOCOL_VERSION,
            ..Default::default()
        };
        if protocol >= 1 {
            resp.ping_requests = self.pings.clone();
            resp.ping_interval = ping_interval;
            resp.ping_max_out = ping_max_out;
        }
        resp
    }

    /// The channel a publish subject names, if it is under the publish prefix.
    pub fn channel_of_publish<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.publish.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The ConnectResponse bytes the reference server sent for `test-cluster`
    /// with ping interval 5 and max-out 3 (wire capture 02).
    const REFERENCE_CONNECT_RESPONSE: &str = "0a165f5354414e2e7075622e746573742d636c757374657212165f5354414e2e7375622e746573742d636c75737465721a185f5354414e2e756e7375622e746573742d636c757374657222185f5354414e2e636c6f73652e746573742d636c7573746572321b5f5354414e2e737562636c6f73652e746573742d636c75737465723a215f5354414e2e646973636f7665722e746573742d636c75737465722e70696e6773400548035001";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn connect_response_matches_reference_bytes() {
        let subjects = Subjects::new(crate::protocol::DEFAULT_DISCOVER_PREFIX, "test-cluster");
        let resp = subjects.connect_response(1, 5, 3);
        assert_eq!(hex(&resp.encode_to_vec()), REFERENCE_CONNECT_RESPONSE);
    }

    #[test]
    fn protocol_zero_gets_no_ping_fields() {
        let subjects = Subjects::new("_STAN.discover", "c");
        let resp = subjects.connect_response(0, 5, 3);
        assert!(resp.ping_requests.is_empty());
        assert_eq!(resp.ping_interval, 0);
        assert_eq!(resp.protocol, 1);
    }

    #[test]
    fn publish_subject_to_channel() {
        let s = Subjects::new("_STAN.discover", "test-cluster");
        assert_eq!(
            s.channel_of_publish("_STAN.pub.test-cluster.foo.bar"),
            Some("foo.bar")
        );
        assert_eq!(s.channel_of_publish("_STAN.pub.test-clusterX.foo"), None);
        assert_eq!(s.channel_of_publish("_STAN.pub.test-cluster"), None);
    }
}
