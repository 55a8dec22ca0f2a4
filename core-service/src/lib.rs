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



pub use config::Config;
