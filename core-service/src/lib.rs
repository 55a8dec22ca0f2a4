//! `kapso-core`: the gateway's core service.
//!
//! Receives parsed webhook deliveries from the adapter over gRPC, stores them
//! durably and de-duplicated, tracks message status, keeps the event log that
//! internal consumers stream from, and sends messages through Kapso's API.
//!
//! - [`config`]: the typed configuration (flags and environment)
//! - [`model`]: domain types (deliveries, events, messages, explicit outcomes)
//! - [`status`]: message status and its forward-only rule
//! - [`store`]: the `Store` trait and its SQLite backend (group commit)
//! - [`ingest`]: `Ingest.IngestEvents`, the adapter's way in
//! - [`messaging`]: `Messaging`, what internal services call
//! - [`watch`]: following the event log, replay then live
//! - [`outbound`]: `SendText` and `MarkRead` through Kapso, idempotent and retried safely
//! - [`kapso_api`]: the HTTP client for Kapso's Meta proxy, with explicit call outcomes
//! - [`convert`]: the wire contract to and from the domain model
//! - [`error`]: the gRPC boundary error
//! - [`server`]: the gRPC server with health and reflection
//! - [`telemetry`]: logging setup

pub mod config;
pub mod convert;
pub mod error;
pub mod ingest;
pub mod kapso_api;
pub mod messaging;
pub mod model;
pub mod outbound;
pub mod server;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod watch;

use std::future::Future;
use std::sync::Arc;

pub use config::Config;

/// Opens the configured store and serves the gRPC API on `listener` until
/// `shutdown` resolves. `main` binds the configured address; tests bind port 0.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::open(&config.database_url)?;
    let outbound = Arc::new(outbound::Outbound::from_config(
        config.outbound,
        store.clone(),
    )?);
    tracing::info!(addr = %listener.local_addr()?, "core listening");
    server::serve(store, outbound, listener, shutdown).await
}
