//! The monitoring HTTP server (NSS's `-m` port): NSS's `/streaming/*`
//! endpoints, probes (`/healthz`, `/readyz`) and Prometheus `/metrics`.
//!
//! Owns the listener and the routes; reads the server only through a
//! [`ServerView`] (atomic counters and snapshots), so a scrape never holds
//! up a publish. Started before the store is opened, so that `/healthz`
//! answers during a long recovery while `/readyz` says 503.

mod follower;
mod metrics;
mod nss;

use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::view::ServerView;

/// Why the monitoring server could not start.
#[derive(Debug, thiserror::Error)]
#[error("can't listen to the monitor port {addr}: {source}")]
pub struct MonitorError {
    /// The address asked for.
    pub addr: String,
    /// Why binding failed.
    pub source: std::io::Error,
}

/// A running monitoring server.
pub struct Monitor {
    /// The address it listens on (with the real port when `-1` asked for any).
    pub addr: SocketAddr,
}

/// Starts the monitoring server when `config.http_port` asks for one
/// (0 = off, -1 = any free port), serving until `stop` is cancelled.
///
/// # Errors
/// [`MonitorError`] when the address cannot be bound (as NSS, this stops
/// the server from starting).
pub async fn start(
    config: &Config,
    view: ServerView,
    stop: CancellationToken,
) -> Result<Option<Monitor>, MonitorError> {
    if config.http_port == 0 {
        return Ok(None);
    }
    let port = u16::try_from(config.http_port.max(0)).unwrap_or(0);
    let host = config
        .http_host
        .trim_start_matches('[')
        .trim_end_matches(']');
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| MonitorError {
            addr: addr.clone(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| MonitorError {
        addr: addr.clone(),
        source,
    })?;
    let app = routes(view);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "monitoring server failed");
        }
    });
    tracing::info!(addr = %bound, "monitoring on http://{bound}");
    Ok(Some(Monitor { addr: bound }))
}

/// Every route of the monitoring server.
fn routes(view: ServerView) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(nss::routes())
        .fallback(not_found)
        .with_state(view)
}

/// Go's `http.NotFound`, as NSS answers an unknown path.
async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// The process is up and serving HTTP.
async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// Ready: the store is open, the NATS connection is up and no shutdown
/// has begun. 503 otherwise, with the reason (an FT standby is not ready:
/// it serves nothing until it takes over).
async fn readyz(axum::extract::State(view): axum::extract::State<ServerView>) -> Response {
    use crate::server::view::Phase;
    let standby = view.state() == crate::server::view::ServerState::FtStandby;
    let role = view.role();
    let follower = matches!(
        role,
        crate::server::view::Role::Follower | crate::server::view::Role::Candidate
    );
    if follower && view.phase() != Phase::ShuttingDown {
        // A healthy follower: ready for its part, which is not serving clients.
        return match view.nats_connected() {
            true => text(StatusCode::OK, format!("{}\n", role.name().to_lowercase())),
            false => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not connected to nats-server\n",
            ),
        };
    }
    let (status, reason) = match view.phase() {
        Phase::Starting if standby => (
            StatusCode::SERVICE_UNAVAILABLE,
            "standby: waiting for the store lock of the FT group\n",
        ),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
        Phase::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        Phase::Ready if !view.nats_connected() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to nats-server\n",
        ),
        Phase::Ready => (StatusCode::OK, "ready\n"),
    };
    text(status, reason)
}

/// A plain-text response, as Go's `http.Error` writes one.
fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.into(),
    )
        .into_response()
}
