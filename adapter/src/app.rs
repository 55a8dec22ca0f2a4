//! The adapter's HTTP application ([`router`]) and its entry points ([`run`],
//! [`run_with_core`]).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::state::AppState;
use crate::{core_client, routes, serve, trace_context};

/// How long in-flight requests may finish after shutdown begins. Kapso gives up
/// after 10 s anyway, and an unanswered delivery is retried.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The adapter's HTTP application.
///
/// Needs `ConnectInfo<SocketAddr>` in the request extensions: [`run`] puts it
/// there; tests add `MockConnectInfo`.
///
/// The webhook's own limits live in its handler, where they can answer with
/// [`WebhookError`](crate::WebhookError): in-flight shedding first, then the
/// body's size and read time.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/whatsapp/webhook", post(routes::webhook))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        // Layers run outermost (last added) first: trace context, then the access log.
        // Access log: its per-request lines are DEBUG, in the request's span: a
        // webhook writes its one INFO line itself (with outcome and counts), and
        // probes and scrapes none.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|_: &Request| tracing::Span::current())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        // The request's span, with the request id and traceparent kept from the
        // caller or generated, before anything logs; echoed as `X-Request-Id`.
        .layer(axum::middleware::from_fn(trace_context::layer))
        .with_state(state)
}

/// Serves the adapter on `listener` until `shutdown` completes, then lets
/// in-flight requests finish for at most [`SHUTDOWN_GRACE`].
///
/// The core is not contacted at startup: the adapter comes up (answering 503 to
/// webhooks and `/readyz`) while the core is down. Fails at once on a TLS
/// configuration the core channel cannot use.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let core = core_client::CoreClient::connect_lazy(&config)?;
    run_with_core(config, core, listener, shutdown).await
}

/// As [`run`], reaching the core through `core` rather than `CORE_GRPC_URL`:
/// `kapso-gateway` passes the core's services in the same process.
pub async fn run_with_core(
    config: Config,
    core: core_client::CoreClient,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let core_target = core.target().to_owned();
    let state = AppState::with_core(&config, core);
    // `core` is the URL (TLS exactly when it is https://) or "in-process".
    tracing::info!(
        addr = %listener.local_addr()?,
        core = core_target,
        core_token = config.gateway_api_token.is_some(),
        secrets = config.webhook_secret.len(),
        body_limit_bytes = config.body_limit_bytes,
        core_timeout_ms = config.core_timeout_ms,
        max_connections = config.max_connections,
        max_in_flight = config.max_in_flight,
        "kapso-adapter listening"
    );
    let limits = serve::Limits {
        header_read_timeout: config.header_read_timeout(),
        max_connections: config.max_connections as usize,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    serve::serve(listener, router(state.clone()), state, limits, shutdown).await;
    Ok(())
}
