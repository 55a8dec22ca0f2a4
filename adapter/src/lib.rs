//! `kapso_adapter`: the gateway's HTTPS edge for Kapso webhooks.
//!
//! Kapso --webhook--> adapter --gRPC `IngestEvents`--> core --> store. The adapter
//! verifies each delivery's signature over the exact bytes, parses its events,
//! forwards the whole delivery as one call, and answers Kapso 200 only after the
//! core committed it; otherwise 503 with `Retry-After`, so Kapso retries.
//!
//! It depends on the wire contract (`kapso_gateway_proto`) and small shared
//! crates only, never on the core: the signature check is `kapso_signature`,
//! the shutdown signal `kapso_process`, logs and traces `kapso_telemetry`.
//! `kapso-gateway` (the `gateway/` crate) runs it and the core in one process.
//!
//! Modules:
//! - [`webhook`]: body shapes (v2 single/batch, legacy single/batch) to events.
//!
//! The server, behind the `server` feature (on by default; without it the crate
//! is the body parser alone, serde and the proto messages, which is all the fuzz
//! targets in `adapter/fuzz` build):
//! - `app`: the router and [`run`].
//! - [`config`]: the `clap` configuration (every variable documented in `--help`).
//! - [`core_client`]: the lazy gRPC channel to the core (token, TLS) and its health check.
//! - [`parts`]: a delivery cut into calls the core accepts.
//! - [`routes`]: the HTTP handlers.
//! - [`trace_context`]: the request id and W3C `traceparent` of each request.
//! - `serve`: the accept loop with connection, header-timeout and shutdown limits.
//! - [`state`]: what the handlers share.
//! - [`error`]: the one error type of the HTTP boundary.
//! - [`metrics`]: Prometheus counters and the latency histogram.
//! - [`telemetry`]: masking of customer data in logs (set-up: `kapso_telemetry`).

pub mod webhook;

/// Items of the server: compiled only with the `server` feature.
macro_rules! server {
    ($($item:item)*) => { $( #[cfg(feature = "server")] $item )* };
}

server! {
    mod app;
    pub mod config;
    pub mod core_client;
    pub mod error;
    pub mod metrics;
    pub mod parts;
    pub mod routes;
    mod serve;
    pub mod state;
    pub mod telemetry;
    pub mod trace_context;
    pub use app::{router, run, run_with_core};
    pub use config::Config;
    pub use error::WebhookError;
    pub use state::AppState;
}
