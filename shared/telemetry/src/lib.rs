//! `kapso_telemetry`: what every gateway process (`kapso-adapter`,
//! `kapso-core`, `kapso-gateway`) does the same way to be observed.
//!
//! - [`init`] (in `subscriber`): log lines (`RUST_LOG`, `LOG_FORMAT`), and
//!   spans over OTLP when the standard `OTEL_*` variables ask for them.
//! - [`otlp`]: which `OTEL_*` variables the program reads itself, and the exporter.
//! - [`spans`]: a span's parent in another process, its kind, and the
//!   `traceparent` naming it to the next hop.
//! - [`trace_context`]: the W3C `traceparent` and `x-request-id`, parsed.
//! - [`metrics`]: the Prometheus registry, its text and the `/metrics` answer.
//! - `collector` (feature `collector`, tests only): an OTLP receiver on 127.0.0.1.

#[cfg(feature = "collector")]
pub mod collector;
pub mod metrics;
pub mod otlp;
pub mod spans;
mod subscriber;
pub mod trace_context;

pub use subscriber::{LogFormat, Telemetry, TelemetryError, init};
