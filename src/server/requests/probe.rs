//! The startup check that no other streaming server serves this cluster ID.

use bytes::Bytes;
use prost::Message as _;

use crate::protocol::pb::{CloseRequest, ConnectRequest, ConnectResponse};
use crate::protocol::Subjects;
use crate::server::ServerError;

/// How long the start-up probe waits for another server to answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);

/// Refuses to start when another streaming server answers on our discover subject.
pub(super) async fn probe_for_other_server(
    nats: &async_nats::Client,
    subjects: &Subjects,
) -> Result<(), ServerError> {
    let req = ConnectRequest {
        client_id: subjects.cluster_id.clone(),
        heartbeat_inbox: nats.new_inbox(),
        ..Default::default()
    };
    let probe = nats.request(subjects.discover.clone(), Bytes::from(req.encode_to_vec()));
    let Ok(Ok(reply)) = tokio::time::timeout(PROBE_TIMEOUT, probe).await else {
        tracing::debug!("did not detect another server instance");
        return Ok(());
    };
    match ConnectResponse::decode(reply.payload) {
        Ok(resp) if resp.error.is_empty() && !resp.close_requests.is_empty() => {
            let close = CloseRequest {
                client_id: subjects.cluster_id.clone(),
            };
            let _ = tokio::time::timeout(
                PROBE_TIMEOUT,
                nats.request(resp.close_requests, Bytes::from(close.encode_to_vec())),
            )
            .await;
            Err(ServerError::AlreadyRunning(subjects.cluster_id.clone()))
        }
        _ => Ok(()),
    }
}
