//! `kapso-core`: the gateway's core service.
//!
//! Receives parsed webhook deliveries from the adapter over gRPC, stores them
//! durably and de-duplicated, tracks message status, keeps the event log that
//! internal consumers stream from, and sends messages through Kapso's API.
//!
//! - [`config`]: the typed configuration (flags and environment)
//! - [`auth`]: bearer tokens on the gateway's services (`GATEWAY_API_TOKENS`)
//! - [`tls`]: optional TLS and client certificates on the gRPC port
//! - [`model`]: domain types (deliveries, events, messages, explicit outcomes)
//! - [`status`]: message status and its forward-only rule
//! - [`store`]: the `Store` trait and its SQLite (embedded) and PostgreSQL backends
//! - [`ingest`]: `Ingest.IngestEvents`, the adapter's way in
//! - [`messaging`]: `Messaging`, what internal services call
//! - [`watch`]: following the event log, replay then live
//! - [`outbound`]: `SendText` and `MarkRead` through Kapso, idempotent and retried safely
//! - [`media`]: `UploadMedia` and `DownloadMedia` through Kapso, streamed and size-bounded
//! - [`kapso_api`]: the HTTP client for Kapso's Meta proxy, with explicit call outcomes
//! - [`convert`]: the wire contract to and from the domain model
//! - [`error`]: the gRPC boundary error
//! - [`server`]: the gRPC server with health and reflection
//! - [`trace_context`]: per-call spans carrying the caller's `traceparent` and `x-request-id`
//! - [`metrics`]: Prometheus metrics on `CORE_METRICS_ADDR`
//! - [`metered`]: the services wrapped with their metrics
//! - [`retention`]: background pruning of old events and keys (`EVENT_RETENTION_DAYS`)
//!
//! Logs and traces are set up by `kapso_telemetry`, shared with the adapter.

pub mod auth;
pub mod config;
pub mod convert;
pub mod error;
pub mod ingest;
pub mod kapso_api;
pub mod media;
pub mod messaging;
pub mod metered;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod retention;
pub mod server;
pub mod status;
pub mod store;
pub mod tls;
pub mod trace_context;
pub mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;

pub use config::Config;
use config::MetricsAddr;

/// Opens the configured store and serves the gRPC API on `listener` until
/// `shutdown` resolves. `main` binds the configured address; tests bind port 0.
/// Also serves metrics on `CORE_METRICS_ADDR` and prunes by `EVENT_RETENTION_DAYS`.
/// Refuses a listener beyond loopback without tokens ([`Config::check_protected`]).
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.check_protected(listener.local_addr()?)?;
    Core::open(config).await?.serve(listener, shutdown).await
}

/// A core whose store is open and whose services are built, not serving yet.
/// [`run`] in two steps, so that a binary holding the adapter too can take the
/// in-process [`link`](Core::link) before serving.
#[derive(Debug)]
pub struct Core {
    services: server::Services,
    store: Arc<dyn store::Store>,
    metrics: Arc<metrics::CoreMetrics>,
    metrics_addr: MetricsAddr,
    event_retention_days: u32,
}

impl Core {
    /// Opens the store (running its migrations) and builds the services.
    pub async fn open(config: Config) -> anyhow::Result<Core> {
        let checkpoint_interval = Duration::from_millis(config.sqlite_checkpoint_interval_ms);
        let store = store::open(
            &config.database_url,
            checkpoint_interval,
            Duration::from_secs(config.database_start_timeout_secs),
        )
        .await?;
        Core::with_store(config, store)
    }

    /// As [`open`](Core::open), on a store already open (`DATABASE_URL` is
    /// not used): for tests that wrap a store.
    pub fn with_store(config: Config, store: Arc<dyn store::Store>) -> anyhow::Result<Core> {
        let outbound = Arc::new(outbound::Outbound::from_config(
            config.outbound,
            store.clone(),
        )?);
        let tls = tls::server_config(&config.tls)?;
        let metrics = Arc::new(metrics::CoreMetrics::new().with_outbound(outbound.clone()));
        store.observe_commits(metrics.commit_observer());
        let guards = server::Guards {
            tokens: config.gateway_api_tokens,
            tls,
            metrics: metrics.clone(),
        };
        Ok(Core {
            services: server::Services::new(store.clone(), outbound, guards),
            store,
            metrics,
            metrics_addr: config.metrics_addr,
            event_retention_days: config.event_retention_days,
        })
    }

    /// `Ingest` and health as a gRPC service in this process; see [`server::Link`].
    pub fn link(&self) -> server::Link {
        self.services.link()
    }

    /// Serves the gRPC API on `listener`, metrics and retention beside it, until `shutdown` resolves.
    ///
    /// Fails at once, without draining, when the store stops for good (see
    /// [`Store::stopped`](store::Store::stopped)): the process must exit
    /// and recover on restart rather than serve from a store it cannot trust.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Core {
            services,
            store,
            metrics,
            metrics_addr,
            event_retention_days,
        } = self;
        // Both the gRPC server and the metrics server stop on the one shutdown signal.
        let shutdown = shutdown.boxed().shared();
        let _metrics_server = serve_metrics(metrics_addr, &metrics, &store, shutdown.clone())
            .await
            .map(server::AbortOnDrop);
        let _retention = (event_retention_days > 0).then(|| {
            server::AbortOnDrop(tokio::spawn(retention::run(
                store.clone(),
                event_retention_days,
                metrics.clone(),
            )))
        });
        let _abandoned = server::AbortOnDrop(tokio::spawn(outbound::abandoned::run(store.clone())));
        let store_stopped = async move { store.stopped().await };
        tokio::select! {
            served = services.serve(listener, shutdown) => served,
            reason = store_stopped => Err(anyhow::anyhow!("store stopped: {reason}")),
        }
    }
}

/// Starts the metrics endpoint if one is configured. A port that cannot be bound
/// is logged, not fatal: metrics must never keep the ingest path from serving.
async fn serve_metrics(
    addr: MetricsAddr,
    metrics: &Arc<metrics::CoreMetrics>,
    store: &Arc<dyn store::Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let MetricsAddr::At(addr) = addr else {
        return None;
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%addr, %error, "cannot bind CORE_METRICS_ADDR; metrics disabled");
            return None;
        }
    };
    tracing::info!(addr = %listener.local_addr().ok()?, "metrics listening");
    let (metrics, store) = (metrics.clone(), store.clone());
    Some(tokio::spawn(async move {
        if let Err(error) = metrics::endpoint::serve(listener, metrics, store, shutdown).await {
            tracing::error!(%error, "metrics endpoint failed");
        }
    }))
}
