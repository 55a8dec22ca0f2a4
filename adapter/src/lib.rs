//! `kapso_adapter`: the gateway's HTTPS edge for Kapso webhooks.
//!
//! Kapso --webhook--> adapter --gRPC `IngestEvents`--> core --> store. The adapter
//! verifies each delivery's signature over the exact bytes, parses its events,
//! forwards the whole delivery as one call, and answers Kapso 200 only after the
//! core committed it; otherwise 503 with `Retry-After`, so Kapso retries.
//!
//! Modules:
//! - [`config`]: the `clap` configuration (every variable documented in `--help`).
//! - [`signature`]: HMAC-SHA256 verification and signing, pure.
//! - [`webhook`]: body shapes (v2 single/batch, legacy single/batch) to events.
//! - [`core_client`]: the lazy gRPC channel to the core and its health check.
//! - [`routes`]: the HTTP handlers.
//! - [`state`]: what the handlers share.
//! - [`error`]: the one error type of the HTTP boundary.
//! - [`metrics`]: Prometheus counters and the latency histogram.
//! - [`telemetry`]: log setup and masking of customer data.

pub mod config;
pub mod core_client;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod signature;
pub mod state;
pub mod telemetry;
pub mod webhook;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use config::Config;
pub use error::WebhookError;
pub use state::AppState;

/// How long in-flight requests may finish after shutdown begins. Kapso gives up
/// after 10 s anyway, and an unanswered delivery is retried.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The adapter's HTTP application.
///
/// Needs `ConnectInfo<SocketAddr>`: serve it with `into_make_service_with_connect_info`
/// (as [`run`] does) or add `MockConnectInfo` in tests.
pub fn router(state: AppState) -> Router {
    let body_limit = state.shared().body_limit_bytes;
    Router::new()
        .route("/api/whatsapp/webhook", post(routes::webhook))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        // Outermost first. Access log: one line per request with its status, like the
        // original service; no headers, so signatures stay out of the logs.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        // Caps the buffered body before the signature is computed over it; the webhook
        // handler turns the rejection into its own 413.
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves the adapter on `listener` until `shutdown` completes, then lets
/// in-flight requests finish for at most [`SHUTDOWN_GRACE`].
///
/// The core is not contacted at startup: the adapter comes up (answering 503 to
/// webhooks and `/readyz`) while the core is down.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&config);
    tracing::info!(
        addr = %listener.local_addr()?,
        core = %config.core_grpc_url,
        secrets = config.webhook_secret.len(),
        body_limit_bytes = config.body_limit_bytes,
        core_timeout_ms = config.core_timeout_ms,
        "kapso-adapter listening"
    );
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();

    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, draining requests");
        let _ = draining_tx.send(());
    };
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    let grace_over = async move {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => result?,
        () = grace_over => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still open after the grace period; closing them");
        }
    }
    Ok(())
}
