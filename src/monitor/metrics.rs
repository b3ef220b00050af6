//! Prometheus `/metrics` (being written).

use axum::extract::State;
use axum::response::Response;

use crate::server::view::ServerView;

/// Prometheus text format of the server's metrics.
pub(super) async fn metrics(State(_view): State<ServerView>) -> Response {
    super::text(axum::http::StatusCode::OK, "")
}
