//! Partitioning: several servers with one cluster ID, each serving only
//! the channels of its `store_limits.channels` (patterns allowed), as NSS's
//! `partitioning: true` does.
//!
//! At startup a server sends its channel list on `_STAN.part.<cluster_id>`
//! and waits a second for the other servers' replies; a reply naming a
//! channel means two servers would both own it, and the server refuses to
//! start. While running it answers the lists of servers that start later,
//! and checks its own again every 2 s, which finds servers whose
//! nats-servers joined its NATS cluster later; a conflict found then stops
//! it, as NSS does.
//! The messages are NSS's (`CtrlMsg` with the channels as 2-byte
//! little-endian lengths and names), so stanchion and NSS servers can share
//! a partitioned cluster. Unlike NSS, overlap is decided on the patterns
//! themselves: `foo.*` and `*.bar` overlap (both own `foo.bar`).

use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::ctrl::{CtrlMsg, PARTITIONING};
use super::ServerError;

/// How long a starting server waits for each reply to its list.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a running server sends its list again. NSS does it half a
/// second after its nats-server reports a change in the NATS cluster;
/// async-nats does not pass those reports on, so the check runs on a timer
/// and finds servers that joined through new routes all the same.
const RECHECK: Duration = Duration::from_secs(2);

/// Room kept in each list message for the `CtrlMsg` around the channels.
const HEADER_ROOM: usize = 64;

/// The subject channel lists go to.
pub fn subject(cluster_id: &str) -> String {
    format!("_STAN.part.{cluster_id}")
}

/// Whether some channel name matches both patterns (`*` one token, `>`
/// one or more, anything else itself).
pub fn overlap(a: &str, b: &str) -> bool {
    fn tokens_overlap(a: &[&str], b: &[&str]) -> bool {
        match (a.first(), b.first()) {
            (None, None) => true,
            (Some(&">"), _) => !b.is_empty(),
            (_, Some(&">")) => !a.is_empty(),
            (None, _) | (_, None) => false,
            (Some(x), Some(y)) => {
                (*x == "*" || *y == "*" || x == y) && tokens_overlap(&a[1..], &b[1..])
            }
        }
    }
    let a: Vec<&str> = a.split('.').collect();
    let b: Vec<&str> = b.split('.').collect();
    tokens_overlap(&a, &b)
}

/// The first of `theirs` that overlaps one of `ours`.
pub fn conflict<'a>(ours: &[String], theirs: &'a [String]) -> Option<&'a str> {
    theirs
        .iter()
        .find(|t| ours.iter().any(|o| overlap(o, t)))
        .map(String::as_str)
}

/// NSS's encoding of a channel list, split so that each part fits
/// `max_payload` with its `CtrlMsg` around it.
///
/// # Errors
/// When one name alone does not fit.
pub fn encode_channels(channels: &[String], max_payload: usize) -> Result<Vec<Vec<u8>>, String> {
    let room = max_payload.saturating_sub(HEADER_ROOM);
    let mut parts = vec![Vec::new()];
    for c in channels {
        let need = 2 + c.len();
        let len = u16::try_from(c.len()).map_err(|_| format!("channel name too long: {c}"))?;
        if need > room {
            return Err("message payload too small to send channels list".into());
        }
        let last = parts.last_mut().expect("never empty");
        if last.len() + need > room {
            parts.push(Vec::new());
        }
        let last = parts.last_mut().expect("never empty");
        last.extend_from_slice(&len.to_le_bytes());
        last.extend_from_slice(c.as_bytes());
    }
    Ok(parts)
}

/// Decodes a channel list.
///
/// # Errors
/// A truncated length or name, or a name that is not UTF-8.
pub fn decode_channels(data: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(format!(
                "unable to decode size at {}",
                data.len() - rest.len()
            ));
        };
        let len = usize::from(u16::from_le_bytes(*len));
        if tail.len() < len {
            return Err(format!(
                "unable to decode channel at {}: {len} bytes announced, {} left",
                data.len() - tail.len(),
                tail.len()
            ));
        }
        let name = std::str::from_utf8(&tail[..len]).map_err(|e| format!("channel name: {e}"))?;
        out.push(name.to_string());
        rest = &tail[len..];
    }
    Ok(out)
}

/// A server's part in a partitioned cluster: it answers the lists of
/// servers that start later and checks its own again every [`RECHECK`],
/// until dropped.
pub struct Partitions {
    _tasks: [AbortOnDropHandle<()>; 2],
    conflicts: mpsc::Receiver<ServerError>,
}

impl Partitions {
    /// The conflict a later check found (a server whose nats-server joined
    /// this one's NATS cluster owns one of this server's channels): this
    /// server must stop, as NSS does. Pending forever when there is none.
    pub async fn conflict(&mut self) -> ServerError {
        match self.conflicts.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }
}

/// Joins the partitioned cluster: answers the channel lists of servers that
/// start later, then sends this server's list and refuses to start if
/// another server owns one of its channels. The check then runs again
/// every [`RECHECK`].
///
/// # Errors
/// [`ServerError::Partitioning`] naming the channel and the other server;
/// NATS failures.
pub async fn join(
    nats: &async_nats::Client,
    cluster_id: &str,
    server_id: &str,
    channels: Vec<String>,
) -> Result<Partitions, ServerError> {
    let subject = subject(cluster_id);
    let requests = nats
        .subscribe(subject.clone())
        .await
        .map_err(|e| nats_err(&e))?;
    let responder = AbortOnDropHandle::new(tokio::spawn(answer(
        nats.clone(),
        requests,
        server_id.to_string(),
        channels.clone(),
    )));
    let check = Check {
        nats: nats.clone(),
        subject,
        server_id: server_id.to_string(),
        channels,
    };
    check.run().await?;
    tracing::info!(channels = ?check.channels, "partitioning: this server serves only these channels");
    let (tx, conflicts) = mpsc::channel(1);
    let watcher = AbortOnDropHandle::new(tokio::spawn(async move {
        if let Err(e) = check.again_and_again().await {
            let _ = tx.send(e).await;
        }
    }));
    Ok(Partitions {
        _tasks: [responder, watcher],
        conflicts,
    })
}

fn nats_err(e: &dyn std::fmt::Display) -> ServerError {
    ServerError::Nats(format!("partitioning: {e}"))
}

/// This server's channel list, sent for the others to check.
struct Check {
    nats: async_nats::Client,
    subject: String,
    server_id: String,
    channels: Vec<String>,
}

impl Check {
    /// Sends the list and reads the replies until a second passes without
    /// one (how many servers there are is unknown).
    async fn run(&self) -> Result<(), ServerError> {
        let nats = &self.nats;
        let inbox = nats.new_inbox();
        let mut replies = nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| nats_err(&e))?;
        let max_payload = nats.server_info().max_payload;
        for data in
            encode_channels(&self.channels, max_payload).map_err(ServerError::Partitioning)?
        {
            let list = CtrlMsg {
                msg_type: PARTITIONING,
                server_id: self.server_id.clone(),
                data,
            };
            nats.publish_with_reply(
                self.subject.clone(),
                inbox.clone(),
                list.encode_to_vec().into(),
            )
            .await
            .map_err(|e| nats_err(&e))?;
        }
        nats.flush().await.map_err(|e| nats_err(&e))?;
        while let Ok(reply) = tokio::time::timeout(REPLY_TIMEOUT, replies.next()).await {
            let Some(reply) = reply else { break };
            let resp = CtrlMsg::decode(reply.payload).map_err(|e| {
                ServerError::Partitioning(format!("unable to decode partitioning response: {e}"))
            })?;
            if !resp.data.is_empty() {
                return Err(ServerError::Partitioning(format!(
                    "channel {:?} causes conflict with channels on server {:?}",
                    String::from_utf8_lossy(&resp.data),
                    resp.server_id
                )));
            }
        }
        Ok(())
    }

    /// Checks again every [`RECHECK`]; returns the first conflict. A
    /// check that fails for NATS reasons is logged and tried again.
    async fn again_and_again(&self) -> Result<(), ServerError> {
        let mut tick = tokio::time::interval(RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.run().await {
                Err(e @ ServerError::Partitioning(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "partitioning: checking channels again failed")
                }
                Ok(()) => tracing::trace!("partitioning: channels checked again"),
            }
        }
    }
}

/// Answers other servers' channel lists: with the first overlapping
/// channel, or empty when none overlaps.
async fn answer(
    nats: async_nats::Client,
    mut requests: async_nats::Subscriber,
    server_id: String,
    ours: Vec<String>,
) {
    while let Some(m) = requests.next().await {
        let Some(reply) = m.reply else { continue };
        let req = match CtrlMsg::decode(m.payload) {
            Ok(req) => req,
            Err(e) => {
                tracing::error!(error = %e, "error processing partitioning request");
                continue;
            }
        };
        if req.server_id == server_id {
            continue;
        }
        let theirs = match decode_channels(&req.data) {
            Ok(theirs) => theirs,
            Err(e) => {
                tracing::error!(server = %req.server_id, error = %e, "error processing partitioning request");
                continue;
            }
        };
        let clash = conflict(&ours, &theirs).map(str::to_string);
        if let Some(c) = &clash {
            tracing::error!(server = %req.server_id, channel = %c, "partitioning: a starting server wants a channel this server owns");
        }
        let resp = CtrlMsg {
            msg_type: PARTITIONING,
            server_id: server_id.clone(),
            data: clash.unwrap_or_default().into_bytes(),
        };
        if let Err(e) = nats.publish(reply, resp.encode_to_vec().into()).await {
            tracing::error!(error = %e, "error sending reply to partitioning request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_overlap_when_some_channel_matches_both() {
        for (a, b) in [
            ("foo", "foo"),
            ("foo.*", "foo.bar"),
            ("foo.>", "foo.*"),
            ("foo.>", "foo.bar.baz"),
            ("foo.*", "*.bar"),
            (">", "a"),
            ("*.*", "a.>"),
        ] {
            assert!(overlap(a, b), "{a} / {b}");
            assert!(overlap(b, a), "{b} / {a}");
        }
        for (a, b) in [
            ("foo", "bar"),
            ("foo.>", "foo"),
            ("foo.*", "foo"),
            ("foo.*", "foo.bar.baz"),
            ("a.*.c", "a.b.d"),
            ("*", "a.b"),
        ] {
            assert!(!overlap(a, b), "{a} / {b}");
            assert!(!overlap(b, a), "{b} / {a}");
        }
    }

    #[test]
    fn the_first_of_their_channels_that_overlaps_is_named() {
        let ours = vec!["orders.*".to_string(), "audit".to_string()];
        let theirs = vec![
            "users".to_string(),
            "orders.eu".to_string(),
            "audit".to_string(),
        ];
        assert_eq!(conflict(&ours, &theirs), Some("orders.eu"));
        assert_eq!(conflict(&ours, &["users".to_string()]), None);
    }

    #[test]
    fn channel_lists_round_trip_in_nss_encoding_and_split_at_the_payload_limit() {
        let channels: Vec<String> = (0..100).map(|i| format!("channel.{i}")).collect();
        let parts = encode_channels(&channels, 1 << 20).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            &parts[0][..2],
            &[9, 0],
            "length little-endian, then the name"
        );
        assert_eq!(&parts[0][2..11], b"channel.0");
        assert_eq!(decode_channels(&parts[0]).unwrap(), channels);
        let parts = encode_channels(&channels, HEADER_ROOM + 100).unwrap();
        assert!(parts.len() > 1 && parts.iter().all(|p| p.len() <= 100));
        let joined: Vec<String> = parts
            .iter()
            .flat_map(|p| decode_channels(p).unwrap())
            .collect();
        assert_eq!(joined, channels);
        assert!(encode_channels(&["x".repeat(200)], HEADER_ROOM + 100).is_err());
    }

    #[test]
    fn damaged_lists_are_errors() {
        assert!(decode_channels(&[5]).is_err());
        assert!(decode_channels(&[5, 0, b'a']).is_err());
        assert!(decode_channels(&[2, 0, 0xff, 0xfe]).is_err());
        assert_eq!(decode_channels(&[]).unwrap(), Vec::<String>::new());
    }
}
